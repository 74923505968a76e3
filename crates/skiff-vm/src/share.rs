//! What a container needs from the host, put where the guest sees it: the
//! sandbox's virtio-fs share (`<sandbox>/shared`, the guest's
//! GUEST_SHARE_DIR). One implementation for the shim and the engine.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use serde_json::Value;
use skiff_agent_api::GUEST_SHARE_DIR;

use crate::error::VmError;

/// Where a container's rootfs goes in the share, relative to it (the
/// agent's CreateContainerRequest.rootfs_share_path).
pub fn rootfs_path(id: &str) -> String {
    format!("{id}/rootfs")
}

/// Binds `source` (a directory, recursively) at `<shared>/<id>/rootfs`;
/// the mount point.
pub fn bind_rootfs(shared: &Path, id: &str, source: &Path) -> Result<PathBuf, VmError> {
    let target = shared.join(rootfs_path(id));
    std::fs::create_dir_all(&target).map_err(VmError::path("creating", &target))?;
    bind(source, &target).map_err(VmError::path("binding the rootfs at", &target))?;
    Ok(target)
}

fn bind(source: &Path, target: &Path) -> std::io::Result<()> {
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(std::io::Error::from)
}

/// config.json's bind mounts whose source is on the host, made visible in
/// the guest: each bound at `<shared>/<id>/mounts/<n>` and its source
/// rewritten to where the guest sees that. The mount points made; none
/// left behind on an error.
pub fn share_bind_mounts(
    shared: &Path,
    id: &str,
    spec: &mut Value,
) -> Result<Vec<PathBuf>, VmError> {
    let mut made = Vec::new();
    let Some(list) = spec["mounts"].as_array_mut() else {
        return Ok(made);
    };
    for (n, m) in list.iter_mut().enumerate() {
        let options: Vec<&str> = m["options"]
            .as_array()
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let is_bind = m["type"] == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
        let Some(source) = m["source"].as_str().map(PathBuf::from) else {
            continue;
        };
        if !is_bind || !source.is_absolute() {
            continue;
        }
        let meta = std::fs::metadata(&source).map_err(|e| {
            unmount_all(&made);
            VmError::InvalidConfig(format!("mounts[{n}].source {}: {e}", source.display()))
        })?;
        let relative = format!("{id}/mounts/{n}");
        let target = shared.join(&relative);
        let prepared = if meta.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            std::fs::create_dir_all(shared.join(id).join("mounts"))
                .and_then(|()| std::fs::File::create(&target).map(drop))
        };
        if let Err(e) = prepared.and_then(|()| bind(&source, &target)) {
            unmount_all(&made);
            return Err(VmError::Path {
                step: "sharing a bind mount's source with the VM at",
                path: target,
                source: e,
            });
        }
        made.push(target);
        m["source"] = Value::from(format!("{GUEST_SHARE_DIR}/{relative}"));
    }
    Ok(made)
}

/// Lazily unmounts mounts we made, the last first (each as often as it
/// is stacked).
pub fn unmount_all(points: &[PathBuf]) {
    for p in points.iter().rev() {
        for _ in 0..16 {
            if nix::mount::umount2(p, MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bind_source_is_refused_naming_the_mount() {
        let dir = std::env::temp_dir().join(format!("skiff-vm-share-{}", std::process::id()));
        let mut spec = serde_json::json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/x", "type": "bind", "source": "/nonexistent/skiff-vm-test", "options": ["rbind"]},
        ]});
        let e = share_bind_mounts(&dir, "c1", &mut spec).unwrap_err();
        assert!(e.to_string().contains("mounts[1].source"), "{e}");
        assert_eq!(spec["mounts"][0]["source"], "proc");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
