//! `skiff --trace` (or SKIFF_TRACE=1): where a command's time goes, a line
//! on stderr at the end of each phase, with the milliseconds since the
//! process started (as skiff-oci's `--trace` prints its own). A monitor
//! started by the command inherits the setting, and its lines go to the
//! container's directory's `trace.log` when it has no terminal.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Marks the process's start (first thing in main).
pub fn start() {
    START.get_or_init(Instant::now);
}

pub fn on() -> bool {
    std::env::var_os("SKIFF_TRACE").is_some_and(|v| v == "1")
}

/// The end of phase `what`.
pub fn mark(what: &str) {
    if on() {
        let at = START.get_or_init(Instant::now).elapsed();
        eprintln!("trace: {:>9.2} ms  {what}", at.as_secs_f64() * 1000.0);
    }
}
