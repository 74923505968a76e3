//! Cgroups: one interface over the three host layouts (v1, v2 unified, hybrid).
//!
//! `create` makes the container's group(s) and applies linux.resources before init
//! exists; `join` moves init in before it runs anything of the user's; `remove`
//! takes the groups away on delete. What is created is kept in a [`CgroupRecord`]
//! inside state.json, so later invocations act on the same directories.

mod devices_bpf;
mod devices_v1;
mod extended;
mod layout;
mod resources;
mod stats;
mod sub;
mod units;

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use layout::{Hierarchy, Layout};
pub use resources::shares_to_weight;
pub use sub::SubGroups;
pub use units::{register as register_units, ScopeUnit, UnitManager};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup layout: {0}")]
    Detect(String),
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    Path { path: String, reason: String },
    #[error("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the default cgroupfs driver")]
    NoSystemd,
    #[error("cgroup {path}: creating: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("{action}: the container has no cgroup (made rootless without a delegated cgroup): there is nothing to {action} it through")]
    NoGroup { action: &'static str },
    #[error(
        "linux.resources.{resource}: the {controller} controller is not available on this host"
    )]
    ControllerMissing {
        resource: &'static str,
        controller: &'static str,
    },
    #[error("linux.resources.{resource}: writing {value:?} to {path}: {source}")]
    Write {
        resource: &'static str,
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cgroup {path}: adding pid {pid}: {source}")]
    Join {
        path: PathBuf,
        pid: i32,
        source: io::Error,
    },
    #[error("cgroup {path}: removing: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("--cgroup {arg}: {reason}")]
    SubGroup { arg: String, reason: String },
    #[error("cgroup {path} is frozen: a container started in it would hang (thaw it first)")]
    Frozen { path: PathBuf },
    #[error("--systemd-cgroup: unit {unit}: {step}: {message}")]
    Systemd {
        unit: String,
        step: &'static str,
        message: String,
    },
}

/// The groups of one container, as kept in state.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupRecord {
    /// Every directory the container's processes are placed in, one per
    /// hierarchy (one on a v2 host).
    pub dirs: Vec<PathBuf>,
    /// The directory whose cgroup.procs lists the container's processes.
    pub procs_dir: PathBuf,
    /// Where pause/resume act: a v1 freezer group, or the v2 group.
    pub freezer: Option<Freezer>,
    /// The group in the cgroup2 tree (pure v2, or a hybrid host's unified
    /// mount), where exec clones its child straight into. Recorded so that
    /// exec need not read the mount table; older records lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<PathBuf>,
    /// Set in every record that keeps `v2`: then None there means the host
    /// has no cgroup2 tree (pure v1), not an older record, and exec need
    /// not read the mount table to find out.
    #[serde(default)]
    pub v2_known: bool,
    /// The group held processes already when the container was put in it
    /// (another container's): its delete leaves it to them when still busy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// With --systemd-cgroup: the scope unit systemd owns the group as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<ScopeUnit>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

/// Everything `create` needs to know besides the layout.
pub struct CgroupRequest<'a> {
    pub id: &'a str,
    pub cgroups_path: Option<&'a Path>,
    pub systemd: bool,
    pub resources: Option<&'a LinuxResources>,
}

/// Whether `res` asks for any limit (an empty resources object, or one with only
/// device rules, asks for none that a rootless container could miss).
pub fn has_limits(res: &LinuxResources) -> bool {
    res.memory().is_some()
        || res.cpu().is_some()
        || res.pids().is_some()
        || res.block_io().is_some()
        || res
            .hugepage_limits()
            .as_ref()
            .is_some_and(|h| !h.is_empty())
        || res.unified().as_ref().is_some_and(|u| !u.is_empty())
}

/// What can be refused in `res` before anything is written.
fn check(res: &LinuxResources) -> Result<(), CgroupError> {
    devices_v1::check(res.devices().as_deref().unwrap_or(&[]))
}

/// Creates the container's groups and applies its resources. On error, whatever
/// was created is removed again.
pub fn create(layout: &Layout, req: &CgroupRequest<'_>) -> Result<CgroupRecord, CgroupError> {
    let mut record = plan(layout, req)?;
    record.shared = make(layout, req, &record, None)?;
    Ok(record)
}

