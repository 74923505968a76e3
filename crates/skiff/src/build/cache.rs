//! The layer cache, a table of the store's database (`build_cache`, with
//! `build_layers` naming the layers each row holds, so `collect` keeps
//! them until `image prune --build-cache`). A step's key is a digest of
//! its parent (the stage's config so far, which names every layer by diff
//! id and every step by its history) and of the step as it ran (its text
//! after ARG and ENV substitution, its heredocs, the digests of the files
//! it read, the build args RUN sees); its value is the stage's config and
//! layers after it.

use skiff_image::manifest::Descriptor;
use skiff_image::store::Store;
use skiff_image::{Error, Result};

/// A stage's image so far: its config and its layers' descriptors.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub config: Vec<u8>,
    pub layers: Vec<Descriptor>,
}

/// The key of a step: its parent's config and the step's own parts.
pub fn key(parent_config: &[u8], parts: &[&str]) -> String {
    let mut text = skiff_image::digest::of(parent_config);
    for p in parts {
        text.push('\n');
        text.push_str(&p.replace('\\', "\\\\").replace('\n', "\\n"));
    }
    skiff_image::digest::of(text.as_bytes())
}

pub fn get(store: &Store, key: &str) -> Result<Option<Snapshot>> {
    let Some((config, layers)) = store.build_cache_get(key)? else {
        return Ok(None);
    };
    // A row this program cannot read is a miss, not an error.
    Ok(serde_json::from_str(&layers)
        .ok()
        .map(|layers| Snapshot { config, layers }))
}

pub fn put(store: &mut Store, key: &str, s: &Snapshot, chain_ids: &[String]) -> Result<()> {
    let json = serde_json::to_string(&s.layers)
        .map_err(|e| Error::invalid(format!("build cache: {e}")))?;
    let held: Vec<(String, String)> = chain_ids
        .iter()
        .cloned()
        .zip(s.layers.iter().map(|l| l.digest.clone()))
        .collect();
    store.build_cache_put(key, &s.config, &json, &held)
}
