//! Init, the child's side of `create`: from the clone to execve, in order.
//! It runs in the container's new namespaces and reports the first error over
//! the sync socket before exiting; after `Ready` it can only exit.

use std::convert::Infallible;
use std::os::fd::{FromRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sched::CloneFlags;
use nix::unistd::{sethostname, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::Spec;

use super::{identity, ContainerError};
use crate::cgroups::{CgroupRecord, Layout};
use crate::namespaces::{self, Plan};
use crate::process::{self, ProcessError};
use crate::rootfs::{self, RootfsContext};
use crate::state::Status;
use crate::sync::{self, SyncSocket};
use crate::{hooks, procfs, seccomp, sys, trace};

pub struct InitContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub plan: &'a Plan,
    pub cgroup: Option<&'a CgroupRecord>,
    pub layout: Option<&'a Layout>,
    /// Whether init moves itself into `cgroup` (else the parent did).
    pub joins_cgroup: bool,
    /// Whether the parent makes the cgroups after the clone and says when
    /// with CGROUPS_READY (see create.rs).
    pub late_cgroups: bool,
    /// New namespaces init creates itself while the parent makes the
    /// cgroups (the network one), instead of in the clone.
    pub early_unshare: nix::sched::CloneFlags,
    /// The cgroup2 group init was cloned into, which it need not join.
    pub born_in: Option<&'a Path>,
    pub sync: SyncSocket,
    /// The exec fifo to park on until `start`; None: go straight on (`run`).
    pub fifo_fd: Option<RawFd>,
    pub console_fd: Option<RawFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub hooks_point: bool,
    pub id: &'a str,
    pub idmapped: &'a [Option<std::os::fd::OwnedFd>],
    /// linux.seccomp, compiled.
    pub seccomp: Option<&'a seccomp::Program>,
}

/// Whether init has told the parent it is ready (after that, errors go to stderr).
static READY_SENT: AtomicBool = AtomicBool::new(false);

/// Runs init; never returns.
pub fn run_and_exit(ctx: InitContext<'_>) -> ! {
    let err = match run(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the parent reads the socket (one that is gone has failed
    // and said why itself). After Ready nobody does, not even a `run` that
    // still holds it: then stderr is all there is.
    if READY_SENT.load(Ordering::Relaxed) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skiff init: {err}");
    } else {
        let _ = ctx.sync.send(sync::ERROR, &err.to_string());
    }
    sys::exit_now(1)
}

fn run(ctx: &InitContext<'_>) -> Result<Infallible, ContainerError> {
    // 0. With a user namespace joined by path and a new pid namespace: join
    //    it, clone init in the new namespaces, tell the parent its pid, end.
    if !ctx.plan.respawn.is_empty() {
        if let Some(init) = namespaces::respawn(ctx.plan)? {
            let _ = ctx.sync.send(sync::RESPAWNED, &init.to_string());
            sys::exit_now(0);
        }
    }
    let spec = ctx.spec;
    let process = spec
        .process()
        .as_ref()
        .expect("validated: process is present");
    let linux = spec.linux().as_ref();

    // 1. Wait until the parent has written the id maps (Go; without a user
    //    namespace, a root parent sends none); create the network namespace
    //    while it makes the cgroups; wait until it has (and, where we could
    //    not, placed us in them: see create.rs), else join them ourselves.
    // In a user namespace (Plan::gets_bind_sources), Go brings the sources of
    // bind mounts, opened by the parent (rootfs::open_bind_sources), and
    // their mount indexes.
    let mut bind_sources: Vec<Option<std::os::fd::OwnedFd>> = Vec::new();
    if !ctx.late_cgroups || ctx.plan.gets_bind_sources() {
        let (text, fds) = ctx
            .sync
            .expect_text_fds(sync::GO)
            .map_err(ContainerError::Init)?;
        bind_sources.resize_with(spec.mounts().as_ref().map_or(0, Vec::len), || None);
        let indexes = text.split(',').filter_map(|i| i.parse::<usize>().ok());
        for (index, fd) in indexes.zip(fds) {
            if let Some(slot) = bind_sources.get_mut(index) {
                *slot = Some(fd);
            }
        }
    }
    let early_net = ctx.early_unshare.contains(CloneFlags::CLONE_NEWNET);
    if !ctx.early_unshare.is_empty() {
        let _t = trace::init_phase("network");
        namespaces::unshare_flags(ctx.early_unshare)?;
        if early_net {
            namespaces::loopback_up()?;
        }
    }
    // With late cgroups, the files to join through come with CgroupsReady.
    let join_files = if ctx.late_cgroups {
        Some(
            ctx.sync
                .expect_fds(sync::CGROUPS_READY)
                .map_err(ContainerError::Init)?,
        )
    } else {
        None
    };
    if let (true, Some(cg)) = (ctx.joins_cgroup, ctx.cgroup) {
        let _t = trace::init_phase("cgroup-join");
        match &join_files {
            Some(files) => cg.join_through(ctx.born_in, files)?,
            None => cg.join_self(ctx.born_in)?,
        }
    }
    drop(join_files);

    // Not dumpable from here on: no process of the container may open our
    // /proc/PID/exe, the host's skiff-oci (CVE-2019-5736); execve makes the
    // program dumpable again. Not before the id maps are written: a
    // non-dumpable process's /proc files belong to root, and a rootless
    // parent could no longer write them.
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map_err(ContainerError::io("PR_SET_DUMPABLE"))?;

    let t = trace::init_phase("namespaces");
    // 2. Namespaces: join by path, become root of a new user namespace, create
    //    the late ones (cgroup now sees our group as its root).
    namespaces::join_in_child(ctx.plan)?;
    // Root of the user namespace, new or joined (until now our ids were the
    // host's, which it may not map: files made with them fail, EOVERFLOW).
    if ctx.plan.new_user || ctx.plan.joins_user() {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(|e| {
            ProcessError::User {
                step: "becoming root in the user namespace",
                source: e.into(),
            }
        })?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(|e| {
            ProcessError::User {
                step: "becoming root in the user namespace",
                source: e.into(),
            }
        })?;
    }
    namespaces::unshare_late(ctx.plan)?;
    // Made in the clone or just now: with every namespace in place, and as
    // root of a new user namespace, which owns it.
    if ctx.plan.new_net && !early_net {
        namespaces::loopback_up()?;
    }
    if let Some(offsets) = linux
        .and_then(|l| l.time_offsets().as_ref())
        .filter(|o| !o.is_empty())
    {
        write_time_offsets(offsets, ctx.plan.new_user)?;
    }

    // The seccomp notify agent is connected while the host's paths are still
    // visible; the filter (compiled by the parent) is loaded last.
    let seccomp_cfg = linux.and_then(|l| l.seccomp().as_ref());
    let seccomp = match ctx.seccomp.zip(seccomp_cfg) {
        Some((program, cfg)) => Some((program, seccomp::connect_listener(cfg)?)),
        None => None,
    };
    // Our pid on the host, for the notify agent: asked of the host's /proc
    // while it is still ours to see.
    let host_pid = match seccomp.as_ref().is_some_and(|(_, l)| l.is_some()) {
        true => sys::host_pid().map_err(ContainerError::io("reading our pid on the host"))?,
        false => 0,
    };

    // Asked of the host's /proc, before it is replaced by the container's.
    // (A joined user namespace's own setting counts too: one with setgroups
    // denied refuses the call, whatever the groups.)
    let setgroups = identity::may_setgroups(
        ctx.plan.new_user || ctx.plan.joins_user(),
        "/proc/self/setgroups",
    );

    drop(t);
    // 3. The root filesystem, up to pivot_root.
    if ctx.plan.new_mount {
        rootfs::prepare(&RootfsContext {
            spec,
            rootfs: ctx.rootfs,
            // A new one, one joined, or the one we run in (rootless podman's).
            in_user_ns: ctx.plan.new_user
                || ctx.plan.joins_user()
                || namespaces::in_nested_user_ns(),
            new_cgroup_ns: ctx.plan.new_cgroup,
            cgroup: ctx.cgroup,
            layout: ctx.layout,
            idmapped: ctx.idmapped,
            bind_sources: &bind_sources,
        })?;
    }
    drop(bind_sources);

    // 4. Hooks: the runtime's (in the parent), then createContainer (here, in the
    //    container's mount namespace, before pivot_root).
    if ctx.hooks_point {
        ctx.sync
            .send(sync::HOOKS_POINT, "")
            .map_err(ContainerError::io("sync socket"))?;
        ctx.sync
            .expect(sync::HOOKS_DONE)
            .map_err(ContainerError::Init)?;
        if let Some(list) = spec
            .hooks()
            .as_ref()
            .and_then(|h| h.create_container().as_ref())
        {
            hooks::run(
                "createContainer",
                list,
                &hook_state(ctx, Status::Creating),
                Some(ctx.rootfs),
            )?;
        }
    }

    // 5. Switch root.
    let t = trace::init_phase("pivot");
    // Without a mount namespace of its own no procfs is mounted in the
    // rootfs: the exec fifo is reopened through the host's, opened now.
    let mut fifo_dir = None;
    if ctx.plan.new_mount {
        rootfs::pivot(ctx.rootfs, ctx.no_pivot, rootfs::propagation(spec))?;
    } else {
        if ctx.fifo_fd.is_some() {
            fifo_dir = Some(open_fd_dir()?);
        }
        rootfs::chroot_into(ctx.rootfs, process.cwd())?;
    }

    drop(t);
    // 6. Names and kernel parameters of the container's namespaces, written
    //    before /proc/sys turns read-only.
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sethostname(h).map_err(|e| ContainerError::io("hostname: sethostname")(e.into()))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys::set_domainname(d).map_err(ContainerError::io("domainname: setdomainname"))?;
    }
    for (key, value) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        procfs::write(&crate::sysctl::path(key), value).map_err(|source| ContainerError::Io {
            step: "linux.sysctl",
            source: std::io::Error::new(source.kind(), format!("{key}: {source}")),
        })?;
    }

    // 7. Masked and read-only paths, read-only root: from inside the new root.
    let t = trace::init_phase("masked+readonly");
    if ctx.plan.new_mount {
        rootfs::finish(spec)?;
    }

    drop(t);
    // 8. The terminal, if any, becomes stdio and controlling tty.
    if let Some(fd) = ctx.console_fd {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        process::console::setup(fd, size, ctx.plan.new_mount)?;
    } else {
        // A session of its own, as runc gives init, so that job control signals
        // from the caller's terminal do not reach the container.
        let _ = nix::unistd::setsid();
    }

    // 9. Process attributes that need privileges we are about to drop.
    let cwd = process.cwd();
    nix::unistd::chdir(cwd.as_path()).map_err(|e| ProcessError::Cwd {
        path: cwd.clone(),
        source: e.into(),
    })?;
    if !crate::sys::cwd_is_inside_root() {
        return Err(ProcessError::CwdOutside { path: cwd.clone() }.into());
    }
    if let Some(limits) = process.rlimits() {
        process::rlimits::apply(limits)?;
    }
    process::kernel::apply(process, linux)?;
    if !ctx.no_new_keyring {
        // ENOSYS/EACCES (keyrings off, or a restrictive host policy) is not fatal.
        let _ = sys::join_session_keyring(&format!("_ses.{}", ctx.id));
    }

    // 10. The program, found now so that a missing one fails `create`.
    let (program, env) = identity::program(process)?;

    // A created container's init ends on SIGTERM, SIGINT, SIGHUP and
    // SIGQUIT, as runc's does, so that `kill` (TERM by default) of one
    // that was never started stops it. Set before the seccomp filter,
    // which may refuse rt_sigaction.
    if ctx.fifo_fd.is_some() {
        use nix::sys::signal::Signal;
        sys::exit_on_signals(&[
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ]);
    }

    let t = trace::init_phase("identity+seccomp");
    // 11. Identity: capabilities, user, no_new_privs, seccomp; then no fd of
    //     the runtime may reach the container (CVE-2024-21626).
    let filter = seccomp
        .as_ref()
        .zip(seccomp_cfg)
        .map(|((f, l), cfg)| identity::Filter {
            filter: f,
            cfg,
            listener: l.as_ref(),
            state: listener_state(ctx, host_pid),
            host_pid,
        });
    // The runtime's pages are dropped right before the fifo wait, or, when
    // the seccomp filter might refuse madvise or brk, before it loads.
    let release_late = seccomp_cfg.is_none_or(|cfg| {
        seccomp::plainly_allows(cfg, "madvise") && seccomp::plainly_allows(cfg, "brk")
    });
    if !release_late && ctx.fifo_fd.is_some() {
        sys::release_idle_pages();
    }
    // Without process.user.umask the program starts with 0022, whatever
    // the caller's was, as runc's and crun's do (exec's keeps its caller's,
    // as with them).
    if process.user().umask().is_none() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    }
    let filter = identity::assume(process, filter, setgroups, ctx.preserve_fds)?;

    drop(t);
    // 12. Ready: the parent records the container; we park on the exec fifo
    //     (unless started at once: then the idle pages go with execve).
    ctx.sync
        .send(sync::READY, "")
        .map_err(ContainerError::io("sync socket"))?;
    READY_SENT.store(true, Ordering::Relaxed);
    if let Some(fifo_fd) = ctx.fifo_fd {
        park(fifo_fd, release_late, fifo_dir.take())?;
    }

    // 13. Started: startContainer hooks, then the program.
    if let Some(list) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        hooks::run(
            "startContainer",
            list,
            &hook_state(ctx, Status::Created),
            None,
        )?;
    }
    sys::reset_signals();
    let args = process.args().as_deref().unwrap_or(&[]);
    let exec = process::exec::prepare(&program, args, &env);
    identity::load_last(filter)?;
    Err(exec.exec().into())
}

