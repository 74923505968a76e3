//! Containers from images, as `docker run` users expect them: the image's
//! config under the flags, Docker's exit codes, output kept in a log, a
//! monitor per container instead of a daemon, nothing left after `rm`.
//! skiff-oci runs them ($SKIFF_OCI, scripts/test.sh's static build).

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

/// doctor's look at the host's iptables is host-wide (a network's chains
/// whose bridge is gone are nobody's, whichever store made them): a test
/// that makes such an orphan on purpose holds this until its doctor --fix
/// has removed it, and a test that expects doctor to find nothing holds it
/// while it asks (tests of this file run in parallel threads).
static HOST_WIDE_DOCTOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn host_wide_doctor() -> std::sync::MutexGuard<'static, ()> {
    HOST_WIDE_DOCTOR.lock().unwrap_or_else(|p| p.into_inner())
}

use common::*;
use serde_json::{json, Value};

/// A store with the test image `app:1` (busybox, a Cmd, Env, WorkingDir)
/// pulled from a registry of the test's own.
struct Fixture {
    e: Engine,
    _reg: Registry,
}

fn fixture() -> Fixture {
    let reg = Registry::start();
    let e = app_store(&reg);
    Fixture { e, _reg: reg }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Whatever a failed test left running: pods (with their infra
        // containers), then the other containers.
        let pods = self.e.cmd(&["pod", "ps", "-q"]);
        for id in String::from_utf8_lossy(&pods.stdout).split_whitespace() {
            let _ = self.e.cmd(&["pod", "rm", "-f", id]);
        }
        let ids = self.e.cmd(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.e.cmd(&["rm", "-f", id]);
        }
        // And its networks (their bridges, rules and leases).
        let nets = self.e.cmd(&["network", "ls", "-q"]);
        for n in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            if n != "skiff" {
                let _ = self.e.cmd(&["network", "rm", n]);
            }
        }
    }
}

/// Whether the host has these cgroup controllers (v1 hierarchies, or the
/// cgroup2 root's); says it skips when not.
fn have_controllers(wanted: &[&str]) -> bool {
    let v2 = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").ok();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| match &v2 {
            Some(list) => !list.split_whitespace().any(|x| x == *c),
            None => !std::path::Path::new("/sys/fs/cgroup").join(c).exists(),
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: this host lacks the {missing:?} cgroup controllers");
    }
    missing.is_empty()
}

/// Each case's flags, given to `run -d FLAGS app:1 true`, are refused
/// (125) with a message naming the flag; none leaves a container.
fn run_refuses(e: &Engine, cases: &[(Vec<&str>, &str)]) {
    let before = e.ok(&["ps", "-a", "-q"]);
    for (flags, named) in cases {
        let mut args = vec!["run", "-d"];
        args.extend(flags.iter().copied());
        args.extend(["app:1", "true"]);
        let o = e.cmd(&args);
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{flags:?}: {}", text(&o));
    }
    assert_eq!(
        e.ok(&["ps", "-a", "-q"]),
        before,
        "a refused run left a container"
    );
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_uses_the_image_config_and_keeps_streams_and_codes() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // The image's Cmd, Env and WorkingDir.
    let o = e.cmd(&["run", "--rm", "app:1"]);
    assert_eq!(out(&o), "from-cmd hi in /srv\n", "{}", text(&o));
    // Flags over the image: -e, -w, the command; stdout and stderr apart;
    // the container's exit code is run's.
    let o = e.cmd(&[
        "run",
        "--rm",
        "-e",
        "GREETING=yo",
        "-w",
        "/tmp",
        "app:1",
        "sh",
        "-c",
        "echo $GREETING $(pwd); echo oops >&2; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(out(&o), "yo /tmp\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    // --rm left nothing.
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert_eq!(
        fs::read_dir(e.root().join("containers")).unwrap().count(),
        0
    );
    // Docker's codes for a program that cannot start, and bad input.
    let o = e.cmd(&["run", "--rm", "app:1", "nosuchprogram"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(text(&o).contains("nosuchprogram"), "{}", text(&o));
    let o = e.cmd(&["run", "--rm", "app:1", "/notexec"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    let o = e.cmd(&["run", "--rm", "--network", "nosuchnet", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--network"), "{}", text(&o));
    let o = e.cmd(&["run", "--rm", "nosuchimage:9", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    // --runtime: another OCI runtime runs it (runc, Debian's), named or by
    // path; an unknown one is refused by name.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "echo via-runc; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(out(&o), "via-runc\n");
    let o = e.cmd(&["run", "--rm", "--runtime", "nosuchruntime", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--runtime"), "{}", text(&o));
    // --entrypoint replaces the image's command line.
    let o = e.cmd(&["run", "--rm", "--entrypoint", "echo", "app:1", "a", "b"]);
    assert_eq!(out(&o), "a b\n", "{}", text(&o));
}

#[test]
fn users_hostname_and_isolation() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let o = e.cmd(&["run", "--rm", "-u", "web", "app:1", "id"]);
    assert_eq!(
        out(&o).trim(),
        "uid=1001(web) gid=1002(web) groups=1002(web),1003(extra)",
        "{}",
        text(&o)
    );
    let o = e.cmd(&["run", "--rm", "-u", "1234:5678", "app:1", "id", "-u"]);
    assert_eq!(out(&o).trim(), "1234", "{}", text(&o));
    // A user the image lacks: the program cannot run as asked, Podman's 126.
    let o = e.cmd(&["run", "--rm", "-u", "ghost", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(126));
    assert!(text(&o).contains("ghost"), "{}", text(&o));
    // Its own hostname (and /etc/hosts and /etc/hostname saying it), pid 1,
    // a network namespace with only loopback, and the host's root hidden.
    let o = e.cmd(&[
        "run", "--rm", "--network", "none", "--name", "iso", "--hostname", "box1", "app:1", "sh", "-c",
        "hostname; cat /etc/hostname; grep -c box1 /etc/hosts; echo $$; grep -c : /proc/net/dev; ls /root 2>&1 | wc -l",
    ]);
    let lines: Vec<String> = out(&o).lines().map(str::to_string).collect();
    assert_eq!(lines[..4], ["box1", "box1", "1", "1"], "{}", text(&o));
    assert_eq!(lines[4], "1", "more than loopback: {}", text(&o));
}

#[test]
fn detached_containers_log_exec_stop_and_rm() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let id = e
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "app:1",
            "sh",
            "-c",
            "echo one; echo two >&2; echo three; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = e.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up"),
        "{ps}"
    );
    let running: Value = serde_json::from_str(&e.ok(&["inspect", "web"])).unwrap();
    assert_eq!(running[0]["State"]["Running"], true);
    let pid = running[0]["State"]["Pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // The log, by stream, --tail, timestamps.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !e.ok(&["logs", "web"]).contains("three") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = e.cmd(&["logs", "web"]);
    assert_eq!(out(&o), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "two\n");
    // --tail counts lines of both streams, as Docker's does.
    let o = e.cmd(&["logs", "--tail", "1", "web"]);
    assert_eq!(text(&o).lines().count(), 1, "{}", text(&o));
    assert!(e
        .ok(&["logs", "-t", "web"])
        .lines()
        .all(|l| l.starts_with("20") && l.contains("Z ")));
    // exec: in the container, its code, -u and -w.
    let o = e.cmd(&[
        "exec",
        "-u",
        "web",
        "-w",
        "/tmp",
        "web",
        "sh",
        "-c",
        "id -u; pwd; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(out(&o), "1001\n/tmp\n");
    let o = e.cmd(&["exec", "web", "nosuch"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    // Podman's codes: a workdir that is not there 127, a user the image
    // lacks 126 (run), an unknown status to filter on 125.
    let o = e.cmd(&["exec", "-w", "/nonexistent", "web", "true"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    let o = e.cmd(&["run", "--rm", "-u", "nosuchuser", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    let o = e.cmd(&["ps", "--filter", "status=bogus"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    // A name in use is refused.
    let o = e.cmd(&["run", "-d", "--name", "web", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("already in use"), "{}", text(&o));
    // The image is in use: rmi refuses.
    let err = e.fails(&["rmi", "app:1"]);
    assert!(err.contains("in use by container web"), "{err}");
    // rm of a running container needs -f; stop: SIGTERM, which sleep as
    // pid 1 ignores, then SIGKILL after -t.
    let err = e.fails(&["rm", "web"]);
    assert!(err.contains("is running"), "{err}");
    let t0 = Instant::now();
    e.ok(&["stop", "-t", "1", "web"]);
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    assert_eq!(e.ok(&["wait", "web"]).trim(), "137");
    // exec into a container that does not run: Podman's 255.
    let o = e.cmd(&["exec", "web", "true"]);
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(text(&o).contains("not running"), "{}", text(&o));
    let ps = e.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(e.ok(&["ps", "-q"]).trim().is_empty());
    // rmi -f: the containers using it go too (the exited web and a
    // running one), then the image (Podman's).
    e.ok(&["run", "-d", "--name", "busy", "app:1", "sleep", "1000"]);
    let o = e.cmd(&["rmi", "-f", "app:1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out(&o).contains("Deleted: "), "{}", text(&o));
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(!e.ok(&["images"]).contains("app"));
    // Nothing of it is left: no directory, mount or runtime state.
    assert_eq!(
        fs::read_dir(e.root().join("containers")).unwrap().count(),
        0
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id[..12]) && !mounts.contains(e.root().to_str().unwrap()));
    let rt = e.root().join("runtime");
    // (.seccomp is skiff-oci's cache of compiled filters, not a container's.)
    let left: Vec<_> = fs::read_dir(&rt)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n != ".seccomp")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
}

#[test]
fn rm_force_kills_and_a_handled_stop_signal_ends_at_once() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // A program that handles SIGTERM stops without the timeout.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "app:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo trapped; while true; do sleep 0.1; done",
    ]);
    // Before its trap, the shell (PID 1 there) ignores SIGTERM: a stop
    // that came first would wait out its timeout, as Docker's would.
    eventually("the trap is set", || {
        e.ok(&["logs", "polite"]).contains("trapped")
    });
    let t0 = Instant::now();
    e.ok(&["stop", "-t", "20", "polite"]);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop waited the timeout"
    );
    assert_eq!(e.ok(&["wait", "polite"]).trim(), "0");
    e.ok(&["rm", "polite"]);
    let id = e
        .ok(&["run", "-d", "app:1", "sleep", "1000"])
        .trim()
        .to_string();
    e.ok(&["rm", "-f", &id[..12]]);
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // create + start.
    let id = e
        .ok(&[
            "create",
            "--name",
            "later",
            "app:1",
            "sh",
            "-c",
            "echo started-later",
        ])
        .trim()
        .to_string();
    assert!(e.ok(&["ps", "-a"]).contains("Created"));
    e.ok(&["start", "later"]);
    assert_eq!(e.ok(&["wait", &id]).trim(), "0");
    assert_eq!(e.ok(&["logs", "later"]), "started-later\n");
    e.ok(&["rm", "later"]);
    let _ = Command::new("true").status();
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // A new file, a deleted one, and a directory replaced whole (overlay
    // makes it opaque).
    let o = e.cmd(&["run", "--name", "changed2", "app:1", "sh", "-c",
        "echo new > /srv/added && ln /srv/added /srv/linked && rm /etc/os-release && mkdir -p /d && rm -rf /tmp && mkdir /tmp && echo t > /tmp/only"]);
    assert!(o.status.success(), "{}", text(&o));
    let id = e
        .ok(&["commit", "-m", "my change", "changed2", "committed:1"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let hist = e.ok(&["history", "committed:1"]);
    assert!(
        hist.contains("skiff commit") && hist.contains("my change"),
        "{hist}"
    );
    let o = e.cmd(&["run", "--rm", "committed:1", "sh", "-c",
        "cat /srv/added; ls /etc/os-release 2>&1 | grep -c 'No such'; ls /tmp; stat -c %h /srv/linked"]);
    assert_eq!(out(&o), "new\n1\nonly\n2\n", "{}", text(&o));
    // The committed image leaves as an archive Podman could load, and its
    // layer checks clean.
    assert!(e.ok(&["system", "check"]).starts_with("ok"));
    e.ok(&["rm", "changed2"]);
    e.ok(&["rmi", "committed:1"]);
}

/// Resource, capability, mount and limit flags, seen from inside.
#[test]
fn limits_capabilities_and_mounts_apply() {
    need!("docker-registry", "skopeo");
    if !have_controllers(&["memory", "pids", "cpu"]) {
        return;
    }
    let f = fixture();
    let e = &f.e;
    // Memory and pids limits, as the container's own cgroup files say.
    let o = e.cmd(&[
        "run", "--rm", "-m", "64m", "--pids-limit", "33", "--cpus", "0.5", "app:1", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max",
    ]);
    assert_eq!(out(&o), "67108864\n33\n50000\n", "{}", text(&o));
    // Capabilities: NET_RAW (bit 13) dropped, NET_ADMIN (12) added.
    let caps = |args: &[&str]| -> u64 {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend([
            "app:1",
            "sh",
            "-c",
            "grep CapEff /proc/self/status | cut -f2",
        ]);
        let o = e.cmd(&all);
        u64::from_str_radix(out(&o).trim(), 16).unwrap_or_else(|_| panic!("{}", text(&o)))
    };
    let default = caps(&[]);
    assert_eq!(default & (1 << 13), 1 << 13, "NET_RAW is in Docker's set");
    assert_eq!(default & (1 << 12), 0);
    let changed = caps(&["--cap-drop", "net_raw", "--cap-add", "NET_ADMIN"]);
    assert_eq!(changed & (1 << 13), 0);
    assert_eq!(changed & (1 << 12), 1 << 12);
    assert_eq!(caps(&["--cap-drop", "ALL"]), 0);
    // A bind mount (read-write and read-only), a tmpfs, an rlimit and
    // no_new_privs.
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("in"), "from-host\n").unwrap();
    let vol = format!("{}:/data", host.path().display());
    let rov = format!("{}:/ro:ro", host.path().display());
    let o = e.cmd(&[
        "run", "--rm", "-v", &vol, "-v", &rov, "--tmpfs", "/scratch:size=1m", "--ulimit", "nofile=512:1024",
        "--security-opt", "no-new-privileges", "app:1", "sh", "-c",
        "cat /data/in; echo w > /data/out; touch /ro/x 2>/dev/null || echo ro-refused; \
         grep -c ' /scratch tmpfs' /proc/mounts; ulimit -n; grep NoNewPrivs /proc/self/status | cut -f2",
    ]);
    assert_eq!(
        out(&o),
        "from-host\nro-refused\n1\n512\n1\n",
        "{}",
        text(&o)
    );
    assert_eq!(fs::read_to_string(host.path().join("out")).unwrap(), "w\n");
    // Bad values are refused by flag, before anything is made.
    run_refuses(
        e,
        &[
            (vec!["-m", "lots"], "--memory"),
            (vec!["--cpus", "-1"], "--cpus"),
            (vec!["-v", "./relative:/x"], "-v"),
            (vec!["-v", "vol:relative"], "-v"),
            (vec!["--mount", "type=nfs,target=/x"], "--mount"),
            (vec!["--ulimit", "nofile=9:1"], "--ulimit"),
            (vec!["--cap-add", "bad name"], "--cap-add"),
            (vec!["--cap-add", "BOGUS"], "--cap-add \"BOGUS\""),
            (vec!["--cap-drop", "CAP_NOPE"], "--cap-drop"),
            (vec!["--security-opt", "apparmor=x"], "--security-opt"),
        ],
    );
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// Docker's default seccomp profile (containers-common's file, which
/// Podman uses) applies unless another is chosen; a profile file in
/// Docker's format is taken; unconfined turns it off.
#[test]
fn seccomp_default_profile_file_and_unconfined() {
    need!("docker-registry", "skopeo");
    if !std::path::Path::new("/usr/share/containers/seccomp.json").exists() {
        eprintln!("skipped: no /usr/share/containers/seccomp.json (containers-common)");
        return;
    }
    let f = fixture();
    let e = &f.e;
    let mode = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend([
            "app:1",
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status | cut -f2",
        ]);
        let o = e.cmd(&all);
        assert!(o.status.success(), "{}", text(&o));
        out(&o).trim().to_string()
    };
    assert_eq!(mode(&[]), "2", "no filter by default");
    assert_eq!(mode(&["--security-opt", "seccomp=unconfined"]), "0");
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("p.json");
    fs::write(
        &prof,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", prof.display());
    let o = e.cmd(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "app:1",
        "sh",
        "-c",
        "mkdir /tmp/x 2>&1; echo $?",
    ]);
    let got = out(&o);
    assert!(
        got.contains("Operation not permitted") && got.trim_end().ends_with('1'),
        "{}",
        text(&o)
    );
    fs::write(&prof, "{not json").unwrap();
    let o = e.cmd(&["run", "--rm", "--security-opt", &opt, "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--security-opt"), "{}", text(&o));
}

/// pause/unpause (the processes frozen: a counter stops), rename, top,
/// container prune.
#[test]
fn pause_rename_top_and_prune() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "app:1",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done",
    ]);
    let read = || {
        e.ok(&["exec", "counter", "cat", "/tmp/n"])
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    eventually("the counter counts", || read() > 0);
    e.ok(&["pause", "counter"]);
    assert!(e.ok(&["ps"]).contains("(Paused)"));
    let err = e.fails(&["exec", "counter", "true"]);
    assert!(err.contains("paused"), "{err}");
    let merged = e.root().join("containers");
    let id = e
        .ok(&["inspect", "--format", "{{.Id}}", "counter"])
        .trim()
        .to_string();
    let n_file = merged.join(&id).join("rootfs/tmp/n");
    let a = fs::read_to_string(&n_file).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_to_string(&n_file).unwrap(),
        a,
        "the counter ran while paused"
    );
    e.ok(&["unpause", "counter"]);
    let before = read();
    eventually("the counter goes on after unpause", || read() > before);
    let top = e.ok(&["top", "counter"]);
    assert!(
        top.contains("PID") && top.contains("sleep") || top.contains("sh -c"),
        "{top}"
    );
    e.ok(&["rename", "counter", "renamed"]);
    assert!(e.ok(&["ps"]).contains("renamed"));
    e.ok(&["run", "-d", "--name", "other", "app:1", "sleep", "1000"]);
    let err = e.fails(&["rename", "renamed", "other"]);
    assert!(err.contains("already in use"), "{err}");
    e.ok(&["rm", "-f", "other"]);
    e.ok(&["stop", "-t", "1", "renamed"]);
    e.ok(&["run", "--name", "done", "app:1", "true"]);
    let pruned = e.ok(&["container", "prune", "-f"]);
    assert_eq!(pruned.lines().count(), 2, "{pruned}");
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// stats (memory against the -m limit, processes) and diff (A, C, D).
#[test]
fn stats_and_diff() {
    need!("docker-registry", "skopeo");
    if !have_controllers(&["memory", "pids"]) {
        return;
    }
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "app:1",
        "sh",
        "-c",
        "echo x > /srv/new; echo y >> /etc/os-release; rm /notexec; sleep 1000 & sleep 1000",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut d = String::new();
    while std::time::Instant::now() < deadline {
        d = e.ok(&["diff", "busy"]);
        if d.contains("/notexec") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for want in ["A /srv/new", "C /etc/os-release", "D /notexec", "C /srv"] {
        assert!(d.lines().any(|l| l == want), "missing {want:?} in:\n{d}");
    }
    // Not the stubs the runtime made for its mounts (Podman's diff).
    for stub in [
        "/dev",
        "/proc",
        "/sys",
        "/etc/hosts",
        "/etc/hostname",
        "/run",
        "/run/.containerenv",
    ] {
        assert!(!d.lines().any(|l| l[2..] == *stub), "{stub} listed:\n{d}");
    }
    // Podman's: /run/.containerenv marks a container; /etc/hosts starts
    // from the host's and names the host at the network's gateway.
    let hosts = e.ok(&["exec", "busy", "cat", "/etc/hosts", "/run/.containerenv"]);
    let gateway = e.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Gateway}}",
        "busy",
    ]);
    assert!(
        hosts.contains(&format!("{}\thost.containers.internal\n", gateway.trim())),
        "{hosts}"
    );
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "host", "app:1", "hostname"]),
        host_name
    );
    let s = e.ok(&["stats", "--no-stream", "busy"]);
    let row = s.lines().nth(1).unwrap_or_default().to_string();
    assert!(s.starts_with("CONTAINER ID") && row.contains("busy"), "{s}");
    assert!(row.contains("/ 64.00MiB"), "{s}");
    let pids: u32 = row.split_whitespace().last().unwrap().parse().unwrap();
    assert!(pids >= 2, "{s}");
    e.ok(&["rm", "-f", "busy"]);
}

/// --init: pid 1 is the tiny init, which hands `stop`'s SIGTERM on to the
/// command (sleep, which as pid 1 would ignore it), so stop does not wait
/// out its timeout, and the exit code is the command's (143).
#[test]
fn init_forwards_signals_and_reaps() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let o = e.cmd(&[
        "run",
        "--rm",
        "--init",
        "app:1",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        out(&o).starts_with("/dev/init __init -- sh"),
        "{}",
        text(&o)
    );
    e.ok(&[
        "run", "-d", "--init", "--name", "slp", "app:1", "sleep", "1000",
    ]);
    let t0 = Instant::now();
    e.ok(&["stop", "-t", "20", "slp"]);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop waited for the timeout"
    );
    assert_eq!(e.ok(&["wait", "slp"]).trim(), "143");
    e.ok(&["rm", "slp"]);
}

/// The log is rotated by size (--log-opt), and a long line is kept in
/// parts that `logs` joins again.
#[test]
fn logs_rotate_by_size_and_long_lines_come_back_whole() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let id = e.ok(&["run", "-d", "--log-opt", "max-size=4k", "--log-opt", "max-file=2", "app:1", "sh", "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i-0123456789012345678901234567890123456789; i=$((i+1)); done"]).trim().to_string();
    assert_eq!(e.ok(&["wait", &id]).trim(), "0");
    let dir = e.root().join("containers").join(&id);
    let size = |n: &str| fs::metadata(dir.join(n)).map(|m| m.len()).unwrap_or(0);
    assert!(
        size("ctr.log") <= 4096 && size("ctr.log.1") > 0 && size("ctr.log.1") <= 4096,
        "{} {}",
        size("ctr.log"),
        size("ctr.log.1")
    );
    assert!(!dir.join("ctr.log.2").exists(), "more files than max-file");
    let logs = e.ok(&["logs", &id]);
    assert!(
        logs.ends_with("line-299-0123456789012345678901234567890123456789\n"),
        "{logs}"
    );
    assert!(
        !logs.contains("line-0-"),
        "the oldest lines should have been rotated away"
    );
    let lines: Vec<&str> = logs.lines().collect();
    let first: usize = lines[0].split('-').nth(1).unwrap().parse().unwrap();
    assert_eq!(lines.len(), 300 - first, "lines missing between the files");
    e.ok(&["rm", &id]);
    // A 40 KB line without a break: written in parts, read back whole.
    let o = e.cmd(&[
        "run",
        "--name",
        "long",
        "app:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 4000 ]; do printf 0123456789; i=$((i+1)); done; echo",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let logs = e.ok(&["logs", "long"]);
    assert_eq!(logs.len(), 40001);
    assert_eq!(logs, out(&o));
    e.ok(&["rm", "long"]);
    let o = e.cmd(&["run", "--rm", "--log-opt", "max-size=1", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--log-opt"), "{}", text(&o));
}

/// Polls `cond` for up to 20 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// --restart as Docker keeps it: on-failure:2 runs a failing container
/// three times, always restarts until stop, and a container that exited
/// starts again; restart, --stop-signal, --stop-timeout, --label and
/// bad policies.
#[test]
fn restart_policies_and_restart() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // on-failure:2: three runs, the last exit code kept, RestartCount 2.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "app:1",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    eventually("three runs of flaky", || {
        let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "flaky"])).unwrap();
        doc[0]["State"]["Status"] == "exited" && doc[0]["RestartCount"] == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "flaky"])).unwrap();
    assert_eq!(doc[0]["RestartCount"], 2, "{doc}");
    assert_eq!(doc[0]["State"]["ExitCode"], 3);
    assert_eq!(doc[0]["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(e.ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    // on-failure does not restart a clean exit.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "clean",
        "--restart",
        "on-failure",
        "app:1",
        "true",
    ]);
    assert_eq!(e.ok(&["wait", "clean"]).trim(), "0");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(e.ok(&["logs", "clean"]), "");
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "clean"])).unwrap();
    assert_eq!(doc[0]["RestartCount"], 0);

    // always: a container that ends comes back; stop lets it rest; start
    // runs an exited container again; restart stops and starts it.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "--stop-signal",
        "INT",
        "--stop-timeout",
        "1",
        "--label",
        "tier=web",
        "app:1",
        "sh",
        "-c",
        "echo up; trap 'echo got-int; exit 0' INT; sleep 0.3 & wait",
    ]);
    eventually("loop restarted twice", || {
        e.ok(&["logs", "loop"]).matches("up").count() >= 3
    });
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "loop"])).unwrap();
    assert_eq!(doc[0]["Config"]["Labels"]["tier"], "web", "{doc}");
    assert_eq!(doc[0]["Config"]["StopSignal"], "SIGINT");
    assert_eq!(doc[0]["Config"]["StopTimeout"], 1);
    e.ok(&["stop", "loop"]);
    std::thread::sleep(Duration::from_millis(800));
    let ups = e.ok(&["logs", "loop"]).matches("up").count();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        e.ok(&["logs", "loop"]).matches("up").count(),
        ups,
        "restarted after stop"
    );
    assert!(
        e.ok(&["ps", "-a"]).contains("Exited"),
        "{}",
        e.ok(&["ps", "-a"])
    );
    e.ok(&["rm", "-f", "loop"]);

    // A stop between two runs (the back-off): no run comes after it.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "quick",
        "--restart",
        "always",
        "app:1",
        "sh",
        "-c",
        "echo q",
    ]);
    eventually("quick ran twice", || {
        e.ok(&["logs", "quick"]).matches('q').count() >= 2
    });
    // Between two runs it reads as Docker's: restarting, and running.
    eventually("quick seen restarting", || {
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}}",
            "quick",
        ]) == "restarting true true\n"
    });
    eventually("quick listed restarting", || {
        e.ok(&[
            "ps",
            "-a",
            "--filter",
            "status=restarting",
            "--format",
            "{{.Names}} {{.Status}}",
        ])
        .starts_with("quick Restarting (0) ")
    });
    e.ok(&["stop", "quick"]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Restarting}}",
            "quick"
        ]),
        "exited false\n"
    );
    let runs = e.ok(&["logs", "quick"]).matches('q').count();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        e.ok(&["logs", "quick"]).matches('q').count(),
        runs,
        "a run after stop"
    );
    // start runs it again, rm -f ends it (and its monitor) for good.
    e.ok(&["start", "quick"]);
    eventually("quick ran again", || {
        e.ok(&["logs", "quick"]).matches('q').count() > runs
    });
    e.ok(&["rm", "-f", "quick"]);
    assert!(!e.ok(&["ps", "-a"]).contains("quick"));

    // start of an exited container, and restart of a running one.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "app:1",
        "sh",
        "-c",
        "echo hello; sleep 1000",
    ]);
    e.ok(&["stop", "-t", "0", "again"]);
    e.ok(&["start", "again"]);
    eventually("again running", || e.ok(&["ps"]).contains("again"));
    let pid1 = serde_json::from_str::<Value>(&e.ok(&["container", "inspect", "again"])).unwrap()[0]
        ["State"]["Pid"]
        .clone();
    e.ok(&["restart", "-t", "0", "again"]);
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "again"])).unwrap();
    assert_eq!(doc[0]["State"]["Status"], "running");
    assert_ne!(doc[0]["State"]["Pid"], pid1, "restart kept the old process");
    // The third run's line is logged as it comes, maybe just after
    // restart returned (seen under load).
    eventually("the third run's hello", || {
        e.ok(&["logs", "again"]).matches("hello").count() == 3
    });
    e.ok(&["rm", "-f", "again"]);

    // Bad input names the flag, nothing made.
    for (flags, named) in [
        (&["--restart", "sometimes"][..], "--restart"),
        (&["--restart", "always:3"][..], "--restart"),
        (&["--restart", "always", "--rm"][..], "--rm"),
        (&["--stop-signal", "NOPE"][..], "--stop-signal"),
        (&["--label", "=x"][..], "--label"),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend(["app:1", "true"]);
        let o = e.cmd(&args);
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{flags:?}: {}", text(&o));
    }
    for name in ["flaky", "clean"] {
        e.ok(&["rm", name]);
    }
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// --privileged, --device and --group-add, seen from inside.
#[test]
fn privileged_devices_and_groups() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let probe =
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev/loop-control 2>&1 | head -1; \
                 grep -c ' /sys .*rw' /proc/self/mounts; id -G";
    let o = e.cmd(&["run", "--rm", "app:1", "sh", "-c", probe]);
    let plain = out(&o);
    assert!(plain.contains("Seccomp:\t2"), "{}", text(&o));
    assert!(
        plain.contains("No such file"),
        "no host devices by default: {plain}"
    );
    let o = e.cmd(&["run", "--rm", "--privileged", "app:1", "sh", "-c", probe]);
    let privileged = out(&o);
    // Every capability this host's root has (its bounding set).
    let host_bounding = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .unwrap();
    assert!(
        privileged.contains(&format!("CapEff:\t{host_bounding}")),
        "{host_bounding}: {}",
        text(&o)
    );
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
    if std::path::Path::new("/dev/loop-control").exists() {
        assert!(privileged.contains("/dev/loop-control\n"), "{privileged}");
    }
    // --device: the node, readable, and only it.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--device",
        "/dev/zero:/dev/zz:r",
        "app:1",
        "sh",
        "-c",
        "head -c 4 /dev/zz | od -An -tx1; stat -c '%t:%T' /dev/zz",
    ]);
    assert_eq!(out(&o), " 00 00 00 00\n1:5\n", "{}", text(&o));
    let o = e.cmd(&["run", "--rm", "--device", "/etc/passwd", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--device"), "{}", text(&o));
    // --group-add by name (the image's /etc/group) and by number.
    let o = e.cmd(&[
        "run",
        "--rm",
        "-u",
        "web",
        "--group-add",
        "extra",
        "--group-add",
        "4242",
        "app:1",
        "id",
        "-G",
    ]);
    let ids = out(&o);
    let groups: Vec<&str> = ids.split_whitespace().collect();
    assert!(
        groups.contains(&"1003") && groups.contains(&"4242"),
        "{}",
        text(&o)
    );
    let o = e.cmd(&["run", "--rm", "--group-add", "nosuchgroup", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--group-add"), "{}", text(&o));
}

/// `cp` both ways and as tar streams, as docker cp: into an existing
/// directory under the source's name, else as the named path; symlinks in
/// the container resolve inside it (a link to / is the container's /, not
/// the host's); owners root unless -a; a running container is frozen
/// meanwhile and runs on after.
#[test]
fn cp_copies_both_ways_and_stays_inside_the_container() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run", "-d", "--name", "box", "app:1", "sh", "-c",
        "mkdir -p /data/sub && echo inside > /data/sub/f && ln -s / /data/root && ln -s /etc/hostname /data/hn && touch /ready && exec sleep 1000",
    ]);
    let box_ready = || {
        e.cmd(&["exec", "box", "sh", "-c", "test -e /ready"])
            .status
            .success()
    };
    eventually("box ready", box_ready);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    // Out: a directory into an existing one, a file under a new name.
    e.ok(&["cp", "box:/data", t.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(t.join("data/sub/f")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        fs::read_link(t.join("data/root")).unwrap(),
        std::path::Path::new("/")
    );
    e.ok(&["cp", "box:/data/sub/f", t.join("renamed").to_str().unwrap()]);
    assert_eq!(fs::read_to_string(t.join("renamed")).unwrap(), "inside\n");
    // Through a symlink of the container's: its own root, never the host's.
    e.ok(&[
        "cp",
        "box:/data/root/etc/hostname",
        t.join("hn").to_str().unwrap(),
    ]);
    let inside_hostname = e.ok(&["exec", "box", "sh", "-c", "cat /etc/hostname"]);
    assert_eq!(fs::read_to_string(t.join("hn")).unwrap(), inside_hostname);
    // As a tar stream.
    let o = e.cmd(&["cp", "box:/data/sub", "-"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|en| en.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["sub", "sub/f"], "{names:?}");

    // In: a host directory into the container's /tmp, a file as a new
    // name, owned by root; -a keeps the host's owner.
    fs::create_dir_all(t.join("site/css")).unwrap();
    fs::write(t.join("site/index.html"), "hello\n").unwrap();
    fs::write(t.join("site/css/a.css"), "b{}\n").unwrap();
    std::os::unix::fs::chown(t.join("site/index.html"), Some(1234), Some(1234)).unwrap();
    e.ok(&["cp", t.join("site").to_str().unwrap(), "box:/tmp"]);
    let o = e.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "cat /tmp/site/index.html /tmp/site/css/a.css; stat -c %u /tmp/site/index.html",
    ]);
    assert_eq!(o, "hello\nb{}\n0\n");
    e.ok(&[
        "cp",
        "-a",
        t.join("site/index.html").to_str().unwrap(),
        "box:/tmp/kept.html",
    ]);
    assert_eq!(
        e.ok(&["exec", "box", "sh", "-c", "stat -c %u /tmp/kept.html"]),
        "1234\n"
    );
    // Into a symlink to /: the container's root.
    e.ok(&[
        "cp",
        t.join("renamed").to_str().unwrap(),
        "box:/data/root/copied",
    ]);
    assert_eq!(
        e.ok(&["exec", "box", "sh", "-c", "cat /copied"]),
        "inside\n"
    );
    assert!(
        !std::path::Path::new("/copied").exists(),
        "cp wrote to the host's /"
    );
    // The container ran on.
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "box"])).unwrap();
    assert_eq!(doc[0]["State"]["Status"], "running");

    // Bad input: no container side, a missing path, a stream into a file.
    for (args, named) in [
        (&["cp", "/etc/hostname", "/tmp/x"][..], "CONTAINER:PATH"),
        (&["cp", "box:/nope/nothing", "/tmp"][..], "/nope"),
        (&["cp", "nosuch:/etc", "/tmp"][..], "nosuch"),
    ] {
        let o = e.cmd(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    e.ok(&["rm", "-f", "box"]);
}

/// Runs `skiff attach NAME` on a pty of its own (script(1) makes one),
/// feeding it `input`: (exit code, what it printed).
fn attach_on_a_pty(e: &Engine, name: &str, input: &[u8]) -> (Option<i32>, String) {
    attach_with(e, name, "", input)
}

/// The same, with more flags for attach.
fn attach_with(e: &Engine, name: &str, flags: &str, input: &[u8]) -> (Option<i32>, String) {
    let id = e
        .ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string();
    // The container's monitor (`skiff __monitor ID`) binds its attach
    // socket as /proc/PID/fd/N/attach.sock.
    let monitor = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find(|p| {
            let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("__monitor") && cmdline.contains(&id)
        })
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("/proc/{monitor}/fd/");
    // Attached: the socket has a connection beside its listener (the
    // client makes its terminal raw right after connecting).
    let attached = move || {
        let table = fs::read_to_string("/proc/net/unix").unwrap_or_default();
        table
            .lines()
            .filter_map(|l| l.rsplit(' ').next())
            .filter(|path| path.starts_with(&prefix) && path.ends_with("/attach.sock"))
            .count()
            > 1
    };
    on_a_pty(e, &format!("attach {flags} {name}"), input, &attached)
}

/// `skiff ARGS` on a pty of its own (script(1) makes one), fed `input`
/// once `ready` holds (then the client's terminal is raw: a ctrl-q typed
/// before is the line discipline's, flow control): (exit code, what it
/// printed).
fn on_a_pty(
    e: &Engine,
    args: &str,
    input: &[u8],
    ready: &dyn Fn() -> bool,
) -> (Option<i32>, String) {
    use std::io::Write;
    let cmd = format!(
        "{} --root {} {args}",
        env!("CARGO_BIN_EXE_skiff"),
        e.root().display()
    );
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", "20", "script", "-qefc", &cmd, "/dev/null"])
        .env("SKIFF_OCI", std::env::var("SKIFF_OCI").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Ready once `name` runs (a foreground run starts its container only
/// after its client attached).
fn runs<'a>(e: &'a Engine, name: &'a str) -> impl Fn() -> bool + 'a {
    move || {
        e.cmd(&["inspect", "--format", "{{.State.Status}}", name])
            .stdout
            .starts_with(b"running")
    }
}

/// -d -t: a terminal the monitor keeps (its output in the log), attach
/// with input, resize and the container's exit code; ctrl-p ctrl-q leaves
/// it running; -d -i keeps a pipe to stdin; exec -d.
#[test]
fn detached_terminals_attach_and_exec_detached() {
    need!("docker-registry", "skopeo", "script");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "-t",
        "-i",
        "--name",
        "term",
        "app:1",
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo tty:yes; read line; echo got:$line; exit 4",
    ]);
    eventually("the terminal's first line", || {
        e.ok(&["logs", "term"]).contains("tty:yes")
    });
    let (code, out) = attach_on_a_pty(e, "term", b"hello\r");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("got:hello"), "{out}");
    assert!(e.ok(&["logs", "term"]).contains("got:hello"));

    // ctrl-p ctrl-q: attach ends, the container runs on.
    e.ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "stay",
        "app:1",
        "sh",
        "-c",
        "while true; do sleep 1; done",
    ]);
    let (code, _) = attach_on_a_pty(e, "stay", b"\x10\x11");
    assert_eq!(code, Some(0));
    // Keys of one's own: ctrl-a then d.
    let (code, _) = attach_with(e, "stay", "--detach-keys ctrl-a,d", b"\x01d");
    assert_eq!(code, Some(0));
    let o = e.cmd(&["attach", "--detach-keys", "alt-x", "stay"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--detach-keys"), "{}", text(&o));
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "stay"])).unwrap();
    assert_eq!(doc[0]["State"]["Status"], "running");

    // -d -i without a terminal: attach's stdin reaches the container.
    e.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "pipe",
        "app:1",
        "sh",
        "-c",
        "read l; echo piped:$l",
    ]);
    let root = e.root().display().to_string();
    let mut child = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "20",
            skiff_bin(),
            "--root",
            &root,
            "attach",
            "pipe",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"through\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "piped:through\n");
    assert_eq!(o.status.code(), Some(0));

    // exec -d: started and left; attach to a stopped one is refused.
    e.ok(&["exec", "-d", "stay", "sh", "-c", "echo bg > /tmp/bg"]);
    // It returns at once, printing the session's id (Podman's), while
    // the process goes on.
    let t0 = Instant::now();
    let session = e.ok(&["exec", "-d", "stay", "sleep", "30"]);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "exec -d waited for its process"
    );
    assert!(
        session.trim().len() == 64 && session.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "{session}"
    );
    eventually("the detached exec ran", || {
        e.cmd(&["exec", "stay", "sh", "-c", "cat /tmp/bg"]).stdout == b"bg\n"
    });
    let o = e.cmd(&["attach", "term"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("not running"), "{}", text(&o));
    for name in ["term", "stay", "pipe"] {
        e.ok(&["rm", "-f", name]);
    }
}

