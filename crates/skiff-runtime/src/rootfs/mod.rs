//! The container's root filesystem, in the order the kernel needs it:
//! `prepare` (propagation, the rootfs bind, every mount, /dev) runs before the
//! createContainer hooks; `pivot` switches root; `finish` masks and locks paths
//! from inside the new root.

mod copyup;
mod devices;
pub mod idmap;
mod mounts;
mod paths;
pub mod resolve;

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::Spec;

use crate::cgroups::{CgroupRecord, Layout};

pub use mounts::MountOptions;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("linux.rootfsPropagation: setting propagation of /: {0}")]
    Propagation(nix::Error),
    #[error("root.path: bind-mounting {path} onto itself: {source}")]
    BindRoot { path: PathBuf, source: nix::Error },
    #[error("mounts[{index}] ({destination}): {step}: {source}")]
    Mount {
        index: usize,
        destination: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error("linux.devices ({path}): {step}: {source}")]
    Device {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error("linux.devices ({path}): {found}, not the {wanted} asked for")]
    DeviceConflict {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("pivot_root into {path}: {source}")]
    PivotRoot { path: PathBuf, source: nix::Error },
    #[error("detaching the old root after pivot_root: {0}")]
    UmountOldRoot(nix::Error),
    #[error("--no-pivot: hiding the host's procfs and sysfs: {source}")]
    HideProcSys { source: io::Error },
    #[error("chroot into {path} (no private mount namespace): {source}")]
    Chroot { path: PathBuf, source: nix::Error },
    #[error("--no-pivot: moving {path} to /: {source}")]
    MoveRoot { path: PathBuf, source: nix::Error },
    #[error("linux.maskedPaths ({path}): {source}")]
    Mask { path: String, source: io::Error },
    #[error("linux.readonlyPaths ({path}): {source}")]
    ReadonlyPath { path: String, source: io::Error },
    #[error("root.readonly: remounting / read-only: {0}")]
    ReadonlyRoot(nix::Error),
    #[error("process.cwd {path}: creating it in the rootfs: {source}")]
    Cwd { path: PathBuf, source: io::Error },
    #[error("bind sources: {step}: {source}")]
    BindSources {
        step: &'static str,
        source: nix::Error,
    },
    #[error("opening the rootfs {path}: {source}")]
    OpenRoot { path: PathBuf, source: nix::Error },
}

/// What the rootfs steps need besides the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    /// Inside a new user namespace: device nodes cannot be made, so host devices
    /// are bind-mounted instead.
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
    pub cgroup: Option<&'a CgroupRecord>,
    pub layout: Option<&'a Layout>,
    /// Detached idmapped mounts made by the parent, by mount index.
    pub idmapped: &'a [Option<std::os::fd::OwnedFd>],
    /// Bind sources the parent opened (by mount index), see [`open_bind_sources`].
    pub bind_sources: &'a [Option<std::os::fd::OwnedFd>],
}

/// The mounts whose sources the runtime opens for init in a new user
/// namespace ([`open_bind_sources`]): binds with an absolute source, but the
/// idmapped ones (which come as detached trees), by mount index.
fn bind_source_indexes(spec: &Spec, idmapped: &[Option<std::os::fd::OwnedFd>]) -> Vec<usize> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    mounts
        .iter()
        .enumerate()
        .filter(|(index, m)| {
            MountOptions::parse(m.options().as_deref().unwrap_or(&[])).is_bind()
                && m.source().as_deref().is_some_and(Path::is_absolute)
                && !idmapped.get(*index).is_some_and(Option::is_some)
        })
        .map(|(index, _)| index)
        .collect()
}

