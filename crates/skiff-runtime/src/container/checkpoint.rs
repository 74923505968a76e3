//! `checkpoint` and `restore` through CRIU's RPC (`criu swrk`, see rpc.rs),
//! as runc's: the same flags, the same images directory, the same rules for
//! what lies outside the container (bind mounts, cgroup views, stdio, a
//! network namespace joined by path, a terminal's pty master).
//!
//! What crosses the checkpoint besides CRIU's images is written by us to
//! `skiff-checkpoint.json` in the images directory: which mounts were
//! external and how to find them again, and what the container's stdio
//! were (restore hands the caller's stdio in their place, as runc does).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use super::create::{write_pid_file, CreateOptions};
use super::ContainerError;
use crate::cgroups::{self, CgroupRecord, CgroupRequest, Freezer, Layout};
use crate::config::Bundle;
use crate::namespaces::Plan;
use crate::rootfs::resolve;
use crate::state::{now_rfc3339, proc_stat, Record, StateRoot, Status};

mod rpc;

/// Our notes beside CRIU's images.
const NOTES: &str = "skiff-checkpoint.json";
/// The label of a network namespace joined by path (runc's).
const EXTERNAL_NETNS: &str = "extRootNetNS";

/// runc's `--manage-cgroups-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CgroupsMode {
    pub fn parse(text: &str) -> Result<Self, ContainerError> {
        match text {
            "soft" => Ok(Self::Soft),
            "full" => Ok(Self::Full),
            "strict" => Ok(Self::Strict),
            "ignore" => Ok(Self::Ignore),
            other => Err(ContainerError::Checkpoint(format!(
                "--manage-cgroups-mode {other:?}: expected soft, full, strict or ignore"
            ))),
        }
    }

    fn rpc(self) -> rpc::CgMode {
        match self {
            Self::Soft => rpc::CgMode::SOFT,
            Self::Full => rpc::CgMode::FULL,
            Self::Strict => rpc::CgMode::STRICT,
            Self::Ignore => rpc::CgMode::IGNORE,
        }
    }
}

/// What both directions share: CRIU's binary, where its images and its
/// logs go, and the options that must match between dump and restore.
pub struct CriuOptions<'a> {
    /// The criu binary (runc's `--criu`; default: `criu` on PATH).
    pub criu: Option<&'a Path>,
    pub image_path: &'a Path,
    /// Logs and CRIU's scratch files (default: the images directory).
    pub work_path: Option<&'a Path>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub cgroups_mode: Option<CgroupsMode>,
    /// Deduplicate the images against the parent's as pages are restored
    /// or dumped (CRIU's --auto-dedup).
    pub auto_dedup: bool,
    /// Leave the network namespace out: an empty one is made on restore
    /// (runc's --empty-ns network).
    pub empty_network_ns: bool,
}

pub struct CheckpointOptions<'a> {
    pub criu: CriuOptions<'a>,
    pub leave_running: bool,
    /// Dump the memory only, leaving the container running, for a later
    /// dump with `parent_path` (needs soft-dirty tracking in the kernel).
    pub pre_dump: bool,
    /// The images of an earlier pre-dump, relative to `image_path`.
    pub parent_path: Option<&'a Path>,
    /// CRIU's --link-remap and --skip-in-flight.
    pub link_remap: bool,
    pub tcp_skip_in_flight: bool,
}

pub struct RestoreOptions<'a> {
    /// The id, bundle, pid file and the rest, as for create.
    pub create: CreateOptions<'a>,
    pub criu: CriuOptions<'a>,
    /// The LSM profile and mount context of the restored processes.
    pub lsm_profile: Option<&'a str>,
    pub lsm_mount_context: Option<&'a str>,
}

/// A restored container: its record, and (restored in the foreground
/// with a terminal and no console socket) the new pty master, for the
/// caller to relay as `run -t` does.
pub struct Restored {
    pub record: Record,
    pub console_master: Option<OwnedFd>,
}

/// Where the restored pty's new master goes.
enum Console {
    /// Sent over the console socket (--console-socket, the shim's).
    Socket(UnixStream),
    /// Kept for the caller to relay (`restore -t` in the foreground).
    Relay(Option<OwnedFd>),
}

/// A mount CRIU cannot follow from inside the container, saved under its
/// mount point as the key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct External {
    mount_point: String,
    kind: ExternalKind,
    /// The mount's root in its filesystem (mountinfo's fourth field).
    root: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
