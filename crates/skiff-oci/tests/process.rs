//! The process section: args, env, cwd, user and groups, umask, capabilities,
//! rlimits, noNewPrivileges, oomScoreAdj, and a terminal over --console-socket.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not in {status}"))
        .trim()
}

#[test]
fn env_cwd_and_args() {
    let env = TestEnv::new("env");
    let out = env.run_sh("e", "echo $FOO; pwd; echo $HOME; echo \"$0\"", |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/work/dir");
    });
    assert_eq!(out, "bar baz\n/work/dir\n/root\nsh\n");
}

#[test]
fn user_groups_and_umask() {
    let env = TestEnv::new("user");
    let out = env.run_sh(
        "u",
        "id -u; id -g; id -G; umask; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
        |c| {
            c["process"]["user"] =
                json!({"uid": 1234, "gid": 2345, "additionalGids": [3456, 4567], "umask": 63});
        },
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1234"));
    assert_eq!(lines.next(), Some("2345"));
    let groups = lines.next().unwrap();
    assert!(
        groups.contains("3456") && groups.contains("4567"),
        "{groups}"
    );
    assert_eq!(lines.next(), Some("0077"));
    assert!(out.contains("Uid:\t1234\t1234\t1234\t1234"), "{out}");
}

#[test]
fn capabilities_are_exactly_the_configured_sets() {
    let env = TestEnv::new("caps");
    let out = env.run_sh("c", "cat /proc/self/status", |c| {
        c["process"]["capabilities"] = json!({
            // A name this build does not know is left out with a warning (runc).
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NOT_YET_INVENTED"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_KILL"],
            // CHOWN is not inheritable, so it cannot be ambient: left out, as
            // runc does (its default spec asks for ambient without inheritable).
            "ambient": ["CAP_KILL", "CAP_CHOWN"],
        });
    });
    // CHOWN = bit 0, KILL = bit 5, NET_BIND_SERVICE = bit 10.
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000421");
    assert_eq!(status_field(&out, "CapPrm"), "0000000000000421");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000020");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000020");
}

#[test]
fn non_root_user_keeps_ambient_capabilities_only() {
    let env = TestEnv::new("capuser");
    let out = env.run_sh("c", "cat /proc/self/status", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_NET_BIND_SERVICE"], "effective": ["CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"],
        });
    });
    assert_eq!(status_field(&out, "CapEff"), "0000000000000400");
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
}

#[test]
fn rlimits_no_new_privs_and_oom_score_adj() {
    let env = TestEnv::new("rlimits");
    let out = env.run_sh(
        "r",
        "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status",
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
            c["process"]["noNewPrivileges"] = json!(true);
            c["process"]["oomScoreAdj"] = json!(500);
        },
    );
    assert_eq!(out, "123\n456\n500\nNoNewPrivs:\t1\n");
}

#[test]
fn terminal_master_arrives_over_the_console_socket() {
    let env = TestEnv::new("tty");
    let mut b = env.bundle("b", &["sh", "-c", "tty; stty size; echo on-the-tty"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 99});
    b.write();
    let sock_path = env.base.join("console.sock");
    let receiver = console_receiver(&sock_path);
    let id = env.id("c");
    env.ok(&[
        "create",
        "--bundle",
        b.path(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ]);
    let master = receiver.join().unwrap();
    env.ok(&["start", &id]);
    let out = read_pty_until(master, "on-the-tty");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 99"), "{out}");
    assert!(out.contains("on-the-tty"), "{out}");
    let err = env.fails(&["create", "--bundle", b.path(), &env.id("nosock")]);
    assert!(err.contains("--console-socket"), "{err}");
}

#[test]
fn no_runtime_fd_reaches_the_container() {
    let env = TestEnv::new("fds");
    let out = env.run_sh("f", "ls /proc/self/fd | tr '\\n' ' '", |_| {});
    // 0 1 2, and 3 is ls's own directory fd.
    assert_eq!(out.trim(), "0 1 2 3", "{out}");
}

#[test]
fn sysctl_and_preserved_fds() {
    let env = TestEnv::new("sysctl");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward; echo via-fd3 >&3",
        ],
    );
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.write();
    let out_file = env.base.join("fd3.txt");
    // The caller's fd 3 is passed on with --preserve-fds 1.
    let script = format!(
        "exec 3>{}; exec {} --root {} run --preserve-fds 1 --bundle {} {}",
        out_file.display(),
        skiff(),
        env.root.display(),
        b.path(),
        env.id("c")
    );
    assert_eq!(sh_ok(&script), "1\n");
    assert_eq!(read(&out_file), "via-fd3\n");
}

