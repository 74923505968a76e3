//! `create`, `start`, `exec`, `delete`, `pause`, `resume` and `update`
//! SIGKILLed at every point of their way (a sweep of delays across the few
//! milliseconds each takes), and the container's init killed at every point
//! of `create` and `start`; then the recovery a user would run (`state`,
//! `list`, `resume`, `delete --force`): what `state` and `list` say is what
//! the kernel shows, and after `delete --force` no state directory, cgroup,
//! mount, process or open fd of the container is left.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Whether any cgroup directory of `id` is still there.
fn cgroups_left(id: &str) -> Vec<String> {
    [
        "memory", "pids", "cpu", "freezer", "devices", "unified", "systemd",
    ]
    .iter()
    .filter(|c| default_group(c, id).exists())
    .map(|c| c.to_string())
    .collect()
}

/// Processes (other than this test) with an fd, cwd or root inside `dir`:
/// "pid: link" for each.
fn fd_holders(dir: &Path) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for proc_entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = proc_entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let fds = fs::read_dir(proc_entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path());
        let others = ["cwd", "root"].map(|l| proc_entry.path().join(l));
        for link in fds.chain(others) {
            if let Ok(target) = fs::read_link(&link) {
                if target.starts_with(dir) {
                    found.push(format!("{pid}: {}", target.display()));
                }
            }
        }
    }
    found
}

/// Runs skiff-oci with `args`, SIGKILLs it after `delay`, and reaps it.
fn killed_after(env: &TestEnv, args: &[&str], delay: Duration) {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

/// The user's recovery, `delete --force`: it succeeds, and leaves no state
/// directory, cgroup or mount of `id` (`what` says which kill it follows).
fn delete_force_leaves_nothing(env: &TestEnv, b: &Bundle, id: &str, what: &str) {
    let (code, _, err) = env.bounded(&["delete", "--force", id], &[]);
    assert_eq!(code, 0, "delete --force after {what}: {err}");
    // Init, orphaned before it was recorded, ends by itself when it finds
    // its parent gone; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cgroups_left(id).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(env.container_dirs().is_empty(), "state left after {what}");
    assert_eq!(
        cgroups_left(id),
        Vec::<String>::new(),
        "cgroups left after {what}"
    );
    assert!(host_mounts(b.path()).is_empty(), "mounts left after {what}");
    // Init and what it started are gone (they may wait for the host's
    // init to reap them), and no process holds anything of the state.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fd_holders(&env.root).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fd_holders(&env.root),
        Vec::<String>::new(),
        "fds left after {what}"
    );
}

/// After a sweep and its recoveries, `doctor` finds nothing under the
/// root: no state, cgroup, mount, fifo or seccomp cache entry of a
/// container left (exit 0).
fn doctor_finds_nothing(env: &TestEnv, what: &str) {
    let (code, out, err) = env.bounded(&["doctor"], &[]);
    assert_eq!(code, 0, "doctor after {what}: {out}{err}");
    assert!(
        out.contains("nothing left behind"),
        "doctor after {what}: {out}"
    );
}

#[test]
fn create_killed_anywhere_is_cleared_by_delete_force() {
    let env = TestEnv::new("kill9");
    let b = env.bundle("b", &["sleep", "100"]);
    // How long a whole create takes here, to spread the kills over it.
    let t0 = Instant::now();
    let probe = env.id("probe");
    env.ok(&["create", "--bundle", b.path(), &probe]);
    let whole = t0.elapsed();
    env.ok(&["delete", "--force", &probe]);
    let steps = 60u32;
    for step in 0..=steps {
        let id = env.id(&format!("k{step}"));
        let delay = whole * step / steps;
        killed_after(&env, &["create", "--bundle", b.path(), &id], delay);
        delete_force_leaves_nothing(&env, &b, &id, &format!("create killed at {delay:?}"));
    }
    doctor_finds_nothing(&env, "create_killed_anywhere_is_cleared_by_delete_force");
}

/// `exec` and `delete` SIGKILLed along their way: the container is still
/// deleted by `delete --force`, with nothing left.
#[test]
fn exec_and_delete_killed_anywhere_leave_nothing_after_delete_force() {
    let env = TestEnv::new("kill9b");
    let b = env.bundle("b", &["sleep", "100"]);
    let steps = 12u32;
    for (verb, step) in ["exec", "delete"]
        .into_iter()
        .flat_map(|v| (0..=steps).map(move |s| (v, s)))
    {
        let id = env.id(&format!("{verb}{step}"));
        env.ok(&["run", "-d", "--bundle", b.path(), &id]);
        let args: Vec<&str> = match verb {
            "exec" => vec!["exec", &id, "sleep", "100"],
            _ => vec!["delete", "--force", &id],
        };
        // A whole exec or delete takes a few ms: the kills spread over 3.
        let delay = Duration::from_micros(3000) * step / steps;
        killed_after(&env, &args, delay);
        // (An exec killed after its child entered the container's pid
        // namespace leaves that child to the host's init, outside it: init's
        // death then waits until the host reaps it, up to seconds here.)
        delete_force_leaves_nothing(&env, &b, &id, &format!("{verb} killed at {delay:?}"));
    }
    doctor_finds_nothing(
        &env,
        "exec_and_delete_killed_anywhere_leave_nothing_after_delete_force",
    );
}

