//! `save` and `load`: images as docker-archive (what `docker save` and
//! `podman save` write: manifest.json, each config as HEX.json, each layer
//! an uncompressed tar) and as oci-archive (an OCI image layout in a tar:
//! oci-layout, index.json, blobs/sha256/*). `load` reads both (and Docker
//! 25's save, which is both at once); `import` makes a one-layer image of
//! a rootfs tarball.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::digest::{hex_of, HashingReader};
use crate::error::{Context, Error, Result};
use crate::manifest::{self, Compression, Descriptor, Fetched, ImageConfig, Manifest};
use crate::pull::chain_ids;
use crate::reference::Reference;
use crate::store::{remove_tree, Image, NewImage, Store};
use crate::unpack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "docker-archive" => Ok(Format::DockerArchive),
            "oci-archive" => Ok(Format::OciArchive),
            _ => Err(Error::invalid(format!(
                "--format {s:?}: docker-archive or oci-archive"
            ))),
        }
    }
}

fn add_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    tar.append_data(&mut h, name, data)
        .ctx(|| format!("writing {name} to the archive"))
}

fn add_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mtime(0);
    tar.append_data(&mut h, name, io::empty())
        .ctx(|| format!("writing {name} to the archive"))
}

/// Writes images (each with the names asked for it) to `out`.
pub fn save(
    store: &Store,
    images: &[(Image, Vec<String>)],
    format: Format,
    out: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    match format {
        Format::DockerArchive => save_docker(store, images, &mut tar)?,
        Format::OciArchive => save_oci(store, images, &mut tar)?,
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .ctx(|| "finishing the archive".into())
}

fn save_docker<W: Write>(
    store: &Store,
    images: &[(Image, Vec<String>)],
    tar: &mut tar::Builder<W>,
) -> Result<()> {
    let mut entries = vec![];
    let mut written = std::collections::HashSet::new();
    for (img, names) in images {
        let cfg_name = format!("{}.json", hex_of(&img.id)?);
        if written.insert(cfg_name.clone()) {
            add_file(
                tar,
                &cfg_name,
                img.config.len() as u64,
                img.config.as_slice(),
            )?;
        }
        let mut layers = vec![];
        for l in store.layers_of(&img.id)? {
            let dir = hex_of(&l.diff_id)?.to_string();
            let name = format!("{dir}/layer.tar");
            if written.insert(name.clone()) {
                // The layer as its uncompressed tar (its diff id's bytes):
                // decompressed into tmp/ first, for the header's size.
                let scratch = store.scratch("save")?;
                let plain = scratch.join("layer.tar");
                let r = (|| -> Result<()> {
                    let mt = store.blob_media_type(&l.blob)?.unwrap_or_default();
                    let blob = File::open(store.blob_path(&l.blob)?)
                        .ctx(|| format!("opening blob {}", l.blob))?;
                    let mut dec = unpack::decompressor(blob, manifest::layer_compression(&mt)?)?;
                    let mut w = crate::digest::HashingWriter {
                        inner: File::create(&plain)
                            .ctx(|| format!("writing {}", plain.display()))?,
                        hasher: Default::default(),
                    };
                    io::copy(&mut dec, &mut w).ctx(|| format!("decompressing layer {}", l.blob))?;
                    // An old zstd:chunked blob lacks the tar's record
                    // padding its diff id counts (unpack::Unpacked):
                    // restored, as loads check the tar against the diff id.
                    if w.hasher.clone().finish() != l.diff_id {
                        let pad = (unpack::TAR_RECORD - w.hasher.len % unpack::TAR_RECORD)
                            % unpack::TAR_RECORD;
                        w.write_all(&vec![0u8; pad as usize])
                            .ctx(|| format!("writing {}", plain.display()))?;
                    }
                    let mut f = w.inner;
                    let size = f
                        .metadata()
                        .ctx(|| format!("reading {}", plain.display()))?
                        .len();
                    f.rewind().ctx(|| "rewinding".into())?;
                    drop(f);
                    add_dir(tar, &format!("{dir}/"))?;
                    add_file(
                        tar,
                        &name,
                        size,
                        File::open(&plain).ctx(|| format!("reading {}", plain.display()))?,
                    )
                })();
                let _ = remove_tree(&scratch);
                r?;
            }
            layers.push(name);
        }
        entries.push(serde_json::json!({
            "Config": cfg_name,
            "RepoTags": if names.is_empty() { serde_json::Value::Null } else { serde_json::json!(names) },
            "Layers": layers,
        }));
    }
    let doc = serde_json::to_vec(&entries).unwrap_or_default();
    add_file(tar, "manifest.json", doc.len() as u64, doc.as_slice())
}

fn save_oci<W: Write>(
    store: &Store,
    images: &[(Image, Vec<String>)],
    tar: &mut tar::Builder<W>,
) -> Result<()> {
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    add_file(tar, "oci-layout", layout.len() as u64, &layout[..])?;
    add_dir(tar, "blobs/")?;
    add_dir(tar, "blobs/sha256/")?;
    let mut written = std::collections::HashSet::new();
    let mut blob = |tar: &mut tar::Builder<W>,
                    digest: &str,
                    data: &mut dyn FnMut() -> Result<(u64, Box<dyn Read>)>|
     -> Result<()> {
        if written.insert(digest.to_string()) {
            let (size, r) = data()?;
            add_file(tar, &format!("blobs/sha256/{}", hex_of(digest)?), size, r)?;
        }
        Ok(())
    };
    let mut index = vec![];
    for (img, names) in images {
        let m: Manifest = serde_json::from_slice(&img.manifest)
            .map_err(|e| Error::invalid(format!("stored manifest of {}: {e}", img.id)))?;
        for l in &m.layers {
            let path = store.blob_path(&l.digest)?;
            blob(tar, &l.digest, &mut || {
                let f = File::open(&path).ctx(|| format!("opening blob {}", path.display()))?;
                let n = f
                    .metadata()
                    .ctx(|| format!("reading {}", path.display()))?
                    .len();
                Ok((n, Box::new(f)))
            })?;
        }
        let cfg = img.config.clone();
        blob(tar, &img.id, &mut || {
            Ok((cfg.len() as u64, Box::new(io::Cursor::new(cfg.clone()))))
        })?;
        let man = img.manifest.clone();
        blob(tar, &img.manifest_digest, &mut || {
            Ok((man.len() as u64, Box::new(io::Cursor::new(man.clone()))))
        })?;
        let desc = |name: Option<&String>| {
            let mut d = serde_json::json!({
                "mediaType": img.manifest_type,
                "digest": img.manifest_digest,
                "size": img.manifest.len(),
            });
            if let Some(n) = name {
                d["annotations"] = serde_json::json!({
                    "org.opencontainers.image.ref.name": n,
                    "io.containerd.image.name": n,
                });
            }
            d
        };
        if names.is_empty() {
            index.push(desc(None));
        }
        for n in names {
            index.push(desc(Some(n)));
        }
    }
    let doc = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": index,
    }))
    .unwrap_or_default();
    add_file(tar, "index.json", doc.len() as u64, doc.as_slice())
}

