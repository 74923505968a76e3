//! Containers (issue 17, a first part): `run`, `create`/`start`, `ps`,
//! `logs`, `stop`, `kill`, `rm`, `exec`, `wait`, and container `inspect`,
//! on skiff-oci.
//!
//! Each container is a directory `containers/ID/` in the store: its
//! bundle (config.json, `rootfs`: an overlay of the image's layers with an
//! upper dir of its own), its hosts/hostname/resolv.conf, its log
//! (`ctr.log`, Podman's k8s-file format); and a row in the store's
//! database. skiff-oci keeps its runtime state under `runtime/`.
//!
//! No daemon: a monitor process per container (this binary, `__monitor`,
//! a child subreaper) creates and starts it with skiff-oci, holds the read
//! ends of its stdout and stderr and writes them to the log, waits for its
//! init, and records the exit code; with `--rm` it removes the container.
//! A foreground `run` is the monitor itself, echoing the output too; `-d`
//! starts one detached and returns once the container runs.
//!
//! Below this module: `db` (the rows, settings and state marks), `stdio`
//! (the log, the attach hub's clients, the pipes), `net`, `volumes`, and
//! `vm` (the same steps for `--isolation vm`); `pods` and the commands
//! (`ctl`) are above it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_image::store::Store;
use skiff_image::{Error, Result};

use crate::db::{
    alive, backing_off, mark_exited, mark_running, mark_stopped_by_user, random_id, restart_count,
    wait_exit, Ctr, Db, Settings, ATTACH_FIRST, BACK_OFF, RESTARTS, STOPPED_BY_USER,
};
use crate::format;
use crate::health::{Health, Healthcheck};
use crate::spec::{group_id, resolve_user, ExecOpts};
use crate::stdio::{
    copy_output, copy_terminal, in_own_session, pipe, set_nonblocking, start_failure_code,
    LogLimits, LogWriter, Ran, RunIo, SharedLog,
};

/// skiff-oci: $SKIFF_OCI, else beside this binary, else on PATH.
pub fn runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_OCI") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("skiff-oci")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("skiff-oci"))
}

/// The container's OCI runtime (its `--runtime`, else skiff-oci) with
/// this store's state root for it.
pub fn oci(db: &Db, id: &str) -> Command {
    let chosen = Settings::load(&db.dir(id)).runtime;
    let mut c = Command::new(chosen.unwrap_or_else(runtime));
    c.arg("--root").arg(db.runtime_root());
    // skiff-oci's own trace would go to the container's stderr (its log).
    c.env_remove("SKIFF_TRACE");
    c
}

/// The flags `run` and `create` take.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    pub name: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub hostname: Option<String>,
    pub network: Option<String>,
    pub tty: bool,
    pub rm: bool,
    pub read_only: bool,
    pub init: bool,
    /// --init-path: the init bound at /dev/init instead of this program.
    pub init_path: Option<PathBuf>,
    /// --env-merge: NAME=VALUE with ${NAME}s of the image's environment.
    pub env_merge: Vec<String>,
    /// --rootfs: a directory instead of an image.
    pub rootfs: Option<GivenRootfs>,
    pub log_limits: LogLimits,
    pub extras: crate::spec::Extras,
    pub settings: Settings,
    /// --stop-signal, over the image's StopSignal.
    pub stop_signal: Option<String>,
    /// -p specs and -P.
    pub publish: Vec<String>,
    pub publish_all: bool,
    /// --expose.
    pub expose: Vec<String>,
    /// --pod: what it joins of its pod's infra container.
    pub pod: Option<Join>,
    /// --health-* and --no-healthcheck, over the image's HEALTHCHECK.
    pub health: crate::health::Flags,
    /// The environment it starts from (--unsetenv, --unsetenv-all; a
    /// build's RUN).
    pub env_rules: crate::spec::EnvRules,
    /// --no-hosts: the image's /etc/hosts stays.
    pub no_hosts: bool,
}

/// `-v ...:U`: `path` and everything below it owned by `owner` (the
/// container's user; Podman's U), links themselves, not followed.
fn chown_tree(path: &Path, owner: (u32, u32)) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1))
        .map_err(|e| Error::at(path, "-v ...:U: owning", e))?;
    let meta = fs::symlink_metadata(path).map_err(|e| Error::at(path, "-v ...:U: reading", e))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| Error::at(path, "-v ...:U: reading", e))? {
            let entry = entry.map_err(|e| Error::at(path, "-v ...:U: reading", e))?;
            chown_tree(&entry.path(), owner)?;
        }
    }
    Ok(())
}

/// Docker's container Config (see Settings::config): the image's
/// environment under -e's (no secret, and none of the variables the
/// engine adds at run: HOSTNAME, HOME, TERM, container), Entrypoint and
/// Cmd apart, User and WorkingDir as given (else the image's), the
/// labels, ports and volumes, the stop signal.
fn docker_config(
    icfg: &Value,
    o: &RunOpts,
    args: &[String],
    plain_env: &[String],
    settings: &Settings,
) -> Value {
    let (entrypoint, cmd) = crate::spec::command_parts(icfg, o.entrypoint.as_deref(), args);
    let rules = crate::spec::EnvRules {
        defaults: match o.env_rules.defaults {
            crate::spec::EnvDefaults::Nothing => crate::spec::EnvDefaults::Nothing,
            _ => crate::spec::EnvDefaults::Path,
        },
        ..o.env_rules.clone()
    };
    let given = |k: &str| plain_env.iter().any(|e| e.split('=').next() == Some(k));
    let env: Vec<String> = crate::spec::environment(icfg, plain_env, "", None, &rules)
        .into_iter()
        .filter(|e| !e.starts_with("HOSTNAME=") || given("HOSTNAME"))
        .collect();
    let list = |v: Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    let text = |given: &Option<String>, key: &str| {
        given
            .clone()
            .or_else(|| icfg.get(key).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    };
    json!({
        "Env": env,
        "Cmd": list(cmd),
        "Entrypoint": list(entrypoint),
        "User": text(&o.user, "User"),
        "WorkingDir": text(&o.workdir, "WorkingDir"),
        "Labels": settings.labels,
        "ExposedPorts": settings.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
        "Volumes": icfg.get("Volumes").cloned().unwrap_or(Value::Null),
        "StopSignal": text(&o.stop_signal, "StopSignal"),
    })
}

/// `--rootfs PATH[:O]`: the directory the container runs in, used as it
/// is (its config's root.path; `rootfs` in the container's directory is
/// a link to it, for the engine's own readers), or with `:O` as the lower
/// layer of an overlay whose changes stay in the container's directory.
#[derive(Debug, Clone)]
pub struct GivenRootfs {
    pub path: PathBuf,
    pub overlay: bool,
}

fn mount_given_rootfs(r: &GivenRootfs, dir: &Path, rootfs: &Path) -> Result<()> {
    if r.overlay {
        return skiff_image::mount::mount_layers(vec![r.path.clone()], dir, rootfs).map_err(|e| {
            Error::io(
                format!("--rootfs {}:O: mounting the overlay", r.path.display()),
                e,
            )
        });
    }
    std::os::unix::fs::symlink(&r.path, rootfs)
        .map_err(|e| Error::at(rootfs, "linking --rootfs", e))
}

/// A run that brings the container back from its checkpoint: `skiff-oci
/// restore` in the foreground (it waits for the restored init and exits
/// as it does), its stdout and stderr the pipes the restored process's
/// own output goes to (CRIU gives it the restorer's in place of the
/// checkpointed ones), read into the log as a run's.
fn restore_once(
    db: &Db,
    id: &str,
    io: RunIo,
    log: &std::sync::Arc<std::sync::Mutex<LogWriter>>,
    hub: &crate::attach::Hub,
    tcp_established: bool,
) -> Result<Ran> {
    let dir = db.dir(id);
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let pidfile = dir.join("init.pid");
    let _ = fs::remove_file(&pidfile);
    let mut restorer = {
        let mut cmd = oci(db, id);
        // Its errors to a file of their own: its stderr is the container's.
        let _ = fs::remove_file(dir.join("restore.log"));
        cmd.arg("--log")
            .arg(dir.join("restore.log"))
            .args(["restore", "--bundle"])
            .arg(&dir)
            .arg("--image-path")
            .arg(dir.join("checkpoint"))
            .arg("--pid-file")
            .arg(&pidfile);
        if tcp_established {
            cmd.arg("--tcp-established");
        }
        cmd.arg(id).stdin(Stdio::null()).stdout(out_w).stderr(err_w);
        match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Ok(Ran::NotStarted(format!(
                    "running {}: {e}",
                    runtime().display()
                )))
            }
        }
    };
    let copiers: Vec<_> = [(out_r, "stdout"), (err_r, "stderr")]
        .into_iter()
        .map(|(r, stream)| {
            let (log, hub) = (log.clone(), hub.clone());
            std::thread::spawn(move || copy_output(r, stream, &log, &hub, io.echo))
        })
        .collect();
    // Running once its pid is written; a restore that fails ends first.
    let deadline = Instant::now() + Duration::from_secs(120);
    let pid = loop {
        if let Some(pid) = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i64>().ok())
        {
            break Some(pid);
        }
        if restorer.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let Some(pid) = pid else {
        let _ = restorer.kill();
        let _ = restorer.wait();
        for t in copiers {
            let _ = t.join();
        }
        let why = fs::read_to_string(dir.join("restore.log")).unwrap_or_default();
        return Ok(Ran::NotStarted(format!(
            "restore from {}: {}",
            dir.join("checkpoint").display(),
            why.trim()
        )));
    };
    let _ = fs::remove_file(dir.join(crate::db::CHECKPOINTED));
    mark_running(db, id, pid, std::process::id() as i64)?;
    let c = db.find(id)?;
    crate::db::record(db, &c, "restore");
    let code = restorer
        .wait()
        .ok()
        .and_then(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.code().or_else(|| s.signal().map(|n| 128 + n))
        })
        .unwrap_or(125);
    for t in copiers {
        let _ = t.join();
    }
    Ok(Ran::Exited(code))
}

