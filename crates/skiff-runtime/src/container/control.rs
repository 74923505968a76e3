//! Acting on a live container through its cgroups: pause, resume, update,
//! the process list, and usage statistics.

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::ContainerError;
use crate::cgroups::{CgroupError, CgroupRecord, Layout};
use crate::state::{Record, StateRoot, Status};

fn live(
    root: &StateRoot,
    id: &str,
    action: &'static str,
) -> Result<(Record, Status, CgroupRecord), ContainerError> {
    let record = root.load(id)?;
    let status = record.status(root);
    if status == Status::Stopped {
        return Err(ContainerError::wrong_status(id, status, action));
    }
    let cg = record
        .cgroup
        .clone()
        .ok_or(CgroupError::NoGroup { action })?;
    Ok((record, status, cg))
}

/// Freezes every process of a running (or, as runc allows, created) container.
pub fn pause(root: &StateRoot, id: &str) -> Result<(), ContainerError> {
    let (_, status, cg) = live(root, id, "pause")?;
    if status != Status::Running && status != Status::Created {
        return Err(ContainerError::wrong_status(id, status, "pause"));
    }
    Ok(cg.freeze()?)
}

/// Thaws a paused container.
pub fn resume(root: &StateRoot, id: &str) -> Result<(), ContainerError> {
    let (_, status, cg) = live(root, id, "resume")?;
    if status != Status::Paused {
        return Err(ContainerError::wrong_status(id, status, "resume"));
    }
    Ok(cg.thaw()?)
}

/// Changes the limits of a created, running or paused container.
pub fn update(root: &StateRoot, id: &str, res: &LinuxResources) -> Result<(), ContainerError> {
    let (_, _, cg) = live(root, id, "update")?;
    Ok(cg.update(&Layout::detect()?, res)?)
}

/// Pids (on the host) of every process of the container.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<Pid>, ContainerError> {
    let record = root.load(id)?;
    match &record.cgroup {
        Some(cg) => Ok(cg.pids()?),
        None if record.init_alive() => Ok(vec![Pid::from_raw(record.pid)]),
        None => Ok(Vec::new()),
    }
}

/// Usage statistics, and the OOM-kill count, of a container that has its
/// groups: also a stopped one not yet deleted (containerd asks for every
/// task's metrics, and the runc shim answers for those too).
pub fn stats(root: &StateRoot, id: &str) -> Result<(serde_json::Value, u64), ContainerError> {
    let record = root.load(id)?;
    let cg = record
        .cgroup
        .ok_or(CgroupError::NoGroup { action: "stats" })?;
    let layout = Layout::detect()?;
    Ok((cg.stats(&layout), cg.oom_kills(&layout)))
}
