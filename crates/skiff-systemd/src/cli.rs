//! skiff-systemd's command line (also read by build.rs, which makes the
//! manual page from it).

use clap::{Parser, Subcommand, ValueEnum};

/// The systemd cgroup driver's helper of skiff-oci and the skiff shim
///
/// The D-Bus calls `--systemd-cgroup` makes (on the system bus), one per
/// run. Not meant to be run by hand: skiff-oci and the shim look for it in
/// $SKIFF_SYSTEMD, then beside themselves, then on PATH. Exit status 0, or
/// 1 with systemd's error on stderr.
#[derive(Parser)]
#[command(name = "skiff-systemd", version)]
pub struct Cli {
    /// The caller's own systemd (`systemd --user`, on the session bus)
    #[arg(long, global = true)]
    pub user: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start the transient unit UNIT (a .scope holding PID, with
    /// Delegate=yes, in SLICE; or a .slice) with linux.resources (JSON on
    /// stdin) as its properties, wait for the job (30 s at most), and (with
    /// --user) print the unit's ControlGroup
    #[command(
        after_help = "Example:\n  echo '{\"pids\": {\"limit\": 10}}' | skiff-systemd start-scope skiff-c1.scope system.slice 4242 v2"
    )]
    StartScope {
        unit: String,
        slice: String,
        pid: i32,
        /// The host's cgroup tree (it decides the property names)
        #[arg(value_enum)]
        tree: Tree,
    },
    /// Set linux.resources (JSON on stdin) as UNIT's runtime properties
    SetResources {
        unit: String,
        #[arg(value_enum)]
        tree: Tree,
    },
    /// Stop UNIT and wait for the job; a unit that is gone already is not
    /// an error
    Stop { unit: String },
    /// Print this program's manual page (roff, for man(1))
    Man,
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tree {
    V1,
    V2,
}
