//! Imports between the top-level modules of each crate of the workspace
//! flow one way: no module reaches, through others, back to itself. Read
//! from the sources (every `crate::module` and `crate::{a, b}` a module's
//! files name, comment lines aside), so a new cycle fails here. The crate
//! roots (lib.rs, main.rs, main_*.rs) declare the modules and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules `text` names after each `crate::`, single or in braces.
fn named(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = vec![];
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(list) => {
                    let list = list.split('}').next().unwrap_or_default();
                    out.extend(list.split(',').map(ident));
                }
                None => out.push(ident(rest)),
            }
        }
    }
    out
}

/// Each top-level module of the crate at `dir` and the others it names.
fn graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = dir.join("src");
    let mut modules: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for e in fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" || name.starts_with("main_") {
            continue;
        }
        let list = modules.entry(name).or_default();
        if p.is_dir() {
            files(&p, list);
        } else {
            list.push(p);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(m, paths)| {
            let deps = paths
                .iter()
                .flat_map(|p| named(&fs::read_to_string(p).unwrap()))
                .filter(|dep| dep != m && names.contains(dep))
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// A path from `from` back to `to`, if there is one.
fn path_to(
    g: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in &g[from] {
        if next == to {
            return Some(vec![next.clone()]);
        }
        if seen.insert(next.clone()) {
            if let Some(mut rest) = path_to(g, next, to, seen) {
                rest.insert(0, next.clone());
                return Some(rest);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_itself_through_others() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = BTreeMap::new();
    for e in fs::read_dir(&crates).unwrap().flatten() {
        if e.path().join("src").is_dir() {
            let name = e.file_name().to_string_lossy().into_owned();
            checked.insert(name, graph(&e.path()));
        }
    }
    // The reading itself works: edges known to be there are found.
    let library = &checked["skiff-runtime"];
    assert!(library["rootfs"].contains("config"), "{library:?}");
    let engine = &checked["skiff"];
    assert!(engine["containers"].contains("db"), "{engine:?}");
    assert!(engine["commands"].contains("ctl"), "{engine:?}");
    for (krate, g) in &checked {
        for m in g.keys() {
            if let Some(cycle) = path_to(g, m, m, &mut BTreeSet::new()) {
                panic!("import cycle in {krate}: {m} -> {}", cycle.join(" -> "));
            }
        }
    }
}
