//! One `mounts[]` entry: options parsed into flags and data, the destination
//! resolved inside the rootfs, then mount, remount and propagation in that order.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::paths::locked_flags;
use super::resolve::{
    ensure_in_root, fd_path, last_component_type, open_in_root, reopen_mounted, Kind,
};
use super::{RootfsContext, RootfsError};
use crate::cgroups::Layout;

/// A mount's options split the way mount(2) wants them.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (mode=755, size=65536k, ...).
    pub data: Vec<String>,
    /// Recursive options (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits set and
    /// cleared on the mount and every mount below it (mount_setattr).
    pub recursive_set: u64,
    pub recursive_clear: u64,
    /// `tmpcopyup`: a tmpfs starts with what the directory it covers held.
    pub copy_up: bool,
}

/// The MOUNT_ATTR_* bits of mount_setattr(2).
mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The atime mode: a field, not a flag (RELATIME is 0).
    pub const ATIME: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// A recursive option: the bits it sets and clears (runc's names).
fn recursive(opt: &str) -> Option<(u64, u64)> {
    Some(match opt {
        "rro" => (attr::RDONLY, 0),
        "rrw" => (0, attr::RDONLY),
        "rnosuid" => (attr::NOSUID, 0),
        "rsuid" => (0, attr::NOSUID),
        "rnodev" => (attr::NODEV, 0),
        "rdev" => (0, attr::NODEV),
        "rnoexec" => (attr::NOEXEC, 0),
        "rexec" => (0, attr::NOEXEC),
        "rnodiratime" => (attr::NODIRATIME, 0),
        "rdiratime" => (0, attr::NODIRATIME),
        "rrelatime" => (attr::RELATIME, attr::ATIME),
        "rnoatime" => (attr::NOATIME, attr::ATIME),
        "rstrictatime" => (attr::STRICTATIME, attr::ATIME),
        // Back from noatime or strictatime to the default, relatime.
        "ratime" | "rnorelatime" | "rnostrictatime" => (attr::RELATIME, attr::ATIME),
        "rnosymfollow" => (attr::NOSYMFOLLOW, 0),
        "rsymfollow" => (0, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

impl MountOptions {
    pub fn parse(options: &[String]) -> MountOptions {
        let mut o = MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            recursive_set: 0,
            recursive_clear: 0,
            copy_up: false,
        };
        for opt in options {
            let (set, clear) = match opt.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                // MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
                "nosymfollow" => (MsFlags::from_bits_retain(256), MsFlags::empty()),
                "symfollow" => (MsFlags::empty(), MsFlags::from_bits_retain(256)),
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "tmpcopyup" => {
                    o.copy_up = true;
                    continue;
                }
                // Idmapped mounts are made beforehand (see idmap.rs).
                "idmap" | "ridmap" => (MsFlags::empty(), MsFlags::empty()),
                other => {
                    if let Some((set, clear)) = recursive(other) {
                        o.recursive_set = (o.recursive_set & !clear) | set;
                        o.recursive_clear = (o.recursive_clear & !set) | clear;
                    } else if let Some(p) = crate::config::propagation_flag(other) {
                        o.propagation.push(p);
                    } else {
                        o.data.push(other.to_string());
                    }
                    continue;
                }
            };
            // On the bits: bitflags' `!` would drop MS_NOSYMFOLLOW, unknown to nix.
            o.flags = MsFlags::from_bits_retain((o.flags.bits() | set.bits()) & !clear.bits());
        }
        o
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

fn err<'a>(
    index: usize,
    m: &'a Mount,
    step: &'static str,
) -> impl FnOnce(io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Mount {
        index,
        destination: m.destination().clone(),
        step,
        source,
    }
}

fn sys(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// A mount just made: the fd of what it covers, and, opened when a later step
/// first needs it, the mount itself (never by its destination path again:
/// see [`reopen_mounted`]).
struct Placed {
    target: OwnedFd,
    top: Option<OwnedFd>,
}

impl Placed {
    fn over(target: OwnedFd) -> Placed {
        Placed { target, top: None }
    }

    fn top(&mut self, root: &OwnedFd) -> io::Result<&OwnedFd> {
        if self.top.is_none() {
            self.top = Some(reopen_mounted(root.as_fd(), &self.target)?);
        }
        Ok(self.top.as_ref().expect("set above"))
    }
}

/// A read-only tmpfs, mounted writable so that what goes beneath it can be
/// made, to be remounted read-only once the tree is complete.
pub struct ReadOnlyLater {
    top: OwnedFd,
    flags: MsFlags,
    index: usize,
    destination: PathBuf,
}

impl ReadOnlyLater {
    pub fn apply(self) -> Result<(), RootfsError> {
        remount_bind(&fd_path(&self.top), self.flags).map_err(|e| RootfsError::Mount {
            index: self.index,
            destination: self.destination,
            step: "remount read-only",
            source: sys(e),
        })
    }
}

pub fn mount_entry(
    root: &OwnedFd,
    index: usize,
    m: &Mount,
    ctx: &RootfsContext<'_>,
) -> Result<Option<ReadOnlyLater>, RootfsError> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, index, m, &opts, ctx).map(|()| None);
    }
    let mut placed = if let Some(Some(tree)) = ctx.idmapped.get(index) {
        attach_idmapped(root, index, m, tree)?
    } else if opts.is_bind() {
        bind(root, index, m, &opts, ctx)?
    } else {
        mount_filesystem(root, index, m, &opts, typ)?
    };
    if opts.is_bind() {
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let top = placed.top(root).map_err(err(index, m, "reopening"))?;
            remount_bind(&fd_path(top), extra).map_err(|e| err(index, m, "remount")(sys(e)))?;
        }
    }
    apply_recursive(root, &mut placed, index, m, &opts)?;
    apply_propagation(root, &mut placed, index, m, &opts)?;
    if typ != "tmpfs" || opts.is_bind() || !opts.flags.contains(MsFlags::MS_RDONLY) {
        return Ok(None);
    }
    let top = placed
        .top(root)
        .and_then(|t| t.try_clone())
        .map_err(err(index, m, "reopening"))?;
    Ok(Some(ReadOnlyLater {
        top,
        flags: opts.flags,
        index,
        destination: m.destination().clone(),
    }))
}