enum ExternalKind {
    /// A bind mount of the config: restore binds the config's source again.
    Bind,
    /// The container's view of a cgroup hierarchy: restore binds the new
    /// container's group.
    Cgroup,
    /// A device node bound from the host's /dev.
    Device,
    /// A file of linux.maskedPaths, /dev/null bound over it: restore binds
    /// the host's /dev/null, as runc does, not the file the checkpoint's
    /// /dev/null is by then (the container's own /dev may hold anything
    /// there, CVE-2025-31133's class).
    Masked,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notes {
    externals: Vec<External>,
    /// For each of init's fds 0, 1, 2: the key CRIU saved it under when it
    /// lies outside the container (a pipe, a socket, a file of the host's),
    /// which restore maps to the caller's own fd.
    stdio: [Option<String>; 3],
    external_netns: bool,
    /// Whether init's stdio were a pty (process.terminal): its restore
    /// hands the new master to a console socket.
    #[serde(default)]
    terminal: bool,
}

/// Dumps a running container into `image_path`. Without `leave_running`,
/// the container is gone afterwards, as after runc's checkpoint.
pub fn checkpoint(
    root: &StateRoot,
    id: &str,
    opts: &CheckpointOptions<'_>,
) -> Result<(), ContainerError> {
    // 1. A running (or paused: containerd pauses a task around its
    //    checkpoint) container, and its config as it was created.
    let record = root.load(id)?;
    let status = record.status(root);
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(ContainerError::wrong_status(id, status, "checkpoint"));
    }
    let pid = Pid::from_raw(record.pid);
    let spec = Spec::load(record.bundle.join("config.json"))
        .map_err(|e| ContainerError::Checkpoint(format!("reading the bundle's config: {e}")))?;

    // 2. The directories, and what CRIU cannot see from inside.
    let (images, work) = directories(&opts.criu)?;
    let mountinfo = read_mountinfo(pid)?;
    let notes = Notes {
        externals: externals(&spec, &mountinfo),
        stdio: stdio_keys(pid, &mountinfo)?,
        external_netns: joined_by_path(&spec, LinuxNamespaceType::Network).is_some(),
        terminal: record.process.as_ref().and_then(|p| p.terminal()) == Some(true),
    };
    write_notes(&images, &notes)?;

    // 3. The dump.
    let mut rpc_opts = common_opts(&opts.criu, "dump.log");
    let _dirs = Dirs::set(&mut rpc_opts, &images, &work, false)?;
    rpc_opts.set_pid(pid.as_raw());
    rpc_opts.set_root(path_text(&record.rootfs));
    rpc_opts.set_leave_running(opts.leave_running);
    rpc_opts.set_link_remap(opts.link_remap);
    rpc_opts.set_tcp_skip_in_flight(opts.tcp_skip_in_flight);
    // Memory changes are tracked from a pre-dump on, for the dump after it.
    rpc_opts.set_track_mem(opts.pre_dump || opts.parent_path.is_some());
    if let Some(parent) = opts.parent_path {
        rpc_opts.set_parent_img(path_text(parent));
    }
    for e in &notes.externals {
        rpc_opts
            .external
            .push(format!("mnt[{0}]:{0}", e.mount_point));
    }
    // CRIU stops the tasks through the freezer, as runc has it do (and
    // leaves a paused container frozen).
    let freezer = record.cgroup.as_ref().and_then(|cg| cg.freezer.as_ref());
    if let Some(Freezer::V1(dir) | Freezer::V2(dir)) = freezer {
        rpc_opts.set_freeze_cgroup(path_text(dir));
    }
    for key in notes.stdio.iter().flatten() {
        if key.starts_with("file[") {
            rpc_opts.external.push(key.clone());
        }
    }
    if notes.external_netns {
        let inode = fs::metadata(format!("/proc/{pid}/ns/net"))
            .map_err(ContainerError::io("reading init's network namespace"))?
            .ino();
        rpc_opts
            .external
            .push(format!("net[{inode}]:{EXTERNAL_NETNS}"));
    }
    // A terminal's pty slave is unpaired in the container (its master is
    // with whoever got it over the console socket): CRIU saves it as such,
    // and a restore opens a new master for it (runc sets this always).
    rpc_opts.set_orphan_pts_master(true);
    let kind = if opts.pre_dump {
        rpc::ReqType::PRE_DUMP
    } else {
        rpc::ReqType::DUMP
    };
    let nothing = rpc::Spawn {
        join: &[],
        handed: &[],
        bind: None,
    };
    rpc::call(
        criu_binary(&opts.criu),
        kind,
        rpc_opts,
        &work,
        "dump.log",
        nothing,
        &mut |_| Ok(()),
    )?;

    // 4. Dumped and killed: the container goes, as runc's does.
    if !opts.leave_running && !opts.pre_dump {
        super::delete(root, id, true)?;
    }
    Ok(())
}

