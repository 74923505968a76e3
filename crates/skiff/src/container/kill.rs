//! `kill`: a signal to init, or with `all` to every process of the container.

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::ContainerError;
use crate::state::{StateRoot, Status};

pub fn kill(root: &StateRoot, id: &str, sig: Signal, all: bool) -> Result<(), ContainerError> {
    let record = root.load(id)?;
    let status = record.status(root);
    if status == Status::Stopped {
        return Err(ContainerError::wrong_status(id, status, "kill"));
    }
    if all {
        if let Some(cg) = &record.cgroup {
            for pid in cg.pids()? {
                let _ = signal::kill(pid, sig);
            }
            return Ok(());
        }
    }
    signal::kill(Pid::from_raw(record.pid), sig).map_err(|e| ContainerError::io("kill")(e.into()))
}
