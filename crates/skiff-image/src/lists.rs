//! Manifest lists made here (`manifest create/add/annotate/remove/push`,
//! Podman's): an OCI image index of images the store holds, kept as
//! `manifests/HEX.json` (HEX: the sha256 of the list's name) with the
//! name and each entry's image id beside the index. `push` sends every
//! image by digest, then the index.

use std::path::PathBuf;

use oci_client::RegistryOperation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Context, Error, Result};
use crate::manifest::{Descriptor, Platform, OCI_INDEX};
use crate::reference::Reference;
use crate::registry::{registry_error, Options, Registry};
use crate::store::{Image, Store};

/// A list as kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct List {
    /// Its name, whole (`localhost/list:latest`).
    pub name: String,
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub annotations: Map<String, Value>,
}

/// One image of a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The store's image (its config digest).
    pub image: String,
    pub descriptor: Descriptor,
}

fn path(store: &Store, name: &str) -> PathBuf {
    let key = crate::digest::of(name.as_bytes());
    store
        .root
        .join("manifests")
        .join(format!("{}.json", &key["sha256:".len()..]))
}

/// A list's name, whole, as `manifest create` was given it.
pub fn full_name(given: &str) -> Result<String> {
    Ok(Reference::parse_local(given)?.name())
}

impl List {
    /// The OCI image index of the list.
    pub fn index(&self) -> Value {
        let mut index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": self.entries.iter().map(|e| &e.descriptor).collect::<Vec<_>>(),
        });
        if !self.annotations.is_empty() {
            index["annotations"] = Value::Object(self.annotations.clone());
        }
        index
    }

    /// The index's bytes, as pushed and as its digest is taken of.
    pub fn index_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.index()).unwrap_or_default()
    }

    /// The index's digest.
    pub fn digest(&self) -> String {
        crate::digest::of(&self.index_bytes())
    }

    /// Adds `img` (or replaces the entry of the same manifest), for the
    /// platform its config names unless `platform` says otherwise.
    pub fn add(
        &mut self,
        img: &Image,
        platform: Option<Platform>,
        annotations: Map<String, Value>,
    ) -> Result<String> {
        let platform = match platform {
            Some(p) => p,
            None => {
                let c = crate::manifest::parse_config(&img.config)?;
                Platform {
                    os: c.os,
                    architecture: c.architecture,
                    variant: c.variant,
                }
            }
        };
        let descriptor = Descriptor {
            media_type: img.manifest_type.clone(),
            digest: img.manifest_digest.clone(),
            size: img.manifest.len() as u64,
            platform: Some(platform),
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        self.entries
            .retain(|e| e.descriptor.digest != img.manifest_digest);
        self.entries.push(Entry {
            image: img.id.clone(),
            descriptor,
        });
        Ok(img.manifest_digest.clone())
    }

    /// The entry of manifest `digest` (a prefix of its hex will do).
    pub fn entry_mut(&mut self, digest: &str) -> Result<&mut Entry> {
        let hex = digest.trim_start_matches("sha256:");
        let mut found = self
            .entries
            .iter_mut()
            .filter(|e| !hex.is_empty() && e.descriptor.digest["sha256:".len()..].starts_with(hex));
        match (found.next(), found.next()) {
            (Some(e), None) => Ok(e),
            (None, _) => Err(Error::invalid(format!(
                "{digest}: no such manifest in {}",
                self.name
            ))),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "{digest}: more than one manifest of {} starts so",
                self.name
            ))),
        }
    }
}

/// A new, empty list named `name` (refused if one is there, unless
/// `amend`: then that one).
pub fn create(store: &Store, name: &str, amend: bool) -> Result<List> {
    let name = full_name(name)?;
    if let Ok(l) = load(store, &name) {
        if amend {
            return Ok(l);
        }
        return Err(Error::Refused(format!(
            "{name}: a manifest list of that name exists (--amend adds to it)"
        )));
    }
    if store.find(&name).is_ok() {
        return Err(Error::Refused(format!("{name}: an image has that name")));
    }
    Ok(List {
        name,
        entries: vec![],
        annotations: Map::new(),
    })
}

pub fn load(store: &Store, name: &str) -> Result<List> {
    let name = full_name(name)?;
    let p = path(store, &name);
    let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::invalid(format!("{name}: no such manifest list")),
        _ => Error::at(&p, "reading", e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::invalid(format!("{}: {e}", p.display())))
}

pub fn save(store: &Store, list: &List) -> Result<()> {
    let p = path(store, &list.name);
    let dir = p.parent().expect("manifests/");
    std::fs::create_dir_all(dir).ctx(|| format!("making {}", dir.display()))?;
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(list).unwrap_or_default())
        .and_then(|()| std::fs::rename(&tmp, &p))
        .ctx(|| format!("writing {}", p.display()))
}

pub fn remove(store: &Store, name: &str) -> Result<String> {
    let list = load(store, name)?;
    let p = path(store, &list.name);
    std::fs::remove_file(&p).ctx(|| format!("removing {}", p.display()))?;
    Ok(list.name)
}

/// `manifest push`: each image to `dest`'s repository by its digest (its
/// blobs as `push` sends them), then the index under `dest`'s tag. The
/// index's digest.
pub fn push(
    store: &Store,
    list: &List,
    dest: &Reference,
    opts: &Options,
    note: &dyn Fn(&str),
) -> Result<String> {
    if dest.tag.is_none() {
        return Err(Error::invalid(format!(
            "{dest}: manifest push needs a tag to push to"
        )));
    }
    for e in &list.entries {
        let img = store.image(&e.image).map_err(|_| {
            Error::invalid(format!(
                "{}: its image {} is no longer in the store",
                list.name, e.descriptor.digest
            ))
        })?;
        let by_digest = Reference {
            tag: None,
            digest: Some(e.descriptor.digest.clone()),
            ..dest.clone()
        };
        crate::push::push(store, &img, &by_digest, opts, note)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx(|| "starting the network runtime".into())?;
    let bytes = list.index_bytes();
    rt.block_on(async {
        let reg = Registry::connect(dest, opts, RegistryOperation::Push).await?;
        let ct = http::HeaderValue::from_static(OCI_INDEX);
        reg.client
            .push_manifest_raw(&dest.client_ref(None), bytes, ct)
            .await
            .map_err(|e| registry_error(&dest.registry, e))
    })?;
    Ok(list.digest())
}
