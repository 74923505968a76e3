//! `push`: an image's blobs (those the registry lacks: a HEAD first), then
//! its config and its manifest as stored (so its digest is unchanged).

use futures_util::StreamExt;
use oci_client::RegistryOperation;

use crate::error::{Context, Error, Result};
use crate::manifest::Manifest;
use crate::reference::Reference;
use crate::registry::{registry_error, Options, Registry};
use crate::store::{Image, Store};

/// What a push did: blobs sent, blobs the registry had, the manifest's digest.
pub struct Pushed {
    pub sent: usize,
    pub skipped: usize,
    pub digest: String,
}

pub fn push(
    store: &Store,
    img: &Image,
    dest: &Reference,
    opts: &Options,
    note: &dyn Fn(&str),
) -> Result<Pushed> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx(|| "starting the network runtime".into())?;
    rt.block_on(push_async(store, img, dest, opts, note))
}

async fn push_async(
    store: &Store,
    img: &Image,
    dest: &Reference,
    opts: &Options,
    note: &dyn Fn(&str),
) -> Result<Pushed> {
    // A tag, or (a manifest list's images) the manifest's own digest.
    if dest.tag.is_none() && dest.digest.as_deref() != Some(img.manifest_digest.as_str()) {
        return Err(Error::invalid(format!(
            "{dest}: push needs a tag to push to"
        )));
    }
    let mut opts = opts.clone();
    opts.plain_before = store.answered_plain(&dest.registry)?;
    let reg = Registry::connect(dest, &opts, RegistryOperation::Push).await?;
    store.note_scheme(&dest.registry, reg.plain)?;
    let target = dest.client_ref(None);
    let m: Manifest = serde_json::from_slice(&img.manifest)
        .map_err(|e| Error::invalid(format!("stored manifest of {}: {e}", img.id)))?;
    let (mut sent, mut skipped) = (0, 0);
    // Repositories of the same registry that hold the image already: a
    // blob is mounted from there (cross-repository) rather than sent.
    let sources: Vec<Reference> = img
        .digests
        .iter()
        .filter_map(|d| Reference::parse(d).ok())
        .filter(|s| s.registry == dest.registry && s.repository != dest.repository)
        .collect();
    for l in &m.layers {
        let exists = reg
            .client
            .blob_exists(&target, &l.digest)
            .await
            .map_err(|e| registry_error(&dest.registry, e))?;
        if exists {
            note(&format!("{}: already there", &l.digest[7..19]));
            skipped += 1;
            continue;
        }
        let mut mounted = false;
        for src in &sources {
            if reg
                .client
                .mount_blob(&target, &src.client_ref(None), &l.digest)
                .await
                .is_ok()
                && reg
                    .client
                    .blob_exists(&target, &l.digest)
                    .await
                    .unwrap_or(false)
            {
                mounted = true;
                break;
            }
        }
        if mounted {
            note(&format!(
                "{}: mounted from another repository",
                &l.digest[7..19]
            ));
            skipped += 1;
            continue;
        }
        let path = store.blob_path(&l.digest)?;
        let file = tokio::fs::File::open(&path)
            .await
            .ctx(|| format!("opening blob {}", path.display()))?;
        let stream = tokio_util_free_stream(file);
        reg.client
            .push_blob_stream(&target, stream, &l.digest, Some(l.size))
            .await
            .map_err(|e| registry_error(&dest.registry, e))?;
        note(&format!("{}: sent", &l.digest[7..19]));
        sent += 1;
    }
    if !reg
        .client
        .blob_exists(&target, &img.id)
        .await
        .map_err(|e| registry_error(&dest.registry, e))?
    {
        reg.client
            .push_blob(&target, img.config.clone(), &img.id)
            .await
            .map_err(|e| registry_error(&dest.registry, e))?;
    }
    let ct = http::HeaderValue::from_str(&img.manifest_type)
        .map_err(|_| Error::invalid(format!("stored manifest type {:?}", img.manifest_type)))?;
    reg.client
        .push_manifest_raw(&target, img.manifest.clone(), ct)
        .await
        .map_err(|e| registry_error(&dest.registry, e))?;
    Ok(Pushed {
        sent,
        skipped,
        digest: img.manifest_digest.clone(),
    })
}

/// A file as a stream of 1 MiB chunks.
fn tokio_util_free_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |state| async move {
        let mut f = state?;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((
                Err(oci_client::errors::OciDistributionError::IoError(e)),
                None,
            )),
        }
    })
    .boxed()
}
