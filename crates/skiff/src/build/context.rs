//! The build context: a directory, the patterns of its `.containerignore`
//! (else `.dockerignore`) that leave files out, and the globs of COPY and
//! ADD sources. Patterns are Docker's: Go's filepath.Match per path
//! component (`*`, `?`, `[...]`), `**` for any number of components, `!`
//! to take a path back in, the last matching pattern deciding.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use skiff_image::{Error, Result};

/// One component's match, as Go's filepath.Match (no `/` in either).
fn match_component(pattern: &[char], name: &[char]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some('*'), _) => (0..=name.len()).any(|k| match_component(&pattern[1..], &name[k..])),
        (Some('?'), Some(_)) => match_component(&pattern[1..], &name[1..]),
        (Some('['), Some(&c)) => {
            let Some(end) = pattern.iter().skip(1).position(|&p| p == ']') else {
                return false;
            };
            let class = &pattern[1..1 + end];
            let (negate, class) = match class.first() {
                Some('^') | Some('!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == '-' {
                    hit |= class[k] <= c && c <= class[k + 2];
                    k += 3;
                } else {
                    hit |= class[k] == c;
                    k += 1;
                }
            }
            hit != negate && match_component(&pattern[2 + end..], &name[1..])
        }
        (Some('\\'), Some(&c)) => {
            pattern.get(1) == Some(&c) && match_component(&pattern[2..], &name[1..])
        }
        (Some(&p), Some(&c)) => p == c && match_component(&pattern[1..], &name[1..]),
        (Some(_), None) => false,
    }
}

/// A slash-separated path against a slash-separated pattern (`**`: any
/// number of components).
pub fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let n: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    fn go(p: &[&str], n: &[&str]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(&"**") => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some(c) => match n.first() {
                Some(x) => {
                    let pc: Vec<char> = c.chars().collect();
                    let xc: Vec<char> = x.chars().collect();
                    match_component(&pc, &xc) && go(&p[1..], &n[1..])
                }
                None => false,
            },
        }
    }
    go(&p, &n)
}

/// The patterns of an ignore file.
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    /// (pattern, an exception: `!`)
    patterns: Vec<(String, bool)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = vec![];
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (except, p) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let p = clean(p);
            if !p.is_empty() {
                patterns.push((p, except));
            }
        }
        Ignore { patterns }
    }

    /// The ignore file beside the Containerfile given with -f
    /// (`FILE.containerignore`, else `FILE.dockerignore`, as BuildKit and
    /// Podman read it), else the context's `.containerignore`, else its
    /// `.dockerignore`.
    pub fn of_context(dir: &Path, file: Option<&Path>) -> Result<Ignore> {
        let mut candidates = vec![];
        if let Some(f) = file.filter(|f| f.as_os_str() != "-") {
            for ext in ["containerignore", "dockerignore"] {
                let mut name = f.as_os_str().to_owned();
                name.push(format!(".{ext}"));
                candidates.push(PathBuf::from(name));
            }
        }
        candidates.push(dir.join(".containerignore"));
        candidates.push(dir.join(".dockerignore"));
        for p in candidates {
            match fs::read_to_string(&p) {
                Ok(t) => return Ok(Ignore::parse(&t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::at(&p, "reading", e)),
            }
        }
        Ok(Ignore::default())
    }

    /// Whether a path of the context (relative, slash-separated) is left
    /// out: a pattern matches it or one of its parents; the last that
    /// matches decides.
    pub fn excludes(&self, path: &str) -> bool {
        let mut out = false;
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for (p, except) in &self.patterns {
            let hit = (1..=parts.len()).any(|k| matches(p, &parts[..k].join("/")));
            if hit {
                out = !except;
            }
        }
        out
    }
}

/// A path made relative and clean: no leading `/`, no `.`, `..` taken off
/// within it (never above the root).
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// A path's components still to walk, empty ones left out.
pub(super) fn components(rel: &str) -> VecDeque<String> {
    rel.split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// A symlink met on the walk: its target's components are walked next,
/// from the root when it is absolute (`done` cleared), else from where
/// the link stands.
pub(super) fn splice_link(target: &str, done: &mut Vec<String>, todo: &mut VecDeque<String>) {
    if target.starts_with('/') {
        done.clear();
    }
    let mut next = components(target);
    next.extend(todo.drain(..));
    *todo = next;
}

/// `rel` resolved inside `root`, as openat2's RESOLVE_IN_ROOT resolves
/// it: a symlink among its parents is read as if `root` were `/` (an
/// absolute target starts from `root`, `..` never goes above it); the last
/// component too when `follow_last`. The result names no symlink but
/// (without `follow_last`) its last component. None: a parent is missing
/// or not a directory, or more than 40 links.
pub fn resolve_in_root(root: &Path, rel: &str, follow_last: bool) -> Option<String> {
    let mut todo = components(rel);
    let mut done: Vec<String> = vec![];
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let last = todo.is_empty();
        let p = root.join(done.join("/")).join(&c);
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) if last => {
                done.push(c);
                break;
            }
            Err(_) => return None,
        };
        if m.file_type().is_symlink() && (!last || follow_last) {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = fs::read_link(&p).ok()?;
            splice_link(&target.to_string_lossy(), &mut done, &mut todo);
        } else if m.is_dir() || last {
            done.push(c);
        } else {
            return None;
        }
    }
    Some(done.join("/"))
}