/// With a new user namespace, the sources of bind mounts, opened (O_PATH)
/// by the runtime with its caller's access, but in init's mount namespace
/// (a bind takes its source from the binder's own namespace; so its mounts
/// keep the locks a copy into a user namespace puts on them), with the
/// index of the mount each is for. Init binds one through /proc/self/fd
/// only when it cannot reach the source by path itself (rootless podman's
/// run directory is its user's alone, and init is root of a namespace
/// below), as runc does. A source that cannot be opened here is warned
/// about and left to init's own try by path; at most [`crate::sync::MAX_FDS`].
pub fn open_bind_sources(
    init: nix::unistd::Pid,
    spec: &Spec,
    idmapped: &[Option<std::os::fd::OwnedFd>],
) -> Result<Vec<(usize, std::os::fd::OwnedFd)>, RootfsError> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let indexes = bind_source_indexes(spec, idmapped);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let open_path = |path: &Path, flags: OFlag| {
        open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
            // SAFETY: `open` returned a new fd that nothing else owns.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let warn = |what: &str, e: nix::Error| {
        crate::log::warn(&format!(
            "bind sources: {what}: {e}; init binds them by path"
        ))
    };
    // Where we are: the namespace, and the root and working directory that
    // setns resets to the namespace's.
    let here = (
        open_path(Path::new("/proc/self/ns/mnt"), OFlag::O_RDONLY),
        open_path(Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY),
        open_path(Path::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY),
        open_path(Path::new(&format!("/proc/{init}/ns/mnt")), OFlag::O_RDONLY),
    );
    let (own, root, cwd, theirs) = match here {
        (Ok(own), Ok(root), Ok(cwd), Ok(theirs)) => (own, root, cwd, theirs),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            warn("opening the namespaces", e);
            return Ok(Vec::new());
        }
    };
    // Not allowed (a rootless caller without CAP_SYS_CHROOT, the usual
    // case there, so without a word): by path, then.
    match nix::sched::setns(&theirs, nix::sched::CloneFlags::CLONE_NEWNS) {
        Ok(()) => {}
        Err(nix::Error::EPERM) => return Ok(Vec::new()),
        Err(e) => {
            warn("entering init's mount namespace", e);
            return Ok(Vec::new());
        }
    }
    if indexes.len() > crate::sync::MAX_FDS {
        crate::log::warn(&format!(
            "bind sources: {} bind mounts, {} handed to init; init binds the rest by path",
            indexes.len(),
            crate::sync::MAX_FDS
        ));
    }
    let mut opened = Vec::new();
    for &index in indexes.iter().take(crate::sync::MAX_FDS) {
        let Some(source) = mounts[index].source().as_deref() else {
            continue;
        };
        match open_path(source, OFlag::O_PATH) {
            Ok(fd) => opened.push((index, fd)),
            Err(e) => warn(&format!("mounts[{index}] ({})", source.display()), e),
        }
    }
    // Every step is tried, whatever failed before it; the first failure is
    // the error (create then fails, and cleans up).
    let steps = [
        (
            "returning to the runtime's mount namespace",
            nix::sched::setns(&own, nix::sched::CloneFlags::CLONE_NEWNS),
        ),
        ("restoring the runtime's root", fchdir(root.as_raw_fd())),
        ("restoring the runtime's root", chroot(".")),
        (
            "restoring the runtime's working directory",
            fchdir(cwd.as_raw_fd()),
        ),
    ];
    match steps.into_iter().find(|(_, r)| r.is_err()) {
        Some((step, Err(source))) => Err(RootfsError::BindSources { step, source }),
        _ => Ok(opened),
    }
}

/// Everything up to (not including) pivot_root.
pub fn prepare(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    // Host mounts must not propagate into the container, nor the container's out.
    let prop = propagation(ctx.spec);
    // An unbindable tree could not be bound (the rootfs onto itself, every
    // bind mount): private until after pivot_root, which then applies it.
    let now = match prop.contains(MsFlags::MS_UNBINDABLE) {
        true => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        false => prop,
    };
    mount(None::<&str>, "/", None::<&str>, now, None::<&str>).map_err(RootfsError::Propagation)?;
    if prop.contains(MsFlags::MS_SHARED) {
        unshare_around(ctx.rootfs)?;
    }

    // pivot_root needs the new root to be a mount point.
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| RootfsError::BindRoot {
        path: ctx.rootfs.to_path_buf(),
        source,
    })?;

    let root = open(
        ctx.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| RootfsError::OpenRoot {
        path: ctx.rootfs.to_path_buf(),
        source,
    })?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let root = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };

    let spec_mounts = ctx.spec.mounts().as_deref().unwrap_or(&[]);
    let t = crate::trace::init_phase("mounts");
    let mut read_only_later = Vec::new();
    for (index, m) in spec_mounts.iter().enumerate() {
        read_only_later.extend(mounts::mount_entry(&root, index, m, ctx)?);
    }
    drop(t);
    if devices::needs_dev_setup(spec_mounts) {
        let _t = crate::trace::init_phase("devices");
        devices::setup_dev(&root, ctx)?;
    }
    // The working directory, made now: the root may turn read-only later.
    if let Some(process) = ctx.spec.process() {
        resolve::ensure_in_root(
            std::os::fd::AsFd::as_fd(&root),
            process.cwd(),
            resolve::Kind::Dir,
        )
        .map_err(|source| RootfsError::Cwd {
            path: process.cwd().clone(),
            source,
        })?;
    }
    // Read-only tmpfs mounts, now that what lies beneath them is in place.
    for mount in read_only_later {
        mount.apply()?;
    }
    Ok(())
}

