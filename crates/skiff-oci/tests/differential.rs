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

/// What a run gave: success, and stdout; stderr is shown, not compared
/// (the two word their errors differently).
#[derive(Debug)]
struct Outcome {
    ok: bool,
    stdout: String,
    // Read through Debug, in the report of a mismatch.
    #[allow(dead_code)]
    stderr: String,
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Outcome) -> bool {
        (self.ok, &self.stdout) == (other.ok, &other.stdout)
    }
}

struct Scenario {
    name: String,
    edit: Box<dyn Fn(&mut Value)>,
    /// A probe of the scenario's own instead of [`PROBE`], for what that
    /// one does not show (a mounted path, /proc/self/limits, a sysctl).
    probe: Option<String>,
    /// Why the two may differ here (and what is compared then: only that
    /// skiff-oci's outcome is `ok` as given).
    differs: Option<(&'static str, bool)>,
}

fn scenario(name: impl Into<String>, edit: impl Fn(&mut Value) + 'static) -> Scenario {
    Scenario {
        name: name.into(),
        edit: Box::new(edit),
        probe: None,
        differs: None,
    }
}

impl Scenario {
    fn probe(mut self, probe: impl Into<String>) -> Scenario {
        self.probe = Some(probe.into());
        self
    }

    fn differs(mut self, why: &'static str, ok: bool) -> Scenario {
        self.differs = Some((why, ok));
        self
    }
}

/// runc with its state under `root`, killed after 60 s; its output.
fn runc_at(env: &TestEnv, root: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "60", "/usr/sbin/runc", "--root"])
        .arg(root)
        .args(args)
        .stdin(Stdio::null());
    output_via_files(&mut cmd, &env.base)
}

