//! Helpers shared by the integration tests: a per-test state root and bundles
//! built from busybox, and cleanup that runs also when a test fails.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// The skiff-oci under test: `$SKIFF_OCI` when set (scripts/test.sh sets it
/// to the static musl build, the one installed and benchmarked), else the one
/// cargo built for this test run.
pub fn skiff() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var("SKIFF_OCI").unwrap_or_else(|_| env!("CARGO_BIN_EXE_skiff-oci").to_string())
    })
}

/// One test's world: its own state root and scratch directory, removed (with
/// every container in it) on drop.
pub struct TestEnv {
    pub name: String,
    pub base: PathBuf,
    pub root: PathBuf,
}

impl TestEnv {
    /// `name` must be unique in the test binary: tests run in parallel,
    /// and two sharing a name would share (and remove) one directory.
    pub fn new(name: &str) -> TestEnv {
        static NAMES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            !names.iter().any(|n| n == name),
            "TestEnv name {name:?} is used by two tests of this binary"
        );
        names.push(name.to_string());
        drop(names);
        let base = PathBuf::from(format!("/tmp/skiff-tests/{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let root = base.join("state");
        TestEnv {
            name: name.to_string(),
            base,
            root,
        }
    }

    /// A container id unique to this test (the "skt-" prefix is what the
    /// suite's leak check looks for).
    pub fn id(&self, suffix: &str) -> String {
        format!("skt-{}-{suffix}", self.name)
    }

    /// A bundle whose config is `skiff-oci spec` with no terminal and `args`.
    pub fn bundle(&self, name: &str, args: &[&str]) -> Bundle {
        let dir = self.base.join(name);
        fs::create_dir_all(&dir).unwrap();
        let status = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/mkrootfs.sh"
        ))
        .arg(dir.join("rootfs"))
        .status()
        .unwrap();
        assert!(status.success(), "mkrootfs.sh failed");
        let out = Command::new(skiff())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        let b = Bundle { dir, config };
        b.write();
        b
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(skiff());
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs skiff-oci with stdout and stderr in files: a created container's
    /// init keeps the caller's stdio open, so pipes would never see EOF.
    pub fn oci(&self, args: &[&str]) -> Output {
        output_via_files(&mut self.cmd(args), &self.base)
    }

