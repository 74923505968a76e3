//! Library calls that clone or spawn processes (create, start, exec,
//! delete), each in a fresh copy of the agent: `/proc/self/exe
//! runtime-call CALL ANSWER`.
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
//! The call goes down as JSON in argv; the answer comes back as JSON in a
//! file (stdout and stderr belong to the container).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// Runs `call` in a copy of the agent whose stdio is `stdio` (or
/// /dev/null); the pid it answers with (0 for start and delete).
pub fn run(
    reaper: &Reaper,
    state: &Path,
    call: Call<'_>,
    stdio: Option<[OwnedFd; 3]>,
) -> Result<i32, AgentError> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let answers = state.join("calls");
    std::fs::create_dir_all(&answers)
        .map_err(AgentError::path("creating the answer directory", &answers))?;
    let answer = answers.join(format!("{}.json", CALLS.fetch_add(1, Ordering::Relaxed)));
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(SUBCOMMAND)
        .arg(call.to_json().to_string())
        .arg(state)
        .arg(&answer);
    match stdio {
        Some([stdin, stdout, stderr]) => {
            cmd.stdin(Stdio::from(stdin))
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr));
        }
        None => {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| AgentError::Setup("starting a runtime call", e))?;
    // The copies of the stdio ends went into `cmd`: dropped with it here,
    // so the container's init holds the only writers of its output pipes.
    drop(cmd);
    reaper.spawned();
    let pid = child.id() as i32;
    let status = reaper.wait(pid, Some(CALL_BOUND));
    reaper.forget(pid);
    let reply = read_answer(&answer);
    let _ = std::fs::remove_file(&answer);
    match (status, reply) {
        (_, Ok(v)) if v.get("err").is_none() => Ok(v["pid"].as_i64().unwrap_or(0) as i32),
        (_, Ok(v)) => Err(AgentError::Runtime(
            v["err"]
                .as_str()
                .unwrap_or("the runtime call failed")
                .to_string(),
        )),
        (None, _) => Err(AgentError::Runtime(format!(
            "the runtime call (pid {pid}) did not end within {CALL_BOUND:?}"
        ))),
        (Some(s), Err(e)) => Err(AgentError::Runtime(format!(
            "the runtime call exited with {s} and no answer ({e})"
        ))),
    }
}

fn read_answer(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// In the copy: performs the call, writes the answer, returns the exit code.
pub fn run_in_helper(args: &[String]) -> i32 {
    let [call, state, answer] = args else {
        eprintln!("usage: skiff-agent {SUBCOMMAND} CALL STATE ANSWER");
        return 2;
    };
    let reply = match perform(call, Path::new(state)) {
        Ok(pid) => json!({ "pid": pid }),
        Err(e) => json!({ "err": e }),
    };
    match File::create(answer).and_then(|mut f| {
        use std::io::Write;
        f.write_all(reply.to_string().as_bytes())
    }) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("skiff-agent: writing {answer}: {e}");
            1
        }
    }
}

fn perform(call: &str, state: &Path) -> Result<i32, String> {
    // `skiff_trace=1` on the kernel command line: the library's phase
    // timings (as skiff-oci --trace) on the process's stderr.
    if std::env::var_os("skiff_trace").is_some() {
        skiff_runtime::trace::enable();
    }
    let call: Value = serde_json::from_str(call).map_err(|e| format!("the call: {e}"))?;
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
