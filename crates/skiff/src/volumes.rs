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

/// Makes volume `name` (an error if it exists); `anonymous` ones are
/// removed with the container that made them (`rm -v`).
pub fn create(db: &Db, name: &str, labels: &Value, anonymous: bool) -> Result<()> {
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
    let meta = json!({
        "Name": name,
        "Driver": "local",
        "Mountpoint": d,
        "CreatedAt": format::rfc3339(format::now(), None),
        "Labels": labels,
        "Anonymous": anonymous,
        "Filled": false,
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
    let base = dir(db);
    let config: Value = fs::read(db.dir(id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    config["mounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["source"].as_str())
                .filter_map(|s| Path::new(s).strip_prefix(&base).ok().map(Path::to_path_buf))
                .filter_map(|rel| {
                    rel.components()
                        .next()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
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
    skiff_image::store::remove_tree(&dir(db).join(name))?;
    crate::events::Event::new("volume", "remove", "", name).record(&db.root);
    Ok(())
}

/// The first use of a volume on `destination`: what the image has there
/// (resolved inside the rootfs, which is the image's and untrusted) is
/// copied in, owners and modes kept, as Docker fills a new volume. Only
/// once, and only into an empty volume.
pub fn fill(db: &Db, name: &str, rootfs: &Path, destination: &str) -> Result<()> {
    let mut m = meta(db, name)?;
    let d = data(db, name);
    let empty = fs::read_dir(&d)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false);
    if m["Filled"] == true || !empty {
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
