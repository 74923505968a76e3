//! Containers from images, as `docker run` users expect them: the image's
//! config under the flags, Docker's exit codes, output kept in a log, a
//! monitor per container instead of a daemon, nothing left after `rm`.
//! skiff-oci runs them ($SKIFF_OCI, scripts/test.sh's static build).

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

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
    let o = e.cmd(&["run", "--rm", "-u", "ghost", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
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
    // A name in use is refused.
    let o = e.cmd(&["run", "-d", "--name", "web", "app:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("already in use"), "{}", text(&o));
    // The image is in use: rmi refuses.
    let err = e.fails(&["rmi", "app:1"]);
    assert!(err.contains("in use by container:"), "{err}");
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
    let ps = e.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(e.ok(&["ps", "-q"]).trim().is_empty());
    e.ok(&["rm", "web"]);
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty());
    e.ok(&["rmi", "app:1"]);
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
    for (args, flag) in [
        (vec!["-m", "lots"], "--memory"),
        (vec!["--cpus", "-1"], "--cpus"),
        (vec!["-v", "./relative:/x"], "-v"),
        (vec!["-v", "vol:relative"], "-v"),
        (vec!["--mount", "type=nfs,target=/x"], "--mount"),
        (vec!["--ulimit", "nofile=9:1"], "--ulimit"),
        (vec!["--cap-add", "bad name"], "--cap-add"),
        (vec!["--security-opt", "apparmor=x"], "--security-opt"),
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend(args.iter().copied());
        all.extend(["app:1", "true"]);
        let o = e.cmd(&all);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(flag), "{args:?}: {}", text(&o));
    }
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
    e.ok(&["stop", "quick"]);
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
    assert_eq!(e.ok(&["logs", "again"]).matches("hello").count(), 3);
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
    assert!(e.ok(&["network", "ls"]).contains("10.122.200.0/24"));
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
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
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
    // In use: not removed.
    let o = e.cmd(&["volume", "rm", "conf"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
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
        (&["volume", "rm", "nosuchvolume"][..], "nosuchvolume"),
    ] {
        let o = e.cmd(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
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
    e.ok(&["volume", "create", "--label", "k=v", "spare"]);
    e.ok(&["volume", "prune", "-f"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "conf\nspare\n");
    assert_eq!(e.ok(&["volume", "prune", "-f", "--all"]), "conf\nspare\n");
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
        (vec!["network", "rm", "back"], "use it"),
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
    e.ok(&["network", "disconnect", "back", "app"]);
    assert!(!reach().status.success(), "app reached db after disconnect");
    assert!(!e.ok(&["exec", "db", "cat", "/etc/hosts"]).contains("app"));
    assert!(!e
        .ok(&["exec", "app", "busybox", "ip", "addr"])
        .contains("eth1"));
    e.ok(&["network", "connect", "back", "app"]);
    e.ok(&["rm", "-f", "app", "db"]);
    e.ok(&["network", "rm", "back"]);
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
        "app:1",
        "sleep",
        "100",
    ]);
    let (web_id, web_ip) = inspect("web");
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
    // chains (another test's doctor may get there first: either way they
    // go).
    e.ok(&["network", "create", "--subnet", "10.122.214.0/24", "orphan"]);
    let b4 = bridge("orphan");
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
    e.ok(&["network", "rm", "orphan"]);
}
