//! Reaping: the agent is the guest's PID 1 (or, on a host, a child
//! subreaper), so every container process ends up its child. One thread
//! collects every exit into a table that the runtime calls and WaitProcess
//! read: an exit may be collected before anyone asks for it (a process that
//! dies before its start returns), and nobody else calls waitpid.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};

#[derive(Default)]
pub struct Reaper {
    /// pid -> status (the exit code, or 128 + the signal number).
    exits: Mutex<HashMap<i32, i32>>,
    /// Children whose exit nobody will ask for, not recorded when they end
    /// (locked after `exits`).
    unwanted: Mutex<HashSet<i32>>,
    changed: Condvar,
}

impl Reaper {
    pub fn run(&self) -> ! {
        loop {
            let (pid, status) = match waitpid(None, None) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => {
                    // No children yet: a spawn notifies, else look again soon.
                    let exits = self.lock();
                    let _ = self.changed.wait_timeout(exits, Duration::from_millis(100));
                    continue;
                }
            };
            let mut exits = self.lock();
            if !self.unwanted().remove(&pid.as_raw()) {
                exits.insert(pid.as_raw(), status);
            }
            drop(exits);
            self.changed.notify_all();
        }
    }

    /// A child was just spawned: the reaping thread may be waiting for one.
    pub fn spawned(&self) {
        self.changed.notify_all();
    }

    /// The status of `pid` once it has exited, or None after `bound`.
    pub fn wait(&self, pid: i32, bound: Option<Duration>) -> Option<i32> {
        let deadline = bound.map(|b| Instant::now() + b);
        let mut exits = self.lock();
        loop {
            if let Some(status) = exits.get(&pid) {
                return Some(*status);
            }
            let slice = match deadline {
                Some(d) => d.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            exits = self
                .changed
                .wait_timeout(exits, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Forgets an exit nobody will ask for again (its pid may be reused).
    pub fn forget(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    /// Forgets `pid`'s exit, now if it has happened, else when it does.
    pub fn forget_on_exit(&self, pid: i32) {
        let mut exits = self.lock();
        if exits.remove(&pid).is_none() {
            self.unwanted().insert(pid);
        }
    }

    fn unwanted(&self) -> MutexGuard<'_, HashSet<i32>> {
        self.unwanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, i32>> {
        self.exits.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_exit_collected_before_the_wait_is_kept_for_it() {
        let reaper = Arc::new(Reaper::default());
        reaper.lock().insert(42, 3);
        assert_eq!(reaper.wait(42, Some(Duration::from_millis(10))), Some(3));
        assert_eq!(reaper.wait(43, Some(Duration::from_millis(10))), None);
        reaper.forget(42);
        assert_eq!(reaper.wait(42, Some(Duration::from_millis(10))), None);
    }

    #[test]
    fn an_unwanted_exit_is_not_kept() {
        let reaper = Reaper::default();
        reaper.lock().insert(42, 0);
        reaper.forget_on_exit(42);
        assert_eq!(reaper.wait(42, Some(Duration::ZERO)), None);
        // Not yet exited: dropped when it does.
        reaper.forget_on_exit(43);
        assert!(reaper.unwanted().contains(&43));
    }
}
