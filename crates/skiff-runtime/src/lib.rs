//! skiff: the library under skiff-oci, the containerd shim and the engine.
//!
//! Modules follow the runtime-spec's sections; dependencies point one way:
//! `container` (the lifecycle) uses `config`, `state`, `namespaces`, `rootfs`,
//! `process`, `seccomp`, `cgroups` and `hooks`, which use `sys`, the thin syscall layer.

pub mod cgroups;
pub mod config;
pub mod container;
pub mod features;
pub mod fnv;
pub mod hooks;
pub mod log;
#[cfg(target_env = "musl")]
mod musl;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod signal;
pub mod state;
pub mod sync;
pub mod sys;
pub mod sysctl;
pub mod trace;

pub use oci_spec;
