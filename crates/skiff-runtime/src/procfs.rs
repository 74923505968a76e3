//! Reads of /proc files in one go, and writes into /proc that cannot be
//! redirected: the file is opened without following symlinks and must be on a
//! procfs, so a mount or link planted by the image or the config over
//! /proc/sys/... cannot turn a sysctl or an oom_score_adj write into a write
//! somewhere else (the CVE-2025-52881 class).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

/// mountinfo's octal escapes (`\040` for a space, `\134` for a
/// backslash) undone, byte for byte.
pub fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'\\')
            .then(|| bytes.get(i + 1..i + 4))
            .flatten()
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

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
