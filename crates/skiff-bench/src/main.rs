//! Lifecycle benchmark: N sequential `run` lifecycles of /bin/true on one busybox
//! bundle with skiff-oci, crun and runc alternated, printing per-runtime medians,
//! peak RSS and ratios. Wall times are measured, never asserted.
//!
//! usage: skiff-bench [--iterations N] [--skiff PATH]
//! (PATH defaults to the static musl build of scripts/build-static.sh.)
//!
//! crun refuses hybrid cgroup hosts (v1 controllers plus a cgroup2 mount). So that
//! all three runtimes see the same host, the benchmark runs them in a private
//! mount namespace in which the cgroup2 mount of a hybrid host is detached: a
//! plain cgroup v1 layout for everyone.

mod containerd;
mod phases;
mod trace;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Sample {
    ms: f64,
    maxrss_kib: i64,
}

fn main() {
    let mut iterations = 50usize;
    let mut skiff = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/musl/x86_64-unknown-linux-musl/release/skiff-oci"
    ));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iterations" | "-n" => {
                iterations = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(iterations)
            }
            "--skiff" => skiff = args.next().map(PathBuf::from).unwrap_or(skiff),
            _ => {
                eprintln!("usage: skiff-bench [--iterations N] [--skiff PATH]");
                std::process::exit(2);
            }
        }
    }
    let hidden = hide_cgroup2_of_hybrid_host();
    let work = PathBuf::from(format!("/tmp/skiff-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let bundle = work.join("bundle");
    fs::create_dir_all(&bundle).expect("creating the bundle dir");
    let mkrootfs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/mkrootfs.sh");
    assert!(
        Command::new(mkrootfs)
            .arg(bundle.join("rootfs"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false),
        "mkrootfs.sh failed"
    );
    let spec = Command::new(&skiff)
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status();
    assert!(
        spec.map(|s| s.success()).unwrap_or(false),
        "{} spec failed",
        skiff.display()
    );
    let config = fs::read_to_string(bundle.join("config.json")).expect("config.json");
    let config = config
        .replace("\"terminal\": true", "\"terminal\": false")
        .replace("\"sh\"\n", "\"/bin/true\"\n");
    fs::write(bundle.join("config.json"), config).expect("writing config.json");

    // The same bundle with memory, cpu and pids limits: what cgroup setup costs.
    let limited = work.join("limited");
    fs::create_dir_all(&limited).expect("creating the limited bundle dir");
    let rootfs = bundle.join("rootfs").display().to_string();
    let limited_config = fs::read_to_string(bundle.join("config.json"))
        .expect("config.json")
        .replace("\"path\": \"rootfs\"", &format!("\"path\": \"{rootfs}\""))
        .replacen(
            "\"resources\": {",
            "\"resources\": {\"memory\": {\"limit\": 268435456}, \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000}, \"pids\": {\"limit\": 100},",
            1,
        );
    fs::write(limited.join("config.json"), limited_config).expect("writing the limited config");

    // And again with a docker-like default seccomp profile on top of the limits.
    let hardened = work.join("hardened");
    fs::create_dir_all(&hardened).expect("creating the hardened bundle dir");
    let hardened_config = fs::read_to_string(limited.join("config.json"))
        .expect("limited config.json")
        .replacen(
            "\"linux\": {",
            &format!("\"linux\": {{\"seccomp\": {},", docker_like_seccomp()),
            1,
        );
    fs::write(hardened.join("config.json"), hardened_config).expect("writing the hardened config");

    let mut runtimes: Vec<(String, PathBuf)> = vec![("skiff-oci".into(), skiff.clone())];
    for name in ["crun", "runc"] {
        if let Some(p) = which(name) {
            runtimes.push((name.into(), p));
        }
    }
    let samples = lifecycles(&runtimes, &work, &bundle, iterations, "plain", None);
    let limited_samples = lifecycles(&runtimes, &work, &limited, iterations, "lim", None);
    let hardened_samples = lifecycles(&runtimes, &work, &hardened, iterations, "hard", None);
    // A node between pod starts is mostly idle: the same runs, 50 ms apart,
    // show what a start costs when nothing before it has warmed the kernel
    // (e.g. an RCU grace period that back-to-back runs share).
    let sparse_samples = lifecycles(
        &runtimes,
        &work,
        &bundle,
        iterations.min(20),
        "sparse",
        Some(Duration::from_millis(50)),
    );
    let traced = trace::bench(
        &skiff,
        &work.join("skiff-oci-root"),
        &bundle,
        &work,
        iterations.min(30),
    );
    let exec_samples = bench_exec(&runtimes, &work, &bundle, iterations);
    let phase_samples = phases::bench(&runtimes, &work, &bundle, iterations);
    let parallel = bench_parallel(&runtimes, &work, 50);
    // The shim is built with the benchmark (glibc, cargo's usual target), not
    // beside the static musl skiff-oci.
    let shim_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    // Debian's containerd (1.6), and 2.x where scripts/deps.sh built it.
    let containerd2 = Path::new("/opt/containerd-2/bin");
    let mut via_containerd = vec![(
        "1.6 (Debian's)",
        containerd::bench(&work, &bundle.join("rootfs"), &shim_dir, iterations, None),
    )];
    if containerd2.join("containerd").exists() {
        via_containerd.push((
            "2.3",
            containerd::bench(
                &work,
                &bundle.join("rootfs"),
                &shim_dir,
                iterations,
                Some(containerd2),
            ),
        ));
    }
    let _ = fs::remove_dir_all(&work);

    println!(
        "skiff-bench: {iterations} sequential `run` lifecycles of /bin/true per runtime{}",
        if hidden {
            " (cgroup2 mount of this hybrid host hidden from all runtimes)"
        } else {
            ""
        }
    );
    println!(
        "{:<10} {:>10} {:>10} {:>14}",
        "runtime", "median ms", "p90 ms", "peak RSS KiB"
    );
    let totals: Vec<f64> = samples
        .iter()
        .map(|s| s.iter().map(|x| x.ms).sum())
        .collect();
    for (((name, _), s), total) in runtimes.iter().zip(&samples).zip(&totals) {
        println!(
            "{name:<10} {} sequential runs: {total:.0} ms in all",
            s.len()
        );
    }
    for ((name, _), total) in runtimes.iter().zip(&totals).skip(1) {
        println!(
            "ratio skiff-oci/{name}: sequential runs in all {:.2}",
            totals[0] / total
        );
    }
    report(&runtimes, samples, "time");
    println!(
        "`run` of /bin/true, one every 50 ms ({} per runtime):",
        sparse_samples[0].len()
    );
    report(&runtimes, sparse_samples, "time, sparse");
    trace::report(&traced);
    println!("`run` of /bin/true with memory, cpu and pids limits:");
    report(&runtimes, limited_samples, "time with limits");
    println!("`run` of /bin/true with a docker-like seccomp profile and the limits:");
    report(&runtimes, hardened_samples, "time with seccomp and limits");
    phases::report(&runtimes, &phase_samples);
    println!("exec of /bin/true into a running container:");
    report(&runtimes, exec_samples, "exec time");
    println!("50 containers created and started in parallel (`run -d`), wall time:");
    for ((name, _), (ms, failed)) in runtimes.iter().zip(&parallel) {
        println!("{name:<10} {ms:>10.2} ms, {failed} failed");
    }
    for ((name, _), (ms, _)) in runtimes.iter().zip(&parallel).skip(1) {
        println!(
            "ratio skiff-oci/{name}: parallel wall time {:.2}",
            parallel[0].0 / ms
        );
    }
    for (version, paths) in &via_containerd {
        println!("containerd {version}: `ctr run --rm /bin/true` end to end, and the shim's RSS serving one container:");
        println!("{:<16} {:>10} {:>14}", "path", "median ms", "shim RSS KiB");
        for p in paths {
            let ms = p
                .median_ms
                .map(|m| format!("{m:.2}"))
                .unwrap_or("failed".into());
            let rss = p.shim_rss_kib.map(|r| r.to_string()).unwrap_or("-".into());
            println!("{:<16} {ms:>10} {rss:>14}", p.name);
        }
        if let Some(ours) = paths.first().and_then(|p| p.median_ms) {
            for p in paths.iter().skip(1) {
                if let Some(theirs) = p.median_ms {
                    println!(
                        "ratio skiff shim/{} (containerd {version}): ctr run {:.2}",
                        p.name,
                        ours / theirs
                    );
                }
            }
        }
    }
}

/// `count` containers (`sleep`, detached) started at once per runtime: wall
/// time until every `run -d` has returned, and how many failed.
fn bench_parallel(runtimes: &[(String, PathBuf)], work: &Path, count: usize) -> Vec<(f64, usize)> {
    let bundle = work.join("exec-bundle"); // a long-running program, see bench_exec
    let mut out = Vec::new();
    for (name, path) in runtimes {
        let root = work.join(format!("{name}-par-root"));
        let start = Instant::now();
        let children: Vec<_> = (0..count)
            .filter_map(|i| {
                Command::new(path)
                    .arg("--root")
                    .arg(&root)
                    .args(["run", "-d", "--bundle"])
                    .arg(&bundle)
                    .arg(format!("par-{name}-{i}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()
            })
            .collect();
        let spawned = children.len();
        let ok = children
            .into_iter()
            .filter_map(|mut c| c.wait().ok())
            .filter(|s| s.success())
            .count();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        for i in 0..count {
            let _ = Command::new(path)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(format!("par-{name}-{i}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        out.push((ms, count - spawned.min(ok)));
    }
    out
}

/// Prints median, p90 and peak RSS per runtime, then skiff-oci's ratios.
fn report(runtimes: &[(String, PathBuf)], samples: Vec<Vec<Sample>>, what: &str) {
    let mut medians = Vec::new();
    for ((name, _), mut s) in runtimes.iter().zip(samples) {
        if s.is_empty() {
            println!("{name:<10} failed");
            medians.push(None);
            continue;
        }
        s.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        let med = s[s.len() / 2].ms;
        let p90 = s[(s.len() * 9 / 10).min(s.len() - 1)].ms;
        let rss = s.iter().map(|x| x.maxrss_kib).max().unwrap_or(0);
        println!("{name:<10} {med:>10.2} {p90:>10.2} {rss:>14}");
        medians.push(Some((med, rss)));
    }
    if let Some((sk, sk_rss)) = medians[0] {
        for ((name, _), m) in runtimes.iter().zip(&medians).skip(1) {
            if let Some((med, rss)) = m {
                println!(
                    "ratio skiff-oci/{name}: {what} {:.2}, peak RSS {:.2}",
                    sk / med,
                    sk_rss as f64 / *rss as f64
                );
            }
        }
    }
}

/// `exec` of /bin/true into a running container (what health probes and
/// `kubectl exec` pay): one container per runtime, execs alternated.
fn bench_exec(
    runtimes: &[(String, PathBuf)],
    work: &Path,
    bundle: &Path,
    iterations: usize,
) -> Vec<Vec<Sample>> {
    let exec_bundle = work.join("exec-bundle");
    let _ = fs::create_dir_all(&exec_bundle);
    let config = fs::read_to_string(bundle.join("config.json")).unwrap_or_default();
    let rootfs = bundle.join("rootfs").display().to_string();
    let config = config
        .replace("\"/bin/true\"", "\"sleep\", \"100000\"")
        .replace("\"path\": \"rootfs\"", &format!("\"path\": \"{rootfs}\""));
    let _ = fs::write(exec_bundle.join("config.json"), config);
    let mut samples: Vec<Vec<Sample>> = runtimes.iter().map(|_| Vec::new()).collect();
    let mut started = Vec::new();
    for (name, path) in runtimes {
        let root = work.join(format!("{name}-root"));
        let id = format!("bench-exec-{name}");
        let ok = Command::new(path)
            .arg("--root")
            .arg(&root)
            .args(["run", "-d", "--bundle"])
            .arg(&exec_bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        started.push(ok.then_some((root, id)));
    }
    for i in 0..iterations + 2 {
        for k in 0..runtimes.len() {
            let r = (i + k) % runtimes.len();
            let Some((root, id)) = &started[r] else {
                continue;
            };
            let args = ["exec".to_string(), id.clone(), "/bin/true".to_string()];
            if let Ok(s) = timed(&runtimes[r].1, root, &args) {
                if i >= 2 {
                    samples[r].push(s);
                }
            }
        }
    }
    for ((_, path), s) in runtimes.iter().zip(&started) {
        if let Some((root, id)) = s {
            let _ = Command::new(path)
                .arg("--root")
                .arg(root)
                .args(["delete", "--force", id])
                .status();
        }
    }
    samples
}

/// `iterations` `run` lifecycles of `bundle` per runtime (after two warm-up
/// rounds), the runtimes alternated so that none always runs first in a
/// round, with `gap` of idle time before each run.
fn lifecycles(
    runtimes: &[(String, PathBuf)],
    work: &Path,
    bundle: &Path,
    iterations: usize,
    tag: &str,
    gap: Option<Duration>,
) -> Vec<Vec<Sample>> {
    let mut samples: Vec<Vec<Sample>> = runtimes.iter().map(|_| Vec::new()).collect();
    for i in 0..iterations + 2 {
        for k in 0..runtimes.len() {
            let r = (i + k) % runtimes.len();
            let (name, path) = &runtimes[r];
            let root = work.join(format!("{name}-root"));
            if let Some(gap) = gap {
                std::thread::sleep(gap);
            }
            match lifecycle(path, &root, bundle, &format!("bench-{tag}-{name}-{i}")) {
                Ok(s) if i >= 2 => samples[r].push(s),
                Ok(_) => {}
                Err(e) => eprintln!("{name} ({tag}): {e}"),
            }
        }
    }
    samples
}

/// One `run` lifecycle; wall time and the peak RSS of the runtime's processes.
fn lifecycle(runtime: &Path, root: &Path, bundle: &Path, id: &str) -> Result<Sample, String> {
    let args = [
        "run".to_string(),
        "--bundle".to_string(),
        bundle.display().to_string(),
        id.to_string(),
    ];
    timed(runtime, root, &args)
}

/// Runs `runtime --root ROOT ARGS...`: wall time and the peak RSS of its processes.
pub(crate) fn timed(runtime: &Path, root: &Path, args: &[String]) -> Result<Sample, String> {
    let start = Instant::now();
    let child = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and usage are valid for writing.
    let ret = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if ret != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(format!("run failed (status {status}): {}", err.trim()));
    }
    Ok(Sample {
        ms,
        maxrss_kib: usage.ru_maxrss,
    })
}

/// VmRSS of `pid` in KiB.
pub(crate) fn vm_rss(pid: i32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// On a hybrid host, detaches /sys/fs/cgroup/unified in a private mount
/// namespace of this process (inherited by the runtimes it starts).
fn hide_cgroup2_of_hybrid_host() -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let hybrid = mountinfo.contains(" - cgroup ")
        && mountinfo
            .lines()
            .any(|l| l.contains(" /sys/fs/cgroup/unified ") && l.contains(" - cgroup2 "));
    if !hybrid {
        return false;
    }
    // SAFETY: unshare and mount take flags and C strings that live for the call;
    // this process is single-threaded here.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return false;
        }
        let root = c"/";
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        );
        let unified = c"/sys/fs/cgroup/unified";
        libc::umount2(unified.as_ptr(), libc::MNT_DETACH) == 0
    }
}

/// Syscalls Docker's default seccomp profile refuses (the rest of what this
/// kernel's headers name is allowed; anything else gets EPERM).
const DOCKER_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clone3",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// A default-deny profile in the shape of Docker's: one long allow list
/// (~300 names) for libseccomp to compile on every start.
fn docker_like_seccomp() -> String {
    let header =
        fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").unwrap_or_default();
    let names: Vec<String> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define __NR_"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| !DOCKER_DENIED.contains(n))
        .map(|n| format!("\"{n}\""))
        .collect();
    format!(
        "{{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 1, \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"], \"syscalls\": [{{\"names\": [{}], \"action\": \"SCMP_ACT_ALLOW\"}}]}}",
        names.join(", ")
    )
}
