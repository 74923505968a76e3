//! `kill`: a signal to init, or with `all` to every process of the container.

use nix::unistd::Pid;

use super::ContainerError;
use crate::signal::SignalNumber;
use crate::state::{StateRoot, Status};
use crate::sys;

pub fn kill(
    root: &StateRoot,
    id: &str,
    sig: SignalNumber,
    all: bool,
) -> Result<(), ContainerError> {
    let record = root.load(id)?;
    let status = record.status(root);
    if all {
        // Also when init is gone: without a pid namespace of its own, what
        // init started outlives it (containerd's shim sends `kill --all` then,
        // as runc lets it), and the group cannot be removed while they live.
        if let Some(cg) = &record.cgroup {
            // systemd removes an emptied scope's group itself: a stopped
            // container without its group has nothing left to signal
            // (runc: "the unit's cgroup path will be auto removed").
            if status == Status::Stopped && !cg.procs_dir.exists() {
                return Ok(());
            }
            return signal_all(cg, sig, status);
        }
    }
    if status == Status::Stopped {
        return Err(ContainerError::NotRunning { id: id.to_string() });
    }
    sys::kill(Pid::from_raw(record.pid), sig).map_err(ContainerError::io("kill"))?;
    if let Some(cg) = &record.cgroup {
        thaw_for_kill(cg, sig, status);
    }
    Ok(())
}

/// Signals every process of the group, frozen meanwhile (as runc does): a
/// process that exited between the read of the pids and its signal would
/// leave its pid free for a host process to take. A paused container stays
/// paused (but for SIGKILL, see [`thaw_for_kill`]).
fn signal_all(
    cg: &crate::cgroups::CgroupRecord,
    sig: SignalNumber,
    status: Status,
) -> Result<(), ContainerError> {
    let froze = status != Status::Paused
        && cg.has_freezer()
        && match cg.freeze() {
            Ok(()) => true,
            Err(e) => {
                crate::log::warn(&format!("kill --all: freezing the container first: {e}"));
                false
            }
        };
    let pids = cg.pids();
    if let Ok(pids) = &pids {
        // The caller is never in a container's group; if it is found there
        // (a shim whose thread was moved in would be listed by its process
        // id), it says so instead of signalling itself away unheard.
        let me = Pid::this();
        for pid in pids {
            if *pid == me {
                crate::log::warn(&format!(
                    "kill --all: this process ({me}) is in the container's group {}: not signalled",
                    cg.procs_dir.display()
                ));
                continue;
            }
            let _ = sys::kill(*pid, sig);
        }
    }
    if froze {
        cg.thaw()?;
    } else {
        thaw_for_kill(cg, sig, status);
    }
    pids.map(drop).map_err(ContainerError::from)
}

/// A frozen (v1) process does not die of SIGKILL until it is thawed: a
/// paused container that is killed is thawed, as runc does.
fn thaw_for_kill(cg: &crate::cgroups::CgroupRecord, sig: SignalNumber, status: Status) {
    if status == Status::Paused && sig.as_raw() == libc::SIGKILL {
        let _ = cg.thaw();
    }
}
