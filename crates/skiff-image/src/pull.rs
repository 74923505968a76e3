//! `pull`: a reference's manifest (through an index, for this machine's
//! platform or --platform), its config, and each layer the store lacks:
//! downloaded, checked against its digest while it streams, decompressed
//! and unpacked on a worker thread as it arrives, and recorded only when
//! whole. Layers come in parallel. A layer's download is kept in
//! `ingest/` as it arrives, so a pull cut short resumes (HTTP Range) where
//! it stopped. An image is listed only once everything it needs is in.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::BlobResponse;
use oci_client::manifest::OciDescriptor;
use oci_client::RegistryOperation;

use crate::digest::{chain_id, hex_of, Hasher};
use crate::error::{Context, Error, Result};
use crate::manifest::{self, Descriptor, Fetched, ImageConfig, Manifest, Platform};
use crate::reference::Reference;
use crate::registries::Registries;
use crate::registry::{registry_error, Options, Registry};
use crate::store::{NewImage, Store};
use crate::unpack;

/// What a pull reports while it works (bars on a terminal, lines else).
pub trait Progress: Sync {
    fn layer(&self, digest: &str, size: u64) -> Box<dyn LayerProgress>;
    fn note(&self, msg: &str);
}

pub trait LayerProgress: Send {
    fn advance(&self, bytes: u64);
    fn done(&self, how: &str);
}

/// Reports nothing (-q).
pub struct Quiet;

struct NoBar;
impl LayerProgress for NoBar {
    fn advance(&self, _: u64) {}
    fn done(&self, _: &str) {}
}
impl Progress for Quiet {
    fn layer(&self, _: &str, _: u64) -> Box<dyn LayerProgress> {
        Box::new(NoBar)
    }
    fn note(&self, _: &str) {}
}

/// What was pulled.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: String,
    pub name: String,
    pub manifest_digest: String,
    /// Layers downloaded (0: everything was in the store already).
    pub fetched: usize,
}

/// Layers fetched at once.
const PARALLEL: usize = 3;

/// Pulls a name as the user typed it: a short name is looked for where
/// registries.conf says (its alias, its search registries in turn), else
/// on Docker Hub; see crate::registries.
pub fn pull_typed(
    store: &mut Store,
    typed: &str,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let registries = Registries::load()?;
    let candidates = registries.candidates(typed)?;
    let mut failures = vec![];
    for r in &candidates {
        match pull_with(&registries, store, r, opts, progress) {
            Ok(p) => return Ok(p),
            Err(e) if candidates.len() == 1 => return Err(e),
            Err(e) => failures.push(format!("{}: {e}", r.name())),
        }
    }
    Err(Error::Registry(format!(
        "{typed}: not found in any search registry: {}",
        failures.join("; ")
    )))
}

/// Pulls `r` into the store under its name, from its mirrors first, then
/// from its registry (both as registries.conf says).
pub fn pull(
    store: &mut Store,
    r: &Reference,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    pull_with(&Registries::load()?, store, r, opts, progress)
}

fn pull_with(
    registries: &Registries,
    store: &mut Store,
    r: &Reference,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let endpoints = registries.endpoints(r)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx(|| "starting the network runtime".into())?;
    let mut last = None;
    for ep in &endpoints {
        let mut opts = opts.clone();
        if ep.insecure && opts.tls_verify.is_none() {
            opts.tls_verify = Some(false);
        }
        match pull_from(&rt, store, r, &ep.from, &opts, progress) {
            Err(e) if ep.mirror => {
                progress.note(&format!("mirror {}: {e}", ep.from.registry));
                last = Some(e);
            }
            done => return done,
        }
    }
    Err(last.unwrap_or_else(|| Error::Registry(format!("{}: nowhere to pull from", r.name()))))
}

