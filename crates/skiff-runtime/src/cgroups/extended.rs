//! The less common linux.resources: memory kernel/hierarchy settings, cpu
//! realtime/idle/burst, block I/O per-device weights and throttles, hugepage
//! limits, network class and priorities (v1), rdma, and `unified` (v2 files).

use std::path::Path;

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use super::resources::{dir_for, need_file, write};
use super::{CgroupError, Hierarchy};

/// v1 hierarchies, plus the unified directory of a hybrid host (controllers
/// such as hugetlb may live only there).
pub fn apply_v1(
    hierarchies: &[Hierarchy],
    dirs: &[std::path::PathBuf],
    unified: Option<&Path>,
    res: &LinuxResources,
) -> Result<(), CgroupError> {
    if let Some(mem) = res.memory() {
        if mem.kernel().is_some() || mem.kernel_tcp().is_some() || mem.use_hierarchy().is_some() {
            let dir = dir_for(hierarchies, dirs, "memory", "memory")?;
            // Kernel memory limits are gone from recent kernels (since 5.16
            // the file takes a write and keeps its value): set where the
            // kernel takes them (read back, within a page's rounding), else
            // ignored with a warning naming the field (runc 1.1 ignores it
            // with a warning).
            if let Some(k) = mem.kernel() {
                let file = "memory.kmem.limit_in_bytes";
                let set = dir.join(file).exists()
                    && write("memory.kernel", dir, file, k.to_string()).is_ok()
                    && std::fs::read_to_string(dir.join(file))
                        .ok()
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .is_some_and(|v| (v - k).abs() < 1 << 16);
                if !set {
                    crate::log::warn(
                        "linux.resources.memory.kernel: ignored (this kernel has no kernel memory limit)",
                    );
                }
            }
            if let Some(k) = mem.kernel_tcp() {
                if dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
                    write(
                        "memory.kernelTCP",
                        dir,
                        "memory.kmem.tcp.limit_in_bytes",
                        k.to_string(),
                    )?;
                } else {
                    crate::log::warn(
                        "linux.resources.memory.kernelTCP: ignored (this kernel has no kernel TCP memory limit)",
                    );
                }
            }
            if let Some(h) = mem.use_hierarchy() {
                write(
                    "memory.useHierarchy",
                    dir,
                    "memory.use_hierarchy",
                    u8::from(h).to_string(),
                )?;
            }
        }
    }
    if let Some(cpu) = res.cpu() {
        let wanted = [
            (
                "cpu.realtimeRuntime",
                "cpu.rt_runtime_us",
                cpu.realtime_runtime().map(|v| v.to_string()),
            ),
            (
                "cpu.realtimePeriod",
                "cpu.rt_period_us",
                cpu.realtime_period().map(|v| v.to_string()),
            ),
            ("cpu.idle", "cpu.idle", cpu.idle().map(|v| v.to_string())),
            (
                "cpu.burst",
                "cpu.cfs_burst_us",
                cpu.burst().map(|v| v.to_string()),
            ),
        ];
        // The realtime period must be set before the runtime it bounds.
        for (resource, file, value) in wanted.into_iter().rev() {
            if let Some(v) = value {
                let dir = dir_for(hierarchies, dirs, "cpu", resource)?;
                need_file(dir, file, resource, "cpu")?;
                write(resource, dir, file, v)?;
            }
        }
    }
    if let Some(bio) = res.block_io() {
        let throttles = [
            (
                "blockIO.throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                bio.throttle_read_bps_device(),
            ),
            (
                "blockIO.throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                bio.throttle_write_bps_device(),
            ),
            (
                "blockIO.throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                bio.throttle_read_iops_device(),
            ),
            (
                "blockIO.throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                bio.throttle_write_iops_device(),
            ),
        ];
        for (resource, file, list) in throttles {
            for t in list.iter().flatten() {
                let dir = dir_for(hierarchies, dirs, "blkio", resource)?;
                write(
                    resource,
                    dir,
                    file,
                    format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
        for w in bio.weight_device().iter().flatten() {
            let dir = dir_for(hierarchies, dirs, "blkio", "blockIO.weightDevice")?;
            let file = if dir.join("blkio.weight_device").exists() {
                "blkio.weight_device"
            } else {
                "blkio.bfq.weight_device"
            };
            need_file(
                dir,
                file,
                "blockIO.weightDevice",
                "blkio (with a weight-aware I/O scheduler)",
            )?;
            if let Some(weight) = w.weight() {
                write(
                    "blockIO.weightDevice",
                    dir,
                    file,
                    format!("{}:{} {weight}", w.major(), w.minor()),
                )?;
            }
        }
        if let Some(lw) = bio.leaf_weight() {
            let dir = dir_for(hierarchies, dirs, "blkio", "blockIO.leafWeight")?;
            need_file(
                dir,
                "blkio.leaf_weight",
                "blockIO.leafWeight",
                "blkio (CFQ)",
            )?;
            write(
                "blockIO.leafWeight",
                dir,
                "blkio.leaf_weight",
                lw.to_string(),
            )?;
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        match dir_for(hierarchies, dirs, "hugetlb", "hugepageLimits") {
            Ok(dir) => write(
                "hugepageLimits",
                dir,
                &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                h.limit().to_string(),
            )?,
            // A hybrid host may offer hugetlb only in its cgroup2 tree.
            Err(e) => {
                let dir = unified.ok_or(e)?;
                let file = format!("hugetlb.{}.max", h.page_size());
                need_file(dir, &file, "hugepageLimits", "hugetlb")?;
                write("hugepageLimits", dir, &file, h.limit().to_string())?;
            }
        }
    }
    if let Some(net) = res.network() {
        if let Some(class) = net.class_id() {
            let dir = dir_for(hierarchies, dirs, "net_cls", "network.classID")?;
            write("network.classID", dir, "net_cls.classid", class.to_string())?;
        }
        for p in net.priorities().iter().flatten() {
            let dir = dir_for(hierarchies, dirs, "net_prio", "network.priorities")?;
            write(
                "network.priorities",
                dir,
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    if let Some(rdma) = res.rdma() {
        for (dev, limits) in rdma {
            let dir = dir_for(hierarchies, dirs, "rdma", "rdma")?;
            write("rdma", dir, "rdma.max", rdma_line(dev, limits))?;
        }
    }
    if let Some(unified_res) = res.unified().as_ref().filter(|u| !u.is_empty()) {
        let dir = unified.ok_or(CgroupError::ControllerMissing {
            resource: "unified",
            controller: "cgroup2 (this host has cgroup v1 only)",
        })?;
        write_unified(dir, unified_res)?;
    }
    Ok(())
}

pub fn apply_v2(dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    // v1-only memory knobs: clients set them without knowing the host, so
    // they are dropped with a warning rather than failing the container.
    if let Some(mem) = res.memory() {
        if mem.swappiness().is_some_and(|s| s != u64::MAX) {
            crate::log::warn(
                "linux.resources.memory.swappiness: not available on cgroup v2, ignored",
            );
        }
        if mem.disable_oom_killer() == Some(true) {
            crate::log::warn(
                "linux.resources.memory.disableOOMKiller: not available on cgroup v2, ignored",
            );
        }
    }
    if let Some(cpu) = res.cpu() {
        if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
            return Err(CgroupError::ControllerMissing {
                resource: "cpu.realtimeRuntime",
                controller: "cpu realtime (cgroup v1 only)",
            });
        }
        if let Some(idle) = cpu.idle() {
            need_file(dir, "cpu.idle", "cpu.idle", "cpu")?;
            write("cpu.idle", dir, "cpu.idle", idle.to_string())?;
        }
        if let Some(burst) = cpu.burst() {
            need_file(dir, "cpu.max.burst", "cpu.burst", "cpu")?;
            write("cpu.burst", dir, "cpu.max.burst", burst.to_string())?;
        }
    }
    if let Some(bio) = res.block_io() {
        for w in bio.weight_device().iter().flatten() {
            if let Some(weight) = w.weight() {
                need_file(dir, "io.weight", "blockIO.weightDevice", "io")?;
                let v = 1 + u64::from(weight).saturating_sub(10) * 9999 / 990;
                write(
                    "blockIO.weightDevice",
                    dir,
                    "io.weight",
                    format!("{}:{} {v}", w.major(), w.minor()),
                )?;
            }
        }
        let throttles: [(&str, &'static str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
            (
                "rbps",
                "blockIO.throttleReadBpsDevice",
                bio.throttle_read_bps_device(),
            ),
            (
                "wbps",
                "blockIO.throttleWriteBpsDevice",
                bio.throttle_write_bps_device(),
            ),
            (
                "riops",
                "blockIO.throttleReadIOPSDevice",
                bio.throttle_read_iops_device(),
            ),
            (
                "wiops",
                "blockIO.throttleWriteIOPSDevice",
                bio.throttle_write_iops_device(),
            ),
        ];
        for (key, resource, list) in throttles {
            for t in list.iter().flatten() {
                need_file(dir, "io.max", resource, "io")?;
                write(
                    resource,
                    dir,
                    "io.max",
                    format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.max", h.page_size());
        need_file(dir, &file, "hugepageLimits", "hugetlb")?;
        write("hugepageLimits", dir, &file, h.limit().to_string())?;
    }
    if res
        .network()
        .as_ref()
        .is_some_and(|n| n.class_id().is_some() || n.priorities().is_some())
    {
        return Err(CgroupError::ControllerMissing {
            resource: "network",
            controller: "net_cls/net_prio (cgroup v1 only)",
        });
    }
    if let Some(rdma) = res.rdma() {
        for (dev, limits) in rdma {
            need_file(dir, "rdma.max", "rdma", "rdma")?;
            write("rdma", dir, "rdma.max", rdma_line(dev, limits))?;
        }
    }
    if let Some(u) = res.unified() {
        write_unified(dir, u)?;
    }
    Ok(())
}

fn rdma_line(dev: &str, l: &oci_spec::runtime::LinuxRdma) -> String {
    let mut line = dev.to_string();
    if let Some(h) = l.hca_handles() {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects() {
        line.push_str(&format!(" hca_object={o}"));
    }
    line
}

/// linux.resources.unified: each key is a file of the group, written as given.
fn write_unified(
    dir: &Path,
    u: &std::collections::HashMap<String, String>,
) -> Result<(), CgroupError> {
    for (key, value) in u {
        if key.contains('/') || key.starts_with('.') || !dir.join(key).is_file() {
            return Err(CgroupError::Write {
                resource: "unified",
                path: dir.join(key),
                value: value.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{key:?} is not a file of the group"),
                ),
            });
        }
        write("unified", dir, key, value.clone())?;
    }
    Ok(())
}
