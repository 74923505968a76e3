//! `exec`: a new process inside a running container. The caller joins the
//! container's pid and time namespaces (they apply to its children) and forks;
//! the child joins the rest and the container's cgroup (by itself, or placed
//! there by the caller when it enters a user namespace), becomes the
//! configured process and execs. Its exit code is exec's.
//!
//! ```text
//!   caller                                child
//!   setns pid, time; fork ─────────────────> with a user ns: waits for Go
//!   with a user ns: cgroup join ── Go ────>
//!   without: sleeps (CLONE_VFORK)            without: joins the cgroup itself
//!                                           setns user, ipc, uts, net, cgroup, mnt
//!                                           cwd, tty, rlimits, identity, seccomp
//!   EOF (exec succeeded) <────────────────── execve   (or Error(message))
//! ```

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::{identity, ContainerError};
use crate::cgroups::CgroupRecord;
use crate::process::{self, ProcessError};
use crate::state::{Record, StateRoot, Status};
use crate::sync::{self, SyncSocket};
use crate::{seccomp, sys, trace};

pub struct ExecOptions<'a> {
    pub id: &'a str,
    /// The process to run (built by the caller from --process, or from the
    /// flags on top of the container's own process in its [`Record`]).
    pub process: Process,
    pub console_socket: Option<&'a Path>,
    /// An already-connected console socket, in place of `console_socket`'s path.
    pub console_stream: Option<&'a UnixStream>,
    pub pid_file: Option<&'a Path>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup` (runc's): groups below the container's for the process.
    pub sub_cgroups: &'a [String],
}

/// Namespaces in the order the child joins them: user first (it owns the
/// others), mount last (paths after it are the container's).
const CHILD_NS: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The namespaces of the container's init and our own, as two opened
/// `ns` directories: each kind is then one step from an open directory,
/// not a walk of /proc from the top.
struct NsDirs {
    theirs: OwnedFd,
    ours: OwnedFd,
}

