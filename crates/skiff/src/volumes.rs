//! Volumes: directories of the store that outlive containers, as Docker's
//! local driver keeps them (`volumes/NAME/_data`, with `volume.json`
//! beside). A named volume is made on first use and filled, the first
//! time, from what the image has at the path it is mounted on; an image's
//! VOLUME paths get anonymous volumes, removed with `rm -v`.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use skiff_image::{Error, Result};

use crate::db::Db;
use crate::format;

pub fn dir(db: &Db) -> PathBuf {
    db.root.join("volumes")
}

/// Docker's rule for a volume's name.
pub fn valid_name(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

pub fn data(db: &Db, name: &str) -> PathBuf {
    dir(db).join(name).join("_data")
}

fn meta_path(db: &Db, name: &str) -> PathBuf {
    dir(db).join(name).join("volume.json")
}

pub fn exists(db: &Db, name: &str) -> bool {
    meta_path(db, name).exists()
}

/// The local driver's options, as `volume create -o` takes them (Docker's
/// and Podman's): `type` and `device` mount a filesystem (mount(8)'s `-t`
/// and device; `o=bind` a host directory) on the volume's directory while
/// containers use it, `o` its mount options. `o`'s `uid=` and `gid=` own
/// a plain volume's directory (a tmpfs takes them as its own options).
#[derive(Debug, Default, PartialEq)]
pub struct DriverOpts {
    pub fstype: Option<String>,
    pub device: Option<String>,
    pub o: Option<String>,
}

impl DriverOpts {
    pub fn parse(given: &[String]) -> Result<DriverOpts> {
        let mut d = DriverOpts::default();
        for g in given {
            let (k, v) = g
                .split_once('=')
                .ok_or_else(|| Error::invalid(format!("--opt {g:?}: KEY=VALUE")))?;
            let slot = match k {
                "type" => &mut d.fstype,
                "device" => &mut d.device,
                "o" => &mut d.o,
                _ => {
                    return Err(Error::invalid(format!(
                        "--opt {g:?}: {k} is not an option of the local driver (type, device, o)"
                    )))
                }
            };
            *slot = Some(v.to_string());
        }
        d.check()?;
        Ok(d)
    }

    /// The combinations that mean something: a mount needs its device
    /// and a type (or o=bind); mount options need a mount.
    fn check(&self) -> Result<()> {
        for item in self.items() {
            match item.split_once('=') {
                Some(("uid" | "gid", n)) if n.parse::<u32>().is_err() => {
                    return Err(Error::invalid(format!("--opt o={item}: a numeric id")))
                }
                Some(("uid" | "gid", _)) => {}
                _ if self.device.is_none() => {
                    let what = match item.split_once('=').map_or(item, |(k, _)| k) {
                        "size" | "inodes" | "noquota" => {
                            "quotas need a filesystem with project quotas, not supported here (type=tmpfs takes size=)"
                        }
                        _ => "mount options need type= and device=",
                    };
                    return Err(Error::invalid(format!("--opt o={item}: {what}")));
                }
                _ => {}
            }
        }
        match (&self.fstype, &self.device) {
            (Some(t), None) => Err(Error::invalid(format!(
                "--opt type={t}: needs device= (mount(8)'s device: tmpfs for a tmpfs)"
            ))),
            (None, Some(dev)) if !self.binds() => Err(Error::invalid(format!(
                "--opt device={dev}: needs type= (or o=bind)"
            ))),
            (_, Some(dev)) if self.binds() && !dev.starts_with('/') => Err(Error::invalid(
                format!("--opt device={dev}: o=bind takes an absolute path"),
            )),
            _ => Ok(()),
        }
    }

    fn items(&self) -> impl Iterator<Item = &str> {
        self.o
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|i| !i.is_empty())
    }

    fn binds(&self) -> bool {
        self.items().any(|i| i == "bind" || i == "rbind")
    }

    /// Whether the volume is a mount, not a directory of the store.
    pub fn mounts(&self) -> bool {
        self.device.is_some()
    }

    fn id(&self, key: &str) -> Option<u32> {
        self.items()
            .filter_map(|i| i.strip_prefix(key)?.strip_prefix('='))
            .filter_map(|n| n.parse().ok())
            .last()
    }

    /// As volume.json and inspect keep them (Options).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("type", &self.fstype),
            ("device", &self.device),
            ("o", &self.o),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> DriverOpts {
        let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        DriverOpts {
            fstype: get("type"),
            device: get("device"),
            o: get("o"),
        }
    }

    /// Mounts the filesystem on `target`: a bind (its flags applied by a
    /// remount, as mount(8) does) or a filesystem of `type`.
    fn mount_on(&self, target: &Path) -> Result<()> {
        use nix::mount::{mount, MsFlags};
        let device = self.device.as_deref().unwrap_or_default();
        let opts: Vec<String> = self.items().map(str::to_string).collect();
        let parsed = skiff_runtime::rootfs::MountOptions::parse(&opts);
        let fail = |e: nix::Error| {
            Error::invalid(format!(
                "mounting {device} on {} (volume options type={}, o={}): {e}",
                target.display(),
                self.fstype.as_deref().unwrap_or("none"),
                self.o.as_deref().unwrap_or_default()
            ))
        };
        if parsed.is_bind() {
            let flags = parsed.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
            mount(
                Some(device),
                target,
                None::<&str>,
                parsed.flags,
                None::<&str>,
            )
            .map_err(fail)?;
            if !flags.is_empty() {
                let again = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags;
                if let Err(e) = mount(None::<&str>, target, None::<&str>, again, None::<&str>) {
                    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
                    return Err(fail(e));
                }
            }
            return Ok(());
        }
        let data = parsed.data.join(",");
        mount(
            Some(device),
            target,
            self.fstype.as_deref(),
            parsed.flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(fail)
    }
}

/// Makes volume `name` (an error if it exists); `anonymous` ones are
/// removed with the container that made them (`rm -v`).
pub fn create(db: &Db, name: &str, labels: &Value, anonymous: bool) -> Result<()> {
    create_with(db, name, labels, anonymous, &DriverOpts::default())
}

/// `create` with the local driver's options (`volume create -o`).
pub fn create_with(
    db: &Db,
    name: &str,
    labels: &Value,
    anonymous: bool,
    opts: &DriverOpts,
) -> Result<()> {
    if !valid_name(name) {
        return Err(Error::invalid(format!(
            "volume {name:?}: use letters, digits, '_', '.', '-' (from a letter or digit)"
        )));
    }
    let d = data(db, name);
    fs::create_dir_all(dir(db)).map_err(|e| Error::at(&dir(db), "making", e))?;
    fs::create_dir(d.parent().unwrap_or(&d)).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Error::Refused(format!("volume {name}: already exists"))
        }
        _ => Error::at(&d, "making", e),
    })?;
    fs::create_dir(&d).map_err(|e| Error::at(&d, "making", e))?;
    if !opts.mounts() && (opts.id("uid").is_some() || opts.id("gid").is_some()) {
        std::os::unix::fs::chown(&d, opts.id("uid"), opts.id("gid"))
            .map_err(|e| Error::at(&d, "owning", e))?;
    }
    let meta = json!({
        "Name": name,
        "Driver": "local",
        "Mountpoint": d,
        "CreatedAt": format::rfc3339(format::now(), None),
        "Labels": labels,
        "Anonymous": anonymous,
        "Filled": false,
        "Options": opts.to_json(),
    });
    fs::write(meta_path(db, name), meta.to_string())
        .map_err(|e| Error::at(&meta_path(db, name), "writing", e))?;
    crate::events::Event::new("volume", "create", "", name).record(&db.root);
    Ok(())
}

