//! Shared by the binaries' build scripts (each includes it with `#[path]`):
//! a manual page and bash, zsh and fish completions, made from a program's
//! clap command line, into OUT_DIR as BIN.8, BIN.bash, _BIN and BIN.fish.

use std::path::Path;

/// BIN(8): the top page (synopsis, options, the commands), then a section
/// per command with its description, synopsis, options and examples.
pub fn manual(cmd: &clap::Command, bin: &'static str, out: &Path) {
    let mut cmd = cmd.clone();
    // Subcommands may be deferred (built when invoked): all of them here.
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)
        .expect("rendering the manual page");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // (clap takes a 'static name without its "string" feature.)
        let name: &'static str = Box::leak(format!("{bin} {}", sub.get_name()).into_boxed_str());
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
    std::fs::write(out.join(format!("{bin}.8")), page).expect("writing the manual page");
}

/// The completion scripts of `cmd` (not built yet: clap_complete builds it
/// itself, and a built one gets its subcommands' functions misnamed).
pub fn completions(cmd: &clap::Command, bin: &str, out: &Path) {
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, format!("{bin}.bash")),
        (Shell::Zsh, format!("_{bin}")),
        (Shell::Fish, format!("{bin}.fish")),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), bin, &mut script);
        if shell == Shell::Bash {
            // clap_complete names the subcommands' cases after the binary
            // with its dashes taken for command separators, and looks them
            // up with plain ones: without this no flag of a command completes.
            let text = String::from_utf8_lossy(&script)
                .replace(&bin.replace('-', "__subcmd__"), &bin.replace('-', "__"));
            script = text.into_bytes();
        }
        std::fs::write(out.join(file), script).expect("writing a completion script");
    }
}
