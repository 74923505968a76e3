//! The containerd path: `ctr run --rm /bin/true` end to end through a private
//! containerd, with skiff's shim (io.containerd.skiff.v2) against
//! containerd's runc shim driving runc and crun; and the resident memory of
//! each shim while it serves one running container. Against Debian's
//! containerd 1.6, and against a containerd 2.x (its ctr and runc shim too)
//! given as a directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Path3 {
    pub name: &'static str,
    pub flags: Vec<String>,
    /// Median wall time of `ctr run --rm`, ms.
    pub median_ms: Option<f64>,
    /// VmRSS of the shim serving one `sleep` container, KiB.
    pub shim_rss_kib: Option<u64>,
}

struct Daemon {
    child: Child,
    sock: PathBuf,
    ctr: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctr(d: &Daemon, args: &[&str]) -> bool {
    Command::new(&d.ctr)
        .arg("--address")
        .arg(&d.sock)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `name` from `bin_dir`, or from PATH.
fn tool(bin_dir: Option<&Path>, name: &str) -> PathBuf {
    bin_dir.map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

fn start(work: &Path, shim_dir: &Path, bin_dir: Option<&Path>) -> Option<Daemon> {
    let base = work.join(match bin_dir {
        Some(_) => "containerd-given",
        None => "containerd",
    });
    fs::create_dir_all(&base).ok()?;
    let b = base.display();
    let config = base.join("config.toml");
    fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{b}/root\"\nstate = \"{b}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{b}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{b}/containerd.sock.ttrpc\"\n"
        ),
    )
    .ok()?;
    // Its own runc shim first, with ours.
    let path = format!(
        "{}:{}{}",
        shim_dir.display(),
        bin_dir.map_or(String::new(), |d| format!("{}:", d.display())),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(tool(bin_dir, "containerd"))
        .arg("--config")
        .arg(&config)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let d = Daemon {
        child,
        sock: base.join("containerd.sock"),
        ctr: tool(bin_dir, "ctr"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctr(&d, &["version"]) {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(d)
}

/// The pid of the shim serving container `id`.
fn shim_of(id: &str) -> Option<u64> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u64 = e.file_name().to_str()?.parse().ok()?;
        let cmd = fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let ours = cmd.contains("containerd-shim-skiff-v2") && cmd.trim_end().ends_with("serve");
        let runc = cmd.contains("containerd-shim-runc-v2");
        ((ours || runc) && cmd.contains(&format!("-id {id} "))).then_some(pid)
    })
}

pub fn bench(
    work: &Path,
    rootfs: &Path,
    shim_dir: &Path,
    iterations: usize,
    bin_dir: Option<&Path>,
) -> Vec<Path3> {
    let mut paths = vec![Path3 {
        name: "skiff shim",
        flags: vec!["--runtime".into(), "io.containerd.skiff.v2".into()],
        median_ms: None,
        shim_rss_kib: None,
    }];
    for (name, bin) in [("runc shim+runc", "runc"), ("runc shim+crun", "crun")] {
        if let Some(p) = crate::which(bin) {
            paths.push(Path3 {
                name,
                flags: vec![
                    "--runtime".into(),
                    "io.containerd.runc.v2".into(),
                    "--runc-binary".into(),
                    p.display().to_string(),
                ],
                median_ms: None,
                shim_rss_kib: None,
            });
        }
    }
    let Some(d) = start(work, shim_dir, bin_dir) else {
        eprintln!("containerd did not start: skipping the containerd path");
        return paths;
    };
    let rootfs = rootfs.display().to_string();
    let run = |flags: &[String], extra: &[&str], id: &str, cmd: &[&str]| {
        let mut args: Vec<&str> = vec!["run"];
        args.extend(flags.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &rootfs, id]);
        args.extend_from_slice(cmd);
        ctr(&d, &args)
    };
    let mut samples: Vec<Vec<f64>> = paths.iter().map(|_| Vec::new()).collect();
    for i in 0..iterations + 2 {
        for k in 0..paths.len() {
            let r = (i + k) % paths.len();
            let id = format!("bench-ctr-{r}-{i}");
            let t = Instant::now();
            let ok = run(&paths[r].flags, &["--rm"], &id, &["/bin/true"]);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if ok && i >= 2 {
                samples[r].push(ms);
            }
        }
    }
    for (p, mut s) in paths.iter_mut().zip(samples) {
        s.sort_by(f64::total_cmp);
        p.median_ms = s.get(s.len() / 2).copied();
    }
    for (r, p) in paths.iter_mut().enumerate() {
        let id = format!("bench-ctr-rss-{r}");
        if run(&p.flags, &["-d"], &id, &["/bin/sleep", "1000"]) {
            std::thread::sleep(Duration::from_millis(300));
            p.shim_rss_kib = shim_of(&id).and_then(|pid| crate::vm_rss(pid as i32));
        }
        ctr(&d, &["task", "kill", "-s", "KILL", &id]);
        std::thread::sleep(Duration::from_millis(200));
        ctr(&d, &["task", "delete", &id]);
        ctr(&d, &["container", "delete", &id]);
    }
    paths
}
