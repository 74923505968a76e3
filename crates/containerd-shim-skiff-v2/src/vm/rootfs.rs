//! A task's rootfs and host bind mounts where the guest sees them: in the
//! sandbox's virtio-fs share, or copied onto a disk.

use std::path::{Path, PathBuf};

use containerd_shim_protos::api::CreateTaskRequest;
use containerd_shim_protos::ttrpc::Code;
use serde_json::Value;

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
    if req.rootfs.is_empty() {
        return skiff_vm::share::bind_rootfs(shared, id, host_root).map_err(vm_error);
    }
    let target = shared.join(skiff_vm::share::rootfs_path(id));
    std::fs::create_dir_all(&target)
        .map_err(ShimError::io(format!("creating {}", target.display())))?;
    mounts::mount_rootfs(&req.rootfs, &target)?;
    Ok(target)
}

/// config.json's bind mounts from the host, shared with the guest
/// (skiff_vm::share).
pub(super) fn share_bind_mounts(shared: &Path, id: &str, spec: &mut Value) -> Result<Vec<PathBuf>> {
    skiff_vm::share::share_bind_mounts(shared, id, spec).map_err(vm_error)
}

pub(super) use skiff_vm::share::unmount_all;

/// The VM library's error as the Task API's: bad input is the caller's.
pub(super) fn vm_error(e: skiff_vm::VmError) -> ShimError {
    let code = match &e {
        skiff_vm::VmError::InvalidConfig(_) => Code::INVALID_ARGUMENT,
        skiff_vm::VmError::Missing(_) => Code::FAILED_PRECONDITION,
        _ => Code::INTERNAL,
    };
    ShimError::status(code, e.to_string())
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
