//! Paths inside the container's root resolved by the kernel with
//! RESOLVE_IN_ROOT: a symlink in the image (absolute or full of "..") is
//! resolved as if the rootfs were "/", so a mount destination can never land
//! outside it (the CVE-2021-30465 and CVE-2025-31133 classes). Mounts then target
//! the opened file through /proc/self/fd, not a path that could be swapped.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};

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

/// openat2, tried again when it says EAGAIN: with RESOLVE_IN_ROOT a
/// rename or mount anywhere on the host during the walk makes the kernel
/// refuse rather than risk a wrong answer, and asks to be retried
/// (openat2(2)). Seen here when containers start side by side. Bounded.
fn openat2<P: ?Sized + nix::NixPath>(
    dirfd: std::os::fd::RawFd,
    path: &P,
    how: OpenHow,
) -> nix::Result<std::os::fd::RawFd> {
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dirfd, path, how) {
            Err(Errno::EAGAIN) if tries < 64 => tries += 1,
            other => return other,
        }
    }
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

/// The type of what `path`'s last component is inside `root`, itself (a
/// symlink as a symlink), or `None` when it does not exist. What leads to it
/// is resolved as [`open_in_root`] does.
pub fn last_component_type(root: BorrowedFd<'_>, path: &Path) -> io::Result<Option<SFlag>> {
    Ok(last_component_stat(root, path)?
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT))
}