/// This process's /proc/self/fd, as a directory to open fds through.
fn open_fd_dir() -> Result<std::os::fd::OwnedFd, ContainerError> {
    let fd = nix::fcntl::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ContainerError::io("exec.fifo: opening /proc/self/fd")(e.into()))?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Waits on the exec fifo until `start` opens it for reading, having dropped
/// what a parked init need not keep in memory. The fifo is reopened through
/// /proc/self/fd (`fd_dir`, or the container's /proc), and what opened must
/// be the fifo itself: a file the image put at /proc/self/fd/N would
/// otherwise let the program run before `start`.
fn park(
    fifo_fd: RawFd,
    release_pages: bool,
    fd_dir: Option<std::os::fd::OwnedFd>,
) -> Result<(), ContainerError> {
    use std::os::fd::AsRawFd;
    let fifo_path = std::ffi::CString::new(match fd_dir {
        Some(_) => format!("{fifo_fd}"),
        None => format!("/proc/self/fd/{fifo_fd}"),
    })
    .map_err(|e| ContainerError::io("exec.fifo path")(e.into()))?;
    if release_pages {
        sys::release_idle_pages();
    }
    // openat, not open (musl's open is SYS_open, which newer allow-lists,
    // like arm64's, no longer have): the filter may be loaded already.
    let fifo = nix::fcntl::openat(
        fd_dir.as_ref().map(|d| d.as_raw_fd()),
        fifo_path.as_c_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening exec.fifo")(e.into()))?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let fifo = unsafe { std::os::fd::OwnedFd::from_raw_fd(fifo) };
    drop(fd_dir);
    let same = match (
        nix::sys::stat::fstat(fifo.as_raw_fd()),
        nix::sys::stat::fstat(fifo_fd),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    };
    if !same {
        return Err(ContainerError::io("opening exec.fifo")(
            std::io::Error::other(
                "/proc/self/fd in the container is not the runtime's (no procfs at /proc?)",
            ),
        ));
    }
    nix::unistd::write(&fifo, b"0")
        .map_err(|e| ContainerError::io("writing exec.fifo")(e.into()))?;
    Ok(())
}

/// The container's state as the seccomp notify agent receives it, with
/// init's pid as the host sees it (runtime-spec: not the 1 of its own pid
/// namespace).
fn listener_state(ctx: &InitContext<'_>, host_pid: i32) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "id": ctx.id,
        "status": "creating",
        "pid": host_pid,
        "bundle": ctx.bundle,
        "annotations": ctx.spec.annotations().clone().unwrap_or_default(),
    })
}

