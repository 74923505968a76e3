//! COPY and ADD: the files laid out in a scratch directory as the image
//! will hold them, and that directory made a layer. Sources are the
//! context (less what .containerignore/.dockerignore leaves out), an
//! earlier stage or an image (`--from`), or a heredoc. ADD also unpacks a
//! local tar archive (plain, gzip or zstd); remote URLs are refused.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use skiff_image::store::remove_tree;
use skiff_image::Result;

use super::context::{
    clean, components, digest_tree, expand_source, join, resolve_in_root, splice_link, walk, Ignore,
};
use super::parse::{self, Form, Instruction};
use super::run::add_layer;
use super::{Builder, Stage};

/// Where a COPY reads from.
#[derive(Debug, Clone)]
enum From {
    Context,
    Stage(usize),
    Image(String),
}

/// What a COPY will do, known before the cache is asked.
pub struct Plan {
    from: From,
    sources: Vec<String>,
    dest: String,
    /// What the key holds of the sources: their files' digest, or the
    /// stage's config digest, or the image's id.
    pub digest: String,
}

const COPY_FLAGS: &[&str] = &["from", "chown", "chmod", "link"];
const ADD_FLAGS: &[&str] = &["chown", "chmod", "link", "keep-git-dir"];

pub fn plan(b: &mut Builder, stage: &Stage, i: &Instruction) -> Result<Plan> {
    let allowed = if i.keyword == "COPY" {
        COPY_FLAGS
    } else {
        ADD_FLAGS
    };
    if let Some((f, _)) = i.flags.iter().find(|(f, _)| !allowed.contains(&f.as_str())) {
        return Err(b.err(i, format!("--{f}: not a flag of {} here", i.keyword)));
    }
    let esc = b.file.escape;
    let words: Vec<String> = match i.form() {
        Form::Exec(v) => v
            .iter()
            .map(|w| parse::expand(w, esc, &|n| stage.lookup(n)))
            .collect(),
        Form::Shell(_) => {
            parse::words_in(&i.rest, esc, Some(&|n| stage.lookup(n))).map_err(|e| b.err(i, e))?
        }
    };
    if words.len() < 2 {
        return Err(b.err(i, "expects SOURCE... DEST"));
    }
    let (sources, dest) = (
        words[..words.len() - 1].to_vec(),
        words[words.len() - 1].clone(),
    );
    for s in &sources {
        if s.contains("://") || s.starts_with("git@") {
            return Err(b.err(
                i,
                format!("{s}: remote sources are refused (builds are offline here): put the file in the context and COPY it"),
            ));
        }
    }
    let from = match i.flag("from") {
        None => From::Context,
        Some(f) => {
            let f = parse::expand(f, esc, &|n| stage.lookup(n));
            match b
                .names
                .get(&f.to_ascii_lowercase())
                .copied()
                .or_else(|| f.parse::<usize>().ok())
            {
                Some(n) if b.done.contains_key(&n) => From::Stage(n),
                Some(_) => {
                    return Err(b.err(
                        i,
                        format!("--from={f}: a stage copies only from a stage before it"),
                    ))
                }
                _ => From::Image(f),
            }
        }
    };
    let digest = match &from {
        From::Context => context_digest(b, i, &sources)?,
        From::Stage(n) => skiff_image::digest::of(&b.done[n].config_bytes()),
        From::Image(r) => find_or_pull(b, i, r)?,
    };
    Ok(Plan {
        from,
        sources,
        dest,
        digest,
    })
}

/// The image `--from=IMAGE` names (pulled if the store lacks it): its id.
pub(super) fn find_or_pull(b: &mut Builder, i: &Instruction, name: &str) -> Result<String> {
    if let Ok(img) = b.store.find(name) {
        return Ok(img.id);
    }
    if b.o.pull == super::Pull::Never {
        return Err(b.err(
            i,
            format!("--from={name}: no stage or image of that name (--pull=never)"),
        ));
    }
    let r = skiff_image::reference::Reference::parse(name)
        .map_err(|e| b.err(i, format!("--from={name}: {e}")))?;
    let opts = crate::images::registry_options(&b.o.registry, None)?;
    let p = skiff_image::pull::pull(b.store, &r, &opts, &skiff_image::pull::Quiet)
        .map_err(|e| b.err(i, format!("--from={name}: {e}")))?;
    Ok(p.id)
}

