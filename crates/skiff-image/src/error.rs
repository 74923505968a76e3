//! One error type for the image side; every message names what it was
//! doing and with what (a file, a reference, a digest, a field).

use std::path::Path;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("store database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Registry(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}: image not known")]
    NoImage(String),
    #[error("{0}: no such container")]
    NoContainer(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn at(path: &Path, what: &str, source: std::io::Error) -> Self {
        Error::io(format!("{what} {}", path.display()), source)
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::io("system call", e.into())
    }
}

/// Adds what was being done to an io::Result.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<std::io::Error>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e.into()))
    }
}