fn runc_run(env: &TestEnv, bundle: &Path, id: &str) -> Outcome {
    let root = env.base.join("runc-state");
    // In a mount namespace of its own: without one in the config, runc
    // makes the container's mounts in the caller's table and leaves them.
    // A slave of the host's, so that mounts propagate to the container as
    // they do to skiff-oci's (which runs in the host's).
    let mut cmd = Command::new("timeout");
    cmd.args([
        "-s",
        "KILL",
        "60",
        "unshare",
        "-m",
        "--propagation",
        "slave",
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
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn skiff_run(env: &TestEnv, bundle: &Path, id: &str) -> Outcome {
    let (code, stdout, stderr) =
        env.bounded(&["run", "--bundle", bundle.to_str().unwrap(), id], &[]);
    Outcome {
        ok: code == 0,
        stdout,
        stderr,
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
        // The last of a name is the one that counts, for the lookup too.
        json!(["PATH=/nowhere", "PATH=/bin"]),
    ] {
        list.push(scenario(format!("env {env}"), move |c| {
            c["process"]["env"] = env.clone();
        }));
    }
    // A program found through a relative PATH entry is refused (Go's
    // LookPath, and so runc).
    list.push(scenario("PATH=.:/bin from /bin", |c| {
        c["process"]["env"] = json!(["PATH=.:/bin"]);
        c["process"]["cwd"] = json!("/bin");
    }));
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
    list.push(
        scenario("no mount namespace, no masked paths", |c| {
            remove_ns(c, "mount");
            c["linux"]["maskedPaths"] = json!([]);
            c["linux"]["readonlyPaths"] = json!([]);
        })
        .differs(
            "runc makes the mounts in the host's mount table and leaves them there; \
             skiff-oci refuses them without a private mount namespace",
            false,
        ),
    );
    list.extend(capability_scenarios());
    list.extend(mount_scenarios(host_dir));
    list.extend(rlimit_scenarios());
    list.extend(sysctl_scenarios());
    list.extend(user_scenarios());
    list.extend(rootfs_scenarios());
    // root.path through a symlink (/proc/self/root is one, to "/"): runc
    // refuses a rootfs that is not its own real path.
    let through_link = format!(
        "/proc/self/root{}",
        host_dir.parent().unwrap().join("bundle/rootfs").display()
    );
    list.push(scenario("root.path through a symlink", move |c| {
        c["root"]["path"] = json!(through_link);
    }));
    list.extend(device_scenarios());
    list.extend(seccomp_scenarios());
    list.extend(cgroup_scenarios());
    list.extend(bad_input_scenarios());
    list.extend(hook_scenarios());
    list.extend(time_scenarios());
    list.extend(spec_1_2_scenarios());
    list.extend(duplicate_rlimit_scenarios());
    list.extend(device_exists_scenarios());
    for (name, why, ok) in DIFFERENCES {
        let s = list
            .iter_mut()
            .find(|s| s.name == *name)
            .unwrap_or_else(|| panic!("DIFFERENCES names no scenario {name:?}"));
        s.differs = Some((why, *ok));
    }
    list
}

/// Scenarios where skiff-oci and Debian's runc 1.1.5 differ by choice or
/// by runc's age (docs/compatibility.md has each): the reason, and whether
/// skiff-oci's run succeeds.
const DIFFERENCES: &[(&str, &str, bool)] = &[
    ("tmpfs [\"mode=700\"] over the image's /var",
        "runc 1.1.5 chmods a tmpfs to the mode of the directory it covers even over mode= (runc #3911, fixed in 1.1.8)", true),
    ("tmpfs [\"rro\",\"rnosuid\",\"rnodev\",\"rnoexec\"]",
        "runc 1.1.5 applies recursive options to bind mounts only; skiff-oci to any mount", true),
    ("tmpfs [\"defaults\"]",
        "skiff-oci takes `defaults` as mount(8) does (no flags); runc 1.1.5 passes it to the filesystem, which refuses it", true),
    ("cgroup2 at /mnt/x",
        "skiff-oci mounts a `cgroup2` mount as a `cgroup` one (the host's layout); runc mounts cgroup2 as such", true),
    ("no mounts at all",
        "runc's init needs /proc in the container (to close its fds); skiff-oci's does not", true),
    ("user: the largest uid",
        "runc refuses uids and gids above 2^31-1; skiff-oci takes any the kernel does", true),
    ("domainname alone", "runc 1.1.5 ignores domainname (runc 1.2 sets it)", true),
    ("domainname without uts",
        "runc 1.1.5 ignores domainname; skiff-oci (as runc 1.2) refuses it without a uts namespace", false),
    ("a 65-character domainname",
        "runc 1.1.5 ignores domainname; the kernel refuses one past 64 characters", false),
    ("rootfsPropagation shared",
        "runc 1.1.5 leaves the root private; skiff-oci gives it the asked propagation", true),
    ("rootfsPropagation rshared",
        "runc 1.1.5 leaves the root private; skiff-oci gives it the asked propagation", true),
    ("rootfsPropagation unbindable",
        "runc 1.1.5 makes the rootfs unbindable before it binds it, which fails", true),
    ("readonlyPaths \"/\" alone, writable root",
        "runc binds / recursively onto itself (every mount listed twice) and remounts the one below; skiff-oci remounts the root", true),
    ("device: /dev/null again, 0600",
        "runc 1.1.5 drops its allow rule for a standard device the config lists itself", true),
    ("device: setuid bits in fileMode",
        "runc keeps the permission bits of fileMode only; skiff-oci passes the whole mode to mknod", true),
    ("device rules: a bad access letter",
        "skiff-oci refuses access letters other than r, w, m; runc ignores them", false),
    ("seccomp: flag LOG", "runc 1.1.5 supports no seccomp flags", true),
    ("seccomp: flag SPEC_ALLOW", "runc 1.1.5 supports no seccomp flags", true),
    ("seccomp: flag TSYNC", "runc 1.1.5 supports no seccomp flags", true),
    ("seccomp minimal allow-list, nnp true",
        "runc closes a pipe after loading the filter; skiff-oci's load is its last step before execve", true),
    ("resources: memory swappiness 101",
        "runc refuses swappiness above 100; the kernel takes up to 200 (since 5.8)", true),
    ("resources: cpu idle", "runc 1.1.5 ignores cpu.idle (runc 1.2 sets it)", true),
    ("bad input: no ociVersion", "skiff-oci runs 1.x bundles only; runc takes any version", false),
    ("bad input: ociVersion 0.1.0", "skiff-oci runs 1.x bundles only; runc takes any version", false),
    ("bad input: ociVersion 9.9.9", "skiff-oci runs 1.x bundles only; runc takes any version", false),
    ("bad input: no user",
        "process.user is required by the runtime-spec; runc runs as 0:0 without it", false),
    ("rlimits: NOFILE twice",
        "the runtime-spec says duplicated rlimit types MUST be an error; runc 1.1.5 applies each in turn", false),
    ("device: one path for two devices",
        "the runtime-spec says a file at a device's path that is not that device MUST be an error; runc 1.1.5 keeps the first", false),
    ("device: /dev/zero as null",
        "an entry for a standard device may change its mode or owner, not its numbers: skiff-oci refuses it; runc 1.1.5 makes what it asks", false),
    ("bad input: a failing poststart hook",
        "a failing poststart hook is a warning (runtime-spec); runc 1.1.5 fails the run", true),
];

/// The mount table with what [`PROBE`] leaves out (a mount's root, its
/// propagation with the peer group ids taken away, the source and the
/// superblock's options), then what is under /mnt: modes, owners, entries
/// and whether it takes a file.
const MOUNT_PROBE: &str =
    "sed -E 's/^([^ ]+ ){3}//; s/(shared|master|propagate_from):[0-9]+/\\1/g' \
        /proc/self/mountinfo | grep -v '^[^ ]* /sys/fs/cgroup' | sort; \
    for d in /mnt/* /mnt/*/* /usr/bin/mnt-x /tmp/x; do [ -e \"$d\" ] || continue; \
        stat -c '%n %a %u %g %F' \"$d\"; ls \"$d\" 2>&1 | tr '\\n' ' '; echo; \
        (touch \"$d/w\" && rm \"$d/w\" && echo \"$d takes a file\") 2>&1; done; true";

/// The mount table alone (as [`MOUNT_PROBE`] has it), for filesystems
/// whose entries differ from one container to the next (procfs, cgroup).
const MOUNT_TABLE_PROBE: &str =
    "sed -E 's/^([^ ]+ ){3}//; s/(shared|master|propagate_from):[0-9]+/\\1/g' \
        /proc/self/mountinfo | grep -v '^[^ ]* /sys/fs/cgroup' | sort";

/// What masked and read-only paths leave: the mount table, and what reads
/// and writes of the usual suspects give.
const PATHS_PROBE: &str =
    "sed -E 's/^([^ ]+ ){3}//; s/(shared|master|propagate_from):[0-9]+/\\1/g' \
        /proc/self/mountinfo | grep -v '^[^ ]* /sys/fs/cgroup' | sort; \
    for p in /etc /etc/passwd /bin /usr/bin /tmp /proc/sys/kernel /proc/kcore; do \
        stat -c '%n %F %a %s' $p 2>&1; done; head -c 20 /etc/passwd 2>&1; echo; \
    ls /etc /usr/bin/.. 2>&1 | tr '\\n' ' '; echo; touch /tmp/w 2>&1 && rm /tmp/w; \
    echo 1 > /proc/sys/kernel/shm_rmid_forced 2>&1; true";

/// The process's limits, as the kernel lists them.
const LIMITS_PROBE: &str = "cat /proc/self/limits";

/// Identity and what comes with it.
const USER_PROBE: &str = "id; echo HOME=$HOME; grep -E '^(Uid|Gid|Groups|Umask)' /proc/self/status";

/// The working directory and what it is.
const CWD_PROBE: &str = "pwd; ls -ld . 2>&1";

/// Host and domain names.
const UTS_PROBE: &str = "hostname; uname -n; cat /proc/sys/kernel/domainname";

/// The device nodes and which of them open (the device cgroup's rules).
const DEVICE_PROBE: &str = "stat -c '%n %F %a %u %g %t %T' /dev/* /dev/*/* 2>/dev/null \
        | grep -v '^/dev/pts/\\|^/dev/shm/\\|^/dev/mqueue/'; \
    for d in /dev/* /dev/*/*; do case $d in /dev/std*|/dev/fd/*) continue;; esac; \
        if [ -c $d ] || [ -b $d ]; then (: < $d) 2>/dev/null && echo \"$d opens\"; fi; done; true";

/// The filter's mode, then the syscalls a rule may catch: mkdir (the root
/// is read-only: EROFS when allowed), chmod with two modes, uname.
const SECCOMP_PROBE: &str = "grep Seccomp /proc/self/status; mkdir /tmp/sc 2>&1; echo mkdir $?; \
    chmod 600 /tmp 2>&1; echo chmod600 $?; chmod 1777 /tmp 2>&1; echo chmod1777 $?; \
    uname -s 2>&1; echo uname $?";

/// The container's limits, read back through its /sys/fs/cgroup.
const CGROUP_PROBE: &str = "cd /sys/fs/cgroup && for f in memory/memory.limit_in_bytes \
        memory/memory.soft_limit_in_bytes memory/memory.memsw.limit_in_bytes \
        memory/memory.swappiness memory/memory.oom_control pids/pids.max cpu/cpu.shares \
        cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.rt_runtime_us cpu/cpu.idle \
        cpuset/cpuset.cpus cpuset/cpuset.mems blkio/blkio.throttle.read_bps_device \
        blkio/blkio.throttle.write_iops_device; do echo $f $(cat $f 2>&1); done";

/// Every capability this kernel has (cap_last_cap is 40 here).
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const CAP_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// Each capability alone; each set alone; ambient with and without what
/// it needs (inheritable and permitted); names no kernel knows.
fn capability_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    for cap in ALL_CAPS {
        list.push(scenario(format!("{cap} alone"), move |c| caps(c, &[cap])));
    }
    for set in CAP_SETS {
        for uid in [0, 1000] {
            list.push(scenario(
                format!("CAP_NET_RAW in {set} only, uid {uid}"),
                move |c| {
                    c["process"]["capabilities"] = json!({ set: ["CAP_NET_RAW"] });
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            ));
        }
    }
    // Which of inheritable and permitted an ambient capability has.
    for (inheritable, permitted) in [(false, false), (true, false), (false, true), (true, true)] {
        for uid in [0, 1000] {
            list.push(scenario(
                format!("ambient CAP_SYS_NICE, inheritable {inheritable}, permitted {permitted}, uid {uid}"),
                move |c| {
                    let cap = json!(["CAP_SYS_NICE"]);
                    let none = json!([]);
                    c["process"]["capabilities"] = json!({
                        "bounding": cap,
                        "effective": if permitted { &cap } else { &none },
                        "permitted": if permitted { &cap } else { &none },
                        "inheritable": if inheritable { &cap } else { &none },
                        "ambient": cap,
                    });
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            ));
        }
    }
    list.push(scenario(
        "ambient outside the bounding set, uid 1000",
        |c| {
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN"],
                "effective": ["CAP_CHOWN", "CAP_SYS_NICE"],
                "permitted": ["CAP_CHOWN", "CAP_SYS_NICE"],
                "inheritable": ["CAP_CHOWN", "CAP_SYS_NICE"],
                "ambient": ["CAP_SYS_NICE"],
            });
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
    ));
    for set in CAP_SETS {
        list.push(scenario(
            format!("an unknown capability in {set}"),
            move |c| {
                c["process"]["capabilities"][set] = json!(["CAP_NO_SUCH_THING", "CAP_CHOWN"]);
            },
        ));
    }
    for uid in [0, 1000] {
        list.push(scenario(
            format!("every capability everywhere, uid {uid}"),
            move |c| {
                for set in CAP_SETS {
                    c["process"]["capabilities"][set] = json!(&ALL_CAPS[..]);
                }
                c["process"]["user"] = json!({"uid": uid, "gid": uid});
            },
        ));
    }
    list.push(scenario("no capabilities object", |c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
    }));
    list
}

fn add_mount(c: &mut Value, mount: Value) {
    c["mounts"].as_array_mut().unwrap().push(mount);
}

/// tmpfs and bind mounts: option combinations, propagation, files,
/// missing and relative sources, destinations that are relative, climb
/// out or go through symlinks, and other filesystem types.
fn mount_scenarios(host_dir: &Path) -> Vec<Scenario> {
    let mut list = Vec::new();
    let propagation = [
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ];
    for prop in propagation {
        list.push(
            scenario(format!("tmpfs {prop}"), move |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                    "options": [prop]}),
                );
            })
            .probe(MOUNT_PROBE),
        );
        let src = host_dir.to_path_buf();
        list.push(
            scenario(format!("rbind {prop}"), move |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/b", "type": "bind", "source": src,
                    "options": ["rbind", prop]}),
                );
            })
            .probe(MOUNT_PROBE),
        );
    }
    for opts in [
        json!(["relatime"]),
        json!(["norelatime"]),
        json!(["noatime", "nodiratime"]),
        json!(["strictatime", "ro"]),
        json!(["size=10%"]),
        json!(["size=4096k", "nr_inodes=64"]),
        json!(["mode=0", "uid=65534", "gid=65534"]),
        json!(["mode=4755"]),
        json!(["huge=within_size"]),
        json!(["no_such_option=1"]),
        json!(["ro", "remount"]),
        json!(["tmpcopyup"]),
        json!(["rro", "rnosuid", "rnodev", "rnoexec"]),
        json!(["nosymfollow"]),
        json!(["defaults"]),
        json!(["ro", "rw"]),
        json!(["rw", "ro"]),
        json!(["mand"]),
    ] {
        list.push(
            scenario(format!("tmpfs {opts}"), move |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                    "options": opts}),
                );
            })
            .probe(MOUNT_PROBE),
        );
    }
    // Bind mounts: what is bound, and how.
    let file = host_dir.join("file");
    let link = host_dir.join("link");
    let missing = host_dir.join("missing");
    let binds: Vec<(&str, Value)> = vec![
        (
            "a file",
            json!({"destination": "/mnt/f", "source": file, "options": ["bind"]}),
        ),
        (
            "a file, ro",
            json!({"destination": "/mnt/f", "source": file, "options": ["bind", "ro"]}),
        ),
        (
            "a file onto a directory",
            json!({"destination": "/tmp", "source": file, "options": ["bind"]}),
        ),
        (
            "a directory onto a file",
            json!({"destination": "/etc/passwd", "source": host_dir, "options": ["bind"]}),
        ),
        (
            "a missing source",
            json!({"destination": "/mnt/m", "source": missing, "options": ["bind"]}),
        ),
        (
            "a symlink to a directory",
            json!({"destination": "/mnt/l", "source": link, "options": ["rbind"]}),
        ),
        (
            "a source relative to the bundle",
            json!({"destination": "/mnt/r", "source": "../hostdir", "options": ["rbind"]}),
        ),
        (
            "no type, rbind",
            json!({"destination": "/mnt/b", "source": host_dir, "options": ["rbind", "ro"]}),
        ),
        (
            "type none",
            json!({"destination": "/mnt/b", "type": "none", "source": host_dir, "options": ["rbind"]}),
        ),
        (
            "bind without the bind option",
            json!({"destination": "/mnt/b", "type": "bind", "source": host_dir, "options": ["ro"]}),
        ),
        (
            "rnosymfollow",
            json!({"destination": "/mnt/b", "type": "bind", "source": host_dir, "options": ["rbind", "rnosymfollow"]}),
        ),
        (
            "rnoatime rnodiratime",
            json!({"destination": "/mnt/b", "type": "bind", "source": host_dir, "options": ["rbind", "rnoatime", "rnodiratime"]}),
        ),
        (
            "rstrictatime",
            json!({"destination": "/mnt/b", "type": "bind", "source": host_dir, "options": ["rbind", "rstrictatime"]}),
        ),
        (
            "rrw over ro",
            json!({"destination": "/mnt/b", "type": "bind", "source": host_dir, "options": ["rbind", "ro", "rrw"]}),
        ),
        (
            "twice at one place",
            json!({"destination": "/mnt/b", "type": "bind", "source": host_dir, "options": ["bind", "ro"]}),
        ),
        (
            "a directory of the bundle's rootfs",
            json!({"destination": "/mnt/root", "type": "bind", "source": "rootfs/etc", "options": ["rbind", "ro"]}),
        ),
    ];
    for (what, mount) in binds {
        let twice = what == "twice at one place";
        list.push(
            scenario(format!("bind {what}"), move |c| {
                let mut mount = mount.clone();
                if mount.get("type").is_none() && what != "no type, rbind" {
                    mount["type"] = json!("bind");
                }
                if twice {
                    add_mount(
                        c,
                        json!({"destination": "/mnt/b", "type": "tmpfs", "source": "tmpfs"}),
                    );
                }
                add_mount(c, mount);
            })
            .probe(MOUNT_PROBE),
        );
    }
    // Destinations: relative ones, ones that climb out of the rootfs, and
    // ones through symlinks in it (/bin is a link to usr/bin, /etc/abs an
    // absolute one to /tmp, /etc/out a relative one that climbs out).
    for dest in [
        "mnt/relative",
        "/mnt/../mnt/x",
        "/../../mnt/x",
        "/bin/mnt-x",
        "/sbin",
        "/etc/abs",
        "/etc/abs/x",
        "/etc/out/x",
        "/mnt/a/b/c/d",
        "/proc/self/x",
        "/proc/cpuinfo",
        "/sys/x",
        "/dev/x",
        "/",
    ] {
        list.push(
            scenario(format!("tmpfs at {dest}"), move |c| {
                add_mount(
                    c,
                    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m"]}),
                );
            })
            .probe(MOUNT_PROBE),
        );
    }
    // Over directories the image has (/var 0755, /tmp 1777): the tmpfs
    // takes their mode, unless the options give one.
    for (dest, opts) in [
        ("/var", json!([])),
        ("/tmp", json!(["size=1m"])),
        ("/var", json!(["mode=700"])),
    ] {
        list.push(
            scenario(format!("tmpfs {opts} over the image's {dest}"), move |c| {
                add_mount(
                    c,
                    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                    "options": opts}),
                );
            })
            .probe("stat -c '%n %a %u %g' /var /tmp"),
        );
    }
    for (kind, source, opts) in [
        ("proc", "proc", json!([])),
        ("sysfs", "sysfs", json!(["ro"])),
        ("mqueue", "mqueue", json!([])),
        ("devpts", "devpts", json!(["newinstance"])),
        ("no_such_fs", "x", json!([])),
        ("cgroup2", "cgroup2", json!([])),
        ("ramfs", "ramfs", json!([])),
    ] {
        list.push(
            scenario(format!("{kind} at /mnt/x"), move |c| {
                add_mount(
                    c,
                    json!({"destination": "/mnt/x", "type": kind, "source": source,
                    "options": opts}),
                );
            })
            .probe(MOUNT_TABLE_PROBE),
        );
    }
    list.push(scenario("no mounts at all", |c| c["mounts"] = json!([])).probe(MOUNT_PROBE));
    list.push(
        scenario("writable /sys", |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/sys" {
                    m["options"] = json!(["nosuid", "noexec", "nodev"]);
                }
            }
        })
        .probe(MOUNT_PROBE),
    );
    list
}