/// The digest of every context file the sources name.
fn context_digest(b: &Builder, i: &Instruction, sources: &[String]) -> Result<String> {
    let mut parts = String::new();
    let mut matched = false;
    for s in sources {
        if let Some(h) = heredoc(i, s) {
            parts.push_str(&skiff_image::digest::of(h.body.as_bytes()));
            continue;
        }
        let Some(root) = b.context_dir() else {
            return Err(b.err(
                i,
                format!("{s}: there is no build context (the Containerfile came on stdin)"),
            ));
        };
        let found = expand_source(root, s, b.ignore())?;
        // A glob that matches nothing is skipped when another source
        // matches (Podman's and BuildKit's rule).
        if found.is_empty() && (!is_glob(s) || sources.len() == 1) {
            return Err(b.err(
                i,
                format!("{s}: not in the build context (or left out by its ignore file)"),
            ));
        }
        for f in found {
            let f = follow_source(root, &f).unwrap_or(f);
            let paths = walk(root, &f, b.ignore())?;
            parts.push_str(&digest_tree(root, &paths, false)?);
            matched = true;
        }
    }
    if !matched && i.heredocs.is_empty() {
        return Err(b.err(
            i,
            format!(
                "{}: not in the build context (or left out by its ignore file)",
                sources.join(" ")
            ),
        ));
    }
    Ok(skiff_image::digest::of(parts.as_bytes()))
}

fn is_glob(source: &str) -> bool {
    source.contains(['*', '?', '['])
}

/// A source found under `root`: when it is a symlink, what it points to,
/// resolved inside `root` (None: to nothing there); else itself.
fn follow_source(root: &Path, rel: &str) -> Option<String> {
    let is_link = fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Some(rel.to_string());
    }
    let real = resolve_in_root(root, rel, true)?;
    fs::symlink_metadata(root.join(&real)).ok()?;
    Some(real)
}

/// The heredoc a source names (`<<EOF`), if it is one.
fn heredoc<'a>(i: &'a Instruction, source: &str) -> Option<&'a parse::Heredoc> {
    let name = source
        .strip_prefix("<<")?
        .trim_start_matches('-')
        .trim_matches(['"', '\'']);
    i.heredocs.iter().find(|h| h.name == name)
}

/// A read-only view of a stage or image: an overlay mounted for the
/// copy, unmounted and removed on drop.
struct Mounted {
    dir: PathBuf,
    target: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = skiff_image::mount::unmount_at(&self.target);
        let _ = remove_tree(&self.dir);
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove_tree(&self.0);
    }
}

/// Who copied files belong to.
#[derive(Clone, Copy)]
struct Owner {
    /// None: as the source has them (--from without --chown).
    ids: Option<(u32, u32)>,
    mode: Option<u32>,
}

/// COPY/ADD: the sources laid out in a scratch directory as the layer
/// holds them, then that directory made the stage's next layer.
pub fn copy(
    b: &mut Builder,
    stage: &mut Stage,
    i: &Instruction,
    plan: Plan,
    created: &str,
    text: &str,
) -> Result<()> {
    let lowers = lower_dirs(b, stage);
    let (_mounted, root, ignore) = source_root(b, &plan)?;
    let owner = owner_of(b, i, &plan, &lowers)?;
    let (dest, dest_is_dir) = destination(stage, &plan, &lowers);
    let staging = Scratch(b.store.scratch("copy")?);
    let lay = Layout {
        staging: &staging.0,
        lowers: &lowers,
        owner,
        times: Default::default(),
    };
    let mut found_any = false;
    for s in &plan.sources {
        if let Some(h) = heredoc(i, s) {
            let target = match dest_is_dir {
                true => join(&dest, &h.name),
                false => dest.clone(),
            };
            // An unquoted heredoc's body gets the build's variables.
            let body = match h.quoted {
                true => h.body.clone(),
                false => parse::expand(&h.body, b.file.escape, &|n| stage.lookup(n)),
            };
            lay.file(&target, body.as_bytes())?;
            found_any = true;
            continue;
        }
        let Some(root) = &root else {
            return Err(b.err(
                i,
                format!("{s}: there is no build context (the Containerfile came on stdin)"),
            ));
        };
        let found = expand_source(root, s, &ignore)?;
        if found.is_empty() && !is_glob(s) {
            return Err(b.err(i, format!("{s}: no such file or directory")));
        }
        for f in found {
            found_any = true;
            // A source that is itself a link: what it points to (inside
            // the root), under the link's name.
            let name = f.rsplit('/').next().unwrap_or(&f).to_string();
            let real = follow_source(root, &f)
                .ok_or_else(|| b.err(i, format!("{s}: a link to nothing in its root")))?;
            lay_out(b, i, &lay, root, &ignore, &real, &name, &dest, dest_is_dir)?;
        }
    }
    if !found_any {
        return Err(b.err(
            i,
            format!("{}: no such file or directory", plan.sources.join(" ")),
        ));
    }
    lay.set_times()?;
    let parent = stage.chain_ids().last().cloned();
    let layer = skiff_image::assemble::layer_from_dir(b.store, &staging.0, parent.as_deref())?;
    add_layer(stage, layer, created, &format!("/bin/sh -c #(nop) {text}"));
    Ok(())
}