/// An idmapped mount, made detached by the parent (see idmap.rs), attached
/// at the destination; its fd is the mount from then on.
fn attach_idmapped(
    root: &OwnedFd,
    index: usize,
    m: &Mount,
    tree: &OwnedFd,
) -> Result<Placed, RootfsError> {
    // What the mount is, asked of the mount itself: init, root of a user
    // namespace, may not be able to look at the source's path.
    let kind = match nix::sys::stat::fstat(tree.as_raw_fd()) {
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => Kind::File,
        _ => Kind::Dir,
    };
    let target = ensure_in_root(root.as_fd(), m.destination(), kind).map_err(err(
        index,
        m,
        "creating the destination",
    ))?;
    crate::sys::move_mount_to(tree.as_fd(), target.as_fd()).map_err(err(
        index,
        m,
        "attaching the idmapped mount",
    ))?;
    let top = tree
        .try_clone()
        .map_err(err(index, m, "attaching the idmapped mount"))?;
    Ok(Placed {
        target,
        top: Some(top),
    })
}

/// A bind mount. The source is taken by path, as init sees it now (earlier
/// mounts included, automounts triggered); through the runtime's descriptor
/// only where init may not reach it (see open_bind_sources).
fn bind(
    root: &OwnedFd,
    index: usize,
    m: &Mount,
    opts: &MountOptions,
    ctx: &RootfsContext<'_>,
) -> Result<Placed, RootfsError> {
    let by_path = m.source().clone().unwrap_or_default();
    let (source, meta) = match (fs::metadata(&by_path), ctx.bind_sources.get(index)) {
        (Ok(meta), _) => (by_path, meta),
        (Err(e), Some(Some(fd))) if e.kind() == io::ErrorKind::PermissionDenied => {
            let through = fd_path(fd);
            let meta = fs::metadata(&through).map_err(err(index, m, "bind source"))?;
            (through, meta)
        }
        (Err(e), _) => return Err(err(index, m, "bind source")(e)),
    };
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = ensure_in_root(root.as_fd(), m.destination(), kind).map_err(err(
        index,
        m,
        "creating the destination",
    ))?;
    // A detached copy of the source's tree (open_tree), attached by fd
    // (move_mount): its fd is the mount itself from then on, so what follows
    // (flags, recursive attributes, propagation) needs no lookup at all,
    // not even the reopen other mounts get.
    let recursive = opts.flags.contains(MsFlags::MS_REC);
    let tree = crate::sys::open_tree_clone(&source, recursive).map_err(err(
        index,
        m,
        "bind mount (open_tree)",
    ))?;
    crate::sys::move_mount_to(tree.as_fd(), target.as_fd()).map_err(err(
        index,
        m,
        "bind mount (move_mount)",
    ))?;
    Ok(Placed {
        target,
        top: Some(tree),
    })
}