/// Each RLIMIT_* alone, and the ways a list of them can be wrong.
fn rlimit_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    const G: u64 = 1 << 30;
    for (kind, soft, hard) in [
        ("RLIMIT_AS", 4 * G, 8 * G),
        ("RLIMIT_CORE", 0, u64::MAX),
        ("RLIMIT_CPU", 100, 200),
        ("RLIMIT_DATA", G, 2 * G),
        ("RLIMIT_FSIZE", 1 << 20, 2 << 20),
        ("RLIMIT_LOCKS", 100, 200),
        ("RLIMIT_MEMLOCK", 65536, 131072),
        ("RLIMIT_MSGQUEUE", 819200, 819200),
        ("RLIMIT_NICE", 10, 20),
        ("RLIMIT_NOFILE", 100, 200),
        ("RLIMIT_NPROC", 100, 200),
        ("RLIMIT_RSS", G, 2 * G),
        ("RLIMIT_RTPRIO", 5, 10),
        ("RLIMIT_RTTIME", 1000000, 2000000),
        ("RLIMIT_SIGPENDING", 100, 200),
        ("RLIMIT_STACK", 8 << 20, 16 << 20),
    ] {
        list.push(
            scenario(format!("{kind} {soft}/{hard}"), move |c| {
                c["process"]["rlimits"] = json!([{"type": kind, "soft": soft, "hard": hard}]);
            })
            .probe(LIMITS_PROBE),
        );
    }
    let cases: [(&str, Value); 9] = [
        (
            "soft above hard",
            json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]),
        ),
        (
            "an unknown type",
            json!([{"type": "RLIMIT_NO_SUCH", "soft": 1, "hard": 1}]),
        ),
        (
            "a lower-case type",
            json!([{"type": "rlimit_nofile", "soft": 64, "hard": 64}]),
        ),
        (
            "one type twice",
            json!([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64},
            {"type": "RLIMIT_NOFILE", "soft": 128, "hard": 128}]),
        ),
        (
            "NOFILE above nr_open",
            json!([{"type": "RLIMIT_NOFILE", "soft": 2000000, "hard": 2000000}]),
        ),
        (
            "every limit unlimited",
            json!([
                "RLIMIT_AS",
                "RLIMIT_CORE",
                "RLIMIT_DATA",
                "RLIMIT_FSIZE",
                "RLIMIT_MEMLOCK",
                "RLIMIT_RSS",
                "RLIMIT_STACK"
            ]
            .iter()
            .map(|t| json!({"type": t, "soft": u64::MAX, "hard": u64::MAX}))
            .collect::<Vec<_>>()),
        ),
        ("an empty list", json!([])),
        (
            "a negative value",
            json!([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 64}]),
        ),
        ("no soft", json!([{"type": "RLIMIT_NOFILE", "hard": 64}])),
    ];
    for (what, rlimits) in cases {
        list.push(
            scenario(format!("rlimits: {what}"), move |c| {
                c["process"]["rlimits"] = rlimits.clone();
            })
            .probe(LIMITS_PROBE),
        );
    }
    for uid in [1000, 65534] {
        list.push(
            scenario(
                format!("NOFILE raised above the caller's, uid {uid}"),
                move |c| {
                    c["process"]["rlimits"] =
                        json!([{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]);
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            )
            .probe(LIMITS_PROBE),
        );
    }
    list
}

/// Sysctls of each namespace, with and without it; ones no namespace
/// has; bad keys and values. The probe reads the key back.
fn sysctl_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    // (key, value, a namespace the scenario goes without)
    for (key, value, without) in [
        ("kernel.msgmnb", "32768", None),
        ("kernel.msgmni", "64", None),
        ("kernel.sem", "250 32000 32 128", None),
        ("kernel.shmall", "1000", None),
        ("kernel.shmmax", "1000000", None),
        ("kernel.shm_rmid_forced", "1", None),
        ("fs.mqueue.msg_max", "20", None),
        ("fs.mqueue.queues_max", "128", None),
        ("net.ipv4.ping_group_range", "0 1000", None),
        ("net.ipv4.ip_unprivileged_port_start", "80", None),
        ("net.ipv4.conf.all.forwarding", "1", None),
        ("net.ipv6.conf.all.disable_ipv6", "1", None),
        ("net.ipv4.conf.lo.rp_filter", "2", None),
        ("kernel.domainname", "probe.example", None),
        ("kernel.hostname", "probe-host", None),
        ("kernel.msgmax", "16384", Some("ipc")),
        ("fs.mqueue.msg_max", "20", Some("ipc")),
        ("net.core.somaxconn", "512", Some("network")),
        ("kernel.domainname", "probe.example", Some("uts")),
        ("kernel.pid_max", "65536", None),
        ("fs.file-max", "100000", None),
        ("kernel.printk", "4 4 1 7", None),
        ("net.ipv4.no_such_key", "1", None),
        ("kernel.shmmax", "not-a-number", None),
        ("net/ipv4/ip_forward", "1", None),
        ("net.ipv4.ip_forward", "", None),
    ] {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let name = match without {
            Some(ns) => format!("sysctl {key}={value:?} without {ns}"),
            None => format!("sysctl {key}={value:?}"),
        };
        list.push(
            scenario(name, move |c| {
                if let Some(ns) = without {
                    remove_ns(c, ns);
                }
                c["linux"]["sysctl"] = json!({ key: value });
            })
            .probe(format!("cat {path} 2>&1")),
        );
    }
    list
}