/// Restores a container from `image_path` under the id and bundle given:
/// its groups made from the config, CRIU run inside them, and the container
/// recorded as running. Returns the record (init is the restored root task,
/// this process's child) and, to relay, the pty master.
pub fn restore(root: &StateRoot, opts: &RestoreOptions<'_>) -> Result<Restored, ContainerError> {
    let create = &opts.create;
    // 1. The bundle and the notes of the checkpoint.
    crate::state::check_id(create.id)?;
    let bundle = Bundle::load(create.bundle)?;
    let spec = &bundle.spec;
    let plan = Plan::from_spec(spec)?;
    refuse_unrestorable(spec)?;
    if !crate::namespaces::host_root() {
        return Err(ContainerError::Checkpoint(
            "restore needs root on the host (CRIU does not run unprivileged)".into(),
        ));
    }
    if create.systemd_cgroup {
        return Err(ContainerError::Checkpoint(
            "restore with --systemd-cgroup is not supported: the container's scope unit \
             would have to be started for CRIU's pid"
                .into(),
        ));
    }
    let (images, work) = directories(&opts.criu)?;
    let notes = read_notes(&images)?;
    let netns = joined_by_path(spec, LinuxNamespaceType::Network);
    if notes.external_netns != netns.is_some() {
        return Err(ContainerError::Checkpoint(
            "the checkpoint and the config disagree on whether the network namespace \
             is joined by path (linux.namespaces)"
                .into(),
        ));
    }
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    if notes.terminal != terminal {
        return Err(ContainerError::Checkpoint(format!(
            "process.terminal is {terminal} in the config, {} in the checkpoint",
            notes.terminal
        )));
    }
    // The console socket, connected before anything is made (as create).
    let mut console = console_target(terminal, create)?;

    // 2. The state directory claims the id; the groups are made and limited.
    let (dir, _anchor) = root.create_dir(create.id)?;
    let mut cleanup = Undo {
        root,
        id: create.id,
        cgroup: None,
    };
    let linux = spec.linux().as_ref();
    let layout = Layout::detect()?;
    let request = CgroupRequest {
        id: create.id,
        cgroups_path: linux.and_then(|l| l.cgroups_path().as_deref()),
        systemd: create.systemd_cgroup,
        resources: linux.and_then(|l| l.resources().as_ref()),
    };
    let mut cgroup = cgroups::plan(&layout, &request)?;
    root.save_planned_cgroups(create.id, &cgroup.as_planned())?;
    cgroup.shared = cgroups::make(&layout, &request, &cgroup, None)?;
    cleanup.cgroup = Some(cgroup.clone());
    cgroup.refuse_frozen()?;

    // 3. CRIU's root: the rootfs, bound (in CRIU's own mount namespace,
    //    see run_criu) where CRIU can mount it, with the config's mount
    //    points in it (CRIU mounts but does not create them).
    make_mount_points(spec, &bundle.dir, &bundle.rootfs)?;
    let criu_root = dir.join("criu-root");
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&criu_root)
        .map_err(ContainerError::io("creating criu-root"))?;

    // 4. The restore, CRIU placed in the groups so that what it restores is.
    let mut rpc_opts = common_opts(&opts.criu, "restore.log");
    let _dirs = Dirs::set(&mut rpc_opts, &images, &work, true)?;
    rpc_opts.set_root(path_text(&criu_root));
    // The restored tasks are this process's children, as create's init is.
    rpc_opts.set_rst_sibling(true);
    rpc_opts.external = restored_mounts(spec, &bundle.dir, &notes, &cgroup)?;
    rpc_opts.cg_root = cgroup_roots(&cgroup, &layout);
    if let Some(p) = opts.lsm_profile {
        rpc_opts.set_lsm_profile(p.into());
    }
    if let Some(c) = opts.lsm_mount_context {
        rpc_opts.set_lsm_mount_context(c.into());
    }
    // The caller's stdio stand in for the container's outside ones, handed
    // to CRIU from fd 3 on (its own stdio go to its log).
    let mut handed: Vec<OwnedFd> = Vec::new();
    let mut seen: Vec<(&str, RawFd)> = Vec::new();
    let mut inherit = |key: &str, fd: RawFd, handed: &mut Vec<OwnedFd>| {
        let mut entry = rpc::InheritFd::new();
        entry.set_key(key.into());
        entry.set_fd(3 + handed.len() as i32);
        rpc_opts.inherit_fd.push(entry);
        handed.push(copy_high(fd)?);
        Ok::<(), ContainerError>(())
    };
    for (fd, key) in notes.stdio.iter().enumerate() {
        let Some(key) = key.as_deref() else { continue };
        // One file behind several of the container's stdio: CRIU opens it
        // once, from the first; the caller must give one file there too.
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            if !same_file(*first, fd as RawFd) {
                return Err(ContainerError::Checkpoint(format!(
                    "stdio: the checkpointed container had fds {first} and {fd} on one file; \
                     give the restore one file for both (CRIU reopens it for each)"
                )));
            }
            continue;
        }
        seen.push((key, fd as RawFd));
        inherit(key, fd as RawFd, &mut handed)?;
    }
    if let Some(path) = netns {
        let file = fs::File::open(path)
            .map_err(|e| ContainerError::Checkpoint(format!("opening {}: {e}", path.display())))?;
        inherit(EXTERNAL_NETNS, file.as_raw_fd(), &mut handed)?;
    }
    // The restored pty slave gets a new master, which goes on to the
    // console socket as create's would.
    rpc_opts.set_orphan_pts_master(console.is_some());
    let join = cgroup.open_join_files(None)?;
    let handed_raw: Vec<RawFd> = handed.iter().map(|f| f.as_raw_fd()).collect();
    let bind = Some((c_path(&bundle.rootfs)?, c_path(&criu_root)?));
    // The container as it will be recorded; its pid is the restored init's.
    let mut record = Record {
        oci_version: crate::state::OCI_VERSION.to_string(),
        id: create.id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: now_rfc3339(),
        annotations: crate::state::annotations_of(spec),
        cgroup: Some(cgroup),
        private_pid_ns: plan.new_pid,
        private_mount_ns: plan.new_mount,
        hooks: spec.hooks().clone(),
        process: spec.process().clone(),
        seccomp: linux.and_then(|l| l.seccomp().clone()),
    };
    let mut master_sent = false;
    let pid = rpc::call(
        criu_binary(&opts.criu),
        rpc::ReqType::RESTORE,
        rpc_opts,
        &work,
        "restore.log",
        rpc::Spawn {
            join: &join,
            handed: &handed_raw,
            bind,
        },
        &mut |notify| match notify.script.as_str() {
            "setup-namespaces" => run_setup_hooks(&record, notify.pid),
            "orphan-pts-master" => hand_over_master(notify, console.as_mut(), &mut master_sent),
            _ => Ok(()),
        },
    )?;
    if console.is_some() && !master_sent {
        return Err(ContainerError::Checkpoint(
            "criu restored no pty for process.terminal, so there is no master to hand over".into(),
        ));
    }

    // 5. The restored init, recorded as a running container.
    if pid <= 0 {
        return Err(ContainerError::Checkpoint(
            "criu answered the restore without the restored task's pid".into(),
        ));
    }
    let _ = fs::remove_dir(&criu_root);
    record.pid = pid;
    record.start_time = proc_stat(Pid::from_raw(pid)).map(|(_, t)| t).unwrap_or(0);
    root.save(&record)?;
    if let Some(path) = create.pid_file {
        write_pid_file(path, Pid::from_raw(pid))?;
    }
    cleanup.cgroup = None;
    cleanup.id = "";
    super::start::poststart(&record);
    let console_master = match console {
        Some(Console::Relay(master)) => master,
        _ => None,
    };
    Ok(Restored {
        record,
        console_master,
    })
}

