//! Issue 20's second measure (docs/vm.md, "Speed"): a second container in
//! a running pod, against skiff-oci's `run` of the same program inside the
//! same guest. Not a pass/fail test:
//!
//!   SKIFF_OCI=<static skiff-oci> cargo test -p skiff-vm --test bench_second -- --ignored --nocapture
//!
//! - The tier: from the host, CreateContainer + StartContainer +
//!   WaitProcess + RemoveContainer of `true` (its rootfs bound into the
//!   pod's share first, outside the timing, as the shim does before it
//!   calls the agent), in a VM whose first container runs.
//! - The reference: `skiff-oci run` of the same bundle (create, start,
//!   wait, delete, as runc's `run`) inside the guest, in a loop timed by
//!   busybox's `time` there: the static skiff-oci and the bundle come in
//!   through the share, and run from a privileged container of the guest
//!   (all capabilities, no seccomp, the guest's cgroup2 writable), the
//!   way one runs a runtime inside a container.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use skiff_vm::agent::{ContainerRequest, CreateContainerRequest, ReadStreamRequest};
use skiff_vm::AgentClient;

/// The reference's runs per timed loop (busybox's time has 10 ms steps).
const LOOP: u32 = 10;

fn bind(source: &Path, target: &Path) {
    std::fs::create_dir_all(target).unwrap();
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
}

fn request(id: &str) -> ContainerRequest {
    ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    }
}

/// Everything a process wrote to one stream, to its end.
fn read_stream(agent: &AgentClient, id: &str, stderr: bool) -> String {
    let mut out = Vec::new();
    loop {
        let req = ReadStreamRequest {
            container_id: id.into(),
            exec_id: String::new(),
            len: 65536,
            ..Default::default()
        };
        let got = if stderr {
            agent.read_stderr(ctx(), &req)
        } else {
            agent.read_stdout(ctx(), &req)
        }
        .unwrap()
        .data;
        if got.is_empty() {
            return String::from_utf8_lossy(&out).into_owned();
        }
        out.extend(got);
    }
}

/// One second container, `true`, from the host: create to removed.
fn second_container(agent: &AgentClient, shared: &Path, rootfs: &Path, i: u32) -> Duration {
    let id = format!("second{i}");
    let target = shared.join(&id).join("rootfs");
    bind(rootfs, &target);
    let t0 = Instant::now();
    let req = CreateContainerRequest {
        container_id: id.clone(),
        oci_config: container_config(&["true"]),
        rootfs_share_path: format!("{id}/rootfs"),
        ..Default::default()
    };
    agent.create_container(ctx(), &req).unwrap();
    start(agent, &id);
    assert_eq!(wait(agent, &id, ""), 0);
    agent.remove_container(ctx(), &request(&id)).unwrap();
    let took = t0.elapsed();
    let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
    took
}

/// The privileged container skiff-oci runs from: the guest's cgroup2 and
/// devices, the share at /shared.
fn tool_config(script: &str) -> Vec<u8> {
    // Every capability the caps crate knows.
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    let config = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "args": ["sh", "-c", script],
            "cwd": "/",
            "env": ["PATH=/usr/bin:/bin:/shared/tools"],
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        },
        "root": {"path": "rootfs", "readonly": false},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2"},
            {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/shared", "type": "bind",
             "source": skiff_vm::GUEST_SHARE_DIR, "options": ["rbind"]},
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "pid"}],
            "resources": {"devices": [{"allow": true, "access": "rwm"}]},
        },
    });
    serde_json::to_vec(&config).unwrap()
}

/// The bundle skiff-oci runs: the busybox rootfs, `true`, no terminal.
fn inner_config() -> Vec<u8> {
    let mut config: serde_json::Value =
        serde_json::from_slice(&container_config(&["true"])).unwrap();
    config["root"] = serde_json::json!({"path": "rootfs", "readonly": true});
    serde_json::to_vec(&config).unwrap()
}

/// busybox time's "real 0m 1.23s" (or "real 1m 2.50s"), as a Duration.
fn real_of(report: &str) -> Option<Duration> {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("real"))?;
    let rest = line.trim_start().strip_prefix("real")?.trim();
    let (m, s) = rest.split_once('m')?;
    let s = s.trim().strip_suffix('s')?;
    let secs = m.trim().parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?;
    Some(Duration::from_secs_f64(secs))
}

