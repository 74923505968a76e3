//! pause/resume, update, ps and events on a live container (cgroup v1 here).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn running(env: &TestEnv, args: &[&str], edit: impl FnOnce(&mut Value)) -> (String, i64) {
    let mut b = env.bundle("b", args);
    edit(&mut b.config);
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    (id, pid)
}

fn proc_state(pid: i64) -> char {
    read(format!("/proc/{pid}/stat"))
        .rsplit(") ")
        .next()
        .unwrap()
        .chars()
        .next()
        .unwrap()
}

#[test]
fn pause_and_resume_freeze_the_container() {
    let env = TestEnv::new("pause");
    let (id, pid) = running(&env, &["sh", "-c", "while true; do :; done"], |_| {});
    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    let freezer = default_group("freezer", &id).join("freezer.state");
    if freezer.exists() {
        assert_eq!(read(&freezer).trim(), "FROZEN");
    }
    // A frozen busy loop stops using CPU.
    let ticks = || -> u64 {
        let stat = read(format!("/proc/{pid}/stat"));
        let f: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = ticks();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ticks(), before, "a paused process ran");
    assert!(
        "DS".contains(proc_state(pid)),
        "a frozen task is not running"
    );
    let err = env.fails(&["pause", &id]);
    assert!(err.contains("paused"), "{err}");
    env.ok(&["resume", &id]);
    assert_eq!(env.status(&id), "running");
    std::thread::sleep(Duration::from_millis(300));
    assert!(ticks() > before, "a resumed process did not run");
    let err = env.fails(&["resume", &id]);
    assert!(err.contains("running"), "{err}");
    // delete --force works on a paused container too.
    env.ok(&["pause", &id]);
    env.ok(&["delete", "--force", &id]);
    assert!(env.container_dirs().is_empty());
}

#[test]
fn update_changes_limits_live() {
    let env = TestEnv::new("update");
    let (id, _) = running(&env, &["sleep", "1000"], |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    });
    env.ok(&[
        "update",
        "--memory",
        "128m",
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "100000",
        "--cpu-shares",
        "256",
        "--pids-limit",
        "30",
        &id,
    ]);
    assert_eq!(
        read(default_group("memory", &id).join("memory.limit_in_bytes")).trim(),
        "134217728"
    );
    assert_eq!(
        read(default_group("cpu", &id).join("cpu.cfs_quota_us")).trim(),
        "25000"
    );
    assert_eq!(
        read(default_group("cpu", &id).join("cpu.shares")).trim(),
        "256"
    );
    assert_eq!(
        read(default_group("pids", &id).join("pids.max")).trim(),
        "30"
    );
    // Lowering below the current limit works too, and -r takes a resources file.
    let file = env.base.join("res.json");
    std::fs::write(
        &file,
        r#"{"memory": {"limit": 33554432}, "pids": {"limit": -1}}"#,
    )
    .unwrap();
    env.ok(&["update", "-r", file.to_str().unwrap(), &id]);
    assert_eq!(
        read(default_group("memory", &id).join("memory.limit_in_bytes")).trim(),
        "33554432"
    );
    assert_eq!(
        read(default_group("pids", &id).join("pids.max")).trim(),
        "max"
    );
    let err = env.fails(&["update", "--memory", "lots", &id]);
    assert!(err.contains("--memory"), "{err}");
    env.ok(&["delete", "--force", &id]);
}