/// A path an archive's own document names, checked to stay inside it.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
        return Err(Error::Refused(format!(
            "archive names {rel:?}, a path outside the archive"
        )));
    }
    let p = dir.join(rel);
    let m = std::fs::symlink_metadata(&p).map_err(|e| Error::at(&p, "the archive's file", e))?;
    if !m.is_file() {
        return Err(Error::invalid(format!(
            "archive: {rel} is not a regular file"
        )));
    }
    Ok(p)
}

/// How a file is compressed, by its first bytes.
fn sniff(path: &Path) -> Result<Compression> {
    let mut magic = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// Loads every image of an archive (read from `input`); the names (or
/// ids, for nameless ones) loaded.
pub fn load(store: &mut Store, input: impl Read) -> Result<Vec<String>> {
    // A compressed archive (`docker save | gzip`) loads as Docker's and
    // Podman's loads take it: gzip and zstd by their first bytes; bzip2
    // and xz refused by name.
    let mut input = io::BufReader::new(input);
    let magic = input.fill_buf().ctx(|| "reading the archive".into())?;
    let input: Box<dyn Read> = match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(input)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .ctx(|| "starting the zstd decoder".into())?,
        ),
        [b'B', b'Z', b'h', ..] | [0xfd, b'7', b'z', b'X', b'Z', ..] => {
            return Err(Error::invalid(
                "archive: bzip2 and xz are not read here; decompress it first, or save it with gzip or zstd",
            ))
        }
        _ => Box::new(input),
    };
    let scratch = store.scratch("load")?;
    let r = load_in(store, input, &scratch);
    let _ = remove_tree(&scratch);
    r
}

