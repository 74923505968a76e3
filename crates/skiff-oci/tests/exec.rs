//! exec: a new process in every namespace and the cgroup of a running
//! container, with the container's capabilities and seccomp filter unless
//! overridden, and its exit code.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

fn running(env: &TestEnv, edit: impl FnOnce(&mut serde_json::Value)) -> (String, i64) {
    let mut b = env.bundle("b", &["sleep", "1000"]);
    edit(&mut b.config);
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    (id, pid)
}

#[test]
fn exec_joins_namespaces_and_cgroup_and_returns_the_exit_code() {
    let env = TestEnv::new("exec");
    let (id, init) = running(&env, |_| {});
    let out = env.oci(&["exec", &id, "sh", "-c", "echo $$; sleep 0.3; exit 9"]);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not PID 1, but a small pid of the container's pid namespace.
    let pid_in: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(pid_in > 1 && pid_in < 100, "{pid_in}");

    // Detached with a pid file: compare its namespaces and cgroup with init's.
    let pid = env.exec_detached(&id, &["sleep", "1000"]);
    for ns in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        let a = fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let b = fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(a, b, "{ns}");
    }
    let procs = read(default_group("memory", &id).join("cgroup.procs"));
    assert!(procs.lines().any(|l| l == pid), "{procs}");
    // In init's group of every hierarchy (the child joins them by itself).
    assert_eq!(
        read(format!("/proc/{pid}/cgroup")),
        read(format!("/proc/{init}/cgroup"))
    );
    let status = read(format!("/proc/{pid}/status"));
    let init_status = read(format!("/proc/{init}/status"));
    let field = |s: &str, k: &str| s.lines().find(|l| l.starts_with(k)).unwrap().to_string();
    assert_eq!(field(&status, "CapBnd"), field(&init_status, "CapBnd"));
    assert_eq!(field(&status, "CapEff"), field(&init_status, "CapEff"));
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_flags_user_env_cwd_groups_and_no_new_privs() {
    let env = TestEnv::new("execflags");
    let (id, _) = running(&env, |_| {});
    let out = env.ok(&[
        "exec",
        "--user",
        "1000:1001",
        "--additional-gids",
        "2000",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--no-new-privs",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $FOO; pwd; grep NoNewPrivs /proc/self/status",
    ]);
    assert_eq!(out, "1000\n1001\n1001 2000\nbar\n/tmp\nNoNewPrivs:\t1\n");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_with_a_process_json() {
    let env = TestEnv::new("execjson");
    let (id, _) = running(&env, |_| {});
    let process = env.base.join("process.json");
    fs::write(
        &process,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo from-json $X; exit 3"], "env": ["PATH=/bin", "X=y"],
            "cwd": "/", "user": {"uid": 0, "gid": 0}
        }))
        .unwrap(),
    )
    .unwrap();
    let out = env.oci(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-json y\n");
    // Without `user`: uid 0, gid 0, as runc (it was refused).
    fs::write(
        &process,
        serde_json::to_vec(&json!({"args": ["id"], "env": ["PATH=/bin"], "cwd": "/"})).unwrap(),
    )
    .unwrap();
    let out = env.ok(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert!(out.starts_with("uid=0(root) gid=0(root)"), "{out}");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_gets_the_container_seccomp_filter() {
    let env = TestEnv::new("execseccomp");
    let (id, _) = running(&env, |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
        });
        c["root"]["readonly"] = json!(false);
    });
    let out = env.oci(&["exec", &id, "mkdir", "/tmp/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid cross-device link"));
    env.ok(&["delete", "--force", &id]);
}