/// With a shared rootfsPropagation: pivot_root refuses to move mounts
/// whose parent is shared, and the rootfs bind would join its source's peer
/// group. So the mount the rootfs lies in, and this namespace's root mount,
/// are made private (each alone, in our own copy of the tree; what is below
/// keeps the requested propagation), as runc does. [`pivot`] gives the new
/// root the requested propagation afterwards.
fn unshare_around(rootfs: &Path) -> Result<(), RootfsError> {
    let private = |at: &Path| {
        mount(
            None::<&str>,
            at,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(RootfsError::Propagation)
    };
    private(Path::new("/"))?;
    let mount_id = |p: &Path| {
        crate::sys::mount_id(p).map_err(|e| {
            RootfsError::Propagation(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        })
    };
    // The mount point: the highest ancestor still in the rootfs's mount.
    let id = mount_id(rootfs)?;
    let mut top = rootfs;
    for dir in rootfs.ancestors().skip(1) {
        if mount_id(dir)? != id {
            break;
        }
        top = dir;
    }
    private(top)
}

/// Switches root to the rootfs: pivot_root(".", ".") stacks the old root on top of
/// the new one, and detaching it leaves only the container's tree (chroot alone
/// can be escaped). With `no_pivot`, the rootfs is moved onto / and chrooted into,
/// for hosts whose root cannot be pivoted (an initramfs).
pub fn pivot(rootfs: &Path, no_pivot: bool, propagation: MsFlags) -> Result<(), RootfsError> {
    match no_pivot {
        true => move_root(rootfs)?,
        false => pivot_into(rootfs)?,
    }
    // Made private for the pivot (see unshare_around, and prepare for
    // unbindable): now as asked.
    if propagation.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) {
        mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
            .map_err(RootfsError::Propagation)?;
    }
    Ok(())
}

/// --no-pivot: the rootfs moved onto / and chrooted into.
fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let pivot_err = |source| RootfsError::PivotRoot {
        path: rootfs.to_path_buf(),
        source,
    };
    hide_full_proc_and_sys(rootfs)?;
    chdir(rootfs).map_err(pivot_err)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|source| {
        RootfsError::MoveRoot {
            path: rootfs.to_path_buf(),
            source,
        }
    })?;
    chroot(".").map_err(pivot_err)?;
    chdir("/").map_err(pivot_err)
}

/// pivot_root(".", ".") in the rootfs, and the old root detached.
fn pivot_into(rootfs: &Path) -> Result<(), RootfsError> {
    let pivot_err = |source| RootfsError::PivotRoot {
        path: rootfs.to_path_buf(),
        source,
    };
    let old_root = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(pivot_err)?;
    let new_root = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(pivot_err)?;
    fchdir(new_root).map_err(pivot_err)?;
    pivot_root(".", ".").map_err(pivot_err)?;
    fchdir(old_root).map_err(pivot_err)?;
    // The unmount of the old root must not propagate to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(RootfsError::UmountOldRoot)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(RootfsError::UmountOldRoot)?;
    let _ = nix::unistd::close(old_root);
    let _ = nix::unistd::close(new_root.as_raw_fd());
    chdir("/").map_err(pivot_err)
}

/// Without a private mount namespace (none, or one joined by path): into
/// the rootfs by chroot, as runc does there, so that a container never sees
/// the host's root because a namespace was left out; the working directory
/// is made inside it. (What would change the shared mount table was refused
/// when the config was read.)
pub fn chroot_into(rootfs: &Path, cwd: &Path) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Chroot {
        path: rootfs.to_path_buf(),
        source,
    };
    chdir(rootfs).map_err(err)?;
    chroot(".").map_err(err)?;
    chdir("/").map_err(err)?;
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let root = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };
    resolve::ensure_in_root(std::os::fd::AsFd::as_fd(&root), cwd, resolve::Kind::Dir)
        .map(drop)
        .map_err(|source| RootfsError::Cwd {
            path: cwd.to_path_buf(),
            source,
        })
}

