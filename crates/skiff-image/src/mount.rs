//! An image's layers as one tree: an overlay mount with the layers'
//! directories as its lower dirs (top first) and an upper and work dir of
//! its own under `mounts/NAME/`, as a container's rootfs is made.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::store::{remove_tree, Store};

/// The directories of one overlay.
pub struct Overlay {
    pub dir: PathBuf,
    pub merged: PathBuf,
}

/// The holder name an image mount is recorded under.
fn holder(name: &str) -> String {
    format!("mount:{name}")
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        || name.starts_with('.')
    {
        return Err(Error::invalid(format!(
            "mount name {name:?}: use letters, digits, '_', '.', '-' (not first)"
        )));
    }
    Ok(())
}

/// The lowerdir option for an image: its layers' diff dirs, top first.
pub fn lower_dirs(store: &Store, image_id: &str) -> Result<Vec<PathBuf>> {
    let mut dirs = vec![];
    for l in store.layers_of(image_id)?.iter().rev() {
        let d = store.layer_dir(&l.chain_id)?.join("diff");
        if !d.is_dir() {
            return Err(Error::invalid(format!(
                "layer {} of image {image_id} is missing from the store (skiff system check)",
                l.chain_id
            )));
        }
        dirs.push(d);
    }
    Ok(dirs)
}

/// Mounts the image's tree read-write (changes go to its own upper dir)
/// at `mounts/NAME/merged`.
pub fn mount(store: &mut Store, image_id: &str, name: &str) -> Result<Overlay> {
    check_name(name)?;
    let dir = store.root.join("mounts").join(name);
    if dir.exists() {
        return Err(Error::Refused(format!(
            "mount {name}: already exists ({})",
            dir.display()
        )));
    }
    let merged = dir.join("merged");
    if let Err(e) = mount_at(store, image_id, &dir, &merged) {
        let _ = remove_tree(&dir);
        return Err(e);
    }
    if let Err(e) = store.hold(&holder(name), image_id) {
        let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
        let _ = remove_tree(&dir);
        return Err(e);
    }
    Ok(Overlay { dir, merged })
}

/// Mounts an image's layers as an overlay at `target`, with `upper`,
/// `work` and (for an image without layers) `empty` made in `dir`.
pub fn mount_at(
    store: &Store,
    image_id: &str,
    dir: &std::path::Path,
    target: &std::path::Path,
) -> Result<()> {
    let lowers = lower_dirs(store, image_id)?;
    mount_layers(lowers, dir, target).map_err(|e| {
        Error::io(
            format!("mounting the overlay of {image_id} at {}", target.display()),
            e,
        )
    })
}

/// Mounts an overlay of `lowers` (top first; the layers of an image, or
/// idmapped views of them) at `target`, with `upper`, `work` and (for
/// no layers) `empty` made in `dir`.
pub fn mount_layers(
    mut lowers: Vec<PathBuf>,
    dir: &std::path::Path,
    target: &std::path::Path,
) -> std::io::Result<()> {
    for d in [
        dir.join("upper"),
        dir.join("work"),
        dir.join("empty"),
        target.to_path_buf(),
    ] {
        std::fs::create_dir_all(&d)?;
    }
    if lowers.is_empty() {
        lowers.push(dir.join("empty"));
    }
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    // In a user namespace, overlay keeps its markers in user.* xattrs
    // (the layers were unpacked so), and the kernel keeps redirects and
    // metacopy off there (it refuses the options). As root they are off
    // whatever the host's module defaults: a renamed directory or a
    // chmod'ed file must be whole in the upper dir, as a layer (commit,
    // diff, build) records it: a redirect xattr or a metadata-only copy
    // has no form in a tar layer.
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={},index=off{}",
        dir.join("upper").display(),
        dir.join("work").display(),
        if crate::rootless() {
            ",userxattr"
        } else {
            ",redirect_dir=off,metacopy=off"
        }
    );
    let data = std::ffi::CString::new(data).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "overlay options hold a NUL byte",
        )
    })?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(Into::into)
}

/// Unmounts what `mount_at` mounted (nothing mounted there: fine).
pub fn unmount_at(target: &std::path::Path) -> Result<()> {
    match rustix::mount::unmount(target, rustix::mount::UnmountFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH)
                .map_err(|e| Error::io(format!("unmounting {}", target.display()), e.into()))
        }
        Err(e) => Err(Error::io(
            format!("unmounting {}", target.display()),
            e.into(),
        )),
    }
}

/// Unmounts and removes an image mount.
pub fn unmount(store: &mut Store, name: &str) -> Result<()> {
    check_name(name)?;
    let dir = store.root.join("mounts").join(name);
    if !dir.exists() && !store.release(&holder(name))? {
        return Err(Error::invalid(format!("mount {name}: no such image mount")));
    }
    unmount_at(&dir.join("merged"))?;
    remove_tree(&dir)?;
    store.release(&holder(name))?;
    Ok(())
}
