//! Network namespaces bound on files (as `ip netns add` binds them), so
//! that CNI can set one up before the container exists and it stays until
//! the container is removed.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::{Error, Result};

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("{}: a NUL in the path", path.display())))
}

/// Makes a new network namespace and binds it on `path` (a file made
/// here). A thread of its own unshares it (a namespace is per thread), so
/// this process keeps its own; the thread ends once it is bound.
pub fn create(path: &Path) -> Result<()> {
    fs::File::create(path).map_err(|e| Error::io(format!("making {}", path.display()), e))?;
    let target = c_path(path)?;
    let made = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: unshare and mount with NUL-terminated strings that live
        // through the calls; they change only this thread's namespace and
        // add one mount.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let source = c"/proc/thread-self/ns/net";
            if libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // Loopback up, as runc and crun set it in a namespace they make.
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if sock >= 0 {
                let mut req: libc::ifreq = std::mem::zeroed();
                req.ifr_name[..2].copy_from_slice(&[b'l' as libc::c_char, b'o' as libc::c_char]);
                if libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req) == 0 {
                    req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                    libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req);
                }
                libc::close(sock);
            }
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the namespace's thread panicked")));
    made.map_err(|e| {
        let _ = fs::remove_file(path);
        Error::io(
            format!("making a network namespace at {}", path.display()),
            e,
        )
    })
}

/// Whether `path` holds a network namespace (a bind of one): false for
/// the plain file left when its mount went (a reboot, a lazy unmount).
pub fn is_bound(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let Ok(c) = c_path(path) else { return false };
    // SAFETY: statfs fills the struct we pass, from a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == NSFS_MAGIC
    }
}

/// Unbinds and removes a namespace made by `create` (nothing there: fine).
pub fn remove(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let target = c_path(path)?;
    // SAFETY: umount2 of a path string that lives through the call.
    let r = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        // Not mounted (a create that failed halfway): the file goes anyway.
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(Error::io(format!("unmounting {}", path.display()), e));
        }
    }
    fs::remove_file(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))
}
