//! At build time: the git commit this binary is built from, for
//! `--version`'s `commit:` line (Docker reads it into `docker info`;
//! "unknown" outside a git checkout); and, from the clap definition itself
//! (src/cli.rs), the manual page and the bash, zsh and fish completion
//! scripts that `skiff-oci man` and `skiff-oci completion SHELL` print.

use std::path::PathBuf;

#[path = "src/cli.rs"]
#[allow(dead_code)]
mod cli;

#[path = "../build_docs.rs"]
mod build_docs;

fn main() {
    commit();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=../build_docs.rs");
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    build_docs::manual(&cmd, "skiff-oci", &out);
    build_docs::completions(&cmd, "skiff-oci", &out);
}

fn commit() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SKIFF_COMMIT={commit}");
    // A new commit changes HEAD (or the branch it names).
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
