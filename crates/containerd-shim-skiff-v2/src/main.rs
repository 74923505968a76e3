//! containerd-shim-skiff-v2: containerd's shim v2 for skiff.
//!
//! containerd runs this binary three ways (see `args.rs`):
//! - `start`, in a task's bundle: start (or, for a pod, reuse) the long-lived
//!   shim server and print its ttrpc address (`start.rs`);
//! - `delete`, when the server cannot be reached: clean the task up and print a
//!   DeleteResponse (`cleanup.rs`);
//! - `-info` (containerd 2.x): what the runtime is and supports (`info.rs`);
//! - `serve` (ours, not containerd's): the server itself, which `start` spawns
//!   with the listening socket as stdin (`server.rs`, the Task API in
//!   `service.rs`).
//!
//! `containerd-shim-skiff-vm-v2` (`main_vm.rs`) is the VM tier: the same
//! actions, each task in its own VM (docs/vm.md). A binary of its own, so
//! that this one links nothing of it.

mod args;
mod checkpoint;
mod cleanup;
mod dispatch;
mod error;
mod events;
mod flags;
mod forked;
mod info;
mod metrics;
mod mounts;
mod options;
mod process;
mod reaper;
mod server;
mod service;
mod start;
mod stdio;

fn main() {
    dispatch::main(dispatch::Tier {
        serve: server::run,
        delete: cleanup::run,
    });
}
