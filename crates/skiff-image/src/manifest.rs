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

    /// How well an index entry's platform serves `want`: None when it
    /// cannot, else a rank (0 best), as containers/image ranks them. OS and
    /// architecture must match. An asked-for variant is best matched
    /// exactly, then by the older variants that architecture runs (arm v7
    /// runs v6 and v5), then by an entry without a variant (`linux/arm64`
    /// serves `linux/arm64/v8`, the variant most indexes leave out). With
    /// no variant asked, an entry without one comes first, then any.
    pub fn rank(&self, want: &Platform) -> Option<usize> {
        if self.os != want.os || normal_arch(&self.architecture) != normal_arch(&want.architecture)
        {
            return None;
        }
        let arch = normal_arch(&want.architecture);
        let have = self.variant.as_deref().map(normal_variant);
        let older: &[&str] = match arch {
            "arm" => &["v8", "v7", "v6", "v5"],
            "arm64" => &["v8"],
            _ => &[],
        };
        match want.variant.as_deref().map(normal_variant) {
            Some(v) => {
                let chain: Vec<&str> = match older.iter().position(|o| *o == v) {
                    Some(i) => older[i..].to_vec(),
                    None => vec![v.as_str()],
                };
                match have {
                    None => Some(chain.len()),
                    Some(h) => chain.iter().position(|c| *c == h),
                }
            }
            None => match have {
                None => Some(0),
                Some(h) => Some(1 + older.iter().position(|o| *o == h).unwrap_or(older.len())),
            },
        }
    }

    /// The index entry that serves `want` best (the first of equals). An
    /// entry that names no platform (the image-spec makes it optional) is
    /// a last resort, as containerd and containers/image take it; its
    /// config says what it is.
    pub fn best<'a>(entries: &'a [Descriptor], want: &Platform) -> Option<&'a Descriptor> {
        entries
            .iter()
            .filter_map(|d| match &d.platform {
                Some(p) => Some((p.rank(want)?, d)),
                None => Some((usize::MAX, d)),
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

/// Go's architecture names for the aliases images also carry.
fn normal_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "armhf" | "armel" => "arm",
        other => other,
    }
}

/// `8` and `v8` are one variant.
fn normal_variant(v: &str) -> String {
    if v.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        format!("v{v}")
    } else {
        v.to_string()
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
        if !(mt.is_empty() || mt == OCI_MANIFEST || mt == DOCKER_MANIFEST) {
            return Err(Error::invalid(format!(
                "manifest mediaType {mt:?} is neither an image manifest nor an index"
            )));
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("image manifest: {e}")))?;
        // An artifact (a Helm chart, a signature, a WASM module) rides in
        // an image manifest with a config of its own type: not runnable,
        // and said so, as Podman says it.
        if m.config.media_type != OCI_CONFIG && m.config.media_type != DOCKER_CONFIG {
            return Err(Error::invalid(format!(
                "manifest config.mediaType {:?}: an artifact, not a container image",
                m.config.media_type
            )));
        }
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
        // Non-distributable ("foreign") layers are fetched from the
        // registry like any other (image-spec: they MAY be); their `urls`
        // are not followed.
        "application/vnd.oci.image.layer.nondistributable.v1.tar" => Ok(Compression::None),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Ok(Compression::Zstd),
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
        assert!(p.rank(&any).is_some());
        assert!(Platform::parse("linux/arm64/v7")
            .unwrap()
            .rank(&p)
            .is_none());
    }

    fn entry(p: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{p}"),
            size: 1,
            platform: Some(Platform::parse(p).unwrap()),
            annotations: None,
        }
    }

    #[test]
    fn the_best_platform_is_picked_as_containers_image_picks_it() {
        let best = |entries: &[&str], want: &str| {
            let e: Vec<Descriptor> = entries.iter().map(|p| entry(p)).collect();
            Platform::best(&e, &Platform::parse(want).unwrap()).map(|d| d.digest[7..].to_string())
        };
        // An arm64 host asks for v8; most indexes say arm64 alone.
        assert_eq!(
            best(&["linux/amd64", "linux/arm64"], "linux/arm64/v8").as_deref(),
            Some("linux/arm64")
        );
        // The exact variant wins over none, wherever it stands.
        assert_eq!(
            best(&["linux/arm64", "linux/arm64/v8"], "linux/arm64/v8").as_deref(),
            Some("linux/arm64/v8")
        );
        // arm v7 runs v6, not v8; `7` is `v7`.
        assert_eq!(
            best(&["linux/arm/v8", "linux/arm/v6"], "linux/arm/7").as_deref(),
            Some("linux/arm/v6")
        );
        assert_eq!(best(&["linux/arm/v8"], "linux/arm/v7"), None);
        // No variant asked: an entry without one first, then any.
        assert_eq!(
            best(&["linux/arm/v7", "linux/arm"], "linux/arm").as_deref(),
            Some("linux/arm")
        );
        assert_eq!(
            best(&["linux/arm/v6", "linux/arm/v7"], "linux/arm").as_deref(),
            Some("linux/arm/v7")
        );
        assert_eq!(best(&["windows/amd64", "linux/s390x"], "linux/amd64"), None);
        // No platform named: taken when nothing else serves.
        let mut bare = entry("linux/s390x");
        bare.platform = None;
        bare.digest = "sha256:bare".into();
        let want = Platform::parse("linux/amd64").unwrap();
        let e = [entry("linux/s390x"), bare.clone(), entry("linux/amd64")];
        assert_eq!(
            Platform::best(&e, &want).unwrap().digest,
            "sha256:linux/amd64"
        );
        let e = [entry("linux/s390x"), bare];
        assert_eq!(Platform::best(&e, &want).unwrap().digest, "sha256:bare");
        assert_eq!(
            best(&["linux/x86_64"], "linux/amd64").as_deref(),
            Some("linux/x86_64")
        );
    }

    #[test]
    fn schema1_and_unknown_layers_are_refused_by_name() {
        let e = parse_document(None, br#"{"schemaVersion":1}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("schema 1"));
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":1},
            "layers":[{"mediaType":"application/x-weird","digest":"sha256:00","size":1}]}"#;
        let e = parse_document(Some(OCI_MANIFEST), m).err().unwrap();
        assert!(e.to_string().contains("application/x-weird"), "{e}");
        let helm = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:00","size":1},
            "layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"sha256:00","size":1}]}"#;
        let e = parse_document(None, helm).err().unwrap().to_string();
        assert!(
            e.contains("config.mediaType")
                && e.contains("application/vnd.cncf.helm.config.v1+json"),
            "{e}"
        );
        let artifact =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json",
            "blobs":[]}"#;
        let e = parse_document(None, artifact).err().unwrap().to_string();
        assert!(
            e.contains("mediaType") && e.contains("application/vnd.oci.artifact.manifest.v1+json"),
            "{e}"
        );
        for (mt, z) in [
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                Compression::None,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Compression::Zstd,
            ),
        ] {
            assert_eq!(layer_compression(mt).unwrap(), z, "{mt}");
        }
    }
}
