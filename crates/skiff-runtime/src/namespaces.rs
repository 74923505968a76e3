//! linux.namespaces: which are created new (in the clone itself, so init is born
//! inside them), which are joined by path, and the user namespace's id maps.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("linux.namespaces: joining {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("linux.namespaces: creating namespaces ({flags:?}): {source}")]
    Unshare {
        flags: CloneFlags,
        source: nix::Error,
    },
    #[error("linux.{which}: writing {path}: {source}")]
    IdMap {
        which: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("linux.namespaces: bringing up the loopback interface of the new network namespace ({step}): {source}")]
    Loopback {
        step: &'static str,
        source: nix::Error,
    },
}

/// The spec's name of a namespace type, for messages.
pub fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // Not in nix's CloneFlags on every version; the kernel value.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// The namespace plan for one container, computed once in the parent.
#[derive(Debug, Clone)]
pub struct Plan {
    /// New namespaces, created by the clone itself.
    pub clone_flags: CloneFlags,
    /// New namespaces the child unshares later: cgroup (after it has joined its
    /// group, so the group becomes its root) and time (offsets must be written
    /// before a process enters it; init enters it at execve).
    pub late_unshare: CloneFlags,
    /// Namespaces joined by the parent before the clone (the child inherits them).
    pub parent_joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Namespaces the child joins itself: user and mount.
    pub child_joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// With a user namespace joined by path and a new pid namespace: the
    /// namespaces a second clone makes, after the first child has joined
    /// the user namespace (which must own them); the first child then
    /// ends, and the second, a sibling of it (CLONE_PARENT), is init.
    pub respawn: CloneFlags,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_pid: bool,
    pub new_cgroup: bool,
    /// A new network namespace: init brings its loopback interface up.
    pub new_net: bool,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan, NamespaceError> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            late_unshare: CloneFlags::empty(),
            parent_joins: Vec::new(),
            child_joins: Vec::new(),
            respawn: CloneFlags::empty(),
            new_user: false,
            new_mount: false,
            new_pid: false,
            new_cgroup: false,
            new_net: false,
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
        };
        let Some(linux) = spec.linux() else {
            return Ok(plan);
        };
        let mut user_path = false;
        for ns in linux.namespaces().iter().flatten() {
            let typ = ns.typ();
            match (ns.path(), typ) {
                (Some(path), LinuxNamespaceType::User | LinuxNamespaceType::Mount) => {
                    user_path |= typ == LinuxNamespaceType::User;
                    plan.child_joins.push((typ, path.clone()));
                }
                (Some(path), _) => plan.parent_joins.push((typ, path.clone())),
                (None, LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time) => {
                    plan.late_unshare |= flag(typ)
                }
                (None, _) => plan.clone_flags |= flag(typ),
            }
            if ns.path().is_none() {
                match typ {
                    LinuxNamespaceType::User => plan.new_user = true,
                    LinuxNamespaceType::Mount => plan.new_mount = true,
                    LinuxNamespaceType::Pid => plan.new_pid = true,
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Network => plan.new_net = true,
                    _ => {}
                }
            }
        }
        // The user namespace must be joined before the others are created, so that
        // it owns them: with a user namespace path, the child joins it first and
        // unshares the rest itself. A pid namespace cannot be made that way for
        // init itself (unshare puts only its children in it): then the child
        // clones init with them (containerd 2.x pods with hostUsers: false).
        if user_path {
            match plan.new_pid {
                true => plan.respawn = plan.clone_flags,
                false => plan.late_unshare |= plan.clone_flags,
            }
            plan.clone_flags = CloneFlags::empty();
        }
        plan.child_joins
            .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        plan.uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
        plan.gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
        Ok(plan)
    }

    /// Whether init is sent the sources of its bind mounts, opened by the
    /// runtime, with Go (before anything else): as root of a user namespace
    /// it may not reach the host's paths. With a new user namespace, or one
    /// joined before init was cloned (so that its mount namespace, where the
    /// sources are opened, is already its own).
    pub fn gets_bind_sources(&self) -> bool {
        self.new_user || !self.respawn.is_empty()
    }

    /// Whether the user namespace is one joined by path.
    pub fn joins_user(&self) -> bool {
        self.child_joins
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User)
    }
}

fn open_ns(path: &Path) -> nix::Result<OwnedFd> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn join(typ: LinuxNamespaceType, path: &Path) -> Result<(), NamespaceError> {
    let err = |source| NamespaceError::Join {
        kind: ns_name(typ),
        path: path.to_path_buf(),
        source,
    };
    let fd = open_ns(path).map_err(err)?;
    setns(fd, flag(typ)).map_err(err)
}

/// The runtime's own namespaces, to return to after the clone.
pub struct Saved(Vec<(LinuxNamespaceType, OwnedFd)>);

/// Parent side, just before the clone: join the namespaces named by path that
/// the child can inherit (network, ipc, uts, pid, cgroup, time). The runtime's
/// own are kept, so that it returns to them right after the clone ([`Saved::restore`])
/// and its hooks run in the runtime's namespaces, as the spec asks.
pub fn join_in_parent(plan: &Plan) -> Result<Saved, NamespaceError> {
    let mut saved = Vec::new();
    for (typ, path) in &plan.parent_joins {
        let own = PathBuf::from(format!("/proc/self/ns/{}", proc_name(*typ)));
        let fd = open_ns(&own).map_err(|source| NamespaceError::Join {
            kind: ns_name(*typ),
            path: own.clone(),
            source,
        })?;
        saved.push((*typ, fd));
        join(*typ, path)?;
    }
    Ok(Saved(saved))
}

