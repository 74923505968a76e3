//! The container commands: flags in, containers.rs's steps, output out.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_image::reference::Reference;
use skiff_image::store::Store;
use skiff_image::{pull, Error, Result};

use crate::cli::*;
use crate::containers::{self as ctr, Ctr, Db, RunOpts};
use crate::format;

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `run` (and `create`, which stops before starting).
pub fn run(store: &mut Store, a: RunArgs, create_only: bool) -> Result<i32> {
    // Flags first: a bad one fails before anything is pulled or made.
    let extras = crate::spec::extras(&a).map_err(Error::invalid)?;
    let log_limits = ctr::LogLimits::parse(&a.log_opt)?;
    let mut settings = run_settings(&a)?;
    let db = Db::open(&store.root)?;
    // A VM pod's members run in its VM: --isolation vm is implied.
    let pod = match &a.pod {
        Some(p) => Some(crate::pods::find(&db, p)?),
        None => None,
    };
    if let Some(p) = &pod {
        match (settings.isolation, p.spec.isolation) {
            (_, crate::vm::Isolation::Vm) => {
                settings.isolation = crate::vm::Isolation::Vm;
                settings.vm_pod = Some(p.infra.clone());
            }
            (crate::vm::Isolation::Vm, _) => {
                return Err(Error::invalid(format!(
                "--pod {} with --isolation vm: the pod is not a VM pod (pod create --isolation vm)",
                p.name
            )))
            }
            _ => {}
        }
    }
    let vm = settings.isolation == crate::vm::Isolation::Vm;
    if vm {
        crate::vm::refuse_unsupported(&a)?;
    }
    let mut extras = extras;
    if !extras.seccomp_given {
        extras.seccomp = crate::spec::default_seccomp()?;
    }
    if let Some(p) = &extras.seccomp {
        crate::spec::seccomp_for(p, &crate::spec::capabilities(&extras))
            .map_err(|e| Error::invalid(format!("--security-opt seccomp: {e}")))?;
    }
    let detach_keys = crate::attach::parse_detach_keys(&a.detach_keys)?;
    skiff_image::trace::mark("flags checked, store open");
    // The image, pulled when the store lacks it (Docker's default).
    let image = match store.find(a.image()) {
        Ok(_) => a.image().to_string(),
        Err(_) => {
            eprintln!("Unable to find image '{}' locally", a.image());
            let opts = crate::images::registry_options(&a.registry, None)?;
            pull::pull_typed(store, a.image(), &opts, &crate::progress::Reporter::new())?.name
        }
    };
    let mut env = vec![];
    for f in &a.env_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| Error::at(f, "--env-file: reading", e))?;
        env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    env.extend(a.env.iter().cloned());

    let opts = RunOpts {
        extras,
        name: a.name.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        entrypoint: a.entrypoint.clone(),
        hostname: a.hostname.clone(),
        // A VM has no network yet: its own loopback, as none.
        network: if vm {
            Some("none".into())
        } else {
            a.network.clone()
        },
        tty: a.tty,
        rm: a.rm,
        read_only: a.read_only,
        init: a.init,
        log_limits,
        settings: ctr::Settings {
            interactive: a.interactive && a.detach,
            ..settings
        },
        stop_signal: a.stop_signal.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        pod: match &pod {
            Some(p) => Some(crate::pods::join(&db, p)?),
            None => None,
        },
    };
    skiff_image::trace::mark("image found");
    let c = ctr::create(store, &db, &image, a.command(), &opts)?;
    if create_only {
        println!("{}", c.id);
        return Ok(0);
    }
    if a.detach {
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            // It never ran: the monitor recorded why in the exit code.
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        println!("{}", c.id);
        return Ok(0);
    }
    if a.tty {
        return run_attached(&db, &c.id, a.interactive, &detach_keys);
    }
    ctr::monitor(store, &db, &c.id, true, a.interactive)
}