/// A foreground `run -t`, as Docker's: the output from its first byte, the
/// input, the exit code, --rm; the detach keys (ctrl-p ctrl-q, or
/// --detach-keys) leave it running; bad keys create nothing.
#[test]
fn foreground_terminal_runs_attach_and_detach() {
    need!("docker-registry", "skopeo", "script");
    let f = fixture();
    let e = &f.e;
    let (code, out) = on_a_pty(
        e,
        "run -i -t --rm --name fg app:1 sh -c 'echo first; read l; echo got:$l; exit 5'",
        b"hi\r",
        &runs(e, "fg"),
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("first") && out.contains("got:hi"), "{out}");
    eventually("--rm removed it", || !e.ok(&["ps", "-a"]).contains("fg"));
    // Output that comes at once is not lost to a late attach.
    let (code, out) = on_a_pty(e, "run -t --rm app:1 echo quick", b"", &|| true);
    assert_eq!((code, out.contains("quick")), (Some(0), true), "{out}");

    let (code, out) = on_a_pty(
        e,
        "run -it --name stay app:1 sh -c 'while true; do sleep 1; done'",
        b"\x10\x11",
        &runs(e, "stay"),
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = on_a_pty(
        e,
        "run -it --detach-keys ctrl-x,y --name mine app:1 sleep 100",
        b"\x18y",
        &runs(e, "mine"),
    );
    assert_eq!(code, Some(0), "{out}");
    for name in ["stay", "mine"] {
        let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", name])).unwrap();
        assert_eq!(doc[0]["State"]["Status"], "running", "{name}");
    }
    let before = e.ok(&["ps", "-a", "-q"]).lines().count();
    let o = e.cmd(&["run", "-t", "--detach-keys", "alt-x", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--detach-keys"), "{}", text(&o));
    assert_eq!(e.ok(&["ps", "-a", "-q"]).lines().count(), before);
    for name in ["stay", "mine"] {
        e.ok(&["rm", "-f", name]);
    }
}

/// GET http://127.0.0.1:PORT/PATH from the host; the body, or None.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// Networks as Docker's users know them: a user network whose containers
/// reach each other by name, a port published on the host's loopback,
/// another network kept out, none and container:NAME, and nothing of it
/// left after rm and network rm (bridge, veth, address lease, rules).
#[test]
fn networks_names_published_ports_and_cleanup() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    e.ok(&["network", "create", "--subnet", "10.122.200.0/24", "front"]);
    let doc: Value = serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    let bridge = doc[0]["network_interface"].as_str().unwrap().to_string();
    // Podman's columns (NETWORK ID, NAME, DRIVER); the id is the
    // sha256 of the name.
    let id = sha(b"front").trim_start_matches("sha256:").to_string();
    assert!(
        e.ok(&["network", "ls"])
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [&id[..12], "front", "bridge"]),
        "{}",
        e.ok(&["network", "ls"])
    );
    assert_eq!(doc[0]["id"], id.as_str());
    e.ok(&[
        "network",
        "create",
        "--label",
        "team=a",
        "--label",
        "tier",
        "--subnet",
        "10.122.209.0/24",
        "labelled",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["network", "inspect", "labelled"])).unwrap();
    assert_eq!(doc[0]["labels"], json!({"team": "a", "tier": ""}));
    assert_eq!(
        e.ok(&[
            "network",
            "ls",
            "--filter",
            "label=team=a",
            "--format",
            "{{.Name}} {{.Labels}}"
        ]),
        "labelled team=a,tier=\n"
    );
    assert_eq!(
        e.ok(&[
            "network",
            "ls",
            "--noheading",
            "--filter",
            "name=front",
            "--filter",
            "driver=bridge"
        ])
        .lines()
        .count(),
        1
    );
    assert!(e
        .ok(&["network", "ls", "--no-trunc", "--filter", "name=front"])
        .contains(&id));
    e.ok(&["network", "rm", "labelled"]);
    for (args, named) in [
        (
            &["network", "create", "--driver", "macvlan", "m"][..],
            "--driver",
        ),
        (
            &["network", "create", "-o", "mtu=1400", "m"][..],
            "--opt \"mtu=1400\"",
        ),
        (&["network", "ls", "--filter", "size=1"][..], "--filter"),
    ] {
        let err = e.fails(args);
        assert!(err.contains(named), "{args:?}: {err}");
    }
    for (args, named) in [
        (&["network", "create", "front"][..], "already exists"),
        (
            &["network", "create", "--subnet", "junk", "x"][..],
            "--subnet",
        ),
        (
            &["network", "create", "--subnet", "10.122.200.0/25", "y"][..],
            "overlaps",
        ),
        (&["network", "rm", "skiff"][..], "default"),
        (
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-p",
                "80",
                "app:1",
                "true",
            ][..],
            "-p",
        ),
        (
            &["run", "--rm", "-p", "80/sctp", "app:1", "true"][..],
            "sctp",
        ),
    ] {
        let o = e.cmd(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "-p",
        &publish,
        "app:1",
        "sh",
        "-c",
        "busybox mkdir -p /www && echo hello-web > /www/index.html && exec busybox httpd -f -p 80 -h /www",
    ]);
    // By name from another container of the network (its /etc/hosts names
    // web), and from the host.
    eventually("web answers by name", || {
        let o = e.cmd(&[
            "run",
            "--rm",
            "--network",
            "front",
            "app:1",
            "sh",
            "-c",
            "busybox wget -qO- http://web/index.html",
        ]);
        out(&o) == "hello-web\n"
    });
    eventually("the published port answers", || {
        http_get(port, "/index.html").as_deref() == Some("hello-web\n")
    });
    assert_eq!(
        e.ok(&["port", "web"]),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "web"])).unwrap();
    let ip = doc[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.122.200."), "{doc}");
    // Another network's container is kept out; the container's own
    // namespace can be joined.
    let o = e.cmd(&[
        "run",
        "--rm",
        "app:1",
        "sh",
        "-c",
        // (nc -w bounds the connect: busybox's timeout could not end a
        // wget stuck in one.)
        &format!("busybox nc -w 2 {ip} 80 </dev/null"),
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "the default network reached front: {}",
        text(&o)
    );
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "app:1",
        "sh",
        "-c",
        "busybox wget -qO- http://127.0.0.1/index.html",
    ]);
    assert_eq!(out(&o), "hello-web\n", "{}", text(&o));
    // --ip, --add-host, --dns.
    let o = e.cmd(&[
        "run", "--rm", "--network", "front", "--ip", "10.122.200.50", "--add-host",
        "db.local:10.9.9.9", "--dns", "10.1.1.1", "app:1", "sh", "-c",
        "grep -c 10.122.200.50 /etc/hosts; grep db.local /etc/hosts; grep nameserver /etc/resolv.conf",
    ]);
    assert_eq!(
        out(&o),
        "1\n10.9.9.9\tdb.local\nnameserver 10.1.1.1\n",
        "{}",
        text(&o)
    );
    for (args, named) in [
        (
            &[
                "run",
                "--rm",
                "--network",
                "front",
                "--ip",
                "10.5.0.9",
                "app:1",
                "true",
            ][..],
            "--ip",
        ),
        (
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--ip",
                "10.122.200.9",
                "app:1",
                "true",
            ][..],
            "--ip",
        ),
        (
            &["run", "--rm", "--add-host", "nocolon", "app:1", "true"][..],
            "--add-host",
        ),
        (
            &["run", "--rm", "--dns", "notanip", "app:1", "true"][..],
            "--dns",
        ),
    ] {
        let o = e.cmd(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "grep",
        "-c",
        ":",
        "/proc/net/dev",
    ]);
    assert_eq!(out(&o), "1\n", "none has loopback only: {}", text(&o));
    // A network in use stays; then everything goes.
    let o = e.cmd(&["network", "rm", "front"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    e.ok(&["rm", "-f", "web"]);
    assert!(
        http_get(port, "/index.html").is_none(),
        "the port still answers"
    );
    e.ok(&["network", "rm", "front"]);
    let rules = Command::new("iptables-save").output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains("10.122.200."), "rules left:\n{rules}");
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&bridge),
        "the bridge {bridge} is left"
    );
    assert!(
        !std::path::Path::new("/var/lib/cni/networks/front").exists(),
        "leases left"
    );
}