/// The container's groups, worked out without touching the tree: which
/// directory in which hierarchy, and which of them count processes and
/// freeze. `make` then creates them; `create` is both.
pub fn plan(layout: &Layout, req: &CgroupRequest<'_>) -> Result<CgroupRecord, CgroupError> {
    if let Some(res) = req.resources {
        check(res)?;
    }
    let (rel, mut unit) = relative_path(req)?;
    // A non-root caller's unit is its own systemd's, which alone knows
    // where the group will be (below user@UID.service): the record gets its
    // directories when the unit has started (start_unit).
    if let Some(unit) = unit.as_mut().filter(|_| !crate::namespaces::host_root()) {
        let Layout::V2 { .. } = layout else {
            return Err(CgroupError::Invalid {
                field: "--systemd-cgroup".into(),
                reason: "for a non-root caller it needs a cgroup v2 host (systemd delegates \
                         only there)"
                    .into(),
            });
        };
        unit.user = true;
        return Ok(CgroupRecord {
            dirs: Vec::new(),
            procs_dir: PathBuf::new(),
            freezer: None,
            v2: None,
            v2_known: true,
            shared: false,
            unit: Some(unit.clone()),
        });
    }
    // Only a relative path needs our own groups (absolute is the default).
    let own = if rel.starts_with('/') {
        String::new()
    } else {
        crate::procfs::read("/proc/self/cgroup").unwrap_or_default()
    };
    let join_rel = |mount: &Path, h: Option<&Hierarchy>| {
        let base = if rel.starts_with('/') {
            mount.to_path_buf()
        } else {
            mount.join(Layout::current(&own, h).trim_start_matches('/'))
        };
        base.join(rel.trim_start_matches('/'))
    };
    match layout {
        Layout::V2 { root } => {
            let dir = match rel.starts_with('/') {
                true => join_rel(root, None),
                false => {
                    let current = Layout::current(&own, None);
                    let parent = Path::new(&current).parent().unwrap_or(Path::new("/"));
                    root.join(parent.strip_prefix("/").unwrap_or(parent))
                        .join(rel.as_str())
                }
            };
            Ok(CgroupRecord {
                dirs: vec![dir.clone()],
                procs_dir: dir.clone(),
                freezer: Some(Freezer::V2(dir.clone())),
                v2: Some(dir),
                v2_known: true,
                shared: false,
                unit,
            })
        }
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            let mut dirs = Vec::new();
            let mut freezer = None;
            let mut procs_dir = None;
            for h in hierarchies {
                let dir = join_rel(&h.mount, Some(h));
                if h.has("freezer") {
                    freezer = Some(Freezer::V1(dir.clone()));
                }
                if h.has("pids") || (procs_dir.is_none() && h.has("memory")) {
                    procs_dir = Some(dir.clone());
                }
                dirs.push(dir);
            }
            let unified_dir = unified.as_ref().map(|root| join_rel(root, None));
            dirs.extend(unified_dir.clone());
            let procs_dir = procs_dir
                .or_else(|| dirs.first().cloned())
                .ok_or_else(|| CgroupError::Detect("no cgroup hierarchy is mounted".into()))?;
            Ok(CgroupRecord {
                dirs,
                procs_dir,
                freezer,
                v2: unified_dir,
                v2_known: true,
                shared: false,
                unit,
            })
        }
    }
}

/// A group that was there before may hold another container's processes:
/// allowed, as runc allows it, with a warning (limits, pause, kill and
/// delete then act on all of them). The container's own init, born into
/// its cgroup2 group (CLONE_INTO_CGROUP), is not another's.
fn warn_if_not_empty(dir: &Path, init: Option<Pid>) -> bool {
    let procs = crate::procfs::read(dir.join("cgroup.procs")).unwrap_or_default();
    let own = init.map(|p| p.as_raw().to_string());
    let n = procs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && Some(*l) != own.as_deref())
        .count();
    if n > 0 {
        crate::log::warn(&format!(
            "cgroup {} is not empty: {n} process(es) already in it; sharing a cgroup \
             between containers is not supported (limits, pause and kill reach them all)",
            dir.display()
        ));
    }
    n > 0
}

