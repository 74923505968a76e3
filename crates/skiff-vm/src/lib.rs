//! The VM tier's host side (docs/vm.md): a sandbox is one lightweight VM
//! whose PID 1 is skiff-agent, reached over vsock with the agent API.
//!
//! - `hypervisor`: the small interface a backend implements (`Qemu` today;
//!   cloud-hypervisor and firecracker need a working KVM).
//! - `vsock`: the host end of the channel, "hybrid vsock" over a unix
//!   socket (vhost-device-vsock here; firecracker and cloud-hypervisor
//!   speak the same).
//! - `disk`: a container's rootfs as an ext4 image for virtio-blk.
//! - `guest`: where the guest image is found; the VM's size from limits.
//! - `network`: a pod's network namespace mirrored onto taps, which
//!   become the VM's virtio-net devices (kata's tc-filter model).
//! - `share`: a container's rootfs and host bind mounts in the virtio-fs
//!   share; `stdio`: a process's streams over the agent API as `Read`.
//! - `sandbox`: launches the helpers and the VM, connects to the agent,
//!   and takes it all down again, with bounded waits.

pub mod disk;
pub mod error;
pub mod guest;
pub mod hypervisor;
pub mod network;
pub mod sandbox;
pub mod share;
pub mod stdio;
pub mod vsock;

pub use error::VmError;
pub use guest::{GuestImage, GuestSize};
pub use hypervisor::{Disk, Hypervisor, NicDevice, Qemu, VmSpec};
pub use network::PodNetwork;
pub use sandbox::{connect_agent, reap_leftovers, Sandbox, SandboxConfig};
pub use skiff_agent_api::agent;
pub use skiff_agent_api::agent_ttrpc::AgentClient;
pub use skiff_agent_api::ttrpc;
pub use skiff_agent_api::{BARE_BOOT_LINE, BARE_BOOT_PARAM, GUEST_SHARE_DIR};
