//! skiff-agent: PID 1 of the VM tier's guest (see docs/vm.md).
//!
//! Started by the kernel from the initramfs, it readies the guest (kernel
//! filesystems, the modules the initramfs carries, a tmpfs root that
//! pivot_root can leave), then serves the agent API (crates/skiff-agent-api)
//! on vsock port 1024 and runs containers with the skiff library.
//!
//! `skiff-agent runtime-call ...` is the same binary re-executed for one
//! library call (see `call.rs`).

mod call;
mod error;
mod guest;
mod network;
mod procs;
mod reaper;
mod service;

use std::os::fd::IntoRawFd;
use std::sync::Arc;

use skiff_agent_api::agent_ttrpc::create_agent;
use skiff_agent_api::{ttrpc, AGENT_PORT, BARE_BOOT_LINE, BARE_BOOT_PARAM, READY_PORT};

use crate::error::AgentError;
use crate::reaper::Reaper;
use crate::service::Service;

/// Where the agent listens; a test on the host may set a unix:// address.
const LISTEN_ENV: &str = "SKIFF_AGENT_LISTEN";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(call::SUBCOMMAND) {
        std::process::exit(call::run_in_helper(&args[2..]));
    }
    // The benchmark's bare boot (skiff_agent_api::BARE_BOOT_PARAM).
    if guest::is_init() && std::env::var_os(BARE_BOOT_PARAM).is_some() {
        eprintln!("{BARE_BOOT_LINE}");
        guest::power_off();
    }
    if let Err(e) = serve() {
        eprintln!("skiff-agent: {e}");
        if guest::is_init() {
            guest::power_off();
        }
        std::process::exit(1);
    }
}

fn serve() -> Result<(), AgentError> {
    let listener = if guest::is_init() {
        Some(guest::prepare(AGENT_PORT, READY_PORT)?)
    } else {
        // Outside a guest: container processes orphaned by the runtime
        // calls come back to us, as they do to PID 1.
        skiff_runtime::sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)
            .map_err(|e| AgentError::Setup("becoming a child subreaper", e))?;
        None
    };
    let reaper = Arc::new(Reaper::default());
    let collector = Arc::clone(&reaper);
    std::thread::spawn(move || collector.run());

    let address = std::env::var(LISTEN_ENV).unwrap_or_else(|_| format!("vsock://-1:{AGENT_PORT}"));
    let service = Arc::new(Service::new(Arc::clone(&reaper), guest::is_init()));
    // Reads of stdout/stderr and waits block a worker each for as long as
    // the process runs: room for many.
    let server = match listener {
        Some(fd) => ttrpc::Server::new().add_listener(fd.into_raw_fd()),
        None => ttrpc::Server::new().bind(&address),
    };
    let mut server = server
        .map_err(|e| AgentError::Listen(address.clone(), e.to_string()))?
        .register_service(create_agent(service))
        .set_thread_count_default(2)
        .set_thread_count_min(1)
        .set_thread_count_max(256);
    server
        .start()
        .map_err(|e| AgentError::Listen(address.clone(), e.to_string()))?;
    eprintln!(
        "skiff-agent: serving on {address} at {:?} after boot",
        guest::since_boot()
    );
    if guest::is_init() {
        guest::finish_in_background();
        // The first runtime call's copy, while the host connects (at the
        // normal priority: the first create needs it soon).
        call::prepare(&reaper, 0);
    }
    loop {
        std::thread::park();
    }
}