/// The state init's hooks get, with runc's statuses: createContainer's
/// run while `create` is still under way (creating), startContainer's
/// before the program has been executed (created, runtime-spec's meaning
/// of running being "has executed the program").
fn hook_state(ctx: &InitContext<'_>, status: Status) -> Vec<u8> {
    let mut state = format!(
        r#"{{"ociVersion":{},"id":{},"status":"{}","pid":{},"bundle":{}"#,
        serde_json::Value::from(crate::state::OCI_VERSION),
        serde_json::Value::from(ctx.id),
        status.as_str(),
        nix::unistd::getpid(),
        serde_json::Value::from(ctx.bundle.display().to_string()),
    );
    // Sorted by key (a BTreeMap), as runc's are: the same config gives
    // the same bytes.
    if let Some(annotations) = ctx.spec.annotations().as_ref().filter(|a| !a.is_empty()) {
        let sorted: std::collections::BTreeMap<_, _> = annotations.iter().collect();
        state.push_str(r#","annotations":"#);
        state.push_str(&serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".into()));
    }
    state.push('}');
    state.into_bytes()
}

fn write_time_offsets(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
    new_user_ns: bool,
) -> Result<(), ContainerError> {
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    // Not dumpable, our /proc files belong to the host's root, whom a user
    // namespace mapped elsewhere cannot act as: dumpable for the write, in a
    // user namespace of our own only (no process of the container exists
    // yet to make use of the moment; in one joined by path there may be).
    if new_user_ns {
        let _ = sys::prctl(libc::PR_SET_DUMPABLE, 1, 0);
    }
    let written = procfs::write(Path::new("/proc/self/timens_offsets"), &text);
    if new_user_ns {
        sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map_err(ContainerError::io("PR_SET_DUMPABLE"))?;
    }
    written.map_err(ContainerError::io("linux.timeOffsets"))
}