/// Users, groups and umasks; the working directory; host and domain names.
fn user_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    let users: [(&str, Value); 12] = [
        (
            "a uid not in /etc/passwd",
            json!({"uid": 4242, "gid": 4242}),
        ),
        ("nobody", json!({"uid": 65534, "gid": 65534})),
        ("uid 1000, gid 0", json!({"uid": 1000, "gid": 0})),
        ("uid 0, gid 1000", json!({"uid": 0, "gid": 1000})),
        (
            "the largest uid",
            json!({"uid": 4294967294u32, "gid": 4294967294u32}),
        ),
        (
            "additional gid 0",
            json!({"uid": 1000, "gid": 1000, "additionalGids": [0]}),
        ),
        (
            "duplicate additional gids",
            json!({"uid": 1000, "gid": 1000, "additionalGids": [7, 7, 1000]}),
        ),
        (
            "64 additional gids",
            json!({"uid": 1000, "gid": 1000, "additionalGids": (1..=64).collect::<Vec<u32>>()}),
        ),
        (
            "root with additional gids",
            json!({"uid": 0, "gid": 0, "additionalGids": [1, 2]}),
        ),
        ("umask 0777", json!({"uid": 0, "gid": 0, "umask": 0o777})),
        ("umask 07777", json!({"uid": 0, "gid": 0, "umask": 0o7777})),
        (
            "a username",
            json!({"uid": 0, "gid": 0, "username": "someone"}),
        ),
    ];
    for (what, user) in users {
        list.push(
            scenario(format!("user: {what}"), move |c| {
                c["process"]["user"] = user.clone()
            })
            .probe(USER_PROBE),
        );
    }
    list.push(
        scenario("HOME from the config", |c| {
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("HOME=/custom"));
            c["process"]["user"] = json!({"uid": 65534, "gid": 65534});
        })
        .probe(USER_PROBE),
    );
    for (cwd, uid) in [
        ("/tmp/../usr", 0),
        ("/usr/bin/", 0),
        ("//tmp", 0),
        ("/bin", 0),
        ("/etc/passwd", 0),
        ("/root", 1000),
        ("/made/for/it/by/root", 65534),
        ("/proc/self", 0),
        ("", 0),
    ] {
        list.push(
            scenario(format!("cwd {cwd:?}, uid {uid}"), move |c| {
                c["process"]["cwd"] = json!(cwd);
                c["process"]["user"] = json!({"uid": uid, "gid": uid});
            })
            .probe(CWD_PROBE),
        );
    }
    list.push(scenario("no cwd", |c| {
        c["process"].as_object_mut().unwrap().remove("cwd");
    }));
    let long = "x".repeat(65);
    let names: [(&str, Value, Value, bool); 7] = [
        (
            "domainname alone",
            Value::Null,
            json!("probe.example"),
            true,
        ),
        (
            "domainname without uts",
            Value::Null,
            json!("probe.example"),
            false,
        ),
        ("an empty hostname", json!(""), Value::Null, true),
        ("a 65-character hostname", json!(long), Value::Null, true),
        ("a 65-character domainname", Value::Null, json!(long), true),
        ("no hostname, with uts", Value::Null, Value::Null, true),
        (
            "an empty hostname without uts",
            json!(""),
            Value::Null,
            false,
        ),
    ];
    for (what, hostname, domainname, uts) in names {
        list.push(
            scenario(what, move |c| {
                if !uts {
                    remove_ns(c, "uts");
                }
                let obj = c.as_object_mut().unwrap();
                obj.remove("hostname");
                if !hostname.is_null() {
                    obj.insert("hostname".into(), hostname.clone());
                }
                if !domainname.is_null() {
                    obj.insert("domainname".into(), domainname.clone());
                }
            })
            .probe(UTS_PROBE),
        );
    }
    for adj in [-1000, -1, 500, 1001, -1001] {
        for uid in [0, 1000] {
            list.push(scenario(
                format!("oomScoreAdj {adj}, uid {uid}"),
                move |c| {
                    c["process"]["oomScoreAdj"] = json!(adj);
                    c["process"]["user"] = json!({"uid": uid, "gid": uid});
                },
            ));
        }
    }
    list
}

/// rootfsPropagation; masked and read-only paths of every kind.
fn rootfs_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    for prop in [
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
        "bogus",
    ] {
        list.push(
            scenario(format!("rootfsPropagation {prop}"), move |c| {
                c["linux"]["rootfsPropagation"] = json!(prop);
            })
            .probe(MOUNT_PROBE),
        );
    }
    for (kind, path) in [
        ("maskedPaths", "/etc"),
        ("maskedPaths", "/etc/passwd"),
        ("maskedPaths", "/bin"),
        ("maskedPaths", "etc/passwd"),
        ("maskedPaths", "/proc/sys/kernel"),
        ("maskedPaths", "/proc/kcore/x"),
        ("maskedPaths", "/"),
        ("readonlyPaths", "/etc/passwd"),
        ("readonlyPaths", "/sbin"),
        ("readonlyPaths", "etc"),
        ("readonlyPaths", "/no/such/path"),
        ("readonlyPaths", "/proc/sys/kernel"),
        ("readonlyPaths", "/dev/shm"),
        ("readonlyPaths", "/"),
    ] {
        list.push(
            scenario(format!("{kind} {path:?} alone, writable root"), move |c| {
                c["root"]["readonly"] = json!(false);
                c["linux"]["maskedPaths"] = json!([]);
                c["linux"]["readonlyPaths"] = json!([]);
                c["linux"][kind] = json!([path]);
            })
            .probe(PATHS_PROBE),
        );
    }
    list.push(
        scenario("a path both masked and read-only", |c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["maskedPaths"] = json!(["/etc"]);
            c["linux"]["readonlyPaths"] = json!(["/etc"]);
        })
        .probe(PATHS_PROBE),
    );
    list.push(
        scenario("a read-only path below a masked one", |c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["maskedPaths"] = json!(["/usr"]);
            c["linux"]["readonlyPaths"] = json!(["/usr/bin"]);
        })
        .probe(PATHS_PROBE),
    );
    list
}

/// linux.devices: each kind of node, modes and owners, nodes the runtime
/// makes anyway, and invalid ones. The probe also opens each (the device
/// cgroup must allow it).
fn device_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    let allow_loop = json!({"allow": true, "type": "b", "major": 7, "minor": 0, "access": "rwm"});
    let devices: [(&str, Value, Option<Value>); 12] = [
        (
            "a fifo",
            json!({"path": "/dev/fifo0", "type": "p", "fileMode": 420}),
            None,
        ),
        (
            "an unbuffered char device",
            json!({"path": "/dev/zero2", "type": "u", "major": 1, "minor": 5, "fileMode": 438}),
            None,
        ),
        (
            "a block device, allowed",
            json!({"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0, "fileMode": 432}),
            Some(allow_loop.clone()),
        ),
        (
            "a char device owned by 1000, 0600",
            json!({"path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1000, "gid": 1000}),
            None,
        ),
        (
            "/dev/null again, 0600",
            json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 384}),
            None,
        ),
        (
            "/dev/zero as null",
            json!({"path": "/dev/zero", "type": "c", "major": 1, "minor": 3, "fileMode": 438}),
            None,
        ),
        (
            "a node in a new directory",
            json!({"path": "/dev/deep/er/node", "type": "c", "major": 1, "minor": 7, "fileMode": 438}),
            None,
        ),
        (
            "no fileMode",
            json!({"path": "/dev/nomode", "type": "c", "major": 1, "minor": 3}),
            None,
        ),
        (
            "setuid bits in fileMode",
            json!({"path": "/dev/suid", "type": "c", "major": 1, "minor": 3, "fileMode": 0o4755}),
            None,
        ),
        (
            "an unknown type",
            json!({"path": "/dev/what", "type": "x", "major": 1, "minor": 3}),
            None,
        ),
        (
            "a relative path",
            json!({"path": "dev/rel", "type": "c", "major": 1, "minor": 3, "fileMode": 438}),
            None,
        ),
        (
            "a char device, allowed",
            json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}),
            Some(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"})),
        ),
    ];
    for (what, device, rule) in devices {
        list.push(
            scenario(format!("device: {what}"), move |c| {
                c["linux"]["devices"] = json!([device.clone()]);
                if let Some(rule) = &rule {
                    c["linux"]["resources"]["devices"]
                        .as_array_mut()
                        .unwrap()
                        .push(rule.clone());
                }
            })
            .probe(DEVICE_PROBE),
        );
    }
    let rules: [(&str, Value); 5] = [
        ("allow all", json!([{"allow": true, "access": "rwm"}])),
        ("no rules", json!([])),
        (
            "deny /dev/null",
            json!([{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]),
        ),
        (
            "read-only /dev/zero",
            json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]),
        ),
        (
            "a bad access letter",
            json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]),
        ),
    ];
    for (what, devices) in rules {
        list.push(
            scenario(format!("device rules: {what}"), move |c| {
                c["linux"]["resources"]["devices"] = devices.clone();
            })
            .probe(DEVICE_PROBE),
        );
    }
    // With CAP_MKNOD (Docker's and Podman's default), a node of the host's
    // console's numbers must not open: no built-in rule allows 5:1.
    list.push(
        scenario("device: the host's console made with CAP_MKNOD", |c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_MKNOD"));
            }
        })
        .probe("mknod /dev/con c 5 1 && echo made; (: < /dev/con) 2>/dev/null && echo opens || echo refused; true"),
    );
    list
}

fn seccomp(c: &mut Value, profile: Value) {
    c["linux"]["seccomp"] = profile;
}

