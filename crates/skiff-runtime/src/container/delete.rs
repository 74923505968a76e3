//! `delete`: stop what is left (with force, or a created container), run the
//! poststop hooks, remove the cgroups and the state directory.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::ContainerError;
use crate::state::{Record, StateError, StateRoot, Status};
use crate::{hooks, sys};

pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<(), ContainerError> {
    let _t = crate::trace::phase("delete");
    let record = match root.load(id) {
        Ok(r) => r,
        // A create that died before writing state.json leaves only the directory
        // (and the groups it had begun to make, which it wrote down first);
        // like runc, --force clears it and a missing container is not an error.
        Err(StateError::NotFound(_)) if force => {
            if let Some(cg) = root.planned_cgroups(id) {
                remove_planned(&cg);
            }
            root.remove(id)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = record.status(root);
    remove(root, &record, status, force)
}

/// `delete --force` of a container whose init this process has just waited
/// for (`run`): it is stopped. Unless somebody deleted it meanwhile (or a
/// new container took the id), in which case there is nothing of ours left:
/// `dir_anchor` (from `create`) tells whether ROOT/ID is still our directory,
/// without reading state.json back. It is closed before the directory is
/// removed: removing a directory that is still open puts it on ext4's orphan
/// list first, which costs another journal update.
pub fn delete_stopped(
    root: &StateRoot,
    record: &Record,
    dir_anchor: OwnedFd,
) -> Result<(), ContainerError> {
    let _t = crate::trace::phase("delete");
    let ours = root.same_dir(&record.id, &dir_anchor)?;
    drop(dir_anchor);
    if ours {
        remove(root, record, Status::Stopped, true)
    } else {
        Ok(())
    }
}

fn remove(
    root: &StateRoot,
    record: &Record,
    status: Status,
    force: bool,
) -> Result<(), ContainerError> {
    let id = record.id.as_str();
    match status {
        // Without a pid namespace of its own, what init started outlives it,
        // and holds the groups: runc's delete kills it too.
        Status::Stopped if !record.private_pid_ns => kill_group(record),
        Status::Stopped => {}
        Status::Created => stop(record)?,
        Status::Running | Status::Paused | Status::Creating if force => stop(record)?,
        _ => {
            return Err(ContainerError::wrong_status(
                id,
                status,
                "delete (use --force)",
            ))
        }
    }
    if let Some(list) = record.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        hooks::run_all_warning(
            "poststop",
            list,
            &record.hook_state(Status::Stopped),
            Some(&record.bundle),
        );
    }
    if let Some(cg) = &record.cgroup {
        match cg.remove() {
            // Still busy once the container is gone: another container's
            // processes share it (see cgroups::warn_if_not_empty). The group
            // stays for them; the container goes.
            Err(crate::cgroups::CgroupError::Remove { path, source })
                if source.raw_os_error() == Some(libc::EBUSY) && cg.shared =>
            {
                crate::log::warn(&format!(
                    "cgroup {} still has processes (another container's?): left in place",
                    path.display()
                ));
            }
            other => other?,
        }
    }
    root.remove(id)?;
    Ok(())
}

/// SIGKILLs every process in the container's groups (thawed first: a
/// frozen process cannot die).
/// The groups of a create killed before it recorded its container: what is
/// in them (its init, parked or orphaned) is killed, then they are removed;
/// unless they were another container's already.
pub(super) fn remove_planned(cg: &crate::cgroups::CgroupRecord) {
    if cg.shared {
        return;
    }
    cg.thaw_if_frozen();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for p in pids {
            let _ = signal::kill(p, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = cg.remove();
}

fn kill_group(record: &Record) {
    if let Some(cg) = &record.cgroup {
        cg.thaw_if_frozen();
        for p in cg.pids().unwrap_or_default() {
            let _ = signal::kill(p, Signal::SIGKILL);
        }
    }
}

/// SIGKILLs the container and waits for init to be gone.
fn stop(record: &Record) -> Result<(), ContainerError> {
    let pid = Pid::from_raw(record.pid);
    if let Some(cg) = &record.cgroup {
        cg.thaw_if_frozen();
    }
    let pidfd = sys::pidfd_open(pid).ok();
    let _ = signal::kill(pid, Signal::SIGKILL);
    if !record.private_pid_ns {
        kill_group(record);
    }
    // The pidfd turns readable when init exits, reaped or not.
    if let Some(fd) = pidfd {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(10_000u16));
    }
    // Its zombie may stay until its parent reaps it; the cgroup empties when the
    // other processes are gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while record.init_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
