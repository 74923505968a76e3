//! `doctor`: what crashes and forgotten deletes left under --root is
//! listed (exit 1), `--fix` removes it (processes, cgroups, state), and a
//! clean root says so (exit 0); the host's lines are there.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn doctor_finds_and_fixes_what_was_left() {
    let env = TestEnv::new("doctor");
    let (code, out, _) = env.bounded(&["doctor"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("nothing left behind") && out.contains("cgroup") && out.contains("kernel"),
        "{out}"
    );

    // 1. A container that ran and was never deleted.
    let b = env.bundle("b", &["true"]);
    let stopped = env.id("stopped");
    env.ok(&["run", "-d", "--bundle", b.path(), &stopped]);
    // 2. A state.json scribbled on, with its container still running.
    let busy = env.bundle("busy", &["sleep", "1000"]);
    let damaged = env.id("damaged");
    env.ok(&["run", "-d", "--bundle", busy.path(), &damaged]);
    let pid = env.state(&damaged)["pid"].as_i64().unwrap();
    fs::write(
        env.root.join(&damaged).join("state.json"),
        "{\"garbage\": tru",
    )
    .unwrap();
    // 3. A create SIGKILLed early (only its planned groups written down),
    // aged past the window in which doctor takes it for a create on its way.
    let killed = env.id("killed");
    for delay in [0u64, 1, 2, 3, 5] {
        let _ = fs::remove_dir_all(env.root.join(&killed));
        let mut child = env
            .cmd(&["create", "--bundle", busy.path(), &killed])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        if env.root.join(&killed).exists() && !env.root.join(&killed).join("state.json").exists() {
            break;
        }
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    if let Ok(f) = fs::File::open(env.root.join(&killed)) {
        let _ = f.set_modified(old);
    }
    std::thread::sleep(Duration::from_millis(100));
    let (code, out, _) = env.bounded(&["doctor"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("leak   container {stopped}: stopped")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "leak   container {damaged}: its state does not load"
        )),
        "{out}"
    );
    let (code, out, _) = env.bounded(&["doctor", "--fix"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("fixed  container {stopped}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("fixed  container {damaged}")),
        "{out}"
    );
    // Nothing is left: no state, no process of the damaged one, no group.
    assert!(
        env.container_dirs().is_empty(),
        "{:?}",
        env.container_dirs()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !pid_alive(pid),
        "the damaged container's process outlived --fix"
    );
    for id in [&stopped, &damaged, &killed] {
        for c in ["memory", "pids", "cpu", "freezer", "devices", "unified"] {
            assert!(!default_group(c, id).exists(), "{c} group of {id} left");
        }
    }
    let (code, out, _) = env.bounded(&["doctor"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing left behind"), "{out}");
}
