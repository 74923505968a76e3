//! `create`, the parent's side: everything that happens in the runtime's own
//! namespaces, in order. The child's side is `init.rs`; `sync.rs` draws the
//! handshake between them.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{mkfifo, Pid};

use super::init::{self, InitContext};
use super::placement;
use super::ContainerError;
use crate::cgroups::{self, CgroupRecord, CgroupRequest, Layout};
use crate::config::Bundle;
use crate::namespaces::{self, Plan};
use crate::state::{self, now_rfc3339, proc_stat, Record, StateRoot, Status, EXEC_FIFO};
use crate::sync::{self, SyncSocket};
use crate::{hooks, process, rootfs, sys, trace};

pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    /// An already-connected console socket, in place of `console_socket`'s
    /// path (the containerd shim keeps the other end of a socketpair).
    pub console_stream: Option<&'a UnixStream>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Systemd socket activation: the first `listen_fds` descriptors after
    /// stdio are listening sockets passed on (before the `preserve_fds`
    /// ones), and the program is told so with LISTEN_FDS and LISTEN_PID=1.
    pub listen_fds: u32,
    pub systemd_cgroup: bool,
    /// With process.terminal and no console socket: keep the pty master here
    /// (for `run -t` in the foreground, which relays it itself).
    pub relay_terminal: bool,
    /// `run`: init goes on to the program as soon as it is set up, instead
    /// of parking on an exec fifo until a separate `start` (poststart hooks
    /// then run here, once the container is recorded).
    pub start_now: bool,
}

/// A created container, and the pty master when `relay_terminal` asked for it.
pub struct Created {
    pub record: Record,
    pub console_master: Option<OwnedFd>,
    /// The state directory, held open (see `StateRoot::same_dir`).
    pub dir_anchor: OwnedFd,
}

/// Undoes a half-done create: kills init, removes the groups and the state
/// directory. Disarmed once the container is fully created.
struct Cleanup<'a> {
    root: &'a StateRoot,
    id: &'a str,
    cgroup: Option<CgroupRecord>,
    /// Groups made ahead of the rest (the cgroup2 one init is cloned into),
    /// while `cgroup` is not set yet.
    made: Vec<PathBuf>,
    child: Option<Pid>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            if let Some(cg) = &self.cgroup {
                cg.thaw_if_frozen();
            }
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.remove();
        }
        let _ = cgroups::remove_dirs(self.made.iter().rev());
        let _ = self.root.remove(self.id);
    }
}