/// Seccomp: errno values, each action, argument conditions with each
/// operator, unknown names and architectures, flags, and allow-lists.
fn seccomp_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    for errno in [1, 13, 38, 4095] {
        list.push(
            scenario(format!("seccomp errno {errno} on mkdir"), move |c| {
                seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]}));
            })
            .probe(SECCOMP_PROBE),
        );
    }
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_BOGUS",
    ] {
        for syscall in ["mkdir", "reboot"] {
            list.push(
                scenario(format!("seccomp {action} on {syscall}"), move |c| {
                    seccomp(
                        c,
                        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                        {"names": [syscall, format!("{syscall}at")], "action": action}]}),
                    );
                })
                .probe(SECCOMP_PROBE),
            );
        }
    }
    // chmod's mode against 0600: the probe asks for 0600 and 01777.
    for (op, value, value_two) in [
        ("SCMP_CMP_EQ", 0o600, 0),
        ("SCMP_CMP_NE", 0o600, 0),
        ("SCMP_CMP_LT", 0o600, 0),
        ("SCMP_CMP_LE", 0o600, 0),
        ("SCMP_CMP_GT", 0o600, 0),
        ("SCMP_CMP_GE", 0o600, 0),
        ("SCMP_CMP_MASKED_EQ", 0o700, 0o600),
        ("SCMP_CMP_BOGUS", 0o600, 0),
    ] {
        list.push(
            scenario(format!("seccomp chmod mode {op}"), move |c| {
                let arg = |index: u32| json!([{"index": index, "value": value, "valueTwo": value_two, "op": op}]);
                seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": arg(1)},
                    {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": arg(2)}]}));
            })
            .probe(SECCOMP_PROBE),
        );
    }
    let profiles: [(&str, Value); 13] = [
        (
            "an unknown syscall only",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "an unknown architecture",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_NO_SUCH"], "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "three architectures",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "flag LOG",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "flag SPEC_ALLOW",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "flag TSYNC",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "an unknown flag",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NO_SUCH"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "no defaultAction",
            json!({"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "an empty profile allowing all",
            json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        ),
        (
            "defaultErrnoRet with an errno default, allowing all but mkdir",
            json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
        ),
        (
            "defaultErrnoRet with an allow default",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
            "defaultErrnoRet": 5, "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "a rule without names",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": [], "action": "SCMP_ACT_ERRNO"}]}),
        ),
        (
            "one syscall in two rules",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]}),
        ),
    ];
    for (what, profile) in profiles {
        list.push(
            scenario(format!("seccomp: {what}"), move |c| {
                seccomp(c, profile.clone())
            })
            .probe(SECCOMP_PROBE),
        );
    }
    // An errno default with only what `echo` needs allowed, with and
    // without no_new_privs (then the runtime's own steps come after the
    // load, and they get errors instead of their syscalls).
    for nnp in [true, false] {
        list.push(
            scenario(format!("seccomp minimal allow-list, nnp {nnp}"), move |c| {
                c["process"]["noNewPrivileges"] = json!(nnp);
                seccomp(
                    c,
                    json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ECHO_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]}),
                );
            })
            .probe("echo hi"),
        );
    }
    list
}

/// linux.resources on this v1 host, read back from inside.
fn cgroup_scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    const M: i64 = 1 << 20;
    let resources: [(&str, Value); 30] = [
        (
            "memory limit and reservation",
            json!({"memory": {"limit": 64 * M, "reservation": 32 * M}}),
        ),
        (
            "memory reservation alone",
            json!({"memory": {"reservation": 32 * M}}),
        ),
        (
            "memory reservation above the limit",
            json!({"memory": {"limit": 32 * M, "reservation": 64 * M}}),
        ),
        (
            "memory swap equal to the limit",
            json!({"memory": {"limit": 64 * M, "swap": 64 * M}}),
        ),
        (
            "memory swap twice the limit",
            json!({"memory": {"limit": 64 * M, "swap": 128 * M}}),
        ),
        (
            "memory swap below the limit",
            json!({"memory": {"limit": 64 * M, "swap": 32 * M}}),
        ),
        (
            "memory swap unlimited",
            json!({"memory": {"limit": 64 * M, "swap": -1}}),
        ),
        ("memory swap alone", json!({"memory": {"swap": 128 * M}})),
        ("memory limit -1", json!({"memory": {"limit": -1}})),
        ("memory swappiness 0", json!({"memory": {"swappiness": 0}})),
        (
            "memory swappiness 101",
            json!({"memory": {"swappiness": 101}}),
        ),
        ("kernel memory", json!({"memory": {"kernel": 64 * M}})),
        (
            "disableOOMKiller",
            json!({"memory": {"limit": 64 * M, "disableOOMKiller": true}}),
        ),
        ("pids -1", json!({"pids": {"limit": -1}})),
        ("pids 0", json!({"pids": {"limit": 0}})),
        ("cpu shares 2", json!({"cpu": {"shares": 2}})),
        ("cpu shares 1", json!({"cpu": {"shares": 1}})),
        ("cpu shares 262145", json!({"cpu": {"shares": 262145}})),
        (
            "cpu quota and period",
            json!({"cpu": {"quota": 50000, "period": 100000}}),
        ),
        (
            "cpu quota -1",
            json!({"cpu": {"quota": -1, "period": 50000}}),
        ),
        ("cpu period alone", json!({"cpu": {"period": 50000}})),
        (
            "cpu quota too small",
            json!({"cpu": {"quota": 500, "period": 100000}}),
        ),
        (
            "cpu realtime runtime",
            json!({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 1000000}}),
        ),
        ("cpu idle", json!({"cpu": {"idle": 1}})),
        (
            "cpuset cpus 1, mems 0",
            json!({"cpu": {"cpus": "1", "mems": "0"}}),
        ),
        ("cpuset cpus 0-1", json!({"cpu": {"cpus": "0-1"}})),
        ("cpuset cpus this host lacks", json!({"cpu": {"cpus": "5"}})),
        ("cpuset mems this host lacks", json!({"cpu": {"mems": "1"}})),
        (
            "blkio throttles",
            json!({"blockIO": {
            "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]}}),
        ),
        (
            "blkio weight (no such file here)",
            json!({"blockIO": {"weight": 500}}),
        ),
    ];
    for (what, res) in resources {
        list.push(
            scenario(format!("resources: {what}"), move |c| {
                for (k, v) in res.as_object().unwrap() {
                    c["linux"]["resources"][k] = v.clone();
                }
            })
            .probe(CGROUP_PROBE),
        );
    }
    list.push(
        scenario("resources: unified on a v1 host", |c| {
            c["linux"]["resources"]["unified"] = json!({"memory.max": "67108864"});
        })
        .probe(CGROUP_PROBE),
    );
    list.push(
        scenario("resources: a cgroupsPath of the config's", |c| {
            c["linux"]["cgroupsPath"] = json!("/skt-diff-own/inner");
            c["linux"]["resources"]["pids"] = json!({"limit": 42});
        })
        .probe(CGROUP_PROBE),
    );
    list
}

/// Configs both must refuse (or, where the spec lets a runtime choose,
/// treat alike): wrong types, missing parts, invalid values.
/// The state each hook reads on stdin (its id and pid left out: they
/// differ from run to run; and ociVersion, each runtime's own spec version) and where it runs: the runtime's hooks in the bundle, which
/// they find the rootfs from; createContainer's in the rootfs;
/// startContainer's in the container, which keeps its copy in /dev/shm.
fn hook_scenarios() -> Vec<Scenario> {
    let save = |file: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("sed 's/\"ociVersion\":\"[^\"]*\",//; s/\"id\":\"[^\"]*\",//; \
                s/\"pid\":[0-9]*,//' > {file}; \
                echo >> {file}; pwd >> {file}")]})
    };
    let probe = "for f in /hook-* /dev/shm/hook-*; do echo $f; cat $f; done";
    vec![
        scenario(
            "hooks: the state on stdin, and the working directory",
            move |c| {
                c["annotations"] =
                    json!({"z": "1", "a.b": "c", "m": "q", "io.x/y": "with \"quotes\""});
                c["hooks"] = json!({
                    "prestart": [save("rootfs/hook-prestart")],
                    "createRuntime": [save("rootfs/hook-createRuntime")],
                    "createContainer": [save("hook-createContainer")],
                    "startContainer": [save("/dev/shm/hook-startContainer")],
                });
            },
        )
        .probe(probe),
        scenario("hooks: the state without annotations", move |c| {
            c["hooks"] = json!({
                "createRuntime": [save("rootfs/hook-createRuntime")],
                "createContainer": [save("hook-createContainer")],
                "startContainer": [save("/dev/shm/hook-startContainer")],
            });
        })
        .probe(probe),
    ]
}

/// process.rlimits with a type twice, and linux.devices with a path twice
/// (the runtime-spec: an error when they differ).
fn duplicate_rlimit_scenarios() -> Vec<Scenario> {
    let device = |minor: u32| json!({"path": "/dev/x", "type": "c", "major": 1, "minor": minor});
    vec![
        scenario("device: one path for two devices", move |c| {
            c["linux"]["devices"] = json!([device(3), device(5)])
        })
        .probe("stat -c '%F %t:%T %a' /dev/x"),
        scenario("device: one path for the same device twice", move |c| {
            c["linux"]["devices"] = json!([device(3), device(3)])
        })
        .probe("stat -c '%F %t:%T %a' /dev/x"),
        scenario("rlimits: NOFILE twice", |c| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 300, "hard": 400},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
            ])
        })
        .probe("ulimit -n"),
    ]
}

/// linux.devices at a path the image fills (the pristine rootfs has
/// /var/zero, a char device 1:5): runc 1.1.5 ignores its mknod's EEXIST
/// and leaves what is there; skiff-oci refuses anything but the same
/// device, which it takes (remade with the config's mode and owner).
fn device_exists_scenarios() -> Vec<Scenario> {
    const WHY: &str =
        "the runtime-spec says a file at a device's path that does not match it MUST be an error; \
                       runc 1.1.5 ignores EEXIST and leaves the file";
    let probe =
        "stat -c '%n %F %t:%T %a' /var/zero /etc/passwd /tmp /bin; head -c 5 /etc/passwd; echo";
    let node = |path: &str, minor: u32| json!([{"path": path, "type": "c", "major": 1, "minor": minor, "fileMode": 438}]);
    let mut list = Vec::new();
    for (what, path, minor) in [
        ("a regular file", "/etc/passwd", 3),
        ("a directory", "/tmp", 3),
        ("a symlink", "/bin", 3),
        ("another device", "/var/zero", 3),
    ] {
        list.push(
            scenario(format!("device: over {what} of the image"), move |c| {
                c["linux"]["devices"] = node(path, minor)
            })
            .probe(probe)
            .differs(WHY, false),
        );
    }
    list.push(
        scenario("device: over the same device the image has", move |c| {
            c["linux"]["devices"] = node("/var/zero", 5)
        })
        .probe(probe),
    );
    // The host's /dev/fuse bound at the path by the config's mounts: the
    // same device is kept as it is (it cannot be remade over a mount).
    for (what, minor, ok) in [
        ("the same device", 229, true),
        ("another device", 230, false),
    ] {
        let s = scenario(format!("device: {what} bound there by a mount"), move |c| {
            add_mount(
                c,
                json!({"destination": "/dev/fuse", "type": "bind", "source": "/dev/fuse", "options": ["bind"]}),
            );
            c["linux"]["devices"] =
                json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": minor}]);
        })
        .probe("stat -c '%n %F %t:%T' /dev/fuse");
        list.push(if ok { s } else { s.differs(WHY, false) });
    }
    // Both fail: mkdir of the parent meets a file.
    list.push(
        scenario("device: below a regular file of the image", move |c| {
            c["linux"]["devices"] = node("/etc/passwd/x", 3)
        })
        .probe(probe),
    );
    list.push(
        scenario("device: /dev/null as zero", move |c| {
            c["linux"]["devices"] = node("/dev/null", 5)
        })
        .probe(probe)
        .differs(
            "an entry for a standard device may change its mode or owner, not its numbers: \
             skiff-oci refuses it; runc 1.1.5 makes what it asks",
            false,
        ),
    );
    list
}

