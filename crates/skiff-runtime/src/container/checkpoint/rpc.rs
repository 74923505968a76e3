//! CRIU's RPC: `criu swrk FD` on one end of a SOCK_SEQPACKET socketpair, a
//! request in, notifies out (each answered) until the final response.
//! Through it, and not CRIU's command line, because only the RPC can carry
//! a descriptor back: a restored terminal's new pty master (CRIU's
//! `orphan-pts-master` notify), and only it lets a dump accept the pty
//! slave whose master is outside the container (`orphan_pts_master`).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use protobuf::Message;

use super::super::ContainerError;

mod proto {
    include!(concat!(env!("OUT_DIR"), "/criu_rpc/mod.rs"));
}

pub use proto::criu_rpc::{
    Cgroup_root as CgroupRoot, Criu_cg_mode as CgMode, Criu_opts as Opts, Criu_req_type as ReqType,
    Inherit_fd as InheritFd,
};
use proto::criu_rpc::{Criu_req, Criu_resp};

/// How often a wait for CRIU's next message looks whether CRIU still runs.
const LIVENESS: Duration = Duration::from_millis(500);
/// How long CRIU may take to exit once it has answered.
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// What CRIU's process is given before it runs.
pub struct Spawn<'a> {
    /// cgroup files it writes itself into (see open_join_files).
    pub join: &'a [OwnedFd],
    /// Descriptors passed to it as fds 3, 4, ...
    pub handed: &'a [RawFd],
    /// (rootfs, criu-root): bound in a mount namespace of CRIU's own, so
    /// that nothing of it outlives CRIU on the host, whatever kills it (a
    /// leftover bind under the state directory would lead a later delete
    /// into the rootfs).
    pub bind: Option<(std::ffi::CString, std::ffi::CString)>,
}

/// A notify CRIU sent: its action's name, the pid it names (the restored
/// init's, with setup-namespaces) and the descriptor attached
/// (orphan-pts-master's).
pub struct Notify {
    pub script: String,
    pub pid: i32,
    pub fd: Option<OwnedFd>,
}

/// Runs one CRIU request to its end. `on_notify` sees every notify; an
/// error from it fails the request (CRIU is told, and gives up). Returns
/// the restored root task's pid for a restore, 0 otherwise.
pub fn call(
    criu: &Path,
    kind: ReqType,
    opts: Opts,
    work: &Path,
    log: &str,
    spawn: Spawn<'_>,
    on_notify: &mut dyn FnMut(Notify) -> Result<(), ContainerError>,
) -> Result<i32, ContainerError> {
    // 1. The socketpair, and CRIU started on its far end.
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ContainerError::Checkpoint(format!("creating criu's socketpair: {e}")))?;
    let theirs = super::copy_high(theirs.as_raw_fd())?;
    let mut child = start(criu, &theirs, work, log, spawn)?;
    drop(theirs);
    let mut guard = Reap(Some(&mut child));

    // 2. The request; then notifies, each answered, until the response.
    let mut req = Criu_req::new();
    req.set_type(kind);
    req.opts = protobuf::MessageField::some(opts);
    send(&ours, &req)?;
    let resp = loop {
        let (resp, fd) = receive(&ours, guard.child())?;
        if resp.type_() != ReqType::NOTIFY {
            break resp;
        }
        let notify = Notify {
            script: resp.notify.script().to_string(),
            pid: resp.notify.pid(),
            fd,
        };
        let done = on_notify(notify);
        let mut answer = Criu_req::new();
        answer.set_type(ReqType::NOTIFY);
        answer.set_notify_success(done.is_ok());
        send(&ours, &answer)?;
        done?;
    };

    // 3. CRIU exits once the socket closes (a pre-dump's CRIU would wait
    //    for the next request).
    drop(ours);
    let status = guard.finish();
    let failed = |why: String| {
        ContainerError::Checkpoint(format!(
            "criu {}: {why}{} (log: {})",
            kind_name(kind),
            log_errors(&work.join(log)),
            work.join(log).display()
        ))
    };
    if !resp.success() {
        let msg = match resp.cr_errmsg() {
            "" => format!("failed (errno {})", resp.cr_errno()),
            m => format!("failed: {}", m.trim()),
        };
        return Err(failed(msg));
    }
    if resp.type_() != kind {
        return Err(failed(format!(
            "answered a {:?} request with {:?}",
            kind,
            resp.type_()
        )));
    }
    if kind != ReqType::PRE_DUMP && status.is_some_and(|s| !s.success()) {
        return Err(failed(format!(
            "exited with {}",
            status.unwrap_or_default()
        )));
    }
    Ok(resp.restore.pid())
}

fn kind_name(kind: ReqType) -> &'static str {
    match kind {
        ReqType::DUMP => "dump",
        ReqType::PRE_DUMP => "pre-dump",
        ReqType::RESTORE => "restore",
        _ => "request",
    }
}

