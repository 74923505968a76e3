//! process.apparmorProfile, process.selinuxLabel and linux.mountLabel. An
//! AppArmor profile is applied (on the next execve) where the host has
//! AppArmor; where it has not, or where an SELinux label is asked for
//! (skiff does not apply SELinux labels), the container is refused, naming
//! the field, as runc refuses a process label without SELinux: it must never
//! run unconfined because a confinement it asked for could not be had. A
//! mount label without SELinux is ignored with a warning, as runc ignores it.

use oci_spec::runtime::{Linux, Process};

use super::ProcessError;

pub fn apparmor_enabled() -> bool {
    crate::procfs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

fn refused(field: &'static str, reason: &str) -> ProcessError {
    ProcessError::Attribute {
        field,
        source: std::io::Error::new(std::io::ErrorKind::Unsupported, reason.to_string()),
    }
}

/// Refuses what cannot be applied here; warns about what is ignored.
pub fn check(p: &Process, linux: Option<&Linux>) -> Result<(), ProcessError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if set(p.apparmor_profile()) && !apparmor_enabled() {
        return Err(refused(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host",
        ));
    }
    if set(p.selinux_label()) {
        return Err(refused(
            "process.selinuxLabel",
            match selinux_enabled() {
                false => {
                    "selinux label is specified in config, but selinux is disabled or not supported"
                }
                true => "SELinux labels are not supported by skiff",
            },
        ));
    }
    if linux.is_some_and(|l| set(l.mount_label())) {
        if selinux_enabled() {
            return Err(refused(
                "linux.mountLabel",
                "SELinux labels are not supported by skiff",
            ));
        }
        crate::log::warn("linux.mountLabel: ignored (SELinux is not enabled on this host)");
    }
    Ok(())
}

/// Asks AppArmor to confine the process in `profile` from its next execve
/// on (what runc and crun write; the older file where the newer is absent).
pub fn apply_apparmor(p: &Process) -> Result<(), ProcessError> {
    let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    // Through procfs::write: the file must be procfs's (a file the image
    // planted in a /proc that is not would leave the process unconfined).
    let line = format!("exec {profile}");
    let write = |path: &str| crate::procfs::write(std::path::Path::new(path), &line);
    write("/proc/thread-self/attr/apparmor/exec")
        .or_else(|_| write("/proc/self/attr/exec"))
        .map_err(|source| ProcessError::Attribute {
            field: "process.apparmorProfile",
            source,
        })
}