/// runtime-spec 1.2's process and linux fields, which runc 1.1.5 ignores
/// and skiff-oci applies (as runc 1.2 does): what the program sees.
fn spec_1_2_scenarios() -> Vec<Scenario> {
    const WHY: &str =
        "runc 1.1.5 ignores runtime-spec 1.2's fields; skiff-oci applies them (runc 1.2 does)";
    vec![
        scenario("personality LINUX32", |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32"})
        })
        .probe("uname -m")
        .differs(WHY, true),
        scenario("personality LINUX", |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX"})
        })
        .probe("uname -m"),
        scenario("scheduler SCHED_BATCH, nice 5", |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5})
        })
        // nice and policy, fields 19 and 41 of /proc/self/stat.
        .probe("cut -d' ' -f19,41 /proc/self/stat")
        .differs(WHY, true),
        scenario("memoryPolicy MPOL_INTERLEAVE on node 0", |c| {
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"})
        })
        .probe("head -1 /proc/self/numa_maps | cut -d' ' -f2")
        .differs(WHY, true),
    ]
}

/// linux.timeOffsets, with and without the time namespace they are for.
fn time_scenarios() -> Vec<Scenario> {
    let probe = "cat /proc/self/timens_offsets";
    let time_ns = |c: &mut Value, path: Option<&str>| {
        let mut ns = json!({"type": "time"});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        c["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
    };
    vec![
        scenario("timeOffsets empty", |c| c["linux"]["timeOffsets"] = json!({})).probe(probe),
        scenario("timeOffsets without a time namespace", |c| {
            c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400}})
        })
        .probe(probe)
        .differs(
            "runc 1.1.5 ignores timeOffsets; skiff-oci refuses offsets it has no time namespace to write to",
            false,
        ),
        scenario("timeOffsets for a time namespace joined by path", move |c| {
            time_ns(c, Some("/proc/self/ns/time"));
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1}})
        })
        .probe(probe),
        scenario("timeOffsets of a clock no namespace offsets", move |c| {
            time_ns(c, None);
            c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1}})
        })
        .probe(probe),
    ]
}

fn bad_input_scenarios() -> Vec<Scenario> {
    type Edit = fn(&mut Value);
    let bad: [(&str, Edit); 38] = [
        ("no process", |c| {
            c.as_object_mut().unwrap().remove("process");
        }),
        ("no root", |c| {
            c.as_object_mut().unwrap().remove("root");
        }),
        ("no ociVersion", |c| {
            c.as_object_mut().unwrap().remove("ociVersion");
        }),
        ("ociVersion 0.1.0", |c| c["ociVersion"] = json!("0.1.0")),
        ("ociVersion 9.9.9", |c| c["ociVersion"] = json!("9.9.9")),
        ("no linux", |c| {
            c.as_object_mut().unwrap().remove("linux");
        }),
        ("root path missing", |c| {
            c["root"]["path"] = json!("no-such-rootfs")
        }),
        ("root path absolute", |c| {
            c["root"]["path"] = json!("/no/such/rootfs")
        }),
        ("root path a number", |c| c["root"]["path"] = json!(7)),
        ("args a string", |c| c["process"]["args"] = json!("sh")),
        ("args with a number", |c| {
            c["process"]["args"] = json!(["sh", 1])
        }),
        ("no args", |c| {
            c["process"].as_object_mut().unwrap().remove("args");
        }),
        ("an empty program", |c| c["process"]["args"] = json!([""])),
        ("a directory as the program", |c| {
            c["process"]["args"] = json!(["/tmp"])
        }),
        ("env a string", |c| c["process"]["env"] = json!("A=b")),
        ("an env entry without =", |c| {
            c["process"]["env"] = json!(["PATH=/bin", "NOEQUALS"])
        }),
        ("an env entry with an empty name", |c| {
            c["process"]["env"] = json!(["PATH=/bin", "=x"])
        }),
        ("uid negative", |c| c["process"]["user"]["uid"] = json!(-1)),
        ("uid a string", |c| c["process"]["user"]["uid"] = json!("0")),
        ("uid too large", |c| {
            c["process"]["user"]["uid"] = json!(4294967296u64)
        }),
        ("no user", |c| {
            c["process"].as_object_mut().unwrap().remove("user");
        }),
        ("terminal a string", |c| {
            c["process"]["terminal"] = json!("no")
        }),
        ("a bad namespace type", |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "bogus"}))
        }),
        ("a namespace twice", |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "pid"}))
        }),
        ("a namespace path that does not exist", |c| {
            remove_ns(c, "network");
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "network", "path": "/no/such/ns"}))
        }),
        ("a namespace path of the wrong type", |c| {
            remove_ns(c, "network");
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "network", "path": "/proc/self/ns/uts"}))
        }),
        ("a mount without destination", |c| {
            add_mount(c, json!({"type": "tmpfs", "source": "tmpfs"}))
        }),
        ("mounts an object", |c| {
            c["mounts"] = json!({"destination": "/mnt"})
        }),
        ("mount options a string", |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": "ro"}),
            )
        }),
        ("a hook with a relative path", |c| {
            c["hooks"] = json!({"prestart": [{"path": "true"}]})
        }),
        ("a hook that does not exist", |c| {
            c["hooks"] = json!({"createRuntime": [{"path": "/no/such/hook"}]})
        }),
        ("a failing createRuntime hook", |c| {
            c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]})
        }),
        ("a failing createContainer hook", |c| {
            c["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]})
        }),
        ("a failing startContainer hook", |c| {
            c["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]})
        }),
        ("a failing poststart hook", |c| {
            c["hooks"] = json!({"poststart": [{"path": "/bin/false"}]})
        }),
        (
            "a hook past its timeout",
            |c| {
                c["hooks"] = json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]})
            },
        ),
        (
            "a hook with timeout 0",
            |c| c["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]}),
        ),
        ("oomScoreAdj a string", |c| {
            c["process"]["oomScoreAdj"] = json!("5")
        }),
    ];
    bad.into_iter()
        .map(|(name, edit)| scenario(format!("bad input: {name}"), edit))
        .collect()
}

/// What a finished container of skiff-oci's left in the host's mount table
/// and cgroup hierarchies (runc's are in a mount namespace of their own).
fn left_behind(env: &TestEnv, id: &str, host_names: &str) -> Vec<String> {
    // The bundle's own tmpfs stays until the test ends.
    let bundle = env.base.join("bundle");
    let mut left: Vec<String> = host_mounts(env.base.to_str().unwrap())
        .into_iter()
        .filter(|l| l.split(' ').nth(4) != bundle.to_str())
        .collect();
    if uts_names() != host_names {
        left.push(format!(
            "the host's names changed from {host_names:?} to {:?}",
            uts_names()
        ));
    }
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let group = hierarchy.path().join(id);
        if group.exists() {
            left.push(group.display().to_string());
        }
    }
    left
}

/// A copy of `pristine` at `rootfs`, the one before removed: every run
/// starts from the same tree (a mountpoint made by one would be there for
/// the next, and a tmpfs takes the mode of a directory that is there).
/// Files are hard links: runs add files, none writes into one.
fn fresh_rootfs(pristine: &Path, rootfs: &Path) {
    let _ = fs::remove_dir_all(rootfs);
    copy_tree(pristine, rootfs);
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    fs::set_permissions(to, fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&src, &dst);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            fs::hard_link(&src, &dst).unwrap();
        }
    }
}

/// A tmpfs mounted at a directory until dropped (then detached, also when
/// the test failed, before the test's directory is removed).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "skiff-diff"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The host's hostname and domainname.
fn uts_names() -> String {
    let name = |key| fs::read_to_string(format!("/proc/sys/kernel/{key}")).unwrap_or_default();
    name("hostname") + &name("domainname")
}

/// How a scenario's two outcomes disagree with what it expects, if they do.
fn difference(s: &Scenario, runc: &Outcome, skiff: &Outcome) -> Option<String> {
    match s.differs {
        None if runc != skiff => Some(format!("{}:\n  runc  {runc:?}\n  skiff {skiff:?}", s.name)),
        Some((why, ok)) if skiff.ok != ok => Some(format!(
            "{} (differs by choice: {why}): skiff-oci's outcome is {skiff:?}",
            s.name
        )),
        Some((why, _)) if runc == skiff => Some(format!(
            "{} is listed as differing ({why}) but both print the same",
            s.name
        )),
        _ => None,
    }
}

