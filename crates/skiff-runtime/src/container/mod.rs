//! The container lifecycle: create, start, kill, delete, and waiting for a
//! foreground container. Each operation is one module, readable top to bottom.

mod checkpoint;
mod control;
mod create;
mod delete;
mod exec;
mod identity;
mod init;
mod kill;
mod placement;
mod start;
mod wait;

pub use checkpoint::{
    checkpoint, restore, CgroupsMode, CheckpointOptions, CriuOptions, RestoreOptions, Restored,
};
pub use control::{pause, pids, resume, stats, update};
pub use create::{create, CreateOptions, Created};
pub use delete::{delete, delete_stopped};
pub use exec::{exec, exec_in, ExecOptions};
pub use kill::kill;
pub use start::start;
pub use wait::{block_forwarded_signals, relay_and_wait, wait_forwarding};

use crate::cgroups::CgroupError;
use crate::config::ConfigError;
use crate::hooks::HookError;
use crate::namespaces::NamespaceError;
use crate::process::ProcessError;
use crate::rootfs::RootfsError;
use crate::seccomp::SeccompError;
use crate::state::{StateError, Status};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// An error init reported over the sync socket.
    #[error("{0}")]
    Init(String),
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("container {id} is {status}: cannot {action} it")]
    WrongStatus {
        id: String,
        status: &'static str,
        action: &'static str,
    },
    /// containerd's shim reads "container not running" in a failed kill as
    /// "the process has already finished" (runc's wording).
    #[error("container {id} is stopped: container not running")]
    NotRunning { id: String },
    #[error("--console-socket is required when process.terminal is true")]
    ConsoleSocketRequired,
    /// runc refuses the same ("cannot use console socket if runc will not
    /// detach or allocate tty"): nothing would be sent over it.
    #[error("--console-socket is given but process.terminal is not true: no terminal to send")]
    ConsoleSocketWithoutTerminal,
    /// An `exec`'d process the runtime-spec does not allow (runc refuses
    /// the same): the field of the process, as config.json's would be named.
    #[error("exec: process.{field}: {reason}")]
    ExecProcess { field: String, reason: String },
    /// Checkpoint and restore: CRIU's failures and what it cannot do.
    #[error("{0}")]
    Checkpoint(String),
    #[error("--console-socket {path}: {source}")]
    ConsoleSocket {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl ContainerError {
    pub(crate) fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> ContainerError {
        move |source| ContainerError::Io { step, source }
    }

    pub(crate) fn wrong_status(id: &str, status: Status, action: &'static str) -> ContainerError {
        ContainerError::WrongStatus {
            id: id.to_string(),
            status: status.as_str(),
            action,
        }
    }
}
