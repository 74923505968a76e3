//! The container commands: flags in, containers.rs's steps, output out.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_image::reference::Reference;
use skiff_image::store::Store;
use skiff_image::{pull, Error, Result};

use crate::cli::*;
use crate::containers::{self as ctr, RunOpts};
use crate::db::{Ctr, Db};
use crate::format;

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `run` (and `create`, which stops before starting).
pub fn run(store: &mut Store, mut a: RunArgs, create_only: bool) -> Result<i32> {
    // Flags first: a bad one fails before anything is pulled or made.
    a.rm |= a.rmi;
    if a.no_hosts && !a.add_host.is_empty() {
        return Err(Error::invalid(
            "--no-hosts and --add-host conflict: the entries would have no /etc/hosts to go to",
        ));
    }
    if a.detach && !a.attach.is_empty() {
        return Err(Error::invalid(
            "--attach and --detach conflict: a detached container has nothing attached",
        ));
    }
    let (stdin, echo) = attach_streams(&a)?;
    if let Some(f) = &a.pod_id_file {
        if a.pod.is_some() {
            return Err(Error::invalid("--pod and --pod-id-file conflict: give one"));
        }
        let id =
            std::fs::read_to_string(f).map_err(|e| Error::at(f, "--pod-id-file: reading", e))?;
        a.pod = Some(id.trim().to_string());
    }
    if a.init_path.is_some() && !a.init {
        return Err(Error::invalid(
            "--init-path without --init: there is no init to replace",
        ));
    }
    if let Some(p) = &a.init_path {
        if !std::fs::metadata(p).is_ok_and(|m| m.is_file()) {
            return Err(Error::invalid(format!(
                "--init-path {}: not a file",
                p.display()
            )));
        }
    }
    for m in &a.env_merge {
        if m.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(Error::invalid(format!("--env-merge {m:?}: NAME=VALUE")));
        }
    }
    let rootfs = given_rootfs(&a)?;
    let extras = crate::spec::extras(&a).map_err(Error::invalid)?;
    let log_limits = crate::stdio::LogLimits::parse(a.log_driver.as_deref(), &a.log_opt)?;
    let mut settings = run_settings(&a)?;
    let db = Db::open(&store.root)?;
    settings.requires = a
        .requires
        .iter()
        .flat_map(|r| r.split(','))
        .filter(|r| !r.is_empty())
        .map(|r| {
            db.find(r)
                .map(|c| c.id)
                .map_err(|_| Error::invalid(format!("--requires {r}: no such container")))
        })
        .collect::<Result<_>>()?;
    // A VM pod's members run in its VM: --isolation vm is implied.
    let pod = match &a.pod {
        Some(p) => Some(crate::pods::find(&db, p)?),
        None => None,
    };
    if let Some(p) = &pod {
        match (settings.isolation, p.spec.isolation) {
            (_, crate::db::Isolation::Vm) => {
                settings.isolation = crate::db::Isolation::Vm;
                settings.vm_pod = Some(p.infra.clone());
            }
            (crate::db::Isolation::Vm, _) => {
                return Err(Error::invalid(format!(
                "--pod {} with --isolation vm: the pod is not a VM pod (pod create --isolation vm)",
                p.name
            )))
            }
            _ => {}
        }
    }
    let vm = settings.isolation == crate::db::Isolation::Vm;
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
    // Podman's: a cidfile that exists may be another container's.
    if let Some(f) = a.cidfile.as_ref().filter(|f| f.exists()) {
        return Err(Error::invalid(format!(
            "--cidfile {}: the file exists (another container's?): remove it first",
            f.display()
        )));
    }
    if a.sig_proxy.is_some() && (a.detach || create_only) {
        return Err(Error::invalid(
            "--sig-proxy: a run that returns at once (-d, create) has no signals to pass on",
        ));
    }
    skiff_image::trace::mark("flags checked, store open");
    // The image, pulled when the store lacks it (Docker's default), or
    // has it for another platform than --platform asks (Podman's), or as
    // --pull says.
    let mut opts = crate::images::registry_options(&a.registry, a.platform.as_deref())?;
    crate::images::platform_parts(&mut opts, a.arch.clone(), a.os.clone(), a.variant.clone())?;
    let found = store
        .find(a.image())
        .ok()
        .filter(|_| rootfs.is_none())
        .filter(|img| {
            let Some(want) = &opts.platform else {
                return true;
            };
            let c = skiff_image::manifest::parse_config(&img.config).unwrap_or_default();
            let have = skiff_image::manifest::Platform {
                os: c.os,
                architecture: c.architecture,
                variant: c.variant,
            };
            have.rank(want).is_some()
        });
    let pull_now = |store: &mut Store| -> Result<String> {
        let pulled = if a.quiet {
            pull::pull_typed(store, a.image(), &opts, &pull::Quiet)?
        } else {
            pull::pull_typed(store, a.image(), &opts, &crate::progress::Reporter::new())?
        };
        crate::events::image(&store.root, "pull", &pulled.id, &pulled.name);
        Ok(pulled.name)
    };
    let image = match (a.pull.as_deref().unwrap_or("missing"), found.is_some()) {
        _ if rootfs.is_some() => a.image().to_string(),
        ("always", _) => pull_now(store)?,
        ("newer", have) => match pull_now(store) {
            Ok(name) => name,
            Err(e) if have => {
                eprintln!(
                    "Warning: --pull newer: {e}: using the store's {}",
                    a.image()
                );
                a.image().to_string()
            }
            Err(e) => return Err(e),
        },
        (_, true) => a.image().to_string(),
        ("never", false) => return Err(Error::NoImage(a.image().to_string())),
        (_, false) => {
            if !a.quiet {
                eprintln!("Unable to find image '{}' locally", a.image());
            }
            pull_now(store)?
        }
    };
    // --replace: a container of that name goes first, running or not.
    if let (true, Some(name)) = (a.replace, &a.name) {
        match db.find(name) {
            Ok(old) => {
                let old = db.fresh(old)?;
                if old.state == "running"
                    || old.state == "paused"
                    || crate::db::restarting(&old)
                    || crate::db::starting(&old)
                {
                    ctr::stop(&db, &old, Some(0))?;
                }
                let old = db.find(&old.id)?;
                ctr::remove(store, &db, &old)?;
            }
            Err(Error::NoContainer(_)) => {}
            Err(e) => return Err(e),
        }
    }
    // Podman's order: the image's, the proxy's, --env-host's,
    // --env-file's, -e's.
    let mut env = proxy_env(a.http_proxy.unwrap_or(true));
    if a.env_host {
        env.extend(std::env::vars().map(|(k, v)| format!("{k}={v}")));
    }
    env.extend(env_files(&a.env_file)?);
    env.extend(a.env.iter().cloned());

    let opts = RunOpts {
        extras,
        name: a.name.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        entrypoint: a.entrypoint.clone(),
        hostname: a.hostname.clone(),
        network: a.network.clone(),
        tty: a.tty,
        rm: a.rm,
        read_only: a.read_only,
        init: a.init,
        init_path: a.init_path.clone(),
        rootfs,
        env_merge: a.env_merge.clone(),
        log_limits,
        settings: crate::db::Settings {
            interactive: a.interactive && a.detach,
            ..settings
        },
        stop_signal: a.stop_signal.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        expose: a.expose.clone(),
        health: crate::health::Flags {
            cmd: a.health_cmd.clone(),
            interval: a.health_interval.clone(),
            timeout: a.health_timeout.clone(),
            start_period: a.health_start_period.clone(),
            retries: a.health_retries,
            on_failure: a.health_on_failure.clone(),
            disabled: a.no_healthcheck,
        },
        pod: match &pod {
            Some(p) => Some(crate::pods::join(&db, p)?),
            None => None,
        },
        env_rules: crate::spec::EnvRules {
            defaults: match a.unsetenv_all {
                true => crate::spec::EnvDefaults::Nothing,
                false => crate::spec::EnvDefaults::Podman,
            },
            no_image: a.unsetenv_all,
            unset: a.unsetenv.clone(),
        },
        no_hosts: a.no_hosts,
    };
    skiff_image::trace::mark("image found");
    let c = match ctr::create(store, &db, &image, a.command(), &opts) {
        // A user or group the image does not have: the program cannot be
        // run as asked, Podman's 126 (create alone: 125).
        Err(Error::Invalid(msg)) if !create_only && msg.starts_with("--user ") => {
            eprintln!("Error: {msg}");
            return Ok(126);
        }
        r => r?,
    };
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &c.id).map_err(|e| Error::at(f, "--cidfile: writing", e))?;
    }
    if !create_only {
        start_required(&db, &c.id).inspect_err(|_| {
            let _ = ctr::remove(store, &db, &c);
        })?;
    }
    if create_only {
        println!("{}", c.id);
        return Ok(0);
    }
    if a.detach {
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            ctr::print_start_error(&db, &c.id);
            // It never ran: the monitor recorded why in the exit code.
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        println!("{}", c.id);
        return Ok(0);
    }
    if a.sig_proxy.unwrap_or(true) {
        proxy_signals(&db, &c.id);
    }
    if a.tty {
        return run_attached(&db, &c.id, stdin, echo, &detach_keys);
    }
    ctr::monitor(store, &db, &c.id, echo, stdin)
}

/// `--rootfs PATH[:O]`: the directory, by its real path (runtimes refuse
/// a root reached through a link).
fn given_rootfs(a: &RunArgs) -> Result<Option<ctr::GivenRootfs>> {
    if !a.rootfs {
        return Ok(None);
    }
    let given = a.image();
    let (path, overlay) = match given.strip_suffix(":O") {
        Some(p) => (p, true),
        None => (given, false),
    };
    let refuse = |why: &str| Err(Error::invalid(format!("--rootfs {given}: {why}")));
    let real = match std::fs::canonicalize(path) {
        Ok(p) if p.is_dir() => p,
        _ => return refuse("not a directory"),
    };
    if real == std::path::Path::new("/") {
        return refuse("the host's root is no container's");
    }
    if a.rmi || a.isolation.as_deref() == Some("vm") || a.userns.is_some() || !a.uidmap.is_empty() {
        return refuse("--rmi, --isolation vm and user namespaces need an image");
    }
    Ok(Some(ctr::GivenRootfs {
        path: real,
        overlay,
    }))
}

/// `--iidfile`: the image's id, `sha256:HEX`, as Docker and Podman write it.
fn write_iidfile(file: Option<&std::path::Path>, id: &str) -> Result<()> {
    let Some(f) = file else { return Ok(()) };
    let id = format!("sha256:{}", id.trim_start_matches("sha256:"));
    std::fs::write(f, id).map_err(|e| Error::at(f, "--iidfile: writing", e))
}

/// --http-proxy (on by default, as Podman's): the proxy variables this
/// command has, in either case.
fn proxy_env(on: bool) -> Vec<String> {
    const NAMES: [&str; 4] = ["http_proxy", "https_proxy", "ftp_proxy", "no_proxy"];
    let names = NAMES.iter().flat_map(|n| [n.to_string(), n.to_uppercase()]);
    names
        .filter(|_| on)
        .filter_map(|n| std::env::var(&n).ok().map(|v| format!("{n}={v}")))
        .collect()
}

/// `--attach` (-a): the streams a foreground run connects, stdin only with
/// -i; without it, all of them (stdin with -i), as Docker's and Podman's.
fn attach_streams(a: &RunArgs) -> Result<(bool, crate::attach::Echo)> {
    if a.attach.is_empty() {
        return Ok((a.interactive, crate::attach::Echo::ALL));
    }
    let mut echo = crate::attach::Echo::NONE;
    let mut stdin = false;
    for s in &a.attach {
        match s.to_ascii_lowercase().as_str() {
            "stdin" => stdin = true,
            "stdout" => echo.stdout = true,
            "stderr" => echo.stderr = true,
            _ => {
                return Err(Error::invalid(format!(
                    "--attach {s:?}: stdin, stdout or stderr"
                )))
            }
        }
    }
    Ok((stdin && a.interactive, echo))
}