/// Creates the groups `record` (from [`plan`]) names, those that do not
/// exist yet, and applies the resources. On error, whatever it created is
/// removed again. True when the group held processes other than `init`
/// already (shared).
pub fn make(
    layout: &Layout,
    req: &CgroupRequest<'_>,
    record: &CgroupRecord,
    init: Option<Pid>,
) -> Result<bool, CgroupError> {
    let mut created: Vec<PathBuf> = Vec::new();
    let result = make_in(layout, req, record, &mut created);
    // A scope unit was made for this container alone (systemd refuses to
    // start one that exists), with init already in it.
    let shared = result.is_ok()
        && record.unit.is_none()
        && !created.contains(&record.procs_dir)
        && warn_if_not_empty(&record.procs_dir, init);
    if result.is_err() {
        for dir in created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
    result.map(|()| shared)
}

fn make_in(
    layout: &Layout,
    req: &CgroupRequest<'_>,
    record: &CgroupRecord,
    created: &mut Vec<PathBuf>,
) -> Result<(), CgroupError> {
    match layout {
        Layout::V2 { root } => {
            let dir = &record.dirs[0];
            make_dirs(dir, created)?;
            resources::v2_enable_controllers(root, dir)?;
            if let Some(res) = req.resources {
                resources::apply_v2(dir, res, true)?;
            }
        }
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            // `plan` put one directory per hierarchy first, in order, then the
            // unified one.
            let dirs = &record.dirs[..hierarchies.len()];
            for (h, dir) in hierarchies.iter().zip(dirs) {
                make_dirs(dir, created)?;
                if h.has("cpuset") {
                    resources::v1_init_cpuset(&h.mount, dir, created)?;
                }
            }
            if let (Some(root), Some(dir)) = (unified, &record.v2) {
                make_dirs(dir, created)?;
                // Only when asked: enabling a controller changes the host's tree.
                let wants_v2 = req.resources.is_some_and(|r| {
                    r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
                        || r.unified().as_ref().is_some_and(|u| !u.is_empty())
                });
                if wants_v2 {
                    resources::v2_enable_controllers(root, dir)?;
                }
            }
            if let Some(res) = req.resources {
                resources::apply_v1(hierarchies, dirs, res, false)?;
                extended::apply_v1(hierarchies, dirs, record.v2.as_deref(), res)?;
            }
        }
    }
    Ok(())
}

/// The container's path below each hierarchy root, as runc resolves it:
/// absolute paths from the root, relative ones below the runtime's own group
/// (on a cgroup2-only host below its parent: the own group most likely has
/// processes, and its children could get no controllers), and `<id>`,
/// relative, when the config names none (so that a runtime run in a group
/// with limits keeps its containers under them).
/// With --systemd-cgroup, also the unit systemd is to own the group as.
fn relative_path(req: &CgroupRequest<'_>) -> Result<(String, Option<ScopeUnit>), CgroupError> {
    let raw = req
        .cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (path, unit) = if req.systemd {
        if !Path::new("/run/systemd/system").exists() {
            return Err(CgroupError::NoSystemd);
        }
        let (path, unit) = systemd_to_fs(&raw, req.id)?;
        (path, Some(unit))
    } else if raw.is_empty() {
        (req.id.to_string(), None)
    } else {
        (raw.clone(), None)
    };
    if path.split('/').any(|c| c == "..") {
        return Err(CgroupError::Path {
            path: raw,
            reason: "must not contain '..'".into(),
        });
    }
    Ok((path, unit))
}

/// Maps systemd's "slice:prefix:name" to the cgroupfs path systemd gives it,
/// and the unit.
fn systemd_to_fs(raw: &str, id: &str) -> Result<(String, ScopeUnit), CgroupError> {
    let parts: Vec<&str> = if raw.is_empty() {
        vec!["system.slice", "skiff", id]
    } else {
        raw.split(':').collect()
    };
    let [slice, prefix, name] = parts[..] else {
        return Err(CgroupError::Path {
            path: raw.into(),
            reason: "with --systemd-cgroup it must be slice:prefix:name".into(),
        });
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    // "a-b.slice" lives at /a.slice/a-b.slice.
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    let mut path = String::new();
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        path.push('/');
        path.push_str(&acc);
        path.push_str(".slice");
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if name.is_empty() || unit.contains('/') {
        return Err(CgroupError::Path {
            path: raw.into(),
            reason: "the unit name of slice:prefix:name must not be empty or hold '/'".into(),
        });
    }
    Ok((
        format!("{path}/{unit}"),
        ScopeUnit {
            name: unit,
            slice: slice.to_string(),
            user: false,
        },
    ))
}

/// mkdir -p that records what it made. The common case (the parent exists)
/// is one mkdir; the walk up happens only on ENOENT.
fn make_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CgroupError::Create {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path: d, source }),
        }
    }
    Ok(())
}