fn load_in(store: &mut Store, input: impl Read, dir: &Path) -> Result<Vec<String>> {
    // The archive's files (regular files and directories only) in scratch.
    let mut ar = tar::Archive::new(input);
    for e in ar.entries().ctx(|| "reading the archive".into())? {
        let mut e = e.ctx(|| "reading the archive".into())?;
        let kind = e.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        if !e.unpack_in(dir).ctx(|| "unpacking the archive".into())? {
            return Err(Error::Refused(
                "archive entry with a path outside the archive".into(),
            ));
        }
    }
    if dir.join("manifest.json").is_file() {
        load_docker(store, dir)
    } else if dir.join("index.json").is_file() {
        load_oci(store, dir)
    } else {
        Err(Error::invalid(
            "archive: neither a docker-archive (manifest.json) nor an oci-archive (index.json)",
        ))
    }
}

fn load_docker(store: &mut Store, dir: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let text = std::fs::read(dir.join("manifest.json")).ctx(|| "reading manifest.json".into())?;
    let entries: Vec<Entry> = serde_json::from_slice(&text)
        .map_err(|e| Error::invalid(format!("archive manifest.json: {e}")))?;
    let mut loaded = vec![];
    for e in entries {
        let config_bytes =
            std::fs::read(inside(dir, &e.config)?).ctx(|| format!("reading {}", e.config))?;
        let config = manifest::parse_config(&config_bytes)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(Error::invalid(format!(
                "archive: {} lists {} layers, its config {}",
                e.config,
                e.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut descs = vec![];
        for (l, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let path = inside(dir, l)?;
            let (digest, size) = hash_file(&path)?;
            let mt = match sniff(&path)? {
                Compression::None => manifest::DOCKER_LAYER,
                Compression::Gzip => manifest::DOCKER_LAYER_GZIP,
                Compression::Zstd => manifest::OCI_LAYER_ZSTD,
            };
            let _ = diff_id;
            descs.push((
                path,
                Descriptor {
                    media_type: mt.into(),
                    digest,
                    size,
                    platform: None,
                    annotations: None,
                },
            ));
        }
        let config_desc = Descriptor {
            media_type: manifest::DOCKER_CONFIG.into(),
            digest: crate::digest::of(&config_bytes),
            size: config_bytes.len() as u64,
            platform: None,
            annotations: None,
        };
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::DOCKER_MANIFEST.into()),
            config: config_desc,
            layers: descs.iter().map(|(_, d)| d.clone()).collect(),
            annotations: None,
        };
        let names: Vec<Reference> = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|n| Reference::parse(n))
            .collect::<Result<_>>()?;
        let manifest_bytes = serde_json::to_vec(&m).unwrap_or_default();
        add_image(
            store,
            &m,
            &manifest_bytes,
            &config_bytes,
            &config,
            &descs,
            &names,
        )?;
        loaded.extend(if names.is_empty() {
            vec![m.config.digest.clone()]
        } else {
            names.iter().map(|n| n.name()).collect()
        });
    }
    Ok(loaded)
}

