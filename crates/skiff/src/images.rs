//! The image commands.

use std::io::{IsTerminal, Read};

use serde_json::{json, Value};
use skiff_image::archive::{self, Format};
use skiff_image::manifest::{self, ImageConfig, Platform};
use skiff_image::reference::Reference;
use skiff_image::registry::{self, Options};
use skiff_image::store::{Image, Store};
use skiff_image::{pull, push, Error, Result};

use crate::cli::*;
use crate::format;

pub(crate) fn registry_options(a: &RegistryArgs, platform: Option<&str>) -> Result<Options> {
    let creds = match &a.creds {
        Some(c) => {
            let (u, p) = c
                .split_once(':')
                .ok_or_else(|| Error::invalid("--creds: expected USER:PASSWORD"))?;
            Some((u.to_string(), p.to_string()))
        }
        None => None,
    };
    Ok(Options {
        tls_verify: a.tls_verify,
        creds,
        authfile: a.authfile.clone(),
        platform: platform.map(Platform::parse).transpose()?,
        plain_before: false,
        cert_dir: a.cert_dir.clone(),
    })
}

pub(crate) fn pull_cmd(store: &mut Store, a: PullArgs) -> Result<i32> {
    let mut opts = registry_options(&a.registry, a.platform.as_deref())?;
    platform_parts(&mut opts, a.arch.clone(), a.os.clone(), a.variant.clone())?;
    let pulled = if a.quiet {
        pull::pull_typed(store, &a.image, &opts, &pull::Quiet)?
    } else {
        eprintln!("Trying to pull {}...", a.image);
        let rep = crate::progress::Reporter::new();
        pull::pull_typed(store, &a.image, &opts, &rep)?
    };
    crate::events::image(&store.root, "pull", &pulled.id, &pulled.name);
    println!("{}", pulled.id.trim_start_matches("sha256:"));
    Ok(0)
}

/// --arch, --os and --variant: the options' platform becomes the host's
/// with those parts changed (left alone when none is given). Not with
/// --platform.
pub(crate) fn platform_parts(
    opts: &mut Options,
    arch: Option<String>,
    os: Option<String>,
    variant: Option<String>,
) -> Result<()> {
    if arch.is_none() && os.is_none() && variant.is_none() {
        return Ok(());
    }
    if opts.platform.is_some() {
        return Err(Error::invalid(
            "--platform cannot be given with --arch, --os or --variant",
        ));
    }
    let mut p = Platform::host();
    if let Some(arch) = arch {
        if arch != p.architecture {
            p.variant = None; // the host's variant is of its own arch
        }
        p.architecture = arch;
    }
    if let Some(os) = os {
        p.os = os;
    }
    if variant.is_some() {
        p.variant = variant;
    }
    for (flag, v) in [("--arch", &p.architecture), ("--os", &p.os)] {
        if v.is_empty() || v.contains('/') {
            return Err(Error::invalid(format!(
                "{flag} {v:?}: a name like amd64 or linux"
            )));
        }
    }
    opts.platform = Some(p);
    Ok(())
}

pub(crate) fn push_cmd(store: &Store, a: PushArgs) -> Result<i32> {
    let img = store.find(&a.image)?;
    let dest = match &a.destination {
        Some(d) => Reference::parse(d.strip_prefix("docker://").unwrap_or(d))?,
        None => Reference::parse(&a.image)?,
    };
    let opts = registry_options(&a.registry, None)?;
    let quiet = a.quiet;
    let note = |m: &str| {
        if !quiet {
            eprintln!("Copying blob {m}");
        }
    };
    let pushed = push::push(store, &img, &dest, &opts, &note)?;
    crate::events::image(&store.root, "push", &img.id, &dest.to_string());
    if let Some(f) = &a.digestfile {
        std::fs::write(f, &pushed.digest).map_err(|e| Error::at(f, "--digestfile: writing", e))?;
    }
    if !quiet {
        eprintln!(
            "Pushed {dest}: {} blobs sent, {} already there, manifest {}",
            pushed.sent, pushed.skipped, pushed.digest
        );
    }
    Ok(0)
}

fn config_of(img: &Image) -> ImageConfig {
    serde_json::from_slice(&img.config).unwrap_or_default()
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// A pattern with `*` (any run within a path component).
fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && m(p, &s[1..])),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