#[test]
#[ignore]
fn second_container_against_skiff_oci_run_in_the_guest() {
    let Some(images) = images() else { return };
    let Some(oci) = std::env::var_os("SKIFF_OCI") else {
        eprintln!("SKIPPED: set SKIFF_OCI to the static skiff-oci (scripts/build-static.sh)");
        return;
    };
    let rounds: u32 = std::env::var("SKIFF_VM_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let scratch = Scratch::new("bench2");
    let rootfs = busybox_rootfs(&scratch);
    let mut sandbox = launch(|| {
        let mut c = config(&images, "bench-second", &scratch.0.join("state"), vec![]);
        c.virtiofsd = Some(images.virtiofsd.clone());
        c
    });
    let shared = sandbox.shared_dir().unwrap();
    let mut binds = vec![];
    let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let agent = sandbox.agent().unwrap().clone();
        // The pod runs: its first container.
        let first = shared.join("first/rootfs");
        bind(&rootfs, &first);
        binds.push(first);
        let req = CreateContainerRequest {
            container_id: "first".into(),
            oci_config: container_config(&["sleep", "600"]),
            rootfs_share_path: "first/rootfs".into(),
            ..Default::default()
        };
        agent.create_container(ctx(), &req).unwrap();
        start(&agent, "first");

        // The reference's files in the share.
        std::fs::create_dir_all(shared.join("tools")).unwrap();
        std::fs::copy(&oci, shared.join("tools/skiff-oci")).unwrap();
        std::fs::create_dir_all(shared.join("inner")).unwrap();
        std::fs::write(shared.join("inner/config.json"), inner_config()).unwrap();
        for (at, _) in [("inner/rootfs", ()), ("tool/rootfs", ())] {
            bind(&rootfs, &shared.join(at));
            binds.push(shared.join(at));
        }

        let mut tier = vec![];
        let mut reference = vec![];
        for round in 0..rounds {
            tier.push(second_container(&agent, &shared, &rootfs, round));
            let script = format!(
                "cd /shared/inner && time sh -c 'i=0; while [ $i -lt {LOOP} ]; do \
                 skiff-oci --root /tmp/oci run r$i || exit 1; i=$((i+1)); done'"
            );
            let id = format!("tool{round}");
            let req = CreateContainerRequest {
                container_id: id.clone(),
                oci_config: tool_config(&script),
                rootfs_share_path: "tool/rootfs".into(),
                ..Default::default()
            };
            agent.create_container(ctx(), &req).unwrap();
            start(&agent, &id);
            let out = read_stream(&agent, &id, false);
            let err = read_stream(&agent, &id, true);
            assert_eq!(
                wait(&agent, &id, ""),
                0,
                "skiff-oci run in the guest: {out}{err}"
            );
            agent.remove_container(ctx(), &request(&id)).unwrap();
            let real = real_of(&err).unwrap_or_else(|| panic!("no time report: {err}"));
            reference.push(real / LOOP);
            eprintln!(
                "round {round}: second container {:?}, skiff-oci run in the guest {:?}",
                tier[tier.len() - 1],
                real / LOOP
            );
        }
        (tier, reference)
    }));
    for b in &binds {
        let _ = nix::mount::umount2(b, nix::mount::MntFlags::MNT_DETACH);
    }
    if measured.is_err() {
        eprintln!("--- serial console ---\n{}\n---", sandbox.console());
    }
    sandbox.shutdown();
    let (mut tier, mut reference) = measured.unwrap_or_else(|p| std::panic::resume_unwind(p));
    tier.sort();
    reference.sort();
    let (t, r) = (tier[tier.len() / 2], reference[reference.len() / 2]);
    eprintln!(
        "second container in a running pod (median) {t:?}; skiff-oci run in the guest (median) {r:?}; ratio {:.2}",
        t.as_secs_f64() / r.as_secs_f64()
    );
}

#[test]
fn busybox_time_reports_are_read() {
    assert_eq!(
        real_of("real\t0m 1.23s\nuser\t0m 0.10s\n"),
        Some(Duration::from_millis(1230))
    );
    assert_eq!(real_of("real 1m 2.50s"), Some(Duration::from_millis(62500)));
    assert_eq!(real_of("nothing"), None);
}