/// `build`: flags checked, then the build; the image id on stdout.
pub fn build(store: &mut Store, a: BuildArgs) -> Result<i32> {
    let kv = |flag: &str, v: &str| -> Result<(String, String)> {
        match v.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::invalid(format!("{flag} {v:?}: expected KEY=VALUE"))),
        }
    };
    let mut build_args = vec![];
    for v in &a.build_args {
        match v.split_once('=') {
            Some(_) => build_args.push(kv("--build-arg", v)?),
            // KEY alone: the caller's value (Docker's rule); unset: none.
            None => {
                if let Ok(val) = std::env::var(v) {
                    build_args.push((v.clone(), val));
                }
            }
        }
    }
    let labels = a
        .labels
        .iter()
        .map(|l| kv("--label", l))
        .collect::<Result<Vec<_>>>()?;
    if !matches!(a.network.as_str(), "none" | "host" | "bridge") {
        return Err(Error::invalid(format!(
            "--network {}: expected none, host or bridge",
            a.network
        )));
    }
    let o = crate::build::Options {
        context: a.context.clone(),
        file: a.file.clone(),
        tags: a.tags.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        network: a.network.clone(),
        labels,
        quiet: a.quiet,
        registry: a.registry.clone(),
    };
    let id = crate::build::build(store, &o)?;
    if a.quiet {
        println!("{}", id.trim_start_matches("sha256:"));
    }
    Ok(0)
}

