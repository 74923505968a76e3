//! Library calls that clone or spawn processes (create, start, exec,
//! delete), each in a fresh copy of the agent: `/proc/self/exe
//! runtime-call`.
//!
//! Why a new process: the agent is multi-threaded (ttrpc workers, the
//! reaper), and the library's create and exec clone processes that go on
//! running Rust code, which is only safe from a single-threaded process (a
//! lock another thread held at the clone stays held in the child). A copy
//! that is exec'd, not forked, starts clean; it also gives the container's
//! init its stdio as fds 0-2 and nothing else. It exits when the call is
//! done; the processes it started are re-parented to the agent, whose
//! reaper is the only caller of waitpid.
//!
//! One copy waits, started ahead (`Standby`): the exec and the start-up of
//! a 1.7 MB static binary (~17 ms under TCG) happen before the call, not
//! in it. The first starts at boot at the normal priority (the first
//! create comes soon); each next one as a call is answered, at the lowest
//! (a container's first output may be on its way), and takes the normal
//! one back with its call. The call goes down a socket as JSON, with the
//! process's stdio attached (SCM_RIGHTS); the answer comes back on it as
//! JSON (stdout and stderr belong to the container), and the agent goes on
//! without waiting for the copy's exit.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde_json::{json, Value};
use skiff_runtime::container::{self, CreateOptions, ExecOptions};
use skiff_runtime::state::StateRoot;

use crate::error::AgentError;
use crate::reaper::Reaper;

pub const SUBCOMMAND: &str = "runtime-call";

/// A runtime call is the library's work plus one exec; far less than this.
const CALL_BOUND: Duration = Duration::from_secs(120);

/// `console`: with process.terminal, the socket the library sends the
/// pty master to (as runc's --console-socket).
pub enum Call<'a> {
    Create {
        id: &'a str,
        bundle: &'a Path,
        console: Option<&'a Path>,
    },
    Start {
        id: &'a str,
    },
    Exec {
        id: &'a str,
        process: &'a Value,
        console: Option<&'a Path>,
    },
    Delete {
        id: &'a str,
    },
}

impl Call<'_> {
    fn name(&self) -> &'static str {
        match self {
            Call::Create { .. } => "create",
            Call::Start { .. } => "start",
            Call::Exec { .. } => "exec",
            Call::Delete { .. } => "delete",
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Call::Create {
                id,
                bundle,
                console,
            } => json!({"op": "create", "id": id, "bundle": bundle, "console": console}),
            Call::Start { id } => json!({"op": "start", "id": id}),
            Call::Exec {
                id,
                process,
                console,
            } => json!({"op": "exec", "id": id, "process": process, "console": console}),
            Call::Delete { id } => json!({"op": "delete", "id": id}),
        }
    }
}

/// The most a call or an answer holds (a process's JSON with its env).
const MESSAGE_MAX: usize = 1 << 20;

/// A copy of the agent waiting for its call on `sock`.
struct Standby {
    pid: i32,
    sock: OwnedFd,
}

/// The copy started ahead for the next call.
static STANDBY: Mutex<Option<Standby>> = Mutex::new(None);

impl Standby {
    /// Starts a copy, at `nice` until its call.
    fn spawn(reaper: &Reaper, nice: i32) -> Result<Standby, AgentError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| AgentError::Setup("creating a runtime call's socket", e.into()))?;
        let child = Command::new("/proc/self/exe")
            .arg(SUBCOMMAND)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| AgentError::Setup("starting a runtime call", e))?;
        reaper.spawned();
        let pid = child.id() as i32;
        if nice != 0 {
            set_priority(pid, nice);
        }
        Ok(Standby { pid, sock: ours })
    }
}

/// Starts the copy for the first call, if none waits yet.
pub fn prepare(reaper: &Reaper, nice: i32) {
    let mut slot = STANDBY.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Standby::spawn(reaper, nice).ok();
    }
}

/// setpriority(2) of `pid` (0: the caller); a failure only costs speed.
fn set_priority(pid: i32, nice: i32) {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) };
}

