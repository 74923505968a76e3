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

use std::fs;
use std::io::{BufRead, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use skiff_image::store::Store;
use skiff_image::{Error, Result};

use crate::format;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image TEXT NOT NULL,          -- the name it was run by
    command TEXT NOT NULL,        -- JSON array
    created INTEGER NOT NULL,
    state TEXT NOT NULL,          -- created, running, exited
    pid INTEGER NOT NULL DEFAULT 0,
    monitor INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    started INTEGER,
    finished INTEGER,
    auto_remove INTEGER NOT NULL DEFAULT 0,
    stop_signal TEXT NOT NULL DEFAULT 'TERM'
);
CREATE TABLE IF NOT EXISTS pods (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    infra TEXT NOT NULL,          -- the infra container's id
    doc TEXT NOT NULL             -- JSON: what pod create was asked (crate::pods::Spec)
);
";

/// Columns added after the first release of the schema, for stores made
/// before: (table, column, its definition).
const ADDED: &[(&str, &str, &str)] = &[("containers", "pod", "TEXT NOT NULL DEFAULT ''")];

/// A container's row.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub image: String,
    pub command: Vec<String>,
    pub created: i64,
    pub state: String,
    pub pid: i64,
    pub monitor: i64,
    pub exit_code: Option<i64>,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub auto_remove: bool,
    pub stop_signal: String,
    /// The pod's id it belongs to ("" for none).
    pub pod: String,
}

pub struct Db {
    conn: Connection,
    pub root: PathBuf,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Db(e)
}

impl Db {
    pub fn open(root: &Path) -> Result<Db> {
        let conn = Connection::open(root.join("store.db")).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        for (table, column, def) in ADDED {
            let has: bool = conn
                .query_row(
                    &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                    [column],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(db_err)?
                > 0;
            if !has {
                // Another process may add it at the same moment: then it
                // is there, which is all that is wanted.
                if let Err(e) =
                    conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {def}"))
                {
                    if !e.to_string().contains("duplicate column") {
                        return Err(db_err(e));
                    }
                }
            }
        }
        Ok(Db {
            conn,
            root: root.to_path_buf(),
        })
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<Ctr> {
        let cmd: String = r.get(4)?;
        Ok(Ctr {
            id: r.get(0)?,
            name: r.get(1)?,
            image_id: r.get(2)?,
            image: r.get(3)?,
            command: serde_json::from_str(&cmd).unwrap_or_default(),
            created: r.get(5)?,
            state: r.get(6)?,
            pid: r.get(7)?,
            monitor: r.get(8)?,
            exit_code: r.get(9)?,
            started: r.get(10)?,
            finished: r.get(11)?,
            auto_remove: r.get::<_, i64>(12)? != 0,
            stop_signal: r.get(13)?,
            pod: r.get(14)?,
        })
    }

    const COLS: &'static str = "id, name, image_id, image, command, created, state, pid, monitor, exit_code, started, finished, auto_remove, stop_signal, pod";

    pub fn all(&self) -> Result<Vec<Ctr>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM containers ORDER BY created DESC",
                Self::COLS
            ))
            .map_err(db_err)?;
        let rows = st.query_map([], Self::row).map_err(db_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
    }

