//! The task's root filesystem as containerd hands it over: snapshot mounts
//! (overlay, bind) in the Create request, which the shim mounts onto
//! `<bundle>/rootfs` before the container is created and unmounts at delete.
//! `ctr run --rootfs DIR` sends none: config.json's root.path is used as is.

use std::path::Path;

use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use skiff::rootfs::MountOptions;

use crate::error::ShimError;

/// Mounts each snapshot mount onto `target`, in order; on failure, what was
/// mounted is unmounted again.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<(), ShimError> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), ShimError> {
    let opts = MountOptions::parse(&m.options);
    let mut flags = opts.flags;
    let fstype = match m.type_.as_str() {
        "bind" | "rbind" => {
            flags |= MsFlags::MS_BIND;
            if m.type_ == "rbind" {
                flags |= MsFlags::MS_REC;
            }
            None
        }
        t => Some(t),
    };
    let data = opts.data.join(",");
    let step = || {
        format!(
            "mounting the rootfs ({} {} on {})",
            m.type_,
            m.source,
            target.display()
        )
    };
    mount(
        Some(m.source.as_str()),
        target,
        fstype,
        if fstype.is_some() {
            flags
        } else {
            flags & !MsFlags::MS_RDONLY
        },
        (!data.is_empty()).then_some(data.as_str()),
    )
    .map_err(|e| ShimError::io(step())(e.into()))?;
    // A bind mount takes read-only only from a remount.
    if fstype.is_none() && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| ShimError::io(step())(e.into()))?;
    }
    Ok(())
}

/// Unmounts everything stacked on `target`.
pub fn unmount_rootfs(target: &Path) {
    for _ in 0..16 {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}
