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
    #[error("{what} exited before {waiting_for} ({status}); the serial console: {console}")]
    Exited {
        what: &'static str,
        waiting_for: &'static str,
        status: String,
        console: PathBuf,
    },
    #[error("no {waiting_for} within {bound:?}; the serial console: {console}")]
    Timeout {
        waiting_for: &'static str,
        bound: std::time::Duration,
        console: PathBuf,
    },
    #[error("the agent: {0}")]
    Agent(#[from] skiff_agent_api::ttrpc::Error),
}

impl VmError {
    pub fn path(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| VmError::Path { step, path, source }
    }
}