    /// By name, id, or a unique id prefix.
    pub fn find(&self, what: &str) -> Result<Ctr> {
        let by = |sql: &str, p: &str| -> Result<Vec<Ctr>> {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT {} FROM containers WHERE {sql}",
                    Self::COLS
                ))
                .map_err(db_err)?;
            let rows = st.query_map([p], Self::row).map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        };
        if let Some(c) = by("name = ?1", what)?.pop() {
            return Ok(c);
        }
        if what.len() >= 3 && what.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits = by("substr(id, 1, length(?1)) = ?1", what)?;
            match hits.len() {
                1 => return Ok(hits[0].clone()),
                0 => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "{what}: more than one container id starts so"
                    )))
                }
            }
        }
        Err(Error::invalid(format!("{what}: no such container")))
    }

    fn insert(&self, c: &Ctr) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO containers (id, name, image_id, image, command, created, state, auto_remove, stop_signal, pod)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![c.id, c.name, c.image_id, c.image, serde_json::to_string(&c.command).unwrap_or_default(), c.created, c.state, c.auto_remove as i64, c.stop_signal, c.pod],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Error::Refused(format!("the container name {:?} is already in use", c.name))
                }
                e => db_err(e),
            })?;
        Ok(())
    }

    fn set(&self, id: &str, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<()> {
        let mut all: Vec<&dyn rusqlite::ToSql> = p.to_vec();
        all.push(&id);
        let n = p.len() + 1;
        self.conn
            .execute(
                &format!("UPDATE containers SET {sql} WHERE id = ?{n}"),
                all.as_slice(),
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// The connection, for the tables of other modules (pods).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    fn delete(&self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(db_err)?;
        Ok(())
    }

    /// The row, with a running container whose monitor died marked exited
    /// (a kill -9 of the monitor: nobody will record its end).
    pub fn fresh(&self, c: Ctr) -> Result<Ctr> {
        if (c.state == "running" || c.state == "paused")
            && c.monitor > 0
            && !alive(c.monitor)
            && (c.pid <= 0 || !alive(c.pid))
        {
            self.set(&c.id, "state = 'exited', finished = ?1", &[&format::now()])?;
            return self.find(&c.id);
        }
        Ok(c)
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.root.join("runtime")
    }
}

fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

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

pub fn random_id() -> String {
    let mut b = [0u8; 32];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = format::now() as u64 ^ std::process::id() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
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
    pub log_limits: LogLimits,
    pub extras: crate::spec::Extras,
    pub settings: Settings,
    /// --stop-signal, over the image's StopSignal.
    pub stop_signal: Option<String>,
    /// -p specs and -P.
    pub publish: Vec<String>,
    pub publish_all: bool,
    /// --pod: what it joins of its pod's infra container.
    pub pod: Option<crate::pods::Join>,
}

/// What the monitor and `stop` read of a container besides its row:
/// `run.json` in its directory.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub restart: RestartPolicy,
    /// --stop-timeout: seconds stop waits before SIGKILL.
    pub stop_timeout: Option<u64>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// -d -i: the monitor keeps the container's stdin open for attach.
    #[serde(default)]
    pub interactive: bool,
    /// --runtime: another OCI runtime (runc, crun, ...) for this container.
    #[serde(default)]
    pub runtime: Option<PathBuf>,
    /// Anonymous volumes made for it (-v PATH, the image's VOLUME): rm -v
    /// removes them.
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// --volumes-from: CONTAINER[:ro|rw] (read at create).
    #[serde(default, skip_serializing)]
    pub volumes_from: Vec<String>,
    /// --add-host: (IP, HOST), kept in /etc/hosts when it is rewritten.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// --dns: the nameservers of its resolv.conf.
    #[serde(default)]
    pub dns: Vec<String>,
    /// --ip: the address asked for on its network.
    #[serde(default)]
    pub ip: Option<String>,
    /// --isolation: namespaces (default) or a VM of its own.
    #[serde(default)]
    pub isolation: crate::vm::Isolation,
    /// A VM pod's member: the pod's infra container, whose VM it runs in.
    #[serde(default)]
    pub vm_pod: Option<String>,
}

/// `--restart`: Docker's policies, kept by the container's monitor.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RestartPolicy {
    /// no, always, on-failure or unless-stopped.
    pub name: String,
    /// on-failure's most restarts (0: no bound).
    pub max: u32,
}

impl RestartPolicy {
    pub fn parse(text: &str) -> Result<RestartPolicy> {
        let (name, max) = text.split_once(':').unwrap_or((text, ""));
        let max = match (name, max) {
            (_, "") => 0,
            ("on-failure", n) => n.parse().map_err(|_| {
                Error::invalid(format!("--restart {text:?}: on-failure:N takes a number"))
            })?,
            _ => {
                return Err(Error::invalid(format!(
                    "--restart {text:?}: only on-failure takes a count"
                )))
            }
        };
        match name {
            "no" | "always" | "on-failure" | "unless-stopped" => Ok(RestartPolicy {
                name: name.into(),
                max,
            }),
            _ => Err(Error::invalid(format!(
                "--restart {text:?}: no, on-failure[:N], always or unless-stopped"
            ))),
        }
    }

    /// Whether a container that exited with `code`, restarted `done`
    /// times already, goes again (not after stop or kill: the caller
    /// checks that).
    fn again(&self, code: i32, done: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max == 0 || done < self.max),
            _ => false,
        }
    }
}

