//! The VM tier through containerd: `ctr run --runtime
//! io.containerd.skiff-vm.v2` (this build's containerd-shim-skiff-vm-v2)
//! runs the task in its own qemu VM (docs/vm.md). Skips
//! without qemu or the guest image (scripts/vm-image.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const VM_RUNTIME: &str = "io.containerd.skiff-vm.v2";

/// The guest image for the shim (through containerd's environment), and
/// the link that makes this build's shim the VM tier; None to skip.
fn vm_ready() -> bool {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: qemu-system-x86_64 is not installed");
        return false;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vm-image.sh");
    let out = match Command::new(script).output() {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("SKIPPED: scripts/vm-image.sh gave no guest image: {other:?}");
            return false;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let paths: Vec<&str> = text.lines().collect();
    if paths.len() != 4 {
        eprintln!("SKIPPED: scripts/vm-image.sh printed {text:?}");
        return false;
    }
    // Before any thread of this test reads the environment; containerd,
    // started next, inherits it.
    let names = [
        "SKIFF_VM_KERNEL",
        "SKIFF_VM_INITRAMFS",
        "SKIFF_VM_VSOCK_BACKEND",
        "SKIFF_VM_VIRTIOFSD",
    ];
    for (name, path) in names.iter().zip(paths) {
        std::env::set_var(name, path);
    }
    true
}

/// After containerd's own cleanup: whatever VM of this namespace is left
/// (a shim killed before it took its VM down) is killed, then checked.
struct VmLeftovers(String);

impl Drop for VmLeftovers {
    fn drop(&mut self) {
        let root = PathBuf::from(format!("/run/containerd/skiff-vm/{}", self.0));
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                // Unmounts what is left in its share before removing it.
                skiff_vm::reap_leftovers(&entry.path());
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let _ = std::fs::remove_dir(&root);
    }
}

fn vm_run(c: &Containerd, flags: &[&str], id: &str, cmd: &[&str]) -> std::process::Output {
    let rootfs = c.rootfs.display().to_string();
    let mut args = vec![
        "run",
        "--runtime",
        VM_RUNTIME,
        "--env",
        "PATH=/usr/bin:/bin",
    ];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", &rootfs, id]);
    args.extend_from_slice(cmd);
    c.ctr(&args)
}

/// Processes whose command line names this namespace's VM state (qemu,
/// vhost-device-vsock).
fn vm_processes(namespace: &str) -> Vec<String> {
    let needle = format!("/run/containerd/skiff-vm/{namespace}/");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&needle).then_some(cmdline)
        })
        .collect()
}

/// The VM tier's shim servers for this containerd (named by argv[0]).
fn vm_shims(sock: &Path) -> Vec<i64> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i64>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let argv0 = cmd.split(' ').next().unwrap_or_default();
            (Path::new(argv0).file_name() == Some("containerd-shim-skiff-vm-v2".as_ref())
                && cmd.contains(&format!("-address {} ", sock.display()))
                && cmd.trim_end().ends_with("serve"))
            .then_some(pid)
        })
        .collect()
}

/// Memory of the pod's host processes, for docs/vm.md (printed, not
/// asserted: memory is not a pass/fail matter in a shared CI host): RSS,
/// PSS (shared pages divided among their users) and private (what this
/// pod alone holds: what one more pod adds), KiB.
fn report_memory(c: &Containerd) {
    let field = |pid: &str, names: &[&str]| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                names
                    .contains(&k)
                    .then(|| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
            })
            .sum()
    };
    let all = |pid: &str| {
        [
            field(pid, &["Rss"]),
            field(pid, &["Pss"]),
            field(pid, &["Private_Clean", "Private_Dirty"]),
            // What a second pod cannot share with the first: the clean
            // pages are the binaries', shared by every pod's copies.
            field(pid, &["Private_Dirty"]),
        ]
    };
    let add = |a: [u64; 4], b: [u64; 4]| [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]];
    let shims = vm_shims(&c.sock)
        .iter()
        .fold([0; 4], |sum, p| add(sum, all(&p.to_string())));
    let needle = format!("/run/containerd/skiff-vm/{}/", c.namespace);
    let (mut qemu, mut helpers) = ([0; 4], [0; 4]);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.contains(&needle) {
            continue;
        }
        let pid = e.file_name().to_string_lossy().into_owned();
        if cmdline.starts_with("qemu") {
            qemu = add(qemu, all(&pid));
        } else {
            helpers = add(helpers, all(&pid));
        }
    }
    eprintln!(
        "memory KiB [rss, pss, private, private dirty]: shim {shims:?}, helpers {helpers:?}, qemu {qemu:?}"
    );
}

