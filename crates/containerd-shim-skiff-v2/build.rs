//! containerd-shim-skiff-v2(8), generated at build time from the table its
//! parser reads (src/flags.rs); `containerd-shim-skiff-v2 man` prints it.

#[path = "src/flags.rs"]
#[allow(dead_code)]
mod flags;

fn main() {
    println!("cargo:rerun-if-changed=src/flags.rs");
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
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut page)
        .expect("rendering containerd-shim-skiff-v2.8");
    std::fs::write(out.join("containerd-shim-skiff-v2.8"), page).expect("writing the page");
}
