//! The task's root filesystem as containerd hands it over: snapshot mounts
//! (overlay, bind) in the Create request, which the shim mounts onto
//! `<bundle>/rootfs` before the container is created and unmounts at delete.
//! `ctr run --rootfs DIR` sends none: config.json's root.path is used as is.
//!
//! For a pod with a user namespace of its own (Kubernetes' hostUsers: false),
//! containerd 2.x adds `uidmap=` and `gidmap=` options: the image's files are
//! then seen through idmapped mounts, as containerd's own mount code does it
//! (for overlay, the lower layers are idmapped and the overlay built on them;
//! for a bind, the mount itself).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use skiff_runtime::oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use skiff_runtime::rootfs::MountOptions;

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
    let step = |what: &str| {
        format!(
            "mounting the rootfs ({} {} on {}): {what}",
            m.type_,
            m.source,
            target.display()
        )
    };
    let (options, idmap) = split_idmap(&m.options).map_err(|e| invalid(step(&e)))?;
    let userns = idmap
        .map(|(uid, gid)| skiff_runtime::rootfs::idmap::userns_with(&uid, &gid))
        .transpose()
        .map_err(ShimError::io(step("a user namespace for uidmap/gidmap")))?;
    let overlay = m.type_ == "overlay";
    // Overlay: the lower layers are idmapped, seen through a temporary mount
    // beside the target, which the overlay keeps (it holds private clones of
    // its layers) after the temporary mount is gone.
    let lower = match (&userns, overlay) {
        (Some(ns), true) => Some(IdmappedLower::mount(&options, ns.as_fd(), target).map_err(
            |e| match e {
                LowerError::Options(why) => invalid(step(&why)),
                LowerError::Io(what, e) => ShimError::io(step(what))(e),
            },
        )?),
        _ => None,
    };
    let options = match &lower {
        Some(l) => l.options.clone(),
        None => options,
    };
    let opts = MountOptions::parse(&options);
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
    .map_err(|e| ShimError::io(step("mount"))(e.into()))?;
    drop(lower);
    // A bind mount takes read-only only from a remount.
    if fstype.is_none() && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| ShimError::io(step("read-only remount"))(e.into()))?;
    }
    // Any other mount: idmapped as a whole, a clone stacked on itself.
    if let (Some(ns), false) = (&userns, overlay) {
        let idmapped = (|| {
            let tree =
                skiff_runtime::sys::open_tree_clone(target, flags.contains(MsFlags::MS_REC))?;
            skiff_runtime::sys::set_idmap(
                tree.as_fd(),
                ns.as_fd(),
                flags.contains(MsFlags::MS_REC),
            )?;
            let dir = std::fs::File::open(target)?;
            skiff_runtime::sys::move_mount_to(tree.as_fd(), dir.as_fd())
        })();
        if let Err(e) = idmapped {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(ShimError::io(step("idmapping the mount"))(e));
        }
    }
    Ok(())
}

fn invalid(message: String) -> ShimError {
    ShimError::status(
        containerd_shim_protos::ttrpc::Code::INVALID_ARGUMENT,
        message,
    )
}

type Maps = (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>);

/// The options without `uidmap=`/`gidmap=`, and those maps (both or neither;
/// containerd's `container-id:host-id:size[,...]`). containerd's internal
/// `X-containerd.*` options must not reach a mount: refused, as containerd's
/// own mount code refuses them.
fn split_idmap(options: &[String]) -> Result<(Vec<String>, Option<Maps>), String> {
    let (mut uid, mut gid, mut rest) = (None, None, Vec::with_capacity(options.len()));
    for o in options {
        if let Some(v) = o.strip_prefix("uidmap=") {
            uid = Some(parse_maps("uidmap", v)?);
        } else if let Some(v) = o.strip_prefix("gidmap=") {
            gid = Some(parse_maps("gidmap", v)?);
        } else if o.starts_with("X-containerd.") {
            return Err(format!(
                "option {o:?} is containerd's own, not a mount option"
            ));
        } else {
            rest.push(o.clone());
        }
    }
    match (uid, gid) {
        (Some(u), Some(g)) => Ok((rest, Some((u, g)))),
        (None, None) => Ok((rest, None)),
        _ => Err("uidmap and gidmap must come together".into()),
    }
}