/// Volumes as Docker keeps them: a named one made on first use and filled
/// from the image, kept across containers; an anonymous one (-v PATH)
/// removed by rm -v; --volumes-from; ls, inspect, rm (refused in use),
/// prune.
#[test]
fn volumes_keep_data_are_filled_from_the_image_and_go_with_rm_v() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // First use: made, and filled from what the image has at /etc.
    let o = e.cmd(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "-v",
        "conf:/etc",
        "-v",
        "/scratch",
        "app:1",
        "sh",
        "-c",
        "cat /etc/os-release; echo kept > /etc/note; echo tmp > /scratch/x",
    ]);
    assert_eq!(out(&o), "NAME=skiff-test\n", "{}", text(&o));
    let ls = e.ok(&["volume", "ls", "-q"]);
    assert!(ls.lines().any(|l| l == "conf"), "{ls}");
    assert_eq!(
        ls.lines().count(),
        2,
        "a named and an anonymous volume: {ls}"
    );
    let doc: Value = serde_json::from_str(&e.ok(&["volume", "inspect", "conf"])).unwrap();
    assert_eq!(doc[0]["Driver"], "local");
    // In use: not removed (Podman's code, 2).
    let o = e.cmd(&["volume", "rm", "conf"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("in use"), "{}", text(&o));
    // --volumes-from, read-only.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "writer:ro",
        "app:1",
        "sh",
        "-c",
        "cat /etc/note /scratch/x; echo no > /etc/other 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out(&o), "kept\ntmp\nread-only\n", "{}", text(&o));
    // rm -v: the anonymous volume goes, the named one stays with its data.
    e.ok(&["rm", "-v", "writer"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "conf\n");
    // run --rm: its anonymous volumes go with it.
    e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/anon",
        "--mount",
        "type=volume,target=/x",
        "app:1",
        "true",
    ]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "conf\n");
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "conf:/mnt:ro",
        "app:1",
        "cat",
        "/mnt/note",
        "/mnt/passwd",
    ]);
    assert!(out(&o).starts_with("kept\nroot:x:0:0"), "{}", text(&o));
    // Bad input, and prune (anonymous only, unless --all).
    for (args, named) in [
        (
            &["run", "--rm", "-v", "x:/etc", "app:1", "true"][..],
            "volume",
        ),
        (
            &["run", "--rm", "-v", "conf:/mnt:rx", "app:1", "true"][..],
            "\"rx\"",
        ),
    ] {
        let o = e.cmd(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    // Not there: Podman's code, 1.
    let o = e.cmd(&["volume", "rm", "nosuchvolume"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nosuchvolume"), "{}", text(&o));
    // An image's VOLUME: an anonymous volume, filled from the image.
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("vol"));
    let d = l.image_with(
        &[busybox_layer()],
        Z::Gzip,
        "amd64",
        json!({"Cmd": ["cat", "/etc/os-release"], "Env": ["PATH=/bin"], "Volumes": {"/etc": {}}}),
    );
    l.tag(&d, "1");
    f._reg.push_layout(&l.dir, "1", "vol:1", false);
    e.ok(&["pull", "-q", &format!("{}/vol:1", f._reg.addr())]);
    let o = e.cmd(&["run", "--name", "withvol", "--network", "none", "vol:1"]);
    assert_eq!(out(&o), "NAME=skiff-test\n", "{}", text(&o));
    let anon: Vec<String> = e
        .ok(&["volume", "ls", "-q"])
        .lines()
        .filter(|l| *l != "conf")
        .map(str::to_string)
        .collect();
    assert_eq!(anon.len(), 1, "the image's VOLUME made one: {anon:?}");
    e.ok(&["rm", "-v", "withvol"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "conf\n");
    // -v's options as Podman takes them: a propagation and noexec on a
    // host directory, nocopy (an empty volume), U (the host directory
    // given to the container's user); named volumes are nosuid and nodev,
    // a --tmpfs is not noexec; O is refused by name.
    let host = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1001:1002",
        "-v",
        &format!("{h}:/b:rslave,noexec,U"),
        "-v",
        "fresh:/etc:nocopy",
        "--tmpfs",
        "/x",
        "app:1",
        "sh",
        "-c",
        // (Not counting the engine's own files bound in /etc.)
        "grep -E ' /(b|etc|x) ' /proc/mounts; ls -A /etc | grep -cv -e hosts -e hostname -e resolv.conf",
    ]);
    let got = out(&o);
    let line = |dst: &str| {
        got.lines()
            .find(|l| l.split(' ').nth(1) == Some(dst))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("/b").contains("noexec"), "{}", text(&o));
    assert!(
        line("/etc").contains("nosuid") && line("/etc").contains("nodev"),
        "{got}"
    );
    assert!(
        !line("/x").is_empty() && !line("/x").contains("noexec"),
        "{got}"
    );
    assert!(got.ends_with("0\n"), "nocopy filled the volume: {got}");
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(host.path()).unwrap();
    assert_eq!((m.uid(), m.gid()), (1001, 1002));
    let o = e.cmd(&["run", "--rm", "-v", &format!("{h}:/b:O"), "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(text(&o).contains("option O"), "{}", text(&o));
    e.ok(&["volume", "rm", "fresh"]);
    // rm -f: the containers using it go first; inspect of a missing one:
    // an empty list and the error.
    e.ok(&[
        "create",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "held:/h",
        "app:1",
        "true",
    ]);
    assert_eq!(e.cmd(&["volume", "rm", "held"]).status.code(), Some(2));
    e.ok(&["volume", "rm", "-f", "held"]);
    assert!(!e.ok(&["ps", "-a"]).contains("holder"));
    let o = e.cmd(&["volume", "inspect", "held"]);
    assert_eq!(
        (o.status.code(), out(&o).trim()),
        (Some(125), "[]"),
        "{}",
        text(&o)
    );
    e.ok(&["volume", "create", "--label", "k=v", "spare"]);
    e.ok(&["volume", "prune", "-f"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "conf\nspare\n");
    assert_eq!(e.ok(&["volume", "prune", "-f", "--all"]), "conf\nspare\n");
    assert!(e.ok(&["volume", "ls", "-q"]).is_empty());
}

/// Whether `path` is a mount point in this mount namespace (the host's).
fn mounted_at(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

/// `volume create -o`, the local driver's options as Docker's and
/// Podman's: a tmpfs mounted on the volume while containers use it (one
/// mount shared by them, filled from the image, gone after the last), a
/// host directory bound read-only (whose files `volume rm` leaves, also
/// when a crash left it mounted), owners for a plain volume, and the
/// options refused by name.
#[test]
fn volume_options_mount_a_filesystem_while_containers_use_it() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m,mode=0750",
        "tv",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["volume", "inspect", "tv"])).unwrap();
    assert_eq!(
        doc[0]["Options"],
        json!({"type": "tmpfs", "device": "tmpfs", "o": "size=2m,mode=0750"}),
        "{doc}"
    );
    let mountpoint = doc[0]["Mountpoint"].as_str().unwrap().to_string();
    assert!(
        !mounted_at(&mountpoint),
        "mounted before any container used it"
    );
    e.ok(&[
        "run",
        "-d",
        "--name",
        "t1",
        "--network",
        "none",
        "-v",
        "tv:/etc",
        "app:1",
        "sh",
        "-c",
        "echo shared > /etc/note; sleep 1000",
    ]);
    assert!(mounted_at(&mountpoint), "not mounted while t1 runs");
    eventually("t1 wrote its note", || {
        e.cmd(&["exec", "t1", "cat", "/etc/note"]).stdout == b"shared\n"
    });
    // A second container sees the same tmpfs: the image's files (the
    // first use filled it) and t1's note; its size is the option's.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "tv:/v",
        "app:1",
        "sh",
        "-c",
        "cat /v/os-release /v/note; grep ' /v ' /proc/self/mountinfo",
    ]);
    let got = out(&o);
    assert!(got.starts_with("NAME=skiff-test\nshared\n"), "{}", text(&o));
    assert!(
        got.contains(" - tmpfs ") && got.contains("size=2048k"),
        "{got}"
    );
    assert!(
        mounted_at(&mountpoint),
        "the second container's end unmounted t1's volume"
    );
    e.ok(&["rm", "-f", "-t", "0", "t1"]);
    assert!(
        !mounted_at(&mountpoint),
        "still mounted after the last user"
    );

    // A host directory, bound read-only; its files outlive the volume.
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("hi"), "hello\n").unwrap();
    e.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind,ro",
        "-o",
        &format!("device={}", host.path().display()),
        "hb",
    ]);
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "hb:/d",
        "app:1",
        "sh",
        "-c",
        "cat /d/hi; busybox touch /d/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out(&o), "hello\nread-only\n", "{}", text(&o));
    // As if a crash left it mounted: rm unmounts before it removes.
    let hb: Value = serde_json::from_str(&e.ok(&["volume", "inspect", "hb"])).unwrap();
    let hb_data = hb[0]["Mountpoint"].as_str().unwrap().to_string();
    let st = Command::new("mount")
        .args(["--bind", &host.path().display().to_string(), &hb_data])
        .status()
        .unwrap();
    assert!(st.success());
    e.ok(&["volume", "rm", "hb", "tv"]);
    assert!(!mounted_at(&hb_data));
    assert_eq!(
        fs::read_to_string(host.path().join("hi")).unwrap(),
        "hello\n"
    );

    // A mount that fails fails the run, naming the volume; nothing stays.
    e.ok(&[
        "volume",
        "create",
        "-o",
        "o=bind",
        "-o",
        "device=/nonexistent-skiff",
        "gone",
    ]);
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "gone:/d",
        "app:1",
        "true",
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("volume gone") && text(&o).contains("/nonexistent-skiff"),
        "{}",
        text(&o)
    );
    e.ok(&["volume", "rm", "gone"]);

    // uid= and gid= own a plain volume's directory.
    e.ok(&["volume", "create", "-o", "o=uid=1000,gid=1001", "owned"]);
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "owned:/o",
        "app:1",
        "busybox",
        "stat",
        "-c",
        "%u:%g",
        "/o",
    ]);
    assert_eq!(out(&o), "1000:1001\n", "{}", text(&o));
    e.ok(&["volume", "rm", "owned"]);

    for (opt, named) in [
        ("foo=bar", "foo is not an option"),
        ("type=tmpfs", "needs device="),
        ("device=/tmp", "needs type="),
        ("o=size=1m", "quotas"),
        ("o=noexec", "need type= and device="),
        ("o=uid=me", "numeric"),
    ] {
        let o = e.cmd(&["volume", "create", "-o", opt, "bad"]);
        assert_eq!(o.status.code(), Some(125), "{opt}: {}", text(&o));
        assert!(text(&o).contains(named), "{opt}: {}", text(&o));
    }
    assert!(e.ok(&["volume", "ls", "-q"]).is_empty());
}

/// Whether Debian's CNI plugins are missing (bridge networks, -p): said
/// as a skip.
fn no_cni() -> bool {
    let missing = !std::path::Path::new("/usr/lib/cni/bridge").exists();
    if missing {
        eprintln!("skipped: no CNI plugins (containernetworking-plugins)");
    }
    missing
}

/// The parent of process `pid` (a container's init: its monitor).
fn parent_of(pid: i64) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("PPid:").map(|p| p.trim().to_string()))
        .unwrap()
}

/// `skiff doctor`: after a monitor and its container are SIGKILLed and a
/// container directory is left without its row, doctor names them (exit
/// 1), --fix clears them (the dead container recorded exited, the stray
/// directory gone), and then doctor finds nothing (exit 0).
#[test]
fn doctor_finds_and_fixes_what_crashes_left() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "none",
        "app:1",
        "sleep",
        "1000",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "victim"])).unwrap();
    let pid = doc[0]["State"]["Pid"].as_i64().unwrap();
    let monitor = parent_of(pid);
    // The monitor first (nobody records the end), then the container.
    Command::new("kill")
        .args(["-9", &monitor])
        .status()
        .unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let stray = e.root().join("containers").join("f".repeat(64));
    fs::create_dir_all(stray.join("rootfs")).unwrap();

    let quiet = host_wide_doctor();
    let o = e.cmd(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out(&o).contains("without a container"), "{}", text(&o));
    let o = e.cmd(&["doctor", "--fix"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!stray.exists(), "the stray directory is left");
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "victim"])).unwrap();
    assert_eq!(doc[0]["State"]["Status"], "exited", "{doc}");
    let o = e.cmd(&["doctor"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out(&o).contains("nothing left behind"), "{}", text(&o));
    drop(quiet);
    e.ok(&["rm", "victim"]);

    // Everything killed and the namespace's mount gone (a reboot): its
    // address lease and port rules are nobody's; doctor --fix frees them.
    if no_cni() {
        return;
    }
    e.ok(&["network", "create", "--subnet", "10.122.202.0/24", "lease"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "leaser",
        "--network",
        "lease",
        "-p",
        "127.0.0.1::80",
        "app:1",
        "sleep",
        "1000",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "leaser"])).unwrap();
    let id = doc[0]["Id"].as_str().unwrap().to_string();
    let pid = doc[0]["State"]["Pid"].as_i64().unwrap();
    let ip = doc[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let monitor = parent_of(pid);
    for p in [monitor, pid.to_string()] {
        Command::new("kill").args(["-9", &p]).status().unwrap();
    }
    let netns = e.root().join("containers").join(&id).join("netns");
    assert!(Command::new("umount")
        .arg(&netns)
        .status()
        .unwrap()
        .success());
    let lease = std::path::Path::new("/var/lib/cni/networks/lease").join(&ip);
    assert!(lease.exists());
    let rules = || {
        let o = Command::new("iptables-save").output().unwrap();
        String::from_utf8_lossy(&o.stdout).contains(&id)
    };
    assert!(rules(), "no rules of the container to begin with");
    let o = e.cmd(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out(&o).contains("leased to container"), "{}", text(&o));
    let o = e.cmd(&["doctor", "--fix"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!lease.exists(), "the lease is left");
    assert!(!rules(), "its rules are left");
    e.ok(&["rm", "-f", "leaser"]);
    // The same, undone by rm -f itself (no doctor).
    e.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--network",
        "lease",
        "-p",
        "127.0.0.1::80",
        "app:1",
        "sleep",
        "1000",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "again"])).unwrap();
    let id2 = doc[0]["Id"].as_str().unwrap().to_string();
    let ip2 = doc[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let netns = e.root().join("containers").join(&id2).join("netns");
    assert!(Command::new("umount")
        .arg("-l")
        .arg(&netns)
        .status()
        .unwrap()
        .success());
    e.ok(&["rm", "-f", "again"]);
    let o = Command::new("iptables-save").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(&id2),
        "rm left rules"
    );
    assert!(!std::path::Path::new("/var/lib/cni/networks/lease")
        .join(&ip2)
        .exists());
    e.ok(&["network", "rm", "lease"]);
}

