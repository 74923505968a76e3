//! --log, --log-format and --debug: errors and warnings as one line each, in
//! logrus's text or JSON shape, which containerd's shim parses back. The log
//! file is opened (created) at start, as runc's is, so that it exists after
//! a run that logged nothing; --debug adds debug lines to it (to stderr
//! without one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::LogFormat;

struct Target {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static TARGET: OnceLock<Target> = OnceLock::new();

/// Opens the log. One that cannot be opened ends the process with status
/// 1 before anything is done, as with runc and crun: a caller that reads
/// its errors from there (containerd's shim) would otherwise find none.
pub fn init(path: Option<PathBuf>, format: LogFormat, debug: bool) {
    let file = path.map(
        |p| match OpenOptions::new().create(true).append(true).open(&p) {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "skiff-oci: --log {}: {e}", p.display());
                std::process::exit(1);
            }
        },
    );
    let _ = TARGET.set(Target {
        file,
        json: matches!(format, LogFormat::Json),
        debug,
    });
    skiff_runtime::log::set_sink(|msg| write("warning", msg));
}

/// Writes one entry to the log file (if any) and to stderr.
pub fn write(level: &str, msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "skiff-oci: {}{msg}",
        if level == "error" { "" } else { "warning: " }
    );
    if let Some(target) = TARGET.get() {
        if let Some(f) = &target.file {
            let _ = writeln!(&*f, "{}", line(target.json, level, msg));
        }
    }
}

/// With --debug, a debug entry: to the log file, or to stderr without one.
pub fn debug(msg: impl FnOnce() -> String) {
    let Some(target) = TARGET.get().filter(|t| t.debug) else {
        return;
    };
    let text = line(target.json, "debug", &msg());
    let _ = match &target.file {
        Some(f) => writeln!(&*f, "{text}"),
        None => writeln!(std::io::stderr(), "{text}"),
    };
}

/// One entry in logrus's shape (keys in its order: level, msg, time).
fn line(json: bool, level: &str, msg: &str) -> String {
    let time = skiff_runtime::state::now_rfc3339();
    if json {
        format!(
            r#"{{"level":{},"msg":{},"time":{}}}"#,
            serde_json::Value::from(level),
            serde_json::Value::from(msg),
            serde_json::Value::from(time)
        )
    } else {
        format!("time={time:?} level={level} msg={msg:?}")
    }
}