impl CgroupRecord {
    /// The container's group in the cgroup2 tree (pure v2, or a hybrid host's
    /// unified mount): where a child can be cloned straight into.
    pub fn v2_dir(&self, layout: &Layout) -> Option<&Path> {
        if let Some(recorded) = self.recorded_v2() {
            return recorded;
        }
        match layout {
            Layout::V2 { .. } => self.dirs.first().map(|d| d.as_path()),
            Layout::V1 {
                unified: Some(u), ..
            } => self
                .dirs
                .iter()
                .find(|d| d.starts_with(u))
                .map(|d| d.as_path()),
            Layout::V1 { unified: None, .. } => None,
        }
    }

    /// The cgroup2 group as the record has it (Some(None): the host has
    /// none), or None for an older record that does not say.
    pub fn recorded_v2(&self) -> Option<Option<&Path>> {
        (self.v2.is_some() || self.v2_known).then_some(self.v2.as_deref())
    }

    /// Makes only the group in the cgroup2 tree, if there is one, so that
    /// init can be cloned straight into it before [`make`] does the rest
    /// (which then finds it there). Returns the directories it created, for
    /// the caller to remove should the rest fail; on its own error it
    /// removes them itself.
    pub fn make_v2_dir(&self) -> Result<Vec<PathBuf>, CgroupError> {
        let mut created = Vec::new();
        if let Some(dir) = &self.v2 {
            if let Err(e) = make_dirs(dir, &mut created) {
                for d in created.iter().rev() {
                    let _ = fs::remove_dir(d);
                }
                return Err(e);
            }
        }
        Ok(created)
    }

    /// Moves `pid` into every group of the container.
    pub fn join(&self, pid: Pid) -> Result<(), CgroupError> {
        self.join_except(pid, None)
    }

    /// Moves `pid` into every group of the container but `skip` (the group it
    /// was cloned into).
    pub fn join_except(&self, pid: Pid, skip: Option<&Path>) -> Result<(), CgroupError> {
        let value = pid.as_raw().to_string();
        for dir in self.dirs.iter().filter(|d| Some(d.as_path()) != skip) {
            let path = dir.join("cgroup.procs");
            fs::write(&path, &value).map_err(|source| CgroupError::Join {
                path: dir.clone(),
                pid: pid.as_raw(),
                source,
            })?;
        }
        Ok(())
    }

    /// Moves the calling process into every group of the container but
    /// `skip` (the group it was cloned into). The caller must be
    /// single-threaded. See [`CgroupRecord::join_through`].
    pub fn join_self(&self, skip: Option<&Path>) -> Result<(), CgroupError> {
        let files = self.open_join_files(skip)?;
        self.join_through(skip, &files)
    }

    /// Opens, for every group but `skip` and in the order of `dirs`, the
    /// file through which a process moves itself in: `tasks` on v1,
    /// `cgroup.procs` in a cgroup2 group (which has no `tasks`). Opened by
    /// the runtime while init is busy elsewhere, they spare init the path
    /// walks, which in freshly made groups meet no cached entry (measured
    /// here: nine joins take 40 us through open files, 100 us by path).
    pub fn open_join_files(&self, skip: Option<&Path>) -> Result<Vec<OwnedFd>, CgroupError> {
        let open = |path: PathBuf| {
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map(OwnedFd::from)
                .map_err(|source| (path, source))
        };
        self.dirs
            .iter()
            .filter(|d| Some(d.as_path()) != skip)
            .map(|dir| {
                let opened = if Some(dir.as_path()) == self.v2.as_deref() {
                    open(dir.join("cgroup.procs"))
                } else {
                    match open(dir.join("tasks")) {
                        Err((_, e)) if e.kind() == io::ErrorKind::NotFound => {
                            open(dir.join("cgroup.procs"))
                        }
                        other => other,
                    }
                };
                opened.map_err(|(path, source)| CgroupError::Io { path, source })
            })
            .collect()
    }

