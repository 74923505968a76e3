//! linux.seccomp: actions (ERRNO with errnoRet, KILL_PROCESS, NOTIFY), argument
//! conditions, and a bad profile refused by create.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use common::*;
use serde_json::json;

#[test]
fn errno_with_errno_ret_and_argument_conditions() {
    let env = TestEnv::new("seccomperrno");
    let out = env.run_sh(
        "e",
        "mkdir /tmp/x 2>&1; kill -0 $$ && echo sig0-allowed; kill -USR1 $$ 2>&1 || echo usr1-denied",
        |c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                    {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
                    {"names": ["no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ERRNO"}
                ]
            });
        },
    );
    assert!(
        out.contains("Invalid cross-device link"),
        "errnoRet 18 (EXDEV) not returned: {out}"
    );
    assert!(out.contains("sig0-allowed"), "{out}");
    assert!(out.contains("usr1-denied"), "{out}");
}

#[test]
fn kill_process_action_kills_with_sigsys() {
    let env = TestEnv::new("seccompkill");
    let mut b = env.bundle("b", &["uname"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 128 + libc::SIGSYS, "{out}{err}");
}

#[test]
fn default_errno_action_applies_to_unlisted_syscalls() {
    let env = TestEnv::new("seccompdefault");
    let mut b = env.bundle("b", &["sh", "-c", "true"]);
    // Nothing allowed: even execve fails, so the container cannot start. Nor
    // can init then leave by exit_group or exit (musl's _exit retries them
    // forever): it must end all the same, and `run` with it.
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1});
    b.write();
    let id = env.id("c");
    let err_file = env.base.join("stderr");
    let status = std::process::Command::new("timeout")
        .args(["-s", "KILL", "30", skiff(), "--root"])
        .arg(&env.root)
        .args(["run", "--bundle", b.path(), &id])
        // Not piped: a hung init would hold the pipes open past the timeout.
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&err_file).unwrap())
        .status()
        .unwrap();
    // timeout's SIGKILL reaches its own process group: itself too.
    let hung = status.code() == Some(137)
        || std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL);
    if hung {
        // A hung init (a clone of skiff-oci, its arguments too) outlives
        // the killed `run`: end it, so that cleanup finds nothing running.
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-f", &format!("run --bundle {} {id}", b.path())])
            .status();
        std::thread::sleep(std::time::Duration::from_millis(200));
        // `run` died waiting for init's Ready: no record names the groups.
        let _ = std::process::Command::new("find")
            .args([
                "/sys/fs/cgroup",
                "-maxdepth",
                "2",
                "-type",
                "d",
                "-name",
                &id,
            ])
            .args(["-exec", "rmdir", "{}", "+"])
            .status();
    }
    assert!(!hung, "run hung: init never ended");
    // With no_new_privs (the spec's default) the filter is the last thing
    // loaded, after the container was created: its program's execve is
    // refused, and it can neither report nor exit, so it ends by a fault,
    // whose signal `run` returns as a shell would.
    let err = fs::read_to_string(&err_file).unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGILL), "{err}");
    assert!(env.container_dirs().is_empty());
    // Without no_new_privs it is loaded before init reports Ready: then
    // `run` fails and says how init ended.
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.write();
    let (code, _, err) = env.bounded(&["run", "--bundle", b.path(), &id], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("init was killed by SIGILL during setup"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
}

#[test]
fn bad_profile_is_refused_by_create() {
    let env = TestEnv::new("seccompbad");
    let mut b = env.bundle("b", &["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    });
    b.write();
    let err = env.fails(&["create", "--bundle", b.path(), &env.id("c")]);
    assert!(
        err.contains("linux.seccomp.syscalls[0].args[0].index"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
}

#[test]
fn notify_sends_the_listener_fd_and_state_to_the_agent() {
    let env = TestEnv::new("seccompnotify");
    let sock = env.base.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = env.bundle("b", &["sh", "-c", "mkdir /tmp/n 2>&1; echo done"]);
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "skiff-test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.write();
    let id = env.id("c");
    // The agent: take the fd and the state, answer one mkdir with EACCES.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (listener_fd, bytes) = recv_fd(&conn);
        let fd = listener_fd.as_raw_fd();
        let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let req = libseccomp::ScmpNotifReq::receive(fd).unwrap();
        // While init waits on this answer, its pids: host first, then the
        // container's (NSpid), for the pids the state gave.
        let nspid = |pid: &serde_json::Value| {
            fs::read_to_string(format!("/proc/{}/status", pid.as_i64().unwrap_or(0)))
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("NSpid:")
                        .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                })
                .unwrap_or_default()
        };
        let pids = (nspid(&state["pid"]), nspid(&state["state"]["pid"]));
        libseccomp::ScmpNotifResp::new_error(
            req.id,
            -libc::EACCES,
            libseccomp::ScmpNotifRespFlags::empty(),
        )
        .respond(fd)
        .unwrap();
        (state, pids)
    });
    let (code, out, err) = env.run(&b, &id);
    let (state, (process_ns, state_ns)) = agent.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Permission denied") && out.contains("done"),
        "{out}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "skiff-test-meta");
    assert_eq!(state["state"]["id"], json!(id));
    // Both pids as the host sees them (runtime-spec): init's, which is 1 in
    // its own pid namespace. Before, both said 1.
    let host = state["pid"].as_i64().unwrap().to_string();
    assert_eq!(process_ns, vec![host.clone(), "1".to_string()], "{state}");
    assert_eq!(state_ns, vec![host, "1".to_string()], "{state}");
}

/// Several conditions on one argument: libseccomp refuses them in one rule,
/// so each is a rule of its own (ORed), as runc does: kill with signal 10
/// or 12 is refused, others allowed.
#[test]
fn conditions_on_the_same_argument_are_ored() {
    let env = TestEnv::new("seccompor");
    let out = env.run_sh(
        "o",
        "kill -USR1 $$ 2>&1 || echo usr1-denied; kill -USR2 $$ 2>&1 || echo usr2-denied; kill -0 $$ && echo sig0-allowed",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}
                ]}]
            });
        },
    );
    assert!(
        out.contains("usr1-denied") && out.contains("usr2-denied"),
        "{out}"
    );
    assert!(out.contains("sig0-allowed"), "{out}");
}