/// 20 containers started at once (detached, on the default network), and
/// 20 foreground runs at once, then all removed at once: no failure, no
/// lock error, nothing left, every name and address its own.
#[test]
fn twenty_containers_in_parallel() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let names: Vec<String> = (0..20).map(|i| format!("par{i}")).collect();
    let all = |args: &dyn Fn(&str) -> Vec<String>| -> Vec<std::process::Output> {
        std::thread::scope(|s| {
            let hs: Vec<_> = names
                .iter()
                .map(|n| {
                    let a = args(n);
                    s.spawn(move || e.cmd(&a.iter().map(String::as_str).collect::<Vec<_>>()))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    for o in all(&|n| {
        ["run", "-d", "--name", n, "app:1", "sleep", "100"]
            .map(String::from)
            .to_vec()
    }) {
        assert!(o.status.success(), "run -d: {}", text(&o));
    }
    let ps: Value = serde_json::from_str(&e.ok(&["ps", "--format", "json"])).unwrap();
    let rows = ps.as_array().unwrap();
    assert_eq!(rows.len(), 20, "{ps}");
    let mut addrs: Vec<String> = names
        .iter()
        .map(|n| {
            let doc: Value = serde_json::from_str(&e.ok(&["inspect", n])).unwrap();
            assert_eq!(doc[0]["State"]["Status"], "running", "{n}");
            doc[0]["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 20, "addresses shared: {addrs:?}");
    for o in all(&|n| {
        ["run", "--rm", "--network", "none", "app:1", "echo", n]
            .map(String::from)
            .to_vec()
    }) {
        assert!(o.status.success(), "run --rm: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("par"));
    }
    for o in all(&|n| ["rm", "-f", n].map(String::from).to_vec()) {
        assert!(o.status.success(), "rm -f: {}", text(&o));
    }
    assert_eq!(e.ok(&["ps", "-a", "-q"]).trim(), "");
}

/// The namespace files of a process in a container: net ipc uts pid.
fn namespaces_of(e: &Engine, args: &[&str]) -> Vec<String> {
    let script = "for n in net ipc uts pid; do busybox readlink /proc/self/ns/$n; done";
    let mut a = args.to_vec();
    a.extend(["sh", "-c", script]);
    e.ok(&a).lines().map(str::to_string).collect()
}

/// Pods as Podman's: an infra container (the engine's own pause, no image
/// pulled) holds the network, ipc and uts namespaces its containers join
/// (and pid with --share pid), a port published for the pod reaches a
/// member, members talk over localhost, share the hostname and sit under
/// the pod's cgroup; stop/start, the refusals, and rm -f leaves nothing.
#[test]
fn pods_share_namespaces_ports_and_cgroup_and_leave_nothing() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pod = e
        .ok(&[
            "pod",
            "create",
            "--name",
            "p",
            "-p",
            &format!("{port}:80"),
            "--hostname",
            "podhost",
        ])
        .trim()
        .to_string();
    assert_eq!(pod.len(), 64, "{pod}");
    let ps: Value = serde_json::from_str(&e.ok(&["pod", "ps", "--format", "json"])).unwrap();
    assert_eq!(ps[0]["Status"], "Created", "{ps}");
    e.ok(&[
        "run",
        "-d",
        "--pod",
        "p",
        "--name",
        "web",
        "app:1",
        "sh",
        "-c",
        "while true; do busybox nc -l -p 80 -e echo served; done",
    ]);
    // Published for the pod, answered by a member.
    let answered = || {
        use std::io::Read;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    eventually("the pod's port answers", || {
        answered().as_deref() == Some("served\n")
    });
    let web = namespaces_of(e, &["exec", "web"]);
    let other = namespaces_of(e, &["run", "--rm", "--pod", "p", "app:1"]);
    assert_eq!(
        web[..3],
        other[..3],
        "net, ipc, uts shared: {web:?} {other:?}"
    );
    assert_ne!(web[3], other[3], "pid is not shared by default");
    let out = e.ok(&[
        "run",
        "--rm",
        "--pod",
        "p",
        "app:1",
        "sh",
        "-c",
        "hostname; busybox nc 127.0.0.1 80 </dev/null; cat /proc/self/cgroup",
    ]);
    assert!(out.starts_with("podhost\nserved\n"), "{out}");
    assert!(
        out.contains(&format!("/skiff-pod-{}/", &pod[..12])),
        "{out}"
    );
    // --share pid: the pause is the members' pid 1.
    e.ok(&[
        "pod",
        "create",
        "--name",
        "q",
        "--share",
        "pid,net",
        "--network",
        "none",
    ]);
    let out = e.ok(&[
        "run",
        "--rm",
        "--pod",
        "q",
        "app:1",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert_eq!(out, "/pause\0__pause\0");

    // Refusals, by name, with nothing made.
    let before = e.ok(&["ps", "-a", "-q"]).lines().count();
    for (args, named) in [
        (vec!["pod", "create", "--share", "net,mnt"], "--share"),
        (
            vec!["run", "--pod", "nosuch", "app:1", "true"],
            "no such pod",
        ),
        (
            vec!["run", "--pod", "p", "-p", "81:81", "app:1", "true"],
            "--pod",
        ),
        (vec!["rm", "-f", &format!("{}-infra", &pod[..12])], "pod rm"),
        (vec!["pod", "rm", "p"], "running"),
    ] {
        let o = e.cmd(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    assert_eq!(e.ok(&["ps", "-a", "-q"]).lines().count(), before);

    e.ok(&["pod", "stop", "-t", "1", "p"]);
    let doc: Value = serde_json::from_str(&e.ok(&["pod", "inspect", "p"])).unwrap();
    assert_eq!(doc[0]["State"], "Exited", "{doc}");
    e.ok(&["pod", "start", "p"]);
    eventually("the pod's port answers again", || {
        answered().as_deref() == Some("served\n")
    });
    assert!(e.ok(&["pod", "top", "p"]).contains("nc -l -p 80"));

    for p in ["p", "q"] {
        e.ok(&["pod", "rm", "-f", p]);
    }
    assert_eq!(e.ok(&["pod", "ps", "-q"]).trim(), "");
    assert_eq!(e.ok(&["ps", "-a", "-q"]).trim(), "");
    assert!(answered().is_none(), "the port is still published");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(e.root().to_str().unwrap()), "mounts left");
    for ctrl in ["memory", "pids", "cpu,cpuacct", "unified", ""] {
        let d = format!("/sys/fs/cgroup/{ctrl}/skiff-pod-{}", &pod[..12]);
        assert!(!std::path::Path::new(&d).exists(), "{d} left");
    }
}

/// kube play of a Pod (two containers sharing an emptyDir and localhost,
/// a hostPort, a memory limit, an env) and of a Deployment of one; kube
/// generate gives the pod back as YAML that plays again; kube down leaves
/// no pod, container or volume; bad YAML is named, nothing made.
#[test]
fn kube_play_generate_and_down() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("pod.yaml");
    fs::write(
        &yaml,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: kp
  labels: {{app: demo}}
spec:
  volumes: [{{name: shared, emptyDir: {{}}}}]
  containers:
  - name: server
    image: app:1
    command: [sh, -c]
    args: ["echo from-server > /data/f; while true; do busybox nc -l -p 80 -e cat /data/f; done"]
    ports: [{{containerPort: 80, hostPort: {port}}}]
    volumeMounts: [{{name: shared, mountPath: /data}}]
    resources: {{limits: {{memory: 64Mi}}}}
  - name: client
    image: app:1
    command: [sh, -c, "until busybox nc 127.0.0.1 80 </dev/null > /data/got; do sleep 0.2; done; sleep 100"]
    env: [{{name: WHO, value: client}}]
    volumeMounts: [{{name: shared, mountPath: /data}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: dep}}
spec:
  replicas: 1
  template:
    spec:
      containers: [{{name: only, image: app:1, command: [sleep, "100"]}}]
"#
        ),
    )
    .unwrap();
    let out = e.ok(&["kube", "play", yaml.to_str().unwrap()]);
    assert!(out.starts_with("Pod:\n"), "{out}");
    assert_eq!(e.ok(&["pod", "ps", "-q"]).lines().count(), 2);
    eventually("the client read the server over localhost", || {
        e.cmd(&["exec", "kp-client", "cat", "/data/got"]).stdout == b"from-server\n"
    });
    assert_eq!(
        e.ok(&["exec", "kp-client", "sh", "-c", "echo $WHO"]),
        "client\n"
    );
    let limit = e.ok(&["exec", "kp-server", "sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(limit.trim(), "67108864");
    // The hostPort, published for the pod, reaches the server.
    eventually("the hostPort answers", || {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let mut got = String::new();
        s.read_to_string(&mut got).is_ok() && got == "from-server\n"
    });
    let generated = e.ok(&["kube", "generate", "kp"]);
    for want in [
        "kind: Pod",
        "name: kp",
        "name: server",
        "name: client",
        &format!("hostPort: {port}"),
        "emptyDir",
        "mountPath: /data",
        "67108864",
    ] {
        assert!(generated.contains(want), "{want}: {generated}");
    }
    // A second play of the same names is refused; --replace replaces.
    let o = e.cmd(&["kube", "play", yaml.to_str().unwrap()]);
    assert!(text(&o).contains("--replace"), "{}", text(&o));
    e.ok(&["kube", "down", yaml.to_str().unwrap()]);
    assert_eq!(e.ok(&["pod", "ps", "-q"]).trim(), "");
    assert_eq!(e.ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(e.ok(&["volume", "ls", "-q"]).trim(), "");
    // What kube generate wrote plays.
    let again = tmp.path().join("generated.yaml");
    fs::write(&again, &generated).unwrap();
    e.ok(&["kube", "play", again.to_str().unwrap()]);
    assert_eq!(e.ok(&["pod", "ps", "-q"]).lines().count(), 1);
    e.ok(&["kube", "down", again.to_str().unwrap()]);

    for (doc, named) in [
        ("kind: Service\nmetadata: {name: s}\n", "kind"),
        ("kind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: a, image: app:1, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]}\n", "valueFrom"),
        ("kind: Deployment\nmetadata: {name: d}\nspec: {replicas: 3}\n", "replicas"),
        ("kind: Pod\nspec: {containers: []}\n", "metadata.name"),
    ] {
        let bad = tmp.path().join("bad.yaml");
        fs::write(&bad, doc).unwrap();
        let o = e.cmd(&["kube", "play", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(125), "{doc}");
        assert!(text(&o).contains(named), "{doc}: {}", text(&o));
    }
    assert_eq!(e.ok(&["pod", "ps", "-q"]).trim(), "");
    assert_eq!(e.ok(&["ps", "-a", "-q"]).trim(), "");
}

/// network connect gives a running container another interface (and its
/// name to that network's containers); disconnect takes it away again;
/// a network with a connected container cannot be removed; rm undoes all.
#[test]
fn network_connect_and_disconnect() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    e.ok(&["network", "create", "--subnet", "10.122.201.0/24", "back"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "app:1",
        "sh",
        "-c",
        "while true; do busybox nc -l -p 80 -e echo from-db; done",
    ]);
    e.ok(&["run", "-d", "--name", "app", "app:1", "sleep", "100"]);
    let reach = || {
        e.cmd(&[
            "exec",
            "app",
            "sh",
            "-c",
            "busybox nc -w 2 db 80 </dev/null",
        ])
    };
    assert!(!reach().status.success(), "app reached db before connect");
    e.ok(&["network", "connect", "--ip", "10.122.201.50", "back", "app"]);
    eventually("app reaches db by name", || reach().stdout == b"from-db\n");
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", "app"])).unwrap();
    let nets = &doc[0]["NetworkSettings"]["Networks"];
    assert_eq!(nets["back"]["IPAddress"], "10.122.201.50", "{nets}");
    assert_eq!(nets["back"]["Interface"], "eth1", "{nets}");
    assert!(nets["skiff"]["IPAddress"].is_string(), "{nets}");
    assert!(e
        .ok(&["exec", "db", "cat", "/etc/hosts"])
        .contains("10.122.201.50\tapp"));
    for (args, named) in [
        (vec!["network", "connect", "back", "app"], "already"),
        (
            vec!["network", "connect", "--ip", "10.9.9.9", "skiff", "db"],
            "subnet",
        ),
        (
            vec!["network", "disconnect", "nosuch", "app"],
            "not on network",
        ),
    ] {
        let o = e.cmd(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    // In use: Podman's code, 2 (a missing one: 1).
    let o = e.cmd(&["network", "rm", "back"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("use it"), "{}", text(&o));
    let o = e.cmd(&["network", "rm", "nosuchnet"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // inspect of a missing one: an empty list, and the error.
    let o = e.cmd(&["network", "inspect", "nosuchnet"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert_eq!(out(&o).trim(), "[]");
    e.ok(&["network", "disconnect", "back", "app"]);
    assert!(!reach().status.success(), "app reached db after disconnect");
    assert!(!e.ok(&["exec", "db", "cat", "/etc/hosts"]).contains("app"));
    assert!(!e
        .ok(&["exec", "app", "busybox", "ip", "addr"])
        .contains("eth1"));
    e.ok(&["network", "connect", "back", "app"]);
    e.ok(&["rm", "-f", "db"]);
    // -f: the containers on it go first.
    e.ok(&["network", "rm", "-f", "back"]);
    assert!(!e.ok(&["ps", "-a"]).contains("app"));
}

/// kill -9 of the engine's own commands at points along their way: `run
/// -d` (on a bridge network, so addresses and rules are made too) and
/// `rm -f`. After each, what a user would do (`rm -f` of the
/// name, `doctor --fix`) leaves the store consistent: doctor finds
/// nothing, no container, mount, runtime state or address lease of the
/// store is left.
#[test]
fn engine_commands_killed_anywhere_leave_nothing_after_rm_and_doctor() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    // A network of the test's own: what a kill leaves there is seen by
    // no other store's doctor while the sweep runs.
    e.ok(&["network", "create", "--subnet", "10.122.203.0/24", "k9"]);
    let root = e.root().display().to_string();
    let spawn = |args: &[&str]| {
        Command::new(skiff_bin())
            .arg("--root")
            .arg(e.root())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let kill_after = |mut child: std::process::Child, ms: u64| {
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
    };
    let clean = |what: &str| {
        let _quiet = host_wide_doctor();
        let o = e.cmd(&["doctor", "--fix"]);
        assert!(
            o.status.code() == Some(0),
            "{what}: doctor --fix: {}",
            text(&o)
        );
        let o = e.cmd(&["doctor"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: doctor after --fix: {}",
            text(&o)
        );
        assert_eq!(
            e.ok(&["ps", "-a", "-q"]).trim(),
            "",
            "{what}: a container is left"
        );
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let ours: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(&format!("{root}/containers/")))
            .collect();
        assert!(ours.is_empty(), "{what}: mounts left: {ours:?}");
        let state = e.root().join("runtime");
        let states: Vec<String> = fs::read_dir(&state)
            .map(|d| {
                d.flatten()
                    .filter(|x| x.path().is_dir())
                    .map(|x| x.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        assert!(states.is_empty(), "{what}: runtime state left: {states:?}");
        // The firewall plugin's forward rules of an address nobody leases.
        let o = Command::new("iptables")
            .args(["-S", "CNI-FORWARD"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&o.stdout).into_owned();
        let orphans: Vec<&str> = rules
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .filter_map(|w| w.strip_suffix("/32"))
                    .any(|ip| {
                        ip.starts_with("10.122.203.")
                            && !std::path::Path::new("/var/lib/cni/networks/k9")
                                .join(ip)
                                .exists()
                    })
            })
            .collect();
        assert!(
            orphans.is_empty(),
            "{what}: forward rules left: {orphans:?}"
        );
        // Rules that name a container of the network whose namespace is
        // gone.
        let saved = Command::new("iptables-save").output().unwrap();
        let saved = String::from_utf8_lossy(&saved.stdout).into_owned();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let gone: Vec<&str> = saved
            .lines()
            .filter_map(|l| l.split_once("name: \\\"k9\\\" id: \\\""))
            .filter_map(|(_, rest)| rest.split_once("\\\"").map(|(id, _)| id))
            .filter(|id| !mounts.contains(&format!("/{id}/netns")))
            .collect();
        assert!(
            gone.is_empty(),
            "{what}: rules of gone containers: {gone:?}"
        );
    };
    let delays = [0u64, 5, 15, 30, 60, 100, 160, 250, 400];
    for (i, ms) in delays.iter().enumerate() {
        let name = format!("k{i}");
        kill_after(
            spawn(&[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "k9",
                "app:1",
                "sleep",
                "100",
            ]),
            *ms,
        );
        let _ = e.cmd(&["rm", "-f", &name]);
        clean(&format!("run -d killed after {ms} ms"));
    }
    for (i, ms) in delays.iter().enumerate() {
        let name = format!("r{i}");
        e.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "k9",
            "app:1",
            "sleep",
            "100",
        ]);
        kill_after(spawn(&["rm", "-f", &name]), *ms);
        let o = e.cmd(&["rm", "-f", &name]);
        clean(&format!(
            "rm -f killed after {ms} ms (then rm -f: {})",
            text(&o).trim()
        ));
    }
    e.ok(&["network", "rm", "k9"]);
}

/// `--trace`: a line per phase of a run on stderr, in order, and nothing
/// of it in the container's output.
#[test]
fn trace_shows_where_a_run_spends_its_time() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let o = e.cmd(&[
        "--trace",
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "echo",
        "out",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let phases = [
        "image found",
        "create: rootfs mounted",
        "create: config, files and row written",
        "runtime create",
        "runtime start",
        "the container's init ended",
        "--rm: removed",
    ];
    let mut at = 0;
    for p in phases {
        let i = err[at..]
            .find(p)
            .unwrap_or_else(|| panic!("{p:?} missing or out of order: {err}"));
        at += i;
    }
    assert!(
        !err.contains("\"trace\""),
        "the runtime's trace leaked into the output: {err}"
    );
}

/// A namespace of the test's own outside every bridge, joined to the host
/// by a veth (host side 10.123.250.1, inside .2): an address a container
/// reaches only through the host's routing, so what arrives there shows
/// whether its source was masqueraded. Removed on drop.
struct Outside {
    ns: String,
    veth: String,
}

impl Outside {
    fn new() -> Outside {
        let pid = std::process::id();
        let o = Outside {
            ns: format!("skt-out-{pid}"),
            veth: format!("skto{}", pid % 100_000),
        };
        let ip = |args: &str| {
            let st = Command::new("ip")
                .args(args.split_whitespace())
                .status()
                .unwrap();
            assert!(st.success(), "ip {args}");
        };
        ip(&format!("netns add {}", o.ns));
        ip(&format!(
            "link add {} type veth peer name inner netns {}",
            o.veth, o.ns
        ));
        ip(&format!("addr add 10.123.250.1/30 dev {}", o.veth));
        ip(&format!("link set {} up", o.veth));
        ip(&format!("-n {} addr add 10.123.250.2/30 dev inner", o.ns));
        ip(&format!("-n {} link set inner up", o.ns));
        o
    }

    /// Listens on 10.123.250.2:PORT inside; the peer address of the first
    /// connection (None if none comes within 20 s).
    fn accept_one(&self, port: u16) -> std::thread::JoinHandle<Option<std::net::IpAddr>> {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.ns);
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let f = fs::File::open(path).unwrap();
            // SAFETY: setns of this test thread to a namespace file held open.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let l = std::net::TcpListener::bind(("10.123.250.2", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok((_, peer)) = l.accept() {
                    return Some(peer.ip());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        h
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn iptables_save() -> String {
    let o = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The engine's own networks take its native path: their bridge and
/// rules are there from `network create` to `network rm`, no CNI plugin
/// runs for a container (none of the rules the bridge and firewall
/// plugins make per container; a list with a plugin that path does not
/// know still goes through CNI, whose effect shows), traffic out is
/// masqueraded, an internal network has no way out, other networks are
/// kept out, published ports answer from the host and from the network,
/// and after rm nothing of the container is left (veth, lease, rules).
#[test]
fn engine_networks_take_the_native_path_and_leave_nothing() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let outside = Outside::new();
    e.ok(&["network", "create", "--subnet", "10.122.210.0/24", "nat1"]);
    e.ok(&["network", "create", "--subnet", "10.122.211.0/24", "nat2"]);
    e.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.122.213.0/24",
        "inner",
    ]);
    let bridge = |n: &str| {
        let doc: Value = serde_json::from_str(&e.ok(&["network", "inspect", n])).unwrap();
        doc[0]["network_interface"].as_str().unwrap().to_string()
    };
    let (b1, b2, b3) = (bridge("nat1"), bridge("nat2"), bridge("inner"));
    let rules = iptables_save();
    for b in [&b1, &b2] {
        for chain in [format!(":SKIFF-FW-{b} "), format!(":SKIFF-MASQ-{b} ")] {
            assert!(rules.contains(&chain), "no {chain} after create:\n{rules}");
        }
    }
    assert!(rules.contains(&format!(":SKIFF-FW-{b3} ")), "{rules}");
    assert!(
        !rules.contains(&format!(":SKIFF-MASQ-{b3} ")),
        "internal masquerades"
    );
    // A list of the user's own: the engine's shape plus tuning with an MTU.
    let list = json!({"cniVersion": "1.0.0", "name": "userlist", "plugins": [
        {"type": "bridge", "bridge": "skbrtestcni", "isGateway": true, "ipMasq": true, "hairpinMode": true,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": "10.122.212.0/24", "gateway": "10.122.212.1"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"},
        {"type": "tuning", "mtu": 1400}
    ]});
    fs::write(
        e.root().join("networks/userlist.conflist"),
        list.to_string(),
    )
    .unwrap();

    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let inspect = |name: &str| -> (String, String) {
        let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", name])).unwrap();
        (
            doc[0]["Id"].as_str().unwrap().to_string(),
            doc[0]["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let httpd = "busybox mkdir -p /www && echo hello-native > /www/index.html && exec busybox httpd -f -p 80 -h /www";
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "nat1",
        "--mac-address",
        "02:42:AC:11:00:0a",
        "-p",
        &format!("{port}:80"),
        "app:1",
        "sh",
        "-c",
        httpd,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "userlist",
        "--mac-address",
        "02:42:ac:11:00:0b",
        "app:1",
        "sleep",
        "100",
    ]);
    let (web_id, web_ip) = inspect("web");
    // The published port is web's while it runs (its monitor holds it
    // bound, as Podman's conmon): the host cannot take it, nor can
    // another container; a port the host holds fails a run.
    assert!(
        std::net::TcpListener::bind(("0.0.0.0", port)).is_err(),
        "the host could take web's published port {port}"
    );
    let o = e.cmd(&[
        "run",
        "-d",
        "--name",
        "thief",
        "--network",
        "nat1",
        "-p",
        &format!("{port}:80"),
        "app:1",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("port {port} is taken")),
        "{}",
        text(&o)
    );
    let host_holds = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let busy = host_holds.local_addr().unwrap().port();
    let o = e.cmd(&[
        "run",
        "-d",
        "--name",
        "thief",
        "--network",
        "nat1",
        "-p",
        &format!("{busy}:80"),
        "app:1",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(
        !e.ok(&["ps", "-a"]).contains("thief"),
        "a refused run left its container"
    );
    drop(host_holds);
    let (user_id, _) = inspect("user");
    assert!(web_ip.starts_with("10.122.210."), "{web_ip}");
    let path_of = |id: &str| {
        let rec: Value = serde_json::from_slice(
            &fs::read(e.root().join("containers").join(id).join("net.json")).unwrap(),
        )
        .unwrap();
        rec["path"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(path_of(&web_id), "native");
    assert_eq!(path_of(&user_id), "cni");
    // No plugin ran for web: its MTU is the kernel's, and no rule of the
    // bridge or firewall plugin names it; for user, CNI's did.
    let mtu = |name: &str| e.ok(&["exec", name, "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu("web"), "1500\n");
    assert_eq!(mtu("user"), "1400\n");
    // --mac-address on either path (the bridge plugin's CNI_ARGS MAC).
    for (name, mac) in [("web", "02:42:ac:11:00:0a"), ("user", "02:42:ac:11:00:0b")] {
        let got = e.ok(&["exec", name, "cat", "/sys/class/net/eth0/address"]);
        assert_eq!(got.trim(), mac, "{name}");
        let shown = e.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.MacAddress}}",
            name,
        ]);
        assert_eq!(shown.trim(), mac, "{name}");
    }
    let rules = iptables_save();
    let cni_of = |id: &str, ip: &str| {
        rules
            .lines()
            .filter(|l| l.contains("CNI-") && (l.contains(id) || l.contains(&format!("{ip}/32"))))
            .count()
    };
    assert_eq!(
        cni_of(&web_id, &web_ip),
        0,
        "plugin rules for web:\n{rules}"
    );
    assert!(
        cni_of(&user_id, "-") > 0,
        "no plugin rules for user:\n{rules}"
    );
    assert!(
        rules.contains(&format!(":SKIFF-DN-{} ", &web_id[..16])),
        "no port chain for web:\n{rules}"
    );
    // Published: from the host's loopback, from its own network (through
    // the gateway) and from itself (hairpin).
    eventually("the published port answers on 127.0.0.1", || {
        http_get(port, "/index.html").as_deref() == Some("hello-native\n")
    });
    let get = format!("busybox wget -qO- http://10.122.210.1:{port}/index.html");
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "nat1",
        "app:1",
        "sh",
        "-c",
        &get,
    ]);
    assert_eq!(out(&o), "hello-native\n", "from the network: {}", text(&o));
    let o = e.cmd(&["exec", "web", "sh", "-c", &get]);
    assert_eq!(out(&o), "hello-native\n", "hairpin: {}", text(&o));
    // Out through the host: the outside sees the host's address, not the
    // container's.
    let peer = outside.accept_one(8099);
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "nat1",
        "app:1",
        "sh",
        "-c",
        "busybox nc -w 3 10.123.250.2 8099 </dev/null",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let peer = peer.join().unwrap();
    assert_eq!(
        peer,
        Some("10.123.250.1".parse().unwrap()),
        "not masqueraded"
    );
    // Internal: no way out; its containers still reach each other.
    let peer = outside.accept_one(8098);
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "app:1",
        "sh",
        "-c",
        "busybox nc -w 2 10.123.250.2 8098 </dev/null",
    ]);
    assert_ne!(o.status.code(), Some(0), "internal got out: {}", text(&o));
    drop(peer);
    // Kept out: another network's container cannot reach web, a peer on
    // its own network can, by name.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "nat2",
        "app:1",
        "sh",
        "-c",
        &format!("busybox nc -w 2 {web_ip} 80 </dev/null"),
    ]);
    assert_ne!(o.status.code(), Some(0), "nat2 reached nat1: {}", text(&o));
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "nat1",
        "app:1",
        "sh",
        "-c",
        "busybox wget -qO- http://web/index.html",
    ]);
    assert_eq!(out(&o), "hello-native\n", "{}", text(&o));

    // rm: no veth on the bridge, no lease, no rule of the container.
    e.ok(&["rm", "-f", "web", "user"]);
    // (The veth goes with the namespace, which the kernel tears down in
    // the background.)
    eventually("web's veth goes", || {
        let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
        !String::from_utf8_lossy(&links.stdout).contains(&format!("master {b1} "))
    });
    assert!(!std::path::Path::new("/var/lib/cni/networks/nat1")
        .join(&web_ip)
        .exists());
    let rules = iptables_save();
    assert!(
        !rules.contains(&web_id) && !rules.contains(&web_id[..16]),
        "rules of web left:\n{rules}"
    );
    assert!(http_get(port, "/index.html").is_none());
    // network rm: its chains go with it.
    e.ok(&["network", "rm", "nat1", "nat2", "inner", "userlist"]);
    let rules = iptables_save();
    for b in [&b1, &b2, &b3, &"skbrtestcni".to_string()] {
        assert!(!rules.contains(b.as_str()), "rules of {b} left:\n{rules}");
    }
    assert!(
        !std::path::Path::new("/run/skiff/networks")
            .join(&b1)
            .exists(),
        "the stamp of {b1} is left"
    );
    // A list changed by hand while a container of the engine's path is on
    // it: rm still undoes what the engine made (no plugin has it), and
    // network rm removes the chains.
    e.ok(&["network", "create", "--subnet", "10.122.216.0/24", "edited"]);
    let b6 = bridge("edited");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ed",
        "--network",
        "edited",
        "app:1",
        "sleep",
        "100",
    ]);
    let (_, ed_ip) = inspect("ed");
    let file = e.root().join("networks/edited.conflist");
    let mut list: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    list["plugins"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "tuning", "mtu": 1400}));
    fs::write(&file, list.to_string()).unwrap();
    e.ok(&["rm", "-f", "ed"]);
    assert!(!std::path::Path::new("/var/lib/cni/networks/edited")
        .join(&ed_ip)
        .exists());
    e.ok(&["network", "rm", "edited"]);
    assert!(!iptables_save().contains(&b6), "chains of {b6} left");
    // A network whose rules were flushed by hand: doctor names it, --fix
    // makes them again.
    e.ok(&[
        "network",
        "create",
        "--subnet",
        "10.122.215.0/24",
        "flushed",
    ]);
    let b5 = bridge("flushed");
    let fw = format!("SKIFF-FW-{b5}");
    for args in [
        &["-F", fw.as_str()][..],
        &[
            "-D",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            "skiff network flushed",
            "-j",
            &fw,
        ],
        &["-X", &fw],
    ] {
        assert!(
            Command::new("iptables")
                .args(args)
                .status()
                .unwrap()
                .success(),
            "{args:?}"
        );
    }
    let o = e.cmd(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        out(&o).contains("network flushed: its rules"),
        "{}",
        text(&o)
    );
    let o = e.cmd(&["doctor", "--fix"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rules = iptables_save();
    assert!(
        rules.contains(&format!(":{fw} ")) && rules.contains(&format!("-j {fw}")),
        "{rules}"
    );
    e.ok(&["network", "rm", "flushed"]);
    // A network whose bridge was deleted by hand: doctor --fix removes its
    // chains (other tests' doctors wait meanwhile: HOST_WIDE_DOCTOR).
    e.ok(&["network", "create", "--subnet", "10.122.214.0/24", "orphan"]);
    let b4 = bridge("orphan");
    let orphaned = host_wide_doctor();
    assert!(Command::new("ip")
        .args(["link", "del", &b4])
        .status()
        .unwrap()
        .success());
    assert!(iptables_save().contains(&b4));
    let o = e.cmd(&["doctor", "--fix"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !iptables_save().contains(&b4),
        "chains of a gone bridge left"
    );
    drop(orphaned);
    e.ok(&["network", "rm", "orphan"]);
}

/// What a script written for Podman counts on: rm/rmi/stop of what is
/// not there with -f or --ignore, Podman's exit codes for rm and rmi,
/// group 0 for an unknown uid, --entrypoint's JSON form, --read-only's
/// tmpfs on /run, /tmp and /var/tmp, --mount readonly=false, and logs
/// --since/--until.
#[test]
fn podman_scripts_codes_and_flags() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let code = |args: &[&str]| e.cmd(args).status.code();
    // Missing: an error (1) unless -f or --ignore says it is fine.
    assert_eq!(code(&["rm", "nosuch"]), Some(1));
    assert_eq!(code(&["rm", "-f", "nosuch"]), Some(0));
    assert_eq!(code(&["rm", "--ignore", "nosuch"]), Some(0));
    assert_eq!(code(&["stop", "-i", "nosuch"]), Some(0));
    assert_eq!(code(&["stop", "nosuch"]), Some(125));
    assert_eq!(code(&["rmi", "nosuch:1"]), Some(1));
    assert_eq!(code(&["rmi", "-f", "nosuch:1"]), Some(0));
    assert_eq!(code(&["rmi", "-i", "nosuch:1"]), Some(0));
    // Running, or in use: 2.
    e.ok(&["run", "-d", "--name", "busy", "app:1", "sleep", "1000"]);
    assert_eq!(code(&["rm", "busy"]), Some(2));
    assert_eq!(code(&["rmi", "app:1"]), Some(2));
    // -f removes what is there and passes over what is not.
    let o = e.cmd(&["rm", "-f", "nosuch", "busy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // run -d and start of a command that cannot run: its code and why
    // (they said nothing).
    for args in [
        &["run", "-d", "--name", "broken", "app:1", "nosuch"][..],
        &["start", "broken"][..],
    ] {
        let o = e.cmd(args);
        assert_eq!(o.status.code(), Some(127), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("\"nosuch\""),
            "{args:?}: {}",
            text(&o)
        );
    }
    e.ok(&["rm", "broken"]);
    // A --rm container its monitor removes as it stops: rm -f and stop
    // succeed (rm -f failed with "no such container").
    for cmd in [&["rm", "-f", "gone"][..], &["stop", "-t", "1", "gone"][..]] {
        e.ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            "gone",
            "--stop-signal",
            "USR1",
            "app:1",
            "sleep",
            "1000",
        ]);
        let o = e.cmd(cmd);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {}", text(&o));
        assert_eq!(out(&o), "gone\n");
        eventually("the --rm container is gone", || {
            e.ok(&["ps", "-a", "-q"]).is_empty()
        });
    }
    // An id of several names, without -f: 125 (Podman's).
    let id = e.ok(&["images", "-q"]).trim().to_string();
    e.ok(&["tag", "app:1", "extra:1"]);
    assert_eq!(code(&["rmi", &id]), Some(125));
    e.ok(&["rmi", "extra:1"]);

    // A uid the image does not know: group 0, as Docker's and Podman's.
    let o = e.cmd(&["run", "--rm", "-u", "1234", "app:1", "id"]);
    assert_eq!(
        out(&o).trim(),
        "uid=1234 gid=0(root) groups=0(root)",
        "{}",
        text(&o)
    );
    // --entrypoint as a JSON list (Podman's form).
    let o = e.cmd(&[
        "run",
        "--rm",
        "--entrypoint",
        r#"["sh","-c"]"#,
        "app:1",
        "echo json $0",
    ]);
    assert_eq!(out(&o), "json sh\n", "{}", text(&o));

    // --read-only: the root is, /run, /tmp and /var/tmp are not (each a
    // tmpfs, /tmp open to every user), unless --read-only-tmpfs=false.
    let o = e.cmd(&[
        "run", "--rm", "--read-only", "app:1", "sh", "-c",
        "touch /x 2>/dev/null && echo root-writable; touch /run/a /tmp/b /var/tmp/c && echo scratch-ok; ls -ld /tmp",
    ]);
    let t = out(&o);
    assert!(t.starts_with("scratch-ok\ndrwxrwxrwt"), "{}", text(&o));
    let o = e.cmd(&[
        "run",
        "--rm",
        "--read-only",
        "--read-only-tmpfs=false",
        "app:1",
        "sh",
        "-c",
        "touch /tmp/b",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A --tmpfs of the user's own there wins.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp:size=1m",
        "app:1",
        "grep",
        " /tmp ",
        "/proc/mounts",
    ]);
    assert!(out(&o).contains("size=1024k"), "{}", text(&o));
    // --mount readonly=false is writable; readonly (alone) is not.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let o = e.cmd(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={d},dst=/d,readonly=false"),
        "app:1",
        "sh",
        "-c",
        "touch /d/f",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = e.cmd(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={d},dst=/d,readonly"),
        "app:1",
        "sh",
        "-c",
        "touch /d/g",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // --mount's other keys: tmpfs-mode and bind-propagation applied,
    // relabel taken (no SELinux here), anything else refused by name.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-mode=1770",
        "app:1",
        "ls",
        "-ld",
        "/t",
    ]);
    assert!(out(&o).starts_with("drwxrwx--T"), "{}", text(&o));
    let o = e.cmd(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={d},dst=/d,bind-propagation=rshared,relabel=shared"),
        "app:1",
        "grep",
        " /d ",
        "/proc/self/mountinfo",
    ]);
    assert!(out(&o).contains(" shared:"), "{}", text(&o));
    let o = e.cmd(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={d},dst=/d,nocopy=1"),
        "app:1",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("\"nocopy\""), "{}", text(&o));

    // logs --since and --until: by the lines' times, RFC 3339, Unix
    // seconds or a duration before now.
    e.ok(&[
        "run",
        "--name",
        "talk",
        "app:1",
        "sh",
        "-c",
        "echo early; sleep 2; echo late",
    ]);
    let times: Vec<String> = e
        .ok(&["logs", "-t", "talk"])
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(times.len(), 2);
    assert_eq!(e.ok(&["logs", "--since", &times[1], "talk"]), "late\n");
    assert_eq!(e.ok(&["logs", "--until", &times[0], "talk"]), "early\n");
    assert_eq!(e.ok(&["logs", "--since", "1h", "talk"]), "early\nlate\n");
    assert_eq!(e.ok(&["logs", "--until", "1h", "talk"]), "");
    let o = e.cmd(&["logs", "--since", "soon", "talk"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--since"), "{}", text(&o));
    e.ok(&["rm", "talk"]);

    // A flag run does not know is refused as one, not looked for as an
    // image in registries.
    let o = e.cmd(&["run", "--rm", "--no-such-flag", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o).contains("unknown flag: --no-such-flag") && !text(&o).contains("Unable to find"),
        "{}",
        text(&o)
    );
    // --pull: never fails without asking a registry; always asks it
    // again for an image the store has.
    let o = e.cmd(&["run", "--rm", "--pull=never", "nosuch:9", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(!text(&o).contains("Unable to find"), "{}", text(&o));
    let manifests = || {
        f._reg
            .log()
            .lines()
            .filter(|l| l.contains("/manifests/"))
            .count()
    };
    let before = manifests();
    let name = format!("{}/app:1", f._reg.addr());
    e.ok(&["run", "--rm", "--pull=never", &name, "true"]);
    assert_eq!(manifests(), before);
    e.ok(&["run", "--rm", "--pull=always", &name, "true"]);
    assert!(
        manifests() > before,
        "--pull=always did not ask the registry"
    );
    assert_eq!(
        e.cmd(&["run", "--pull=sometimes", &name]).status.code(),
        Some(125)
    );

    // --shm-size, --sysctl, --annotation and --security-opt label=disable
    // apply (or hold); --replace takes the name over, --cidfile and -q.
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--shm-size",
        "128m",
        "--sysctl",
        "kernel.shmmax=12345",
        "--annotation",
        "team=db",
        "--security-opt",
        "label=disable",
        "app:1",
        "sh",
        "-c",
        "grep ' /dev/shm ' /proc/mounts; cat /proc/sys/kernel/shmmax",
    ]);
    let t = out(&o);
    assert!(
        t.contains("size=131072k") && t.ends_with("12345\n"),
        "{}",
        text(&o)
    );
    let first = e.ok(&["run", "-d", "--name", "svc", "app:1", "sleep", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let cid = dir.path().join("cid");
    let second = e.ok(&[
        "run",
        "-d",
        "-q",
        "--replace",
        "--name",
        "svc",
        "--cidfile",
        cid.to_str().unwrap(),
        "app:1",
        "sleep",
        "1000",
    ]);
    assert_ne!(first, second);
    assert_eq!(fs::read_to_string(&cid).unwrap(), second.trim());
    assert_eq!(e.ok(&["ps", "-a", "-q", "--no-trunc"]), second);
    e.ok(&["rm", "-f", "svc"]);
    e.ok(&[
        "create",
        "--name",
        "noted",
        "--annotation",
        "team=db",
        "app:1",
    ]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Annotations \"team\"}}",
            "noted"
        ]),
        "db\n"
    );
    e.ok(&["rm", "noted"]);

    // --pid, --ipc and --uts host: the host's namespaces.
    let ns = |what: &str| fs::read_link(format!("/proc/self/ns/{what}")).unwrap();
    let o = e.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "host",
        "--ipc",
        "host",
        "--uts",
        "host",
        "app:1",
        "sh",
        "-c",
        "for n in pid ipc uts; do readlink /proc/self/ns/$n; done",
    ]);
    let want = format!(
        "{}\n{}\n{}\n",
        ns("pid").display(),
        ns("ipc").display(),
        ns("uts").display()
    );
    assert_eq!(out(&o), want, "{}", text(&o));
    let o = e.cmd(&["run", "--rm", "--pid", "container:x", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("--pid"), "{}", text(&o));

    // Boolean flags take =true|false, as Podman's (Go's) do.
    e.ok(&[
        "run",
        "--rm=true",
        "--tty=false",
        "--interactive=false",
        "--detach=false",
        "app:1",
        "true",
    ]);
    e.ok(&["run", "--rm=false", "--name", "kept", "app:1", "true"]);
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Names}}"]), "kept\n");
    e.ok(&["rm", "kept"]);
}

/// `ps` as Podman's scripts read it: --filter (a status filter lists
/// stopped ones too; one key's values either, different keys all),
/// -l/--last, `table` templates with a header, the Labels and Ports
/// fields, Podman's JSON (Names and Ports lists), and `port CTR PORT`.
#[test]
fn ps_filters_templates_and_port_of_one() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web1",
        "--label",
        "tier=front",
        "-p",
        "80",
        "app:1",
        "sleep",
        "1000",
    ]);
    e.cmd(&[
        "run",
        "--name",
        "done3",
        "--label",
        "tier=back",
        "app:1",
        "sh",
        "-c",
        "exit 3",
    ]);
    let names = |args: &[&str]| -> String {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = e.ok(&all).lines().map(str::to_string).collect();
        v.sort();
        v.join(" ")
    };
    assert_eq!(names(&[]), "web1");
    assert_eq!(names(&["--filter", "status=exited"]), "done3");
    assert_eq!(names(&["-a", "--filter", "label=tier=front"]), "web1");
    assert_eq!(names(&["-a", "--filter", "label=tier"]), "done3 web1");
    assert_eq!(names(&["-a", "--filter", "name=^web"]), "web1");
    assert_eq!(
        names(&["-a", "--filter", "name=eb", "--filter", "name=one"]),
        "done3 web1"
    );
    assert_eq!(
        names(&["-a", "--filter", "name=eb", "--filter", "exited=3"]),
        ""
    );
    assert_eq!(names(&["-a", "--filter", "exited=3"]), "done3");
    assert_eq!(names(&["-a", "--filter", "ancestor=app:1"]), "done3 web1");
    assert_eq!(names(&["-l"]), "done3");
    let o = e.cmd(&["ps", "--filter", "bogus=1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("bogus"), "{}", text(&o));
    // A table template: a header, then the rows lined up.
    let t = e.ok(&["ps", "--format", "table {{.Names}}\\t{{.Labels}}"]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert!(
        lines[0].starts_with("NAMES") && lines[0].ends_with("LABELS"),
        "{t}"
    );
    assert!(
        lines[1].starts_with("web1") && lines[1].ends_with("map[tier:front]"),
        "{t}"
    );
    // The default table has Podman's and Docker's PORTS column.
    let t = e.ok(&["ps"]);
    assert!(t.contains("PORTS") && t.contains("->80/tcp"), "{t}");
    let ps: Value = serde_json::from_str(&e.ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(ps[0]["Names"], json!(["web1"]), "{ps}");
    assert_eq!(ps[0]["Labels"]["tier"], "front", "{ps}");
    assert_eq!(ps[0]["Ports"][0]["container_port"], 80, "{ps}");
    let host_port = ps[0]["Ports"][0]["host_port"].as_u64().unwrap();
    // port CTR PORT: the host address alone; a port not published, 125.
    assert_eq!(
        e.ok(&["port", "web1", "80"]),
        format!("0.0.0.0:{host_port}\n")
    );
    assert_eq!(
        e.ok(&["port", "web1", "80/tcp"]),
        format!("0.0.0.0:{host_port}\n")
    );
    let o = e.cmd(&["port", "web1", "81"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    // exec --env-file, and -e NAME taking this shell's value (or none).
    let envf = tempfile::NamedTempFile::new().unwrap();
    fs::write(envf.path(), "# c\n  A=1\n\nFROMHOST\nB=x  \n").unwrap();
    let o = Command::new(skiff_bin())
        .arg("--root")
        .arg(e.root())
        .args([
            "exec",
            "--env-file",
            envf.path().to_str().unwrap(),
            "-e",
            "ALSO",
            "-e",
            "UNSET_HERE",
        ])
        .args([
            "web1",
            "sh",
            "-c",
            "echo $A $FROMHOST $ALSO ${UNSET_HERE-none} \"[$B]\"",
        ])
        .env("FROMHOST", "h")
        .env("ALSO", "a")
        .env_remove("UNSET_HERE")
        .output()
        .unwrap();
    // Leading blanks go, a value's trailing ones stay (Podman's).
    assert_eq!(out(&o), "1 h a none [x  ]\n", "{}", text(&o));
    // stats --format: Podman's field names, and its JSON's.
    assert_eq!(
        e.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "web1"
        ]),
        "web1 1\n"
    );
    let st: Value =
        serde_json::from_str(&e.ok(&["stats", "--no-stream", "--format", "json", "web1"])).unwrap();
    assert_eq!(st[0]["name"], "web1", "{st}");
    e.ok(&["rm", "-f", "web1", "done3"]);
}

/// `inspect --format` as Podman's scripts write it: Go's index, range
/// (with variables), if/else, len, json, pipelines; and the fields they
/// read (Mounts, HostConfig's Binds, NetworkMode, ReadonlyRootfs, Memory,
/// Config.User and Image).
#[test]
fn inspect_templates_and_the_fields_scripts_read() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let host = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    e.ok(&[
        "create",
        "--name",
        "t1",
        "--label",
        "app.role=db",
        "--network",
        "none",
        "--read-only",
        "-u",
        "1001:1002",
        "-v",
        &format!("{h}:/h:ro"),
        "-v",
        "data1:/v",
        "app:1",
        "sleep",
        "1",
    ]);
    let fmt = |t: &str| {
        e.ok(&["inspect", "--format", t, "t1"])
            .trim_end()
            .to_string()
    };
    assert_eq!(fmt(r#"{{index .Config.Labels "app.role"}}"#), "db");
    assert_eq!(
        fmt("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"),
        "app.role=db;"
    );
    assert_eq!(
        fmt("{{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}} {{end}}"),
        "bind:/h:false volume:/v:true"
    );
    assert_eq!(fmt("{{(index .Mounts 1).Name}}"), "data1");
    assert_eq!(
        fmt("{{json .HostConfig.Binds}}"),
        format!(r#"["{h}:/h:ro"]"#)
    );
    assert_eq!(
        fmt(
            r#"{{if eq .State.Status "created"}}new{{else}}old{{end}} {{len .Config.Cmd}} {{.Config.Cmd | json}}"#
        ),
        r#"new 2 ["sleep","1"]"#
    );
    let t = fmt("{{.HostConfig.NetworkMode}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.Config.Image}}");
    assert!(
        t.starts_with("none true 1001:1002 ") && t.ends_with("/app:1"),
        "{t}"
    );
    // A mistake is an error naming the template, exit 125.
    let o = e.cmd(&["inspect", "--format", "{{nosuchfunc .Id}}", "t1"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(text(&o).contains("nosuchfunc"), "{}", text(&o));
    // Images take the same language.
    assert_eq!(
        e.ok(&[
            "image",
            "inspect",
            "--format",
            "{{range .Config.Env}}{{if eq . \"GREETING=hi\"}}yes{{end}}{{end}}",
            "app:1"
        ])
        .trim(),
        "yes"
    );
    e.ok(&["rm", "-v", "t1"]);
    e.ok(&["volume", "rm", "data1"]);
    // A container shows the name of the image it was run by, not the
    // image's first name.
    e.ok(&["tag", "app:1", "alias:7"]);
    e.ok(&["create", "--name", "byalias", "alias:7", "true"]);
    let shown = e.ok(&[
        "inspect",
        "--format",
        "{{.ImageName}} {{.Config.Image}}",
        "byalias",
    ]);
    assert!(
        shown.trim().ends_with("/alias:7") && shown.contains("/alias:7 "),
        "{shown}"
    );
    assert_eq!(
        e.ok(&["ps", "-a", "-q", "--filter", "ancestor=alias:7"])
            .lines()
            .count(),
        1
    );
    e.ok(&["rm", "byalias"]);
    e.ok(&["untag", "app:1", "alias:7"]);
}

/// `start -a`: this run's output, each stream to its own, and the
/// container's exit code; an earlier run's lines are not repeated.
#[test]
fn start_attach_prints_this_run_and_exits_with_its_code() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "create",
        "--name",
        "once",
        "app:1",
        "sh",
        "-c",
        "echo out; echo err >&2; sleep 1; echo late; exit 6",
    ]);
    for _ in 0..2 {
        let o = e.cmd(&["start", "-a", "once"]);
        assert_eq!(o.status.code(), Some(6), "{}", text(&o));
        assert_eq!(out(&o), "out\nlate\n");
        assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    }
    let o = e.cmd(&["start", "-a", "once", "other"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    e.ok(&["rm", "once"]);
}

/// `container|image|volume|network exists` (0 or 1, Podman's), inspect
/// --type and the kind `container inspect` and `image inspect` keep to,
/// and rm printing the name it was given.
#[test]
fn exists_inspect_type_and_rm_output() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "none",
        "app:1",
        "true",
    ]);
    e.ok(&["volume", "create", "v1"]);
    let code = |args: &[&str]| e.cmd(args).status.code();
    assert_eq!(code(&["container", "exists", "c1"]), Some(0));
    assert_eq!(code(&["container", "exists", "nosuch"]), Some(1));
    assert_eq!(code(&["image", "exists", "app:1"]), Some(0));
    assert_eq!(code(&["image", "exists", "nosuch:1"]), Some(1));
    assert_eq!(code(&["volume", "exists", "v1"]), Some(0));
    assert_eq!(code(&["volume", "exists", "v2"]), Some(1));
    assert_eq!(code(&["network", "exists", "skiff"]), Some(0));
    assert_eq!(code(&["network", "exists", "nonet"]), Some(1));
    // A container named like an image: each inspect finds its own kind.
    e.ok(&["tag", "app:1", "c1"]);
    let kind = |args: &[&str]| -> String {
        let v: Value = serde_json::from_str(&e.ok(args)).unwrap();
        if v[0]["State"].is_object() {
            "container"
        } else {
            "image"
        }
        .to_string()
    };
    assert_eq!(kind(&["inspect", "c1"]), "container");
    assert_eq!(kind(&["inspect", "--type", "image", "c1"]), "image");
    assert_eq!(kind(&["image", "inspect", "c1"]), "image");
    assert_eq!(kind(&["container", "inspect", "c1"]), "container");
    assert_eq!(code(&["container", "inspect", "app:1"]), Some(125));
    assert_eq!(code(&["inspect", "--type", "bogus", "c1"]), Some(125));
    assert_eq!(e.ok(&["rm", "c1"]), "c1\n");
    e.ok(&["rmi", "c1"]);
    // history --format: a template over each entry (it printed the table).
    assert_eq!(
        e.ok(&["history", "--format", "{{.CreatedBy}}|{{.ID}}", "app:1"])
            .lines()
            .count(),
        1
    );
    assert!(e
        .ok(&["history", "--format", "{{.CreatedBy}}", "app:1"])
        .starts_with("layer 0\n"));
    // images --format: `table` heads and lines up the columns; Size and
    // Created as the table prints them, CreatedAt in Go's form.
    let t = e.ok(&[
        "images",
        "--format",
        "table {{.Tag}}\t{{.Size}}\t{{.CreatedAt}}\t{{.Created}}",
        "app",
    ]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert!(
        lines[0].starts_with("TAG   SIZE") && lines[0].contains("CREATED AT"),
        "{t}"
    );
    let size_ok = lines[1].contains(" kB") || lines[1].contains(" MB");
    assert!(lines[1].starts_with("1     ") && size_ok, "{t}");
    assert!(
        lines[1].contains("2024-01-02 03:04:05 +0000 UTC") && lines[1].ends_with(" ago"),
        "{t}"
    );
    // images --filter label=KEY[=VALUE].
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Containerfile"),
        "FROM app:1\nLABEL tier=db\n",
    )
    .unwrap();
    e.ok(&[
        "build",
        "-q",
        "-t",
        "labelled:1",
        ctx.path().to_str().unwrap(),
    ]);
    let names = |f: &str| e.ok(&["images", "--filter", f, "--format", "{{.Repository}}"]);
    assert!(
        names("label=tier").trim_end().ends_with("/labelled"),
        "{}",
        names("label=tier")
    );
    assert_eq!(names("label=tier=db").lines().count(), 1);
    assert_eq!(names("label=tier=web"), "");
    e.ok(&["rmi", "labelled:1"]);
    // pod ps --format TEMPLATE (it was refused).
    e.ok(&["pod", "create", "--name", "p1"]);
    assert_eq!(
        e.ok(&["pod", "ps", "--format", "{{.Name}} {{.NumberOfContainers}}"]),
        "p1 1\n"
    );
    e.ok(&["pod", "rm", "-f", "p1"]);
    // volume and network ls/inspect take --format.
    let mp = e.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "v1"]);
    assert!(mp.trim_end().ends_with("/v1/_data"), "{mp}");
    assert_eq!(
        e.ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]),
        "v1 local\n"
    );
    assert_eq!(
        e.ok(&["network", "inspect", "-f", "{{.Name}}", "skiff"]),
        "skiff\n"
    );
    assert!(e
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .any(|l| l == "skiff"));
    e.ok(&["volume", "rm", "v1"]);
}

/// `--all` (-a) on stop, kill, restart, rm and rmi, as Podman's cleanup
/// scripts use them (`rm -af`, `rmi -a`).
#[test]
fn all_flags_stop_kill_rm_and_rmi_everything() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    for n in ["a1", "a2"] {
        e.ok(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "none",
            "app:1",
            "sleep",
            "1000",
        ]);
    }
    e.ok(&[
        "create",
        "--name",
        "a3",
        "--network",
        "none",
        "app:1",
        "true",
    ]);
    let running = || e.ok(&["ps", "-q"]).lines().count();
    assert_eq!(running(), 2);
    // wait --condition: a state other than the end.
    assert_eq!(e.ok(&["wait", "--condition", "running", "a1"]), "-1\n");
    assert_eq!(e.ok(&["wait", "--condition=created", "a3"]), "-1\n");
    assert_eq!(
        e.cmd(&["wait", "--condition", "healthy", "a1"])
            .status
            .code(),
        Some(125)
    );
    // pause -a and unpause -a (-a was taken by start's --attach).
    e.ok(&["pause", "-a"]);
    let states = || e.ok(&["ps", "-a", "--format", "{{.State}}"]);
    assert_eq!(states().matches("paused").count(), 2, "{}", states());
    e.ok(&["unpause", "--all"]);
    assert_eq!(states().matches("running").count(), 2, "{}", states());
    e.ok(&["kill", "-a"]);
    eventually("kill -a ended both", || running() == 0);
    e.ok(&["restart", "-a"]);
    eventually("restart -a started all three", || running() >= 2);
    e.ok(&["stop", "-a", "-t", "0"]);
    assert_eq!(running(), 0);
    // Without a name nor -a: refused; with both: refused.
    assert_eq!(e.cmd(&["rm"]).status.code(), Some(125));
    assert_eq!(e.cmd(&["rm", "-a", "a1"]).status.code(), Some(125));
    e.ok(&[
        "run",
        "-d",
        "--name",
        "a4",
        "--network",
        "none",
        "app:1",
        "sleep",
        "1000",
    ]);
    e.ok(&["rm", "-af"]);
    assert!(e.ok(&["ps", "-a", "-q"]).is_empty());
    e.ok(&["tag", "app:1", "second:1"]);
    e.ok(&["rmi", "-a"]);
    assert!(e.ok(&["images", "-q"]).is_empty());
}

/// `commit --change` (Containerfile instructions on the config),
/// `--author` and `-q`, as Podman's; an instruction it cannot apply is
/// refused by name before anything is written.
#[test]
fn commit_changes_the_config_as_asked() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "echo kept > /f",
    ]);
    let id = e.ok(&[
        "commit",
        "-q",
        "-a",
        "someone",
        "--change",
        r#"CMD ["cat","/f"]"#,
        "-c",
        "ENV A=1 B=2",
        "-c",
        "LABEL tier=db",
        "-c",
        "EXPOSE 8080",
        "-c",
        "WORKDIR /tmp",
        "src",
        "changed:1",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "changed:1"]),
        "kept\n"
    );
    let t = e.ok(&[
        "image", "inspect", "-f",
        "{{.Author}} {{json .Config.Env}} {{index .Config.Labels \"tier\"}} {{json .Config.ExposedPorts}} {{.Config.WorkingDir}}",
        "changed:1",
    ]);
    assert_eq!(
        t,
        "someone [\"PATH=/bin\",\"GREETING=hi\",\"A=1\",\"B=2\"] db {\"8080/tcp\":{}} /tmp\n"
    );
    // Without changes the container's own settings are the image's
    // (Docker's and Podman's commit): -e, -w, -u, -l, --entrypoint and
    // the command, none of the variables the engine adds at run.
    e.ok(&[
        "create",
        "--name",
        "own",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-w",
        "/srv",
        "-u",
        "web",
        "-l",
        "k=v",
        "--entrypoint",
        "sh",
        "app:1",
        "-c",
        "id -un; pwd; echo $FOO",
    ]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}",
            "own"
        ]),
        "[\"sh\"] [\"-c\",\"id -un; pwd; echo $FOO\"] web\n"
    );
    e.ok(&["commit", "-q", "own", "own:1"]);
    let t = e.ok(&[
        "image", "inspect", "-f",
        "{{json .Config.Env}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Labels}}",
        "own:1",
    ]);
    assert_eq!(
        t,
        "[\"PATH=/bin\",\"GREETING=hi\",\"FOO=bar\"] [\"sh\"] [\"-c\",\"id -un; pwd; echo $FOO\"] web /srv {\"k\":\"v\"}\n"
    );
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "own:1"]),
        "web\n/srv\nbar\n"
    );
    e.ok(&["rm", "own"]);
    e.ok(&["rmi", "own:1"]);
    let o = e.cmd(&["commit", "-c", "RUN true", "src", "nope:1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("RUN true"), "{}", text(&o));
    assert_eq!(e.cmd(&["image", "exists", "nope:1"]).status.code(), Some(1));
    e.ok(&["rm", "src"]);
    e.ok(&["rmi", "changed:1"]);
}

/// Podman's --label-file (under --label), --dns-search and --dns-option
/// (the resolv.conf lines replaced; "." for no search domain),
/// --oom-score-adj (process.oomScoreAdj) and --cgroupns private (the
/// container's group is its cgroup root); bad values create nothing.
#[test]
fn label_files_resolver_lines_oom_score_and_cgroupns() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels");
    fs::write(&labels, "# ours\nteam=red\n\nrole=web\n").unwrap();
    let labels = labels.display().to_string();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "lf",
        "--label-file",
        &labels,
        "--label",
        "role=db",
        "app:1",
        "sleep",
        "100",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", "lf"])).unwrap();
    let got = &doc[0]["Config"]["Labels"];
    assert_eq!(
        (&got["team"], &got["role"]),
        (&json!("red"), &json!("db")),
        "{got}"
    );
    e.ok(&["rm", "-f", "lf"]);

    let o = e.cmd(&[
        "run",
        "--rm",
        "--dns-search",
        "a.example",
        "--dns-search",
        "b.example",
        "--dns-option",
        "ndots:2",
        "app:1",
        "grep",
        "-E",
        "^(search|options)",
        "/etc/resolv.conf",
    ]);
    assert_eq!(
        out(&o),
        "search a.example b.example\noptions ndots:2\n",
        "{}",
        text(&o)
    );
    let o = e.cmd(&[
        "run",
        "--rm",
        "--dns-search",
        ".",
        "app:1",
        "grep",
        "-c",
        "^search",
        "/etc/resolv.conf",
    ]);
    assert_eq!(out(&o), "0\n", "{}", text(&o));

    let o = e.cmd(&[
        "run",
        "--rm",
        "--oom-score-adj",
        "500",
        "app:1",
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    assert_eq!(out(&o), "500\n", "{}", text(&o));

    // Every line of /proc/self/cgroup is the root in a namespace of its
    // own; in the host's, the container's group shows.
    let roots = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["app:1", "cat", "/proc/self/cgroup"]);
        let o = e.cmd(&all);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        out(&o).lines().all(|l| l.ends_with(":/"))
    };
    assert!(roots(&["--cgroupns", "private"]));
    assert!(!roots(&["--cgroupns", "host"]));

    let before = e.ok(&["ps", "-a", "-q"]);
    for (args, named) in [
        (vec!["--oom-score-adj", "1001"], "--oom-score-adj"),
        (vec!["--cgroupns", "shared"], "--cgroupns"),
        (vec!["--dns-search", "a b"], "--dns-search"),
        (vec!["--label-file", "/nonexistent/labels"], "--label-file"),
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["app:1", "true"]);
        let o = e.cmd(&all);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    assert_eq!(
        e.ok(&["ps", "-a", "-q"]),
        before,
        "a refused run left a container"
    );
}

