//! `search`: repositories of a registry whose names hold a term, from its
//! catalog (distribution-spec's `/v2/_catalog`, which registries without
//! Docker Hub's search API answer, as Podman reads it), and a
//! repository's tags (`--list-tags`).

use oci_client::RegistryOperation;

use crate::error::{Context, Error, Result};
use crate::reference::Reference;
use crate::registries::Registries;
use crate::registry::{registry_error, Options, Registry};

/// One line of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The registry it came from (Podman's Index).
    pub index: String,
    /// registry/repository.
    pub name: String,
    /// With --list-tags: the tag.
    pub tag: Option<String>,
}

/// A page of the catalog: distribution's default page is 100 names.
const PAGE: usize = 100;
/// Pages read at most (a registry that never stops paging is cut off).
const MAX_PAGES: usize = 100;

/// The registries to ask and the term to look for in their catalogs:
/// `REGISTRY/TERM`, or TERM in every unqualified-search registry.
fn targets(term: &str) -> Result<Vec<(String, String)>> {
    if let Some((first, rest)) = term.split_once('/') {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            return Ok(vec![(first.to_string(), rest.to_string())]);
        }
    }
    let search = Registries::load()?.search_registries().to_vec();
    if search.is_empty() {
        return Err(Error::invalid(format!(
            "search {term:?}: no registry named, and registries.conf has no unqualified-search-registries"
        )));
    }
    Ok(search.into_iter().map(|r| (r, term.to_string())).collect())
}

/// The repositories whose names hold `term` (`limit` of them at most per
/// registry), or with `list_tags` the tags of the one repository `term`
/// names (in the registry's order, as Podman lists them).
pub fn search(term: &str, opts: &Options, limit: usize, list_tags: bool) -> Result<Vec<Found>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx(|| "starting the network runtime".into())?;
    if list_tags {
        let last = term.rsplit('/').next().unwrap_or(term);
        let r = Reference::parse(term)?;
        if last.contains(':') || last.contains('@') {
            return Err(Error::invalid(format!(
                "search --list-tags {term:?}: a repository, without a tag or digest"
            )));
        }
        let tags = rt.block_on(tags_of(&r, opts))?;
        return Ok(tags
            .into_iter()
            .take(limit)
            .map(|t| Found {
                index: r.registry.clone(),
                name: format!("{}/{}", r.registry, r.repository),
                tag: Some(t),
            })
            .collect());
    }
    let mut found = vec![];
    for (registry, query) in targets(term)? {
        let names = rt.block_on(catalog(&registry, opts))?;
        found.extend(
            names
                .into_iter()
                .filter(|n| n.contains(&query))
                .take(limit)
                .map(|n| Found {
                    index: registry.clone(),
                    name: format!("{registry}/{n}"),
                    tag: None,
                }),
        );
    }
    Ok(found)
}

/// A client for `registry`, pinged as for a pull.
async fn connect(registry: &str, opts: &Options) -> Result<(Registry, Reference)> {
    // The catalog is the registry's; any repository name opens the client.
    let r = Reference::parse(&format!("{registry}/library/x"))?;
    let reg = Registry::connect(&r, opts, RegistryOperation::Pull).await?;
    Ok((reg, r))
}

/// Every repository of the registry's catalog, page by page.
async fn catalog(registry: &str, opts: &Options) -> Result<Vec<String>> {
    let (reg, r) = connect(registry, opts).await?;
    let target = r.client_ref(None);
    let mut names: Vec<String> = vec![];
    for _ in 0..MAX_PAGES {
        let page = reg
            .client
            .catalog(
                &target,
                &reg.auth,
                Some(PAGE),
                names.last().map(String::as_str),
            )
            .await
            .map_err(|e| registry_error(registry, e))?;
        let full = page.repositories.len() >= PAGE;
        names.extend(page.repositories);
        if !full {
            break;
        }
    }
    Ok(names)
}

/// The repository's tags, as the registry lists them.
async fn tags_of(r: &Reference, opts: &Options) -> Result<Vec<String>> {
    let reg = Registry::connect(r, opts, RegistryOperation::Pull).await?;
    let page = reg
        .client
        .list_tags(&r.client_ref(None), &reg.auth, None, None)
        .await
        .map_err(|e| registry_error(&r.registry, e))?;
    Ok(page.tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_registry_is_asked_alone() {
        assert_eq!(
            targets("127.0.0.1:5000/busy").unwrap(),
            vec![("127.0.0.1:5000".to_string(), "busy".to_string())]
        );
        assert_eq!(
            targets("localhost/lib/app").unwrap(),
            vec![("localhost".to_string(), "lib/app".to_string())]
        );
    }
}