/// Undoes a half-done restore: kills what is in the groups, removes them
/// and the state directory.
struct Undo<'a> {
    root: &'a StateRoot,
    /// Empty once the restore is done.
    id: &'a str,
    cgroup: Option<CgroupRecord>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        if let Some(cg) = &self.cgroup {
            super::delete::remove_planned(cg);
        }
        let _ = self.root.remove(self.id);
    }
}

/// Creates each mount point of the config in the rootfs, as create would,
/// but those inside a tmpfs mount, whose content CRIU restores whole (as
/// runc has them). Each bind is mounted as it comes, as runc does at
/// restore (its issue 2748): a mount nested in a bind mount has its mount
/// point in the bind's source, where create made it, and where CRIU will
/// look, not in the rootfs's directory underneath. The binds are made in a
/// mount namespace of a child process of our own, which goes with it.
///
/// A process, not a thread: the shim restores from a forked copy of
/// itself, and a thread started there can wait forever on a lock of std's
/// that another thread of the shim held at the fork (seen: a restore
/// through containerd 2.3.4 hung in the new thread's start). The callers
/// are single-threaded, so the fork here is safe.
fn make_mount_points(spec: &Spec, bundle_dir: &Path, rootfs: &Path) -> Result<(), ContainerError> {
    use std::io::{Read, Write};
    let fail =
        |step: &str, e: nix::Error| ContainerError::Checkpoint(format!("mounts: {step}: {e}"));
    let (read_end, write_end) = nix::unistd::pipe().map_err(|e| fail("a pipe", e))?;
    // SAFETY: the callers are single-threaded (skiff-oci, the shim's forked
    // copy), so the child holds no lock another thread owned.
    match unsafe { nix::unistd::fork() }.map_err(|e| fail("fork", e))? {
        nix::unistd::ForkResult::Child => {
            drop(read_end);
            let done = private_mount_namespace()
                .and_then(|()| make_mount_points_here(spec, bundle_dir, rootfs));
            let code = match done {
                Ok(()) => 0,
                Err(e) => {
                    let _ = std::fs::File::from(write_end).write_all(e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: _exit ends the child without running the parent's
            // exit handlers or destructors twice.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write_end);
            let mut message = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut message);
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.map_err(|e| fail("waiting for the child", e))?,
                }
            };
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                _ if !message.is_empty() => Err(ContainerError::Checkpoint(message)),
                other => Err(ContainerError::Checkpoint(format!(
                    "mounts: making the mount points ended {other:?}"
                ))),
            }
        }
    }
}

