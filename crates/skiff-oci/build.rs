//! At build time: the git commit this binary is built from, for
//! `--version`'s `commit:` line (Docker reads it into `docker info`;
//! "unknown" outside a git checkout); and, from the clap definition itself
//! (src/cli.rs), the manual page and the bash, zsh and fish completion
//! scripts that `skiff-oci man` and `skiff-oci completion SHELL` print.

use std::path::{Path, PathBuf};

#[path = "src/cli.rs"]
#[allow(dead_code)]
mod cli;

fn main() {
    commit();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=src/cli.rs");
    manual(&out);
    completions(&out);
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

fn command() -> clap::Command {
    let mut cmd = <cli::Cli as clap::CommandFactory>::command();
    // The subcommands are deferred (built when invoked): all of them here.
    cmd.build();
    cmd
}

/// skiff-oci(8): the top page (synopsis, global options, the commands),
/// then a section per command with its own synopsis, options and examples.
fn manual(out: &Path) {
    let cmd = command();
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    man.render(&mut page).expect("rendering skiff-oci.8");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // (clap takes a 'static name without its "string" feature.)
        let name: &'static str =
            Box::leak(format!("skiff-oci {}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).bin_name(name);
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let man = clap_mangen::Man::new(sub.clone());
        man.render_description_section(&mut page)
            .expect("rendering");
        man.render_synopsis_section(&mut page).expect("rendering");
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut page).expect("rendering");
        }
        // The examples, lines kept as they are.
        if let Some(after) = sub.get_after_help() {
            page.extend_from_slice(b".PP\n.nf\n");
            for line in after.to_string().lines() {
                let line = line.replace('\\', "\\e").replace('-', "\\-");
                page.extend_from_slice(format!("{line}\n").as_bytes());
            }
            page.extend_from_slice(b".fi\n");
        }
    }
    std::fs::write(out.join("skiff-oci.8"), page).expect("writing skiff-oci.8");
}

fn completions(out: &Path) {
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "skiff-oci.bash"),
        (Shell::Zsh, "_skiff-oci"),
        (Shell::Fish, "skiff-oci.fish"),
    ] {
        let mut script = Vec::new();
        // generate builds the command itself (a built one gets its
        // subcommands' functions misnamed).
        let mut cmd = <cli::Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "skiff-oci", &mut script);
        if shell == Shell::Bash {
            // clap_complete names the subcommands' cases after the binary
            // with its dash taken for a command separator, and the lookup
            // with a plain one: without this no flag of a command completes.
            let text = String::from_utf8_lossy(&script).replace("skiff__subcmd__oci", "skiff__oci");
            script = text.into_bytes();
        }
        std::fs::write(out.join(file), script).expect("writing a completion script");
    }
}