/// State.Health of a container, from inspect.
fn health_of(e: &Engine, name: &str) -> Value {
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", name])).unwrap();
    doc[0]["State"]["Health"].clone()
}

/// Health checks as Podman runs them: --health-cmd read as Podman reads
/// it, `healthcheck run` (0, or 1 printing unhealthy), failures counted
/// to --health-retries, both streams in the log, a check cut at its
/// timeout (and its process killed), ps's "(healthy)" and health filter,
/// wait --condition healthy; the monitor's timer and its
/// --health-on-failure actions; the image's HEALTHCHECK tuned by flags
/// or turned off; bad flags refused by name with nothing made.
#[test]
fn health_checks_run_count_time_out_and_act() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // By hand only (no timer): each step is ours.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "echo out; echo err >&2; test -e /tmp/ok",
        "--health-retries",
        "2",
        "--health-interval",
        "disable",
        "app:1",
        "sleep",
        "1000",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", "hc"])).unwrap();
    assert_eq!(
        doc[0]["Config"]["Healthcheck"]["Test"],
        json!(["CMD-SHELL", "echo out; echo err >&2; test -e /tmp/ok"])
    );
    assert_eq!(doc[0]["Config"]["Healthcheck"]["Retries"], json!(2));
    assert_eq!(
        health_of(e, "hc"),
        json!({"Status": "starting", "FailingStreak": 0, "Log": null})
    );
    assert!(e.ok(&["ps"]).contains("(starting)"), "{}", e.ok(&["ps"]));
    let o = e.cmd(&["healthcheck", "run", "hc"]);
    assert_eq!(
        (o.status.code(), out(&o).as_str()),
        (Some(1), "unhealthy\n")
    );
    let h = health_of(e, "hc");
    assert_eq!(
        (&h["Status"], &h["FailingStreak"]),
        (&json!("starting"), &json!(1))
    );
    assert_eq!(h["Log"][0]["Output"], json!("out\nerr"), "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], json!(1), "{h}");
    assert_eq!(e.cmd(&["healthcheck", "run", "hc"]).status.code(), Some(1));
    assert_eq!(health_of(e, "hc")["Status"], json!("unhealthy"));
    assert!(e.ok(&["ps"]).contains("(unhealthy)"), "{}", e.ok(&["ps"]));
    let unhealthy = e.ok(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(unhealthy, "hc\n");
    e.ok(&["exec", "hc", "sh", "-c", "echo > /tmp/ok"]);
    assert_eq!(e.ok(&["healthcheck", "run", "hc"]), "");
    let h = health_of(e, "hc");
    assert_eq!(
        (&h["Status"], &h["FailingStreak"]),
        (&json!("healthy"), &json!(0))
    );
    assert_eq!(h["Log"].as_array().unwrap().len(), 3, "{h}");
    assert!(e.ok(&["ps"]).contains("(healthy)"), "{}", e.ok(&["ps"]));
    assert_eq!(e.ok(&["wait", "--condition", "healthy", "hc"]), "-1\n");

    // A check past its timeout: killed, recorded as -1, the command's
    // exit 125 naming the timeout.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 77",
        "--health-timeout",
        "1s",
        "--health-interval",
        "disable",
        "app:1",
        "sleep",
        "1000",
    ]);
    let o = e.cmd(&["healthcheck", "run", "slow"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(text(&o).contains("timeout of 1s"), "{}", text(&o));
    assert_eq!(health_of(e, "slow")["Log"][0]["ExitCode"], json!(-1));
    let procs = e.ok(&[
        "exec",
        "slow",
        "sh",
        "-c",
        "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
    ]);
    assert!(
        !procs.contains("sleep 77"),
        "the check's process lives on: {procs}"
    );

    // Not for a container without a check, nor one that is not running.
    e.ok(&["create", "--name", "plain", "app:1", "true"]);
    let err = e.fails(&["healthcheck", "run", "plain"]);
    assert!(err.contains("no defined healthcheck"), "{err}");
    assert_eq!(
        health_of(e, "plain"),
        json!({"Status": "", "FailingStreak": 0, "Log": null})
    );
    e.ok(&["stop", "-t", "0", "slow"]);
    let err = e.fails(&["healthcheck", "run", "slow"]);
    assert!(err.contains("not running"), "{err}");

    // The monitor's timer: healthy on its own; kill and restart once
    // unhealthy.
    let timed = |name: &str, cmd: &str, action: &str| {
        e.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--health-cmd",
            cmd,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-on-failure",
            action,
            "app:1",
            "sleep",
            "1000",
        ]);
    };
    timed("fine", "true", "none");
    timed("killed", "false", "kill");
    timed("again", "false", "restart");
    let field = |name: &str, template: &str| e.ok(&["inspect", "--format", template, name]);
    eventually("the timer finds fine healthy", || {
        field("fine", "{{.State.Health.Status}}") == "healthy\n"
    });
    eventually("kill ends killed", || {
        field("killed", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137\n"
    });
    eventually("restart starts again more than once", || {
        field("again", "{{.RestartCount}}")
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    });
    e.ok(&["rm", "-f", "hc", "slow", "plain", "fine", "killed", "again"]);

    // The image's HEALTHCHECK: taken, tuned by a flag, turned off.
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Containerfile"),
        "FROM app:1\nHEALTHCHECK --interval=1s --retries=4 CMD [\"true\"]\n",
    )
    .unwrap();
    e.ok(&[
        "build",
        "-q",
        "-t",
        "checked:1",
        ctx.path().to_str().unwrap(),
    ]);
    let check = |flags: &[&str]| -> Value {
        let mut args = vec!["create", "--name", "img"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["checked:1", "sleep", "1"]);
        e.ok(&args);
        let doc: Value = serde_json::from_str(&e.ok(&["inspect", "img"])).unwrap();
        e.ok(&["rm", "img"]);
        doc[0]["Config"]["Healthcheck"].clone()
    };
    let hc = check(&[]);
    assert_eq!(
        (&hc["Test"], &hc["Interval"], &hc["Retries"]),
        (&json!(["CMD", "true"]), &json!(1_000_000_000u64), &json!(4)),
        "{hc}"
    );
    let hc = check(&["--health-timeout", "2s"]);
    assert_eq!(
        (&hc["Timeout"], &hc["Retries"]),
        (&json!(2_000_000_000u64), &json!(4))
    );
    assert_eq!(check(&["--no-healthcheck"]), Value::Null);
    assert_eq!(check(&["--health-cmd", "none"]), Value::Null);

    // Bad flags: refused naming the flag; no container made.
    run_refuses(
        e,
        &[
            (
                vec!["--health-cmd", "true", "--health-interval", "10ms"],
                "--health-interval",
            ),
            (
                vec!["--health-cmd", "true", "--health-timeout", "soon"],
                "--health-timeout",
            ),
            (
                vec!["--health-cmd", "true", "--health-retries", "0"],
                "--health-retries",
            ),
            (
                vec!["--health-cmd", "true", "--health-on-failure", "boom"],
                "--health-on-failure",
            ),
            (vec!["--health-interval", "5s"], "--health-interval"),
            (
                vec!["--no-healthcheck", "--health-cmd", "true"],
                "--no-healthcheck",
            ),
            (
                vec![
                    "--health-cmd",
                    "true",
                    "--health-on-failure",
                    "restart",
                    "--restart",
                    "always",
                ],
                "--restart",
            ),
        ],
    );
    e.ok(&["rmi", "checked:1"]);
}