impl NsDirs {
    fn open(init: Pid) -> Result<NsDirs, ContainerError> {
        let dir = |path: &str| {
            open(
                path,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            // SAFETY: `open` returned a new fd that nothing else owns.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .map_err(|e| ContainerError::io("opening the container's namespaces")(e.into()))
        };
        Ok(NsDirs {
            theirs: dir(&format!("/proc/{init}/ns"))?,
            ours: dir("/proc/self/ns")?,
        })
    }

    /// The container's namespace `kind`, opened, if it differs from ours.
    fn differing(&self, kind: &str) -> Result<Option<OwnedFd>, ContainerError> {
        use nix::fcntl::{openat, readlinkat};
        let same = readlinkat(Some(self.theirs.as_raw_fd()), kind).ok()
            == readlinkat(Some(self.ours.as_raw_fd()), kind).ok();
        if same {
            return Ok(None);
        }
        let fd = openat(
            Some(self.theirs.as_raw_fd()),
            kind,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ContainerError::io("opening the container's namespaces")(e.into()))?;
        // SAFETY: `openat` returned a new fd that nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Init's root directory, opened from the host's /proc.
fn open_init_root(init: Pid) -> Result<OwnedFd, ContainerError> {
    let fd = nix::fcntl::open(
        format!("/proc/{init}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening the container's root")(e.into()))?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Starts the process; returns its pid (on the host) once execve has succeeded.
pub fn exec(root: &StateRoot, opts: &ExecOptions<'_>) -> Result<Pid, ContainerError> {
    let record = root.load(opts.id)?;
    exec_in(root, &record, opts)
}

/// [`exec`] into the container `record` describes, loaded by the caller
/// (`skiff-oci exec` builds the process from it first: one read, not two).
pub fn exec_in(
    root: &StateRoot,
    record: &Record,
    opts: &ExecOptions<'_>,
) -> Result<Pid, ContainerError> {
    // 1. The container must be running (or created).
    let t = trace::phase("exec-prepare");
    let status = record.status(root);
    // Into a created container too, as runc allows: its init waits in
    // every namespace and group already.
    let allowed = matches!(status, Status::Running | Status::Created)
        || (status == Status::Paused && opts.ignore_paused);
    if !allowed {
        return Err(ContainerError::wrong_status(opts.id, status, "exec into"));
    }
    let p = &opts.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(ProcessError::Executable {
            name: String::new(),
            reason: "no command given".into(),
        }
        .into());
    }
    crate::config::validate_process(p).map_err(|e| match e {
        crate::config::ConfigError::Invalid { field, reason } => ContainerError::ExecProcess {
            field: field.trim_start_matches("process.").to_string(),
            reason,
        },
        other => other.into(),
    })?;
    process::lsm::check(p, None)?;
    let terminal = p.terminal() == Some(true);
    if terminal && opts.console_socket.is_none() && opts.console_stream.is_none() {
        return Err(ContainerError::ConsoleSocketRequired);
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(ContainerError::ConsoleSocketWithoutTerminal);
    }
    let init = Pid::from_raw(record.pid);
    // The groups the process goes into: the container's, or (--cgroup)
    // some below them.
    let sub_record = match (&record.cgroup, opts.sub_cgroups.is_empty()) {
        (_, true) => None,
        (Some(cg), false) => {
            let subs = crate::cgroups::SubGroups::parse(opts.sub_cgroups)?;
            Some(cg.with_sub_groups(&crate::cgroups::Layout::detect()?, &subs)?)
        }
        (None, false) => {
            return Err(crate::cgroups::CgroupError::SubGroup {
                arg: opts.sub_cgroups.join(" "),
                reason: "the container has no cgroup".into(),
            }
            .into())
        }
    };
    let cgroup = sub_record.as_ref().or(record.cgroup.as_ref());

    // 2. Everything the child needs from the host side, opened now.
    let ns_dirs = NsDirs::open(init)?;
    let mut ns: Vec<(CloneFlags, OwnedFd)> = CHILD_NS
        .iter()
        .map(|(kind, flag)| Ok(ns_dirs.differing(kind)?.map(|fd| (*flag, fd))))
        .collect::<Result<Vec<_>, ContainerError>>()?
        .into_iter()
        .flatten()
        .collect();
    // Init's root is a chroot where it has no mount namespace of its own:
    // the child enters it too, after the namespaces.
    let jail = match record.private_mount_ns {
        true => None,
        false => Some(open_init_root(init)?),
    };
    let console = match (terminal, opts.console_stream, opts.console_socket) {
        (false, _, _) | (true, None, None) => None,
        (true, Some(stream), _) => Some(
            stream
                .try_clone()
                .map_err(ContainerError::io("duplicating the console socket"))?,
        ),
        (true, None, Some(path)) => {
            Some(
                UnixStream::connect(path).map_err(|source| ContainerError::ConsoleSocket {
                    path: path.to_path_buf(),
                    source,
                })?,
            )
        }
    };
    let filter = match &record.seccomp {
        Some(cfg) => Some((
            seccomp::program(cfg, Some(&root.dir))?,
            seccomp::connect_listener(cfg)?,
        )),
        None => None,
    };

    // 3. pid and time namespaces apply to our children: join them, then
    // fork. A caller without privileges over them (rootless: they belong
    // to the container's user namespace) joins that user namespace first,
    // here, and the child is born in it.
    let enters_user = ns.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER);
    let mut time_joined = false;
    for (kind, flag) in [
        ("pid", CloneFlags::CLONE_NEWPID),
        ("time", CloneFlags::from_bits_retain(0x80)),
    ] {
        if let Some(fd) = ns_dirs.differing(kind)? {
            time_joined |= kind == "time";
            let joined = match setns(&fd, flag) {
                Err(nix::errno::Errno::EPERM) => {
                    match ns.iter().position(|(f, _)| *f == CloneFlags::CLONE_NEWUSER) {
                        Some(i) => {
                            let (_, user) = ns.remove(i);
                            setns(&user, CloneFlags::CLONE_NEWUSER).and_then(|()| setns(&fd, flag))
                        }
                        None => Err(nix::errno::Errno::EPERM),
                    }
                }
                r => r,
            };
            joined.map_err(|e| {
                ContainerError::io("joining the container's pid/time namespace")(e.into())
            })?;
        }
    }
    // The host's /proc/PID/ns directories go before the fork: a cwd of
    // /proc/self/fd/N must find nothing of the host's to enter.
    drop(ns_dirs);
    let (parent_sock, child_sock) =
        sync::pair().map_err(ContainerError::io("creating the sync socket"))?;
    // Born in the container's cgroup2 group where there is one (no migration).
    let v2_dir = match cgroup {
        Some(cg) => match cg.recorded_v2() {
            Some(recorded) => recorded,
            // A record from before `v2` was kept: read the mount table.
            None => cg.v2_dir(&crate::cgroups::Layout::detect()?),
        },
        None => None,
    };
    let v2_fd = v2_dir.and_then(|d| fs::File::open(d).ok());
    let mut born_in = v2_fd.as_ref().and(v2_dir);
    drop(t);
    let t = trace::phase("exec-fork");
    // Without a user namespace to enter the child needs nothing more from
    // us: it joins the cgroup itself, and we sleep until it has exec'd or
    // failed, instead of handing it a Go and waking twice. (Entering one, it
    // waits for us to place it in the cgroup, whose files its root there has
    // no say over.) Sleeping anyway, we let it share our memory until it
    // execs (sys::vfork: no copy of it), but into a time namespace, which
    // kernels before 6.0 refuse to a process sharing memory.
    let self_join = !enters_user;
    // Where a child sharing our memory holds no lock of ours (sys::vfork).
    let safe = sys::vfork::SafePoint::new();
    // (Only where sys::vfork can share it: elsewhere its child is a copy,
    // whose safe points we would never see.)
    let shares_memory = self_join && !time_joined && cfg!(target_arch = "x86_64");
    // Asked now, from our own /proc, not first by the child in the container's.
    let _ = crate::namespaces::in_nested_user_ns();
    // The child's PR_SET_DUMPABLE applies to our memory too: put it back after.
    let dumpable = shares_memory && sys::prctl_get(libc::PR_GET_DUMPABLE) == Some(1);
    let inputs = &ChildInputs {
        opts,
        ns: &ns,
        enters_user,
        jail: jail.as_ref().map(|j| j.as_raw_fd()),
        console: console.as_ref().map(|c| c.as_raw_fd()),
        filter: &filter,
        sock: &child_sock,
        record,
    };
    let child = if shares_memory {
        let safe = &safe;
        // Where the child is born: None once cloning into the group failed.
        let born = std::cell::Cell::new(born_in);
        let born_ref = &born;
        let child = move || -> std::convert::Infallible {
            let placement = Placement::Itself(cgroup.map(|cg| (cg, born_ref.get())));
            let err = match child_side(inputs, placement, Some(safe)) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = inputs.sock.send(sync::ERROR, &err.to_string());
            safe.mark(true);
            // Ends the child at once, as sys::vfork requires (no atexit
            // work, no flush of the caller's stdio buffers).
            sys::exit_now(1)
        };
        // SAFETY: the closure keeps sys::vfork's rules: child_side returns
        // only with an error (execve replaced it otherwise), after which it
        // sends it and ends (sys::exit_now); it starts no thread, and captures references
        // only. We are single-threaded (skiff-oci) or a forked copy (the shim).
        let spawned = unsafe {
            match v2_fd.as_ref() {
                Some(fd) => sys::vfork::spawn(Some(fd.as_fd()), child).or_else(|_| {
                    born.set(None);
                    sys::vfork::spawn(None, child)
                }),
                None => sys::vfork::spawn(None, child),
            }
        };
        if spawned.is_ok() {
            safe.check(
                "skiff: exec's child ended before its execve without saying why \
                 (killed?), perhaps holding a lock of this process: ending here\n",
            );
        }
        if dumpable {
            let _ = sys::prctl(libc::PR_SET_DUMPABLE, 1, 0);
        }
        born_in = born.get();
        spawned.map_err(ContainerError::io("clone3 (exec's child)"))?
    } else {
        // With CLONE_VFORK (joining itself), we sleep until it has exec'd.
        let flags = if self_join {
            libc::CLONE_VFORK as u64
        } else {
            0
        };
        let forked = match v2_fd.as_ref() {
            Some(fd) => sys::clone_fork_into(flags, Some(fd.as_fd())).or_else(|_| {
                born_in = None;
                sys::clone_fork(flags)
            }),
            None => sys::clone_fork(flags),
        };
        match forked.map_err(ContainerError::io("fork"))? {
            sys::Forked::Child => {
                drop(parent_sock);
                let placement = match self_join {
                    true => Placement::Itself(cgroup.map(|cg| (cg, born_in))),
                    false => Placement::ByCaller,
                };
                let err = match child_side(inputs, placement, None) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                // A caller that is gone has already failed and said why.
                let _ = child_sock.send(sync::ERROR, &err.to_string());
                sys::exit_now(1)
            }
            sys::Forked::Parent(pid) => pid,
        }
    };
    drop(child_sock);
    drop(console);
    drop(t);
    let _t = trace::phase("exec-child-setup (caller waits)");

    // 4. Into the container's cgroup, then the child may go on. Without a
    //    user namespace to enter, the child joins by itself (cheaper, see
    //    CgroupRecord::join_self).
    let started = (|| {
        if !self_join {
            if let Some(cg) = cgroup {
                cg.join_except(child, born_in)?;
            }
            parent_sock
                .send(sync::GO, "")
                .map_err(ContainerError::io("sync socket"))?;
        }
        // With CLONE_VFORK we run again once the child has exec'd or exited,
        // and a child that failed said why before it exited: what is queued
        // now is all there will be. Otherwise its exec closes the socket.
        let answer = if self_join {
            parent_sock.try_recv()
        } else {
            parent_sock.recv()
        };
        match answer.map_err(ContainerError::io("sync socket"))? {
            None => Ok(()),
            Some(m) => {
                if let Some((program, _)) = &filter {
                    program.forget_if_refused(&m.text);
                }
                Err(ContainerError::Init(m.text))
            }
        }
    })();
    if let Err(e) = started {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(e);
    }
    if let Some(path) = opts.pid_file {
        super::create::write_pid_file(path, child)?;
    }
    Ok(child)
}

/// How exec's child gets into the container's cgroup.
enum Placement<'a> {
    /// The caller places it, then sends Go (it enters a user namespace,
    /// whose root has no say over the host's cgroup files).
    ByCaller,
    /// It joins the groups itself (if any), but the one it was cloned into.
    Itself(Option<(&'a CgroupRecord, Option<&'a Path>)>),
}

/// What exec's child works from, made ready by the caller.
struct ChildInputs<'a> {
    opts: &'a ExecOptions<'a>,
    ns: &'a [(CloneFlags, OwnedFd)],
    /// Whether the process enters the container's user namespace (the
    /// child, or already its parent: then it is not in `ns`).
    enters_user: bool,
    /// Init's root, to chroot into (a container without a private mount
    /// namespace).
    jail: Option<RawFd>,
    console: Option<RawFd>,
    filter: &'a Option<(seccomp::Program, Option<UnixStream>)>,
    sock: &'a SyncSocket,
    record: &'a Record,
}

