//! Container networks for the skiff engine, the way Podman's CNI backend
//! made them: each network a CNI network list (`NAME.conflist`, the format
//! users already have), run with the standard plugins from Debian's
//! containernetworking-plugins (bridge, host-local, portmap, firewall;
//! tuning where a user's list has it); each container a network namespace of its own, bound on a file
//! so that it outlives any process, joined by the runtime through the
//! config's namespace path.
//!
//! Why CNI's binaries: any CNI config a user has works unchanged, and the
//! plugins are what Podman 3 and containerd's CRI run. The networks the
//! engine makes itself (the list `network.rs` writes) take a native path
//! that does what those plugins would (`native.rs`: netlink per container,
//! iptables once per network), since the plugins' iptables calls for each
//! container cost more than the rest of a `run` (see docs/engine.md).

pub mod cni;
pub mod native;
pub mod netlink;
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