/// Every scenario under runc and skiff-oci: the same outcome and output, or
/// the documented difference.
#[test]
fn skiff_oci_matches_runc() {
    let env = TestEnv::new("diff");
    let host_dir = env.base.join("hostdir");
    fs::create_dir_all(host_dir.join("sub")).unwrap();
    fs::write(host_dir.join("file"), "x").unwrap();
    std::os::unix::fs::symlink("sub", host_dir.join("link")).unwrap();
    let base = env.bundle("bundle", &["sh", "-c", PROBE]);
    // The bundle on a tmpfs: each run gets a fresh copy of the rootfs (some
    // thousand links), and on ext4 making inodes right after as many were
    // deleted is slow (the allocator skips recently deleted ones): 2 of the
    // test's 2.5 minutes went there.
    let on_disk = env.base.join("bundle-rootfs");
    fs::rename(base.rootfs(), &on_disk).unwrap();
    let _tmpfs = Tmpfs::mount(&base.dir);
    // Each run gets a copy of this one (runs make mountpoints in theirs).
    // With symlinks for mount destinations to go through: an absolute one
    // and one that climbs out of the rootfs.
    let pristine = base.dir.join("pristine-rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&on_disk)
        .arg(&pristine)
        .status()
        .unwrap();
    assert!(copied.success());
    std::os::unix::fs::symlink("/tmp", pristine.join("etc/abs")).unwrap();
    std::os::unix::fs::symlink("../../../..", pristine.join("etc/out")).unwrap();
    // A device node the image ships, for linux.devices at its path.
    let made = Command::new("mknod")
        .args(["-m", "666"])
        .arg(pristine.join("var/zero"))
        .args(["c", "1", "5"])
        .status()
        .unwrap();
    assert!(made.success());
    let mut mismatches = Vec::new();
    let host_names = uts_names();
    let all = scenarios(&host_dir);
    // SKIFF_DIFF_ONLY=TEXT: only the scenarios whose name holds TEXT (to
    // iterate on a few; the suite runs them all).
    let only = std::env::var("SKIFF_DIFF_ONLY").unwrap_or_default();
    for (n, s) in all.iter().enumerate() {
        if !s.name.contains(&only) {
            continue;
        }
        let mut config = base.config.clone();
        if let Some(probe) = &s.probe {
            config["process"]["args"] = json!(["sh", "-c", probe]);
        }
        (s.edit)(&mut config);
        fs::write(
            base.dir.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        // Run twice when they differ: a reference that failed by chance
        // (runc under load) is told from a real difference, which shows
        // both times. A difference that went away is printed.
        let mut differs = None;
        for attempt in ["", "again"] {
            fresh_rootfs(&pristine, &base.rootfs());
            let runc = runc_run(&env, &base.dir, &env.id(&format!("r{n}{attempt}")));
            fresh_rootfs(&pristine, &base.rootfs());
            let skiff_id = env.id(&format!("s{n}{attempt}"));
            let skiff = skiff_run(&env, &base.dir, &skiff_id);
            assert!(env.container_dirs().is_empty(), "{}: state left", s.name);
            let left = left_behind(&env, &skiff_id, &host_names);
            if !left.is_empty() {
                mismatches.push(format!("{}: skiff-oci left {left:?}", s.name));
            }
            let first = differs.take();
            differs = difference(s, &runc, &skiff);
            match (&first, &differs) {
                (Some(was), None) => eprintln!("{}: differed once, then matched: {was}", s.name),
                (None, None) => break,
                _ => {}
            }
        }
        mismatches.extend(differs);
    }
    // The parents of the one cgroupsPath scenario's groups (both runtimes
    // leave those, as they should: they may be shared).
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = fs::remove_dir(hierarchy.path().join("skt-diff-own"));
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
    // Exec'd processes get the container's, not the caller's (0 here), and
    // --additional-gids add to its groups.
    b.config["process"]["oomScoreAdj"] = json!(222);
    b.config["process"]["user"]["additionalGids"] = json!([7]);
    b.write();
    let runc_root = env.base.join("runc-state");
    let runc = |args: &[&str]| runc_at(&env, &runc_root, args);
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
    // --process files the runtime-spec refuses (a relative cwd, an env entry
    // that is no KEY=VALUE), and one naming a capability no kernel has
    // (runc leaves it out with a warning).
    let variant_file = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut p = json!({"args": ["sh", "-c", EXEC_PROBE], "env": ["PATH=/bin"], "cwd": "/",
                           "user": {"uid": 0, "gid": 0}});
        edit(&mut p);
        let file = env.base.join(name);
        fs::write(&file, p.to_string()).unwrap();
        file.to_str().unwrap().to_string()
    };
    let pf_cwd = variant_file("relative-cwd.json", &|p| p["cwd"] = json!("tmp"));
    let pf_env = variant_file("bad-env.json", &|p| {
        p["env"] = json!(["PATH=/bin", "NOEQUALS"])
    });
    let pf_cap = variant_file("unknown-cap.json", &|p| {
        p["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_NO_SUCH"], "effective": ["CAP_KILL"],
                                   "permitted": ["CAP_KILL", "CAP_NO_SUCH"]})
    });
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
        vec!["--no-new-privs=false"],
        vec!["--process", pf],
        vec!["--user", "no-such-user"],
        vec!["--cwd", "tmp"],
        vec!["--env", "NOEQUALS"],
        vec!["--env", "=x"],
        vec!["--cap", "CAP_NO_SUCH"],
        vec!["--cap", "CAP_NO_SUCH", "--cap", "CAP_SYS_ADMIN"],
        vec!["--process", &pf_cwd],
        vec!["--process", &pf_env],
        vec!["--process", &pf_cap],
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
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
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

/// Deletes runc's containers of a test (skiff-oci's go with its TestEnv),
/// also when the test fails.
struct RuncContainers {
    root: std::path::PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Drop for RuncContainers {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = Command::new("/usr/sbin/runc")
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "-f", id])
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// A container's status as `state` prints it, or "gone".
fn status_in(out: &std::process::Output) -> String {
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| "gone".into())
}

/// Lifecycle commands in sequence (`ID` stands for the container), under
/// runc and skiff-oci, each on a container of its own: after every step,
/// whether it succeeded and the status `state` then shows must be the same.
/// A step that changes the status by a signal is given up to 5 s to show it.
#[test]
fn skiff_oci_lifecycle_matches_runc() {
    let env = TestEnv::new("difflife");
    let b = env.bundle("bundle", &["sleep", "1000"]);
    let runc_root = env.base.join("runc-state");
    let cleanup = RuncContainers {
        root: runc_root.clone(),
        ids: Default::default(),
    };
    let runc = |args: &[&str]| runc_at(&env, &runc_root, args);
    let create: &[&str] = &["create", "--bundle", b.path(), "ID"];
    let mut cases: Vec<(String, Vec<Vec<&str>>)> = Vec::new();
    // What each signal does to a created container (runc's init dies of
    // TERM, INT, HUP and QUIT; PID 1 ignores the rest but KILL).
    for sig in [
        "TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "0", "9", "SIGTERM",
    ] {
        cases.push((
            format!("kill {sig} of a created container"),
            vec![create.to_vec(), vec!["kill", "ID", sig]],
        ));
    }
    cases.push((
        "kill with the default signal of a created container, then start".into(),
        vec![create.to_vec(), vec!["kill", "ID"], vec!["start", "ID"]],
    ));
    cases.push((
        "start twice, create again, delete while running".into(),
        vec![
            create.to_vec(),
            vec!["start", "ID"],
            vec!["start", "ID"],
            create.to_vec(),
            vec!["delete", "ID"],
        ],
    ));
    cases.push((
        "pause and resume, twice each".into(),
        vec![
            create.to_vec(),
            vec!["start", "ID"],
            vec!["pause", "ID"],
            vec!["pause", "ID"],
            vec!["resume", "ID"],
            vec!["resume", "ID"],
        ],
    ));
    cases.push((
        "after the container stopped: kill, pause, resume, start, delete".into(),
        vec![
            create.to_vec(),
            vec!["start", "ID"],
            vec!["kill", "ID", "KILL"],
            vec!["kill", "ID"],
            vec!["kill", "--all", "ID", "KILL"],
            vec!["pause", "ID"],
            vec!["resume", "ID"],
            vec!["start", "ID"],
            vec!["delete", "ID"],
            vec!["delete", "ID"],
            vec!["kill", "ID"],
        ],
    ));
    let with_socket = vec![
        "create",
        "--bundle",
        b.path(),
        "--console-socket",
        "/tmp/no-such-console.sock",
        "ID",
    ];
    cases.push((
        "create with a console socket but no terminal".into(),
        vec![with_socket],
    ));
    cases.push((
        "a created container: pause, resume, ps, kill --all, delete without --force".into(),
        vec![
            create.to_vec(),
            vec!["pause", "ID"],
            vec!["resume", "ID"],
            vec!["ps", "--format", "json", "ID"],
            vec!["kill", "--all", "ID", "KILL"],
            vec!["delete", "ID"],
        ],
    ));
    cases.push((
        "a stopped container: list, ps, ps --format json".into(),
        vec![
            vec!["run", "-d", "--bundle", b.path(), "ID"],
            vec!["kill", "ID", "KILL"],
            vec!["list"],
            vec!["list", "--format", "json"],
            vec!["list", "-q"],
            vec!["ps", "ID"],
            vec!["ps", "--format", "json", "ID"],
            vec!["delete", "ID"],
            vec!["list", "--format", "json"],
        ],
    ));
    cases.push((
        "bad signals".into(),
        vec![
            create.to_vec(),
            vec!["start", "ID"],
            vec!["kill", "ID", "NOSUCH"],
            vec!["kill", "ID", "SIGNOSUCH"],
        ],
    ));
    let mut mismatches = Vec::new();
    for (n, (name, steps)) in cases.iter().enumerate() {
        let (rid, sid) = (env.id(&format!("r{n}")), env.id(&format!("s{n}")));
        cleanup.ids.borrow_mut().push(rid.clone());
        let mut seen = [Vec::new(), Vec::new()];
        for (side, id) in [(0, &rid), (1, &sid)] {
            let call = |args: &[&str]| {
                let args: Vec<&str> = args
                    .iter()
                    .map(|a| if *a == "ID" { id.as_str() } else { a })
                    .collect();
                match side {
                    0 => runc(&args),
                    _ => env.oci(&args),
                }
            };
            for step in steps {
                let out = call(step);
                let ok = out.status.success();
                // What it printed, with the id, numbers (pids, times) and
                // column padding made alike.
                // ociVersion is each runtime's own (docs/compatibility.md).
                let mut printed = String::from_utf8_lossy(&out.stdout).replace(id.as_str(), "ID");
                while let Some(at) = printed.find(r#""ociVersion":""#) {
                    let end = printed[at + 14..]
                        .find('"')
                        .map_or(printed.len(), |e| at + 15 + e);
                    printed.replace_range(at..end, "");
                }
                let mut printed: String = printed
                    .split(|c: char| c.is_ascii_digit())
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("N");
                printed = printed.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut status = status_in(&call(&["state", "ID"]));
                // A signal's effect is seen once init has died.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while ok
                    && step[0] == "kill"
                    && status != "stopped"
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    status = status_in(&call(&["state", "ID"]));
                }
                seen[side].push(format!(
                    "{step:?}: ok {ok}, printed {printed:?}, then {status}"
                ));
            }
            let _ = call(&["delete", "-f", "ID"]);
        }
        if seen[0] != seen[1] {
            mismatches.push(format!(
                "{name}:\n  runc  {:?}\n  skiff {:?}",
                seen[0], seen[1]
            ));
        }
    }
    eprintln!(
        "{} lifecycle sequences under runc and skiff-oci",
        cases.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Every key path of a JSON object (objects only; memory.raw's counters,
/// which follow the kernel, left out).
fn key_paths(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            let path = format!("{prefix}{k}");
            out.insert(path.clone());
            if path != "data.memory.raw" {
                key_paths(v, &format!("{path}."), out);
            }
        }
    }
}

