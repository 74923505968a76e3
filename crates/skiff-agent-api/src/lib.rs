//! The guest agent's ttrpc API (proto/agent.proto): the messages, the
//! `Agent` trait the agent implements and the `AgentClient` the host calls.
//! Both sides depend on this crate only, not on each other.

#[allow(clippy::all, unused, unknown_lints, missing_docs, nonstandard_style)]
#[rustfmt::skip]
pub mod agent {
    include!(concat!(env!("OUT_DIR"), "/agent.rs"));
}
#[allow(clippy::all, unused, unknown_lints, missing_docs, nonstandard_style)]
#[rustfmt::skip]
pub mod agent_ttrpc {
    include!(concat!(env!("OUT_DIR"), "/agent_ttrpc.rs"));
}

pub use protobuf;
pub use ttrpc;

/// The vsock port the agent serves its API on.
pub const AGENT_PORT: u32 = 1024;
