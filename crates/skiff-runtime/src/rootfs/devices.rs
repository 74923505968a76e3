//! /dev: the standard device nodes, linux.devices, and the links every program
//! expects (/dev/fd, /dev/stdin, /dev/ptmx).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{major, makedev, minor, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDeviceType, Mount};

use super::resolve::{
    ensure_in_root, fd_path, last_component_stat, last_component_type, open_in_root, Kind,
};
use super::{RootfsContext, RootfsError};

struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    /// From linux.devices: what is already at its path must be this very
    /// device (the runtime-spec: "If a file already exists at path that
    /// does not match the requested device, the runtime MUST generate an
    /// error"). A standard node replaces what the image has there.
    configured: bool,
}

/// runc sets up /dev unless the config bind-mounts a /dev of its own.
pub fn needs_dev_setup(mounts: &[Mount]) -> bool {
    !mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    })
}

fn standard_nodes() -> Vec<Node> {
    crate::config::STANDARD_DEVICES
        .into_iter()
        .map(|(name, major, minor)| Node {
            path: PathBuf::from("/dev").join(name),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
            configured: false,
        })
        .collect()
}

pub fn setup_dev(root: &OwnedFd, ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    let mut nodes = standard_nodes();
    let configured = ctx.spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for d in configured.into_iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        // A configured device replaces a standard one at the same path.
        nodes.retain(|n| n.path != *d.path());
        nodes.push(Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            configured: true,
        });
    }
    // runc's special case: /dev/ptmx is the link to the container's devpts
    // instance (create_links), whatever linux.devices says of it.
    let has_pts = matches!(
        last_component_type(root.as_fd(), Path::new("/dev/pts/ptmx")),
        Ok(Some(_))
    );
    if has_pts {
        nodes.retain(|n| n.path != Path::new("/dev/ptmx"));
    }
    // Every configured node against what the image (or a mount) has at its
    // path, before any node is made: a refused config leaves none behind
    // in the rootfs.
    for node in nodes.iter().filter(|n| n.configured) {
        check_existing(root, node)?;
    }
    // mknod with the exact mode: the umask is cleared meanwhile, so no chmod
    // follows each node; then it is back to what it was (the caller's, which
    // the program inherits unless process.user.umask says otherwise).
    let umask = nix::sys::stat::umask(Mode::empty());
    let mut parents = Parents::default();
    let result = nodes
        .iter()
        .try_for_each(|node| create_node(root, &mut parents, node, ctx.in_user_ns));
    nix::sys::stat::umask(umask);
    result?;
    create_links(root, has_pts)
}

/// What is at a configured node's path already: nothing, or the same
/// device (type and numbers; a fifo has none), or it is an error.
fn check_existing(root: &OwnedFd, node: &Node) -> Result<(), RootfsError> {
    let found = match last_component_stat(root.as_fd(), &node.path) {
        Ok(None) => return Ok(()),
        Ok(Some(st)) => st,
        // A file where a directory on the way should be.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(conflict(
                node,
                "a file on its way is not a directory".into(),
            ))
        }
        Err(source) => {
            return Err(RootfsError::Device {
                path: node.path.clone(),
                step: "looking at what is there",
                source,
            })
        }
    };
    match is_same_device(&found, node) {
        true => Ok(()),
        false => Err(conflict(node, describe(&found))),
    }
}

fn is_same_device(st: &nix::sys::stat::FileStat, node: &Node) -> bool {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    kind == node.kind
        && (kind == SFlag::S_IFIFO
            || (major(st.st_rdev), minor(st.st_rdev)) == (node.major, node.minor))
}

fn conflict(node: &Node, found: String) -> RootfsError {
    let kind = match node.kind {
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFIFO => "fifo",
        _ => "char device",
    };
    let wanted = match node.kind {
        SFlag::S_IFIFO => kind.to_string(),
        _ => format!("{kind} {}:{}", node.major, node.minor),
    };
    RootfsError::DeviceConflict {
        path: node.path.clone(),
        found,
        wanted,
    }
}

/// What is already there, in a few words for an error.
fn describe(st: &nix::sys::stat::FileStat) -> String {
    let numbers = format!("{}:{}", major(st.st_rdev), minor(st.st_rdev));
    let what = match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFCHR => format!("a char device {numbers}"),
        SFlag::S_IFBLK => format!("a block device {numbers}"),
        SFlag::S_IFIFO => "a fifo".into(),
        SFlag::S_IFDIR => "a directory".into(),
        SFlag::S_IFLNK => "a symlink".into(),
        SFlag::S_IFSOCK => "a socket".into(),
        _ => "a regular file".into(),
    };
    format!("{what} is already there")
}

