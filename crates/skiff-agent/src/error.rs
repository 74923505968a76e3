//! The agent's errors: each names the step that failed and carries the
//! path or id; over ttrpc they become a status with a matching code.

use std::io;
use std::path::PathBuf;

use skiff_agent_api::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}: {1}")]
    Setup(&'static str, io::Error),
    #[error("{step} {}: {source}", path.display())]
    Path {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("listening on {0}: {1}")]
    Listen(String, String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Runtime(String),
}

impl AgentError {
    pub fn path(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| AgentError::Path { step, path, source }
    }

    fn code(&self) -> Code {
        match self {
            AgentError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            AgentError::NotFound(_) => Code::NOT_FOUND,
            AgentError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            _ => Code::INTERNAL,
        }
    }
}

impl From<AgentError> for ttrpc::Error {
    fn from(e: AgentError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}
