//! Paths inside the container's root resolved by the kernel with
//! RESOLVE_IN_ROOT: a symlink in the image (absolute or full of "..") is
//! resolved as if the rootfs were "/", so a mount destination can never land
//! outside it (the CVE-2021-30465 and CVE-2025-31133 classes). Mounts then target
//! the opened file through /proc/self/fd, not a path that could be swapped.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

fn how(extra: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by openat2 and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens `path` (taken as relative to `root`) with O_PATH, without creating it.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    openat2(root.as_raw_fd(), &rel, how(OFlag::empty()))
        .map(owned)
        .map_err(io::Error::from)
}

/// Opens `path` inside `root`, creating missing directories on the way and the
/// last component as `kind` when it is missing.
pub fn ensure_in_root(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    let rel = relative(path);
    match openat2(root.as_raw_fd(), &rel, how(OFlag::empty())) {
        Ok(fd) => return Ok(owned(fd)),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let comps: Vec<_> = rel.components().collect();
    let mut prefix = PathBuf::new();
    for (i, comp) in comps.iter().enumerate() {
        let parent = prefix.clone();
        prefix.push(comp);
        match openat2(root.as_raw_fd(), &prefix, how(OFlag::empty())) {
            Ok(fd) => {
                drop(owned(fd));
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = if parent.as_os_str().is_empty() {
            root.try_clone_to_owned()?
        } else {
            owned(openat2(root.as_raw_fd(), &parent, how(OFlag::O_DIRECTORY))?)
        };
        let name = Path::new(comp.as_os_str());
        let last = i + 1 == comps.len();
        if last && kind == Kind::File {
            match openat(
                Some(dir.as_raw_fd()),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC
                    | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(fd) => drop(owned(fd)),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    openat2(root.as_raw_fd(), &rel, how(OFlag::empty()))
        .map(owned)
        .map_err(io::Error::from)
}

/// The path a mount call can use to reach what `fd` refers to.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` without its leading "/" and "." components; ".." is left to the
/// kernel, which stops it at the root.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlink_to_host_path_stays_inside_root() {
        let base = std::env::temp_dir().join(format!("skiff-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root")).unwrap();
        symlink("/etc", base.join("root/evil")).unwrap();
        let root = fs::File::open(base.join("root")).unwrap();
        let fd =
            ensure_in_root(root.as_fd(), Path::new("/evil/passwd-target"), Kind::File).unwrap();
        drop(fd);
        assert!(base.join("root/etc/passwd-target").exists());
        assert!(!Path::new("/etc/passwd-target").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn dotdot_cannot_climb_out() {
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }
}