/// What a pod member joins (pods::join makes it), for `create`.
#[derive(Debug, Clone)]
pub struct Join {
    pub pod: String,
    pub infra_dir: PathBuf,
    /// (runtime-spec namespace type, path).
    pub namespaces: Vec<(&'static str, String)>,
    pub cgroup_parent: String,
    pub hostname: String,
}

impl Join {
    pub fn namespace(&self, kind: &str) -> Option<&str> {
        self.namespaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_str())
    }
}

/// Why the container's last start failed (the runtime's message), for
/// `run -d` and `start` to print.
const START_ERROR: &str = "start-error";

/// The message of a start that failed, printed as Podman prints it
/// (`run -d` and `start` exited with the code and said nothing).
pub fn print_start_error(db: &Db, id: &str) {
    if let Ok(why) = fs::read_to_string(db.dir(id).join(START_ERROR)) {
        eprintln!("Error: {why}");
    }
}

fn unified_cgroup_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `create`: the container's directory, rootfs, config and row; its id.
pub fn create(
    store: &mut Store,
    db: &Db,
    image: &str,
    args: &[String],
    o: &RunOpts,
) -> Result<Ctr> {
    // --rootfs: a directory, no image (and no image configuration).
    let img = match &o.rootfs {
        Some(_) => None,
        None => Some(store.find(image)?),
    };
    let cfg: Value = img
        .as_ref()
        .and_then(|i| serde_json::from_slice(&i.config).ok())
        .unwrap_or(Value::Null);
    let icfg = cfg.get("config").cloned().unwrap_or(json!({}));
    let id = random_id();
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| format!("skiff_{}", &id[..12]));
    if !valid_name(&name) {
        return Err(Error::invalid(format!(
            "--name {name:?}: use letters, digits, '_', '.', '-'"
        )));
    }
    let network = match o.pod.as_ref().and_then(|p| p.namespace("network")) {
        Some(path) => {
            if o.network.is_some() || !o.publish.is_empty() || o.publish_all {
                return Err(Error::invalid(
                    "--network/-p/-P with --pod: a pod's containers share its network; give them to pod create",
                ));
            }
            crate::net::Choice::Join(path.into())
        }
        None => crate::net::choose(db, o.network.as_deref())?,
    };
    let exposed = crate::net::exposed_by(&icfg, &o.expose)?;
    let ports = crate::net::publish(&o.publish, o.publish_all, &exposed)?;
    if !o.settings.network_aliases.is_empty() && !matches!(network, crate::net::Choice::Cni(_)) {
        return Err(Error::invalid(
            "--network-alias: aliases are names on a bridge network (--network bridge or a network's name)",
        ));
    }
    if o.settings.ip.is_some() && !matches!(network, crate::net::Choice::Cni(_)) {
        return Err(Error::invalid(
            "--ip: an address is given on a bridge network (--network bridge or a network's name)",
        ));
    }
    if o.settings.mac_address.is_some() && !matches!(network, crate::net::Choice::Cni(_)) {
        return Err(Error::invalid(
            "--mac-address: a hardware address is given on a bridge network (--network bridge or a network's name)",
        ));
    }
    if !ports.is_empty() {
        match &network {
            crate::net::Choice::Cni(_) | crate::net::Choice::Pasta => {}
            crate::net::Choice::Host => eprintln!(
                "skiff: warning: -p/-P are of no use with --network host (the host's ports are the container's): left out"
            ),
            _ => {
                return Err(Error::invalid(
                    "-p/-P: ports are published only from a bridge network (--network bridge or a network's name) or pasta",
                ))
            }
        }
    }
    let command = crate::spec::command(&icfg, o.entrypoint.as_deref(), args);
    if command.is_empty() {
        return Err(Error::invalid(
            "no command: the image has neither Entrypoint nor Cmd, and none was given",
        ));
    }
    let health = Healthcheck::resolve(&o.health, icfg.get("Healthcheck"))?;
    if health.as_ref().is_some_and(|h| h.on_failure == "restart")
        && !matches!(o.settings.restart.name.as_str(), "" | "no")
    {
        return Err(Error::invalid(
            "--health-on-failure restart and --restart conflict: the check's restart would fight the policy's; use one",
        ));
    }
    // --init: this binary (static) bound in at /dev/init runs the command;
    // --init-path's program instead, as `INIT -- CMD` (tini's and
    // catatonit's form, as Podman runs them).
    let mut extras = o.extras.clone();
    let process_args = if o.init {
        let (exe, own) = match &o.init_path {
            Some(p) => (p.clone(), false),
            None => (
                std::env::current_exe()
                    .map_err(|e| Error::io("--init: finding this program", e))?,
                true,
            ),
        };
        extras.mounts.push(json!({"destination": "/dev/init", "type": "bind", "source": exe, "options": ["bind", "ro", "nosuid", "nodev"]}));
        let mut a = vec!["/dev/init".to_string()];
        if own {
            a.push("__init".into());
        }
        a.push("--".into());
        a.extend(command.iter().cloned());
        a
    } else {
        command.clone()
    };
    let dir = db.dir(&id);
    fs::create_dir_all(&dir).map_err(|e| Error::at(&dir, "making", e))?;
    // Volumes this create made (removed again if it fails).
    let mut made_volumes: Vec<String> = Vec::new();
    let made = (|| -> Result<Ctr> {
        let rootfs = dir.join("rootfs");
        let id_maps = match &extras.userns {
            None => None,
            Some(crate::idmap::Userns::Maps(m)) => Some(m.clone()),
            Some(crate::idmap::Userns::Auto { size }) => {
                let taken: Vec<crate::idmap::IdMaps> = db
                    .all()?
                    .iter()
                    .filter_map(|c| crate::idmap::read_maps(&db.dir(&c.id).join("config.json")))
                    .collect();
                Some(crate::idmap::auto(&taken, *size)?)
            }
        };
        match (&img, &o.rootfs, &id_maps) {
            (Some(img), _, None) => skiff_image::mount::mount_at(store, &img.id, &dir, &rootfs)?,
            (Some(img), _, Some(m)) => {
                crate::idmap::mount_rootfs(store, &img.id, &dir, &rootfs, m)?
            }
            (None, Some(r), _) => mount_given_rootfs(r, &dir, &rootfs)?,
            (None, None, _) => unreachable!("an image or --rootfs"),
        }
        skiff_image::trace::mark("create: rootfs mounted (overlay of the image's layers)");
        // A VM pod's members each have a uts namespace in the guest, named
        // as the pod.
        let pod_uts = o
            .pod
            .as_ref()
            .filter(|p| p.namespace("uts").is_some() || o.settings.vm_pod.is_some());
        let hostname = match (pod_uts, &o.hostname) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "--hostname with --pod: a pod's containers share its hostname; give it to pod create",
                ))
            }
            (Some(p), None) => p.hostname.clone(),
            // The host's network: the host's name (Docker's and Podman's).
            (None, None) if matches!(network, crate::net::Choice::Host) => {
                fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| id[..12].to_string())
            }
            (None, h) => h.clone().unwrap_or_else(|| id[..12].to_string()),
        };
        let user = o.user.clone().or_else(|| {
            icfg.get("User")
                .and_then(|u| u.as_str())
                .filter(|u| !u.is_empty())
                .map(str::to_string)
        });
        let (uid, gid, mut groups, home) = match &user {
            Some(u) => resolve_user(&rootfs, u)?,
            None => resolve_user(&rootfs, "0").unwrap_or((0, 0, vec![], Some("/root".into()))),
        };
        for g in &extras.groups_add {
            let gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_id(&rootfs, g)?,
            };
            if !groups.contains(&gid) {
                groups.push(gid);
            }
        }
        let cwd = o
            .workdir
            .clone()
            .or_else(|| {
                icfg.get("WorkingDir")
                    .and_then(|w| w.as_str())
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "/".into());
        if !cwd.starts_with('/') {
            return Err(Error::invalid(format!(
                "--workdir {cwd:?}: must be an absolute path"
            )));
        }
        // The network first: /etc/hosts names the container's address.
        let (netns, address) = match &network {
            crate::net::Choice::None => (crate::spec::NetNs::Own, None),
            crate::net::Choice::Host => (crate::spec::NetNs::Host, None),
            crate::net::Choice::Join(p) => {
                (crate::spec::NetNs::Path(p.display().to_string()), None)
            }
            crate::net::Choice::Pasta => {
                let a = crate::net::setup_pasta(&dir, &ports)?;
                (
                    crate::spec::NetNs::Path(a.netns.display().to_string()),
                    None,
                )
            }
            crate::net::Choice::Cni(net) => {
                // A port taken now fails the create, not its start.
                drop(crate::net::hold_ports(&ports)?);
                let wanted = crate::net::Wanted {
                    ip: o.settings.ip.as_deref(),
                    mac: o.settings.mac_address.as_deref(),
                };
                let a = crate::net::setup(&dir, &id, net, &ports, wanted)?;
                (
                    crate::spec::NetNs::Path(a.netns.display().to_string()),
                    a.addresses.into_iter().next(),
                )
            }
        };
        skiff_image::trace::mark("create: network set up");
        let names = [hostname.as_str(), name.as_str()];
        let extra: Vec<(String, Vec<String>)> = o
            .settings
            .extra_hosts
            .iter()
            .map(|(ip, h)| (ip.clone(), vec![h.clone()]))
            .collect();
        let base = crate::net::host_hosts();
        let gateway = match &network {
            crate::net::Choice::Cni(net) => net.gateway(),
            _ => None,
        };
        let hosts = match (&address, &network) {
            (Some(ip), _) => {
                crate::net::hosts_text(&base, gateway.as_deref(), Some((ip, &names)), &extra)
            }
            // The host's own names stand for it.
            (None, crate::net::Choice::Host) => crate::net::hosts_text(&base, None, None, &extra),
            (None, _) => crate::net::hosts_text(
                &base,
                None,
                Some(("127.0.0.1", &[hostname.as_str()])),
                &extra,
            ),
        };
        fs::write(dir.join("hosts"), hosts)
            .map_err(|e| Error::at(&dir.join("hosts"), "writing", e))?;
        fs::write(dir.join("hostname"), format!("{hostname}\n"))
            .map_err(|e| Error::at(&dir.join("hostname"), "writing", e))?;
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = match &network {
            crate::net::Choice::Host => host_resolv,
            _ => crate::net::resolv_conf(&host_resolv),
        };
        let resolv = match o.settings.dns.is_empty() {
            true => resolv,
            false => crate::net::with_nameservers(&resolv, &o.settings.dns),
        };
        let resolv = match o.settings.dns_search.is_empty() {
            true => resolv,
            false => crate::net::with_line(&resolv, "search", &o.settings.dns_search),
        };
        let resolv = match o.settings.dns_options.is_empty() {
            true => resolv,
            false => crate::net::with_line(&resolv, "options", &o.settings.dns_options),
        };
        fs::write(dir.join("resolv.conf"), resolv)
            .map_err(|e| Error::at(&dir.join("resolv.conf"), "writing", e))?;
        // A pod's containers share its infra's files, as its network.
        let etc_dir = match &o.pod {
            Some(p) if p.namespace("network").is_some() => p.infra_dir.clone(),
            _ => dir.clone(),
        };
        let mut etc: Vec<(String, String)> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .filter(|f| !(o.no_hosts && **f == "hosts"))
            .map(|f| (format!("/etc/{f}"), etc_dir.join(f).display().to_string()))
            .collect();
        // Podman's mark of a container (systemd-detect-virt and other
        // tools look for it): an empty file (not written into a --rootfs
        // directory used as it is).
        if o.rootfs.as_ref().is_none_or(|r| r.overlay) {
            let mark = dir.join(".containerenv");
            fs::write(&mark, "").map_err(|e| Error::at(&mark, "writing", e))?;
            etc.push(("/run/.containerenv".into(), mark.display().to_string()));
        }
        // --tz: a copy of the zone's file (Podman's), so the host's can
        // change or go without reaching the container.
        if let Some(zone) = &extras.tz {
            let copy = dir.join("localtime");
            fs::copy(zone, &copy).map_err(|e| Error::at(zone, "copying --tz's zone file", e))?;
            etc.push(("/etc/localtime".into(), copy.display().to_string()));
        }
        // In a user namespace of its own, these are its root's (Podman's),
        // who may change them, as in any container.
        if let Some(m) = &id_maps {
            let (uid, gid) = m.host_ids(0, 0);
            for (_, file) in &etc {
                std::os::unix::fs::chown(file, uid, gid)
                    .map_err(|e| Error::at(Path::new(file), "giving the container's root", e))?;
            }
        }
        // Secrets: files bound read-only, or variables after -e's.
        let (secret_mounts, secret_env) =
            crate::secrets::provide(&db.root, &dir, &extras.secrets, id_maps.as_ref())?;
        let merged = crate::spec::env_merge(&icfg, &o.env_merge);
        let plain_env: Vec<String> = merged.into_iter().chain(o.env.iter().cloned()).collect();
        let given_env: Vec<String> = plain_env.iter().cloned().chain(secret_env).collect();
        let env =
            crate::spec::environment(&icfg, &given_env, &hostname, home.as_deref(), &o.env_rules);
        // Volumes: bound like -v's host paths once made and filled.
        let mut extras = extras.clone();
        extras.mounts.extend(secret_mounts);
        // -v HOST:PATH:U: the host directory given to the container's user
        // (its host ids, in a user namespace of its own).
        let owner = match &id_maps {
            Some(m) => match m.host_ids(uid, gid) {
                (Some(u), Some(g)) => (u, g),
                _ => (uid, gid),
            },
            None => (uid, gid),
        };
        for path in &extras.chown_binds {
            chown_tree(Path::new(path), owner)?;
        }
        let (binds, anonymous) =
            volume_binds(db, &icfg, &extras, &rootfs, o, owner, &mut made_volumes)?;
        extras.mounts.extend(binds);
        let mut settings = o.settings.clone();
        settings.anonymous_volumes = anonymous;
        settings.secret_env = extras
            .secrets
            .iter()
            .filter(|r| r.env)
            .map(|r| r.target.clone())
            .collect();
        settings.health = health.clone();
        settings.exposed_ports = exposed.clone();
        // The image's labels under --label's: the container's labels, as
        // Docker and Podman show them (tools select containers by them).
        if let Some(ls) = icfg.get("Labels").and_then(Value::as_object) {
            for (k, v) in ls {
                if let Some(v) = v.as_str() {
                    settings
                        .labels
                        .entry(k.clone())
                        .or_insert_with(|| v.to_string());
                }
            }
        }
        let config = crate::spec::config(&crate::spec::Plan {
            process: crate::spec::Process {
                args: process_args.clone(),
                env,
                cwd,
                uid,
                gid,
                groups,
                terminal: o.tty,
            },
            hostname: &hostname,
            network: netns,
            etc_files: &etc,
            read_only: o.read_only,
            cgroup_ns: unified_cgroup_host(),
            extras: &extras,
            joined: o
                .pod
                .as_ref()
                .map(|p| p.namespaces.as_slice())
                .unwrap_or_default(),
            cgroups_path: o
                .pod
                .as_ref()
                .map(|p| p.cgroup_parent.as_str())
                .or(extras.cgroup_parent.as_deref())
                .map(|parent| format!("{parent}/{id}"))
                // Its own group at the top of each hierarchy, wherever the
                // engine runs (a runtime puts a container without a path
                // below its caller's group, as runc does); a rootless
                // engine's go where its runtime can make them.
                .or_else(|| (!skiff_image::rootless()).then(|| format!("/{id}"))),
            id_maps: id_maps.as_ref(),
            root_path: o
                .rootfs
                .as_ref()
                .filter(|r| !r.overlay)
                .map(|r| r.path.display().to_string()),
        });
        fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap_or_default(),
        )
        .map_err(|e| Error::at(&dir.join("config.json"), "writing", e))?;
        fs::write(
            dir.join("log.json"),
            serde_json::to_vec(&o.log_limits).unwrap_or_default(),
        )
        .map_err(|e| Error::at(&dir.join("log.json"), "writing", e))?;
        settings.config = Some(docker_config(&icfg, o, args, &plain_env, &settings));
        settings.save(&dir)?;
        let stop_signal = o
            .stop_signal
            .as_deref()
            .or_else(|| icfg.get("StopSignal").and_then(|s| s.as_str()))
            .unwrap_or("SIGTERM")
            .trim_start_matches("SIG")
            .to_string();
        let c = Ctr {
            id: id.clone(),
            name: name.clone(),
            image_id: img.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
            // The name it was run by (of an image of several names), as
            // ps, inspect and --filter ancestor show it.
            image: img
                .as_ref()
                .and_then(|i| i.name_given(image).or_else(|| i.names.first().cloned()))
                .unwrap_or_else(|| image.to_string()),
            command: command.clone(),
            created: format::now(),
            state: "created".into(),
            pid: 0,
            monitor: 0,
            exit_code: None,
            started: None,
            finished: None,
            auto_remove: o.rm,
            stop_signal,
            pod: o.pod.as_ref().map(|p| p.pod.clone()).unwrap_or_default(),
        };
        db.insert(&c)?;
        if let Some(img) = &img {
            store.hold(&format!("container:{id}"), &img.id)?;
        }
        skiff_image::trace::mark("create: config, files and row written");
        if let crate::net::Choice::Cni(net) = &network {
            crate::net::refresh_hosts(db, &net.name);
        }
        crate::db::record(db, &c, "create");
        Ok(c)
    })();
    if made.is_err() {
        for v in &made_volumes {
            let _ = crate::volumes::remove(db, v);
        }
        let _ = crate::net::teardown(db, &dir, &id);
        let _ = skiff_image::mount::unmount_at(&dir.join("rootfs"));
        let _ = skiff_image::store::remove_tree(&dir);
    }
    made
}