/// --restart, --stop-timeout, --label; --stop-signal checked.
fn run_settings(a: &RunArgs) -> Result<ctr::Settings> {
    let restart = match a.restart.as_deref() {
        None => ctr::RestartPolicy::default(),
        Some(r) => ctr::RestartPolicy::parse(r)?,
    };
    if a.rm && !matches!(restart.name.as_str(), "" | "no") {
        return Err(Error::invalid(
            "--restart and --rm conflict: a container removed when it ends cannot restart",
        ));
    }
    if let Some(sig) = &a.stop_signal {
        if !is_signal(sig) {
            return Err(Error::invalid(format!(
                "--stop-signal {sig:?}: not a signal (TERM, SIGINT, 9, ...)"
            )));
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(Error::invalid(format!("--label {l:?}: KEY=VALUE")));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(ctr::Settings {
        restart,
        stop_timeout: a.stop_timeout,
        labels,
        interactive: false,
        runtime: match &a.runtime {
            None => None,
            Some(r) => Some(find_runtime(r)?),
        },
        anonymous_volumes: Vec::new(),
        volumes_from: a.volumes_from.clone(),
        extra_hosts: crate::net::extra_hosts(&a.add_host)?,
        dns: crate::net::dns_servers(&a.dns)?,
        ip: a.ip.clone(),
        isolation: crate::vm::Isolation::parse(a.isolation.as_deref())?,
        vm_pod: None,
    })
}

/// `--runtime`: a path, or a name looked up on PATH (runc, crun), as
/// Podman takes it.
fn find_runtime(name: &std::path::Path) -> Result<std::path::PathBuf> {
    let found = if name.components().count() > 1 {
        Some(name.to_path_buf()).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    found.ok_or_else(|| {
        Error::invalid(format!(
            "--runtime {}: no such OCI runtime (a path, or a name on PATH)",
            name.display()
        ))
    })
}

/// A signal by number (1 to 64) or name (with or without SIG).
fn is_signal(text: &str) -> bool {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS", "RTMIN",
        "RTMAX",
    ];
    let name = text.trim_start_matches("SIG");
    match name.parse::<u32>() {
        Ok(n) => (1..=64).contains(&n),
        Err(_) => {
            NAMES.contains(&name)
                || ["RTMIN+", "RTMAX-"].iter().any(|p| {
                    name.strip_prefix(p)
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| (1..=15).contains(&n))
                })
        }
    }
}

/// A foreground run with a terminal, as Docker's: the container's monitor
/// holds the terminal (and logs it) and starts the container once this
/// process has attached, so no output is missed; the detach keys leave it
/// running, as a detached one.
fn run_attached(db: &Db, id: &str, stdin: bool, keys: &[u8]) -> Result<i32> {
    let dir = db.dir(id);
    std::fs::write(dir.join(ctr::ATTACH_FIRST), b"")
        .map_err(|e| Error::at(&dir, "marking the run as attached", e))?;
    let mut monitor = ctr::spawn_monitor(db, id)?;
    // The monitor serves attach.sock first thing; bounded, and not past
    // its end.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dir.join("attach.sock").exists() {
        if let Ok(Some(_)) = monitor.try_wait() {
            return Ok(ctr::wait_exit(db, id, Some(Duration::from_secs(1)))?.unwrap_or(125) as i32);
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::invalid(format!(
                "{id}: its monitor did not answer in 30 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let ended = crate::attach::attach(&dir, true, stdin, keys)?;
    let _ = monitor.try_wait();
    attached(db, id, ended)
}

pub fn start(store: &mut Store, a: StartArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    for name in &a.containers {
        let c = db.fresh(db.find(name)?)?;
        if c.state == "paused" {
            return Err(Error::invalid(format!(
                "{name}: the container is paused: unpause it instead"
            )));
        }
        // Running, or about to (its monitor restarts it): nothing to do.
        if c.state == "running" || ctr::restarting(&c) {
            println!("{name}");
            continue;
        }
        if c.state == "exited" {
            ctr::reset_exited(&db, &c)?;
        }
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        println!("{name}");
    }
    Ok(0)
}

fn status_text(c: &Ctr) -> String {
    match c.state.as_str() {
        "running" | "paused" => format!(
            "Up {}{}",
            format::ago(c.started)
                .replace(" ago", "")
                .replace("Less than a second", "less than a second"),
            if c.state == "paused" { " (Paused)" } else { "" }
        ),
        "exited" => format!(
            "Exited ({}) {}",
            c.exit_code.unwrap_or(0),
            format::ago(c.finished)
        ),
        _ => "Created".into(),
    }
}

pub fn ps(store: &Store, a: PsArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let mut list = vec![];
    for c in db.all()? {
        let c = db.fresh(c)?;
        if a.all || c.state == "running" || c.state == "paused" {
            list.push(c);
        }
    }
    let id = |c: &Ctr| {
        if a.no_trunc {
            c.id.clone()
        } else {
            short(&c.id).to_string()
        }
    };
    if a.quiet {
        for c in &list {
            println!("{}", id(c));
        }
        return Ok(0);
    }
    let entry = |c: &Ctr| -> Value {
        json!({
            "ID": id(c), "Id": c.id, "Names": c.name, "Image": c.image, "ImageID": c.image_id,
            "Command": c.command.join(" "), "State": c.state, "Status": status_text(c),
            "Created": c.created, "CreatedAt": format::ago(Some(c.created)), "ExitCode": c.exit_code.unwrap_or(0), "Pid": c.pid,
        })
    };
    match a.format.as_deref() {
        Some("json") => println!(
            "{}",
            serde_json::to_string_pretty(&list.iter().map(entry).collect::<Vec<_>>())
                .unwrap_or_default()
        ),
        Some(t) if t != "table" => {
            let t = t.strip_prefix("table ").unwrap_or(t);
            for c in &list {
                println!(
                    "{}",
                    format::template(t, &entry(c)).map_err(Error::invalid)?
                );
            }
        }
        _ => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    let cmd = c.command.join(" ");
                    let cmd = if a.no_trunc || cmd.chars().count() <= 20 {
                        cmd
                    } else {
                        cmd.chars().take(19).collect::<String>() + "…"
                    };
                    vec![
                        id(c),
                        c.image.clone(),
                        format!("\"{cmd}\""),
                        format::ago(Some(c.created)),
                        status_text(c),
                        c.name.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                format::table(
                    &[
                        "CONTAINER ID",
                        "IMAGE",
                        "COMMAND",
                        "CREATED",
                        "STATUS",
                        "NAMES"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(0)
}

pub fn logs(store: &Store, a: LogsArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(&a.container)?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| Error::invalid(format!("--tail {n:?}: a number of lines, or all")))?,
        ),
    };
    ctr::print_logs(&db, &c, tail, a.timestamps, a.follow)?;
    Ok(0)
}

pub fn stop(store: &Store, a: StopArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let mut failed = false;
    for name in &a.containers {
        match db
            .find(name)
            .and_then(|c| db.fresh(c))
            .and_then(|c| ctr::stop(&db, &c, a.time))
        {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}

/// Stops each container (as stop does) and starts it again.
pub fn restart(store: &mut Store, a: StopArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    for name in &a.containers {
        let c = db.fresh(db.find(name)?)?;
        // stop returns once the monitor is gone: then the row is ours.
        ctr::stop(&db, &c, a.time)?;
        let c = db.find(&c.id)?;
        if c.state != "created" {
            ctr::reset_exited(&db, &c)?;
        }
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        println!("{name}");
    }
    Ok(0)
}

pub fn kill(store: &Store, a: KillArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let sig = a.signal.trim_start_matches("SIG").to_string();
    for name in &a.containers {
        let c = db.fresh(db.find(name)?)?;
        if c.state != "running" && c.state != "paused" {
            return Err(Error::invalid(format!("{name}: container is not running")));
        }
        ctr::mark_stopped_by_user(&db, &c.id);
        ctr::signal(&db, &c, &sig)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn rm(store: &mut Store, a: RmArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let mut failed = false;
    for name in &a.containers {
        let c = match db.find(name).and_then(|c| db.fresh(c)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
                continue;
            }
        };
        if let Some(pod) = infra_of(&db, &c) {
            eprintln!("Error: {name}: the infra container of pod {pod}: use pod rm");
            failed = true;
            continue;
        }
        if c.state == "running" || c.state == "paused" || ctr::restarting(&c) {
            if !a.force {
                eprintln!(
                    "Error: {name}: container is running (or restarting): stop it first, or rm -f"
                );
                failed = true;
                continue;
            }
            // SIGKILL, and its monitor gone (no restart of what goes).
            ctr::stop(&db, &c, Some(0))?;
        }
        let c = db.find(&c.id).unwrap_or(c);
        let anonymous = ctr::Settings::load(&db.dir(&c.id)).anonymous_volumes;
        ctr::remove(store, &db, &c)?;
        if a.volumes {
            for v in anonymous {
                crate::volumes::remove(&db, &v)?;
            }
        }
        println!("{}", c.id);
    }
    Ok(if failed { 1 } else { 0 })
}

/// The pod whose infra `c` is.
fn infra_of(db: &Db, c: &Ctr) -> Option<String> {
    crate::pods::find(db, &c.pod)
        .ok()
        .filter(|p| p.infra == c.id)
        .map(|p| p.name)
}

/// `pod ...`.
pub fn pod(store: &mut Store, cmd: PodCommand) -> Result<i32> {
    use crate::pods;
    let db = Db::open(&store.root)?;
    let each = |names: &[String], f: &dyn Fn(&pods::Pod) -> Result<()>| -> Result<i32> {
        let mut failed = false;
        for n in names {
            match pods::find(&db, n).and_then(|p| f(&p).map(|()| p)) {
                Ok(p) => println!("{}", p.id),
                Err(e) => {
                    eprintln!("Error: {e}");
                    failed = true;
                }
            }
        }
        Ok(if failed { 125 } else { 0 })
    };
    match cmd {
        PodCommand::Create {
            name,
            share,
            network,
            publish,
            hostname,
            infra_image,
            label,
            isolation,
            memory,
            cpus,
        } => {
            let isolation = crate::vm::Isolation::parse(isolation.as_deref())?;
            if isolation == crate::vm::Isolation::Vm {
                crate::vm::refuse_for_pod(network.as_deref(), &publish, &share)?;
            } else if memory.is_some() || cpus.is_some() {
                return Err(Error::invalid(
                    "--memory/--cpus on pod create: the size of a VM pod (--isolation vm); a namespace pod's containers take their own",
                ));
            }
            // A VM pod's size: its infra's limits, which the VM is sized from.
            let resources = crate::spec::resource_extras(
                memory.as_deref(),
                None,
                cpus.as_deref(),
                None,
                None,
                None,
            )
            .map_err(Error::invalid)?
            .resources;
            let mut labels = std::collections::BTreeMap::new();
            for l in &label {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                if k.is_empty() {
                    return Err(Error::invalid(format!("--label {l:?}: KEY=VALUE")));
                }
                labels.insert(k.to_string(), v.to_string());
            }
            if network
                .as_deref()
                .is_some_and(|n| n.starts_with("container:"))
            {
                return Err(Error::invalid(
                    "--network container:NAME: a pod's network is its own (none, host, bridge or a network's name)",
                ));
            }
            let spec = pods::Spec {
                share: pods::parse_share(&share)?,
                hostname: hostname.unwrap_or_default(),
                network,
                publish,
                infra_image,
                labels,
                isolation,
                resources,
            };
            let p = pods::create(store, &db, name, spec)?;
            println!("{}", p.id);
            Ok(0)
        }
        PodCommand::Start { pods: names } => each(&names, &|p| pods::start(&db, p)),
        PodCommand::Stop { time, pods: names } => each(&names, &|p| pods::stop(&db, p, time)),
        PodCommand::Kill {
            signal,
            pods: names,
        } => {
            let sig = signal.trim_start_matches("SIG").to_string();
            if !is_signal(&sig) {
                return Err(Error::invalid(format!("--signal {signal:?}: not a signal")));
            }
            each(&names, &|p| pods::kill(&db, p, &sig))
        }
        PodCommand::Restart { time, pods: names } => each(&names, &|p| {
            pods::stop(&db, p, time)?;
            pods::start(&db, p)
        }),
        PodCommand::Rm { force, pods: names } => {
            let mut failed = false;
            for n in &names {
                match pods::find(&db, n)
                    .and_then(|p| pods::remove(store, &db, &p, force).map(|()| p))
                {
                    Ok(p) => println!("{}", p.id),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 125 } else { 0 })
        }
        PodCommand::Ps { quiet, format } => {
            let list = pods::all(&db)?;
            let mut docs = vec![];
            let mut rows = vec![];
            for p in &list {
                let members = pods::members(&db, p)?;
                let state = pods::state(p, &members);
                docs.push(json!({"Id": p.id, "Name": p.name, "Status": state, "Created": format::rfc3339(p.created, None), "InfraId": p.infra, "NumberOfContainers": members.len(), "Labels": p.spec.labels}));
                rows.push(vec![
                    p.id[..12].to_string(),
                    p.name.clone(),
                    state.to_string(),
                    format::ago(Some(p.created)),
                    p.infra[..12].to_string(),
                    members.len().to_string(),
                ]);
            }
            match (quiet, format.as_str()) {
                (true, _) => list.iter().for_each(|p| println!("{}", &p.id[..12])),
                (false, "json") => println!(
                    "{}",
                    serde_json::to_string_pretty(&docs).unwrap_or_default()
                ),
                (false, "table") => print!(
                    "{}",
                    format::table(
                        &[
                            "POD ID",
                            "NAME",
                            "STATUS",
                            "CREATED",
                            "INFRA ID",
                            "# OF CONTAINERS"
                        ],
                        &rows
                    )
                ),
                (false, other) => {
                    return Err(Error::invalid(format!("--format {other:?}: table or json")))
                }
            }
            Ok(0)
        }
        PodCommand::Inspect { pods: names } => {
            let docs = names
                .iter()
                .map(|n| pods::find(&db, n).and_then(|p| pods::inspect_doc(&db, &p)))
                .collect::<Result<Vec<_>>>()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&docs).unwrap_or_default()
            );
            Ok(0)
        }
        PodCommand::Top { pod } => {
            let p = pods::find(&db, &pod)?;
            let running: Vec<Ctr> = pods::members(&db, &p)?
                .into_iter()
                .filter(|c| c.state == "running" && c.id != p.infra)
                .collect();
            if running.is_empty() {
                return Err(Error::invalid(format!("pod {pod}: nothing in it runs")));
            }
            for c in running {
                println!("{}:", c.name);
                top(store, &c.id)?;
            }
            Ok(0)
        }
        PodCommand::Stats { no_stream, pod } => {
            let p = pods::find(&db, &pod)?;
            let names: Vec<String> = pods::members(&db, &p)?
                .into_iter()
                .filter(|c| c.state == "running")
                .map(|c| c.name)
                .collect();
            if names.is_empty() {
                return Err(Error::invalid(format!("pod {pod}: nothing in it runs")));
            }
            stats(store, &names, no_stream)
        }
        PodCommand::Exists { pod } => Ok(if pods::find(&db, &pod).is_ok() { 0 } else { 1 }),
        PodCommand::Prune { force: _ } => {
            for p in pods::all(&db)? {
                let members = pods::members(&db, &p)?;
                if members
                    .iter()
                    .all(|c| c.state != "running" && c.state != "paused")
                {
                    pods::remove(store, &db, &p, false)?;
                    println!("{}", p.id);
                }
            }
            Ok(0)
        }
    }
}

pub fn exec(store: &Store, a: ExecArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(&a.container)?)?;
    ctr::exec(
        &db,
        &c,
        &ctr::ExecOpts {
            argv: &a.command,
            env: &a.env,
            user: a.user.as_deref(),
            workdir: a.workdir.as_deref(),
            tty: a.tty,
            interactive: a.interactive,
            detach: a.detach,
        },
    )
}

/// `port`: the container's published ports, Docker's lines.
pub fn port(store: &Store, name: &str) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(name)?;
    for m in crate::net::ports_of(&db.dir(&c.id)) {
        println!("{}", m.describe());
    }
    Ok(0)
}

/// `volume create/ls/inspect/rm/prune`.
pub fn volume(store: &Store, cmd: VolumeCommand) -> Result<i32> {
    use crate::volumes;
    let db = Db::open(&store.root)?;
    match cmd {
        VolumeCommand::Create { name, label } => {
            let name = name.unwrap_or_else(volumes::anonymous_name);
            let mut labels = serde_json::Map::new();
            for l in &label {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                if k.is_empty() {
                    return Err(Error::invalid(format!("--label {l:?}: KEY=VALUE")));
                }
                labels.insert(k.to_string(), json!(v));
            }
            volumes::create(&db, &name, &Value::Object(labels), false)?;
            println!("{name}");
        }
        VolumeCommand::Ls { quiet } => {
            if !quiet {
                println!("DRIVER    VOLUME NAME");
            }
            for v in volumes::list(&db) {
                match quiet {
                    true => println!("{v}"),
                    false => println!("local     {v}"),
                }
            }
        }
        VolumeCommand::Inspect { volumes: names } => {
            let docs = names
                .iter()
                .map(|n| volumes::inspect(&db, n))
                .collect::<Result<Vec<_>>>()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&docs).unwrap_or_default()
            );
        }
        VolumeCommand::Rm { volumes: names } => {
            for n in names {
                volumes::remove(&db, &n)?;
                println!("{n}");
            }
        }
        VolumeCommand::Prune { all, force: _ } => {
            let used: Vec<String> = volumes::users(&db).into_iter().map(|(v, _)| v).collect();
            for v in volumes::list(&db) {
                let anonymous = volumes::meta(&db, &v)?["Anonymous"] == true;
                if !used.contains(&v) && (all || anonymous) {
                    volumes::remove(&db, &v)?;
                    println!("{v}");
                }
            }
        }
    }
    Ok(0)
}

/// `network create/ls/inspect/rm/prune`.
pub fn network(store: &Store, cmd: NetworkCommand) -> Result<i32> {
    use skiff_net::network::{CreateOptions, Network};
    let db = Db::open(&store.root)?;
    let dir = crate::net::networks_dir(&db);
    let err = |e: skiff_net::Error| Error::invalid(e.to_string());
    // Which networks containers of this store are on.
    let used = || -> Vec<String> {
        db.all()
            .unwrap_or_default()
            .iter()
            .flat_map(|c| crate::net::networks_of(&db.dir(&c.id)))
            .collect()
    };
    match cmd {
        NetworkCommand::Create {
            name,
            subnet,
            gateway,
            internal,
        } => {
            let opts = CreateOptions {
                subnet: subnet.as_deref(),
                gateway: gateway.as_deref(),
                internal,
            };
            let n = Network::create(&dir, &name, &opts).map_err(err)?;
            // The engine's own path: its bridge and rules now, so they are
            // there while the network is (rootless has no bridges).
            if let Some(plan) = skiff_net::native::plan(&n).filter(|_| !skiff_image::rootless()) {
                if let Err(e) = skiff_net::native::ensure_network(&plan) {
                    let _ = n.remove();
                    return Err(err(e));
                }
            }
            println!("{}", n.name);
        }
        NetworkCommand::Connect {
            network,
            container,
            ip,
        } => {
            let c = db.find(&container)?;
            let net = Network::load(&dir, &network)
                .map_err(|e| Error::invalid(format!("{network}: {e}")))?;
            crate::net::connect(&db, &c, &net, ip.as_deref())?;
        }
        NetworkCommand::Disconnect {
            network,
            container,
            force: _,
        } => {
            let c = db.find(&container)?;
            crate::net::disconnect(&db, &c, &network)?;
        }
        NetworkCommand::Ls { quiet } => {
            let nets = Network::list(&dir).map_err(err)?;
            if quiet {
                for n in nets {
                    println!("{}", n.name);
                }
            } else {
                println!("{:<20} {:<16} {:<18} INTERNAL", "NAME", "BRIDGE", "SUBNET");
                for n in nets {
                    println!(
                        "{:<20} {:<16} {:<18} {}",
                        n.name,
                        n.bridge().unwrap_or_default(),
                        n.subnet().unwrap_or_default(),
                        n.internal()
                    );
                }
            }
        }
        NetworkCommand::Inspect { networks } => {
            let docs = networks
                .iter()
                .map(|n| Network::load(&dir, n).map(|n| n.inspect()).map_err(err))
                .collect::<Result<Vec<_>>>()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&docs).unwrap_or_default()
            );
        }
        NetworkCommand::Rm { networks } => {
            let used = used();
            for name in networks {
                if used.contains(&name) {
                    return Err(Error::invalid(format!(
                        "network {name}: containers use it: remove them first"
                    )));
                }
                Network::load(&dir, &name)
                    .and_then(|n| n.remove())
                    .map_err(err)?;
                println!("{name}");
            }
        }
        NetworkCommand::Prune { force: _ } => {
            let used = used();
            for n in Network::list(&dir).map_err(err)? {
                if n.name != skiff_net::network::DEFAULT && !used.contains(&n.name) {
                    n.remove().map_err(err)?;
                    println!("{}", n.name);
                }
            }
        }
    }
    Ok(0)
}

