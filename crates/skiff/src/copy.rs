//! `skiff cp`: files between the host and a container, as tar streams, as
//! `docker cp` copies them. The container's side is untrusted: its paths
//! are resolved inside its rootfs (a symlink there points into the rootfs,
//! never out), and a running container is frozen while its files are read
//! or written, so that none of its processes can swap a directory for a
//! symlink halfway (CVE-2018-15664, which Docker closed the same way).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use skiff_image::manifest::Compression;
use skiff_image::store::Store;
use skiff_image::{unpack, Error, Result};

use crate::cli::CpArgs;
use crate::containers::{self as ctr};
use crate::db::{Ctr, Db};

/// One side of a copy.
enum Side {
    Host(PathBuf),
    /// `-`: a tar stream on stdin or stdout.
    Stream,
    Container(String, String),
}

fn side(arg: &str) -> Side {
    if arg == "-" {
        return Side::Stream;
    }
    // CONTAINER:PATH, unless it looks like a host path (Docker's rule: a
    // path starting with / or . is the host's).
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !arg.starts_with('/') && !arg.starts_with('.') => {
            Side::Container(c.to_string(), p.to_string())
        }
        _ => Side::Host(PathBuf::from(arg)),
    }
}

pub fn cp(store: &Store, a: CpArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    match (side(&a.src), side(&a.dst)) {
        (Side::Container(c, path), dst @ (Side::Host(_) | Side::Stream)) => {
            let c = db.fresh(db.find(&c)?)?;
            frozen(&db, &c, || from_container(&db, &c, &path, &dst, a.archive))
        }
        (src @ (Side::Host(_) | Side::Stream), Side::Container(c, path)) => {
            let c = db.fresh(db.find(&c)?)?;
            frozen(&db, &c, || to_container(&db, &c, &src, &path, a.archive))
        }
        _ => Err(Error::invalid(
            "cp: one of SRC and DEST must be CONTAINER:PATH, the other a host path or -",
        )),
    }?;
    Ok(0)
}

/// Runs `work` with a running container paused (and resumed after). A
/// rootless container without a cgroup of its own cannot be frozen: the
/// copy then runs as the user's namespace root, with the user's own reach,
/// and every path is still resolved inside the container's root.
fn frozen(db: &Db, c: &Ctr, work: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut pause = c.state == "running";
    if pause {
        if let Err(e) = ctr::pause(db, c, true) {
            if !(skiff_image::rootless() && e.to_string().contains("no cgroup")) {
                return Err(e);
            }
            pause = false;
        }
    }
    let done = work();
    if pause {
        let c = db.find(&c.id)?;
        ctr::pause(db, &c, false)?;
    }
    done
}

/// Opens `path` of the container (resolved inside its root; the last
/// component, when a symlink, followed only with `follow`): an O_PATH
/// descriptor, and its name.
fn open_in(db: &Db, c: &Ctr, path: &str, follow: bool) -> Result<(OwnedFd, String)> {
    // A running container's root as its processes see it, with what is
    // mounted there (its /etc/hostname, volumes, tmpfs); else the rootfs.
    let rootfs = match (c.state.as_str(), c.pid) {
        ("running" | "paused", pid) if pid > 0 => PathBuf::from(format!("/proc/{pid}/root")),
        _ => db.dir(&c.id).join("rootfs"),
    };
    let root = rustix::fs::open(
        &rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::at(&rootfs, "opening", e.into()))?;
    let clean = path.trim_end_matches('/');
    let name = clean.rsplit('/').next().unwrap_or("");
    let rel = match clean.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    };
    // One walk from the container's root (RESOLVE_IN_ROOT scopes every
    // symlink met to the descriptor it starts from, so it must be the root).
    let last = if follow {
        OFlags::empty()
    } else {
        OFlags::NOFOLLOW
    };
    let fd = skiff_image::inroot::openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC | last,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| {
        Error::invalid(format!(
            "{}:{path}: {} in the container",
            c.name,
            std::io::Error::from(e)
        ))
    })?;
    let name = if name == "." { "" } else { name };
    Ok((fd, name.to_string()))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The container's PATH to the host (or as a tar stream to stdout).
