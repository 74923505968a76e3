//! The command line's dispatch: each command to the module that runs it
//! (the image commands in `images`, the containers' in `ctl`, pods from
//! YAML in `kube`), so that those modules need not know one another.

use skiff_image::store::Store;
use skiff_image::{Error, Result};

use crate::cli::*;
use crate::{containers, copy, ctl, db, doctor, images, kube};

pub fn run(cli: Cli) -> Result<i32> {
    let root = cli.root.clone().unwrap_or_else(Store::default_root);
    let open = || Store::open(&root);
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            images::pull_cmd(&mut open()?, a)
        }
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => images::push_cmd(&open()?, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(&open()?, a),
        Command::Inspect(a) => images::inspect(&open()?, a, None),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(&open()?, a, Some("image")),
        Command::Image(ImageCommand::Exists { image }) => {
            Ok(if open()?.find(&image).is_ok() { 0 } else { 1 })
        }
        Command::Container(ContainerCommand::Exists { container }) => {
            let store = open()?;
            let db = db::Db::open(&store.root)?;
            Ok(if db.find(&container).is_ok() { 0 } else { 1 })
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&mut open()?, a),
        Command::Untag(a) | Command::Image(ImageCommand::Untag(a)) => {
            images::untag(&mut open()?, a)
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => ctl::rmi(&mut open()?, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            images::history(&open()?, a)
        }
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => images::save(&open()?, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => images::load(&mut open()?, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            images::import(&mut open()?, a)
        }
        Command::Login(a) => images::login(a),
        Command::Logout(a) => images::logout(a),
        Command::Image(ImageCommand::Prune(a)) => images::prune(&mut open()?, a),
        Command::Image(ImageCommand::Mount(a)) => images::mount(&mut open()?, a),
        Command::Image(ImageCommand::Unmount(a)) => {
            skiff_image::mount::unmount(&mut open()?, &a.name)?;
            println!("{}", a.name);
            Ok(0)
        }
        Command::System(SystemCommand::Df) => images::df(&open()?),
        Command::System(SystemCommand::Prune {
            all,
            volumes,
            force: _,
        }) => ctl::system_prune(&mut open()?, all, volumes),
        Command::System(SystemCommand::Info(a)) | Command::Info(a) => {
            crate::info::info(&open()?, a.format.as_deref())
        }
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            let store = open()?;
            let q = crate::events::Query::parse(
                a.since.as_deref(),
                a.until.as_deref(),
                &a.filter,
                a.stream.unwrap_or(true),
                a.format,
                a.no_trunc.unwrap_or(true),
            )?;
            crate::events::show(&store.root, &q)
        }
        Command::Version(a) => crate::info::version(a.format.as_deref()),
        Command::System(SystemCommand::Check(a)) => images::check(&mut open()?, a),
        Command::System(SystemCommand::Reset { force }) => ctl::system_reset(open()?, force),
        Command::Unshare { command } => {
            use std::os::unix::process::CommandExt;
            let mut argv = command.clone();
            if argv.is_empty() {
                argv.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
            }
            let e = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
            Err(Error::io(format!("running {}", argv[0]), e))
        }
        Command::Containers(op) | Command::Container(ContainerCommand::Ops(op)) => {
            container_op(&root, op)
        }
        Command::Network(n) => ctl::network(&mut open()?, n),
        Command::Volume(v) => ctl::volume(&mut open()?, v),
        Command::Search(a) => images::search(a),
        Command::Manifest(m) => images::manifest(&mut open()?, m),
        Command::Secret(s) => ctl::secret(&open()?, s),
        Command::Healthcheck(HealthcheckCommand::Run { container }) => {
            ctl::healthcheck_run(&open()?, &container)
        }
        Command::Pod(p) => ctl::pod(&mut open()?, p),
        Command::Kube(KubeCommand::Play { file, replace }) => {
            kube::play(&mut open()?, &file, replace)
        }
        Command::Kube(KubeCommand::Down { file }) => kube::down(&mut open()?, &file),
        Command::Kube(KubeCommand::Generate { pod }) => kube::generate(&open()?, &pod),
        Command::Doctor { fix } => doctor::run(&mut open()?, fix),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => ctl::build(&mut open()?, a),
        Command::Container(ContainerCommand::Ls(a)) => ctl::ps(&open()?, a),
        Command::Container(ContainerCommand::Checkpoint {
            leave_running,
            tcp_established,
            all,
            containers,
        }) => ctl::checkpoint(&open()?, &containers, all, leave_running, tcp_established),
        Command::Container(ContainerCommand::Restore {
            tcp_established,
            all,
            containers,
        }) => ctl::restore(&open()?, &containers, all, tcp_established),
        Command::Container(ContainerCommand::Prune { force: _ }) => ctl::prune(&mut open()?),
        Command::Container(ContainerCommand::Inspect(a)) => {
            images::inspect(&open()?, a, Some("container"))
        }
        Command::Monitor { id } => {
            let mut store = open()?;
            let db = db::Db::open(&store.root)?;
            containers::monitor(&mut store, &db, &id, crate::attach::Echo::NONE, false).or_else(
                |e| {
                    // Detached, nobody sees its stderr: the end is recorded.
                    containers::monitor_failed(&db, &id, &e.to_string());
                    Ok(125)
                },
            )
        }
        Command::Man => {
            print!("{}", include_str!(concat!(env!("OUT_DIR"), "/skiff.8")));
            Ok(0)
        }
        Command::Completion { shell } => {
            print!(
                "{}",
                match shell {
                    Shell::Bash => include_str!(concat!(env!("OUT_DIR"), "/skiff.bash")),
                    Shell::Zsh => include_str!(concat!(env!("OUT_DIR"), "/_skiff")),
                    Shell::Fish => include_str!(concat!(env!("OUT_DIR"), "/skiff.fish")),
                }
            );
            Ok(0)
        }
    }
}