/// --sig-proxy (on by default, as Podman's and Docker's): the signals this
/// foreground run gets go on to the container, so that `kill` of the
/// command, or a terminal's Ctrl-C without -t, reaches the container
/// instead of leaving it without its monitor. All but those that cannot
/// be caught and those that are this process's own business: CHLD, PIPE,
/// URG and WINCH (a -t run's terminal size). They are blocked in this
/// thread, and so in every thread it starts from here on (the processes
/// it spawns start with none blocked: std resets the mask), and one
/// thread takes them with sigwait.
fn proxy_signals(db: &Db, id: &str) {
    let own = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGPIPE,
        libc::SIGURG,
        libc::SIGWINCH,
    ];
    // SAFETY: a sigset_t filled by sigemptyset/sigaddset; the mask of
    // this thread changed with pthread_sigmask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        // 32 and 33 are glibc's own (its threads' cancellation).
        for sig in (1..32).chain(libc::SIGRTMIN()..=libc::SIGRTMAX()) {
            if !own.contains(&sig) {
                libc::sigaddset(&mut set, sig);
            }
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let (root, id) = (db.root.clone(), id.to_string());
    std::thread::spawn(move || {
        loop {
            let mut sig = 0;
            // SAFETY: waits for one of `set`, blocked in every thread.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                return;
            }
            // Opened here, not up front: most runs get no signal.
            let Ok(db) = Db::open(&root) else {
                continue;
            };
            if let Ok(c) = db.find(&id) {
                if let Err(e) = ctr::signal(&db, &c, &sig.to_string()) {
                    eprintln!("skiff: --sig-proxy: signal {sig}: {e}");
                }
            }
        }
    });
}

/// `build`: flags checked, then the build; the image id on stdout.
pub fn build(store: &mut Store, a: BuildArgs) -> Result<i32> {
    let kv = |flag: &str, v: &str| -> Result<(String, String)> {
        match v.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::invalid(format!("{flag} {v:?}: expected KEY=VALUE"))),
        }
    };
    if a.squash {
        return Err(Error::invalid(
            "--squash: not supported (the final stage's layers as one on its base); --squash-all makes the whole image one layer",
        ));
    }
    let pull = match a.pull.as_deref().unwrap_or("missing") {
        "always" | "true" => crate::build::Pull::Always,
        "missing" | "false" => crate::build::Pull::Missing,
        "never" => crate::build::Pull::Never,
        p => {
            return Err(Error::invalid(format!(
                "--pull={p}: expected always, missing, never, true or false"
            )))
        }
    };
    if let Some(l) = &a.layers {
        if l.parse::<bool>().is_err() {
            return Err(Error::invalid(format!(
                "--layers={l}: expected true or false"
            )));
        }
    }
    if let Some(f) = &a.format {
        if !matches!(f.as_str(), "oci" | "docker") {
            return Err(Error::invalid(format!(
                "--format {f}: expected oci or docker"
            )));
        }
    }
    if let Some(p) = &a.platform {
        let host = skiff_image::manifest::Platform::host();
        let asked = skiff_image::manifest::Platform::parse(p)?;
        let same = asked.os == host.os
            && asked.architecture == host.architecture
            && (asked.variant.is_none() || asked.variant == host.variant);
        if !same {
            return Err(Error::invalid(format!(
                "--platform {p}: only this machine's platform ({}/{}) is built here",
                host.os, host.architecture
            )));
        }
    }
    let mut build_args = vec![];
    // --build-arg-file first: a --build-arg of the same name wins (the
    // last value of a name is taken).
    for f in &a.build_arg_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| Error::at(f, "--build-arg-file: reading", e))?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            build_args.push(kv("--build-arg-file", line)?);
        }
    }
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
    let mut secrets = vec![];
    for v in &a.secret {
        let s = crate::build::Secret::parse(v).map_err(Error::invalid)?;
        // Read when a RUN mounts it; a missing file is told now.
        if let crate::build::SecretSource::File(p) = &s.source {
            std::fs::metadata(p).map_err(|e| Error::at(p, &format!("--secret id={}", s.id), e))?;
        }
        secrets.push(s);
    }
    let o = crate::build::Options {
        context: a.context.clone(),
        file: a.file.clone(),
        tags: a.tags.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull,
        network: a.network.clone(),
        no_hosts: a.no_hosts,
        labels,
        annotations: a
            .annotation
            .iter()
            .map(|v| kv("--annotation", v))
            .collect::<Result<_>>()?,
        squash_all: a.squash_all,
        secrets,
        quiet: a.quiet,
        registry: a.registry.clone(),
    };
    let id = match crate::build::build(store, &o) {
        Ok(id) => id,
        // A failing RUN's code is the build's (Podman's); the message as
        // every error's.
        Err(f) if f.exit_code != 125 => {
            eprintln!("Error: {}", f.error);
            return Ok(f.exit_code);
        }
        Err(f) => return Err(f.error),
    };
    // Podman's: the id as the name, no id.
    crate::events::image(&store.root, "build", "", id.trim_start_matches("sha256:"));
    write_iidfile(a.iidfile.as_deref(), &id)?;
    if a.quiet {
        println!("{}", id.trim_start_matches("sha256:"));
    }
    Ok(0)
}

