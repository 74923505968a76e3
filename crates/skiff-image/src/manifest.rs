//! The image documents the store reads and writes: manifests (OCI and
//! Docker v2 schema 2), indexes (OCI image indexes and Docker manifest
//! lists) and image configs. Unknown fields are kept where the document is
//! stored as received (its digest is of its bytes); these types read what
//! the engine needs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What a pull asks the registry for, in order of preference.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The machine this runs on, in Go's names (GOARCH), as images use them.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: (architecture == "arm64").then(|| "v8".into()),
        }
    }

    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(Error::invalid(format!(
                "--platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"
            ))),
        }
    }

    /// Whether an index entry's platform serves this one (a variant asked
    /// for must match; one not asked for matches any).
    pub fn serves(&self, want: &Platform) -> bool {
        self.os == want.os
            && self.architecture == want.architecture
            && (want.variant.is_none() || self.variant == want.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A document fetched by reference: an index to choose from, or a manifest.
pub enum Fetched {
    Index(Index),
    Manifest(Manifest),
}

/// Reads a manifest or index by its media type (the response's, else the
/// document's own field).
pub fn parse_document(media_type: Option<&str>, bytes: &[u8]) -> Result<Fetched> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        schema_version: Option<u32>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("manifest: not JSON: {e}")))?;
    if probe.schema_version == Some(1) {
        return Err(Error::invalid(
            "manifest: Docker schema 1 is not supported (deprecated since 2017); push the image again with a newer client",
        ));
    }
    let mt = probe.media_type.as_deref().or(media_type).unwrap_or("");
    let is_index =
        mt == OCI_INDEX || mt == DOCKER_LIST || (mt.is_empty() && probe.manifests.is_some());
    if is_index {
        serde_json::from_slice(bytes)
            .map(Fetched::Index)
            .map_err(|e| Error::invalid(format!("image index: {e}")))
    } else {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("image manifest: {e}")))?;
        for l in &m.layers {
            layer_compression(&l.media_type)?;
        }
        Ok(Fetched::Manifest(m))
    }
}

/// How a layer blob is compressed, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn layer_compression(media_type: &str) -> Result<Compression> {
    match media_type {
        OCI_LAYER | DOCKER_LAYER => Ok(Compression::None),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Ok(Compression::Gzip),
        OCI_LAYER_ZSTD => Ok(Compression::Zstd),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        other => Err(Error::invalid(format!(
            "layer media type {other:?} is not a layer this engine unpacks"
        ))),
    }
}

/// The parts of an image config (image-spec config.md) the engine reads.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    let c: ImageConfig =
        serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("image config: {e}")))?;
    if c.rootfs.kind != "layers" {
        return Err(Error::invalid(format!(
            "image config: rootfs.type {:?}: only \"layers\" is defined",
            c.rootfs.kind
        )));
    }
    for d in &c.rootfs.diff_ids {
        crate::digest::hex_of(d)?;
    }
    Ok(c)
}

/// Checks a manifest against its config: one diff id per layer, digests
/// the store can name files by.
pub fn check_pair(m: &Manifest, c: &ImageConfig) -> Result<()> {
    crate::digest::hex_of(&m.config.digest)?;
    for l in &m.layers {
        crate::digest::hex_of(&l.digest)?;
    }
    if m.layers.len() != c.rootfs.diff_ids.len() {
        return Err(Error::invalid(format!(
            "image config lists {} diff ids (rootfs.diff_ids) for a manifest of {} layers",
            c.rootfs.diff_ids.len(),
            m.layers.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
        let any = Platform::parse("linux/arm64").unwrap();
        assert!(p.serves(&any));
        assert!(!Platform::parse("linux/arm64/v7").unwrap().serves(&p));
    }

    #[test]
    fn schema1_and_unknown_layers_are_refused_by_name() {
        let e = parse_document(None, br#"{"schemaVersion":1}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("schema 1"));
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":1},
            "layers":[{"mediaType":"application/x-weird","digest":"sha256:00","size":1}]}"#;
        let e = parse_document(Some(OCI_MANIFEST), m).err().unwrap();
        assert!(e.to_string().contains("application/x-weird"), "{e}");
    }
}
