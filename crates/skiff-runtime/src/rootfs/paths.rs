//! linux.maskedPaths and linux.readonlyPaths, applied from inside the new root.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};

use super::resolve::{fd_path, open_in_root};
use super::RootfsError;

fn root_fd() -> io::Result<OwnedFd> {
    let fd = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The container's /dev/null, checked to really be the null device: a container
/// image that puts something else there must not get it mounted over
/// /proc/kcore and friends (CVE-2025-31133).
fn dev_null(root: &OwnedFd) -> io::Result<OwnedFd> {
    let fd = open_in_root(root.as_fd(), Path::new("/dev/null"))?;
    let st = fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(io::Error::other(
            "/dev/null in the container is not the null device",
        ));
    }
    Ok(fd)
}

pub fn mask(paths: &[String]) -> Result<(), RootfsError> {
    let root = root_fd().map_err(|source| RootfsError::Mask {
        path: "/".into(),
        source,
    })?;
    let mut null = None;
    for path in paths {
        let err = |source| RootfsError::Mask {
            path: path.clone(),
            source,
        };
        let target = match open_in_root(root.as_fd(), Path::new(path)) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(e)),
        };
        let st = fstat(std::os::fd::AsRawFd::as_raw_fd(&target)).map_err(|e| err(e.into()))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        let result = if is_dir {
            mount(
                Some("tmpfs"),
                &fd_path(&target),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            if null.is_none() {
                null = Some(dev_null(&root).map_err(err)?);
            }
            let src = fd_path(null.as_ref().expect("set above"));
            mount(
                Some(&src),
                &fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.map_err(|e| err(e.into()))?;
    }
    Ok(())
}

pub fn make_readonly(paths: &[String]) -> Result<(), RootfsError> {
    let root = root_fd().map_err(|source| RootfsError::ReadonlyPath {
        path: "/".into(),
        source,
    })?;
    for path in paths {
        let err = |source| RootfsError::ReadonlyPath {
            path: path.clone(),
            source,
        };
        let target = match open_in_root(root.as_fd(), Path::new(path)) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(e)),
        };
        // The root itself ("/"): a copy moved onto it would sit above the
        // process's root, which stays the mount below; that one is
        // remounted, as runc's remount of "/" does.
        if is_root(&root, &target).map_err(err)? {
            let flags = MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | locked_flags(Path::new("/"));
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .map_err(|e| err(e.into()))?;
            continue;
        }
        // Bound onto itself as a detached copy attached by fd: the copy's
        // fd is the new mount, to remount with no lookup of the path again.
        let tree = crate::sys::open_tree_clone(&fd_path(&target), true).map_err(err)?;
        crate::sys::move_mount_to(tree.as_fd(), target.as_fd()).map_err(err)?;
        let tp = fd_path(&tree);
        // Read-only, the mount's other flags kept as they are (runc's
        // remount; a user namespace may not drop locked ones anyway).
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&tp);
        mount(None::<&str>, &tp, None::<&str>, flags, None::<&str>).map_err(|e| err(e.into()))?;
    }
    Ok(())
}

/// Whether `target` is the process's root: the same directory in the same
/// mount (a bind of the rootfs elsewhere is not).
fn is_root(root: &OwnedFd, target: &OwnedFd) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let (r, t) = (fstat(root.as_raw_fd())?, fstat(target.as_raw_fd())?);
    Ok((r.st_dev, r.st_ino) == (t.st_dev, t.st_ino)
        && crate::sys::mount_of(root.as_fd())?.0 == crate::sys::mount_of(target.as_fd())?.0)
}

/// Flags of the mount at `path` that a remount in a user namespace must keep.
pub fn locked_flags(path: &Path) -> MsFlags {
    let Some(f) = statvfs_flags(path) else {
        return MsFlags::empty();
    };
    let mut out = MsFlags::empty();
    // statvfs(3)'s ST_* bits, the kernel's MNT_* ones. Read raw: nix does not
    // name ST_RELATIME for musl and would drop that bit.
    for (st, ms) in [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (ST_RELATIME, MsFlags::MS_RELATIME),
        (libc::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f & st != 0 {
            out |= ms;
        }
    }
    out
}

/// statvfs(3)'s flag for relatime mounts (the kernel's ST_RELATIME), which the
/// libc crate names for glibc only.
const ST_RELATIME: libc::c_ulong = 0x1000;

/// The `f_flag` word of statvfs(`path`).
fn statvfs_flags(path: &Path) -> Option<libc::c_ulong> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is space for one statvfs,
    // which the kernel fills when the call succeeds.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    Some(unsafe { st.assume_init() }.f_flag)
}