fn child_side(
    inputs: &ChildInputs<'_>,
    placement: Placement<'_>,
    safe: Option<&sys::vfork::SafePoint>,
) -> Result<std::convert::Infallible, ContainerError> {
    let ChildInputs {
        opts,
        ns,
        enters_user,
        jail,
        console,
        filter,
        sock,
        record,
    } = *inputs;
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map_err(ContainerError::io("PR_SET_DUMPABLE"))?;
    // The container's process.oomScoreAdj, as runc gives exec'd processes
    // (not the caller's, a shim's often near -1000): written while /proc
    // is the host's and this process may.
    if let Some(adj) = record.process.as_ref().and_then(|p| p.oom_score_adj()) {
        let mut buf = [0u8; 24];
        crate::procfs::write(
            std::path::Path::new("/proc/self/oom_score_adj"),
            sys::decimal(adj.into(), &mut buf),
        )
        .map_err(ProcessError::OomScoreAdj)?;
    }
    let affinity = opts.process.exec_cpu_affinity().as_ref();
    if let Some(a) = affinity {
        process::kernel::set_initial_affinity(a)?;
    }
    let t = trace::exec_phase("cgroup-join");
    match placement {
        Placement::ByCaller => sock.expect(sync::GO).map_err(ContainerError::Init)?,
        Placement::Itself(Some((cg, born_in))) => cg.join_self(born_in)?,
        Placement::Itself(None) => {}
    }
    drop(t);
    // Our pid on the host, for the notify agent: asked while /proc is still
    // the caller's.
    let host_pid = match filter.as_ref().is_some_and(|(_, l)| l.is_some()) {
        true => sys::host_pid().map_err(ContainerError::io("reading our pid on the host"))?,
        false => 0,
    };
    // Asked of the host's /proc (init's file), not the container's.
    let setgroups =
        identity::may_setgroups(enters_user, &format!("/proc/{}/setgroups", record.pid));
    let t = trace::exec_phase("namespaces");
    join_namespaces(ns)?;
    if let Some(root) = jail {
        nix::unistd::fchdir(root)
            .and_then(|()| nix::unistd::chroot("."))
            .map_err(|e| ContainerError::io("entering the container's root (chroot)")(e.into()))?;
    }
    drop(t);
    let t = trace::exec_phase("process");
    let p = &opts.process;
    nix::unistd::chdir(p.cwd().as_path()).map_err(|e| ProcessError::Cwd {
        path: p.cwd().clone(),
        source: e.into(),
    })?;
    if !sys::cwd_is_inside_root() {
        return Err(ProcessError::CwdOutside {
            path: p.cwd().clone(),
        }
        .into());
    }
    match console {
        Some(fd) => {
            let size = p
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            process::console::setup(fd, size, false)?;
        }
        None => {
            let _ = nix::unistd::setsid();
        }
    }
    if let Some(limits) = p.rlimits() {
        process::rlimits::apply(limits)?;
    }
    if let Some(a) = affinity {
        process::kernel::set_final_affinity(a)?;
    }
    process::kernel::apply(p, None)?;
    let (program, env) = identity::program(p)?;
    let state = serde_json::json!({
        "ociVersion": record.oci_version, "id": record.id, "status": "running",
        "pid": record.pid, "bundle": record.bundle,
    });
    let f = filter
        .as_ref()
        .zip(record.seccomp.as_ref())
        .map(|((f, l), cfg)| identity::Filter {
            filter: f,
            cfg,
            listener: l.as_ref(),
            state,
            host_pid,
        });
    let f = identity::assume(p, f, setgroups, opts.preserve_fds)?;
    sys::reset_signals();
    let exec = process::exec::prepare(&program, p.args().as_deref().unwrap_or(&[]), &env);
    identity::load_last(f)?;
    drop(t);
    if let Some(safe) = safe {
        safe.mark(true);
    }
    let err = exec.exec();
    if let Some(safe) = safe {
        safe.mark(false);
    }
    Err(err.into())
}