/// This (child) process in a mount namespace of its own, whose mounts
/// propagate nowhere.
fn private_mount_namespace() -> Result<(), ContainerError> {
    use nix::mount::{mount, MsFlags};
    let fail = |step: &str, e: nix::Error| {
        ContainerError::Checkpoint(format!("mounts: {step} for the mount points: {e}"))
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail("a mount namespace", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| fail("making / private", e))
}

fn make_mount_points_here(
    spec: &Spec,
    bundle_dir: &Path,
    rootfs: &Path,
) -> Result<(), ContainerError> {
    use nix::mount::{mount, MsFlags};
    let mounts: Vec<&oci_spec::runtime::Mount> = spec.mounts().iter().flatten().collect();
    let tmpfs: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().clone())
        .collect();
    // Opened in this namespace, so that walks from it see the binds below.
    let root = fs::File::open(rootfs).map_err(ContainerError::io("opening the rootfs"))?;
    for m in mounts {
        let dest = m.destination();
        if tmpfs.iter().any(|t| dest != t && dest.starts_with(t)) {
            continue;
        }
        let source = m.source().as_ref().map(|s| bundle_dir.join(s));
        let kind = match source.as_deref().map(fs::metadata) {
            Some(Ok(meta)) if is_bind(m) && !meta.is_dir() => resolve::Kind::File,
            _ => resolve::Kind::Dir,
        };
        let point = resolve::ensure_in_root(root.as_fd(), dest, kind).map_err(|e| {
            ContainerError::Checkpoint(format!(
                "mounts: creating the mount point {} in the rootfs: {e}",
                dest.display()
            ))
        })?;
        let Some(source) = source.filter(|_| is_bind(m)) else {
            continue;
        };
        // A source that is not there is CRIU's to report (as at create).
        if !source.exists() {
            continue;
        }
        mount(
            Some(&source),
            &resolve::fd_path(&point),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            ContainerError::Checkpoint(format!(
                "mounts: binding {} onto {} for its nested mount points: {e}",
                source.display(),
                dest.display()
            ))
        })?;
    }
    Ok(())
}

/// createContainer and startContainer run where init sets the container up
/// and starts the program, which a restore skips (runc does not run them
/// either): a config that asks for them is refused rather than
/// half-honoured. prestart and createRuntime run at CRIU's
/// setup-namespaces notify (run_setup_hooks).
fn refuse_unrestorable(spec: &Spec) -> Result<(), ContainerError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    let named = [
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
    ];
    for (name, list) in named {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(ContainerError::Checkpoint(format!(
                "hooks.{name}: restore does not run hooks that set a new container up"
            )));
        }
    }
    Ok(())
}

fn directories(opts: &CriuOptions<'_>) -> Result<(PathBuf, PathBuf), ContainerError> {
    let make = |path: &Path, what: &str| -> Result<PathBuf, ContainerError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .and_then(|()| fs::canonicalize(path))
            .map_err(|e| ContainerError::Checkpoint(format!("{what} {}: {e}", path.display())))
    };
    let images = make(opts.image_path, "--image-path")?;
    let work = match opts.work_path {
        Some(w) => make(w, "--work-path")?,
        None => images.clone(),
    };
    Ok((images, work))
}

/// How CRIU finds the images and work directories. The RPC names them by
/// descriptor, which CRIU opens as /proc/OUR_PID/fd/N: a directory of our
/// mount namespace. A restore's CRIU runs in a mount namespace of its own
/// (Spawn::bind) and mounts its cgroup yard in the work directory, which
/// the kernel refuses in a foreign namespace: there they go by path, the
/// work directory (when not the images one) through CRIU's RPC
/// configuration file, the one way the RPC takes it as a path (and which
/// cannot hold every path).
enum Dirs {
    /// Held open for CRIU until the call returns.
    Open { _images: fs::File, _work: fs::File },
    /// With the configuration file written, removed on drop.
    Paths(Option<PathBuf>),
}

impl Drop for Dirs {
    fn drop(&mut self) {
        if let Self::Paths(Some(conf)) = self {
            let _ = fs::remove_file(conf);
        }
    }
}

impl Dirs {
    fn set(
        o: &mut rpc::Opts,
        images: &Path,
        work: &Path,
        by_path: bool,
    ) -> Result<Self, ContainerError> {
        let open = |path: &Path| {
            fs::File::open(path)
                .map_err(|e| ContainerError::Checkpoint(format!("opening {}: {e}", path.display())))
        };
        if !by_path {
            let (images, work) = (open(images)?, open(work)?);
            o.set_images_dir_fd(images.as_raw_fd());
            o.set_work_dir_fd(work.as_raw_fd());
            return Ok(Self::Open {
                _images: images,
                _work: work,
            });
        }
        o.set_images_dir_fd(-1);
        o.set_images_dir(path_text(images));
        if work != images {
            // CRIU 4.2's parser cuts a value at '#' (a comment) and, quoted
            // or not, refuses one with a space in it.
            let text = path_text(work);
            if text.contains(|c: char| c.is_whitespace() || c == '#' || c == '"') {
                return Err(ContainerError::Checkpoint(format!(
                    "--work-path {text:?}: a restore names it to CRIU in CRIU's configuration \
                     file, which cannot hold whitespace, '#' or '\"' in a path"
                )));
            }
            let conf = work.join("skiff-criu.conf");
            fs::write(&conf, format!("work-dir {text}\n"))
                .map_err(ContainerError::io("writing criu's configuration file"))?;
            o.set_config_file(path_text(&conf));
            return Ok(Self::Paths(Some(conf)));
        }
        Ok(Self::Paths(None))
    }
}

