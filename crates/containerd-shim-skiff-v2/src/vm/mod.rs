//! The VM tier (docs/vm.md): `containerd-shim-skiff-vm-v2` (main_vm.rs;
//! containerd's runtime `io.containerd.skiff-vm.v2`) serves the same Task
//! API, but each task runs in its own VM (crates/skiff-vm), created by
//! skiff-agent inside it.
//!
//! Tasks that `start` groups into one server (a pod) share one VM. A task's
//! life: Create boots the pod's VM if it has none, puts the task's rootfs
//! and host bind mounts where the guest sees them (`rootfs.rs`: the
//! sandbox's virtio-fs share, or a disk without virtiofsd) and asks the
//! agent to create the container (`service.rs`); Start starts it and a
//! waiter thread per process (WaitProcess, the output copied to its end by
//! `stdio.rs`, the exit recorded and published); Delete removes the
//! container, and with the pod's last task the VM and its helpers.
//!
//! Not yet (refused as not supported): checkpoint; a second task in a VM
//! booted without virtiofsd.

mod rootfs;
mod service;
mod stdio;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::ttrpc::Server;

use crate::args::Args;
use crate::error::ShimError;
use crate::events::Publisher;
use crate::mounts;
use service::{Api, VmService};

type Result<T> = std::result::Result<T, ShimError>;

/// The disk's serial, how the agent finds the rootfs.
const ROOTFS_SERIAL: &str = "rootfs";

/// The sandbox directory's name for a group: the group itself when short,
/// else a hash of it (a CRI sandbox id is 64 characters, and the helpers'
/// unix socket paths inside the directory must stay within sun_path).
pub fn sandbox_name(group: &str) -> String {
    if group.len() <= 24 {
        group.to_string()
    } else {
        format!("{:016x}", skiff_runtime::fnv::hash64(group.as_bytes()))
    }
}

/// Where the tier keeps its sandboxes (state, sockets, serial logs) and
/// disk images, per namespace.
pub fn state_root(namespace: &str) -> PathBuf {
    PathBuf::from(format!("/run/containerd/skiff-vm/{namespace}"))
}

/// `serve` for the VM tier: the Task API on `listener` until Shutdown; on
/// the way out, whatever VM is left is taken down.
pub fn serve(args: &Args, listener: i32) -> Result<()> {
    // Not inherited by qemu and the helpers: a listener they held would
    // keep answering connections after this server died, and the delete
    // action would take the pod for alive.
    nix::fcntl::fcntl(
        listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| ShimError::io("marking the listening socket close-on-exec")(e.into()))?;
    let (shutdown_tx, shutdown_rx) = mpsc::channel();
    // SIGTERM (an operator's, systemd stopping containerd's unit) takes the
    // VM down as Shutdown would: blocked here, before any thread exists,
    // so that only the waiting thread takes it. (Children start with an
    // empty mask: std's spawn resets it.)
    let mut term = nix::sys::signal::SigSet::empty();
    term.add(nix::sys::signal::Signal::SIGTERM);
    term.thread_block()
        .map_err(|e| ShimError::io("blocking SIGTERM")(e.into()))?;
    let on_term = shutdown_tx.clone();
    std::thread::spawn(move || {
        if term.wait().is_ok() {
            let _ = on_term.send(());
        }
    });
    let events = Publisher::start(args.namespace.clone(), std::env::var("TTRPC_ADDRESS").ok());
    let service = Arc::new(VmService::new(args.namespace.clone(), events, shutdown_tx));
    let methods = crate::server::task_methods(Arc::new(Api(service.clone())));
    let socket_path = crate::server::socket_path(listener);
    // Waits block a worker each (one per process, plus stdio copiers on
    // the agent side): room for them.
    let mut server = Server::new()
        .add_listener(listener)?
        .register_service(methods)
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(16);
    if let Err(e) = server.start() {
        if let Some(path) = &socket_path {
            let _ = std::fs::remove_file(path);
        }
        return Err(e.into());
    }
    let _ = shutdown_rx.recv();
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    service.take_down(Duration::from_secs(2));
    let _ = std::fs::remove_dir(state_root(&args.namespace));
    std::thread::sleep(Duration::from_millis(20));
    std::process::exit(0)
}

/// `delete` for the VM tier, after containerd lost the shim: what is left
/// of the task's VM (the pod's: named by its group, as `start` groups) is
/// killed, the task's rootfs in the share unmounted and the state removed.
/// Only when the pod's server is gone: containerd also runs this after a
/// pod's task was deleted normally, while the server and the VM go on
/// serving the pod's other tasks.
pub fn cleanup(args: &Args) {
    let root = state_root(&args.namespace);
    let bundle = args
        .bundle
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let group = crate::start::group_id(&bundle).unwrap_or_else(|| args.id.clone());
    let socket = crate::start::socket_path(&args.address, &args.namespace, &group);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return;
    }
    let group = sandbox_name(&group);
    let sandbox = root.join(&group);
    mounts::unmount_rootfs(&sandbox.join("shared").join(&args.id).join("rootfs"));
    skiff_vm::reap_leftovers(&sandbox);
    let _ = std::fs::remove_file(root.join(format!("{group}.rootfs.ext4")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_group_ids_get_short_stable_sandbox_names() {
        assert_eq!(sandbox_name("vm-pod"), "vm-pod");
        let cri = "6151db39edce95875ed5c809664a939ab97ea23607c15890917567f30526e34c";
        assert_eq!(sandbox_name(cri).len(), 16);
        assert_eq!(sandbox_name(cri), sandbox_name(cri));
        assert_ne!(sandbox_name(cri), sandbox_name(&cri.replace('6', "7")));
    }
}
