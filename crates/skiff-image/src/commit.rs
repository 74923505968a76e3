//! `commit`: a container's changes (its overlay upper dir) as a new layer
//! on its image. Overlay's markers go back to the image format's: a 0:0
//! character device (a whiteout) becomes an empty `.wh.NAME`, a directory
//! marked opaque gets a `.wh..wh..opq` entry; hard links stay links,
//! xattrs go along as PAX records (but overlay's own).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

use crate::digest::{Hasher, HashingWriter};
use crate::error::{Context, Error, Result};
use crate::manifest::{self, Descriptor, Manifest};
use crate::reference::Reference;
use crate::store::{remove_tree, Store};

/// Whether overlay marked the directory opaque (its lowers hidden).
pub fn opaque(path: &Path) -> bool {
    let mut v = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| {
            rustix::fs::lgetxattr(path, *k, &mut v)
                .map(|n| &v[..n] == b"y")
                .unwrap_or(false)
        })
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
        return vec![];
    };
    let mut out = vec![];
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
            continue;
        }
        let mut v = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut v) {
            v.truncate(len);
            out.push((name, v));
        }
    }
    out
}

/// The header of an empty marker file (a whiteout, an opaque marker).
fn marker(mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h
}

/// A layer written as a gzip blob: the tar stream's digest (its diff id),
/// the blob's digest and size.
pub(crate) struct GzipLayer {
    pub diff_id: String,
    pub digest: String,
    pub size: u64,
}

/// How the owners of a tree's files on the host read in the layer: a
/// container in a user namespace of its own has its files under host ids
/// that are its ids shifted (None: as they are).
pub type Owners<'a> = Option<&'a dyn Fn(u64, u64) -> (u64, u64)>;

/// Writes the tree under `upper` as a gzip layer blob at `gz_path`,
/// hashing the tar stream and the blob as they are written.
pub(crate) fn write_gzip_layer(upper: &Path, owners: Owners, gz_path: &Path) -> Result<GzipLayer> {
    let file = File::create(gz_path).ctx(|| format!("writing {}", gz_path.display()))?;
    let blob = HashingWriter {
        inner: file,
        hasher: Hasher::default(),
    };
    let enc = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
    let tarw = HashingWriter {
        inner: enc,
        hasher: Hasher::default(),
    };
    let tarw = write_layer(upper, owners, tarw)?;
    let diff_id = tarw.hasher.finish();
    let blob = tarw.inner.finish().ctx(|| "compressing the layer".into())?;
    Ok(GzipLayer {
        diff_id,
        digest: blob.hasher.clone().finish(),
        size: blob.hasher.len,
    })
}

/// A directory's whole tree as a tar stream (no whiteouts in it: an
/// overlay's merged view shows none), each entry's owner read through
/// `owners`: `export` of a container in a user namespace of its own.
pub fn write_tree<W: Write>(dir: &Path, owners: Owners, out: W) -> Result<W> {
    write_layer(dir, owners, out)
}

