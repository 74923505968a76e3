//! Container state on disk (`ROOT/ID/state.json`) and the status derived from the
//! kernel, so that separate invocations of the runtime cooperate and a crashed
//! runtime loses nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, lstat, Mode};
use nix::unistd::Pid;
use oci_spec::runtime::{Hooks, LinuxSeccomp, Process};
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupRecord;

/// The file init blocks on until `start` (see `container::start`).
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
/// The container's groups, written by `create` before it makes any, so that
/// a create killed before state.json exists leaves `delete --force` enough
/// to find them.
const PLANNED_CGROUPS: &str = "cgroups.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "container id {0:?} is invalid: use letters, digits, '_', '+', ',', '-', '.' and no leading '.'"
    )]
    InvalidId(String),
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("state directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("state file {path} is damaged: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// runtime-spec statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The runtime-spec version skiff implements, which its state complies
/// with: `state` prints it, and so do the states hooks and a seccomp agent
/// read (runtime-spec: "the version of the specification with which the
/// state complies"), as runc's and crun's print their own, not the
/// config's (a 1.0 bundle's container has a 1.2 state, and a bundle
/// claiming a later 1.x would otherwise have its state claim it too).
pub const OCI_VERSION: &str = "1.2.0";

/// What skiff keeps about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Start time of init (field 22 of /proc/PID/stat), so that a recycled pid is
    /// never mistaken for the container.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, as runc prints it.
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: Option<CgroupRecord>,
    /// Whether init has its own pid namespace: if not, killing init does not kill
    /// the rest of the container.
    pub private_pid_ns: bool,
    /// Whether init has a mount namespace of its own: if not (none, or one
    /// joined), its root is a chroot that `exec` must enter as well.
    #[serde(default = "yes")]
    pub private_mount_ns: bool,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// The container's process and seccomp profile: `exec` starts from them.
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub seccomp: Option<LinuxSeccomp>,
}

fn yes() -> bool {
    true
}

/// The state root (`--root`): one directory per container.
pub struct StateRoot {
    pub dir: PathBuf,
}

impl StateRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateRoot { dir: dir.into() }
    }

    pub fn container_dir(&self, id: &str) -> Result<PathBuf, StateError> {
        check_id(id)?;
        Ok(self.dir.join(id))
    }

    /// Creates the container's directory; fails if the id is taken. Also
    /// returns an O_PATH descriptor of it: while it is held, the directory's
    /// inode cannot be freed, so [`StateRoot::same_dir`] can later tell this
    /// directory from one made for the same id after it was removed.
    pub fn create_dir(&self, id: &str) -> Result<(PathBuf, OwnedFd), StateError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.container_dir(id)?;
        // runc's modes: the root 0700, a container's directory 0711.
        let mkdir = |path: &Path, mode| fs::DirBuilder::new().mode(mode).create(path);
        let mut made = mkdir(&dir, 0o711);
        if made
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io_err(&self.dir))?;
            made = mkdir(&dir, 0o711);
        }
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::AlreadyExists(id.to_string()))
            }
            Err(e) => return Err(io_err(&dir)(e)),
        }
        let anchor = match open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                // Not claimed after all: the id stays free.
                let _ = fs::remove_dir(&dir);
                return Err(io_err(&dir)(e.into()));
            }
        };
        // SAFETY: `open` returned a new fd that nothing else owns.
        Ok((dir, unsafe { OwnedFd::from_raw_fd(anchor) }))
    }

    /// Whether ROOT/`id` is still the directory `anchor` (from
    /// [`StateRoot::create_dir`]) was opened on.
    pub fn same_dir(&self, id: &str, anchor: &OwnedFd) -> Result<bool, StateError> {
        let dir = self.container_dir(id)?;
        let held = fstat(anchor.as_raw_fd()).map_err(|e| io_err(&dir)(e.into()))?;
        match lstat(&dir) {
            Ok(now) => Ok(now.st_dev == held.st_dev && now.st_ino == held.st_ino),
            Err(nix::errno::Errno::ENOENT) => Ok(false),
            Err(e) => Err(io_err(&dir)(e.into())),
        }
    }

    pub fn load(&self, id: &str) -> Result<Record, StateError> {
        let dir = self.container_dir(id)?;
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Writes state.json atomically (temp file + rename), so a reader never sees a
    /// half-written file. No fsync: the state root lives on tmpfs (/run) and the
    /// containers it describes do not survive a reboot either.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let dir = self.container_dir(&record.id)?;
        let path = dir.join(STATE_FILE);
        let json = serde_json::to_vec(record).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        // 0600: the state holds the process's environment, often secrets.
        write_atomic(&path, &json, 0o600).map_err(io_err(&dir))
    }

    /// Removes the container's directory and everything in it. It usually
    /// holds state.json alone: that file and the directory go first, and only
    /// what else is found (the exec fifo, a temporary file) needs a walk.
    /// Records the groups `create` is about to make (see PLANNED_CGROUPS).
    pub fn save_planned_cgroups(
        &self,
        id: &str,
        record: &crate::cgroups::CgroupRecord,
    ) -> Result<(), StateError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.container_dir(id)?.join(PLANNED_CGROUPS);
        let json = serde_json::to_vec(record).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        // A new file in the directory this create has just claimed (a cut
        // one reads as none: no rename needed).
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .and_then(|mut f| f.write_all(&json))
            .map_err(|source| StateError::Io { path, source })
    }

    /// The groups a create that never wrote state.json was making, if it
    /// got as far as saying.
    pub fn planned_cgroups(&self, id: &str) -> Option<crate::cgroups::CgroupRecord> {
        let path = self.container_dir(id).ok()?.join(PLANNED_CGROUPS);
        let text = fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.container_dir(id)?;
        let _ = fs::remove_file(dir.join(STATE_FILE));
        let _ = fs::remove_file(dir.join(PLANNED_CGROUPS));
        let result = match fs::remove_dir(&dir) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => fs::remove_dir_all(&dir),
            other => other,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }

    /// Ids of every container under the root, sorted.
    pub fn list(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Writes `data` to a new temporary file beside `dest` and renames it over
/// `dest`, so a reader never sees half a file. The temporary is made with
/// O_EXCL (which never follows a symlink) under a name of this process's
/// own: the directory may be anyone's (a --pid-file's), and a symlink or
/// file planted at a guessable name is neither written through nor an
/// obstacle.
pub fn write_atomic(dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: not a file name", dest.display())))?;
    // Not guessable ahead (the clock's nanoseconds): names planted in
    // advance cannot use up the attempts.
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..16 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}-{salt:x}-{attempt}.tmp", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let mut f = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = f.write_all(data).and_then(|()| fs::rename(&tmp, dest));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        return written;
    }
    Err(io::Error::other(format!(
        "{}: no free name for a temporary file beside it",
        dest.display()
    )))
}

