//! The layer cache: a table of the store's database. A step's key is a
//! digest of its parent (the stage's config so far, which names every
//! layer by diff id and every step by its history) and of the instruction
//! as it ran (after ARG and ENV substitution, with the digests of the
//! files it read and the build args RUN sees); its value is the stage's
//! config and layers after it.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use skiff_image::manifest::Descriptor;
use skiff_image::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,         -- sha256 of parent config digest + step
    config BLOB NOT NULL,         -- the stage's image config after the step
    layers TEXT NOT NULL,         -- JSON: the layer descriptors after it
    created INTEGER NOT NULL
);
";

pub struct Cache {
    db: Connection,
}

/// A stage's image so far: its config and its layers' descriptors.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub config: Vec<u8>,
    pub layers: Vec<Descriptor>,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache> {
        let db = Connection::open(root.join("store.db"))?;
        db.busy_timeout(std::time::Duration::from_secs(60))?;
        db.execute_batch(SCHEMA)?;
        Ok(Cache { db })
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

    pub fn get(&self, key: &str) -> Result<Option<Snapshot>> {
        let row: Option<(Vec<u8>, String)> = self
            .db
            .query_row(
                "SELECT config, layers FROM build_cache WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((config, layers)) = row else {
            return Ok(None);
        };
        // A row the program cannot read is a miss, not an error.
        Ok(serde_json::from_str(&layers)
            .ok()
            .map(|layers| Snapshot { config, layers }))
    }

    pub fn put(&self, key: &str, s: &Snapshot) -> Result<()> {
        let layers = serde_json::to_string(&s.layers)
            .map_err(|e| Error::invalid(format!("build cache: {e}")))?;
        self.db.execute(
            "INSERT OR REPLACE INTO build_cache (key, config, layers, created) VALUES (?1, ?2, ?3, ?4)",
            params![key, s.config, layers, crate::format::now()],
        )?;
        Ok(())
    }
}
