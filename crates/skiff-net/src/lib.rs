//! Container networks for the skiff engine, the way Podman's CNI backend
//! made them: each network a CNI network list (`NAME.conflist`, the format
//! users already have), run with the standard plugins from Debian's
//! containernetworking-plugins (bridge, host-local, portmap, firewall;
//! tuning where a user's list has it); each container a network namespace of its own, bound on a file
//! so that it outlives any process, joined by the runtime through the
//! config's namespace path.
//!
//! Why CNI's binaries rather than netlink and nftables from the engine: any
//! CNI config a user has works unchanged, the plugins are what Podman 3 and
//! containerd's CRI run (so what they do to the host is known and
//! reviewed), and setup is a few exec()s per container (measured: see
//! docs/engine.md).

pub mod cni;
pub mod netns;
pub mod network;
pub mod ports;

pub use network::Network;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A CNI plugin's own error (its JSON error's msg and details).
    #[error("network {network}: CNI plugin {plugin}: {message}")]
    Plugin {
        network: String,
        plugin: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
