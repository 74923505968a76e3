//! --log and --log-format: errors and warnings as one line each, in logrus's
//! text or JSON shape, which containerd's shim parses back.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::LogFormat;

struct Target {
    path: Option<PathBuf>,
    json: bool,
}

static TARGET: OnceLock<Target> = OnceLock::new();

pub fn init(path: Option<PathBuf>, format: LogFormat) {
    let _ = TARGET.set(Target {
        path,
        json: matches!(format, LogFormat::Json),
    });
    skiff::log::set_sink(|msg| write("warning", msg));
}

/// Writes one entry to the log file (if any) and to stderr.
pub fn write(level: &str, msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "skiff-oci: {}{msg}",
        if level == "error" { "" } else { "warning: " }
    );
    let Some(target) = TARGET.get() else { return };
    let Some(path) = &target.path else { return };
    let time = skiff::state::now_rfc3339();
    let line = if target.json {
        let mut obj = serde_json::Map::new();
        obj.insert("level".into(), level.into());
        obj.insert("msg".into(), msg.into());
        obj.insert("time".into(), time.into());
        serde_json::Value::Object(obj).to_string()
    } else {
        format!("time={time:?} level={level} msg={msg:?}")
    };
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}
