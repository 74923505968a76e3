//! `update`, `ps` and `events`: runc's flags and output shapes over the
//! library's cgroup operations.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use skiff_runtime::container;
use skiff_runtime::oci_spec::runtime::LinuxResources;
use skiff_runtime::state::StateRoot;

use crate::cli::{ListFormat, UpdateArgs};
use crate::Result;

/// "64m", "1g", "1048576", "-1": bytes (binary suffixes, as docker's units).
fn parse_size(flag: &str, v: &str) -> Result<i64> {
    let v = v.trim();
    if v == "-1" {
        return Ok(-1);
    }
    let lower = v.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("--{flag} {v:?}: not a size (e.g. 64m, 1g, 1048576)"))?;
    Ok((n * mult as f64) as i64)
}

pub fn update(root: &StateRoot, a: &UpdateArgs) -> Result<()> {
    // runc's flags for what skiff has not: Intel RDT is refused (as runc
    // refuses it where the host has none), kernel memory ignored with
    // runc's warning.
    for (flag, value) in [
        ("l3-cache-schema", &a.l3_cache_schema),
        ("mem-bw-schema", &a.mem_bw_schema),
    ] {
        if value.is_some() {
            return Err(format!(
                "--{flag}: Intel RDT (linux.intelRdt) is not supported by skiff-oci"
            )
            .into());
        }
    }
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        skiff_runtime::log::warn("Kernel memory settings are ignored and will be removed");
    }
    let res: LinuxResources = match &a.resources {
        Some(path) => {
            let mut bytes = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut bytes)?;
            } else {
                bytes = std::fs::read(path)
                    .map_err(|e| format!("--resources {}: {e}", path.display()))?;
            }
            serde_json::from_slice(&bytes).map_err(|e| format!("--resources: {e}"))?
        }
        None => {
            let mut memory = Map::new();
            for (flag, key, v) in [
                ("memory", "limit", &a.memory),
                ("memory-swap", "swap", &a.memory_swap),
                ("memory-reservation", "reservation", &a.memory_reservation),
            ] {
                if let Some(v) = v {
                    memory.insert(key.into(), json!(parse_size(flag, v)?));
                }
            }
            let mut cpu = Map::new();
            let fields: [(&str, Value); 7] = [
                ("shares", json!(a.cpu_shares)),
                ("quota", json!(a.cpu_quota)),
                ("period", json!(a.cpu_period)),
                ("realtimePeriod", json!(a.cpu_rt_period)),
                ("realtimeRuntime", json!(a.cpu_rt_runtime)),
                ("cpus", json!(a.cpuset_cpus)),
                ("mems", json!(a.cpuset_mems)),
            ];
            for (k, v) in fields {
                if !v.is_null() {
                    cpu.insert(k.into(), v);
                }
            }
            let mut r = Map::new();
            if !memory.is_empty() {
                r.insert("memory".into(), Value::Object(memory));
            }
            if !cpu.is_empty() {
                r.insert("cpu".into(), Value::Object(cpu));
            }
            if let Some(p) = a.pids_limit {
                r.insert("pids".into(), json!({ "limit": p }));
            }
            if let Some(w) = a.blkio_weight {
                r.insert("blockIO".into(), json!({ "weight": w }));
            }
            serde_json::from_value(Value::Object(r))?
        }
    };
    container::update(root, &a.id, &res)?;
    Ok(())
}

pub fn ps(root: &StateRoot, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let pids: Vec<i32> = container::pids(root, id)?
        .iter()
        .map(|p| p.as_raw())
        .collect();
    if format == ListFormat::Json {
        // None is `null`, as runc prints its empty (nil) list.
        match pids.is_empty() {
            true => crate::out("null")?,
            false => crate::out(&serde_json::to_string(&pids)?)?,
        }
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let mut ps = std::process::Command::new("ps");
    skiff_runtime::process::with_clean_signals(&mut ps);
    let out = ps.args(&args).output().map_err(|e| format!("ps: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or("ps: its output has no PID column")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

/// Go-style durations: "5s", "500ms", "1m", "1m30s".
fn parse_duration(s: &str) -> Result<Duration> {
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num
            .parse()
            .map_err(|_| format!("--interval {s:?}: not a duration"))?;
        num.clear();
        let secs = match unit.as_str() {
            "ns" => n / 1e9,
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(format!("--interval {s:?}: unknown unit {unit:?}").into()),
        };
        total += Duration::from_secs_f64(secs);
    }
    if !num.is_empty() || total.is_zero() {
        return Err(format!("--interval {s:?}: use a unit, e.g. 5s or 500ms").into());
    }
    Ok(total)
}

/// runc's events: one stats event with --stats; otherwise stats every interval
/// and an oom event whenever the OOM killer strikes, until the container stops.
pub fn events(root: &StateRoot, id: &str, stats_once: bool, interval: &str) -> Result<()> {
    let interval = parse_duration(interval)?;
    // The statistics of a stopped container can still be read (the shim
    // answers containerd for those); events is about a live one.
    let stopped = || {
        root.load(id)
            .map(|r| r.status(root) == skiff_runtime::state::Status::Stopped)
            .unwrap_or(true)
    };
    if stopped() {
        root.load(id)?;
        return Err(format!("container {id} is stopped: container not running").into());
    }
    let (stats, mut ooms) = container::stats(root, id)?;
    let mut out = std::io::stdout().lock();
    // Keys in runc's order (type, id, data): tools grep the line.
    let event = |kind: &str, data: Option<Value>| {
        let head = format!(r#"{{"type":{},"id":{}"#, json!(kind), json!(id));
        match data {
            Some(d) => format!(r#"{head},"data":{d}}}"#),
            None => format!("{head}}}"),
        }
    };
    if stats_once {
        writeln!(out, "{}", event("stats", Some(stats)))?;
        return Ok(());
    }
    // This loop runs as long as the caller likes: from the system allocator
    // (see arena.rs).
    crate::ALLOC.seal();
    let mut next_stats = Instant::now();
    loop {
        let Ok((stats, now_ooms)) = container::stats(root, id) else {
            return Ok(()); // the container is gone
        };
        if stopped() {
            return Ok(());
        }
        if now_ooms > ooms {
            writeln!(out, "{}", event("oom", None))?;
            ooms = now_ooms;
        }
        if Instant::now() >= next_stats {
            writeln!(out, "{}", event("stats", Some(stats)))?;
            next_stats = Instant::now() + interval;
        }
        out.flush()?;
        std::thread::sleep(interval.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "lots").is_err());
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
    }
}