pub fn create(root: &StateRoot, opts: &CreateOptions<'_>) -> Result<Created, ContainerError> {
    // 1. The bundle, checked before anything exists on disk.
    state::check_id(opts.id)?;
    let mut bundle = Bundle::load(opts.bundle)?;
    if opts.listen_fds > 0 {
        if let Some(p) = bundle.spec.process_mut() {
            let mut env = p.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={}", opts.listen_fds));
            env.push("LISTEN_PID=1".into());
            p.set_env(Some(env));
        }
    }
    let spec = &bundle.spec;
    let plan = Plan::from_spec(spec)?;
    let process = spec
        .process()
        .as_ref()
        .expect("validated: process is present");
    let terminal = process.terminal() == Some(true);
    let has_console = opts.console_socket.is_some() || opts.console_stream.is_some();
    if terminal && !has_console && !opts.relay_terminal {
        return Err(ContainerError::ConsoleSocketRequired);
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(ContainerError::ConsoleSocketWithoutTerminal);
    }

    // 2. The state directory claims the id; from here on, failures clean up.
    let t = trace::phase("state-dir");
    let (dir, dir_anchor) = root.create_dir(opts.id)?;
    let mut cleanup = Cleanup {
        root,
        id: opts.id,
        cgroup: None,
        made: Vec::new(),
        child: None,
        armed: true,
    };

    drop(t);

    // 3. The exec fifo: init blocks opening it for writing until `start`
    //    reads. Not for `run`, whose init does not wait (its absence is what
    //    makes the state say running).
    let fifo = if opts.start_now {
        None
    } else {
        let _t = trace::phase("exec-fifo");
        Some(exec_fifo(&dir)?)
    };

    // 4. The console socket, connected here where its path is visible (or, to
    //    relay the terminal ourselves, a socketpair whose other end we keep).
    let mut relay_end = None;
    let console = match (terminal, opts.console_stream, opts.console_socket) {
        (false, _, _) => None,
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
        (true, None, None) => {
            let (ours, theirs) = UnixStream::pair()
                .map_err(ContainerError::io("creating the console socketpair"))?;
            relay_end = Some(ours);
            Some(theirs)
        }
    };

    // 5. Cgroups. As root, only their paths are worked out now, and the
    //    cgroup2 group made, which init is cloned straight into; the rest are
    //    made and limited right after the clone, while init creates its
    //    network namespace (the costliest one): two cores do the two at once,
    //    and init waits for CGROUPS_READY before it joins or mounts anything.
    //    Rootless, they are made first, so that a missing delegation can still
    //    mean "no cgroup".
    let linux = spec.linux().as_ref();
    let t = trace::phase("cgroup-layout");
    let layout = Layout::detect()?;
    let request = CgroupRequest {
        id: opts.id,
        cgroups_path: linux.and_then(|l| l.cgroups_path().as_deref()),
        systemd: opts.systemd_cgroup,
        resources: linux.and_then(|l| l.resources().as_ref()),
    };
    // As root (and for a systemd unit, which needs init's pid), the groups
    // are made after the clone, while init sets up.
    let late_cgroups = namespaces::host_root() || opts.systemd_cgroup;
    drop(t);
    // The groups are written down before any is made: a create killed from
    // here on leaves `delete --force` what it needs to remove them.
    let mut cgroup = if late_cgroups {
        let _t = trace::phase("cgroup-plan");
        let record = cgroups::plan(&layout, &request)?;
        root.save_planned_cgroups(opts.id, &record.as_planned())?;
        cleanup.made = record.make_v2_dir()?;
        Some(record)
    } else {
        let _t = trace::phase("cgroup");
        let planned = cgroups::plan(&layout, &request)?;
        root.save_planned_cgroups(opts.id, &planned.as_planned())?;
        let made = cgroups::make(&layout, &request, &planned, None)
            .map(|shared| CgroupRecord { shared, ..planned });
        match made {
            Ok(cg) => Some(cg),
            // Rootless, without a delegated cgroup: run without one, as runc
            // does, unless the config asks for limits that then cannot be
            // enforced.
            Err(cgroups::CgroupError::Create { source, path })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                if request.resources.is_some_and(cgroups::has_limits) {
                    return Err(cgroups::CgroupError::Create { path, source }.into());
                }
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    if !late_cgroups {
        cleanup.cgroup = cgroup.clone();
        if let Some(cg) = &cgroup {
            cg.refuse_frozen()?;
        }
    }

    // 6. Namespaces named by path that init inherits, joined now.
    let (parent_sock, child_sock) =
        sync::pair().map_err(ContainerError::io("creating the sync socket"))?;
    let own_namespaces = namespaces::join_in_parent(&plan)?;

    // The seccomp program: compiled here, or read back from the cache of an
    // earlier start with the same profile.
    let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(cfg) => {
            let _t = trace::phase("seccomp");
            Some(crate::seccomp::program(cfg, Some(&root.dir))?)
        }
        None => None,
    };

    // Idmapped mounts need the host's privileges: made here, attached by init.
    let idmapped = rootfs::idmap::prepare(spec, &bundle.mount_idmaps)?;

    let hooks = spec.hooks().clone().unwrap_or_default();
    let hooks_point = [
        hooks.prestart(),
        hooks.create_runtime(),
        hooks.create_container(),
    ]
    .iter()
    .any(|h| h.as_ref().is_some_and(|v| !v.is_empty()));

    // Init joins its groups itself (cheaper, see CgroupRecord::join_self),
    // unless it is in a new user namespace, whose root has no say over the
    // host's cgroup files, or in a cgroup namespace joined by path, from which
    // an nsdelegate cgroup2 tree refuses moves outside it.
    let init_joins_cgroup = !plan.new_user
        && plan.respawn.is_empty()
        && !plan
            .parent_joins
            .iter()
            .any(|(kind, _)| *kind == oci_spec::runtime::LinuxNamespaceType::Cgroup);

    // 7. The clone: init is born in its new namespaces, but for the network
    //    one when it creates that itself (see 5).
    let cpus = placement::before_clone();
    let t = trace::phase("clone");
    let early_unshare = if late_cgroups {
        plan.clone_flags & nix::sched::CloneFlags::CLONE_NEWNET
    } else {
        nix::sched::CloneFlags::empty()
    };
    // Born in its cgroup2 group where there is one: no migration later.
    let v2_dir = cgroup
        .as_ref()
        .and_then(|cg| cg.v2_dir(&layout))
        .map(Path::to_path_buf);
    let v2_fd = v2_dir.as_ref().and_then(|d| fs::File::open(d).ok());
    let flags = (plan.clone_flags - early_unshare).bits() as u64;
    let mut born_in = v2_fd.as_ref().and(v2_dir);
    let forked = match v2_fd.as_ref() {
        // EBUSY/EINVAL/EOPNOTSUPP (a group that cannot take processes this way,
        // an older kernel): fall back to joining after the clone.
        Some(fd) => sys::clone_fork_into(flags, Some(fd.as_fd())).or_else(|_| {
            born_in = None;
            sys::clone_fork(flags)
        }),
        None => sys::clone_fork(flags),
    };
    let child = match forked.map_err(ContainerError::io("clone3")) {
        // The child keeps the joined namespaces; the runtime goes back to its own.
        Ok(sys::Forked::Parent(pid)) => {
            own_namespaces.restore()?;
            sys::Forked::Parent(pid)
        }
        Ok(child) => child,
        Err(e) => {
            own_namespaces.restore()?;
            return Err(e);
        }
    };
    let child = match child {
        sys::Forked::Child => {
            drop(parent_sock);
            init::run_and_exit(InitContext {
                spec,
                rootfs: &bundle.rootfs,
                bundle: &bundle.dir,
                plan: &plan,
                cgroup: cgroup.as_ref(),
                layout: Some(&layout),
                joins_cgroup: init_joins_cgroup,
                late_cgroups,
                early_unshare,
                born_in: born_in.as_deref(),
                sync: child_sock,
                fifo_fd: fifo.as_ref().map(|f| f.as_raw_fd()),
                console_fd: console.as_ref().map(|c| c.as_raw_fd()),
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.listen_fds + opts.preserve_fds,
                hooks_point,
                id: opts.id,
                idmapped: &idmapped,
                seccomp: seccomp.as_ref(),
            })
        }
        sys::Forked::Parent(pid) => pid,
    };
    cleanup.child = Some(child);
    let child = match plan.respawn.is_empty() {
        true => child,
        false => {
            let init = respawned(&parent_sock, child, &mut cleanup)?;
            cleanup.child = Some(init);
            init
        }
    };
    // Init is queued, waiting for a CPU: onto another one (placement.rs).
    if let Some(set) = &cpus {
        placement::move_child(set, child)
            .map_err(|e| ContainerError::io("giving init every CPU again")(e.into()))?;
    }
    drop(t);
    // process.oomScoreAdj, written here for init (and so for its program), as
    // runc writes it before entering the user namespace: init, root of one
    // and no longer dumpable, may neither open its own /proc files nor lower
    // the value (that takes CAP_SYS_RESOURCE on the host).
    if let Some(adj) = process.oom_score_adj() {
        crate::procfs::write(
            Path::new(&format!("/proc/{child}/oom_score_adj")),
            &adj.to_string(),
        )
        .map_err(process::ProcessError::OomScoreAdj)?;
    }
    if born_in.is_some() {
        // Marks, in a trace, that init needed no migration into cgroup2.
        drop(trace::phase("cloned-into-cgroup2"));
    }
    drop(child_sock);
    drop(console);

    // 8. Id maps, and the cgroups made now (see 5) and (when init does not
    //    join itself) joined; then init may go on.
    //    In a user namespace (Plan::gets_bind_sources), Go brings the bind
    //    sources opened in init's mount namespace (rootfs::open_bind_sources).
    if plan.new_user {
        namespaces::write_id_maps(&plan, child)?;
    }
    let bind_sources = match plan.gets_bind_sources() && plan.new_mount {
        true => rootfs::open_bind_sources(child, spec, &idmapped)?,
        false => Vec::new(),
    };
    // Go's text: the mount index of each descriptor, in order.
    let go_text = bind_sources
        .iter()
        .map(|(index, _)| index.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let go_fds: Vec<RawFd> = bind_sources.iter().map(|(_, f)| f.as_raw_fd()).collect();
    // Whether the late-made groups held processes already (see cgroups::make).
    let mut cgroup_shared = false;
    if let (true, Some(record)) = (late_cgroups, cgroup.as_mut()) {
        // Init waits for Go only for its id maps; without, it is already
        // creating its network namespace.
        if plan.gets_bind_sources() {
            send_go(&parent_sock, &go_text, &go_fds)?;
        }
        let _t = trace::phase("cgroup");
        // systemd makes the group of a scope unit (refusing a name in use);
        // from then on a failure stops the unit.
        record.start_unit(&layout, child, request.resources)?;
        if record.unit.is_some() {
            cleanup.cgroup = Some(record.clone());
        }
        cgroup_shared = cgroups::make(&layout, &request, record, Some(child))?;
        cleanup.cgroup = Some(record.clone());
        cleanup.made.clear();
        // Before init joins the v1 groups; one born into a frozen cgroup2
        // group can still be killed.
        record.refuse_frozen()?;
    }
    if !init_joins_cgroup {
        let _t = trace::phase("cgroup-join");
        if let Some(cg) = &cgroup {
            cg.join_except(child, born_in.as_deref())?;
        }
    }
    match (late_cgroups, &cgroup) {
        // Init joins through files opened here (see open_join_files).
        (true, Some(record)) if init_joins_cgroup => {
            let files = {
                let _t = trace::phase("cgroup-join-files");
                record.open_join_files(born_in.as_deref())?
            };
            let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
            send_with(&parent_sock, sync::CGROUPS_READY, &raw)?;
        }
        (true, _) => send(&parent_sock, sync::CGROUPS_READY)?,
        (false, _) => send_go(&parent_sock, &go_text, &go_fds)?,
    }
    let t = trace::phase("init-setup (parent waits)");

    let mut record = Record {
        oci_version: crate::state::OCI_VERSION.to_string(),
        id: opts.id.to_string(),
        pid: child.as_raw(),
        // Read once init is ready, below.
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: now_rfc3339(),
        annotations: crate::state::annotations_of(spec),
        cgroup: cgroup.clone(),
        private_pid_ns: plan.new_pid,
        private_mount_ns: plan.new_mount,
        hooks: spec.hooks().clone(),
        process: spec.process().clone(),
        seccomp: linux.and_then(|l| l.seccomp().clone()),
    };
    if let Some(cg) = record.cgroup.as_mut() {
        cg.shared |= cgroup_shared;
    }

    // Init alive but never to answer (stopped, frozen) ends a wait too.
    let stuck = || init_stuck(child, cgroup.as_ref());

    // 9. Hooks in the runtime's namespaces, at the point init asks for them.
    if hooks_point {
        if let Err(text) = parent_sock.expect_watching(sync::HOOKS_POINT, &stuck) {
            return Err(init_failed(text, child, &mut cleanup));
        }
        let state = record.hook_state(Status::Creating);
        hooks::run(
            "prestart",
            hooks.prestart().as_deref().unwrap_or(&[]),
            &state,
            Some(&record.bundle),
        )?;
        hooks::run(
            "createRuntime",
            hooks.create_runtime().as_deref().unwrap_or(&[]),
            &state,
            Some(&record.bundle),
        )?;
        send(&parent_sock, sync::HOOKS_DONE)?;
    }

    // 10. Init is parked on the fifo (or, for `run`, on its way to the
    //     program): record the container.
    if let Err(text) = parent_sock.expect_watching(sync::READY, &stuck) {
        if let Some(program) = &seccomp {
            program.forget_if_refused(&text);
        }
        return Err(init_failed(text, child, &mut cleanup));
    }
    drop(parent_sock);
    drop(t);
    let _t = trace::phase("state-write");
    record.start_time = proc_stat(child).map(|(_, t)| t).unwrap_or(0);
    root.save(&record)?;
    if let Some(path) = opts.pid_file {
        write_pid_file(path, child)?;
    }
    let console_master = match &relay_end {
        Some(sock) => Some(
            process::console::receive_master(sock)
                .map_err(ContainerError::io("receiving the pty master"))?,
        ),
        None => None,
    };
    cleanup.armed = false;
    if opts.start_now {
        super::start::poststart(&record);
    }
    Ok(Created {
        record,
        console_master,
        dir_anchor,
    })
}

/// The pid of init, cloned by the first child (`first`) after it joined the
/// user namespace (namespaces::Plan::respawn); the first child is reaped.
fn respawned(
    sock: &SyncSocket,
    first: Pid,
    cleanup: &mut Cleanup<'_>,
) -> Result<Pid, ContainerError> {
    let message = sock
        .recv_watching(&|| init_stuck(first, None))
        .map_err(ContainerError::io("waiting for init's pid"))?;
    let text = match message {
        Some(m) if m.tag == sync::RESPAWNED => m.text,
        Some(m) if m.tag == sync::ERROR => return Err(ContainerError::Init(m.text)),
        Some(m) => {
            return Err(ContainerError::Init(format!(
                "unexpected message {:?} instead of init's pid",
                m.tag as char
            )))
        }
        None => return Err(init_failed(sync::PEER_GONE.into(), first, cleanup)),
    };
    let _ = waitpid(first, None);
    cleanup.child = None;
    text.parse::<i32>()
        .map(Pid::from_raw)
        .map_err(|_| ContainerError::Init(format!("init's pid {text:?} is not a number")))
}

/// What init's failure to reach a sync point says: its error, or, when it
/// ended without a word, how it ended (reaped here, so that the cleanup does
/// not signal a pid that may be reused by then).
fn init_failed(text: String, child: Pid, cleanup: &mut Cleanup<'_>) -> ContainerError {
    if text != sync::PEER_GONE {
        return ContainerError::Init(text);
    }
    cleanup.child = None;
    ContainerError::Init(silent_end(child))
}

/// Why init, alive, will not answer: stopped (SIGSTOP, a debugger) or in a
/// frozen cgroup.
fn init_stuck(child: Pid, cgroup: Option<&cgroups::CgroupRecord>) -> Option<String> {
    if let Some(('T' | 't', _)) = proc_stat(child) {
        return Some("init was stopped (SIGSTOP or a debugger) during setup".into());
    }
    let frozen = cgroup.and_then(|cg| cg.refuse_frozen().err())?;
    Some(format!("during setup: {frozen}"))
}

/// Why init ended during setup without sending an error, from its exit
/// status (init is killed first if it is somehow still there). A seccomp
/// profile can keep it from reporting anything: SIGSYS when it kills, or a
/// fault when it refuses even exit (see sys::exit_now).
fn silent_end(child: Pid) -> String {
    let _ = kill(child, Signal::SIGKILL);
    let how = match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {}", sig.as_str()),
        Ok(other) => format!("ended ({other:?})"),
        Err(e) => format!("could not be waited for ({e})"),
    };
    format!(
        "init {how} during setup without saying why (perhaps its seccomp profile \
         refuses the calls it reports or exits with)"
    )
}

/// Makes the exec fifo in the container's state directory; returns it opened
/// as a path, for init to open for writing.
fn exec_fifo(dir: &Path) -> Result<OwnedFd, ContainerError> {
    let fifo_path = dir.join(EXEC_FIFO);
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .map_err(|e| ContainerError::io("creating exec.fifo")(e.into()))?;
    fs::set_permissions(&fifo_path, fs::Permissions::from_mode(0o622))
        .map_err(ContainerError::io("chmod exec.fifo"))?;
    let fifo = open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| ContainerError::io("opening exec.fifo")(e.into()))?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fifo) })
}