/// WORKDIR: the directory made when the image lacks it (its missing
/// parents too), as a layer of the step's own, owned by the USER so far
/// (names from the image's /etc/passwd and /etc/group; root when they
/// name nobody), as BuildKit makes it. Whether a layer was made.
pub fn workdir(b: &mut Builder, stage: &mut Stage) -> Result<bool> {
    let lowers = lower_dirs(b, stage);
    let rel = follow_links(&lowers, &clean(&stage.workdir()));
    if rel.is_empty() || lookup(&lowers, &rel).is_some_and(|(_, m)| m.is_dir()) {
        return Ok(false);
    }
    let user = stage.config["config"]["User"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ids = match user.is_empty() {
        true => (0, 0),
        false => chown_ids(&lowers, &user).unwrap_or((0, 0)),
    };
    let staging = Scratch(b.store.scratch("workdir")?);
    let mut done = String::new();
    for c in rel.split('/') {
        done = join(&done, c);
        match lookup(&lowers, &done) {
            Some((_, m)) if m.is_dir() => {}
            Some(_) => {
                return Err(skiff_image::Error::invalid(format!(
                    "/{done}: not a directory in the image"
                )))
            }
            None => {
                let p = staging.0.join(&done);
                fs::create_dir_all(&p).map_err(|e| skiff_image::Error::at(&p, "making", e))?;
                set_owner_mode(&p, ids, Some(0o755))?;
            }
        }
    }
    // The parents the image has, as it has them (the layer must not
    // change their mode or owner).
    let mut parent = String::new();
    for c in rel.split('/') {
        if let Some((_, m)) = lookup(&lowers, &parent).filter(|_| !parent.is_empty()) {
            let p = staging.0.join(&parent);
            set_owner_mode(&p, (m.uid(), m.gid()), Some(m.mode() & 0o7777))?;
            if let Ok(t) = m.modified() {
                if let Ok(f) = fs::File::open(&p) {
                    let _ = f.set_modified(t);
                }
            }
        }
        parent = join(&parent, c);
    }
    let parent = stage.chain_ids().last().cloned();
    let layer = skiff_image::assemble::layer_from_dir(b.store, &staging.0, parent.as_deref())?;
    super::run::push_layer(stage, layer);
    Ok(true)
}

/// Where the sources are read: the context (with its ignore file), or a
/// stage's or an image's tree mounted for the copy.
fn source_root(b: &mut Builder, plan: &Plan) -> Result<(Option<Mounted>, Option<PathBuf>, Ignore)> {
    let image = match &plan.from {
        From::Context => {
            let dir = b.context_dir().map(Path::to_path_buf);
            return Ok((None, dir, b.ignore().clone()));
        }
        From::Stage(n) => {
            let s = b.done[n].clone();
            b.materialize(&s.config_bytes(), &s.layers)?
        }
        From::Image(_) => plan.digest.clone(),
    };
    let m = mount(b, &image)?;
    let target = m.target.clone();
    Ok((Some(m), Some(target), Ignore::default()))
}

/// --chown and --chmod; without --chown, root owns what comes from the
/// context, and what comes from a stage or image keeps its owners.
fn owner_of(b: &Builder, i: &Instruction, plan: &Plan, lowers: &[PathBuf]) -> Result<Owner> {
    let ids = match i.flag("chown") {
        Some(c) => Some(chown_ids(lowers, c).map_err(|e| b.err(i, format!("--chown={c}: {e}")))?),
        None if matches!(plan.from, From::Context) => Some((0, 0)),
        None => None,
    };
    let mode = match i.flag("chmod") {
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| b.err(i, format!("--chmod={m}: an octal mode (755)")))?,
        ),
        None => None,
    };
    Ok(Owner { ids, mode })
}

