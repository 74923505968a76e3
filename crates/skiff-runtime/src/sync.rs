//! The channel between `create` (parent) and init (child): a SOCK_SEQPACKET
//! socketpair, so each message arrives whole and the parent sees EOF if init
//! dies. The handshake, in order:
//!
//! ```text
//!   parent                               init
//!   clone ───────────────────────────────> (waits, with a user ns)
//!   id maps, bind sources opened
//!   (with a user ns) ─── Go + fds ───────> network namespace
//!   cgroups made, (with a user ns:
//!   cgroup join) ── CgroupsReady + fds ──> cgroup join (without), namespaces, mounts
//!   (only when the config has hooks)
//!   prestart/createRuntime <── HooksPoint ─
//!                          ── HooksDone ──> createContainer hooks
//!                                          pivot_root, process setup
//!   state.json, pid file <── Ready ──────── blocks opening exec.fifo (`run`: execs)
//!   any step can instead answer <── Error(message) ── and exit
//! ```
//!
//! With a user namespace joined by path and a new pid namespace, the clone
//! first answers `Respawned(pid)`: the pid of init, which it cloned in the
//! new namespaces after joining the user namespace, and ends; init goes on.
//!
//! A rootless parent makes the cgroups before the clone and sends only Go,
//! after the id maps and any cgroup join; init then creates every namespace
//! but cgroup and time in the clone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};

/// What a receive says when the other side closed its end without a word:
/// it ended (or, for init, could not even report why).
pub const PEER_GONE: &str = "the other side exited during setup";

pub const GO: u8 = b'G';
pub const CGROUPS_READY: u8 = b'C';
pub const HOOKS_POINT: u8 = b'H';
pub const HOOKS_DONE: u8 = b'D';
pub const READY: u8 = b'R';
/// From the first child, with a user namespace joined by path and a new pid
/// namespace: init's pid (see namespaces::Plan::respawn).
pub const RESPAWNED: u8 = b'P';
pub const ERROR: u8 = b'E';

/// The most descriptors one message carries: the join files of every cgroup
/// hierarchy (a v1 host has about a dozen).
pub const MAX_FDS: usize = 64;

pub struct SyncSocket(OwnedFd);

/// A message: its tag and, for errors, the text.
pub struct Message {
    pub tag: u8,
    pub text: String,
}

pub fn pair() -> io::Result<(SyncSocket, SyncSocket)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((SyncSocket(a), SyncSocket(b)))
}

impl SyncSocket {
    pub fn send(&self, tag: u8, text: &str) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 + text.len());
        buf.push(tag);
        buf.extend_from_slice(text.as_bytes());
        send(self.0.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Sends `tag` with `fds` attached (SCM_RIGHTS).
    pub fn send_fds(&self, tag: u8, fds: &[RawFd]) -> io::Result<()> {
        self.send_text_fds(tag, "", fds)
    }

    /// Sends `tag` and `text` with `fds` attached (SCM_RIGHTS); at most
    /// [`MAX_FDS`] of them.
    pub fn send_text_fds(&self, tag: u8, text: &str, fds: &[RawFd]) -> io::Result<()> {
        if fds.len() > MAX_FDS {
            return Err(io::Error::other(format!(
                "more than {MAX_FDS} descriptors in one message"
            )));
        }
        let iov = [
            io::IoSlice::new(std::slice::from_ref(&tag)),
            io::IoSlice::new(text.as_bytes()),
        ];
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Waits for `tag` and the descriptors sent with it by
    /// [`SyncSocket::send_fds`] (close-on-exec here); an error message or
    /// EOF becomes Err(text), as with [`SyncSocket::expect`].
    pub fn expect_fds(&self, tag: u8) -> Result<Vec<OwnedFd>, String> {
        self.expect_text_fds(tag).map(|(_, fds)| fds)
    }

    /// [`SyncSocket::expect_fds`], with the text sent along.
    pub fn expect_text_fds(&self, tag: u8) -> Result<(String, Vec<OwnedFd>), String> {
        let mut buf = vec![0u8; 8192];
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (n, fds, truncated) = loop {
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for c in msg.cmsgs().map_err(|e| format!("sync socket: {e}"))? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: the kernel just installed these fds for us.
                            fds.extend(
                                raw.into_iter()
                                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                            );
                        }
                    }
                    break (msg.bytes, fds, msg.flags.contains(MsgFlags::MSG_CTRUNC));
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("sync socket: {e}")),
            }
        };
        match buf.get(..n) {
            None | Some([]) => Err(PEER_GONE.into()),
            Some([t, ..]) if *t == tag && truncated => Err(format!(
                "sync socket: more than {MAX_FDS} descriptors sent with {:?}",
                tag as char
            )),
            Some([t, text @ ..]) if *t == tag => {
                Ok((String::from_utf8_lossy(text).into_owned(), fds))
            }
            Some([t, text @ ..]) if *t == ERROR => Err(String::from_utf8_lossy(text).into_owned()),
            Some([t, ..]) => Err(format!(
                "unexpected message {:?} from the other side",
                *t as char
            )),
        }
    }

    /// The next message, or None when the other side has closed (or died).
    pub fn recv(&self) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; 8192];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return Ok(Some(Message {
                        tag: buf[0],
                        text: String::from_utf8_lossy(&buf[1..n]).into_owned(),
                    }))
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next message if one is queued, without waiting: Ok(None) when
    /// there is none (or the other side has closed).
    pub fn try_recv(&self) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; 8192];
        match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) | Err(nix::Error::EAGAIN) => Ok(None),
            Ok(n) => Ok(Some(Message {
                tag: buf[0],
                text: String::from_utf8_lossy(&buf[1..n]).into_owned(),
            })),
            Err(e) => Err(e.into()),
        }
    }

    /// [`SyncSocket::recv`], asking `stuck` whenever a second passes without
    /// a word: a peer that is alive but will never answer (stopped, frozen)
    /// ends the wait with the reason `stuck` gives, instead of never.
    pub fn recv_watching(&self, stuck: &dyn Fn() -> Option<String>) -> io::Result<Option<Message>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        loop {
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) => {
                    if let Some(reason) = stuck() {
                        return Err(io::Error::other(reason));
                    }
                }
                Ok(_) => return self.recv(),
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits for a `tag` message; an ERROR message's text, or [`PEER_GONE`],
    /// is the error.
    pub fn expect(&self, tag: u8) -> Result<(), String> {
        expected(tag, self.recv())
    }

    /// [`SyncSocket::expect`], watched as [`SyncSocket::recv_watching`] is.
    pub fn expect_watching(
        &self,
        tag: u8,
        stuck: &dyn Fn() -> Option<String>,
    ) -> Result<(), String> {
        expected(tag, self.recv_watching(stuck))
    }
}

/// What a received message says to a wait for `tag`.
fn expected(tag: u8, received: io::Result<Option<Message>>) -> Result<(), String> {
    match received {
        Ok(Some(m)) if m.tag == tag => Ok(()),
        Ok(Some(m)) if m.tag == ERROR => Err(m.text),
        Ok(Some(m)) => Err(format!(
            "unexpected message {:?} from the other side",
            m.tag as char
        )),
        Ok(None) => Err(PEER_GONE.into()),
        Err(e) => Err(format!("sync socket: {e}")),
    }
}
