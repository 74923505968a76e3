//! skiff-criu: skiff-oci's `checkpoint` and `restore`, which skiff-oci
//! execs with its own arguments. Apart, so that their code (CRIU's options,
//! the checkpoint's notes) is not in the binary every `create` and `run`
//! starts: a static PIE relocates what it holds at each start.

#[path = "../checkpoint.rs"]
mod checkpoint;
#[path = "../cli.rs"]
mod cli;
#[path = "../logging.rs"]
mod logging;
#[path = "../options.rs"]
mod options;

use std::error::Error;

use skiff_runtime::state::StateRoot;

use cli::Command;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() {
    let cli = options::start("skiff-criu");
    let root = StateRoot::new(options::state_root(&cli));
    let done = match &cli.command {
        Some(Command::Checkpoint(args)) => checkpoint::checkpoint(&cli, &root, args),
        Some(Command::Restore(args)) => checkpoint::restore(&cli, &root, args),
        _ => Err("skiff-criu runs skiff-oci's checkpoint and restore only".into()),
    };
    match done {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::write("error", &e.to_string());
            std::process::exit(1);
        }
    }
}