impl Settings {
    pub fn load(dir: &Path) -> Settings {
        fs::read(dir.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Marks a container stopped by hand (stop, kill): its restart policy
/// then lets it rest, as Docker's does, until it is started again.
const STOPPED_BY_USER: &str = "stopped-by-user";
/// How many times the monitor has restarted the container.
const RESTARTS: &str = "restarts";
/// Left by a foreground `run -t` for the monitor: hold the start until
/// the run has attached (the monitor removes it).
pub const ATTACH_FIRST: &str = "attach-first";

pub fn restart_count(db: &Db, id: &str) -> u32 {
    fs::read_to_string(db.dir(id).join(RESTARTS))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// uid, gid, groups and home of USER[:GROUP] from the rootfs's passwd and
/// group files, read inside the rootfs (a symlink there resolves there),
/// regular files of at most 16 MiB.
pub(crate) fn resolve_user(
    rootfs: &Path,
    user: &str,
) -> Result<(u32, u32, Vec<u32>, Option<String>)> {
    let read = |rel: &str| read_in_rootfs(rootfs, rel);
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read("etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && (f[0] == u || f[2] == u));
    let (uid, mut gid, home, uname) = match (&entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| {
                Error::invalid(format!(
                    "--user {user}: /etc/passwd's entry has no numeric uid"
                ))
            })?,
            f[3].parse().unwrap_or(0),
            Some(f[5].to_string()),
            f[0].to_string(),
        ),
        (None, Ok(n)) => (n, n, None, String::new()),
        (None, Err(_)) => {
            return Err(Error::invalid(format!(
                "--user {user}: no user {u:?} in the image's /etc/passwd"
            )))
        }
    };
    if entry.is_none() && g.is_none() {
        gid = uid;
    }
    let group = read("etc/group");
    if let Some(g) = g {
        gid = match group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == g || f[2] == g))
        {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::invalid(format!(
                    "--user {user}: no group {g:?} in the image's /etc/group"
                ))
            })?,
        };
    }
    // The primary group first, then the user's others (Docker's list).
    let groups: Vec<u32> = if uname.is_empty() {
        vec![gid]
    } else {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == uname))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .fold(vec![gid], |mut v, g| {
                v.push(g);
                v
            })
    };
    Ok((uid, gid, groups, home))
}

/// A file of the image's (etc/passwd, ...), read inside the rootfs (a
/// symlink there resolves there): a regular file of at most 16 MiB, else
/// nothing.
fn read_in_rootfs(rootfs: &Path, rel: &str) -> String {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use skiff_image::inroot::openat2;
    let Ok(dir) = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return String::new();
    };
    let Ok(fd) = openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
        return String::new();
    };
    let f = fs::File::from(fd);
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return String::new();
    }
    let mut s = String::new();
    let _ = f.take(16 << 20).read_to_string(&mut s);
    s
}