/// SCMP_ACT_NOTIFY where it would catch what the runtime needs to hand the
/// listener over (write, as runc refuses; sendmsg; the default action) is
/// refused by create, naming the field.
#[test]
fn notify_where_it_would_deadlock_is_refused() {
    let env = TestEnv::new("seccompnotifybad");
    let profiles = [
        (
            "syscalls[0]",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
        ),
        (
            "syscalls[0]",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
            "syscalls": [{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
        ),
        (
            "defaultAction",
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
        ),
    ];
    for (n, (field, profile)) in profiles.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{n}"), &["true"]);
        b.config["linux"]["seccomp"] = profile;
        b.write();
        let err = env.fails(&["create", "--bundle", b.path(), &env.id(&format!("c{n}"))]);
        assert!(
            err.contains(&format!("linux.seccomp.{field}")) && err.contains("SCMP_ACT_NOTIFY"),
            "{err}"
        );
        assert!(env.container_dirs().is_empty());
    }
}

#[test]
fn compiled_profile_is_cached_and_reused_as_is() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new("seccompcache");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    let with_profile = |c: &mut serde_json::Value| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = profile.clone();
    };
    let first = env.run_sh("a", "mkdir /tmp/x 2>&1; echo done", with_profile);
    assert!(first.contains("not implemented"), "{first}");
    let cache = env.root.join(".seccomp");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let inode = std::fs::metadata(&files[0]).unwrap().ino();
    // The second start loads the cached program (the file is not rewritten)
    // and the filter still holds.
    let second = env.run_sh("b", "mkdir /tmp/x 2>&1; echo done", with_profile);
    assert!(second.contains("not implemented"), "{second}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().ino(), inode);
    // A different profile is a different entry, never the cached one.
    let other = env.run_sh("c", "mkdir /tmp/x && echo allowed", |c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
    });
    assert!(other.contains("allowed"), "{other}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}

/// A cached program the kernel refuses (damaged on disk, whole instructions
/// still) fails one start with the kernel's answer; the entry is dropped,
/// and the next start compiles the profile again and runs. For exec too.
/// A cached program the kernel would refuse (here damaged into an opcode
/// that does not exist) is compiled again, not loaded: with no_new_privs the
/// filter is loaded after the container is reported created, too late to
/// fail `create`. For run and for exec, which read the same cache.
#[test]
fn a_damaged_cached_program_is_compiled_again() {
    let env = TestEnv::new("seccomprefused");
    let mut b = env.bundle("r", &["sleep", "30"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    b.write();
    let bundle = b.dir.to_str().unwrap();
    let id = env.id("r");
    // Fills the cache.
    env.ok(&["run", "-d", "--bundle", bundle, &id]);
    env.ok(&["delete", "-f", &id]);
    let cache = env.root.join(".seccomp");
    // Every entry's program becomes one instruction of an opcode that does not exist.
    let damage = || {
        for entry in std::fs::read_dir(&cache).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let magic = b"skiff-seccomp-cache 1\n".len();
            let key_len = u64::from_le_bytes(data[magic..magic + 8].try_into().unwrap()) as usize;
            let mut damaged = data[..magic + 8 + key_len].to_vec();
            damaged.extend([0xff, 0xff, 0, 0, 0, 0, 0, 0]);
            std::fs::write(&path, damaged).unwrap();
        }
    };
    let damaged_entries = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|e| {
                let data = std::fs::read(e.as_ref().unwrap().path()).unwrap();
                data.ends_with(&[0xff, 0xff, 0, 0, 0, 0, 0, 0])
            })
            .count()
    };
    damage();
    env.ok(&["run", "-d", "--bundle", bundle, &id]);
    assert_eq!(damaged_entries(), 0, "the entry was not compiled again");
    damage();
    let out = env.ok(&["exec", &id, "sh", "-c", "mkdir /tmp/y 2>&1; echo done"]);
    assert!(out.contains("not implemented"), "{out}");
    assert_eq!(damaged_entries(), 0, "the entry was not compiled again");
    env.ok(&["delete", "-f", &id]);
}

