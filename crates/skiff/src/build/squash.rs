//! `--squash-all`: the final image's root filesystem as one layer. The
//! image is mounted (an overlay of its layers: whiteouts already applied,
//! overlay's markers hidden) and that tree written as a layer with no
//! parent; its config then names that layer alone.

use serde_json::json;
use skiff_image::store::remove_tree;
use skiff_image::Result;

use super::{Builder, Stage};

/// Makes `stage` one layer. History is kept whole, every entry marked
/// `empty_layer` but the last, which holds the layer (Podman's last entry
/// does; Podman also drops the base's entries, kept here), so history and
/// diff ids still line up.
pub fn squash_all(b: &mut Builder, stage: &mut Stage) -> Result<()> {
    let image = b.materialize(&stage.config_bytes(), &stage.layers)?;
    let dir = b.store.scratch("squash")?;
    let merged = dir.join("merged");
    let made = skiff_image::mount::mount_at(b.store, &image, &dir, &merged)
        .and_then(|_| skiff_image::assemble::layer_from_dir(b.store, &merged, None));
    let unmounted = skiff_image::mount::unmount_at(&merged);
    // Never a tree removed through a mount still there.
    if unmounted.is_ok() {
        let _ = remove_tree(&dir);
    }
    let layer = made?;
    unmounted?;
    stage.config["rootfs"] = json!({"type": "layers", "diff_ids": [layer.diff_id]});
    stage.layers = vec![layer.descriptor];
    if let Some(h) = stage.config["history"].as_array_mut() {
        let last = h.len().saturating_sub(1);
        for (n, entry) in h.iter_mut().enumerate() {
            if let Some(e) = entry.as_object_mut() {
                match n == last {
                    true => e.remove("empty_layer"),
                    false => e.insert("empty_layer".into(), json!(true)),
                };
            }
        }
    }
    Ok(())
}