/// Container ids become directory names: no separators, no dot-files.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            // runc's pattern, `^[\w+-\.]+$`, whose `+-\.` is a range: '+', ',',
            // '-' and '.' (so ids with ',' that work with runc work here).
            .all(|b| b.is_ascii_alphanumeric() || b"_+,-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// Process state letter and start time from /proc/PID/stat, or None if gone.
pub fn proc_stat(pid: Pid) -> Option<(char, u64)> {
    let stat = crate::procfs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl Record {
    /// Whether init is still the process we started (alive and not a zombie).
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        matches!(proc_stat(Pid::from_raw(self.pid)),
            Some((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }

    /// The status as the kernel and the state directory show it now.
    pub fn status(&self, root: &StateRoot) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen() {
                return Status::Paused;
            }
        }
        if self.parked(&root.dir.join(&self.id).join(EXEC_FIFO)) {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// Whether init still waits on the exec fifo. The fifo alone does not
    /// say so: a `start` killed after it opened the fifo has let init go on
    /// to the program, and left the fifo behind. Init holds the fifo open
    /// until its execve (the fd is close-on-exec), so that is asked of its
    /// fds; when they cannot be read (a rootless caller and a non-dumpable
    /// init), the fifo is believed.
    pub(crate) fn parked(&self, fifo: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(fifo) = fs::metadata(fifo) else {
            return false;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", self.pid)) else {
            return true;
        };
        fds.flatten().any(|fd| {
            fs::metadata(fd.path()).is_ok_and(|m| m.dev() == fifo.dev() && m.ino() == fifo.ino())
        })
    }
}

/// The state JSON that `state` and `list --format json` print: runc's field order
/// and names, which podman, containerd and CRI-O parse.
#[derive(Serialize)]
pub struct StateView<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    pub owner: &'a str,
}

impl Record {
    pub fn view(&self, status: Status) -> StateView<'_> {
        StateView {
            oci_version: &self.oci_version,
            id: &self.id,
            // runc reports pid 0 once the container has stopped.
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: "",
        }
    }

    /// The runtime-spec state object handed to hooks on stdin. Without a
    /// pid once stopped (poststop), as runc's: the spec asks for one only
    /// while created or running, and init's may name another process by
    /// then.
    pub fn hook_state(&self, status: Status) -> Vec<u8> {
        #[derive(Serialize)]
        struct HookState<'a> {
            #[serde(rename = "ociVersion")]
            oci_version: &'a str,
            id: &'a str,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            pid: Option<i32>,
            bundle: &'a Path,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            annotations: &'a BTreeMap<String, String>,
        }
        serde_json::to_vec(&HookState {
            oci_version: &self.oci_version,
            id: &self.id,
            status: status.as_str(),
            pid: (status != Status::Stopped).then_some(self.pid),
            bundle: &self.bundle,
            annotations: &self.annotations,
        })
        .unwrap_or_default()
    }
}

/// Now as RFC 3339 UTC with nanoseconds (Go's time.RFC3339Nano, what runc writes).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let frac = if nanos == 0 {
        String::new()
    } else {
        let s = format!(".{nanos:09}");
        s.trim_end_matches('0').to_string()
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// A config's annotations as the state keeps them: sorted by key, as runc
/// prints them.
pub fn annotations_of(spec: &oci_spec::runtime::Spec) -> BTreeMap<String, String> {
    spec.annotations()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_709_251_199, 500_000_000),
            "2024-02-29T23:59:59.5Z"
        );
    }

    #[test]
    fn ids_that_would_escape_the_root_are_refused() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        check_id("abc-123_x.y").unwrap();
        // What runc's pattern takes, ',' included.
        check_id("a+b,c").unwrap();
    }

    #[test]
    fn own_process_stat_parses() {
        let (state, start) = proc_stat(nix::unistd::getpid()).unwrap();
        assert!("RSD".contains(state), "{state}");
        assert!(start > 0);
    }
}