/// Runs `call` in a copy of the agent whose stdio is `stdio` (or
/// /dev/null); the pid it answers with (0 for start and delete).
pub fn run(
    reaper: &Reaper,
    state: &Path,
    call: Call<'_>,
    stdio: Option<[OwnedFd; 3]>,
) -> Result<i32, AgentError> {
    let waiting = STANDBY.lock().unwrap_or_else(|p| p.into_inner()).take();
    let copy = match waiting {
        Some(c) => c,
        // None ready (calls at once): one for this call, at once.
        None => Standby::spawn(reaper, 0)?,
    };
    let mut message = call.to_json();
    message["state"] = Value::from(state.display().to_string());
    let raw: Vec<RawFd> = stdio.iter().flatten().map(|f| f.as_raw_fd()).collect();
    crate::guest::trace(format_args!("runtime call {} sent", call.name()));
    let rights = [ControlMessage::ScmRights(&raw)];
    let sent = sendmsg::<()>(
        copy.sock.as_raw_fd(),
        &[IoSlice::new(message.to_string().as_bytes())],
        if raw.is_empty() { &[] } else { &rights },
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
    // Our copies of the stdio ends go now: the container's init holds the
    // only writers of its output pipes.
    drop(stdio);
    let reply = match sent {
        Ok(_) => read_answer(&copy, reaper),
        Err(e) => Err(format!("sending the call: {e}")),
    };
    crate::guest::trace(format_args!("runtime call {} answered", call.name()));
    let pid = copy.pid;
    let result = match reply {
        Ok(v) if v.get("err").is_none() => Ok(v["pid"].as_i64().unwrap_or(0) as i32),
        Ok(v) => Err(AgentError::Runtime(
            v["err"]
                .as_str()
                .unwrap_or("the runtime call failed")
                .to_string(),
        )),
        Err(e) => {
            // No answer: the copy's exit says why, unless it hangs.
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            let status = reaper.wait(pid, Some(Duration::from_secs(5)));
            Err(AgentError::Runtime(match status {
                Some(s) => format!("the runtime call exited with {s} and no answer ({e})"),
                None => format!("the runtime call (pid {pid}) gave no answer ({e})"),
            }))
        }
    };
    // The copy exits by itself once it has answered.
    reaper.forget_on_exit(pid);
    // The next call's copy, starting while this one's caller goes on (at
    // the lowest priority: a container's first output may be on its way).
    prepare(reaper, 19);
    result
}

/// The length of the next message on a seqpacket socket (waiting for it),
/// so that its buffer is made to fit.
fn next_message_len(sock: &OwnedFd) -> Result<usize, String> {
    loop {
        match recv(
            sock.as_raw_fd(),
            &mut [0u8; 1],
            MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
        ) {
            Err(nix::Error::EINTR) => continue,
            // At least one byte: a read of 0 is the peer's end.
            Ok(n) => return Ok(n.clamp(1, MESSAGE_MAX)),
            Err(e) => return Err(format!("waiting for a message: {e}")),
        }
    }
}

/// The copy's answer, waiting up to CALL_BOUND, or until the copy has
/// exited without one (the container's init holds a copy of the socket
/// until it execs, so its end is no sign).
fn read_answer(copy: &Standby, reaper: &Reaper) -> Result<Value, String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + CALL_BOUND;
    loop {
        let mut fds = [PollFd::new(copy.sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::Error::EINTR) => {}
            Ok(_) => break,
            Err(e) => return Err(format!("waiting for the answer: {e}")),
        }
        if reaper.wait(copy.pid, Some(Duration::ZERO)).is_some() {
            // It may have answered just before it exited.
            let mut fds = [PollFd::new(copy.sock.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) == 0 {
                return Err("the copy ended without an answer".into());
            }
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no answer within {CALL_BOUND:?}"));
        }
    }
    let mut buf = vec![0u8; next_message_len(&copy.sock)?];
    let n = loop {
        match recv(copy.sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::Error::EINTR) => continue,
            r => break r.map_err(|e| format!("reading the answer: {e}"))?,
        }
    };
    if n == 0 {
        return Err("the copy ended without an answer".into());
    }
    serde_json::from_slice(&buf[..n]).map_err(|e| format!("the answer: {e}"))
}

