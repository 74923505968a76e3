//! The VM tier's start-up cost next to a bare boot of the same VM
//! (docs/vm.md): launch to a container's first output, divided by launch
//! to a line printed by the same initramfs's /init (`skiff_bare=1`).
//! Not a pass/fail test (wall times depend on the host's load):
//!
//!   cargo test -p skiff-vm --test bench -- --ignored --nocapture
//!
//! SKIFF_VM_BENCH_ROUNDS sets the rounds (default 5); rounds alternate.
//! SKIFF_VM_TRACE=1 prints the library's phase timings from inside the guest.

mod common;

use std::time::{Duration, Instant};

use common::*;
use skiff_vm::agent::ExecProcessRequest;
use skiff_vm::{Sandbox, BARE_BOOT_LINE, BARE_BOOT_PARAM};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The devices a bare boot's VM has: none (the bench's first reference),
/// or those of the pod it is set against (the same qemu command line but
/// for the guest's own work).
#[derive(Clone, Copy)]
enum Devices {
    None,
    Disk,
    Share,
}

/// Launch to BARE_BOOT_LINE on the serial console.
fn bare_boot(images: &Images, scratch: &Scratch, devices: Devices) -> Duration {
    let disks = match devices {
        Devices::Disk => vec![busybox_disk(scratch, "bare")],
        _ => vec![],
    };
    let mut config = config(images, "bench-bare", &scratch.0.join("state"), disks);
    if let Devices::Share = devices {
        config.virtiofsd = Some(images.virtiofsd.clone());
    }
    config.extra_cmdline = format!("{BARE_BOOT_PARAM}=1");
    let sandbox =
        Sandbox::start_vm(&config).unwrap_or_else(|e| panic!("launching the bare VM: {e}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if sandbox.console().contains(BARE_BOOT_LINE) {
            return sandbox.launched().elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no bare boot line in 90 s:\n{}",
            sandbox.console()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// (launch to the first output of a container, an exec in the running VM
/// to its output and exit). The disk image is made inside the timing.
fn container_start(images: &Images, scratch: &Scratch) -> (Duration, Duration) {
    let rootfs = busybox_rootfs(scratch);
    let t0 = Instant::now();
    let image = scratch.0.join("bench.ext4");
    skiff_vm::disk::ext4_from_dir(&rootfs, &image).unwrap();
    let disk = skiff_vm::Disk {
        path: image,
        serial: "bench".into(),
        read_only: false,
    };
    let disk_built = t0.elapsed();
    let mut config = config(images, "bench-pod", &scratch.0.join("state"), vec![disk]);
    if std::env::var_os("SKIFF_VM_TRACE").is_some() {
        config.extra_cmdline = "skiff_trace=1".into();
    }
    let sandbox = Sandbox::launch(config).unwrap_or_else(|e| panic!("launching the VM: {e}"));
    let answered = t0.elapsed();
    let agent = sandbox.agent().unwrap();
    create(agent, "c1", "bench", &["sh", "-c", "echo hello; sleep 600"]);
    let created = t0.elapsed();
    start(agent, "c1");
    let started = t0.elapsed();
    let req = skiff_vm::agent::ReadStreamRequest {
        container_id: "c1".into(),
        exec_id: String::new(),
        len: 4096,
        ..Default::default()
    };
    let first = agent.read_stdout(ctx(), &req).unwrap().data;
    let to_output = t0.elapsed();
    assert_eq!(first, b"hello\n");
    eprintln!(
        "  phases: disk {disk_built:?}, agent answered {answered:?}, created {created:?}, started {started:?}, output {to_output:?}"
    );

    let t1 = Instant::now();
    let exec = ExecProcessRequest {
        container_id: "c1".into(),
        exec_id: "e1".into(),
        process: serde_json::to_vec(&serde_json::json!({
            "args": ["echo", "again"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/usr/bin:/bin"],
        }))
        .unwrap(),
        ..Default::default()
    };
    agent.exec_process(ctx(), &exec).unwrap();
    assert_eq!(read_all(agent, "c1", "e1"), "again\n");
    assert_eq!(wait(agent, "c1", "e1"), 0);
    let exec_took = t1.elapsed();
    if std::env::var_os("SKIFF_VM_TRACE").is_some() {
        agent
            .signal_process(
                ctx(),
                &skiff_vm::agent::SignalProcessRequest {
                    container_id: "c1".into(),
                    signal: 9,
                    ..Default::default()
                },
            )
            .unwrap();
        let req = skiff_vm::agent::ReadStreamRequest {
            container_id: "c1".into(),
            len: 65536,
            ..Default::default()
        };
        loop {
            let d = agent.read_stderr(ctx(), &req).unwrap().data;
            if d.is_empty() {
                break;
            }
            eprint!("{}", String::from_utf8_lossy(&d));
        }
    }
    for line in sandbox
        .console()
        .lines()
        .filter(|l| l.starts_with("skiff-agent:"))
    {
        eprintln!("  guest: {line}");
    }
    (to_output, exec_took)
}

/// Launch (virtiofsd included) to the first output of a container whose
/// rootfs is bound into the sandbox's virtio-fs share after the boot.
fn container_start_shared(images: &Images, scratch: &Scratch) -> Duration {
    let rootfs = busybox_rootfs(scratch);
    let t0 = Instant::now();
    let mut config = config(images, "bench-share", &scratch.0.join("state"), vec![]);
    config.virtiofsd = Some(images.virtiofsd.clone());
    let sandbox =
        Sandbox::launch(config).unwrap_or_else(|e| panic!("launching the VM (virtio-fs): {e}"));
    let target = sandbox.shared_dir().unwrap().join("c1/rootfs");
    std::fs::create_dir_all(&target).unwrap();
    nix::mount::mount(
        Some(&rootfs),
        &target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let agent = sandbox.agent().unwrap();
    let req = skiff_vm::agent::CreateContainerRequest {
        container_id: "c1".into(),
        oci_config: container_config(&["sh", "-c", "echo hello; sleep 600"]),
        rootfs_share_path: "c1/rootfs".into(),
        ..Default::default()
    };
    agent.create_container(ctx(), &req).unwrap();
    start(agent, "c1");
    let req = skiff_vm::agent::ReadStreamRequest {
        container_id: "c1".into(),
        exec_id: String::new(),
        len: 4096,
        ..Default::default()
    };
    let first = agent.read_stdout(ctx(), &req).unwrap().data;
    let took = t0.elapsed();
    assert_eq!(first, b"hello\n");
    took
}

#[test]
#[ignore]
fn first_container_output_against_a_bare_boot() {
    let Some(images) = images() else { return };
    let rounds: usize = std::env::var("SKIFF_VM_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let scratch = Scratch::new("bench");
    let (mut bare, mut pod, mut exec, mut shared) = (vec![], vec![], vec![], vec![]);
    let (mut bare_disk, mut bare_share) = (vec![], vec![]);
    for round in 0..rounds {
        let b = bare_boot(&images, &scratch, Devices::None);
        let bd = bare_boot(&images, &scratch, Devices::Disk);
        let bs = bare_boot(&images, &scratch, Devices::Share);
        let (p, e) = container_start(&images, &scratch);
        let s = container_start_shared(&images, &scratch);
        eprintln!(
            "round {round}: bare boot {b:?} (with the disk {bd:?}, with virtiofsd {bs:?}), first container output {p:?} (disk), {s:?} (virtio-fs), exec {e:?}"
        );
        bare.push(b);
        bare_disk.push(bd);
        bare_share.push(bs);
        pod.push(p);
        exec.push(e);
        shared.push(s);
    }
    // Ratios per round (its runs are seconds apart, so the host's load,
    // which drifts over a run, weighs on both alike), then their median.
    let ratio = |runs: &[Duration], bare: &[Duration]| {
        let mut r: Vec<f64> = runs
            .iter()
            .zip(bare)
            .map(|(x, b)| x.as_secs_f64() / b.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let (disk_ratio, share_ratio) = (ratio(&pod, &bare), ratio(&shared, &bare));
    let (disk_same, share_same) = (ratio(&pod, &bare_disk), ratio(&shared, &bare_share));
    let (bd, bs) = (median(bare_disk), median(bare_share));
    let (b, p, e, s) = (median(bare), median(pod), median(exec), median(shared));
    eprintln!(
        "median of {rounds}: bare boot {b:?} (with the disk {bd:?}, with virtiofsd {bs:?}); first container output: disk {p:?}, virtio-fs {s:?}; exec in the running VM {e:?}"
    );
    eprintln!(
        "median of the rounds' ratios to the bare boot without devices: disk {disk_ratio:.2}, virtio-fs {share_ratio:.2}"
    );
    eprintln!(
        "median of the rounds' ratios to the bare boot of the same VM (its devices): disk {disk_same:.2}, virtio-fs {share_same:.2}"
    );
}