#[test]
fn a_profile_that_kills_on_madvise_still_starts() {
    // Init returns its idle pages (madvise, brk) before it parks on the exec
    // fifo: a profile that forbids those gets that done before it is loaded.
    let env = TestEnv::new("seccompmadvise");
    let out = env.run_sh("m", "echo started", |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["madvise"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
    });
    assert!(out.contains("started"), "{out}");
}

/// What the runtime itself does after loading a filter without
/// no_new_privs (it needs CAP_SYS_ADMIN then, so it loads before it drops
/// capabilities, as runc does): become the user, park on the exec fifo,
/// report Ready, reset signals. No close_range: fds are marked
/// close-on-exec before the load.
const RUNTIME_AFTER_LOAD: &[&str] = &[
    "capset",
    "capget",
    "prctl",
    "setgroups",
    "setresgid",
    "setresuid",
    "fchown",
    "fstat",
    "newfstatat",
    "sendto",
    "openat",
    "write",
    "close",
    "rt_sigaction",
    "rt_sigprocmask",
    "madvise",
    "execve",
];

/// A minimal allow-list, whose every other syscall kills the process: the
/// runtime loads the filter as late as the kernel allows and calls nothing
/// it lacks after. With no_new_privs only the program's own syscalls are
/// allowed (the load is the runtime's last step before execve); without,
/// the runtime's unavoidable steps are added, but not close_range (older
/// profiles lack it; before, every start failed on it). For `run`, `create`
/// + `start`, and `exec`.
#[test]
fn a_minimal_allow_list_is_enough_for_the_runtime() {
    let env = TestEnv::new("seccompminimal");
    for nnp in [true, false] {
        let mut names: Vec<&str> = ECHO_SYSCALLS.to_vec();
        if !nnp {
            names.extend_from_slice(RUNTIME_AFTER_LOAD);
        }
        let profile = json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        });
        let mut b = env.bundle(&format!("b{nnp}"), &["echo", "hello"]);
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = profile.clone();
        b.write();
        let (code, out, err) = env.run(&b, &env.id(&format!("run{nnp}")));
        assert_eq!(
            (code, out.as_str()),
            (0, "hello\n"),
            "run, nnp {nnp}: {err}"
        );

        let id = env.id(&format!("cs{nnp}"));
        env.ok(&["create", "--bundle", b.path(), &id]);
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        env.ok(&["start", &id]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(env.status(&id), "stopped");
        env.ok(&["delete", &id]);

        // exec takes the container's filter: a container that sleeps
        // unfiltered, an exec with the minimal profile (--process).
        let mut s = env.bundle(&format!("s{nnp}"), &["sleep", "60"]);
        s.config["process"]["noNewPrivileges"] = json!(nnp);
        s.write();
        let id = env.id(&format!("ex{nnp}"));
        env.ok(&["run", "-d", "--bundle", s.path(), &id]);
        let mut process = s.config["process"].clone();
        process["args"] = json!(["echo", "from-exec"]);
        let process_file = env.base.join(format!("process-{nnp}.json"));
        fs::write(&process_file, process.to_string()).unwrap();
        let _ = profile;
        let out = env.ok(&["exec", "--process", process_file.to_str().unwrap(), &id]);
        assert_eq!(out, "from-exec\n", "exec, nnp {nnp}");
        env.ok(&["delete", "--force", &id]);
    }
}
