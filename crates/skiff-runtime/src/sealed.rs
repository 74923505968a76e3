//! The runtime's own binary, out of a container's reach (CVE-2019-5736).
//!
//! A process that enters a container (init, an exec'd process, the shim's
//! children) is this binary until it execs the container's program, and a
//! program whose interpreter is `/proc/self/exe` makes the kernel run this
//! binary again, inside the container, where a process of the container
//! can open it through /proc/PID/exe and, once it has exited, write the
//! host's file. So a binary about to put itself into containers first
//! re-executes itself from where no write can reach its file: through a
//! read-only clone of its own mount (a detached mount holding just the
//! file, open_tree and mount_setattr: no copy, where this process may
//! make mounts), else from a sealed in-memory copy (a memfd no one can
//! write, grow or shrink, as runc and crun do). What the container can
//! reach is then that, and a write to it fails (EROFS, EPERM).

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStringExt;

/// The seals the copy carries: no write, no resize, no more changes.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// memfd_create's MFD_EXEC (Linux 6.3): an executable memfd where the
/// `vm.memfd_noexec` sysctl would otherwise make it non-executable.
const MFD_EXEC: libc::c_uint = 0x10;

/// Whether this process's binary is out of reach of a write: on a
/// read-only mount, or a sealed copy.
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| {
        // SAFETY: F_GET_SEALS on a descriptor we own.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        seals >= 0 && seals & SEALS == SEALS
            || nix::sys::statvfs::fstatvfs(&f)
                .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    })
}

/// Re-executes this process from a sealed copy of its binary, with the
/// same arguments and environment, unless it already runs from one.
/// Returns only on failure.
pub fn ensure() -> io::Result<()> {
    if is_sealed() {
        // Run from a descriptor, its name would be the descriptor's
        // number: the one of argv[0], as ps should show it.
        if let Some(name) = std::env::args_os().next() {
            let base = std::path::Path::new(&name)
                .file_name()
                .map(|b| b.to_os_string())
                .unwrap_or(name);
            if let Ok(c) = c_string(base) {
                // SAFETY: PR_SET_NAME reads a NUL-terminated string (the
                // kernel keeps its first 15 bytes).
                unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr()) };
            }
        }
        return Ok(());
    }
    let copy = read_only_clone().or_else(|_| sealed_copy())?;
    let args: Vec<CString> = std::env::args_os()
        .map(c_string)
        .collect::<io::Result<_>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            c_string(kv)
        })
        .collect::<io::Result<_>>()?;
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: execveat with NUL-terminated arrays of C strings that live
    // across the call; it returns only on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(with_context(
        "running the sealed copy of this binary",
        io::Error::last_os_error(),
    ))
}

/// This binary, opened through a read-only clone of its mount (CAP_SYS_ADMIN
/// and Linux 5.12).
fn read_only_clone() -> io::Result<std::os::fd::OwnedFd> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let tree = crate::sys::open_tree_clone(std::path::Path::new("/proc/self/exe"), false)?;
    crate::sys::mount_setattr(
        std::os::fd::AsFd::as_fd(&tree),
        false,
        MOUNT_ATTR_RDONLY,
        0,
        None,
    )?;
    Ok(tree)
}

/// A memfd holding this binary, sealed.
fn sealed_copy() -> io::Result<std::os::fd::OwnedFd> {
    let name = c"skiff-sealed";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a NUL-terminated name; a new fd or -1.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // A kernel before 6.3, which knows no MFD_EXEC.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(with_context("memfd_create", io::Error::last_os_error()));
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    let mut binary =
        File::open("/proc/self/exe").map_err(|e| with_context("opening /proc/self/exe", e))?;
    io::copy(&mut binary, &mut copy).map_err(|e| with_context("copying this binary", e))?;
    // SAFETY: F_ADD_SEALS on a descriptor we own.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(with_context("sealing the copy", io::Error::last_os_error()));
    }
    Ok(copy.into())
}

fn c_string(s: OsString) -> io::Result<CString> {
    CString::new(s.into_vec()).map_err(|_| io::Error::other("an argument holds a NUL byte"))
}

fn with_context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} (CVE-2019-5736 protection): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_copy_is_sealed_and_refuses_writes() {
        let copy = sealed_copy().unwrap();
        // SAFETY: F_GET_SEALS on a descriptor we own.
        let seals = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
        let mut f = File::from(copy);
        assert!(
            f.write_all(b"x").is_err(),
            "a write to the sealed copy went through"
        );
        let len = f.metadata().unwrap().len();
        assert_eq!(len, std::fs::metadata("/proc/self/exe").unwrap().len());
    }
}
