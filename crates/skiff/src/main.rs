//! `skiff`: the engine's command line. Image commands today (pull, push,
//! images, inspect, tag, rmi, history, save, load, import, login, logout,
//! image prune/mount/unmount, system df/check); containers, networks and
//! builds come as later parts (issues 17 to 19).

mod attach;
mod build;
mod cli;
mod commands;
mod containers;
mod copy;
mod ctl;
mod db;
mod doctor;
mod events;
mod format;
mod health;
mod idmap;
mod images;
mod info;
mod init;
mod kube;
mod net;
mod pods;
mod progress;
mod secrets;
mod spec;
mod stdio;
mod template;
mod top;
mod userns;
mod vm;
mod volumes;

use clap::Parser;

fn main() {
    skiff_image::trace::start();
    // As a container's pid 1 (--init), before anything else.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__init") {
        let rest = match args.get(2).map(String::as_str) {
            Some("--") => &args[3..],
            _ => &args[2..],
        };
        init::run(rest);
    }
    // As a pod's infra process.
    if args.get(1).map(String::as_str) == Some("__pause") {
        pods::pause();
    }
    // Reading a detached exec's output in a VM until it ends.
    if args.get(1).map(String::as_str) == Some("__vm-drain") {
        vm::drain(&args[2..]);
    }
    // Bad flags exit 125, as Docker's and Podman's do (help and version: 0).
    let parse = |args: &[String]| match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let mut args = cli::latest_as_name(args);
    let mut cli = parse(&args);
    // --latest: the newest container's id where the flag was.
    if let Some(at) = args.iter().position(|a| a == cli::LATEST) {
        let root = cli
            .root
            .clone()
            .unwrap_or_else(skiff_image::store::Store::default_root);
        let newest = db::Db::open(&root)
            .and_then(|db| db.all())
            .ok()
            .and_then(|all| all.into_iter().next());
        let Some(c) = newest else {
            eprintln!("Error: --latest: there are no containers");
            std::process::exit(125);
        };
        args[at] = c.id;
        cli = parse(&args);
    }
    // A listing read through `| head` ends quietly when its reader goes,
    // as Podman's does, instead of panicking in println!. Only these:
    // the commands that start monitors must outlive a closed pipe.
    use cli::{Command as C, ContainerCommand as CC, ContainerOps as Op};
    if matches!(
        cli.command,
        C::Containers(Op::Ps(_) | Op::Logs(_) | Op::Export { .. })
            | C::Container(CC::Ops(Op::Ps(_) | Op::Logs(_) | Op::Export { .. }) | CC::Ls(_))
            | C::Images(_)
            | C::Inspect(_)
            | C::History(_)
            | C::Info(_)
            | C::Version(_)
            | C::Events(_)
            | C::System(cli::SystemCommand::Info(_) | cli::SystemCommand::Events(_))
    ) {
        // SAFETY: sets the process's disposition of one signal to the
        // default; no handler of ours is involved.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // Inherited by what this command starts (the container's monitor).
    if cli.trace {
        std::env::set_var("SKIFF_TRACE", "1");
    }
    // The store is chosen as the user who ran us (before the namespace,
    // where we are root).
    if cli.root.is_none()
        && !matches!(
            cli.command,
            cli::Command::Man | cli::Command::Completion { .. }
        )
    {
        cli.root = Some(skiff_image::store::Store::default_root());
    }
    let needs_store = !matches!(
        cli.command,
        cli::Command::Man
            | cli::Command::Completion { .. }
            | cli::Command::Login(_)
            | cli::Command::Logout(_)
    );
    if needs_store {
        if let Err(e) = userns::enter() {
            eprintln!("Error: {e}");
            std::process::exit(125);
        }
    }
    match commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("Error: {e}");
            // 125: the engine itself failed (Docker's and Podman's code).
            std::process::exit(125);
        }
    }
}
