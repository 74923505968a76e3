//! The lifecycle commands as runc's callers drive them: create, start, state,
//! kill, delete, run, list, and the hooks around them.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn wait_status(env: &TestEnv, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = |id: &str| {
        let out = env.oci(&["state", id]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .map(|v| v["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    while status(id) != want {
        assert!(Instant::now() < deadline, "{id} never became {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn create_start_kill_delete_as_containerd_calls_them() {
    let env = TestEnv::new("cycle");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let log = env.base.join("log.json");
    let pid_file = env.base.join("pid");
    // containerd's runc shim: global options first, id last.
    env.ok(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let state = env.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], json!(id));
    assert_eq!(state["bundle"], json!(b.path()));
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(read(&pid_file).trim(), pid.to_string());
    assert!(pid_alive(pid));
    // Parked before exec: init is still skiff-oci, not sleep.
    assert!(!read(format!("/proc/{pid}/cmdline")).starts_with("sleep"));
    // ... holding little memory of its own while it waits. (Its file pages,
    // the runtime's code, are dropped before the wait too, but RssFile says
    // how the kernel maps the page cache, not what init costs: a kernel with
    // large folios maps a whole folio of the binary on one fault.)
    let rss_anon: u64 = read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        rss_anon <= 1024,
        "parked init holds {rss_anon} KiB of anonymous memory"
    );

    env.ok(&["start", &id]);
    assert_eq!(env.status(&id), "running");
    assert!(read(format!("/proc/{pid}/cmdline")).starts_with("sleep"));
    // start on a running container is refused and names the status.
    let err = env.fails(&["start", &id]);
    assert!(err.contains("running"), "{err}");
    // delete without --force refuses a running container.
    let err = env.fails(&["delete", &id]);
    assert!(err.contains("running"), "{err}");

    env.ok(&["kill", &id, "KILL"]);
    wait_status(&env, &id, "stopped");
    assert_eq!(env.state(&id)["pid"], 0);
    env.ok(&["delete", &id]);
    assert!(env.container_dirs().is_empty());
    assert!(!default_group("pids", &id).exists());
    let err = env.fails(&["state", &id]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn run_returns_the_container_exit_code_and_output() {
    let env = TestEnv::new("run");
    let b = env.bundle("b", &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = env.id("c");
    let (code, out, err) = env.run(&b, &id);
    assert_eq!(code, 7);
    assert_eq!(out, "out\n");
    assert!(err.contains("err"));
    // Deleted on exit.
    assert!(env.container_dirs().is_empty());
}

#[test]
fn run_reports_death_by_signal_as_128_plus_signal() {
    let env = TestEnv::new("runsig");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let child = env
        .cmd(&["run", "--bundle", b.path(), &id])
        .spawn()
        .unwrap();
    wait_status(&env, &id, "running");
    env.ok(&["kill", &id, "KILL"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(env.container_dirs().is_empty());
}

#[test]
fn run_forwards_signals_to_the_container() {
    let env = TestEnv::new("runfwd");
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let id = env.id("c");
    let child = env
        .cmd(&["run", "--bundle", b.path(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_status(&env, &id, "running");
    wait_signal_handled(env.state(&id)["pid"].as_i64().unwrap(), libc::SIGTERM);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("got-term"));
}

#[test]
fn run_detach_and_keep() {
    let env = TestEnv::new("detach");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("d");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    assert_eq!(env.status(&id), "running");
    // `run` starts at once: init never parks on an exec fifo...
    assert!(env.root.join(&id).join("state.json").exists());
    assert!(!env.root.join(&id).join("exec.fifo").exists());
    // ...and goes on to the program by itself (it may still be on its way).
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let comm = loop {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        if comm.trim() == "sleep" || Instant::now() > deadline {
            break comm;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(comm.trim(), "sleep");
    env.ok(&["delete", "--force", &id]);
    // ...while `create` does, until `start`.
    let id3 = env.id("p");
    env.ok(&["create", "--bundle", b.path(), &id3]);
    assert_eq!(env.status(&id3), "created");
    assert!(env.root.join(&id3).join("exec.fifo").exists());
    env.ok(&["start", &id3]);
    assert_eq!(env.status(&id3), "running");
    env.ok(&["delete", "--force", &id3]);

    let b2 = env.bundle("b2", &["true"]);
    let id2 = env.id("k");
    env.ok(&["run", "--keep", "--bundle", b2.path(), &id2]);
    assert_eq!(env.status(&id2), "stopped");
    env.ok(&["delete", &id2]);
}

#[test]
fn options_may_follow_the_id_and_state_survives_separate_invocations() {
    let env = TestEnv::new("order");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    // No containers: `null`, as runc prints its empty list.
    assert_eq!(env.ok(&["list", "--format", "json"]), "null\n");
    // podman's order: options, then id; here also id first, options after.
    env.ok(&["create", &id, "--bundle", b.path()]);
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["status"], "created");
    // runc's owner: the name of the state directory's owner.
    assert_eq!(list[0]["owner"], "root");
    // runc's tabwriter: columns at least 12 wide, padded by 3.
    let table = env.ok(&["list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("PID         STATUS      BUNDLE"), "{table}");
    assert!(table.contains(&id));
    assert!(
        table.lines().nth(1).unwrap().ends_with("Z   root"),
        "{table}"
    );
    assert_eq!(env.ok(&["list", "-q"]).trim(), id);
    env.ok(&["start", &id]);
    // podman kills with a number.
    env.ok(&["kill", &id, "9"]);
    wait_status(&env, &id, "stopped");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn kill_takes_names_with_and_without_sig_and_all() {
    let env = TestEnv::new("kill");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "trap 'echo usr1 > /tmp/got' USR1; trap 'echo rt > /tmp/rt' 37; \
             sleep 1000 & while true; do sleep 0.05; done",
        ],
    );
    b.config["root"]["readonly"] = json!(false);
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    wait_signal_handled(pid, libc::SIGUSR1);
    env.ok(&["kill", &id, "USR1"]);
    let wait_file = |name: &str| {
        let got = b.rootfs().join("tmp").join(name);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !got.exists() {
            assert!(Instant::now() < deadline, "{name}: signal not delivered");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_file("got");
    // Real-time signals by name, as Docker stops systemd images: SIGRTMIN+3
    // is 37 in runc's numbering, which the trap above waits for (musl's own
    // SIGRTMIN is 35: a runtime built on it that used it would send 38).
    wait_signal_handled(pid, 37);
    env.ok(&["kill", &id, "SIGRTMIN+3"]);
    wait_file("rt");
    let procs = read(default_group("pids", &id).join("cgroup.procs"));
    assert!(procs.lines().count() >= 2, "{procs}");
    env.ok(&["kill", "--all", &id, "SIGKILL"]);
    wait_status(&env, &id, "stopped");
    env.ok(&["delete", &id]);
}

#[test]
fn deleting_a_created_container_kills_its_init() {
    let env = TestEnv::new("delcreated");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    env.ok(&["delete", &id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "init survived delete");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!default_group("memory", &id).exists());
}

#[test]
fn delete_force_of_a_missing_container_succeeds() {
    let env = TestEnv::new("delmissing");
    env.ok(&["delete", "--force", "skt-nothing-here"]);
    let err = env.fails(&["delete", "skt-nothing-here"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let env = TestEnv::new("hooks");
    let mut b = env.bundle("b", &["sh", "-c", "echo main >> /hooks.log"]);
    b.config["root"]["readonly"] = json!(false);
    let log = b.rootfs().join("hooks.log");
    let hook = |name: &str, path: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; case \"$s\" in *'\"id\"'*) echo {name} >> {path};; esac")]});
    let host_log = log.to_str().unwrap().to_string();
    b.config["hooks"] = json!({
        "prestart": [hook("prestart", &host_log)],
        "createRuntime": [hook("createRuntime", &host_log)],
        "createContainer": [hook("createContainer", &host_log)],
        // startContainer runs inside the container: its paths are the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /hooks.log"]}],
        "poststart": [hook("poststart", &host_log)],
        "poststop": [hook("poststop", &host_log)],
    });
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<String> = read(&log).lines().map(str::to_string).collect();
    let pos = |n: &str| {
        lines
            .iter()
            .position(|l| l == n)
            .unwrap_or_else(|| panic!("{n} missing: {lines:?}"))
    };
    assert!(pos("prestart") < pos("createContainer"));
    assert!(pos("createRuntime") < pos("createContainer"));
    assert!(pos("createContainer") < pos("startContainer"));
    assert!(pos("startContainer") < pos("main"));
    assert!(lines.contains(&"poststart".to_string()));
    assert!(pos("main") < pos("poststop"));
}

#[test]
fn run_reports_what_failed_in_init_after_it_was_ready() {
    // `run` keeps its end of the sync socket for a while after Ready; init's
    // error must still reach the caller (on stderr), and the container go.
    // An executable that execve refuses (ENOEXEC) fails right after Ready,
    // while `run` is still writing state.json.
    let env = TestEnv::new("lateerr");
    let b = env.bundle("b", &["/notelf"]);
    let bad = b.rootfs().join("notelf");
    fs::write(&bad, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for i in 0..5 {
        let (code, out, err) = env.run(&b, &env.id(&format!("c{i}")));
        assert_ne!(code, 0, "{out}{err}");
        assert!(err.contains("notelf"), "run {i}: {err:?}");
        assert!(env.container_dirs().is_empty());
    }
    // A failing startContainer hook, later, is reported too.
    let mut b = env.bundle("h", &["true"]);
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]});
    b.write();
    let (code, out, err) = env.run(&b, &env.id("h"));
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("hooks.startContainer[0]") && err.contains("nope"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
}

#[test]
fn failing_or_slow_create_hook_fails_create_and_leaves_nothing() {
    let env = TestEnv::new("hookfail");
    let mut b = env.bundle("b", &["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]});
    b.write();
    let id = env.id("c");
    let err = env.fails(&["create", "--bundle", b.path(), &id]);
    assert!(
        err.contains("hooks.createRuntime[0]") && err.contains("nope"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
    assert!(!default_group("memory", &id).exists());

    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]});
    b.write();
    let start = Instant::now();
    let err = env.fails(&["create", "--bundle", b.path(), &id]);
    assert!(err.contains("timed out"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(8));
    assert!(env.container_dirs().is_empty());
}

#[test]
fn stopped_state_is_seen_after_init_exits() {
    let env = TestEnv::new("stopped");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    env.ok(&["start", &id]);
    wait_status(&env, &id, "stopped");
    let err = env.fails(&["kill", &id, "TERM"]);
    assert!(err.contains("stopped"), "{err}");
    let err = env.fails(&["start", &id]);
    assert!(err.contains("stopped"), "{err}");
    env.ok(&["delete", &id]);
}

#[test]
fn spec_and_features() {
    let env = TestEnv::new("spec");
    let dir = env.base.join("s");
    fs::create_dir_all(&dir).unwrap();
    env.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(spec["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(spec["linux"]["namespaces"].as_array().unwrap().len() >= 5);
    // The same namespaces as runc's spec on this host: a cgroup one only
    // where /sys/fs/cgroup is the cgroup2 tree.
    let runc_dir = env.base.join("runc");
    fs::create_dir_all(&runc_dir).unwrap();
    sh_ok(&format!("cd {} && /usr/sbin/runc spec", runc_dir.display()));
    let runc_spec: serde_json::Value =
        serde_json::from_slice(&fs::read(runc_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        spec["linux"]["namespaces"],
        runc_spec["linux"]["namespaces"]
    );
    // No inheritable capabilities (runc's spec since CVE-2022-29162).
    let caps = &spec["process"]["capabilities"];
    assert!(
        caps["inheritable"].is_null() && caps["bounding"].is_array(),
        "{caps}"
    );
    // A second spec refuses to overwrite.
    let err = env.fails(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(err.contains("exists"), "{err}");
    let rl = env.base.join("r");
    fs::create_dir_all(&rl).unwrap();
    env.ok(&["spec", "--rootless", "--bundle", rl.to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(rl.join("config.json")).unwrap()).unwrap();
    assert!(spec["linux"]["uidMappings"].is_array());

    let f: serde_json::Value = serde_json::from_str(&env.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("time")));
    assert!(f["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_SYS_ADMIN")));
}

#[test]
fn trace_prints_each_phase_as_json() {
    let env = TestEnv::new("trace");
    let mut b = env.bundle("b", &["true"]);
    b.config["hooks"] = json!({
        "prestart": [{"path": "/bin/true"}],
        "startContainer": [{"path": "/bin/true"}],
    });
    b.write();
    let out = env.oci(&["--trace", "run", "--bundle", b.path(), &env.id("c")]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let phases: Vec<(&str, &str)> = lines
        .iter()
        .map(|v| (v["trace"].as_str().unwrap(), v["by"].as_str().unwrap()))
        .collect();
    for want in [
        ("parse", "runtime"),
        ("validate", "runtime"),
        ("cgroup", "runtime"),
        ("clone", "runtime"),
        ("mounts", "init"),
        ("devices", "init"),
        ("pivot", "init"),
        ("identity+seccomp", "init"),
        ("network", "init"),
        ("hooks prestart", "runtime"),
        ("hooks startContainer", "init"),
        ("wait", "runtime"),
        ("delete", "runtime"),
    ] {
        assert!(phases.contains(&want), "{want:?} missing: {phases:?}");
    }
    assert!(lines
        .iter()
        .all(|v| v["ms"].as_f64().is_some_and(|ms| ms >= 0.0)));
    // `end` is one clock for every process: init's phases end inside the
    // window in which the runtime waits for init.
    let end = |name: &str| {
        let v = lines.iter().find(|v| v["trace"] == name).unwrap();
        (
            v["end"].as_f64().unwrap() - v["ms"].as_f64().unwrap(),
            v["end"].as_f64().unwrap(),
        )
    };
    let (wait_from, wait_to) = end("init-setup (parent waits)");
    let (_, pivot_end) = end("pivot");
    assert!(
        wait_from <= pivot_end && pivot_end <= wait_to,
        "pivot ended at {pivot_end}, outside [{wait_from}, {wait_to}]"
    );
    // Off by default: nothing on stderr.
    let b2 = env.bundle("b2", &["true"]);
    let out = env.oci(&["run", "--bundle", b2.path(), &env.id("quiet")]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The state is private as runc's: a new root is 0700, a container's
/// directory 0711, state.json (which holds the environment) 0600.
#[test]
fn state_files_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new("statemode");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    assert!(!env.root.exists());
    env.ok(&["create", "--bundle", b.path(), &id]);
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&env.root), 0o700);
    assert_eq!(mode(&env.root.join(&id)), 0o711);
    assert_eq!(mode(&env.root.join(&id).join("state.json")), 0o600);
    env.ok(&["delete", "--force", &id]);
}

/// No wait on init is endless: an init stopped during setup, or frozen (a
/// prestart hook does either, to the pid its state names, or to the
/// container's freezer), fails create with the reason, and leaves nothing.
#[test]
fn a_stopped_or_frozen_init_fails_create_instead_of_hanging() {
    let env = TestEnv::new("stuckinit");
    let id = env.id("c");
    // A runtime that hung (and was killed) leaves its groups to this.
    let _cleanup = GroupSweep(id.clone());
    let freezer = Path::new("/sys/fs/cgroup/freezer").join(&id);
    let mut cases = vec![(
        "stopped",
        json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "read s; kill -STOP $(echo \"$s\" | sed 's/.*.pid.:\\([0-9]*\\).*/\\1/')"]}]}),
    )];
    if freezer.parent().unwrap().join("cgroup.procs").exists() {
        let script = format!("echo FROZEN > {}/freezer.state", freezer.display());
        cases.push((
            "frozen",
            json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}),
        ));
    } else {
        eprintln!("frozen case skipped: no v1 freezer here");
    }
    for (n, (want, hooks)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{n}"), &["true"]);
        b.config["hooks"] = hooks;
        b.write();
        let (code, _, err) = env.bounded(&["create", "--bundle", b.path(), &id], &[]);
        assert_ne!(code, 0, "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(env.container_dirs().is_empty(), "{want}: state left");
        assert!(!freezer.exists(), "{want}: cgroup left");
    }
}

/// The state's ociVersion is the spec version skiff implements (the one
/// `features` gives as ociVersionMax), whatever 1.x the bundle names, in
/// `state` and in what hooks read: runtime-spec's "version of the
/// specification with which the state complies", as runc prints its own.
#[test]
fn state_carries_the_runtimes_spec_version() {
    let env = TestEnv::new("ociver");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    let seen = env.base.join("hook-state");
    b.config["ociVersion"] = json!("1.0.0");
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", seen.display())]}]});
    b.write();
    let features: serde_json::Value = serde_json::from_str(&env.ok(&["features"])).unwrap();
    let implemented = features["ociVersionMax"].clone();
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    assert_eq!(env.state(&id)["ociVersion"], implemented);
    let hook: serde_json::Value = serde_json::from_str(&read(&seen)).unwrap();
    assert_eq!(hook["ociVersion"], implemented);
    env.ok(&["delete", "--force", &id]);
}
