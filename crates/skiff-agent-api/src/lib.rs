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
/// The host's vsock port the agent connects to once it serves: the host's
/// signal to connect (a connection to AGENT_PORT tried before the guest's
/// vsock driver is up can be lost for good).
pub const READY_PORT: u32 = 1025;

/// The virtio-fs tag of a sandbox's shared directory (the pod's rootfs).
pub const SHARE_TAG: &str = "skiff";
/// Where the agent mounts that share in the guest: a path in it on the
/// host (`<sandbox>/shared/X`) is `GUEST_SHARE_DIR/X` in the guest.
pub const GUEST_SHARE_DIR: &str = "/run/skiff-agent/shared";

/// On the kernel command line as `skiff_bare=1` (the kernel hands unknown
/// `key=value` words to init as its environment): the agent prints
/// `BARE_BOOT_LINE` and powers off at once, the bare boot the VM tier's
/// benchmark compares a container start against.
pub const BARE_BOOT_PARAM: &str = "skiff_bare";
pub const BARE_BOOT_LINE: &str = "skiff-agent: bare boot";
