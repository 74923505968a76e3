//! Imports between the library's top-level modules flow one way: no module
//! reaches, through others, back to itself. Read from the sources (every
//! `crate::module` a module's files name), so a new cycle fails here.

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

/// Each top-level module and the others it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for e in fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
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
            let mut deps = BTreeSet::new();
            for p in paths {
                let text = fs::read_to_string(p).unwrap();
                for (i, _) in text.match_indices("crate::") {
                    let rest = &text[i + "crate::".len()..];
                    let dep: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if dep != *m && names.contains(&dep) {
                        deps.insert(dep);
                    }
                }
            }
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
    let g = graph();
    assert!(
        g.contains_key("config") && g["rootfs"].contains("config"),
        "{g:?}"
    );
    for m in g.keys() {
        if let Some(cycle) = path_to(&g, m, m, &mut BTreeSet::new()) {
            panic!("import cycle: {m} -> {}", cycle.join(" -> "));
        }
    }
}
