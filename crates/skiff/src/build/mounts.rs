//! RUN --mount, as BuildKit and Podman take it: `type=bind` (the
//! default), `cache`, `tmpfs` and `secret`. Each spec is parsed before the
//! cache is asked (its text, and for a bind the digest of what it shows,
//! are part of the step's key), then made on the host before the RUN's
//! container (a cache directory of the store, an overlay over a bind
//! source written to, a stage mounted, secrets on a tmpfs) and given to it
//! as OCI mounts. None of it reaches the layer: the mounts cover what the
//! command writes there, and the mount points the runtime had to make are
//! left out of the layer by run.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skiff_image::store::remove_tree;
use skiff_image::{Error, Result};

use super::context::{clean, digest_tree, resolve_in_root, walk, Ignore};
use super::parse::{self, Instruction};
use super::{Builder, Stage};

/// One `--mount=...` of a RUN, its values substituted and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub kind: Kind,
    /// Absolute and clean (a relative target is under the WORKDIR, as
    /// BuildKit takes it).
    pub target: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// The context's `source` (a stage's or image's with `from`),
    /// read-only unless `rw`, whose writes are thrown away.
    Bind {
        from: Option<String>,
        source: String,
        rw: bool,
    },
    /// A directory of the store kept across builds under `id`.
    Cache {
        id: String,
        sharing: Sharing,
        ro: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        size: Option<i64>,
    },
    /// A `--secret` of the build, as a read-only file.
    Secret {
        id: String,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// How builds running at once share a cache mount (BuildKit's words).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sharing {
    /// Every build uses it at once.
    Shared,
    /// A build that finds it in use gets an empty one of its own,
    /// thrown away after the RUN.
    Private,
    /// A build waits for the one using it.
    Locked,
}

/// The keys each type takes, BuildKit's names and their aliases.
const TARGET_KEYS: &[&str] = &["target", "dst", "destination"];
const BIND_KEYS: &[&str] = &["from", "source", "src", "rw", "readwrite", "ro", "readonly"];
const CACHE_KEYS: &[&str] = &[
    "id",
    "sharing",
    "ro",
    "readonly",
    "rw",
    "readwrite",
    "mode",
    "uid",
    "gid",
    "from",
    "source",
    "src",
];
const TMPFS_KEYS: &[&str] = &["size", "tmpfs-size"];
const SECRET_KEYS: &[&str] = &["id", "required", "mode", "uid", "gid"];

