//! Where init runs while it and the runtime work side by side. Right after
//! the clone both have work: init creates its network namespace (and, with a
//! user namespace, waits for its id maps) while the runtime makes the
//! cgroups. A new task often starts queued on its parent's CPU, and then
//! waits there until the runtime sleeps, so the two ran one after the other.
//!
//! So the runtime moves init, still queued, onto another CPU, and at once
//! widens its CPU set again to every CPU: init stays where it was moved (its
//! CPU is in the new set), and the set the kernel keeps as "asked for by the
//! user" (which later cpuset changes are intersected with) is all CPUs, the
//! same as asking for nothing. The container's cgroup (cpuset) then decides,
//! as with runc. Only when skiff-oci may run on every online CPU: a caller
//! that pinned it (taskset) passes that pinning on to the container with
//! runc, and keeps doing so here, since init is then not moved.

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Our CPU set, taken before the clone, when init is to be moved: we may
/// run on every online CPU, and there are two or more.
pub fn before_clone() -> Option<CpuSet> {
    let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let ours = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .count();
    // SAFETY: sysconf only reads a system value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (ours >= 2 && i64::try_from(ours).is_ok_and(|n| n == online)).then_some(set)
}

/// Moves `child` (cloned after [`before_clone`]) off the CPU we run on, and
/// lets it run anywhere again. An error means init may be left on fewer CPUs
/// than it should: the caller fails the create.
pub fn move_child(set: &CpuSet, child: Pid) -> nix::Result<()> {
    let Ok(here) = sched_getcpu() else {
        return Ok(());
    };
    let mut others = *set;
    if others.unset(here).is_err() || sched_setaffinity(child, &others).is_err() {
        // Not moved (e.g. its cgroup has none of those CPUs): nothing to undo.
        return Ok(());
    }
    let mut any = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        any.set(cpu)?;
    }
    sched_setaffinity(child, &any)
}
