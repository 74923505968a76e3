//! skiff-oci: argument parsing and output; the work is in the skiff library.

mod arena;
mod cli;
mod control;
mod doctor;
mod exec;
mod logging;
mod options;
mod output;

use std::error::Error;

use nix::unistd::Pid;
use skiff_runtime::container;
use skiff_runtime::state::StateRoot;

use cli::{Cli, Command, CreateArgs};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[global_allocator]
static ALLOC: arena::Arena = arena::Arena::new();

fn main() {
    let cli = options::start("skiff-oci");
    if cli.trace || std::env::var_os("SKIFF_TRACE").is_some_and(|v| v == "1") {
        skiff_runtime::trace::enable();
        // Marks when main was reached: the time before it is the exec and
        // the binary's own start-up.
        drop(skiff_runtime::trace::phase("main"));
    }
    // A command that puts this binary into a container runs from a
    // sealed copy of it (CVE-2019-5736; see skiff_runtime::sealed).
    if matches!(
        cli.command,
        Some(cli::Command::Create(_) | cli::Command::Run { .. } | cli::Command::Exec(_))
    ) {
        if let Err(e) = skiff_runtime::sealed::ensure() {
            logging::write("error", &e.to_string());
            let exec = matches!(cli.command, Some(cli::Command::Exec(_)));
            std::process::exit(if exec { 255 } else { 1 });
        }
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
    let root = StateRoot::new(options::state_root(cli));
    let Some(command) = &cli.command else {
        if cli.version {
            output::version()?;
            return Ok(0);
        }
        // As runc: the help, on stdout, and success.
        <Cli as clap::CommandFactory>::command().print_help()?;
        return Ok(0);
    };
    match command {
        Command::Create(args) => {
            container::create(&root, &options::create_options(cli, args, false))?;
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
        // In a binary of their own (see skiff-criu.rs).
        Command::Checkpoint(_) | Command::Restore(_) => return Err(exec_criu().into()),
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

/// create and start in one (init does not park on an exec fifo), then
/// (unless detached) wait with signals forwarded and delete; the exit code
/// is the container's.
fn run(cli: &Cli, root: &StateRoot, args: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    if !detach {
        container::block_forwarded_signals();
    }
    // In the foreground without a console socket, `run` relays the terminal itself.
    let relay = !detach && args.console_socket.is_none();
    let mut opts = options::create_options(cli, args, relay);
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

/// `checkpoint` and `restore` are skiff-criu's: their code (CRIU's
/// options, the checkpoint's notes) would make every skiff-oci start map
/// and relocate a quarter of a megabyte more. This process becomes it,
/// same pid and arguments ($SKIFF_CRIU, else the skiff-criu beside this
/// binary, else on PATH); only a failed exec returns.
fn exec_criu() -> String {
    use std::os::unix::process::CommandExt;
    let helper = std::env::var_os("SKIFF_CRIU")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join("skiff-criu")))
                .filter(|p| p.exists())
        })
        .unwrap_or_else(|| "skiff-criu".into());
    let err = std::process::Command::new(&helper)
        .args(std::env::args_os().skip(1))
        .exec();
    format!(
        "checkpoint/restore: running {}: {err} (it is installed beside skiff-oci)",
        helper.display()
    )
}