/// update as Docker and containerd send it: every field, zeros for those the
/// user did not give (runc writes none of those); and on v1, a memory rise
/// above memory+swap, a cut below it, and -1 for both, in the order the
/// kernel accepts.
#[test]
fn update_takes_zeroes_as_unset_and_orders_memory_and_swap() {
    let env = TestEnv::new("updzero");
    let (id, _) = running(&env, &["sleep", "1000"], |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 16777216, "swap": 16777216},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": 40}
        });
    });
    let mem = |f: &str| {
        read(default_group("memory", &id).join(f))
            .trim()
            .to_string()
    };
    let cpu = |f: &str| read(default_group("cpu", &id).join(f)).trim().to_string();
    let memsw = default_group("memory", &id)
        .join("memory.memsw.limit_in_bytes")
        .exists();
    let update = |body: serde_json::Value| {
        let file = env.base.join("res.json");
        std::fs::write(&file, body.to_string()).unwrap();
        env.ok(&["update", "-r", file.to_str().unwrap(), &id]);
    };
    // Docker's shape for `docker update --memory 300m`.
    update(json!({
        "blockIO": {"weight": 0},
        "cpu": {"shares": 0, "cpus": "", "mems": "", "period": 0, "quota": 0},
        "memory": {"limit": 314572800, "reservation": 0, "kernel": 0, "swap": 629145600},
        "pids": {"limit": 0}
    }));
    assert_eq!(mem("memory.limit_in_bytes"), "314572800");
    if memsw {
        assert_eq!(mem("memory.memsw.limit_in_bytes"), "629145600");
    }
    assert_eq!(cpu("cpu.shares"), "1024");
    assert_eq!(cpu("cpu.cfs_quota_us"), "50000");
    assert_eq!(
        read(default_group("pids", &id).join("pids.max")).trim(),
        "40"
    );
    // A cut of both below the current limit, then a rise of both.
    update(json!({"memory": {"limit": 104857600, "swap": 104857600}}));
    assert_eq!(mem("memory.limit_in_bytes"), "104857600");
    update(json!({"memory": {"limit": 419430400, "swap": 419430400}}));
    assert_eq!(mem("memory.limit_in_bytes"), "419430400");
    // -1 alone: unlimited memory, and memory+swap with it.
    env.ok(&["update", "--memory", "-1", &id]);
    assert_eq!(mem("memory.limit_in_bytes"), "9223372036854771712");
    if memsw {
        assert_eq!(mem("memory.memsw.limit_in_bytes"), "9223372036854771712");
    }
    env.ok(&["update", "--memory", "0", &id]);
    assert_eq!(mem("memory.limit_in_bytes"), "9223372036854771712");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn ps_lists_the_container_processes() {
    let env = TestEnv::new("ps");
    let (id, pid) = running(&env, &["sh", "-c", "sleep 1000 & sleep 1001"], |_| {});
    let deadline = Instant::now() + Duration::from_secs(5);
    let pids = loop {
        let pids: Vec<i64> =
            serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
        if pids.len() >= 2 || Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.contains(&pid) && pids.len() == 2, "{pids:?}");
    let table = env.ok(&["ps", &id]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"));
    assert_eq!(lines.clone().count(), 2, "{table}");
    assert!(
        table.contains("sleep 1000") && table.contains("sleep 1001"),
        "{table}"
    );
    let custom = env.ok(&["ps", &id, "--", "-o", "pid,comm"]);
    assert!(
        custom.starts_with("    PID COMMAND") || custom.contains("PID COMMAND"),
        "{custom}"
    );
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn events_stats_and_oom() {
    let env = TestEnv::new("events");
    let (id, _) = running(
        &env,
        &["sh", "-c", "sleep 0.5; tail /dev/zero; sleep 1000"],
        |c| {
            c["linux"]["resources"] =
                json!({"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 20}});
        },
    );
    let stats: Value = serde_json::from_str(env.ok(&["events", "--stats", &id]).trim()).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["id"], json!(id));
    assert!(
        stats["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 33554432);
    assert!(stats["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    assert_eq!(stats["data"]["pids"]["limit"], 20);
    assert!(stats["data"]["cpu"]["usage"]["total"].as_u64().is_some());
    // Memory plus swap, as runc reports it, where the kernel accounts swap.
    if default_group("memory", &id)
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            stats["data"]["memory"]["swap"]["limit"], 33554432,
            "{stats}"
        );
    }
    // No pids limit: none reported (runc leaves it out), not 2^64-1.
    env.ok(&["update", "--pids-limit", "-1", &id]);
    let stats: Value = serde_json::from_str(env.ok(&["events", "--stats", &id]).trim()).unwrap();
    assert!(stats["data"]["pids"]["limit"].is_null(), "{stats}");
    env.ok(&["update", "--pids-limit", "20", &id]);

    // The stream: an oom event when `tail` hits the limit.
    let mut child = env
        .cmd(&["events", "--interval", "10s", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v: Value = serde_json::from_str(&line).unwrap();
            let oom = v["type"] == "oom";
            seen.push(v);
            if oom {
                break;
            }
        }
        seen
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let seen = reader.join().unwrap();
    assert!(seen.iter().any(|e| e["type"] == "stats"), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| e["type"] == "oom" && e["id"] == json!(id)),
        "{seen:?}"
    );
    env.ok(&["delete", "--force", &id]);
}

/// Polls `cond` for up to 5 s.
fn within_5s(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// systemd removes a scope's group once it is empty; containerd's runc
/// shim still sends `kill --all` to the stopped container then, and takes a
/// failure as its stop failing (seen with --systemd-cgroup in the systemd
/// VM's CRI pod). A stopped container whose groups are gone has nothing to
/// signal: success, as runc's (and delete still works).
#[test]
fn kill_all_of_a_stopped_container_whose_groups_are_gone() {
    let env = TestEnv::new("killgone");
    let b = env.bundle("g", &["true"]);
    let id = env.id("g");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    within_5s("init exits", || env.status(&id) == "stopped");
    let mut removed = 0;
    for base in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for dir in [base.path().join(&id), base.path()] {
            if dir.ends_with(&id) && dir.is_dir() && std::fs::remove_dir(&dir).is_ok() {
                removed += 1;
            }
        }
    }
    assert!(removed > 0, "no group of {id} found to remove");
    env.ok(&["kill", "--all", &id, "KILL"]);
    env.ok(&["delete", &id]);
}

/// kill as containerd's shim uses it: `--all` also once init is gone (a
/// container without a pid namespace of its own leaves what init started),
/// after which delete works; a plain kill of a stopped container says
/// "container not running" (runc's words, which the shim understands);
/// signal 0 checks liveness; SIGKILL to a paused container kills it.
#[test]
fn kill_all_after_init_exit_liveness_and_paused() {
    let env = TestEnv::new("killall");
    let mut b = env.bundle(
        "np",
        &[
            "sh",
            "-c",
            "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > /tmp/orphan",
        ],
    );
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.write();
    let id = env.id("np");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    within_5s("init exits", || env.status(&id) == "stopped");
    let orphan: i64 = read(b.rootfs().join("tmp/orphan")).trim().parse().unwrap();
    assert!(pid_alive(orphan), "the orphan already died");
    let err = env.fails(&["kill", &id, "KILL"]);
    assert!(err.contains("container not running"), "{err}");
    env.ok(&["kill", "--all", &id, "KILL"]);
    within_5s("the orphan dies", || !pid_alive(orphan));
    env.ok(&["delete", &id]);
    assert!(!default_group("pids", &id).exists());
    // Plain delete kills what is left too (runc's destroy does), so the
    // groups can go.
    let id = env.id("np2");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    within_5s("init exits", || env.status(&id) == "stopped");
    let orphan: i64 = read(b.rootfs().join("tmp/orphan")).trim().parse().unwrap();
    assert!(pid_alive(orphan), "the orphan already died");
    env.ok(&["delete", &id]);
    assert!(!pid_alive(orphan));
    assert!(!default_group("pids", &id).exists());

    let (id, pid) = running(&env, &["sleep", "1000"], |_| {});
    env.ok(&["kill", &id, "0"]);
    assert_eq!(env.status(&id), "running");
    env.ok(&["pause", &id]);
    env.ok(&["kill", &id, "KILL"]);
    within_5s("the paused container dies", || !pid_alive(pid));
    assert_eq!(env.status(&id), "stopped");
    env.ok(&["delete", &id]);
}

/// `events` prints its keys in runc's order (type, id, data): tools grep
/// the line. --log is created at start, also by a command that logs nothing,
/// and --debug writes debug lines there, in the chosen format.
#[test]
fn events_key_order_and_the_log_file() {
    let env = TestEnv::new("eventslog");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let log = env.base.join("log.json");
    env.ok(&[
        "--log",
        log.to_str().unwrap(),
        "run",
        "-d",
        "--bundle",
        b.path(),
        &id,
    ]);
    assert!(log.exists(), "--log was not created");
    assert_eq!(read(&log), "", "nothing to log on success without --debug");
    let line = env.ok(&["events", "--stats", &id]);
    assert!(
        line.starts_with(&format!(r#"{{"type":"stats","id":"{id}","data":{{"#)),
        "{line}"
    );
    env.ok(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &id,
    ]);
    let text = read(&log);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["level"], "debug", "{text}");
    assert!(first["msg"].as_str().unwrap().contains("state"), "{text}");
    env.ok(&["delete", "--force", &id]);
}

/// runc's update flags for what skiff has not: the Intel RDT schemas are
/// refused (as runc refuses them without RDT), kernel memory limits are
/// ignored with runc's warning; neither is a usage error.
#[test]
fn update_refuses_rdt_and_ignores_kernel_memory_as_runc() {
    let env = TestEnv::new("updrdt");
    let (id, _) = running(&env, &["sleep", "1000"], |_| {});
    for flag in ["--l3-cache-schema", "--mem-bw-schema"] {
        let err = env.fails(&["update", flag, "L3:0=f", &id]);
        assert!(err.contains(flag) && err.contains("intelRdt"), "{err}");
    }
    for flag in ["--kernel-memory", "--kernel-memory-tcp"] {
        let out = env.oci(&["update", flag, "1m", &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flag}: {err}");
        assert!(err.contains("Kernel memory settings are ignored"), "{err}");
    }
    env.ok(&["delete", "--force", &id]);
}
