//! `create`, `start` and `delete` timed one by one, and the resident memory
//! of the created init while it waits on the exec fifo ("parked").
//!
//! The benchmark becomes a child subreaper for this part, so each init is
//! re-parented to it when the runtime exits and can be waited for between
//! `start` and `delete` (delete then finds a stopped container, as after any
//! real workload).

use std::fs;
use std::path::{Path, PathBuf};

use crate::{timed, vm_rss};

#[derive(Default)]
pub struct Phases {
    pub create: Vec<f64>,
    pub start: Vec<f64>,
    pub delete: Vec<f64>,
    pub parked_rss_kib: Vec<u64>,
}

fn s(v: &str) -> String {
    v.to_string()
}

pub fn bench(
    runtimes: &[(String, PathBuf)],
    work: &Path,
    bundle: &Path,
    iterations: usize,
) -> Vec<Phases> {
    // SAFETY: prctl with integer arguments only changes this process's flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut out: Vec<Phases> = runtimes.iter().map(|_| Phases::default()).collect();
    let bundle = bundle.display().to_string();
    for i in 0..iterations + 2 {
        for k in 0..runtimes.len() {
            let r = (i + k) % runtimes.len();
            let (name, path) = &runtimes[r];
            let root = work.join(format!("{name}-root"));
            let id = format!("bench-ph-{name}-{i}");
            let pid_file = work.join(format!("{id}.pid"));
            let pf = pid_file.display().to_string();
            let create = timed(
                path,
                &root,
                &[
                    s("create"),
                    s("--bundle"),
                    bundle.clone(),
                    s("--pid-file"),
                    pf,
                    id.clone(),
                ],
            );
            let pid: i32 = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            let _ = fs::remove_file(&pid_file);
            let parked = vm_rss(pid);
            let start = timed(path, &root, &[s("start"), id.clone()]);
            if pid > 0 {
                let mut status = 0;
                // SAFETY: waits for init, re-parented to us (subreaper).
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
            let delete = timed(path, &root, &[s("delete"), id.clone()]);
            if i < 2 {
                continue; // warm-up rounds
            }
            if let (Ok(c), Ok(st), Ok(d)) = (create, start, delete) {
                let p = &mut out[r];
                p.create.push(c.ms);
                p.start.push(st.ms);
                p.delete.push(d.ms);
                p.parked_rss_kib.extend(parked);
            }
        }
    }
    // SAFETY: as above; reaps any other init left to us, then stops being a subreaper.
    unsafe {
        while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    }
    out
}

pub fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

pub fn report(runtimes: &[(String, PathBuf)], phases: &[Phases]) {
    println!("create, start and delete timed separately (median ms), and the parked init's RSS:");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>16}",
        "runtime", "create", "start", "delete", "parked init KiB"
    );
    let med: Vec<[Option<f64>; 4]> = phases
        .iter()
        .map(|p| {
            let rss: Vec<f64> = p.parked_rss_kib.iter().map(|&r| r as f64).collect();
            [
                median(&p.create),
                median(&p.start),
                median(&p.delete),
                median(&rss),
            ]
        })
        .collect();
    let cell = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or("-".into());
    for ((name, _), m) in runtimes.iter().zip(&med) {
        println!(
            "{name:<10} {:>9} {:>9} {:>9} {:>16}",
            cell(m[0]),
            cell(m[1]),
            cell(m[2]),
            m[3].map(|x| format!("{x:.0}")).unwrap_or("-".into())
        );
    }
    for ((name, _), m) in runtimes.iter().zip(&med).skip(1) {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!(
            "ratio skiff-oci/{name}: create {}, start {}, delete {}, parked init RSS {}",
            ratio(med[0][0], m[0]),
            ratio(med[0][1], m[1]),
            ratio(med[0][2], m[2]),
            ratio(med[0][3], m[3])
        );
    }
}
