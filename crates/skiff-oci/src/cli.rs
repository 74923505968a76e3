//! The command line runc's callers use (podman/conmon, containerd's runc shim,
//! Docker, CRI-O): the same commands, flags and defaults. Options may come
//! before or after the container id.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// The top-level options (by id), which may also follow the subcommand.
const GLOBALS: &[&str] = &[
    "root",
    "log",
    "log_format",
    "debug",
    "systemd_cgroup",
    "rootless",
    "criu",
    "trace",
];

/// Parses the command line. Top-level options may also follow the
/// subcommand (`spec --rootless`, `state --root R ID`), which clap allows by
/// copying each of them into every subcommand ("global"): about 0.05 ms and
/// twenty page faults on every invocation. So they are global only when
/// something after the subcommand looks like one of them.
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os().collect())
}

fn parse_from(argv: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut cmd = Cli::command();
    if !global_after_subcommand(&cmd, &argv) {
        for id in GLOBALS {
            cmd = cmd.mut_arg(*id, |a| a.global(false));
        }
    }
    let matches = cmd.try_get_matches_from_mut(argv)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// Whether an argument after the first positional one (the subcommand) is
/// `--NAME` or `--NAME=...` of a top-level option, or asks for help. Errs
/// towards yes: that only costs the copies.
fn global_after_subcommand(cmd: &clap::Command, argv: &[OsString]) -> bool {
    let longs: Vec<&str> = cmd
        .get_arguments()
        .filter(|a| GLOBALS.contains(&a.get_id().as_str()))
        .filter_map(|a| a.get_long())
        .collect();
    let takes_value = |long: &str| {
        cmd.get_arguments().any(|a| {
            a.get_long() == Some(long)
                && a.get_action().takes_values()
                && a.get_num_args().is_none_or(|n| n.min_values() > 0)
        })
    };
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        let arg = arg.to_string_lossy();
        match arg.strip_prefix("--") {
            Some("") => return false,
            Some(long) if !long.contains('=') && takes_value(long) => i += 2,
            Some(_) => i += 1,
            None if arg.starts_with('-') => i += 1,
            None => break,
        }
    }
    argv.iter().skip(i + 1).any(|arg| {
        let arg = arg.to_string_lossy();
        // A subcommand's help lists them too.
        arg == "-h"
            || arg == "--help"
            || arg
                .strip_prefix("--")
                .is_some_and(|l| longs.contains(&l.split('=').next().unwrap_or(l)))
    })
}

