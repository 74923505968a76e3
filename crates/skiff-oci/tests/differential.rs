//! skiff-oci against runc (Debian's, the reference), by construction: a
//! table of config variations, each run under both with the same bundle and
//! a probe inside the container that prints what a user observes (identity,
//! cwd, hostname, the root's entries, capabilities, no_new_privs, seccomp
//! mode, umask, rlimits, oom_score_adj, /dev, the mount table, limits). Both
//! must succeed or both fail, and print the same. Where they may not, the
//! scenario names the reason (docs/compatibility.md has the list).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// What the probe prints. Mount ids and the order of the mount table are
/// left out (sorted): they differ between any two runs.
const PROBE: &str = "id; pwd; hostname; ls / | tr '\\n' ' '; echo; \
    grep -E '^(Cap|NoNewPrivs|Seccomp|Umask)' /proc/self/status; ulimit -n; ulimit -u; \
    cat /proc/self/oom_score_adj; stat -c '%n %f %u %g %t %T' /dev/* /dev/net/* 2>/dev/null; \
    awk '{print $5, $6, $9}' /proc/self/mountinfo | grep -v '^/sys/fs/cgroup/unified ' | sort; \
    cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced /proc/sys/kernel/msgmax \
        /proc/sys/kernel/shmmni /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_syncookies 2>&1; \
    cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null; true";

/// What a run gave: success, and stdout.
#[derive(Debug, PartialEq)]
struct Outcome {
    ok: bool,
    stdout: String,
}

struct Scenario {
    name: String,
    edit: Box<dyn Fn(&mut Value)>,
    /// Why the two may differ here (and what is compared then: only that
    /// skiff-oci's outcome is `ok` as given).
    differs: Option<(&'static str, bool)>,
}

fn scenario(name: impl Into<String>, edit: impl Fn(&mut Value) + 'static) -> Scenario {
    Scenario {
        name: name.into(),
        edit: Box::new(edit),
        differs: None,
    }
}

fn runc_run(env: &TestEnv, bundle: &Path, id: &str) -> Outcome {
    let root = env.base.join("runc-state");
    // In a mount namespace of its own: without one in the config, runc
    // makes the container's mounts in the caller's table and leaves them.
    let mut cmd = Command::new("timeout");
    cmd.args([
        "-s",
        "KILL",
        "60",
        "unshare",
        "-m",
        "/usr/sbin/runc",
        "--root",
    ])
    .arg(&root)
    .args(["run", "--bundle"])
    .arg(bundle)
    .arg(id)
    .stdin(Stdio::null());
    let out = output_via_files(&mut cmd, &env.base);
    let _ = Command::new("/usr/sbin/runc")
        .arg("--root")
        .arg(&root)
        .args(["delete", "-f", id])
        .output();
    Outcome {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn skiff_run(env: &TestEnv, bundle: &Path, id: &str) -> Outcome {
    let (code, stdout, _) = env.bounded(&["run", "--bundle", bundle.to_str().unwrap(), id], &[]);
    Outcome {
        ok: code == 0,
        stdout,
    }
}

fn remove_ns(c: &mut Value, kind: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != kind);
    if kind == "uts" {
        c.as_object_mut().unwrap().remove("hostname");
    }
}

fn caps(c: &mut Value, list: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set] = json!(list);
    }
}

