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
        let mut child = env
            .cmd(&["create", "--bundle", b.path(), &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        // The user's recovery.
        let (code, _, err) = env.bounded(&["delete", "--force", &id], &[]);
        assert_eq!(code, 0, "delete --force after a kill at {delay:?}: {err}");
        // Init, orphaned before it was recorded, ends by itself when it
        // finds its parent gone; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cgroups_left(&id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            env.container_dirs().is_empty(),
            "state left after a kill at {delay:?}"
        );
        assert_eq!(
            cgroups_left(&id),
            Vec::<String>::new(),
            "cgroups left after a kill at {delay:?}"
        );
        assert!(
            host_mounts(b.path()).is_empty(),
            "mounts left after a kill at {delay:?}"
        );
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
        let mut child = env
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        // (An exec killed after its child entered the container's pid
        // namespace leaves that child to the host's init, outside it: init's
        // death then waits until the host reaps it, up to seconds here.)
        let (code, _, err) = env.bounded(&["delete", "--force", &id], &[]);
        assert_eq!(
            code, 0,
            "delete --force after {verb} killed at {delay:?}: {err}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cgroups_left(&id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            env.container_dirs().is_empty(),
            "state left after {verb} killed at {delay:?}"
        );
        assert_eq!(
            cgroups_left(&id),
            Vec::<String>::new(),
            "cgroups left after {verb} killed at {delay:?}"
        );
    }
}