fn from_container(db: &Db, c: &Ctr, path: &str, dst: &Side, archive: bool) -> Result<()> {
    let (fd, name) = open_in(db, c, path, false)?;
    let source = Source::Container(&fd);
    // -a keeps the owners as the container sees them (in a user namespace
    // of its own, its ids are the host's shifted); without it, root's.
    let maps = crate::idmap::read_maps(&db.dir(&c.id).join("config.json"));
    let shifted = |uid: u64, gid: u64| match &maps {
        Some(m) => m.container_ids(uid, gid),
        None => (uid, gid),
    };
    let owners: Owners = match archive {
        true => &shifted,
        false => &as_root,
    };
    let name = if name.is_empty() { ".".into() } else { name };
    match dst {
        Side::Stream => {
            let mut out = std::io::stdout().lock();
            write_tar(source, &name, owners, &mut out)?;
            out.flush()
                .map_err(|e| Error::io("writing the tar stream", e))
        }
        Side::Host(dst) => {
            // Into an existing directory under the source's name; else as
            // DEST itself, in its parent.
            let (into, top) = match fs::metadata(dst) {
                Ok(m) if m.is_dir() => (dst.clone(), name),
                _ => {
                    let parent = dst
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    if !parent.is_dir() {
                        return Err(Error::invalid(format!(
                            "cp: {}: no such directory on the host",
                            parent.display()
                        )));
                    }
                    let top = dst
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .ok_or_else(|| Error::invalid(format!("cp: {}: no name", dst.display())))?;
                    (parent.to_path_buf(), top)
                }
            };
            let mut tar = Vec::new();
            write_tar(source, &top, owners, &mut tar)?;
            let mut ar = tar::Archive::new(&tar[..]);
            ar.set_preserve_permissions(true);
            ar.set_overwrite(true);
            ar.unpack(&into)
                .map_err(|e| Error::io(format!("cp: writing into {}", into.display()), e))
        }
        Side::Container(..) => unreachable!("checked by cp"),
    }
}

/// A host path (or a tar stream from stdin) to the container's PATH.
fn to_container(db: &Db, c: &Ctr, src: &Side, path: &str, archive: bool) -> Result<()> {
    // Into an existing directory under the source's name, else as PATH in
    // its parent (which must exist).
    let (target, top) = match open_in(db, c, path, true) {
        Ok((fd, _)) if fs::metadata(fd_path(&fd)).is_ok_and(|m| m.is_dir()) => (fd, None),
        _ => {
            let clean = path.trim_end_matches('/');
            let (parent, name) = clean.rsplit_once('/').unwrap_or(("", clean));
            let (fd, _) = open_in(db, c, if parent.is_empty() { "/" } else { parent }, true)?;
            (fd, Some(name.to_string()))
        }
    };
    let stream: Box<dyn Read + Send> = match src {
        Side::Stream => {
            if top.is_some() {
                return Err(Error::invalid(format!(
                    "cp: {}:{path}: a tar stream goes into an existing directory",
                    c.name
                )));
            }
            Box::new(std::io::stdin())
        }
        Side::Host(src) => {
            let name = match &top {
                Some(n) => n.clone(),
                None => src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| Error::invalid(format!("cp: {}: no name", src.display())))?,
            };
            fs::symlink_metadata(src).map_err(|e| Error::at(src, "cp: reading", e))?;
            let mut tar = Vec::new();
            let owners: Owners = match archive {
                true => &as_they_are,
                false => &as_root,
            };
            write_tar(Source::Host(src), &name, owners, &mut tar)?;
            Box::new(std::io::Cursor::new(tar))
        }
        Side::Container(..) => unreachable!("checked by cp"),
    };
    let opts = unpack::Options {
        literal: true,
        ..unpack::Options::for_this_process()
    };
    // The entries' owners are the container's ids: in a user namespace of
    // its own, the host's are its maps' (an id they do not reach is the
    // kernel's overflow id, 65534, as the container would be shown it).
    let maps = crate::idmap::read_maps(&db.dir(&c.id).join("config.json"));
    let on_host = |uid: u64, gid: u64| match &maps {
        Some(m) => {
            let id = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            let (u, g) = m.host_ids(id(uid), id(gid));
            (u.unwrap_or(65534) as u64, g.unwrap_or(65534) as u64)
        }
        None => (uid, gid),
    };
    unpack::unpack_owned(stream, Compression::None, &fd_path(&target), opts, &on_host)?;
    Ok(())
}

