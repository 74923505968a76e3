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
    if status == Status::Stopped {
        return Err(ContainerError::wrong_status(id, status, "kill"));
    }
    if all {
        if let Some(cg) = &record.cgroup {
            for pid in cg.pids()? {
                let _ = sys::kill(pid, sig);
            }
            return Ok(());
        }
    }
    sys::kill(Pid::from_raw(record.pid), sig).map_err(ContainerError::io("kill"))
}