fn scenarios(host_dir: &Path) -> Vec<Scenario> {
    let mut list = vec![scenario("defaults", |_| {})];
    // Every subset of the namespaces a container may leave out (16).
    let optional = ["pid", "ipc", "uts", "network"];
    // Every subset of the namespaces a container may leave out (16), as
    // root and as another user.
    for bits in 1..(1u32 << optional.len()) {
        for uid in [0, 1000] {
            let dropped: Vec<&str> = optional
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, n)| *n)
                .collect();
            list.push(scenario(
                format!("without {}, uid {uid}", dropped.join("+")),
                move |c| {
                    for kind in &dropped {
                        remove_ns(c, kind);
                    }
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            ));
        }
    }
    // Process identity.
    for (uid, gid) in [(0, 0), (1000, 1000), (65534, 65534), (1000, 0)] {
        list.push(scenario(format!("user {uid}:{gid}"), move |c| {
            c["process"]["user"] = json!({"uid": uid, "gid": gid});
        }));
    }
    list.push(scenario("additional gids", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6, 7]});
    }));
    list.push(scenario("umask 077", |c| {
        c["process"]["user"]["umask"] = json!(63);
    }));
    // Capability sets, with and without no_new_privs, as root and not.
    let sets: [&[&str]; 4] = [
        &[],
        &["CAP_CHOWN"],
        &["CAP_SYS_ADMIN", "CAP_NET_ADMIN"],
        &[
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_AUDIT_WRITE",
            "CAP_SETUID",
            "CAP_SETGID",
        ],
    ];
    for set in sets {
        for nnp in [true, false] {
            for uid in [0, 1000] {
                list.push(scenario(
                    format!("capabilities {set:?}, nnp {nnp}, uid {uid}"),
                    move |c| {
                        caps(c, set);
                        c["process"]["noNewPrivileges"] = json!(nnp);
                        c["process"]["user"] = json!({"uid": uid, "gid": uid});
                    },
                ));
            }
        }
    }
    list.push(scenario("ambient capability", |c| {
        caps(c, &["CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"]["ambient"] = json!(["CAP_NET_BIND_SERVICE"]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    }));
    // Rlimits, oom_score_adj and the working directory, as root and not.
    for uid in [0, 1000] {
        for (soft, hard) in [(1024, 2048), (64, 64), (4096, 8192)] {
            list.push(scenario(
                format!("nofile {soft}/{hard}, uid {uid}"),
                move |c| {
                    c["process"]["rlimits"] =
                        json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]);
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            ));
        }
        for n in [100, 4096] {
            list.push(scenario(format!("nproc {n}, uid {uid}"), move |c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NPROC", "soft": n, "hard": n}]);
                c["process"]["user"] = json!({"uid": uid, "gid": uid});
            }));
        }
        for adj in [0, 100, 1000] {
            list.push(scenario(
                format!("oomScoreAdj {adj}, uid {uid}"),
                move |c| {
                    c["process"]["oomScoreAdj"] = json!(adj);
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            ));
        }
        for cwd in ["/tmp", "/usr/bin", "/made/for/it"] {
            list.push(scenario(format!("cwd {cwd}, uid {uid}"), move |c| {
                c["process"]["cwd"] = json!(cwd);
                c["process"]["user"] = json!({"uid": uid, "gid": uid});
            }));
        }
    }
    // Namespaced sysctls, one at a time; a host one is refused by both.
    for (key, value) in [
        ("kernel.msgmax", "16384"),
        ("kernel.shmmni", "2048"),
        ("net.core.somaxconn", "512"),
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.tcp_syncookies", "0"),
        ("vm.swappiness", "10"),
    ] {
        list.push(scenario(format!("sysctl {key}={value}"), move |c| {
            c["linux"]["sysctl"] = json!({ key: value });
        }));
    }
    list.push(scenario("writable root", |c| {
        c["root"]["readonly"] = json!(false);
    }));
    list.push(scenario("hostname and domainname", |c| {
        c["hostname"] = json!("probe-host");
        c["domainname"] = json!("probe.example");
    }));
    // Sysctls, masked and read-only paths.
    list.push(scenario("sysctls", |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"});
    }));
    list.push(scenario("no masked paths", |c| {
        c["linux"]["maskedPaths"] = json!([]);
    }));
    list.push(scenario("more masked paths", |c| {
        c["linux"]["maskedPaths"].as_array_mut().unwrap().extend([
            json!("/etc/passwd"),
            json!("/usr/bin"),
            json!("/no/such/path"),
        ]);
    }));
    list.push(scenario("more read-only paths", |c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["readonlyPaths"].as_array_mut().unwrap().extend([
            json!("/etc"),
            json!("/tmp"),
            json!("/no/such/path"),
        ]);
    }));
    // Mounts.
    // tmpfs options, under a read-only root and a writable one.
    for opts in [
        json!(["nosuid", "nodev", "mode=700", "size=1m"]),
        json!(["ro", "noexec"]),
        json!(["strictatime", "mode=1777"]),
        json!(["noatime", "nosuid"]),
        json!(["nodiratime", "exec", "uid=1000", "gid=1000"]),
        json!(["ro", "nosuid", "nodev", "noexec"]),
        json!(["rw", "dev", "suid"]),
        json!(["sync", "dirsync"]),
    ] {
        for ro_root in [true, false] {
            let opts = opts.clone();
            list.push(scenario(format!("tmpfs {opts}, ro root {ro_root}"), move |c| {
                c["root"]["readonly"] = json!(ro_root);
                c["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": opts}),
                );
            }));
        }
    }
    for opts in [
        json!(["rbind", "ro"]),
        json!(["bind", "nosuid", "nodev"]),
        json!(["rbind", "rro"]),
        json!(["bind", "ro", "noexec"]),
        json!(["rbind", "rw", "rprivate"]),
        json!(["bind", "noatime"]),
        json!(["rbind", "rslave"]),
        json!(["bind", "ro", "nosuid", "nodev", "noexec"]),
    ] {
        for uid in [0, 1000] {
            let (src, opts) = (host_dir.to_path_buf(), opts.clone());
            list.push(scenario(format!("bind {opts}, uid {uid}"), move |c| {
                c["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/mnt/b", "type": "bind", "source": src, "options": opts}),
                );
                c["process"]["user"] = json!({"uid": uid, "gid": uid});
            }));
        }
    }
    // Masked and read-only paths, one at a time.
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/etc/hostname",
        "/tmp",
        "/usr/bin",
    ] {
        list.push(scenario(format!("masked {path} alone"), move |c| {
            c["linux"]["maskedPaths"] = json!([path]);
        }));
    }
    for path in ["/proc/sys", "/proc/bus", "/etc", "/usr", "/tmp"] {
        list.push(scenario(format!("read-only {path} alone"), move |c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["readonlyPaths"] = json!([path]);
        }));
    }
    // The environment and the program's lookup.
    for env in [
        json!([]),
        json!(["PATH=/usr/bin"]),
        json!(["PATH=/nowhere:/bin", "A=b"]),
    ] {
        list.push(scenario(format!("env {env}"), move |c| {
            c["process"]["env"] = env.clone();
        }));
    }
    for umask in [0, 0o027, 0o002] {
        list.push(scenario(format!("umask {umask:o}, uid 1000"), move |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": umask});
        }));
    }
    for hostname in [
        "a",
        "a-very-long-hostname-of-sixty-three-characters-exactly-padding1",
    ] {
        list.push(scenario(format!("hostname {hostname}"), move |c| {
            c["hostname"] = json!(hostname);
        }));
    }
    list.push(scenario("read-only /dev", |c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    }));
    // Devices.
    for device in [
        json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}),
        json!({"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0, "fileMode": 432, "gid": 6}),
        json!({"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 438, "uid": 1000}),
        json!({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420}),
    ] {
        list.push(scenario(format!("device {}", device["path"]), move |c| {
            c["linux"]["devices"] = json!([device.clone()]);
        }));
    }
    // Seccomp.
    list.push(scenario("seccomp errno on mkdir", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]});
    }));
    // Limits, read back through the container's /sys/fs/cgroup.
    for memory in [67108864, 268435456] {
        for pids in [50, 500] {
            list.push(scenario(
                format!("memory {memory}, pids {pids}"),
                move |c| {
                    c["linux"]["resources"]["memory"] = json!({ "limit": memory });
                    c["linux"]["resources"]["pids"] = json!({ "limit": pids });
                },
            ));
        }
    }
    // Bad input: both refuse.
    type Edit = fn(&mut Value);
    let bad: [(&str, Edit); 6] = [
        ("no args", |c| c["process"]["args"] = json!([])),
        ("relative cwd", |c| c["process"]["cwd"] = json!("tmp")),
        ("hostname without uts", |c| {
            remove_ns(c, "uts");
            c["hostname"] = json!("x");
        }),
        ("a failing prestart hook", |c| {
            c["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
        }),
        ("masked paths without a mount namespace", |c| {
            remove_ns(c, "mount")
        }),
        ("a missing program", |c| {
            c["process"]["args"] = json!(["/no/such/program"])
        }),
    ];
    for (name, edit) in bad {
        list.push(scenario(name, edit));
    }
    // Choices where skiff-oci and runc differ (docs/compatibility.md).
    list.push(Scenario {
        name: "no mount namespace, no masked paths".into(),
        edit: Box::new(|c| {
            remove_ns(c, "mount");
            c["linux"]["maskedPaths"] = json!([]);
            c["linux"]["readonlyPaths"] = json!([]);
        }),
        differs: Some((
            "runc makes the mounts in the host's mount table and leaves them there; \
             skiff-oci refuses them without a private mount namespace",
            false,
        )),
    });
    list
}

