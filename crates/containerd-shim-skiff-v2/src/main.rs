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
//! Run as `containerd-shim-skiff-vm-v2` (a link to this binary), it is the VM
//! tier: the same actions, each task in its own VM (`vm.rs`, docs/vm.md).

mod args;
mod checkpoint;
mod cleanup;
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

use std::io::Write;

fn main() {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: {e}\n{}", flags::usage());
            std::process::exit(2);
        }
    };
    let result = match args.action.as_str() {
        "start" => start::run(&args),
        "delete" if vm::is_vm_tier() => {
            vm::cleanup(&args);
            cleanup::run(&args)
        }
        "delete" => cleanup::run(&args),
        "serve" => server::run(&args),
        "info" => info::run(),
        "man" => {
            print!(
                "{}",
                include_str!(concat!(env!("OUT_DIR"), "/containerd-shim-skiff-v2.8"))
            );
            Ok(())
        }
        "completion" => {
            let script = match args.shell.as_str() {
                "bash" => include_str!(concat!(env!("OUT_DIR"), "/containerd-shim-skiff-v2.bash")),
                "zsh" => include_str!(concat!(env!("OUT_DIR"), "/_containerd-shim-skiff-v2")),
                "fish" => include_str!(concat!(env!("OUT_DIR"), "/containerd-shim-skiff-v2.fish")),
                other => {
                    eprintln!("containerd-shim-skiff-v2: -shell {other:?}: bash, zsh or fish");
                    std::process::exit(2);
                }
            };
            print!("{script}");
            Ok(())
        }
        "version" => {
            println!(
                "containerd-shim-skiff-v2:\n  Version: {}\n  Revision: skiff",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        other => Err(error::ShimError::Usage(format!(
            "unknown action {other:?}\n{}",
            flags::usage()
        ))),
    };
    if let Err(e) = result {
        // containerd reads `start`'s stdout and stderr together as the address:
        // errors go to stderr only when something failed, with a clear line.
        let _ = writeln!(std::io::stderr(), "containerd-shim-skiff-v2: {e}");
        std::process::exit(1);
    }
}