/// The rows `images` lists: one per name (or one `<none>` row).
fn image_rows(store: &Store, a: &ImagesArgs) -> Result<Vec<(Image, String, String)>> {
    let mut dangling = None;
    let mut refs = vec![];
    let mut labels: Vec<String> = vec![];
    for f in &a.filter {
        match f.split_once('=') {
            Some(("dangling", v)) => {
                dangling =
                    Some(v.parse::<bool>().map_err(|_| {
                        Error::invalid(format!("--filter {f}: dangling=true or false"))
                    })?)
            }
            Some(("reference", v)) => refs.push(v.to_string()),
            Some(("label", v)) => labels.push(v.to_string()),
            _ => {
                return Err(Error::invalid(format!(
                    "--filter {f:?}: known filters are dangling=BOOL, reference=PATTERN and label=KEY[=VALUE]"
                )))
            }
        }
    }
    // label=KEY[=VALUE]: each must hold (Podman's), on the config's Labels.
    let labelled = |img: &Image| {
        let cfg: Value = serde_json::from_slice(&img.config).unwrap_or(Value::Null);
        let have = &cfg["config"]["Labels"];
        labels.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => have[k].as_str() == Some(v),
            None => have.get(l.as_str()).is_some(),
        })
    };
    if let Some(r) = &a.repository {
        refs.push(r.clone());
    }
    let mut rows = vec![];
    for img in store.images()? {
        if dangling.is_some_and(|d| d != img.dangling()) || !labelled(&img) {
            continue;
        }
        let names: Vec<(String, String)> = if img.dangling() {
            vec![("<none>".into(), "<none>".into())]
        } else if img.names.is_empty() {
            // Pulled by digest alone: its repository, no tag (Podman's row).
            img.pinned
                .iter()
                .map(|n| {
                    let repo = n.split_once('@').map_or(n.as_str(), |(r, _)| r);
                    (repo.to_string(), "<none>".to_string())
                })
                .collect()
        } else {
            img.names
                .iter()
                .map(|n| {
                    let (repo, tag) = n.rsplit_once(':').unwrap_or((n, "<none>"));
                    (repo.to_string(), tag.to_string())
                })
                .collect()
        };
        for (repo, tag) in names {
            if !refs.is_empty() {
                let whole = format!("{repo}:{tag}");
                let hit = refs.iter().any(|p| {
                    let p = p.as_str();
                    [whole.as_str(), repo.as_str()].iter().any(|s| {
                        glob(p, s) || s.ends_with(&format!("/{p}")) || glob(&format!("*/{p}"), s)
                    })
                });
                if !hit {
                    continue;
                }
            }
            rows.push((img.clone(), repo, tag));
        }
    }
    Ok(rows)
}

pub(crate) fn images(store: &Store, a: ImagesArgs) -> Result<i32> {
    let rows = image_rows(store, &a)?;
    let id = |i: &Image| {
        if a.no_trunc {
            i.id.clone()
        } else {
            short(&i.id)
        }
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for (img, _, _) in &rows {
            if seen.insert(img.id.clone()) {
                println!("{}", id(img));
            }
        }
        return Ok(0);
    }
    let entry = |img: &Image, repo: &str, tag: &str| {
        let c = config_of(img);
        json!({
            "ID": id(img), "Id": img.id.trim_start_matches("sha256:"),
            "Repository": repo, "Tag": tag,
            "Names": img.names, "RepoTags": img.names, "RepoDigests": img.digests,
            "Digest": img.manifest_digest,
            "Created": c.created.as_deref().and_then(format::parse_time).unwrap_or(0),
            "CreatedAt": c.created.clone().unwrap_or_default(),
            "CreatedSince": format::ago(c.created.as_deref().and_then(format::parse_time)),
            "Size": img.size, "VirtualSize": img.size,
            "Dangling": img.dangling(),
            "Containers": 0,
        })
    };
    match a.format.as_deref() {
        Some("json") => {
            let mut seen = std::collections::HashSet::new();
            let list: Vec<Value> = rows
                .iter()
                .filter(|(i, _, _)| seen.insert(i.id.clone()))
                .map(|(i, _, _)| {
                    let mut e = entry(i, "", "");
                    if let Some(o) = e.as_object_mut() {
                        o.remove("Repository");
                        o.remove("Tag");
                        o.remove("ID");
                    }
                    e
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
        Some(t) if t != "table" => {
            // A template sees what Podman's does: sizes and ages as its
            // table prints them, CreatedAt in Go's time format; `table`
            // adds a header.
            let (table, t) = match t.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, t),
            };
            let mut lines = vec![];
            for (img, repo, tag) in &rows {
                let mut e = entry(img, repo, tag);
                let created = config_of(img)
                    .created
                    .as_deref()
                    .and_then(format::parse_time);
                e["Size"] = json!(format::size(img.size));
                e["Created"] = json!(format::ago(created));
                e["CreatedAt"] = json!(created.map(format::go_time).unwrap_or_default());
                lines.push(format::template(t, &e).map_err(Error::invalid)?);
            }
            if table {
                let text = format::template_table(t, "IMAGE ID", &lines);
                print!("{}", format::headed(text, !a.noheading));
            } else {
                for l in lines {
                    println!("{l}");
                }
            }
        }
        _ => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if a.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|(img, repo, tag)| {
                    let c = config_of(img);
                    let mut r = vec![repo.clone(), tag.clone()];
                    if a.digests {
                        r.push(img.manifest_digest.clone());
                    }
                    r.extend([
                        id(img),
                        format::ago(c.created.as_deref().and_then(format::parse_time)),
                        format::size(img.size),
                    ]);
                    r
                })
                .collect();
            print!(
                "{}",
                format::headed(format::table(&header, &table), !a.noheading)
            );
        }
    }
    Ok(0)
}

