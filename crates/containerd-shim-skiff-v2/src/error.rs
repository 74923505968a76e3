//! The shim's errors, and how they reach containerd: a ttrpc status whose code
//! containerd turns back into its errdefs (NotFound, AlreadyExists,
//! FailedPrecondition, NotImplemented, ...).

use containerd_shim_protos::ttrpc::{self, Code};
use skiff_runtime::container::ContainerError;
use skiff_runtime::state::StateError;

#[derive(Debug)]
pub enum ShimError {
    Usage(String),
    /// A step of the shim's own that failed, with the OS error.
    Io {
        step: String,
        source: std::io::Error,
    },
    /// A refusal or failure with the ttrpc code containerd should see.
    Status {
        code: Code,
        message: String,
    },
    Ttrpc(ttrpc::Error),
}

impl std::fmt::Display for ShimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShimError::Usage(m) => write!(f, "{m}"),
            ShimError::Io { step, source } => write!(f, "{step}: {source}"),
            ShimError::Status { message, .. } => write!(f, "{message}"),
            ShimError::Ttrpc(e) => write!(f, "ttrpc: {e:?}"),
        }
    }
}

impl std::error::Error for ShimError {}

impl ShimError {
    pub fn io(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
        let step = step.into();
        move |source| ShimError::Io { step, source }
    }

    pub fn status(code: Code, message: impl Into<String>) -> ShimError {
        ShimError::Status {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> ShimError {
        ShimError::status(Code::NOT_FOUND, format!("{what}: not found"))
    }

    /// The ttrpc code for this error.
    pub fn code(&self) -> Code {
        match self {
            ShimError::Usage(_) => Code::INVALID_ARGUMENT,
            ShimError::Io { .. } | ShimError::Ttrpc(_) => Code::INTERNAL,
            ShimError::Status { code, .. } => *code,
        }
    }
}

/// The code containerd expects for a library error: a missing container is
/// NotFound, a container in the wrong state is FailedPrecondition.
pub fn code_of(e: &ContainerError) -> Code {
    match e {
        ContainerError::State(StateError::NotFound(_)) => Code::NOT_FOUND,
        ContainerError::State(StateError::AlreadyExists(_)) => Code::ALREADY_EXISTS,
        ContainerError::State(StateError::InvalidId(_))
        | ContainerError::Config(_)
        | ContainerError::ExecProcess { .. }
        | ContainerError::ConsoleSocketWithoutTerminal => Code::INVALID_ARGUMENT,
        ContainerError::WrongStatus { .. } => Code::FAILED_PRECONDITION,
        _ => Code::UNKNOWN,
    }
}

impl From<ContainerError> for ShimError {
    fn from(e: ContainerError) -> ShimError {
        ShimError::status(code_of(&e), e.to_string())
    }
}

impl From<ttrpc::Error> for ShimError {
    fn from(e: ttrpc::Error) -> ShimError {
        ShimError::Ttrpc(e)
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}