/// What `path`'s last component is inside `root` (type, device numbers), as
/// [`last_component_type`] finds it; `None` when it does not exist.
pub fn last_component_stat(
    root: BorrowedFd<'_>,
    path: &Path,
) -> io::Result<Option<nix::sys::stat::FileStat>> {
    let rel = relative(path);
    let Some((parent, name)) = split_last(&rel) else {
        return Ok(Some(fstat(root.as_raw_fd())?)); // the root itself
    };
    let dir = match openat2(root.as_raw_fd(), parent, how(OFlag::O_DIRECTORY)) {
        Ok(fd) => owned(fd),
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match open_entry(dir.as_raw_fd(), name) {
        Ok(fd) => Ok(Some(fstat(fd.as_raw_fd())?)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens `path` inside `root`, creating missing directories on the way and the
/// last component as `kind` when it is missing. Symlinks met on the way (also
/// dangling ones, whose targets get created) are resolved here, one component
/// at a time with O_NOFOLLOW, clamped to `root` like RESOLVE_IN_ROOT.
pub fn ensure_in_root(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    let rel = relative(path);
    match openat2(root.as_raw_fd(), &rel, how(OFlag::empty())) {
        Ok(fd) => return Ok(owned(fd)),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(fd) = create_last(root, &rel, kind)? {
        return Ok(fd);
    }
    const MAX_LINKS: usize = 40;
    let mut stack: Vec<OwnedFd> = vec![root.try_clone_to_owned()?];
    let mut queue: VecDeque<OsString> = components(&rel);
    let mut links = 0;
    while let Some(comp) = queue.pop_front() {
        if comp == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let last = queue.is_empty();
        let cur = stack.last().expect("root stays on the stack").as_raw_fd();
        let name = Path::new(&comp);
        let fd = match open_entry(cur, name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                create(cur, name, if last { kind } else { Kind::Dir })?;
                open_entry(cur, name)?
            }
            Err(e) => return Err(e.into()),
        };
        let ftype = file_type(&fd)?;
        if ftype == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP.into());
            }
            let target = readlinkat(Some(cur), name)?;
            let target = Path::new(&target);
            if target.is_absolute() {
                stack.truncate(1);
            }
            for c in components(target).into_iter().rev() {
                queue.push_front(c);
            }
            continue;
        }
        if last {
            return Ok(fd);
        }
        if ftype != SFlag::S_IFDIR {
            return Err(Errno::ENOTDIR.into());
        }
        stack.push(fd);
    }
    Ok(stack.pop().expect("root stays on the stack"))
}

/// A relative path as (its parent, "." for none; its last component); None
/// for the root itself.
fn split_last(rel: &Path) -> Option<(&Path, &Path)> {
    let name = Path::new(rel.file_name()?);
    let parent = rel.parent()?;
    let parent = match parent.as_os_str().is_empty() {
        true => Path::new("."),
        false => parent,
    };
    Some((parent, name))
}

/// The common case of a missing path: its parent resolves (in the root) and
/// only the last component is missing. Creates it there and opens it; `None`
/// when that is not the case (a missing parent, a dangling symlink in the
/// way), for the walk to handle.
fn create_last(root: BorrowedFd<'_>, rel: &Path, kind: Kind) -> io::Result<Option<OwnedFd>> {
    let Some((parent, name)) = split_last(rel) else {
        return Ok(None);
    };
    let dir = match openat2(root.as_raw_fd(), parent, how(OFlag::O_DIRECTORY)) {
        Ok(fd) => owned(fd),
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let made = make(dir.as_raw_fd(), name, kind);
    match made {
        Ok(()) => {}
        // Something is there after all (a dangling symlink, a race): the walk decides.
        Err(Errno::EEXIST) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let fd = open_entry(dir.as_raw_fd(), name)?;
    // Swapped for a symlink since we made it: the walk resolves that.
    Ok((file_type(&fd)? != SFlag::S_IFLNK).then_some(fd))
}

/// Opens `name` in `dir` as a path, a symlink as itself.
fn open_entry(dir: i32, name: &Path) -> nix::Result<OwnedFd> {
    openat(
        Some(dir),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)
}

fn file_type(fd: &OwnedFd) -> nix::Result<SFlag> {
    Ok(SFlag::from_bits_truncate(fstat(fd.as_raw_fd())?.st_mode) & SFlag::S_IFMT)
}

/// Makes `name` in `dir` as `kind`; EEXIST when something is there.
fn make(dir: i32, name: &Path, kind: Kind) -> nix::Result<()> {
    match kind {
        Kind::File => openat(
            Some(dir),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map(|fd| drop(owned(fd))),
        Kind::Dir => mkdirat(Some(dir), name, Mode::from_bits_truncate(0o755)),
    }
}

/// Like [`make`], content with what is already there.
fn create(dir: i32, name: &Path, kind: Kind) -> io::Result<()> {
    match make(dir, name, kind) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The components of a path as a queue: "/" and "." dropped, ".." kept.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// The mount just placed on `target` (the O_PATH fd of what it covers),
/// opened without resolving the destination's path again: that second walk
/// would go through the mounted content, whose symlinks the image (or the
/// mounted host tree) can aim anywhere in the root, and a remount or
/// propagation change would land there instead (a read-only bind left
/// writable). What is walked is the kernel's name for `target`, which holds
/// no symlinks, with RESOLVE_NO_SYMLINKS; the result must be the root of a
/// mount other than the one `target` is on, or it is refused.
pub fn reopen_mounted(root: BorrowedFd<'_>, target: &OwnedFd) -> io::Result<OwnedFd> {
    let root_path = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd()))?;
    let target_path = std::fs::read_link(fd_path(target))?;
    let rel = target_path.strip_prefix(&root_path).map_err(|_| {
        io::Error::other(format!(
            "the mount point {} is not under the root {}",
            target_path.display(),
            root_path.display()
        ))
    })?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = openat2(root.as_raw_fd(), rel, how).map(owned)?;
    let (under, _) = crate::sys::mount_of(std::os::fd::AsFd::as_fd(target))?;
    let (id, is_root) = crate::sys::mount_of(std::os::fd::AsFd::as_fd(&fd))?;
    if id == under || !is_root {
        return Err(io::Error::other(format!(
            "{} is not the mount just made there",
            target_path.display()
        )));
    }
    Ok(fd)
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
    fn dangling_absolute_symlink_is_created_inside_root() {
        let base = std::env::temp_dir().join(format!("skiff-resolve2-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root")).unwrap();
        symlink("/nonexistent-host-dir/../../sub", base.join("root/link")).unwrap();
        let root = fs::File::open(base.join("root")).unwrap();
        ensure_in_root(root.as_fd(), Path::new("/link/a"), Kind::Dir).unwrap();
        assert!(base.join("root/sub/a").is_dir());
        assert!(!Path::new("/nonexistent-host-dir").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn dotdot_cannot_climb_out() {
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }
}