/// --expose (inspect's Config.ExposedPorts, published by -P),
/// --network-alias (the peers' /etc/hosts name it so), --log-driver none
/// (the output shown, no log kept), rm -f -t (the stop signal first), and
/// --sig-proxy: a signal to a foreground run reaches the container (its
/// trap runs and its code is the run's), and with --sig-proxy=false it
/// does not.
#[test]
fn expose_alias_log_driver_rm_time_and_sig_proxy() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--expose",
        "7000-7001/udp",
        "--expose",
        "9000",
        "-P",
        "--network-alias",
        "db",
        "--network-alias",
        "cache.local",
        "app:1",
        "sleep",
        "1000",
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", "ex"])).unwrap();
    let exposed = &doc[0]["Config"]["ExposedPorts"];
    for p in ["7000/udp", "7001/udp", "9000/tcp"] {
        assert!(exposed.get(p).is_some(), "{p} in {exposed}");
    }
    let bound = &doc[0]["NetworkSettings"]["Ports"]["9000/tcp"][0]["HostPort"];
    assert!(bound.as_str().is_some_and(|p| !p.is_empty()), "{doc}");
    let hosts = e.ok(&["run", "--rm", "app:1", "cat", "/etc/hosts"]);
    let line = hosts.lines().find(|l| l.contains("\tex")).unwrap_or("");
    assert!(line.ends_with("ex db cache.local"), "{hosts}");
    run_refuses(
        e,
        &[
            (vec!["--expose", "70000"], "--expose"),
            (
                vec!["--network", "none", "--network-alias", "x"],
                "--network-alias",
            ),
            (vec!["--network-alias", "a b"], "--network-alias"),
            (vec!["--sig-proxy=false"], "--sig-proxy"),
            (vec!["--log-driver", "journald"], "--log-driver"),
        ],
    );
    // rm -f -t: TERM first (which the trap answers), not KILL at once.
    let seen = tempfile::tempdir().unwrap();
    let bind = format!("{}:/out", seen.path().display());
    e.ok(&[
        "run",
        "-d",
        "--name",
        "term",
        "-v",
        &bind,
        "app:1",
        "sh",
        "-c",
        "trap 'echo term > /out/got; exit 7' TERM; echo > /out/up; while :; do sleep 0.1; done",
    ]);
    eventually("the trap set", || seen.path().join("up").exists());
    let o = e.cmd(&["rm", "-t", "5", "term"]);
    assert_eq!(o.status.code(), Some(125), "-t wants -f: {}", text(&o));
    let o = e.cmd(&["rm", "-f", "-t", "5", "term"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        e.cmd(&["container", "exists", "term"]).status.code(),
        Some(1)
    );
    assert!(seen.path().join("got").exists(), "no TERM reached it");
    e.ok(&["rm", "-f", "ex"]);

    // --log-driver none: shown, not kept.
    let o = e.cmd(&[
        "run",
        "--log-driver",
        "none",
        "--name",
        "nolog",
        "app:1",
        "echo",
        "shown",
    ]);
    assert_eq!(out(&o), "shown\n", "{}", text(&o));
    let err = e.fails(&["logs", "nolog"]);
    assert!(err.contains("none log driver"), "{err}");
    let driver = e.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.LogConfig.Type}}",
        "nolog",
    ]);
    assert_eq!(driver, "none\n");
    e.ok(&["rm", "nolog"]);

    // A foreground run, signalled: the container gets it.
    let trap = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done";
    let foreground = |proxy: &str| {
        let mut child = Command::new(skiff_bin())
            .arg("--root")
            .arg(e.root())
            .args(["run", proxy, "--name", "sp", "app:1", "sh", "-c", trap])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut out, &mut first).unwrap();
        assert_eq!(first, "ready\n");
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        // What follows (passed on: the trap's line, then the end).
        let mut rest = String::new();
        if proxy.ends_with("true") {
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        }
        (child.wait().unwrap(), rest)
    };
    let (status, rest) = foreground("--sig-proxy=true");
    assert_eq!((status.code(), rest.as_str()), (Some(3), "got-term\n"));
    e.ok(&["rm", "sp"]);
    // Not passed on: the command ends by the signal; the container runs.
    let (status, _) = foreground("--sig-proxy=false");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    let state = e.ok(&["inspect", "--format", "{{.State.Status}}", "sp"]);
    assert_eq!(state, "running\n");
    e.ok(&["rm", "-f", "sp"]);
}

/// --memory-reservation, --cpu-quota/--cpu-period, --cpuset-mems and (v1)
/// --memory-swappiness and --oom-kill-disable, as the container's own
/// cgroup files say; --umask as its first process has it; bad values
/// refused naming the flag.
#[test]
fn reservations_quotas_nodes_swappiness_and_umask() {
    need!("docker-registry", "skopeo");
    if !have_controllers(&["memory", "cpu", "cpuset"]) {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut args = vec![
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-reservation",
        "32m",
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "50000",
        "--cpuset-mems",
        "0",
        "--umask",
        "0077",
    ];
    let mut script = String::from(
        "umask; \
         cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.low; \
         cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max; \
         cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null; \
         cat /sys/fs/cgroup/cpuset/cpuset.mems 2>/dev/null || cat /sys/fs/cgroup/cpuset.mems;",
    );
    let mut want = String::from("0077\n33554432\n");
    want.push_str(if v1 {
        "25000\n50000\n"
    } else {
        "25000 50000\n"
    });
    want.push_str("0\n");
    if v1 {
        args.extend(["--memory-swappiness", "10", "--oom-kill-disable"]);
        script.push_str(
            " cat /sys/fs/cgroup/memory/memory.swappiness; \
             grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control",
        );
        want.push_str("10\noom_kill_disable 1\n");
    }
    args.extend(["app:1", "sh", "-c", &script]);
    let o = e.cmd(&args);
    assert_eq!(out(&o), want, "{}", text(&o));
    run_refuses(
        e,
        &[
            (vec!["--memory-swappiness", "101"], "--memory-swappiness"),
            (vec!["--cpu-quota", "10"], "--cpu-quota"),
            (vec!["--cpu-period", "5"], "--cpu-period"),
            (vec!["--cpus", "1", "--cpu-quota", "50000"], "--cpu-quota"),
            (
                vec!["-m", "64m", "--memory-reservation", "128m"],
                "--memory-reservation",
            ),
            (vec!["--cpuset-mems", "x"], "--cpuset-mems"),
            (vec!["--umask", "999"], "--umask"),
        ],
    );
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// `update`: limits applied to a running container at once (its own
/// cgroup files say so), shown by inspect and kept for its next start; a
/// new restart policy taken by its monitor when the run ends; bad values
/// and an empty update refused.
#[test]
fn update_changes_limits_now_and_later_and_the_restart_policy() {
    need!("docker-registry", "skopeo");
    if !have_controllers(&["memory", "pids", "cpu"]) {
        return;
    }
    let f = fixture();
    let e = &f.e;
    e.ok(&["run", "-d", "--name", "up", "app:1", "sleep", "1000"]);
    let limits = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max";
    assert_eq!(
        e.ok(&[
            "update",
            "-m",
            "128m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            "up"
        ]),
        "up\n"
    );
    assert_eq!(
        e.ok(&["exec", "up", "sh", "-c", limits]),
        "134217728\n50\n50000\n"
    );
    let memory = || e.ok(&["inspect", "--format", "{{.HostConfig.Memory}}", "up"]);
    assert_eq!(memory(), "134217728\n");
    // Stopped: kept for the next start, with what it had.
    e.ok(&["stop", "-t", "0", "up"]);
    e.ok(&["update", "-m", "96m", "up"]);
    e.ok(&["start", "up"]);
    assert_eq!(
        e.ok(&["exec", "up", "sh", "-c", limits]),
        "100663296\n50\n50000\n"
    );
    for (args, named) in [
        (vec!["update", "up"], "nothing to change"),
        (vec!["update", "-m", "lots", "up"], "--memory"),
        (
            vec!["update", "--cpus", "1", "--cpu-quota", "5000", "up"],
            "--cpu-quota",
        ),
        (vec!["update", "--restart", "sometimes", "up"], "--restart"),
        (vec!["update", "-m", "64m", "nosuch"], "nosuch"),
    ] {
        let o = e.cmd(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    assert_eq!(memory(), "100663296\n", "a refused update changed nothing");
    e.ok(&["rm", "-f", "up"]);

    // --restart: taken by the running container's monitor.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "app:1",
        "sh",
        "-c",
        "sleep 1; exit 3",
    ]);
    e.ok(&["update", "--restart", "on-failure:2", "again"]);
    let field = |t: &str| e.ok(&["inspect", "--format", t, "again"]);
    assert_eq!(field("{{.HostConfig.RestartPolicy.Name}}"), "on-failure\n");
    eventually("two restarts", || field("{{.RestartCount}}") == "2\n");
    eventually("the end after them", || {
        field("{{.State.Status}}") == "exited\n"
    });
    // The count is written as the last run starts: "exited" may be seen
    // just before it (the run before's end), and rm then refuses the
    // restarting container. It rests after the last run; rm then works.
    eventually("the last run's end, and rm", || {
        e.cmd(&["rm", "again"]).status.success()
    });
}

/// --pidfile (the container's process, as the host numbers it),
/// --timeout (killed once it has run that long) and --env-host (this
/// shell's environment, under -e's).
#[test]
fn pidfile_timeout_and_env_host() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "pf",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "app:1",
        "sleep",
        "1000",
    ]);
    let pid = fs::read_to_string(&pidfile).unwrap();
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.State.Pid}}", "pf"])
            .trim(),
        pid
    );
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\u{0}1000\u{0}");
    e.ok(&["rm", "-f", "pf"]);

    let o = e.cmd(&["run", "--rm", "--timeout", "1", "app:1", "sleep", "60"]);
    assert_eq!(o.status.code(), Some(137), "{}", text(&o));

    let o = Command::new(skiff_bin())
        .arg("--root")
        .arg(e.root())
        .args([
            "run",
            "--rm",
            "--env-host",
            "-e",
            "FROM_FLAG=2",
            "app:1",
            "env",
        ])
        .env("FROM_HOST_SHELL", "1")
        .env("FROM_FLAG", "1")
        .output()
        .unwrap();
    let env = out(&o);
    assert!(env.contains("FROM_HOST_SHELL=1\n"), "{env}");
    assert!(
        env.contains("FROM_FLAG=2\n") && !env.contains("FROM_FLAG=1"),
        "{env}"
    );

    run_refuses(e, &[(vec!["--pidfile", "/no/such/dir/pid"], "--pidfile")]);
}

/// --device-cgroup-rule (a device the container may open: /dev/net/tun's
/// 10:200, made with mknod, which Docker's rules allow for any device,
/// cannot be opened without the rule and can with it) and the
/// block I/O throttles (the container's blkio files say so); bad ones
/// refused naming the flag. cgroup v1's devices and blkio.
#[test]
fn device_cgroup_rules_and_block_io_throttles() {
    need!("docker-registry", "skopeo");
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("skipped: the devices and blkio files read here are cgroup v1's");
        return;
    }
    if !have_controllers(&["devices", "blkio"]) {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let mknod = "busybox mknod /tmp/tun c 10 200 && cat /tmp/tun 2>&1; true";
    let refused = "Operation not permitted";
    let o = e.cmd(&["run", "--rm", "app:1", "sh", "-c", mknod]);
    assert!(out(&o).contains(refused), "{}", text(&o));
    let o = e.cmd(&[
        "run",
        "--rm",
        "--device-cgroup-rule",
        "c 10:200 rwm",
        "app:1",
        "sh",
        "-c",
        mknod,
    ]);
    // Opened: what a tun device says to a read without its set-up.
    assert!(!out(&o).contains(refused), "{}", text(&o));
    assert!(out(&o).contains("cat: "), "{}", text(&o));

    // A block device of this host: the first /sys/block entry with a node.
    let disk = fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .find(|name| std::path::Path::new("/dev").join(name).exists());
    let Some(disk) = disk else {
        eprintln!("skipped: no block device node in /dev");
        return;
    };
    let numbers = fs::read_to_string(format!("/sys/block/{disk}/dev")).unwrap();
    let numbers = numbers.trim();
    let dev = format!("/dev/{disk}");
    let o = e.cmd(&[
        "run",
        "--rm",
        "--device-read-bps",
        &format!("{dev}:1m"),
        "--device-write-iops",
        &format!("{dev}:100"),
        "app:1",
        "cat",
        "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device",
        "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device",
    ]);
    assert_eq!(
        out(&o),
        format!("{numbers} 1048576\n{numbers} 100\n"),
        "{}",
        text(&o)
    );
    run_refuses(
        e,
        &[
            (
                vec!["--device-cgroup-rule", "x 1:2 rwm"],
                "--device-cgroup-rule",
            ),
            (
                vec!["--device-cgroup-rule", "c 1:2 rwx"],
                "--device-cgroup-rule",
            ),
            (
                vec!["--device-read-bps", "/dev/null:1m"],
                "--device-read-bps",
            ),
            (
                vec!["--device-write-iops", "/dev/vda:many"],
                "--device-write-iops",
            ),
        ],
    );
}