    /// Runs skiff-oci with `args` and `envs`, given at most 60 s (a hang
    /// fails the test instead of hanging it): (exit code, stdout, stderr).
    pub fn bounded(&self, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "KILL", "60", skiff(), "--root"])
            .arg(&self.root)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null());
        let out = output_via_files(&mut cmd, &self.base);
        let code = out.status.code().unwrap_or(-1);
        assert_ne!(code, 137, "skiff-oci {args:?} hung");
        (
            code,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs skiff-oci and asserts success; returns stdout.
    /// `exec -d --pid-file` of `cmd` into `id`; the exec'd process's host pid.
    pub fn exec_detached(&self, id: &str, cmd: &[&str]) -> String {
        let pid_file = self.base.join(format!("exec-{id}.pid"));
        let mut args = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), id];
        args.extend_from_slice(cmd);
        self.ok(&args);
        read(&pid_file).trim().to_string()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.oci(args);
        assert!(
            out.status.success(),
            "skiff-oci {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs skiff-oci, asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.oci(args);
        assert!(
            !out.status.success(),
            "skiff-oci {args:?} should have failed"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        let out = self.oci(&["run", "--bundle", bundle.dir.to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `run` of `bundle` as `id` (`self.id(id)`) through `wrap` (a command
    /// that ends by exec'ing its arguments: `env`, `taskset -c 1`, a shell
    /// that sets a umask first); asserts exit 0, returns stdout.
    pub fn run_under(&self, wrap: &[&str], bundle: &Bundle, id: &str) -> String {
        let mut cmd = Command::new(wrap[0]);
        cmd.args(&wrap[1..])
            .arg(skiff())
            .arg("--root")
            .arg(&self.root)
            .args(["run", "--bundle"])
            .arg(&bundle.dir)
            .arg(self.id(id))
            .stdin(Stdio::null());
        let out = output_via_files(&mut cmd, &self.base);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{wrap:?} skiff-oci run failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Runs `args` in a fresh bundle changed by `edit`, asserts exit 0, returns stdout.
    pub fn run_sh(&self, id: &str, script: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut b = self.bundle(id, &["sh", "-c", script]);
        edit(&mut b.config);
        b.write();
        let (code, out, err) = self.run(&b, &self.id(id));
        assert_eq!(code, 0, "container failed: {out}{err}");
        out
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    pub fn container_dirs(&self) -> Vec<String> {
        fs::read_dir(&self.root)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    // .seccomp: compiled profiles, a cache shared by containers.
                    .filter(|n| n != ".seccomp")
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for id in self.container_dirs() {
            let _ = self.cmd(&["delete", "--force", &id]).output();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn write(&self) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// The directory of the container's group in a v1 hierarchy (memory, pids, ...)
/// or, with "unified", the cgroup2 tree.
pub fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    let base = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup").join(controller)
    };
    base.join(rel.trim_start_matches('/'))
}

/// Where a container without linux.cgroupsPath gets its group in a
/// hierarchy (as cgroup_dir names it): below this process's own group (on a
/// cgroup2-only host below its parent), runc's default.
pub fn default_group(controller: &str, id: &str) -> PathBuf {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v2_only = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mine = own
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            let hit = match v2_only || controller == "unified" || controller.is_empty() {
                true => ctrls.is_empty(),
                false => ctrls.split(',').any(|c| c == controller),
            };
            hit.then(|| path.to_string())
        })
        .unwrap_or_else(|| "/".into());
    let base = match v2_only {
        true => Path::new(&mine)
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf(),
        false => PathBuf::from(mine),
    };
    cgroup_dir(controller, &base.join(id).display().to_string())
}

pub fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

pub fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !read(format!("/proc/{pid}/stat"))
            .split(") ")
            .nth(1)
            .unwrap_or("")
            .starts_with('Z')
}

/// Mount points whose path mentions `needle`, from the host's mountinfo.
pub fn host_mounts(needle: &str) -> Vec<String> {
    read("/proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Adds a namespace to a config unless it is there already.
pub fn add_ns(config: &mut Value, kind: &str) {
    let list = config["linux"]["namespaces"].as_array_mut().unwrap();
    if !list.iter().any(|n| n["type"] == kind) {
        list.push(json!({ "type": kind }));
    }
}

/// Waits until `pid` has a handler for signal `sig` (its SigCgt mask), so that
/// a signal sent to a container's init is not dropped: PID 1 of a namespace
/// ignores signals it has no handler for.
pub fn wait_signal_handled(pid: i64, sig: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if mask & (1 << (sig - 1)) != 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} never handled signal {sig}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Receives one message with one fd (SCM_RIGHTS): the fd and the bytes.
pub fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (std::os::fd::OwnedFd, Vec<u8>) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = vec![0u8; 8192];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("no fd received");
    let len = msg.bytes;
    // SAFETY: the fd was just received over SCM_RIGHTS and is ours.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    buf.truncate(len);
    (fd, buf)
}

/// Listens on `path` as a --console-socket peer; the handle yields the pty
/// master received over SCM_RIGHTS.
pub fn console_receiver(path: &Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn).0
    })
}

/// Reads a pty master until the slave side closes (EIO), that is until the
/// program on it has exited: closing the master earlier would hang it up
/// (SIGHUP) while it may still be exiting. `marker` must have been seen.
pub fn read_pty_until(master: std::os::fd::OwnedFd, marker: &str) -> String {
    use std::io::Read;
    let mut file = fs::File::from(master);
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        out.contains(marker),
        "{marker:?} never appeared on the pty: {out}"
    );
    out
}

/// Runs `cmd` with stdout and stderr in files under `dir`: a created
/// container's init keeps the caller's stdio open, so pipes would never see EOF.
/// Runs `script` with sh (stdin /dev/null), asserts it succeeded; its stdout.
/// For what needs the shell: descriptors or variables set for skiff-oci.
pub fn sh_ok(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn output_via_files(cmd: &mut Command, dir: &Path) -> Output {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out_path, err_path) = (dir.join(format!("out-{n}")), dir.join(format!("err-{n}")));
    let status = cmd
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    Output {
        status,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: fs::read(&err_path).unwrap_or_default(),
    }
}

/// On drop, empties and removes every group named `name` (a top-level
/// cgroup path without its "/"), in every hierarchy, with what a test made
/// below them: thawed, its processes killed, deepest first. For tests that
/// make or freeze groups themselves, or whose runtime may hang and be
/// killed before it cleans up: they leave nothing, also when they fail.
pub struct GroupSweep(pub String);

impl Drop for GroupSweep {
    fn drop(&mut self) {
        let mut tops: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join(&self.0))
                    .collect()
            })
            .unwrap_or_default();
        tops.push(Path::new("/sys/fs/cgroup").join(&self.0));
        // And where a container without cgroupsPath named so has its group.
        let hierarchies: Vec<String> = fs::read_dir("/sys/fs/cgroup")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        tops.extend(hierarchies.iter().map(|h| default_group(h, &self.0)));
        tops.push(default_group("", &self.0));
        for top in tops.iter().filter(|t| t.is_dir()) {
            sweep_group(top);
        }
    }
}

fn sweep_group(dir: &Path) {
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::write(dir.join("cgroup.freeze"), "0");
    let subs: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    for sub in subs {
        sweep_group(&sub);
    }
    for _ in 0..100 {
        for pid in fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What busybox's `echo` needs from the kernel (with room for its libc's
/// start-up): the program's part of an allow-list (seccomp and
/// differential tests).
pub const ECHO_SYSCALLS: &[&str] = &[
    "execve",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "getrandom",
    "readlink",
    "getuid",
    "geteuid",
    "getpid",
    "prctl",
    "write",
    "writev",
    "ioctl",
    "newfstatat",
    "fstat",
    "exit",
    "exit_group",
];