/// The destination (relative to /, WORKDIR's when not absolute, the
/// image's symlinks on the way followed) and whether it is a directory:
/// named so (a trailing /, `.` or `..`: WORKDIR's own), more than one
/// source or a glob, or a directory in the image already.
fn destination(stage: &Stage, plan: &Plan, lowers: &[PathBuf]) -> (String, bool) {
    let abs = match plan.dest.starts_with('/') {
        true => plan.dest.clone(),
        false => format!("{}/{}", stage.workdir(), plan.dest),
    };
    let dest = resolve_in_image(lowers, &clean(&abs));
    let d = plan.dest.as_str();
    let is_dir = d.ends_with('/')
        || matches!(d, "." | "..")
        || d.ends_with("/.")
        || d.ends_with("/..")
        || plan.sources.len() > 1
        || plan.sources.iter().any(|s| s.contains(['*', '?', '[']))
        || dest.is_empty()
        || lookup(lowers, &dest)
            .map(|(_, m)| m.is_dir())
            .unwrap_or(false);
    (dest, is_dir)
}

/// What the image has at `rel` (a path without symlinks among its
/// parents): the topmost layer's entry, None under a whiteout.
fn lookup(lowers: &[PathBuf], rel: &str) -> Option<(PathBuf, fs::Metadata)> {
    use std::os::unix::fs::FileTypeExt;
    for l in lowers {
        let p = l.join(rel);
        if let Ok(m) = fs::symlink_metadata(&p) {
            if m.file_type().is_char_device() && m.rdev() == 0 {
                return None;
            }
            return Some((p, m));
        }
    }
    None
}

/// `rel` with the image's symlinks followed as a process in the image
/// would follow them (`/bin` -> `usr/bin` on a merged-/usr Debian), so
/// that a COPY into `/bin/` lands in `/usr/bin` and leaves the link be.
/// The last component is followed only to a directory.
fn resolve_in_image(lowers: &[PathBuf], rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let Some((last, parents)) = parts.split_last() else {
        return String::new();
    };
    let parent = follow_links(lowers, &parents.join("/"));
    let here = join(&parent, last);
    match lookup(lowers, &here) {
        Some((_, m)) if m.file_type().is_symlink() => {
            let target = follow_links(lowers, &here);
            match lookup(lowers, &target) {
                Some((_, m)) if m.is_dir() => target,
                _ => here,
            }
        }
        _ => here,
    }
}

/// `rel` with every symlink on it followed inside the image (an absolute
/// target from its root, `..` never above it; at most 40 links).
fn follow_links(lowers: &[PathBuf], rel: &str) -> String {
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
        let here = join(&done.join("/"), &c);
        let target = match lookup(lowers, &here) {
            Some((p, m)) if m.file_type().is_symlink() && links < 40 => fs::read_link(p).ok(),
            _ => None,
        };
        match target {
            Some(t) => {
                links += 1;
                splice_link(&t.to_string_lossy(), &mut done, &mut todo);
            }
            None => done.push(c),
        }
    }
    done.join("/")
}

