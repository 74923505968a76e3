//! The guest a sandbox boots: where its image is found, and how big the VM
//! is made from a container's (or pod's) limits.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::VmError;

/// Where `scripts/vm-image.sh --install` puts the image and the helpers.
pub const DEFAULT_DIR: &str = "/var/lib/skiff/vm";

/// The guest image and the helper binaries: each from its environment
/// variable, else from DEFAULT_DIR.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub vhost_device_vsock: PathBuf,
    /// None when not installed: the rootfs then goes on a disk instead.
    pub virtiofsd: Option<PathBuf>,
}

impl GuestImage {
    pub fn find() -> Result<GuestImage, VmError> {
        Ok(GuestImage {
            kernel: image_path("SKIFF_VM_KERNEL", "vmlinuz")?,
            initramfs: image_path("SKIFF_VM_INITRAMFS", "initramfs.gz")?,
            vhost_device_vsock: image_path("SKIFF_VM_VSOCK_BACKEND", "vhost-device-vsock")?,
            virtiofsd: image_path("SKIFF_VM_VIRTIOFSD", "virtiofsd").ok(),
        })
    }
}

fn image_path(env: &str, default: &str) -> Result<PathBuf, VmError> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(DEFAULT_DIR).join(default));
    if !path.exists() {
        return Err(VmError::Missing(format!(
            "{}: missing (set {env}, or run scripts/vm-image.sh --install)",
            path.display()
        )));
    }
    Ok(path)
}

/// A VM's size: vCPUs and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestSize {
    pub cpus: u32,
    pub memory_mib: u32,
}

/// Guest memory on top of a memory limit: the kernel, the agent and the
/// initramfs's tmpfs (~40 MiB used after boot under the cloud kernel).
pub const MEMORY_OVERHEAD_MIB: u64 = 64;
/// The least a guest gets, and what it gets without a memory limit.
pub const MEMORY_FLOOR_MIB: u64 = 256;
/// The most vCPUs a guest gets without a CPU limit.
pub const DEFAULT_CPUS: u32 = 1;

impl GuestSize {
    /// The rule (docs/vm.md, "Sizing"): memory is the limit rounded up to
    /// MiB plus MEMORY_OVERHEAD_MIB, at least MEMORY_FLOOR_MIB; vCPUs are
    /// quota / period rounded up, at least 1, at most the host's CPUs. No
    /// limit: the floor and one vCPU. The limits also hold inside the
    /// guest, as the container's cgroup there.
    pub fn from_limits(memory_bytes: Option<i64>, cpu: Option<(i64, u64)>) -> GuestSize {
        let memory_mib = match memory_bytes.filter(|b| *b > 0) {
            Some(b) => (b as u64).div_ceil(1 << 20) + MEMORY_OVERHEAD_MIB,
            None => MEMORY_FLOOR_MIB,
        }
        .max(MEMORY_FLOOR_MIB);
        let host = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let cpus = match cpu {
            Some((quota, period)) if quota > 0 && period > 0 => {
                (quota as u64).div_ceil(period).clamp(1, host)
            }
            _ => DEFAULT_CPUS as u64,
        };
        GuestSize {
            cpus: cpus as u32,
            memory_mib: memory_mib.min(u32::MAX as u64) as u32,
        }
    }

    /// The size for the first task of a pod, which boots its VM: the pod's
    /// limits when containerd's CRI gives them, else the task's own.
    pub fn for_first_task(spec: &Value) -> GuestSize {
        GuestSize::from_pod_annotations(spec).unwrap_or_else(|| GuestSize::from_oci(spec))
    }

    /// The pod's limits from the annotations containerd's CRI (1.6 and
    /// 2.x) puts on the sandbox (pause) container's spec when the kubelet
    /// gives PodSandboxConfig.linux.resources: `io.kubernetes.cri.
    /// sandbox-memory` (bytes, 0 for none), `sandbox-cpu-quota` and
    /// `sandbox-cpu-period` (µs, quota 0 or -1 for none). None without them.
    pub fn from_pod_annotations(spec: &Value) -> Option<GuestSize> {
        let a = &spec["annotations"];
        let number = |key: &str| {
            a[format!("io.kubernetes.cri.sandbox-{key}")]
                .as_str()
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let memory = number("memory");
        let quota = number("cpu-quota");
        if memory.is_none() && quota.is_none() {
            return None;
        }
        let period = number("cpu-period").filter(|p| *p > 0).unwrap_or(100_000);
        Some(GuestSize::from_limits(
            memory,
            quota.map(|q| (q, period as u64)),
        ))
    }

    /// The size for an OCI config's `linux.resources` (memory.limit,
    /// cpu.quota and cpu.period, default period 100 ms).
    pub fn from_oci(spec: &Value) -> GuestSize {
        let r = &spec["linux"]["resources"];
        let period = r["cpu"]["period"].as_u64().unwrap_or(100_000);
        GuestSize::from_limits(
            r["memory"]["limit"].as_i64(),
            r["cpu"]["quota"].as_i64().map(|q| (q, period)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vm_is_sized_from_the_limits_with_a_floor() {
        let mib = 1 << 20;
        assert_eq!(GuestSize::from_limits(None, None).memory_mib, 256);
        assert_eq!(GuestSize::from_limits(Some(64 * mib), None).memory_mib, 256);
        assert_eq!(
            GuestSize::from_limits(Some(384 * mib), None).memory_mib,
            448
        );
        assert_eq!(
            GuestSize::from_limits(Some(384 * mib + 1), None).memory_mib,
            449
        );
        assert_eq!(GuestSize::from_limits(Some(-1), None).memory_mib, 256);
        assert_eq!(GuestSize::from_limits(None, None).cpus, 1);
        assert_eq!(
            GuestSize::from_limits(None, Some((50_000, 100_000))).cpus,
            1
        );
        let host = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(
            GuestSize::from_limits(None, Some((150_000, 100_000))).cpus,
            2.min(host)
        );
        assert_eq!(GuestSize::from_limits(None, Some((-1, 100_000))).cpus, 1);
        assert_eq!(
            GuestSize::from_limits(None, Some((1_000_000, 100_000))).cpus,
            host
        );
        let spec = serde_json::json!({"linux": {"resources": {
            "memory": {"limit": 512 * mib}, "cpu": {"quota": 100_000, "period": 100_000}}}});
        assert_eq!(
            GuestSize::from_oci(&spec),
            GuestSize {
                cpus: 1,
                memory_mib: 576
            }
        );
        // The CRI's pod limits win over the pause container's own.
        let mut pause = spec.clone();
        pause["annotations"] = serde_json::json!({
            "io.kubernetes.cri.sandbox-memory": "1073741824",
            "io.kubernetes.cri.sandbox-cpu-quota": "50000",
            "io.kubernetes.cri.sandbox-cpu-period": "100000",
        });
        assert_eq!(
            GuestSize::for_first_task(&pause),
            GuestSize {
                cpus: 1,
                memory_mib: 1088
            }
        );
        // containerd writes 0 for a limit the pod does not have.
        pause["annotations"]["io.kubernetes.cri.sandbox-memory"] = "0".into();
        pause["annotations"]["io.kubernetes.cri.sandbox-cpu-quota"] = "0".into();
        assert_eq!(
            GuestSize::for_first_task(&pause),
            GuestSize::from_limits(None, None)
        );
        assert_eq!(GuestSize::for_first_task(&spec), GuestSize::from_oci(&spec));
    }
}