impl Saved {
    /// Back to the runtime's own namespaces. A runtime in a user namespace
    /// of its own (rootless: Podman's, the skiff engine's) may not go back
    /// to the host's ipc, uts or network namespace it started in (they
    /// belong to the host's user namespace): it stays where it is, which
    /// changes only where its hooks run, and only that runtime's process.
    pub fn restore(self) -> Result<(), NamespaceError> {
        for (typ, fd) in self.0 {
            match setns(fd, flag(typ)) {
                Ok(()) => {}
                Err(nix::Error::EPERM) if !host_root() => {}
                Err(source) => {
                    return Err(NamespaceError::Join {
                        kind: ns_name(typ),
                        path: PathBuf::from("(the runtime's own)"),
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

/// The file name under /proc/PID/ns/ (pid and time: the namespace children get).
fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid_for_children",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time_for_children",
    }
}

/// Child side: join user and mount namespaces named by path (done already,
/// before the second clone, when there is one).
pub fn join_in_child(plan: &Plan) -> Result<(), NamespaceError> {
    if !plan.respawn.is_empty() {
        return Ok(());
    }
    join_by_path(plan)
}

fn join_by_path(plan: &Plan) -> Result<(), NamespaceError> {
    for (typ, path) in &plan.child_joins {
        join(*typ, path)?;
    }
    Ok(())
}

/// First child side, with [`Plan::respawn`]: joins the user (and mount)
/// namespace named by path and clones init, a sibling, in the new namespaces;
/// returns init's pid here, and None in init itself.
pub fn respawn(plan: &Plan) -> Result<Option<Pid>, NamespaceError> {
    join_by_path(plan)?;
    let flags = plan.respawn | CloneFlags::CLONE_PARENT;
    match crate::sys::clone_fork(flags.bits() as u64) {
        Ok(crate::sys::Forked::Child) => Ok(None),
        Ok(crate::sys::Forked::Parent(pid)) => Ok(Some(pid)),
        Err(e) => Err(NamespaceError::Unshare {
            flags,
            source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)),
        }),
    }
}

/// Child side: create the namespaces that could not be part of the clone.
pub fn unshare_late(plan: &Plan) -> Result<(), NamespaceError> {
    if plan.late_unshare.is_empty() {
        return Ok(());
    }
    unshare_flags(plan.late_unshare)
}

/// Child side: create the new namespaces `flags` names.
pub fn unshare_flags(flags: CloneFlags) -> Result<(), NamespaceError> {
    unshare(flags).map_err(|source| NamespaceError::Unshare { flags, source })
}

/// Whether we run in a user namespace other than the host's (rootless
/// podman runs its runtime as uid 0 of one): its root has no say over the
/// host's cgroups. The host's user namespace has a fixed inode number
/// (PROC_USER_INIT_INO): one readlink, no file to read.
pub fn in_nested_user_ns() -> bool {
    static NESTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NESTED.get_or_init(|| match fs::read_link("/proc/self/ns/user") {
        Ok(link) => link.as_os_str() != "user:[4026531837]",
        // No /proc: nothing says so.
        Err(_) => false,
    })
}

/// Whether we are the host's root: uid 0 in the host's user namespace.
/// Asks both always, so that a child (init) inherits the answer about our
/// namespace instead of working it out later in its own.
pub fn host_root() -> bool {
    let nested = in_nested_user_ns();
    nix::unistd::geteuid().is_root() && !nested
}

/// Sets `lo` up in the calling process's network namespace, which the kernel
/// makes with it down. runc and crun do the same for a network namespace they
/// create (not for one joined by path, which its maker has set up): a program
/// that talks to 127.0.0.1 or ::1 needs it.
pub fn loopback_up() -> Result<(), NamespaceError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let err = |step| move |source| NamespaceError::Loopback { step, source };
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err("socket"))?;
    // SAFETY: ifreq is plain data, for which all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into the
    // ifreq we own, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(err("SIOCGIFFLAGS")(nix::Error::last()));
    }
    // SAFETY: the kernel has just filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags from the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(err("SIOCSIFFLAGS")(nix::Error::last()));
    }
    Ok(())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Parent side, after the clone: write the child's uid and gid maps. An
/// unprivileged caller (rootless) may map only its own ids, and only after
/// denying setgroups in the namespace.
pub fn write_id_maps(plan: &Plan, child: Pid) -> Result<(), NamespaceError> {
    if !nix::unistd::geteuid().is_root() {
        let path = PathBuf::from(format!("/proc/{child}/setgroups"));
        fs::write(&path, "deny").map_err(|source| NamespaceError::IdMap {
            which: "gidMappings",
            path,
            source,
        })?;
    }
    for (which, file, maps) in [
        ("uidMappings", "uid_map", &plan.uid_mappings),
        ("gidMappings", "gid_map", &plan.gid_mappings),
    ] {
        let path = PathBuf::from(format!("/proc/{child}/{file}"));
        fs::write(&path, map_text(maps)).map_err(|source| NamespaceError::IdMap {
            which,
            path,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_new_and_joined() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[
                {"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},
                {"type":"mount"},{"type":"cgroup"}]}}"#,
        )
        .unwrap();
        let plan = Plan::from_spec(&spec).unwrap();
        assert!(plan
            .clone_flags
            .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(!plan.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert_eq!(plan.late_unshare, CloneFlags::CLONE_NEWCGROUP);
        assert_eq!(plan.parent_joins.len(), 1);
        assert!(plan.new_pid && plan.new_mount && !plan.new_user);
    }
}
