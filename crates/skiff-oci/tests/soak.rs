//! Soak and load: many create/start/delete cycles, many execs into one
//! container, and containers created and deleted in parallel. What the
//! runtime leaves on the host must not grow: mounts, cgroups, state
//! directories, zombies, and the fds and processes of a long-lived
//! container. A fixed budget in CI (100 cycles, 100 execs, 30 in
//! parallel); SKIFF_SOAK=full runs 1000, 1000 and 100.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

/// (CI, SKIFF_SOAK=full) sizes.
fn budget(ci: usize, full: usize) -> usize {
    if std::env::var("SKIFF_SOAK").as_deref() == Ok("full") {
        full
    } else {
        ci
    }
}

/// What the host holds that a leak would grow.
#[derive(Debug, Clone, PartialEq)]
struct Host {
    mounts: usize,
    cgroups: usize,
    state_dirs: usize,
    zombies: usize,
}

/// Top-level groups of `env`'s containers, in every hierarchy.
fn test_cgroups(env: &TestEnv) -> usize {
    let prefix = env.id("");
    fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|h| fs::read_dir(h.path()).into_iter().flatten().flatten())
        .filter(|g| g.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

/// Zombies on the host (the host's init here reaps orphans slowly).
fn zombies() -> usize {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|p| {
            fs::read_to_string(p.path().join("stat"))
                .ok()
                .and_then(|s| s.rfind(") ").map(|i| s[i + 2..].starts_with('Z')))
                .unwrap_or(false)
        })
        .count()
}

fn host(env: &TestEnv) -> Host {
    Host {
        // The whole host's: a container's mounts are in its own namespace,
        // and a leak into the host's would show here.
        mounts: read("/proc/self/mountinfo").lines().count(),
        cgroups: test_cgroups(env),
        state_dirs: env.container_dirs().len(),
        zombies: zombies(),
    }
}

/// Waits (the host's init reaps orphans in its own time) until `now()` is
/// no more than `base` in every count, plus `slack` zombies (other tests
/// of the suite come and go meanwhile); fails with both when it never is.
fn settles_to(base: &Host, slack: usize, now: impl Fn() -> Host, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = now();
        let ok = h.mounts <= base.mounts
            && h.cgroups <= base.cgroups
            && h.state_dirs <= base.state_dirs
            && h.zombies <= base.zombies + slack;
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the host grew from {base:?} to {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Open fds of `pid`.
fn fds(pid: i64) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn create_start_delete_cycles_leave_nothing_growing() {
    let env = TestEnv::new("soakcycle");
    let b = env.bundle("b", &["sleep", "100"]);
    let n = budget(100, 1000);
    let base = host(&env);
    let t0 = Instant::now();
    for i in 0..n {
        let id = env.id(&format!("c{i}"));
        env.ok(&["create", "--bundle", b.path(), &id]);
        env.ok(&["start", &id]);
        assert_eq!(env.status(&id), "running", "cycle {i}");
        env.ok(&["delete", "--force", &id]);
        if i % 50 == 49 {
            // Bounded on the way, not only at the end: a leak shows early.
            settles_to(&base, 5, || host(&env), &format!("after {} cycles", i + 1));
        }
    }
    eprintln!("{n} cycles in {:?}", t0.elapsed());
    settles_to(&base, 5, || host(&env), &format!("after {n} cycles"));
}

#[test]
fn execs_into_one_container_leave_nothing_growing() {
    let env = TestEnv::new("soakexec");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let procs = default_group("pids", &id).join("cgroup.procs");
    // One exec first: whatever the first one sets up for good is no leak.
    env.ok(&["exec", &id, "true"]);
    let base = host(&env);
    let init_fds = fds(pid);
    let n = budget(100, 1000);
    let t0 = Instant::now();
    for i in 0..n {
        // Alternate a foreground exec and a detached one.
        if i % 2 == 0 {
            env.ok(&["exec", &id, "true"]);
        } else {
            env.exec_detached(&id, &["true"]);
        }
    }
    eprintln!("{n} execs in {:?}", t0.elapsed());
    settles_to(&base, 5, || host(&env), &format!("after {n} execs"));
    assert_eq!(fds(pid), init_fds, "init's fds grew over {n} execs");
    // Only init is left in the container (detached execs' zombies are
    // init's to reap: `sleep` does not, so they count as its processes
    // until it is gone; none may be alive).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<i64> = read(&procs)
            .lines()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| p != pid && pid_alive(p))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "exec'd processes left running: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(env.status(&id), "running");
    env.ok(&["delete", "--force", &id]);
}

/// Runs `f` on each of `ids` in its own thread; the failures, by id.
fn in_parallel(ids: &[String], f: impl Fn(&str) -> Result<(), String> + Sync) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ids.iter().map(|id| s.spawn(|| f(id))).collect();
        handles
            .into_iter()
            .zip(ids)
            .filter_map(|(h, id)| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{id}: {e}")),
                Err(_) => Some(format!("{id}: panicked")),
            })
            .collect()
    })
}

#[test]
fn containers_created_and_deleted_in_parallel_all_succeed() {
    let env = TestEnv::new("soakpar");
    let b = env.bundle("b", &["sleep", "1000"]);
    let n = budget(30, 100);
    let base = host(&env);
    let ids: Vec<String> = (0..n).map(|i| env.id(&format!("p{i}"))).collect();
    let runs = |args: &[&str]| -> Result<(), String> {
        let (code, out, err) = env.bounded(args, &[]);
        if code == 0 {
            Ok(())
        } else {
            Err(format!("{args:?} exit {code}: {out}{err}"))
        }
    };
    let t0 = Instant::now();
    let failed = in_parallel(&ids, |id| runs(&["create", "--bundle", b.path(), id]));
    assert!(failed.is_empty(), "parallel creates failed: {failed:#?}");
    let failed = in_parallel(&ids, |id| runs(&["start", id]));
    assert!(failed.is_empty(), "parallel starts failed: {failed:#?}");
    let (code, out, err) = env.bounded(&["list", "--format", "json"], &[]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let running = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "running")
        .count();
    assert_eq!(running, n, "{out}");
    let failed = in_parallel(&ids, |id| runs(&["delete", "--force", id]));
    assert!(failed.is_empty(), "parallel deletes failed: {failed:#?}");
    eprintln!("{n} in parallel: {:?}", t0.elapsed());
    settles_to(&base, n, || host(&env), &format!("after {n} in parallel"));
}
