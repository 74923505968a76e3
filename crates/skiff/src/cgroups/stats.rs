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
        match (layout, self.controller_dir(layout, "memory")) {
            (Layout::V2 { .. }, Some(dir)) => get(&read_kv(dir, "memory.events"), "oom_kill"),
            (Layout::V1 { .. }, Some(dir)) => get(&read_kv(dir, "memory.oom_control"), "oom_kill"),
            _ => 0,
        }
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
            let st = read_kv(dir, "cpuacct.stat");
            // cpuacct.stat counts clock ticks (USER_HZ, 100 on Linux).
            let tick_ns = 10_000_000;
            let throttle = self
                .controller_dir(layout, "cpu")
                .map(|d| read_kv(d, "cpu.stat"))
                .unwrap_or_default();
            out.insert("cpu".into(), json!({
                "usage": {"total": read_u64(dir, "cpuacct.usage"), "percpu": percpu, "kernel": get(&st, "system") * tick_ns, "user": get(&st, "user") * tick_ns},
                "throttling": {"periods": get(&throttle, "nr_periods"), "throttledPeriods": get(&throttle, "nr_throttled"), "throttledTime": get(&throttle, "throttled_time")},
            }));
        }
        // memory
        if let Some(dir) = self.controller_dir(layout, "memory") {
            let raw = read_kv(dir, "memory.stat");
            let usage = if v2 {
                json!({"usage": read_u64(dir, "memory.current"), "max": read_u64(dir, "memory.peak"), "limit": read_limit(dir, "memory.max"), "failcnt": get(&read_kv(dir, "memory.events"), "max")})
            } else {
                json!({"usage": read_u64(dir, "memory.usage_in_bytes"), "max": read_u64(dir, "memory.max_usage_in_bytes"), "limit": read_u64(dir, "memory.limit_in_bytes"), "failcnt": read_u64(dir, "memory.failcnt")})
            };
            out.insert("memory".into(), json!({"usage": usage, "raw": raw}));
        }
        // pids
        if let Some(dir) = self.controller_dir(layout, "pids") {
            out.insert("pids".into(), json!({"current": read_u64(dir, "pids.current"), "limit": read_limit(dir, "pids.max")}));
        }
        out.insert("blkio".into(), json!({}));
        out.insert("hugetlb".into(), json!({}));
        Value::Object(out)
    }
}
