//! `skiff`: the engine's command line. Image commands today (pull, push,
//! images, inspect, tag, rmi, history, save, load, import, login, logout,
//! image prune/mount/unmount, system df/check); containers, networks and
//! builds come as later parts (issues 17 to 19).

mod cli;
mod format;
mod images;
mod progress;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    match images::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("Error: {e}");
            // 125: the engine itself failed (Docker's and Podman's code).
            std::process::exit(125);
        }
    }
}
