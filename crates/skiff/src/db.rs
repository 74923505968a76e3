//! The engine's record of its containers: the store's sqlite database (a
//! row per container), each container's directory, the settings a create
//! was given (run.json) and the state changes the monitor and the
//! commands record (starting, running, exited, stopped by the user).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use skiff_image::{Error, Result};

use crate::format;

pub(crate) const SCHEMA: &str = "
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
    doc TEXT NOT NULL             -- JSON: what pod create was asked (the pods module's Spec)
);
";

/// Columns added after the first release of the schema, for stores made
/// before: (table, column, its definition).
pub(crate) const ADDED: &[(&str, &str, &str)] =
    &[("containers", "pod", "TEXT NOT NULL DEFAULT ''")];

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

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
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

    pub(crate) fn row(r: &rusqlite::Row) -> rusqlite::Result<Ctr> {
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
                "SELECT {} FROM containers ORDER BY created DESC, rowid DESC",
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
        Err(Error::NoContainer(what.to_string()))
    }

    pub(crate) fn insert(&self, c: &Ctr) -> Result<()> {
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

    pub(crate) fn set(&self, id: &str, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<()> {
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

    pub(crate) fn delete(&self, id: &str) -> Result<()> {
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

pub(crate) fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

pub(crate) fn is_zombie(pid: i64) -> bool {
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

pub use crate::format::random_id;

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
    /// --secret type=env: the variables that hold secrets (inspect leaves
    /// them out).
    #[serde(default)]
    pub secret_env: Vec<String>,
    /// --requires: the ids of containers started before this one.
    #[serde(default)]
    pub requires: Vec<String>,
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
    /// --dns-search: its resolv.conf's search domains ("." alone: none).
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// --dns-option: its resolv.conf's options.
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// --ip: the address asked for on its network.
    #[serde(default)]
    pub ip: Option<String>,
    /// --mac-address: the hardware address asked for there.
    #[serde(default)]
    pub mac_address: Option<String>,
    /// Docker's container Config as made (Env of the image and -e, Cmd,
    /// Entrypoint, User and WorkingDir as given, Labels, ExposedPorts,
    /// Volumes, StopSignal): what inspect shows and commit starts from.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// --isolation: namespaces (default) or a VM of its own.
    #[serde(default)]
    pub isolation: Isolation,
    /// A VM pod's member: the pod's infra container, whose VM it runs in.
    #[serde(default)]
    pub vm_pod: Option<String>,
    /// The ports it exposes: the image's and --expose's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// --network-alias: more names its peers find it by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// --pidfile: where its process id is written at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<PathBuf>,
    /// --timeout: seconds it may run before it is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Its health check (--health-*, the image's HEALTHCHECK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Healthcheck>,
    /// --rmi: the image as run named it, which goes once the container
    /// is removed, if nothing else uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmi: Option<String>,
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
    pub(crate) fn again(&self, code: i32, done: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max == 0 || done < self.max),
            _ => false,
        }
    }
}

impl Settings {
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("run.json");
        fs::write(&path, serde_json::to_vec(self).unwrap_or_default())
            .map_err(|e| Error::at(&path, "writing", e))
    }

    pub fn load(dir: &Path) -> Settings {
        fs::read(dir.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Marks a container stopped by hand (stop, kill): its restart policy
/// then lets it rest, as Docker's does, until it is started again.
pub(crate) const STOPPED_BY_USER: &str = "stopped-by-user";

/// Left by `checkpoint` for the monitor: the container's end is its
/// checkpoint (exit 0, no restart); the images are in `checkpoint/`.
pub(crate) const CHECKPOINTED: &str = "checkpointed";

/// Left by `restore` for the monitor: bring the container back from its
/// checkpoint instead of starting it afresh. It holds [`RESTORE_TCP`] for
/// `--tcp-established`, else nothing.
pub(crate) const RESTORE: &str = "restore";

/// What the restore mark holds for `restore --tcp-established`.
pub(crate) const RESTORE_TCP: &[u8] = b"tcp-established";

/// How many times the monitor has restarted the container.
pub(crate) const RESTARTS: &str = "restarts";

/// Present while the monitor sleeps between two runs (see backing_off).
pub(crate) const BACK_OFF: &str = "back-off";

/// Left by a foreground `run -t` for the monitor: hold the start until
/// the run has attached (the monitor removes it).
pub const ATTACH_FIRST: &str = "attach-first";

pub fn restart_count(db: &Db, id: &str) -> u32 {
    fs::read_to_string(db.dir(id).join(RESTARTS))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// A start under way: the row keeps "created" and names the monitor, so
/// that `rm` waits for it (`starting`) instead of removing what it is
/// still making (a VM container's boot takes seconds).
pub fn mark_starting(db: &Db, id: &str, monitor: i64) -> Result<()> {
    db.set(id, "monitor = ?1", &[&monitor])
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

/// Records a container's event: its id, name, image, pod and labels, as
/// Podman writes them.
pub fn record(db: &Db, c: &Ctr, status: &str) {
    event(db, c, status).record(&db.root);
}

pub fn event(db: &Db, c: &Ctr, status: &str) -> crate::events::Event {
    let mut e = crate::events::Event::new("container", status, &c.id, &c.name)
        .image(&c.image)
        .pod(&c.pod);
    for (k, v) in &Settings::load(&db.dir(&c.id)).labels {
        e = e.attribute(k, v);
    }
    e
}

/// Marks the container stopped by hand (see STOPPED_BY_USER).
pub fn mark_stopped_by_user(db: &Db, id: &str) {
    let _ = fs::write(db.dir(id).join(STOPPED_BY_USER), "");
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

/// Whether the container waits out a restart policy's back-off (Docker's
/// "restarting"): its monitor lives and has marked the wait. A monitor
/// that will not run it again, finishing up, is not.
pub fn backing_off(db: &Db, c: &Ctr) -> bool {
    c.state == "exited" && db.dir(&c.id).join(BACK_OFF).exists() && alive(c.monitor)
}

/// Whether the container's monitor is between two runs (a restart's
/// back-off): the row says exited, the monitor lives.
pub fn restarting(c: &Ctr) -> bool {
    c.state == "exited" && alive(c.monitor)
}

/// The container once a monitor that outlives its run's end has gone on:
/// one between two runs runs it again after its back-off, one that does
/// not restart it is finishing up (deleting the runtime's state) and
/// ends. Both read as restarting meanwhile; a start in that window would
/// find the runtime's state of the run that ended, or be taken for a
/// no-op. Waited for, at most `bound`.
pub fn settled(db: &Db, c: Ctr, bound: Duration) -> Result<Ctr> {
    let deadline = Instant::now() + bound;
    let mut c = c;
    while restarting(&c) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        c = db.fresh(db.find(&c.id)?)?;
    }
    Ok(c)
}

/// Whether a start is under way: the row says created and its monitor
/// lives (for a VM container, the seconds of its boot).
pub fn starting(c: &Ctr) -> bool {
    c.state == "created" && alive(c.monitor) && c.monitor != std::process::id() as i64
}

/// How a container is isolated: `--isolation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Namespaces and cgroups on the host's kernel (skiff-oci, or --runtime).
    #[default]
    Default,
    Vm,
}

impl Isolation {
    pub fn parse(text: Option<&str>) -> Result<Isolation> {
        match text {
            None | Some("default" | "process" | "oci") => Ok(Isolation::Default),
            Some("vm") => Ok(Isolation::Vm),
            Some(other) => Err(Error::invalid(format!(
                "--isolation {other:?}: default (or process, oci) or vm"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isolation::Default => "default",
            Isolation::Vm => "vm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_takes_default_process_oci_and_vm_only() {
        for (text, want) in [
            (None, Isolation::Default),
            (Some("default"), Isolation::Default),
            (Some("process"), Isolation::Default),
            (Some("oci"), Isolation::Default),
            (Some("vm"), Isolation::Vm),
        ] {
            assert_eq!(Isolation::parse(text).unwrap(), want);
        }
        let e = Isolation::parse(Some("hyperv")).unwrap_err().to_string();
        assert!(e.contains("--isolation"), "{e}");
    }
}
