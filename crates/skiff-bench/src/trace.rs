//! Where a skiff-oci `run` spends its time: N more lifecycles with
//! `SKIFF_TRACE=1` (kept apart from the timed runs, whose ratios must not
//! carry the cost of writing trace lines), the JSON lines of runtime and init
//! laid on one timeline from the moment the benchmark spawned the runtime.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// CLOCK_MONOTONIC in ms, the clock of the trace lines' `end`.
fn now_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// Per phase ("by name"): when it began after the spawn, and how long it took.
#[derive(Default)]
pub struct Phases(BTreeMap<String, (Vec<f64>, Vec<f64>)>);

pub fn bench(skiff: &Path, root: &Path, bundle: &Path, work: &Path, iterations: usize) -> Phases {
    let mut phases = Phases::default();
    let err_path = work.join("trace.err");
    for i in 0..iterations + 2 {
        let Ok(err) = fs::File::create(&err_path) else {
            break;
        };
        let spawned = now_ms();
        let ok = Command::new(skiff)
            .arg("--root")
            .arg(root)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(format!("bench-trace-{i}"))
            .env("SKIFF_TRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .is_ok_and(|s| s.success());
        if !ok || i < 2 {
            continue;
        }
        let text = fs::read_to_string(&err_path).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(name), Some(by), Some(ms), Some(end)) = (
                v["trace"].as_str(),
                v["by"].as_str(),
                v["ms"].as_f64(),
                v["end"].as_f64(),
            ) else {
                continue;
            };
            let e = phases.0.entry(format!("{by} {name}")).or_default();
            e.0.push(end - ms - spawned);
            e.1.push(ms);
        }
    }
    let _ = fs::remove_file(&err_path);
    phases
}

pub fn report(phases: &Phases) {
    println!(
        "where a skiff-oci `run` spends its time (--trace, medians; `at` is ms after the spawn):"
    );
    println!("{:>8} {:>8}  phase", "at", "ms");
    let mut rows: Vec<(f64, f64, &str)> = phases
        .0
        .iter()
        .map(|(k, (at, ms))| {
            let m = |v: &[f64]| crate::phases::median(v).unwrap_or(0.0);
            (m(at), m(ms), k.as_str())
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, ms, name) in rows {
        println!("{at:>8.3} {ms:>8.3}  {name}");
    }
}
