//! What the config asks of the kernel for the process beyond its identity:
//! process.scheduler (sched_setattr), process.ioPriority (ioprio_set),
//! process.execCPUAffinity (exec's processes), linux.memoryPolicy
//! (set_mempolicy) and linux.personality. Each is set in the process before
//! execve, which keeps them, and before it drops the capabilities the
//! real-time classes need.

use std::io;

use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, Linux, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality,
    LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType,
    MemoryPolicyModeType, Process, Scheduler,
};

use super::ProcessError;

fn failed(field: &'static str) -> impl FnOnce(io::Error) -> ProcessError {
    move |source| ProcessError::Attribute { field, source }
}

fn invalid(field: &'static str, reason: String) -> ProcessError {
    ProcessError::Attribute {
        field,
        source: io::Error::new(io::ErrorKind::InvalidInput, reason),
    }
}

/// Everything here the config asks for `p` (and, for init, of `linux`),
/// but execCPUAffinity, which is exec's alone; and its AppArmor profile.
pub fn apply(p: &Process, linux: Option<&Linux>) -> Result<(), ProcessError> {
    if let Some(s) = p.scheduler() {
        set_scheduler(s)?;
    }
    if let Some(io) = p.io_priority() {
        set_io_priority(io)?;
    }
    if let Some(m) = linux.and_then(|l| l.memory_policy().as_ref()) {
        set_memory_policy(m)?;
    }
    if let Some(persona) = linux.and_then(|l| l.personality().as_ref()) {
        set_personality(persona)?;
    }
    super::lsm::apply_apparmor(p)
}

/// A raw syscall's result: -1 is errno.
fn checked(ret: libc::c_long) -> io::Result<()> {
    match ret {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// process.scheduler, by sched_setattr(2) (the kernel's struct sched_attr,
/// first version: 48 bytes).
pub fn set_scheduler(s: &Scheduler) -> Result<(), ProcessError> {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => {
            return Err(invalid(
                "process.scheduler.policy",
                "SCHED_ISO is not a Linux scheduling policy".into(),
            ))
        }
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for flag in s.flags().iter().flatten() {
        flags |= match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            // They need clamp values, which the runtime-spec has no field for.
            LinuxSchedulerFlag::SchedFlagUtilClampMin
            | LinuxSchedulerFlag::SchedFlagUtilClampMax => {
                return Err(invalid(
                    "process.scheduler.flags",
                    "the utilization clamp flags need values the spec cannot give".into(),
                ))
            }
        };
    }
    let priority = s.priority().unwrap_or(0);
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: u32::try_from(priority)
            .map_err(|_| invalid("process.scheduler.priority", format!("{priority} < 0")))?,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: `attr` is a struct sched_attr of the size it declares, valid
    // for the call; pid 0 is this process.
    checked(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map_err(failed("process.scheduler"))
}

/// process.ioPriority, by ioprio_set(2).
pub fn set_io_priority(p: &LinuxIOPriority) -> Result<(), ProcessError> {
    const WHO_PROCESS: libc::c_int = 1;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..8).contains(&level) {
        return Err(invalid(
            "process.ioPriority.priority",
            format!("{level}: 0 to 7"),
        ));
    }
    let ioprio = (class << 13) | level as libc::c_long;
    // SAFETY: ioprio_set takes three integers; who 0 is this process.
    checked(unsafe { libc::syscall(libc::SYS_ioprio_set, WHO_PROCESS, 0, ioprio) })
        .map_err(failed("process.ioPriority"))
}

/// The CPUs of a list like "0-3,7".
fn cpu_list(field: &'static str, list: &str) -> Result<Vec<usize>, ProcessError> {
    let bad = || invalid(field, format!("{list:?} is not a CPU list (like 0-3,7)"));
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b >= 1024 {
            return Err(bad());
        }
        cpus.extend(a..=b);
    }
    Ok(cpus)
}

fn set_affinity(field: &'static str, list: &str) -> Result<(), ProcessError> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpu_list(field, list)? {
        set.set(cpu)
            .map_err(|e| invalid(field, format!("CPU {cpu}: {e}")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| failed(field)(e.into()))
}

/// process.execCPUAffinity.initial: where exec's process runs before it
/// joins the container's cgroup.
pub fn set_initial_affinity(a: &ExecCPUAffinity) -> Result<(), ProcessError> {
    match a.initial().as_deref().filter(|l| !l.is_empty()) {
        Some(list) => set_affinity("process.execCPUAffinity.initial", list),
        None => Ok(()),
    }
}

/// process.execCPUAffinity.final: where it runs once it is in the cgroup.
pub fn set_final_affinity(a: &ExecCPUAffinity) -> Result<(), ProcessError> {
    match a.cpu_affinity_final().as_deref().filter(|l| !l.is_empty()) {
        Some(list) => set_affinity("process.execCPUAffinity.final", list),
        None => Ok(()),
    }
}

/// linux.memoryPolicy, by set_mempolicy(2).
pub fn set_memory_policy(m: &LinuxMemoryPolicy) -> Result<(), ProcessError> {
    let mode = match m.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let flags = m.flags().iter().flatten().fold(0, |f, flag| {
        f | match flag {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        }
    });
    let nodes = cpu_list(
        "linux.memoryPolicy.nodes",
        m.nodes().as_deref().unwrap_or(""),
    )?;
    let mut mask = [0u64; 16];
    for n in nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    let (ptr, bits) = match mask.iter().any(|w| *w != 0) {
        true => (mask.as_ptr(), (mask.len() * 64 + 1) as libc::c_ulong),
        false => (std::ptr::null(), 0),
    };
    // SAFETY: `ptr` is null or `mask`, which holds `bits - 1` bits, valid
    // for the call.
    checked(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, bits) })
        .map_err(failed("linux.memoryPolicy"))
}

/// linux.personality: the execution domain (flags are refused: runc takes
/// none either).
pub fn set_personality(p: &LinuxPersonality) -> Result<(), ProcessError> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(invalid(
            "linux.personality.flags",
            "personality flags are not supported".into(),
        ));
    }
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes one integer.
    checked(unsafe { libc::personality(persona) } as libc::c_long)
        .map_err(failed("linux.personality"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(cpu_list("f", "0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(cpu_list("f", "").unwrap(), Vec::<usize>::new());
        for bad in ["3-1", "x", "1-", "5000"] {
            assert!(cpu_list("f", bad).is_err(), "{bad}");
        }
    }
}