/// The commands on containers, whether typed at the top or under
/// `container`.
fn container_op(root: &std::path::Path, op: ContainerOps) -> Result<i32> {
    let open = || Store::open(root);
    match op {
        ContainerOps::Run(a) => ctl::run(&mut open()?, a, false),
        ContainerOps::Create(a) => ctl::run(&mut open()?, a, true),
        ContainerOps::Start(a) => ctl::start(&mut open()?, a),
        ContainerOps::Ps(a) => ctl::ps(&open()?, a),
        ContainerOps::Logs(a) => ctl::logs(&open()?, a),
        ContainerOps::Stop(a) => ctl::stop(&open()?, a),
        ContainerOps::Restart(a) => ctl::restart(&mut open()?, a),
        ContainerOps::Update(a) => ctl::update(&open()?, a),
        ContainerOps::Cp(a) => copy::cp(&open()?, a),
        ContainerOps::Port {
            container,
            private_port,
        } => ctl::port(&open()?, &container, private_port.as_deref()),
        ContainerOps::Attach {
            container,
            no_stdin,
            detach_keys,
        } => ctl::attach(&open()?, &container, !no_stdin, &detach_keys),
        ContainerOps::Kill(a) => ctl::kill(&open()?, a),
        ContainerOps::Rm(a) => ctl::rm(&mut open()?, a),
        ContainerOps::Exec(a) => ctl::exec(&open()?, a),
        ContainerOps::Wait(a) => ctl::wait(&open()?, a),
        ContainerOps::Commit(a) => ctl::commit(&mut open()?, a),
        ContainerOps::Pause(a) => ctl::pause(&open()?, a, true),
        ContainerOps::Unpause(a) => ctl::pause(&open()?, a, false),
        ContainerOps::Rename { container, name } => ctl::rename(&open()?, &container, &name),
        ContainerOps::Top {
            container,
            descriptors,
        } => ctl::top(&open()?, &container, &descriptors),
        ContainerOps::Stats {
            no_stream,
            format,
            containers,
        } => ctl::stats(&open()?, &containers, no_stream, format.as_deref()),
        ContainerOps::Diff { container } => ctl::diff(&open()?, &container),
        ContainerOps::Mount {
            all,
            format,
            no_trunc,
            containers,
        } => ctl::mount(&open()?, all, format.as_deref(), no_trunc, &containers),
        ContainerOps::Unmount {
            all,
            force: _,
            containers,
        } => ctl::unmount(&open()?, all, &containers),
        ContainerOps::Export { container, output } => {
            crate::info::export(&open()?, &container, output.as_deref())
        }
    }
}
