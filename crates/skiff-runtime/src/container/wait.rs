//! Waiting for a foreground container (`run` without --detach) while forwarding
//! the signals the caller receives to init.

use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGWINCH,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(*sig);
    }
    s.add(Signal::SIGCHLD);
    s
}

/// Blocks the forwarded signals and SIGCHLD, so none is lost between create and
/// the wait loop. Call before `create`; init unblocks them before execve.
pub fn block_forwarded_signals() {
    let _ = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set()), None);
}

/// Waits for `pid` (a child of this process) and returns its exit code as a
/// shell reports it (128 + signal when killed).
pub fn wait_forwarding(pid: Pid) -> i32 {
    let set = set();
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => continue,
            Ok(sig) => {
                let _ = signal::kill(pid, sig);
            }
            Err(_) => continue,
        }
    }
}

/// Like [`wait_forwarding`], for a container with a terminal in the
/// foreground (`run -t` without --console-socket): copies stdin to the pty
/// master and the master to stdout, keeps the pty's size in step with ours
/// (SIGWINCH), and puts our terminal, if any, in raw mode meanwhile.
pub fn relay_and_wait(pid: Pid, master: std::os::fd::OwnedFd) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::termios;
    use std::os::fd::{AsFd, AsRawFd};

    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
    }
    copy_window_size(stdin.as_fd(), master.as_fd());
    let Ok(sfd) = SignalFd::with_flags(&set(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    else {
        return wait_forwarding(pid);
    };
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut master_open = true;
    let mut code = None;
    while code.is_none() || master_open {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open && master_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Once init is gone, drain what the pty still holds, briefly.
        let timeout = if code.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => code = code.or_else(|| reap(pid)),
                    Ok(Signal::SIGWINCH) => copy_window_size(stdin.as_fd(), master.as_fd()),
                    Ok(sig) => {
                        let _ = signal::kill(pid, sig);
                    }
                    Err(_) => {}
                }
            }
        }
        if master_open && ready.get(1) == Some(&true) {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => master_open = false, // EIO: the slave side closed
                Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n]),
            }
        }
        if stdin_open && ready.get(2) == Some(&true) {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_all(master.as_fd(), &buf[..n]),
            }
        }
        if code.is_none() {
            code = reap(pid);
        }
    }
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, t);
    }
    code.unwrap_or_else(|| wait_forwarding(pid))
}

fn reap(pid: Pid) -> Option<i32> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => Some(c),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
        _ => None,
    }
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn copy_window_size(from: std::os::fd::BorrowedFd<'_>, to: std::os::fd::BorrowedFd<'_>) {
    if let Ok((rows, cols)) = crate::sys::window_size(from) {
        let _ = crate::sys::set_window_size(to, rows, cols);
    }
}
