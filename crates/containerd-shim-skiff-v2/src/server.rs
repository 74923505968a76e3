//! `serve`: the long-lived shim process `start` spawns, in the bundle
//! directory, with the listening ttrpc socket as its stdin.
//!
//! Threads: ttrpc's listener and workers (the Task service), the reaper, the
//! event forwarder, and stdio copiers where a process needs them. The main
//! thread waits for Shutdown and watches for OOM kills meanwhile.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use containerd_shim_protos::ttrpc::Server;
use nix::sys::socket::{getsockname, UnixAddr};
use nix::unistd::{dup, dup2};
use skiff_runtime::state::StateRoot;

use crate::args::Args;
use crate::error::ShimError;
use crate::events::Publisher;
use crate::reaper::Reaper;
use crate::service::Service;

/// Where the shim keeps the library's container state, per namespace (runc's
/// shim keeps runc's under /run/containerd/runc/<namespace> the same way).
pub fn state_root(namespace: &str) -> StateRoot {
    StateRoot::new(format!("/run/containerd/skiff/{namespace}"))
}

/// The listening socket `start` gave as stdin, moved aside (stdin becomes
/// /dev/null), and the log opened: what both tiers' servers begin with.
pub fn take_listener() -> Result<i32, ShimError> {
    let listener =
        dup(0).map_err(|e| ShimError::io("taking the listening socket from stdin")(e.into()))?;
    let null = OpenOptions::new()
        .read(true)
        .open("/dev/null")
        .map_err(ShimError::io("opening /dev/null"))?;
    let _ = dup2(null.as_raw_fd(), 0);
    open_log();
    Ok(listener)
}

pub fn run(args: &Args, listener: i32) -> Result<(), ShimError> {
    // One malloc arena: per-thread arenas cost the shim memory for nothing
    // (its threads mostly sleep).
    // SAFETY: mallopt only sets an allocator tunable.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    skiff_runtime::sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)
        .map_err(ShimError::io("becoming a child subreaper"))?;

    let reaper = Arc::new(Reaper::default());
    let (shutdown_tx, shutdown_rx) = mpsc::channel();
    let events = Publisher::start(args.namespace.clone(), std::env::var("TTRPC_ADDRESS").ok());
    let root = state_root(&args.namespace);
    let root_dir = root.dir.clone();
    let service = Arc::new(Service::new(
        args.namespace.clone(),
        root,
        events,
        reaper.clone(),
        shutdown_tx,
    ));
    {
        let service = service.clone();
        std::thread::spawn(move || reaper.run(|pid, exit| service.process_exited(pid, exit)));
    }

    let methods = task_methods(service.clone());
    let socket_path = socket_path(listener);
    // Few idle workers: a blocked Wait makes the pool grow as needed.
    let mut server = Server::new()
        .add_listener(listener)?
        .register_service(methods)
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(3);
    if let Some(path) = &socket_path {
        remove_socket_on_sigterm(path);
    }
    if let Err(e) = server.start() {
        if let Some(path) = &socket_path {
            let _ = std::fs::remove_file(path);
        }
        return Err(e.into());
    }

    // On cgroup v2, a thread reads OOM notices as the kernel gives them
    // (inotify on each task's memory.events), so an OOM kill is counted
    // while the group still exists.
    if service.oom_events().is_some() {
        let service = service.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let Some(fd) = service.oom_events() else {
                    return;
                };
                use std::os::fd::AsRawFd;
                // SAFETY: reads into our buffer from our fd.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    return;
                }
                if n > 0 {
                    service.watch_oom();
                }
            }
        });
    }
    // The main thread waits for Shutdown, and meanwhile looks for OOM kills
    // of processes other than init (init's are checked when it exits).
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        shutdown_rx.recv_timeout(Duration::from_millis(500))
    {
        service.watch_oom();
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    service.flush_events();
    // The namespace's state directory goes with its last task (if no other
    // shim still has tasks in it: remove_dir refuses a non-empty one).
    let _ = std::fs::remove_dir(root_dir);
    // Let the Shutdown reply reach containerd before the process is gone.
    std::thread::sleep(Duration::from_millis(20));
    std::process::exit(0)
}

/// The socket file a SIGTERM'd server removes, and that server's pid.
static SOCKET_ON_TERM: std::sync::OnceLock<(std::ffi::CString, libc::pid_t)> =
    std::sync::OnceLock::new();

/// On SIGTERM (an operator's, or systemd's stop of containerd's unit) the
/// server removes its socket file and exits, as the runc shim does; a stale
/// file would be left in /run/containerd/s otherwise. Processes forked from
/// the server (its copies, a container's init before execve) inherit the
/// handler: for them it is SIGTERM's default action.
/// The Task service's methods under both of containerd's names:
/// containerd 1.6 and 1.7 call containerd.task.v2.Task; 2.x calls v3 when
/// told so at start, else v2 too. The messages are the same.
pub(crate) fn task_methods(
    task: Arc<dyn containerd_shim_protos::shim::shim_ttrpc::Task + Send + Sync>,
) -> std::collections::HashMap<
    String,
    Box<dyn containerd_shim_protos::ttrpc::MethodHandler + Send + Sync>,
> {
    let mut methods = containerd_shim_protos::create_task(task.clone());
    for (path, handler) in containerd_shim_protos::create_task(task) {
        let v2 = path.replace("/containerd.task.v3.Task/", "/containerd.task.v2.Task/");
        methods.insert(v2, handler);
    }
    methods
}

/// The path the listening socket is bound to (removed when the shim ends).
pub(crate) fn socket_path(listener: i32) -> Option<std::path::PathBuf> {
    getsockname::<UnixAddr>(listener)
        .ok()
        .and_then(|a| a.path().map(|p| p.to_path_buf()))
}

fn remove_socket_on_sigterm(path: &std::path::Path) {
    extern "C" fn on_term(sig: libc::c_int) {
        // SAFETY: only async-signal-safe calls (getpid, write, unlink,
        // _exit, signal, raise); the OnceLock was set before the handler was.
        unsafe {
            match SOCKET_ON_TERM.get() {
                Some((path, pid)) if libc::getpid() == *pid => {
                    // In containerd's log: a shim that went away says why.
                    const SAID: &[u8] = b"containerd-shim-skiff-v2: SIGTERM: exiting\n";
                    libc::write(2, SAID.as_ptr().cast(), SAID.len());
                    libc::unlink(path.as_ptr());
                    libc::_exit(0);
                }
                _ => {
                    libc::signal(sig, libc::SIG_DFL);
                    libc::raise(sig);
                }
            }
        }
    }
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return;
    };
    if SOCKET_ON_TERM
        .set((c, std::process::id() as libc::pid_t))
        .is_err()
    {
        return;
    }
    // SAFETY: the handler is an extern "C" fn making only async-signal-safe
    // calls.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_term as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// The shim's own log goes to the `log` fifo containerd reads in the bundle
/// (stderr, so the library's warnings land there too). Non-blocking: while
/// containerd is away (restarting), lines are dropped rather than the shim
/// blocked.
fn open_log() {
    let log = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
        .or_else(|_| OpenOptions::new().write(true).open("/dev/null"));
    if let Ok(f) = log {
        let fd = f.into_raw_fd();
        let _ = dup2(fd, 2);
        // SAFETY: `fd` came from into_raw_fd above and is now duplicated on 2.
        unsafe { libc::close(fd) };
    }
}
