//! containerd-shim-skiff-v2(8) and its shell completions, generated at build
//! time from the table its parser reads (src/flags.rs);
//! `containerd-shim-skiff-v2 man` and `... -shell SHELL completion` print them.

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
    for (shell, file) in [
        (clap_complete::Shell::Bash, "shim.bash"),
        (clap_complete::Shell::Zsh, "shim.zsh"),
        (clap_complete::Shell::Fish, "shim.fish"),
    ] {
        let mut script = Vec::new();
        let name = "containerd-shim-skiff-v2";
        clap_complete::generate(shell, &mut cmd.clone(), name, &mut script);
        std::fs::write(out.join(file), script).expect("writing a completion script");
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut page)
        .expect("rendering containerd-shim-skiff-v2.8");
    std::fs::write(out.join("containerd-shim-skiff-v2.8"), page).expect("writing the page");
}
