//! The VM tier's errors, each naming its step and the path or process.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{step} {}: {source}", path.display())]
    Path {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("starting {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{0}")]
    InvalidConfig(String),
    /// The guest image or a helper is not installed.
    #[error("{0}")]
    Missing(String),
    /// `log` is the end of the serial console (or the helper's log): the
    /// sandbox directory holding it is gone by the time this is read.
    #[error("{what} exited before {waiting_for} ({status}); its log ends:\n{log}")]
    Exited {
        what: &'static str,
        waiting_for: &'static str,
        status: String,
        log: String,
    },
    #[error("no {waiting_for} within {bound:?}; the log ends:\n{log}")]
    Timeout {
        waiting_for: &'static str,
        bound: std::time::Duration,
        log: String,
    },
    /// Carrying the pod's network namespace into the VM.
    #[error("the pod's network {0}")]
    Network(String),
    #[error("the agent: {0}")]
    Agent(#[from] skiff_agent_api::ttrpc::Error),
}

/// The last `max` bytes of a log file, for an error message.
pub fn log_tail(path: &std::path::Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

impl VmError {
    pub fn path(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| VmError::Path { step, path, source }
    }
}
