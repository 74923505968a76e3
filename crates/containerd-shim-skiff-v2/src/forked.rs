//! Library calls that clone or spawn processes, run in a forked copy of the
//! shim, the way a skiff-oci invocation would run them (but without exec'ing
//! anything: the copy runs the skiff library in-process and exits).
//!
//! Why a copy: the shim is multi-threaded (ttrpc workers, the reaper, I/O
//! copiers). The library's create and exec clone3 new processes that keep
//! running Rust code; after a raw clone of a multi-threaded process, a lock
//! another thread held at that instant (malloc's, stdio's) stays held forever
//! in the child. glibc's fork() takes those locks around the fork, so the copy
//! is a clean single-threaded process. The copy also keeps hook processes'
//! waitpid away from the shim's reaper, may setns into a mount namespace
//! (refused to a multi-threaded process), and gives init the right stdio and
//! no stray descriptors.
//!
//! The answer comes back over a SEQPACKET socketpair as one JSON message:
//! `{"ok": value}` or `{"err": message, "code": ttrpc code}`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use containerd_shim_protos::protobuf::Enum;
use containerd_shim_protos::ttrpc::Code;
use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::{dup2, fork, ForkResult};
use serde_json::{json, Value};

use crate::error::ShimError;
use crate::reaper::Reaper;

/// What the copy gets: the stdio it installs as 0, 1, 2, and the other
/// descriptors it keeps (all others are closed in the copy).
pub struct Inherit<'a> {
    pub stdio: Option<[RawFd; 3]>,
    pub keep: &'a [RawFd],
}

pub fn call(
    reaper: &Reaper,
    inherit: Inherit<'_>,
    work: impl FnOnce() -> Result<Value, ShimError>,
) -> Result<Value, ShimError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ShimError::io("creating the runtime's answer socket")(e.into()))?;
    let guard = reaper.lock_for_fork();
    // SAFETY: the child only runs the skiff library (which, like skiff-oci,
    // expects a single-threaded process: glibc's fork makes malloc usable in
    // it) and then _exits; it never touches the other threads' state.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The reaper's lock is held in this copy's memory; never touched here.
            std::mem::forget(guard);
            drop(ours);
            let reply = match prepare_copy(&inherit, theirs.as_raw_fd()).and_then(|()| work()) {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "err": e.to_string(), "code": e.code() as i32 }),
            };
            let _ = send(
                theirs.as_raw_fd(),
                reply.to_string().as_bytes(),
                MsgFlags::empty(),
            );
            // SAFETY: ends the copy without running destructors or atexit
            // handlers that belong to the server's state.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            // The reaper is locked until `forked`: the copy cannot have been
            // collected yet, so the pid is still its own.
            let copy = skiff_runtime::sys::pidfd_open(child).ok();
            guard.forked(child);
            drop(theirs);
            let reply = answer(&ours, copy.as_ref());
            if let Some(pidfd) = &copy {
                gone(pidfd);
            }
            reply
        }
        Err(e) => Err(ShimError::io("forking the runtime")(e.into())),
    }
}

/// Reads the copy's answer. The socket alone would not do: a container's
/// init, cloned by the copy, holds the copy's end too until it execs, so a
/// copy that died without answering (an abort) would leave us waiting for
/// good. `copy` (a pidfd) turns readable when the copy exits.
fn answer(sock: &OwnedFd, copy: Option<&OwnedFd>) -> Result<Value, ShimError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut buf = vec![0u8; 256 * 1024];
    let read_err = |e: Errno| ShimError::io("reading the runtime's answer")(e.into());
    let n = loop {
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if let Some(pidfd) = copy {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(read_err(e)),
            Ok(_) => {}
        }
        let answered = fds[0].revents().is_some_and(|r| !r.is_empty());
        let exited = fds
            .get(1)
            .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()));
        if !answered && !exited {
            continue;
        }
        // An answer sent before the copy exited is queued by now.
        match recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => break 0,
            r => break r.map_err(read_err)?,
        }
    };
    if n == 0 {
        return Err(ShimError::status(
            Code::INTERNAL,
            "the forked runtime exited without an answer",
        ));
    }
    let mut reply: Value = serde_json::from_slice(&buf[..n])
        .map_err(|e| ShimError::status(Code::INTERNAL, format!("the runtime's answer: {e}")))?;
    if let Some(message) = reply.get("err").and_then(Value::as_str) {
        let code = reply["code"]
            .as_i64()
            .and_then(|c| Code::from_i32(c as i32))
            .unwrap_or(Code::UNKNOWN);
        return Err(ShimError::status(code, message));
    }
    Ok(reply["ok"].take())
}

