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
    /// The loading process's pid as the host sees it, for the listener.
    pub host_pid: i32,
}

impl Filter<'_> {
    fn load(&self) -> Result<(), ContainerError> {
        seccomp::load(
            self.filter,
            self.cfg,
            self.listener,
            &self.state,
            self.host_pid,
        )?;
        Ok(())
    }
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
        env.push(format!("HOME={}", home_of(p.user().uid())?));
    }
    let program = process::exec::resolve(arg0, &env)?;
    Ok((program, env))
}

/// Becomes the configured process. The runtime's fds are marked
/// close-on-exec first (CVE-2024-21626), before any filter could refuse
/// that. Without no_new_privs, loading a seccomp filter needs CAP_SYS_ADMIN:
/// it is loaded before the capabilities go (runc's order). With
/// no_new_privs it is returned, to be loaded by [`load_last`] right before
/// execve, so that nothing the runtime still does (the exec fifo, hooks,
/// signal resets) needs a syscall the profile may lack.
pub fn assume<'a>(
    p: &Process,
    filter: Option<Filter<'a>>,
    setgroups: bool,
    preserve_fds: u32,
) -> Result<Option<Filter<'a>>, ContainerError> {
    sys::cloexec_from(3 + preserve_fds).map_err(ContainerError::io("marking fds close-on-exec"))?;
    let nnp = p.no_new_privileges() == Some(true);
    let caps = CapSets::from_spec(p.capabilities().as_ref())?;
    if !nnp {
        if let Some(f) = &filter {
            f.load()?;
        }
    }
    caps.apply_bounding()?;
    hand_stdio_to(p.user().uid())?;
    process::user::switch(p.user(), setgroups)?;
    caps.apply_sets()?;
    if !nnp {
        return Ok(None);
    }
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(ProcessError::NoNewPrivileges)?;
    Ok(filter)
}

/// Loads the filter [`assume`] left for last; call right before execve.
pub fn load_last(filter: Option<Filter<'_>>) -> Result<(), ContainerError> {
    match filter {
        Some(f) => f.load(),
        None => Ok(()),
    }
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

/// Whether the process may set its supplementary groups: outside a user
/// namespace of its own, yes, unless it runs in one it did not make (root
/// of `unshare -r` may have setgroups denied there); inside one, as the
/// namespace's `setgroups` file says. `setgroups_file` is that file as the
/// host's /proc has it (init's before pivot_root, the container's init's for
/// exec): read in the container's /proc, a planted "deny" would leave the
/// runtime's own groups to the process.
pub fn may_setgroups(new_user_ns: bool, setgroups_file: &str) -> bool {
    let allowed = || {
        crate::procfs::read(setgroups_file)
            .map(|s| s.trim() == "allow")
            .unwrap_or(true)
    };
    (!new_user_ns && !crate::namespaces::in_nested_user_ns()) || allowed()
}

/// The most of /etc/passwd read for HOME: far past any real one.
const PASSWD_MAX: u64 = 16 << 20;
/// The longest line taken (runc's scanner stops at 64 KiB too).
const PASSWD_LINE_MAX: usize = 64 << 10;

/// The home directory of `uid` from the container's /etc/passwd, or "/" when
/// there is none. The file is the image's, so it is opened inside the root
/// without magic links (no /proc/N/root detour to the host's), without
/// blocking (a fifo), read only when it is a regular file, a line at a time
/// and never more than [`PASSWD_MAX`] bytes: a /etc/passwd that is
/// /dev/zero or endless must not hang or exhaust the runtime, whose memory
/// exec's child shares until execve (its allocations are the caller's).
fn home_of(uid: u32) -> Result<String, ProcessError> {
    use std::io::{BufRead, Read};
    let err = |reason: String| ProcessError::User {
        step: "reading /etc/passwd for HOME",
        source: std::io::Error::other(reason),
    };
    // Missing, or /dev/null (a masked /etc/passwd): no entry, as runc,
    // which reads nothing from it.
    let file = match open_in_container("/etc/passwd") {
        Ok(Some(f)) => f,
        Ok(None) => return Ok("/".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok("/".into()),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut reader = std::io::BufReader::new(file.take(PASSWD_MAX));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(PASSWD_LINE_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| err(e.to_string()))?;
        if n == 0 {
            return Ok("/".into());
        }
        if n > PASSWD_LINE_MAX {
            return Err(err(format!(
                "/etc/passwd has a line longer than {PASSWD_LINE_MAX} bytes"
            )));
        }
        let text = String::from_utf8_lossy(&line);
        let f: Vec<&str> = text.trim_end_matches('\n').split(':').collect();
        if f.len() >= 6 && f[2].parse() == Ok(uid) {
            return Ok(f[5].to_string());
        }
    }
}

/// Opens `path` of the container (our root is its root by now) for reading:
/// resolved inside the root, no magic links, non-blocking.
/// A device node is not opened at all (its driver's open could act): what
/// is there is looked at as a path first, and only a regular file opened,
/// checked to be the same one; /dev/null (major 1, minor 3), which reads
/// as empty, is `None`.
fn open_in_container(path: &str) -> std::io::Result<Option<fs::File>> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::{AsRawFd, FromRawFd};
    let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    let root = fs::File::open("/")?;
    let rel = std::path::Path::new(path.trim_start_matches('/'));
    let at = |flags: OFlag| -> std::io::Result<fs::File> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(resolve);
        let fd = openat2(root.as_raw_fd(), rel, how)?;
        // SAFETY: openat2 returned a new fd that nothing else owns.
        Ok(unsafe { fs::File::from_raw_fd(fd) })
    };
    let seen = at(OFlag::O_PATH)?.metadata()?;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if seen.file_type().is_char_device() && seen.rdev() == libc::makedev(1, 3) {
        return Ok(None);
    }
    if !seen.is_file() {
        return Err(std::io::Error::other(format!(
            "{path} is not a regular file"
        )));
    }
    let file = at(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)?;
    let meta = file.metadata()?;
    if (meta.dev(), meta.ino()) != (seen.dev(), seen.ino()) {
        return Err(std::io::Error::other(format!(
            "{path} changed while opened"
        )));
    }
    Ok(Some(file))
}