fn pull_from(
    rt: &tokio::runtime::Runtime,
    store: &mut Store,
    r: &Reference,
    from: &Reference,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let first = rt.block_on(pull_async(store, r, from, opts, progress));
    // Asked over plain HTTP because it answered so before, and failed: it
    // may serve TLS now; once more, HTTPS first.
    if first.is_err() && store.answered_plain(&from.registry)? {
        store.note_scheme(&from.registry, false)?;
        return rt.block_on(pull_async(store, r, from, opts, progress));
    }
    first
}

/// Fetches `from` and keeps it as `r` (the same but for a mirror's or a
/// rewritten location's registry and repository).
async fn pull_async(
    store: &mut Store,
    r: &Reference,
    from: &Reference,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let t0 = std::time::Instant::now();
    let mut opts = opts.clone();
    opts.plain_before = store.answered_plain(&from.registry)?;
    let opts = &opts;
    let reg = Registry::connect(from, opts, RegistryOperation::Pull).await?;
    store.note_scheme(&from.registry, reg.plain)?;
    trace(&format!("connected in {:?}", t0.elapsed()));
    let (top_digest, manifest_bytes, manifest_digest, m) = fetch_manifest(&reg, from, opts).await?;
    trace(&format!("manifest in {:?}", t0.elapsed()));
    // A digest given wins over a tag given with it, which names nothing
    // then (the registry's tag may point elsewhere): Podman's and
    // Docker's rule.
    let mut r = r.clone();
    if r.digest.is_some() {
        r.tag = None;
    }
    let r = &r;
    // Re-pull of an image the store has whole (by this manifest or
    // another of the same config: a load, another registry's
    // compression): the manifest was all; the name is recorded, the
    // stored manifest kept.
    if let Ok(img) = store.find(&m.config.digest) {
        if layers_present(store, &img.id)? {
            let mut named = r.clone();
            named.digest = Some(top_digest.clone());
            store.put_image(
                &new_image(
                    &img.id,
                    &manifest_digest,
                    &m,
                    &manifest_bytes,
                    &img.config,
                    &[],
                )?,
                &[named],
            )?;
            progress.note(&format!("{}: up to date", r.name()));
            return Ok(Pulled {
                id: img.id,
                name: r.name(),
                manifest_digest,
                fetched: 0,
            });
        }
    }
    let config_bytes = fetch_config(&reg, from, &m).await?;
    let config = manifest::parse_config(&config_bytes)?;
    manifest::check_pair(&m, &config)?;
    // A single-platform image of another platform is pulled, with a
    // warning, as Podman pulls it (it may run under emulation).
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let have = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    if !have.architecture.is_empty() && have.rank(&want).is_none() {
        progress.note(&format!(
            "WARNING: image platform ({have}) does not match the expected platform ({want})"
        ));
    }
    let fetched = fetch_layers(store, &reg, from, &m, &config, progress).await?;
    // Record it: blobs of config and manifest, then the image, in one go.
    store.write_blob(&config_bytes, &m.config.media_type)?;
    let layers = chain_ids(&config)
        .into_iter()
        .zip(&m.layers)
        .map(|(c, l)| (c, l.digest.clone()))
        .collect::<Vec<_>>();
    let mut named = r.clone();
    named.digest = Some(top_digest);
    store.put_image(
        &new_image(
            &m.config.digest,
            &manifest_digest,
            &m,
            &manifest_bytes,
            &config_bytes,
            &layers,
        )?,
        &[named],
    )?;
    Ok(Pulled {
        id: m.config.digest.clone(),
        name: r.name(),
        manifest_digest,
        fetched,
    })
}

fn new_image<'a>(
    id: &'a str,
    manifest_digest: &'a str,
    m: &'a Manifest,
    manifest_bytes: &'a [u8],
    config: &'a [u8],
    layers: &'a [(String, String)],
) -> Result<NewImage<'a>> {
    Ok(NewImage {
        id,
        manifest_digest,
        manifest_type: m.media_type.as_deref().unwrap_or(manifest::OCI_MANIFEST),
        manifest: manifest_bytes,
        config,
        created: None,
        layers,
    })
}