/// Joins `ns`. The others before the user namespace, while we have our
/// privileges: one the container's user namespace does not own (a
/// network namespace CNI made in the host's, joined by path) can only be
/// joined so. One refused then (EPERM: owned by a user namespace only the
/// container's gives us rights in, as for rootless) is joined after it.
/// runc 1.2 does the same; runc 1.1 joins the user namespace first and
/// cannot exec into such a container.
fn join_namespaces(ns: &[(CloneFlags, OwnedFd)]) -> Result<(), ContainerError> {
    let failed =
        |e: nix::errno::Errno| ContainerError::io("joining the container's namespaces")(e.into());
    let is_user = |f: &CloneFlags| *f == CloneFlags::CLONE_NEWUSER;
    let user = ns.iter().find(|(f, _)| is_user(f));
    // Those to join after the user namespace, by index (no allocation:
    // this runs in exec's child, which may share the caller's memory).
    let mut later = 0u64;
    for (i, (flag, fd)) in ns.iter().enumerate().filter(|(_, (f, _))| !is_user(f)) {
        match setns(fd, *flag) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) if user.is_some() && i < 64 => later |= 1 << i,
            Err(e) => return Err(failed(e)),
        }
    }
    if let Some((flag, fd)) = user {
        setns(fd, *flag).map_err(failed)?;
    }
    for (i, (flag, fd)) in ns.iter().enumerate() {
        if i < 64 && later & (1 << i) != 0 {
            setns(fd, *flag).map_err(failed)?;
        }
    }
    Ok(())
}