/// A child that dies after its seccomp filter is in place and before its
/// execve (here: killed for the trace line it writes, `write` being what the
/// profile kills, in the middle of writing to stderr) cannot say why, and may
/// leave a lock of the caller's taken (it shares the caller's memory until
/// it execs): exec fails at once, instead of reporting a process that never
/// ran or tripping over that lock.
#[test]
fn exec_whose_child_dies_before_execve_fails() {
    let env = TestEnv::new("execdies");
    let (id, _) = running(&env, |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_KILL"}]
        });
    });
    let mut cmd = env.cmd(&["exec", "-d", &id, "true"]);
    cmd.env("SKIFF_TRACE", "1");
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(255),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ended before its execve without saying why"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_with_a_tty_over_the_console_socket() {
    let env = TestEnv::new("exectty");
    let (id, _) = running(&env, |_| {});
    let sock = env.base.join("console.sock");
    let receiver = console_receiver(&sock);
    let mut child = env
        .cmd(&[
            "exec",
            "-t",
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "tty; echo exec-on-tty",
        ])
        .spawn()
        .unwrap();
    let master = receiver.join().unwrap();
    let out = read_pty_until(master, "exec-on-tty");
    assert!(child.wait().unwrap().success());
    assert!(
        out.contains("/dev/pts/") && out.contains("exec-on-tty"),
        "{out}"
    );
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_into_a_stopped_or_paused_container_is_refused() {
    let env = TestEnv::new("execstate");
    let (id, _) = running(&env, |_| {});
    // Paused (frozen by the freezer): refused unless --ignore-paused.
    let freezer = default_group("freezer", &id).join("freezer.state");
    if freezer.exists() {
        fs::write(&freezer, "FROZEN").unwrap();
        assert_eq!(env.status(&id), "paused");
        let err = env.fails(&["exec", &id, "true"]);
        assert!(err.contains("paused"), "{err}");
        fs::write(&freezer, "THAWED").unwrap();
    }
    env.ok(&["kill", &id, "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while env.status(&id) != "stopped" {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let err = env.fails(&["exec", &id, "true"]);
    assert!(err.contains("stopped"), "{err}");
    let err = env.fails(&["exec", &id, "/no/such"]);
    assert!(err.contains("stopped"), "{err}");
    env.ok(&["delete", &id]);
}

#[test]
fn exec_of_a_missing_program_fails_cleanly() {
    let env = TestEnv::new("execmissing");
    let (id, _) = running(&env, |_| {});
    let out = env.oci(&["exec", &id, "/no/such/program"]);
    // runc's code for an exec that did not happen.
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/program"));
    let procs = read(default_group("pids", &id).join("cgroup.procs"));
    assert_eq!(procs.lines().count(), 1, "only init is left: {procs}");
    env.ok(&["delete", "--force", &id]);
}

/// `exec --cap` adds to the bounding, effective and permitted sets only
/// (runc after CVE-2022-29162): not to the inheritable or ambient ones,
/// through which the capability would outlive execve, even into a non-root
/// user's programs.
#[test]
fn exec_cap_is_not_inheritable_or_ambient() {
    let env = TestEnv::new("execcap");
    let (id, _) = running(&env, |c| {
        c["process"]["capabilities"]["inheritable"] = json!([]);
        c["process"]["capabilities"]["ambient"] = json!([]);
    });
    let caps = |user: &[&str]| {
        let mut args = vec!["exec", "--cap", "CAP_SYS_ADMIN"];
        args.extend_from_slice(user);
        args.extend_from_slice(&[&id, "grep", "^Cap", "/proc/self/status"]);
        let out = env.ok(&args);
        let field = |k: &str| {
            let l = out.lines().find(|l| l.starts_with(k)).expect(&out);
            u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        (
            field("CapInh"),
            field("CapPrm"),
            field("CapAmb"),
            field("CapBnd"),
        )
    };
    const SYS_ADMIN: u64 = 1 << 21;
    let (inh, prm, amb, bnd) = caps(&[]);
    assert_eq!((inh, amb), (0, 0));
    assert!(prm & SYS_ADMIN != 0 && bnd & SYS_ADMIN != 0);
    // A non-root user ends up with none: nothing carries it past setuid.
    let (inh, prm, amb, _) = caps(&["--user", "1000"]);
    assert_eq!((inh, prm, amb), (0, 0, 0));
    env.ok(&["delete", "--force", &id]);
}

/// As runc: a failed exec exits 255 (a program that exits 1 is another
/// thing), and exec works in a created container, which can also be paused
/// and resumed.
#[test]
fn exec_failure_is_255_and_created_containers_take_exec_and_pause() {
    let env = TestEnv::new("execcreated");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    assert_eq!(env.oci(&["exec", &id, "/no/such"]).status.code(), Some(255));
    assert_eq!(
        env.oci(&["exec", &id, "sh", "-c", "exit 1"]).status.code(),
        Some(1)
    );
    assert_eq!(env.ok(&["exec", &id, "echo", "in-created"]), "in-created\n");
    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    env.ok(&["resume", &id]);
    assert_eq!(env.status(&id), "created");
    env.ok(&["start", &id]);
    assert_eq!(env.status(&id), "running");
    env.ok(&["delete", "--force", &id]);
}

/// `exec --cgroup`, as runc: the process goes into groups below the
/// container's (per controller, or one path for all); "/" is the group
/// itself; a path above it, a missing group and an unknown controller are
/// refused. Before, the flag was accepted and ignored.
#[test]
fn exec_cgroup_puts_the_process_in_a_sub_group() {
    let env = TestEnv::new("execcg");
    let (id, _) = running(&env, |_| {});
    let _cleanup = GroupSweep(id.clone());
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let refused = |args: &[&str], want: &str| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[&id, "true"]);
        let err = env.fails(&all);
        assert!(err.contains(want), "{args:?}: {err}");
    };
    refused(&["--cgroup", ".."], "bad sub cgroup path");
    refused(&["--cgroup", "nonexistent"], "o such file or directory");
    let top = env.ok(&["exec", "--cgroup", "/", &id, "cat", "/proc/self/cgroup"]);
    let plain = env.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(top, plain);
    if v2 {
        fs::create_dir_all(default_group("", &id).join("sub")).unwrap();
        let out = env.ok(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
        assert!(out.trim().ends_with(&format!("/{id}/sub")), "{out}");
        return;
    }
    refused(&["--cgroup", "whaaat:/"], "unknown controller whaaat");
    refused(&["--cgroup", "cpu:nonexistent"], "o such file or directory");
    fs::create_dir_all(default_group("memory", &id).join("submem")).unwrap();
    // cpu and cpuacct may be one hierarchy or two.
    for ctrl in ["cpu", "cpuacct"] {
        fs::create_dir_all(default_group(ctrl, &id).join("subcpu")).unwrap();
    }
    let out = env.ok(&[
        "exec",
        "--cgroup",
        "memory:submem",
        "--cgroup",
        "cpu,cpuacct:subcpu",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    let line = |ctrl: &str| {
        out.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == ctrl))
            })
            .unwrap_or_else(|| panic!("no {ctrl} line: {out}"))
            .to_string()
    };
    assert!(line("memory").ends_with(&format!("/{id}/submem")), "{out}");
    assert!(line("cpu").ends_with(&format!("/{id}/subcpu")), "{out}");
    assert!(line("pids").ends_with(&format!("/{id}")), "{out}");
    env.ok(&["delete", "--force", &id]);
}

/// `exec -t` without --console-socket: the pty is relayed by skiff-oci
/// itself, as runc does (`runc exec -t ctr sh` is how people debug); the
/// exit code is the process's. Detached, there is nobody to hold the pty:
/// refused. Before, -t without a socket was refused outright.
#[test]
fn exec_tty_without_a_console_socket_is_relayed() {
    let env = TestEnv::new("exectty-relay");
    let (id, _) = running(&env, |_| {});
    let out = env.oci(&["exec", "-t", &id, "sh", "-c", "tty; echo relayed; exit 5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("/dev/pts/") && text.contains("relayed"),
        "{text}"
    );
    let err = env.fails(&["exec", "-t", "-d", &id, "true"]);
    assert!(err.contains("--console-socket"), "{err}");
    env.ok(&["delete", "--force", &id]);
}
