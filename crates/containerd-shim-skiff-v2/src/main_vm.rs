//! containerd-shim-skiff-vm-v2: the VM tier of containerd's shim v2 for
//! skiff (docs/vm.md): the same actions as containerd-shim-skiff-v2, each
//! pod in a VM of its own, its tasks run there by skiff-agent.
//!
//! The shared modules are the namespace shim's; what only its own Task
//! service uses is compiled here too, unused (dead code the linker drops).
#![allow(dead_code)]

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
mod vm;

fn main() {
    dispatch::main(dispatch::Tier {
        serve: vm::serve,
        delete: |args| {
            vm::cleanup(args);
            cleanup::run(args)
        },
    });
}
