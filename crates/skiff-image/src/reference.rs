//! Image references as users type them (`busybox`, `busybox:1.36`,
//! `127.0.0.1:5000/team/app@sha256:...`), made whole as Docker does: no
//! registry means docker.io, a single name there means library/NAME, no tag
//! means latest. The store keeps names whole (`docker.io/library/busybox:latest`).

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let r: oci_client::Reference = s
            .parse()
            .map_err(|e| Error::invalid(format!("image reference {s:?}: {e}")))?;
        if let Some(d) = r.digest() {
            crate::digest::hex_of(d)?;
        }
        let tag = match (r.tag(), r.digest()) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry: r.registry().to_string(),
            repository: r.repository().to_string(),
            tag,
            digest: r.digest().map(str::to_string),
        })
    }

    /// A name made here (tag, import, commit), as Podman makes it whole: a
    /// name without a registry is `localhost/NAME`, not Docker Hub's.
    pub fn parse_local(s: &str) -> Result<Reference> {
        let first = s.split('/').next().unwrap_or("");
        let has_registry =
            s.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        if has_registry {
            Reference::parse(s)
        } else {
            Reference::parse(&format!("localhost/{s}"))
        }
    }

    /// `registry/repository`.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name the store keeps: `registry/repository:tag`, or `@digest`
    /// when only a digest was given.
    pub fn name(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.repo()),
            (None, Some(d)) => format!("{}@{d}", self.repo()),
            (None, None) => self.repo(),
        }
    }

    /// oci-client's form of this reference, for one of its calls (a digest
    /// replaces the tag when given).
    pub fn client_ref(&self, digest: Option<&str>) -> oci_client::Reference {
        match digest.or(self.digest.as_deref()) {
            Some(d) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.to_string(),
            ),
            None => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                self.tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_made_whole_as_docker_does() {
        assert_eq!(
            Reference::parse("busybox").unwrap().name(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            Reference::parse("127.0.0.1:5000/a/b:1").unwrap().name(),
            "127.0.0.1:5000/a/b:1"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:5000/x@{d}")).unwrap();
        assert_eq!(r.name(), format!("localhost:5000/x@{d}"));
        assert!(Reference::parse("busy box").is_err());
        assert!(Reference::parse("Busybox").is_err());
        assert_eq!(
            Reference::parse_local("app").unwrap().name(),
            "localhost/app:latest"
        );
        assert_eq!(
            Reference::parse_local("team/app:2").unwrap().name(),
            "localhost/team/app:2"
        );
        assert_eq!(
            Reference::parse_local("quay.io/a/b:1").unwrap().name(),
            "quay.io/a/b:1"
        );
        assert!(Reference::parse("x@sha256:zz").is_err());
    }
}