/// Whether every layer an image lists is unpacked in the store.
fn layers_present(store: &Store, id: &str) -> Result<bool> {
    for l in store.layers_of(id)? {
        if !store.has_layer(&l.chain_id)? {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn chain_ids(c: &ImageConfig) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for d in &c.rootfs.diff_ids {
        let id = chain_id(out.last().map(String::as_str), d);
        out.push(id);
    }
    out
}

/// The manifest for this platform: (digest of what the reference named,
/// the manifest's bytes, its digest, the manifest).
async fn fetch_manifest(
    reg: &Registry,
    r: &Reference,
    opts: &Options,
) -> Result<(String, Vec<u8>, String, Manifest)> {
    let (bytes, _) = reg
        .client
        .pull_manifest_raw(&r.client_ref(None), &reg.auth, manifest::ACCEPTED)
        .await
        .map_err(|e| registry_error(&r.name(), e))?;
    let top = crate::digest::of(&bytes);
    if let Some(want) = &r.digest {
        if &top != want {
            return Err(Error::Digest {
                what: r.name(),
                expected: want.clone(),
                actual: top,
            });
        }
    }
    match manifest::parse_document(None, &bytes)? {
        Fetched::Manifest(m) => Ok((top.clone(), bytes.to_vec(), top, m)),
        Fetched::Index(ix) => {
            let want = opts.platform.clone().unwrap_or_else(Platform::host);
            let entry = Platform::best(&ix.manifests, &want).ok_or_else(|| {
                let have: Vec<String> = ix
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                Error::invalid(format!(
                    "{}: no image for {want} in its index (it has: {})",
                    r.name(),
                    have.join(", ")
                ))
            })?;
            hex_of(&entry.digest)?;
            let (mbytes, _) = reg
                .client
                .pull_manifest_raw(
                    &r.client_ref(Some(&entry.digest)),
                    &reg.auth,
                    manifest::ACCEPTED,
                )
                .await
                .map_err(|e| registry_error(&r.name(), e))?;
            let got = crate::digest::of(&mbytes);
            if got != entry.digest {
                return Err(Error::Digest {
                    what: format!("{} ({want})", r.name()),
                    expected: entry.digest.clone(),
                    actual: got,
                });
            }
            match manifest::parse_document(Some(&entry.media_type), &mbytes)? {
                Fetched::Manifest(m) => Ok((top, mbytes.to_vec(), got, m)),
                Fetched::Index(_) => Err(Error::invalid(format!(
                    "{}: an index inside an index is not supported",
                    r.name()
                ))),
            }
        }
    }
}

fn oci_desc(d: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size as i64,
        ..Default::default()
    }
}

async fn fetch_config(reg: &Registry, r: &Reference, m: &Manifest) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(m.config.size.min(1 << 20) as usize);
    reg.client
        .pull_blob(&r.client_ref(None), &oci_desc(&m.config), &mut out)
        .await
        .map_err(|e| registry_error(&r.name(), e))?;
    let got = crate::digest::of(&out);
    if got != m.config.digest {
        return Err(Error::Digest {
            what: format!("{} config", r.name()),
            expected: m.config.digest.clone(),
            actual: got,
        });
    }
    Ok(out)
}

/// Fetches the layers the store lacks, PARALLEL at a time; how many.
async fn fetch_layers(
    store: &Store,
    reg: &Registry,
    r: &Reference,
    m: &Manifest,
    config: &ImageConfig,
    progress: &dyn Progress,
) -> Result<usize> {
    let chains = chain_ids(config);
    let jobs = m.layers.iter().enumerate().map(|(i, desc)| LayerJob {
        desc,
        diff_id: &config.rootfs.diff_ids[i],
        chain: &chains[i],
        parent: i.checked_sub(1).map(|p| chains[p].as_str()),
    });
    let fetched: Vec<bool> = futures_util::stream::iter(jobs)
        .map(|job| fetch_layer(store, reg, r, job, progress))
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    Ok(fetched.into_iter().filter(|f| *f).count())
}