/// A new filesystem (tmpfs, proc, sysfs, mqueue, devpts, ...), `tmpcopyup`
/// filled from what it covers before it turns read-only.
fn mount_filesystem(
    root: &OwnedFd,
    index: usize,
    m: &Mount,
    opts: &MountOptions,
    typ: &str,
) -> Result<Placed, RootfsError> {
    // procfs and sysfs go on a directory, never through a symlink the image
    // put at their place (CVE-2019-16884; runc's rule and words).
    if typ == "proc" || typ == "sysfs" {
        match last_component_type(root.as_fd(), m.destination()) {
            Ok(None) => {}
            Ok(Some(t)) if t == nix::sys::stat::SFlag::S_IFDIR => {}
            Ok(Some(_)) => {
                return Err(err(index, m, "destination")(io::Error::other(format!(
                    "filesystem {typ:?} must be mounted on an ordinary directory"
                ))))
            }
            Err(e) => return Err(err(index, m, "destination")(e)),
        }
    }
    // A tmpfs over a directory that is there already starts with that
    // directory's mode unless the options give one (runc since 1.1.8, crun):
    // an image's 1777 /tmp stays 1777 under a tmpfs of its own.
    let mut data = opts.data.clone();
    if typ == "tmpfs" && !data.iter().any(|d| d.starts_with("mode=")) {
        if let Some(mode) = existing_dir_mode(root.as_fd(), m.destination()) {
            data.insert(0, format!("mode={mode:o}"));
        }
    }
    let target = ensure_in_root(root.as_fd(), m.destination(), Kind::Dir).map_err(err(
        index,
        m,
        "creating the destination",
    ))?;
    // tmpcopyup: what the tmpfs is to start with, opened before it is covered.
    let below = match opts.copy_up && typ == "tmpfs" {
        true => Some(
            super::copyup::open_dir(target.as_raw_fd(), c".").map_err(err(
                index,
                m,
                "tmpcopyup: opening the directory",
            ))?,
        ),
        false => None,
    };
    let data = data.join(",");
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    // A tmpfs is filled first (tmpcopyup, the mounts and device nodes that
    // go beneath it, such as /dev/pts in /dev) and made read-only once the
    // whole tree is in place (see `ReadOnlyLater`), as runc does.
    let flags = match typ {
        "tmpfs" => opts.flags - MsFlags::MS_RDONLY,
        _ => opts.flags,
    };
    let result = mount(
        Some(&source),
        &fd_path(&target),
        Some(typ),
        flags,
        if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        },
    );
    let mut placed = Placed::over(target);
    match result {
        Ok(()) => {}
        // sysfs cannot be mounted in a user namespace that does not own the
        // network namespace: bind the host's, read-only, as runc does.
        Err(nix::Error::EPERM) if typ == "sysfs" => {
            mount(
                Some("/sys"),
                &fd_path(&placed.target),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| err(index, m, "bind /sys")(sys(e)))?;
            let top = placed.top(root).map_err(err(index, m, "reopening"))?;
            remount_bind(&fd_path(top), opts.flags | MsFlags::MS_RDONLY)
                .map_err(|e| err(index, m, "remount /sys")(sys(e)))?;
        }
        Err(e) => return Err(err(index, m, "mount")(sys(e))),
    }
    if let Some(below) = below {
        let top = placed.top(root).map_err(err(index, m, "reopening"))?;
        super::copyup::open_dir(top.as_raw_fd(), c".")
            .and_then(|fresh| super::copyup::copy_tree(&below, &fresh))
            .map_err(err(index, m, "tmpcopyup: copying the directory's contents"))?;
    }
    Ok(placed)
}

