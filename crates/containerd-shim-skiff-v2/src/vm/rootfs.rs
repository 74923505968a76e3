//! A task's rootfs and host bind mounts where the guest sees them: in the
//! sandbox's virtio-fs share, or copied onto a disk.

use std::path::{Path, PathBuf};

use containerd_shim_protos::api::CreateTaskRequest;
use containerd_shim_protos::ttrpc::Code;
use serde_json::Value;
use skiff_vm::GUEST_SHARE_DIR;

use super::Result;
use crate::error::ShimError;
use crate::mounts;

/// The task's rootfs at `<shared>/<id>/rootfs`: the snapshot's mounts
/// mounted there, or config.json's root bound there. The mount point.
pub(super) fn place_in_share(
    shared: &Path,
    id: &str,
    req: &CreateTaskRequest,
    host_root: &Path,
) -> Result<PathBuf> {
    let target = shared.join(id).join("rootfs");
    std::fs::create_dir_all(&target)
        .map_err(ShimError::io(format!("creating {}", target.display())))?;
    if req.rootfs.is_empty() {
        nix::mount::mount(
            Some(host_root),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            ShimError::io(format!(
                "binding {} to {}",
                host_root.display(),
                target.display()
            ))(e.into())
        })?;
    } else {
        mounts::mount_rootfs(&req.rootfs, &target)?;
    }
    Ok(target)
}

/// config.json's bind mounts whose source is on the host, made visible in
/// the guest: each bound at `<shared>/<id>/mounts/<n>` and its source
/// rewritten to where the guest sees that. The mount points made.
pub(super) fn share_bind_mounts(shared: &Path, id: &str, spec: &mut Value) -> Result<Vec<PathBuf>> {
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
            ShimError::status(
                Code::INVALID_ARGUMENT,
                format!("mounts[{n}].source {}: {e}", source.display()),
            )
        })?;
        let relative = format!("{id}/mounts/{n}");
        let target = shared.join(&relative);
        let prepared = if meta.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            std::fs::create_dir_all(shared.join(id).join("mounts"))
                .and_then(|()| std::fs::File::create(&target).map(drop))
        };
        let bound = prepared.and_then(|()| {
            nix::mount::mount(
                Some(&source),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(std::io::Error::from)
        });
        if let Err(e) = bound {
            unmount_all(&made);
            return Err(ShimError::io(format!(
                "sharing mounts[{n}].source {} with the VM",
                source.display()
            ))(e));
        }
        made.push(target);
        m["source"] = Value::from(format!("{GUEST_SHARE_DIR}/{relative}"));
    }
    Ok(made)
}

/// Lazily unmounts mounts we made, the last first.
pub(super) fn unmount_all(points: &[PathBuf]) {
    for p in points.iter().rev() {
        mounts::unmount_rootfs(p);
    }
}

/// The task's rootfs (the snapshot's mounts, mounted for the copy and
/// unmounted again, or config.json's root) as an ext4 disk at `image`.
pub(super) fn make_disk(req: &CreateTaskRequest, host_root: &Path, image: &Path) -> Result<()> {
    let bundle = Path::new(&req.bundle);
    let root = if req.rootfs.is_empty() {
        host_root.to_path_buf()
    } else {
        let target = bundle.join("rootfs");
        std::fs::create_dir_all(&target)
            .map_err(ShimError::io(format!("creating {}", target.display())))?;
        mounts::mount_rootfs(&req.rootfs, &target)?;
        target
    };
    let made = skiff_vm::disk::ext4_from_dir(&root, image)
        .map_err(|e| ShimError::status(Code::INTERNAL, e.to_string()));
    if !req.rootfs.is_empty() {
        mounts::unmount_rootfs(&root);
    }
    made
}
