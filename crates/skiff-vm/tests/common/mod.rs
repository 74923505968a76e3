//! What the VM tier's tests share: finding qemu and the guest image
//! (skipping with a message without them), a busybox rootfs as a disk
//! image, a container config, and reading a process's output to its end.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skiff_runtime::oci_spec::runtime::Spec;
use skiff_vm::agent::{
    ContainerRequest, CreateContainerRequest, ProcessRequest, ReadStreamRequest,
};
use skiff_vm::{AgentClient, Disk, Qemu, Sandbox, SandboxConfig};

pub const CALL_BOUND: Duration = Duration::from_secs(60);

pub fn ctx() -> skiff_vm::ttrpc::context::Context {
    skiff_vm::ttrpc::context::with_timeout(CALL_BOUND.as_nanos() as i64)
}

pub struct Images {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub vsock: PathBuf,
    pub virtiofsd: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The kernel, initramfs and vsock backend from scripts/vm-image.sh (cached;
/// the first run builds the agent), or None with the reason printed.
pub fn images() -> Option<Images> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: qemu-system-x86_64 is not installed");
        return None;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the VM tests run as root (mkfs of a rootfs owned by root)");
        return None;
    }
    let out = Command::new(repo().join("scripts/vm-image.sh")).output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "SKIPPED: scripts/vm-image.sh failed (no guest kernel or agent): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("SKIPPED: scripts/vm-image.sh: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(PathBuf::from);
    Some(Images {
        kernel: lines.next()?,
        initramfs: lines.next()?,
        vsock: lines.next()?,
        virtiofsd: lines.next()?,
    })
}

/// A scratch directory removed on drop (also on a failed assertion).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("skiff-vm-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A busybox rootfs (scripts/mkrootfs.sh) in `scratch`.
pub fn busybox_rootfs(scratch: &Scratch) -> PathBuf {
    let rootfs = scratch.0.join("rootfs");
    if !rootfs.exists() {
        let status = Command::new(repo().join("scripts/mkrootfs.sh"))
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(status.success(), "mkrootfs.sh failed");
    }
    rootfs
}

/// A busybox rootfs as an ext4 image in `scratch`.
pub fn busybox_disk(scratch: &Scratch, serial: &str) -> Disk {
    let rootfs = busybox_rootfs(scratch);
    let image = scratch.0.join(format!("{serial}.ext4"));
    skiff_vm::disk::ext4_from_dir(&rootfs, &image).unwrap();
    Disk {
        path: image,
        serial: serial.into(),
        read_only: false,
    }
}

pub fn config(images: &Images, id: &str, state_root: &Path, disks: Vec<Disk>) -> SandboxConfig {
    SandboxConfig {
        id: id.into(),
        state_root: state_root.into(),
        kernel: images.kernel.clone(),
        initramfs: images.initramfs.clone(),
        vhost_device_vsock: images.vsock.clone(),
        hypervisor: Box::new(Qemu::default()),
        cpus: 1,
        memory_mib: 256,
        disks,
        virtiofsd: None,
        extra_cmdline: String::new(),
        boot_bound: Duration::from_secs(90),
        network: None,
    }
}

/// Launches, retrying once on a failed boot (TCG on a loaded host), and
/// prints the serial console of a failed attempt.
pub fn launch(make: impl Fn() -> SandboxConfig) -> Sandbox {
    let mut last = String::new();
    for attempt in 1..=2 {
        let config = make();
        let console = config.state_root.join(&config.id).join("console.log");
        match Sandbox::launch(config) {
            Ok(s) => return s,
            Err(e) => {
                let log = std::fs::read_to_string(&console).unwrap_or_default();
                eprintln!(
                    "launch attempt {attempt} failed: {e}\n--- serial console ---\n{log}\n---"
                );
                last = e.to_string();
            }
        }
    }
    panic!("the VM did not come up twice: {last}");
}

/// A container config for `args`, no terminal (the agent replaces root.path).
pub fn container_config(args: &[&str]) -> Vec<u8> {
    let mut spec = Spec::default();
    // oci-spec's default root is read-only; the containers here write.
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(false));
        p.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    }
    serde_json::to_vec(&spec).unwrap()
}

pub fn create(agent: &AgentClient, id: &str, serial: &str, args: &[&str]) -> i32 {
    let req = CreateContainerRequest {
        container_id: id.into(),
        oci_config: container_config(args),
        rootfs_disk_serial: serial.into(),
        ..Default::default()
    };
    agent
        .create_container(ctx(), &req)
        .expect("CreateContainer")
        .pid
}

pub fn start(agent: &AgentClient, id: &str) {
    let req = ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    };
    agent.start_container(ctx(), &req).expect("StartContainer");
}

/// All of a process's stdout, until it closes.
pub fn read_all(agent: &AgentClient, id: &str, exec_id: &str) -> String {
    let mut out = Vec::new();
    loop {
        let req = ReadStreamRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
            len: 65536,
            ..Default::default()
        };
        let chunk = agent.read_stdout(ctx(), &req).expect("ReadStdout").data;
        if chunk.is_empty() {
            break;
        }
        out.extend(chunk);
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn wait(agent: &AgentClient, id: &str, exec_id: &str) -> i32 {
    let req = ProcessRequest {
        container_id: id.into(),
        exec_id: exec_id.into(),
        ..Default::default()
    };
    agent.wait_process(ctx(), &req).expect("WaitProcess").status
}

/// Runs `checks` on a launched sandbox, then takes it down whatever they
/// did (printing the serial console when they failed), then fails as they
/// did: no VM outlives a failed assertion.
pub fn checked_then_down(mut sandbox: Sandbox, checks: impl FnOnce(&Sandbox)) {
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checks(&sandbox)));
    if checked.is_err() {
        eprintln!("--- serial console ---\n{}\n---", sandbox.console());
    }
    sandbox.shutdown();
    drop(sandbox);
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
}

/// SIGKILL to a container's init, its status (137) checked, the container
/// removed.
pub fn kill_and_remove(agent: &AgentClient, id: &str) {
    let kill = skiff_vm::agent::SignalProcessRequest {
        container_id: id.into(),
        exec_id: String::new(),
        signal: 9,
        ..Default::default()
    };
    agent.signal_process(ctx(), &kill).expect("SignalProcess");
    assert_eq!(wait(agent, id, ""), 137);
    let req = ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    };
    agent
        .remove_container(ctx(), &req)
        .expect("RemoveContainer");
}

/// Starts `args` as exec `exec_id` in running container `id` (root, /,
/// a plain PATH).
pub fn exec(agent: &AgentClient, id: &str, exec_id: &str, args: &[&str]) {
    let req = skiff_vm::agent::ExecProcessRequest {
        container_id: id.into(),
        exec_id: exec_id.into(),
        process: serde_json::to_vec(&serde_json::json!({
            "args": args,
            "cwd": "/",
            "env": ["PATH=/usr/bin:/bin"],
            "user": {"uid": 0, "gid": 0},
        }))
        .unwrap(),
        ..Default::default()
    };
    agent.exec_process(ctx(), &req).expect("ExecProcess");
}