/// One source path: a directory's contents, ADD's archive unpacked, or
/// the file or link itself.
#[allow(clippy::too_many_arguments)]
fn lay_out(
    b: &Builder,
    i: &Instruction,
    lay: &Layout,
    root: &Path,
    ignore: &Ignore,
    f: &str,
    name: &str,
    dest: &str,
    dest_is_dir: bool,
) -> Result<()> {
    let src = root.join(f);
    let m = fs::symlink_metadata(&src).map_err(|e| skiff_image::Error::at(&src, "reading", e))?;
    if m.is_dir() {
        // The directory's contents go in; the directory itself does not
        // (Docker's rule), so its mode (a 0700 checkout) stays out.
        lay.dest_dir(dest)?;
        for p in walk(root, f, ignore)?.into_iter().filter(|p| p != f) {
            let below = p.strip_prefix(f).unwrap_or(&p).trim_start_matches('/');
            lay.entry(&root.join(&p), &join(dest, below))?;
        }
    } else if let Some(tar) = (i.keyword == "ADD" && m.is_file())
        .then(|| open_tar(&src, lay.staging))
        .flatten()
    {
        lay.dest_dir(dest)?;
        lay.unpack(tar, dest)
            .map_err(|e| b.err(i, format!("{f}: {e}")))?;
    } else {
        let target = match dest_is_dir {
            true => join(dest, name),
            false => dest.to_string(),
        };
        lay.entry(&src, &target)?;
    }
    Ok(())
}

fn mount(b: &mut Builder, image_id: &str) -> Result<Mounted> {
    let dir = b.store.scratch("copy-from")?;
    let target = dir.join("merged");
    let m = Mounted {
        dir: dir.clone(),
        target: target.clone(),
    };
    skiff_image::mount::mount_at(b.store, image_id, &dir, &target)?;
    Ok(m)
}

fn lower_dirs(b: &Builder, stage: &Stage) -> Vec<PathBuf> {
    stage
        .chain_ids()
        .iter()
        .rev()
        .filter_map(|c| b.store.layer_dir(c).ok().map(|d| d.join("diff")))
        .collect()
}

/// --chown=USER[:GROUP]: numbers, or names of the image's /etc/passwd and
/// /etc/group.
fn chown_ids(lowers: &[PathBuf], spec: &str) -> std::result::Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |rel: &str| -> String {
        lowers
            .iter()
            .find_map(|l| fs::read_to_string(l.join(rel)).ok())
            .unwrap_or_default()
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let passwd = read("etc/passwd");
            let line = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[0] == user)
                .ok_or_else(|| format!("no user {user:?} in the image's /etc/passwd"))?;
            let uid = line[2]
                .parse()
                .map_err(|_| format!("{user}: a bad uid in /etc/passwd"))?;
            let gid = line[3]
                .parse()
                .map_err(|_| format!("{user}: a bad gid in /etc/passwd"))?;
            (uid, gid)
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("no group {g:?} in the image's /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

/// ADD's archive: the tar inside `p` (plain, gzip, zstd, bzip2 or xz),
/// as a reader from its start; None when `p` is not one (a compressed
/// file that holds no tar is copied as it is, as Docker and Podman copy
/// it). `scratch` names a file beside the staging directory for xz's
/// output (lzma-rs decodes into a writer, not as a reader).
fn open_tar(p: &Path, scratch: &Path) -> Option<Box<dyn Read>> {
    let mut magic = [0u8; 6];
    let mut f = fs::File::open(p).ok()?;
    let n = f.read(&mut magic).ok()?;
    let magic = &magic[..n];
    let f = fs::File::open(p).ok()?;
    let mut reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::new(f).ok()?)
    } else if magic.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        let out = scratch.with_extension("xz-tar");
        let decoded = (|| -> std::io::Result<fs::File> {
            let mut w = std::io::BufWriter::new(fs::File::create(&out)?);
            lzma_rs::xz_decompress(&mut std::io::BufReader::new(f), &mut w)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            drop(w);
            fs::File::open(&out)
        })();
        // Open (or failed): the name is not needed any more.
        let _ = fs::remove_file(&out);
        Box::new(decoded.ok()?)
    } else {
        Box::new(f)
    };
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < 512 {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(_) => return None,
        }
    }
    if got < 512 || !is_tar_header(&head) {
        return None;
    }
    Some(Box::new(std::io::Cursor::new(head).chain(reader)))
}

/// A tar header block: ustar's magic, or (a v7 tar) its checksum right.
fn is_tar_header(h: &[u8]) -> bool {
    if &h[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(['\0', ' ']), 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            if (148..156).contains(&k) {
                32
            } else {
                c as u32
            }
        })
        .sum();
    h[0] != 0 && sum == want
}