/// Writes the tree under `upper` as a layer's tar stream.
fn write_layer<W: Write>(upper: &Path, owners: Owners, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = upper.join(&rel);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .ctx(|| format!("reading {}", dir.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names.into_iter().rev() {
            let relp = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = upper.join(&relp);
            let m =
                std::fs::symlink_metadata(&path).ctx(|| format!("reading {}", path.display()))?;
            let ft = m.file_type();
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
            if let Some(shift) = owners {
                let (uid, gid) = shift(m.uid() as u64, m.gid() as u64);
                h.set_uid(uid);
                h.set_gid(gid);
            }
            let ext = xattrs(&path);
            let pax: Vec<(String, Vec<u8>)> = ext
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone()))
                .collect();
            let add_pax = |b: &mut tar::Builder<W>| -> Result<()> {
                if !pax.is_empty() {
                    b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                        .ctx(|| format!("writing {relp}'s xattrs"))?;
                }
                Ok(())
            };
            if ft.is_char_device() && m.rdev() == 0 {
                // A whiteout.
                let wh = if rel.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{rel}/.wh.{name}")
                };
                let mut h = marker(m.mtime());
                b.append_data(&mut h, &wh, std::io::empty())
                    .ctx(|| format!("writing {wh}"))?;
            } else if ft.is_dir() {
                add_pax(&mut b)?;
                h.set_size(0);
                b.append_data(&mut h, format!("{relp}/"), std::io::empty())
                    .ctx(|| format!("writing {relp}"))?;
                if opaque(&path) {
                    let mut o = marker(m.mtime());
                    let name = format!("{relp}/.wh..wh..opq");
                    b.append_data(&mut o, &name, std::io::empty())
                        .ctx(|| format!("writing {name}"))?;
                }
                stack.push(relp);
            } else if ft.is_symlink() {
                let target =
                    std::fs::read_link(&path).ctx(|| format!("reading {}", path.display()))?;
                h.set_size(0);
                b.append_link(&mut h, &relp, &target)
                    .ctx(|| format!("writing {relp}"))?;
            } else if ft.is_file() && m.nlink() > 1 && links.contains_key(&(m.dev(), m.ino())) {
                let first = links[&(m.dev(), m.ino())].clone();
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &relp, &first)
                    .ctx(|| format!("writing {relp}"))?;
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    links.insert((m.dev(), m.ino()), relp.clone());
                }
                add_pax(&mut b)?;
                let f = File::open(&path).ctx(|| format!("reading {}", path.display()))?;
                b.append_data(&mut h, &relp, f)
                    .ctx(|| format!("writing {relp}"))?;
            } else {
                // Fifos and devices: the header says it all.
                h.set_size(0);
                b.append_data(&mut h, &relp, std::io::empty())
                    .ctx(|| format!("writing {relp}"))?;
            }
        }
    }
    b.into_inner().ctx(|| "finishing the layer".into())
}

/// Commits `upper` (its owners read through `owners`) on `base` (an image
/// id) as a new image; its id.
pub fn commit(
    store: &mut Store,
    base: &str,
    (upper, owners): (&Path, Owners),
    name: Option<&Reference>,
    created: &str,
    comment: Option<&str>,
    edit: &dyn Fn(&mut Value) -> Result<()>,
) -> Result<String> {
    let img = store.image(base)?;
    let scratch = store.scratch("commit")?;
    let r = (|| -> Result<String> {
        let docker = img.manifest_type == manifest::DOCKER_MANIFEST;
        let gz_path = scratch.join("layer.gz");
        let GzipLayer {
            diff_id,
            digest,
            size,
        } = write_gzip_layer(upper, owners, &gz_path)?;
        let mut config: Value = serde_json::from_slice(&img.config)
            .map_err(|e| Error::invalid(format!("image {base}: config: {e}")))?;
        // The caller's changes (commit --change, --author) first.
        edit(&mut config)?;
        config["created"] = json!(created);
        if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(json!(diff_id));
        }
        let mut entry = json!({"created": created, "created_by": "skiff commit"});
        if let Some(c) = comment {
            entry["comment"] = json!(c);
        }
        match config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => config["history"] = json!([entry]),
        }
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let parsed = manifest::parse_config(&config_bytes)?;
        let base_m: Manifest = serde_json::from_slice(&img.manifest)
            .map_err(|e| Error::invalid(format!("image {base}: manifest: {e}")))?;
        let layer = Descriptor {
            media_type: if docker {
                manifest::DOCKER_LAYER_GZIP
            } else {
                manifest::OCI_LAYER_GZIP
            }
            .into(),
            digest,
            size,
            platform: None,
            annotations: None,
        };
        let mut layers = base_m.layers.clone();
        layers.push(layer.clone());
        let m = Manifest {
            schema_version: 2,
            media_type: Some(
                if docker {
                    manifest::DOCKER_MANIFEST
                } else {
                    manifest::OCI_MANIFEST
                }
                .into(),
            ),
            config: Descriptor {
                media_type: if docker {
                    manifest::DOCKER_CONFIG
                } else {
                    manifest::OCI_CONFIG
                }
                .into(),
                digest: crate::digest::of(&config_bytes),
                size: config_bytes.len() as u64,
                platform: None,
                annotations: None,
            },
            layers,
            annotations: None,
        };
        let mut files = vec![];
        for l in &base_m.layers {
            files.push((store.blob_path(&l.digest)?, l.clone()));
        }
        files.push((gz_path.clone(), layer));
        let mb = serde_json::to_vec(&m).unwrap_or_default();
        let names: Vec<Reference> = name.into_iter().cloned().collect();
        crate::archive::add_image(store, &m, &mb, &config_bytes, &parsed, &files, &names)?;
        Ok(m.config.digest)
    })();
    let _ = remove_tree(&scratch);
    r
}
