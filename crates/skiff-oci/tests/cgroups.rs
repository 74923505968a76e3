//! Cgroups on this host's layout (v1 controllers plus a cgroup2 mount): limits
//! written where the kernel reads them, and enforced.

mod common;

use std::path::Path;

use common::*;
use serde_json::json;

fn resources(c: &mut serde_json::Value, r: serde_json::Value) {
    c["linux"]["resources"] = r;
}

#[test]
fn memory_cpu_pids_limits_land_in_the_group_and_it_goes_on_delete() {
    let env = TestEnv::new("cglimits");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    resources(
        &mut b.config,
        json!({
            "memory": {"limit": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000},
            "pids": {"limit": 20},
            "devices": [{"allow": false, "access": "rwm"}],
        }),
    );
    b.write();
    let id = env.id("c");
    env.ok(&["create", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let rel = format!("/{id}");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let dir = cgroup_dir("", &rel);
        assert_eq!(read(dir.join("memory.max")).trim(), "67108864");
        assert_eq!(read(dir.join("cpu.max")).trim(), "20000 100000");
        assert_eq!(read(dir.join("pids.max")).trim(), "20");
    } else {
        assert_eq!(
            read(cgroup_dir("memory", &rel).join("memory.limit_in_bytes")).trim(),
            "67108864"
        );
        assert_eq!(
            read(cgroup_dir("memory", &rel).join("memory.soft_limit_in_bytes")).trim(),
            "33554432"
        );
        assert_eq!(
            read(cgroup_dir("cpu", &rel).join("cpu.shares")).trim(),
            "512"
        );
        assert_eq!(
            read(cgroup_dir("cpu", &rel).join("cpu.cfs_quota_us")).trim(),
            "20000"
        );
        assert_eq!(
            read(cgroup_dir("cpu", &rel).join("cpu.cfs_period_us")).trim(),
            "100000"
        );
        assert_eq!(read(cgroup_dir("pids", &rel).join("pids.max")).trim(), "20");
        let devices = read(cgroup_dir("devices", &rel).join("devices.list"));
        assert!(
            !devices.contains("a *:* rwm") && devices.contains("c 1:3 rwm"),
            "{devices}"
        );
        // init is in the group of every hierarchy, the unified one too.
        for ctrl in ["memory", "cpu", "pids", "devices", "freezer", "unified"] {
            let dir = cgroup_dir(ctrl, &rel);
            if dir.parent().unwrap().exists() {
                let procs = read(dir.join("cgroup.procs"));
                assert!(procs.lines().any(|l| l == pid), "{ctrl}: {procs}");
            }
        }
    }
    env.ok(&["delete", &id]);
    for ctrl in [
        "memory", "cpu", "pids", "devices", "freezer", "cpuset", "unified", "systemd",
    ] {
        assert!(!cgroup_dir(ctrl, &rel).exists(), "{ctrl} group left behind");
    }
}

#[test]
fn memory_limit_kills_a_hog() {
    let env = TestEnv::new("cgoom");
    let mut b = env.bundle("b", &["sh", "-c", "tail /dev/zero"]);
    resources(
        &mut b.config,
        json!({"memory": {"limit": 33554432, "swap": 33554432}}),
    );
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 137, "{out}{err}");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let env = TestEnv::new("cgpids");
    let out = env.run_sh(
        "p",
        "i=0; while [ $i -lt 30 ]; do (sleep 5 &) 2>/dev/null; i=$((i+1)); done; cat /sys/fs/cgroup/pids/pids.current 2>/dev/null || cat /sys/fs/cgroup/pids.current",
        |c| {
            c["linux"]["resources"] = json!({"pids": {"limit": 10}});
            add_ns(c, "cgroup");
        },
    );
    let current: u32 = out.trim().lines().last().unwrap().parse().unwrap();
    assert!(current <= 10, "pids.current {current}");
    assert!(current >= 5, "pids.current {current}: the loop did fork");
}

#[test]
fn device_rules_are_enforced() {
    let env = TestEnv::new("cgdev");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return; // v2 device programs are issue 3's
    }
    let out = env.run_sh(
        "d",
        "mknod /tmp/null2 c 1 3 && echo allowed; mknod /tmp/port c 1 4 2>/dev/null && echo created || echo denied; head -c1 /dev/zero | wc -c",
        |c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
            let caps = json!(["CAP_MKNOD", "CAP_SYS_RAWIO"]);
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = caps.clone();
            }
            c["process"]["capabilities"]["inheritable"] = json!([]);
            c["process"]["capabilities"]["ambient"] = json!([]);
        },
    );
    assert_eq!(out, "allowed\ndenied\n1\n");
}