fn load_oci(store: &mut Store, dir: &Path) -> Result<Vec<String>> {
    let text = std::fs::read(dir.join("index.json")).ctx(|| "reading index.json".into())?;
    let index = match manifest::parse_document(Some(manifest::OCI_INDEX), &text)? {
        Fetched::Index(i) => i,
        Fetched::Manifest(_) => return Err(Error::invalid("archive index.json: not an index")),
    };
    let blob =
        |d: &str| -> Result<PathBuf> { inside(dir, &format!("blobs/sha256/{}", hex_of(d)?)) };
    let mut loaded = vec![];
    for d in &index.manifests {
        let bytes = std::fs::read(blob(&d.digest)?).ctx(|| format!("reading {}", d.digest))?;
        if crate::digest::of(&bytes) != d.digest {
            return Err(Error::Digest {
                what: "archive manifest".into(),
                expected: d.digest.clone(),
                actual: crate::digest::of(&bytes),
            });
        }
        let m = match manifest::parse_document(Some(&d.media_type), &bytes)? {
            Fetched::Manifest(m) => m,
            Fetched::Index(ix) => {
                // A multi-platform index: this machine's image.
                let host = manifest::Platform::host();
                let e = manifest::Platform::best(&ix.manifests, &host).ok_or_else(|| {
                    Error::invalid(format!("archive: no image for {host} in its index"))
                })?;
                let b = std::fs::read(blob(&e.digest)?).ctx(|| format!("reading {}", e.digest))?;
                match manifest::parse_document(Some(&e.media_type), &b)? {
                    Fetched::Manifest(m) => m,
                    Fetched::Index(_) => {
                        return Err(Error::invalid(
                            "archive: an index inside an index inside an index",
                        ))
                    }
                }
            }
        };
        let config_bytes = std::fs::read(blob(&m.config.digest)?)
            .ctx(|| format!("reading {}", m.config.digest))?;
        let config = manifest::parse_config(&config_bytes)?;
        manifest::check_pair(&m, &config)?;
        let mut descs = vec![];
        for l in &m.layers {
            descs.push((blob(&l.digest)?, l.clone()));
        }
        let ann = |k: &str| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        // containerd's (and Docker's) name is whole; a ref.name without a
        // registry is Podman's localhost/NAME, as its load makes it.
        let names: Vec<Reference> = match ann("io.containerd.image.name") {
            Some(n) => vec![Reference::parse(&n)?],
            None => ann("org.opencontainers.image.ref.name")
                .filter(|n| n.contains('/') || n.contains(':'))
                .map(|n| Reference::parse_local(&n))
                .transpose()?
                .into_iter()
                .collect(),
        };
        let manifest_bytes = serde_json::to_vec(&m).unwrap_or_default();
        let manifest_bytes = if crate::digest::of(&bytes) == d.digest
            && matches!(
                manifest::parse_document(None, &bytes)?,
                Fetched::Manifest(_)
            ) {
            bytes
        } else {
            manifest_bytes
        };
        add_image(
            store,
            &m,
            &manifest_bytes,
            &config_bytes,
            &config,
            &descs,
            &names,
        )?;
        loaded.extend(if names.is_empty() {
            vec![m.config.digest.clone()]
        } else {
            names.iter().map(|n| n.name()).collect()
        });
    }
    Ok(loaded)
}

fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut r = HashingReader {
        inner: File::open(path).ctx(|| format!("opening {}", path.display()))?,
        hasher: Default::default(),
    };
    io::copy(&mut r, &mut io::sink()).ctx(|| format!("reading {}", path.display()))?;
    let len = r.hasher.len;
    Ok((r.hasher.finish(), len))
}