/// Sends `tag` to init; when init is gone, the error it left says why.
fn send(sock: &SyncSocket, tag: u8) -> Result<(), ContainerError> {
    send_with(sock, tag, &[])
}

/// [`send`] with descriptors attached.
fn send_with(sock: &SyncSocket, tag: u8, fds: &[RawFd]) -> Result<(), ContainerError> {
    sent(sock, sock.send_fds(tag, fds))
}

/// Go, with the bind sources and their mount indexes (see open_bind_sources).
fn send_go(sock: &SyncSocket, text: &str, fds: &[RawFd]) -> Result<(), ContainerError> {
    sent(sock, sock.send_text_fds(sync::GO, text, fds))
}

/// A send's failure; when init is gone, the error it left says why (queued
/// already: init may as well be alive and waiting, so no blocking read).
fn sent(sock: &SyncSocket, result: std::io::Result<()>) -> Result<(), ContainerError> {
    result.map_err(|e| match sock.try_recv() {
        Ok(Some(m)) if m.tag == sync::ERROR => ContainerError::Init(m.text),
        _ => ContainerError::io("sync socket")(e),
    })
}

/// Writes the pid file atomically: podman and containerd read it as soon as
/// create returns.
pub(super) fn write_pid_file(path: &Path, pid: Pid) -> Result<(), ContainerError> {
    state::write_atomic(path, pid.as_raw().to_string().as_bytes(), 0o644)
        .map_err(ContainerError::io("writing --pid-file"))
}