/// The freezer.state of the container's v1 group ("" when there is none).
fn freezer_state(id: &str) -> String {
    fs::read_to_string(default_group("freezer", id).join("freezer.state"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The name of `pid`'s program ("" once it is gone).
fn comm(pid: i64) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// What `state` says of `id`, checked against `list` and the kernel: a
/// created container's init is parked (still the runtime), a running one's
/// is `program` and thawed, a paused one's is frozen through, a stopped one
/// has no init. Returns the status.
fn truthful_status(env: &TestEnv, id: &str, program: &str, what: &str) -> String {
    // A v1 freeze that a killed pause began goes on in the kernel
    // (FREEZING, then FROZEN): state and list are compared once it is done.
    let deadline = Instant::now() + Duration::from_secs(5);
    while freezer_state(id) == "FREEZING" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, out, err) = env.bounded(&["state", id], &[]);
    assert_eq!(code, 0, "state after {what}: {err}");
    let state: serde_json::Value = serde_json::from_str(&out).unwrap();
    let status = state["status"].as_str().unwrap().to_string();
    let pid = state["pid"].as_i64().unwrap();
    let (code, out, err) = env.bounded(&["list", "--format", "json"], &[]);
    assert_eq!(code, 0, "list after {what}: {err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["status"].as_str().unwrap().to_string());
    assert_eq!(
        listed.as_deref(),
        Some(status.as_str()),
        "list after {what}"
    );
    let freezer = freezer_state(id);
    match status.as_str() {
        "created" => assert_ne!(comm(pid), program, "{what}: created, but init runs"),
        "running" => {
            assert_eq!(comm(pid), program, "{what}: running, but init is parked");
            assert_eq!(
                freezer, "THAWED",
                "{what}: running, but its freezer is not thawed"
            );
        }
        "paused" => assert_eq!(freezer, "FROZEN", "{what}: paused, but not frozen"),
        "stopped" => assert!(!pid_alive(pid), "{what}: stopped, but init {pid} lives"),
        other => panic!("{what}: status {other}"),
    }
    status
}

/// `killed_after` with `delay` stepping over `span` in `steps` steps.
fn sweep(steps: u32, span: Duration) -> impl Iterator<Item = (u32, Duration)> {
    (0..=steps).map(move |step| (step, span * step / steps))
}

/// A container of several processes, so that freezing and thawing it take
/// a while (the kills land in between).
fn busy_bundle(env: &TestEnv) -> Bundle {
    env.bundle(
        "busy",
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do sleep 100 & done; wait",
        ],
    )
}

/// `start` SIGKILLed along its way leaves the container created (init still
/// parked, and a second `start` runs it) or running: never one that says
/// created while its program runs (a second `start` would then wait forever
/// on a fifo nobody writes).
#[test]
fn start_killed_anywhere_leaves_created_or_running() {
    let env = TestEnv::new("kill9start");
    let b = env.bundle("b", &["sleep", "100"]);
    for (step, delay) in sweep(16, Duration::from_micros(4000)) {
        let id = env.id(&format!("s{step}"));
        env.ok(&["create", "--bundle", b.path(), &id]);
        killed_after(&env, &["start", &id], delay);
        let what = format!("start killed at {delay:?}");
        // Init may be between the fifo and execve a moment longer.
        std::thread::sleep(Duration::from_millis(20));
        if truthful_status(&env, &id, "sleep", &what) == "created" {
            let (code, _, err) = env.bounded(&["start", &id], &[]);
            assert_eq!(code, 0, "start again after {what}: {err}");
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(truthful_status(&env, &id, "sleep", &what), "running");
        }
        delete_force_leaves_nothing(&env, &b, &id, &what);
    }
    doctor_finds_nothing(&env, "start_killed_anywhere_leaves_created_or_running");
}

/// `pause` and `resume` SIGKILLed along their way: the container is paused
/// or running, as the freezer says, and `resume` of a paused one thaws it
/// through; never half-frozen and reported running.
#[test]
fn pause_and_resume_killed_anywhere_leave_paused_or_running() {
    let env = TestEnv::new("kill9pause");
    let b = busy_bundle(&env);
    for (verb, (step, delay)) in ["pause", "resume"]
        .into_iter()
        .flat_map(|v| sweep(16, Duration::from_micros(4000)).map(move |s| (v, s)))
    {
        let id = env.id(&format!("{verb}{step}"));
        env.ok(&["run", "-d", "--bundle", b.path(), &id]);
        if verb == "resume" {
            env.ok(&["pause", &id]);
        }
        killed_after(&env, &[verb, &id], delay);
        let what = format!("{verb} killed at {delay:?}");
        if truthful_status(&env, &id, "sh", &what) == "paused" {
            let (code, _, err) = env.bounded(&["resume", &id], &[]);
            assert_eq!(code, 0, "resume after {what}: {err}");
            assert_eq!(truthful_status(&env, &id, "sh", &what), "running");
        }
        delete_force_leaves_nothing(&env, &b, &id, &what);
    }
    doctor_finds_nothing(
        &env,
        "pause_and_resume_killed_anywhere_leave_paused_or_running",
    );
}

/// `update` SIGKILLed along its way: the container runs on, a new `update`
/// applies in full.
#[test]
fn update_killed_anywhere_leaves_it_running_and_updatable() {
    let env = TestEnv::new("kill9update");
    let b = env.bundle("b", &["sleep", "100"]);
    let update = [
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
    ];
    for (step, delay) in sweep(16, Duration::from_micros(4000)) {
        let id = env.id(&format!("u{step}"));
        env.ok(&["run", "-d", "--bundle", b.path(), &id]);
        let mut args = update.to_vec();
        args.push(&id);
        killed_after(&env, &args, delay);
        let what = format!("update killed at {delay:?}");
        assert_eq!(truthful_status(&env, &id, "sleep", &what), "running");
        let mut again = vec!["update", "--memory", "32m", "--pids-limit", "40"];
        again.push(&id);
        let (code, _, err) = env.bounded(&again, &[]);
        assert_eq!(code, 0, "update after {what}: {err}");
        let limit = |c: &str, f: &str| read(default_group(c, &id).join(f)).trim().to_string();
        assert_eq!(
            limit("memory", "memory.limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(limit("pids", "pids.max"), "40");
        delete_force_leaves_nothing(&env, &b, &id, &what);
    }
    doctor_finds_nothing(
        &env,
        "update_killed_anywhere_leaves_it_running_and_updatable",
    );
}

/// Every process of the tree below `pid` (children first found by
/// /proc/PID/task/*/children).
fn descendants(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid as i32];
    while let Some(p) = todo.pop() {
        for task in fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// The container's init SIGKILLed at every point of `create` (whatever the
/// runtime has forked by then) and of `start`: create and start end (with
/// an error or not), the container is stopped or gone, and `delete --force`
/// leaves nothing.
#[test]
fn init_killed_anywhere_in_create_or_start_is_cleared_by_delete_force() {
    let env = TestEnv::new("kill9init");
    let b = env.bundle("b", &["sleep", "100"]);
    let t0 = Instant::now();
    let probe = env.id("probe");
    env.ok(&["create", "--bundle", b.path(), &probe]);
    let whole = t0.elapsed();
    env.ok(&["delete", "--force", &probe]);
    for (step, delay) in sweep(30, whole) {
        let id = env.id(&format!("c{step}"));
        let mut create = env
            .cmd(&["create", "--bundle", b.path(), &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        for p in descendants(create.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while create.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "create hung after its init was killed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let what = format!("init killed {delay:?} into create");
        if env.container_dirs().contains(&id) && env.root.join(&id).join("state.json").exists() {
            truthful_status(&env, &id, "sleep", &what);
        }
        delete_force_leaves_nothing(&env, &b, &id, &what);
    }
    for (step, delay) in sweep(12, Duration::from_micros(3000)) {
        let id = env.id(&format!("s{step}"));
        env.ok(&["create", "--bundle", b.path(), &id]);
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        let mut start = env
            .cmd(&["start", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while start.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "start hung after init was killed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let what = format!("init killed {delay:?} into start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(truthful_status(&env, &id, "sleep", &what), "stopped");
        delete_force_leaves_nothing(&env, &b, &id, &what);
    }
    doctor_finds_nothing(
        &env,
        "init_killed_anywhere_in_create_or_start_is_cleared_by_delete_force",
    );
}

/// What a `start` killed right after it opened the exec fifo leaves: init
/// released and running its program, the fifo still there. `state` and
/// `list` say running (they said created), and `start` refuses at once (it
/// waited forever on the fifo nobody would write to again).
#[test]
fn a_start_killed_after_releasing_init_leaves_it_running() {
    use std::os::unix::fs::OpenOptionsExt;
    let env = TestEnv::new("kill9fifo");
    let b = env.bundle("b", &["sleep", "100"]);
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    // The killed start's part: open the fifo for reading, which lets init
    // write its byte and go on; then die (close it) without reading or
    // removing the fifo.
    let fifo = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(env.root.join(&id).join("exec.fifo"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while comm(pid) != "sleep" {
        assert!(Instant::now() < deadline, "init never ran its program");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(fifo);
    assert!(env.root.join(&id).join("exec.fifo").exists());
    assert_eq!(
        truthful_status(&env, &id, "sleep", "a half-done start"),
        "running"
    );
    let (code, _, err) = env.bounded(&["start", &id], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("running"), "{err}");
    delete_force_leaves_nothing(&env, &b, &id, "a half-done start");
    doctor_finds_nothing(
        &env,
        "a_start_killed_after_releasing_init_leaves_it_running",
    );
}
