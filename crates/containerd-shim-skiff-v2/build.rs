//! containerd-shim-skiff-v2(8) and its shell completions, generated at build
//! time from the table its parser reads (src/flags.rs);
//! `containerd-shim-skiff-v2 man` and `... -shell SHELL completion` print them.

#[path = "src/flags.rs"]
#[allow(dead_code)]
mod flags;

#[path = "../build_docs.rs"]
mod build_docs;

fn main() {
    println!("cargo:rerun-if-changed=src/flags.rs");
    println!("cargo:rerun-if-changed=../build_docs.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut cmd = clap::Command::new("containerd-shim-skiff-v2")
        .about(flags::ABOUT)
        .long_about(flags::DESCRIPTION)
        .disable_help_flag(true)
        .disable_help_subcommand(true);
    for f in flags::FLAGS {
        let mut arg = clap::Arg::new(f.name).long(f.name).help(f.help);
        arg = match f.value {
            Some(v) => arg.value_name(v),
            None => arg.action(clap::ArgAction::SetTrue),
        };
        cmd = cmd.arg(arg);
    }
    for (name, help) in flags::ACTIONS {
        cmd = cmd.subcommand(clap::Command::new(*name).about(*help));
    }
    let bin = "containerd-shim-skiff-v2";
    build_docs::completions(&cmd, bin, &out);
    build_docs::manual(&cmd, bin, &out);
}