/// The gid of group `name` in the image's /etc/group (--group-add).
fn group_id(rootfs: &Path, name: &str) -> Result<u32> {
    read_in_rootfs(rootfs, "etc/group")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| {
            Error::invalid(format!(
                "--group-add {name}: no such group in the image's /etc/group"
            ))
        })
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
    let img = store.find(image)?;
    let cfg: Value = serde_json::from_slice(&img.config).unwrap_or(Value::Null);
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
    let ports = crate::net::publish(&o.publish, o.publish_all, &icfg)?;
    if o.settings.ip.is_some() && !matches!(network, crate::net::Choice::Cni(_)) {
        return Err(Error::invalid(
            "--ip: an address is given on a bridge network (--network bridge or a network's name)",
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
    // --init: this binary (static) bound in at /dev/init runs the command.
    let mut extras = o.extras.clone();
    let process_args = if o.init {
        let exe =
            std::env::current_exe().map_err(|e| Error::io("--init: finding this program", e))?;
        extras.mounts.push(json!({"destination": "/dev/init", "type": "bind", "source": exe, "options": ["bind", "ro", "nosuid", "nodev"]}));
        let mut a = vec!["/dev/init".to_string(), "__init".into(), "--".into()];
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
        skiff_image::mount::mount_at(store, &img.id, &dir, &rootfs)?;
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
                let a = crate::net::setup(&dir, &id, net, &ports, o.settings.ip.as_deref())?;
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
        let hosts = match &address {
            Some(ip) => crate::net::hosts_text(Some((ip, &names)), &extra),
            None => crate::net::hosts_text(Some(("127.0.0.1", &[hostname.as_str()])), &extra),
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
        fs::write(dir.join("resolv.conf"), resolv)
            .map_err(|e| Error::at(&dir.join("resolv.conf"), "writing", e))?;
        // A pod's containers share its infra's files, as its network.
        let etc_dir = match &o.pod {
            Some(p) if p.namespace("network").is_some() => p.infra_dir.clone(),
            _ => dir.clone(),
        };
        let etc: Vec<(String, String)> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| (format!("/etc/{f}"), etc_dir.join(f).display().to_string()))
            .collect();
        let env = crate::spec::environment(&icfg, &o.env, &hostname, home.as_deref(), o.tty);
        // Volumes: bound like -v's host paths once made and filled.
        let mut extras = extras.clone();
        let (binds, anonymous) = volume_binds(db, &icfg, &extras, &rootfs, o, &mut made_volumes)?;
        extras.mounts.extend(binds);
        let mut settings = o.settings.clone();
        settings.anonymous_volumes = anonymous;
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
            cgroups_path: o.pod.as_ref().map(|p| format!("{}/{id}", p.cgroup_parent)),
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
        fs::write(
            dir.join("run.json"),
            serde_json::to_vec(&settings).unwrap_or_default(),
        )
        .map_err(|e| Error::at(&dir.join("run.json"), "writing", e))?;
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
            image_id: img.id.clone(),
            image: img
                .names
                .first()
                .cloned()
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
        store.hold(&format!("container:{id}"), &img.id)?;
        skiff_image::trace::mark("create: config, files and row written");
        if let crate::net::Choice::Cni(net) = &network {
            crate::net::refresh_hosts(db, &net.name);
        }
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
        crate::volumes::fill(db, &name, rootfs, &r.destination)?;
        let data = crate::volumes::data(db, &name);
        binds.push(crate::spec::bind(
            &data.display().to_string(),
            &r.destination,
            r.read_only,
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
    skiff_image::mount::unmount_at(&dir.join("rootfs"))?;
    skiff_image::store::remove_tree(&dir)?;
    store.release(&format!("container:{}", c.id))?;
    db.delete(&c.id)?;
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

/// The longest log line; a longer one is written in parts.
const LINE_MAX: u64 = 16 * 1024;

/// `--log-opt max-size=SIZE,max-file=N`: the log is rotated by size, so it
/// never fills the disk (Docker's `local` driver's defaults: 20m, 5).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_size: 20 << 20,
            max_files: 5,
        }
    }
}

impl LogLimits {
    /// From `--log-opt KEY=VALUE` flags.
    pub fn parse(opts: &[String]) -> Result<LogLimits> {
        let mut l = LogLimits::default();
        for o in opts {
            match o.split_once('=') {
                Some(("max-size", v)) => {
                    l.max_size = crate::spec::parse_size("--log-opt max-size", v)
                        .map_err(Error::invalid)? as u64;
                    if l.max_size < 4096 {
                        return Err(Error::invalid(format!("--log-opt {o:?}: at least 4k")));
                    }
                }
                Some(("max-file", v)) => {
                    l.max_files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::invalid(format!("--log-opt {o:?}: a number of files, at least 1"))
                    })?;
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "--log-opt {o:?}: max-size=SIZE or max-file=N"
                    )))
                }
            }
        }
        Ok(l)
    }

    fn load(dir: &Path) -> LogLimits {
        fs::read(dir.join("log.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// The log file, rotated: ctr.log, then ctr.log.1 (newest) ... .N-1.
pub(crate) struct LogWriter {
    dir: PathBuf,
    file: fs::File,
    size: u64,
    limits: LogLimits,
}

impl LogWriter {
    fn open(dir: &Path, limits: LogLimits) -> Result<LogWriter> {
        let path = dir.join("ctr.log");
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::at(&path, "opening", e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            file,
            size,
            limits,
        })
    }

    /// One line (Podman's k8s-file format: TIME STREAM F|P TEXT).
    fn line(&mut self, stream: &str, line: &[u8]) {
        let (text, full) = match line.strip_suffix(b"\n") {
            Some(t) => (t, "F"),
            None => (line, "P"),
        };
        let mut out = Vec::with_capacity(text.len() + 48);
        out.extend_from_slice(format!("{} {stream} {full} ", rfc3339_nanos()).as_bytes());
        out.extend_from_slice(text);
        out.push(b'\n');
        if self.size + out.len() as u64 > self.limits.max_size {
            self.rotate();
        }
        if self.file.write_all(&out).is_ok() {
            self.size += out.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let name = |n: u32| {
            self.dir.join(if n == 0 {
                "ctr.log".to_string()
            } else {
                format!("ctr.log.{n}")
            })
        };
        if self.limits.max_files <= 1 {
            let _ = self.file.set_len(0);
            self.size = 0;
            return;
        }
        for n in (0..self.limits.max_files - 1).rev() {
            let _ = fs::rename(name(n), name(n + 1));
        }
        if let Ok(f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(name(0))
        {
            self.file = f;
            self.size = 0;
        }
    }
}

fn rfc3339_nanos() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format::rfc3339(d.as_secs() as i64, Some(d.subsec_nanos()))
}

/// Docker's and Podman's codes for a container that could not start:
/// 127 the program is not there, 126 it cannot be run, else 125.
pub(crate) fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        125
    }
}

pub fn mark_running(db: &Db, id: &str, pid: i64, monitor: i64) -> Result<()> {
    db.set(
        id,
        "state = 'running', pid = ?1, monitor = ?2, started = ?3",
        &[&pid, &monitor, &format::now()],
    )
}

pub fn mark_exited(db: &Db, id: &str, code: i32) -> Result<()> {
    db.set(
        id,
        "state = 'exited', exit_code = ?1, finished = ?2, pid = 0",
        &[&(code as i64), &format::now()],
    )
}

/// The monitor: creates and starts the container with skiff-oci, logs its
/// output (and echoes it when `echo`), waits for it, records how it ended,
/// and starts it again as its restart policy says; the container's exit
/// code (or 125/126/127 when it did not start).
pub fn monitor(
    store: &mut Store,
    db: &Db,
    id: &str,
    echo: bool,
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
    let code = loop {
        let began = Instant::now();
        let io = RunIo {
            stdin_inherit: io.stdin_inherit && restarts == 0,
            hold: io.hold && restarts == 0,
            ..io
        };
        let ran = match settings.isolation {
            crate::vm::Isolation::Vm => {
                let pod = settings.vm_pod.as_deref();
                crate::vm::run_once(db, id, pod, io, &log, &hub)
            }
            crate::vm::Isolation::Default => run_once(db, id, io, &log, &hub),
        };
        tell_clients(&hub, &ran);
        hub.close();
        let code = match ran? {
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
                eprintln!("Error: {}", msg.trim().trim_start_matches("skiff-oci: "));
                db.set(
                    id,
                    "state = 'exited', exit_code = ?1, finished = ?2",
                    &[&(code as i64), &format::now()],
                )?;
                break code;
            }
        };
        mark_exited(db, id, code)?;
        let _ = oci(db, id)
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !settings.restart.again(code, restarts) || dir.join(STOPPED_BY_USER).exists() {
            break code;
        }
        // Docker's back-off: 100 ms, doubling up to a minute, from 100 ms
        // again after a run of 10 s or more.
        if began.elapsed() >= Duration::from_secs(10) {
            pause = Duration::from_millis(100);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(60));
        if dir.join(STOPPED_BY_USER).exists() {
            break code;
        }
        restarts += 1;
        let _ = fs::write(dir.join(RESTARTS), restarts.to_string());
    };
    let _ = fs::remove_file(dir.join("attach.sock"));
    skiff_image::trace::mark("output copied, exit recorded, runtime state deleted");
    if c.auto_remove {
        let c = db.find(id)?;
        remove(store, db, &c)?;
        skiff_image::trace::mark("--rm: removed (network, rootfs, directory, row)");
    }
    Ok(code)
}