    /// Moves the calling thread into every group but `skip`, writing "0" to
    /// `files` from [`CgroupRecord::open_join_files`] with the same `skip`.
    /// The caller must be single-threaded. On v1, "0" to `tasks` moves only
    /// the calling thread, which spares the kernel the write lock on
    /// cgroup_threadgroup_rwsem that writing a pid to `cgroup.procs` takes,
    /// and whose first taking after a quiet spell waits for an RCU grace
    /// period (measured here: 13 ms median for the nine hierarchies of this
    /// host after a 30 ms pause, against 0.6 ms for "0" to `tasks`). In a
    /// cgroup2 group "0" goes to cgroup.procs, which takes the lock, but
    /// init is rarely not cloned into that group.
    pub fn join_through(&self, skip: Option<&Path>, files: &[OwnedFd]) -> Result<(), CgroupError> {
        let dirs: Vec<&PathBuf> = self
            .dirs
            .iter()
            .filter(|d| Some(d.as_path()) != skip)
            .collect();
        let pid = std::process::id() as i32;
        if dirs.len() != files.len() {
            return Err(CgroupError::Join {
                path: dirs.first().map_or_else(PathBuf::new, |d| d.to_path_buf()),
                pid,
                source: io::Error::other(format!(
                    "{} groups, but {} files to join them through",
                    dirs.len(),
                    files.len()
                )),
            });
        }
        for (dir, file) in dirs.into_iter().zip(files) {
            nix::unistd::write(file, b"0").map_err(|e| CgroupError::Join {
                path: dir.clone(),
                pid,
                source: e.into(),
            })?;
        }
        Ok(())
    }