fn parse_maps(name: &str, value: &str) -> Result<Vec<LinuxIdMapping>, String> {
    value
        .split(',')
        .map(|one| {
            let bad = || format!("{name}={value}: {one:?} is not container-id:host-id:size");
            let n: Vec<u32> = one
                .split(':')
                .map(|p| p.parse().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            let [container, host, size] = n[..] else {
                return Err(bad());
            };
            LinuxIdMappingBuilder::default()
                .container_id(container)
                .host_id(host)
                .size(size)
                .build()
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect()
}

enum LowerError {
    Options(String),
    Io(&'static str, std::io::Error),
}

/// The overlay's lower layers seen through one idmapped, read-only mount of
/// their common parent directory, at `<target>.idmapped`; unmounted and
/// removed on drop.
struct IdmappedLower {
    dir: PathBuf,
    options: Vec<String>,
}

impl IdmappedLower {
    fn mount(
        options: &[String],
        userns: std::os::fd::BorrowedFd<'_>,
        target: &Path,
    ) -> Result<IdmappedLower, LowerError> {
        const MOUNT_ATTR_RDONLY: u64 = 0x1;
        let at = options
            .iter()
            .position(|o| o.starts_with("lowerdir="))
            .ok_or_else(|| LowerError::Options("uidmap on an overlay without lowerdir".into()))?;
        let layers: Vec<&Path> = options[at]["lowerdir=".len()..]
            .split(':')
            .map(Path::new)
            .collect();
        let common = common_parent(&layers).ok_or_else(|| {
            LowerError::Options(format!(
                "the lower layers {:?} share no parent directory",
                options[at]
            ))
        })?;
        let mut dir = target.as_os_str().to_owned();
        dir.push(".idmapped");
        let dir = PathBuf::from(dir);
        std::fs::create_dir(&dir)
            .map_err(|e| LowerError::Io("a directory for the idmapped layers", e))?;
        let mut lower = IdmappedLower {
            dir,
            options: Vec::new(),
        };
        let attached = (|| {
            let tree = skiff_runtime::sys::open_tree_clone(&common, true)?;
            skiff_runtime::sys::mount_setattr(tree.as_fd(), true, MOUNT_ATTR_RDONLY, 0, None)?;
            skiff_runtime::sys::set_idmap(tree.as_fd(), userns, true)?;
            let at = std::fs::File::open(&lower.dir)?;
            skiff_runtime::sys::move_mount_to(tree.as_fd(), at.as_fd())
        })();
        attached.map_err(|e| LowerError::Io("idmapping the lower layers", e))?;
        let remapped: Vec<String> = layers
            .iter()
            .map(|l| {
                let rel = l.strip_prefix(&common).unwrap_or(l);
                lower.dir.join(rel).display().to_string()
            })
            .collect();
        lower.options = options.to_vec();
        lower.options[at] = format!("lowerdir={}", remapped.join(":"));
        Ok(lower)
    }
}

impl Drop for IdmappedLower {
    fn drop(&mut self) {
        let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The deepest directory every layer lies under (never `/`).
fn common_parent(layers: &[&Path]) -> Option<PathBuf> {
    let first = layers.first()?.parent()?;
    let common = first
        .ancestors()
        .find(|a| layers.iter().all(|l| l.starts_with(a)))?;
    (common.components().count() > 1).then(|| common.to_path_buf())
}

/// Unmounts everything stacked on `target`.
pub fn unmount_rootfs(target: &Path) {
    for _ in 0..16 {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_options_are_taken_out_and_checked() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (rest, maps) = split_idmap(&o(&[
            "ro",
            "uidmap=0:1000:10,10:5000:1",
            "gidmap=0:2000:10",
        ]))
        .unwrap();
        assert_eq!(rest, o(&["ro"]));
        let (uid, gid) = maps.unwrap();
        assert_eq!(
            (uid[1].container_id(), uid[1].host_id(), uid[1].size()),
            (10, 5000, 1)
        );
        assert_eq!(gid[0].host_id(), 2000);
        assert!(split_idmap(&o(&["uidmap=0:1:2"]))
            .unwrap_err()
            .contains("together"));
        assert!(split_idmap(&o(&["uidmap=0:1", "gidmap=0:1:2"]))
            .unwrap_err()
            .contains("uidmap=0:1"));
        assert!(split_idmap(&o(&["X-containerd.mkdir.path=/x"]))
            .unwrap_err()
            .contains("X-containerd"));
        assert_eq!(split_idmap(&o(&["rw"])).unwrap(), (o(&["rw"]), None));
    }

    #[test]
    fn layers_share_their_deepest_parent() {
        let p = |v: &[&str]| common_parent(&v.iter().map(Path::new).collect::<Vec<_>>());
        assert_eq!(
            p(&["/s/snapshots/1/fs", "/s/snapshots/12/fs"]),
            Some("/s/snapshots".into())
        );
        assert_eq!(p(&["/s/snapshots/1/fs"]), Some("/s/snapshots/1".into()));
        assert_eq!(p(&["/a/x", "/b/y"]), None);
    }
}
