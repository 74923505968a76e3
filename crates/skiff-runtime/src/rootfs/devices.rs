//! /dev: the standard device nodes, linux.devices, and the links every program
//! expects (/dev/fd, /dev/stdin, /dev/ptmx).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDeviceType, Mount};

use super::resolve::{ensure_in_root, fd_path, open_in_root, Kind};
use super::{RootfsContext, RootfsError};

struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
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
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
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
        });
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
    create_links(root)
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
        // Whatever the image has there is replaced.
        Err(nix::errno::Errno::EEXIST) => {
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
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

fn create_links(root: &OwnedFd) -> Result<(), RootfsError> {
    let dev =
        open_in_root(root.as_fd(), Path::new("/dev")).map_err(|source| RootfsError::Device {
            path: "/dev".into(),
            step: "opening",
            source,
        })?;
    let base = fd_path(&dev);
    let has_pts = base.join("pts/ptmx").exists();
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
