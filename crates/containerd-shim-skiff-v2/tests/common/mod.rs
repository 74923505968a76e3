//! A private containerd for each test (own socket, root, state and
//! namespace), with this build's shim first on its PATH, and cleanup that
//! runs also when the test fails.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-skiff-v2");
pub const RUNTIME: &str = "io.containerd.skiff.v2";

/// Where containerd finds the shims under test (first on its PATH): this
/// build's, or SKIFF_SHIM_DIR's (another build of both, e.g. a release
/// one to measure memory with).
pub fn shim_dir() -> PathBuf {
    match std::env::var_os("SKIFF_SHIM_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(SHIM).parent().unwrap().to_path_buf(),
    }
}

/// The containerd and ctr under test: those in `$SKIFF_CONTAINERD` (a
/// directory; scripts/test.sh runs the ctr tests again with containerd
/// 2.3.4's), else Debian's 1.6 from PATH.
pub fn containerd_tool(name: &str) -> PathBuf {
    match std::env::var_os("SKIFF_CONTAINERD") {
        Some(dir) => Path::new(&dir).join(name),
        None => PathBuf::from(name),
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_default()
}

/// Polls `cond` for up to 10 s.
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    eventually_within(what, Duration::from_secs(10), cond)
}

/// Polls `cond` for up to `bound`.
pub fn eventually_within(what: &str, bound: Duration, cond: impl FnMut() -> bool) {
    assert!(within(bound, cond), "timed out waiting for: {what}");
}

/// Polls `cond` for up to `bound`: whether it came true.
pub fn within(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

pub fn pid_alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// The parent pid of `pid`, from /proc/PID/stat (field 4, after the
/// parenthesised command name, which may itself hold spaces or parentheses).
fn parent_of(pid: i64) -> Option<i64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The shim server processes for this containerd (matched by its address).
/// A server forks short-lived copies of itself to create and exec (see the
/// shim's `forked` module); they carry the same command line, so a process
/// whose parent is also a match is a copy, not a second server.
pub fn shims_for(sock: &Path) -> Vec<i64> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("containerd-shim-skiff-v2")
            && cmd.contains(&format!("-address {} ", sock.display()))
            && cmd.trim_end().ends_with("serve")
        {
            found.push(pid);
        }
    }
    let copies: Vec<i64> = found
        .iter()
        .copied()
        .filter(|&pid| parent_of(pid).is_some_and(|p| found.contains(&p)))
        .collect();
    found.retain(|pid| !copies.contains(pid));
    found
}

pub struct Containerd {
    pub base: PathBuf,
    pub sock: PathBuf,
    pub namespace: String,
    pub rootfs: PathBuf,
    config: PathBuf,
    daemon: Option<Child>,
}

