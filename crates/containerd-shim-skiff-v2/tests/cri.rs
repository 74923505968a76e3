//! The Kubernetes path: containerd's CRI plugin with a `skiff` runtime
//! handler (runtime_type io.containerd.skiff.v2), an offline pause image, CNI
//! bridge networking from Debian's containernetworking-plugins, and a CRI
//! client speaking the k8s CRI API over gRPC (tests/cri/cri_client.py).
//! The pod's sandbox and two containers share one shim; the containers
//! reach each other on localhost. tests/cri/run.sh owns containerd, the
//! network and the cleanup.

mod common;

use std::process::Command;

use common::*;

/// The CRI run against the containerd in `bin_dir` (first on PATH; None:
/// Debian's): its report.
fn cri_run(bin_dir: Option<&str>, name: &str, extra: &[&str]) -> String {
    cri_run_handler("skiff", bin_dir, name, extra)
}

/// run.sh owns one bridge, subnet and cgroup parent: one run at a time
/// (the tests of this file run in parallel threads of one process).
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cri_run_handler(handler: &str, bin_dir: Option<&str>, name: &str, extra: &[&str]) -> String {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cri/run.sh");
    let mut path = format!("{}:", shim_dir().display());
    if let Some(dir) = bin_dir {
        path.push_str(&format!("{dir}:"));
    }
    path.push_str(&std::env::var("PATH").unwrap_or_default());
    let out = Command::new(script)
        .args(["--runtime-handler", handler])
        .args(extra)
        .env("PATH", path)
        .env(
            "CRI_RUN_DIR",
            format!("/tmp/skiff-tests/cri-{name}-{}", std::process::id()),
        )
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{name}: {report}");
    assert!(report.contains("RESULT: PASS"), "{name}: {report}");
    report
}

/// Debian's containerd 1.6, and (where scripts/deps.sh built it)
/// containerd 2.3.4 with its own (version 3) config, which also runs a pod
/// with hostUsers: false (user namespaces through the CRI are 2.x's).
#[test]
fn cri_runs_a_pod_of_two_containers_on_skiff() {
    let mut runs = vec![("1.6", cri_run(None, "1.6", &[]))];
    let v2 = "/opt/containerd-2/bin";
    if std::path::Path::new(v2).join("containerd").exists() {
        let report = cri_run(Some(v2), "2.3", &["--userns"]);
        assert!(report.contains("containerd v2."), "{report}");
        assert!(report.contains("config version = 3"), "{report}");
        for check in [
            "PASS: RunPodSandbox with hostUsers: false",
            "PASS: userns pod: root inside is 2621440 on the host, image files are root's",
            "PASS: userns pod: its process runs as uid 2621440 on the host",
        ] {
            assert!(report.contains(check), "missing {check:?}:\n{report}");
        }
        runs.push(("2.3", report));
    } else {
        eprintln!("skipped: the CRI run on containerd 2.x (no {v2}/containerd)");
    }
    for (version, report) in runs {
        for check in [
            "PASS: RunPodSandbox (handler='skiff')",
            "PASS: one shim serves the whole pod",
            "PASS: client reaches server via 127.0.0.1:8080",
            "PASS: the server's eth0 has the pod IP",
            "PASS: the host reaches the server at the pod IP",
            "PASS: ExecSync exit code propagated",
            "PASS: shared pid namespace: pid 1 is the sandbox's pause",
            "PASS: shared pid namespace: the client sees the server's httpd",
            "PASS: restricted container: uid, no caps, no new privs, seccomp, read-only root",
            "PASS: restricted container's init: uid 1000, no caps, seccomp filter",
            "PASS: a container past its memory limit: OOMKilled, 137",
            "PASS: ContainerStats: cpu and memory (working set, usage, rss)",
            "PASS: ExecSync past its timeout gives up",
            "PASS: ExecSync past its timeout: its process is gone",
            "PASS: UpdateContainerResources memory limit applied",
            "PASS: RemovePodSandbox",
        ] {
            assert!(
                report.contains(check),
                "containerd {version}: missing {check:?}:\n{report}"
            );
        }
    }
}

/// The same pod with a RuntimeClass handler `skiff-vm` (runtime_type
/// io.containerd.skiff-vm.v2): the sandbox and both containers in one VM
/// (docs/vm.md), reaching each other on the guest's 127.0.0.1. The one
/// check that reads a container's pid in the host's /proc is skipped (the
/// pids are the guest's). Skips without qemu or the guest image.
#[test]
fn cri_runs_a_pod_of_two_containers_in_a_vm() {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: qemu-system-x86_64 is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/vm-image.sh");
    let out = match Command::new(script).output() {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("SKIPPED: scripts/vm-image.sh gave no guest image: {other:?}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let paths: Vec<&str> = text.lines().collect();
    if paths.len() != 4 {
        eprintln!("SKIPPED: scripts/vm-image.sh printed {text:?}");
        return;
    }
    // Before containerd starts (run.sh's, which inherits them).
    let names = [
        "SKIFF_VM_KERNEL",
        "SKIFF_VM_INITRAMFS",
        "SKIFF_VM_VSOCK_BACKEND",
        "SKIFF_VM_VIRTIOFSD",
    ];
    for (name, path) in names.iter().zip(paths) {
        std::env::set_var(name, path);
    }
    // containerd 1.6, and 2.3.4 where scripts/deps.sh built it: both pass
    // the pod's resources as the sandbox annotations the VM is sized from.
    let mut runs = vec![("1.6", None)];
    let v2 = "/opt/containerd-2/bin";
    if std::path::Path::new(v2).join("containerd").exists() {
        runs.push(("2.3", Some(v2)));
    }
    for (version, bin_dir) in runs {
        let report = cri_run_handler("skiff-vm", bin_dir, &format!("vm-{version}"), &[]);
        check_vm_report(version, &report);
    }
}

fn check_vm_report(version: &str, report: &str) {
    for line in report
        .lines()
        .filter(|l| l.contains("VM has its") || l.contains("pod IP"))
    {
        eprintln!("containerd {version}: {line}");
    }
    for check in [
        "PASS: RunPodSandbox (handler='skiff-vm')",
        "PASS: one shim serves the whole pod",
        // The VM sized from the pod's resources (the CRI's annotations).
        "PASS: the pod's VM has its memory (512 MiB + 64)",
        "PASS: the pod's VM has its vCPUs (ceil 1.5)",
        "PASS: client reaches server via 127.0.0.1:8080",
        // The pod's network (the CNI's veth) mirrored into the VM.
        "PASS: the server's eth0 has the pod IP",
        "PASS: the host reaches the server at the pod IP",
        "PASS: ExecSync exit code propagated",
        "PASS: shared pid namespace: pid 1 is the sandbox's pause",
        "PASS: restricted container: uid, no caps, no new privs, seccomp, read-only root",
        "PASS: a container past its memory limit: OOMKilled, 137",
        "PASS: ContainerStats: cpu and memory (working set, usage, rss)",
        "PASS: UpdateContainerResources memory limit applied",
        "PASS: RemovePodSandbox",
    ] {
        assert!(
            report.contains(check),
            "containerd {version}: missing {check:?}:\n{report}"
        );
    }
}
