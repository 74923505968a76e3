//! The image side of the skiff engine: a store of OCI images under one root
//! directory, filled by pulls from registries (the OCI distribution API) and
//! by loads of docker- and oci-archives, emptied by rmi and prune.
//!
//! On disk (see docs/engine.md):
//! - `store.db`: SQLite, the metadata (images, names, layers, blobs); every
//!   change one transaction, so a crash leaves the old state or the new one;
//! - `blobs/sha256/HEX`: content as the registry serves it (compressed
//!   layers), kept for push and save; written under `ingest/` and renamed
//!   once its digest is checked, so a blob's name always matches its bytes;
//! - `layers/CHAIN/diff`: a layer unpacked for overlayfs (whiteouts as 0:0
//!   character devices, opaque directories as an xattr), keyed by chain id;
//!   unpacked under `tmp/` and renamed in place when complete;
//! - `locks/`: one flock per layer being made, so two pulls share the work.

pub mod archive;
pub mod assemble;
pub mod commit;
pub mod digest;
pub mod error;
pub mod inroot;
pub mod lists;
pub mod manifest;
pub mod mount;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod search;
pub mod store;
pub mod trace;
pub mod unpack;

pub use error::{Error, Result};

/// Whether this process is the engine of an unprivileged user: not root,
/// or root of the user namespace the engine made for such a user (see
/// crates/skiff/src/userns.rs, which sets SKIFF_ROOTLESS_UID).
pub fn rootless() -> bool {
    !rustix::process::geteuid().is_root() || std::env::var_os("SKIFF_ROOTLESS_UID").is_some()
}

/// The user's own uid: outside the engine's user namespace, or as it was
/// before the engine made one.
pub fn real_uid() -> u32 {
    std::env::var("SKIFF_ROOTLESS_UID")
        .ok()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| rustix::process::geteuid().as_raw())
}
pub use store::Store;
