//! process.user: supplementary groups, gid, uid (keeping capabilities across the
//! switch), and the umask.

use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use super::ProcessError;
use crate::sys;

fn err(step: &'static str) -> impl FnOnce(nix::Error) -> ProcessError {
    move |e| ProcessError::User {
        step,
        source: e.into(),
    }
}

/// Switches to the configured user. `setgroups_allowed` is false in a user
/// namespace whose gid map was written with setgroups denied.
pub fn switch(user: &User, setgroups_allowed: bool) -> Result<(), ProcessError> {
    sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0).map_err(|source| ProcessError::User {
        step: "keeping capabilities",
        source,
    })?;
    // Groups that cannot be given are refused, not dropped (runc: "cannot
    // set any additional groups in a rootless container"); the primary
    // group alone is what the process has anyway.
    let extra = user
        .additional_gids()
        .iter()
        .flatten()
        .any(|g| *g != user.gid());
    if !setgroups_allowed && extra {
        return Err(ProcessError::User {
            step: "process.user.additionalGids: setgroups is denied in this user namespace (rootless: no additional groups can be set)",
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        });
    }
    if setgroups_allowed {
        // Each once, as runc passes them (the kernel would list a
        // duplicate twice in the process's groups).
        let mut gids: Vec<Gid> = Vec::new();
        for gid in user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
        {
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
        setgroups(&gids).map_err(err("setgroups (additionalGids)"))?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(err("setresgid (gid)"))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(err("setresuid (uid)"))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0).map_err(|source| ProcessError::User {
        step: "clearing keep-capabilities",
        source,
    })?;
    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask));
    }
    Ok(())
}
