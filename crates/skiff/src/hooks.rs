//! Lifecycle hooks: each runs with the state JSON on stdin, its own env and args,
//! and is killed if it outlives its timeout.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

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

/// Runs `hooks` in order; the first failure stops the list.
pub fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    let _t = (!hooks.is_empty()).then(|| crate::trace::hooks_phase(kind));
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state).map_err(|reason| HookError::Failed {
            kind,
            index,
            path: hook.path().display().to_string(),
            reason,
        })?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state: &[u8]) -> Result<(), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some(arg0) = args.first() {
            cmd.arg0(arg0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("starting: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let pidfd =
        sys::pidfd_open(Pid::from_raw(child.id() as i32)).map_err(|e| format!("pidfd: {e}"))?;
    let timeout = match hook.timeout() {
        Some(secs) => PollTimeout::try_from((secs as u64 * 1000).min(i32::MAX as u64) as i32)
            .unwrap_or(PollTimeout::MAX),
        None => PollTimeout::NONE,
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let ready = loop {
        match poll(&mut fds, timeout) {
            Err(nix::Error::EINTR) => continue,
            other => break other.map_err(|e| format!("waiting: {e}"))?,
        }
    };
    if ready == 0 {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("timed out after {}s", hook.timeout().unwrap_or(0)));
    }
    let status = child.wait().map_err(|e| format!("waiting: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Err(if stderr.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {stderr}")
    })
}
