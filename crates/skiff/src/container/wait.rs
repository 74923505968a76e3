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
