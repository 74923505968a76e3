//! The real clients from Debian driving skiff-oci in place of runc: podman
//! (`--runtime`) and containerd's runc shim (`ctr run --runc-binary`), each
//! with its own state directories, cleaned up afterwards.

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
            .args(["--storage-driver", "vfs", "--runtime", SKIFF])
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

    let out = p.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));

    // Detached, then stopped (podman kills through skiff-oci) and removed.
    let out = p.cmd(&[
        "run",
        "-d",
        "--name",
        "skt-podman-d",
        "--network",
        "none",
        "--memory",
        "64m",
        "--rootfs",
        &rootfs,
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mem = cgroup_dir("memory", &format!("/libpod_parent/libpod-{cid}"));
    assert_eq!(read(mem.join("memory.limit_in_bytes")).trim(), "67108864");
    let out = p.cmd(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(text(&out).contains("skt-podman-d Up"), "{}", text(&out));
    let out = p.cmd(&["stop", "--time", "1", "skt-podman-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.cmd(&["rm", "skt-podman-d"]);
    assert!(out.status.success(), "{}", text(&out));
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
    let out = c.ctr(&[
        "run",
        "--runc-binary",
        SKIFF,
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
        "--runc-binary",
        SKIFF,
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