/// The image's config with every field scripts read there, also when the
/// image leaves it unset (empty, as Docker prints them).
fn image_config(raw: &Value) -> Value {
    let mut c = raw.get("config").cloned().unwrap_or(json!({}));
    if !c.is_object() {
        c = json!({});
    }
    for (k, empty) in [
        ("User", json!("")),
        ("Env", json!([])),
        ("Cmd", json!([])),
        ("Entrypoint", json!([])),
        ("WorkingDir", json!("")),
        ("Labels", json!({})),
        ("ExposedPorts", json!({})),
        ("Volumes", json!({})),
        ("StopSignal", json!("")),
    ] {
        if c.get(k).is_none_or(Value::is_null) {
            c[k] = empty;
        }
    }
    c
}

/// Docker's `image inspect` document.
fn inspect_doc(store: &Store, img: &Image) -> Result<Value> {
    let raw: Value = serde_json::from_slice(&img.config).unwrap_or(Value::Null);
    let c = config_of(img);
    let layers = store.layers_of(&img.id)?;
    Ok(json!({
        "Id": img.id,
        "RepoTags": img.names,
        "RepoDigests": img.digests,
        "Parent": "",
        "Comment": c.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": c.created,
        "Author": c.author.clone().unwrap_or_default(),
        "Architecture": c.architecture,
        "Os": c.os,
        "Variant": c.variant,
        "Size": img.size,
        "VirtualSize": img.size,
        "Config": image_config(&raw),
        "RootFS": {"Type": "layers", "Layers": c.rootfs.diff_ids},
        "History": raw.get("history").cloned().unwrap_or(json!([])),
        "Digest": img.manifest_digest,
        "ManifestType": img.manifest_type,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": layers.iter().rev().map(|l| store.layer_dir(&l.chain_id).map(|d| d.join("diff").display().to_string())).collect::<Result<Vec<_>>>()?.join(":"),
            }
        },
        "Metadata": {"LastTagTime": ""},
    }))
}

/// `inspect`: containers and images (`kind` fixed by `container
/// inspect` and `image inspect`, else `--type`, else both, a container
/// first).
pub(crate) fn inspect(store: &Store, a: InspectArgs, kind: Option<&str>) -> Result<i32> {
    let kind = match (kind, a.kind.as_deref()) {
        (Some(k), _) => k,
        (None, None | Some("all")) => "all",
        (None, Some(k @ ("container" | "image"))) => k,
        (None, Some(k)) => {
            return Err(Error::invalid(format!(
                "--type {k:?}: container, image or all (volume, network and pod have their own inspect)"
            )))
        }
    };
    let mut docs = vec![];
    let mut missing = 0;
    let ctrs = crate::db::Db::open(&store.root)?;
    for name in &a.images {
        if kind != "image" {
            match ctrs.find(name) {
                Ok(c) => {
                    let c = ctrs.fresh(c)?;
                    docs.push(crate::containers::inspect_doc(&ctrs, &c));
                    continue;
                }
                Err(e @ Error::NoContainer(_)) if kind == "container" => {
                    eprintln!("Error: {e}");
                    missing += 1;
                    continue;
                }
                Err(_) => {}
            }
        }
        match store.find(name) {
            Ok(img) => docs.push(inspect_doc(store, &img)?),
            Err(e @ Error::NoImage(_)) => {
                eprintln!("Error: {e}");
                missing += 1;
            }
            Err(e) => return Err(e),
        }
    }
    match &a.format {
        Some(t) => {
            for d in &docs {
                println!("{}", format::template(t, d).map_err(Error::invalid)?);
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&docs).unwrap_or_default()
        ),
    }
    Ok(if missing > 0 { 125 } else { 0 })
}

pub(crate) fn tag(store: &mut Store, a: TagArgs) -> Result<i32> {
    let img = store.find(&a.image)?;
    for n in &a.names {
        let r = Reference::parse_local(n)?;
        store.tag(&img.id, &r)?;
        crate::events::image(&store.root, "tag", &img.id, &r.name());
    }
    Ok(0)
}

