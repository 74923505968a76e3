//! What skiff-oci and skiff-criu share: the start (command line, log),
//! the state root, and the create options made from the command line.

use skiff_runtime::container::CreateOptions;

use crate::cli::{self, Cli, CreateArgs};
use crate::logging;

/// The command line, parsed (a bad one, or --help, ends the process here
/// as clap has it), and the log set up with the invocation as its first
/// debug line.
pub fn start(program: &str) -> Cli {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            // runc's (urfave/cli's) codes: 0 for help, 3 for a command it
            // does not have ("No help topic for ..."), 1 for the rest.
            let code = match e.kind() {
                clap::error::ErrorKind::InvalidSubcommand => 3,
                _ if e.use_stderr() => 1,
                _ => 0,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
    logging::debug(|| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        format!(
            "{program} {}: {}",
            env!("CARGO_PKG_VERSION"),
            args.join(" ")
        )
    });
    cli
}

/// --root, or runc's defaults: /run/skiff for root, and for other users
/// $XDG_RUNTIME_DIR/skiff (or /tmp/skiff-UID), a directory they own.
pub fn state_root(cli: &Cli) -> std::path::PathBuf {
    if let Some(root) = &cli.root {
        return root.clone();
    }
    // runc's rule: $XDG_RUNTIME_DIR/skiff for a user, and for uid 0 of a
    // user namespace (rootless podman runs us so) unless $USER is root;
    // /run/skiff for the host's root, whatever XDG_RUNTIME_DIR says.
    let uid = nix::unistd::geteuid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let honour_xdg = !uid.is_root()
        || (skiff_runtime::namespaces::in_nested_user_ns()
            && std::env::var_os("USER").is_none_or(|u| u != "root"));
    match xdg {
        Some(dir) if honour_xdg => std::path::Path::new(&dir).join("skiff"),
        _ if uid.is_root() => "/run/skiff".into(),
        _ => format!("/tmp/skiff-{uid}").into(),
    }
}

pub fn create_options<'a>(
    cli: &Cli,
    args: &'a CreateArgs,
    relay_terminal: bool,
) -> CreateOptions<'a> {
    CreateOptions {
        id: &args.id,
        bundle: &args.bundle,
        pid_file: args.pid_file.as_deref(),
        console_socket: args.console_socket.as_deref(),
        console_stream: None,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        listen_fds: listen_fds(),
        systemd_cgroup: cli.systemd_cgroup,
        relay_terminal,
        start_now: false,
    }
}

/// Sockets passed by systemd socket activation (LISTEN_FDS, for this very
/// process by LISTEN_PID), which runc passes on to the container.
fn listen_fds() -> u32 {
    let var = |k| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    match (var("LISTEN_FDS"), var("LISTEN_PID")) {
        (Some(n), Some(pid)) if pid == std::process::id() => n,
        _ => 0,
    }
}