fn criu_binary<'a>(opts: &CriuOptions<'a>) -> &'a Path {
    opts.criu.unwrap_or(Path::new("criu"))
}

/// The options both directions pass alike.
fn common_opts(opts: &CriuOptions<'_>, log: &str) -> rpc::Opts {
    let mut o = rpc::Opts::new();
    o.set_log_file(log.into());
    o.set_log_level(4);
    // Every action comes back as a notify (orphan-pts-master among them).
    o.set_notify_scripts(true);
    // Device numbers of files on the container's mounts may change.
    o.set_evasive_devices(true);
    o.set_manage_cgroups_mode(opts.cgroups_mode.unwrap_or(CgroupsMode::Soft).rpc());
    o.set_tcp_established(opts.tcp_established);
    o.set_ext_unix_sk(opts.ext_unix_sk);
    o.set_shell_job(opts.shell_job);
    o.set_file_locks(opts.file_locks);
    o.set_auto_dedup(opts.auto_dedup);
    if opts.empty_network_ns {
        o.set_empty_ns(libc::CLONE_NEWNET as u32);
    }
    o
}

/// Where a restore hands the new pty master: the console socket, connected
/// from --console-socket's path, or the caller's (the shim's) stream; or,
/// in the foreground without one, the caller itself, to relay.
fn console_target(
    terminal: bool,
    create: &CreateOptions<'_>,
) -> Result<Option<Console>, ContainerError> {
    match (terminal, create.console_stream, create.console_socket) {
        (false, None, None) => Ok(None),
        (false, _, _) => Err(ContainerError::Checkpoint(
            "--console-socket: the container has no terminal (process.terminal is false)".into(),
        )),
        (true, Some(stream), _) => stream
            .try_clone()
            .map(|s| Some(Console::Socket(s)))
            .map_err(ContainerError::io("duplicating the console socket")),
        (true, None, Some(path)) => UnixStream::connect(path)
            .map(|s| Some(Console::Socket(s)))
            .map_err(|source| ContainerError::ConsoleSocket {
                path: path.to_path_buf(),
                source,
            }),
        (true, None, None) if create.relay_terminal => Ok(Some(Console::Relay(None))),
        (true, None, None) => Err(ContainerError::Checkpoint(
            "process.terminal: a detached restore of a container with a terminal needs \
             --console-socket, to hand its new pty master to"
                .into(),
        )),
    }
}

/// CRIU's setup-namespaces notify: the restored init's namespaces are
/// there, nothing runs yet. prestart and createRuntime run here, as runc
/// runs them, with the state of the container being created.
fn run_setup_hooks(record: &Record, pid: i32) -> Result<(), ContainerError> {
    let Some(hooks) = &record.hooks else {
        return Ok(());
    };
    let mut creating = record.clone();
    creating.pid = pid;
    let state = creating.hook_state(Status::Creating);
    for (kind, list) in [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
    ] {
        crate::hooks::run(
            kind,
            list.as_deref().unwrap_or(&[]),
            &state,
            Some(&record.bundle),
        )?;
    }
    Ok(())
}

/// CRIU's orphan-pts-master notify: the pty master it opened for the
/// restored slave, sent on over the console socket as create sends one, or
/// kept to relay.
fn hand_over_master(
    notify: rpc::Notify,
    console: Option<&mut Console>,
    sent: &mut bool,
) -> Result<(), ContainerError> {
    let (Some(master), Some(console)) = (notify.fd, console) else {
        return Err(ContainerError::Checkpoint(
            "criu sent a pty master without a descriptor, or with no console socket to take it"
                .into(),
        ));
    };
    match console {
        Console::Socket(socket) => {
            let name = crate::process::console::slave_name(master.as_fd())
                .map_err(ContainerError::io("reading the restored pty's index"))?;
            crate::process::console::send_master(socket.as_raw_fd(), master.as_raw_fd(), &name)
                .map_err(|e| {
                    ContainerError::Checkpoint(format!(
                        "sending the pty master over --console-socket: {e}"
                    ))
                })?;
        }
        Console::Relay(kept) => *kept = Some(master),
    }
    *sent = true;
    Ok(())
}

fn c_path(path: &Path) -> Result<std::ffi::CString, ContainerError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ContainerError::Checkpoint(format!("{}: a NUL in the path", path.display())))
}