/// The permission bits (with sticky, setgid, setuid) of the directory at
/// `path` in the rootfs, if there is one.
fn existing_dir_mode(root: BorrowedFd<'_>, path: &Path) -> Option<u32> {
    let fd = open_in_root(root, path).ok()?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFDIR).then_some(st.st_mode & 0o7777)
}

/// The recursive options (`rro`, `rnosuid`, ...), on the new mount and all
/// below it: without them an `rbind` of a tree with submounts would leave
/// those writable (or suid, dev, exec).
fn apply_recursive(
    root: &OwnedFd,
    placed: &mut Placed,
    index: usize,
    m: &Mount,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    if opts.recursive_set == 0 && opts.recursive_clear == 0 {
        return Ok(());
    }
    let top = placed.top(root).map_err(err(index, m, "reopening"))?;
    crate::sys::mount_setattr(
        top.as_fd(),
        true,
        opts.recursive_set,
        opts.recursive_clear,
        None,
    )
    .map_err(err(index, m, "recursive options (mount_setattr)"))
}

fn apply_propagation(
    root: &OwnedFd,
    placed: &mut Placed,
    index: usize,
    m: &Mount,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let top = placed.top(root).map_err(err(index, m, "reopening"))?;
    for p in &opts.propagation {
        mount(None::<&str>, &fd_path(top), None::<&str>, *p, None::<&str>)
            .map_err(|e| err(index, m, "propagation")(sys(e)))?;
    }
    Ok(())
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks on
/// mounts inherited from a more privileged namespace (nosuid, nodev, noexec).
fn remount_bind(target: &Path, flags: MsFlags) -> nix::Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let wanted = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    match mount(
        None::<&str>,
        target,
        None::<&str>,
        base | wanted,
        None::<&str>,
    ) {
        Err(nix::Error::EPERM) => mount(
            None::<&str>,
            target,
            None::<&str>,
            base | wanted | locked_flags(target),
            None::<&str>,
        ),
        other => other,
    }
}