/// A container's log, shared by its output copiers.
pub(crate) type SharedLog = std::sync::Arc<std::sync::Mutex<LogWriter>>;

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

/// How one run of the container ended.
pub(crate) enum Ran {
    Exited(i32),
    /// create or start failed: the runtime's message.
    NotStarted(String),
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
        "Gateway": gateway,
        "Ports": ports,
        "Networks": crate::net::attachments(&rec)
            .into_iter()
            .map(|a| {
                let ip = skiff_net::cni::addresses(&a.result).into_iter().next().unwrap_or_default();
                let gateway = a.result["ips"][0]["gateway"].as_str().unwrap_or_default().to_string();
                (a.network, json!({"IPAddress": ip, "Gateway": gateway, "Interface": a.ifname}))
            })
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// Whether the container's config gives it a terminal.
pub fn has_terminal(db: &Db, c: &Ctr) -> bool {
    fs::read(db.dir(&c.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.pointer("/process/terminal").and_then(Value::as_bool))
        .unwrap_or(false)
}

/// How a run's stdio is wired.
#[derive(Clone, Copy)]
pub(crate) struct RunIo {
    /// Output to ours too (a foreground run).
    pub(crate) echo: bool,
    /// The container reads our stdin (a foreground run -i).
    pub(crate) stdin_inherit: bool,
    /// A terminal: its master comes over a console socket.
    pub(crate) tty: bool,
    /// -d -i: a pipe to its stdin, written by attach.
    pub(crate) interactive: bool,
    /// A foreground `run -t` attaches: start once it is there.
    pub(crate) hold: bool,
}

/// One run: create and start with skiff-oci, the output into the log (and
/// to attached clients), the wait for init.
fn run_once(
    db: &Db,
    id: &str,
    io: RunIo,
    log: &std::sync::Arc<std::sync::Mutex<LogWriter>>,
    hub: &crate::attach::Hub,
) -> Result<Ran> {
    let dir = db.dir(id);
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

/// Copies a terminal's output into the log (line by line) and to attached
/// clients (as it comes), until the terminal is closed (EIO).
pub(crate) fn copy_terminal(
    mut master: impl Read,
    log: &std::sync::Mutex<LogWriter>,
    hub: &crate::attach::Hub,
) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        hub.send(crate::attach::STDOUT, &buf[..n]);
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' || line.len() as u64 >= LINE_MAX {
                if let Ok(mut w) = log.lock() {
                    w.line("stdout", &line);
                }
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        if let Ok(mut w) = log.lock() {
            w.line("stdout", &line);
        }
    }
}

/// Copies one stream of the container into the log, line by line (and to
/// attached clients, and to ours when `echo`).
pub(crate) fn copy_output(
    r: impl Read,
    stream: &str,
    log: &std::sync::Mutex<LogWriter>,
    hub: &crate::attach::Hub,
    echo: bool,
) {
    let mut reader = std::io::BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line of at most 16 KiB (a longer one goes in parts, P as
        // Podman marks them): memory stays bounded.
        match (&mut reader).take(LINE_MAX).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Ok(mut w) = log.lock() {
                    w.line(stream, &line);
                }
                let kind = match stream {
                    "stdout" => crate::attach::STDOUT,
                    _ => crate::attach::STDERR,
                };
                hub.send(kind, &line);
                if echo {
                    if stream == "stdout" {
                        let _ = std::io::stdout().write_all(&line);
                        let _ = std::io::stdout().flush();
                    } else {
                        let _ = std::io::stderr().write_all(&line);
                    }
                }
            }
        }
    }
}