    /// Pids of every process in the container: in its group and in every
    /// group below it (the container may make its own), as runc's `ps` and
    /// `kill --all` see them.
    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        let mut pids = Vec::new();
        collect_pids(&self.procs_dir, &mut pids, 0)?;
        Ok(pids)
    }

    /// Whether the container's processes can be frozen (`pause`).
    pub fn has_freezer(&self) -> bool {
        self.freezer.is_some()
    }

    /// Refuses groups that are frozen already, by their own freezer or a
    /// parent's: a process placed there stops before it can say a word, and
    /// (v1) cannot even be killed until thawed. Both trees are asked on a
    /// hybrid host (a cgroup2 group freezes too).
    pub fn refuse_frozen(&self) -> Result<(), CgroupError> {
        let v1 = |dir: &Path| {
            fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
        };
        let v2 = |dir: &Path| {
            fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
        };
        let frozen = match &self.freezer {
            Some(Freezer::V1(dir)) if v1(dir) => Some(dir),
            Some(Freezer::V2(dir)) if v2(dir) => Some(dir),
            _ => None,
        };
        let frozen = frozen.or_else(|| {
            self.v2
                .as_ref()
                .filter(|d| !matches!(&self.freezer, Some(Freezer::V2(f)) if f == *d) && v2(d))
        });
        match frozen {
            Some(path) => Err(CgroupError::Frozen { path: path.clone() }),
            None => Ok(()),
        }
    }

    /// Whether the container's processes are frozen. A group still on
    /// its way there (v1 reads FREEZING; v2's cgroup.freeze is 1 before
    /// cgroup.events says frozen) is waited for, up to 2 s, as runc's
    /// state does: someone else's freeze (a test's, a tool's) is paused as
    /// soon as it completes, not running for a moment after `pause`-like
    /// writes. A group that never settles reads as not frozen.
    pub fn is_frozen(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.freeze_state() {
                Some(settled) => return settled,
                None if Instant::now() > deadline => return false,
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Some(frozen) once the freezer has settled, None while freezing.
    fn freeze_state(&self) -> Option<bool> {
        let read = |path: PathBuf| fs::read_to_string(path).unwrap_or_default();
        match &self.freezer {
            Some(Freezer::V1(dir)) => match read(dir.join("freezer.state")).trim() {
                "FREEZING" => None,
                state => Some(state == "FROZEN"),
            },
            Some(Freezer::V2(dir)) => {
                if read(dir.join("cgroup.freeze")).trim() != "1" {
                    return Some(false);
                }
                let events = read(dir.join("cgroup.events"));
                events
                    .lines()
                    .any(|l| l.trim() == "frozen 1")
                    .then_some(true)
            }
            None => Some(false),
        }
    }

    /// Applies new limits to a live container's groups (`update`).
    pub fn update(&self, layout: &Layout, res: &LinuxResources) -> Result<(), CgroupError> {
        check(res)?;
        // systemd's view first: what it re-applies later must be the new.
        if let Some(unit) = &self.unit {
            let v2 = matches!(layout, Layout::V2 { .. });
            units::manager()
                .set_resources(unit, res, v2)
                .map_err(|message| CgroupError::Systemd {
                    unit: unit.name.clone(),
                    step: "setting its properties",
                    message,
                })?;
        }
        match layout {
            Layout::V2 { .. } => match self.dirs.first() {
                // Device rules are not changed by update on v2: a second program
                // would only narrow what the first allows.
                Some(dir) => resources::apply_v2(dir, res, false),
                None => Ok(()),
            },
            Layout::V1 {
                hierarchies,
                unified,
            } => {
                let mut hs = Vec::new();
                let mut dirs = Vec::new();
                for h in hierarchies {
                    if let Some(d) = self.dirs.iter().find(|d| d.starts_with(&h.mount)) {
                        hs.push(h.clone());
                        dirs.push(d.clone());
                    }
                }
                let unified_dir = unified
                    .as_ref()
                    .and_then(|u| self.dirs.iter().find(|d| d.starts_with(u)));
                resources::apply_v1(&hs, &dirs, res, true)?;
                extended::apply_v1(&hs, &dirs, unified_dir.map(|d| d.as_path()), res)
            }
        }
    }

    /// Freezes (pause) or thaws (resume) every process of the container.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    /// Thaws the groups when frozen, before a SIGKILL: a frozen (v1)
    /// process dies only once thawed. Best effort, for teardown paths.
    pub fn thaw_if_frozen(&self) {
        // Not waited for: one on its way to frozen is thawed too.
        if self.freeze_state() != Some(false) {
            let _ = self.thaw();
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (path, value) = match &self.freezer {
            Some(Freezer::V1(dir)) => (
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Some(Freezer::V2(dir)) => (dir.join("cgroup.freeze"), if frozen { "1" } else { "0" }),
            None => {
                return Err(CgroupError::ControllerMissing {
                    resource: "freezer",
                    controller: "freezer",
                })
            }
        };
        fs::write(&path, value).map_err(|source| CgroupError::Io {
            path: path.clone(),
            source,
        })?;
        if !frozen {
            return Ok(());
        }
        // Freezing completes asynchronously (a v1 group reads FREEZING until
        // every task has stopped; v2 says so in cgroup.events): `pause`
        // returns once it has, as runc's does, so that `state` says paused.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.freeze_state() == Some(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Io {
                    path,
                    source: io::Error::new(io::ErrorKind::TimedOut, "still freezing after 5 s"),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
            // v1: a task that was busy in the kernel may have been missed;
            // writing FROZEN again retries it (what runc does too).
            if matches!(self.freezer, Some(Freezer::V1(_))) {
                let _ = fs::write(&path, value);
            }
        }
    }

    /// Removes the groups (see [`remove_dirs`]).
    /// This record as `create` writes it down before making the groups:
    /// marked shared when its group holds processes already (another
    /// container's), which a cleanup after a killed create must leave alone.
    pub fn as_planned(&self) -> CgroupRecord {
        let busy = fs::read_to_string(self.procs_dir.join("cgroup.procs"))
            .is_ok_and(|p| !p.trim().is_empty());
        CgroupRecord {
            shared: self.shared || busy,
            ..self.clone()
        }
    }

    /// With a unit, systemd stops it first (which kills what is left in it
    /// and removes its group).
    pub fn remove(&self) -> Result<(), CgroupError> {
        // A scope whose group is gone was stopped and collected by systemd
        // (it does so once the scope is empty): nothing to ask of it. An
        // empty one is given a moment to go (a `run` deletes right after
        // init's exit): cheaper than a stop through the helper.
        let gone = || self.dirs.iter().all(|d| !d.exists());
        let empty = || {
            self.dirs.iter().all(|d| {
                fs::read_to_string(d.join("cgroup.procs")).map_or(true, |p| p.trim().is_empty())
            })
        };
        let collected = |unit: &ScopeUnit| {
            if !unit.name.ends_with(".scope") {
                return false;
            }
            let deadline = Instant::now() + Duration::from_millis(20);
            while !gone() && empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(500));
            }
            gone()
        };
        if let Some(unit) = self.unit.as_ref().filter(|u| !collected(u)) {
            units::manager()
                .stop(unit)
                .map_err(|message| CgroupError::Systemd {
                    unit: unit.name.clone(),
                    step: "stopping",
                    message,
                })?;
        }
        remove_dirs(&self.dirs)
    }

    /// With --systemd-cgroup: systemd starts the scope unit with `pid` in it,
    /// which makes the group; `make` then applies the resources in it as
    /// with cgroupfs (so that what systemd has no property for holds too).
    /// A unit of the caller's own systemd gets its directories here, from
    /// the ControlGroup systemd answers.
    pub fn start_unit(
        &mut self,
        layout: &Layout,
        pid: Pid,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let Some(unit) = &self.unit else {
            return Ok(());
        };
        let failed = |step, message| CgroupError::Systemd {
            unit: unit.name.clone(),
            step,
            message,
        };
        let v2 = matches!(layout, Layout::V2 { .. });
        let group = units::manager()
            .start_scope(unit, pid.as_raw(), resources, v2)
            .map_err(|m| failed("starting", m))?;
        if let (true, Layout::V2 { root }) = (unit.user, layout) {
            let rel = group.trim_start_matches('/');
            if rel.is_empty() || rel.split('/').any(|c| c == "..") {
                return Err(failed("its ControlGroup", format!("{group:?}")));
            }
            let dir = root.join(rel);
            self.dirs = vec![dir.clone()];
            self.procs_dir = dir.clone();
            self.freezer = Some(Freezer::V2(dir.clone()));
            self.v2 = Some(dir);
        }
        Ok(())
    }
}