/// What a tar is made of: a host path, or what an O_PATH descriptor of
/// the container's names (its own type, not what /proc's link to it
/// would resolve to).
#[derive(Clone, Copy)]
enum Source<'a> {
    Host(&'a Path),
    Container(&'a OwnedFd),
}

/// The owners a tar's entries get from their files' (uid, gid).
type Owners<'a> = &'a dyn Fn(u64, u64) -> (u64, u64);

/// docker cp's default: every entry root's.
fn as_root(_: u64, _: u64) -> (u64, u64) {
    (0, 0)
}

/// `cp -a` of host files: the owners as they are.
fn as_they_are(uid: u64, gid: u64) -> (u64, u64) {
    (uid, gid)
}

/// A tar of `source` (a file, a symlink, or a directory and everything
/// below it) whose top entry is `name`. Symlinks are archived as links,
/// never followed. Each entry's owner is `owners` of its file's.
fn write_tar(source: Source<'_>, name: &str, owners: Owners, out: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    match source {
        Source::Host(path) => {
            let meta = fs::symlink_metadata(path).map_err(|e| Error::at(path, "cp: reading", e))?;
            add(&mut b, path, &meta, None, Path::new(name), owners)?;
        }
        Source::Container(fd) => {
            let path = fd_path(fd);
            let meta = fd
                .try_clone()
                .map(fs::File::from)
                .and_then(|f| f.metadata())
                .map_err(|e| Error::io("cp: reading the container's file", e))?;
            let link = match meta.file_type().is_symlink() {
                true => Some(PathBuf::from(
                    rustix::fs::readlinkat(fd, "", Vec::new())
                        .map_err(|e| Error::io("cp: reading the container's symlink", e.into()))?
                        .into_string()
                        .map_err(|_| Error::invalid("cp: the symlink's target is not UTF-8"))?,
                )),
                false => None,
            };
            add(&mut b, &path, &meta, link, Path::new(name), owners)?;
        }
    }
    b.finish()
        .map_err(|e| Error::io("writing the tar stream", e))
}

/// Adds `path` (whose metadata is `meta`; `link`: its target when it is a
/// symlink, read already) as `name`, and what is below it.
fn add(
    b: &mut tar::Builder<&mut dyn Write>,
    path: &Path,
    meta: &fs::Metadata,
    link: Option<PathBuf>,
    name: &Path,
    owners: Owners,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let (uid, gid) = owners(meta.uid() as u64, meta.gid() as u64);
    h.set_uid(uid);
    h.set_gid(gid);
    let ft = meta.file_type();
    let io = |e| Error::io(format!("cp: archiving {}", path.display()), e);
    if ft.is_dir() {
        b.append_data(&mut h, name, std::io::empty()).map_err(io)?;
        let mut entries: Vec<_> = fs::read_dir(path)
            .map_err(|e| Error::at(path, "cp: reading", e))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = e.path();
            let m =
                fs::symlink_metadata(&child).map_err(|e| Error::at(&child, "cp: reading", e))?;
            add(b, &child, &m, None, &name.join(e.file_name()), owners)?;
        }
    } else if ft.is_symlink() {
        let target = match link {
            Some(t) => t,
            None => fs::read_link(path).map_err(|e| Error::at(path, "cp: reading", e))?,
        };
        h.set_size(0);
        b.append_link(&mut h, name, target).map_err(io)?;
    } else if ft.is_file() {
        let f = fs::File::open(path).map_err(|e| Error::at(path, "cp: reading", e))?;
        // What was there when looked at: a file that grows meanwhile is
        // cut at its size then, as tar must.
        b.append_data(&mut h, name, f.take(meta.len()))
            .map_err(io)?;
    } else {
        eprintln!(
            "skiff: warning: cp: {} is not a file, directory or symlink: left out",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_told_apart_as_docker_tells_them() {
        assert!(matches!(side("-"), Side::Stream));
        assert!(
            matches!(side("web:/etc/hosts"), Side::Container(c, p) if c == "web" && p == "/etc/hosts")
        );
        assert!(matches!(side("/tmp/a:b"), Side::Host(_)));
        assert!(matches!(side("./a:b"), Side::Host(_)));
        assert!(matches!(side("plain"), Side::Host(_)));
    }
}