/// The binds of a container's volumes: those asked for (-v NAME:PATH,
/// -v PATH, --mount type=volume), the image's VOLUME paths nothing else
/// covers (anonymous), and --volumes-from's. Named volumes are made on
/// first use; a new volume is filled from the image. Returns the binds and
/// the anonymous volumes' names; `made` gets every volume made here.
fn volume_binds(
    db: &Db,
    icfg: &Value,
    extras: &crate::spec::Extras,
    rootfs: &Path,
    o: &RunOpts,
    owner: (u32, u32),
    made: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<String>)> {
    let mut requests = extras.volumes.clone();
    let covered = |dest: &str, reqs: &[crate::spec::VolumeRequest]| {
        reqs.iter().any(|r| r.destination == dest)
            || extras.mounts.iter().any(|m| m["destination"] == dest)
    };
    if let Some(vs) = icfg.get("Volumes").and_then(Value::as_object) {
        for dest in vs.keys() {
            if !covered(dest, &requests) {
                requests.push(crate::spec::VolumeRequest {
                    name: None,
                    destination: dest.clone(),
                    read_only: false,
                    options: Vec::new(),
                    nocopy: false,
                    chown: false,
                });
            }
        }
    }
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for r in &requests {
        let name = match &r.name {
            Some(n) => n.clone(),
            None => {
                let n = crate::volumes::anonymous_name();
                anonymous.push(n.clone());
                n
            }
        };
        if !crate::volumes::exists(db, &name) {
            crate::volumes::create(db, &name, &json!({}), r.name.is_none())
                .map_err(|e| Error::invalid(format!("-v {name}:{}: {e}", r.destination)))?;
            made.push(name.clone());
        }
        if !r.nocopy {
            crate::volumes::fill(db, &name, rootfs, &r.destination)?;
        }
        let data = crate::volumes::data(db, &name);
        if r.chown {
            chown_tree(&data, owner)?;
        }
        // nosuid and nodev unless asked otherwise, as Podman mounts them.
        let mut options = r.options.clone();
        for (flag, opposite) in [("nosuid", "suid"), ("nodev", "dev")] {
            if !options.iter().any(|o| o == opposite) {
                options.push(flag.to_string());
            }
        }
        binds.push(crate::spec::bind_with(
            &data.display().to_string(),
            &r.destination,
            r.read_only || crate::volumes::mounts_read_only(db, &name),
            &options,
        ));
    }
    // --volumes-from: the other container's volumes and bind mounts (not
    // its own /etc files or --init), read-only when asked.
    for spec in &o.settings.volumes_from {
        let (name, mode) = spec.split_once(':').unwrap_or((spec, "rw"));
        let ro = match mode {
            "ro" => true,
            "rw" => false,
            m => {
                return Err(Error::invalid(format!(
                    "--volumes-from {spec:?}: mode {m:?}: ro or rw"
                )))
            }
        };
        let other = db.find(name)?;
        let config: Value = fs::read(db.dir(&other.id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let own = [
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/etc/localtime",
            "/dev/init",
        ];
        for m in config["mounts"].as_array().into_iter().flatten() {
            let dest = m["destination"].as_str().unwrap_or_default();
            if m["type"] != "bind" || own.contains(&dest) || covered(dest, &requests) {
                continue;
            }
            let src = m["source"].as_str().unwrap_or_default();
            let was_ro = m["options"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| x == "ro"));
            binds.push(crate::spec::bind(src, dest, ro || was_ro));
        }
    }
    Ok((binds, anonymous))
}

/// Removes a container that is not running: its runtime state, rootfs
/// mount, directory, hold on the image and row.
pub fn remove(store: &mut Store, db: &Db, c: &Ctr) -> Result<()> {
    let _ = oci(db, &c.id)
        .args(["delete", "--force", &c.id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    crate::vm::clean_up(&c.id);
    let dir = db.dir(&c.id);
    let networks = crate::net::networks_of(&dir);
    // A network that cannot be undone (a plugin gone, its list removed)
    // must not keep the container for good: said, and the rest goes.
    if let Err(e) = crate::net::teardown(db, &dir, &c.id) {
        eprintln!("skiff: warning: {}: its network: {e}", c.name);
    }
    skiff_image::trace::mark("rm: network torn down");
    // A --rootfs directory used as it is: only the link to it goes (an
    // unmount through the link would reach the user's own mounts).
    let linked = fs::symlink_metadata(dir.join("rootfs")).is_ok_and(|m| m.file_type().is_symlink());
    if !linked {
        skiff_image::mount::unmount_at(&dir.join("rootfs"))?;
    }
    // Its labels are read before its directory goes.
    let removed = crate::db::event(db, c, "remove");
    skiff_image::store::remove_tree(&dir)?;
    store.release(&format!("container:{}", c.id))?;
    db.delete(&c.id)?;
    removed.record(&db.root);
    for n in networks {
        crate::net::refresh_hosts(db, &n);
    }
    Ok(())
}

/// A container whose directory is gone (a crash between the two): its
/// runtime state, its hold on the image and its row go.
pub fn forget(store: &mut Store, db: &Db, c: &Ctr) -> Result<()> {
    let _ = oci(db, &c.id)
        .args(["delete", "--force", &c.id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    crate::vm::clean_up(&c.id);
    store.release(&format!("container:{}", c.id))?;
    db.delete(&c.id)
}

/// The monitor: creates and starts the container with skiff-oci, logs its
/// output (and echoes it when `echo`), waits for it, records how it ended,
/// and starts it again as its restart policy says; the container's exit
/// code (or 125/126/127 when it did not start).
pub fn monitor(
    store: &mut Store,
    db: &Db,
    id: &str,
    echo: crate::attach::Echo,
    stdin_inherit: bool,
) -> Result<i32> {
    let c = db.find(id)?;
    // Init is re-parented to us once skiff-oci create exits.
    // SAFETY: a prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let dir = db.dir(id);
    let settings = Settings::load(&dir);
    let log: SharedLog = std::sync::Arc::new(std::sync::Mutex::new(LogWriter::open(
        &dir,
        LogLimits::load(&dir),
    )?));
    // `attach` connects here, to each run in turn.
    let hub = crate::attach::Hub::default();
    hub.serve(&dir)?;
    let io = RunIo {
        echo,
        stdin_inherit,
        tty: has_terminal(db, &c),
        interactive: settings.interactive,
        hold: fs::remove_file(dir.join(ATTACH_FIRST)).is_ok(),
    };
    let mut restarts = 0;
    let mut pause = Duration::from_millis(100);
    // Volumes that mount a filesystem stay mounted, and published ports
    // bound, while the monitor runs.
    let mut held = None;
    let code = loop {
        let began = Instant::now();
        let io = RunIo {
            stdin_inherit: io.stdin_inherit && restarts == 0,
            hold: io.hold && restarts == 0,
            ..io
        };
        let health = health_timer(db, id, settings.health.as_ref());
        let deadline = run_deadline(db, id, settings.timeout);
        let holding = match held.is_some() {
            true => Ok(()),
            false => crate::net::hold_ports_of(&dir)
                .and_then(|ports| Ok((ports, crate::volumes::hold_for(db, id)?)))
                .map(|h| held = Some(h)),
        };
        let ran = match (holding, &settings.isolation) {
            (Err(e), _) => Ok(Ran::NotStarted(e.to_string())),
            (Ok(()), crate::db::Isolation::Vm) => {
                let pod = settings.vm_pod.as_deref();
                crate::vm::run_once(db, id, pod, io, &log, &hub)
            }
            (Ok(()), crate::db::Isolation::Default) => {
                run_once(db, id, io, &log, &hub, settings.pidfile.as_deref())
            }
        };
        // The timers end with the run (a check under way ends with it).
        drop(deadline);
        let health_timer = health.map(|(stop, timer)| {
            drop(stop);
            timer
        });
        tell_clients(&hub, &ran);
        hub.close();
        let code = match ran? {
            // Its end was the checkpoint's: at rest, as Podman shows it.
            Ran::Exited(_) if dir.join(crate::db::CHECKPOINTED).exists() => {
                mark_exited(db, id, 0)?;
                let _ = oci(db, id)
                    .args(["delete", "--force", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                break 0;
            }
            Ran::Exited(code) => code,
            // It did not start: no restart (Docker's policies apply to
            // containers that ran).
            Ran::NotStarted(msg) => {
                // A create that worked before start failed leaves state.
                let _ = oci(db, id)
                    .args(["delete", "--force", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let code = start_failure_code(&msg);
                let why = msg.trim().trim_start_matches("skiff-oci: ");
                eprintln!("Error: {why}");
                // For whoever started it detached (run -d, start): our
                // stderr goes nowhere then.
                let _ = fs::write(dir.join(START_ERROR), why);
                db.set(
                    id,
                    "state = 'exited', exit_code = ?1, finished = ?2",
                    &[&(code as i64), &format::now()],
                )?;
                break code;
            }
        };
        mark_exited(db, id, code)?;
        // As it is named now (a rename while it ran).
        let c = db.find(id)?;
        crate::db::event(db, &c, "died")
            .exit_code(code)
            .record(&db.root);
        let _ = oci(db, id)
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        crate::db::record(db, &c, "cleanup");
        if let Some(timer) = health_timer {
            let _ = timer.join();
        }
        // A check's restart action goes again whatever the policy says.
        let health_restart = fs::remove_file(dir.join(crate::health::RESTART_MARK)).is_ok();
        if !health_restart
            && (!Settings::load(&dir).restart.again(code, restarts)
                || dir.join(STOPPED_BY_USER).exists())
        {
            break code;
        }
        // Docker's back-off: 100 ms, doubling up to a minute, from 100 ms
        // again after a run of 10 s or more.
        if began.elapsed() >= Duration::from_secs(10) {
            pause = Duration::from_millis(100);
        }
        let _ = fs::write(dir.join(BACK_OFF), "");
        let stopped = back_off(&dir, pause);
        let _ = fs::remove_file(dir.join(BACK_OFF));
        pause = (pause * 2).min(Duration::from_secs(60));
        if stopped {
            break code;
        }
        restarts += 1;
        let _ = fs::write(dir.join(RESTARTS), restarts.to_string());
    };
    let _ = fs::remove_file(dir.join("attach.sock"));
    skiff_image::trace::mark("output copied, exit recorded, runtime state deleted");
    if c.auto_remove {
        let c = db.find(id)?;
        // Its anonymous volumes go with it (Docker's and Podman's --rm).
        let anonymous = Settings::load(&dir).anonymous_volumes;
        remove(store, db, &c)?;
        drop(held.take());
        for v in anonymous {
            let _ = crate::volumes::remove(db, &v);
        }
        skiff_image::trace::mark("--rm: removed (network, rootfs, directory, row)");
        if let Some(name) = &settings.rmi {
            remove_unused_image(store, db, &c.image_id, name);
        }
    }
    Ok(code)
}

/// Sleeps out a restart's back-off, `pause`, unless the container is
/// stopped meanwhile (a stop waits for the monitor to end: it must not
/// wait out a back-off of up to a minute). Whether it was.
fn back_off(dir: &Path, pause: Duration) -> bool {
    let end = Instant::now() + pause;
    loop {
        if dir.join(STOPPED_BY_USER).exists() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// --rmi: the image run was given goes as `rmi NAME` would take it (as
/// Podman's --rmi does): the name alone when the image has others, else
/// the image, unless another container or an image mount still holds it
/// (then it stays, silently, as Podman leaves it).
fn remove_unused_image(store: &mut Store, db: &Db, image_id: &str, given: &str) {
    let Ok(img) = store.find(image_id) else {
        return;
    };
    let named = img.name_given(given);
    if let (Some(n), true) = (&named, img.names.len() > 1) {
        match store.untag(n) {
            Ok(_) => crate::events::image(&db.root, "untag", image_id, n),
            Err(e) => eprintln!("skiff: --rmi: {e}"),
        }
        return;
    }
    if !store.holders(image_id).is_ok_and(|h| h.is_empty()) {
        return;
    }
    match store.remove_image(image_id) {
        Ok(()) => {
            for n in &img.names {
                crate::events::image(&db.root, "untag", image_id, n);
            }
            let name = named.as_deref().or(img.names.first().map(String::as_str));
            crate::events::image(&db.root, "remove", image_id, name.unwrap_or(""));
        }
        Err(e) => eprintln!("skiff: --rmi: {e}"),
    }
}

/// The health check's timer for one run, when the container has a check
/// with an interval: a thread that runs `healthcheck run` every interval
/// (which checks a running container, records the result and takes the
/// --health-on-failure action). It ends once the sender returned goes:
/// the run ended.
///
/// Each check is a process of its own: this monitor reaps every child it
/// has (it is the container's subreaper) and would take a check's exit
/// status from under a check run in it. The timer only waits for the
/// process to end, whoever reaps it.
fn health_timer(
    db: &Db,
    id: &str,
    hc: Option<&Healthcheck>,
) -> Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let hc = hc?.clone();
    let _ = crate::health::reset(&db.dir(id));
    hc.interval?;
    let exe = std::env::current_exe().ok()?;
    let (stop, stopped) = std::sync::mpsc::channel();
    let (root, id) = (db.root.clone(), id.to_string());
    let timer = std::thread::spawn(move || {
        crate::health::every_interval(&hc, &stopped, || {
            let check = Command::new(&exe)
                .arg("--root")
                .arg(&root)
                .args(["healthcheck", "run", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(mut check) = check {
                // Ok, or ECHILD once the monitor's wait reaped it: over.
                let _ = check.wait();
            }
        })
    });
    Some((stop, timer))
}

/// --timeout: a thread that kills the container once this run has lasted
/// that long; it ends when the sender returned goes (the run ended).
fn run_deadline(db: &Db, id: &str, seconds: Option<u64>) -> Option<std::sync::mpsc::Sender<()>> {
    let seconds = seconds?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (root, id) = (db.root.clone(), id.to_string());
    std::thread::spawn(move || {
        if stopped.recv_timeout(Duration::from_secs(seconds))
            != Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        {
            return;
        }
        if let Ok(db) = Db::open(&root) {
            if let Ok(c) = db.find(&id) {
                let _ = signal(&db, &c, "KILL");
            }
        }
    });
    Some(stop)
}

/// Runs the container's health check once (an exec of its command, bound
/// by its timeout) and records the result; the result and the health it
/// makes.
pub fn run_health_check(
    db: &Db,
    c: &Ctr,
    hc: &Healthcheck,
) -> Result<(crate::health::Probe, Health)> {
    let dir = db.dir(&c.id);
    let timeout = Duration::from_nanos(hc.timeout);
    let probe = if is_vm(db, c) {
        // Through the agent, as `exec` goes: at the timeout the exec is
        // killed; the guest's process ends with the container.
        let exe = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--root").arg(&db.root).arg("exec").arg(&c.id);
        cmd.args(hc.argv());
        crate::health::probe(cmd, None, timeout)?
    } else {
        // The pid file names the check's process, for the timeout's kill.
        let pid_file = dir.join(format!("health-{}.pid", &random_id()[..12]));
        let mut cmd = oci(db, &c.id);
        cmd.arg("exec").arg("--pid-file").arg(&pid_file).arg(&c.id);
        cmd.args(hc.argv());
        let p = crate::health::probe(cmd, Some(&pid_file), timeout);
        let _ = fs::remove_file(&pid_file);
        p?
    };
    let run_started = c.started.unwrap_or_else(format::now);
    let h = crate::health::record(&dir, hc, run_started, &probe)?;
    Ok((probe, h))
}

/// --health-on-failure, once the container is unhealthy: kill (its
/// restart policy then applies), stop (as `stop`), or restart (killed,
/// and its monitor starts it again).
pub fn act_on_health(db: &Db, c: &Ctr, hc: &Healthcheck, h: &Health) {
    if h.status != "unhealthy" || hc.on_failure == "none" {
        return;
    }
    let done = match hc.on_failure.as_str() {
        "stop" => stop(db, c, None),
        "restart" => fs::write(db.dir(&c.id).join(crate::health::RESTART_MARK), b"")
            .map_err(|e| Error::io("marking the container for a restart", e))
            .and_then(|()| signal(db, c, "KILL")),
        _ => signal(db, c, "KILL"),
    };
    if let Err(e) = done {
        eprintln!(
            "skiff: {}: --health-on-failure {}: {e}",
            c.name, hc.on_failure
        );
    }
}

/// Attached clients learn how the run ended: its exit code, and why it did
/// not start when it did not.
fn tell_clients(hub: &crate::attach::Hub, ran: &Result<Ran>) {
    let code = match ran {
        Ok(Ran::Exited(code)) => *code,
        Ok(Ran::NotStarted(msg)) => {
            let msg = msg.trim().trim_start_matches("skiff-oci: ");
            hub.send(crate::attach::STDERR, format!("Error: {msg}\n").as_bytes());
            start_failure_code(msg)
        }
        Err(_) => return,
    };
    hub.send(crate::attach::EXIT, &code.to_be_bytes());
}

/// A detached monitor that failed: the container is recorded as exited
/// (125, as a run that could not start), and why goes to its log.
pub fn monitor_failed(db: &Db, id: &str, why: &str) {
    let dir = db.dir(id);
    if let Ok(mut log) = LogWriter::open(&dir, LogLimits::load(&dir)) {
        log.line(
            "stderr",
            format!("skiff: the container's monitor failed: {why}\n").as_bytes(),
        );
    }
    let _ = db.set(
        id,
        "state = 'exited', exit_code = 125, finished = ?1, pid = 0",
        &[&format::now()],
    );
}

fn plain_str(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The places a container's destinations are the runtime's own or the
/// engine's per-container files, not the user's mounts.
const OWN_MOUNTS: &[&str] = &[
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/sys/fs/cgroup",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/localtime",
    "/dev/init",
    "/run/.containerenv",
];

/// inspect's Mounts: the volumes, binds and tmpfs mounts the user asked
/// for (Docker's and Podman's shape: Type, Name, Source, Destination,
/// RW, ...), from the container's config.json.
fn inspect_mounts(db: &Db, config: &Value) -> Vec<Value> {
    let volumes = db.root.join("volumes");
    config["mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|m| !OWN_MOUNTS.contains(&plain_str(&m["destination"])))
        // --tmpfs mounts are not listed, as Podman and Docker list none.
        .filter(|m| !matches!(plain_str(&m["type"]), "devpts" | "cgroup" | "tmpfs"))
        .map(|m| {
            let opts: Vec<&str> = m["options"]
                .as_array()
                .map(|o| o.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let src = plain_str(&m["source"]);
            let volume = std::path::Path::new(src)
                .strip_prefix(&volumes)
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let kind = if volume.is_some() { "volume" } else { "bind" };
            json!({
                "Type": kind,
                "Name": volume.clone().unwrap_or_default(),
                "Source": src,
                "Destination": m["destination"],
                "Driver": if volume.is_some() { "local" } else { "" },
                "Mode": "",
                "Options": opts,
                "RW": !opts.contains(&"ro"),
                "Propagation": opts.iter().find(|o| o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave")).copied().unwrap_or(""),
            })
        })
        .collect()
}

/// inspect's NetworkSettings: the network, address, gateway and ports
/// (Docker's shape).
fn network_settings(db: &Db, c: &Ctr) -> Value {
    let dir = db.dir(&c.id);
    let Some(rec) = crate::net::record(&dir) else {
        return json!({"Networks": {}, "Ports": {}});
    };
    let ip = skiff_net::cni::addresses(&rec["result"])
        .into_iter()
        .next()
        .unwrap_or_default();
    let gateway = rec["result"]["ips"][0]["gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut ports = serde_json::Map::new();
    for m in crate::net::ports_of(&dir) {
        let key = format!("{}/{}", m.container_port, m.protocol);
        let ip = if m.host_ip.is_empty() {
            "0.0.0.0".to_string()
        } else {
            m.host_ip.clone()
        };
        let entry = ports.entry(key).or_insert(json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": ip, "HostPort": m.host_port.to_string()}));
        }
    }
    json!({
        "IPAddress": ip,
        "IPPrefixLen": prefix_len(&rec["result"]),
        "Gateway": gateway,
        "MacAddress": sandbox_mac(&rec["result"]),
        "SandboxKey": rec["netns"],
        "Ports": ports,
        "Networks": crate::net::attachments(&rec)
            .into_iter()
            .map(|a| {
                let ip = skiff_net::cni::addresses(&a.result).into_iter().next().unwrap_or_default();
                let gateway = a.result["ips"][0]["gateway"].as_str().unwrap_or_default().to_string();
                (a.network, json!({
                    "IPAddress": ip,
                    "IPPrefixLen": prefix_len(&a.result),
                    "Gateway": gateway,
                    "MacAddress": sandbox_mac(&a.result),
                    "Interface": a.ifname,
                }))
            })
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// The hardware address of a CNI result's interface in the container.
fn sandbox_mac(result: &Value) -> &str {
    result["interfaces"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i.get("sandbox").is_some()))
        .and_then(|i| i["mac"].as_str())
        .unwrap_or_default()
}

/// The prefix length of a CNI result's first address (10.88.0.2/16: 16).
fn prefix_len(result: &Value) -> u32 {
    result["ips"][0]["address"]
        .as_str()
        .and_then(|a| a.split_once('/'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0)
}

/// Whether the container's config gives it a terminal.
pub fn has_terminal(db: &Db, c: &Ctr) -> bool {
    fs::read(db.dir(&c.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.pointer("/process/terminal").and_then(Value::as_bool))
        .unwrap_or(false)
}

/// One run: create and start with skiff-oci, the output into the log (and
/// to attached clients), the wait for init.
fn run_once(
    db: &Db,
    id: &str,
    io: RunIo,
    log: &std::sync::Arc<std::sync::Mutex<LogWriter>>,
    hub: &crate::attach::Hub,
    pid_to: Option<&Path>,
) -> Result<Ran> {
    let dir = db.dir(id);
    let restore_mark = dir.join(crate::db::RESTORE);
    if let Ok(how) = fs::read(&restore_mark) {
        let _ = fs::remove_file(&restore_mark);
        return restore_once(db, id, io, log, hub, how == crate::db::RESTORE_TCP);
    }
    // A plain start of a checkpointed container starts it afresh.
    let _ = fs::remove_file(dir.join(crate::db::CHECKPOINTED));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let pidfile = dir.join("init.pid");
    let console = match io.tty {
        true => Some(crate::attach::ConsoleSocket::listen(&dir)?),
        false => None,
    };
    let stdin = if io.stdin_inherit {
        Stdio::inherit()
    } else if io.interactive && !io.tty {
        let (r, w) = pipe()?;
        hub.set_input(w, false);
        Stdio::from(r)
    } else {
        Stdio::null()
    };
    // The command goes with its block: the pipes' write ends it holds
    // must close here, or the copiers never see the end.
    let create = {
        let mut cmd = oci(db, id);
        cmd.args(["create", "--bundle"]).arg(&dir);
        if let Some(c) = &console {
            cmd.arg("--console-socket").arg(&c.path);
        }
        cmd.arg("--pid-file")
            .arg(&pidfile)
            .arg(id)
            .stdin(stdin)
            .stdout(out_w)
            .stderr(err_w)
            .output()
    };
    let create = match create {
        Ok(o) => o,
        Err(e) => {
            return Ok(Ran::NotStarted(format!(
                "running {}: {e}",
                runtime().display()
            )))
        }
    };
    if !create.status.success() {
        // Its error went to the pipe the container would have had.
        let mut msg = String::from_utf8_lossy(&create.stderr).into_owned();
        let mut e = String::new();
        let _ = err_r.try_clone().map(|mut r| {
            set_nonblocking(&r);
            let _ = r.read_to_string(&mut e);
        });
        msg.push_str(&e);
        return Ok(Ran::NotStarted(msg));
    }
    skiff_image::trace::mark("runtime create");
    let c = db.find(id)?;
    crate::db::record(db, &c, "init");
    let pid: i64 = fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    // The terminal before start: an attached client's size reaches it
    // before the container reads it.
    let mut copiers = vec![];
    if let Some(console) = &console {
        let master = console.receive()?;
        let input = master
            .try_clone()
            .map_err(|e| Error::io("duplicating the terminal", e))?;
        hub.set_input(input, true);
        let (log, hub) = (log.clone(), hub.clone());
        copiers.push(std::thread::spawn(move || {
            copy_terminal(master, &log, &hub)
        }));
    }
    let _ = fs::remove_file(dir.join("console.sock"));
    // A client that never comes (killed before it connected): the
    // container runs on without it, as a detached one.
    if io.hold {
        hub.wait_client(Duration::from_secs(30));
    }
    match oci(db, id).args(["start", id]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Ok(Ran::NotStarted(
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ))
        }
        Err(e) => {
            return Ok(Ran::NotStarted(format!(
                "running {}: {e}",
                runtime().display()
            )))
        }
    }
    mark_running(db, id, pid, std::process::id() as i64)?;
    crate::db::record(db, &c, "start");
    // --pidfile.
    if let Some(path) = pid_to {
        // The container runs on without it (its directory was there at
        // create).
        if let Err(e) = fs::write(path, pid.to_string()) {
            eprintln!("skiff: --pidfile {}: {e}", path.display());
        }
    }
    skiff_image::trace::mark("runtime start: the container runs");
    // The output: both streams into the log, in arrival order per stream;
    // a terminal's, as it comes.
    copiers.extend(
        [(out_r, "stdout"), (err_r, "stderr")]
            .into_iter()
            .map(|(r, stream)| {
                let (log, hub) = (log.clone(), hub.clone());
                std::thread::spawn(move || copy_output(r, stream, &log, &hub, io.echo))
            }),
    );
    shed_startup_pages();
    let code = wait_init(pid);
    skiff_image::trace::mark("the container's init ended");
    // What the container's children still hold open ends with them.
    for t in copiers {
        let _ = t.join();
    }
    Ok(Ran::Exited(code))
}

/// The monitor, once its container runs, waits and copies output for as
/// long as the container lives: the code that parsed the command line,
/// opened the store and made the container is not needed again. Its pages
/// are given back: the heap's free memory (malloc_trim), and this
/// program's mappings of its own code and constants (MADV_DONTNEED on its
/// read-only mappings of the binary that hold no written page: clean pages
/// of the file, read again from the page cache if ever needed; relocated
/// data and every writable mapping are left alone). What stays
/// resident is what the wait and the copies touch.
fn shed_startup_pages() {
    let exe = fs::read_link("/proc/self/exe").unwrap_or_default();
    let smaps = fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    // Each mapping: its header line, then its fields (Anonymous: the
    // pages written since: relocated data, which must stay).
    let mut mappings: Vec<(usize, usize, bool, u64)> = vec![];
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            let ours = Path::new(path) == exe && (perms == "r-xp" || perms == "r--p");
            mappings.push((start, end, ours, 0));
        } else if first == "Anonymous:" {
            if let Some(m) = mappings.last_mut() {
                m.3 = f.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            }
        }
    }
    for (start, end, ours, anonymous) in mappings {
        if !ours || anonymous != 0 {
            continue;
        }
        // SAFETY: a read-only, file-backed private mapping of our own
        // binary with no page written since it was mapped: dropping its
        // pages loses nothing; the next access reads them from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
    // SAFETY: returns free heap memory to the kernel; no pointer changes.
    unsafe { libc::malloc_trim(0) };
}

/// Waits for init (our child, as subreaper); its exit code as a shell
/// reports it (128 + signal).
fn wait_init(pid: i64) -> i32 {
    if pid <= 0 {
        return 125;
    }
    loop {
        let mut status = 0;
        // SAFETY: waits for any child: init, or others re-parented to us.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return 125;
        }
        if got as i64 == pid {
            return if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
        }
    }
}

/// Starts a detached monitor for a created container and waits (bounded)
/// until the container runs or ended.
pub fn start_detached(db: &Db, id: &str) -> Result<Ctr> {
    let mut child = spawn_monitor(db, id)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = db.find(id)?;
        if c.state != "created" {
            let _ = child.try_wait();
            return Ok(c);
        }
        if let Ok(Some(_)) = child.try_wait() {
            // It ended without a word: what the row says.
            return db.find(id);
        }
        if Instant::now() > deadline {
            return Err(Error::invalid(format!("{id}: not running after 60 s")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The container's monitor, in a session of its own: it outlives us.
pub fn spawn_monitor(db: &Db, id: &str) -> Result<std::process::Child> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&db.root)
        .args(["__monitor", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    in_own_session(&mut cmd);
    cmd.spawn()
        .map_err(|e| Error::io("starting the container's monitor", e))
}

/// Signals the container's processes (all of them for KILL, as Docker).
pub fn signal(db: &Db, c: &Ctr, sig: &str) -> Result<()> {
    if is_vm(db, c) {
        return crate::vm::signal(db, c, sig);
    }
    let mut cmd = oci(db, &c.id);
    cmd.arg("kill");
    if sig == "KILL" || sig == "SIGKILL" || sig == "9" {
        cmd.arg("--all");
    }
    let o = cmd
        .args([&c.id, sig])
        .output()
        .map_err(|e| Error::io("running skiff-oci kill", e))?;
    if !o.status.success() {
        let msg = String::from_utf8_lossy(&o.stderr);
        // A run that ended between the caller's look at its row and the
        // signal (its monitor deleted the runtime's state): it is down,
        // which is what the signal was for.
        let ended = || {
            db.find(&c.id)
                .is_ok_and(|now| !matches!(now.state.as_str(), "running" | "paused"))
        };
        if !msg.contains("not running") && !ended() {
            return Err(Error::invalid(format!("{}: {}", c.name, msg.trim())));
        }
    }
    Ok(())
}

/// Whether the container runs in a VM of its own (--isolation vm).
pub fn is_vm(db: &Db, c: &Ctr) -> bool {
    Settings::load(&db.dir(&c.id)).isolation == crate::db::Isolation::Vm
}

/// `pause` (freeze) or `unpause`.
pub fn pause(db: &Db, c: &Ctr, freeze: bool) -> Result<()> {
    let (want, verb) = if freeze {
        ("running", "pause")
    } else {
        ("paused", "resume")
    };
    if c.state != want {
        return Err(Error::invalid(format!(
            "{}: container is {}, not {want}",
            c.name, c.state
        )));
    }
    if is_vm(db, c) {
        crate::vm::pause(db, c, freeze)?;
    } else {
        let o = oci(db, &c.id)
            .args([verb, &c.id])
            .output()
            .map_err(|e| Error::io("running skiff-oci", e))?;
        if !o.status.success() {
            return Err(Error::invalid(format!(
                "{}: {}",
                c.name,
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
    }
    let state = if freeze { "paused" } else { "running" };
    db.set(&c.id, "state = ?1", &[&state])?;
    crate::db::record(db, c, if freeze { "pause" } else { "unpause" });
    Ok(())
}

/// A container name: letters, digits, '_', '.', '-', not first '.' or '-'.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// `rename`.
pub fn rename(db: &Db, c: &Ctr, name: &str) -> Result<()> {
    if !valid_name(name) {
        return Err(Error::invalid(format!(
            "rename {name:?}: use letters, digits, '_', '.', '-'"
        )));
    }
    db.set(&c.id, "name = ?1", &[&name]).map_err(|e| match e {
        Error::Db(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::Refused(format!("the container name {name:?} is already in use"))
        }
        e => e,
    })?;
    crate::db::record(db, &db.find(&c.id)?, "rename");
    Ok(())
}

/// `stop`: the stop signal, then KILL after `timeout`.
/// Stops a container: its stop signal, SIGKILL after `timeout` seconds
/// (None: its --stop-timeout, else 10). Its restart policy rests: stop
/// returns once the monitor has gone, so that no restart it had already
/// begun comes up after.
pub fn stop(db: &Db, c: &Ctr, timeout: Option<u64>) -> Result<()> {
    mark_stopped_by_user(db, &c.id);
    let timeout = timeout
        .or(Settings::load(&db.dir(&c.id)).stop_timeout)
        .unwrap_or(10);
    let deadline = Instant::now() + Duration::from_secs(timeout + 30);
    let mut stopped = false;
    loop {
        let now = match db.find(&c.id) {
            Ok(now) => db.fresh(now)?,
            // A --rm container's monitor removed it once it stopped.
            Err(Error::NoContainer(_)) if stopped => {
                crate::db::record(db, c, "stop");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let c = now;
        match c.state.as_str() {
            "running" | "paused" => {
                stop_run(db, &c, timeout)?;
                stopped = true;
            }
            _ if alive(c.monitor) && c.monitor != std::process::id() as i64 => {
                if Instant::now() > deadline {
                    return Err(Error::invalid(format!(
                        "{}: its monitor (pid {}) did not end",
                        c.name, c.monitor
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                if stopped {
                    crate::db::record(db, &c, "stop");
                }
                return Ok(());
            }
        }
    }
}

/// Ends the container's current run: the stop signal, SIGKILL after
/// `timeout` seconds (at once for a paused one, which cannot take it, and
/// for a timeout of 0).
fn stop_run(db: &Db, c: &Ctr, timeout: u64) -> Result<()> {
    if c.state == "paused" || timeout == 0 {
        signal(db, c, "KILL")?;
        wait_exit(db, &c.id, Some(Duration::from_secs(10)))?;
        return Ok(());
    }
    signal(db, c, &c.stop_signal)?;
    if wait_exit(db, &c.id, Some(Duration::from_secs(timeout)))?.is_none() {
        let c = db.find(&c.id)?;
        if c.state == "running" {
            signal(db, &c, "KILL")?;
            wait_exit(db, &c.id, Some(Duration::from_secs(10)))?;
        }
    }
    Ok(())
}

/// `exec`: a process in a running container; its exit code.
pub fn exec(db: &Db, c: &Ctr, o: &ExecOpts) -> Result<i32> {
    let (tty, detach) = (o.tty, o.detach);
    if detach && tty {
        return Err(Error::invalid(
            "exec -d -t: a detached process's terminal would have no reader; use -d alone",
        ));
    }
    if c.state == "paused" {
        return Err(Error::invalid(format!(
            "{}: container is paused; unpause it first",
            c.name
        )));
    }
    if c.state != "running" {
        // Podman's code for an exec into a container that does not run.
        eprintln!("Error: {}: container is not running", c.name);
        return Ok(255);
    }
    let vm = is_vm(db, c);
    if vm && o.privileged {
        return Err(Error::invalid(
            "exec --privileged: not for a container with --isolation vm (the agent runs a process with the container's capabilities)",
        ));
    }
    crate::db::record(db, c, "exec");
    let ran = if vm {
        crate::vm::exec(db, c, o)
    } else {
        exec_oci(db, c, o)
    };
    // A detached process's end is nobody's to see.
    if let (Ok(code), false) = (&ran, detach) {
        crate::db::event(db, c, "exec_died")
            .exit_code(*code)
            .record(&db.root);
    }
    ran
}

/// `exec` of a namespace container: skiff-oci's.
fn exec_oci(db: &Db, c: &Ctr, o: &ExecOpts) -> Result<i32> {
    let ExecOpts {
        argv,
        env,
        user,
        workdir,
        tty,
        interactive,
        detach,
        privileged,
    } = *o;
    let mut cmd = oci(db, &c.id);
    cmd.arg("exec");
    if privileged {
        for cap in crate::spec::all_caps() {
            cmd.args(["--cap", &cap]);
        }
    }
    if tty {
        cmd.arg("-t");
    }
    if detach {
        cmd.arg("-d");
    }
    for e in env {
        cmd.args(["-e", e]);
    }
    if let Some(w) = workdir {
        cmd.args(["--cwd", w]);
    }
    if let Some(u) = user {
        let rootfs = db.dir(&c.id).join("rootfs");
        let (uid, gid, groups, _) = resolve_user(&rootfs, u)?;
        cmd.args(["--user", &format!("{uid}:{gid}")]);
        for g in groups {
            cmd.args(["--additional-gids", &g.to_string()]);
        }
    }
    cmd.arg(&c.id).args(argv);
    cmd.stdin(if (interactive || tty) && !detach {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    // A detached process keeps the stderr it was given: a file, read back
    // for skiff-oci's own error, not a pipe whose end would wait for it.
    let err_file = match detach {
        true => {
            cmd.stdout(Stdio::null());
            let path = db.dir(&c.id).join(format!("exec-{}.err", random_id()));
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::at(&path, "making", e))?;
            let _ = fs::remove_file(&path);
            cmd.stderr(
                f.try_clone()
                    .map_err(|e| Error::io("exec -d's stderr", e))?,
            );
            Some(f)
        }
        false => {
            cmd.stderr(Stdio::piped());
            None
        }
    };
    let o = cmd
        .spawn()
        .map_err(|e| Error::io("running skiff-oci exec", e))?;
    let mut out = o
        .wait_with_output()
        .map_err(|e| Error::io("waiting for skiff-oci exec", e))?;
    if let Some(mut f) = err_file {
        use std::io::{Read, Seek};
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.read_to_end(&mut out.stderr);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(125);
    if detach && code == 0 {
        // Podman's: the exec session's id.
        println!("{}", random_id());
        return Ok(0);
    }
    if code == 255 && err.contains("skiff-oci") {
        eprintln!("Error: {}", err.trim().trim_start_matches("skiff-oci: "));
        return Ok(start_failure_code(&err));
    }
    let _ = std::io::stderr().write_all(out.stderr.as_slice());
    Ok(code)
}

/// Prints a container's log (k8s-file lines) to stdout/stderr by stream.
/// `logs --since/--until`: the lines whose times (seconds since the
/// epoch, with their fraction) fall in it, both ends included.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWindow {
    pub since: Option<f64>,
    pub until: Option<f64>,
}

impl LogWindow {
    fn holds(&self, line: &[u8]) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let ts = line.split(|b| *b == b' ').next().unwrap_or_default();
        let Some(t) = std::str::from_utf8(ts)
            .ok()
            .and_then(format::parse_time_fine)
        else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    fn over(&self) -> bool {
        self.until.is_some_and(|u| format::now_fine() > u)
    }
}

/// How `logs` prints a container's lines.
#[derive(Clone, Default)]
pub struct LogView {
    /// Only the last N lines.
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub follow: bool,
    pub window: LogWindow,
    /// Printed before each line (a container's id or name, and a space,
    /// when one command prints several containers' logs, as Podman's).
    pub prefix: String,
}

pub fn print_logs(db: &Db, c: &Ctr, view: &LogView) -> Result<()> {
    let LogView {
        tail,
        timestamps,
        follow,
        window,
        prefix,
    } = view;
    let (tail, timestamps, follow) = (*tail, *timestamps, *follow);
    if LogLimits::load(&db.dir(&c.id)).off {
        return Err(Error::invalid(format!(
            "{}: the container uses the none log driver: it keeps no logs to read",
            c.name
        )));
    }
    let path = db.dir(&c.id).join("ctr.log");
    let mut offset = 0u64;
    let mut first = true;
    let mut ended = false;
    // A partial line's (P) next piece continues it: no prefix there.
    let mut line_start = true;
    loop {
        let mut f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(_) if !first || follow => {
                fs::File::open("/dev/null").map_err(|e| Error::io("/dev/null", e))?
            }
            Err(_) => return Ok(()),
        };
        use std::io::Seek;
        // Rotated meanwhile (the file is shorter than what was read): from
        // the start of the new one.
        if f.metadata().map(|m| m.len() < offset).unwrap_or(false) {
            offset = 0;
        }
        f.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::at(&path, "reading", e))?;
        let mut text = Vec::new();
        if first {
            // The rotated files first, oldest to newest.
            let dir = db.dir(&c.id);
            for n in (1..=LogLimits::load(&dir).max_files).rev() {
                if let Ok(old) = fs::read(dir.join(format!("ctr.log.{n}"))) {
                    text.extend_from_slice(&old);
                }
            }
        }
        let rotated_len = text.len();
        f.read_to_end(&mut text)
            .map_err(|e| Error::at(&path, "reading", e))?;
        // Whole lines only; the rest next round.
        let upto = text
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(0);
        offset += upto.saturating_sub(rotated_len) as u64;
        let lines: Vec<&[u8]> = text[..upto]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && window.holds(l))
            .collect();
        let skip = match (first, tail) {
            (true, Some(n)) => lines.len().saturating_sub(n),
            _ => 0,
        };
        for l in &lines[skip..] {
            let mut parts = l.splitn(4, |b| *b == b' ');
            let (Some(ts), Some(stream), Some(full), Some(msg)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let mut out: Vec<u8> = vec![];
            if line_start {
                out.extend_from_slice(prefix.as_bytes());
            }
            line_start = full == b"F";
            if timestamps {
                out.extend_from_slice(ts);
                out.push(b' ');
            }
            out.extend_from_slice(msg);
            if full == b"F" {
                out.push(b'\n');
            }
            if stream == b"stderr" {
                let _ = std::io::stderr().write_all(&out);
            } else {
                let _ = std::io::stdout().write_all(&out);
            }
        }
        let _ = std::io::stdout().flush();
        first = false;
        if !follow || window.over() {
            return Ok(());
        }
        // Once it has ended, one more round reads what it wrote last
        // (lines written between this round's read and the state read).
        if ended {
            return Ok(());
        }
        let now = db.fresh(db.find(&c.id)?)?;
        if now.state == "exited" {
            ended = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Docker's `inspect` document of a container (the fields clients read).
pub fn inspect_doc(db: &Db, c: &Ctr) -> Value {
    let ts = |t: Option<i64>| {
        t.map(|t| format::rfc3339(t, None))
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
    };
    let settings = Settings::load(&db.dir(&c.id));
    let config: Value = fs::read(db.dir(&c.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let net = network_settings(db, c);
    let dir = db.dir(&c.id);
    let back_off = backing_off(db, c);
    let id_maps = crate::idmap::maps_in(&config);
    // Docker's Config as made (containers made before it was kept: none).
    let made = settings.config.as_ref();
    let user = match (
        config.pointer("/process/user/uid").and_then(Value::as_u64),
        config.pointer("/process/user/gid").and_then(Value::as_u64),
    ) {
        (Some(0) | None, Some(0) | None) => String::new(),
        (u, g) => format!("{}:{}", u.unwrap_or(0), g.unwrap_or(0)),
    };
    let network_mode = match crate::net::record(&dir) {
        // The default network is Podman's and Docker's "bridge" mode.
        Some(rec) => match rec["network"].as_str() {
            None | Some(skiff_net::network::DEFAULT) => "bridge".into(),
            Some(n) => n.to_string(),
        },
        None if config
            .pointer("/linux/namespaces")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.iter().any(|n| n["type"] == "network")) =>
        {
            "host".into()
        }
        None => "none".into(),
    };
    let mounts = inspect_mounts(db, &config);
    let binds: Vec<String> = mounts
        .iter()
        .filter(|m| m["Type"] == "bind")
        .map(|m| {
            let mode = if m["RW"] == true { "rw" } else { "ro" };
            format!(
                "{}:{}:{mode}",
                plain_str(&m["Source"]),
                plain_str(&m["Destination"])
            )
        })
        .collect();
    let limit = |p: &str| config.pointer(p).cloned().unwrap_or(json!(0));
    // More of Docker's HostConfig (apart: one json! of it all is too deep).
    let more_host = json!({
            "MemoryReservation": limit("/linux/resources/memory/reservation"),
            "MemorySwap": limit("/linux/resources/memory/swap"),
            "CpusetCpus": config.pointer("/linux/resources/cpu/cpus").cloned().unwrap_or(json!("")),
            "CpusetMems": config.pointer("/linux/resources/cpu/mems").cloned().unwrap_or(json!("")),
            "NanoCpus": nano_cpus(&config),
            "ShmSize": shm_size(&config),
            "CapAdd": caps_changed(&config, true),
            "CapDrop": caps_changed(&config, false),
            "Dns": settings.dns,
            "DnsSearch": settings.dns_search,
            "DnsOptions": settings.dns_options,
            "ExtraHosts": settings.extra_hosts.iter().map(|(ip, h)| format!("{h}:{ip}")).collect::<Vec<_>>(),
            "GroupAdd": config.pointer("/process/user/additionalGids").and_then(Value::as_array)
                .map(|g| g.iter().filter(|g| **g != config["process"]["user"]["gid"]).map(|g| g.to_string()).collect::<Vec<_>>())
                .unwrap_or_default(),
            "SecurityOpt": security_opts(&config),
            "Init": config["mounts"].as_array().is_some_and(|ms| ms.iter().any(|m| m["destination"] == "/dev/init")),
            "Tmpfs": own_tmpfs(&config),
            "Devices": config.pointer("/linux/devices").and_then(Value::as_array).map(|ds| ds.iter().map(|d| json!({
                "PathOnHost": d["path"], "PathInContainer": d["path"], "CgroupPermissions": "rwm",
            })).collect::<Vec<_>>()).unwrap_or_default(),
            "Ulimits": config.pointer("/process/rlimits").and_then(Value::as_array).map(|rs| rs.iter().map(|r| json!({
                "Name": r["type"].as_str().unwrap_or_default().trim_start_matches("RLIMIT_").to_ascii_lowercase(),
                "Soft": r["soft"], "Hard": r["hard"],
            })).collect::<Vec<_>>()).unwrap_or_default(),
    });
    let mut doc = json!({
        "Id": c.id,
        "Name": c.name,
        "Created": ts(Some(c.created)),
        "Path": c.command.first(),
        "Args": c.command.get(1..).unwrap_or(&[]),
        "Image": c.image_id,
        "ImageName": c.image,
        "State": {
            "Status": if back_off { "restarting" } else { c.state.as_str() },
            "Running": c.state == "running" || c.state == "paused" || back_off,
            "Paused": c.state == "paused",
            "Pid": c.pid,
            "ExitCode": c.exit_code.unwrap_or(0),
            "StartedAt": ts(c.started),
            "FinishedAt": ts(c.finished),
            "Restarting": back_off,
            "Health": match &settings.health {
                Some(_) => Health::load(&dir).unwrap_or_default().inspect(),
                None => json!({"Status": "", "FailingStreak": 0, "Log": null}),
            },
            "OOMKilled": false,
            "Dead": false,
            "Error": "",
        },
        "Mounts": mounts,
        "Pod": c.pod,
        "Driver": "overlay",
        "OCIRuntime": settings.runtime.as_ref().map(|r| r.display().to_string()).unwrap_or_else(|| "skiff-oci".into()),
        "HostsPath": dir.join("hosts"),
        "HostnamePath": dir.join("hostname"),
        "ResolvConfPath": dir.join("resolv.conf"),
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "RestartCount": restart_count(db, &c.id),
        "HostConfig": {
            "AutoRemove": c.auto_remove,
            "RestartPolicy": {
                "Name": if settings.restart.name.is_empty() { "no" } else { settings.restart.name.as_str() },
                "MaximumRetryCount": settings.restart.max,
            },
            "Privileged": config.pointer("/linux/maskedPaths").and_then(Value::as_array).is_some_and(|m| m.is_empty()),
            "Isolation": settings.isolation.name(),
            "LogConfig": {
                "Type": if LogLimits::load(&dir).off { "none" } else { "k8s-file" },
                "Path": dir.join("ctr.log"),
            },
            "NetworkMode": network_mode,
            "PortBindings": net["Ports"],
            "Binds": binds,
            "ReadonlyRootfs": config.pointer("/root/readonly").and_then(Value::as_bool).unwrap_or(false),
            "Memory": limit("/linux/resources/memory/limit"),
            "CpuShares": limit("/linux/resources/cpu/shares"),
            "CpuQuota": limit("/linux/resources/cpu/quota"),
            "CpuPeriod": limit("/linux/resources/cpu/period"),
            "PidsLimit": limit("/linux/resources/pids/limit"),
            // Podman's: the maps of a user namespace of its own.
            "IDMappings": id_maps.as_ref().map(|m| json!({
                "UidMap": crate::idmap::IdMaps::texts(&m.uid),
                "GidMap": crate::idmap::IdMaps::texts(&m.gid),
            })),
            "UsernsMode": if id_maps.is_some() { "private" } else { "" },
            // The group's parent (Docker's field; "" for the default, /).
            "CgroupParent": config
                .pointer("/linux/cgroupsPath")
                .and_then(Value::as_str)
                .and_then(|p| p.rsplit_once('/'))
                .map_or("", |(parent, _)| parent),
        },
        "Config": {
            "Hostname": config.pointer("/hostname"),
            "Env": config.pointer("/process/env").and_then(Value::as_array).map(|env| {
                env.iter()
                    .filter(|v| {
                        let name = v.as_str().and_then(|v| v.split_once('=')).map_or("", |(n, _)| n);
                        !settings.secret_env.iter().any(|s| s == name)
                    })
                    .collect::<Vec<_>>()
            }),
            "Cmd": made.map_or(json!(c.command), |m| m["Cmd"].clone()),
            "Entrypoint": made.map_or(Value::Null, |m| m["Entrypoint"].clone()),
            "WorkingDir": config.pointer("/process/cwd"),
            "StopSignal": format!("SIG{}", c.stop_signal),
            "StopTimeout": settings.stop_timeout.unwrap_or(10),
            "Labels": settings.labels,
            "User": made.map_or(json!(user), |m| m["User"].clone()),
            "Image": c.image,
            "Tty": config.pointer("/process/terminal").and_then(Value::as_bool).unwrap_or(false),
            "OpenStdin": settings.interactive,
            "Annotations": config.get("annotations").cloned().unwrap_or(json!({})),
            "ExposedPorts": settings.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "Healthcheck": settings.health.as_ref().map(Healthcheck::inspect),
            "HealthcheckOnFailureAction": settings.health.as_ref().map_or("none", |h| h.on_failure.as_str()),
        },
        "NetworkSettings": net,
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": db.dir(&c.id).join("rootfs")}},
        "LogPath": db.dir(&c.id).join("ctr.log"),
    });
    if let (Some(h), Value::Object(more)) = (doc["HostConfig"].as_object_mut(), more_host) {
        h.extend(more);
    }
    doc
}

/// HostConfig.NanoCpus: --cpus as a quota over a period, in billionths.
fn nano_cpus(config: &Value) -> i64 {
    let quota = config
        .pointer("/linux/resources/cpu/quota")
        .and_then(Value::as_i64);
    let period = config
        .pointer("/linux/resources/cpu/period")
        .and_then(Value::as_i64);
    match (quota, period) {
        (Some(q), Some(p)) if q > 0 && p > 0 => q * 1_000_000_000 / p,
        _ => 0,
    }
}

/// HostConfig.ShmSize: /dev/shm's size in bytes (its tmpfs's size=).
fn shm_size(config: &Value) -> i64 {
    config["mounts"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["destination"] == "/dev/shm"))
        .and_then(|m| m["options"].as_array())
        .and_then(|o| {
            o.iter()
                .filter_map(Value::as_str)
                .find_map(|o| o.strip_prefix("size="))
        })
        .and_then(|v| crate::spec::parse_size("size", v).ok())
        .unwrap_or(0)
}

/// HostConfig.CapAdd (`added`) or CapDrop: the bounding set against the
/// engine's default set, with Podman's CAP_ names.
fn caps_changed(config: &Value, added: bool) -> Vec<String> {
    let have: Vec<&str> = config
        .pointer("/process/capabilities/bounding")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let default: Vec<String> = crate::spec::DEFAULT_CAPS
        .iter()
        .map(|c| format!("CAP_{}", c.trim_start_matches("CAP_")))
        .collect();
    match added {
        true => have
            .iter()
            .filter(|c| !default.iter().any(|d| d == *c))
            .map(|c| c.to_string())
            .collect(),
        false => default
            .into_iter()
            .filter(|d| !have.contains(&d.as_str()))
            .collect(),
    }
}

/// HostConfig.SecurityOpt: what the config says of --security-opt's.
fn security_opts(config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if config.pointer("/process/noNewPrivileges") == Some(&json!(true)) {
        out.push("no-new-privileges".to_string());
    }
    if config.pointer("/linux/seccomp").is_none_or(Value::is_null) {
        out.push("seccomp=unconfined".to_string());
    }
    out
}

/// HostConfig.Tmpfs: the tmpfs mounts given (--tmpfs, --mount), by
/// destination, their options as text.
fn own_tmpfs(config: &Value) -> serde_json::Map<String, Value> {
    config["mounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["type"] == "tmpfs")
                .filter_map(|m| Some((m["destination"].as_str()?, m)))
                .filter(|(d, _)| !OWN_MOUNTS.contains(d))
                .map(|(d, m)| {
                    let opts: Vec<&str> = m["options"]
                        .as_array()
                        .map(|o| o.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    (d.to_string(), json!(opts.join(",")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An exited container made ready to start again: created, its restart
/// count and stop mark cleared (its runtime state went when it exited).
pub fn reset_exited(db: &Db, c: &Ctr) -> Result<()> {
    let dir = db.dir(&c.id);
    let _ = fs::remove_file(dir.join(STOPPED_BY_USER));
    let _ = fs::remove_file(dir.join(RESTARTS));
    let _ = oci(db, &c.id)
        .args(["delete", "--force", &c.id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    db.set(
        &c.id,
        "state = 'created', exit_code = NULL, pid = 0, monitor = 0",
        &[],
    )
}