/// Parses a `--mount` value (already substituted); `workdir` places a
/// relative target.
pub fn parse_spec(value: &str, workdir: &str) -> std::result::Result<Spec, String> {
    let mut kv: Vec<(String, String)> = vec![];
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        kv.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |names: &[&str]| -> Option<String> {
        kv.iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
    };
    let ty = get(&["type"]).unwrap_or_else(|| "bind".into());
    let allowed: &[&str] = match ty.as_str() {
        "bind" => BIND_KEYS,
        "cache" => CACHE_KEYS,
        "tmpfs" => TMPFS_KEYS,
        "secret" => SECRET_KEYS,
        "ssh" => return Err("type=ssh: not supported (builds here forward no SSH agent)".into()),
        t => return Err(format!("type={t}: expected bind, cache, tmpfs or secret")),
    };
    // Every key is applied or refused by name: one dropped silently would
    // change what the command sees.
    if let Some((k, _)) = kv.iter().find(|(k, _)| {
        k != "type" && !TARGET_KEYS.contains(&k.as_str()) && !allowed.contains(&k.as_str())
    }) {
        return Err(format!("{k}: not an option of type={ty}"));
    }
    let flag = |names: &[&str]| -> std::result::Result<Option<bool>, String> {
        match get(names).as_deref() {
            None => Ok(None),
            Some("" | "true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(v) => Err(format!("{}={v}: expected true or false", names[0])),
        }
    };
    let number = |name: &str, radix: u32, default: u32| -> std::result::Result<u32, String> {
        match get(&[name]) {
            None => Ok(default),
            Some(v) => u32::from_str_radix(&v, radix).map_err(|_| match radix {
                8 => format!("{name}={v}: expected an octal mode, as 0755"),
                _ => format!("{name}={v}: expected a number"),
            }),
        }
    };
    let target = get(TARGET_KEYS).filter(|t| !t.is_empty());
    let place = |t: &str| {
        let joined = match t.starts_with('/') {
            true => t.to_string(),
            false => format!("{workdir}/{t}"),
        };
        format!("/{}", clean(&joined))
    };
    let kind = match ty.as_str() {
        "bind" => Kind::Bind {
            from: get(&["from"]).filter(|f| !f.is_empty()),
            source: clean(&get(&["source", "src"]).unwrap_or_default()),
            rw: rw(
                flag(&["rw", "readwrite"])?,
                flag(&["ro", "readonly"])?,
                false,
            ),
        },
        "cache" => {
            if get(&["from"]).is_some() || get(&["source", "src"]).is_some() {
                return Err(
                    "from= and source= (a cache seeded from a stage): not supported here".into(),
                );
            }
            let sharing = match get(&["sharing"]).as_deref() {
                None | Some("shared") => Sharing::Shared,
                Some("private") => Sharing::Private,
                Some("locked") => Sharing::Locked,
                Some(s) => return Err(format!("sharing={s}: expected shared, private or locked")),
            };
            let Some(t) = &target else {
                return Err("type=cache needs target=PATH".into());
            };
            Kind::Cache {
                // BuildKit's default id is the target as written.
                id: get(&["id"])
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| t.clone()),
                sharing,
                ro: !rw(
                    flag(&["rw", "readwrite"])?,
                    flag(&["ro", "readonly"])?,
                    true,
                ),
                mode: number("mode", 8, 0o755)?,
                uid: number("uid", 10, 0)?,
                gid: number("gid", 10, 0)?,
            }
        }
        "tmpfs" => Kind::Tmpfs {
            size: get(&["size", "tmpfs-size"])
                .map(|s| crate::spec::parse_size("size", &s))
                .transpose()?,
        },
        _ => {
            // BuildKit: the id defaults to the target's name, the target
            // to /run/secrets/ID.
            let id = get(&["id"])
                .filter(|i| !i.is_empty())
                .or_else(|| {
                    target
                        .as_deref()
                        .and_then(|t| Path::new(t).file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .ok_or("type=secret needs id=ID (or target=PATH)")?;
            let kind = Kind::Secret {
                required: flag(&["required"])?.unwrap_or(false),
                mode: number("mode", 8, 0o400)?,
                uid: number("uid", 10, 0)?,
                gid: number("gid", 10, 0)?,
                id: id.clone(),
            };
            let target = place(target.as_deref().unwrap_or(&format!("/run/secrets/{id}")));
            return checked(Spec { kind, target });
        }
    };
    let Some(t) = target else {
        return Err(format!("type={ty} needs target=PATH"));
    };
    checked(Spec {
        kind,
        target: place(&t),
    })
}

/// rw and ro given, or the default.
fn rw(rw: Option<bool>, ro: Option<bool>, default: bool) -> bool {
    rw.or(ro.map(|r| !r)).unwrap_or(default)
}

fn checked(s: Spec) -> std::result::Result<Spec, String> {
    if s.target == "/" {
        return Err("target=/: the root cannot be a mount point".into());
    }
    Ok(s)
}

impl Spec {
    /// The spec as the step's cache key holds it (every option, written
    /// one way; a secret's id, never its value).
    pub fn key_text(&self) -> String {
        let t = &self.target;
        match &self.kind {
            Kind::Bind { from, source, rw } => format!(
                "type=bind,from={},source={source},target={t},rw={rw}",
                from.as_deref().unwrap_or("")
            ),
            Kind::Cache {
                id,
                sharing,
                ro,
                mode,
                uid,
                gid,
            } => format!(
                "type=cache,id={id},target={t},sharing={sharing:?},ro={ro},mode={mode:o},uid={uid},gid={gid}"
            ),
            Kind::Tmpfs { size } => format!("type=tmpfs,target={t},size={size:?}"),
            Kind::Secret {
                id,
                required,
                mode,
                uid,
                gid,
            } => format!(
                "type=secret,id={id},target={t},required={required},mode={mode:o},uid={uid},gid={gid}"
            ),
        }
    }
}

/// `--secret` of `skiff build`: where a secret's value is read.
#[derive(Debug, Clone)]
pub struct Secret {
    pub id: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl Secret {
    /// Parses `id=ID,src=FILE` (also `source=`), `id=ID,env=VAR`, or
    /// BuildKit's `type=file|env` with the source named by the id alone.
    pub fn parse(v: &str) -> std::result::Result<Secret, String> {
        let (mut id, mut file, mut env, mut ty) = (None, None, None, None);
        for part in v.split(',').filter(|p| !p.is_empty()) {
            let (k, val) = part
                .split_once('=')
                .ok_or_else(|| format!("--secret {v:?}: {part:?} is not KEY=VALUE"))?;
            match k {
                "id" => id = Some(val.to_string()),
                "src" | "source" => file = Some(PathBuf::from(val)),
                "env" => env = Some(val.to_string()),
                "type" if val == "file" || val == "env" => ty = Some(val.to_string()),
                k => {
                    return Err(format!(
                        "--secret {v:?}: {k}: expected id, src, source, env or type=file|env"
                    ))
                }
            }
        }
        let id = id
            .filter(|i| !i.is_empty() && !i.contains('/'))
            .ok_or_else(|| format!("--secret {v:?}: id=ID is needed (a name without /)"))?;
        let source = match (file, env, ty.as_deref()) {
            (Some(f), None, None | Some("file")) => SecretSource::File(f),
            (None, Some(e), None | Some("env")) => SecretSource::Env(e),
            (None, None, Some("env")) => SecretSource::Env(id.clone()),
            (None, None, Some(_)) => SecretSource::File(PathBuf::from(&id)),
            _ => return Err(format!("--secret {v:?}: give src=FILE or env=VAR (one)")),
        };
        Ok(Secret { id, source })
    }

    /// Its value; None when its variable is unset.
    fn value(&self) -> Result<Option<Vec<u8>>> {
        match &self.source {
            SecretSource::File(p) => fs::read(p)
                .map(Some)
                .map_err(|e| Error::at(p, &format!("--secret id={}: reading", self.id), e)),
            SecretSource::Env(v) => Ok(std::env::var_os(v).map(|s| s.into_encoded_bytes())),
        }
    }
}

/// Where a bind mount's files are.
#[derive(Debug, Clone)]
enum Root {
    Context,
    Stage(usize),
    /// An image of the store, by id.
    Image(String),
}

/// A RUN's mounts, known before the cache is asked.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    mounts: Vec<(Spec, Option<Root>)>,
    /// What the step's key holds of them: each spec, and for a bind what
    /// it shows (the files' digest, the stage's config digest, the
    /// image's id). A secret's value is not in it (BuildKit's rule: a
    /// changed secret does not rerun the step).
    pub key_parts: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }
}

/// Parses a RUN's `--mount` flags, finds what binds read and digests it.
pub fn plan(b: &mut Builder, stage: &Stage, i: &Instruction) -> Result<Plan> {
    let mut p = Plan::default();
    for (_, value) in i.flags.iter().filter(|(f, _)| f == "mount") {
        let value = parse::expand(value, b.file.escape, &|n| stage.lookup(n));
        let spec = parse_spec(&value, &stage.workdir())
            .map_err(|e| b.err(i, format!("--mount={value}: {e}")))?;
        let mut key = spec.key_text();
        let root = match &spec.kind {
            Kind::Bind { from, source, .. } => {
                let (root, digest) = bind_root(b, i, from.as_deref(), source)?;
                key.push_str(&format!(",shows={digest}"));
                Some(root)
            }
            _ => None,
        };
        if p.mounts.iter().any(|(s, _)| s.target == spec.target) {
            return Err(b.err(
                i,
                format!("--mount={value}: a second mount at {}", spec.target),
            ));
        }
        p.key_parts.push(key);
        p.mounts.push((spec, root));
    }
    Ok(p)
}

/// A bind's root and what the key holds of it.
fn bind_root(
    b: &mut Builder,
    i: &Instruction,
    from: Option<&str>,
    source: &str,
) -> Result<(Root, String)> {
    let Some(f) = from else {
        let Some(ctx) = b.context_dir() else {
            return Err(b.err(
                i,
                "a bind mount of the context, but there is none (the Containerfile came on stdin)",
            ));
        };
        // The context as it is, ignore file and all (Podman 4.3's bind
        // shows the directory whole), so the digest covers all of it.
        let rel = resolve_in_root(ctx, source, true)
            .filter(|r| fs::symlink_metadata(ctx.join(r)).is_ok())
            .ok_or_else(|| {
                b.err(
                    i,
                    format!("--mount source={source}: not in the build context"),
                )
            })?;
        let paths = walk(ctx, &rel, &Ignore::default())?;
        return Ok((Root::Context, digest_tree(ctx, &paths, false)?));
    };
    match b
        .names
        .get(&f.to_ascii_lowercase())
        .copied()
        .or_else(|| f.parse::<usize>().ok())
    {
        Some(n) if b.done.contains_key(&n) => Ok((
            Root::Stage(n),
            skiff_image::digest::of(&b.done[&n].config_bytes()),
        )),
        Some(_) => Err(b.err(
            i,
            format!("--mount from={f}: a stage mounts only a stage before it"),
        )),
        None => {
            let id = super::copy::find_or_pull(b, i, f)?;
            Ok((Root::Image(id.clone()), id))
        }
    }
}

/// A RUN's mounts made on the host: the OCI mounts to give its container,
/// their targets (for run.rs to leave out of the layer), and what to undo
/// after (host mounts, a scratch directory, cache locks).
pub struct Made {
    pub mounts: Vec<Value>,
    pub targets: Vec<String>,
    scratch: Option<PathBuf>,
    host_mounts: Vec<PathBuf>,
    locks: Vec<fs::File>,
}

impl Drop for Made {
    fn drop(&mut self) {
        let mut all_off = true;
        for m in self.host_mounts.iter().rev() {
            if let Err(e) = skiff_image::mount::unmount_at(m) {
                eprintln!("skiff: warning: RUN --mount: {e}");
                all_off = false;
            }
        }
        // Never a tree removed through a mount still there (a context's
        // overlay, a secret's tmpfs): it stays for `doctor` to find.
        if let (Some(s), true) = (&self.scratch, all_off) {
            let _ = remove_tree(s);
        }
    }
}

/// Makes a RUN's mounts (`plan`'s) on the host.
pub fn make(b: &mut Builder, i: &Instruction, plan: &Plan) -> Result<Made> {
    let mut made = Made {
        mounts: vec![],
        targets: vec![],
        scratch: None,
        host_mounts: vec![],
        locks: vec![],
    };
    if plan.is_empty() {
        return Ok(made);
    }
    let scratch = b.store.scratch("run-mounts")?;
    made.scratch = Some(scratch.clone());
    for (n, (spec, root)) in plan.mounts.iter().enumerate() {
        let t = spec.target.as_str();
        let mount = match (&spec.kind, root) {
            (Kind::Bind { source, rw, .. }, Some(root)) => {
                let here = scratch.join(format!("bind{n}"));
                bind(b, i, root, source, *rw, &here, &mut made)?
                    .map(|src| crate::spec::bind(&src, t, !rw))
            }
            (Kind::Cache { .. }, _) => Some(cache(
                b,
                i,
                spec,
                &scratch.join(format!("cache{n}")),
                &mut made,
            )?),
            (Kind::Tmpfs { size }, _) => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                Some(json!({"destination": t, "type": "tmpfs", "source": "tmpfs", "options": opts}))
            }
            (Kind::Secret { .. }, _) => secret(b, i, spec, &scratch, n, &mut made)?,
            (Kind::Bind { .. }, None) => None,
        };
        if let Some(m) = mount {
            made.mounts.push(m);
            made.targets.push(t.to_string());
        }
    }
    Ok(made)
}

/// A bind's source on the host: the context's path itself (read-only),
/// or an overlay over it whose upper dir is thrown away (`rw`: writes are
/// discarded, as BuildKit's); a stage's or image's tree mounted as an
/// overlay of its own (written to, its upper dir thrown away too).
fn bind(
    b: &mut Builder,
    i: &Instruction,
    root: &Root,
    source: &str,
    rw: bool,
    here: &Path,
    made: &mut Made,
) -> Result<Option<String>> {
    let tree = match root {
        Root::Context => b
            .context_dir()
            .map(Path::to_path_buf)
            .ok_or_else(|| b.err(i, "a bind mount of the context, but there is none"))?,
        Root::Stage(n) => {
            let s = b.done[n].clone();
            let id = b.materialize(&s.config_bytes(), &s.layers)?;
            mount_image(b, &id, here, made)?
        }
        Root::Image(id) => mount_image(b, id, here, made)?,
    };
    let rel = resolve_in_root(&tree, source, true)
        .filter(|r| fs::symlink_metadata(tree.join(r)).is_ok())
        .ok_or_else(|| b.err(i, format!("--mount source={source}: not found in its root")))?;
    let src = tree.join(&rel);
    if !rw || !matches!(root, Root::Context) {
        return Ok(Some(src.display().to_string()));
    }
    // The context written to: an overlay over the source directory, or a
    // copy of a single file.
    if !src.is_dir() {
        fs::create_dir_all(here).map_err(|e| Error::at(here, "making", e))?;
        let copy = here.join("file");
        fs::copy(&src, &copy).map_err(|e| Error::at(&src, "copying a bind source", e))?;
        return Ok(Some(copy.display().to_string()));
    }
    let merged = here.join("merged");
    skiff_image::mount::mount_layers(vec![src.clone()], here, &merged)
        .map_err(|e| Error::io(format!("mounting an overlay over {}", src.display()), e))?;
    made.host_mounts.push(merged.clone());
    Ok(Some(merged.display().to_string()))
}

fn mount_image(b: &Builder, id: &str, here: &Path, made: &mut Made) -> Result<PathBuf> {
    let merged = here.join("merged");
    skiff_image::mount::mount_at(b.store, id, here, &merged)?;
    made.host_mounts.push(merged.clone());
    Ok(merged)
}

/// The store's directory of a cache mount, made (mode, uid, gid) when
/// new; a lock held as `sharing` asks.
fn cache(
    b: &Builder,
    i: &Instruction,
    spec: &Spec,
    spare: &Path,
    made: &mut Made,
) -> Result<Value> {
    let Kind::Cache {
        id,
        sharing,
        ro,
        mode,
        uid,
        gid,
    } = &spec.kind
    else {
        unreachable!("cache() is called for cache mounts")
    };
    let base = b.store.root.join(crate::images::BUILD_CACHE_MOUNTS);
    fs::create_dir_all(&base).map_err(|e| Error::at(&base, "making", e))?;
    let hex = skiff_image::digest::of(id.as_bytes())["sha256:".len()..].to_string();
    let lock_path = base.join(format!("{hex}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::at(&lock_path, "opening", e))?;
    use rustix::fs::FlockOperation as Op;
    let mut dir = base.join(&hex);
    match sharing {
        Sharing::Shared => rustix::fs::flock(&lock, Op::LockShared)
            .map_err(|e| Error::at(&lock_path, "locking", e.into()))?,
        Sharing::Locked => rustix::fs::flock(&lock, Op::LockExclusive)
            .map_err(|e| Error::at(&lock_path, "locking", e.into()))?,
        // In use: an empty one of its own, thrown away with the scratch.
        Sharing::Private => {
            if rustix::fs::flock(&lock, Op::NonBlockingLockExclusive).is_err() {
                dir = spare.to_path_buf();
            }
        }
    }
    made.locks.push(lock);
    match fs::create_dir(&dir) {
        Ok(()) => {
            std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid))
                .map_err(|e| Error::at(&dir, "owning the cache directory", e))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))
                .map_err(|e| Error::at(&dir, "giving the cache directory its mode", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(b.err(i, Error::at(&dir, "making the cache directory", e))),
    }
    Ok(crate::spec::bind(
        &dir.display().to_string(),
        &spec.target,
        *ro,
    ))
}

/// A secret's value as a read-only file on a tmpfs of the RUN's own (it
/// never touches the store's disk), bound at its target; None when the
/// build was given no such secret and it is not `required`.
fn secret(
    b: &Builder,
    i: &Instruction,
    spec: &Spec,
    scratch: &Path,
    n: usize,
    made: &mut Made,
) -> Result<Option<Value>> {
    let Kind::Secret {
        id,
        required,
        mode,
        uid,
        gid,
    } = &spec.kind
    else {
        unreachable!("secret() is called for secret mounts")
    };
    let value = match b.o.secrets.iter().rev().find(|s| &s.id == id) {
        Some(s) => s.value()?,
        None => None,
    };
    let Some(value) = value else {
        if *required {
            return Err(b.err(
                i,
                format!(
                    "--mount=type=secret,id={id}: required, and the build has no such --secret"
                ),
            ));
        }
        return Ok(None);
    };
    let dir = scratch.join("secrets");
    if !made.host_mounts.contains(&dir) {
        fs::create_dir(&dir).map_err(|e| Error::at(&dir, "making", e))?;
        rustix::mount::mount(
            "tmpfs",
            &dir,
            "tmpfs",
            rustix::mount::MountFlags::NOSUID
                | rustix::mount::MountFlags::NODEV
                | rustix::mount::MountFlags::NOEXEC,
            Some(c"mode=0700"),
        )
        .map_err(|e| Error::at(&dir, "mounting a tmpfs for the secrets", e.into()))?;
        made.host_mounts.push(dir.clone());
    }
    let file = dir.join(n.to_string());
    fs::write(&file, &value).map_err(|e| Error::at(&file, "writing a secret", e))?;
    std::os::unix::fs::chown(&file, Some(*uid), Some(*gid))
        .map_err(|e| Error::at(&file, "owning a secret", e))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(*mode))
        .map_err(|e| Error::at(&file, "giving a secret its mode", e))?;
    let mut m = crate::spec::bind(&file.display().to_string(), &spec.target, true);
    if let Some(o) = m["options"].as_array_mut() {
        o.extend([json!("nosuid"), json!("nodev"), json!("noexec")]);
    }
    Ok(Some(m))
}

/// The stages and images a RUN's mounts read (`from=`), for the stages
/// the target needs; values unsubstituted.
pub fn froms(i: &Instruction) -> Vec<String> {
    i.flags
        .iter()
        .filter(|(f, _)| f == "mount")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("from="))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_buildkits() {
        let s = parse_spec(
            "type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=5",
            "/",
        )
        .unwrap();
        assert_eq!(s.target, "/root/.cache");
        assert_eq!(
            s.kind,
            Kind::Cache {
                id: "/root/.cache".into(),
                sharing: Sharing::Locked,
                ro: false,
                mode: 0o700,
                uid: 5,
                gid: 0
            }
        );
        // bind is the default type, read-only unless rw; a relative
        // target is under the WORKDIR.
        let s = parse_spec("source=go.mod,dst=src/go.mod", "/app").unwrap();
        assert_eq!(s.target, "/app/src/go.mod");
        assert_eq!(
            s.kind,
            Kind::Bind {
                from: None,
                source: "go.mod".into(),
                rw: false
            }
        );
        let s = parse_spec("type=bind,target=/x,rw", "/").unwrap();
        assert!(matches!(s.kind, Kind::Bind { rw: true, .. }));
        let s = parse_spec("type=cache,target=/c,ro", "/").unwrap();
        assert!(matches!(s.kind, Kind::Cache { ro: true, .. }));
        let s = parse_spec("type=secret,id=tok", "/").unwrap();
        assert_eq!(s.target, "/run/secrets/tok");
        assert!(matches!(
            s.kind,
            Kind::Secret {
                mode: 0o400,
                required: false,
                ..
            }
        ));
        let s = parse_spec("type=secret,target=/etc/tok,required", "/").unwrap();
        assert!(matches!(&s.kind, Kind::Secret { id, required: true, .. } if id == "tok"));
        let s = parse_spec("type=tmpfs,target=/t,size=1m", "/").unwrap();
        assert_eq!(
            s.kind,
            Kind::Tmpfs {
                size: Some(1 << 20)
            }
        );
    }

    #[test]
    fn refusals_name_the_option() {
        for (v, says) in [
            ("type=cache", "needs target"),
            (
                "type=bind,target=/x,size=1",
                "size: not an option of type=bind",
            ),
            ("type=ssh", "type=ssh"),
            ("type=volume,target=/x", "type=volume"),
            ("type=cache,target=/x,sharing=all", "sharing=all"),
            ("type=cache,target=/x,from=s", "from="),
            ("type=cache,target=/x,mode=9", "mode=9"),
            ("type=tmpfs,target=/", "target=/"),
            ("type=secret", "id=ID"),
        ] {
            let e = parse_spec(v, "/").unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
    }

    #[test]
    fn secret_flags() {
        let s = Secret::parse("id=a,src=/f").unwrap();
        assert!(matches!(s.source, SecretSource::File(ref p) if p == Path::new("/f")));
        let s = Secret::parse("id=a,env=TOKEN").unwrap();
        assert!(matches!(s.source, SecretSource::Env(ref v) if v == "TOKEN"));
        let s = Secret::parse("type=env,id=TOKEN").unwrap();
        assert!(matches!(s.source, SecretSource::Env(ref v) if v == "TOKEN"));
        assert!(Secret::parse("src=/f").is_err());
        assert!(Secret::parse("id=a,src=/f,env=B").is_err());
        assert!(Secret::parse("id=a,what=b").is_err());
        assert!(Secret::parse("id=a").is_err(), "no source");
    }
}