/// Whether two of this process's descriptors are on one file (CRIU
/// reopens the one it is handed for each, with each one's saved flags).
fn same_file(a: RawFd, b: RawFd) -> bool {
    let stat = |fd| {
        // SAFETY: fstat of a descriptor number into our buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    stat(a).is_some() && stat(a) == stat(b)
}

/// A copy of `fd` numbered above the descriptors CRIU is handed (3, 4,
/// ...), taken before the spawn replaces this process's stdio with CRIU's.
fn copy_high(fd: RawFd) -> Result<OwnedFd, ContainerError> {
    // SAFETY: fcntl on a descriptor number; the result is new and ours.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64) };
    if copy < 0 {
        return Err(ContainerError::io("copying a descriptor for criu")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// One line of /proc/PID/mountinfo, the fields used here.
struct MountLine {
    mount_id: u64,
    root: String,
    mount_point: String,
    fs_type: String,
}

fn read_mountinfo(pid: Pid) -> Result<Vec<MountLine>, ContainerError> {
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(ContainerError::io("reading init's mount table"))?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

fn parse_mountinfo_line(line: &str) -> Option<MountLine> {
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-")?;
    Some(MountLine {
        mount_id: fields.first()?.parse().ok()?,
        root: text_of(fields.get(3)?),
        mount_point: text_of(fields.get(4)?),
        fs_type: fields.get(dash + 1)?.to_string(),
    })
}

/// A mountinfo field, unescaped, as text (CRIU takes mount points as text).
fn text_of(field: &str) -> String {
    crate::procfs::unescape_mountinfo(field)
        .to_string_lossy()
        .into_owned()
}

/// The mounts CRIU cannot resolve inside the container: the config's bind
/// mounts, the cgroup views (a group's directory, not a hierarchy's root)
/// and device nodes bound from the host's /dev.
fn externals(spec: &Spec, mountinfo: &[MountLine]) -> Vec<External> {
    let bind_targets: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| is_bind(m))
        .map(|m| clean(&m.destination().to_string_lossy()))
        .collect();
    let masked: Vec<String> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_ref())
        .iter()
        .flat_map(|paths| paths.iter())
        .map(|p| clean(p))
        .collect();
    mountinfo
        .iter()
        .filter_map(|m| {
            // A masked file is /dev/null bound (a mount of a file, not of
            // its filesystem's root); a masked directory is a read-only
            // tmpfs of its own, which CRIU restores.
            let kind = if masked.contains(&m.mount_point) && m.root != "/" {
                ExternalKind::Masked
            } else if bind_targets.contains(&m.mount_point) {
                ExternalKind::Bind
            } else if (m.fs_type == "cgroup" || m.fs_type == "cgroup2") && m.root != "/" {
                ExternalKind::Cgroup
            } else if m.fs_type == "devtmpfs" && m.root != "/" {
                ExternalKind::Device
            } else {
                return None;
            };
            Some(External {
                mount_point: m.mount_point.clone(),
                kind,
                root: m.root.clone(),
            })
        })
        .collect()
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// A destination as mountinfo writes it: absolute, no `.`, `..` or doubled
/// slashes.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The CRIU key of each of init's stdio that lies outside the container.
fn stdio_keys(pid: Pid, mountinfo: &[MountLine]) -> Result<[Option<String>; 3], ContainerError> {
    let mut keys: [Option<String>; 3] = Default::default();
    for (fd, key) in keys.iter_mut().enumerate() {
        let link = match fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
            Ok(l) => l.to_string_lossy().into_owned(),
            Err(_) => continue,
        };
        // CRIU names pipes and sockets as the links do (its manual's
        // `pipe[N]` is not what it looks up).
        *key = if bracketed(&link, "pipe:").is_some() || bracketed(&link, "socket:").is_some() {
            Some(link)
        } else if link.starts_with('/') {
            // A file of a mount the container does not have (the caller's
            // /dev/null, a log file): saved as external, handed back.
            let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .map_err(ContainerError::io("reading init's fdinfo"))?;
            let mnt_id: u64 = info
                .lines()
                .find_map(|l| l.strip_prefix("mnt_id:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if mountinfo.iter().any(|m| m.mount_id == mnt_id) {
                None
            } else {
                let ino = fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                    .map_err(ContainerError::io("reading init's stdio"))?
                    .ino();
                Some(format!("file[{mnt_id:x}:{ino:x}]"))
            }
        } else {
            None
        };
    }
    Ok(keys)
}

/// `N` of `PREFIX[N]`, as /proc/PID/fd links name pipes and sockets.
fn bracketed<'a>(link: &'a str, prefix: &str) -> Option<&'a str> {
    link.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
}

fn joined_by_path(spec: &Spec, kind: LinuxNamespaceType) -> Option<&Path> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == kind)?
        .path()
        .as_deref()
}

/// `mnt[KEY]:SOURCE` (CRIU's --external) for every external mount of the
/// checkpoint, found again in the new container: the config's bind
/// sources, its groups, the host's devices.
fn restored_mounts(
    spec: &Spec,
    bundle_dir: &Path,
    notes: &Notes,
    cgroup: &CgroupRecord,
) -> Result<Vec<String>, ContainerError> {
    let mut externals = Vec::new();
    for e in &notes.externals {
        let source = match e.kind {
            ExternalKind::Bind => {
                let m = spec
                    .mounts()
                    .iter()
                    .flatten()
                    .find(|m| {
                        is_bind(m) && clean(&m.destination().to_string_lossy()) == e.mount_point
                    })
                    .ok_or_else(|| {
                        ContainerError::Checkpoint(format!(
                            "mounts: the checkpoint has a bind mount on {} that the config lacks",
                            e.mount_point
                        ))
                    })?;
                let source = m.source().clone().unwrap_or_default();
                if source.is_absolute() {
                    source
                } else {
                    bundle_dir.join(source)
                }
            }
            ExternalKind::Cgroup => group_for(cgroup, &e.mount_point)
                .unwrap_or_else(|| Path::new(&e.mount_point).join(e.root.trim_start_matches('/'))),
            ExternalKind::Device => Path::new("/dev").join(e.root.trim_start_matches('/')),
            ExternalKind::Masked => host_dev_null()?,
        };
        externals.push(format!("mnt[{}]:{}", e.mount_point, path_text(&source)));
    }
    Ok(externals)
}