/// `version`, `info` (Podman's keys in JSON, Go's names in a template),
/// `export` (the container's filesystem with its changes, as a tar) and
/// `system prune` (what nothing uses goes; a running container stays).
#[test]
fn version_info_export_and_system_prune() {
    need!("docker-registry", "skopeo");
    if no_cni() {
        return;
    }
    let f = fixture();
    let e = &f.e;
    let version = e.ok(&["version", "--format", "{{.Client.Version}}"]);
    assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "app:1",
        "sh",
        "-c",
        "echo changed > /srv/new; sleep 1000",
    ]);
    let info: Value = serde_json::from_str(&e.ok(&["info", "--format", "json"])).unwrap();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(info["host"]["kernel"], json!(kernel.trim()), "{info}");
    assert_eq!(info["store"]["graphRoot"], json!(e.root()), "{info}");
    assert_eq!(
        info["store"]["containerStore"]["running"],
        json!(1),
        "{info}"
    );
    assert!(
        info["store"]["imageStore"]["number"].as_u64() >= Some(1),
        "{info}"
    );
    let cgroups = e.ok(&["system", "info", "--format", "{{.Host.CgroupsVersion}}"]);
    assert!(cgroups == "v1\n" || cgroups == "v2\n", "{cgroups}");

    eventually("the change made", || {
        e.cmd(&["exec", "ex", "cat", "/srv/new"]).stdout == b"changed\n"
    });
    let o = e.cmd(&["export", "ex"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut found = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(o.stdout.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut body = String::new();
        if entry.header().entry_type().is_file() && path.ends_with("new") {
            std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
        }
        found.insert(path.trim_start_matches("./").to_string(), body);
    }
    assert_eq!(found.get("srv/new").map(String::as_str), Some("changed\n"));
    assert!(found.contains_key("bin/busybox"), "{:?}", found.keys());

    e.ok(&["create", "--name", "idle", "app:1", "true"]);
    e.ok(&["network", "create", "--subnet", "10.122.201.0/24", "spare"]);
    let out = e.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers"), "{out}");
    assert!(out.contains("spare"), "{out}");
    assert_eq!(
        e.cmd(&["container", "exists", "idle"]).status.code(),
        Some(1)
    );
    assert_eq!(
        e.cmd(&["network", "exists", "spare"]).status.code(),
        Some(1)
    );
    assert_eq!(e.cmd(&["container", "exists", "ex"]).status.code(), Some(0));
    e.ok(&["rm", "-f", "ex"]);
}

/// `top` as Podman's (psgo's columns, the pids and users the container
/// sees, ps(1) in the container for other options), the environment
/// Podman gives, `--tz`, the container commands under `container`, and
/// `events` (what happened, filtered, as JSON or a
/// template, and followed until --until). Checked by hand against Podman
/// 4.3 on this host for the columns, the lines and the JSON.
#[test]
fn top_events_tz_and_podmans_environment() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "tp",
        "--label",
        "tier=front",
        "app:1",
        "sh",
        "-c",
        "ln -s busybox /bin/ps; sleep 1000 & exec sleep 1001",
    ]);
    // top: pid 1 is the container's init, its child's parent.
    let rows = |out: &str| -> Vec<Vec<String>> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let mut top = String::new();
    eventually("both sleeps run", || {
        top = e.ok(&["top", "tp"]);
        top.contains("sleep 1000") && top.contains("sleep 1001")
    });
    let t = rows(&top);
    assert_eq!(
        t[0],
        ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"],
        "{top}"
    );
    let row = |cmd: &str| t.iter().find(|r| r[7..].join(" ") == cmd).cloned();
    let init = row("sleep 1001").expect(&top);
    let child = row("sleep 1000").expect(&top);
    assert_eq!(
        (&init[0][..], &init[1][..], &init[2][..]),
        ("root", "1", "0"),
        "{top}"
    );
    assert_eq!(
        (&child[2][..], &child[5][..], &child[6][..]),
        ("1", "?", "0s"),
        "{top}"
    );
    // psgo's args end where /proc's cmdline does: after a NUL, a space.
    assert!(top.contains("sleep 1001 \n"), "{top:?}");
    // Descriptors, comma- or space-separated; the host's pid as inspect has it.
    let host_pid = e.ok(&["inspect", "--format", "{{.State.Pid}}", "tp"]);
    let named = e.ok(&["top", "tp", "pid,hpid", "user", "group", "capeff"]);
    let n = rows(&named);
    assert_eq!(
        n[0][..5],
        ["PID", "HPID", "USER", "GROUP", "EFFECTIVE"],
        "{named}"
    );
    let first = n.iter().find(|r| r[0] == "1").expect(&named);
    assert_eq!(first[1], host_pid.trim(), "{named}");
    assert_eq!(first[2..4], ["root", "root"], "{named}");
    assert!(
        first[4].starts_with("AUDIT_WRITE,CHOWN,DAC_OVERRIDE"),
        "{named}"
    );
    // Not descriptors: ps(1) in the container, its own line left out.
    let ps = e.ok(&["container", "top", "tp", "-o", "pid,args"]);
    assert!(
        ps.contains("sleep 1000") && !ps.contains("-o pid,args"),
        "{ps}"
    );
    let err = e.fails(&["top", "tp", "-o"]);
    assert!(err.contains("ps(1)"), "{err}");

    // exec --privileged: every capability the host can give, for the
    // process alone.
    let caps = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend(["tp", "grep", "CapEff", "/proc/self/status"]);
        let line = e.ok(&all);
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap_or(""), 16).expect(&line)
    };
    let host: u64 = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap();
    assert_eq!(caps(&["--privileged"]), host);
    assert_ne!(caps(&[]), host);

    // Podman's environment: its defaults under the image's and -e's.
    let env = e.ok(&["container", "exec", "tp", "env"]);
    for want in [
        "container=podman",
        "TERM=xterm",
        "PATH=/bin",
        "GREETING=hi",
        "HOME=/root",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in:\n{env}");
    }
    let env = e.ok(&[
        "run",
        "--rm",
        "-e",
        "container=mine",
        "-e",
        "TERM=vt100",
        "app:1",
        "env",
    ]);
    assert!(
        env.contains("container=mine\n") && env.contains("TERM=vt100\n"),
        "{env}"
    );
    // --tz: a copy of the host's zone file as /etc/localtime.
    match fs::read("/usr/share/zoneinfo/Asia/Tokyo") {
        Ok(zone) => {
            let o = e.cmd(&[
                "run",
                "--rm",
                "--tz",
                "Asia/Tokyo",
                "app:1",
                "cat",
                "/etc/localtime",
            ]);
            assert!(o.status.success() && o.stdout == zone, "{}", text(&o));
        }
        Err(_) => eprintln!("skipped: --tz's zone (no /usr/share/zoneinfo/Asia/Tokyo: tzdata)"),
    }
    for bad in ["Nowhere/Else", "../../etc/shadow", "/etc/passwd"] {
        let err = e.fails(&["run", "--rm", "--tz", bad, "app:1", "true"]);
        assert!(err.contains("--tz"), "{bad}: {err}");
    }

    // events: the container's life in order, its labels, its exit code.
    e.ok(&["container", "kill", "-s", "KILL", "tp"]);
    assert_eq!(e.ok(&["container", "wait", "tp"]), "137\n");
    e.ok(&["container", "rm", "tp"]);
    let statuses = e.ok(&[
        "events",
        "--stream=false",
        "--filter",
        "container=tp",
        "--format",
        "{{.Status}}",
    ]);
    let seen: Vec<&str> = statuses
        .lines()
        .filter(|s| !s.starts_with("exec"))
        .collect();
    assert_eq!(
        seen,
        ["create", "init", "start", "kill", "died", "cleanup", "remove"],
        "{statuses}"
    );
    assert!(statuses.contains("exec\nexec_died\n"), "{statuses}");
    let died = e.ok(&[
        "events",
        "--stream=false",
        "--filter",
        "event=died",
        "--filter",
        "label=tier=front",
        "--format",
        "json",
    ]);
    let died: Value = serde_json::from_str(died.trim()).expect(&died);
    assert_eq!(died["ContainerExitCode"], json!(137), "{died}");
    assert_eq!(died["Name"], json!("tp"), "{died}");
    assert_eq!(died["Type"], json!("container"), "{died}");
    assert_eq!(died["Attributes"], json!({"tier": "front"}), "{died}");
    assert!(
        died["Image"].as_str().unwrap_or("").ends_with("app:1"),
        "{died}"
    );
    let line = e.ok(&[
        "events",
        "--stream=false",
        "--filter",
        "event=remove",
        "--filter",
        "type=container",
    ]);
    assert!(
        line.contains(" container remove ") && line.contains("name=tp, tier=front)"),
        "{line}"
    );
    // An image's: pull, tag and untag (the name goes, the image stays).
    e.ok(&["tag", "app:1", "other:2"]);
    let err = e.fails(&["untag", "app:1", "nothere:1"]);
    assert!(err.contains("not a name of image"), "{err}");
    e.ok(&["image", "untag", "app:1", "other:2"]);
    assert_eq!(
        e.cmd(&["image", "exists", "other:2"]).status.code(),
        Some(1)
    );
    assert_eq!(e.cmd(&["image", "exists", "app:1"]).status.code(), Some(0));
    let images = e.ok(&[
        "events",
        "--stream=false",
        "--filter",
        "type=image",
        "--format",
        "{{.Status}} {{.Name}}",
    ]);
    assert!(
        images.contains("pull ")
            && images.contains("tag localhost/other:2\nuntag localhost/other:2\n"),
        "{images}"
    );
    // Followed: a stream from a moment on stops once --until is past.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let follow = Command::new(skiff_bin())
        .arg("--root")
        .arg(e.root())
        .args([
            "events",
            "--filter",
            "type=volume",
            "--format",
            "{{.Status}} {{.Name}}",
        ])
        .args([
            "--since",
            &format!("{now:.3}"),
            "--until",
            &format!("{:.3}", now + 3.0),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    e.ok(&["volume", "create", "sv"]);
    e.ok(&["volume", "rm", "sv"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut follow = follow;
    while follow.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("events did not stop after --until");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = follow.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "create sv\nremove sv\n"
    );
    for bad in ["colour=red", "type=boat", "nokey"] {
        let err = e.fails(&["events", "--stream=false", "--filter", bad]);
        assert!(err.contains("--filter"), "{bad}: {err}");
    }
    let err = e.fails(&["events", "--stream=false", "--since", "someday"]);
    assert!(err.contains("--since"), "{err}");
}

/// Podman's run flags for the files and environment a container starts
/// with (--no-hosts, --unsetenv, --unsetenv-all), --rmi, the platform's
/// parts, --cidfile on stop and rm, and ps's --noheading, --sort and
/// --pod.
#[test]
fn no_hosts_unsetenv_rmi_and_noheading() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let probe = "test -e /etc/hosts && echo hosts || echo none; grep -c ' /etc/hosts ' /proc/self/mountinfo; true";
    assert_eq!(
        e.ok(&["run", "--rm", "app:1", "sh", "-c", probe]),
        "hosts\n1\n"
    );
    assert_eq!(
        e.ok(&["run", "--rm", "--no-hosts", "app:1", "sh", "-c", probe]),
        "none\n0\n"
    );
    let err = e.fails(&[
        "run",
        "--rm",
        "--no-hosts",
        "--add-host",
        "a:10.0.0.1",
        "app:1",
        "true",
    ]);
    assert!(
        err.contains("--no-hosts") && err.contains("--add-host"),
        "{err}"
    );

    // --unsetenv: out of Podman's defaults and the image's, not -e's.
    let env = e.ok(&[
        "run",
        "--rm",
        "--unsetenv",
        "container",
        "--unsetenv",
        "GREETING",
        "--unsetenv",
        "X",
        "-e",
        "X=1",
        "app:1",
        "env",
    ]);
    assert!(
        !env.contains("container=") && !env.contains("GREETING="),
        "{env}"
    );
    assert!(
        env.contains("X=1\n") && env.contains("PATH=/bin\n"),
        "{env}"
    );
    // --unsetenv-all: -e's alone, then HOME and HOSTNAME (Podman's); no
    // PATH, so the program is named by its path.
    let env = e.ok(&[
        "run",
        "--rm",
        "--unsetenv-all",
        "-e",
        "X=1",
        "app:1",
        "/bin/env",
    ]);
    let names: Vec<&str> = env
        .lines()
        .map(|l| l.split('=').next().unwrap_or(""))
        .collect();
    assert_eq!(names, ["X", "HOME", "HOSTNAME"], "{env}");

    // --rmi: as `rmi NAME` (the name alone while the image has others),
    // and not while another container holds the image.
    e.ok(&["run", "--name", "src", "app:1", "true"]);
    e.ok(&["commit", "-q", "src", "rmi:1"]);
    e.ok(&["tag", "rmi:1", "rmi:1b"]);
    e.ok(&["commit", "-q", "-m", "two", "src", "rmi:2"]);
    e.ok(&["rm", "src"]);
    assert_eq!(e.ok(&["run", "--rmi", "rmi:1", "echo", "ran"]), "ran\n");
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "", "--rmi implies --rm");
    assert_eq!(e.cmd(&["image", "exists", "rmi:1"]).status.code(), Some(1));
    assert_eq!(e.cmd(&["image", "exists", "rmi:1b"]).status.code(), Some(0));
    e.ok(&["run", "--rmi", "rmi:1b", "true"]);
    assert_eq!(e.cmd(&["image", "exists", "rmi:1b"]).status.code(), Some(1));
    e.ok(&["create", "--name", "holder", "rmi:2", "true"]);
    e.ok(&["run", "--rmi", "rmi:2", "true"]);
    assert_eq!(e.cmd(&["image", "exists", "rmi:2"]).status.code(), Some(0));
    e.ok(&["rm", "holder"]);
    let removed = e.ok(&[
        "events",
        "--stream=false",
        "--filter",
        "type=image",
        "--filter",
        "event=remove",
        "--filter",
        "event=untag",
        "--format",
        "{{.Status}} {{.Name}}",
    ]);
    assert_eq!(
        removed,
        "untag localhost/rmi:1\nuntag localhost/rmi:1b\nremove localhost/rmi:1b\n"
    );

    // The platform's parts, and not with --platform.
    let err = e.fails(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        "--arch",
        "arm64",
        "app:1",
        "true",
    ]);
    assert!(
        err.contains("--platform") && err.contains("--arch"),
        "{err}"
    );

    // --cidfile on stop, kill and rm (as Podman's systemd units use it).
    let dir = tempfile::tempdir().unwrap();
    let cid = dir.path().join("ctr-id");
    let cid = cid.to_str().unwrap();
    e.ok(&["run", "-d", "--cidfile", cid, "app:1", "sleep", "1000"]);
    // Taken: another run with it is refused before anything is made.
    let before = e.ok(&["ps", "-a", "-q"]);
    let o = e.cmd(&["run", "-d", "--cidfile", cid, "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(text(&o).contains("--cidfile"), "{}", text(&o));
    assert_eq!(e.ok(&["ps", "-a", "-q"]), before);
    e.ok(&["stop", "-t", "0", "--cidfile", cid]);
    let id = fs::read_to_string(cid).unwrap();
    let state = e.ok(&["inspect", "--format", "{{.State.Status}}", id.trim()]);
    assert_eq!(state, "exited\n");
    e.ok(&["rm", "--cidfile", cid]);
    assert_eq!(
        e.cmd(&["container", "exists", id.trim()]).status.code(),
        Some(1)
    );
    let gone = dir.path().join("nothere");
    let gone = gone.to_str().unwrap();
    let err = e.fails(&["stop", "--cidfile", gone]);
    assert!(err.contains("--cidfile"), "{err}");
    e.ok(&["rm", "-f", "--cidfile", gone]);
    e.ok(&["stop", "--ignore", "--cidfile", gone]);

    // --noheading: the rows alone.
    e.ok(&["create", "--name", "listed", "app:1", "true"]);
    let ps = e.ok(&["ps", "-a", "--noheading"]);
    assert!(
        !ps.contains("CONTAINER ID") && ps.contains("listed"),
        "{ps}"
    );
    let ps = e.ok(&["ps", "-a", "--noheading", "--format", "table {{.Names}}"]);
    assert_eq!(ps, "listed\n");
    // --sort (Podman's fields, ascending) and --pod's columns.
    e.ok(&["create", "--name", "zeta", "app:1", "true"]);
    let names = |extra: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        args.extend_from_slice(extra);
        e.ok(&args)
    };
    assert_eq!(names(&[]), "zeta\nlisted\n", "newest first");
    assert_eq!(names(&["--sort", "names"]), "listed\nzeta\n");
    let err = e.fails(&["ps", "--sort", "size"]);
    assert!(err.contains("--sort"), "{err}");
    let ps = e.ok(&["ps", "-a", "--pod"]);
    assert!(
        ps.lines().next().unwrap_or("").contains("NAMES") && ps.contains("   POD ID   PODNAME\n"),
        "{ps}"
    );
    e.ok(&["rm", "zeta"]);
    let images = e.ok(&["images", "--noheading"]);
    assert!(
        !images.contains("REPOSITORY") && images.contains("app"),
        "{images}"
    );
    e.ok(&["rm", "listed"]);
}

/// Podman's `logs` of several containers and `pod logs` (lines led by the
/// short id, or the name with -n), `pod pause`/`unpause`, `volume
/// export`/`import`, `run -a` and `--cgroup-parent`.
#[test]
fn many_logs_pod_pause_volume_tars_attach_and_cgroup_parent() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;

    // logs of two: each line says whose; of one, no prefix.
    let a = e.ok(&[
        "run",
        "--name",
        "la",
        "app:1",
        "sh",
        "-c",
        "echo a1; echo a2",
    ]);
    let b = e.ok(&["run", "--name", "lb", "app:1", "echo", "b1"]);
    assert_eq!((a.as_str(), b.as_str()), ("a1\na2\n", "b1\n"));
    let id = |n: &str| e.ok(&["inspect", "--format", "{{.Id}}", n]).trim()[..12].to_string();
    let (ia, ib) = (id("la"), id("lb"));
    assert_eq!(
        e.ok(&["logs", "la", "lb"]),
        format!("{ia} a1\n{ia} a2\n{ib} b1\n")
    );
    assert_eq!(e.ok(&["logs", "-n", "la", "lb"]), "la a1\nla a2\nlb b1\n");
    assert_eq!(e.ok(&["logs", "-n", "la"]), "a1\na2\n");
    let stamped = e.ok(&["logs", "-n", "-t", "--tail", "1", "la", "lb"]);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped}");
    assert!(
        lines[0].starts_with("la 20") && lines[0].ends_with(" a2"),
        "{stamped}"
    );
    e.ok(&["rm", "la", "lb"]);

    // A pod: its containers' logs (not the infra's), pause and unpause.
    e.ok(&["pod", "create", "--name", "pl"]);
    e.ok(&[
        "run",
        "-d",
        "--pod",
        "pl",
        "--name",
        "pl1",
        "app:1",
        "sh",
        "-c",
        "echo one; exec sleep 100",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--pod",
        "pl",
        "--name",
        "pl2",
        "app:1",
        "sh",
        "-c",
        "printf tw; echo o; exec sleep 100",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while e.ok(&["pod", "logs", "pl"]).lines().count() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(e.ok(&["pod", "logs", "-n", "pl"]), "pl1 one\npl2 two\n");
    assert_eq!(
        e.ok(&["pod", "logs", "pl"]),
        format!("{} one\n{} two\n", id("pl1"), id("pl2"))
    );
    assert_eq!(e.ok(&["pod", "logs", "-c", "pl2", "pl"]), "two\n");
    let err = e.fails(&["pod", "logs", "-c", "nope", "pl"]);
    assert!(err.contains("nope"), "{err}");
    e.ok(&["pod", "pause", "pl"]);
    let status = |n: &str| {
        e.ok(&["inspect", "--format", "{{.State.Status}}", n])
            .trim()
            .to_string()
    };
    assert_eq!(
        (status("pl1"), status("pl2")),
        ("paused".into(), "paused".into())
    );
    assert!(e.ok(&["pod", "ps"]).contains("Paused"));
    // Frozen for real: the kernel's freezer has the group.
    let pid = e.ok(&["inspect", "--format", "{{.State.Pid}}", "pl1"]);
    assert!(frozen(pid.trim()), "pl1 is not frozen");
    e.ok(&["pod", "unpause", "pl"]);
    assert!(!frozen(pid.trim()), "pl1 is still frozen");
    assert_eq!(
        (status("pl1"), status("pl2")),
        ("running".into(), "running".into())
    );
    let events = e.ok(&[
        "events",
        "--stream=false",
        "--filter",
        "type=pod",
        "--format",
        "{{.Status}}",
    ]);
    assert!(events.contains("pause\nunpause\n"), "{events}");
    e.ok(&["pod", "rm", "-f", "-t", "0", "pl"]);

    // volume export / import: the tree with its owners, into another.
    e.ok(&["volume", "create", "vx"]);
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "vx:/d",
        "app:1",
        "sh",
        "-c",
        "echo hi > /d/f; mkdir /d/s; chown 5:6 /d/s; ln -s f /d/l",
    ]);
    let tar = e.root().join("vx.tar");
    e.ok(&["volume", "export", "-o", tar.to_str().unwrap(), "vx"]);
    e.ok(&["volume", "create", "vy"]);
    e.ok(&["volume", "import", "vy", tar.to_str().unwrap()]);
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "-v",
            "vy:/d",
            "app:1",
            "sh",
            "-c",
            "cat /d/l; stat -c '%u:%g' /d/s; readlink /d/l"
        ]),
        "hi\n5:6\nf\n"
    );
    for bad in [["volume", "export", "nope"], ["volume", "import", "nope"]] {
        let mut args = bad.to_vec();
        if bad[1] == "import" {
            args.push(tar.to_str().unwrap());
        }
        assert!(e.fails(&args).contains("nope: no such volume"));
    }
    // volume ls's filters and --noheading; create's --driver/--opt.
    e.ok(&[
        "volume", "create", "--label", "team=a", "--driver", "local", "vz",
    ]);
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "vz\n"
    );
    assert_eq!(
        e.ok(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=team",
            "--filter",
            "dangling=true"
        ]),
        "vz\n"
    );
    assert_eq!(
        e.ok(&["volume", "ls", "--noheading", "--filter", "name=vz"]),
        "local     vz\n"
    );
    assert!(e
        .fails(&["volume", "create", "--opt", "type=tmpfs", "q"])
        .contains("--opt type=tmpfs: needs device="));
    assert!(e
        .fails(&["volume", "create", "--driver", "nfs", "q"])
        .contains("--driver"));
    assert!(e
        .fails(&["volume", "ls", "--filter", "dangling=maybe"])
        .contains("dangling"));
    e.ok(&["volume", "rm", "vx", "vy", "vz"]);

    // run -a: only the streams named reach this command.
    let o = e.cmd(&[
        "run",
        "--rm",
        "-a",
        "stdout",
        "app:1",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(
        (
            String::from_utf8_lossy(&o.stdout).as_ref(),
            String::from_utf8_lossy(&o.stderr).as_ref()
        ),
        ("out\n", "")
    );
    let o = e.cmd(&[
        "run",
        "--rm",
        "-a",
        "STDERR",
        "app:1",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(
        (
            String::from_utf8_lossy(&o.stdout).as_ref(),
            String::from_utf8_lossy(&o.stderr).as_ref()
        ),
        ("", "err\n")
    );
    assert!(e
        .fails(&["run", "-d", "-a", "stdout", "app:1", "true"])
        .contains("--attach"));
    assert!(e
        .fails(&["run", "-a", "both", "app:1", "true"])
        .contains("--attach \"both\""));

    // --cgroup-parent: the container's group is under it, on every
    // hierarchy; inspect says so.
    let parent = format!("skt-engine-{}", std::process::id());
    let _sweep = Sweep(parent.clone());
    e.ok(&[
        "run",
        "-d",
        "--name",
        "cgp",
        "--cgroup-parent",
        &format!("{parent}/jobs"),
        "app:1",
        "sleep",
        "100",
    ]);
    let pid = e.ok(&["inspect", "--format", "{{.State.Pid}}", "cgp"]);
    let cid = e.ok(&["inspect", "--format", "{{.Id}}", "cgp"]);
    let groups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let want = format!(":/{parent}/jobs/{}", cid.trim());
    assert!(groups.lines().all(|l| l.ends_with(&want)), "{groups}");
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.HostConfig.CgroupParent}}", "cgp"])
            .trim(),
        format!("/{parent}/jobs")
    );
    e.ok(&["rm", "-f", "cgp"]);
    assert!(e
        .fails(&["run", "--cgroup-parent", "a/../b", "app:1", "true"])
        .contains("--cgroup-parent"));
    assert!(e
        .fails(&["run", "--cgroups", "disabled", "app:1", "true"])
        .contains("--cgroups"));
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Removes a top-level cgroup (and what is below it) from every
/// hierarchy when dropped: a test's --cgroup-parent stays after its
/// containers, as with Podman and Docker.
struct Sweep(String);

impl Drop for Sweep {
    fn drop(&mut self) {
        let hierarchies = fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten();
        let mut tops: Vec<_> = hierarchies.map(|h| h.path().join(&self.0)).collect();
        tops.push(std::path::Path::new("/sys/fs/cgroup").join(&self.0));
        for top in tops.iter().filter(|t| t.is_dir()) {
            let _ = Command::new("find")
                .arg(top)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .status();
        }
    }
}

/// Whether the kernel's freezer holds `pid`: its v1 freezer group's state,
/// else (cgroup2 alone) its group's cgroup.events.
fn frozen(pid: &str) -> bool {
    let groups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v1 = groups
        .lines()
        .find_map(|l| l.split_once(":freezer:").map(|(_, p)| p.to_string()));
    match v1 {
        Some(path) => {
            fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"))
                .unwrap()
                .trim()
                == "FROZEN"
        }
        None => {
            let path = groups.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.events"))
                .unwrap()
                .contains("frozen 1")
        }
    }
}

/// Podman's secrets: create (a file, stdin, a variable), ls, inspect
/// (never the value), rm; `run --secret` as a read-only file with its
/// owner and mode, or as a variable that inspect leaves out.
#[test]
fn secrets_reach_containers_as_files_and_variables() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let file = e.root().join("pw");
    fs::write(&file, "s3cret").unwrap();
    let id = e.ok(&[
        "secret",
        "create",
        "-l",
        "team=a",
        "db",
        file.to_str().unwrap(),
    ]);
    assert_eq!(id.trim().len(), 25, "{id}");
    let o = Command::new(skiff_bin())
        .args([
            "--root",
            e.root().to_str().unwrap(),
            "secret",
            "create",
            "api",
            "-",
        ])
        .stdin(fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(skiff_bin())
        .args([
            "--root",
            e.root().to_str().unwrap(),
            "secret",
            "create",
            "--env",
            "tok",
            "SKT_TOKEN",
        ])
        .env("SKT_TOKEN", "t0k")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(e
        .fails(&["secret", "create", "db", file.to_str().unwrap()])
        .contains("db: secret name in use"));
    assert!(e
        .fails(&["secret", "create", "x", "/no/such/file"])
        .contains("/no/such/file"));
    let names = e.ok(&["secret", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(names, "db file\napi file\ntok file\n");
    assert_eq!(
        e.ok(&["secret", "ls", "-q", "--filter", "name=db"]).trim(),
        id.trim()
    );
    let doc: Value = serde_json::from_str(&e.ok(&["secret", "inspect", "db"])).unwrap();
    assert_eq!(doc[0]["Spec"]["Name"], "db");
    assert_eq!(doc[0]["Spec"]["Labels"]["team"], "a");
    assert!(!doc.to_string().contains("s3cret"));
    // The store keeps the value root's alone.
    let kept = e.root().join("secrets").join(id.trim()).join("data");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let probe = "cat /run/secrets/db; echo; stat -c '%a %u %g' /run/secrets/db /etc/api; \
                 cat /etc/api; echo; echo $TOKEN; echo x > /run/secrets/db 2>/dev/null || echo ro";
    let out = e.ok(&[
        "run",
        "--rm",
        "--secret",
        "db",
        "--secret",
        "api,target=/etc/api,uid=5,gid=6,mode=0400",
        "--secret",
        "tok,type=env,target=TOKEN",
        "app:1",
        "sh",
        "-c",
        probe,
    ]);
    assert_eq!(out, "s3cret\n444 0 0\n400 5 6\ns3cret\nt0k\nro\n");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "sv",
        "--secret",
        "tok,type=env",
        "app:1",
        "sleep",
        "100",
    ]);
    assert_eq!(e.ok(&["exec", "sv", "sh", "-c", "echo $tok"]), "t0k\n");
    let env = e.ok(&["inspect", "--format", "{{json .Config.Env}}", "sv"]);
    assert!(!env.contains("t0k") && env.contains("PATH="), "{env}");
    e.ok(&["rm", "-f", "-t", "0", "sv"]);

    for (spec, word) in [
        ("nope", "no such secret"),
        ("db,type=file", "type"),
        ("db,type=env,mode=0400", "mode"),
    ] {
        let err = e.fails(&["run", "--rm", "--secret", spec, "app:1", "true"]);
        assert!(
            err.contains("--secret") && err.contains(word),
            "{spec}: {err}"
        );
    }
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
    assert_eq!(e.ok(&["secret", "rm", "db"]).trim(), id.trim());
    assert_eq!(e.cmd(&["secret", "exists", "db"]).status.code(), Some(1));
    assert_eq!(e.cmd(&["secret", "exists", "api"]).status.code(), Some(0));
    e.ok(&["secret", "rm", "--all"]);
    assert!(e.ok(&["secret", "ls", "-q"]).is_empty());
}

/// `--uidmap`/`--gidmap`/`--userns auto`: the container's root is an
/// unprivileged host id; the image's files are its root's (idmapped
/// layers), it can write its root and /etc/hosts, exec joins it (also
/// its network namespace, which the host's user namespace owns), and a
/// commit records the ids the container saw.
#[test]
fn a_user_namespace_of_its_own() {
    need!("docker-registry", "skopeo");
    // Idmapped mounts of an overlay's lower layers: Linux 5.19 and later.
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    if (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) < (5, 19) {
        eprintln!(
            "skipped: user namespaces with idmapped layers need Linux 5.19 (this is {})",
            release.trim()
        );
        return;
    }
    let f = fixture();
    let e = &f.e;
    let probe = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; \
                 stat -c '%u:%g' /bin/sh /; touch /made && echo root-writable; \
                 echo x >> /etc/hosts && echo hosts-writable";
    let out = e.ok(&[
        "run",
        "--rm",
        "--uidmap",
        "0:100000:65536",
        "--gidmap",
        "0:300000:65536",
        "app:1",
        "sh",
        "-c",
        probe,
    ]);
    assert_eq!(
        out,
        "0\n0\n 0 100000 65536\n 0 300000 65536\n0:0\n0:0\nroot-writable\nhosts-writable\n"
    );
    e.ok(&[
        "run",
        "-d",
        "--name",
        "un",
        "--uidmap",
        "0:100000:65536",
        "app:1",
        "sleep",
        "100",
    ]);
    let pid = e.ok(&["inspect", "--format", "{{.State.Pid}}", "un"]);
    let status = fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t100000\t")),
        "{status}"
    );
    // exec joins it, its own network namespace too.
    let net = fs::read_link(format!("/proc/{}/ns/net", pid.trim())).unwrap();
    let got = e.ok(&[
        "exec",
        "un",
        "sh",
        "-c",
        "id -u; readlink /proc/self/ns/net; echo x > /f; chown 7:8 /f",
    ]);
    assert_eq!(got, format!("0\n{}\n", net.display()));
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{json .HostConfig.IDMappings}} {{.HostConfig.UsernsMode}}",
            "un"
        ])
        .trim(),
        r#"{"GidMap":["0:100000:65536"],"UidMap":["0:100000:65536"]} private"#
    );
    // export: the owners as the container sees them.
    let exported = e.root().join("un.tar");
    e.ok(&["export", "-o", exported.to_str().unwrap(), "un"]);
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&exported)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let owner = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {path}")))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    assert_eq!(owner("f").as_deref(), Some("7/8"), "{listing}");
    assert_eq!(owner("etc/").as_deref(), Some("0/0"), "{listing}");
    // cp -a out: the same owners; without -a, root's.
    for (flags, want) in [(vec!["cp", "-a"], "7/8"), (vec!["cp"], "0/0")] {
        let mut args = flags.clone();
        args.extend(["un:/f", "-"]);
        let out = e.cmd(&args);
        let tar = e.root().join("f.tar");
        fs::write(&tar, &out.stdout).unwrap();
        let l = Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
        let l = String::from_utf8_lossy(&l.stdout).into_owned();
        assert_eq!(l.split_whitespace().nth(1), Some(want), "{flags:?}: {l}");
    }
    // cp in: the container's root's (its host ids), -a the files' own
    // ids as the container sees them.
    let host_file = e.root().join("in.txt");
    fs::write(&host_file, "in\n").unwrap();
    std::os::unix::fs::chown(&host_file, Some(1000), Some(1001)).unwrap();
    e.ok(&["cp", host_file.to_str().unwrap(), "un:/in"]);
    e.ok(&["cp", "-a", host_file.to_str().unwrap(), "un:/in-a"]);
    assert_eq!(
        e.ok(&["exec", "un", "sh", "-c", "stat -c %u:%g /in /in-a"]),
        "0:0\n1000:1001\n"
    );
    use std::os::unix::fs::MetadataExt;
    let on_host = fs::metadata(format!("/proc/{}/root/in-a", pid.trim())).unwrap();
    assert_eq!((on_host.uid(), on_host.gid()), (101000, 101001));
    e.ok(&["commit", "un", "un:1"]);
    assert!(e
        .ok(&["run", "--rm", "un:1", "sh", "-c", "stat -c %u:%g /f"])
        .starts_with("7:8"));
    e.ok(&["rm", "-f", "-t", "0", "un"]);
    e.ok(&["rmi", "un:1"]);

    for (args, word) in [
        (vec!["--uidmap", "0:100000"], "--uidmap \"0:100000\""),
        (
            vec!["--uidmap", "0:100:10", "--uidmap", "5:900:10"],
            "overlap",
        ),
        (vec!["--userns", "keep-id"], "keep-id"),
        (vec!["--userns", "host", "--uidmap", "0:1:1"], "--userns"),
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend(args);
        all.extend(["app:1", "true"]);
        let err = e.fails(&all);
        assert!(err.contains(word), "{all:?}: {err}");
    }

    // auto: free ranges of /etc/subuid's "containers" entry (one added
    // for the test, then the files as they were).
    let _subids = SubIds::add("containers:400000000:200000\n");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "a1",
        "--userns",
        "auto:size=1000",
        "app:1",
        "sleep",
        "100",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "a2",
        "--userns",
        "auto:size=1000",
        "app:1",
        "sleep",
        "100",
    ]);
    let maps = |n: &str| {
        e.ok(&[
            "inspect",
            "--format",
            "{{json .HostConfig.IDMappings.UidMap}}",
            n,
        ])
    };
    assert_eq!(maps("a1").trim(), r#"["0:400000000:1000"]"#);
    assert_eq!(maps("a2").trim(), r#"["0:400001000:1000"]"#);
    assert_eq!(e.ok(&["exec", "a2", "id", "-u"]), "0\n");
    e.ok(&["rm", "-f", "-t", "0", "a1", "a2"]);
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
}

/// /etc/subuid and /etc/subgid with a line added until dropped (each
/// replaced whole, by rename, both ways).
struct SubIds(Vec<(String, Vec<u8>)>);

impl SubIds {
    fn add(line: &str) -> SubIds {
        let mut kept = vec![];
        for file in ["/etc/subuid", "/etc/subgid"] {
            let before = fs::read(file).unwrap_or_default();
            let mut after = before.clone();
            after.extend_from_slice(line.as_bytes());
            replace(file, &after);
            kept.push((file.to_string(), before));
        }
        SubIds(kept)
    }
}

impl Drop for SubIds {
    fn drop(&mut self) {
        for (file, before) in &self.0 {
            replace(file, before);
        }
    }
}

fn replace(file: &str, bytes: &[u8]) {
    let tmp = format!("{file}.skiff-test");
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, file).unwrap();
}

