//! The store: one root directory, its SQLite metadata and the files it
//! names (see the crate's documentation for the layout).

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::digest::hex_of;
use crate::error::{Context, Error, Result};
use crate::reference::Reference;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- the config's digest (Docker's and Podman's image id)
    manifest_digest TEXT NOT NULL,
    manifest_type TEXT NOT NULL,
    manifest BLOB NOT NULL,           -- as received: its digest is of these bytes
    config BLOB NOT NULL,
    created TEXT,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,            -- registry/repository:tag, whole
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS digests (  -- repository@digest names an image too
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (repo, digest)
);
CREATE TABLE IF NOT EXISTS pinned (   -- repository@digest of an image pulled by digest alone: a name
    name TEXT PRIMARY KEY,            -- as Podman keeps it, so the image is not dangling
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS pinned_by_image ON pinned(image_id);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    blob TEXT NOT NULL,               -- the layer's blob digest in this image's manifest
    PRIMARY KEY (image_id, idx)
);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL             -- bytes of file content unpacked
);
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS names_by_image ON names(image_id);
CREATE INDEX IF NOT EXISTS digests_by_image ON digests(image_id);
CREATE INDEX IF NOT EXISTS image_layers_by_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS registries (  -- how a registry answered last (https or http)
    registry TEXT PRIMARY KEY,
    scheme TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (     -- what holds a layer beside images (image mounts, containers)
    holder TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS build_cache (  -- skiff build: a step's result by its key
    key TEXT PRIMARY KEY,             -- sha256 of the parent config and the step
    config BLOB NOT NULL,             -- the stage's image config after the step
    layers TEXT NOT NULL,             -- JSON: its layers' descriptors after the step
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS build_layers ( -- the layers and blobs a cached step holds
    key TEXT NOT NULL REFERENCES build_cache(key) ON DELETE CASCADE,
    chain_id TEXT NOT NULL,
    blob TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS build_layers_by_key ON build_layers(key);
";

pub struct Store {
    pub root: PathBuf,
    db: Connection,
}

/// Every blob (digest, size) and layer (chain id, diff id) recorded.
pub type Recorded = (Vec<(String, u64)>, Vec<(String, String)>);

/// An image as the store lists it.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub manifest_digest: String,
    pub manifest_type: String,
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub created: Option<String>,
    pub added: i64,
    pub names: Vec<String>,
    pub digests: Vec<String>,
    /// `repository@digest` names it was pulled by, without a tag.
    pub pinned: Vec<String>,
    /// Unpacked size of its layers, bytes.
    pub size: u64,
}

impl Image {
    /// Named by nothing: neither a tag nor a pull by digest (Podman's and
    /// Docker's dangling; what `image prune` removes).
    pub fn dangling(&self) -> bool {
        self.names.is_empty() && self.pinned.is_empty()
    }

    /// Which of its names `what` (as a user typed it) is, if it is one:
    /// by its whole form, or by its last components (`app:1` for
    /// `localhost/app:1`, `app` for `.../app:latest`), as rmi and --rmi
    /// take a name.
    pub fn name_given(&self, what: &str) -> Option<String> {
        Reference::parse(what)
            .ok()
            .map(|r| r.name())
            .filter(|n| self.names.contains(n))
            .or_else(|| {
                self.names
                    .iter()
                    .find(|n| {
                        n.ends_with(&format!("/{what}")) || n.ends_with(&format!("/{what}:latest"))
                    })
                    .cloned()
            })
    }
}

/// A layer of an image: its chain id, its blob in that image's manifest.
#[derive(Debug, Clone)]
pub struct ImageLayer {
    pub chain_id: String,
    pub diff_id: String,
    pub blob: String,
    pub size: u64,
}

/// What `put_image` records.
pub struct NewImage<'a> {
    pub id: &'a str,
    pub manifest_digest: &'a str,
    pub manifest_type: &'a str,
    pub manifest: &'a [u8],
    pub config: &'a [u8],
    pub created: Option<&'a str>,
    /// (chain id, blob digest) of each layer, bottom first; all in `layers`.
    pub layers: &'a [(String, String)],
}

impl Store {
    /// Opens (making it if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "ingest", "layers", "locks", "tmp", "mounts"] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx(|| format!("making {}", p.display()))?;
        }
        let path = root.join("store.db");
        let db = Connection::open(&path)?;
        db.busy_timeout(std::time::Duration::from_secs(60))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(SCHEMA)?;
        Ok(Store {
            root: root.to_path_buf(),
            db,
        })
    }

    /// The default root: /var/lib/skiff for root, else
    /// $XDG_DATA_HOME/skiff (~/.local/share/skiff).
    pub fn default_root() -> PathBuf {
        if !crate::rootless() {
            return PathBuf::from("/var/lib/skiff");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        data.join("skiff")
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    pub fn ingest_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self
            .root
            .join("ingest")
            .join(format!("{}.partial", hex_of(digest)?)))
    }

    pub fn layer_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(hex_of(chain_id)?))
    }

    /// A fresh directory under tmp/ (same filesystem as the store's).
    pub fn scratch(&self, what: &str) -> Result<PathBuf> {
        let n = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = self
            .root
            .join("tmp")
            .join(format!("{what}.{}.{n}", std::process::id()));
        fs::create_dir(&p).ctx(|| format!("making {}", p.display()))?;
        Ok(p)
    }

    /// Whether a blob is in the store (recorded and on disk).
    pub fn has_blob(&self, digest: &str) -> Result<bool> {
        let known: Option<i64> = self
            .db
            .query_row("SELECT 1 FROM blobs WHERE digest = ?1", [digest], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(known.is_some() && self.blob_path(digest)?.exists())
    }

    /// Moves a checked file into blobs/ and records it.
    pub fn commit_blob(
        &self,
        file: &Path,
        digest: &str,
        media_type: &str,
        size: u64,
    ) -> Result<()> {
        let dest = self.blob_path(digest)?;
        fs::rename(file, &dest)
            .ctx(|| format!("moving {} to {}", file.display(), dest.display()))?;
        self.db.execute(
            "INSERT OR REPLACE INTO blobs (digest, media_type, size) VALUES (?1, ?2, ?3)",
            params![digest, media_type, size as i64],
        )?;
        Ok(())
    }

    /// Writes bytes as a blob (configs and manifests of loads and commits).
    pub fn write_blob(&self, bytes: &[u8], media_type: &str) -> Result<String> {
        let digest = crate::digest::of(bytes);
        if !self.has_blob(&digest)? {
            let tmp = self.ingest_path(&digest)?;
            fs::write(&tmp, bytes).ctx(|| format!("writing {}", tmp.display()))?;
            self.commit_blob(&tmp, &digest, media_type, bytes.len() as u64)?;
        }
        Ok(digest)
    }

    pub fn has_layer(&self, chain_id: &str) -> Result<bool> {
        let known: Option<i64> = self
            .db
            .query_row(
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                [chain_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(known.is_some() && self.layer_dir(chain_id)?.join("diff").is_dir())
    }

    /// Moves an unpacked layer (a directory holding `diff`) into place and
    /// records it.
    pub fn commit_layer(
        &self,
        staged: &Path,
        chain_id: &str,
        diff_id: &str,
        parent: Option<&str>,
        size: u64,
    ) -> Result<()> {
        let dest = self.layer_dir(chain_id)?;
        if dest.exists() {
            // A record-less leftover of a crash between the rename and the insert.
            remove_tree(&dest)?;
        }
        fs::rename(staged, &dest)
            .ctx(|| format!("moving {} to {}", staged.display(), dest.display()))?;
        self.db.execute(
            "INSERT OR REPLACE INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
            params![chain_id, diff_id, parent, size as i64],
        )?;
        Ok(())
    }

    /// Holds an exclusive lock on one layer's making until dropped: a
    /// second pull of the same layer waits here, then finds it made.
    pub fn lock(&self, key: &str) -> Result<fs::File> {
        lock_file(&self.root.join("locks").join(key))
    }

    /// Records an image whose blobs and layers are all in the store, and
    /// points `names` at it (away from any image they named before), in
    /// one transaction.
    pub fn put_image(&mut self, img: &NewImage, names: &[Reference]) -> Result<()> {
        let now = unix_now();
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM images WHERE id = ?1", [img.id], |r| r.get(0))
            .optional()?;
        if exists.is_none() {
            tx.execute(
                "INSERT INTO images (id, manifest_digest, manifest_type, manifest, config, created, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![img.id, img.manifest_digest, img.manifest_type, img.manifest, img.config, img.created, now],
            )?;
            for (i, (chain, blob)) in img.layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, chain_id, blob) VALUES (?1, ?2, ?3, ?4)",
                    params![img.id, i as i64, chain, blob],
                )?;
            }
        }
        for r in names {
            match (&r.tag, &r.digest) {
                (Some(tag), _) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO names (name, image_id) VALUES (?1, ?2)",
                        params![format!("{}:{tag}", r.repo()), img.id],
                    )?;
                }
                (None, Some(d)) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO pinned (name, image_id) VALUES (?1, ?2)",
                        params![format!("{}@{d}", r.repo()), img.id],
                    )?;
                }
                (None, None) => {}
            }
            tx.execute(
                "INSERT OR REPLACE INTO digests (repo, digest, image_id) VALUES (?1, ?2, ?3)",
                params![
                    r.repo(),
                    r.digest.as_deref().unwrap_or(img.manifest_digest),
                    img.id
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Gives a recorded image another manifest of the same config and
    /// layers (a build's with its `--annotation`s): its digest, type and
    /// bytes.
    pub fn replace_manifest(
        &mut self,
        id: &str,
        digest: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<()> {
        self.db.execute(
            "UPDATE images SET manifest_digest = ?2, manifest_type = ?3, manifest = ?4 WHERE id = ?1",
            params![id, digest, media_type, manifest],
        )?;
        Ok(())
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<Image>> {
        self.images_where(None)
    }

    /// One image by its id.
    pub fn image(&self, id: &str) -> Result<Image> {
        self.images_where(Some(id))?
            .pop()
            .ok_or_else(|| Error::NoImage(id.to_string()))
    }

    /// Every image, or the one with this id; names and digests with each.
    fn images_where(&self, id: Option<&str>) -> Result<Vec<Image>> {
        let only = id.unwrap_or("");
        let all = id.is_none();
        let mut names: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut st = self
            .db
            .prepare("SELECT name, image_id FROM names WHERE ?1 OR image_id = ?2 ORDER BY name")?;
        for row in st.query_map(params![all, only], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (n, id) = row?;
            names.entry(id).or_default().push(n);
        }
        let mut digests: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut st = self.db.prepare(
            "SELECT repo, digest, image_id FROM digests WHERE ?1 OR image_id = ?2 ORDER BY repo",
        )?;
        for row in st.query_map(params![all, only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })? {
            let (repo, d, id) = row?;
            digests.entry(id).or_default().push(format!("{repo}@{d}"));
        }
        let mut pinned: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut st = self
            .db
            .prepare("SELECT name, image_id FROM pinned WHERE ?1 OR image_id = ?2 ORDER BY name")?;
        for row in st.query_map(params![all, only], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (n, id) = row?;
            pinned.entry(id).or_default().push(n);
        }
        let mut st = self.db.prepare(
            "SELECT i.id, i.manifest_digest, i.manifest_type, i.manifest, i.config, i.created, i.added,
                    (SELECT COALESCE(SUM(l.size), 0) FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                     WHERE il.image_id = i.id)
             FROM images i WHERE ?1 OR i.id = ?2 ORDER BY i.added DESC, i.id",
        )?;
        let rows = st.query_map(params![all, only], |r| {
            Ok(Image {
                id: r.get(0)?,
                manifest_digest: r.get(1)?,
                manifest_type: r.get(2)?,
                manifest: r.get(3)?,
                config: r.get(4)?,
                created: r.get(5)?,
                added: r.get(6)?,
                names: vec![],
                digests: vec![],
                pinned: vec![],
                size: r.get::<_, i64>(7)? as u64,
            })
        })?;
        let mut out = vec![];
        for row in rows {
            let mut img = row?;
            img.names = names.remove(&img.id).unwrap_or_default();
            img.digests = digests.remove(&img.id).unwrap_or_default();
            img.pinned = pinned.remove(&img.id).unwrap_or_default();
            out.push(img);
        }
        Ok(out)
    }

    /// Image ids a query with one text parameter answers (at most 2: one
    /// is an answer, two an ambiguity).
    fn ids(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<String>> {
        let mut st = self.db.prepare(sql)?;
        let rows = st.query_map(p, |r| r.get::<_, String>(0))?;
        let mut out: Vec<String> = vec![];
        for r in rows {
            let id = r?;
            if !out.contains(&id) {
                out.push(id);
            }
            if out.len() == 2 {
                break;
            }
        }
        Ok(out)
    }

    /// Finds an image by name (made whole as a reference is), by
    /// repository@digest, by its id or a unique prefix of it (12 hex digits
    /// as `images` shows), or by a name's trailing path (`busybox:1`
    /// finds `127.0.0.1:5000/busybox:1` when only one name ends so). Asks
    /// the database for the one image, not for all.
    pub fn find(&self, what: &str) -> Result<Image> {
        let hexpart = what.strip_prefix("sha256:").unwrap_or(what);
        if hexpart.len() >= 3 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits = self.ids(
                "SELECT id FROM images WHERE substr(id, 8, ?2) = ?1",
                &[&hexpart.to_ascii_lowercase(), &(hexpart.len() as i64)],
            )?;
            match hits.len() {
                1 => return self.image(&hits[0]),
                0 => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "{what}: more than one image id starts so"
                    )))
                }
            }
        }
        if let Ok(r) = Reference::parse(what) {
            let hits = match &r.digest {
                Some(d) => self.ids(
                    "SELECT image_id FROM digests WHERE repo = ?1 AND digest = ?2",
                    &[&r.repo(), d],
                )?,
                None => self.ids("SELECT image_id FROM names WHERE name = ?1", &[&r.name()])?,
            };
            if let Some(id) = hits.first() {
                return self.image(id);
            }
        }
        let want = if what.contains(':') || what.contains('@') {
            format!("/{what}")
        } else {
            format!("/{what}:latest")
        };
        let hits = self.ids(
            "SELECT image_id FROM names WHERE substr(name, -?2) = ?1",
            &[&want, &(want.len() as i64)],
        )?;
        match hits.len() {
            1 => self.image(&hits[0]),
            0 => Err(Error::NoImage(what.to_string())),
            _ => Err(Error::invalid(format!(
                "{what}: more than one image has a name ending so; give the whole name"
            ))),
        }
    }

    /// The layers of an image, bottom first.
    pub fn layers_of(&self, id: &str) -> Result<Vec<ImageLayer>> {
        let mut st = self.db.prepare(
            "SELECT il.chain_id, l.diff_id, il.blob, l.size FROM image_layers il
             JOIN layers l ON l.chain_id = il.chain_id WHERE il.image_id = ?1 ORDER BY il.idx",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(ImageLayer {
                chain_id: r.get(0)?,
                diff_id: r.get(1)?,
                blob: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn blob_media_type(&self, digest: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .query_row(
                "SELECT media_type FROM blobs WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Points a name at an image (away from any other).
    pub fn tag(&mut self, id: &str, name: &Reference) -> Result<()> {
        let tag = name.tag.as_ref().ok_or_else(|| {
            Error::invalid(format!("{name}: a tag is a name with a tag, not a digest"))
        })?;
        self.db.execute(
            "INSERT OR REPLACE INTO names (name, image_id) VALUES (?1, ?2)",
            params![format!("{}:{tag}", name.repo()), id],
        )?;
        Ok(())
    }

    /// Removes one name; whether it was there.
    pub fn untag(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .db
            .execute("DELETE FROM names WHERE name = ?1", [name])?
            > 0)
    }

    /// Whether a registry answered over plain HTTP last time.
    pub fn answered_plain(&self, registry: &str) -> Result<bool> {
        let scheme: Option<String> = self
            .db
            .query_row(
                "SELECT scheme FROM registries WHERE registry = ?1",
                [registry],
                |r| r.get(0),
            )
            .optional()?;
        Ok(scheme.as_deref() == Some("http"))
    }

    /// Remembers how a registry answered.
    pub fn note_scheme(&self, registry: &str, plain: bool) -> Result<()> {
        self.db.execute(
            "INSERT OR REPLACE INTO registries (registry, scheme) VALUES (?1, ?2)",
            params![registry, if plain { "http" } else { "https" }],
        )?;
        Ok(())
    }

    /// What holds an image besides its names (image mounts; containers).
    pub fn holders(&self, id: &str) -> Result<Vec<String>> {
        let mut st = self
            .db
            .prepare("SELECT holder FROM users WHERE image_id = ?1 ORDER BY holder")?;
        let rows = st.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn hold(&mut self, holder: &str, id: &str) -> Result<()> {
        self.db.execute(
            "INSERT OR REPLACE INTO users (holder, image_id) VALUES (?1, ?2)",
            params![holder, id],
        )?;
        Ok(())
    }

    pub fn release(&mut self, holder: &str) -> Result<bool> {
        Ok(self
            .db
            .execute("DELETE FROM users WHERE holder = ?1", [holder])?
            > 0)
    }

    /// A cached build step's result: (config, layers as JSON).
    pub fn build_cache_get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        Ok(self
            .db
            .query_row(
                "SELECT config, layers FROM build_cache WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records a build step's result; its layers ((chain id, blob digest)
    /// each) are kept by `collect` while the row lives.
    pub fn build_cache_put(
        &mut self,
        key: &str,
        config: &[u8],
        layers_json: &str,
        layers: &[(String, String)],
    ) -> Result<()> {
        let now = unix_now();
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM build_layers WHERE key = ?1", [key])?;
        tx.execute(
            "INSERT OR REPLACE INTO build_cache (key, config, layers, created) VALUES (?1, ?2, ?3, ?4)",
            params![key, config, layers_json, now],
        )?;
        for (chain, blob) in layers {
            tx.execute(
                "INSERT INTO build_layers (key, chain_id, blob) VALUES (?1, ?2, ?3)",
                params![key, chain, blob],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The cached build steps, and the unpacked bytes of the layers only
    /// they hold (what `image prune --build-cache` would free).
    pub fn build_cache_usage(&self) -> Result<(u64, u64)> {
        let steps: i64 = self
            .db
            .query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))?;
        let bytes: i64 = self.db.query_row(
            "SELECT COALESCE(SUM(size), 0) FROM layers WHERE chain_id IN (SELECT chain_id FROM build_layers)
             AND chain_id NOT IN (SELECT chain_id FROM image_layers)",
            [],
            |r| r.get(0),
        )?;
        Ok((steps.max(0) as u64, bytes.max(0) as u64))
    }

    /// Forgets every cached build step (`image prune --build-cache`); the
    /// number forgotten. Their layers go with the next `collect`.
    pub fn build_cache_clear(&mut self) -> Result<usize> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM build_layers", [])?;
        let n = tx.execute("DELETE FROM build_cache", [])?;
        tx.commit()?;
        Ok(n)
    }

    /// Forgets an image (names, digests, layer list); its files go with
    /// the next `collect`.
    pub fn remove_image(&mut self, id: &str) -> Result<()> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM names WHERE image_id = ?1", [id])?;
        tx.execute("DELETE FROM digests WHERE image_id = ?1", [id])?;
        tx.execute("DELETE FROM pinned WHERE image_id = ?1", [id])?;
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [id])?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Removes layers and blobs no image uses, and leftovers of
    /// interrupted work (tmp/, ingest/ of no running process); the bytes
    /// freed (on disk, as du counts them).
    pub fn collect(&mut self, keep_partial: bool) -> Result<u64> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let unused = |sql: &str| -> Result<Vec<String>> {
            let mut st = tx.prepare(sql)?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        };
        let layers = unused(
            "SELECT chain_id FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)
             AND chain_id NOT IN (SELECT chain_id FROM build_layers)",
        )?;
        let blobs = unused(
            "SELECT digest FROM blobs WHERE digest NOT IN (SELECT blob FROM image_layers)
             AND digest NOT IN (SELECT blob FROM build_layers)
             AND digest NOT IN (SELECT id FROM images) AND digest NOT IN (SELECT manifest_digest FROM images)",
        )?;
        for l in &layers {
            tx.execute("DELETE FROM layers WHERE chain_id = ?1", [l])?;
        }
        for b in &blobs {
            tx.execute("DELETE FROM blobs WHERE digest = ?1", [b])?;
        }
        tx.commit()?;
        let mut freed = 0;
        for l in &layers {
            let d = self.layer_dir(l)?;
            freed += disk_usage(&d);
            remove_tree(&d)?;
        }
        for b in &blobs {
            let p = self.blob_path(b)?;
            freed += disk_usage(&p);
            let _ = fs::remove_file(&p);
        }
        // Files no record names: a crash between a rename and its insert.
        let known_layers: std::collections::HashSet<String> = {
            let mut st = self.db.prepare("SELECT chain_id FROM layers")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.filter_map(|r| r.ok())
                .map(|c| c["sha256:".len()..].to_string())
                .collect()
        };
        for e in fs::read_dir(self.root.join("layers"))
            .ctx(|| "reading layers/".into())?
            .flatten()
        {
            if !known_layers.contains(&*e.file_name().to_string_lossy()) {
                freed += disk_usage(&e.path());
                remove_tree(&e.path())?;
            }
        }
        for e in fs::read_dir(self.root.join("tmp"))
            .ctx(|| "reading tmp/".into())?
            .flatten()
        {
            if !made_by_a_live_process(&e.file_name().to_string_lossy()) {
                freed += disk_usage(&e.path());
                remove_tree(&e.path())?;
            }
        }
        if !keep_partial {
            for e in fs::read_dir(self.root.join("ingest"))
                .ctx(|| "reading ingest/".into())?
                .flatten()
            {
                freed += disk_usage(&e.path());
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(freed)
    }

    /// Every blob and layer recorded: (digest or chain id, its path).
    pub fn recorded(&self) -> Result<Recorded> {
        let mut st = self.db.prepare("SELECT digest, size FROM blobs")?;
        let blobs = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<std::result::Result<_, _>>()?;
        let mut st = self.db.prepare("SELECT chain_id, diff_id FROM layers")?;
        let layers = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        Ok((blobs, layers))
    }

    /// Forgets a damaged blob or layer (and the images that need it).
    pub fn forget_damaged(
        &mut self,
        blob: Option<&str>,
        layer: Option<&str>,
    ) -> Result<Vec<String>> {
        let mut ids: Vec<String> = vec![];
        {
            let mut st = self.db.prepare(
                "SELECT DISTINCT image_id FROM image_layers WHERE blob = ?1 OR chain_id = ?2",
            )?;
            let rows = st.query_map(params![blob, layer], |r| r.get(0))?;
            for r in rows {
                ids.push(r?);
            }
        }
        for id in &ids {
            self.remove_image(id)?;
        }
        if let Some(b) = blob {
            self.db
                .execute("DELETE FROM blobs WHERE digest = ?1", [b])?;
            let _ = fs::remove_file(self.blob_path(b)?);
        }
        if let Some(l) = layer {
            self.db
                .execute("DELETE FROM layers WHERE chain_id = ?1", [l])?;
            remove_tree(&self.layer_dir(l)?)?;
        }
        Ok(ids)
    }
}

/// tmp/ entries are named WHAT.PID.N: kept while PID runs.
fn made_by_a_live_process(name: &str) -> bool {
    let pid = name.split('.').nth(1).and_then(|p| p.parse::<i32>().ok());
    match pid {
        Some(p) if p > 0 => Path::new(&format!("/proc/{p}")).exists(),
        _ => false,
    }
}

/// Bytes a tree takes on disk (blocks, as du counts; hard links once).
pub fn disk_usage(path: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = fs::symlink_metadata(p) else {
            return 0;
        };
        let mut n = if m.nlink() > 1 && !m.is_dir() {
            if seen.insert((m.dev(), m.ino())) {
                m.blocks() * 512
            } else {
                0
            }
        } else {
            m.blocks() * 512
        };
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    n += walk(&e.path(), seen);
                }
            }
        }
        n
    }
    walk(path, &mut Default::default())
}

/// Removes a tree, also one holding read-only directories.
/// `path`, made if need be and locked (flock, exclusive) for as long as
/// the returned file is open.
pub fn lock_file(path: &Path) -> Result<fs::File> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("locking {}", path.display()))?;
    Ok(f)
}

pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            make_writable(path);
            fs::remove_dir_all(path).ctx(|| format!("removing {}", path.display()))
        }
        Err(e) => Err(Error::at(path, "removing", e)),
    }
}

fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::symlink_metadata(p) {
        if m.is_dir() {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

/// What `system check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub blobs: usize,
    pub layers: usize,
    /// One line per problem.
    pub problems: Vec<String>,
    /// What to forget on repair: (blob digest, layer chain id).
    pub damaged: Vec<(Option<String>, Option<String>)>,
}

/// Checks every recorded blob (its bytes' digest and size) and layer (its
/// directory, and the bytes of file content it holds against the count
/// made when it was unpacked).
pub fn check(store: &Store) -> Result<CheckReport> {
    let mut r = CheckReport::default();
    let (blobs, layers) = store.recorded()?;
    for (digest, size) in blobs {
        r.blobs += 1;
        let path = store.blob_path(&digest)?;
        let got = std::fs::File::open(&path).and_then(|f| {
            let mut h = crate::digest::HashingReader {
                inner: f,
                hasher: Default::default(),
            };
            std::io::copy(&mut h, &mut std::io::sink())?;
            Ok(h.hasher)
        });
        let problem = match got {
            Err(e) => Some(format!("blob {digest}: {e}")),
            Ok(h) if h.len != size => {
                Some(format!("blob {digest}: {} bytes, recorded {size}", h.len))
            }
            Ok(h) => {
                let d = h.finish();
                (d != digest).then(|| format!("blob {digest}: damaged, its bytes digest to {d}"))
            }
        };
        if let Some(p) = problem {
            r.problems.push(p);
            r.damaged.push((Some(digest), None));
        }
    }
    let sizes: std::collections::HashMap<String, u64> = {
        let mut st = store.db.prepare("SELECT chain_id, size FROM layers")?;
        let rows = st.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })?;
        rows.filter_map(|x| x.ok()).collect()
    };
    for (chain, _diff) in layers {
        r.layers += 1;
        let dir = store.layer_dir(&chain)?.join("diff");
        let problem = if !dir.is_dir() {
            Some(format!(
                "layer {chain}: its directory {} is missing",
                dir.display()
            ))
        } else {
            let have = content_bytes(&dir);
            let want = sizes.get(&chain).copied().unwrap_or(0);
            (have != want).then(|| {
                format!("layer {chain}: holds {have} bytes of file content, unpacked {want}")
            })
        };
        if let Some(p) = problem {
            r.problems.push(p);
            r.damaged.push((None, Some(chain)));
        }
    }
    Ok(r)
}

/// Bytes of regular file content in a tree, a hard-linked file once (as
/// unpacking wrote it: a link adds no bytes).
fn content_bytes(p: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(rd) = fs::read_dir(p) else { return 0 };
        let mut n = 0;
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                n += walk(&e.path(), seen);
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                n += m.len();
            }
        }
        n
    }
    walk(p, &mut Default::default())
}

/// Seconds since the epoch, as the tables record times.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
