//! A task process's stdio as containerd names it: fifo paths (ctr, CRI),
//! `file:///path` (append to a file) or `binary:///path?args` (a logging
//! program reading the output on fds 3 and 4), or nothing (/dev/null).
//!
//! Output fifos are opened read-write and handed to the process directly: it
//! never sees EPIPE when the reader goes away (ctr -d exits, containerd
//! restarts), and a reader that comes back finds the data. stdin goes through
//! a pipe the shim feeds from the fifo, so that CloseIO (and the fifo's EOF)
//! can close it. With a terminal the process gets a pty instead and the shim
//! copies between the pty master and the fifos.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};

use crate::error::ShimError;
use crate::reaper::Reaper;

/// The stdio containerd asked for, as it will read it back in State.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What the shim keeps of a process's stdio while it lives.
#[derive(Default)]
pub struct Attached {
    /// The write end of the process's stdin (pipe, or the pty master's dup).
    stdin: Arc<Mutex<Option<File>>>,
    /// The pty master, for ResizePty.
    pub master: Option<OwnedFd>,
    /// Signalled when the terminal's output has been copied out.
    output_done: Option<Receiver<()>>,
    /// The stdin fifo, while its copier may still wait for a writer.
    stdin_fifo: Option<StdinFifo>,
}

/// A stdin fifo whose copier thread may wait in open(2) for a writer: held
/// as an O_PATH descriptor, so that it can be reached after containerd has
/// removed its name.
struct StdinFifo {
    anchor: Arc<OwnedFd>,
    opened: Arc<AtomicBool>,
}

impl Drop for Attached {
    /// A copier whose writer never came (a client gone, or `ctr run -d`)
    /// would wait in open(2) for as long as the shim lives: a writer of our
    /// own, opened and closed at once, lets it see EOF and end.
    fn drop(&mut self) {
        if let Some(fifo) = self.stdin_fifo.take() {
            if !fifo.opened.load(Ordering::Acquire) {
                let _ = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fd_path(&fifo.anchor));
            }
        }
    }
}

/// The path that reopens `fd`'s file, named or not.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Stdio ready for a process that is about to be created.
pub struct Prepared {
    /// The process's 0, 1, 2 (moved into place in the forked runtime).
    pub fds: [OwnedFd; 3],
    /// With a terminal: our end of the console socketpair, and the runtime's.
    pub console: Option<(UnixStream, UnixStream)>,
    pub attached: Attached,
}

/// Runtime option IoUid/IoGid: the process's pipes and fifos (never a file
/// or a device such as /dev/null) become `owner`'s, so that the root of a
/// user namespace may reopen its own stdio (/dev/stdout), as under runc's
/// shim.
pub fn hand_over(fds: &[OwnedFd], owner: Option<(u32, u32)>) -> Result<(), ShimError> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    for fd in fds {
        let st = nix::sys::stat::fstat(fd.as_raw_fd())
            .map_err(|e| ShimError::io("looking at a stdio descriptor")(e.into()))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
            nix::unistd::fchown(
                fd.as_raw_fd(),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| ShimError::io("giving the stdio to IoUid/IoGid")(e.into()))?;
        }
    }
    Ok(())
}

fn dev_null() -> Result<OwnedFd, ShimError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(ShimError::io("opening /dev/null"))?;
    Ok(f.into())
}

pub fn prepare(
    paths: &Paths,
    id: &str,
    namespace: &str,
    reaper: &Reaper,
) -> Result<Prepared, ShimError> {
    let mut attached = Attached::default();
    if paths.terminal {
        let console = UnixStream::pair().map_err(ShimError::io("creating the console socket"))?;
        return Ok(Prepared {
            fds: [dev_null()?, dev_null()?, dev_null()?],
            console: Some(console),
            attached,
        });
    }
    let stdin = if paths.stdin.is_empty() {
        dev_null()?
    } else {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| ShimError::io("creating the stdin pipe")(e.into()))?;
        *attached.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(File::from(w));
        attached.stdin_fifo = copy_stdin_from(&paths.stdin, attached.stdin.clone());
        r
    };
    let (stdout, stderr) = if let Some(rest) = paths.stdout.strip_prefix("binary://") {
        binary_logger(rest, id, namespace, reaper)?
    } else {
        let out = open_output(&paths.stdout)?;
        let err = if paths.stderr == paths.stdout && !paths.stdout.is_empty() {
            out.try_clone()
                .map_err(ShimError::io("duplicating stdout"))?
        } else {
            open_output(&paths.stderr)?
        };
        (out, err)
    };
    Ok(Prepared {
        fds: [stdin, stdout, stderr],
        console: None,
        attached,
    })
}

