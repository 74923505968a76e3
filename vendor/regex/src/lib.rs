//! oci-spec validates `process.execCPUAffinity` with one ASCII pattern and
//! needs nothing more of `regex`; `regex-lite` (from the same project) offers
//! the same API without the automata and literal engines that made up ~15%
//! of skiff's binaries. Patched in for `regex` in the workspace Cargo.toml.
pub use regex_lite::*;
