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
