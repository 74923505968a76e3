//! The last steps before execve, shared by init and exec: find the program,
//! then become the configured process (capabilities, user, no_new_privs,
//! seccomp) and close the runtime's fds.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxSeccomp, Process};

use super::ContainerError;
use crate::process::{self, capabilities::CapSets, ProcessError};
use crate::{seccomp, sys};

/// A compiled seccomp filter and what loading it needs.
pub struct Filter<'a> {
    pub filter: &'a seccomp::Program,
    pub cfg: &'a LinuxSeccomp,
    pub listener: Option<&'a UnixStream>,
    pub state: serde_json::Value,
}

/// The resolved program and its environment (HOME added from /etc/passwd when
/// missing, as runc does). Call inside the container's root.
pub fn program(p: &Process) -> Result<(PathBuf, Vec<String>), ContainerError> {
    let args = p.args().as_deref().unwrap_or(&[]);
    let arg0 = args.first().ok_or_else(|| ProcessError::Executable {
        name: String::new(),
        reason: "process.args is empty".into(),
    })?;
    let mut env = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user().uid())));
    }
    let program = process::exec::resolve(arg0, &env)?;
    Ok((program, env))
}

/// Becomes the configured process. Without no_new_privs, loading a seccomp
/// filter needs CAP_SYS_ADMIN: it is loaded before the capabilities go (runc's
/// order); with no_new_privs it is loaded last.
pub fn assume(
    p: &Process,
    filter: Option<Filter<'_>>,
    may_setgroups: bool,
    preserve_fds: u32,
) -> Result<(), ContainerError> {
    let nnp = p.no_new_privileges() == Some(true);
    let load = |f: &Option<Filter<'_>>| -> Result<(), ContainerError> {
        if let Some(f) = f {
            seccomp::load(f.filter, f.cfg, f.listener, &f.state)?;
        }
        Ok(())
    };
    let caps = CapSets::from_spec(p.capabilities().as_ref())?;
    if !nnp {
        load(&filter)?;
    }
    caps.apply_bounding()?;
    hand_stdio_to(p.user().uid())?;
    // Root of a user namespace we run in (not one made for the container)
    // may have setgroups denied there (`unshare -r`): ask the kernel then.
    let may_setgroups = may_setgroups && !crate::namespaces::in_nested_user_ns();
    process::user::switch(p.user(), may_setgroups || setgroups_allowed())?;
    caps.apply_sets()?;
    if nnp {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(ProcessError::NoNewPrivileges)?;
        load(&filter)?;
    }
    sys::cloexec_from(3 + preserve_fds).map_err(ContainerError::io("marking fds close-on-exec"))
}

/// Makes the process's user the owner of its stdio, as runc does: pipes,
/// files and ptys made outside belong to the caller (root), and a non-root
/// program that reopens them (`echo > /dev/stdout`, a log file symlinked
/// there) would be refused. Skipped for /dev/null and for stdio the user
/// owns already; only the owner changes, not the group. An owner that is not
/// mapped in a user namespace (EINVAL, EPERM), or a file on a read-only
/// filesystem, leaves the file as it is.
fn hand_stdio_to(uid: u32) -> Result<(), ContainerError> {
    use nix::sys::stat::{fstat, SFlag};
    for fd in 0..=2 {
        let Ok(st) = fstat(fd) else {
            continue; // closed
        };
        let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        let dev_null = is_char && st.st_rdev == libc::makedev(1, 3);
        if st.st_uid == uid || dev_null {
            continue;
        }
        match nix::unistd::fchown(fd, Some(nix::unistd::Uid::from_raw(uid)), None) {
            Ok(()) | Err(nix::Error::EINVAL | nix::Error::EPERM | nix::Error::EROFS) => {}
            Err(e) => {
                return Err(ContainerError::io("handing stdio to process.user")(
                    e.into(),
                ));
            }
        }
    }
    Ok(())
}

/// Whether setgroups(2) is allowed in our user namespace (the parent writes the
/// gid map as root, so it normally is).
fn setgroups_allowed() -> bool {
    crate::procfs::read("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true)
}

/// The home directory of `uid` from the container's /etc/passwd, or "/".
fn home_of(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into())
}