/// --restart, --stop-timeout, --label; --stop-signal checked.
fn run_settings(a: &RunArgs) -> Result<crate::db::Settings> {
    let restart = match a.restart.as_deref() {
        None => crate::db::RestartPolicy::default(),
        Some(r) => crate::db::RestartPolicy::parse(r)?,
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
    let labels = labels_of(&a.label_file, &a.label)?;
    Ok(crate::db::Settings {
        restart,
        stop_timeout: a.stop_timeout,
        labels,
        interactive: false,
        // Resolved at create.
        secret_env: Vec::new(),
        // Resolved once the store is open.
        requires: Vec::new(),
        runtime: match &a.runtime {
            None => None,
            Some(r) => Some(find_runtime(r)?),
        },
        anonymous_volumes: Vec::new(),
        volumes_from: a.volumes_from.clone(),
        extra_hosts: crate::net::extra_hosts(&a.add_host)?,
        dns: crate::net::dns_servers(&a.dns)?,
        dns_search: crate::net::dns_words("--dns-search", &a.dns_search)?,
        dns_options: crate::net::dns_words("--dns-option", &a.dns_option)?,
        ip: a.ip.clone(),
        // Made at create, from the image's and these.
        config: None,
        mac_address: match &a.mac_address {
            Some(m) => Some(crate::net::check_mac(m)?),
            None => None,
        },
        isolation: crate::db::Isolation::parse(a.isolation.as_deref())?,
        vm_pod: None,
        // Resolved at create, over the image's.
        exposed_ports: Vec::new(),
        network_aliases: aliases(&a.network_alias)?,
        pidfile: pidfile(a.pidfile.as_deref())?,
        timeout: a.timeout.filter(|t| *t > 0),
        health: None,
        rmi: a.rmi.then(|| a.image().to_string()),
    })
}

/// `--label KEY=VALUE`s (KEY alone: an empty value) as a JSON object,
/// as volumes, networks and secrets keep them.
fn label_map(given: &[String]) -> Result<serde_json::Map<String, Value>> {
    let mut labels = serde_json::Map::new();
    for l in given {
        match l.split_once('=').unwrap_or((l, "")) {
            ("", _) => return Err(Error::invalid(format!("--label {l:?}: KEY=VALUE"))),
            (k, v) => labels.insert(k.to_string(), json!(v)),
        };
    }
    Ok(labels)
}

/// `--label-file`s' KEY=VALUE lines (# comments, blank lines), then
/// `--label`s, which win.
fn labels_of(
    files: &[std::path::PathBuf],
    given: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut labels = std::collections::BTreeMap::new();
    let mut all: Vec<(String, String)> = vec![];
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::invalid(format!("--label-file {}: {e}", file.display())))?;
        let lines = text.lines().map(str::trim);
        let lines = lines.filter(|l| !l.is_empty() && !l.starts_with('#'));
        all.extend(lines.map(|l| (format!("--label-file {}", file.display()), l.to_string())));
    }
    all.extend(given.iter().map(|l| ("--label".to_string(), l.clone())));
    for (flag, l) in &all {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(Error::invalid(format!("{flag}: {l:?}: KEY=VALUE")));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

/// --pidfile: made absolute (the monitor runs elsewhere); its directory
/// must be there.
fn pidfile(given: Option<&std::path::Path>) -> Result<Option<std::path::PathBuf>> {
    let Some(p) = given else {
        return Ok(None);
    };
    let p = std::env::current_dir()
        .map_err(|e| Error::io("--pidfile: the current directory", e))?
        .join(p);
    if p.file_name().is_none() || !p.parent().is_some_and(|d| d.is_dir()) {
        return Err(Error::invalid(format!(
            "--pidfile {}: a file in a directory that exists",
            p.display()
        )));
    }
    Ok(Some(p))
}

/// --network-alias names: a host name's letters (letters, digits, '-',
/// '_', '.'), which /etc/hosts can hold.
fn aliases(given: &[String]) -> Result<Vec<String>> {
    given
        .iter()
        .map(|a| {
            let ok = !a.is_empty()
                && !a.starts_with(['-', '.'])
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            match ok {
                true => Ok(a.clone()),
                false => Err(Error::invalid(format!(
                    "--network-alias {a:?}: a name of letters, digits, '-', '_' and '.'"
                ))),
            }
        })
        .collect()
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
fn run_attached(
    db: &Db,
    id: &str,
    stdin: bool,
    out: crate::attach::Echo,
    keys: &[u8],
) -> Result<i32> {
    let dir = db.dir(id);
    std::fs::write(dir.join(crate::db::ATTACH_FIRST), b"")
        .map_err(|e| Error::at(&dir, "marking the run as attached", e))?;
    let mut monitor = ctr::spawn_monitor(db, id)?;
    // The monitor serves attach.sock first thing; bounded, and not past
    // its end.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dir.join("attach.sock").exists() {
        if let Ok(Some(_)) = monitor.try_wait() {
            return Ok(
                crate::db::wait_exit(db, id, Some(Duration::from_secs(1)))?.unwrap_or(125) as i32,
            );
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::invalid(format!(
                "{id}: its monitor did not answer in 30 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let ended = crate::attach::attach(&dir, true, stdin, out, keys)?;
    let _ = monitor.try_wait();
    attached(db, id, ended)
}

pub fn start(store: &mut Store, mut a: StartArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    if a.all {
        a.containers = all_names(&db, false)?
            .into_iter()
            .filter(|n| {
                db.find(n)
                    .and_then(|c| db.fresh(c))
                    .is_ok_and(|c| c.state != "running" && c.state != "paused")
            })
            .collect();
    }
    a.containers.extend(filtered(&db, &a.filter)?);
    if a.attach {
        return start_attached(&db, &a.containers);
    }
    for name in &a.containers {
        let c = db.fresh(db.find(name)?)?;
        let c = crate::db::settled(&db, c, Duration::from_secs(2))?;
        if c.state == "paused" {
            return Err(Error::invalid(format!(
                "{name}: the container is paused: unpause it instead"
            )));
        }
        // Running, or about to (its monitor restarts it): nothing to do.
        if c.state == "running" || crate::db::restarting(&c) {
            println!("{name}");
            continue;
        }
        if c.state == "exited" {
            ctr::reset_exited(&db, &c)?;
        }
        start_required(&db, &c.id)?;
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            ctr::print_start_error(&db, &c.id);
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        println!("{name}");
    }
    Ok(0)
}

/// `--requires`: the containers this one needs, started first where
/// they do not run (Podman's dependencies).
fn start_required(db: &Db, id: &str) -> Result<()> {
    for dep in crate::db::Settings::load(&db.dir(id)).requires {
        let c = db
            .find(&dep)
            .map_err(|_| Error::invalid(format!("--requires: container {dep} is gone")))?;
        let c = crate::db::settled(db, db.fresh(c)?, Duration::from_secs(2))?;
        if c.state == "running" || c.state == "paused" || crate::db::restarting(&c) {
            continue;
        }
        if c.state == "exited" {
            ctr::reset_exited(db, &c)?;
        }
        let started = ctr::start_detached(db, &c.id)?;
        if started.state == "exited" && started.started.is_none() {
            return Err(Error::invalid(format!(
                "--requires: {} did not start",
                started.name
            )));
        }
    }
    Ok(())
}

/// `start -a`: starts the container and prints what this run of it
/// writes (its log's lines from the start on, each stream to ours) until
/// it ends; its exit code is ours (Podman's and Docker's).
fn start_attached(db: &Db, names: &[String]) -> Result<i32> {
    let [name] = names else {
        return Err(Error::invalid(
            "start --attach: one container at a time".to_string(),
        ));
    };
    let c = db.fresh(db.find(name)?)?;
    let c = crate::db::settled(db, c, Duration::from_secs(2))?;
    if c.state == "running" || c.state == "paused" || crate::db::restarting(&c) {
        return Err(Error::invalid(format!(
            "{name}: the container is running already: use attach"
        )));
    }
    // Its run's output is read back from the log.
    if crate::stdio::LogLimits::load(&db.dir(&c.id)).off {
        return Err(Error::invalid(format!(
            "start --attach {name}: the container keeps no log (--log-driver none): start it, then attach"
        )));
    }
    if c.state == "exited" {
        ctr::reset_exited(db, &c)?;
    }
    // The log keeps earlier runs: this run's lines are those written
    // from now on.
    let window = ctr::LogWindow {
        since: Some(format::now_fine()),
        until: None,
    };
    let c = ctr::start_detached(db, &c.id)?;
    if c.state == "exited" && c.started.is_none() {
        ctr::print_start_error(db, &c.id);
        return Ok(c.exit_code.unwrap_or(125) as i32);
    }
    let view = ctr::LogView {
        follow: true,
        window,
        ..Default::default()
    };
    match ctr::print_logs(db, &c, &view) {
        // A --rm container is gone when it ends, and its code with it.
        Err(Error::NoContainer(_)) => return Ok(0),
        r => r?,
    }
    let ended = db.fresh(db.find(&c.id)?)?;
    Ok(ended.exit_code.unwrap_or(0) as i32)
}

/// ps's STATUS: Up/Exited/Created, and a running container's health
/// ("Up 5 seconds (healthy)").
fn status_text(db: &Db, c: &Ctr) -> String {
    match c.state.as_str() {
        "running" | "paused" => format!(
            "Up {}{}",
            format::ago(c.started)
                .replace(" ago", "")
                .replace("Less than a second", "less than a second"),
            match health_status(db, c).as_str() {
                _ if c.state == "paused" => " (Paused)".to_string(),
                "" => String::new(),
                h => format!(" ({h})"),
            }
        ),
        "exited" => format!(
            "{} ({}) {}",
            match crate::db::backing_off(db, c) {
                true => "Restarting",
                false => "Exited",
            },
            c.exit_code.unwrap_or(0),
            format::ago(c.finished)
        ),
        _ => "Created".into(),
    }
}

/// `ps --filter KEY=VALUE`s: Podman's keys; values of one key are
/// alternatives, different keys must all match.
struct PsFilter {
    by_key: std::collections::BTreeMap<String, Vec<String>>,
}

impl PsFilter {
    fn parse(given: &[String]) -> Result<PsFilter> {
        let known = [
            "id", "name", "status", "label", "ancestor", "exited", "pod", "health",
        ];
        let by_key = filters_by_key(given, &known, |f, k, v| {
            let bad = |what: &str| Err(Error::invalid(format!("--filter {f:?}: {what}")));
            match k {
                "status"
                    if !matches!(
                        v,
                        "created"
                            | "running"
                            | "paused"
                            | "exited"
                            | "restarting"
                            | "stopped"
                            | "removing"
                            | "dead"
                            | "configured"
                            | "unknown"
                    ) =>
                {
                    bad("created, running, paused, exited, restarting, stopped, removing, dead, configured or unknown")
                }
                "health" if !matches!(v, "starting" | "healthy" | "unhealthy" | "none") => {
                    bad("starting, healthy, unhealthy or none")
                }
                "exited" if v.parse::<i64>().is_err() => bad("an exit code"),
                _ => Ok(()),
            }
        })?;
        Ok(PsFilter { by_key })
    }

    /// A status filter asks for containers of any state (Podman's).
    fn wants_all(&self) -> bool {
        self.by_key.contains_key("status")
    }

    fn matches(&self, db: &Db, c: &Ctr) -> bool {
        let labels = || crate::db::Settings::load(&db.dir(&c.id)).labels;
        self.by_key.iter().all(|(k, values)| {
            values.iter().any(|v| match k.as_str() {
                "id" => c.id.starts_with(v.as_str()),
                "name" => regex_lite::Regex::new(v).is_ok_and(|r| r.is_match(&c.name)),
                // Podman's "stopped" is an exited container here.
                "status" => {
                    status_word(db, c) == v || (v == "stopped" && status_word(db, c) == "exited")
                }
                "label" => label_matches(&labels(), v),
                "ancestor" => {
                    c.image == *v
                        || c.image.ends_with(&format!("/{v}"))
                        || c.image.ends_with(&format!("/{v}:latest"))
                        || c.image_id
                            .trim_start_matches("sha256:")
                            .starts_with(v.trim_start_matches("sha256:"))
                }
                "exited" => {
                    c.state == "exited" && c.exit_code.map(|x| x.to_string()).as_deref() == Some(v)
                }
                "health" => match health_status(db, c).as_str() {
                    "" => v == "none",
                    h => h == v,
                },
                "pod" => {
                    !c.pod.is_empty()
                        && (c.pod.starts_with(v.as_str())
                            || crate::pods::find(db, &c.pod).is_ok_and(|p| p.name == *v))
                }
                _ => false,
            })
        })
    }
}

/// starting, healthy or unhealthy; "" for a container without a check.
///
/// health.json is there once a container with a check has run (the
/// monitor writes it at each start), so the settings are read only for
/// one that never ran: ps asks this of every row.
fn health_status(db: &Db, c: &Ctr) -> String {
    let dir = db.dir(&c.id);
    if let Some(h) = crate::health::Health::load(&dir) {
        return h.status;
    }
    match c.state == "created" && crate::db::Settings::load(&dir).health.is_some() {
        true => "starting".into(),
        false => String::new(),
    }
}

/// A container's state as `ps --filter status=` names it.
fn status_word<'a>(db: &Db, c: &'a Ctr) -> &'a str {
    match c.state.as_str() {
        "exited" if crate::db::backing_off(db, c) => "restarting",
        "running" | "paused" | "exited" | "created" => &c.state,
        "stopped" => "exited",
        _ => "unknown",
    }
}

/// The published ports as ps shows them (0.0.0.0:8080->80/tcp, ...).
fn ports_text(db: &Db, c: &Ctr) -> String {
    crate::net::ports_of(&db.dir(&c.id))
        .iter()
        .map(|m| {
            let ip = if m.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &m.host_ip
            };
            format!("{ip}:{}->{}/{}", m.host_port, m.container_port, m.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ps --sort FIELD`: Podman's fields, ascending (a stable sort: ties
/// keep the newest-first order).
fn sort_containers(db: &Db, list: &mut [Ctr], field: &str) -> Result<()> {
    match field {
        "command" => list.sort_by_key(|c| c.command.join(" ")),
        "created" => list.sort_by_key(|c| c.created),
        "runningfor" => list.sort_by_key(|c| std::cmp::Reverse(c.created)),
        "id" => list.sort_by(|x, y| x.id.cmp(&y.id)),
        "image" => list.sort_by(|x, y| x.image.cmp(&y.image)),
        "names" => list.sort_by(|x, y| x.name.cmp(&y.name)),
        "status" => list.sort_by_key(|c| status_text(db, c)),
        other => {
            return Err(Error::invalid(format!(
                "--sort {other:?}: command, created, id, image, names, runningfor or status"
            )))
        }
    }
    Ok(())
}

pub fn ps(store: &Store, a: PsArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let filter = PsFilter::parse(&a.filter)?;
    let last = if a.latest { Some(1) } else { a.last };
    let all = a.all || filter.wants_all() || last.is_some();
    let mut list = vec![];
    for c in db.all()? {
        let c = db.fresh(c)?;
        if (all || c.state == "running" || c.state == "paused") && filter.matches(&db, &c) {
            list.push(c);
        }
    }
    if let Some(n) = last {
        // The list is newest first (made in one second: the later first).
        list.truncate(n);
    }
    if let Some(field) = &a.sort {
        sort_containers(&db, &mut list, field)?;
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
    let networks = |c: &Ctr| crate::net::networks_of(&db.dir(&c.id));
    let pod_name = |c: &Ctr| {
        crate::pods::find(&db, &c.pod)
            .map(|p| p.name)
            .unwrap_or_default()
    };
    // What a template sees: Podman's names, each a string where Podman's
    // template shows one (Names, Ports, Networks), Labels a map.
    let entry = |c: &Ctr| -> Value {
        let settings = crate::db::Settings::load(&db.dir(&c.id));
        json!({
            "ID": id(c), "Id": c.id, "Names": c.name, "Image": c.image, "ImageID": c.image_id,
            "Command": c.command.join(" "), "State": status_word(&db, c), "Status": status_text(&db, c),
            "Created": c.created, "CreatedAt": format::go_time(c.created),
            "RunningFor": format::ago(Some(c.created)),
            "ExitCode": c.exit_code.unwrap_or(0), "Pid": c.pid,
            "Labels": settings.labels, "Ports": ports_text(&db, c),
            "Networks": networks(c).join(","), "Mounts": "",
            "Pod": short(&c.pod), "PodName": pod_name(c), "AutoRemove": c.auto_remove,
            "Size": if a.size { size_text(store, &db, c) } else { String::new() },
        })
    };
    match a.format.as_deref() {
        Some("json") => {
            // Podman's document: lists where it has lists.
            let docs: Vec<Value> = list
                .iter()
                .map(|c| {
                    let mut d = entry(c);
                    d["Names"] = json!([c.name]);
                    d["Command"] = json!(c.command);
                    d["Networks"] = json!(networks(c));
                    d["Mounts"] = json!([]);
                    d["Pod"] = json!(c.pod);
                    d["Ports"] = json!(crate::net::ports_of(&db.dir(&c.id))
                        .iter()
                        .map(|m| json!({"host_ip": m.host_ip, "container_port": m.container_port, "host_port": m.host_port, "range": 1, "protocol": m.protocol}))
                        .collect::<Vec<_>>());
                    d["Exited"] = json!(c.state == "exited");
                    d["CreatedAt"] = json!(format::ago(Some(c.created)));
                    d["StartedAt"] = json!(c.started.unwrap_or(0));
                    d["ExitedAt"] = json!(c.finished.unwrap_or(0));
                    d
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&docs).unwrap_or_default()
            )
        }
        Some(t) if t != "table" => {
            // `table TEMPLATE`: a header of the fields' names, then the
            // rows, columns lined up (Podman's).
            let (table, t) = match t.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, t),
            };
            let mut lines = vec![];
            for c in &list {
                lines.push(format::template(t, &entry(c)).map_err(Error::invalid)?);
            }
            if table {
                let text = format::template_table(t, "CONTAINER ID", &lines);
                print!("{}", format::headed(text, !a.noheading));
            } else {
                for l in lines {
                    println!("{l}");
                }
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
                    let mut row = vec![
                        id(c),
                        c.image.clone(),
                        format!("\"{cmd}\""),
                        format::ago(Some(c.created)),
                        status_text(&db, c),
                        ports_text(&db, c),
                        c.name.clone(),
                    ];
                    if a.pod {
                        row.push(short(&c.pod).to_string());
                        row.push(pod_name(c));
                    }
                    if a.size {
                        row.push(size_text(store, &db, c));
                    }
                    row
                })
                .collect();
            let mut header = vec![
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            if a.pod {
                header.extend(["POD ID", "PODNAME"]);
            }
            if a.size {
                header.push("SIZE");
            }
            print!(
                "{}",
                format::headed(format::table(&header, &rows), !a.noheading),
            );
        }
    }
    Ok(0)
}

/// ps -s's SIZE: what the container wrote (its upper directory), then
/// with its image's ("0B (virtual 1.98MB)", Docker's).
fn size_text(store: &Store, db: &Db, c: &Ctr) -> String {
    fn tree_size(p: &std::path::Path) -> u64 {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        match m.is_dir() {
            true => std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| tree_size(&e.path())).sum())
                .unwrap_or(0),
            false => m.len(),
        }
    }
    let own = tree_size(&db.dir(&c.id).join("upper"));
    let image = store.find(&c.image_id).map(|i| i.size).unwrap_or(0);
    format!(
        "{} (virtual {})",
        format::size(own),
        format::size(own + image)
    )
}

pub fn logs(store: &Store, a: LogsArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let list = a
        .containers
        .iter()
        .map(|n| db.find(n))
        .collect::<Result<Vec<_>>>()?;
    // Several containers' lines each say whose they are (Podman's: the
    // short id, or the name with --names); one container's do not.
    let prefixed = list.len() > 1;
    print_many(&db, list, &a.view, a.names, prefixed)
}

/// The logs of `list`, each line prefixed with its container's short id
/// (or name) when `prefixed`; with --follow, all of them at once.
fn print_many(
    db: &Db,
    list: Vec<Ctr>,
    v: &LogViewArgs,
    names: bool,
    prefixed: bool,
) -> Result<i32> {
    let tail = match v.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| Error::invalid(format!("--tail {n:?}: a number of lines, or all")))?,
        ),
    };
    let moment = |flag: &str, t: &Option<String>| {
        t.as_deref()
            .map(|t| format::parse_moment(t).map_err(|e| Error::invalid(format!("{flag} {e}"))))
            .transpose()
    };
    let window = ctr::LogWindow {
        since: moment("--since", &v.since)?,
        until: moment("--until", &v.until)?,
    };
    let view = |c: &Ctr| ctr::LogView {
        tail,
        timestamps: v.timestamps,
        follow: v.follow,
        window,
        prefix: match (prefixed, names) {
            (false, _) => String::new(),
            (true, true) => format!("{} ", c.name),
            (true, false) => format!("{} ", short(&c.id)),
        },
    };
    if !v.follow || list.len() == 1 {
        for c in &list {
            ctr::print_logs(db, c, &view(c))?;
        }
        return Ok(0);
    }
    let root = db.root.clone();
    let followers: Vec<_> = list
        .into_iter()
        .map(|c| {
            let (root, view) = (root.clone(), view(&c));
            std::thread::spawn(move || {
                Db::open(&root).and_then(|db| ctr::print_logs(&db, &c, &view))
            })
        })
        .collect();
    for f in followers {
        f.join()
            .unwrap_or_else(|_| Err(Error::invalid("logs: a follower failed")))?;
    }
    Ok(0)
}

/// Who requires whom (`run --requires`): each container's id, and the
/// (id, name) of the containers whose requirement names it. Read once per
/// command (each container's settings file), not once per container.
struct Dependents(std::collections::HashMap<String, Vec<(String, String)>>);

impl Dependents {
    fn load(db: &Db) -> Dependents {
        let mut of = std::collections::HashMap::<String, Vec<(String, String)>>::new();
        for c in db.all().unwrap_or_default() {
            for r in crate::db::Settings::load(&db.dir(&c.id)).requires {
                of.entry(r)
                    .or_default()
                    .push((c.id.clone(), c.name.clone()));
            }
        }
        Dependents(of)
    }

    /// The names of those that require `id` and are still there.
    fn of(&self, db: &Db, id: &str) -> Vec<String> {
        self.0
            .get(id)
            .into_iter()
            .flatten()
            .filter(|(dep, _)| db.find(dep).is_ok())
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// `rm --depend`: each container after those that depend on it (and
    /// on them), each once.
    fn first(&self, db: &Db, names: &[String]) -> Vec<String> {
        fn visit(
            d: &Dependents,
            db: &Db,
            name: &str,
            out: &mut Vec<String>,
            seen: &mut Vec<String>,
        ) {
            let Ok(c) = db.find(name) else {
                out.push(name.to_string());
                return;
            };
            if seen.contains(&c.id) {
                return;
            }
            seen.push(c.id.clone());
            for dep in d.of(db, &c.id) {
                visit(d, db, &dep, out, seen);
            }
            out.push(name.to_string());
        }
        let (mut out, mut seen) = (vec![], vec![]);
        for n in names {
            visit(self, db, n, &mut out, &mut seen);
        }
        out
    }
}

/// `--filter`s of stop, restart, rm, pause and start: the names of the
/// containers (but pods' infra containers) that ps's filters match, in
/// any state. No filters: none.
fn filtered(db: &Db, given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(vec![]);
    }
    let f = PsFilter::parse(given)?;
    let mut out = vec![];
    for c in db.all()? {
        let c = db.fresh(c)?;
        if infra_of(db, &c).is_none() && f.matches(db, &c) {
            out.push(c.name);
        }
    }
    Ok(out)
}

/// `--all`: the names of every container (running ones only, if
/// `running`), pods' infra containers left to `pod` commands.
fn all_names(db: &Db, running: bool) -> Result<Vec<String>> {
    let mut out = vec![];
    for c in db.all()? {
        let c = db.fresh(c)?;
        if infra_of(db, &c).is_some() {
            continue;
        }
        if !running || c.state == "running" || c.state == "paused" {
            out.push(c.name);
        }
    }
    Ok(out)
}

pub fn stop(store: &Store, mut a: StopArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    if a.all {
        a.containers = all_names(&db, true)?;
    }
    a.containers.extend(filtered(&db, &a.filter)?);
    a.containers.extend(cidfiles(&a.cidfile, a.ignore)?);
    let mut failed = false;
    for name in &a.containers {
        let found = db.find(name).and_then(|c| db.fresh(c));
        // A --rm container is removed by its monitor as it stops: stopped.
        let stopped = found.and_then(|c| match ctr::stop(&db, &c, a.time) {
            Err(Error::NoContainer(_)) if c.auto_remove => Ok(()),
            r => r,
        });
        match stopped {
            Ok(()) => println!("{name}"),
            Err(Error::NoContainer(_)) if a.ignore => {}
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}

/// Stops each container (as stop does) and starts it again.
pub fn restart(store: &mut Store, mut a: StopArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    if a.all {
        a.containers = all_names(&db, a.running)?;
    }
    a.containers.extend(filtered(&db, &a.filter)?);
    if a.running && !a.all {
        a.containers.retain(|n| {
            db.find(n)
                .and_then(|c| db.fresh(c))
                .is_ok_and(|c| c.state == "running")
        });
    }
    a.containers.extend(cidfiles(&a.cidfile, a.ignore)?);
    for name in &a.containers {
        let c = match db.find(name) {
            Err(Error::NoContainer(_)) if a.ignore => continue,
            found => db.fresh(found?)?,
        };
        // stop returns once the monitor is gone: then the row is ours.
        ctr::stop(&db, &c, a.time)?;
        let c = db.find(&c.id)?;
        if c.state != "created" {
            ctr::reset_exited(&db, &c)?;
        }
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            ctr::print_start_error(&db, &c.id);
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        crate::db::record(&db, &c, "restart");
        println!("{name}");
    }
    Ok(0)
}

/// The ids --cidfile's files hold. A file that is not there is passed
/// over when `ignore` (rm -f, --ignore: Podman's), else refused naming it.
fn cidfiles(files: &[std::path::PathBuf], ignore: bool) -> Result<Vec<String>> {
    let mut ids = vec![];
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(text) if !text.trim().is_empty() => ids.push(text.trim().to_string()),
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "--cidfile {}: the file is empty",
                    f.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && ignore => {}
            Err(e) => return Err(Error::at(f, "--cidfile: reading", e)),
        }
    }
    Ok(ids)
}

pub fn kill(store: &Store, mut a: KillArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    if a.all {
        a.containers = all_names(&db, true)?;
    }
    a.containers.extend(cidfiles(&a.cidfile, false)?);
    let sig = a.signal.trim_start_matches("SIG").to_string();
    for name in &a.containers {
        let c = db.fresh(db.find(name)?)?;
        if c.state != "running" && c.state != "paused" {
            return Err(Error::invalid(format!("{name}: container is not running")));
        }
        crate::db::mark_stopped_by_user(&db, &c.id);
        // Before the signal: its `died` (the monitor's) comes after.
        crate::db::record(&db, &c, "kill");
        ctr::signal(&db, &c, &sig)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn rm(store: &mut Store, mut a: RmArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    if a.all {
        a.containers = all_names(&db, false)?;
    }
    a.containers.extend(filtered(&db, &a.filter)?);
    a.containers
        .extend(cidfiles(&a.cidfile, a.force || a.ignore)?);
    let dependents = Dependents::load(&db);
    if a.depend {
        a.containers = dependents.first(&db, &a.containers);
    }
    // Podman's codes: 1 when one was not found, 2 when one was running.
    let mut code = 0;
    for name in &a.containers {
        let c = match db.find(name).and_then(|c| db.fresh(c)) {
            Ok(c) => c,
            // Podman's and Docker's: -f (or --ignore) removes what is
            // there, so a cleanup script need not ask first.
            Err(Error::NoContainer(_)) if a.force || a.ignore => continue,
            Err(e) => {
                eprintln!("Error: {e}");
                code = code.max(1);
                continue;
            }
        };
        if let Some(pod) = infra_of(&db, &c) {
            eprintln!("Error: {name}: the infra container of pod {pod}: use pod rm");
            code = code.max(1);
            continue;
        }
        let needing = dependents.of(&db, &c.id);
        if !needing.is_empty() {
            eprintln!(
                "Error: {name}: {} depend on it (run --requires): remove them first, or rm --depend",
                needing.join(", ")
            );
            code = code.max(1);
            continue;
        }
        // A start under way (a VM's boot) counts as running: its monitor
        // would go on making the run's mounts after the removal.
        if c.state == "running"
            || c.state == "paused"
            || crate::db::restarting(&c)
            || crate::db::starting(&c)
        {
            if !a.force {
                eprintln!(
                    "Error: {name}: container is running (or starting or restarting): stop it first, or rm -f"
                );
                code = 2;
                continue;
            }
            // SIGKILL (or its stop signal first, with -t), and its
            // monitor gone (no restart of what goes). A --rm container's
            // monitor removes it meanwhile: that is done.
            match ctr::stop(&db, &c, Some(a.time.unwrap_or(0))) {
                Ok(()) | Err(Error::NoContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let c = match db.find(&c.id) {
            Ok(c) => c,
            Err(Error::NoContainer(_)) => {
                println!("{name}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let anonymous = crate::db::Settings::load(&db.dir(&c.id)).anonymous_volumes;
        match ctr::remove(store, &db, &c) {
            Ok(()) => {}
            Err(Error::NoContainer(_)) if c.auto_remove => {
                println!("{name}");
                continue;
            }
            Err(e) => return Err(e),
        }
        if a.volumes {
            for v in anonymous {
                crate::volumes::remove(&db, &v)?;
            }
        }
        // The name as given, as Podman and Docker print it.
        println!("{name}");
    }
    Ok(code)
}

/// Removes container `id` as `rm -f -t 0` would, its anonymous volumes
/// too (`rmi -f` of its image); one already gone is no error.
pub fn remove_forced(store: &mut Store, db: &Db, id: &str) -> Result<()> {
    let c = match db.find(id).and_then(|c| db.fresh(c)) {
        Ok(c) => c,
        Err(Error::NoContainer(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(pod) = infra_of(db, &c) {
        return Err(Error::Refused(format!(
            "container {}: the infra container of pod {pod}: remove the pod first",
            c.name
        )));
    }
    if c.state == "running"
        || c.state == "paused"
        || crate::db::restarting(&c)
        || crate::db::starting(&c)
    {
        match ctr::stop(db, &c, Some(0)) {
            Ok(()) | Err(Error::NoContainer(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let anonymous = crate::db::Settings::load(&db.dir(&c.id)).anonymous_volumes;
    match db.find(&c.id).and_then(|c| ctr::remove(store, db, &c)) {
        Ok(()) | Err(Error::NoContainer(_)) => {}
        Err(e) => return Err(e),
    }
    for v in anonymous {
        let _ = crate::volumes::remove(db, &v);
    }
    Ok(())
}

/// `rmi`: with `-f`, the containers using each image go first (Podman's),
/// then the images as `images::rmi` removes them.
pub fn rmi(store: &mut Store, a: crate::cli::RmiArgs) -> Result<i32> {
    if a.force {
        let db = Db::open(&store.root)?;
        let names = match a.all {
            true => store.images()?.into_iter().map(|i| i.id).collect(),
            false => a.images.clone(),
        };
        for what in &names {
            let Ok(img) = store.find(what) else { continue };
            for holder in store.holders(&img.id)? {
                if let Some(id) = holder.strip_prefix("container:") {
                    remove_forced(store, &db, id)?;
                }
            }
        }
    }
    crate::images::rmi(store, a)
}

/// `--filter KEY=VALUE`s by key, each key one of `known` and each value
/// as `check` (the whole filter, its key, its value) takes it; a name's a
/// regular expression. Values of one key are alternatives.
fn filters_by_key(
    given: &[String],
    known: &[&str],
    check: impl Fn(&str, &str, &str) -> Result<()>,
) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
    let mut by_key = std::collections::BTreeMap::<String, Vec<String>>::new();
    for f in given {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("--filter {f:?}: KEY=VALUE")))?;
        if !known.contains(&k) {
            return Err(Error::invalid(format!(
                "--filter {f:?}: {k} is not a filter ({})",
                known.join(", ")
            )));
        }
        if k == "name" {
            regex_lite::Regex::new(v)
                .map_err(|e| Error::invalid(format!("--filter {f:?}: {e}")))?;
        }
        check(f, k, v)?;
        by_key.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(by_key)
}

/// A `label=KEY[=VALUE]` filter against `labels`.
fn label_matches(labels: &std::collections::BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// `pod ps --filter`s: id (a prefix), name (a regular expression),
/// label=KEY[=VALUE], status; values of one key are alternatives,
/// different keys must all match.
fn pod_filter(given: &[String]) -> Result<impl Fn(&crate::pods::Pod, &str) -> bool> {
    let by_key = filters_by_key(given, &["id", "name", "label", "status"], |_, _, _| Ok(()))?;
    Ok(move |p: &crate::pods::Pod, state: &str| {
        by_key.iter().all(|(k, vs)| {
            vs.iter().any(|v| match k.as_str() {
                "id" => p.id.starts_with(v.as_str()),
                "name" => regex_lite::Regex::new(v).is_ok_and(|r| r.is_match(&p.name)),
                "label" => label_matches(&p.spec.labels, v),
                _ => state.eq_ignore_ascii_case(v),
            })
        })
    })
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
            infra_name,
            label,
            label_file,
            pod_id_file,
            replace,
            isolation,
            memory,
            cpus,
        } => {
            let isolation = crate::db::Isolation::parse(isolation.as_deref())?;
            if isolation == crate::db::Isolation::Vm {
                crate::vm::refuse_for_pod(network.as_deref())?;
            } else if memory.is_some() || cpus.is_some() {
                return Err(Error::invalid(
                    "--memory/--cpus on pod create: the size of a VM pod (--isolation vm); a namespace pod's containers take their own",
                ));
            }
            // A VM pod's size: its infra's limits, which the VM is sized from.
            let resources = crate::spec::resource_extras(&crate::spec::Limits {
                memory: memory.as_deref(),
                cpus: cpus.as_deref(),
                ..Default::default()
            })
            .map_err(Error::invalid)?
            .resources;
            let labels = labels_of(&label_file, &label)?;
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
                infra_name,
            };
            // --replace: a pod of that name goes first, its containers too.
            if let (true, Some(n)) = (replace, &name) {
                if let Ok(old) = pods::find(&db, n) {
                    pods::remove(store, &db, &old, true, None)?;
                }
            }
            let p = pods::create(store, &db, name, spec)?;
            if let Some(f) = &pod_id_file {
                if let Err(e) = std::fs::write(f, &p.id) {
                    let _ = pods::remove(store, &db, &p, true, None);
                    return Err(Error::at(f, "--pod-id-file: writing", e));
                }
            }
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
        PodCommand::Rm {
            force,
            time,
            all,
            pods: names,
        } => {
            let names = match all {
                true => pods::all(&db)?.into_iter().map(|p| p.id).collect(),
                false => names,
            };
            // Podman's codes: 1 when one is not there (0 with -f).
            let mut code = 0;
            for n in &names {
                let p = match pods::find(&db, n) {
                    Ok(p) => p,
                    Err(_) if force => continue,
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = code.max(1);
                        continue;
                    }
                };
                match pods::remove(store, &db, &p, force, time) {
                    Ok(()) => println!("{}", p.id),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 125;
                    }
                }
            }
            Ok(code)
        }
        PodCommand::Ps {
            quiet,
            format,
            filter,
            noheading,
        } => {
            let wanted = pod_filter(&filter)?;
            let list: Vec<pods::Pod> = pods::all(&db)?
                .into_iter()
                .filter(|p| {
                    let state = pods::members(&db, p)
                        .map(|m| pods::state(p, &m).to_string())
                        .unwrap_or_default();
                    wanted(p, &state)
                })
                .collect();
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
                // Podman's layout (Go's tabwriter): pods are Podman's.
                (false, "table") => {
                    let header = [
                        "POD ID",
                        "NAME",
                        "STATUS",
                        "CREATED",
                        "INFRA ID",
                        "# OF CONTAINERS",
                    ];
                    let mut all = match noheading {
                        true => vec![],
                        false => vec![header.map(String::from).to_vec()],
                    };
                    all.extend(rows);
                    print!("{}", format::tabwriter(&all));
                }
                // A template: Podman's fields (ID, Name, Status, Created,
                // InfraID, NumberOfContainers, Labels).
                (false, t) => {
                    let t = t.strip_prefix("table").map(str::trim_start).unwrap_or(t);
                    for d in &docs {
                        let mut d = d.clone();
                        d["ID"] = json!(d["Id"]
                            .as_str()
                            .unwrap_or_default()
                            .get(..12)
                            .unwrap_or_default());
                        d["InfraID"] = json!(d["InfraId"]
                            .as_str()
                            .unwrap_or_default()
                            .get(..12)
                            .unwrap_or_default());
                        println!("{}", format::template(t, &d).map_err(Error::invalid)?);
                    }
                }
            }
            Ok(0)
        }
        PodCommand::Inspect {
            pods: names,
            format,
        } => {
            let docs = names
                .iter()
                .map(|n| pods::find(&db, n).and_then(|p| pods::inspect_doc(&db, &p)))
                .collect::<Result<Vec<_>>>()?;
            match format.as_deref() {
                None | Some("json") => println!(
                    "{}",
                    serde_json::to_string_pretty(&docs).unwrap_or_default()
                ),
                Some(t) => print_docs(&docs, Some(t))?,
            }
            Ok(0)
        }
        PodCommand::Top { pod, descriptors } => {
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
                top(store, &c.id, &descriptors)?;
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
            stats(store, &names, no_stream, None)
        }
        PodCommand::Exists { pod } => Ok(if pods::find(&db, &pod).is_ok() { 0 } else { 1 }),
        PodCommand::Pause { pods: names } => each(&names, &|p| pods::pause_all(&db, p, true)),
        PodCommand::Unpause { pods: names } => each(&names, &|p| pods::pause_all(&db, p, false)),
        PodCommand::Logs {
            container,
            names,
            view,
            pod,
        } => {
            let p = pods::find(&db, &pod)?;
            let mut list: Vec<Ctr> = pods::members(&db, &p)?
                .into_iter()
                .filter(|c| c.id != p.infra)
                .collect();
            // Oldest first (members come newest first).
            list.reverse();
            if let Some(want) = &container {
                let c = db.find(want)?;
                if c.pod != p.id {
                    return Err(Error::invalid(format!(
                        "--container {want}: not a container of pod {pod}"
                    )));
                }
                list = vec![c];
            }
            print_many(&db, list, &view, names, container.is_none())
        }
        PodCommand::Prune { force: _ } => {
            for p in pods::all(&db)? {
                let members = pods::members(&db, &p)?;
                if members
                    .iter()
                    .all(|c| c.state != "running" && c.state != "paused")
                {
                    pods::remove(store, &db, &p, false, None)?;
                    println!("{}", p.id);
                }
            }
            Ok(0)
        }
    }
}

/// `--env-file`s: NAME=VALUE lines (NAME alone: this shell's value), no
/// blank lines or comments, in order. Leading blanks go (Docker's), a
/// value's trailing ones stay (Podman and Docker keep them).
fn env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut env = vec![];
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| Error::at(f, "--env-file: reading", e))?;
        env.extend(
            text.lines()
                .map(|l| l.trim_start().trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| match l.contains('=') {
                    true => l.to_string(),
                    false => l.trim_end().to_string(),
                }),
        );
    }
    Ok(env)
}

pub fn exec(store: &Store, a: ExecArgs) -> Result<i32> {
    let mut env = env_files(&a.env_file)?;
    env.extend(a.env.iter().cloned());
    // NAME alone: this shell's value, or nothing when it has none (as run
    // takes it).
    let env: Vec<String> = env
        .into_iter()
        .filter_map(|kv| match kv.contains('=') {
            true => Some(kv),
            false => std::env::var(&kv).ok().map(|v| format!("{kv}={v}")),
        })
        .collect();
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(&a.container)?)?;
    ctr::exec(
        &db,
        &c,
        &crate::spec::ExecOpts {
            argv: &a.command,
            env: &env,
            user: a.user.as_deref(),
            workdir: a.workdir.as_deref(),
            tty: a.tty,
            interactive: a.interactive,
            detach: a.detach,
            privileged: a.privileged,
        },
    )
}

/// `port`: the container's published ports, Docker's lines.
pub fn port(store: &Store, name: &str, private_port: Option<&str>) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(name)?;
    let ports = crate::net::ports_of(&db.dir(&c.id));
    let Some(wanted) = private_port else {
        for m in ports {
            println!("{}", m.describe());
        }
        return Ok(0);
    };
    // `port CTR 80[/tcp]`: the host addresses it is published on, as
    // Podman and Docker print them.
    let (number, proto) = wanted.split_once('/').unwrap_or((wanted, "tcp"));
    let number: u16 = number
        .parse()
        .map_err(|_| Error::invalid(format!("port {wanted:?}: PORT[/tcp|udp]")))?;
    let hits: Vec<_> = ports
        .iter()
        .filter(|m| m.container_port == number && m.protocol == proto)
        .collect();
    if hits.is_empty() {
        return Err(Error::invalid(format!(
            "{name}: no public port {number}/{proto} published"
        )));
    }
    for m in hits {
        let ip = if m.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &m.host_ip
        };
        println!("{ip}:{}", m.host_port);
    }
    Ok(0)
}

/// `volume create/ls/inspect/rm/prune`.
pub fn volume(store: &mut Store, cmd: VolumeCommand) -> Result<i32> {
    use crate::volumes;
    let db = Db::open(&store.root)?;
    match cmd {
        VolumeCommand::Create {
            name,
            label,
            driver,
            opt,
        } => {
            if driver != "local" {
                return Err(Error::invalid(format!(
                    "--driver {driver:?}: local is the only driver here"
                )));
            }
            let opts = volumes::DriverOpts::parse(&opt)?;
            let name = name.unwrap_or_else(volumes::anonymous_name);
            let labels = label_map(&label)?;
            volumes::create_with(&db, &name, &Value::Object(labels), false, &opts)?;
            println!("{name}");
        }
        VolumeCommand::Ls {
            quiet,
            format,
            filter,
            noheading,
        } => {
            let used: Vec<String> = volumes::users(&db).into_iter().map(|(v, _)| v).collect();
            let mut names = volumes::list(&db);
            for f in &filter {
                let (key, want) = f
                    .split_once('=')
                    .ok_or_else(|| Error::invalid(format!("--filter {f:?}: KEY=VALUE")))?;
                let mut kept = vec![];
                for n in names {
                    let keep = match key {
                        "name" => n.contains(want),
                        "driver" => want == "local",
                        "dangling" => match want {
                            "true" | "1" => !used.contains(&n),
                            "false" | "0" => used.contains(&n),
                            _ => {
                                return Err(Error::invalid(format!(
                                    "--filter {f:?}: dangling=true or false"
                                )))
                            }
                        },
                        "label" => {
                            let labels = volumes::meta(&db, &n)?["Labels"].clone();
                            match want.split_once('=') {
                                Some((k, v)) => labels[k] == v,
                                None => labels.get(want).is_some(),
                            }
                        }
                        _ => {
                            return Err(Error::invalid(format!(
                                "--filter {f:?}: name, label, driver or dangling"
                            )))
                        }
                    };
                    if keep {
                        kept.push(n);
                    }
                }
                names = kept;
            }
            match (quiet, format) {
                (true, _) => names.iter().for_each(|v| println!("{v}")),
                (false, Some(f)) => {
                    let docs = names
                        .iter()
                        .map(|n| volumes::inspect(&db, n))
                        .collect::<Result<Vec<_>>>()?;
                    print_docs(&docs, Some(&f))?;
                }
                (false, None) => {
                    if !noheading {
                        println!("DRIVER    VOLUME NAME");
                    }
                    names.iter().for_each(|v| println!("local     {v}"));
                }
            }
        }
        VolumeCommand::Exists { volume } => {
            return Ok(if volumes::exists(&db, &volume) { 0 } else { 1 });
        }
        VolumeCommand::Export { volume, output } => {
            if !volumes::exists(&db, &volume) {
                return Err(Error::invalid(format!(
                    "volume export {volume}: no such volume"
                )));
            }
            let what = format!("volume export {volume}");
            let _held = volumes::hold(
                &db,
                std::slice::from_ref(&volume),
                &format!("export-{}", std::process::id()),
            )?;
            return crate::info::archive_dir(
                &volumes::data(&db, &volume),
                output.as_deref(),
                &what,
            );
        }
        VolumeCommand::Import { volume, source } => volumes::import(&db, &volume, &source)?,
        VolumeCommand::Inspect {
            volumes: names,
            format,
        } => {
            let docs = names.iter().map(|n| volumes::inspect(&db, n)).collect();
            print_found(docs, format.as_deref())?;
        }
        VolumeCommand::Rm {
            volumes: names,
            force,
        } => {
            // Podman's codes: 1 when one is not there, 2 when one is in use.
            let mut code = 0;
            for n in names {
                if !volumes::exists(&db, &n) {
                    eprintln!("Error: volume {n}: no such volume");
                    code = code.max(1);
                    continue;
                }
                // -f: the containers using it go first (Podman's).
                if force {
                    for (v, user) in volumes::users(&db) {
                        if v == n {
                            remove_forced(store, &db, &user)?;
                        }
                    }
                }
                match volumes::remove(&db, &n) {
                    Ok(()) => println!("{n}"),
                    Err(e @ Error::Refused(_)) => {
                        eprintln!("Error: {e}");
                        code = 2;
                    }
                    Err(e) => return Err(e),
                }
            }
            return Ok(code);
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

/// `print_docs` of those found (an empty list when none is), then an
/// error for each missing one, the last one returned (Podman's inspect
/// of a volume or network: `[]` and an error, exit 125).
fn print_found(docs: Vec<Result<Value>>, fmt: Option<&str>) -> Result<()> {
    let (found, missing): (Vec<_>, Vec<_>) = docs.into_iter().partition(Result::is_ok);
    let found: Vec<Value> = found.into_iter().filter_map(Result::ok).collect();
    print_docs(&found, fmt)?;
    let mut errors = missing.into_iter().filter_map(Result::err).peekable();
    while let Some(e) = errors.next() {
        if errors.peek().is_none() {
            return Err(e);
        }
        eprintln!("Error: {e}");
    }
    Ok(())
}

/// A file's modification time, RFC 3339 in UTC ("" when unreadable).
fn file_time(path: &std::path::Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format::rfc3339(d.as_secs() as i64, Some(d.subsec_nanos())))
        .unwrap_or_default()
}

/// Documents as `--format` asks: none or json, the JSON list; else the
/// template over each, a line each.
fn print_docs(docs: &[Value], fmt: Option<&str>) -> Result<()> {
    match fmt {
        None | Some("json") => {
            println!("{}", serde_json::to_string_pretty(docs).unwrap_or_default())
        }
        Some(t) => {
            for d in docs {
                println!("{}", format::template(t, d).map_err(Error::invalid)?);
            }
        }
    }
    Ok(())
}

/// A VM container's interfaces are its VM's NICs, fixed when it boots
/// (docs/vm.md, "The pod's network"): adding or taking one would change
/// the namespace but not the guest.
fn refuse_vm_interfaces(db: &Db, c: &crate::db::Ctr, what: &str) -> Result<()> {
    if ctr::is_vm(db, c) {
        return Err(Error::invalid(format!(
            "network {what} {}: a container with --isolation vm has the networks it was created with (its VM's devices)",
            c.name
        )));
    }
    Ok(())
}

/// `network create/ls/inspect/rm/prune`.
pub fn network(store: &mut Store, cmd: NetworkCommand) -> Result<i32> {
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
            label,
            driver,
            opt,
            ipv6,
        } => {
            if driver != "bridge" {
                return Err(Error::invalid(format!(
                    "--driver {driver:?}: bridge is the only driver here"
                )));
            }
            if let Some(o) = opt.first() {
                return Err(Error::invalid(format!(
                    "--opt {o:?}: the bridge driver here takes no options"
                )));
            }
            if ipv6 {
                return Err(Error::invalid("--ipv6: networks here are IPv4 only"));
            }
            let labels = label_map(&label)?;
            let opts = CreateOptions {
                subnet: subnet.as_deref(),
                gateway: gateway.as_deref(),
                internal,
                labels,
            };
            let n = Network::create(&dir, &name, &opts).map_err(err)?;
            // The engine's own path: its bridge and rules now, so they are
            // there while the network is (rootless has no bridges).
            if let Some(plan) = skiff_net::native::plan(&n).filter(|_| !skiff_image::rootless()) {
                if let Err(e) = skiff_net::native::ensure_network(&plan) {
                    let _ = skiff_net::native::remove(&n);
                    return Err(err(e));
                }
            }
            crate::events::network(&db.root, "create", &n.name);
            println!("{}", n.name);
        }
        NetworkCommand::Connect {
            network,
            container,
            ip,
        } => {
            let c = db.find(&container)?;
            refuse_vm_interfaces(&db, &c, "connect")?;
            let net = Network::load(&dir, &network)
                .map_err(|e| Error::invalid(format!("{network}: {e}")))?;
            crate::net::connect(&db, &c, &net, ip.as_deref())?;
            crate::events::Event::new("network", "connect", &c.id, &network).record(&db.root);
        }
        NetworkCommand::Disconnect {
            network,
            container,
            force: _,
        } => {
            let c = db.find(&container)?;
            refuse_vm_interfaces(&db, &c, "disconnect")?;
            crate::net::disconnect(&db, &c, &network)?;
            crate::events::Event::new("network", "disconnect", &c.id, &network).record(&db.root);
        }
        NetworkCommand::Ls {
            quiet,
            format,
            filter,
            noheading,
            no_trunc,
        } => {
            let mut nets = Network::list(&dir).map_err(err)?;
            for f in &filter {
                let (key, want) = f
                    .split_once('=')
                    .ok_or_else(|| Error::invalid(format!("--filter {f:?}: KEY=VALUE")))?;
                let keep = |n: &Network| match key {
                    "name" => Ok(n.name.contains(want)),
                    "id" => Ok(n.id().starts_with(want)),
                    "driver" => Ok(want == "bridge"),
                    "label" => {
                        let labels = n.labels();
                        Ok(match want.split_once('=') {
                            Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
                            None => labels.contains_key(want),
                        })
                    }
                    _ => Err(Error::invalid(format!(
                        "--filter {f:?}: name, id, driver or label"
                    ))),
                };
                let mut kept = vec![];
                for n in nets {
                    if keep(&n)? {
                        kept.push(n);
                    }
                }
                nets = kept;
            }
            // Podman's fields for templates; json: the inspect documents.
            let row = |n: &Network| {
                let labels = n.labels();
                let text: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                let id = n.id();
                json!({"ID": if no_trunc { id.clone() } else { id[..12].to_string() }, "Name": n.name,
                       "Driver": "bridge", "Labels": text.join(",")})
            };
            match (quiet, format.as_deref()) {
                (true, _) => nets.iter().for_each(|n| println!("{}", n.name)),
                (false, Some("json")) => {
                    print_docs(&nets.iter().map(|n| n.inspect()).collect::<Vec<_>>(), None)?
                }
                (false, Some(f)) if f != "table" => {
                    let f = f.strip_prefix("table").map(str::trim_start).unwrap_or(f);
                    print_docs(&nets.iter().map(row).collect::<Vec<_>>(), Some(f))?
                }
                (false, _) => {
                    let mut rows = vec![];
                    if !noheading {
                        rows.push(vec!["NETWORK ID".into(), "NAME".into(), "DRIVER".into()]);
                    }
                    for n in &nets {
                        let r = row(n);
                        rows.push(
                            ["ID", "Name", "Driver"]
                                .iter()
                                .map(|k| r[*k].as_str().unwrap_or_default().to_string())
                                .collect(),
                        );
                    }
                    print!("{}", format::tabwriter(&rows));
                }
            }
        }
        NetworkCommand::Exists { network } => {
            let nets = Network::list(&dir).map_err(err)?;
            return Ok(if nets.iter().any(|n| n.name == network) {
                0
            } else {
                1
            });
        }
        NetworkCommand::Inspect { networks, format } => {
            let docs = networks
                .iter()
                .map(|n| {
                    let net = Network::load(&dir, n).map_err(err)?;
                    let mut doc = net.inspect();
                    doc["created"] = json!(file_time(&net.path));
                    Ok(doc)
                })
                .collect();
            print_found(docs, format.as_deref())?;
        }
        NetworkCommand::Rm { networks, force } => {
            // Podman's codes: 1 when one is not there, 2 when one is in
            // use; -f removes the containers on it first.
            let mut code = 0;
            for name in networks {
                let net = match Network::load(&dir, &name) {
                    Ok(n) => n,
                    Err(e) => {
                        eprintln!("Error: {}", err(e));
                        code = code.max(1);
                        continue;
                    }
                };
                if force {
                    for c in db.all().unwrap_or_default() {
                        if crate::net::networks_of(&db.dir(&c.id)).contains(&name) {
                            remove_forced(store, &db, &c.id)?;
                        }
                    }
                }
                if used().contains(&name) {
                    eprintln!(
                        "Error: network {name}: containers use it: remove them first, or rm -f"
                    );
                    code = 2;
                    continue;
                }
                skiff_net::native::remove(&net).map_err(err)?;
                crate::events::network(&db.root, "remove", &name);
                println!("{name}");
            }
            return Ok(code);
        }
        NetworkCommand::Prune { force: _ } => {
            let used = used();
            for n in Network::list(&dir).map_err(err)? {
                if n.name != skiff_net::network::DEFAULT && !used.contains(&n.name) {
                    skiff_net::native::remove(&n).map_err(err)?;
                    crate::events::network(&db.root, "remove", &n.name);
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
        crate::attach::attach(&db.dir(&c.id), tty, stdin, crate::attach::Echo::ALL, &keys)?,
    )
}

/// The code an attach ends with: 0 when detached, else the container's
/// (as the monitor said it, or as the store has it).
fn attached(db: &Db, id: &str, ended: crate::attach::Ended) -> Result<i32> {
    match ended {
        crate::attach::Ended::Detached => Ok(0),
        crate::attach::Ended::Container(Some(code)) => Ok(code),
        crate::attach::Ended::Container(None) => {
            Ok(crate::db::wait_exit(db, id, Some(Duration::from_secs(10)))?.unwrap_or(0) as i32)
        }
    }
}

pub fn wait(store: &Store, a: WaitArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    // Another state than the end: poll for it, print -1 (Podman's).
    if let Some(state) = a
        .condition
        .as_deref()
        .filter(|s| !matches!(*s, "stopped" | "exited"))
    {
        let health = matches!(state, "healthy" | "unhealthy");
        if !matches!(state, "running" | "paused" | "created") && !health {
            return Err(Error::invalid(format!(
                "--condition {state:?}: stopped, exited, running, paused, created, healthy or unhealthy"
            )));
        }
        for name in &a.containers {
            let c = db.find(name)?;
            if health && crate::db::Settings::load(&db.dir(&c.id)).health.is_none() {
                return Err(Error::invalid(format!(
                    "--condition {state}: {name} has no defined healthcheck"
                )));
            }
            loop {
                let c = db.fresh(db.find(name)?)?;
                let reached = match health {
                    true => c.state == "running" && health_status(&db, &c) == state,
                    false => c.state == state,
                };
                if reached {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            println!("-1");
        }
        return Ok(0);
    }
    for name in &a.containers {
        let c = db.find(name)?;
        let code = crate::db::wait_exit(&db, &c.id, None)?;
        println!("{}", code.unwrap_or(-1));
    }
    Ok(0)
}

/// `update`: new limits merged into the container's config.json
/// (linux.resources, field by field), applied at once by the runtime when
/// it runs (skiff-oci update), and kept for its next start; and
/// --restart, which its monitor reads when the run ends. Docker's and
/// Podman's. The config changes only once the runtime took the limits.
pub fn update(store: &Store, a: UpdateArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(&a.container)?)?;
    let dir = db.dir(&c.id);
    let limits = crate::spec::resource_extras(&crate::spec::Limits::of(&a.limits))
        .map_err(Error::invalid)?
        .resources;
    let restart = match &a.restart {
        Some(r) => Some(crate::db::RestartPolicy::parse(r)?),
        None => None,
    };
    if limits.is_empty() && restart.is_none() {
        return Err(Error::invalid(
            "update: nothing to change (give limits, such as --memory or --cpus, or --restart)",
        ));
    }
    if restart.as_ref().is_some_and(|r| r.name != "no") && c.auto_remove {
        return Err(Error::invalid(format!(
            "--restart: {}: a --rm container cannot restart",
            a.container
        )));
    }
    if !limits.is_empty() {
        if ctr::is_vm(&db, &c) {
            return Err(Error::invalid(format!(
                "update {}: a VM container's limits are its VM's size, set at its start",
                a.container
            )));
        }
        update_limits(&db, &c, &dir, limits)?;
    }
    if let Some(restart) = restart {
        let mut settings = crate::db::Settings::load(&dir);
        settings.restart = restart;
        settings.save(&dir)?;
    }
    println!("{}", a.container);
    Ok(0)
}

/// The limits merged into config.json's linux.resources; applied by the
/// runtime first when the container runs.
fn update_limits(
    db: &Db,
    c: &Ctr,
    dir: &std::path::Path,
    limits: serde_json::Map<String, Value>,
) -> Result<()> {
    let path = dir.join("config.json");
    let mut config: Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Error::invalid(format!("{}: its config.json is unreadable", c.name)))?;
    let resources = &mut config["linux"]["resources"];
    if !resources.is_object() {
        *resources = json!({});
    }
    for (kind, fields) in &limits {
        let Some(fields) = fields.as_object() else {
            continue;
        };
        if !resources[kind].is_object() {
            resources[kind] = json!({});
        }
        for (k, v) in fields {
            resources[kind][k] = v.clone();
        }
    }
    if c.state == "running" || c.state == "paused" {
        let file = dir.join("update.json");
        std::fs::write(&file, serde_json::to_vec(resources).unwrap_or_default())
            .map_err(|e| Error::at(&file, "writing", e))?;
        let o = ctr::oci(db, &c.id)
            .args(["update", "--resources"])
            .arg(&file)
            .arg(&c.id)
            .output();
        let _ = std::fs::remove_file(&file);
        let o = o.map_err(|e| Error::io("running skiff-oci update", e))?;
        if !o.status.success() {
            let why = String::from_utf8_lossy(&o.stderr);
            return Err(Error::invalid(format!(
                "update {}: {}",
                c.name,
                why.trim().trim_start_matches("skiff-oci: ")
            )));
        }
    }
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&config).unwrap_or_default(),
    )
    .map_err(|e| Error::at(&path, "writing", e))
}

/// `healthcheck run`: the container's check once, recorded as the timer
/// records it (and its --health-on-failure action taken). 0 when it
/// passes; 1, printing "unhealthy", when it fails (Podman's).
pub fn healthcheck_run(store: &Store, name: &str) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(name)?)?;
    let Some(hc) = crate::db::Settings::load(&db.dir(&c.id)).health else {
        return Err(Error::invalid(format!(
            "{name}: the container has no defined healthcheck"
        )));
    };
    if c.state != "running" {
        return Err(Error::invalid(format!("{name}: container is not running")));
    }
    let (probe, h) = ctr::run_health_check(&db, &c, &hc)?;
    ctr::act_on_health(&db, &c, &hc, &h);
    if probe.timed_out {
        return Err(Error::invalid(format!(
            "{name}: the healthcheck command exceeded its timeout of {}",
            format::go_duration_text(hc.timeout)
        )));
    }
    if probe.entry.exit_code != 0 {
        println!("unhealthy");
        return Ok(1);
    }
    Ok(0)
}

pub fn commit(store: &mut Store, a: CommitArgs) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(&a.container)?;
    if c.image_id.is_empty() {
        return Err(Error::invalid(format!(
            "commit {}: it runs from --rootfs, not an image: nothing to add a layer to",
            a.container
        )));
    }
    let name = a.image.as_deref().map(Reference::parse_local).transpose()?;
    let upper = db.dir(&c.id).join("upper");
    let created = format::rfc3339(format::now(), None);
    // Checked before the layer is written: a bad change fails first.
    crate::images::apply_changes(&mut json!({}), &a.change)?;
    // -q: Podman's commit prints progress without it; this one prints
    // the id alone either way.
    let _ = a.quiet;
    // The container's own Config over the image's (Docker's and Podman's
    // commit), then the changes.
    let made = crate::db::Settings::load(&db.dir(&c.id)).config;
    let edit = |config: &mut Value| -> Result<()> {
        if let Some(author) = &a.author {
            config["author"] = json!(author);
        }
        if let Some(Value::Object(made)) = &made {
            if !config["config"].is_object() {
                config["config"] = json!({});
            }
            if let Some(own) = config["config"].as_object_mut() {
                for (k, v) in made {
                    let empty = v.is_null()
                        || v.as_str() == Some("")
                        || v.as_object().is_some_and(|o| o.is_empty());
                    match empty {
                        true => own.remove(k),
                        false => own.insert(k.clone(), v.clone()),
                    };
                }
            }
        }
        crate::images::apply_changes(config, &a.change)
    };
    // In a user namespace of its own, its files' owners on the host are
    // its ids shifted: the layer has them as the container saw them.
    let maps = crate::idmap::read_maps(&db.dir(&c.id).join("config.json"));
    let shift = |uid: u64, gid: u64| {
        maps.as_ref()
            .map_or((uid, gid), |m| m.container_ids(uid, gid))
    };
    let owners: &dyn Fn(u64, u64) -> (u64, u64) = &shift;
    let id = skiff_image::commit::commit(
        store,
        &c.image_id,
        (&upper, maps.is_some().then_some(owners)),
        name.as_ref(),
        &created,
        a.message.as_deref(),
        &edit,
    )?;
    crate::db::record(&db, &c, "commit");
    write_iidfile(a.iidfile.as_deref(), &id)?;
    println!("{}", id.trim_start_matches("sha256:"));
    Ok(0)
}

pub fn pause(store: &Store, mut a: PauseArgs, freeze: bool) -> Result<i32> {
    let db = Db::open(&store.root)?;
    a.containers.extend(filtered(&db, &a.filter)?);
    if a.all {
        let want = if freeze { "running" } else { "paused" };
        a.containers = all_names(&db, true)?
            .into_iter()
            .filter(|n| db.find(n).is_ok_and(|c| c.state == want))
            .collect();
    }
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

pub fn top(store: &Store, name: &str, words: &[String]) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.fresh(db.find(name)?)?;
    if c.state != "running" && c.state != "paused" {
        return Err(Error::invalid(format!("{name}: container is not running")));
    }
    let Some(descriptors) = crate::top::descriptors(words) else {
        return ps_in(&db, &c, words);
    };
    let names = crate::top::Names::of_rootfs(&db.dir(&c.id).join("rootfs"));
    let procs = if ctr::is_vm(&db, &c) {
        crate::top::check_vm(&descriptors)?;
        crate::vm::processes(&db, &c)?
    } else {
        crate::top::read_procs(&host_pids(&db, &c)?)
    };
    print!("{}", crate::top::render(&descriptors, &procs, &names));
    Ok(0)
}

/// The host pids of a container's processes, from its runtime.
fn host_pids(db: &Db, c: &Ctr) -> Result<Vec<i64>> {
    let o = ctr::oci(db, &c.id)
        .args(["ps", "--format", "json", &c.id])
        .output()
        .map_err(|e| Error::io("running skiff-oci ps", e))?;
    if !o.status.success() {
        return Err(Error::invalid(format!(
            "{}: {}",
            c.name,
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    serde_json::from_slice(&o.stdout)
        .map_err(|e| Error::invalid(format!("{}: skiff-oci ps's answer: {e}", c.name)))
}

/// `top CTR OPTIONS...` with options that are not descriptors: ps(1) with
/// them, run in the container (Podman's fallback), its own line left out.
fn ps_in(db: &Db, c: &Ctr, words: &[String]) -> Result<i32> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
    let o = std::process::Command::new(exe)
        .arg("--root")
        .arg(&db.root)
        .args(["exec", &c.id, "ps"])
        .args(words)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("running ps in the container", e))?;
    if !o.status.success() {
        return Err(Error::invalid(format!(
            "top {}: {:?} are not descriptors, and ps(1) in the container failed with them: {}",
            c.name,
            words.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    let own = words.join(" ");
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        if !line.contains(&own) {
            println!("{line}");
        }
    }
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

/// `system prune`: pods, then containers, networks, images (and build's
/// cache with -a), and with --volumes volumes, each section headed as
/// Podman heads it.
pub fn system_prune(store: &mut Store, all: bool, volumes: bool) -> Result<i32> {
    println!("Deleted Pods");
    pod(store, PodCommand::Prune { force: true })?;
    println!("Deleted Containers");
    prune(store)?;
    println!("Deleted Networks");
    network(store, NetworkCommand::Prune { force: true })?;
    if volumes {
        println!("Deleted Volumes");
        volume(
            store,
            VolumeCommand::Prune {
                all: false,
                force: true,
            },
        )?;
    }
    println!("Deleted Images");
    crate::images::prune(
        store,
        PruneArgs {
            all,
            build_cache: all,
            force: true,
        },
    )?;
    Ok(0)
}

/// `system reset`: every pod and container removed (stopped first), the
/// store's networks but the default, volumes, images and the build cache;
/// then whatever the store still mounts is unmounted and the store
/// removed (Podman's). Without -f it asks first.
pub fn system_reset(mut store: Store, force: bool) -> Result<i32> {
    let root = store.root.clone();
    if !force {
        eprint!(
            "WARNING! This removes every pod, container, image, volume, secret and network (but the default) of {}.\nAre you sure you want to continue? [y/N] ",
            root.display()
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    pod(
        &mut store,
        PodCommand::Rm {
            force: true,
            time: Some(0),
            all: true,
            pods: Vec::new(),
        },
    )?;
    let db = Db::open(&root)?;
    for c in db.all()? {
        remove_forced(&mut store, &db, &c.id)?;
    }
    let dir = crate::net::networks_dir(&db);
    for net in skiff_net::network::Network::list(&dir).unwrap_or_default() {
        if net.name != skiff_net::network::DEFAULT {
            skiff_net::native::remove(&net).map_err(|e| Error::invalid(e.to_string()))?;
        }
    }
    for v in crate::volumes::list(&db) {
        crate::volumes::remove(&db, &v)?;
    }
    for img in store.images()? {
        // Image mounts hold some: let go (their mounts go below).
        for holder in store.holders(&img.id)? {
            store.release(&holder)?;
        }
        store.remove_image(&img.id)?;
    }
    store.build_cache_clear()?;
    store.collect(true)?;
    drop(db);
    drop(store);
    // Mounts under the store (an image mount, a crash's overlay) go
    // first, deepest first: the removal must not reach into them.
    let prefix = format!("{}/", root.display());
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in &mounts {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    let left = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&prefix)));
    if left {
        return Err(Error::invalid(format!(
            "system reset: something is still mounted under {}: left as it is",
            root.display()
        )));
    }
    skiff_image::store::remove_tree(&root)?;
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
pub fn stats(store: &Store, names: &[String], no_stream: bool, fmt: Option<&str>) -> Result<i32> {
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
        // Podman's field names, for --format.
        let entry = |r: &Vec<String>| {
            json!({"ID": r[0], "ContainerID": r[0], "Name": r[1], "CPUPerc": r[2], "CPU": r[2],
                   "MemUsage": r[3], "MemPerc": r[4], "PIDs": r[5], "PIDS": r[5]})
        };
        match fmt {
            None | Some("table") => print!(
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
            ),
            Some("json") => {
                let docs: Vec<Value> = rows
                    .iter()
                    .map(|r| json!({"id": r[0], "name": r[1], "cpu_percent": r[2], "mem_usage": r[3], "mem_percent": r[4], "pids": r[5]}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&docs).unwrap_or_default()
                );
            }
            Some(t) => {
                let (table, t) = match t.strip_prefix("table") {
                    Some(rest) => (true, rest.trim_start()),
                    None => (false, t),
                };
                let lines = rows
                    .iter()
                    .map(|r| format::template(t, &entry(r)).map_err(Error::invalid))
                    .collect::<Result<Vec<_>>>()?;
                if table {
                    print!("{}", format::template_table(t, "ID", &lines));
                } else {
                    for l in lines {
                        println!("{l}");
                    }
                }
            }
        }
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
    // Where the runtime mounted something (and the directories above):
    // the stubs it made there are not the container's changes (Podman's
    // and Docker's diff leave them out).
    let config: Value = std::fs::read(db.dir(&c.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut stubs = std::collections::HashSet::new();
    for m in config["mounts"].as_array().into_iter().flatten() {
        let mut p = std::path::Path::new(m["destination"].as_str().unwrap_or_default());
        while let Some(rel) = p
            .strip_prefix("/")
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
        {
            stubs.insert(rel.display().to_string());
            p = p.parent().unwrap_or(std::path::Path::new("/"));
        }
    }
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
            if stubs.contains(&relp) && (m.is_dir() || m.len() == 0) {
                if m.is_dir() {
                    stack.push(relp);
                }
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

/// `secret create|ls|inspect|rm|exists`, as Podman's.
pub fn secret(store: &Store, cmd: SecretCommand) -> Result<i32> {
    use crate::secrets;
    let root = store.root.as_path();
    match cmd {
        SecretCommand::Create {
            driver,
            env,
            label,
            name,
            source,
        } => {
            if driver != "file" {
                return Err(Error::invalid(format!(
                    "--driver {driver:?}: file is the only driver"
                )));
            }
            let labels = label_map(&label)?;
            let new = secrets::NewSecret {
                name: &name,
                source: &source,
                from_env: env,
                labels,
            };
            println!("{}", secrets::create(root, &new)?);
        }
        SecretCommand::Ls {
            quiet,
            format,
            noheading,
            filter,
        } => {
            let mut wanted: Vec<(String, String)> = vec![];
            for f in &filter {
                match f.split_once('=') {
                    Some((k @ ("name" | "id"), v)) => wanted.push((k.to_string(), v.to_string())),
                    _ => {
                        return Err(Error::invalid(format!(
                            "--filter {f:?}: name=NAME or id=ID"
                        )))
                    }
                }
            }
            let list: Vec<secrets::Secret> = secrets::all(root)
                .into_iter()
                .filter(|s| {
                    wanted.is_empty()
                        || wanted.iter().any(|(k, v)| match k.as_str() {
                            "name" => s.name().contains(v.as_str()),
                            _ => s.id.starts_with(v.as_str()),
                        })
                })
                .collect();
            if quiet {
                list.iter().for_each(|s| println!("{}", s.id));
                return Ok(0);
            }
            if let Some(f) = format.as_deref().filter(|f| *f != "table") {
                let docs: Vec<Value> = list.iter().map(ls_doc).collect();
                let f = f.strip_prefix("table").map(str::trim_start).unwrap_or(f);
                return print_docs(&docs, Some(f)).map(|()| 0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    let when = |key: &str| {
                        let t = s.meta[key].as_str().unwrap_or_default();
                        format::ago(format::parse_moment(t).ok().map(|t| t as i64))
                    };
                    vec![
                        s.id.clone(),
                        s.name().to_string(),
                        "file".into(),
                        when("CreatedAt"),
                        when("UpdatedAt"),
                    ]
                })
                .collect();
            // Podman's layout (Go's tabwriter).
            let mut all = vec![];
            if !noheading {
                all.push(
                    ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
                        .map(String::from)
                        .to_vec(),
                );
            }
            all.extend(rows);
            print!("{}", format::tabwriter(&all));
        }
        SecretCommand::Inspect {
            secrets: names,
            format,
        } => {
            let docs = names
                .iter()
                .map(|n| secrets::find(root, n).map(|s| s.meta))
                .collect::<Result<Vec<_>>>()?;
            print_docs(&docs, format.as_deref())?;
        }
        SecretCommand::Rm {
            all,
            secrets: names,
        } => {
            let list = match all {
                true => secrets::all(root),
                false => names
                    .iter()
                    .map(|n| secrets::find(root, n))
                    .collect::<Result<Vec<_>>>()?,
            };
            for s in list {
                secrets::remove(root, &s)?;
                println!("{}", s.id);
            }
        }
        SecretCommand::Exists { secret } => {
            return Ok(if secrets::find(root, &secret).is_ok() {
                0
            } else {
                1
            });
        }
    }
    Ok(0)
}

/// What `secret ls --format` reads: Podman's fields (ID, Name, Driver,
/// CreatedAt, UpdatedAt) and the inspect document's.
fn ls_doc(s: &crate::secrets::Secret) -> Value {
    let mut d = s.meta.clone();
    d["Name"] = json!(s.name());
    d["Driver"] = json!("file");
    d
}

/// Where `mount` marks a container as mounted by the user (its rootfs
/// is mounted while it exists; the mark is what `mount` lists, as
/// Podman's mount count).
const USER_MOUNTED: &str = "user-mounted";

/// `mount [-a] [CTR...]`: the root filesystems' paths; without
/// containers, those marked mounted (Podman's `ID  PATH` lines, or JSON).
pub fn mount(
    store: &Store,
    all: bool,
    format: Option<&str>,
    no_trunc: bool,
    names: &[String],
) -> Result<i32> {
    let db = Db::open(&store.root)?;
    if all || !names.is_empty() {
        let list = match all {
            true => db
                .all()?
                .into_iter()
                .filter(|c| infra_of(&db, c).is_none())
                .collect(),
            false => names
                .iter()
                .map(|n| db.find(n))
                .collect::<Result<Vec<_>>>()?,
        };
        for c in &list {
            let dir = db.dir(&c.id);
            std::fs::write(dir.join(USER_MOUNTED), b"")
                .map_err(|e| Error::at(&dir, "marking the container mounted", e))?;
            if !all {
                println!("{}", dir.join("rootfs").display());
            }
        }
        if !all {
            return Ok(0);
        }
    }
    let marked: Vec<Ctr> = db
        .all()?
        .into_iter()
        .filter(|c| db.dir(&c.id).join(USER_MOUNTED).exists())
        .collect();
    match format {
        Some("json") => {
            let docs: Vec<Value> = marked
                .iter()
                .map(|c| json!({"id": c.id, "Names": [c.name], "mountpoint": db.dir(&c.id).join("rootfs")}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&docs).unwrap_or_default()
            );
        }
        Some(other) => {
            return Err(Error::invalid(format!("--format {other:?}: json")));
        }
        None => {
            for c in &marked {
                let id = if no_trunc {
                    c.id.as_str()
                } else {
                    short(&c.id)
                };
                println!("{id}  {}", db.dir(&c.id).join("rootfs").display());
            }
        }
    }
    Ok(0)
}

/// `unmount [-a] CTR...`: the mark taken off; each name printed.
pub fn unmount(store: &Store, all: bool, names: &[String]) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let list: Vec<(String, Ctr)> = match all {
        true => db.all()?.into_iter().map(|c| (c.id.clone(), c)).collect(),
        false => names
            .iter()
            .map(|n| db.find(n).map(|c| (n.clone(), c)))
            .collect::<Result<_>>()?,
    };
    for (given, c) in list {
        let mark = db.dir(&c.id).join(USER_MOUNTED);
        if all && !mark.exists() {
            continue;
        }
        let _ = std::fs::remove_file(&mark);
        println!("{given}");
    }
    Ok(0)
}

/// `container checkpoint`: CRIU's images of each container in its
/// directory's `checkpoint/` (skiff-oci checkpoint); the container then
/// rests (exited 0, its monitor told) unless --leave-running.
pub fn checkpoint(
    store: &Store,
    names: &[String],
    all: bool,
    leave_running: bool,
    tcp: bool,
) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let names = match all {
        true => all_names(&db, true)?,
        false => names.to_vec(),
    };
    for name in &names {
        let c = db.fresh(db.find(name)?)?;
        let refuse = |why: &str| Err(Error::invalid(format!("checkpoint {name}: {why}")));
        if c.state != "running" {
            return refuse(&format!("the container is {}, not running", c.state));
        }
        if ctr::is_vm(&db, &c) {
            return refuse("a VM container's processes are the guest's (not yet)");
        }
        if ctr::has_terminal(&db, &c) {
            return refuse("a container with a terminal (-t) cannot be restored onto one yet");
        }
        if c.auto_remove && !leave_running {
            return refuse(
                "a --rm container is removed as it stops: nothing would be left to restore",
            );
        }
        let dir = db.dir(&c.id);
        let images = dir.join("checkpoint");
        let _ = std::fs::remove_dir_all(&images);
        std::fs::create_dir_all(&images).map_err(|e| Error::at(&images, "making", e))?;
        let mark = dir.join(crate::db::CHECKPOINTED);
        if !leave_running {
            std::fs::write(&mark, b"").map_err(|e| Error::at(&mark, "writing", e))?;
        }
        let mut cmd = ctr::oci(&db, &c.id);
        cmd.arg("checkpoint").arg("--image-path").arg(&images);
        if leave_running {
            cmd.arg("--leave-running");
        }
        if tcp {
            cmd.arg("--tcp-established");
        }
        let out = cmd
            .arg(&c.id)
            .output()
            .map_err(|e| Error::io("running skiff-oci checkpoint", e))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&mark);
            return refuse(String::from_utf8_lossy(&out.stderr).trim());
        }
        if !leave_running {
            // The monitor records the end; bounded, as every wait here.
            crate::db::wait_exit(&db, &c.id, Some(Duration::from_secs(30)))?;
        }
        crate::db::record(&db, &c, "checkpoint");
        println!("{name}");
    }
    Ok(0)
}

/// `container restore`: a new monitor brings each container back from
/// its checkpoint (skiff-oci restore), output into the same log.
pub fn restore(store: &Store, names: &[String], all: bool, tcp: bool) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let names: Vec<String> = match all {
        true => db
            .all()?
            .into_iter()
            .filter(|c| {
                c.state == "exited" && db.dir(&c.id).join("checkpoint/inventory.img").exists()
            })
            .map(|c| c.name)
            .collect(),
        false => names.to_vec(),
    };
    for name in &names {
        let c = db.fresh(db.find(name)?)?;
        let dir = db.dir(&c.id);
        if !dir.join("checkpoint/inventory.img").exists() {
            return Err(Error::invalid(format!(
                "restore {name}: it has no checkpoint (container checkpoint makes one)"
            )));
        }
        if c.state == "running" || c.state == "paused" {
            return Err(Error::invalid(format!(
                "restore {name}: the container is {}",
                c.state
            )));
        }
        ctr::reset_exited(&db, &c)?;
        // The mark says how: the monitor's restore reads it.
        let mark = dir.join(crate::db::RESTORE);
        let how: &[u8] = if tcp { crate::db::RESTORE_TCP } else { b"" };
        std::fs::write(&mark, how).map_err(|e| Error::at(&mark, "writing", e))?;
        let c = ctr::start_detached(&db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            let _ = std::fs::remove_file(&mark);
            ctr::print_start_error(&db, &c.id);
            return Ok(c.exit_code.unwrap_or(125) as i32);
        }
        println!("{name}");
    }
    Ok(0)
}
