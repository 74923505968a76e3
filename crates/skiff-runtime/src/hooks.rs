//! Lifecycle hooks: each runs with the state JSON on stdin, its own env and
//! args, and is killed if it outlives its timeout. The state is written and
//! the hook's output drained together, within the timeout: a hook that does
//! not read a large state, or writes more than a pipe holds, can neither
//! outlast its timeout nor hang the runtime.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hooks.{kind}[{index}] ({path}): {reason}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        reason: String,
    },
}

/// Runs `hooks` in order; the first failure stops the list. `cwd` is where
/// they run, as runc runs them: the bundle for the runtime's hooks (some
/// read `config.json` from where they start), the container's root for
/// createContainer's; `None` leaves the runtime's, and so does a `cwd`
/// that is no directory (a bundle removed before poststop).
pub fn run(
    kind: &'static str,
    hooks: &[Hook],
    state: &[u8],
    cwd: Option<&Path>,
) -> Result<(), HookError> {
    let _t = (!hooks.is_empty()).then(|| crate::trace::hooks_phase(kind));
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state, cwd).map_err(|reason| failed(kind, index, hook, reason))?;
    }
    Ok(())
}

/// Runs every hook of `hooks`, a failure being a warning: for poststart and
/// poststop, whose failures the runtime-spec says must not stop the
/// remaining hooks or the lifecycle.
pub fn run_all_warning(kind: &'static str, hooks: &[Hook], state: &[u8], cwd: Option<&Path>) {
    let _t = (!hooks.is_empty()).then(|| crate::trace::hooks_phase(kind));
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(reason) = run_one(hook, state, cwd) {
            crate::log::warn(&failed(kind, index, hook, reason).to_string());
        }
    }
}

fn failed(kind: &'static str, index: usize, hook: &Hook, reason: String) -> HookError {
    HookError::Failed {
        kind,
        index,
        path: hook.path().display().to_string(),
        reason,
    }
}

/// The most of a hook's stdout or stderr kept for the error message; the
/// rest is read and dropped.
const OUTPUT_KEPT: usize = 16 << 10;

fn run_one(hook: &Hook, state: &[u8], cwd: Option<&Path>) -> Result<(), String> {
    let mut child = command(hook, cwd)
        .spawn()
        .map_err(|e| format!("starting: {e}"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let deadline = hook
        .timeout()
        .map(|secs| Instant::now() + Duration::from_secs(secs.max(0) as u64));
    let exchanged = sys::pidfd_open(pid)
        .map_err(|e| format!("pidfd: {e}"))
        .and_then(|pidfd| exchange(&mut child, &pidfd, state, deadline));
    let output = match exchanged {
        Ok(Some(output)) => output,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", hook.timeout().unwrap_or(0)));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let status = child.wait().map_err(|e| format!("waiting: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let mut reason = status.to_string();
    for (name, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(text);
        if !text.trim().is_empty() {
            reason.push_str(&format!(", {name}: {}", text.trim()));
        }
    }
    Err(reason)
}

/// The hook's command: its args (args[0] as argv[0]), its env (or, without
/// one, the runtime's, as runc and youki give), its working directory, and
/// pipes for all of stdio. It starts with default signal dispositions and
/// an empty mask: Rust's spawn keeps the caller's mask, and a foreground
/// `run` blocks the signals it forwards.
fn command(hook: &Hook, cwd: Option<&Path>) -> Command {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some(arg0) = args.first() {
            cmd.arg0(arg0);
        }
        cmd.args(args.iter().skip(1));
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if let Some(dir) = cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::process::with_clean_signals(&mut cmd);
    cmd
}

#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Feeds `state` to the hook's stdin while draining its stdout and stderr,
/// until it exits (`Some`, with what it wrote) or `deadline` passes (`None`).
/// Once it has exited, what is left in the pipes is read without waiting:
/// a process the hook left behind may hold them open.
fn exchange(
    child: &mut Child,
    pidfd: &OwnedFd,
    state: &[u8],
    deadline: Option<Instant>,
) -> Result<Option<Output>, String> {
    let mut stdin: Option<OwnedFd> = child.stdin.take().map(OwnedFd::from);
    let mut pipes: [Option<OwnedFd>; 2] = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    for fd in stdin.iter().chain(pipes.iter().flatten()) {
        set_nonblocking(fd).map_err(|e| format!("pipes: {e}"))?;
    }
    let mut output = Output::default();
    let mut written = 0;
    if state.is_empty() {
        stdin = None;
    }
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                let ms = left.as_millis().min(i32::MAX as u128 - 1) as i32 + 1;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        // Which fds were ready: pidfd, stdin, stdout, stderr.
        let mut ready = [false; 4];
        {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let mut slots = vec![0];
            if let Some(fd) = &stdin {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                slots.push(1);
            }
            for (i, fd) in pipes.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    slots.push(2 + i);
                }
            }
            match poll(&mut fds, timeout) {
                Err(nix::Error::EINTR) | Ok(0) => continue,
                Err(e) => return Err(format!("waiting: {e}")),
                Ok(_) => {}
            }
            for (fd, slot) in fds.iter().zip(slots) {
                ready[slot] = fd.revents().is_some_and(|r| !r.is_empty());
            }
        }
        if ready[1] {
            if let Some(fd) = &stdin {
                match write_some(fd, &state[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // A hook that does not read its stdin is fine (EPIPE).
                    Err(_) => written = state.len(),
                }
            }
            if written == state.len() {
                stdin = None;
            }
        }
        for (i, kept) in [&mut output.stdout, &mut output.stderr]
            .into_iter()
            .enumerate()
        {
            if ready[2 + i] || ready[0] {
                if let Some(fd) = &pipes[i] {
                    if drain(fd, kept) {
                        pipes[i] = None;
                    }
                }
            }
        }
        if ready[0] {
            return Ok(Some(output));
        }
    }
}

/// Reads what `fd` has now into `kept` (up to [`OUTPUT_KEPT`]); true at
/// end of file or on an error, when the pipe is done with. At most 32 reads
/// a call: a writer faster than us (the hook, or what it left behind) must
/// not keep the caller from its deadline.
fn drain(fd: &OwnedFd, kept: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 8192];
    for _ in 0..32 {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                let room = OUTPUT_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(nix::Error::EAGAIN) => return false,
            Err(nix::Error::EINTR) => {}
            Err(_) => return true,
        }
    }
    false
}

fn write_some(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    nix::unistd::write(fd, data).map_err(io::Error::from)
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}
