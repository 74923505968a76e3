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
            for pid in cg.pids()? {
                let _ = sys::kill(pid, sig);
            }
            thaw_for_kill(cg, sig, status);
            return Ok(());
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

/// A frozen (v1) process does not die of SIGKILL until it is thawed: a
/// paused container that is killed is thawed, as runc does.
fn thaw_for_kill(cg: &crate::cgroups::CgroupRecord, sig: SignalNumber, status: Status) {
    if status == Status::Paused && sig.as_raw() == libc::SIGKILL {
        let _ = cg.thaw();
    }
}
