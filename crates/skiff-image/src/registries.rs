//! registries.conf as Podman and Buildah read it (containers-registries.conf(5),
//! version 2), kept to what a pull needs:
//! - `[aliases]`: a short name (`alpine`) stands for a whole one;
//! - `unqualified-search-registries`: where a short name without an alias
//!   is looked for, in order;
//! - `[[registry]]` with `prefix`, `location`, `insecure`, `blocked`,
//!   `mirror-by-digest-only` and `[[registry.mirror]]` (`location`,
//!   `insecure`): a reference under the prefix is fetched from the mirrors
//!   first, then from the location the prefix is rewritten to.
//!
//! Read from $CONTAINERS_REGISTRIES_CONF alone when set; else
//! /etc/containers/registries.conf, then for an unprivileged user
//! $XDG_CONFIG_HOME/containers/registries.conf in its place when it exists;
//! then each directory's registries.conf.d/*.conf in name order (Debian's
//! containers-common puts its aliases there). A later file's search list
//! and registries with the same prefix replace earlier ones; aliases add up.
//!
//! Where nothing says where a short name lives, it is Docker Hub's, as
//! Docker has it: Podman refuses such a name instead, which breaks every
//! `docker run busybox` habit. With several search registries each is
//! tried in turn (Podman's short-name-mode=permissive without a terminal);
//! skiff does not prompt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reference::Reference;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default)]
    registry: Vec<RegistryEntry>,
    /// Read by Podman; skiff never prompts (see above).
    #[serde(default)]
    #[allow(dead_code)]
    short_name_mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistryEntry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<Mirror>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Mirror {
    location: String,
    #[serde(default)]
    insecure: bool,
}

/// Where to fetch an image from: the reference to ask the registry for
/// (its name in the store stays the one the user asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub from: Reference,
    /// registries.conf says this registry is reached without TLS checks.
    pub insecure: bool,
    /// A mirror: a failure there moves on to the next.
    pub mirror: bool,
}

/// The merged configuration.
#[derive(Debug, Default)]
pub struct Registries {
    search: Vec<String>,
    aliases: BTreeMap<String, String>,
    registries: Vec<RegistryEntry>,
}

impl Registries {
    /// unqualified-search-registries: where a name without a registry is
    /// looked for.
    pub fn search_registries(&self) -> &[String] {
        &self.search
    }