/// `attach`: this terminal to the container's, until it ends (its exit
/// code) or ctrl-p ctrl-q (0, the container runs on).
pub fn attach(store: &Store, name: &str, stdin: bool, detach_keys: &str) -> Result<i32> {
    let keys = crate::attach::parse_detach_keys(detach_keys)?;
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(name)?)?;
    if c.state != "running" {
        return Err(Error::invalid(format!(
            "{name}: the container is not running: cannot attach to it"
        )));
    }
    let tty = ctr::has_terminal(&db, &c);
    attached(
        &db,
        &c.id,
        crate::attach::attach(&db.dir(&c.id), tty, stdin, &keys)?,
    )
}

/// The code an attach ends with: 0 when detached, else the container's
/// (as the monitor said it, or as the store has it).
fn attached(db: &Db, id: &str, ended: crate::attach::Ended) -> Result<i32> {
    match ended {
        crate::attach::Ended::Detached => Ok(0),
        crate::attach::Ended::Container(Some(code)) => Ok(code),
        crate::attach::Ended::Container(None) => {
            Ok(ctr::wait_exit(db, id, Some(Duration::from_secs(10)))?.unwrap_or(0) as i32)
        }
    }
}

pub fn wait(store: &Store, a: WaitArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    for name in &a.containers {
        let c = db.find(name)?;
        let code = ctr::wait_exit(&db, &c.id, None)?;
        println!("{}", code.unwrap_or(-1));
    }
    Ok(0)
}