/// `untag IMAGE [NAME...]`: the names go (each must be the image's), the
/// image stays, dangling once it has none, as Podman's untag.
pub(crate) fn untag(store: &mut Store, a: UntagArgs) -> Result<i32> {
    let img = store.find(&a.image)?;
    let names = if a.names.is_empty() {
        img.names.clone()
    } else {
        a.names
            .iter()
            .map(|n| {
                let name = Reference::parse_local(n)?.name();
                match img.names.contains(&name) {
                    true => Ok(name),
                    false => Err(Error::invalid(format!(
                        "untag {n:?}: not a name of image {} ({})",
                        short(&img.id),
                        img.names.join(", ")
                    ))),
                }
            })
            .collect::<Result<Vec<_>>>()?
    };
    for n in names {
        store.untag(&n)?;
        crate::events::image(&store.root, "untag", &img.id, &n);
    }
    Ok(0)
}

pub(crate) fn rmi(store: &mut Store, mut a: RmiArgs) -> Result<i32> {
    // --all: by id, each image with all its names.
    if a.all {
        a.images = store.images()?.into_iter().map(|i| i.id).collect();
    }
    // Podman's codes: 1 when one was not found, 2 when one is in use,
    // 125 for any other refusal (an id of several names, without -f).
    let mut code = 0;
    let mut touched = false;
    for what in &a.images {
        let img = match store.find(what) {
            Ok(i) => i,
            // Podman's and Docker's: -f (or --ignore) removes what is there.
            Err(Error::NoImage(_)) if a.force || a.ignore => continue,
            Err(e) => {
                eprintln!("Error: {e}");
                code = code.max(1);
                continue;
            }
        };
        // A name given: that name goes; the image with its last name.
        let by_name = img.name_given(what);
        if let (Some(n), false) = (&by_name, a.force) {
            if img.names.len() > 1 {
                store.untag(n)?;
                crate::events::image(&store.root, "untag", &img.id, n);
                println!("Untagged: {n}");
                continue;
            }
        }
        // (With -f, ctl::rmi removed the containers using it first.)
        let holders = store.holders(&img.id)?;
        if !holders.is_empty() && !a.force {
            eprintln!(
                "Error: image {} is in use by {} (rmi -f removes the containers and it)",
                short(&img.id),
                holder_names(store, &holders).join(", ")
            );
            code = code.max(2);
            continue;
        }
        if !a.force && !a.all && by_name.is_none() && img.names.len() > 1 {
            eprintln!(
                "Error: image {} has several names ({}): remove them by name, or use -f",
                short(&img.id),
                img.names.join(", ")
            );
            code = 125;
            continue;
        }
        for n in &img.names {
            println!("Untagged: {n}");
        }
        store.remove_image(&img.id)?;
        for n in &img.names {
            crate::events::image(&store.root, "untag", &img.id, n);
        }
        crate::events::image(&store.root, "remove", &img.id, what);
        println!("Deleted: {}", img.id.trim_start_matches("sha256:"));
        touched = true;
    }
    if touched {
        store.collect(true)?;
    }
    Ok(code)
}

/// Holders as a user knows them: containers by name.
fn holder_names(store: &Store, holders: &[String]) -> Vec<String> {
    let db = crate::db::Db::open(&store.root).ok();
    holders
        .iter()
        .map(|h| match (h.strip_prefix("container:"), &db) {
            (Some(id), Some(db)) => match db.find(id) {
                Ok(c) => format!("container {}", c.name),
                Err(_) => h.clone(),
            },
            _ => h.clone(),
        })
        .collect()
}

/// Where build's RUN --mount=type=cache keeps its directories, under the
/// store (`image prune --build-cache` empties it).
pub(crate) const BUILD_CACHE_MOUNTS: &str = "build-cache-mounts";

pub(crate) fn prune(store: &mut Store, a: PruneArgs) -> Result<i32> {
    let _ = a.force;
    let mut removed = 0;
    for img in store.images()? {
        if (img.dangling() || a.all) && store.holders(&img.id)?.is_empty() {
            store.remove_image(&img.id)?;
            println!("{}", img.id.trim_start_matches("sha256:"));
            removed += 1;
        }
    }
    if a.build_cache {
        // RUN --mount=type=cache's directories go with the steps.
        skiff_image::store::remove_tree(&store.root.join(BUILD_CACHE_MOUNTS))?;
        let steps = store.build_cache_clear()?;
        eprintln!("Forgot {steps} cached build steps");
    }
    let freed = store.collect(false)?;
    eprintln!("Removed {removed} images, freed {}", format::size(freed));
    Ok(0)
}

