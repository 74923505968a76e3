//! Bad input: a one-line error naming the field or argument, exit code 1, and
//! nothing left behind (no state dir, cgroup, mount or process).

mod common;

use std::fs;

use common::*;
use serde_json::json;

/// Asserts that `create` fails mentioning every one of `want`, and left nothing.
fn create_fails(env: &TestEnv, b: &Bundle, id: &str, want: &[&str]) {
    let out = env.oci(&["create", "--bundle", b.path(), id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in {err:?}");
    }
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(env.container_dirs().is_empty(), "state dir left for {id}");
    for ctrl in ["memory", "pids", "cpu", "unified"] {
        assert!(
            !default_group(ctrl, id).exists(),
            "{ctrl} cgroup left for {id}"
        );
    }
    assert!(host_mounts(b.path()).is_empty(), "mount left for {id}");
    let ps = std::process::Command::new("pgrep")
        .args(["-f", id])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "process left for {id}");
}

#[test]
fn malformed_json() {
    let env = TestEnv::new("badjson");
    let b = env.bundle("b", &["true"]);
    fs::write(b.dir.join("config.json"), "{\"ociVersion\": \"1.0.2\", ").unwrap();
    create_fails(&env, &b, &env.id("c"), &["config.json"]);
}

#[test]
fn wrong_type_names_the_field() {
    let env = TestEnv::new("badtype");
    let mut b = env.bundle("b", &["true"]);
    b.config["process"]["args"] = json!("true");
    b.write();
    create_fails(&env, &b, &env.id("c"), &["process.args"]);
}