pub fn commit(store: &mut Store, a: CommitArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(&a.container)?;
    let name = a.image.as_deref().map(Reference::parse_local).transpose()?;
    let upper = db.dir(&c.id).join("upper");
    let created = format::rfc3339(format::now(), None);
    let id = skiff_image::commit::commit(
        store,
        &c.image_id,
        &upper,
        name.as_ref(),
        &created,
        a.message.as_deref(),
    )?;
    println!("{}", id.trim_start_matches("sha256:"));
    Ok(0)
}

pub fn pause(store: &Store, a: StartArgs, freeze: bool) -> Result<i32> {
    let db = Db::open(&store.root)?;
    for name in &a.containers {
        let c = db.fresh(db.find(name)?)?;
        ctr::pause(&db, &c, freeze)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn rename(store: &Store, old: &str, new: &str) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(old)?;
    ctr::rename(&db, &c, new)?;
    Ok(0)
}

pub fn top(store: &Store, name: &str) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(name)?)?;
    if c.state != "running" && c.state != "paused" {
        return Err(Error::invalid(format!("{name}: container is not running")));
    }
    if ctr::is_vm(&db, &c) {
        return Err(Error::invalid(format!(
            "top {name}: its processes are its VM's guest's, not the host's; use exec {name} ps"
        )));
    }
    let o = ctr::oci(&db, &c.id)
        .args(["ps", &c.id, "-o", "user,pid,ppid,etime,time,args"])
        .output()
        .map_err(|e| Error::io("running skiff-oci ps", e))?;
    if !o.status.success() {
        return Err(Error::invalid(format!(
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    print!("{}", String::from_utf8_lossy(&o.stdout));
    Ok(0)
}

/// `container prune`: every container that is not running.
pub fn prune(store: &mut Store) -> Result<i32> {
    let db = Db::open(&store.root)?;
    for c in db.all()? {
        let c = db.fresh(c)?;
        // A pod's infra goes with its pod (pod rm, pod prune).
        if (c.state == "exited" || c.state == "created") && infra_of(&db, &c).is_none() {
            ctr::remove(store, &db, &c)?;
            println!("{}", c.id);
        }
    }
    Ok(0)
}

/// One stats sample of a container from skiff-oci: (cpu ns, memory bytes,
/// memory limit, pids).
fn sample(db: &Db, c: &Ctr) -> Option<(u64, u64, u64, u64)> {
    // A VM container's cgroup is the guest's: the agent reads it, in the
    // same form as skiff-oci's `events --stats` data.
    let v = if ctr::is_vm(db, c) {
        json!({"data": crate::vm::stats(db, c)?})
    } else {
        let o = ctr::oci(db, &c.id)
            .args(["events", "--stats", &c.id])
            .output()
            .ok()?;
        serde_json::from_slice(o.stdout.split(|b| *b == b'\n').next()?).ok()?
    };
    let d = &v["data"];
    let n = |p: &str| d.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
    Some((
        n("/cpu/usage/total"),
        n("/memory/usage/usage"),
        n("/memory/usage/limit"),
        n("/pids/current"),
    ))
}

fn mib(n: u64) -> String {
    let f = n as f64;
    if f >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}GiB", f / (1024.0 * 1024.0 * 1024.0))
    } else if f >= 1024.0 * 1024.0 {
        format!("{:.2}MiB", f / (1024.0 * 1024.0))
    } else {
        format!("{:.2}KiB", f / 1024.0)
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// `stats`: CPU over a 200 ms window, memory against its limit (or the
/// host's memory), processes; Docker's columns.
pub fn stats(store: &Store, names: &[String], no_stream: bool) -> Result<i32> {
    let db = Db::open(&store.root)?;
    loop {
        let list: Vec<Ctr> = if names.is_empty() {
            db.all()?
                .into_iter()
                .filter_map(|c| db.fresh(c).ok())
                .filter(|c| c.state == "running")
                .collect()
        } else {
            names
                .iter()
                .map(|n| db.find(n).and_then(|c| db.fresh(c)))
                .collect::<Result<_>>()?
        };
        let first: Vec<_> = list.iter().map(|c| sample(&db, c)).collect();
        let t0 = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(200));
        let host = host_memory();
        let rows: Vec<Vec<String>> = list
            .iter()
            .zip(first)
            .map(|(c, a)| {
                let b = sample(&db, c);
                let (cpu, mem, limit, pids) = match (a, b) {
                    (Some(a), Some(b)) => {
                        let ns = t0.elapsed().as_nanos().max(1) as f64;
                        (b.0.saturating_sub(a.0) as f64 / ns * 100.0, b.1, b.2, b.3)
                    }
                    _ => (0.0, 0, 0, 0),
                };
                let limit = if limit == 0 || limit >= 1 << 62 || (host > 0 && limit > host) {
                    host
                } else {
                    limit
                };
                vec![
                    short(&c.id).to_string(),
                    c.name.clone(),
                    format!("{cpu:.2}%"),
                    format!("{} / {}", mib(mem), mib(limit)),
                    format!(
                        "{:.2}%",
                        if limit > 0 {
                            mem as f64 / limit as f64 * 100.0
                        } else {
                            0.0
                        }
                    ),
                    pids.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            format::table(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "PIDS"
                ],
                &rows
            )
        );
        if no_stream {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(800));
    }
}

/// `diff`: the container's upper dir against its image's layers.
pub fn diff(store: &Store, name: &str) -> Result<i32> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let db = Db::open(&store.root)?;
    let c = db.find(name)?;
    let upper = db.dir(&c.id).join("upper");
    let lowers = skiff_image::mount::lower_dirs(store, &c.image_id)?;
    let in_image = |rel: &str| {
        lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok())
    };
    let mut out = vec![];
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = upper.join(&rel);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let relp = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.file_type().is_char_device() && m.rdev() == 0 {
                out.push(format!("D /{relp}"));
                continue;
            }
            out.push(format!(
                "{} /{relp}",
                if in_image(&relp) { "C" } else { "A" }
            ));
            if m.is_dir() {
                stack.push(relp);
            }
        }
    }
    out.sort_by(|a, b| a[2..].cmp(&b[2..]));
    for l in out {
        println!("{l}");
    }
    Ok(0)
}