/// Waits until the copy has exited (it does right after answering). Until
/// then it is the parent of the init it cloned: an init that dies in that
/// window would be reported to the copy, and reach our reaper only when the
/// copy's exit hands it over. Returning after the exit makes every process
/// the call made a child of this server when the call returns.
fn gone(pidfd: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    while let Err(Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
}

/// In the copy: stdio in place, every descriptor not asked for closed.
fn prepare_copy(inherit: &Inherit<'_>, answer: RawFd) -> Result<(), ShimError> {
    if let Some(stdio) = inherit.stdio {
        for (target, fd) in stdio.into_iter().enumerate() {
            dup2(fd, target as RawFd)
                .map_err(|e| ShimError::io("installing the process's stdio")(e.into()))?;
        }
    }
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(ShimError::io("listing /proc/self/fd"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open {
        if fd > 2 && fd != answer && !inherit.keep.contains(&fd) {
            // SAFETY: closes a descriptor this single-threaded copy does not
            // use; the Rust objects that own it in the server are never used
            // here (the copy only runs `work` and _exits).
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    /// Forks a "copy" that sends `reply` (if any) and exits; its pidfd.
    fn copy(theirs: &OwnedFd, reply: Option<&[u8]>) -> (nix::unistd::Pid, OwnedFd) {
        // SAFETY: the child only sends and _exits.
        let pid = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                if let Some(r) = reply {
                    let _ = send(theirs.as_raw_fd(), r, MsgFlags::empty());
                }
                // SAFETY: ends the forked child at once.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        (pid, skiff_runtime::sys::pidfd_open(pid).unwrap())
    }

    /// A copy that exits without answering while its end of the socket
    /// lives on elsewhere (here, in this process; in the shim, in a parked
    /// init): an error, not a wait for good.
    #[test]
    fn a_copy_that_died_silently_is_an_error_even_if_its_socket_lives_on() {
        let (ours, theirs) = pair();
        let (pid, pidfd) = copy(&theirs, None);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(answer(&ours, Some(&pidfd)).map_err(|e| e.to_string()));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        let _ = nix::sys::wait::waitpid(pid, None);
        drop(theirs);
        let got = got.expect("still waiting 10 s after the copy exited");
        assert!(
            got.as_ref()
                .is_err_and(|e| e.contains("exited without an answer")),
            "{got:?}"
        );
    }

    /// The copy answers, then takes a while to exit (here: 256 MiB of
    /// touched memory to tear down). `call` returns only once it is gone.
    #[test]
    fn call_returns_after_the_copy_has_exited() {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let reaper = Reaper::default();
        let nothing = Inherit {
            stdio: None,
            keep: &[],
        };
        let got = call(&reaper, nothing, || {
            let mut heavy = vec![0u8; 256 << 20];
            heavy.iter_mut().step_by(4096).for_each(|b| *b = 1);
            std::mem::forget(heavy);
            Ok(json!(std::process::id()))
        });
        let pid = nix::unistd::Pid::from_raw(got.unwrap().as_i64().unwrap() as i32);
        let status = waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap();
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    #[test]
    fn an_answer_sent_before_the_copy_exits_is_read() {
        let (ours, theirs) = pair();
        let (pid, pidfd) = copy(&theirs, Some(br#"{"ok": 7}"#));
        let got = answer(&ours, Some(&pidfd));
        let _ = nix::sys::wait::waitpid(pid, None);
        drop(theirs);
        assert_eq!(got.unwrap(), json!(7));
    }
}