/// `criu swrk FD`, its output to LOG.out in the work directory, with what
/// `spawn` asks for done between fork and exec.
fn start(
    criu: &Path,
    socket: &OwnedFd,
    work: &Path,
    log: &str,
    spawn: Spawn<'_>,
) -> Result<Child, ContainerError> {
    let output = std::fs::File::create(work.join(format!("{log}.out")))
        .map_err(ContainerError::io("creating criu's output file"))?;
    let socket_fd = 3 + spawn.handed.len() as RawFd;
    let mut cmd = Command::new(criu);
    cmd.arg("swrk")
        .arg(socket_fd.to_string())
        .stdin(Stdio::null())
        .stdout(
            output
                .try_clone()
                .map_err(ContainerError::io("creating criu's output file"))?,
        )
        .stderr(output);
    let join: Vec<RawFd> = spawn.join.iter().map(|f| f.as_raw_fd()).collect();
    let mut handed = spawn.handed.to_vec();
    handed.push(socket.as_raw_fd());
    let bind = spawn.bind;
    // SAFETY: between fork and exec the closure only calls unshare(2),
    // mount(2), write(2) and dup2(2) with strings and descriptors made
    // before the fork, which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if let Some((rootfs, target)) = &bind {
                let none = std::ptr::null();
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        none,
                        c"/".as_ptr(),
                        none,
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                    || libc::mount(
                        rootfs.as_ptr(),
                        target.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ) != 0
                {
                    return fail();
                }
            }
            for fd in &join {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return fail();
                }
            }
            // Each lies above every target (copy_high), so moving one
            // into place never overwrites another still to be moved; dup2
            // leaves the copy without close-on-exec.
            for (i, fd) in handed.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return fail();
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| ContainerError::Checkpoint(format!("running {}: {e}", criu.display())))
}

/// CRIU's process until it is waited for; dropped early (an error on the
/// way), it is killed and reaped, so no CRIU outlives the call.
struct Reap<'a>(Option<&'a mut Child>);

impl Reap<'_> {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("taken only by finish")
    }

    /// Waits (bounded) for CRIU to exit; its status, or None if it had to
    /// be killed.
    fn finish(mut self) -> Option<std::process::ExitStatus> {
        let child = self.0.take()?;
        let deadline = std::time::Instant::now() + EXIT_GRACE;
        while std::time::Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Reap<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn send(socket: &OwnedFd, req: &Criu_req) -> Result<(), ContainerError> {
    let bytes = req
        .write_to_bytes()
        .map_err(|e| ContainerError::Checkpoint(format!("encoding criu's request: {e}")))?;
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| ContainerError::Checkpoint(format!("writing to criu: {e}")))?;
    Ok(())
}

/// CRIU's next message and the descriptor it carries. The wait looks at
/// CRIU's process every LIVENESS: a CRIU that died (its socket end may
/// live on in a task it forked) fails the call instead of hanging it.
fn receive(
    socket: &OwnedFd,
    child: &mut Child,
) -> Result<(Criu_resp, Option<OwnedFd>), ContainerError> {
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(LIVENESS).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::Error::EINTR) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(ContainerError::Checkpoint(format!(
                        "criu exited ({status}) without answering"
                    )));
                }
                continue;
            }
            Ok(_) => break,
            Err(e) => return Err(ContainerError::Checkpoint(format!("waiting for criu: {e}"))),
        }
    }
    // CRIU's messages are small (a response, a notify); a truncated one
    // is refused rather than misread.
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ContainerError::Checkpoint(format!("reading from criu: {e}")))?;
    let mut fd = None;
    for c in msg
        .cmsgs()
        .map_err(|e| ContainerError::Checkpoint(format!("reading from criu: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(list) = c {
            for raw in list {
                // SAFETY: the kernel just installed this fd for us.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    let (len, truncated) = (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC));
    if len == 0 {
        return Err(ContainerError::Checkpoint(
            "criu closed its socket without answering".into(),
        ));
    }
    if truncated {
        return Err(ContainerError::Checkpoint(
            "criu's message is larger than 64 KiB".into(),
        ));
    }
    let resp = Criu_resp::parse_from_bytes(&buf[..len])
        .map_err(|e| ContainerError::Checkpoint(format!("decoding criu's message: {e}")))?;
    Ok((resp, fd))
}

/// The log's last error lines, for the error message.
fn log_errors(path: &Path) -> String {
    let errors: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        // Two that CRIU logs on every run here while probing the kernel.
        .filter(|l| {
            l.contains("Error")
                && !l.contains("RLIMIT_NOFILE")
                && !l.contains("Unable to create tun")
        })
        .map(|l| l.trim().to_string())
        .collect();
    if errors.is_empty() {
        return String::new();
    }
    format!("; {}", errors[errors.len().saturating_sub(3)..].join("; "))
}