/// In the copy: waits for the call on fd 0 (a socket; the agent may
/// never send one, and exits), performs it, answers; the exit code.
pub fn run_in_helper(args: &[String]) -> i32 {
    if !args.is_empty() {
        eprintln!("usage: skiff-agent {SUBCOMMAND} (the call comes on fd 0)");
        return 2;
    }
    let (sock, call, stdio) = match receive_call() {
        Ok(Some(received)) => received,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!("skiff-agent: {SUBCOMMAND}: {e}");
            return 1;
        }
    };
    set_priority(0, 0);
    let reply = match stdio_onto_0_to_2(stdio).and_then(|()| perform(&call)) {
        Ok(pid) => json!({ "pid": pid }),
        Err(e) => json!({ "err": e }),
    };
    match send(
        sock.as_raw_fd(),
        reply.to_string().as_bytes(),
        MsgFlags::MSG_NOSIGNAL,
    ) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("skiff-agent: {SUBCOMMAND}: answering: {e}");
            1
        }
    }
}

/// The socket (moved off fd 0, close-on-exec), the call, and the stdio
/// sent with it; None when the agent closed its end without a call.
#[allow(clippy::type_complexity)]
fn receive_call() -> Result<Option<(OwnedFd, Value, Vec<OwnedFd>)>, String> {
    let stdin = std::io::stdin();
    let sock = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("the call's socket: {e}"))?;
    let mut buf = vec![0u8; next_message_len(&sock)?];
    let mut cmsg = nix::cmsg_space!([RawFd; 3]);
    let (n, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs().map_err(|e| format!("the call: {e}"))? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel just installed these fds for us.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(format!("receiving the call: {e}")),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let call = serde_json::from_slice(&buf[..n]).map_err(|e| format!("the call: {e}"))?;
    Ok(Some((sock, call, fds)))
}

/// The stdio sent with the call onto fds 0-2; without, /dev/null onto 0
/// (the socket's old place; stdout is /dev/null already and stderr the
/// agent's).
fn stdio_onto_0_to_2(stdio: Vec<OwnedFd>) -> Result<(), String> {
    let null;
    let sources: Vec<(RawFd, RawFd)> = match stdio.as_slice() {
        [] => {
            null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
            vec![(null.as_raw_fd(), 0)]
        }
        [i, o, e] => vec![(i.as_raw_fd(), 0), (o.as_raw_fd(), 1), (e.as_raw_fd(), 2)],
        _ => return Err(format!("the call came with {} descriptors", stdio.len())),
    };
    for (from, to) in sources {
        nix::unistd::dup2(from, to).map_err(|e| format!("stdio onto fd {to}: {e}"))?;
    }
    Ok(())
}

fn perform(call: &Value) -> Result<i32, String> {
    // `skiff_trace=1` on the kernel command line: the library's phase
    // timings (as skiff-oci --trace) on the process's stderr.
    if std::env::var_os("skiff_trace").is_some() {
        skiff_runtime::trace::enable();
    }
    let state = Path::new(call["state"].as_str().unwrap_or_default());
    let root = StateRoot::new(runtime_root(state));
    let id = call["id"].as_str().unwrap_or_default();
    let console = call["console"].as_str().map(Path::new);
    match call["op"].as_str() {
        Some("create") => {
            let bundle = PathBuf::from(call["bundle"].as_str().unwrap_or_default());
            let created = container::create(
                &root,
                &CreateOptions {
                    id,
                    bundle: &bundle,
                    pid_file: None,
                    console_socket: console,
                    console_stream: None,
                    no_pivot: false,
                    no_new_keyring: false,
                    preserve_fds: 0,
                    listen_fds: 0,
                    systemd_cgroup: false,
                    relay_terminal: false,
                    start_now: false,
                },
            )
            .map_err(|e| e.to_string())?;
            Ok(created.record.pid)
        }
        Some("start") => container::start(&root, id)
            .map(|()| 0)
            .map_err(|e| e.to_string()),
        Some("exec") => {
            let process = serde_json::from_value(call["process"].clone())
                .map_err(|e| format!("the exec's process: {e}"))?;
            let pid = container::exec(
                &root,
                &ExecOptions {
                    id,
                    process,
                    console_socket: console,
                    console_stream: None,
                    pid_file: None,
                    preserve_fds: 0,
                    ignore_paused: false,
                    sub_cgroups: &[],
                },
            )
            .map_err(|e| e.to_string())?;
            Ok(pid.as_raw())
        }
        Some("delete") => container::delete(&root, id, true)
            .map(|()| 0)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown runtime call {other:?}")),
    }
}

/// The skiff library's state root inside the agent's state directory.
pub fn runtime_root(state: &Path) -> PathBuf {
    state.join("runtime")
}