/// The directory the last node went into (most share /dev): opened once, and
/// whether a node made there needs a chown to get the owner the config names.
#[derive(Default)]
struct Parents {
    last: Option<(PathBuf, OwnedFd, u32)>,
}

impl Parents {
    /// The parent's fd, and the gid a node made in it gets (the directory's
    /// own when it is set-group-ID, ours otherwise).
    fn get(&mut self, root: &OwnedFd, parent: &Path) -> io::Result<(&OwnedFd, u32)> {
        if self.last.as_ref().is_none_or(|(p, _, _)| p != parent) {
            let dir = ensure_in_root(root.as_fd(), parent, Kind::Dir)?;
            let st = nix::sys::stat::fstat(dir.as_raw_fd())?;
            let gid = if st.st_mode & libc::S_ISGID != 0 {
                st.st_gid
            } else {
                nix::unistd::getegid().as_raw()
            };
            self.last = Some((parent.to_path_buf(), dir, gid));
        }
        let (_, fd, gid) = self.last.as_ref().expect("just set");
        Ok((fd, *gid))
    }
}

fn create_node(
    root: &OwnedFd,
    parents: &mut Parents,
    node: &Node,
    in_user_ns: bool,
) -> Result<(), RootfsError> {
    let err = |step| {
        move |source| RootfsError::Device {
            path: node.path.clone(),
            step,
            source,
        }
    };
    let parent = node.path.parent().unwrap_or(Path::new("/"));
    let name = node
        .path
        .file_name()
        .ok_or_else(|| err("path")(io::ErrorKind::InvalidInput.into()))?;
    let (dir, new_gid) = parents
        .get(root, parent)
        .map_err(err("creating the parent"))?;
    if in_user_ns {
        // No mknod in a user namespace: bind the host's node onto an empty file.
        let target = ensure_in_root(root.as_fd(), &node.path, Kind::File)
            .map_err(err("creating the file"))?;
        // A regular file is the one just made (check_existing refused any
        // there before); anything else came from a node before this one.
        let st = nix::sys::stat::fstat(target.as_raw_fd()).map_err(|e| err("stat")(e.into()))?;
        let made = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        if node.configured && !made && !is_same_device(&st, node) {
            return Err(conflict(node, describe(&st)));
        }
        return mount(
            Some(&node.path),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err("bind from host")(e.into()));
    }
    let mknod = || {
        mknodat(
            Some(dir.as_raw_fd()),
            name,
            node.kind,
            Mode::from_bits_truncate(node.mode),
            makedev(node.major, node.minor),
        )
    };
    match mknod() {
        Ok(()) => {}
        // A standard node replaces whatever the image has there; a
        // configured one only the same device (remade with its mode and
        // owner), which is all check_existing left, but for a node made
        // just before under another name for the same path.
        Err(nix::errno::Errno::EEXIST) => {
            let st = nix::sys::stat::fstatat(
                Some(dir.as_raw_fd()),
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err("stat")(e.into()))?;
            let same = is_same_device(&st, node);
            if node.configured && !same {
                return Err(conflict(node, describe(&st)));
            }
            let unlinked = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            // The device itself, bound there by the config's mounts: kept.
            if unlinked == Err(nix::errno::Errno::EBUSY) && same {
                return Ok(());
            }
            mknod().map_err(|e| err("mknod")(e.into()))?;
        }
        Err(e) => return Err(err("mknod")(e.into())),
    }
    if node.uid == nix::unistd::geteuid().as_raw() && node.gid == new_gid {
        return Ok(());
    }
    fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err("chown")(e.into()))
}

fn create_links(root: &OwnedFd, has_pts: bool) -> Result<(), RootfsError> {
    let dev =
        open_in_root(root.as_fd(), Path::new("/dev")).map_err(|source| RootfsError::Device {
            path: "/dev".into(),
            step: "opening",
            source,
        })?;
    let base = fd_path(&dev);
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if has_pts {
        let _ = std::fs::remove_file(base.join("ptmx"));
        links.push(("ptmx", "pts/ptmx"));
    }
    for (name, target) in links {
        match symlink(target, base.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(RootfsError::Device {
                    path: PathBuf::from("/dev").join(name),
                    step: "symlink",
                    source,
                })
            }
        }
    }
    Ok(())
}