/// The paths under `root` a COPY source names (a glob, or a plain path),
/// relative to it and resolved inside it (no symlink among their parents
/// leads out); those `ignore` excludes are not found.
pub fn expand_source(root: &Path, source: &str, ignore: &Ignore) -> Result<Vec<String>> {
    let src = clean(source);
    if !src.contains(['*', '?', '[']) {
        let Some(rel) = resolve_in_root(root, &src, false) else {
            return Ok(vec![]);
        };
        let p = root.join(&rel);
        if rel.is_empty() || (fs::symlink_metadata(&p).is_ok() && !ignore.excludes(&rel)) {
            return Ok(vec![rel]);
        }
        return Ok(vec![]);
    }
    // Component by component, through the directories the glob reaches.
    let parts: Vec<&str> = src.split('/').collect();
    let mut found = vec![String::new()];
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        let mut next = vec![];
        for base in &found {
            let candidates: Vec<String> = if !part.contains(['*', '?', '[']) {
                vec![join(base, part)]
            } else {
                let Ok(entries) = fs::read_dir(root.join(base)) else {
                    continue;
                };
                let pc: Vec<char> = part.chars().collect();
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| match_component(&pc, &n.chars().collect::<Vec<_>>()))
                    .collect();
                names.sort();
                names.into_iter().map(|n| join(base, &n)).collect()
            };
            for c in candidates {
                // A directory to go on from is followed (inside the root);
                // a match at the end is taken as it is.
                if let Some(r) = resolve_in_root(root, &c, !last) {
                    if fs::symlink_metadata(root.join(&r)).is_ok() {
                        next.push(r);
                    }
                }
            }
        }
        found = next;
    }
    Ok(found.into_iter().filter(|p| !ignore.excludes(p)).collect())
}

pub fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Every path under `rel` (itself first), skipping what `ignore` excludes
/// (a directory excluded is still entered: an exception may take a path
/// beneath it back in).
pub fn walk(root: &Path, rel: &str, ignore: &Ignore) -> Result<Vec<String>> {
    let mut out = vec![];
    let mut stack = vec![rel.to_string()];
    while let Some(r) = stack.pop() {
        let p = root.join(&r);
        let m = fs::symlink_metadata(&p).map_err(|e| Error::at(&p, "reading", e))?;
        if r.is_empty() || r == rel || !ignore.excludes(&r) {
            out.push(r.clone());
        }
        if m.is_dir() {
            let mut names: Vec<String> = fs::read_dir(&p)
                .map_err(|e| Error::at(&p, "reading", e))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names.into_iter().rev() {
                stack.push(join(&r, &n));
            }
        }
    }
    Ok(out)
}

/// A digest of what COPY reads: each path's name, type, mode, owner (when
/// `owners`), size, mtime-free content hash and link target.
pub fn digest_tree(root: &Path, paths: &[String], owners: bool) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for rel in paths {
        let p: PathBuf = root.join(rel);
        let m = fs::symlink_metadata(&p).map_err(|e| Error::at(&p, "reading", e))?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(m.mode().to_le_bytes());
        if owners {
            h.update(m.uid().to_le_bytes());
            h.update(m.gid().to_le_bytes());
        }
        if m.is_file() {
            h.update(m.len().to_le_bytes());
            let mut f = fs::File::open(&p).map_err(|e| Error::at(&p, "reading", e))?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(|e| Error::at(&p, "reading", e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if m.file_type().is_symlink() {
            let t = fs::read_link(&p).map_err(|e| Error::at(&p, "reading", e))?;
            h.update(t.as_os_str().as_encoded_bytes());
        }
        h.update([0]);
    }
    Ok(format!("sha256:{}", hex_string(&h.finalize())))
}

pub fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "d/a.txt"));
        assert!(matches("**/*.txt", "d/e/a.txt"));
        assert!(matches("**/*.txt", "a.txt"));
        assert!(matches("d/[a-c]?", "d/b1"));
        assert!(!matches("d/[!a-c]?", "d/b1"));
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/", r.join("up")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("real/dotdot")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        assert_eq!(
            resolve_in_root(r, "up/real/dir", false).as_deref(),
            Some("real/dir")
        );
        assert_eq!(
            resolve_in_root(r, "real/dotdot/real", false).as_deref(),
            Some("real")
        );
        assert_eq!(
            resolve_in_root(r, "abs/dir/file", false).as_deref(),
            Some("real/dir/file")
        );
        assert_eq!(resolve_in_root(r, "up", false).as_deref(), Some("up"));
        assert_eq!(resolve_in_root(r, "up", true).as_deref(), Some(""));
        // /etc of the host is never reached through a link.
        assert_eq!(resolve_in_root(r, "up/etc/passwd", false), None);
        assert_eq!(
            expand_source(r, "up/real/*", &Ignore::default()).unwrap(),
            vec!["real/dir", "real/dotdot"]
        );
    }

    #[test]
    fn ignore_with_exceptions() {
        let i = Ignore::parse("# c\nsecret\n*.log\n!keep.log\n/build/\n");
        assert!(i.excludes("secret"));
        assert!(i.excludes("secret/inner"));
        assert!(i.excludes("x.log"));
        assert!(!i.excludes("keep.log"));
        assert!(i.excludes("build/out"));
        assert!(!i.excludes("src/main.rs"));
    }
}
