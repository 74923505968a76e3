//! `skiff-systemd`: the systemd cgroup driver's helper. skiff-oci and the
//! shim run it for the few calls `--systemd-cgroup` makes (start a scope,
//! set its properties, stop it), so that D-Bus stays out of their own
//! binaries and start paths. Resources come as linux.resources JSON on stdin.
//!
//!   skiff-systemd start-scope UNIT SLICE PID v1|v2   < resources.json
//!   skiff-systemd set-resources UNIT v1|v2           < resources.json
//!   skiff-systemd stop UNIT
//!   skiff-systemd man

mod cli;

use std::io::Read;

use cli::{Command, Tree};

use skiff_runtime::cgroups::{ScopeUnit, UnitManager};
use skiff_runtime::oci_spec::runtime::LinuxResources;
use skiff_systemd::Systemd;

fn resources() -> Result<Option<LinuxResources>, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the resources from stdin: {e}"))?;
    if text.trim().is_empty() || text.trim() == "null" {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("linux.resources on stdin: {e}"))
}

fn run(cli: cli::Cli) -> Result<(), String> {
    let systemd = match cli.user {
        true => Systemd::user(),
        false => Systemd::new(),
    };
    match cli.command {
        Command::StartScope {
            unit,
            slice,
            pid,
            tree,
        } => {
            let unit = ScopeUnit {
                name: unit,
                slice,
                user: cli.user,
            };
            let group = systemd.start_scope(&unit, pid, resources()?.as_ref(), tree == Tree::V2)?;
            if !group.is_empty() {
                println!("{group}");
            }
            Ok(())
        }
        Command::SetResources { unit, tree } => {
            let unit = ScopeUnit {
                name: unit,
                slice: String::new(),
                user: cli.user,
            };
            match resources()? {
                Some(res) => systemd.set_resources(&unit, &res, tree == Tree::V2),
                None => Ok(()),
            }
        }
        Command::Stop { unit } => systemd.stop(&ScopeUnit {
            name: unit,
            slice: String::new(),
            user: cli.user,
        }),
        Command::Man => {
            print!(
                "{}",
                include_str!(concat!(env!("OUT_DIR"), "/skiff-systemd.8"))
            );
            Ok(())
        }
        Command::Completion { shell } => {
            print!(
                "{}",
                match shell {
                    cli::Shell::Bash =>
                        include_str!(concat!(env!("OUT_DIR"), "/skiff-systemd.bash")),
                    cli::Shell::Zsh => include_str!(concat!(env!("OUT_DIR"), "/_skiff-systemd")),
                    cli::Shell::Fish =>
                        include_str!(concat!(env!("OUT_DIR"), "/skiff-systemd.fish")),
                }
            );
            Ok(())
        }
    }
}

fn main() {
    if let Err(e) = run(clap::Parser::parse()) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