impl Containerd {
    pub fn start(name: &str) -> Containerd {
        let base = PathBuf::from(format!(
            "/tmp/skiff-tests/shim-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let rootfs = base.join("rootfs");
        let status = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/mkrootfs.sh"
        ))
        .arg(&rootfs)
        .stdout(Stdio::null())
        .status()
        .unwrap();
        assert!(status.success(), "mkrootfs.sh failed");
        let b = base.display();
        let config = base.join("containerd.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{b}/c-root\"\nstate = \"{b}/c-state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{b}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{b}/containerd.sock.ttrpc\"\n"
            ),
        )
        .unwrap();
        let mut c = Containerd {
            sock: base.join("containerd.sock"),
            namespace: format!("skt-shim-{name}"),
            rootfs,
            config,
            daemon: None,
            base,
        };
        c.start_daemon();
        c
    }

    pub fn start_daemon(&mut self) {
        // After this build's shim, the containerd under test's own runc
        // shim (2.x's speaks a start protocol 1.6's does not).
        let under_test = containerd_tool("containerd");
        let tools = under_test.parent().filter(|d| !d.as_os_str().is_empty());
        let path = format!(
            "{}:{}{}",
            shim_dir().display(),
            tools
                .map(|d| format!("{}:", d.display()))
                .unwrap_or_default(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.base.join("containerd.log"))
            .unwrap();
        let daemon = Command::new(containerd_tool("containerd"))
            .arg("--config")
            .arg(&self.config)
            .env("PATH", path)
            // Its temporary directories (a checkpoint's ctrd-checkpoint*,
            // which it leaves) go with the test's.
            .env("TMPDIR", &self.base)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (scripts/deps.sh)");
        self.daemon = Some(daemon);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.ctr(&["version"]).status.code() != Some(0) {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops containerd (SIGTERM, as an operator's restart would).
    pub fn stop_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let _ = d.wait();
        }
    }

    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(containerd_tool("ctr"));
        c.arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(out.status.success(), "ctr {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr run` with the skiff runtime and the test's rootfs; `flags` go
    /// before the id, `cmd` after it.
    pub fn run(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Output {
        let rootfs = self.rootfs.display().to_string();
        // --rootfs is a switch: the directory is the first positional argument.
        // ctr 2.x gives a rootfs without an image no PATH (runc then finds
        // no bare program either): the usual one, for both versions.
        let mut args = vec![
            "run",
            "--runtime",
            RUNTIME,
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--rootfs", &rootfs, id]);
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    /// The task's line in `ctr task ls`: (pid, status).
    pub fn task(&self, id: &str) -> Option<(i64, String)> {
        let out = self.ok(&["task", "ls"]);
        out.lines().find(|l| l.starts_with(id)).map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].parse().unwrap_or(0), f[2].to_string())
        })
    }

    pub fn wait_status(&self, id: &str, status: &str) {
        self.wait_status_within(id, status, Duration::from_secs(10));
    }

    /// The same with a bound of the caller's: a VM's task under TCG, with
    /// the host's other VMs, takes seconds where a namespace one takes ms.
    pub fn wait_status_within(&self, id: &str, status: &str, bound: Duration) {
        eventually_within(&format!("task {id} {status}"), bound, || {
            self.task(id).is_some_and(|(_, s)| s == status)
        });
    }

    /// Kills, deletes and forgets a task and its container.
    pub fn remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
        let _ = self.ctr(&["task", "delete", "--force", id]);
        let _ = self.ctr(&["container", "delete", id]);
    }

    /// A ttrpc client straight to the shim serving `id`, as containerd
    /// talks to it (the address containerd keeps in the task's state).
    pub fn task_client(&self, id: &str) -> containerd_shim_protos::TaskClient {
        let client = containerd_shim_protos::Client::connect(&self.shim_address(id)).unwrap();
        containerd_shim_protos::TaskClient::new(client)
    }

    /// The shim's address for `id` (`unix://...`), as containerd keeps it
    /// in the task's state; empty once the task is gone.
    pub fn shim_address(&self, id: &str) -> String {
        read(self.base.join(format!(
            "c-state/io.containerd.runtime.v2.task/{}/{id}/address",
            self.namespace
        )))
        .trim()
        .to_string()
    }

    /// The socket files of this containerd's shims, from the tasks' addresses.
    fn shim_sockets(&self) -> Vec<PathBuf> {
        let dir = self.base.join(format!(
            "c-state/io.containerd.runtime.v2.task/{}",
            self.namespace
        ));
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let address = read(e.path().join("address"));
                address.trim().strip_prefix("unix://").map(PathBuf::from)
            })
            .collect()
    }

    pub fn cgroup(&self, controller: &str, id: &str) -> PathBuf {
        PathBuf::from(format!(
            "/sys/fs/cgroup/{controller}/{}/{id}",
            self.namespace
        ))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let sockets = self.shim_sockets();
        if self.daemon.is_some() {
            let ids =
                String::from_utf8_lossy(&self.ctr(&["container", "ls", "-q"]).stdout).into_owned();
            for id in ids.lines() {
                self.remove(id.trim());
            }
        }
        self.stop_daemon();
        // With no task left the shims exit on their own; make sure.
        for pid in shims_for(&self.sock) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        // A shim killed here (or by the test) leaves its socket file.
        for socket in sockets {
            if std::os::unix::net::UnixStream::connect(&socket).is_err() {
                let _ = fs::remove_file(socket);
            }
        }
        for dir in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = fs::remove_dir(dir.path().join(&self.namespace));
        }
        let _ = fs::remove_dir(format!("/run/containerd/skiff/{}", self.namespace));
        // Snapshot and bundle mounts under the private root.
        let mounts = read("/proc/self/mountinfo");
        let base = self.base.display().to_string();
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&base))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = Command::new("umount").args(["-l", t]).status();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Runs `program` with a pty of ours as its stdin, stdout and stderr (ctr
/// `-t` wants a terminal), and, once it has exited, everything it wrote
/// there: the master is read until the last slave descriptor is closed, so
/// nothing it wrote before exiting is lost (`script`, used before, drops
/// the tail of a quickly exiting child's output now and then). Bounded.
pub fn run_in_pty(program: &Path, args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut child = cmd.spawn().unwrap();
    // Only the child's copies of the slave are left open.
    drop(cmd);
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once no slave descriptor is left.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(out);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the pty's output ends when the program is gone");
    (status.code(), String::from_utf8_lossy(&out).into_owned())
}
