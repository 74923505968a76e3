//! skiff(8) and its shell completions, generated at build time from the
//! command line's definition (src/cli.rs); `skiff man` and `skiff
//! completion SHELL` print them.

#[path = "src/cli.rs"]
#[allow(dead_code)]
mod cli;

#[path = "../build_docs.rs"]
mod build_docs;

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=../build_docs.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    build_docs::manual(&cmd, "skiff", &out);
    build_docs::completions(&cmd, "skiff", &out);
}
