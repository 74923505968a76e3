//! skiff-oci: argument parsing and output; the work is in the skiff library.

mod arena;
mod checkpoint;
mod cli;
mod control;
mod doctor;
mod exec;
mod logging;
mod output;

use std::error::Error;

use nix::unistd::Pid;
use skiff_runtime::container::{self, CreateOptions};
use skiff_runtime::state::StateRoot;

use cli::{Cli, Command, CreateArgs};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[global_allocator]
static ALLOC: arena::Arena = arena::Arena::new();

fn main() {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
    logging::debug(|| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        format!(
            "skiff-oci {}: {}",
            env!("CARGO_PKG_VERSION"),
            args.join(" ")
        )
    });
    if cli.trace || std::env::var_os("SKIFF_TRACE").is_some_and(|v| v == "1") {
        skiff_runtime::trace::enable();
        // Marks when main was reached: the time before it is the exec and
        // the binary's own start-up.
        drop(skiff_runtime::trace::phase("main"));
    }
    match dispatch(&cli) {
        Ok(code) => {
            logging::debug(|| format!("done, exit status {code}"));
            std::process::exit(code)
        }
        // The reader of our output went away (`skiff-oci ps | head`): not an error.
        Err(e) if is_broken_pipe(e.as_ref()) => std::process::exit(0),
        Err(e) => {
            logging::write("error", &e.to_string());
            // runc exits 255 when exec itself fails, which is then told
            // apart from a program that exited 1.
            let code = if matches!(cli.command, Some(cli::Command::Exec(_))) {
                255
            } else {
                1
            };
            std::process::exit(code);
        }
    }
}

fn is_broken_pipe(e: &(dyn Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes a line to stdout; a closed stdout is an error, not a panic.
pub fn out(text: &str) -> Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

fn dispatch(cli: &Cli) -> Result<i32> {
    let root = StateRoot::new(state_root(cli));
    let Some(command) = &cli.command else {
        if cli.version {
            output::version()?;
            return Ok(0);
        }
        return Err("no command given: see skiff-oci --help".into());
    };
    match command {
        Command::Create(args) => {
            container::create(&root, &create_options(cli, args, false))?;
        }
        Command::Start { id } => container::start(&root, id)?,
        Command::Run {
            create,
            detach,
            keep,
            no_subreaper: _,
        } => return run(cli, &root, create, *detach, *keep),
        Command::Exec(args) => return exec::run(&root, args),
        Command::Pause { id } => container::pause(&root, id)?,
        Command::Resume { id } => container::resume(&root, id)?,
        Command::Update(args) => control::update(&root, args)?,
        Command::Ps {
            id,
            format,
            ps_args,
        } => control::ps(&root, id, *format, ps_args)?,
        Command::Events {
            id,
            stats,
            interval,
        } => control::events(&root, id, *stats, interval)?,
        Command::State { id } => output::state(&root, id)?,
        Command::Kill { id, signal, all } => {
            let sig = skiff_runtime::signal::parse_for_kill(signal.as_deref().unwrap_or(""))?;
            container::kill(&root, id, sig, *all)?;
        }
        Command::Delete { id, force } => container::delete(&root, id, *force)?,
        Command::List { format, quiet } => output::list(&root, *format, *quiet)?,
        Command::Spec { bundle } => {
            let rootless = cli.rootless.as_deref().is_some_and(|v| v != "false");
            output::spec(bundle, rootless)?
        }
        Command::Checkpoint(args) => return checkpoint::checkpoint(cli, &root, args),
        Command::Restore(args) => return checkpoint::restore(cli, &root, args),
        Command::Features => output::features()?,
        Command::Doctor { fix } => return doctor::run(&root, *fix),
        Command::Completion { shell } => output::print(match shell {
            cli::Shell::Bash => include_str!(concat!(env!("OUT_DIR"), "/skiff-oci.bash")),
            cli::Shell::Zsh => include_str!(concat!(env!("OUT_DIR"), "/_skiff-oci")),
            cli::Shell::Fish => include_str!(concat!(env!("OUT_DIR"), "/skiff-oci.fish")),
        })?,
        Command::Man => output::print(include_str!(concat!(env!("OUT_DIR"), "/skiff-oci.8")))?,
    }
    Ok(0)
}

/// --root, or runc's defaults: /run/skiff for root, and for other users
/// $XDG_RUNTIME_DIR/skiff (or /tmp/skiff-UID), a directory they own.
fn state_root(cli: &Cli) -> std::path::PathBuf {
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

pub(crate) fn create_options<'a>(
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

/// create and start in one (init does not park on an exec fifo), then
/// (unless detached) wait with signals forwarded and delete; the exit code
/// is the container's.
fn run(cli: &Cli, root: &StateRoot, args: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    if !detach {
        container::block_forwarded_signals();
    }
    // In the foreground without a console socket, `run` relays the terminal itself.
    let relay = !detach && args.console_socket.is_none();
    let mut opts = create_options(cli, args, relay);
    // Init goes straight on to the program: no exec fifo, no separate start.
    opts.start_now = true;
    let created = container::create(root, &opts)?;
    if detach {
        return Ok(0);
    }
    let pid = Pid::from_raw(created.record.pid);
    let t = skiff_runtime::trace::phase("wait");
    let code = match created.console_master {
        Some(master) => container::relay_and_wait(pid, master),
        None => container::wait_forwarding(pid),
    };
    drop(t);
    if !keep {
        container::delete_stopped(root, &created.record, created.dir_anchor)?;
    }
    Ok(code)
}
