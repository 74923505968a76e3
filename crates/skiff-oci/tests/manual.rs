//! The manual page and the shell completions, generated at build time from
//! the command line's own definition: every command has its section in the
//! page as man(1) renders it, and bash completes commands and flags.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// The commands `--help` lists (the help command aside).
fn commands() -> Vec<String> {
    let help = Command::new(skiff()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn the_manual_page_has_every_command_and_its_flags() {
    let page = Command::new(skiff()).arg("man").output().unwrap();
    assert!(page.status.success());
    let roff = String::from_utf8_lossy(&page.stdout).into_owned();
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH skiff-oci 8"),
        "{roff:.200}"
    );
    let list = commands();
    assert!(list.len() >= 15, "{list:?}");
    for c in &list {
        assert!(
            roff.contains(&format!(".SH \"SKIFF-OCI {}\"", c.to_uppercase())),
            "no section for {c}"
        );
    }
    // A flag of exec's that only exec has, in the page.
    assert!(
        roff.contains("\\-\\-ignore\\-paused"),
        "exec's flags are missing"
    );
    // As man(1) renders it, where man is installed.
    let Ok(mut man) = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("skipped: rendering with man(1) (not installed)");
        return;
    };
    use std::io::Write;
    man.stdin.take().unwrap().write_all(&page.stdout).unwrap();
    let shown = man.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("SKIFF-OCI EXEC") && text.contains("skiff-oci exec c1 ps -ef"),
        "{text:.500}"
    );
}

/// What bash completes after `words`, with the script `completion bash`
/// prints loaded.
fn complete(words: &str) -> String {
    let script = format!(
        "source <({} completion bash) || exit 3\n\
         COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}\n\
         f=$(complete -p skiff-oci | sed 's/.* -F \\([^ ]*\\) .*/\\1/')\n\
         $f skiff-oci \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         echo \"${{COMPREPLY[@]}}\"",
        skiff()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn bash_completes_commands_and_flags() {
    assert_eq!(complete("skiff-oci ru"), "run");
    let exec_flags = complete("skiff-oci exec --pi");
    assert_eq!(exec_flags, "--pid-file");
    let all: Vec<String> = complete("skiff-oci ''")
        .split_whitespace()
        .map(String::from)
        .collect();
    for c in commands() {
        assert!(all.contains(&c), "{c} is not completed: {all:?}");
    }
    // zsh and fish get scripts of their own.
    for (shell, marker) in [
        ("zsh", "#compdef skiff-oci"),
        ("fish", "complete -c skiff-oci"),
    ] {
        let out = Command::new(skiff())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
}
