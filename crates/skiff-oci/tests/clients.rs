//! The real clients from Debian driving skiff-oci in place of runc: podman
//! (`--runtime`, as root and rootless), containerd's runc shim (`ctr run
//! --runc-binary`) and Docker (`dockerd --add-runtime`), each with its own
//! state directories, cleaned up afterwards.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Removes a client's parent cgroup (podman's libpod_parent, containerd's
/// namespace group) in every hierarchy, if the client left it empty.
fn remove_parent_cgroups(name: &str) {
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let _ = fs::remove_dir(e.path().join(name));
        }
    }
    let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
}

/// With podman (`cmd`, as root or a user): a container's exit code comes
/// back, and a detached one is up as `name`; its id.
fn exit_code_and_detached(
    cmd: &dyn Fn(&[&str]) -> Output,
    rootfs: &str,
    name: &str,
    extra: &[&str],
) -> String {
    let out = cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        rootfs,
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(extra);
    args.extend(["--rootfs", rootfs, "sleep", "1000"]);
    let out = cmd(&args);
    assert!(out.status.success(), "{}", text(&out));
    let cid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = cmd(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(text(&out).contains(&format!("{name} Up")), "{}", text(&out));
    cid
}

/// Stops (podman kills through skiff-oci) and removes container `name`.
fn stop_and_remove(cmd: &dyn Fn(&[&str]) -> Output, name: &str) {
    let out = cmd(&["stop", "--time", "1", name]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cmd(&["rm", name]);
    assert!(out.status.success(), "{}", text(&out));
}

struct Podman {
    env: TestEnv,
    rootfs: PathBuf,
}

impl Podman {
    fn new(name: &str) -> Podman {
        let env = TestEnv::new(name);
        let b = env.bundle("img", &["true"]);
        // This machine's hard limits are below podman's default ulimits.
        fs::write(
            env.base.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        Podman {
            rootfs: b.rootfs(),
            env,
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", self.env.base.join("containers.conf"))
            .arg("--root")
            .arg(self.env.base.join("storage"))
            .arg("--runroot")
            .arg(self.env.base.join("run"))
            .args(["--storage-driver", "vfs", "--runtime", skiff()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman is installed (scripts/deps.sh)")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]);
        // conmon's group is podman's, made under the same parent.
        remove_parent_cgroups("libpod_parent/conmon");
        remove_parent_cgroups("libpod_parent");
    }
}

#[test]
fn podman_runs_containers_with_skiff() {
    let p = Podman::new("podman");
    let rootfs = p.rootfs.to_str().unwrap().to_string();
    let out = p.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo hello-podman; echo $$; cat /proc/self/cgroup",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.starts_with("hello-podman\n1\n"), "{t}");
    assert!(t.contains("libpod"), "podman's cgroup path is used: {t}");

    // Detached, then stopped (podman kills through skiff-oci) and removed.
    let cmd = |args: &[&str]| p.cmd(args);
    let cid = exit_code_and_detached(&cmd, &rootfs, "skt-podman-d", &["--memory", "64m"]);
    let mem = cgroup_dir("memory", &format!("/libpod_parent/libpod-{cid}"));
    assert_eq!(read(mem.join("memory.limit_in_bytes")).trim(), "67108864");
    stop_and_remove(&cmd, "skt-podman-d");
    assert!(!mem.exists(), "cgroup left after podman rm");
}

struct Containerd {
    env: TestEnv,
    daemon: Child,
    sock: PathBuf,
    rootfs: PathBuf,
}

impl Containerd {
    fn start(name: &str) -> Containerd {
        let env = TestEnv::new(name);
        let b = env.bundle("img", &["true"]);
        let base = env.base.display().to_string();
        let config = env.base.join("containerd.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{base}/c-root\"\nstate = \"{base}/c-state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{base}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{base}/containerd.sock.ttrpc\"\n"
            ),
        )
        .unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(fs::File::create(env.base.join("containerd.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("containerd is installed (scripts/deps.sh)");
        let sock = env.base.join("containerd.sock");
        let c = Containerd {
            rootfs: b.rootfs(),
            env,
            daemon,
            sock,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.ctr(&["version"]).status.code() != Some(0) {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.sock)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in ["skt-ctr-fg", "skt-ctr-d"] {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "delete", "--force", id]);
            let _ = self.ctr(&["container", "delete", id]);
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // The shims run on their own; with no task left they exit, but make sure.
        let _ = Command::new("pkill")
            .args([
                "-f",
                &format!("containerd-shim.*{}", self.env.base.display()),
            ])
            .status();
        remove_parent_cgroups("default");
    }
}

#[test]
fn containerd_runc_shim_runs_containers_with_skiff() {
    let c = Containerd::start("ctr");
    let rootfs = c.rootfs.to_str().unwrap().to_string();
    // ctr gives a rootfs without an image no PATH: without one runc finds
    // no bare program, and skiff-oci neither.
    let path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let out = c.ctr(&[
        "run",
        "--env",
        path_env,
        "--runc-binary",
        skiff(),
        "--rm",
        "--rootfs",
        &rootfs,
        "skt-ctr-fg",
        "sh",
        "-c",
        "echo hello-ctr; echo $$; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello-ctr\n1\n");

    let out = c.ctr(&[
        "run",
        "-d",
        "--env",
        path_env,
        "--runc-binary",
        skiff(),
        "--rootfs",
        &rootfs,
        "skt-ctr-d",
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = c.ctr(&["task", "ls"]);
    let line = text(&out)
        .lines()
        .find(|l| l.starts_with("skt-ctr-d"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("RUNNING"), "{}", text(&out));
    let pid = line.split_whitespace().nth(1).unwrap().to_string();
    assert!(read(format!("/proc/{pid}/cgroup")).contains("/default/skt-ctr-d"));
    let out = c.ctr(&["task", "kill", "-s", "KILL", "skt-ctr-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&c.ctr(&["task", "ls"])).contains("STOPPED") {
        assert!(Instant::now() < deadline, "task never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = c.ctr(&["task", "delete", "skt-ctr-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = c.ctr(&["container", "delete", "skt-ctr-d"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!cgroup_dir("memory", "/default/skt-ctr-d").exists());
}

/// A private dockerd (Debian's docker.io) with skiff-oci added as the runtime
/// `skiff`, in a network namespace of its own: its bridge, veths, iptables
/// rules and port proxies go with it. Its image is the busybox rootfs,
/// imported.
struct Docker {
    env: TestEnv,
    daemon: Child,
    sock: String,
    had_run_docker: bool,
}

impl Docker {
    fn start(name: &str) -> Docker {
        let env = TestEnv::new(name);
        let b = env.bundle("img", &["true"]);
        let base = env.base.display().to_string();
        let sock = format!("unix://{base}/docker.sock");
        let had_run_docker = Path::new("/run/docker").exists();
        // Its own configuration, not the host's, and its identity key here,
        // not in /etc/docker.
        let config = env.base.join("daemon.json");
        fs::write(
            &config,
            format!("{{\"deprecated-key-path\": \"{base}/key.json\"}}"),
        )
        .unwrap();
        let daemon = Command::new("unshare")
            // dockerd finds iptables and docker-proxy on PATH.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec dockerd \"$@\"",
                "sh",
            ])
            .args(["--data-root", &format!("{base}/data")])
            .args(["--exec-root", &format!("{base}/exec")])
            .args(["--pidfile", &format!("{base}/dockerd.pid")])
            .arg("--config-file")
            .arg(&config)
            .args(["-H", &sock, "--storage-driver", "vfs"])
            .args(["--add-runtime", &format!("skiff={}", skiff())])
            .stdout(fs::File::create(env.base.join("dockerd.log")).unwrap())
            .stderr(Stdio::from(
                fs::File::create(env.base.join("dockerd.err")).unwrap(),
            ))
            .spawn()
            .expect("dockerd is installed (docker.io, scripts/deps.sh)");
        let d = Docker {
            env,
            daemon,
            sock,
            had_run_docker,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while d.docker(&["version"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                fs::read_to_string(d.env.base.join("dockerd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let import = Command::new("sh")
            .args([
                "-c",
                "tar -C \"$1\" -c . | /usr/bin/docker -H \"$2\" import - skt-busybox",
                "sh",
            ])
            .arg(b.rootfs())
            .arg(&d.sock)
            .output()
            .unwrap();
        assert!(import.status.success(), "{}", text(&import));
        d
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/docker")
            .args(["-H", &self.sock])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `docker ARGS`, which must succeed; its stdout, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = String::from_utf8_lossy(&self.docker(&["ps", "-aq"]).stdout).to_string();
        for id in ids.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // A clean stop: dockerd stops its containerd and tears its networks down.
        let _ = Command::new("kill")
            .args(["-TERM", &self.daemon.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let base = self.env.base.display().to_string();
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &format!("containerd.*{base}")])
            .status();
        // Whatever it still had mounted under its directories, deepest first.
        let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|p| p.starts_with(&base))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", &p]).status();
        }
        remove_parent_cgroups("docker");
        // dockerd's one global directory, if it made it and left it empty.
        if !self.had_run_docker {
            let _ = fs::remove_dir("/run/docker/plugins");
            let _ = fs::remove_dir("/run/docker");
        }
    }
}

#[test]
fn docker_runs_containers_with_skiff() {
    let d = Docker::start("docker");
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--runtime", "skiff", "--network", "none"];
        all.extend_from_slice(args);
        d.docker(&all)
    };

    // The exit code comes back through containerd's shim and skiff-oci.
    assert_eq!(
        run(&["skt-busybox", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );

    // docker run's options, each seen from inside.
    let out = run(&[
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--security-opt",
        "no-new-privileges",
        "--pids-limit",
        "50",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--user",
        "1000:1000",
        "-w",
        "/tmp",
        "-e",
        "FOO=bar",
        "--ulimit",
        "nofile=512:512",
        "--hostname",
        "hh",
        "--shm-size",
        "8m",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=100",
        "skt-busybox",
        "sh",
        "-c",
        "echo $FOO $(hostname) $(id -u) $(pwd); grep -E 'CapEff|NoNewPrivs' /proc/self/status; \
         ulimit -n; touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs; \
         df -k /dev/shm | tail -1 | awk '{print $2}'; \
         cat /proc/sys/net/ipv4/ip_unprivileged_port_start /sys/fs/cgroup/pids/pids.max \
             /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let want = "bar hh 1000 /tmp\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n512\nro\ntmpfs\n\
                8192\n100\n50\n67108864\n50000\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    // A detached container: exec, top, pause, update, stop with its trap, logs.
    let id = d.ok(&[
        "run",
        "-d",
        "--runtime",
        "skiff",
        "--network",
        "none",
        "--name",
        "skt-docker-d",
        "skt-busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo started; while true; do sleep 0.1; done",
    ]);
    // skiff-oci runs it: its own `state` reads the container's state (runc's
    // record would not parse), under the root containerd's shim gives it.
    let found = Command::new("find")
        .arg(d.env.base.join("exec"))
        .args(["-path", &format!("*/moby/{id}/state.json")])
        .output()
        .unwrap();
    let state = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    let root = state.parent().and_then(Path::parent).expect("a state root");
    let out = Command::new(skiff())
        .arg("--root")
        .arg(root)
        .args(["state", &id])
        .output()
        .unwrap();
    assert!(
        text(&out).contains("\"status\": \"running\""),
        "{}",
        text(&out)
    );
    let out = d.docker(&["exec", "skt-docker-d", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(
        d.ok(&["exec", "-u", "1000", "skt-docker-d", "id", "-u"]),
        "1000"
    );
    assert!(d.ok(&["top", "skt-docker-d"]).contains("trap"));
    let freezer = cgroup_dir("freezer", &format!("/docker/{id}")).join("freezer.state");
    d.ok(&["pause", "skt-docker-d"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "skt-docker-d"]),
        "paused"
    );
    assert_eq!(read(&freezer).trim(), "FROZEN");
    d.ok(&["unpause", "skt-docker-d"]);
    assert_eq!(read(&freezer).trim(), "THAWED");
    d.ok(&[
        "update",
        "--memory",
        "100m",
        "--memory-swap",
        "200m",
        "--pids-limit",
        "30",
        "skt-docker-d",
    ]);
    let limits = d.ok(&[
        "exec",
        "skt-docker-d",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(limits, "104857600\n30");
    d.ok(&["stop", "-t", "10", "skt-docker-d"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "skt-docker-d"]),
        "7"
    );
    assert_eq!(d.ok(&["logs", "skt-docker-d"]), "started\ngot-term");
    d.ok(&["rm", "skt-docker-d"]);
    assert!(!freezer.exists(), "cgroup left after docker rm");

    // The memory limit's OOM kill, as Docker reports it.
    let out = d.docker(&[
        "run",
        "--name",
        "skt-docker-oom",
        "--runtime",
        "skiff",
        "--network",
        "none",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "skt-busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out));
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "skt-docker-oom"]),
        "true"
    );
    d.ok(&["rm", "skt-docker-oom"]);

    // Docker's own networking: the bridge and veth its prestart hook sets up,
    // and a published port, reached from dockerd's network namespace.
    d.ok(&[
        "run",
        "-d",
        "--runtime",
        "skiff",
        "--name",
        "skt-docker-web",
        "-p",
        "18080:80",
        "--hostname",
        "skt-web",
        "skt-busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let pid = d.daemon.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let out = Command::new("nsenter")
            .args([
                "-n",
                "-t",
                &pid,
                "busybox",
                "wget",
                "-qO-",
                "http://127.0.0.1:18080/hostname",
            ])
            .output()
            .unwrap();
        if out.status.success() || Instant::now() > deadline {
            break text(&out);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(page.trim(), "skt-web");
    d.ok(&["rm", "-f", "skt-docker-web"]);
}

/// Rootless podman: a user made for the test (useradd gives it subordinate
/// ids), whose podman runs skiff-oci as uid 0 of its own user namespace.
struct RootlessPodman {
    env: TestEnv,
    user: String,
    rootfs: PathBuf,
    /// skiff-oci, copied where the user can run it (the checkout may be
    /// under a home the user cannot enter).
    skiff: PathBuf,
    /// /etc/subuid and /etc/subgid, when the test made them (useradd gives
    /// subordinate ids only where they exist).
    made_subid_files: bool,
}

impl RootlessPodman {
    fn new(name: &str) -> RootlessPodman {
        let env = TestEnv::new(name);
        let b = env.bundle("img", &["true"]);
        let user = format!("skt-rl{}", std::process::id() % 100_000);
        let _ = Command::new("/usr/sbin/userdel").arg(&user).output();
        let made_subid_files = !Path::new("/etc/subuid").exists();
        for f in ["/etc/subuid", "/etc/subgid"] {
            if !Path::new(f).exists() {
                fs::write(f, "").unwrap();
            }
        }
        // Whatever the umask: the user walks through these to its home.
        use std::os::unix::fs::PermissionsExt;
        for dir in [Path::new("/tmp/skiff-tests"), env.base.as_path()] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let skiff_copy = env.base.join("skiff-oci");
        fs::copy(skiff(), &skiff_copy).unwrap();
        fs::set_permissions(&skiff_copy, fs::Permissions::from_mode(0o755)).unwrap();
        let home = env.base.join("home");
        let out = Command::new("/usr/sbin/useradd")
            .args(["-M", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(&user)
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd: {}", text(&out));
        let p = RootlessPodman {
            env,
            user,
            skiff: skiff_copy,
            made_subid_files,
            rootfs: b.rootfs(),
        };
        let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
        assert!(
            subuid
                .lines()
                .any(|l| l.starts_with(&format!("{}:", p.user))),
            "useradd gave no subordinate ids: {subuid}"
        );
        fs::create_dir_all(home.join("run")).unwrap();
        // The rootfs is the user's too: podman writes into it (/etc/mtab).
        let chown = Command::new("chown")
            .args(["-R", &format!("{0}:{0}", p.user)])
            .arg(&home)
            .arg(&p.rootfs)
            .status()
            .unwrap();
        assert!(chown.success());
        fs::set_permissions(home.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        p
    }

    fn home(&self) -> PathBuf {
        self.env.base.join("home")
    }

    /// podman as the user, with its runtime dir and storage in its home.
    fn cmd(&self, args: &[&str]) -> Output {
        let home = self.home();
        Command::new("/usr/sbin/runuser")
            .args(["-u", &self.user, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", home.join("run").display()))
            .arg(format!("HOME={}", home.display()))
            .arg(format!("USER={}", self.user))
            .args(["podman", "--storage-driver", "vfs", "--runtime"])
            .arg(&self.skiff)
            .arg("--root")
            .arg(home.join("storage"))
            .arg("--runroot")
            .arg(home.join("runroot"))
            .args(args)
            .current_dir(&home)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]);
        // Podman's pause process keeps its user namespace; nothing else of
        // the user's may outlive the test.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let _ = Command::new("pkill")
                .args(["-KILL", "-u", &self.user])
                .status();
            let left = Command::new("pgrep").args(["-u", &self.user]).output();
            if left.is_ok_and(|o| !o.status.success()) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("/usr/sbin/userdel").arg(&self.user).output();
        if self.made_subid_files {
            for f in ["/etc/subuid", "/etc/subgid"] {
                if fs::read_to_string(f).is_ok_and(|t| t.trim().is_empty()) {
                    let _ = fs::remove_file(f);
                }
            }
        }
    }
}

#[test]
fn rootless_podman_runs_containers_with_skiff() {
    let p = RootlessPodman::new("prl");
    let rootfs = p.rootfs.to_str().unwrap().to_string();
    let uid = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-u", &p.user])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let out = p.cmd(&[
        "run", "--rm", "--network", "none", "--rootfs", &rootfs, "sh", "-c",
        "id -u; head -1 /proc/self/uid_map | tr -s ' '; stat -c '%t:%T' /dev/null; echo x > /dev/null && echo ok",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // uid 0 inside is the user outside; /dev/null is the host's, bound (no
    // mknod in a user namespace); skiff-oci kept its state where runc would,
    // under the user's XDG_RUNTIME_DIR.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("0\n 0 {uid} 1\n1:3\nok\n")
    );
    assert!(
        p.home().join("run/skiff").is_dir(),
        "no $XDG_RUNTIME_DIR/skiff"
    );

    // A user namespace of the container's own below podman's: its root (the
    // user's subordinate uid 1) may not reach podman's run directory, whose
    // /etc/hosts and /etc/hostname it gets bound in: skiff-oci opens those
    // sources for init, as runc does.
    let out = p.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:1:1000",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "id -u; head -1 /proc/self/uid_map | tr -s ' '; grep -c ' /etc/host' /proc/self/mountinfo",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n 0 1 1000\n2\n");

    let cmd = |args: &[&str]| p.cmd(args);
    exit_code_and_detached(&cmd, &rootfs, "skt-rl-d", &[]);
    stop_and_remove(&cmd, "skt-rl-d");
}

/// Buildah (`--runtime`, OCI isolation): RUN steps of a Containerfile run as
/// skiff-oci `run`s, and what they wrote is in the image it commits.
#[test]
fn buildah_builds_with_skiff() {
    let env = TestEnv::new("buildah");
    let b = env.bundle("img", &["true"]);
    let base = env.base.display().to_string();
    let buildah = |args: &[&str]| {
        Command::new("buildah")
            .args(["--root", &format!("{base}/storage")])
            .args(["--runroot", &format!("{base}/run")])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("buildah is installed (scripts/deps.sh)")
    };
    let ok = |args: &[&str]| {
        let out = buildah(args);
        assert!(out.status.success(), "buildah {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // A base image from the busybox rootfs, committed from scratch.
    let c = ok(&["from", "scratch"]);
    let m = ok(&["mount", &c]);
    let copy = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", b.rootfs().display()))
        .arg(&m)
        .status()
        .unwrap();
    assert!(copy.success());
    ok(&["commit", "-q", &c, "skt-base"]);
    ok(&["rm", &c]);
    fs::write(
        env.base.join("Containerfile"),
        "FROM localhost/skt-base\nRUN echo step1 > /s1 && mkdir -p /app\nWORKDIR /app\n\
         RUN pwd > /s2; cat /s1 >> /s2; id -u >> /s2\n",
    )
    .unwrap();
    ok(&[
        "bud",
        "-q",
        "--runtime",
        skiff(),
        "--isolation",
        "oci",
        "--network",
        "none",
        "-t",
        "skt-built",
        &base,
    ]);
    let c = ok(&["from", "localhost/skt-built"]);
    // No network: buildah would set up its default one on the host.
    let out = ok(&[
        "run",
        "--runtime",
        skiff(),
        "--isolation",
        "oci",
        "--network",
        "none",
        &c,
        "--",
        "cat",
        "/s2",
    ]);
    assert_eq!(out, "/app\nstep1\n0");
    ok(&["rm", "-a"]);
    ok(&["rmi", "-a", "-f"]);
}

/// `podman container checkpoint` and `restore` with skiff-oci as the
/// runtime (podman runs `checkpoint --image-path --work-path`, conmon runs
/// `restore --detach --pid-file --image-path --work-path`): the container
/// stops at the checkpoint, and counts on from there once restored.
#[test]
fn podman_checkpoints_and_restores_through_skiff() {
    let works = Command::new("criu")
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!("skipped: no criu on PATH that passes `criu check` (scripts/deps.sh builds 4.2)");
        return;
    }
    let p = Podman::new("podmanckpt");
    let rootfs = p.rootfs.to_str().unwrap().to_string();
    let name = "skt-podman-ckpt";
    let out = p.cmd(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // A read between the shell's truncation of the file and its write
    // finds it empty: read again (a few times, 20 ms apart).
    let count = || -> u64 {
        let mut seen = String::new();
        for _ in 0..10 {
            let out = p.cmd(&["exec", name, "cat", "/tmp/count"]);
            match String::from_utf8_lossy(&out.stdout).trim().parse() {
                Ok(n) => return n,
                Err(_) => seen = text(&out),
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("count: {seen}")
    };
    let before = count();
    let out = p.cmd(&["container", "checkpoint", name]);
    assert!(out.status.success(), "checkpoint: {}", text(&out));
    let out = p.cmd(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        text(&out).contains(&format!("{name} Exited")),
        "{}",
        text(&out)
    );
    let out = p.cmd(&["container", "restore", name]);
    assert!(out.status.success(), "restore: {}", text(&out));
    let after = count();
    assert!(
        after >= before && after < before + 50,
        "counted {before} before the checkpoint, {after} after the restore"
    );
    let out = p.cmd(&["rm", "--force", "--time", "0", name]);
    assert!(out.status.success(), "{}", text(&out));
}
