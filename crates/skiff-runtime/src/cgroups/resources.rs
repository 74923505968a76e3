//! linux.resources written to cgroup files: memory, cpu, cpuset, pids and (v1)
//! devices. The complete resource set is issue 3's; these are the limits every
//! client sets.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{CgroupError, Hierarchy};

pub(super) fn write(
    resource: &'static str,
    dir: &Path,
    file: &str,
    value: String,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    fs::write(&path, &value).map_err(|source| CgroupError::Write {
        resource,
        path,
        value,
        source,
    })
}

pub(super) fn dir_for<'a>(
    hierarchies: &[Hierarchy],
    dirs: &'a [PathBuf],
    controller: &'static str,
    resource: &'static str,
) -> Result<&'a Path, CgroupError> {
    hierarchies
        .iter()
        .position(|h| h.has(controller))
        .map(|i| dirs[i].as_path())
        .ok_or(CgroupError::ControllerMissing {
            resource,
            controller,
        })
}

/// A new v1 cpuset group starts with empty cpus and mems, and no task can join it
/// until both are set: copy them down from the parent, level by level. A level
/// in `fresh` (just made by us) is not read first: it is empty, or (with
/// cgroup.clone_children) already holds the parent's values.
pub fn v1_init_cpuset(mount: &Path, dir: &Path, fresh: &[PathBuf]) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        let is_fresh = fresh.contains(&cur);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if !is_fresh {
                let existing = crate::procfs::read(cur.join(file)).unwrap_or_default();
                if !existing.trim().is_empty() {
                    continue;
                }
            }
            let value = crate::procfs::read(parent.join(file)).unwrap_or_default();
            write("cpu", &cur, file, value.trim().to_string())?;
        }
    }
    Ok(())
}

/// linux.resources as runc reads them: a zero limit (or an empty cpuset)
/// means "not set". Docker's `update` sends every field, with zeros for
/// those the user did not give, and runc writes none of those.
fn without_zeroes(res: &LinuxResources) -> LinuxResources {
    let mut res = res.clone();
    let zero = |v: Option<i64>| v.filter(|&n| n != 0);
    let zero_u = |v: Option<u64>| v.filter(|&n| n != 0);
    if let Some(mut m) = *res.memory() {
        m.set_limit(zero(m.limit()));
        m.set_reservation(zero(m.reservation()));
        m.set_swap(zero(m.swap()));
        m.set_kernel(zero(m.kernel()));
        m.set_kernel_tcp(zero(m.kernel_tcp()));
        res.set_memory(Some(m));
    }
    if let Some(mut c) = res.cpu().clone() {
        c.set_shares(zero_u(c.shares()));
        c.set_quota(zero(c.quota()));
        c.set_period(zero_u(c.period()));
        c.set_realtime_runtime(zero(c.realtime_runtime()));
        c.set_realtime_period(zero_u(c.realtime_period()));
        c.set_cpus(c.cpus().clone().filter(|v| !v.is_empty()));
        c.set_mems(c.mems().clone().filter(|v| !v.is_empty()));
        res.set_cpu(Some(c));
    }
    if let Some(mut b) = res.block_io().clone() {
        b.set_weight(b.weight().filter(|&w| w != 0));
        b.set_leaf_weight(b.leaf_weight().filter(|&w| w != 0));
        res.set_block_io(Some(b));
    }
    if res.pids().is_some_and(|p| p.limit() == 0) {
        res.set_pids(None);
    }
    res
}