/// The pids in `dir`'s cgroup.procs and in those of the groups below it. A
/// group below that goes away meanwhile is skipped; `dir` itself (depth 0)
/// must be readable.
fn collect_pids(dir: &Path, pids: &mut Vec<Pid>, depth: usize) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    match fs::read_to_string(&path) {
        Ok(text) => pids.extend(
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .map(Pid::from_raw),
        ),
        Err(e) if depth > 0 && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Io { path, source }),
    }
    if depth < MAX_GROUP_DEPTH {
        for sub in subgroups(dir) {
            collect_pids(&sub, pids, depth + 1)?;
        }
    }
    Ok(())
}

/// The groups right below `dir` (its subdirectories); none when it cannot
/// be read.
fn subgroups(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes cgroup directories, each with the groups the container made
/// below it, deepest first (a group with children is EBUSY), retrying EBUSY
/// for up to 5 s: processes that were just killed may take a moment to
/// leave their group.
pub fn remove_dirs<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in dirs {
        remove_tree(dir, deadline, 0)?;
    }
    Ok(())
}

/// How deep [`remove_tree`] and [`collect_pids`] go: far past what
/// containers make, short of a stack a hostile tree could exhaust.
const MAX_GROUP_DEPTH: usize = 64;

fn remove_tree(dir: &Path, deadline: Instant, depth: usize) -> Result<(), CgroupError> {
    // Groups below are looked for only once the group itself is busy: the
    // listing of a cgroup directory is dozens of files, and the usual
    // group has no children.
    let mut children_gone = false;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && !children_gone => {
                if depth < MAX_GROUP_DEPTH {
                    for sub in subgroups(dir) {
                        remove_tree(&sub, deadline, depth + 1)?;
                    }
                }
                children_gone = true;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A freeze on its way (someone else's write to the freezer) reads as
    /// paused once it completes, not as running meanwhile: CI saw `state`
    /// say running right after a test froze a group whose init was still
    /// busy in the kernel. Both trees' in-between states are waited out.
    #[test]
    fn a_freeze_in_progress_is_waited_out() {
        let dir = std::env::temp_dir().join(format!("skiff-freezing-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let record = |freezer| CgroupRecord {
            dirs: vec![dir.clone()],
            procs_dir: dir.clone(),
            freezer: Some(freezer),
            v2: None,
            v2_known: true,
            shared: false,
            unit: None,
        };
        // Written whole at once (a new file renamed over the old), as the
        // kernel's files read: a truncated file read meanwhile would be
        // neither state (a race in the test, seen under load).
        let settle_later = |file: &'static str, text: &'static str| {
            let path = dir.join(file);
            let next = dir.join(format!("{file}.next"));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                fs::write(&next, text).unwrap();
                fs::rename(&next, path).unwrap();
            })
        };
        fs::write(dir.join("freezer.state"), "FREEZING\n").unwrap();
        let later = settle_later("freezer.state", "FROZEN\n");
        let v1 = record(Freezer::V1(dir.clone()));
        assert!(v1.is_frozen());
        later.join().unwrap();
        fs::write(dir.join("freezer.state"), "THAWED\n").unwrap();
        assert!(!v1.is_frozen());

        fs::write(dir.join("cgroup.freeze"), "1\n").unwrap();
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let later = settle_later("cgroup.events", "populated 1\nfrozen 1\n");
        let v2 = record(Freezer::V2(dir.clone()));
        assert!(v2.is_frozen());
        later.join().unwrap();
        fs::write(dir.join("cgroup.freeze"), "0\n").unwrap();
        assert!(!v2.is_frozen());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Init born into its group (cgroup2's CLONE_INTO_CGROUP) does not make
    /// the group another container's: on a cgroup v2 host every create
    /// warned so, and its container was recorded as sharing the group.
    #[test]
    fn the_containers_own_init_does_not_make_its_group_shared() {
        let dir = std::env::temp_dir().join(format!("skiff-shared-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.procs"), "4242\n").unwrap();
        let own = warn_if_not_empty(&dir, Some(Pid::from_raw(4242)));
        let other = warn_if_not_empty(&dir, Some(Pid::from_raw(7)));
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        let empty = warn_if_not_empty(&dir, None);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!((own, other, empty), (false, true, false));
    }

    #[test]
    fn systemd_paths_expand_slices() {
        assert_eq!(
            systemd_to_fs("machine-a.slice:libpod:abc", "x").unwrap(),
            (
                "/machine.slice/machine-a.slice/libpod-abc.scope".to_string(),
                ScopeUnit {
                    name: "libpod-abc.scope".into(),
                    slice: "machine-a.slice".into(),
                    user: false,
                }
            )
        );
        // Kubernetes' slices, and an empty prefix.
        let (path, unit) = systemd_to_fs("kubepods-burstable-pod1.slice::c9", "x").unwrap();
        assert_eq!(
            path,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/c9.scope"
        );
        assert_eq!(unit.name, "c9.scope");
        assert!(systemd_to_fs("a.slice:p:", "x").is_err());
        assert!(systemd_to_fs("a.slice:p:x/y", "x").is_err());
        assert!(systemd_to_fs("bad", "x").is_err());
    }

    /// A request for container c1 with nothing else set.
    fn request(cgroups_path: Option<&Path>) -> CgroupRequest<'_> {
        CgroupRequest {
            id: "c1",
            cgroups_path,
            systemd: false,
            resources: None,
        }
    }

    #[test]
    fn default_path_is_the_id_below_the_callers_group() {
        assert_eq!(
            relative_path(&request(None)).unwrap(),
            ("c1".to_string(), None)
        );
    }

    #[test]
    fn a_recorded_cgroup2_group_is_trusted_and_older_records_look_it_up() {
        let layout = Layout::V1 {
            hierarchies: vec![Hierarchy {
                mount: "/sys/fs/cgroup/pids".into(),
                controllers: vec!["pids".into()],
            }],
            unified: Some("/sys/fs/cgroup/unified".into()),
        };
        let rec = plan(&layout, &request(None)).unwrap();
        assert_eq!(
            rec.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/c1"))
        );
        // A pure v1 host: no cgroup2 group, and the record says so.
        let v1_only = CgroupRecord {
            v2: None,
            ..rec.clone()
        };
        assert!(v1_only.v2_known);
        assert_eq!(v1_only.v2_dir(&layout), None);
        // A record from before `v2` was kept: found from the layout.
        let mut json = serde_json::to_value(&rec).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("v2");
        obj.remove("v2Known");
        let old: CgroupRecord = serde_json::from_value(json).unwrap();
        assert!(!old.v2_known);
        assert_eq!(
            old.v2_dir(&layout),
            Some(Path::new("/sys/fs/cgroup/unified/c1"))
        );
    }

    #[test]
    fn dotdot_is_refused() {
        let p = PathBuf::from("/a/../../etc");
        assert!(relative_path(&request(Some(&p))).is_err());
    }
}
