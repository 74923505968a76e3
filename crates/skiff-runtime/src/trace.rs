//! `--trace` (or SKIFF_TRACE=1): how long each phase of an operation took, as
//! JSON lines on stderr, from the runtime and from init alike:
//! `{"trace":"cgroup","ms":0.112,"end":81234.567,"pid":1234,"by":"runtime"}`.
//! `end` is CLOCK_MONOTONIC in ms when the phase ended, the same clock in
//! every process, so that the lines of the runtime, init and a caller can be
//! laid on one timeline (gaps between phases show up). Off, it costs one
//! relaxed atomic load per phase.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A phase being timed; the line is written when it is dropped.
pub struct Phase {
    /// Written before `name` ("hooks " for the hooks of a kind).
    prefix: &'static str,
    name: &'static str,
    by: &'static str,
    start: Option<Instant>,
}

/// Times the runtime's own phase `name` until the returned value is dropped.
pub fn phase(name: &'static str) -> Phase {
    Phase {
        prefix: "",
        name,
        by: "runtime",
        start: enabled().then(Instant::now),
    }
}

/// Times a phase of init (the container's first process).
pub fn init_phase(name: &'static str) -> Phase {
    Phase {
        prefix: "",
        name,
        by: "init",
        start: enabled().then(Instant::now),
    }
}

/// Times a phase of exec's child (the process being started in a container).
pub fn exec_phase(name: &'static str) -> Phase {
    Phase {
        prefix: "",
        name,
        by: "exec",
        start: enabled().then(Instant::now),
    }
}

/// Times the hooks of `kind` ("prestart", ...), which run in the runtime
/// but for createContainer and startContainer, which init runs.
pub fn hooks_phase(kind: &'static str) -> Phase {
    let by = match kind {
        "createContainer" | "startContainer" => "init",
        _ => "runtime",
    };
    Phase {
        prefix: "hooks ",
        name: kind,
        by,
        start: enabled().then(Instant::now),
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let end = monotonic_ms();
            // One write per line: init and the runtime share stderr.
            let line = format!(
                "{{\"trace\":\"{}{}\",\"ms\":{ms:.3},\"end\":{end:.3},\"pid\":{},\"by\":\"{}\"}}\n",
                self.prefix,
                self.name,
                std::process::id(),
                self.by
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// CLOCK_MONOTONIC in milliseconds (what `Instant` reads, but as a number
/// other processes can compare).
pub fn monotonic_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as f64 * 1000.0 + t.tv_nsec() as f64 / 1e6)
        .unwrap_or(0.0)
}