#[test]
fn unknown_namespace_names_the_field() {
    let env = TestEnv::new("badns");
    let mut b = env.bundle("b", &["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    b.write();
    create_fails(
        &env,
        &b,
        &env.id("c"),
        &["linux.namespaces[", "].type", "bogus"],
    );
}

#[test]
fn missing_rootfs() {
    let env = TestEnv::new("norootfs");
    let b = env.bundle("b", &["true"]);
    fs::remove_dir_all(b.rootfs()).unwrap();
    create_fails(&env, &b, &env.id("c"), &["root.path"]);
}

#[test]
fn unsupported_version_and_any_1x_accepted() {
    let env = TestEnv::new("version");
    let mut b = env.bundle("b", &["true"]);
    b.config["ociVersion"] = json!("2.0.0");
    b.write();
    create_fails(&env, &b, &env.id("c"), &["ociVersion"]);
    b.config["ociVersion"] = json!("1.3.7-future");
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
}

/// A missing or non-executable program fails create, in runc's words
/// (Docker and Podman read them to exit 127 or 126).
#[test]
fn missing_program_fails_create() {
    let env = TestEnv::new("noprog");
    let b = env.bundle("b", &["/no/such/program"]);
    create_fails(
        &env,
        &b,
        &env.id("c"),
        &[
            "process.args",
            "/no/such/program",
            "no such file or directory",
        ],
    );
    let b = env.bundle("d", &["/etc/passwd"]);
    create_fails(
        &env,
        &b,
        &env.id("d"),
        &["/etc/passwd", "permission denied"],
    );
    let b = env.bundle("e", &["nosuchprogram"]);
    create_fails(
        &env,
        &b,
        &env.id("e"),
        &["executable file not found in $PATH"],
    );
}

#[test]
fn cgroup_write_failure_names_the_resource() {
    let env = TestEnv::new("badcg");
    let mut b = env.bundle("b", &["true"]);
    b.config["linux"]["resources"] = json!({"cpu": {"period": 1}});
    b.write();
    create_fails(&env, &b, &env.id("c"), &["linux.resources.cpu.period"]);
}

#[test]
fn mount_failure_leaves_nothing() {
    let env = TestEnv::new("badmount");
    let mut b = env.bundle("b", &["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["bind"]}),
    );
    b.write();
    create_fails(&env, &b, &env.id("c"), &["mounts[", "/x"]);
}

#[test]
fn duplicate_id_is_refused_and_the_first_is_untouched() {
    let env = TestEnv::new("dupid");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    let err = env.fails(&["create", "--bundle", b.path(), &id]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(env.status(&id), "created");
    env.ok(&["delete", &id]);
}

#[test]
fn bad_ids_signals_and_missing_containers() {
    let env = TestEnv::new("badargs");
    let b = env.bundle("b", &["sleep", "1000"]);
    let err = env.fails(&["create", "--bundle", b.path(), "../escape"]);
    assert!(err.contains("container id"), "{err}");
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let err = env.fails(&["kill", &id, "SIGNOPE"]);
    assert!(err.contains("SIGNOPE"), "{err}");
    assert_eq!(env.status(&id), "running");
    env.ok(&["delete", "--force", &id]);
    for cmd in ["state", "start", "kill", "delete"] {
        let err = env.fails(&[cmd, "skt-missing"]);
        assert!(
            err.contains("skt-missing") && err.contains("does not exist"),
            "{cmd}: {err}"
        );
    }
    let out = env.oci(&["create", "--bogus-flag", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus-flag"));
}

#[test]
fn json_log_carries_the_error_for_containerd() {
    let env = TestEnv::new("jsonlog");
    let b = env.bundle("b", &["/no/such/program"]);
    let log = env.base.join("log.json");
    let out = env.oci(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.path(),
        &env.id("c"),
    ]);
    assert!(!out.status.success());
    let line = read(&log);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("/no/such/program"));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    // `features | head -c1`: the reader leaves early; skiff-oci ends quietly.
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; {} features | head -c1 >/dev/null",
                skiff()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn systemd_cgroup_without_systemd_is_a_clear_error() {
    if std::path::Path::new("/run/systemd/system").exists() {
        return; // a host with systemd accepts it
    }
    let env = TestEnv::new("systemdcg");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    let err = env.fails(&["--systemd-cgroup", "create", "--bundle", b.path(), &id]);
    assert!(
        err.contains("--systemd-cgroup") && err.contains("systemd is not running"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
    assert!(!default_group("memory", &id).exists());
}

#[test]
fn text_log_format_is_logfmt() {
    let env = TestEnv::new("textlog");
    let log = env.base.join("log.txt");
    let out = env.oci(&[
        "--log",
        log.to_str().unwrap(),
        "--debug",
        "state",
        "skt-none",
    ]);
    assert!(!out.status.success());
    let line = read(&log);
    assert!(
        line.starts_with("time=\"") && line.contains("level=error") && line.contains("skt-none"),
        "{line}"
    );
}

/// A sysctl outside the container's namespaces is refused (runc and crun do
/// too): written, it would change the host's kernel for everyone.
#[test]
fn sysctl_outside_the_containers_namespaces_is_refused() {
    let env = TestEnv::new("sysctlhost");
    let before = read("/proc/sys/vm/swappiness");
    let flipped = if before.trim() == "10" { "11" } else { "10" };
    let mut b = env.bundle("b", &["true"]);
    b.config["linux"]["sysctl"] = json!({ "vm.swappiness": flipped });
    b.write();
    create_fails(
        &env,
        &b,
        &env.id("c"),
        &["linux.sysctl.vm.swappiness", "host"],
    );
    assert_eq!(read("/proc/sys/vm/swappiness"), before);
    // A network parameter without a network namespace of its own.
    b.config["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    b.write();
    create_fails(
        &env,
        &b,
        &env.id("c"),
        &["linux.sysctl.net.ipv4.ip_forward", "network namespace"],
    );
}

/// An `exec --process` file of the wrong shape names the field, as a
/// config.json does (it said only `invalid type: string "root", expected u32`).
#[test]
fn exec_process_of_wrong_type_names_the_field() {
    let env = TestEnv::new("badproc");
    let b = env.bundle("b", &["sleep", "100"]);
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let file = env.base.join("process.json");
    fs::write(
        &file,
        r#"{"args": ["true"], "cwd": "/", "user": {"uid": "root", "gid": 0}}"#,
    )
    .unwrap();
    let err = env.fails(&["exec", "--process", file.to_str().unwrap(), &id]);
    assert!(
        err.contains("process.json: user.uid: invalid type"),
        "{err}"
    );
    env.ok(&["delete", "--force", &id]);
}

/// linux.timeOffsets the kernel would refuse with a bare errno (EACCES
/// without a time namespace of the container's own, EINVAL for a clock it
/// does not offset) is refused before anything is made, naming the field.
#[test]
fn time_offsets_without_their_namespace_name_the_field() {
    let env = TestEnv::new("badtime");
    let mut b = env.bundle("b", &["true"]);
    let cases: [(&str, Option<&str>, serde_json::Value); 3] = [
        (
            "linux.timeOffsets: needs a time namespace",
            None,
            json!({"monotonic": {"secs": 1}}),
        ),
        (
            "linux.timeOffsets: cannot be set for a time namespace joined by path",
            Some("/proc/self/ns/time"),
            json!({"boottime": {"secs": 1}}),
        ),
        (
            "linux.timeOffsets.realtime",
            Some(""),
            json!({"realtime": {"secs": 1}}),
        ),
    ];
    for (n, (want, ns, offsets)) in cases.into_iter().enumerate() {
        let mut config = b.config.clone();
        match ns {
            Some("") => add_ns(&mut config, "time"),
            Some(path) => config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time", "path": path})),
            None => {}
        }
        config["linux"]["timeOffsets"] = offsets;
        std::mem::swap(&mut b.config, &mut config);
        b.write();
        std::mem::swap(&mut b.config, &mut config);
        create_fails(&env, &b, &env.id(&format!("c{n}")), &[want]);
    }
}

/// A --log that cannot be opened fails the command before anything is done,
/// as runc's and crun's does (it was said on stderr and the command went
/// on, its errors then lost to a caller reading the log).
#[test]
fn a_log_that_cannot_be_opened_fails_the_command() {
    let env = TestEnv::new("badlog");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    let log = env.base.join("no-such-dir/log.json");
    let out = env.oci(&[
        "--log",
        log.to_str().unwrap(),
        "create",
        "--bundle",
        b.path(),
        &id,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--log"), "{err}");
    assert!(env.container_dirs().is_empty(), "state left: {err}");
    assert!(!default_group("pids", &id).exists());
}

/// runtime-spec, linux.devices: "If a file already exists at path that does
/// not match the requested device, the runtime MUST generate an error." A
/// regular file, a directory, a symlink or another device the image has
/// there is refused (runc 1.1.5 ignores EEXIST and leaves it), naming the
/// field and the path, before any node is made; also in a user namespace,
/// where nodes are bound from the host. The same device is taken (remade
/// with the config's mode).
#[test]
fn device_over_a_file_the_image_has_is_refused() {
    let env = TestEnv::new("devexists");
    let node = |path: &str, minor: u32| json!({"path": path, "type": "c", "major": 1, "minor": minor, "fileMode": 0o600});
    let cases = [
        ("/etc/passwd", false),
        ("/tmp", false),
        ("/bin", false),
        ("/etc/zero", false),
        ("/etc/passwd/below", false),
        ("/etc/passwd", true),
    ];
    let bundle = |name: &str, args: &[&str]| {
        let b = env.bundle(name, args);
        let made = std::process::Command::new("mknod")
            .arg(b.rootfs().join("etc/zero"))
            .args(["c", "1", "5"])
            .status()
            .unwrap();
        assert!(made.success());
        b
    };
    for (n, (path, userns)) in cases.into_iter().enumerate() {
        let mut b = bundle(&format!("b{n}"), &["true"]);
        let passwd = fs::read(b.rootfs().join("etc/passwd")).unwrap();
        // One that would be made first: it must not be left behind.
        b.config["linux"]["devices"] = json!([node("/etc/made-first", 3), node(path, 3)]);
        if userns {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }
        b.write();
        create_fails(
            &env,
            &b,
            &env.id(&format!("c{n}")),
            &["linux.devices", path],
        );
        let rootfs = b.rootfs();
        assert!(
            !rootfs.join("etc/made-first").exists(),
            "{path}: a node left"
        );
        assert_eq!(fs::read(rootfs.join("etc/passwd")).unwrap(), passwd);
        assert!(fs::symlink_metadata(rootfs.join("bin"))
            .unwrap()
            .is_symlink());
        assert!(rootfs.join("tmp").is_dir());
    }
    // The same device as the image's: taken, with the config's mode.
    let mut b = bundle("same", &["stat", "-c", "%F %t:%T %a", "/etc/zero"]);
    b.config["linux"]["devices"] = json!([node("/etc/zero", 5)]);
    b.write();
    let (code, out, err) = env.run(&b, &env.id("same"));
    assert_eq!(
        (code, out.as_str()),
        (0, "character special file 1:5 600\n"),
        "{err}"
    );
}

/// A linux.devices entry for a standard device (null, zero, full, random,
/// urandom, tty) may change its mode or owner, not its numbers or type:
/// refused up front, naming linux.devices and the path (a /dev/null that
/// is not the null device failed later, when masking paths).
#[test]
fn standard_device_with_other_numbers_is_refused() {
    let env = TestEnv::new("devstd");
    let cases = [
        json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 5}),
        json!({"path": "/dev/zero", "type": "c", "major": 1, "minor": 3}),
        json!({"path": "/dev/tty", "type": "c", "major": 5, "minor": 1}),
        json!({"path": "/dev/../dev/random", "type": "c", "major": 1, "minor": 9}),
        json!({"path": "/dev/urandom", "type": "b", "major": 1, "minor": 9}),
        json!({"path": "/dev/full", "type": "p"}),
    ];
    for (n, device) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{n}"), &["true"]);
        let name = device["path"].as_str().unwrap().rsplit('/').next().unwrap();
        let want = format!("/dev/{name}");
        b.config["linux"]["devices"] = json!([device]);
        b.write();
        create_fails(
            &env,
            &b,
            &env.id(&format!("c{n}")),
            &["linux.devices", &want],
        );
    }
}