#[test]
fn a_task_runs_in_a_vm_with_output_exit_code_and_exec() {
    if !vm_ready() {
        return;
    }
    let c = Containerd::start("vm");
    let _leftovers = VmLeftovers(c.namespace.clone());

    // Foreground: output and exit code pass through; the kernel is the
    // guest's; a host directory bound in (--mount) is read in the guest.
    let data = c.base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "from-the-host\n").unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        data.display()
    );
    let out = vm_run(
        &c,
        &["--rm", "--mount", &mount],
        "vm-fg",
        &[
            "sh",
            "-c",
            "uname -r; echo out; cat /data/hello.txt; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let host = nix::sys::utsname::uname().unwrap();
    let host = host.release().to_string_lossy().into_owned();
    let mut lines = stdout.lines();
    let release = lines.next().unwrap_or_default();
    assert!(
        !release.is_empty() && release != host,
        "uname -r: {stdout:?} (host {host})"
    );
    assert_eq!(lines.next(), Some("out"));
    assert_eq!(lines.next(), Some("from-the-host"), "{stdout:?}");
    eventually("the VM shim exits", || vm_shims(&c.sock).is_empty());

    // Detached, then an exec with its own output and exit code, then kill.
    let out = vm_run(&c, &["-d"], "vm-d", &["sleep", "600"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_vm(&c, "vm-d", "RUNNING");
    report_memory(&c);
    let exec = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "vm-d",
        "sh",
        "-c",
        "echo from-exec; exit 4",
    ]);
    assert_eq!(exec.status.code(), Some(4), "{}", text(&exec));
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "from-exec\n");
    // An exec with a terminal (ctr wants one of its own: a pty of ours).
    let sock = c.sock.display().to_string();
    let (code, out) = run_in_pty(
        &containerd_tool("ctr"),
        &[
            "--address",
            &sock,
            "--namespace",
            &c.namespace,
            "task",
            "exec",
            "-t",
            "--exec-id",
            "e2",
            "vm-d",
            "sh",
            "-c",
            "tty; exit 5",
        ],
    );
    assert_eq!(code, Some(5), "exec -t: {out}");
    assert!(out.contains("/dev/pts/"), "exec -t: {out:?}");
    // Pause and resume freeze the container's cgroup in the guest; its
    // metrics come from there (pids.current: sleep alone).
    c.ok(&["task", "pause", "vm-d"]);
    wait_vm(&c, "vm-d", "PAUSED");
    c.ok(&["task", "resume", "vm-d"]);
    wait_vm(&c, "vm-d", "RUNNING");
    let metrics = c.ok(&["task", "metrics", "vm-d"]);
    let current = metrics
        .lines()
        .find(|l| l.starts_with("pids.current"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    assert_eq!(current, "1", "{metrics}");
    // ps: every process of the container in the guest (its init and a
    // detached exec), by their guest pids, as runc's shim lists its cgroup.
    c.ok(&[
        "task",
        "exec",
        "--detach",
        "--exec-id",
        "e3",
        "vm-d",
        "sleep",
        "300",
    ]);
    let ps = c.ok(&["task", "ps", "vm-d"]);
    let pids: Vec<u32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{ps}");
    c.ok(&["task", "kill", "-s", "KILL", "vm-d"]);
    wait_vm(&c, "vm-d", "STOPPED");
    c.ok(&["task", "delete", "vm-d"]);
    c.ok(&["container", "delete", "vm-d"]);
    eventually("the VM shim exits", || vm_shims(&c.sock).is_empty());

    // Nothing of either VM is left.
    assert_eq!(vm_processes(&c.namespace), Vec::<String>::new());
    assert!(!Path::new(&format!("/run/containerd/skiff-vm/{}", c.namespace)).exists());
}

/// A VM shim SIGKILLed with its task running leaves qemu and
/// vhost-device-vsock behind; containerd sees the connection drop and runs
/// the delete action, which kills them (from the sandbox's pids file) and
/// removes the sandbox's state.
#[test]
fn a_killed_vm_shim_leaves_no_vm_behind() {
    if !vm_ready() {
        return;
    }
    let c = Containerd::start("vmkill");
    let _leftovers = VmLeftovers(c.namespace.clone());
    let out = vm_run(&c, &["-d"], "vm-kill", &["sleep", "600"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_vm(&c, "vm-kill", "RUNNING");
    let shim = vm_shims(&c.sock);
    assert_eq!(shim.len(), 1, "one VM shim");
    assert!(!vm_processes(&c.namespace).is_empty(), "the VM runs");
    let _ = Command::new("kill")
        .args(["-KILL", &shim[0].to_string()])
        .status();
    // containerd runs the delete action once it sees the connection drop;
    // under TCG on a loaded machine that and qemu's exit take a while.
    let state = format!("/run/containerd/skiff-vm/{}/vm-kill", c.namespace);
    let pids = read(format!("{state}/pids"));
    let gone = within(Duration::from_secs(30), || {
        vm_processes(&c.namespace).is_empty()
    });
    assert!(
        gone,
        "the VM and its helper are left: {:?}\nthe pids file held {pids:?}\ncontainerd's log:\n{}",
        vm_processes(&c.namespace),
        read(c.base.join("containerd.log"))
    );
    eventually("the sandbox's state is removed", || {
        !Path::new(&state).exists()
    });
    assert!(
        !Path::new(&format!("{state}.rootfs.ext4")).exists(),
        "the disk image is left"
    );
    c.ok(&["container", "delete", "vm-kill"]);
}

/// The OOM killer inside the guest (the container's memory cgroup there)
/// is reported as containerd reports it for runc: exit 137, and a TaskOOM
/// before the TaskExit.
#[test]
fn an_oom_kill_in_the_guest_is_reported_as_oom() {
    if !vm_ready() {
        return;
    }
    let c = Containerd::start("vmoom");
    let _leftovers = VmLeftovers(c.namespace.clone());
    let log = c.base.join("events.log");
    let mut watcher = c
        .ctr_cmd(&["events"])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = vm_run(
        &c,
        &["--rm", "--memory-limit", "33554432"],
        "vm-oom",
        &["sh", "-c", "tail /dev/zero"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", text(&out));
    let topics = |events: &str| -> Vec<String> {
        events
            .lines()
            .filter(|l| l.contains("vm-oom"))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(str::to_string)
            .collect()
    };
    eventually("the events are seen", || {
        topics(&read(&log)).contains(&"/tasks/delete".to_string())
    });
    let _ = watcher.kill();
    let _ = watcher.wait();
    let seen = topics(&read(&log));
    let at = |t: &str| seen.iter().position(|x| x == t);
    assert!(at("/tasks/oom").is_some(), "{seen:?}");
    assert!(at("/tasks/oom") < at("/tasks/exit"), "{seen:?}");
}

/// Two tasks grouped into one shim (the group annotation, as the CRI's
/// sandbox id does) run in one VM: the same guest boot, one qemu; their
/// rootfs reach the guest through virtio-fs, so a write lands on the host.
#[test]
fn a_pods_tasks_share_one_vm() {
    if !vm_ready() {
        return;
    }
    let c = Containerd::start("vmpod");
    let _leftovers = VmLeftovers(c.namespace.clone());
    let group = "io.containerd.runc.v2.group=vm-pod";
    let out = vm_run(
        &c,
        &["-d", "--annotation", group],
        "vm-pod-a",
        &["sleep", "600"],
    );
    assert!(out.status.success(), "{}", text(&out));
    wait_vm(&c, "vm-pod-a", "RUNNING");
    let boot_a = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "b",
        "vm-pod-a",
        "cat",
        "/proc/sys/kernel/random/boot_id",
    ]);
    assert!(boot_a.status.success(), "{}", text(&boot_a));
    let written = c.rootfs.join("written-in-the-vm");
    let _ = std::fs::remove_file(&written);
    let out = vm_run(
        &c,
        &["--rm", "--annotation", group],
        "vm-pod-b",
        &[
            "sh",
            "-c",
            "cat /proc/sys/kernel/random/boot_id; echo yes > /written-in-the-vm",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(out.stdout, boot_a.stdout, "a second VM booted");
    assert_eq!(vm_shims(&c.sock).len(), 1, "one shim for the pod");
    let qemus = vm_processes(&c.namespace)
        .iter()
        .filter(|p| p.starts_with("qemu"))
        .count();
    assert_eq!(qemus, 1, "one VM for the pod");
    assert_eq!(
        std::fs::read_to_string(&written).unwrap_or_default(),
        "yes\n"
    );
    let _ = std::fs::remove_file(&written);
    c.ok(&["task", "kill", "-s", "KILL", "vm-pod-a"]);
    wait_vm(&c, "vm-pod-a", "STOPPED");
    c.ok(&["task", "delete", "vm-pod-a"]);
    c.ok(&["container", "delete", "vm-pod-a"]);
    eventually("the VM shim exits", || vm_shims(&c.sock).is_empty());
    assert_eq!(vm_processes(&c.namespace), Vec::<String>::new());
}

/// An image's snapshot (an overlay mount containerd hands the shim) is
/// mounted into the VM's share: `ctr run IMAGE` in a VM.
#[test]
fn an_image_runs_in_a_vm_from_its_snapshot() {
    if !vm_ready() {
        return;
    }
    let c = Containerd::start("vmimage");
    let _leftovers = VmLeftovers(c.namespace.clone());
    let image = c.base.join("image.tar");
    let made = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/mkimage.py"
    ))
    .arg(&c.rootfs)
    .arg("skiff.test/vm:1")
    .arg(&image)
    .status()
    .unwrap();
    assert!(made.success());
    c.ok(&["image", "import", image.to_str().unwrap()]);
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        VM_RUNTIME,
        "--env",
        "PATH=/usr/bin:/bin",
        "skiff.test/vm:1",
        "vm-image",
        "sh",
        "-c",
        "echo from-the-image > /made-here; cat /made-here; exit 2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-the-image\n");
    eventually("the VM shim exits", || vm_shims(&c.sock).is_empty());
    assert_eq!(vm_processes(&c.namespace), Vec::<String>::new());
    // The snapshot's mount in the share is gone with the VM.
    let mounts = read("/proc/self/mountinfo");
    assert!(
        !mounts.contains(&format!("/run/containerd/skiff-vm/{}/", c.namespace)),
        "a mount is left in the sandbox"
    );
}

/// A VM shim SIGTERMed (an operator, systemd stopping containerd) takes its
/// VM and helpers down and removes its socket before it exits.
#[test]
fn a_sigtermed_vm_shim_takes_its_vm_down() {
    if !vm_ready() {
        return;
    }
    let c = Containerd::start("vmterm");
    let _leftovers = VmLeftovers(c.namespace.clone());
    let out = vm_run(&c, &["-d"], "vm-term", &["sleep", "600"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_vm(&c, "vm-term", "RUNNING");
    let shim = vm_shims(&c.sock);
    assert_eq!(shim.len(), 1, "one VM shim");
    let address = c.shim_address("vm-term");
    let socket = address
        .strip_prefix("unix://")
        .expect("a unix:// address")
        .to_string();
    let _ = Command::new("kill")
        .args(["-TERM", &shim[0].to_string()])
        .status();
    eventually("the shim exits", || vm_shims(&c.sock).is_empty());
    eventually("the VM and its helpers are gone", || {
        vm_processes(&c.namespace).is_empty()
    });
    assert!(!Path::new(&socket).exists(), "{socket} is left");
    let _ = c.ctr(&["task", "delete", "--force", "vm-term"]);
    c.ok(&["container", "delete", "vm-term"]);
}

/// A VM task's state, waited for up to a minute: under TCG, with the
/// suite's other VMs booting on the same two cores, a kill's way through
/// the guest (the pid namespace's end, the agent's reaper, WaitProcess)
/// to containerd took over 10 s once.
fn wait_vm(c: &Containerd, id: &str, status: &str) {
    c.wait_status_within(id, status, Duration::from_secs(60));
}