struct LayerJob<'a> {
    desc: &'a Descriptor,
    diff_id: &'a str,
    chain: &'a str,
    parent: Option<&'a str>,
}

/// One layer: nothing if the store has it; unpacked from its blob if only
/// that is there; else downloaded (resumed from ingest/) and unpacked as
/// it arrives. Whether it was downloaded.
async fn fetch_layer(
    store: &Store,
    reg: &Registry,
    r: &Reference,
    job: LayerJob<'_>,
    progress: &dyn Progress,
) -> Result<bool> {
    let lock_path = store
        .root
        .join("locks")
        .join(format!("layer-{}", hex_of(job.chain)?));
    let _lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
        .await
        .map_err(|e| Error::invalid(format!("waiting for a layer's lock: {e}")))??;
    let short = &hex_of(&job.desc.digest)?[..12];
    // The tree can be here from another image's blob of other bytes (the
    // zstd and the gzip of one layer); push and save send the blob this
    // manifest names, so that blob is fetched and checked too, and the
    // second tree dropped.
    let tree_present = store.has_layer(job.chain)?;
    if tree_present && store.has_blob(&job.desc.digest)? {
        progress
            .layer(&job.desc.digest, job.desc.size)
            .done("already present");
        return Ok(false);
    }
    let compression = manifest::layer_compression(&job.desc.media_type)?;
    let staged = store.scratch(&format!("layer-{short}"))?;
    std::fs::create_dir(staged.join("diff")).ctx(|| format!("making {}/diff", staged.display()))?;
    let result = if store.has_blob(&job.desc.digest)? {
        let blob = store.blob_path(&job.desc.digest)?;
        let dest = staged.join("diff");
        let bar = progress.layer(&job.desc.digest, job.desc.size);
        let u = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&blob).ctx(|| format!("opening {}", blob.display()))?;
            unpack::unpack(f, compression, &dest, unpack::Options::for_this_process())
        })
        .await
        .map_err(|e| Error::invalid(format!("unpacking a layer: {e}")))?;
        bar.done("unpacked from the store");
        u.map(|u| (u, false))
    } else {
        download(
            store,
            reg,
            r,
            &job,
            compression,
            &staged.join("diff"),
            progress,
        )
        .await
        .map(|u| (u, true))
    };
    let (u, downloaded) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = crate::store::remove_tree(&staged);
            return Err(e);
        }
    };
    if !u.matches(job.diff_id) {
        let _ = crate::store::remove_tree(&staged);
        return Err(Error::Digest {
            what: format!(
                "layer {} unpacked (its diff id, rootfs.diff_ids)",
                job.desc.digest
            ),
            expected: job.diff_id.to_string(),
            actual: u.diff_id,
        });
    }
    if tree_present {
        let _ = crate::store::remove_tree(&staged);
        return Ok(downloaded);
    }
    store.commit_layer(&staged, job.chain, job.diff_id, job.parent, u.size)?;
    Ok(downloaded)
}

fn lock_file(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("locking {}", path.display()))?;
    Ok(f)
}

/// SKIFF_TRACE=1: when each layer's phases end, on stderr.
fn trace(msg: &str) {
    crate::trace::mark(msg);
}

/// Reads the chunks a download hands over, for the unpacking thread.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

