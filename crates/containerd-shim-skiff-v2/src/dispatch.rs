//! The command line both shims share (`main.rs`, the namespace tier;
//! `main_vm.rs`, the VM tier): containerd's actions, the manual and the
//! completions; each binary gives its own `serve` and `delete`.

use std::io::Write;

/// One tier's own actions; the rest is the same for both.
pub struct Tier {
    /// `serve`: the Task API on the listening socket (stdin).
    pub serve: fn(&crate::args::Args, i32) -> Result<(), crate::error::ShimError>,
    /// `delete`, when containerd cannot reach the server.
    pub delete: fn(&crate::args::Args) -> Result<(), crate::error::ShimError>,
}

/// Parses the command line and runs its action; exits 1 with the error.
pub fn main(tier: Tier) {
    let args = match crate::args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: {e}\n{}", crate::flags::usage());
            std::process::exit(2);
        }
    };
    let result = match args.action.as_str() {
        "start" => crate::start::run(&args),
        "delete" => (tier.delete)(&args),
        // The server runs containers' processes from its own image: out of
        // their reach first (CVE-2019-5736; the listener, fd 0, stays).
        "serve" => skiff_runtime::sealed::ensure()
            .map_err(crate::error::ShimError::io("sealing the shim's binary"))
            .and_then(|()| crate::server::take_listener())
            .and_then(|l| (tier.serve)(&args, l)),
        "info" => crate::info::run(),
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
        other => Err(crate::error::ShimError::Usage(format!(
            "unknown action {other:?}\n{}",
            crate::flags::usage()
        ))),
    };
    if let Err(e) = result {
        // containerd reads `start`'s stdout and stderr together as the address:
        // errors go to stderr only when something failed, with a clear line.
        let _ = writeln!(std::io::stderr(), "containerd-shim-skiff-v2: {e}");
        std::process::exit(1);
    }
}
