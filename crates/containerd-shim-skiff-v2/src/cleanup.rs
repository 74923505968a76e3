//! `delete`: containerd runs this after it lost the shim (the shim died, or
//! after a normal disconnect, as a safety net), in the bundle directory. It
//! must be idempotent and touch only task `-id`: in a pod's shared shim the
//! other containers live on.
//!
//! Kill what is left of the container, remove its cgroups and state (the
//! library's forced delete), unmount the rootfs, remove the server's socket
//! if nothing answers on it any more, and print a protobuf
//! DeleteResponse on stdout (exit status 137, as runc's shim reports).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::SystemTime;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::{Message, MessageField};
use skiff_runtime::container;

use crate::args::Args;
use crate::error::ShimError;
use crate::events::timestamp;
use crate::mounts;
use crate::server::state_root;
use crate::start;

pub fn run(args: &Args) -> Result<(), ShimError> {
    let bundle = match &args.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(ShimError::io("finding the bundle (cwd)"))?,
    };
    let root = state_root(&args.namespace);
    let pid = root.load(&args.id).map(|r| r.pid).unwrap_or(0);
    if let Err(e) = container::delete(&root, &args.id, true) {
        // Warnings: containerd logs stderr and goes on.
        eprintln!("cleaning up task {}: {e}", args.id);
    }
    mounts::unmount_rootfs(&bundle.join("rootfs"));
    // A server killed outright left its socket; nobody answering means it is
    // stale (a pod's live server answers and keeps it).
    let group = start::group_id(&bundle).unwrap_or_else(|| args.id.clone());
    let socket = start::socket_path(&args.address, &args.namespace, &group);
    if UnixStream::connect(&socket).is_err() {
        let _ = std::fs::remove_file(&socket);
    }
    let resp = DeleteResponse {
        pid: pid.max(0) as u32,
        exit_status: 137,
        exited_at: MessageField::some(timestamp(SystemTime::now())),
        ..Default::default()
    };
    let bytes = resp
        .write_to_bytes()
        .map_err(|e| ShimError::Usage(format!("encoding the DeleteResponse: {e}")))?;
    let mut out = std::io::stdout();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(ShimError::io("printing the DeleteResponse"))
}
