//! process.terminal: a pty made inside the container (from its own devpts), whose
//! master goes to the caller over --console-socket (SCM_RIGHTS) and whose slave
//! becomes init's stdio and controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use nix::unistd::{dup2, setsid};

use super::ProcessError;
use crate::sys;

fn err(step: &'static str) -> impl FnOnce(nix::Error) -> ProcessError {
    move |e| ProcessError::Terminal {
        step,
        source: e.into(),
    }
}

/// Creates the pty, sends its master over `socket`, and makes the slave stdio.
/// With `console`, the slave is also bound onto /dev/console, as runc does.
pub fn setup(socket: RawFd, size: Option<(u16, u16)>, console: bool) -> Result<(), ProcessError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(err("opening /dev/ptmx"))?;
    grantpt(&master).map_err(err("grantpt"))?;
    unlockpt(&master).map_err(err("unlockpt"))?;
    let name = ptsname_r(&master).map_err(err("ptsname"))?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("opening the pty slave"))?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some((rows, cols)) = size {
        sys::set_window_size(slave.as_fd(), rows, cols).map_err(|source| {
            ProcessError::Terminal {
                step: "setting the window size",
                source,
            }
        })?;
    }
    if console {
        bind_dev_console(&name).map_err(|source| ProcessError::Terminal {
            step: "binding the pty onto /dev/console",
            source,
        })?;
    }
    send_master(socket, master.as_raw_fd(), &name)
        .map_err(err("sending the master over --console-socket"))?;
    drop(master);
    let _ = nix::unistd::close(socket);
    setsid().map_err(err("setsid"))?;
    sys::set_controlling_tty(slave.as_fd()).map_err(|source| ProcessError::Terminal {
        step: "TIOCSCTTY",
        source,
    })?;
    for target in 0..3 {
        dup2(slave.as_raw_fd(), target).map_err(err("dup2 onto stdio"))?;
    }
    Ok(())
}

/// Sends a pty master over a console socket as runc does: one message, the
/// slave's name as its bytes, the master in SCM_RIGHTS.
pub fn send_master(socket: RawFd, master: RawFd, name: &str) -> nix::Result<()> {
    let fds = [master];
    sendmsg::<()>(
        socket,
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// The slave name of a pty master: its index in the devpts it was opened
/// in, which need not be the caller's.
pub fn slave_name(master: std::os::fd::BorrowedFd<'_>) -> std::io::Result<String> {
    Ok(format!("/dev/pts/{}", sys::pty_index(master)?))
}

/// Binds the pty slave onto a fresh /dev/console: whatever was there (a symlink
/// the image planted, say) is removed first and the new file is created without
/// following links, so the bind cannot land elsewhere (CVE-2025-52565 class).
fn bind_dev_console(slave: &str) -> std::io::Result<()> {
    use nix::fcntl::openat;
    use nix::mount::{mount, MsFlags};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let dev = open(
        "/dev",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let dev = unsafe { OwnedFd::from_raw_fd(dev) };
    match unlinkat(Some(dev.as_raw_fd()), "console", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let file = openat(
        Some(dev.as_raw_fd()),
        "console",
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: `openat` returned a new fd that nothing else owns.
    let file = unsafe { OwnedFd::from_raw_fd(file) };
    let target = format!("/proc/self/fd/{}", file.as_raw_fd());
    mount(
        Some(slave),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
}

/// Receives a pty master sent over SCM_RIGHTS (the `run -t` relay's end of the
/// console socket).
pub fn receive_master(sock: &std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other("no pty master received"))
}
