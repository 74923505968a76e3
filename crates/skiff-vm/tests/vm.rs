//! The VM tier end to end on this host (qemu, TCG): a sandbox boots with
//! skiff-agent as PID 1, runs a container from a busybox disk on the guest's
//! kernel, passes exit codes through, execs a second process, and leaves
//! nothing behind.

mod common;

use std::path::Path;

use common::*;
use skiff_vm::agent::{Empty, ExecProcessRequest, SignalProcessRequest};

fn alive(pid: u32) -> bool {
    // A zombie would be ours to reap: the sandbox reaps, so none is left.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_container_runs_on_the_guest_kernel_execs_and_leaves_nothing() {
    let Some(images) = images() else { return };
    let scratch = Scratch::new("run");
    let state_root = scratch.0.join("state");
    let disk = busybox_disk(&scratch, "ctr1");
    let mut sandbox = launch(|| config(&images, "vm-run", &state_root, vec![disk.clone()]));
    let pids = sandbox.pids();
    let dir = sandbox.dir().to_path_buf();
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let agent = sandbox.agent().expect("connected");

        // The container's kernel is the guest's, not the host's.
        create(agent, "c1", "ctr1", &["sh", "-c", "uname -r; exit 7"]);
        start(agent, "c1");
        let release = read_all(agent, "c1", "");
        assert_eq!(wait(agent, "c1", ""), 7, "init's exit code");
        let host = nix::sys::utsname::uname().unwrap();
        let host = host.release().to_string_lossy().into_owned();
        eprintln!("container uname -r: {}, host: {host}", release.trim());
        assert_ne!(
            release.trim(),
            host,
            "uname -r in the container is the host's"
        );
        let guest = agent
            .guest_details(ctx(), &Empty::new())
            .unwrap()
            .kernel_release;
        assert_eq!(release.trim(), guest);
        agent
            .remove_container(ctx(), &container_request("c1"))
            .expect("RemoveContainer");

        // A second process in a running container, its own output and exit
        // code; then init killed by a signal reports 128 + 9.
        create(agent, "c2", "ctr1", &["sleep", "600"]);
        start(agent, "c2");
        let exec = ExecProcessRequest {
            container_id: "c2".into(),
            exec_id: "e1".into(),
            process: serde_json::to_vec(&serde_json::json!({
                "args": ["sh", "-c", "echo from-exec $(cat /proc/1/comm); exit 3"],
                "cwd": "/",
                "env": ["PATH=/usr/bin:/bin"],
                "user": {"uid": 0, "gid": 0},
            }))
            .unwrap(),
            ..Default::default()
        };
        agent.exec_process(ctx(), &exec).expect("ExecProcess");
        assert_eq!(read_all(agent, "c2", "e1").trim(), "from-exec sleep");
        assert_eq!(wait(agent, "c2", "e1"), 3, "the exec's exit code");
        let kill = SignalProcessRequest {
            container_id: "c2".into(),
            exec_id: String::new(),
            signal: 9,
            ..Default::default()
        };
        agent.signal_process(ctx(), &kill).expect("SignalProcess");
        assert_eq!(wait(agent, "c2", ""), 137);
        agent
            .remove_container(ctx(), &container_request("c2"))
            .expect("RemoveContainer");
    }));
    if checked.is_err() {
        eprintln!("--- serial console ---\n{}\n---", sandbox.console());
    }
    sandbox.shutdown();
    drop(sandbox);
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
    // Nothing of the sandbox is left: processes, sockets, its directory.
    for pid in pids {
        assert!(!alive(pid), "pid {pid} (qemu or a helper) still exists");
    }
    assert!(!dir.exists(), "{} is left", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "a mount is left in {}",
        dir.display()
    );
}

fn container_request(id: &str) -> skiff_vm::agent::ContainerRequest {
    skiff_vm::agent::ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    }
}

/// The rootfs through virtio-fs: virtiofsd shares the sandbox's directory,
/// the busybox rootfs bound into it after the boot runs a container whose
/// write lands on the host, and the teardown unmounts what was left in the
/// share before it removes anything (nothing of the rootfs is deleted).
#[test]
fn a_container_runs_from_the_virtio_fs_share() {
    let Some(images) = images() else { return };
    let scratch = Scratch::new("share");
    let rootfs = busybox_rootfs(&scratch);
    let state_root = scratch.0.join("state");
    let mut sandbox = launch(|| {
        let mut c = config(&images, "vm-share", &state_root, vec![]);
        c.virtiofsd = Some(images.virtiofsd.clone());
        c
    });
    let pids = sandbox.pids();
    let dir = sandbox.dir().to_path_buf();
    let target = sandbox.shared_dir().expect("a share").join("c1/rootfs");
    std::fs::create_dir_all(&target).unwrap();
    nix::mount::mount(
        Some(&rootfs),
        &target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let agent = sandbox.agent().expect("connected");
        let req = skiff_vm::agent::CreateContainerRequest {
            container_id: "c1".into(),
            oci_config: container_config(&[
                "sh",
                "-c",
                "echo via-virtiofs > /written; cat /written",
            ]),
            rootfs_share_path: "c1/rootfs".into(),
            ..Default::default()
        };
        agent
            .create_container(ctx(), &req)
            .expect("CreateContainer");
        start(agent, "c1");
        assert_eq!(read_all(agent, "c1", ""), "via-virtiofs\n");
        assert_eq!(wait(agent, "c1", ""), 0);
    }));
    if checked.is_err() {
        eprintln!("--- serial console ---\n{}\n---", sandbox.console());
    }
    // The bind mount is left in the share on purpose: the teardown must
    // unmount it, not delete through it.
    sandbox.shutdown();
    drop(sandbox);
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(
        std::fs::read_to_string(rootfs.join("written")).unwrap(),
        "via-virtiofs\n"
    );
    assert!(
        rootfs.join("usr/bin/busybox").exists(),
        "the rootfs was deleted through the share"
    );
    for pid in pids {
        assert!(!alive(pid), "pid {pid} (qemu or a helper) still exists");
    }
    assert!(!dir.exists(), "{} is left", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "a mount is left in {}",
        dir.display()
    );
}