/// The fields runc 1.1.5's stats types (types/events.go) mark `omitempty`:
/// left out when zero or empty.
fn runc_omits_when_empty(path: &str) -> bool {
    let p: Vec<&str> = path.split('.').collect();
    matches!(
        p[..],
        [
            "data",
            "cpu",
            "usage",
            "total" | "percpu" | "percpu_kernel" | "percpu_user"
        ] | ["data", "cpu", "throttling", _]
            | ["data", "cpuset", "cpus" | "mems"]
            | [
                "data",
                "memory",
                "usage" | "swap" | "kernel" | "kernelTCP",
                "usage" | "max"
            ]
            | ["data", "memory", "raw" | "cache"]
            | ["data", "pids", _]
            | ["data", "blkio", _]
            | ["data", "hugetlb", _, "usage" | "max"]
    )
}

/// `events --stats` of a container of each runtime made from the same
/// bundle: every key runc's has (clients decode runc's shape), with the
/// same JSON type; no zero where runc's type leaves it out; and no key
/// runc's lacks but where their values differ (two containers, two
/// counts) or what skiff-oci adds (memory.oomControl, which the shim
/// reports; hugetlb from the cgroup2 tree of a hybrid host, which runc
/// 1.1.5 reads only from v1).
#[test]
fn skiff_oci_events_stats_has_runcs_shape() {
    let env = TestEnv::new("diffevents");
    let b = env.bundle("bundle", &["sleep", "1000"]);
    let runc_root = env.base.join("runc-state");
    let (rid, sid) = (env.id("r"), env.id("s"));
    let _cleanup = RuncContainers {
        root: runc_root.clone(),
        ids: std::cell::RefCell::new(vec![rid.clone()]),
    };
    let runc = |args: &[&str]| runc_at(&env, &runc_root, args);
    assert!(runc(&["run", "-d", "--bundle", b.path(), &rid])
        .status
        .success());
    env.ok(&["run", "-d", "--bundle", b.path(), &sid]);
    let r: Value = serde_json::from_slice(&runc(&["events", "--stats", &rid]).stdout).unwrap();
    let s: Value = serde_json::from_str(&env.ok(&["events", "--stats", &sid])).unwrap();
    let (mut rk, mut sk) = (Default::default(), Default::default());
    key_paths(&r, "", &mut rk);
    key_paths(&s, "", &mut sk);
    let missing: Vec<_> = rk
        .difference(&sk)
        .filter(|p| !runc_omits_when_empty(p))
        .collect();
    assert!(
        missing.is_empty(),
        "runc's keys missing: {missing:?}\n runc {r}\n skiff {s}"
    );
    let pointer = |p: &str| format!("/{}", p.replace('.', "/"));
    let empty = |v: &Value| match v {
        Value::Number(n) => n.as_u64() == Some(0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(t) => t.is_empty(),
        _ => false,
    };
    let zeros: Vec<_> = sk
        .iter()
        .filter(|p| runc_omits_when_empty(p) && s.pointer(&pointer(p)).is_some_and(empty))
        .collect();
    assert!(
        zeros.is_empty(),
        "zero values runc leaves out: {zeros:?}\n runc {r}\n skiff {s}"
    );
    let runc_hugetlb = r["data"]["hugetlb"]
        .as_object()
        .is_some_and(|h| !h.is_empty());
    let extra: Vec<_> = sk
        .difference(&rk)
        .filter(|p| {
            let added = p.starts_with("data.memory.oomControl")
                || (p.starts_with("data.hugetlb.") && !runc_hugetlb);
            !runc_omits_when_empty(p) && !added
        })
        .collect();
    assert!(
        extra.is_empty(),
        "keys runc's has not: {extra:?}\n runc {r}\n skiff {s}"
    );
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    for path in &rk {
        let pointer = format!("/{}", path.replace('.', "/"));
        let (rv, sv) = (r.pointer(&pointer), s.pointer(&pointer));
        if let (Some(rv), Some(sv)) = (rv, sv) {
            assert_eq!(kind(rv), kind(sv), "{path}: runc {rv}, skiff {sv}");
        }
    }
    let _ = runc(&["delete", "-f", &rid]);
    env.ok(&["delete", "--force", &sid]);
}

/// `state` prints what runc's does, byte for byte but the values that are
/// each container's own (id, pid, created, the ociVersion): indented JSON
/// with no newline after it.
#[test]
fn skiff_oci_state_prints_as_runc() {
    let env = TestEnv::new("diffstate");
    let b = env.bundle("bundle", &["sleep", "1000"]);
    let runc_root = env.base.join("runc-state");
    let (rid, sid) = (env.id("r"), env.id("s"));
    let _cleanup = RuncContainers {
        root: runc_root.clone(),
        ids: std::cell::RefCell::new(vec![rid.clone()]),
    };
    let runc = |args: &[&str]| runc_at(&env, &runc_root, args);
    assert!(runc(&["run", "-d", "--bundle", b.path(), &rid])
        .status
        .success());
    env.ok(&["run", "-d", "--bundle", b.path(), &sid]);
    // Each line's value for the keys whose values are the container's own.
    let own = |text: &str| {
        text.split('\n')
            .map(|line| match line.split_once("\": ") {
                Some((key, value))
                    if ["ociVersion", "id", "pid", "created"]
                        .contains(&key.trim_start().trim_start_matches('"')) =>
                {
                    let comma = if value.ends_with(',') { "," } else { "" };
                    format!("{key}\": X{comma}")
                }
                _ => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let r = String::from_utf8(runc(&["state", &rid]).stdout).unwrap();
    let (code, s, err) = env.bounded(&["state", &sid], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(own(&s), own(&r), "skiff-oci's state, then runc's");
    let _ = runc(&["delete", "-f", &rid]);
    env.ok(&["delete", "--force", &sid]);
}

/// What runc 1.1.5 (urfave/cli) does with no command, an unknown one and
/// help: the exit code, and which of stdout and stderr get something. A
/// bad argument or flag exits 1 under both (runc also prints the command's
/// help on stdout then, which is not compared).
#[test]
fn skiff_oci_exit_codes_match_runc() {
    let env = TestEnv::new("diffexit");
    let run = |program: &str, args: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null());
        let out = output_via_files(&mut cmd, &env.base);
        let streams = (!out.stdout.is_empty(), !out.stderr.is_empty());
        (out.status.code(), streams)
    };
    let cases: [(&[&str], bool); 9] = [
        (&[], true),
        (&["bogus"], true),
        (&["bogus", "--help"], true),
        (&["help", "bogus"], true),
        (&["--help"], true),
        (&["help"], true),
        (&["--debug"], false),
        (&["start"], false),
        (&["--bogus-flag"], false),
    ];
    let mut mismatches = Vec::new();
    for (args, streams_too) in cases {
        let (rc, rs) = run("/usr/sbin/runc", args);
        let (sc, ss) = run(skiff(), args);
        if rc != sc || (streams_too && rs != ss) {
            mismatches.push(format!(
                "{args:?}: runc exits {rc:?} (stdout, stderr written: {rs:?}), skiff-oci {sc:?} ({ss:?})"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `spec` (and `spec --rootless`) against runc's: the same config but for
/// the hostname, and the same bytes on every call.
#[test]
fn skiff_oci_spec_matches_runc() {
    let env = TestEnv::new("diffspec");
    for rootless in [false, true] {
        let (rdir, sdir) = (
            env.base.join(format!("r{rootless}")),
            env.base.join(format!("s{rootless}")),
        );
        let spec = |runtime: &str, dir: &Path| {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir).unwrap();
            let mut cmd = Command::new(runtime);
            cmd.arg("spec");
            if rootless {
                cmd.arg("--rootless");
            }
            let out = cmd.arg("--bundle").arg(dir).output().unwrap();
            assert!(out.status.success(), "{runtime} spec: {out:?}");
            fs::read_to_string(dir.join("config.json")).unwrap()
        };
        let runc_text = spec("/usr/sbin/runc", &rdir);
        let skiff_text = spec(skiff(), &sdir);
        assert_eq!(
            skiff_text,
            spec(skiff(), &sdir),
            "spec is not the same twice"
        );
        let mut r: Value = serde_json::from_str(&runc_text).unwrap();
        let mut s: Value = serde_json::from_str(&skiff_text).unwrap();
        for v in [&mut r, &mut s] {
            v.as_object_mut().unwrap().remove("hostname");
        }
        assert_eq!(s, r, "rootless {rootless}:\n skiff {s}\n runc  {r}");
    }
}
