//! The process section of config.json: what init becomes just before execve.

pub mod capabilities;
pub mod console;
pub mod exec;
pub mod kernel;
pub mod lsm;
pub mod rlimits;
pub mod user;

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("process.capabilities: {step}: {source}")]
    Capabilities {
        step: &'static str,
        source: io::Error,
    },
    #[error("process.capabilities.{set}: {name} is not known to this kernel")]
    UnknownCapability { set: &'static str, name: String },
    #[error("process.rlimits: {name}: {source}")]
    Rlimit { name: String, source: io::Error },
    #[error("process.user: {step}: {source}")]
    User {
        step: &'static str,
        source: io::Error,
    },
    #[error("process.oomScoreAdj: {0}")]
    OomScoreAdj(io::Error),
    #[error("process.noNewPrivileges: {0}")]
    NoNewPrivileges(io::Error),
    #[error("process.cwd {path}: {source}")]
    Cwd { path: PathBuf, source: io::Error },
    #[error(
        "process.cwd {path}: outside the container's root (through a descriptor of the host's)"
    )]
    CwdOutside { path: PathBuf },
    #[error("process.args: exec: {name:?}: {reason}")]
    Executable { name: String, reason: String },
    #[error("{field}: {source}")]
    Attribute {
        field: &'static str,
        source: io::Error,
    },
    #[error("process.terminal: {step}: {source}")]
    Terminal {
        step: &'static str,
        source: io::Error,
    },
}

/// Makes `cmd`'s child start with default signal dispositions and an empty
/// signal mask, whatever the runtime had.
pub fn with_clean_signals(cmd: &mut std::process::Command) {
    // SAFETY: reset_signals makes only async-signal-safe calls (rt_sigaction,
    // sigprocmask) and touches no memory of the parent's.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            crate::sys::reset_signals();
            Ok(())
        });
    }
}