fn set_nonblocking(f: &fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl flags of our own fd.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

pub(crate) fn pipe() -> Result<(fs::File, fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two fds, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("making a pipe", std::io::Error::last_os_error()));
    }
    use std::os::fd::FromRawFd;
    // SAFETY: fresh fds of ours.
    Ok(unsafe { (fs::File::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) })
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

/// Marks the container stopped by hand (see STOPPED_BY_USER).
pub fn mark_stopped_by_user(db: &Db, id: &str) {
    let _ = fs::write(db.dir(id).join(STOPPED_BY_USER), "");
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

/// The command's process starts a session of its own: it outlives us
/// (and our terminal's signals).
pub(crate) fn in_own_session(cmd: &mut Command) {
    // SAFETY: setsid in the child between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Waits until the container has exited; its code.
pub fn wait_exit(db: &Db, id: &str, timeout: Option<Duration>) -> Result<Option<i64>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut pause = Duration::from_millis(2);
    loop {
        let c = db.fresh(db.find(id)?)?;
        if c.state == "exited" {
            return Ok(c.exit_code);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
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
    Settings::load(&db.dir(&c.id)).isolation == crate::vm::Isolation::Vm
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
        let state = if freeze { "paused" } else { "running" };
        return db.set(&c.id, "state = ?1", &[&state]);
    }
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
    let state = if freeze { "paused" } else { "running" };
    db.set(&c.id, "state = ?1", &[&state])
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
    })
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
    loop {
        let c = db.fresh(db.find(&c.id)?)?;
        match c.state.as_str() {
            "running" | "paused" => stop_run(db, &c, timeout)?,
            _ if alive(c.monitor) && c.monitor != std::process::id() as i64 => {
                if Instant::now() > deadline {
                    return Err(Error::invalid(format!(
                        "{}: its monitor (pid {}) did not end",
                        c.name, c.monitor
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return Ok(()),
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

/// Whether the container's monitor is between two runs (a restart's
/// back-off): the row says exited, the monitor lives.
pub fn restarting(c: &Ctr) -> bool {
    c.state == "exited" && alive(c.monitor)
}

/// What `exec` runs and how.
pub struct ExecOpts<'a> {
    pub argv: &'a [String],
    pub env: &'a [String],
    pub user: Option<&'a str>,
    pub workdir: Option<&'a str>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
}

/// `exec`: a process in a running container; its exit code.
pub fn exec(db: &Db, c: &Ctr, o: &ExecOpts) -> Result<i32> {
    let ExecOpts {
        argv,
        env,
        user,
        workdir,
        tty,
        interactive,
        detach,
    } = *o;
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
        return Err(Error::invalid(format!(
            "{}: container is not running",
            c.name
        )));
    }
    if is_vm(db, c) {
        return crate::vm::exec(db, c, o);
    }
    let mut cmd = oci(db, &c.id);
    cmd.arg("exec");
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
    if detach {
        cmd.stdout(Stdio::null());
    }
    let o = cmd
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("running skiff-oci exec", e))?;
    let out = o
        .wait_with_output()
        .map_err(|e| Error::io("waiting for skiff-oci exec", e))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(125);
    if code == 255 && err.contains("skiff-oci") {
        eprintln!("Error: {}", err.trim().trim_start_matches("skiff-oci: "));
        return Ok(start_failure_code(&err));
    }
    let _ = std::io::stderr().write_all(out.stderr.as_slice());
    Ok(code)
}

/// Prints a container's log (k8s-file lines) to stdout/stderr by stream.
pub fn print_logs(
    db: &Db,
    c: &Ctr,
    tail: Option<usize>,
    timestamps: bool,
    follow: bool,
) -> Result<()> {
    let path = db.dir(&c.id).join("ctr.log");
    let mut offset = 0u64;
    let mut first = true;
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
            .filter(|l| !l.is_empty())
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
        if !follow {
            return Ok(());
        }
        let now = db.fresh(db.find(&c.id)?)?;
        if now.state == "exited" && upto == 0 {
            return Ok(());
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
    json!({
        "Id": c.id,
        "Name": c.name,
        "Created": ts(Some(c.created)),
        "Path": c.command.first(),
        "Args": c.command.get(1..).unwrap_or(&[]),
        "Image": c.image_id,
        "ImageName": c.image,
        "State": {
            "Status": c.state,
            "Running": c.state == "running" || c.state == "paused",
            "Paused": c.state == "paused",
            "Pid": c.pid,
            "ExitCode": c.exit_code.unwrap_or(0),
            "StartedAt": ts(c.started),
            "FinishedAt": ts(c.finished),
        },
        "RestartCount": restart_count(db, &c.id),
        "HostConfig": {
            "AutoRemove": c.auto_remove,
            "RestartPolicy": {
                "Name": if settings.restart.name.is_empty() { "no" } else { settings.restart.name.as_str() },
                "MaximumRetryCount": settings.restart.max,
            },
            "Privileged": config.pointer("/linux/maskedPaths").and_then(Value::as_array).is_some_and(|m| m.is_empty()),
            "Isolation": settings.isolation.name(),
        },
        "Config": {
            "Hostname": config.pointer("/hostname"),
            "Env": config.pointer("/process/env"),
            "Cmd": c.command,
            "WorkingDir": config.pointer("/process/cwd"),
            "StopSignal": format!("SIG{}", c.stop_signal),
            "StopTimeout": settings.stop_timeout.unwrap_or(10),
            "Labels": settings.labels,
        },
        "NetworkSettings": network_settings(db, c),
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": db.dir(&c.id).join("rootfs")}},
        "LogPath": db.dir(&c.id).join("ctr.log"),
    })
}
