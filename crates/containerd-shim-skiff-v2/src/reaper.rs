//! Reaping: the shim is a child subreaper, so a container's init and exec'd
//! processes (born to a forked copy of the shim that exits, see `forked.rs`)
//! are re-parented to it, and one thread collects every child's exit status.
//!
//! The forked copies themselves are children too; their exits are not news
//! and are dropped here. Everything else goes to the service, which matches
//! the pid to a task process (or keeps it until the pid is registered: a
//! process can die before its `Start` returns).

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How a process ended: the status containerd reports (the exit code, or
/// 128 + the signal number), and when.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: u32,
    pub at: SystemTime,
}

#[derive(Default)]
pub struct Children {
    /// Bumped on every fork, so the reaping thread knows children may exist.
    forks: u64,
    /// Forked copies of the shim: reaped without telling anyone.
    helpers: HashSet<i32>,
}

#[derive(Default)]
pub struct Reaper {
    children: Mutex<Children>,
    forked: Condvar,
}

/// Held around a fork, so the new pid is recorded before it can be reaped.
pub struct ForkGuard<'a> {
    reaper: &'a Reaper,
    children: MutexGuard<'a, Children>,
}

impl ForkGuard<'_> {
    /// Records `helper`, a child whose exit is nobody's news (a forked copy
    /// of the shim, a logging binary).
    pub fn forked(mut self, helper: Pid) {
        self.children.helpers.insert(helper.as_raw());
        self.children.forks += 1;
        drop(self.children);
        self.reaper.forked.notify_all();
    }
}

impl Reaper {
    pub fn lock_for_fork(&self) -> ForkGuard<'_> {
        ForkGuard {
            reaper: self,
            children: self.children.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Reaps forever, handing each task process's exit to `on_exit`.
    ///
    /// An exit is first seen without being collected (WNOWAIT), then
    /// collected under the lock: a child spawned with the lock held (the
    /// logging binary, by std's `Command`, which collects a child whose exec
    /// failed itself) is never collected from under its spawner.
    pub fn run(&self, on_exit: impl Fn(i32, Exit)) -> ! {
        loop {
            let seen = self.lock().forks;
            let peeked = waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
            // Collected and sorted under one lock: a helper forked in between
            // could otherwise reuse the pid and swallow this exit.
            let (collected, helper) = match peeked {
                Ok(s) => match s.pid() {
                    Some(pid) => {
                        let mut children = self.lock();
                        let collected = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                        let helper = matches!(
                            collected,
                            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..))
                        ) && children.helpers.remove(&pid.as_raw());
                        (collected, helper)
                    }
                    None => continue,
                },
                Err(e) => (Err(e), false),
            };
            if helper {
                continue;
            }
            let (pid, status) = match collected {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code as u32),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as u32),
                // Collected by its spawner meanwhile, or a stop/continue.
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) if peeked.is_ok() => continue,
                Err(_) => {
                    // No children now: sleep until a fork makes one.
                    let guard = self.lock();
                    let _ = self
                        .forked
                        .wait_timeout_while(guard, Duration::from_secs(5), |c| c.forks == seen);
                    continue;
                }
            };
            on_exit(
                pid.as_raw(),
                Exit {
                    status,
                    at: SystemTime::now(),
                },
            );
        }
    }

    fn lock(&self) -> MutexGuard<'_, Children> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }
}
