//! What the shim knows about each task and its processes: the init process
//! (the container) and the exec'd ones, their stdio, and how they ended.

use std::collections::HashMap;
use std::path::PathBuf;

use skiff_runtime::cgroups::CgroupRecord;
use skiff_runtime::oci_spec::runtime::Process;

use crate::reaper::Exit;
use crate::stdio::{Attached, Paths};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Init parked on its exec fifo, or an exec registered but not started.
    Created,
    Running,
    Stopped,
}

pub struct Proc {
    /// 0 until an exec'd process has started.
    pub pid: i32,
    pub phase: Phase,
    pub exit: Option<Exit>,
    /// Start is between the library call and its TaskStart event: an exit
    /// seen meanwhile is held back so that start is announced first.
    pub starting: bool,
    pub held_exit: Option<Exit>,
    pub stdio: Paths,
    pub io: Attached,
    /// An exec'd process's spec, from the Exec request.
    pub spec: Option<Process>,
}

impl Proc {
    pub fn new(stdio: Paths, spec: Option<Process>) -> Proc {
        Proc {
            pid: 0,
            phase: Phase::Created,
            exit: None,
            starting: false,
            held_exit: None,
            stdio,
            io: Attached::default(),
            spec,
        }
    }

    pub fn exited(&mut self, exit: Exit) {
        self.phase = Phase::Stopped;
        self.exit = Some(exit);
    }
}

pub struct Task {
    pub bundle: PathBuf,
    /// Where snapshot mounts were mounted (unmounted at delete).
    pub mounted_rootfs: Option<PathBuf>,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    pub cgroup: Option<CgroupRecord>,
    pub paused: bool,
    /// OOM kills seen so far (a new one is a TaskOOM event).
    pub oom_kills: u64,
    /// OOM kills counted in the parent of the task's group (cgroup v2) when
    /// last looked: see Service::check_oom.
    pub parent_oom_kills: Option<u64>,
    /// A Kill request sent SIGKILL: such a death is not taken for an OOM
    /// kill from the parent's count.
    pub sigkilled: bool,
    /// Runtime option IoUid/IoGid, for every process's stdio.
    pub io_owner: Option<(u32, u32)>,
    /// Created from a checkpoint: init already runs, and start only
    /// announces it.
    pub restored: bool,
}

impl Task {
    /// The process an (id, exec_id) request names: init when exec_id is empty.
    pub fn process(&self, exec_id: &str) -> Option<&Proc> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    /// The exec id of the process with this pid ("" for init).
    pub fn find_pid(&self, pid: i32) -> Option<String> {
        if self.init.pid == pid && self.init.exit.is_none() {
            return Some(String::new());
        }
        self.execs
            .iter()
            .find(|(_, p)| p.pid == pid && p.exit.is_none())
            .map(|(id, _)| id.clone())
    }
}
