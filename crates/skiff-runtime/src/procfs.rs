//! Reads of /proc files in one go, and writes into /proc that cannot be
//! redirected: the file is opened without following symlinks and must be on a
//! procfs, so a mount or link planted by the image or the config over
//! /proc/sys/... cannot turn a sysctl or an oom_score_adj write into a write
//! somewhere else (the CVE-2025-52881 class).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

/// Reads a file of /proc (or of another pseudo filesystem) whole. Such files
/// report size 0, on which `fs::read_to_string` starts with a 32-byte read
/// and doubles from there, a syscall per step; this reads into 8 KiB at once.
pub fn read(path: impl AsRef<Path>) -> io::Result<String> {
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn write(path: &Path, value: &str) -> io::Result<()> {
    let fd = open(
        path,
        OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if fstatfs(fd.as_fd())?.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(io::Error::other(format!(
            "{} is not on procfs: refusing to write",
            path.display()
        )));
    }
    std::fs::File::from(fd).write_all(value.as_bytes())
}
