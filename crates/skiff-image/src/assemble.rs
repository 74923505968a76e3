//! Images made a step at a time (`skiff build`): a layer from a directory
//! in overlay form, and an image recorded from a config and its layers'
//! descriptors, every blob and layer of which the store already holds.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use crate::commit::{write_gzip_layer, GzipLayer};
use crate::digest::{chain_id, hex_of};
use crate::error::{Context, Result};
use crate::manifest::{self, Descriptor, Manifest};
use crate::reference::Reference;
use crate::store::{remove_tree, NewImage, Store};
use crate::unpack;

/// A layer the store now holds: its blob's descriptor and its diff id.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub descriptor: Descriptor,
    pub diff_id: String,
}

/// Makes a layer of the tree under `dir` (whiteouts as 0:0 devices, as an
/// overlay upper dir holds them) on the layer with chain id `parent`:
/// its gzip blob in blobs/ and its tree unpacked under layers/.
pub fn layer_from_dir(store: &Store, dir: &Path, parent: Option<&str>) -> Result<NewLayer> {
    let scratch = store.scratch("layer-blob")?;
    let made = (|| -> Result<NewLayer> {
        let gz_path = scratch.join("layer.gz");
        let GzipLayer {
            diff_id,
            digest,
            size,
        } = write_gzip_layer(dir, None, &gz_path)?;
        if !store.has_blob(&digest)? {
            store.commit_blob(&gz_path, &digest, manifest::OCI_LAYER_GZIP, size)?;
        }
        let chain = chain_id(parent, &diff_id);
        let _lock = store.lock(&format!("layer-{}", hex_of(&chain)?))?;
        if !store.has_layer(&chain)? {
            unpack_blob(store, &digest, &chain, &diff_id, parent)?;
        }
        Ok(NewLayer {
            descriptor: Descriptor {
                media_type: manifest::OCI_LAYER_GZIP.into(),
                digest,
                size,
                platform: None,
                annotations: None,
            },
            diff_id,
        })
    })();
    let _ = remove_tree(&scratch);
    made
}

/// Unpacks a gzip layer blob of the store as the layer `chain`.
fn unpack_blob(
    store: &Store,
    digest: &str,
    chain: &str,
    diff_id: &str,
    parent: Option<&str>,
) -> Result<()> {
    let staged = store.scratch("layer")?;
    let diff = staged.join("diff");
    let r = std::fs::create_dir(&diff)
        .ctx(|| format!("making {}", diff.display()))
        .and_then(|_| {
            let f =
                File::open(store.blob_path(digest)?).ctx(|| format!("opening blob {digest}"))?;
            unpack::unpack(
                f,
                manifest::Compression::Gzip,
                &diff,
                unpack::Options::for_this_process(),
            )
        });
    match r {
        Ok(u) if u.diff_id == diff_id => {
            store.commit_layer(&staged, chain, diff_id, parent, u.size)
        }
        Ok(u) => {
            let _ = remove_tree(&staged);
            Err(crate::Error::Digest {
                what: format!("layer {digest} unpacked"),
                expected: diff_id.to_string(),
                actual: u.diff_id,
            })
        }
        Err(e) => {
            let _ = remove_tree(&staged);
            Err(e)
        }
    }
}

/// The OCI media type of a layer blob's descriptor (a Docker one's bytes
/// are the same format).
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        manifest::DOCKER_LAYER_GZIP => manifest::OCI_LAYER_GZIP.into(),
        manifest::DOCKER_LAYER => manifest::OCI_LAYER.into(),
        other => other.into(),
    }
}

/// Records an OCI image of `config` (its rootfs.diff_ids one per layer of
/// `layers`, all of whose blobs and unpacked layers the store holds) under
/// `names`; its id (the config's digest). With `annotations` (a build's
/// `--annotation`s) its manifest carries them, and replaces the manifest
/// of an image of the same config the store already holds (the image is
/// the config; its last build says what the manifest holds); without,
/// such an image keeps the manifest it has (a pulled base's stays as
/// pulled).
pub fn put_image(
    store: &mut Store,
    config: &[u8],
    layers: &[Descriptor],
    names: &[Reference],
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<String> {
    let parsed = manifest::parse_config(config)?;
    if parsed.rootfs.diff_ids.len() != layers.len() {
        return Err(crate::Error::invalid(format!(
            "image config: {} diff ids for {} layers",
            parsed.rootfs.diff_ids.len(),
            layers.len()
        )));
    }
    let mut chains: Vec<(String, String)> = vec![];
    for (d, diff_id) in layers.iter().zip(&parsed.rootfs.diff_ids) {
        let chain = chain_id(chains.last().map(|(c, _)| c.as_str()), diff_id);
        chains.push((chain, d.digest.clone()));
    }
    let config_digest = store.write_blob(config, manifest::OCI_CONFIG)?;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(manifest::OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: manifest::OCI_CONFIG.into(),
            digest: config_digest.clone(),
            size: config.len() as u64,
            platform: None,
            annotations: None,
        },
        layers: layers
            .iter()
            .map(|d| Descriptor {
                media_type: oci_layer_type(&d.media_type),
                ..d.clone()
            })
            .collect(),
        annotations: annotations.map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect()
        }),
    };
    let mb = serde_json::to_vec(&m).unwrap_or_default();
    let manifest_digest = crate::digest::of(&mb);
    if annotations.is_some() {
        if let Ok(old) = store.image(&config_digest) {
            if old.manifest != mb {
                store.replace_manifest(
                    &config_digest,
                    &manifest_digest,
                    manifest::OCI_MANIFEST,
                    &mb,
                )?;
            }
        }
    }
    store.put_image(
        &NewImage {
            id: &config_digest,
            manifest_digest: &manifest_digest,
            manifest_type: manifest::OCI_MANIFEST,
            manifest: &mb,
            config,
            created: parsed.created.as_deref(),
            layers: &chains,
        },
        names,
    )?;
    Ok(config_digest)
}