/// Copies an archive's blobs in, unpacks the layers the store lacks and
/// records the image.
pub(crate) fn add_image(
    store: &mut Store,
    m: &Manifest,
    manifest_bytes: &[u8],
    config_bytes: &[u8],
    config: &ImageConfig,
    layers: &[(PathBuf, Descriptor)],
    names: &[Reference],
) -> Result<()> {
    let chains = chain_ids(config);
    for (i, (path, d)) in layers.iter().enumerate() {
        let (digest, size) = hash_file(path)?;
        if digest != d.digest {
            return Err(Error::Digest {
                what: format!("archive layer {}", path.display()),
                expected: d.digest.clone(),
                actual: digest,
            });
        }
        if !store.has_blob(&d.digest)? {
            let tmp = store.ingest_path(&d.digest)?;
            std::fs::copy(path, &tmp).ctx(|| format!("copying {}", path.display()))?;
            store.commit_blob(&tmp, &d.digest, &d.media_type, size)?;
        }
        let _lock = store.lock(&format!("layer-{}", hex_of(&chains[i])?))?;
        if !store.has_layer(&chains[i])? {
            let staged = store.scratch("layer")?;
            let diff = staged.join("diff");
            let r = std::fs::create_dir(&diff)
                .ctx(|| format!("making {}", diff.display()))
                .and_then(|_| {
                    let f = File::open(store.blob_path(&d.digest)?)
                        .ctx(|| format!("opening blob {}", d.digest))?;
                    unpack::unpack(
                        f,
                        manifest::layer_compression(&d.media_type)?,
                        &diff,
                        unpack::Options::for_this_process(),
                    )
                });
            let u = match r {
                Ok(u) if u.matches(&config.rootfs.diff_ids[i]) => u,
                Ok(u) => {
                    let _ = remove_tree(&staged);
                    return Err(Error::Digest {
                        what: format!("archive layer {} unpacked (rootfs.diff_ids[{i}])", d.digest),
                        expected: config.rootfs.diff_ids[i].clone(),
                        actual: u.diff_id,
                    });
                }
                Err(e) => {
                    let _ = remove_tree(&staged);
                    return Err(e);
                }
            };
            store.commit_layer(
                &staged,
                &chains[i],
                &config.rootfs.diff_ids[i],
                i.checked_sub(1).map(|p| chains[p].as_str()),
                u.size,
            )?;
        }
    }
    store.write_blob(config_bytes, &m.config.media_type)?;
    let manifest_digest = crate::digest::of(manifest_bytes);
    let pairs: Vec<(String, String)> = chains
        .into_iter()
        .zip(m.layers.iter().map(|l| l.digest.clone()))
        .collect();
    store.put_image(
        &NewImage {
            id: &m.config.digest,
            manifest_digest: &manifest_digest,
            manifest_type: m.media_type.as_deref().unwrap_or(manifest::OCI_MANIFEST),
            manifest: manifest_bytes,
            config: config_bytes,
            created: config.created.as_deref(),
            layers: &pairs,
        },
        &names
            .iter()
            .map(|n| {
                let mut n = n.clone();
                n.digest = Some(manifest_digest.clone());
                n
            })
            .collect::<Vec<_>>(),
    )
}

/// `import`: a rootfs tarball (maybe compressed) as a one-layer image,
/// its config as `edit` leaves it (`import --change`, `--message`).
pub fn import(
    store: &mut Store,
    input: impl Read,
    name: Option<&Reference>,
    created: &str,
    edit: &dyn Fn(&mut serde_json::Value) -> Result<()>,
) -> Result<String> {
    let scratch = store.scratch("import")?;
    let r = (|| -> Result<String> {
        let raw = scratch.join("layer");
        let mut f = File::create(&raw).ctx(|| format!("writing {}", raw.display()))?;
        let mut input = input;
        io::copy(&mut input, &mut f).ctx(|| "reading the tarball".into())?;
        drop(f);
        let c = sniff(&raw)?;
        // The layer as a gzip blob; its diff id from the plain stream.
        let gz = scratch.join("layer.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz).ctx(|| format!("writing {}", gz.display()))?,
            flate2::Compression::fast(),
        );
        let mut dec = HashingReader {
            inner: unpack::decompressor(File::open(&raw).ctx(|| "reopening".into())?, c)?,
            hasher: Default::default(),
        };
        io::copy(&mut dec, &mut enc).ctx(|| "compressing the layer".into())?;
        enc.finish().ctx(|| "compressing the layer".into())?;
        let diff_id = dec.hasher.finish();
        let (digest, size) = hash_file(&gz)?;
        let mut config = serde_json::json!({
            "created": created,
            "architecture": manifest::Platform::host().architecture,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "skiff import"}],
        });
        edit(&mut config)?;
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let parsed = manifest::parse_config(&config_bytes)?;
        let d = Descriptor {
            media_type: manifest::OCI_LAYER_GZIP.into(),
            digest,
            size,
            platform: None,
            annotations: None,
        };
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: manifest::OCI_CONFIG.into(),
                digest: crate::digest::of(&config_bytes),
                size: config_bytes.len() as u64,
                platform: None,
                annotations: None,
            },
            layers: vec![d.clone()],
            annotations: None,
        };
        let mb = serde_json::to_vec(&m).unwrap_or_default();
        let names: Vec<Reference> = name.into_iter().cloned().collect();
        add_image(store, &m, &mb, &config_bytes, &parsed, &[(gz, d)], &names)?;
        Ok(m.config.digest)
    })();
    let _ = remove_tree(&scratch);
    r
}