/// Podman's run flags --personality, --cpu-rt-*, --blkio-weight(-device),
/// --requires, --pod-id-file, --env-merge, --init-path, --http-proxy,
/// --seccomp-policy; and `mount`/`unmount` of containers.
#[test]
fn personality_requires_env_merge_init_path_proxies_and_mount() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    // --personality LINUX32: uname -m says i686; the config has it.
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--personality",
            "LINUX32",
            "app:1",
            "sh",
            "-c",
            "uname -m"
        ]),
        "i686\n"
    );
    assert!(e
        .fails(&["run", "--rm", "--personality", "BSD", "app:1", "true"])
        .contains("--personality \"BSD\""));
    // --cpu-rt-*: the group's real-time budget (cgroup v1's cpu files).
    let rt = std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us");
    if rt.exists() {
        e.ok(&[
            "run",
            "-d",
            "--name",
            "rt",
            "--cpu-rt-period",
            "1000000",
            "--cpu-rt-runtime",
            "0",
            "app:1",
            "sleep",
            "100",
        ]);
        let id = e.ok(&["inspect", "--format", "{{.Id}}", "rt"]);
        let group = format!("/sys/fs/cgroup/cpu/{}", id.trim());
        assert_eq!(
            fs::read_to_string(format!("{group}/cpu.rt_runtime_us"))
                .unwrap()
                .trim(),
            "0"
        );
        assert_eq!(
            fs::read_to_string(format!("{group}/cpu.rt_period_us"))
                .unwrap()
                .trim(),
            "1000000"
        );
        e.ok(&["rm", "-f", "-t", "0", "rt"]);
    } else {
        eprintln!("skipped: --cpu-rt-* (no cgroup v1 cpu.rt_runtime_us here)");
    }
    // --blkio-weight: in the config; out of range refused by name.
    e.ok(&[
        "create",
        "--name",
        "bw",
        "--blkio-weight",
        "300",
        "app:1",
        "true",
    ]);
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "bw"]);
    let config: Value = serde_json::from_slice(
        &fs::read(
            e.root()
                .join("containers")
                .join(id.trim())
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(config["linux"]["resources"]["blockIO"]["weight"], 300);
    e.ok(&["rm", "bw"]);
    assert!(e
        .fails(&["run", "--blkio-weight", "5", "app:1", "true"])
        .contains("--blkio-weight 5"));
    assert!(e
        .fails(&[
            "run",
            "--blkio-weight-device",
            "/dev/null:100",
            "app:1",
            "true"
        ])
        .contains("not a block device"));

    // --requires: the container it needs is started first.
    e.ok(&["create", "--name", "db", "app:1", "sleep", "100"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--requires",
        "db",
        "app:1",
        "sleep",
        "100",
    ]);
    let state = |n: &str| {
        e.ok(&["inspect", "--format", "{{.State.Status}}", n])
            .trim()
            .to_string()
    };
    assert_eq!(state("db"), "running");
    e.ok(&["stop", "-t", "0", "db", "web"]);
    e.ok(&["start", "web"]);
    assert_eq!(state("db"), "running");
    assert!(e
        .fails(&["run", "--requires", "nope", "app:1", "true"])
        .contains("--requires nope"));
    // rm of what another requires: refused, or with --depend both go
    // (the dependent first).
    assert!(e.fails(&["rm", "-f", "db"]).contains("web depend on it"));
    assert_eq!(
        e.ok(&["rm", "-f", "-t", "0", "--depend", "db"]),
        "web\ndb\n"
    );

    // --pod-id-file: pod create writes it, run reads it; --infra-name,
    // --label-file (under --label), --replace.
    let idfile = e.root().join("pod.id");
    let labels = e.root().join("labels");
    fs::write(&labels, "a=1\n# a comment\nb=2\n").unwrap();
    let pod = e.ok(&[
        "pod",
        "create",
        "--name",
        "pf",
        "--pod-id-file",
        idfile.to_str().unwrap(),
        "--infra-name",
        "pf-infra",
        "--label-file",
        labels.to_str().unwrap(),
        "--label",
        "b=3",
    ]);
    assert_eq!(fs::read_to_string(&idfile).unwrap(), pod.trim());
    let doc: Value = serde_json::from_str(&e.ok(&["pod", "inspect", "pf"])).unwrap();
    assert_eq!(doc[0]["Labels"], json!({"a": "1", "b": "3"}));
    assert!(e
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .any(|l| l == "pf-infra"));
    e.ok(&[
        "run",
        "-d",
        "--name",
        "inpod",
        "--pod-id-file",
        idfile.to_str().unwrap(),
        "app:1",
        "sleep",
        "100",
    ]);
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.Pod}}", "inpod"]).trim(),
        pod.trim()
    );
    assert!(e
        .fails(&["pod", "create", "--name", "pf"])
        .contains("already in use"));
    let again = e.ok(&["pod", "create", "--name", "pf", "--replace"]);
    assert_ne!(again, pod);
    assert!(e.fails(&["inspect", "inpod"]).contains("inpod"));
    e.ok(&["pod", "rm", "-f", "pf"]);

    // --env-merge: ${NAME} is the image's value.
    let env = e.ok(&[
        "run",
        "--rm",
        "--env-merge",
        "PATH=/opt/bin:${PATH}",
        "--env-merge",
        "X=${NOPE}y",
        "app:1",
        "env",
    ]);
    assert!(
        env.contains("PATH=/opt/bin:/bin\n") && env.contains("X=y\n"),
        "{env}"
    );
    assert!(e
        .fails(&["run", "--env-merge", "=x", "app:1", "true"])
        .contains("--env-merge"));

    // --init-path: that program at /dev/init runs `/dev/init -- CMD`.
    let init = e.root().join("myinit");
    fs::write(&init, "#!/bin/sh\necho init \"$@\"\nshift\nexec \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755)).unwrap();
    let out = e.ok(&[
        "run",
        "--rm",
        "--init",
        "--init-path",
        init.to_str().unwrap(),
        "app:1",
        "echo",
        "hi",
    ]);
    assert_eq!(out, "init -- echo hi\nhi\n");
    assert!(e
        .fails(&[
            "run",
            "--init-path",
            init.to_str().unwrap(),
            "app:1",
            "true"
        ])
        .contains("--init-path without --init"));

    // --http-proxy: this command's proxy variables (on by default).
    let proxied = |flag: Option<&str>| {
        let mut args = vec!["--root", e.root().to_str().unwrap(), "run", "--rm"];
        args.extend(flag);
        args.extend(["app:1", "env"]);
        let o = Command::new(skiff_bin())
            .args(&args)
            .env("https_proxy", "http://proxy.test:3128")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(proxied(None).contains("https_proxy=http://proxy.test:3128\n"));
    assert!(!proxied(Some("--http-proxy=false")).contains("proxy"));
    assert!(e
        .fails(&["run", "--seccomp-policy", "image", "app:1", "true"])
        .contains("--seccomp-policy"));

    // mount: the path, marked; listed; unmount takes the mark off.
    e.ok(&["create", "--name", "mt", "app:1", "true"]);
    let path = e.ok(&["mount", "mt"]);
    assert!(
        std::path::Path::new(path.trim()).join("bin/sh").exists(),
        "{path}"
    );
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "mt"]);
    assert_eq!(e.ok(&["mount"]), format!("{}  {}", &id.trim()[..12], path));
    assert_eq!(e.ok(&["container", "unmount", "mt"]), "mt\n");
    assert_eq!(e.ok(&["mount"]), "");
    e.ok(&["rm", "mt"]);
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
}

/// `run --rootfs DIR`: the directory itself is the container's root (its
/// writes land there, and rm leaves it); `DIR:O` puts an overlay over it
/// (writes stay with the container).
#[test]
fn a_rootfs_directory_runs_as_is_or_under_an_overlay() {
    let e = Engine::new();
    let dir = busybox_tree(&e);
    let d = dir.to_str().unwrap();
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--rootfs",
            d,
            "sh",
            "-c",
            "echo hi > /written; cat /written"
        ]),
        "hi\n"
    );
    assert_eq!(fs::read_to_string(dir.join("written")).unwrap(), "hi\n");
    let over = format!("{d}:O");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--rootfs",
            &over,
            "sh",
            "-c",
            "echo x > /over; cat /written /over"
        ]),
        "hi\nx\n"
    );
    assert!(!dir.join("over").exists());
    e.ok(&["run", "-d", "--name", "rf", "--rootfs", d, "sleep", "100"]);
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Names}} {{.Image}}"]).trim(),
        format!("rf {d}")
    );
    assert_eq!(e.ok(&["exec", "rf", "cat", "/written"]), "hi\n");
    assert!(e.fails(&["commit", "rf", "x:1"]).contains("--rootfs"));
    e.ok(&["rm", "-f", "-t", "0", "rf"]);
    // The directory outlives the container, whole.
    assert!(dir.join("bin/sh").exists() && dir.join("written").exists());
    assert!(e
        .fails(&["run", "--rootfs", "/no/such/dir", "true"])
        .contains("not a directory"));
    assert!(e
        .fails(&["run", "--rootfs", "/", "true"])
        .contains("--rootfs /"));
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Podman's `--latest` (`-l`): the container made last.
#[test]
fn latest_acts_on_the_newest_container() {
    let e = Engine::new();
    assert!(e
        .fails(&["logs", "-l"])
        .contains("--latest: there are no containers"));
    let dir = busybox_tree(&e);
    let over = format!("{}:O", dir.display());
    e.ok(&[
        "run", "-d", "--name", "old", "--rootfs", &over, "sleep", "100",
    ]);
    let new = e.ok(&[
        "run",
        "-d",
        "--name",
        "new",
        "--rootfs",
        &over,
        "sh",
        "-c",
        "echo newest; exec sleep 100",
    ]);
    assert_eq!(
        e.ok(&["inspect", "-l", "--format", "{{.Name}}"]).trim(),
        "new"
    );
    assert_eq!(
        e.ok(&["exec", "-l", "sh", "-c", "echo in; ls -d /bin"]),
        "in\n/bin\n"
    );
    assert_eq!(
        e.ok(&["container", "stop", "-t", "0", "--latest"]).trim(),
        new.trim()
    );
    assert!(e.ok(&["logs", "-l"]).contains("newest"));
    assert_eq!(e.ok(&["rm", "-l"]).trim(), new.trim());
    assert_eq!(
        e.ok(&["inspect", "-l", "--format", "{{.Name}}"]).trim(),
        "old"
    );
    e.ok(&["rm", "-f", "-t", "0", "-l"]);
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
}

/// `--filter` on start, stop, pause, restart and rm (ps's keys), `start
/// --all`, `restart --running`.
#[test]
fn filters_pick_what_start_stop_pause_restart_and_rm_act_on() {
    let e = Engine::new();
    let dir = busybox_tree(&e);
    let over = format!("{}:O", dir.display());
    for (name, label) in [("f1", "grp=a"), ("f2", "grp=a"), ("f3", "grp=b")] {
        e.ok(&[
            "create", "--name", name, "-l", label, "--rootfs", &over, "sleep", "100",
        ]);
    }
    let running = || {
        let mut v: Vec<String> = e
            .ok(&["ps", "--format", "{{.Names}}"])
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    e.ok(&["start", "--filter", "label=grp=a"]);
    assert_eq!(running(), ["f1", "f2"]);
    e.ok(&["pause", "--filter", "name=f1"]);
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.State.Status}}", "f1"])
            .trim(),
        "paused"
    );
    e.ok(&["unpause", "--filter", "name=f1"]);
    e.ok(&["stop", "-t", "0", "--filter", "label=grp=a"]);
    assert!(running().is_empty());
    e.ok(&["start", "--all"]);
    assert_eq!(running(), ["f1", "f2", "f3"]);
    e.ok(&["stop", "-t", "0", "f3"]);
    // --running: only those that run are restarted.
    e.ok(&["restart", "--running", "-t", "0", "--filter", "name=f"]);
    assert_eq!(running(), ["f1", "f2"]);
    e.ok(&["rm", "-f", "--filter", "label=grp=a"]);
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(), "f3");
    assert!(e
        .fails(&["stop", "--filter", "bogus=1"])
        .contains("bogus is not a filter"));
    e.ok(&["rm", "f3"]);
}

/// `container checkpoint` and `container restore` (CRIU through
/// skiff-oci): the container rests, exited 0, then carries on where it
/// was, its output in the same log; -R leaves it running.
#[test]
fn a_container_is_checkpointed_and_restored_where_it_was() {
    let criu_ok = Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success());
    if !criu_ok {
        eprintln!(
            "skipped: the criu on PATH does not pass `criu check` (scripts/deps.sh builds 4.2)"
        );
        return;
    }
    let e = Engine::new();
    let dir = busybox_tree(&e);
    let over = format!("{}:O", dir.display());
    let counter = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done";
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ck",
        "--network",
        "none",
        "--rootfs",
        &over,
        "sh",
        "-c",
        counter,
    ]);
    let last = |e: &Engine| -> i64 {
        e.ok(&["logs", "ck"])
            .lines()
            .last()
            .and_then(|l| l.parse().ok())
            .unwrap_or(-1)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while last(&e) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(e.ok(&["container", "checkpoint", "ck"]), "ck\n");
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ck"
        ])
        .trim(),
        "exited 0"
    );
    let at = last(&e);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(last(&e), at, "it counted on after its checkpoint");
    assert_eq!(e.ok(&["container", "restore", "ck"]), "ck\n");
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.State.Status}}", "ck"])
            .trim(),
        "running"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while last(&e) < at + 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The count goes on from where it was, not from 0 again.
    let log = e.ok(&["logs", "ck"]);
    let counts: Vec<i64> = log.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(counts.windows(2).all(|w| w[1] == w[0] + 1), "{log}");
    assert!(*counts.last().unwrap() >= at + 3, "{log}");
    assert_eq!(e.ok(&["exec", "ck", "echo", "in"]), "in\n");
    // -R: the checkpoint is made, the container runs on.
    e.ok(&["container", "checkpoint", "-R", "ck"]);
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.State.Status}}", "ck"])
            .trim(),
        "running"
    );
    assert!(e
        .fails(&["container", "restore", "ck"])
        .contains("the container is running"));
    // Stopped, it is restored from that checkpoint.
    e.ok(&["stop", "-t", "0", "ck"]);
    e.ok(&["container", "restore", "--tcp-established", "ck"]);
    assert_eq!(e.ok(&["exec", "ck", "echo", "back"]), "back\n");
    e.ok(&["rm", "-f", "-t", "0", "ck"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "fresh",
        "--network",
        "none",
        "--rootfs",
        &over,
        "sleep",
        "100",
    ]);
    assert!(e
        .fails(&["container", "restore", "fresh"])
        .contains("no checkpoint"));
    e.ok(&["rm", "-f", "-t", "0", "fresh"]);
    assert!(e
        .fails(&["container", "checkpoint", "nope"])
        .contains("nope"));
}

/// A busybox root filesystem in the engine's test directory (for
/// `--rootfs`: no registry needed).
fn busybox_tree(e: &Engine) -> std::path::PathBuf {
    let dir = e.root().join("tree");
    let made = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/mkrootfs.sh"
    ))
    .arg(&dir)
    .output()
    .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    dir
}

/// Podman's flags scripts use: import -c/-m, ps -s, pod rm -a, pod ps
/// --filter/--noheading, pod inspect --format; then system reset takes
/// everything, mounts included, and the store itself.
#[test]
fn import_changes_ps_size_pod_filters_and_system_reset() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let e = &f.e;
    let tar = e.root().join("rootfs.tar");
    e.ok(&["export", "-o", tar.to_str().unwrap(), &{
        e.ok(&[
            "create",
            "--name",
            "src",
            "--network",
            "none",
            "app:1",
            "true",
        ]);
        "src".to_string()
    }]);
    e.ok(&["rm", "src"]);
    e.ok(&[
        "import",
        "-c",
        r#"CMD ["cat", "/etc/os-release"]"#,
        "-c",
        "ENV A=1",
        "-m",
        "a note",
        tar.to_str().unwrap(),
        "imported:1",
    ]);
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "imported:1"]),
        "NAME=skiff-test\n"
    );
    assert!(e.ok(&["history", "imported:1"]).contains("a note"));
    assert!(e
        .ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Env}}",
            "imported:1"
        ])
        .contains("A=1"));
    // ps -s: what the container wrote, and with its image.
    e.ok(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "echo 12345 > /f",
    ]);
    let ps = e.ok(&["ps", "-a", "-s", "--filter", "name=writer"]);
    assert!(ps.lines().next().unwrap().ends_with("SIZE"), "{ps}");
    assert!(ps.contains("(virtual "), "{ps}");
    // Pods: filters, no header, a template; rm -a.
    e.ok(&["pod", "create", "--name", "pa", "--label", "tier=a"]);
    e.ok(&["pod", "create", "--name", "pb"]);
    let ls = e.ok(&["pod", "ps", "--noheading", "--filter", "label=tier=a"]);
    assert!(ls.contains("pa") && !ls.contains("pb"), "{ls}");
    assert_eq!(
        e.ok(&["pod", "ps", "-q", "--filter", "name=^pb$"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        e.ok(&["pod", "inspect", "--format", "{{.Name}}", "pb"]),
        "pb\n"
    );
    assert_eq!(e.cmd(&["pod", "rm", "nosuchpod"]).status.code(), Some(1));
    e.ok(&["pod", "rm", "-f", "nosuchpod"]);
    e.ok(&["pod", "rm", "-a", "-f"]);
    assert!(e.ok(&["pod", "ps", "-q"]).is_empty());
    // system reset: containers (a running one), a volume, an image mount.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "-v",
        "vr:/v",
        "app:1",
        "sleep",
        "1000",
    ]);
    e.ok(&["image", "mount", "app:1"]);
    e.ok(&["system", "reset", "-f"]);
    let root = e.root().display().to_string();
    assert!(!e.root().exists(), "the store is still there");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "a mount of the store is left");
}