/// A `cgroup` mount: on a v2 host a cgroup2 mount (with a private cgroup
/// namespace, whose root is the container's group) or a bind of the container's
/// group; on v1 and hybrid hosts a tmpfs holding a bind of the container's group
/// in each hierarchy, which is what runc gives containers there.
fn mount_cgroup(
    root: &OwnedFd,
    index: usize,
    m: &Mount,
    opts: &MountOptions,
    ctx: &RootfsContext<'_>,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let target = ensure_in_root(root.as_fd(), dest, Kind::Dir).map_err(err(
        index,
        m,
        "creating the destination",
    ))?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let (Some(layout), Some(record)) = (ctx.layout, ctx.cgroup) else {
        // No group of its own (rootless, nothing delegated): an empty
        // tmpfs there, so that the container does not see the host's
        // hierarchies (through a /sys bound from the host) where the
        // config puts its cgroups.
        return mount(
            Some("tmpfs"),
            &fd_path(&target),
            Some("tmpfs"),
            flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        )
        .map_err(|e| err(index, m, "mount tmpfs (no cgroup of its own)")(sys(e)));
    };
    match layout {
        Layout::V2 { .. } => {
            // A cgroup2 mount can be refused in a user namespace (EPERM,
            // EBUSY: runc meets the same, its #2158): then, as without a
            // cgroup namespace, the container's group is bound there instead.
            let mounted = ctx.new_cgroup_ns
                && match mount(
                    Some("cgroup2"),
                    &fd_path(&target),
                    Some("cgroup2"),
                    flags,
                    None::<&str>,
                ) {
                    Ok(()) => true,
                    Err(nix::Error::EPERM | nix::Error::EBUSY) if ctx.in_user_ns => false,
                    Err(e) => return Err(err(index, m, "mount cgroup2")(sys(e))),
                };
            if let (false, Some(dir)) = (mounted, record.dirs.first()) {
                mount(
                    Some(dir),
                    &fd_path(&target),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| err(index, m, "bind cgroup")(sys(e)))?;
                let top =
                    reopen_mounted(root.as_fd(), &target).map_err(err(index, m, "reopening"))?;
                remount_bind(&fd_path(&top), flags)
                    .map_err(|e| err(index, m, "remount cgroup")(sys(e)))?;
            }
        }
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            mount(
                Some("tmpfs"),
                &fd_path(&target),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=755"),
            )
            .map_err(|e| err(index, m, "mount cgroup tmpfs")(sys(e)))?;
            // The tmpfs is new and ours: its subdirectories are made relative
            // to it, with no walk from the root.
            let top = reopen_mounted(root.as_fd(), &target).map_err(err(index, m, "reopening"))?;
            // In its own cgroup namespace (not in a user namespace, where a v1
            // mount may be refused), init mounts each hierarchy itself: the
            // namespace's root is the container's group, and one mount
            // replaces a bind and its read-only remount, as runc does.
            let direct = ctx.new_cgroup_ns && !ctx.in_user_ns;
            let mut entries: Vec<(String, Option<String>)> = hierarchies
                .iter()
                .map(|h| (h.dir_name(), Some(h.controllers.join(","))))
                .collect();
            if unified.is_some() {
                entries.push(("unified".into(), None));
            }
            for ((name, controllers), dir) in entries.iter().zip(&record.dirs) {
                let mounted = if direct {
                    // The tmpfs lives in init's private mount namespace and
                    // holds only what we make: its path is as good as a fd.
                    make_subdir(&top, name).map_err(err(index, m, "cgroup subdir"))?;
                    let sub = fd_path(&top).join(name);
                    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                    let (fstype, options) = match controllers {
                        Some(c) => ("cgroup", Some(c.as_str())),
                        None => ("cgroup2", None),
                    };
                    mount(Some(fstype), &sub, Some(fstype), flags | base, options)
                        .map_err(|e| err(index, m, "mount cgroup hierarchy")(sys(e)))
                } else {
                    let sub = subdir(&top, name).map_err(err(index, m, "cgroup subdir"))?;
                    mount(
                        Some(dir),
                        &fd_path(&sub),
                        None::<&str>,
                        MsFlags::MS_BIND,
                        None::<&str>,
                    )
                    .map_err(|e| err(index, m, "bind cgroup hierarchy")(sys(e)))
                    .and_then(|()| {
                        let top = subdir(&top, name).map_err(err(index, m, "reopening"))?;
                        remount_bind(&fd_path(&top), flags)
                            .map_err(|e| err(index, m, "remount cgroup hierarchy")(sys(e)))
                    })
                };
                mounted?;
            }
            // The tmpfs itself stays writable even when the mount asks for
            // "ro" (the hierarchies are read-only), as with runc: podman's
            // systemd containers are made for that.
        }
    }
    Ok(())
}

/// Makes directory `name` of the tmpfs `top`, unless it is there.
fn make_subdir(top: &OwnedFd, name: &str) -> io::Result<()> {
    use nix::sys::stat::{mkdirat, Mode};
    match mkdirat(Some(top.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens (as a path) directory `name` of the tmpfs `top`, making it first
/// when it is missing.
fn subdir(top: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    make_subdir(top, name)?;
    let fd = openat(
        Some(top.as_raw_fd()),
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_data_and_propagation() {
        let o = MountOptions::parse(&s(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, s(&["mode=755", "size=65536k"]));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn recursive_options_become_mount_attributes_not_data() {
        let o = MountOptions::parse(&s(&["rbind", "rro", "rnosuid", "rnoatime", "tmpcopyup"]));
        assert!(o.data.is_empty(), "{:?}", o.data);
        assert_eq!(o.recursive_set, attr::RDONLY | attr::NOSUID | attr::NOATIME);
        assert_eq!(o.recursive_clear, attr::ATIME);
        assert!(o.copy_up);
        // A later option undoes an earlier one.
        let o = MountOptions::parse(&s(&["nosymfollow"]));
        assert_eq!(o.flags.bits(), 256);
        assert!(o.data.is_empty());
        let o = MountOptions::parse(&s(&["rro", "rrw", "rnoatime", "ratime"]));
        assert_eq!(o.recursive_set, attr::RELATIME);
        assert_eq!(o.recursive_clear, attr::RDONLY | attr::ATIME);
    }

    #[test]
    fn later_options_win() {
        let o = MountOptions::parse(&s(&["rbind", "ro", "rw"]));
        assert!(o.is_bind());
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
