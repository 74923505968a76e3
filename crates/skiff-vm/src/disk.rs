//! A container's rootfs as a raw ext4 image (mkfs.ext4 -d copies the
//! directory in), attached to the guest with virtio-blk.

use std::path::Path;
use std::process::Command;

use crate::error::VmError;

/// Room beyond the files: ext4's metadata and what the container writes.
const HEADROOM: u64 = 64 << 20;

/// Writes an ext4 image at `image` holding `dir`'s tree.
pub fn ext4_from_dir(dir: &Path, image: &Path) -> Result<(), VmError> {
    let size = tree_size(dir)?;
    let bytes = (size + size / 4 + HEADROOM).div_ceil(1 << 20) << 20;
    let file = std::fs::File::create(image).map_err(VmError::path("creating", image))?;
    file.set_len(bytes)
        .map_err(VmError::path("sizing", image))?;
    drop(file);
    // No journal: the image lives as long as the container, and a crash
    // loses it anyway. Inodes: one per 8 KiB, plenty for image layers.
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-O", "^has_journal", "-i", "8192", "-d"])
        .arg(dir)
        .arg(image)
        .output()
        .map_err(|source| VmError::Spawn {
            program: "mkfs.ext4".into(),
            source,
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(image);
        return Err(VmError::InvalidConfig(format!(
            "mkfs.ext4 -d {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Bytes of files plus a block per entry, without following symlinks.
fn tree_size(dir: &Path) -> Result<u64, VmError> {
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(VmError::path("listing", &d))?;
        for entry in entries {
            let entry = entry.map_err(VmError::path("listing", &d))?;
            let meta = entry
                .metadata()
                .map_err(VmError::path("reading", entry.path()))?;
            total += 4096 + if meta.is_file() { meta.len() } else { 0 };
            if meta.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    Ok(total)
}
