//! Idmapped bind mounts (mounts[].uidMappings/gidMappings, or the `idmap` /
//! `ridmap` options with the container's own mappings). The kernel allows
//! idmapping a mount only with privileges over the filesystem's user
//! namespace, so the runtime's side (still on the host) prepares each one as a
//! detached mount: a clone of the source, idmapped through a throwaway user
//! namespace that carries the mappings. Init attaches it with move_mount.

use std::fs;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use super::RootfsError;
use crate::config::MountIdmap;
use crate::sys;

fn err<'a>(
    index: usize,
    destination: &'a std::path::Path,
    step: &'static str,
) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Mount {
        index,
        destination: destination.to_path_buf(),
        step,
        source,
    }
}

/// A detached, idmapped clone of each mount that asks for one (by mount index).
pub fn prepare(spec: &Spec, idmaps: &[MountIdmap]) -> Result<Vec<Option<OwnedFd>>, RootfsError> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let linux = spec.linux().as_ref();
    let mut out = Vec::with_capacity(mounts.len());
    for (index, m) in mounts.iter().enumerate() {
        let opts = m.options().as_deref().unwrap_or(&[]);
        let recursive = opts.iter().any(|o| o == "rbind" || o == "ridmap");
        let by_option = opts.iter().any(|o| o == "idmap" || o == "ridmap");
        let mut maps = idmaps.get(index).cloned().unwrap_or_default();
        if maps.is_empty() && by_option {
            maps.uid_mappings = linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default();
            maps.gid_mappings = linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default();
        }
        if maps.is_empty() {
            out.push(None);
            continue;
        }
        let dest = m.destination();
        let source = m.source().clone().unwrap_or_default();
        let userns = userns_with(&maps.uid_mappings, &maps.gid_mappings).map_err(err(
            index,
            dest,
            "user namespace for the id mapping",
        ))?;
        let tree = sys::open_tree_clone(&source, recursive).map_err(err(
            index,
            dest,
            "open_tree of the source",
        ))?;
        sys::set_idmap(tree.as_fd(), userns.as_fd(), recursive).map_err(err(
            index,
            dest,
            "idmapping the mount",
        ))?;
        out.push(Some(tree));
    }
    Ok(out)
}

/// A user namespace with the given maps, held by an fd: a child is cloned
/// into a new user namespace, its maps written, the namespace opened, and the
/// child killed. (The shim idmaps containerd's snapshot mounts with it too.)
pub fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> std::io::Result<OwnedFd> {
    let child = match sys::clone_fork(CloneFlags::CLONE_NEWUSER.bits() as u64)? {
        sys::Forked::Child => loop {
            nix::unistd::pause();
        },
        sys::Forked::Parent(pid) => pid,
    };
    let text = |maps: &[LinuxIdMapping]| -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let result = (|| {
        fs::write(format!("/proc/{child}/uid_map"), text(uid))?;
        fs::write(format!("/proc/{child}/gid_map"), text(gid))?;
        let path = PathBuf::from(format!("/proc/{child}/ns/user"));
        let fd = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        // SAFETY: `open` returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })();
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    result
}