#[test]
fn run_with_a_terminal_in_the_foreground_relays_it() {
    let env = TestEnv::new("runtty");
    let mut b = env.bundle("b", &["sh", "-c", "tty; read x; echo got-$x; exit 4"]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let mut child = env
        .cmd(&["run", "--bundle", b.path(), &env.id("c")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("/dev/pts/") && text.contains("got-hello"),
        "{text}"
    );
}

/// Init is moved off the runtime's CPU while both work after the clone
/// (placement.rs); the program must still get the CPUs runc would give it:
/// the caller's set, narrowed by the container's cpuset when it has one.
#[test]
fn the_program_gets_the_callers_cpus_or_its_cpuset() {
    let env = TestEnv::new("cpus");
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own = status_field(&own, "Cpus_allowed_list").to_string();
    let last = own.rsplit([',', '-']).next().unwrap().to_string();
    let run = |wrap: &[&str], id: &str, cpuset: Option<&str>| {
        let mut b = env.bundle(
            id,
            &["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
        );
        if let Some(cpus) = cpuset {
            b.config["linux"]["resources"]["cpu"] = json!({"cpus": cpus});
            b.write();
        }
        let text = env.run_under(wrap, &b, id);
        status_field(&text, "Cpus_allowed_list").to_string()
    };
    assert_eq!(run(&["env"], "all", None), own);
    // Pinned by the caller: passed on, as with runc.
    assert_eq!(run(&["taskset", "-c", &last], "one", None), last);
    // A cpuset of the container's own, whatever CPU init was moved to.
    assert_eq!(run(&["env"], "set0", Some("0")), "0");
    assert_eq!(run(&["env"], "setlast", Some(&last)), last);
}

/// A non-root process.user owns its stdio, as with runc: a program that
/// reopens /dev/stdout (or a log file linked there) is not refused, in
/// `run` and in `exec`. /dev/null is left alone.
#[test]
fn a_non_root_user_owns_its_stdio() {
    let env = TestEnv::new("stdio");
    // Reopened last, appending: the shell's own fd 1 writes from offset 0.
    let script = "stat -L -c %u /proc/self/fd/1 /proc/self/fd/0; echo reopened >> /dev/stdout";
    let out = env.run_sh("r", script, |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    assert!(
        out.starts_with("1000\n") && out.ends_with("reopened\n"),
        "{out}"
    );
    let mut b = env.bundle("d", &["sleep", "1000"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.write();
    let id = env.id("d");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let out = env.oci(&["exec", "--user", "1000:1000", &id, "sh", "-c", script]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("reopened"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stdin was /dev/null: still root's.
    assert_eq!(text, "1000\n0\nreopened\n");
    env.ok(&["delete", "--force", &id]);
}

/// Systemd socket activation, as runc passes it on: with LISTEN_FDS set for
/// skiff-oci itself (LISTEN_PID), fd 3 on reaches the program, which gets
/// LISTEN_FDS and LISTEN_PID=1; set for another process, nothing passes.
#[test]
fn socket_activation_fds_are_passed_on() {
    let env = TestEnv::new("listenfds");
    let passed = env.base.join("passed");
    std::fs::write(&passed, "from-systemd\n").unwrap();
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat <&3 2>/dev/null || echo no-fd-3; echo ${LISTEN_FDS:-unset} ${LISTEN_PID:-unset}",
        ],
    );
    let run = |pid: &str, id: &str| {
        let script = format!(
            "LISTEN_FDS=1 LISTEN_PID={pid} exec {} --root {} run --bundle {} {id} 3<{}",
            skiff(),
            env.root.display(),
            b.path(),
            passed.display()
        );
        sh_ok(&script)
    };
    assert_eq!(run("$$", &env.id("a")), "from-systemd\n1 1\n");
    assert_eq!(run("1", &env.id("b")), "no-fd-3\nunset unset\n");
}

/// The newer runtime-spec fields are applied, each seen from inside:
/// process.scheduler (policy and nice in /proc/self/stat), process.ioPriority
/// (ionice), linux.personality (uname under LINUX32), linux.memoryPolicy
/// (numa_maps), and exec's execCPUAffinity; before, they were accepted and
/// dropped. What cannot be applied here is refused, naming the field.
#[test]
fn scheduler_io_priority_personality_memory_policy_and_affinity_apply() {
    let env = TestEnv::new("kernelattrs");
    let out = env.run_sh(
        "a",
        "set -- $(sed 's/.*) //' /proc/self/stat); echo policy=${39} nice=${17}; ionice; uname -m; \
         grep -c bind:0 /proc/self/numa_maps",
        |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "policy=3 nice=5", "{out}");
    assert_eq!(lines[1], "best-effort: prio 6", "{out}");
    assert_eq!(lines[2], "i686", "{out}");
    assert_ne!(lines[3], "0", "{out}");

    let b = env.bundle("e", &["sleep", "60"]);
    let id = env.id("e");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let mut process = b.config["process"].clone();
    process["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    process["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    let file = env.base.join("p.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = env.ok(&["exec", "--process", file.to_str().unwrap(), &id]);
    assert_eq!(out.split_whitespace().last(), Some("0"), "{out}");
    env.ok(&["delete", "--force", &id]);

    for (n, (field, edit)) in [
        (
            "linux.personality.flags",
            json!({"linux": {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}}}),
        ),
        (
            "process.selinuxLabel",
            json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
        ),
        (
            "linux.intelRdt",
            json!({"linux": {"intelRdt": {"closID": "x"}}}),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = env.bundle(&format!("r{n}"), &["true"]);
        for (section, value) in edit.as_object().unwrap() {
            for (k, v) in value.as_object().unwrap() {
                b.config[section][k] = v.clone();
            }
        }
        b.write();
        let err = env.fails(&["run", "--bundle", b.path(), &env.id(&format!("r{n}"))]);
        assert!(err.contains(field), "{field}: {err}");
        assert!(env.container_dirs().is_empty());
    }
    if !Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        let mut b = env.bundle("aa", &["true"]);
        b.config["process"]["apparmorProfile"] = json!("docker-default");
        b.write();
        let err = env.fails(&["run", "--bundle", b.path(), &env.id("aa")]);
        assert!(err.contains("process.apparmorProfile"), "{err}");
    }
}
