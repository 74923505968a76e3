//! `start`: release init from the exec fifo, then the poststart hooks.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::ContainerError;
use crate::hooks;
use crate::state::{Record, StateRoot, Status, EXEC_FIFO};

pub fn start(root: &StateRoot, id: &str) -> Result<(), ContainerError> {
    let _t = crate::trace::phase("start");
    let record = root.load(id)?;
    let status = record.status(root);
    if status != Status::Created {
        return Err(ContainerError::wrong_status(id, status, "start"));
    }
    release(root, &record)
}

/// Lets init go on past the exec fifo, then runs the poststart hooks.
fn release(root: &StateRoot, record: &Record) -> Result<(), ContainerError> {
    let id = record.id.as_str();
    let fifo_path = root.container_dir(id)?.join(EXEC_FIFO);
    // Non-blocking open: a blocking one would hang forever if init died just now.
    let fd = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening exec.fifo")(e.into()))?;
    // SAFETY: `open` returned a new fd that nothing else owns.
    let fifo = unsafe { OwnedFd::from_raw_fd(fd) };
    // No byte (yet): init is gone, or was released meanwhile by another
    // `start`, killed before it could remove the fifo (nobody writes to it
    // again), or is about to write.
    let released_elsewhere = || {
        if record.init_alive() {
            Ok(!record.parked(&fifo_path))
        } else {
            Err(ContainerError::wrong_status(id, Status::Stopped, "start"))
        }
    };
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::Error::EINTR) => {
                if released_elsewhere()? {
                    break;
                }
            }
            Ok(_) => {
                let mut byte = [0u8; 1];
                match nix::unistd::read(fifo.as_raw_fd(), &mut byte) {
                    Ok(1) => break,
                    Ok(_) | Err(nix::Error::EAGAIN) => {
                        if released_elsewhere()? {
                            break;
                        }
                    }
                    Err(e) => return Err(ContainerError::io("reading exec.fifo")(e.into())),
                }
            }
            Err(e) => return Err(ContainerError::io("waiting on exec.fifo")(e.into())),
        }
    }
    let _ = fs::remove_file(&fifo_path);
    poststart(record);
    Ok(())
}

/// The poststart hooks; their failures are warnings, since the container is
/// already running.
pub(super) fn poststart(record: &Record) {
    if let Some(list) = record.hooks.as_ref().and_then(|h| h.poststart().as_ref()) {
        hooks::run_all_warning(
            "poststart",
            list,
            &record.hook_state(Status::Running),
            Some(&record.bundle),
        );
    }
}