/// The host's /dev/null, checked to be the null device (1:3).
fn host_dev_null() -> Result<PathBuf, ContainerError> {
    use std::os::unix::fs::FileTypeExt;
    let path = PathBuf::from("/dev/null");
    let meta = fs::metadata(&path).map_err(ContainerError::io("reading the host's /dev/null"))?;
    if !meta.file_type().is_char_device() || meta.rdev() != libc::makedev(1, 3) {
        return Err(ContainerError::Checkpoint(
            "linux.maskedPaths: the host's /dev/null is not the null device".into(),
        ));
    }
    Ok(path)
}

/// The container's group in the hierarchy the container sees at
/// `mount_point` (mounted there on the host too, as the runtime mirrors
/// the host's layout).
fn group_for(cgroup: &CgroupRecord, mount_point: &str) -> Option<PathBuf> {
    cgroup
        .dirs
        .iter()
        .filter(|d| d.starts_with(mount_point))
        .min_by_key(|d| d.as_os_str().len())
        .cloned()
}

/// CRIU's cgroup roots: the container's groups, which may be named
/// otherwise than the checkpointed ones (another id, another cgroupsPath).
fn cgroup_roots(cgroup: &CgroupRecord, layout: &Layout) -> Vec<rpc::CgroupRoot> {
    let mut roots: Vec<(PathBuf, Option<&str>)> = Vec::new();
    match layout {
        Layout::V2 { root } => roots.push((root.clone(), None)),
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            for h in hierarchies {
                // One of its controllers names the hierarchy to CRIU.
                roots.extend(
                    h.controllers
                        .first()
                        .map(|c| (h.mount.clone(), Some(c.as_str()))),
                );
            }
            roots.extend(unified.iter().map(|u| (u.clone(), None)));
        }
    }
    let mut roots_out = Vec::new();
    for dir in &cgroup.dirs {
        let Some((mount, controller)) = roots.iter().find(|(m, _)| dir.starts_with(m)) else {
            continue;
        };
        let rel = Path::new("/").join(dir.strip_prefix(mount).unwrap_or(dir));
        let mut root = rpc::CgroupRoot::new();
        // cgroup2 has no controller: CRIU's default root.
        if let Some(c) = controller {
            root.set_ctrl(c.to_string());
        }
        root.set_path(path_text(&rel));
        roots_out.push(root);
    }
    roots_out
}

fn write_notes(images: &Path, notes: &Notes) -> Result<(), ContainerError> {
    let text = serde_json::to_vec_pretty(notes).expect("notes serialize");
    crate::state::write_atomic(&images.join(NOTES), &text, 0o600)
        .map_err(ContainerError::io("writing skiff-checkpoint.json"))
}

fn read_notes(images: &Path) -> Result<Notes, ContainerError> {
    let path = images.join(NOTES);
    let text = fs::read(&path).map_err(|e| {
        ContainerError::Checkpoint(format!(
            "--image-path {}: no checkpoint of skiff's there ({}: {e})",
            images.display(),
            NOTES
        ))
    })?;
    serde_json::from_slice(&text)
        .map_err(|e| ContainerError::Checkpoint(format!("{}: {e}", path.display())))
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_read_with_their_escapes() {
        let line = "90 80 0:27 /crt1 /sys/fs/cgroup/my\\040dir rw,nosuid - cgroup2 cgroup2 rw";
        let m = parse_mountinfo_line(line).unwrap();
        assert_eq!(m.mount_id, 90);
        assert_eq!(m.root, "/crt1");
        assert_eq!(m.mount_point, "/sys/fs/cgroup/my dir");
        assert_eq!(m.fs_type, "cgroup2");
        assert!(parse_mountinfo_line("garbage").is_none());
    }

    #[test]
    fn destinations_are_cleaned_as_mountinfo_writes_them() {
        assert_eq!(clean("data/./x//y/../z/"), "/data/x/z");
        assert_eq!(clean("/"), "/");
    }

    #[test]
    fn stdio_links_give_criu_keys() {
        assert_eq!(bracketed("pipe:[1234]", "pipe:"), Some("1234"));
        assert_eq!(bracketed("socket:[9]", "pipe:"), None);
        assert_eq!(bracketed("/dev/null", "pipe:"), None);
    }

    #[test]
    fn cgroups_modes_are_runcs() {
        assert_eq!(CgroupsMode::parse("soft").unwrap(), CgroupsMode::Soft);
        let e = CgroupsMode::parse("hard").unwrap_err().to_string();
        assert!(e.contains("--manage-cgroups-mode"), "{e}");
    }
}
