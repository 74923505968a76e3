//! The five capability sets. Order matters: the bounding set is reduced while
//! CAP_SETPCAP is still held, the user switch keeps the permitted set
//! (PR_SET_KEEPCAPS), then effective, permitted and inheritable are set in one
//! capset and the ambient set is raised last, since it must be a subset of both
//! permitted and inheritable.

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::ProcessError;
use crate::sys;

/// The capability sets as bitmasks.
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(set: &'static str, caps: &Option<Capabilities>, last_cap: u8) -> Result<u64, ProcessError> {
    let mut m = 0u64;
    for cap in caps.iter().flatten() {
        let name = format!("CAP_{cap}");
        let c = caps::Capability::from_str(&name).map_err(|_| ProcessError::UnknownCapability {
            set,
            name: name.clone(),
        })?;
        // Like runc, a capability the running kernel does not have is skipped.
        if c.index() <= last_cap {
            m |= c.bitmask();
        }
    }
    Ok(m)
}

/// The highest capability number the running kernel knows (read once per
/// process: setting up an identity asks three times).
pub fn last_cap() -> u8 {
    static LAST: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        crate::procfs::read("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

impl CapSets {
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<CapSets, ProcessError> {
        let last = last_cap();
        let Some(c) = caps else {
            return Ok(CapSets {
                bounding: 0,
                effective: 0,
                permitted: 0,
                inheritable: 0,
                ambient: 0,
            });
        };
        Ok(CapSets {
            bounding: mask("bounding", c.bounding(), last)?,
            effective: mask("effective", c.effective(), last)?,
            permitted: mask("permitted", c.permitted(), last)?,
            inheritable: mask("inheritable", c.inheritable(), last)?,
            ambient: mask("ambient", c.ambient(), last)?,
        })
    }

    /// Drops every capability not in the bounding set.
    pub fn apply_bounding(&self) -> Result<(), ProcessError> {
        for cap in 0..=last_cap() {
            if self.bounding & (1u64 << cap) == 0 {
                sys::prctl(libc::PR_CAPBSET_DROP, cap as u64, 0).map_err(|source| {
                    ProcessError::Capabilities {
                        step: "dropping from the bounding set",
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Sets effective, permitted, inheritable and ambient (after the user switch).
    pub fn apply_sets(&self) -> Result<(), ProcessError> {
        sys::capset(self.effective, self.permitted, self.inheritable).map_err(|source| {
            ProcessError::Capabilities {
                step: "capset",
                source,
            }
        })?;
        // The kernel raises an ambient capability only if it is permitted
        // and inheritable; others are left out, as runc does (its default
        // spec lists ambient capabilities but no inheritable ones).
        let raisable = self.ambient & self.permitted & self.inheritable;
        for cap in 0..=last_cap() {
            if raisable & (1u64 << cap) != 0 {
                sys::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as u64,
                    cap as u64,
                )
                .map_err(|source| ProcessError::Capabilities {
                    step: "raising an ambient capability",
                    source,
                })?;
            }
        }
        Ok(())
    }
}
