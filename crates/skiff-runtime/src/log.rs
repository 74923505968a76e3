//! Where the library's warnings go. The binary installs a sink that honours
//! --log and --log-format; until then they go to stderr.

use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();

pub fn set_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// A condition worth telling the operator about that does not stop the
/// operation (a failing poststop hook, say), as the runtime-spec asks.
pub fn warn(msg: &str) {
    match SINK.get() {
        Some(sink) => sink(msg),
        None => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skiff: warning: {msg}");
        }
    }
}