#[derive(Parser)]
#[command(
    name = "skiff-oci",
    about = "A runc-compatible OCI runtime",
    disable_version_flag = true,
    // A flag given twice: the last one counts, as runc's (urfave/cli's).
    args_override_self = true
)]
pub struct Cli {
    /// State directory, one subdirectory per container [default: /run/skiff;
    /// for a non-root user $XDG_RUNTIME_DIR/skiff]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file for errors and warnings (default: stderr only)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json (containerd's shim reads json)
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Debug output in the log
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (cgroupsPath as slice:prefix:name)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// With `spec`: write a spec for a non-root user; elsewhere accepted for
    /// compatibility (true|false|auto)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "auto")]
    pub rootless: Option<String>,
    /// The criu binary for checkpoint and restore [default: criu on PATH]
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// Time each phase (parse, cgroup, clone, mounts, pivot, ...) and print it
    /// as JSON lines on stderr; also SKIFF_TRACE=1
    #[arg(long, global = true)]
    pub trace: bool,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Container id (unique under --root)
    pub id: String,
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write init's pid to (written once the container is created)
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Move the rootfs onto / and chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not give the container a session keyring of its own
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N more file descriptors (from 3) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

/// Deferred: a subcommand's arguments are built only when it is the one
/// invoked (building all of them was most of the parse time, ~0.1 ms).
#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a container, parked before its program runs
    #[command(
        after_help = "Example:\n  skiff-oci create --bundle /srv/bundle --pid-file /run/c1.pid c1 && skiff-oci start c1"
    )]
    Create(CreateArgs),
    /// Run the program of a created container
    Start {
        /// Container id (unique under --root)
        id: String,
    },
    /// Create, start and wait for a container
    #[command(
        after_help = "Examples:\n  skiff-oci run --bundle /srv/bundle c1      # in the foreground\n  skiff-oci run -d --bundle /srv/bundle c1   # detached; then delete -f c1"
    )]
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once started instead of waiting
        #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, default_value = "false")]
        detach: bool,
        /// Accepted for compatibility: skiff-oci is never a subreaper
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process inside a running container
    #[command(
        after_help = "Examples:\n  skiff-oci exec c1 ps -ef\n  skiff-oci exec -e A=1 --cwd /tmp -u 1000:1000 c1 sh -c 'id; env'\n  skiff-oci exec --process process.json c1"
    )]
    Exec(Box<ExecArgs>),
    /// Freeze every process of a container
    Pause {
        /// Container id (unique under --root)
        id: String,
    },
    /// Thaw a paused container
    Resume {
        /// Container id (unique under --root)
        id: String,
    },
    /// Change a live container's cgroup limits
    #[command(
        after_help = "Examples:\n  skiff-oci update --memory 256m --pids-limit 100 c1\n  echo '{\"cpu\": {\"quota\": 50000}}' | skiff-oci update -r - c1"
    )]
    Update(Box<UpdateArgs>),
    /// List a container's processes
    Ps {
        /// Container id (unique under --root)
        id: String,
        /// Output format (json: the pids only)
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Options for ps(1) (after --), default -ef
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print resource usage and OOM events as JSON lines
    Events {
        /// Container id (unique under --root)
        id: String,
        /// Print one stats event and exit
        #[arg(long)]
        stats: bool,
        /// Interval between stats events (Go duration: 5s, 500ms, 1m)
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Print a container's state as JSON
    State {
        /// Container id (unique under --root)
        id: String,
    },
    /// Send a signal (default SIGTERM) to a container
    #[command(after_help = "Examples:\n  skiff-oci kill c1 KILL\n  skiff-oci kill --all c1 TERM")]
    Kill {
        /// Container id (unique under --root)
        id: String,
        /// Signal name or number: TERM, SIGKILL, 9, RTMIN+3
        signal: Option<String>,
        /// Signal every process of the container
        #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, default_value = "false")]
        all: bool,
    },
    /// Delete a container's resources
    Delete {
        /// Container id (unique under --root)
        id: String,
        /// Kill it first if it is running
        #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, default_value = "false")]
        force: bool,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        /// Output format
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Ids only
        #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, default_value = "false")]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        /// Bundle directory to write config.json in
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Save a running container to disk with CRIU (it stops unless
    /// --leave-running)
    #[command(
        after_help = "Examples:\n  skiff-oci checkpoint --image-path /var/lib/ckpt/c1 c1\n  skiff-oci checkpoint --leave-running --image-path /var/lib/ckpt/c1 c1"
    )]
    Checkpoint(Box<CheckpointArgs>),
    /// Bring a checkpointed container back (from --image-path) and run it
    #[command(
        after_help = "Example:\n  skiff-oci restore -d --bundle /srv/bundle --image-path /var/lib/ckpt/c1 c1"
    )]
    Restore(Box<RestoreArgs>),
    /// Print what this runtime supports (runtime-spec features.md)
    Features,
    /// Find what crashes left under --root (--fix removes it), and check
    /// what the host offers (cgroups, kernel features, rootless needs)
    #[command(
        after_help = "Examples:\n  skiff-oci doctor\n  skiff-oci --root /run/skiff doctor --fix"
    )]
    Doctor {
        /// Remove what was left (as delete --force would)
        #[arg(long)]
        fix: bool,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  skiff-oci completion bash > /usr/share/bash-completion/completions/skiff-oci"
    )]
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print this program's manual page (roff, for man(1))
    #[command(after_help = "Example:\n  skiff-oci man > /usr/local/share/man/man8/skiff-oci.8")]
    Man,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Container id (unique under --root)
    pub id: String,
    /// The command and its arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A runtime-spec process JSON file describing the process
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pty (its master goes to --console-socket)
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master with --tty
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Extra environment, KEY=VALUE (repeatable)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Supplementary groups (repeatable)
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the process's sets (repeatable)
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs (=false clears it where the container's sets it,
    /// as runc's)
    #[arg(long = "no-new-privs", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub no_new_privs: Option<bool>,
    /// AppArmor profile for the process (refused where AppArmor is off)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (refused: skiff applies none)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass N more file descriptors (from 3) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in a group below the container's: PATH, or
    /// CONTROLLER[,CONTROLLER]:PATH (repeatable)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec into a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

/// What checkpoint and restore share (runc's flags, passed to CRIU).
#[derive(Args)]
pub struct CriuArgs {
    /// Directory for CRIU's images [default: ./checkpoint]
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's logs and scratch files [default: the image path]
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Save and restore established TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow connections to unix sockets outside the container
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow a shell job (a terminal of the caller's)
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Save and restore file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// How CRIU treats cgroups: soft, full, strict or ignore [default: soft]
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Leave out a namespace: only "network" (restore makes it empty)
    #[arg(long = "empty-ns")]
    pub empty_ns: Option<String>,
    /// Deduplicate the images as pages are written or restored
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Refused: lazy migration needs CRIU's page server, which skiff does
    /// not run
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(Args)]
pub struct CheckpointArgs {
    /// Container id (unique under --root)
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Keep the container running after the checkpoint
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump memory only, for a later checkpoint with --parent-path
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// An earlier pre-dump's images, relative to --image-path
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Let CRIU link-remap files that were unlinked while open
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    /// Skip TCP connections not yet established
    #[arg(long = "tcp-skip-in-flight")]
    pub tcp_skip_in_flight: bool,
    /// Refused: CRIU's page server (ADDRESS:PORT) is not supported
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// Refused: only with --lazy-pages
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Return once restored instead of waiting
    #[arg(short, long)]
    pub detach: bool,
    /// Accepted for compatibility: skiff-oci is never a subreaper
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// LSM profile for the restored processes (as CRIU takes it)
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// LSM mount context for the restored mounts
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// Container id (unique under --root)
    pub id: String,
    /// A runtime-spec linux.resources JSON file ("-" for stdin)
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit, bytes or with k/m/g suffix (-1: unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit (reservation)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Accepted and ignored with a warning, as runc does (kernel memory
    /// limits are deprecated)
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Accepted and ignored with a warning, as --kernel-memory
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Refused: Intel RDT (linux.intelRdt) is not supported
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Refused: Intel RDT (linux.intelRdt) is not supported
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// (runc spells it --cpu-share)
    #[arg(long = "cpu-shares", alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// CPU real-time period, microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU real-time runtime, microseconds
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU time per period, microseconds (-1: unlimited)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU period, microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may use: 0-3,8
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use: 0,1
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Most processes at once (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("skiff-oci")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn globals_are_every_global_option() {
        let cmd = Cli::command();
        let mut declared: Vec<&str> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().as_str())
            .collect();
        declared.sort();
        let mut listed = GLOBALS.to_vec();
        listed.sort();
        assert_eq!(declared, listed);
    }

    /// runc's boolean flags take `=true`/`=false` too, and its spellings.
    #[test]
    fn runc_spellings_of_flags_are_taken() {
        let parsed = |a: &[&str]| parse_from(argv(a)).map_err(|e| e.to_string());
        for (args, want) in [
            (&["delete", "--force=true", "c"][..], true),
            (&["delete", "c", "--force=false"][..], false),
            (&["delete", "-f", "c"][..], true),
            (&["delete", "c"][..], false),
        ] {
            match parsed(args).unwrap().command {
                Some(Command::Delete { force, .. }) => assert_eq!(force, want, "{args:?}"),
                _ => panic!("{args:?}"),
            }
        }
        match parsed(&["kill", "--all=true", "c", "KILL"])
            .unwrap()
            .command
        {
            Some(Command::Kill { all, signal, .. }) => {
                assert!(all);
                assert_eq!(signal.as_deref(), Some("KILL"));
            }
            _ => panic!("kill"),
        }
        match parsed(&["update", "--cpu-share", "512", "c"])
            .unwrap()
            .command
        {
            Some(Command::Update(u)) => assert_eq!(u.cpu_shares, Some(512)),
            _ => panic!("update"),
        }
        assert!(parsed(&["run", "--no-subreaper", "-d", "c"]).is_ok());
        // A flag given twice: the last (runc's); repeatable ones add up.
        let cli = parsed(&["--root", "/a", "--root", "/b", "list"]).unwrap();
        assert_eq!(cli.root.as_deref(), Some(std::path::Path::new("/b")));
        match parsed(&["exec", "-e", "A=1", "-e", "B=2", "c", "true"])
            .unwrap()
            .command
        {
            Some(Command::Exec(x)) => assert_eq!(x.env, ["A=1", "B=2"]),
            _ => panic!("exec"),
        }
    }

    #[test]
    fn top_level_options_after_the_subcommand_are_seen() {
        let cmd = Cli::command();
        let after = |a: &[&str]| global_after_subcommand(&cmd, &argv(a));
        assert!(!after(&[
            "--root",
            "/r",
            "--log-format",
            "json",
            "state",
            "c"
        ]));
        assert!(!after(&["--root=/r", "run", "--bundle", "b", "c"]));
        assert!(after(&["spec", "--rootless"]));
        assert!(after(&["state", "c", "--root=/r"]));
        assert!(after(&["--debug", "kill", "c", "--trace"]));
        // A value that looks like the subcommand: the scan only widens.
        assert!(after(&["--root", "run", "state", "--log", "l", "c"]));
        assert!(!after(&["--", "state", "--root"]));
        assert!(after(&["state", "--help"]));
    }
}
