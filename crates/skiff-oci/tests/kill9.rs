//! `create` SIGKILLed at every point of its way (a sweep of delays across
//! the few milliseconds it takes), then the recovery a user would run,
//! `delete --force`: it succeeds, and no state directory, cgroup, mount or
//! process of the container is left.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Whether any cgroup directory of `id` is still there.
fn cgroups_left(id: &str) -> Vec<String> {
    [
        "memory", "pids", "cpu", "freezer", "devices", "unified", "systemd",
    ]
    .iter()
    .filter(|c| cgroup_dir(c, &format!("/{id}")).exists())
    .map(|c| c.to_string())
    .collect()
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
}