    /// The files this process reads, in order (see the module's text).
    pub fn files() -> Vec<PathBuf> {
        if let Some(f) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
            return vec![PathBuf::from(f)];
        }
        let mut main = PathBuf::from("/etc/containers/registries.conf");
        let mut dirs = vec![PathBuf::from("/etc/containers/registries.conf.d")];
        if crate::rootless() {
            if let Some(cfg) = user_config_dir() {
                let mine = cfg.join("containers/registries.conf");
                if mine.exists() {
                    main = mine;
                }
                dirs.push(cfg.join("containers/registries.conf.d"));
            }
        }
        let mut out = vec![main];
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut drop_ins: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            drop_ins.sort();
            out.extend(drop_ins);
        }
        out
    }

    /// Reads and merges [`Registries::files`]; a file that is not there is
    /// nothing, one that does not parse is an error naming it.
    pub fn load() -> Result<Registries> {
        let mut merged = Registries::default();
        for f in Registries::files() {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::at(&f, "reading", e)),
            };
            merged.merge(&f, &text)?;
        }
        Ok(merged)
    }

    fn merge(&mut self, path: &Path, text: &str) -> Result<()> {
        let file: File =
            toml::from_str(text).map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
        if let Some(s) = file.unqualified_search_registries {
            self.search = s;
        }
        for (short, whole) in file.aliases {
            Reference::parse(&whole)
                .map_err(|e| Error::invalid(format!("{}: aliases.{short}: {e}", path.display())))?;
            self.aliases.insert(short, whole);
        }
        for r in file.registry {
            let prefix = r
                .prefix
                .clone()
                .or_else(|| r.location.clone())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: a [[registry]] has neither prefix nor location",
                        path.display()
                    ))
                })?;
            self.registries
                .retain(|old| old.prefix.as_ref().or(old.location.as_ref()) != Some(&prefix));
            self.registries.push(r);
        }
        Ok(())
    }

    /// What a name typed by the user may mean, most likely first: the
    /// name itself when it names a registry; else its alias; else the
    /// search registries in order; else Docker Hub.
    pub fn candidates(&self, typed: &str) -> Result<Vec<Reference>> {
        if !is_short(typed) {
            return Ok(vec![Reference::parse(typed)?]);
        }
        let (name, suffix) = split_name(typed);
        if let Some(whole) = self.aliases.get(name) {
            return Ok(vec![Reference::parse(&format!("{whole}{suffix}"))?]);
        }
        if self.search.is_empty() {
            return Ok(vec![Reference::parse(typed)?]);
        }
        self.search
            .iter()
            .map(|reg| Reference::parse(&format!("{reg}/{typed}")))
            .collect()
    }

    /// Where `r` is fetched from: its mirrors, then its (rewritten)
    /// location; refused when its registry is blocked.
    pub fn endpoints(&self, r: &Reference) -> Result<Vec<Endpoint>> {
        let whole = r.repo();
        let Some((entry, prefix)) = self.entry_for(&whole) else {
            return Ok(vec![Endpoint {
                from: r.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if entry.blocked {
            return Err(Error::invalid(format!(
                "{whole}: its registry is blocked in registries.conf ({})",
                self.describe(prefix)
            )));
        }
        let rewrite = |location: &str| -> Result<Reference> {
            let rest = &whole[prefix.len().min(whole.len())..];
            let mut to = Reference::parse(&format!("{location}{rest}")).map_err(|e| {
                Error::invalid(format!("registries.conf: location {location:?}: {e}"))
            })?;
            to.tag = r.tag.clone();
            to.digest = r.digest.clone();
            Ok(to)
        };
        let mut out = vec![];
        if !entry.mirror_by_digest_only || r.digest.is_some() {
            for m in &entry.mirror {
                out.push(Endpoint {
                    from: rewrite(&m.location)?,
                    insecure: m.insecure,
                    mirror: true,
                });
            }
        }
        let location = entry.location.clone().unwrap_or_else(|| prefix.to_string());
        out.push(Endpoint {
            from: rewrite(&location)?,
            insecure: entry.insecure,
            mirror: false,
        });
        Ok(out)
    }

    /// The [[registry]] whose prefix matches `whole` (`registry/repo`)
    /// longest, and that prefix. A prefix matches at a path boundary;
    /// `*.example.com` matches any subdomain's registry.
    fn entry_for<'a>(&'a self, whole: &'a str) -> Option<(&'a RegistryEntry, &'a str)> {
        self.registries
            .iter()
            .filter_map(|e| {
                let prefix = e.prefix.as_deref().or(e.location.as_deref())?;
                let len = prefix_match(prefix, whole)?;
                Some((e, prefix, len))
            })
            .max_by_key(|(_, _, len)| *len)
            .map(|(e, p, _)| {
                // A wildcard prefix rewrites the registry part it matched.
                (
                    e,
                    if p.starts_with("*.") {
                        whole.split('/').next().unwrap_or(p)
                    } else {
                        p
                    },
                )
            })
    }

    fn describe(&self, prefix: &str) -> String {
        format!("[[registry]] prefix {prefix:?}")
    }
}

/// How much of `whole` `prefix` covers, when it matches.
fn prefix_match(prefix: &str, whole: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let registry = whole.split('/').next()?;
        let host = registry.split(':').next()?;
        return host
            .ends_with(&format!(".{domain}"))
            .then_some(registry.len());
    }
    let rest = whole.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')).then_some(prefix.len())
}

/// A name without a registry: its first component has no dot or port and
/// is not localhost (Docker's rule for where the registry part ends).
pub fn is_short(typed: &str) -> bool {
    match typed.split_once('/') {
        None => true,
        Some((first, _)) => !(first.contains('.') || first.contains(':') || first == "localhost"),
    }
}

/// `name[:tag][@digest]` as the name and what follows it.
fn split_name(typed: &str) -> (&str, &str) {
    let end = typed.find('@').unwrap_or(typed.len());
    let end = typed[..end]
        .rfind(':')
        .filter(|i| !typed[i + 1..end].contains('/'))
        .unwrap_or(end);
    typed.split_at(end)
}

fn user_config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Registries {
        let mut r = Registries::default();
        r.merge(Path::new("test.conf"), text).unwrap();
        r
    }

    #[test]
    fn short_names_resolve_through_aliases_then_search_then_docker_hub() {
        let r = conf(
            r#"
            unqualified-search-registries = ["quay.io", "docker.io"]
            [aliases]
            "app" = "registry.example.com/team/app"
            "#,
        );
        let names = |t: &str| -> Vec<String> {
            r.candidates(t).unwrap().iter().map(|c| c.name()).collect()
        };
        assert_eq!(names("app:2"), ["registry.example.com/team/app:2"]);
        assert_eq!(
            names("busybox"),
            ["quay.io/busybox:latest", "docker.io/library/busybox:latest"]
        );
        assert_eq!(names("localhost/x"), ["localhost/x:latest"]);
        assert_eq!(names("q.io/a/b"), ["q.io/a/b:latest"]);
        let none = Registries::default();
        assert_eq!(
            none.candidates("busybox").unwrap()[0].name(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn mirrors_come_first_and_prefixes_are_rewritten() {
        let r = conf(
            r#"
            [[registry]]
            prefix = "example.com/foo"
            location = "internal.example.com/bar"
            insecure = true
            [[registry.mirror]]
            location = "mirror.local:5000/cache"
            [[registry]]
            location = "blocked.example.com"
            blocked = true
            [[registry]]
            prefix = "*.digest.example"
            location = "d.example"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "m.example"
            "#,
        );
        let e = r
            .endpoints(&Reference::parse("example.com/foo/img:1").unwrap())
            .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].from.name(), "mirror.local:5000/cache/img:1");
        assert!(e[0].mirror && !e[0].insecure);
        assert_eq!(e[1].from.name(), "internal.example.com/bar/img:1");
        assert!(!e[1].mirror && e[1].insecure);
        // Not under the prefix: as asked.
        let e = r
            .endpoints(&Reference::parse("example.com/foobar/img").unwrap())
            .unwrap();
        assert_eq!(e[0].from.name(), "example.com/foobar/img:latest");
        let err = r
            .endpoints(&Reference::parse("blocked.example.com/x").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        // By tag: no mirror; the wildcard's registry is rewritten.
        let e = r
            .endpoints(&Reference::parse("a.digest.example/x:1").unwrap())
            .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].from.name(), "d.example/x:1");
    }

    #[test]
    fn later_files_replace_search_lists_and_prefixes_and_bad_files_are_named() {
        let mut r = conf("unqualified-search-registries = [\"a.io\"]\n[[registry]]\nlocation = \"x.io\"\nblocked = true\n");
        r.merge(
            Path::new("b.conf"),
            "unqualified-search-registries = [\"b.io\"]\n[[registry]]\nlocation = \"x.io\"\n",
        )
        .unwrap();
        assert_eq!(r.search, ["b.io"]);
        assert!(r.endpoints(&Reference::parse("x.io/y").unwrap()).is_ok());
        let err = Registries::default()
            .merge(
                Path::new("/etc/bad.conf"),
                "unqualified-search-registries = 3",
            )
            .unwrap_err();
        assert!(err.to_string().contains("/etc/bad.conf"), "{err}");
        let err = Registries::default()
            .merge(Path::new("c.conf"), "[aliases]\n\"x\" = \"Not A Name\"")
            .unwrap_err();
        assert!(err.to_string().contains("aliases.x"), "{err}");
    }
}