pub(crate) fn history(store: &Store, a: HistoryArgs) -> Result<i32> {
    let img = store.find(&a.image)?;
    let c = config_of(&img);
    let layers = store.layers_of(&img.id)?;
    let mut sizes = layers.iter().map(|l| l.size);
    // Each history entry that made a layer gets that layer's size, bottom
    // up; the newest entry first, as Docker lists them.
    let mut with_sizes: Vec<(manifest::History, u64)> = vec![];
    for h in c.history.iter() {
        let s = if h.empty_layer {
            0
        } else {
            sizes.next().unwrap_or(0)
        };
        with_sizes.push((h.clone(), s));
    }
    with_sizes.reverse();
    if a.quiet {
        for (i, _) in with_sizes.iter().enumerate() {
            println!(
                "{}",
                if i == 0 {
                    short(&img.id)
                } else {
                    "<missing>".into()
                }
            );
        }
        return Ok(0);
    }
    if a.format.as_deref() == Some("json") {
        let list: Vec<Value> = with_sizes
            .iter()
            .enumerate()
            .map(|(i, (h, s))| json!({
                "id": if i == 0 { img.id.clone() } else { "<missing>".into() },
                "created": h.created, "createdBy": h.created_by, "size": s, "comment": h.comment,
            }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(0);
    }
    // A template: Podman's fields (ID, Created, CreatedBy, Size,
    // Comment), a line per entry.
    if let Some(t) = a.format.as_deref().filter(|f| *f != "table") {
        let t = t.strip_prefix("table").map(str::trim_start).unwrap_or(t);
        for (i, (h, s)) in with_sizes.iter().enumerate() {
            let entry = json!({
                "ID": if i == 0 { short(&img.id) } else { "<missing>".into() },
                "Created": h.created.as_deref().map(|c| format::ago(format::parse_time(c))).unwrap_or_default(),
                "CreatedAt": h.created, "CreatedBy": h.created_by.clone().unwrap_or_default(),
                "Size": format::size(*s), "Comment": h.comment.clone().unwrap_or_default(),
            });
            println!("{}", format::template(t, &entry).map_err(Error::invalid)?);
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = with_sizes
        .iter()
        .enumerate()
        .map(|(i, (h, s))| {
            let by = h.created_by.clone().unwrap_or_default();
            let by = if a.no_trunc || by.chars().count() <= 45 {
                by
            } else {
                by.chars().take(44).collect::<String>() + "…"
            };
            vec![
                if i == 0 {
                    short(&img.id)
                } else {
                    "<missing>".into()
                },
                format::ago(h.created.as_deref().and_then(format::parse_time)),
                by,
                format::size(*s),
                h.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        format::table(&["ID", "CREATED", "CREATED BY", "SIZE", "COMMENT"], &rows)
    );
    Ok(0)
}

pub(crate) fn save(store: &Store, a: SaveArgs) -> Result<i32> {
    let format: Format = a.format.parse()?;
    let mut list = vec![];
    for what in &a.images {
        let img = store.find(what)?;
        // The name asked for, when it is one of the image's; by id: all.
        let asked = Reference::parse(what)
            .ok()
            .map(|r| r.name())
            .filter(|n| img.names.contains(n));
        let names = match asked {
            Some(n) => vec![n],
            None => img
                .names
                .iter()
                .filter(|n| n.ends_with(&format!("/{what}")))
                .cloned()
                .collect::<Vec<_>>(),
        };
        let names = if names.is_empty()
            && !what.starts_with("sha256:")
            && !img
                .id
                .trim_start_matches("sha256:")
                .starts_with(what.as_str())
        {
            img.names.clone()
        } else if names.is_empty() {
            vec![]
        } else {
            names
        };
        list.push((img, names));
    }
    match &a.output {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| Error::at(p, "writing", e))?;
            let r = archive::save(store, &list, format, std::io::BufWriter::new(f));
            if r.is_err() {
                let _ = std::fs::remove_file(p);
            }
            r?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Error::invalid(
                    "save: refusing to write an archive to a terminal; use -o FILE or redirect",
                ));
            }
            let out = std::io::stdout().lock();
            archive::save(store, &list, format, std::io::BufWriter::new(out))?;
        }
    }
    for (img, names) in &list {
        let name = names.first().cloned().unwrap_or_default();
        crate::events::image(&store.root, "save", &img.id, &name);
    }
    Ok(0)
}

pub(crate) fn load(store: &mut Store, a: LoadArgs) -> Result<i32> {
    let loaded = match &a.input {
        Some(p) => archive::load(
            store,
            std::io::BufReader::new(
                std::fs::File::open(p).map_err(|e| Error::at(p, "reading", e))?,
            ),
        )?,
        None => archive::load(store, std::io::stdin().lock())?,
    };
    for n in loaded {
        crate::events::image(&store.root, "loadfromarchive", "", &n);
        println!("Loaded image: {n}");
    }
    Ok(0)
}

/// `commit --change`: Containerfile instructions on an image config's
/// `config` (the common ones; any other is refused by name).
pub(crate) fn apply_changes(config: &mut Value, changes: &[String]) -> Result<()> {
    for ch in changes {
        let (kw, rest) = ch
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((ch.trim(), ""));
        let rest = rest.trim();
        let bad = |why: &str| Error::invalid(format!("--change {ch:?}: {why}"));
        // JSON form, else the shell's (CMD, ENTRYPOINT) or words.
        let json_list = || serde_json::from_str::<Vec<String>>(rest).ok();
        let pairs = || -> Result<Vec<(String, String)>> {
            if !rest.contains('=') {
                // ENV NAME VALUE, the old form.
                let (k, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| bad("KEY=VALUE"))?;
                return Ok(vec![(k.to_string(), v.trim().to_string())]);
            }
            rest.split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').ok_or_else(|| bad("KEY=VALUE"))?;
                    Ok((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect()
        };
        let rc = &mut config["config"];
        if !rc.is_object() {
            *rc = json!({});
        }
        match kw.to_ascii_uppercase().as_str() {
            "CMD" | "ENTRYPOINT" => {
                let argv = json_list().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.into()]);
                let key = if kw.eq_ignore_ascii_case("CMD") { "Cmd" } else { "Entrypoint" };
                rc[key] = json!(argv);
            }
            "ENV" => {
                let mut env: Vec<String> = rc["Env"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                for (k, v) in pairs()? {
                    env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                rc["Env"] = json!(env);
            }
            "LABEL" => {
                if !rc["Labels"].is_object() {
                    rc["Labels"] = json!({});
                }
                for (k, v) in pairs()? {
                    rc["Labels"][k] = json!(v);
                }
            }
            "EXPOSE" => {
                if !rc["ExposedPorts"].is_object() {
                    rc["ExposedPorts"] = json!({});
                }
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                    rc["ExposedPorts"][p] = json!({});
                }
            }
            "VOLUME" => {
                if !rc["Volumes"].is_object() {
                    rc["Volumes"] = json!({});
                }
                let list = json_list().unwrap_or_else(|| rest.split_whitespace().map(str::to_string).collect());
                for v in list {
                    rc["Volumes"][v] = json!({});
                }
            }
            "USER" | "WORKDIR" | "STOPSIGNAL" if !rest.is_empty() => {
                let key = match kw.to_ascii_uppercase().as_str() {
                    "USER" => "User",
                    "WORKDIR" => "WorkingDir",
                    _ => "StopSignal",
                };
                rc[key] = json!(rest);
            }
            _ => {
                return Err(bad(
                    "CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME or STOPSIGNAL, with a value",
                ))
            }
        }
    }
    Ok(())
}

pub(crate) fn import(store: &mut Store, a: ImportArgs) -> Result<i32> {
    let name = a
        .reference
        .as_deref()
        .map(Reference::parse_local)
        .transpose()?;
    let created = format::rfc3339(format::now(), None);
    // Checked before the tarball is read: a bad change fails first.
    apply_changes(&mut json!({}), &a.change)?;
    let edit = |config: &mut Value| -> Result<()> {
        if let Some(m) = &a.message {
            config["history"][0]["comment"] = json!(m);
        }
        apply_changes(config, &a.change)
    };
    let id = if a.source == "-" {
        archive::import(
            store,
            std::io::stdin().lock(),
            name.as_ref(),
            &created,
            &edit,
        )?
    } else {
        let f = std::fs::File::open(&a.source)
            .map_err(|e| Error::at(std::path::Path::new(&a.source), "reading", e))?;
        archive::import(store, f, name.as_ref(), &created, &edit)?
    };
    let named = name.map(|n| n.name()).unwrap_or_default();
    crate::events::image(&store.root, "import", &id, &named);
    println!("{}", id.trim_start_matches("sha256:"));
    Ok(0)
}

pub(crate) fn login(a: LoginArgs) -> Result<i32> {
    let user = match a.username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut u = String::new();
            std::io::stdin()
                .read_line(&mut u)
                .map_err(|e| Error::io("reading the username", e))?;
            u.trim().to_string()
        }
    };
    let pass = match (a.password, a.password_stdin) {
        (Some(_), true) => return Err(Error::invalid("--password and --password-stdin: give one")),
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .read_to_string(&mut p)
                .map_err(|e| Error::io("reading the password", e))?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err(Error::invalid("login: give --password or --password-stdin")),
    };
    if user.is_empty() {
        return Err(Error::invalid("login: the username is empty"));
    }
    let opts = registry_options(&a.registry_opts, None)?;
    registry::check_login(&a.registry, &user, &pass, &opts)?;
    let file = a
        .registry_opts
        .authfile
        .clone()
        .unwrap_or_else(registry::default_auth_file);
    registry::store_credentials(&file, &a.registry, &user, &pass)?;
    println!("Login Succeeded!");
    Ok(0)
}

pub(crate) fn logout(a: LogoutArgs) -> Result<i32> {
    let file = a
        .authfile
        .clone()
        .unwrap_or_else(registry::default_auth_file);
    if registry::remove_credentials(&file, &a.registry)? {
        println!("Removed login credentials for {}", a.registry);
        Ok(0)
    } else {
        Err(Error::invalid(format!("not logged into {}", a.registry)))
    }
}

pub(crate) fn mount(store: &mut Store, a: MountArgs) -> Result<i32> {
    let img = store.find(&a.image)?;
    let name = a.name.unwrap_or_else(|| short(&img.id));
    let o = skiff_image::mount::mount(store, &img.id, &name)?;
    println!("{}", o.merged.display());
    Ok(0)
}

pub(crate) fn df(store: &Store) -> Result<i32> {
    let imgs = store.images()?;
    let active = imgs
        .iter()
        .filter(|i| store.holders(&i.id).map(|h| !h.is_empty()).unwrap_or(false))
        .count();
    let total = skiff_image::store::disk_usage(&store.root.join("layers"))
        + skiff_image::store::disk_usage(&store.root.join("blobs"));
    let dangling: u64 = imgs.iter().filter(|i| i.dangling()).map(|i| i.size).sum();
    // Cached build steps, and the layers only they hold.
    let (cache_steps, cache_only) = store.build_cache_usage()?;
    let rows = vec![
        vec![
            "Images".into(),
            imgs.len().to_string(),
            active.to_string(),
            format::size(total),
            format::size(dangling),
        ],
        vec![
            "Containers".into(),
            "0".into(),
            "0".into(),
            "0 B".into(),
            "0 B".into(),
        ],
        vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0 B".into(),
            "0 B".into(),
        ],
        vec![
            "Build Cache".into(),
            cache_steps.to_string(),
            "0".into(),
            format::size(cache_only),
            format::size(cache_only),
        ],
    ];
    print!(
        "{}",
        format::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(0)
}

pub(crate) fn check(store: &mut Store, a: CheckArgs) -> Result<i32> {
    let report = skiff_image::store::check(store)?;
    for p in &report.problems {
        println!("{p}");
    }
    if report.problems.is_empty() {
        println!(
            "ok: {} blobs and {} layers checked",
            report.blobs, report.layers
        );
        return Ok(0);
    }
    if a.repair {
        for (blob, layer) in &report.damaged {
            for id in store.forget_damaged(blob.as_deref(), layer.as_deref())? {
                println!("removed image {} (it needed what was damaged)", short(&id));
            }
        }
        store.collect(true)?;
        println!("repaired: {} problems", report.problems.len());
        return Ok(0);
    }
    Ok(1)
}

/// `search`: Podman's table (NAME and DESCRIPTION, or NAME and TAG with
/// --list-tags), JSON or a template over its fields.
pub fn search(a: SearchArgs) -> Result<i32> {
    if let Some(f) = a.filter.first() {
        return Err(Error::invalid(format!(
            "--filter {f:?}: a registry's catalog has no stars, official or automated marks to filter on"
        )));
    }
    let _ = a.no_trunc;
    let opts = registry_options(&a.registry, None)?;
    let found = skiff_image::search::search(&a.term, &opts, a.limit.unwrap_or(25), a.list_tags)?;
    let docs: Vec<Value> = found
        .iter()
        .map(|f| {
            json!({
                "Index": f.index,
                "Name": f.name,
                "Description": "",
                "Stars": 0,
                "Official": "",
                "Automated": "",
                "Tag": f.tag.clone().unwrap_or_default(),
            })
        })
        .collect();
    match a.format.as_deref() {
        Some("json") => println!(
            "{}",
            serde_json::to_string_pretty(&docs).unwrap_or_default()
        ),
        None | Some("table") => {
            let (second, key) = match a.list_tags {
                true => ("TAG", "Tag"),
                false => ("DESCRIPTION", "Description"),
            };
            let mut rows = vec![vec!["NAME".to_string(), second.to_string()]];
            rows.extend(docs.iter().map(|d| {
                vec![
                    d["Name"].as_str().unwrap_or_default().to_string(),
                    d[key].as_str().unwrap_or_default().to_string(),
                ]
            }));
            // Podman's report writer (Go's tabwriter), padding and all.
            print!("{}", format::tabwriter(&rows));
        }
        Some(t) => {
            let t = t.strip_prefix("table").map(str::trim_start).unwrap_or(t);
            for d in &docs {
                println!("{}", format::template(t, d).map_err(Error::invalid)?);
            }
        }
    }
    Ok(0)
}

/// `manifest ...`, Podman's: lists of the store's images, pushed as an
/// OCI image index.
pub fn manifest(store: &mut Store, cmd: ManifestCommand) -> Result<i32> {
    use skiff_image::lists;
    let id = |l: &lists::List| l.digest()["sha256:".len()..].to_string();
    match cmd {
        ManifestCommand::Create {
            amend,
            list,
            images,
        } => {
            let mut l = lists::create(store, &list, amend)?;
            for i in &images {
                let img = store.find(i)?;
                l.add(&img, None, Default::default())?;
            }
            lists::save(store, &l)?;
            println!("{}", id(&l));
        }
        ManifestCommand::Add { entry, list, image } => {
            let mut l = lists::load(store, &list)?;
            let img = store.find(&image)?;
            let platform = entry_platform(&entry, &img)?;
            l.add(&img, platform, annotations(&entry.annotation)?)?;
            lists::save(store, &l)?;
            println!("{}", id(&l));
        }
        ManifestCommand::Annotate {
            entry,
            list,
            digest,
        } => {
            let mut l = lists::load(store, &list)?;
            let e = l.entry_mut(&digest)?;
            if let Some(p) = e.descriptor.platform.as_mut() {
                if let Some(a) = &entry.arch {
                    p.architecture = a.clone();
                }
                if let Some(o) = &entry.os {
                    p.os = o.clone();
                }
                if entry.variant.is_some() {
                    p.variant = entry.variant.clone();
                }
            }
            let extra = annotations(&entry.annotation)?;
            if !extra.is_empty() {
                e.descriptor
                    .annotations
                    .get_or_insert_with(Default::default)
                    .extend(extra);
            }
            lists::save(store, &l)?;
            println!("{}", id(&l));
        }
        ManifestCommand::Remove { list, digest } => {
            let mut l = lists::load(store, &list)?;
            let gone = l.entry_mut(&digest)?.descriptor.digest.clone();
            l.entries.retain(|e| e.descriptor.digest != gone);
            lists::save(store, &l)?;
            println!("{}", id(&l));
        }
        ManifestCommand::Inspect { list } => {
            let l = lists::load(store, &list)?;
            println!("{}", String::from_utf8_lossy(&l.index_bytes()));
        }
        ManifestCommand::Push {
            all: _,
            rm,
            digestfile,
            quiet,
            registry,
            list,
            dest,
        } => {
            let l = lists::load(store, &list)?;
            let dest = Reference::parse_local(dest.as_deref().unwrap_or(&l.name))?;
            let opts = registry_options(&registry, None)?;
            let note = |m: &str| {
                if !quiet {
                    eprintln!("{m}");
                }
            };
            let digest = lists::push(store, &l, &dest, &opts, &note)?;
            if let Some(f) = digestfile {
                std::fs::write(&f, &digest)
                    .map_err(|e| Error::at(&f, "--digestfile: writing", e))?;
            }
            if rm {
                lists::remove(store, &l.name)?;
            }
        }
        ManifestCommand::Rm { lists: names } => {
            for n in names {
                let l = lists::load(store, &n)?;
                lists::remove(store, &l.name)?;
                println!("Untagged: {}", l.name);
                println!("Deleted: {}", id(&l));
            }
        }
        ManifestCommand::Exists { list } => {
            return Ok(if lists::load(store, &list).is_ok() {
                0
            } else {
                1
            });
        }
    }
    Ok(0)
}

/// `--arch/--os/--variant` over the image's own platform (None: all
/// from the image).
fn entry_platform(
    e: &EntryArgs,
    img: &skiff_image::store::Image,
) -> Result<Option<skiff_image::manifest::Platform>> {
    if e.arch.is_none() && e.os.is_none() && e.variant.is_none() {
        return Ok(None);
    }
    let c = skiff_image::manifest::parse_config(&img.config)?;
    Ok(Some(skiff_image::manifest::Platform {
        architecture: e.arch.clone().unwrap_or(c.architecture),
        os: e.os.clone().unwrap_or(c.os),
        variant: e.variant.clone().or(c.variant),
    }))
}

/// `--annotation KEY=VALUE`s.
fn annotations(given: &[String]) -> Result<serde_json::Map<String, Value>> {
    given
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), json!(v))),
            _ => Err(Error::invalid(format!("--annotation {a:?}: KEY=VALUE"))),
        })
        .collect()
}
