//! skiff-systemd(8) and its shell completions, generated at build time from
//! the command line's definition (src/cli.rs); `skiff-systemd man` and
//! `skiff-systemd completion SHELL` print them.

#[path = "src/cli.rs"]
#[allow(dead_code)]
mod cli;

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut cmd = <cli::Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)
        .expect("rendering skiff-systemd.8");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name: &'static str =
            Box::leak(format!("skiff-systemd {}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).bin_name(name);
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let man = clap_mangen::Man::new(sub.clone());
        man.render_description_section(&mut page)
            .expect("rendering");
        man.render_synopsis_section(&mut page).expect("rendering");
        if let Some(after) = sub.get_after_help() {
            page.extend_from_slice(b".PP\n.nf\n");
            for line in after.to_string().lines() {
                let line = line.replace('\\', "\\e").replace('-', "\\-");
                page.extend_from_slice(format!("{line}\n").as_bytes());
            }
            page.extend_from_slice(b".fi\n");
        }
    }
    std::fs::write(out.join("skiff-systemd.8"), page).expect("writing skiff-systemd.8");
    for (shell, file) in [
        (clap_complete::Shell::Bash, "skiff-systemd.bash"),
        (clap_complete::Shell::Zsh, "_skiff-systemd"),
        (clap_complete::Shell::Fish, "skiff-systemd.fish"),
    ] {
        let mut script = Vec::new();
        let mut cmd = <cli::Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "skiff-systemd", &mut script);
        if shell == clap_complete::Shell::Bash {
            // (clap_complete takes a dashed name's dash for a separator in
            // its subcommand cases; see skiff-oci's build.rs.)
            let text = String::from_utf8_lossy(&script)
                .replace("skiff__subcmd__systemd", "skiff__systemd");
            script = text.into_bytes();
        }
        std::fs::write(out.join(file), script).expect("writing a completion script");
    }
}
