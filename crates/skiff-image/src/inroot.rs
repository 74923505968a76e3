//! openat2(2) as the engine uses it to walk a tree it does not trust (a
//! layer being unpacked, a container's rootfs): retried when the kernel
//! asks. With RESOLVE_IN_ROOT (or RESOLVE_BENEATH) a rename or mount
//! anywhere on the host during the walk makes the kernel answer EAGAIN
//! rather than risk a wrong resolution; seen here when containers start
//! side by side. skiff-runtime's rootfs::resolve does the same for the
//! runtime.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How often an EAGAIN is retried before it is returned: each one means
/// another rename or mount raced this very walk.
const TRIES: u32 = 64;

/// openat2 with `resolve`, retried (bounded) on EAGAIN.
pub fn openat2<Fd: AsFd>(
    dir: Fd,
    path: &str,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let dir = dir.as_fd();
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(Errno::AGAIN) if tries < TRIES => tries += 1,
            other => return other,
        }
    }
}
