//! Where init runs while it and the runtime work side by side. Right after
//! the clone both have work: init creates its network namespace (and, with a
//! user namespace, waits for its id maps) while the runtime makes the
//! cgroups. A new task often starts queued on its parent's CPU, and then
//! waits there until the runtime sleeps, so the two run one after the other.
//! The runtime therefore moves init onto its other allowed CPUs as soon as it
//! exists, and init takes back the runtime's CPU set once the runtime says
//! go, before anything of the container runs: the program inherits the set
//! the caller gave skiff-oci, as with runc.

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The runtime's CPU set, taken before the clone; None when there is no
/// other CPU to move init to.
pub fn before_clone() -> Option<CpuSet> {
    let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let allowed = (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false));
    (allowed.take(2).count() == 2).then_some(set)
}

/// Moves `child` onto the CPUs of `set` other than the one we run on. Best
/// effort: where it fails, init merely starts later.
pub fn move_child(set: &CpuSet, child: Pid) {
    let Ok(here) = sched_getcpu() else {
        return;
    };
    let mut others = *set;
    if others.unset(here).is_ok() {
        let _ = sched_setaffinity(child, &others);
    }
}

/// In init: the runtime's CPU set again.
pub fn restore(set: &CpuSet) -> nix::Result<()> {
    sched_setaffinity(Pid::from_raw(0), set)
}