/// Lays entries out in the staging directory as the layer will hold them.
struct Layout<'a> {
    staging: &'a Path,
    lowers: &'a [PathBuf],
    owner: Owner,
    /// Directories' and links' mtimes to set once everything is laid
    /// out (writing into a directory changes its own).
    times: std::cell::RefCell<Vec<(PathBuf, std::time::SystemTime)>>,
}

impl Layout<'_> {
    /// The parents of `target` (relative), as the image has them (mode,
    /// owner) or root's 0755 where it has none. A parent an earlier source
    /// made a symlink (or a file) is made a directory: nothing written
    /// here may follow a link out of the staging directory.
    fn parents(&self, target: &str) -> Result<()> {
        let parts: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
        for k in 1..parts.len() {
            let rel = parts[..k].join("/");
            if self.make_dir(&rel)? {
                let (mode, ids) = self
                    .lowers
                    .iter()
                    .find_map(|l| fs::metadata(l.join(&rel)).ok())
                    .filter(|m| m.is_dir())
                    .map(|m| (m.mode() & 0o7777, (m.uid(), m.gid())))
                    // Made by the COPY: --chown's, as Podman owns them.
                    .unwrap_or((0o755, self.owner.ids.unwrap_or((0, 0))));
                set_owner_mode(&self.staging.join(&rel), ids, Some(mode))?;
            }
        }
        Ok(())
    }

    /// Sets the mtimes noted, each without following a link.
    fn set_times(&self) -> Result<()> {
        use rustix::fs::{utimensat, AtFlags, Timestamps, CWD};
        for (p, t) in self.times.borrow().iter() {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let ts = rustix::fs::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as _,
            };
            let times = Timestamps {
                last_access: ts,
                last_modification: ts,
            };
            utimensat(CWD, p, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
                skiff_image::Error::io(format!("mtime of {}", p.display()), e.into())
            })?;
        }
        Ok(())
    }

    fn keep_mtime(&self, p: &Path, m: &fs::Metadata) {
        if let Ok(t) = m.modified() {
            self.times.borrow_mut().push((p.to_path_buf(), t));
        }
    }

    /// The destination directory: as the image has it, else made root's
    /// (or --chown's) 0755.
    fn dest_dir(&self, dest: &str) -> Result<()> {
        if dest.is_empty() {
            return Ok(());
        }
        self.parents(&join(dest, "x"))?;
        if self.make_dir(dest)? {
            let (mode, ids) = self
                .lowers
                .iter()
                .find_map(|l| fs::metadata(l.join(dest)).ok())
                .filter(|m| m.is_dir())
                .map(|m| (m.mode() & 0o7777, (m.uid(), m.gid())))
                .unwrap_or((0o755, self.owner.ids.unwrap_or((0, 0))));
            set_owner_mode(&self.staging.join(dest), ids, Some(mode))?;
        }
        Ok(())
    }

    /// A directory at `rel` (its parents are directories already), in
    /// place of anything else there; whether it was made now.
    fn make_dir(&self, rel: &str) -> Result<bool> {
        let p = self.staging.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => return Ok(false),
            Ok(_) => fs::remove_file(&p).map_err(|e| skiff_image::Error::at(&p, "replacing", e))?,
            Err(_) => {}
        }
        fs::create_dir(&p).map_err(|e| skiff_image::Error::at(&p, "making", e))?;
        Ok(true)
    }

    /// Clears `rel` for a file or link (a directory there goes whole).
    fn clear(&self, rel: &str) -> Result<()> {
        let p = self.staging.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => remove_tree(&p),
            Ok(_) => fs::remove_file(&p).map_err(|e| skiff_image::Error::at(&p, "replacing", e)),
            Err(_) => Ok(()),
        }
    }

    /// A file of `body` at `target` (a heredoc), root's 0644 unless
    /// --chown/--chmod.
    fn file(&self, target: &str, body: &[u8]) -> Result<()> {
        self.parents(target)?;
        self.clear(target)?;
        let p = self.staging.join(target);
        fs::write(&p, body).map_err(|e| skiff_image::Error::at(&p, "writing", e))?;
        self.own(&p, 0o644, (0, 0))
    }

    fn own(&self, p: &Path, mode: u32, src_ids: (u32, u32)) -> Result<()> {
        let ids = self.owner.ids.unwrap_or(src_ids);
        set_owner_mode(p, ids, Some(self.owner.mode.unwrap_or(mode)))
    }

    /// One file, directory or symlink copied to `target`.
    fn entry(&self, src: &Path, target: &str) -> Result<()> {
        let m = fs::symlink_metadata(src).map_err(|e| skiff_image::Error::at(src, "reading", e))?;
        let dst = self.staging.join(target);
        if !target.is_empty() {
            self.parents(target)?;
        }
        let ids = (m.uid(), m.gid());
        let ft = m.file_type();
        if ft.is_dir() {
            if !target.is_empty() {
                self.make_dir(target)?;
                self.keep_mtime(&dst, &m);
            }
            self.own(&dst, m.mode() & 0o7777, ids)
        } else if ft.is_symlink() {
            self.keep_mtime(&dst, &m);
            let t = fs::read_link(src).map_err(|e| skiff_image::Error::at(src, "reading", e))?;
            self.clear(target)?;
            std::os::unix::fs::symlink(&t, &dst)
                .map_err(|e| skiff_image::Error::at(&dst, "making", e))?;
            let (u, g) = self.owner.ids.unwrap_or(ids);
            rustix::fs::chownat(
                rustix::fs::CWD,
                &dst,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| skiff_image::Error::io(format!("chown {}", dst.display()), e.into()))
        } else if ft.is_file() {
            self.clear(target)?;
            fs::copy(src, &dst).map_err(|e| skiff_image::Error::at(&dst, "copying to", e))?;
            if let Ok(mtime) = m.modified() {
                if let Ok(f) = fs::File::options().write(true).open(&dst) {
                    let _ = f.set_modified(mtime);
                }
            }
            self.own(&dst, m.mode() & 0o7777, ids)
        } else {
            // Devices, fifos, sockets: not copied (Docker copies no sockets
            // either; devices come from the runtime).
            Ok(())
        }
    }

    /// ADD of a local archive: unpacked under `dest`, mtimes kept (a
    /// directory's set once everything is laid out).
    fn unpack(&self, tar: Box<dyn Read>, dest: &str) -> std::result::Result<(), String> {
        let dir = self.staging.join(dest);
        fs::create_dir_all(&dir).map_err(|e| format!("making {}: {e}", dir.display()))?;
        let mut a = tar::Archive::new(tar);
        a.set_preserve_permissions(true);
        a.set_preserve_ownerships(self.owner.ids.is_none());
        a.set_preserve_mtime(true);
        a.set_overwrite(true);
        let entries = a.entries().map_err(|e| format!("unpacking: {e}"))?;
        for e in entries {
            let mut e = e.map_err(|e| format!("unpacking: {e}"))?;
            let is_dir = e.header().entry_type() == tar::EntryType::Directory;
            let mtime = e.header().mtime().ok();
            let rel = clean(&e.path().map_err(|e| e.to_string())?.to_string_lossy());
            // unpack_in keeps every entry under `dir` (no `..`, no path
            // through a symlink it made).
            let put = e.unpack_in(&dir).map_err(|e| format!("unpacking: {e}"))?;
            if let (true, true, Some(t)) = (put, is_dir, mtime) {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
                self.times.borrow_mut().push((dir.join(rel), t));
            }
        }
        if let Some(ids) = self.owner.ids {
            for p in walk(&dir, "", &Ignore::default()).map_err(|e| e.to_string())? {
                let path = dir.join(&p);
                let _ = rustix::fs::chownat(
                    rustix::fs::CWD,
                    &path,
                    Some(rustix::fs::Uid::from_raw(ids.0)),
                    Some(rustix::fs::Gid::from_raw(ids.1)),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                );
            }
        }
        Ok(())
    }
}

fn set_owner_mode(p: &Path, ids: (u32, u32), mode: Option<u32>) -> Result<()> {
    std::os::unix::fs::chown(p, Some(ids.0), Some(ids.1))
        .map_err(|e| skiff_image::Error::at(p, "chown", e))?;
    if let Some(mode) = mode {
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
            .map_err(|e| skiff_image::Error::at(p, "chmod", e))?;
    }
    Ok(())
}