async fn download(
    store: &Store,
    reg: &Registry,
    r: &Reference,
    job: &LayerJob<'_>,
    compression: manifest::Compression,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<unpack::Unpacked> {
    let partial: PathBuf = store.ingest_path(&job.desc.digest)?;
    let mut have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    if have >= job.desc.size {
        have = 0; // all there but not committed: check it again from the start
    }
    let target = r.client_ref(None);
    let desc = oci_desc(job.desc);
    let stream = if have > 0 {
        match reg
            .client
            .pull_blob_stream_partial(&target, &desc, have, None)
            .await
            .map_err(|e| registry_error(&r.name(), e))?
        {
            BlobResponse::Partial(s) => s,
            BlobResponse::Full(s) => {
                have = 0;
                s
            }
        }
    } else {
        reg.client
            .pull_blob_stream(&target, &desc)
            .await
            .map_err(|e| registry_error(&r.name(), e))?
    };
    let bar = progress.layer(&job.desc.digest, job.desc.size);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let dest = dest.to_path_buf();
    let unpacker = tokio::task::spawn_blocking(move || {
        unpack::unpack(
            ChunkReader {
                rx,
                current: Bytes::new(),
            },
            compression,
            &dest,
            unpack::Options::for_this_process(),
        )
    });
    let mut hasher = Hasher::default();
    let t0 = std::time::Instant::now();
    let short = &job.desc.digest[7..19];
    let fed = feed(&partial, have, stream, &tx, &mut hasher, &*bar).await;
    trace(&format!("layer {short}: received in {:?}", t0.elapsed()));
    drop(tx);
    let unpacked = unpacker
        .await
        .map_err(|e| Error::invalid(format!("unpacking a layer: {e}")));
    trace(&format!("layer {short}: unpacked in {:?}", t0.elapsed()));
    // Every byte in but the wrong ones (oci-client's own check ends the
    // stream with an error then): the partial file is no start to resume
    // from; it goes, and the error names the layer.
    let got = hasher.clone().finish();
    if hasher.len >= job.desc.size && got != job.desc.digest {
        let _ = std::fs::remove_file(&partial);
        bar.done("failed");
        return Err(Error::Digest {
            what: format!("layer {} ({} bytes received)", job.desc.digest, hasher.len),
            expected: job.desc.digest.clone(),
            actual: got,
        });
    }
    // The unpacker's error explains a failed feed (it stopped reading).
    let unpacked = match (fed, unpacked) {
        (_, Ok(Err(e))) | (_, Err(e)) => {
            bar.done("failed");
            return Err(e);
        }
        (Err(e), _) => {
            bar.done("failed");
            return Err(e);
        }
        (Ok(()), Ok(Ok(u))) => u,
    };
    if got != job.desc.digest || hasher.len != job.desc.size {
        let _ = std::fs::remove_file(&partial);
        bar.done("failed");
        return Err(Error::Digest {
            what: format!(
                "layer {} ({} bytes received, {} expected)",
                job.desc.digest, hasher.len, job.desc.size
            ),
            expected: job.desc.digest.clone(),
            actual: got,
        });
    }
    store.commit_blob(
        &partial,
        &job.desc.digest,
        &job.desc.media_type,
        job.desc.size,
    )?;
    bar.done("done");
    Ok(unpacked)
}

/// Replays the first `have` bytes from the partial file, then appends what
/// the stream brings to it; everything hashed and handed to the unpacker.
async fn feed(
    partial: &Path,
    have: u64,
    mut stream: oci_client::client::SizedStream,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    hasher: &mut Hasher,
    bar: &dyn LayerProgress,
) -> Result<()> {
    let gone = || Error::invalid("the layer's unpacking stopped early");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(partial)
        .ctx(|| format!("opening {}", partial.display()))?;
    file.set_len(have)
        .ctx(|| format!("truncating {}", partial.display()))?;
    let mut left = have;
    while left > 0 {
        let mut buf = vec![0u8; (256 * 1024).min(left as usize)];
        file.read_exact(&mut buf)
            .ctx(|| format!("reading {}", partial.display()))?;
        left -= buf.len() as u64;
        hasher.update(&buf);
        bar.advance(buf.len() as u64);
        tx.send(Bytes::from(buf)).await.map_err(|_| gone())?;
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ctx(|| "receiving the layer".into())?;
        file.write_all(&chunk)
            .ctx(|| format!("writing {}", partial.display()))?;
        hasher.update(&chunk);
        bar.advance(chunk.len() as u64);
        tx.send(chunk).await.map_err(|_| gone())?;
    }
    // No fsync here: the blob is checked against its digest before it is
    // recorded, and `system check` finds one a crash damaged afterwards.
    Ok(())
}
