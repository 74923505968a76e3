//! Rootless: skiff-oci run by an unprivileged user (nobody), with a user
//! namespace mapping only that user, `spec --rootless`, and no cgroups.

mod common;

use std::fs;
use std::os::unix::fs::chown;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::json;

const NOBODY: u32 = 65534;

/// Runs skiff-oci as nobody, with this test's state root.
fn as_nobody(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ])
    .arg(skiff())
    .arg("--root")
    .arg(&env.root)
    .args(args)
    .env_remove("XDG_RUNTIME_DIR")
    .stdin(Stdio::null());
    output_via_files(&mut cmd, &env.base)
}

#[test]
fn an_unprivileged_user_runs_a_container() {
    let env = TestEnv::new("rootless");
    let b = env.bundle("b", &["true"]);
    // The rootless spec, written by the user it is for.
    let dir = env.base.join("rl");
    fs::create_dir_all(&dir).unwrap();
    chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::create_dir_all(&env.root).unwrap();
    chown(&env.root, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = as_nobody(
        &env,
        &["spec", "--rootless", "--bundle", dir.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": NOBODY, "size": 1}])
    );
    config["root"]["path"] = json!(b.rootfs());
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!([
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; echo $$; sleep 1000"
    ]);
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();

    let id = env.id("c");
    let out = as_nobody(&env, &["run", "-d", "--bundle", dir.to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&as_nobody(&env, &["state", &id]).stdout).unwrap();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap();
    // On the host the container runs as nobody, with no cgroup of its own.
    let status = read(format!("/proc/{pid}/status"));
    assert!(
        status.contains("Uid:\t65534\t65534\t65534\t65534"),
        "{status}"
    );
    assert!(read(format!("/proc/{pid}/uid_map"))
        .split_whitespace()
        .eq(["0", "65534", "1"]));
    assert!(!default_group("memory", &id).exists());
    // exec by the same user: it joins the container's user namespace
    // before its pid namespace (which only that one gives rights over).
    let out = as_nobody(
        &env,
        &[
            "exec",
            &id,
            "sh",
            "-c",
            // Without a group of its own, /sys/fs/cgroup shows nothing of
            // the host's hierarchies (the rootless spec binds the host's /sys).
            "id -u; cat /proc/self/uid_map; ls /sys/fs/cgroup | wc -l",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("0\n") && text.contains("65534"), "{text}");
    assert!(
        text.ends_with("\n0\n"),
        "the host's cgroups are in sight: {text}"
    );
    let out = as_nobody(&env, &["delete", "--force", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.container_dirs().is_empty());

    // Inside, the user is root of its namespace and PID 1; a network
    // namespace, made with the user namespace (which owns it), has lo up.
    let id2 = env.id("fg");
    config["process"]["args"] = json!([
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; echo $$; ip -o link show lo | grep -o '<[A-Z_,]*>'"
    ]);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "network"}));
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let out = as_nobody(&env, &["run", "--bundle", dir.to_str().unwrap(), &id2]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0");
    assert!(
        lines[1].split_whitespace().eq(["0", "65534", "1"]),
        "{text}"
    );
    assert_eq!(lines[2], "1");
    assert!(lines[3].split([',', '<', '>']).any(|f| f == "UP"), "{text}");
}

#[test]
fn rootless_limits_without_a_writable_cgroup_are_refused() {
    let env = TestEnv::new("rootlesslimits");
    let mut b = env.bundle("b", &["true"]);
    add_ns(&mut b.config, "user");
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": NOBODY, "size": 1}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": NOBODY, "size": 1}]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    b.write();
    fs::create_dir_all(&env.root).unwrap();
    chown(&env.root, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = as_nobody(&env, &["create", "--bundle", b.path(), &env.id("c")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cgroup") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
}