/// For --no-pivot, whose move of the rootfs onto / leaves the old root's
/// mounts in the namespace beneath it: every full procfs or sysfs mount
/// outside the rootfs is detached, or where that is refused (mounts locked
/// in a user namespace) covered by a tmpfs. The kernel lets a process mount a
/// new procfs or sysfs (a user namespace's root can) only where one is
/// fully visible in its mount namespace already (mount_too_revealing): the
/// host's, left there, would give the container a fresh, unmasked /proc.
/// runc does the same, with the same gap: the kernel looks at what is mounted
/// below a proc mount, not over it, so a covered one (where the detach is
/// refused, in a user namespace) still counts as visible.
fn hide_full_proc_and_sys(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |source| RootfsError::HideProcSys { source };
    let text = crate::procfs::read("/proc/self/mountinfo").map_err(err)?;
    let mut targets: Vec<PathBuf> = text
        .lines()
        .filter_map(full_proc_or_sys_mount)
        .filter(|point| !point.starts_with(rootfs))
        .collect();
    // Parents first: detaching one takes what is below along.
    targets.sort_by_key(|p| p.components().count());
    for point in targets {
        // The detach must not reach the host's mounts through propagation.
        match mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            // Gone with a parent detached before it.
            Err(nix::Error::ENOENT | nix::Error::EINVAL) => continue,
            Err(e) => return Err(err(io::Error::from(e))),
        }
        match umount2(&point, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL | nix::Error::EPERM) => mount(
                Some("tmpfs"),
                &point,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0"),
            )
            .map_err(|e| err(io::Error::from(e)))?,
            Err(e) => return Err(err(io::Error::from(e))),
        }
    }
    Ok(())
}

/// The mount point of a mountinfo line that is a full (its filesystem's
/// root) procfs or sysfs mount.
fn full_proc_or_sys_mount(line: &str) -> Option<PathBuf> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let fstype = right.split(' ').next()?;
    let (root, point) = (fields.get(3)?, fields.get(4)?);
    (*root == "/" && (fstype == "proc" || fstype == "sysfs"))
        .then(|| crate::procfs::unescape_mountinfo(point))
}

/// linux.rootfsPropagation as mount(2) flags; rslave when unset.
pub fn propagation(spec: &oci_spec::runtime::Spec) -> MsFlags {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(crate::config::propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC)
}

/// After pivot_root: masked paths, read-only paths, read-only root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    // Read-only paths first, then masks on top (runc's order): a mask is
    // never under a bind made after it, and a path in both lists is masked
    // over its read-only bind.
    if let Some(ro) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        paths::make_readonly(ro)?;
    }
    if let Some(masked) = linux.and_then(|l| l.masked_paths().as_ref()) {
        paths::mask(masked)?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let locked = paths::locked_flags(Path::new("/"));
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None::<&str>,
        )
        .map_err(RootfsError::ReadonlyRoot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_proc_and_sys_mounts_are_picked_from_mountinfo() {
        let proc_line = "22 1 0:21 / /proc rw,nosuid - proc proc rw";
        let bind_of_proc = "40 22 0:21 /sys /mnt/sys\\040x rw - proc proc rw";
        let sys_line = "23 1 0:22 / /a\\040b rw - sysfs sysfs rw";
        let tmpfs = "24 1 0:23 / /dev rw - tmpfs tmpfs rw";
        assert_eq!(
            full_proc_or_sys_mount(proc_line),
            Some(PathBuf::from("/proc"))
        );
        assert_eq!(full_proc_or_sys_mount(bind_of_proc), None);
        assert_eq!(
            full_proc_or_sys_mount(sys_line),
            Some(PathBuf::from("/a b"))
        );
        assert_eq!(full_proc_or_sys_mount(tmpfs), None);
        assert_eq!(
            crate::procfs::unescape_mountinfo("/x\\134y"),
            PathBuf::from("/x\\y")
        );
    }
}