/// Every scenario under runc and skiff-oci: the same outcome and output, or
/// the documented difference.
#[test]
fn skiff_oci_matches_runc() {
    let env = TestEnv::new("diff");
    let host_dir = env.base.join("hostdir");
    fs::create_dir_all(host_dir.join("sub")).unwrap();
    fs::write(host_dir.join("file"), "x").unwrap();
    let base = env.bundle("bundle", &["sh", "-c", PROBE]);
    let mut mismatches = Vec::new();
    let all = scenarios(&host_dir);
    for (n, s) in all.iter().enumerate() {
        let mut config = base.config.clone();
        (s.edit)(&mut config);
        fs::write(
            base.dir.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let runc = runc_run(&env, &base.dir, &env.id(&format!("r{n}")));
        let skiff = skiff_run(&env, &base.dir, &env.id(&format!("s{n}")));
        match s.differs {
            None if runc != skiff => {
                mismatches.push(format!("{}:\n  runc  {runc:?}\n  skiff {skiff:?}", s.name))
            }
            Some((why, ok)) if skiff.ok != ok => mismatches.push(format!(
                "{} (differs by choice: {why}): skiff-oci's outcome is {skiff:?}",
                s.name
            )),
            _ => {}
        }
        assert!(env.container_dirs().is_empty(), "{}: state left", s.name);
    }
    eprintln!("{} scenarios under runc and skiff-oci", all.len());
    assert!(
        mismatches.is_empty(),
        "{} of {} scenarios differ from runc:\n{}",
        mismatches.len(),
        all.len(),
        mismatches.join("\n")
    );
}

/// What an exec'd process observes: identity, groups, cwd, its environment,
/// capabilities, no_new_privs, seccomp, rlimits, cgroup.
const EXEC_PROBE: &str = "id; pwd; env | grep -v '^PWD=\\|^SHLVL=\\|^_=' | sort; \
    grep -E '^(Cap|NoNewPrivs|Seccomp|Umask)' /proc/self/status; echo nofile=$(ulimit -n); \
    cat /proc/self/oom_score_adj";

/// `exec` with runc's flags, into a container of each runtime made from the
/// same bundle: the same outcome and the same observations.
#[test]
fn skiff_oci_exec_matches_runc() {
    let env = TestEnv::new("diffexec");
    let mut b = env.bundle("bundle", &["sleep", "1000"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 4096}]);
    b.config["process"]["env"] = json!(["PATH=/usr/bin:/bin", "FROM_CONFIG=1", "TERM=xterm"]);
    b.write();
    let runc_root = env.base.join("runc-state");
    let runc = |args: &[&str]| {
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "KILL", "60", "/usr/sbin/runc", "--root"])
            .arg(&runc_root)
            .args(args)
            .stdin(Stdio::null());
        output_via_files(&mut cmd, &env.base)
    };
    let (rid, sid) = (env.id("r"), env.id("s"));
    let out = runc(&["run", "-d", "--bundle", b.path(), &rid]);
    assert!(
        out.status.success(),
        "runc run -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["run", "-d", "--bundle", b.path(), &sid]);
    let process_file = env.base.join("process.json");
    fs::write(
        &process_file,
        json!({"args": ["sh", "-c", EXEC_PROBE], "env": ["PATH=/bin", "ONLY=process"], "cwd": "/tmp",
               "user": {"uid": 65534, "gid": 65534}})
        .to_string(),
    )
    .unwrap();
    let pf = process_file.to_str().unwrap();
    let variants: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--user", "1000:1000"],
        vec!["--user", "1000"],
        vec!["--env", "A=b", "--env", "FROM_CONFIG=2"],
        vec!["--cwd", "/tmp"],
        vec!["--cwd", "/made/by/exec"],
        vec![
            "--additional-gids",
            "5",
            "--additional-gids",
            "6",
            "--user",
            "1000:1000",
        ],
        vec!["--cap", "CAP_SYS_ADMIN"],
        vec!["--cap", "CAP_NET_RAW", "--user", "1000:1000"],
        vec!["--no-new-privs"],
        vec!["--process", pf],
        vec!["--user", "no-such-user"],
    ];
    let mut mismatches = Vec::new();
    for flags in &variants {
        let run_one = |id: &str, runc_side: bool| {
            let mut args = vec!["exec"];
            args.extend_from_slice(flags);
            args.push(id);
            if !flags.contains(&"--process") {
                args.extend_from_slice(&["sh", "-c", EXEC_PROBE]);
            }
            let out = match runc_side {
                true => runc(&args),
                false => env.oci(&args),
            };
            Outcome {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            }
        };
        let (mut r, mut s) = (run_one(&rid, true), run_one(&sid, false));
        // Debian's runc 1.1.5 gives exec'd processes a soft NOFILE limit
        // raised to the hard one (Go 1.19's own raise, undone only in later
        // runc): skiff-oci applies the config's, as the runtime-spec says
        // and runc's `run` does. Compared apart.
        let nofile = |o: &mut Outcome| {
            let line = o
                .stdout
                .lines()
                .find(|l| l.starts_with("nofile="))
                .map(str::to_string);
            o.stdout = o
                .stdout
                .lines()
                .filter(|l| !l.starts_with("nofile="))
                .collect::<Vec<_>>()
                .join("\n");
            line
        };
        let (_, skiff_nofile) = (nofile(&mut r), nofile(&mut s));
        if s.ok && !flags.contains(&"--process") && skiff_nofile.as_deref() != Some("nofile=2048") {
            mismatches.push(format!(
                "exec {flags:?}: the config's NOFILE not applied: {skiff_nofile:?}"
            ));
        }
        if r != s {
            mismatches.push(format!("exec {flags:?}:\n  runc  {r:?}\n  skiff {s:?}"));
        }
    }
    let _ = runc(&["delete", "-f", &rid]);
    env.ok(&["delete", "--force", &sid]);
    eprintln!("{} exec variants under runc and skiff-oci", variants.len());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
