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
        Ok(ForkResult::Parent { child }) => guard.forked(child),
        Err(e) => return Err(ShimError::io("forking the runtime")(e.into())),
    }
    drop(theirs);
    answer(&ours)
}

fn answer(sock: &OwnedFd) -> Result<Value, ShimError> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = loop {
        match recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            r => break r.map_err(|e| ShimError::io("reading the runtime's answer")(e.into()))?,
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