pub fn meta(db: &Db, name: &str) -> Result<Value> {
    let p = meta_path(db, name);
    let b = fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::invalid(format!("volume {name}: no such volume")),
        _ => Error::at(&p, "reading", e),
    })?;
    serde_json::from_slice(&b).map_err(|e| Error::invalid(format!("{}: {e}", p.display())))
}

pub fn list(db: &Db) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir(db))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("volume.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The volumes a container's config binds (their names).
pub fn used_by(db: &Db, id: &str) -> Vec<String> {
    binds_of(db, &container_config(db, id))
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn container_config(db: &Db, id: &str) -> Value {
    fs::read(db.dir(id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// The volumes a container's config binds: each one's name and where.
fn binds_of(db: &Db, config: &Value) -> Vec<(String, String)> {
    let base = dir(db);
    let Some(ms) = config["mounts"].as_array() else {
        return Vec::new();
    };
    ms.iter()
        .filter_map(|m| {
            let rel = Path::new(m["source"].as_str()?).strip_prefix(&base).ok()?;
            let name = rel.components().next()?.as_os_str().to_string_lossy();
            Some((name.into_owned(), m["destination"].as_str()?.to_string()))
        })
        .collect()
}

/// The volumes of container `id` that mount a filesystem, held (mounted)
/// for its run; each filled from the image the first time, as `fill`
/// fills a plain one when the container is made.
pub fn hold_for(db: &Db, id: &str) -> Result<Held> {
    let config = container_config(db, id);
    let binds = binds_of(db, &config);
    let names: Vec<String> = binds.iter().map(|(n, _)| n.clone()).collect();
    let held = hold(db, &names, id)?;
    // Relative to the bundle, the container's directory.
    let rootfs = db
        .dir(id)
        .join(config["root"]["path"].as_str().unwrap_or("rootfs"));
    for (name, destination) in &binds {
        if held.volumes.contains(&dir(db).join(name)) {
            fill_now(db, name, &rootfs, destination)?;
        }
    }
    Ok(held)
}

/// Every container using each volume.
pub fn users(db: &Db) -> Vec<(String, String)> {
    db.all()
        .unwrap_or_default()
        .iter()
        .flat_map(|c| {
            used_by(db, &c.id)
                .into_iter()
                .map(|v| (v, c.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn remove(db: &Db, name: &str) -> Result<()> {
    meta(db, name)?;
    if let Some((_, user)) = users(db).into_iter().find(|(v, _)| v == name) {
        return Err(Error::Refused(format!(
            "volume {name}: in use by container {user}: remove it first"
        )));
    }
    // What a crash left mounted goes first: the removal must not reach
    // through into the device (a bound host directory).
    let d = data(db, name);
    if is_mount_point(&d) {
        let _ = nix::mount::umount2(&d, nix::mount::MntFlags::MNT_DETACH);
        if is_mount_point(&d) {
            return Err(Error::Refused(format!(
                "volume {name}: {} is still mounted",
                d.display()
            )));
        }
    }
    skiff_image::store::remove_tree(&dir(db).join(name))?;
    crate::events::Event::new("volume", "remove", "", name).record(&db.root);
    Ok(())
}

/// Whether the volume mounts its filesystem read-only (`o=...,ro`): its
/// binds must say so too (a bind's remount for other flags would make it
/// writable again).
pub fn mounts_read_only(db: &Db, name: &str) -> bool {
    meta(db, name).is_ok_and(|m| {
        let opts = DriverOpts::from_json(&m["Options"]);
        opts.mounts() && opts.items().any(|i| i == "ro")
    })
}

/// Whether `path` is the root of a mount (its mount id differs from its
/// parent's).
fn is_mount_point(path: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let id = |p: &Path| {
        statx(CWD, p, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)
            .ok()
            .map(|s| s.stx_mnt_id)
    };
    match (id(path), path.parent().and_then(id)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Volumes that mount a filesystem, held mounted for as long as this
/// lives (Podman's mount count): the first holder mounts, the last one's
/// drop unmounts. Holders are keys with their process in the volume's
/// `holders` file, changed under a lock; a dead holder's line is dropped.
pub struct Held {
    volumes: Vec<PathBuf>,
    key: String,
}

/// Holds each of `names` that mounts a filesystem, as `key` (a
/// container's id; one per holder). Plain volumes are not held.
pub fn hold(db: &Db, names: &[String], key: &str) -> Result<Held> {
    let mut held = Held {
        volumes: Vec::new(),
        key: key.to_string(),
    };
    for name in names {
        let Ok(m) = meta(db, name) else { continue };
        let opts = DriverOpts::from_json(&m["Options"]);
        if !opts.mounts() {
            continue;
        }
        let vdir = dir(db).join(name);
        let _lock = lock(&vdir)?;
        let mut holders = read_holders(&vdir);
        if holders.is_empty() {
            let d = vdir.join("_data");
            if is_mount_point(&d) {
                // A crash's: no holder lives.
                let _ = nix::mount::umount2(&d, nix::mount::MntFlags::MNT_DETACH);
            }
            opts.mount_on(&d)
                .map_err(|e| Error::invalid(format!("volume {name}: {e}")))?;
        }
        holders.retain(|(k, _)| k != key);
        holders.push((key.to_string(), std::process::id() as i64));
        write_holders(&vdir, &holders)?;
        held.volumes.push(vdir);
    }
    Ok(held)
}

impl Drop for Held {
    fn drop(&mut self) {
        for vdir in &self.volumes {
            let Ok(_lock) = lock(vdir) else { continue };
            let mut holders = read_holders(vdir);
            holders.retain(|(k, _)| *k != self.key);
            if holders.is_empty() {
                let _ = nix::mount::umount2(&vdir.join("_data"), nix::mount::MntFlags::MNT_DETACH);
            }
            let _ = write_holders(vdir, &holders);
        }
    }
}

fn lock(vdir: &Path) -> Result<fs::File> {
    skiff_image::store::lock_file(&vdir.join("lock"))
}

/// The holders whose process lives.
fn read_holders(vdir: &Path) -> Vec<(String, i64)> {
    fs::read_to_string(vdir.join("holders"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, pid) = l.split_once(' ')?;
            Some((k.to_string(), pid.parse().ok()?))
        })
        .filter(|(_, pid)| crate::db::alive(*pid))
        .collect()
}

fn write_holders(vdir: &Path, holders: &[(String, i64)]) -> Result<()> {
    let text: String = holders.iter().map(|(k, p)| format!("{k} {p}\n")).collect();
    let path = vdir.join("holders");
    fs::write(&path, text).map_err(|e| Error::at(&path, "writing", e))
}

/// The first use of a volume on `destination`: what the image has there
/// (resolved inside the rootfs, which is the image's and untrusted) is
/// copied in, owners and modes kept, as Docker fills a new volume. Only
/// once, and only into an empty volume.
pub fn fill(db: &Db, name: &str, rootfs: &Path, destination: &str) -> Result<()> {
    // One that mounts a filesystem is filled through its mount, as its
    // container starts (see hold_for).
    if DriverOpts::from_json(&meta(db, name)?["Options"]).mounts() {
        return Ok(());
    }
    fill_now(db, name, rootfs, destination)
}

fn fill_now(db: &Db, name: &str, rootfs: &Path, destination: &str) -> Result<()> {
    let mut m = meta(db, name)?;
    if m["Filled"] == true {
        return Ok(());
    }
    let d = data(db, name);
    let empty = fs::read_dir(&d)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::at(rootfs, "opening", e.into()))?;
    let rel = destination.trim_start_matches('/');
    let src = skiff_image::inroot::openat2(
        &root,
        if rel.is_empty() { "." } else { rel },
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    );
    if let Ok(src) = src {
        // cp -a: everything below as it is (symlinks copied, not followed).
        // Through our /proc entry: cp's own /proc/self is not ours.
        let from = format!("/proc/{}/fd/{}/.", std::process::id(), src.as_raw_fd());
        let out = Command::new("cp")
            .arg("-a")
            .arg(&from)
            .arg(&d)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("running cp", e))?;
        if !out.status.success() {
            return Err(Error::invalid(format!(
                "volume {name}: filling it from the image's {destination}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    m["Filled"] = json!(true);
    fs::write(meta_path(db, name), m.to_string())
        .map_err(|e| Error::at(&meta_path(db, name), "writing", e))
}

/// A random name for an anonymous volume (Docker's: 64 hex digits).
pub fn anonymous_name() -> String {
    let mut b = [0u8; 32];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut b)
    });
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `volume import`: a tar's entries (from a file, or stdin for "-")
/// unpacked into the volume, over what it holds, owners and modes kept.
/// The tar crate keeps every entry inside the volume (no `..`, no way out
/// through a symlink).
pub fn import(db: &Db, name: &str, source: &Path) -> Result<()> {
    if !exists(db, name) {
        return Err(Error::invalid(format!(
            "volume import {name}: no such volume"
        )));
    }
    let input: Box<dyn std::io::Read> = if source == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            fs::File::open(source).map_err(|e| Error::at(source, "volume import: opening", e))?,
        )
    };
    let _held = hold(
        db,
        &[name.to_string()],
        &format!("import-{}", std::process::id()),
    )?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(input));
    tar.set_preserve_permissions(true);
    tar.set_preserve_ownerships(true);
    tar.set_unpack_xattrs(true);
    tar.set_overwrite(true);
    tar.unpack(data(db, name)).map_err(|e| {
        Error::io(
            format!("volume import {name}: unpacking {}", source.display()),
            e,
        )
    })
}

pub fn inspect(db: &Db, name: &str) -> Result<Value> {
    let m = meta(db, name)?;
    Ok(json!({
        "Name": m["Name"],
        "Driver": "local",
        "Mountpoint": m["Mountpoint"],
        "CreatedAt": m["CreatedAt"],
        "Labels": m["Labels"],
        "Scope": "local",
        "Options": DriverOpts::from_json(&m["Options"]).to_json(),
        "Anonymous": m["Anonymous"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dockers() {
        assert!(valid_name("data") && valid_name("db_1.v-2"));
        assert!(!valid_name("a") && !valid_name("-x") && !valid_name("a/b") && !valid_name(".x"));
    }
}