/// stdout or stderr: a fifo (read-write, see above), a `file://` URI, or nothing.
fn open_output(uri: &str) -> Result<OwnedFd, ShimError> {
    if uri.is_empty() {
        return dev_null();
    }
    if let Some(path) = uri.strip_prefix("file://") {
        let path = Path::new(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(ShimError::io(format!("creating {}", dir.display())))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(ShimError::io(format!(
                "opening the log file {}",
                path.display()
            )))?;
        return Ok(f.into());
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(uri)
        .map_err(ShimError::io(format!("opening the output fifo {uri}")))?;
    Ok(f.into())
}

/// Copies the stdin fifo into the process's stdin until EOF, then closes it.
/// Opening the fifo blocks until its writer shows up, so this runs on its own
/// thread. None: the fifo is not there (nothing to copy).
fn copy_stdin_from(path: &str, sink: Arc<Mutex<Option<File>>>) -> Option<StdinFifo> {
    let anchor = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .ok()?;
    let anchor = Arc::new(OwnedFd::from(anchor));
    let opened = Arc::new(AtomicBool::new(false));
    let handle = StdinFifo {
        anchor: anchor.clone(),
        opened: opened.clone(),
    };
    std::thread::spawn(move || {
        let Ok(mut fifo) = File::open(fd_path(&anchor)) else {
            return;
        };
        drop(anchor);
        opened.store(true, Ordering::Release);
        let mut buf = [0u8; 8192];
        loop {
            let n = match fifo.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
            let written = guard.as_mut().map(|w| w.write_all(&buf[..n]));
            if !matches!(written, Some(Ok(()))) {
                break;
            }
        }
        sink.lock().unwrap_or_else(|p| p.into_inner()).take();
    });
    Some(handle)
}

/// `binary:///path/to/logger?key=value`: containerd's logging-binary protocol.
/// The logger gets the output pipes as fds 3 (stdout) and 4 (stderr) and a
/// pipe on fd 5 that it closes once it is ready; query parameters become its
/// arguments, CONTAINER_ID and CONTAINER_NAMESPACE its environment.
fn binary_logger(
    uri: &str,
    id: &str,
    namespace: &str,
    reaper: &Reaper,
) -> Result<(OwnedFd, OwnedFd), ShimError> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(k.to_string());
        if !v.is_empty() {
            args.push(v.to_string());
        }
    }
    let pipe = || {
        pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::io("creating the logger's pipes")(e.into()))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let fds: [RawFd; 3] = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(path);
    cmd.args(&args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    skiff_runtime::process::with_clean_signals(&mut cmd);
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl,
    // which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way of 3..5 first: a source may itself be 3, 4 or 5.
            let mut moved = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                moved[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if moved[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in moved.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // Under the reaper's lock: if the exec fails, `spawn` collects the child
    // itself, and the reaper must not get there first (see Reaper::run).
    let guard = reaper.lock_for_fork();
    let child = cmd
        .spawn()
        .map_err(ShimError::io(format!("starting the logging binary {path}")))?;
    guard.forked(Pid::from_raw(child.id() as i32));
    drop(child);
    drop((out_r, err_r, ready_w));
    // Ready when the logger closes fd 5 (EOF here), or gives up after 10 s.
    let mut ready = File::from(ready_r);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = ready.read(&mut b);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(10));
    Ok((out_w, err_w))
}

impl Attached {
    /// With a terminal: copies stdin into the pty master and the master's
    /// output to stdout, once the master has arrived from the container.
    pub fn attach_terminal(&mut self, master: OwnedFd, paths: &Paths) -> Result<(), ShimError> {
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map(File::from)
                .map_err(ShimError::io("duplicating the pty master"))
        };
        if !paths.stdin.is_empty() {
            *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(dup(&master)?);
            self.stdin_fifo = copy_stdin_from(&paths.stdin, self.stdin.clone());
        }
        let mut from = dup(&master)?;
        let mut to = File::from(open_output(&paths.stdout)?);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Ends with EIO once every slave descriptor is closed.
            let mut buf = [0u8; 8192];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = tx.send(());
        });
        self.output_done = Some(rx);
        self.master = Some(master);
        Ok(())
    }

    /// CloseIO: the process sees EOF on stdin (for a terminal, the shim stops
    /// writing to the master).
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// With a terminal: what tells, after the process exited, that its last
    /// output reached the fifo (the caller waits on it, bounded, in case a
    /// background process still holds the pty).
    pub fn take_drain(&mut self) -> Option<Receiver<()>> {
        self.output_done.take()
    }

    pub fn master_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.master.as_ref().map(|m| m.as_fd())
    }
}
