//! Resource usage read back from the container's groups, in the shape runc's
//! `events --stats` prints (containerd and Docker parse it).

use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{CgroupRecord, Layout};

fn read_u64(dir: &Path, file: &str) -> u64 {
    fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// "max" reads as u64::MAX, as runc reports an unlimited value.
fn read_limit(dir: &Path, file: &str) -> u64 {
    match fs::read_to_string(dir.join(file)) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// A "key value" file (memory.stat, cpu.stat) as a map.
fn read_kv(dir: &Path, file: &str) -> Map<String, Value> {
    fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

/// The `oom_kill` line of memory.events or memory.oom_control (0 when the
/// kernel has none).
fn oom_kill_in(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A kernel CPU or node list ("0-3,8") as its numbers.
fn cpu_list(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<u32>(), hi.parse::<u32>()) {
            // Bounded: a list names CPUs of this machine.
            out.extend((lo..=hi).take(1 << 16));
        }
    }
    out
}

fn get(map: &Map<String, Value>, key: &str) -> u64 {
    map.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl CgroupRecord {
    /// The container's directory in the hierarchy holding `controller` (v1), or
    /// its one directory (v2).
    pub fn controller_dir<'a>(&'a self, layout: &Layout, controller: &str) -> Option<&'a Path> {
        match layout {
            Layout::V2 { .. } => self.dirs.first().map(|d| d.as_path()),
            Layout::V1 { hierarchies, .. } => {
                let h = hierarchies.iter().find(|h| h.has(controller))?;
                self.dirs
                    .iter()
                    .find(|d| d.starts_with(&h.mount))
                    .map(|d| d.as_path())
            }
        }
    }

    /// How many times the OOM killer has killed in the container's group.
    pub fn oom_kills(&self, layout: &Layout) -> u64 {
        self.read_oom_kills(layout).unwrap_or(0)
    }

    /// The same, or None when the group's file cannot be read (a group
    /// already removed: systemd removes a scope's as soon as it empties).
    pub fn read_oom_kills(&self, layout: &Layout) -> Option<u64> {
        let (dir, file) = match (layout, self.controller_dir(layout, "memory")) {
            (Layout::V2 { .. }, Some(dir)) => (dir, "memory.events"),
            (Layout::V1 { .. }, Some(dir)) => (dir, "memory.oom_control"),
            _ => return Some(0),
        };
        Some(oom_kill_in(&fs::read_to_string(dir.join(file)).ok()?))
    }

    /// OOM kills in the group's parent and everything below it (cgroup v2,
    /// whose memory.events counts the whole subtree), for telling a kill in
    /// a group that is gone by the time anyone looks.
    pub fn parent_oom_kills(&self, layout: &Layout) -> Option<u64> {
        let Layout::V2 { root } = layout else {
            return None;
        };
        let parent = self.controller_dir(layout, "memory")?.parent()?;
        if !parent.starts_with(root) {
            return None;
        }
        Some(oom_kill_in(
            &fs::read_to_string(parent.join("memory.events")).ok()?,
        ))
    }

    /// runc's blkio stats: bytes and operations per device and direction.
    fn blkio_stats(&self, layout: &Layout) -> Value {
        let Some(dir) = self.controller_dir(layout, if layout.is_v2() { "io" } else { "blkio" })
        else {
            return json!({});
        };
        let entry = |dev: &str, op: &str, value: u64| {
            let (major, minor) = dev.split_once(':').unwrap_or(("0", "0"));
            json!({"major": major.parse::<u64>().unwrap_or(0), "minor": minor.parse::<u64>().unwrap_or(0), "op": op, "value": value})
        };
        let (mut bytes, mut ios) = (Vec::new(), Vec::new());
        if layout.is_v2() {
            for line in fs::read_to_string(dir.join("io.stat"))
                .unwrap_or_default()
                .lines()
            {
                let mut parts = line.split_whitespace();
                let dev = parts.next().unwrap_or_default();
                for kv in parts {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    let v = v.parse().unwrap_or(0);
                    match k {
                        "rbytes" => bytes.push(entry(dev, "Read", v)),
                        "wbytes" => bytes.push(entry(dev, "Write", v)),
                        "rios" => ios.push(entry(dev, "Read", v)),
                        "wios" => ios.push(entry(dev, "Write", v)),
                        _ => {}
                    }
                }
            }
        } else {
            for (file, list) in [
                ("blkio.throttle.io_service_bytes_recursive", &mut bytes),
                ("blkio.throttle.io_serviced_recursive", &mut ios),
            ] {
                for line in fs::read_to_string(dir.join(file))
                    .unwrap_or_default()
                    .lines()
                {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() == 3 {
                        list.push(entry(f[0], f[1], f[2].parse().unwrap_or(0)));
                    }
                }
            }
        }
        json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios})
    }

    /// Per page size: usage, limit and failure count.
    fn hugetlb_stats(&self, layout: &Layout) -> Value {
        // A hybrid host may offer hugetlb only in its cgroup2 tree.
        let dir = self
            .controller_dir(layout, "hugetlb")
            .or_else(|| self.v2_dir(layout));
        let Some(dir) = dir else { return json!({}) };
        let mut out = Map::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| {
                n.strip_suffix(".max")
                    .or_else(|| n.strip_suffix(".limit_in_bytes"))
            }) else {
                continue;
            };
            if size.contains(".rsvd") {
                continue;
            }
            let v2 = name.ends_with(".max");
            let (usage, max, failcnt) = if v2 {
                (
                    read_u64(dir, &format!("hugetlb.{size}.current")),
                    read_limit(dir, &name),
                    get(&read_kv(dir, &format!("hugetlb.{size}.events")), "max"),
                )
            } else {
                (
                    read_u64(dir, &format!("hugetlb.{size}.usage_in_bytes")),
                    read_u64(dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    read_u64(dir, &format!("hugetlb.{size}.failcnt")),
                )
            };
            out.insert(
                size.to_string(),
                json!({"usage": usage, "max": max, "failcnt": failcnt}),
            );
        }
        Value::Object(out)
    }

    pub fn stats(&self, layout: &Layout) -> Value {
        let mut out = Map::new();
        let v2 = layout.is_v2();
        // cpu
        if v2 {
            if let Some(dir) = self.controller_dir(layout, "cpu") {
                let s = read_kv(dir, "cpu.stat");
                out.insert("cpu".into(), json!({
                    "usage": {"total": get(&s, "usage_usec") * 1000, "kernel": get(&s, "system_usec") * 1000, "user": get(&s, "user_usec") * 1000},
                    "throttling": {"periods": get(&s, "nr_periods"), "throttledPeriods": get(&s, "nr_throttled"), "throttledTime": get(&s, "throttled_usec") * 1000},
                }));
            }
        } else if let Some(dir) = self.controller_dir(layout, "cpuacct") {
            let percpu: Vec<u64> = fs::read_to_string(dir.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            // Per CPU, user and system time (runc's percpu_user and
            // percpu_kernel), where the kernel has cpuacct.usage_all.
            let (mut percpu_user, mut percpu_kernel) = (Vec::new(), Vec::new());
            for line in fs::read_to_string(dir.join("cpuacct.usage_all"))
                .unwrap_or_default()
                .lines()
                .skip(1)
            {
                let f: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if let [_, user, system] = f[..] {
                    percpu_user.push(user);
                    percpu_kernel.push(system);
                }
            }
            let st = read_kv(dir, "cpuacct.stat");
            // cpuacct.stat counts clock ticks (USER_HZ, 100 on Linux).
            let tick_ns = 10_000_000;
            let throttle = self
                .controller_dir(layout, "cpu")
                .map(|d| read_kv(d, "cpu.stat"))
                .unwrap_or_default();
            out.insert("cpu".into(), json!({
                "usage": {"total": read_u64(dir, "cpuacct.usage"), "percpu": percpu, "percpu_kernel": percpu_kernel, "percpu_user": percpu_user, "kernel": get(&st, "system") * tick_ns, "user": get(&st, "user") * tick_ns},
                "throttling": {"periods": get(&throttle, "nr_periods"), "throttledPeriods": get(&throttle, "nr_throttled"), "throttledTime": get(&throttle, "throttled_time")},
            }));
        }
        // memory
        if let Some(dir) = self.controller_dir(layout, "memory") {
            let raw = read_kv(dir, "memory.stat");
            let mut memory = Map::new();
            if v2 {
                memory.insert("usage".into(), json!({"usage": read_u64(dir, "memory.current"), "max": read_u64(dir, "memory.peak"), "limit": read_limit(dir, "memory.max"), "failcnt": get(&read_kv(dir, "memory.events"), "max")}));
                if dir.join("memory.swap.current").exists() {
                    memory.insert("swap".into(), json!({"usage": read_u64(dir, "memory.swap.current"), "limit": read_limit(dir, "memory.swap.max")}));
                }
            } else {
                // usage, swap (memory+swap, as runc reports it), kernel and
                // kernel TCP memory: each where the kernel has the files.
                for (key, prefix) in [
                    ("usage", "memory"),
                    ("swap", "memory.memsw"),
                    ("kernel", "memory.kmem"),
                    ("kernelTCP", "memory.kmem.tcp"),
                ] {
                    if dir.join(format!("{prefix}.usage_in_bytes")).exists() {
                        let f = |n: &str| read_u64(dir, &format!("{prefix}.{n}"));
                        memory.insert(key.into(), json!({"usage": f("usage_in_bytes"), "max": f("max_usage_in_bytes"), "limit": f("limit_in_bytes"), "failcnt": f("failcnt")}));
                    }
                }
                let oom = read_kv(dir, "memory.oom_control");
                if !oom.is_empty() {
                    memory.insert("oomControl".into(), json!({"oom_kill_disable": get(&oom, "oom_kill_disable"), "under_oom": get(&oom, "under_oom"), "oom_kill": get(&oom, "oom_kill")}));
                }
            }
            memory.insert("raw".into(), Value::Object(raw));
            out.insert("memory".into(), Value::Object(memory));
        }
        // pids
        if let Some(dir) = self.controller_dir(layout, "pids") {
            // Unlimited is left out, as runc does (its limit is 0 then).
            let mut pids = json!({"current": read_u64(dir, "pids.current")});
            let limit = read_limit(dir, "pids.max");
            if limit != u64::MAX {
                pids["limit"] = json!(limit);
            }
            out.insert("pids".into(), pids);
        }
        // cpuset (v1: runc's fields; v2 has no such files)
        if let (false, Some(dir)) = (v2, self.controller_dir(layout, "cpuset")) {
            let list =
                |file: &str| cpu_list(&fs::read_to_string(dir.join(file)).unwrap_or_default());
            let mut cpuset = Map::new();
            cpuset.insert("cpus".into(), json!(list("cpuset.cpus")));
            cpuset.insert("mems".into(), json!(list("cpuset.mems")));
            for key in [
                "cpu_exclusive",
                "mem_hardwall",
                "mem_exclusive",
                "memory_migrate",
                "memory_spread_page",
                "memory_spread_slab",
                "memory_pressure",
                "sched_load_balance",
            ] {
                cpuset.insert(key.into(), json!(read_u64(dir, &format!("cpuset.{key}"))));
            }
            let relax: i64 = fs::read_to_string(dir.join("cpuset.sched_relax_domain_level"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            cpuset.insert("sched_relax_domain_level".into(), json!(relax));
            out.insert("cpuset".into(), Value::Object(cpuset));
        }
        out.insert("blkio".into(), self.blkio_stats(layout));
        out.insert("hugetlb".into(), self.hugetlb_stats(layout));
        // What runc always prints, empty here (no Intel RDT; the network
        // interfaces are the shim's business).
        out.insert("intel_rdt".into(), json!({}));
        out.insert("network_interfaces".into(), Value::Null);
        let mut out = Value::Object(out);
        omit_empty(&mut out);
        out
    }
}

/// The fields runc's stats types mark `omitempty` (runc 1.1's
/// types/events.go), left out when zero or empty as runc's encoder leaves
/// them: a client sees the keys runc prints. Readers take a missing one as
/// zero (the shim's metrics do).
fn omit_empty(stats: &mut Value) {
    fn drop_zero(v: Option<&mut Value>, keys: &[&str]) {
        let Some(map) = v.and_then(Value::as_object_mut) else {
            return;
        };
        map.retain(|k, v| {
            let empty = match v {
                Value::Number(n) => n.as_u64() == Some(0),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::String(s) => s.is_empty(),
                _ => false,
            };
            !(empty && keys.contains(&k.as_str()))
        });
    }
    let cpu_usage = ["total", "percpu", "percpu_kernel", "percpu_user"];
    drop_zero(stats.pointer_mut("/cpu/usage"), &cpu_usage);
    let throttling = ["periods", "throttledPeriods", "throttledTime"];
    drop_zero(stats.pointer_mut("/cpu/throttling"), &throttling);
    drop_zero(stats.pointer_mut("/cpuset"), &["cpus", "mems"]);
    for entry in ["usage", "swap", "kernel", "kernelTCP"] {
        let at = format!("/memory/{entry}");
        drop_zero(stats.pointer_mut(&at), &["usage", "max"]);
    }
    drop_zero(stats.pointer_mut("/memory"), &["raw"]);
    drop_zero(stats.pointer_mut("/pids"), &["current", "limit"]);
    if let Some(blkio) = stats.pointer_mut("/blkio").and_then(Value::as_object_mut) {
        for list in blkio.values_mut().filter_map(Value::as_array_mut) {
            for entry in list {
                drop_zero(Some(entry), &["major", "minor", "op", "value"]);
            }
        }
    }
    let blkio = ["ioServiceBytesRecursive", "ioServicedRecursive"];
    drop_zero(stats.pointer_mut("/blkio"), &blkio);
    if let Some(sizes) = stats.pointer_mut("/hugetlb").and_then(Value::as_object_mut) {
        for size in sizes.values_mut() {
            drop_zero(Some(size), &["usage", "max"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_are_left_out_as_runc_leaves_them() {
        let mut s = json!({
            "cpu": {"usage": {"total": 0, "percpu": [], "kernel": 0, "user": 0},
                    "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}},
            "cpuset": {"cpus": [], "mems": [0], "cpu_exclusive": 0},
            "memory": {"usage": {"usage": 0, "max": 0, "limit": 0, "failcnt": 0}, "raw": {}},
            "pids": {"current": 0},
            "blkio": {"ioServiceBytesRecursive": [], "ioServicedRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 0}]},
            "hugetlb": {"2MB": {"usage": 0, "max": 0, "failcnt": 0}},
        });
        omit_empty(&mut s);
        assert_eq!(
            s,
            json!({
                "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
                "cpuset": {"mems": [0], "cpu_exclusive": 0},
                "memory": {"usage": {"limit": 0, "failcnt": 0}},
                "pids": {},
                "blkio": {"ioServicedRecursive": [{"major": 8, "op": "Read"}]},
                "hugetlb": {"2MB": {"failcnt": 0}},
            })
        );
        // What is not there stays so (no empty objects made on the way).
        let mut none = json!({"memory": {"usage": {"limit": 1}}});
        omit_empty(&mut none);
        assert_eq!(none, json!({"memory": {"usage": {"limit": 1}}}));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-3,8\n"), vec![0, 1, 2, 3, 8]);
        assert_eq!(cpu_list("1"), vec![1]);
        assert_eq!(cpu_list("\n"), Vec::<u32>::new());
    }
}