/// `live`: the groups hold a running container (`update`).
pub fn apply_v1(
    hierarchies: &[Hierarchy],
    dirs: &[PathBuf],
    res: &LinuxResources,
    live: bool,
) -> Result<(), CgroupError> {
    let res = &without_zeroes(res);
    if let Some(mem) = res.memory() {
        let any = mem.limit().is_some()
            || mem.reservation().is_some()
            || mem.swap().is_some()
            || mem.swappiness().is_some()
            || mem.disable_oom_killer().is_some();
        if any {
            let dir = dir_for(hierarchies, dirs, "memory", "memory")?;
            v1_memory_and_swap(dir, mem.limit(), mem.swap())?;
            if let Some(r) = mem.reservation() {
                write(
                    "memory.reservation",
                    dir,
                    "memory.soft_limit_in_bytes",
                    r.to_string(),
                )?;
            }
            if let Some(s) = mem.swappiness() {
                write("memory.swappiness", dir, "memory.swappiness", s.to_string())?;
            }
            if mem.disable_oom_killer() == Some(true) {
                write(
                    "memory.disableOOMKiller",
                    dir,
                    "memory.oom_control",
                    "1".into(),
                )?;
            }
        }
    }
    if let Some(cpu) = res.cpu() {
        if cpu.shares().is_some() || cpu.quota().is_some() || cpu.period().is_some() {
            let dir = dir_for(hierarchies, dirs, "cpu", "cpu")?;
            if let Some(shares) = cpu.shares() {
                write("cpu.shares", dir, "cpu.shares", shares.to_string())?;
                // The kernel clamps to 2..=262144 without an error: a value
                // it did not keep is refused, as runc does.
                let path = dir.join("cpu.shares");
                let kept =
                    fs::read_to_string(&path).map_err(|source| CgroupError::Io { path, source })?;
                if kept.trim() != shares.to_string() {
                    return Err(CgroupError::Invalid {
                        field: "linux.resources.cpu.shares".into(),
                        reason: format!(
                            "{shares} is out of the kernel's range (it kept {})",
                            kept.trim()
                        ),
                    });
                }
            }
            // The period first: the kernel checks the quota against it. A
            // shorter period can be refused (EINVAL) while the old quota
            // over it would exceed a parent's limit: then it is written
            // again after the new quota, as runc does.
            let mut period_later = None;
            if let Some(period) = cpu.period() {
                match write("cpu.period", dir, "cpu.cfs_period_us", period.to_string()) {
                    Err(CgroupError::Write { source, .. })
                        if source.raw_os_error() == Some(libc::EINVAL) && cpu.quota().is_some() =>
                    {
                        period_later = Some(period);
                    }
                    other => other?,
                }
            }
            if let Some(quota) = cpu.quota() {
                write("cpu.quota", dir, "cpu.cfs_quota_us", quota.to_string())?;
            }
            if let Some(period) = period_later {
                write("cpu.period", dir, "cpu.cfs_period_us", period.to_string())?;
            }
        }
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            let dir = dir_for(hierarchies, dirs, "cpuset", "cpu.cpus")?;
            if let Some(cpus) = cpu.cpus() {
                write("cpu.cpus", dir, "cpuset.cpus", cpus.clone())?;
            }
            if let Some(mems) = cpu.mems() {
                write("cpu.mems", dir, "cpuset.mems", mems.clone())?;
            }
        }
    }
    if let Some(weight) = res.block_io().as_ref().and_then(|b| b.weight()) {
        let dir = dir_for(hierarchies, dirs, "blkio", "blockIO.weight")?;
        let file = if dir.join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        if !dir.join(file).exists() {
            return Err(CgroupError::ControllerMissing {
                resource: "blockIO.weight",
                controller: "blkio (with a weight-aware I/O scheduler)",
            });
        }
        write("blockIO.weight", dir, file, weight.to_string())?;
    }
    if let Some(pids) = res.pids() {
        let dir = dir_for(hierarchies, dirs, "pids", "pids.limit")?;
        write("pids.limit", dir, "pids.max", pids_value(pids.limit()))?;
    }
    if let Some(rules) = res.devices() {
        if !rules.is_empty() {
            let dir = dir_for(hierarchies, dirs, "devices", "devices")?;
            let all: Vec<LinuxDeviceCgroup> = rules
                .iter()
                .cloned()
                .chain(implicit_device_rules())
                .collect();
            super::devices_v1::apply(dir, &all, live)?;
        }
    }
    Ok(())
}

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory plus swap),
/// which the kernel keeps in order (limit <= memsw) at every write: a rise
/// writes memsw first, a cut the limit first, as runc does. An unlimited
/// memory without a swap value makes memsw unlimited too (runc).
fn v1_memory_and_swap(
    dir: &Path,
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(), CgroupError> {
    // memsw exists only with swap accounting enabled in the kernel (looked
    // up only when there is a value for it).
    let has_memsw = || dir.join("memory.memsw.limit_in_bytes").exists();
    let swap = match (limit, swap) {
        (Some(-1), None) => has_memsw().then_some(-1),
        (_, Some(s)) => has_memsw().then_some(s),
        (_, None) => None,
    };
    let set_limit = |v: i64| write("memory.limit", dir, "memory.limit_in_bytes", v.to_string());
    let set_swap = |v: i64| {
        write(
            "memory.swap",
            dir,
            "memory.memsw.limit_in_bytes",
            v.to_string(),
        )
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current: u64 = crate::procfs::read(dir.join("memory.limit_in_bytes"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(u64::MAX);
            if s == -1 || u64::try_from(s).is_ok_and(|s| current < s) {
                set_swap(s)?;
                set_limit(l)
            } else {
                set_limit(l)?;
                set_swap(s)
            }
        }
        (Some(l), None) => set_limit(l),
        (None, Some(s)) => set_swap(s),
        (None, None) => Ok(()),
    }
}

fn pids_value(limit: i64) -> String {
    if limit <= 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

/// What runc allows on top of the configured rules: mknod of any device
/// (using it still needs a rule), and the standard devices every container
/// has. Not the config's linux.devices: a node made there is usable only if
/// a rule allows it, as with runc and crun (clients that add a device add a
/// rule for it too).
pub(super) fn implicit_device_rules() -> impl Iterator<Item = LinuxDeviceCgroup> {
    const STANDARD: &[(i64, Option<i64>)] = &[
        (1, Some(3)), // null
        (1, Some(5)), // zero
        (1, Some(7)), // full
        (1, Some(8)), // random
        (1, Some(9)), // urandom
        (5, Some(0)), // tty
        (5, Some(2)), // ptmx
        (136, None),  // pts/*
    ];
    let mknod = [LinuxDeviceType::C, LinuxDeviceType::B].map(|typ| {
        let mut r = rule(typ, 0, None);
        r.set_major(None);
        r.set_access(Some("m".into()));
        r
    });
    mknod.into_iter().chain(
        STANDARD
            .iter()
            .map(|&(major, minor)| rule(LinuxDeviceType::C, major, minor)),
    )
}

fn rule(typ: LinuxDeviceType, major: i64, minor: Option<i64>) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(Some(major));
    r.set_minor(minor);
    r.set_access(Some("rwm".into()));
    r
}

/// Enables, in every ancestor of `dir` (which exists by now), the controllers the
/// tree offers, so the container's group gets their interface files.
pub fn v2_enable_controllers(root: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    enable_here(&cur)?;
    let comps: Vec<_> = rel.components().collect();
    for comp in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(comp);
        enable_here(&cur)?;
    }
    Ok(())
}

fn enable_here(dir: &Path) -> Result<(), CgroupError> {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let wanted: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    // Enabling can fail for a controller with processes in the parent (the
    // no-internal-process rule): that is the host's choice, not an error here.
    let _ = fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "));
    Ok(())
}

/// The interface file `file` must exist in `dir`, else its controller is missing.
pub(super) fn need_file(
    dir: &Path,
    file: &str,
    resource: &'static str,
    controller: &'static str,
) -> Result<(), CgroupError> {
    if dir.join(file).exists() {
        Ok(())
    } else {
        Err(CgroupError::ControllerMissing {
            resource,
            controller,
        })
    }
}

/// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), the conversion runc,
/// crun and systemd share.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// `device_rules`: whether device rules are to be installed (an eBPF
/// program on v2), or left alone.
pub fn apply_v2(dir: &Path, res: &LinuxResources, device_rules: bool) -> Result<(), CgroupError> {
    let res = &without_zeroes(res);
    if let (Some(rules), true) = (res.devices(), device_rules) {
        if !rules.is_empty() {
            let all: Vec<LinuxDeviceCgroup> = rules
                .iter()
                .cloned()
                .chain(implicit_device_rules())
                .collect();
            match super::devices_bpf::attach(dir, &all) {
                Ok(()) => {}
                // Without the host's privileges (rootless, or root of a user
                // namespace, as rootless podman runs us) the kernel refuses
                // device programs; runc goes on without one there, where no
                // device node can be made anyway, and so do we.
                Err(CgroupError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::PermissionDenied
                        && !crate::namespaces::host_root() =>
                {
                    crate::log::warn(&format!(
                        "linux.resources.devices: no device program without the host's privileges ({source}); going on without one"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
    super::extended::apply_v2(dir, res)?;
    if let Some(mem) = res.memory() {
        if let Some(limit) = mem.limit() {
            need_file(dir, "memory.max", "memory.limit", "memory")?;
            write("memory.limit", dir, "memory.max", max_or(limit))?;
            if let Some(swap) = mem.swap() {
                // v1 counts memory+swap; v2 counts swap alone.
                let value = if swap < 0 {
                    "max".into()
                } else {
                    (swap - limit.max(0)).max(0).to_string()
                };
                if dir.join("memory.swap.max").exists() {
                    write("memory.swap", dir, "memory.swap.max", value)?;
                }
            }
        }
        if let Some(r) = mem.reservation() {
            need_file(dir, "memory.low", "memory.reservation", "memory")?;
            write("memory.reservation", dir, "memory.low", max_or(r))?;
        }
    }
    if let Some(cpu) = res.cpu() {
        if let Some(shares) = cpu.shares() {
            need_file(dir, "cpu.weight", "cpu.shares", "cpu")?;
            write(
                "cpu.shares",
                dir,
                "cpu.weight",
                shares_to_weight(shares).to_string(),
            )?;
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            need_file(dir, "cpu.max", "cpu.quota", "cpu")?;
            let quota = match cpu.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            let period = cpu.period().unwrap_or(100_000);
            write("cpu.quota", dir, "cpu.max", format!("{quota} {period}"))?;
        }
        if let Some(cpus) = cpu.cpus() {
            need_file(dir, "cpuset.cpus", "cpu.cpus", "cpuset")?;
            write("cpu.cpus", dir, "cpuset.cpus", cpus.clone())?;
        }
        if let Some(mems) = cpu.mems() {
            need_file(dir, "cpuset.mems", "cpu.mems", "cpuset")?;
            write("cpu.mems", dir, "cpuset.mems", mems.clone())?;
        }
    }
    if let Some(weight) = res.block_io().as_ref().and_then(|b| b.weight()) {
        let file = if dir.join("io.weight").exists() {
            "io.weight"
        } else {
            "io.bfq.weight"
        };
        need_file(dir, file, "blockIO.weight", "io")?;
        // blkio weight (10..1000) to io.weight (1..10000), as runc converts it.
        let w = 1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990;
        write("blockIO.weight", dir, file, w.to_string())?;
    }
    if let Some(pids) = res.pids() {
        need_file(dir, "pids.max", "pids.limit", "pids")?;
        write("pids.limit", dir, "pids.max", pids_value(pids.limit()))?;
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
