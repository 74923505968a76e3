//! `start`: run in the task's bundle by containerd, which reads everything
//! this prints (stdout and stderr together) as the shim's address.
//!
//! 1. The grouping id: the pod's sandbox id for a Kubernetes container (one
//!    shim per pod), else the task id.
//! 2. The socket path follows from (containerd address, namespace, group):
//!    if a shim already serves it, reuse it.
//! 3. Otherwise bind the socket here, spawn `serve` with it as stdin (in its
//!    own process group, stdio away from containerd's pipes), write
//!    `<bundle>/address`, and print the bare `unix://` address, the form every
//!    containerd from 1.6 to 2.x accepts (JSON with version 3 breaks 1.6).
//!    If anything fails after the spawn, the server is killed again.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::Args;
use crate::error::ShimError;

/// Where runc's shim puts its sockets too; short enough for sun_path.
const SOCKET_DIR: &str = "/run/containerd/s";

/// Annotations that put a container into another's shim, in order.
const GROUP_ANNOTATIONS: &[&str] = &[
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

pub fn run(args: &Args) -> Result<(), ShimError> {
    let bundle = std::env::current_dir().map_err(ShimError::io("finding the bundle (cwd)"))?;
    let group = group_id(&bundle).unwrap_or_else(|| args.id.clone());
    let path = socket_path(&args.address, &args.namespace, &group);
    let address = format!("unix://{}", path.display());

    if UnixStream::connect(&path).is_ok() {
        write_address(&bundle, &address)?;
        return print(&address);
    }
    // A socket file nobody answers on is left from a dead shim.
    let _ = fs::remove_file(&path);
    fs::create_dir_all(SOCKET_DIR).map_err(ShimError::io(format!("creating {SOCKET_DIR}")))?;
    let listener =
        UnixListener::bind(&path).map_err(ShimError::io(format!("binding {}", path.display())))?;
    let exe = std::env::current_exe().map_err(ShimError::io("finding our own binary"))?;
    let mut cmd = Command::new(exe);
    skiff_runtime::process::with_clean_signals(&mut cmd);
    let spawned = cmd
        .args(args.to_argv("serve"))
        .current_dir(&bundle)
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(ShimError::io("starting the shim server"));
    let mut server = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    };
    if let Err(e) = write_address(&bundle, &address) {
        let _ = server.kill();
        let _ = server.wait();
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    print(&address)
}

fn print(address: &str) -> Result<(), ShimError> {
    let reply = bootstrap_reply(address, std::env::var("MAX_SHIM_VERSION").ok().as_deref());
    let mut out = std::io::stdout();
    out.write_all(reply.as_bytes())
        .and_then(|()| out.flush())
        .map_err(ShimError::io("printing the address"))
}

/// What `start` answers: containerd 1.7 and later say they read the
/// bootstrap JSON by setting MAX_SHIM_VERSION (2.3 tries its protobuf
/// form first, then this); 1.6 sets none and takes the bare address. The
/// version is 2, the Task API this shim serves (3 would be task v3).
fn bootstrap_reply(address: &str, max_version: Option<&str>) -> String {
    match max_version.and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(v) if v >= 2 => serde_json::json!({
            "version": 2,
            "address": address,
            "protocol": "ttrpc",
        })
        .to_string(),
        _ => address.to_string(),
    }
}

/// `<bundle>/address`, without a newline: containerd 1.6 reads it back
/// untrimmed when it restarts and reconnects.
fn write_address(bundle: &Path, address: &str) -> Result<(), ShimError> {
    let tmp = bundle.join(".address.tmp");
    fs::write(&tmp, address)
        .and_then(|()| fs::rename(&tmp, bundle.join("address")))
        .map_err(ShimError::io("writing <bundle>/address"))
}

/// The pod a container belongs to, from config.json's annotations.
pub fn group_id(bundle: &Path) -> Option<String> {
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).ok()?).ok()?;
    GROUP_ANNOTATIONS
        .iter()
        .find_map(|k| config["annotations"][k].as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A stable socket path per (containerd, namespace, group): FNV-1a, 64 bits.
pub fn socket_path(address: &str, namespace: &str, group: &str) -> PathBuf {
    let h = skiff_runtime::fnv::hash64(format!("{address}/{namespace}/{group}").as_bytes());
    PathBuf::from(format!("{SOCKET_DIR}/skiff-{h:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_fits_the_caller() {
        let a = "unix:///run/containerd/s/abc";
        assert_eq!(bootstrap_reply(a, None), a);
        assert_eq!(bootstrap_reply(a, Some("1")), a);
        let json: serde_json::Value = serde_json::from_str(&bootstrap_reply(a, Some("2"))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 2, "address": a, "protocol": "ttrpc"})
        );
    }

    #[test]
    fn socket_path_is_stable_and_distinct() {
        let a = socket_path("/run/containerd/containerd.sock", "k8s.io", "pod1");
        assert_eq!(
            a,
            socket_path("/run/containerd/containerd.sock", "k8s.io", "pod1")
        );
        assert_ne!(
            a,
            socket_path("/run/containerd/containerd.sock", "k8s.io", "pod2")
        );
        assert_ne!(
            a,
            socket_path("/run/containerd/containerd.sock", "default", "pod1")
        );
        assert!(a.as_os_str().len() < 100);
    }

    #[test]
    fn pod_containers_group_by_sandbox_id() {
        let dir = std::env::temp_dir().join(format!("skiff-shim-group-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("config.json"),
            r#"{"annotations": {"io.kubernetes.cri.sandbox-id": "pod-abc"}}"#,
        )
        .unwrap();
        assert_eq!(group_id(&dir).as_deref(), Some("pod-abc"));
        fs::write(dir.join("config.json"), r#"{"annotations": {}}"#).unwrap();
        assert_eq!(group_id(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
