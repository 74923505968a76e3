//! Pods, as Podman's: a group of containers sharing namespaces (by default
//! network, ipc and uts; pid on request) held by an infra container, and a
//! cgroup parent. The infra runs `skiff __pause` (this binary is static)
//! bound into a tiny image the engine makes itself
//! (`localhost/skiff-infra`), so a pod needs no image from anywhere;
//! `--infra-image` takes another. The pod's network (its CNI network, its
//! published ports) is the infra's; its members join it by the namespace's
//! file and share its /etc/hosts, /etc/hostname and /etc/resolv.conf.
//!
//! The infra's ipc and uts namespaces are bound to files in its directory
//! (`pod-ipc`, `pod-uts`, and `pod-net` when the pod has no CNI network)
//! when it starts, so a member started later (restart, `pod start`) joins
//! the same ones by path; a shared pid namespace lives only as long as the
//! infra's pause, which is why members start after it.
//! The rows: the `pods` table beside `containers` (a member's `pod`
//! column names its pod).

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::params;
use serde_json::{json, Value};
use skiff_image::reference::Reference;
use skiff_image::store::Store;
use skiff_image::{Error, Result};

use crate::containers::{self as ctr};
use crate::db::{Ctr, Db};
use crate::format;

/// The namespaces a pod may share (`pod create --share`; Podman's
/// default, net,ipc,uts, is the flag's).
const SHAREABLE: &[&str] = &["net", "ipc", "uts", "pid"];
/// The infra image the engine makes.
const INFRA_IMAGE: &str = "localhost/skiff-infra:latest";

/// What `pod create` was asked: kept with the pod.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub share: Vec<String>,
    pub hostname: String,
    pub network: Option<String>,
    pub publish: Vec<String>,
    pub infra_image: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// vm: the pod is one VM (its infra's), its members run inside it.
    #[serde(default)]
    pub isolation: crate::db::Isolation,
    /// A VM pod's size (pod create --memory, --cpus): the infra's
    /// linux.resources, which the VM is sized from.
    #[serde(default)]
    pub resources: serde_json::Map<String, Value>,
    /// --infra-name: the infra container's name [default: ID12-infra].
    #[serde(default)]
    pub infra_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub id: String,
    pub name: String,
    pub created: i64,
    pub infra: String,
    pub spec: Spec,
}

/// The pod's cgroup parent (cgroupfs path, as cgroupsPath takes it).
fn cgroup_parent(id: &str) -> String {
    format!("/skiff-pod-{}", &id[..12])
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Pod> {
    let doc: String = r.get(4)?;
    Ok(Pod {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        infra: r.get(3)?,
        spec: serde_json::from_str(&doc).unwrap_or_default(),
    })
}

pub fn all(db: &Db) -> Result<Vec<Pod>> {
    let mut st = db
        .conn()
        .prepare("SELECT id, name, created, infra, doc FROM pods ORDER BY created DESC")
        .map_err(Error::Db)?;
    let rows = st.query_map([], row).map_err(Error::Db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::Db)
}

/// By name, id, or a unique id prefix.
pub fn find(db: &Db, what: &str) -> Result<Pod> {
    let list = all(db)?;
    if let Some(p) = list.iter().find(|p| p.name == what || p.id == what) {
        return Ok(p.clone());
    }
    let hits: Vec<&Pod> = list
        .iter()
        .filter(|p| what.len() >= 3 && p.id.starts_with(what))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::invalid(format!("{what}: no such pod"))),
        _ => Err(Error::invalid(format!(
            "{what}: more than one pod id starts so"
        ))),
    }
}

/// Its containers, the infra last.
pub fn members(db: &Db, pod: &Pod) -> Result<Vec<Ctr>> {
    let mut list: Vec<Ctr> = db
        .all()?
        .into_iter()
        .filter(|c| c.pod == pod.id)
        .map(|c| db.fresh(c))
        .collect::<Result<_>>()?;
    list.sort_by_key(|c| c.id == pod.infra);
    Ok(list)
}

/// `--share`: a comma list of SHAREABLE.
pub fn parse_share(text: &str) -> Result<Vec<String>> {
    let mut out = vec![];
    for s in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !SHAREABLE.contains(&s) {
            return Err(Error::invalid(format!(
                "--share {text:?}: {s:?} cannot be shared (one of {})",
                SHAREABLE.join(", ")
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// The infra image: made here once (a layer with the mount points and an
/// empty /pause, which the infra's bind of this binary covers).
fn infra_image(store: &mut Store) -> Result<String> {
    if let Ok(img) = store.find(INFRA_IMAGE) {
        return Ok(img.id);
    }
    let mut tar = tar::Builder::new(Vec::new());
    let entries = [
        ("dev", tar::EntryType::Directory),
        ("proc", tar::EntryType::Directory),
        ("sys", tar::EntryType::Directory),
        ("etc", tar::EntryType::Directory),
        ("pause", tar::EntryType::Regular),
    ];
    for (path, kind) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        tar.append_data(&mut h, path, std::io::empty())
            .map_err(|e| Error::io("making the infra image", e))?;
    }
    let bytes = tar
        .into_inner()
        .map_err(|e| Error::io("making the infra image", e))?;
    let name = Reference::parse_local(INFRA_IMAGE)?;
    skiff_image::archive::import(
        store,
        &bytes[..],
        Some(&name),
        "1970-01-01T00:00:00Z",
        &|_| Ok(()),
    )
}

/// `pod create`: the pod's row and its infra container (created, started
/// with the pod or its first member).
pub fn create(store: &mut Store, db: &Db, name: Option<String>, spec: Spec) -> Result<Pod> {
    let id = crate::db::random_id();
    let name = name.unwrap_or_else(|| format!("skiff_pod_{}", &id[..12]));
    if find(db, &name).is_ok() {
        return Err(Error::Refused(format!(
            "the pod name {name:?} is already in use"
        )));
    }
    if !spec.share.iter().any(|s| s == "net")
        && (spec.network.is_some() || !spec.publish.is_empty())
    {
        return Err(Error::invalid(
            "--network/-p: a pod without a shared network (--share without net) has none to give",
        ));
    }
    let (image, command, mounts) = match &spec.infra_image {
        Some(img) => (img.clone(), vec![], vec![]),
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| Error::io("finding this program for the infra", e))?;
            (
                infra_image(store)?,
                vec!["/pause".to_string(), "__pause".into()],
                vec![
                    json!({"destination": "/pause", "type": "bind", "source": exe, "options": ["bind", "ro", "nosuid", "nodev"]}),
                ],
            )
        }
    };
    let extras = crate::spec::Extras {
        mounts,
        seccomp: crate::spec::default_seccomp()?,
        resources: spec.resources.clone(),
        ..Default::default()
    };
    let opts = ctr::RunOpts {
        name: Some(
            spec.infra_name
                .clone()
                .unwrap_or_else(|| format!("{}-infra", &id[..12])),
        ),
        settings: crate::db::Settings {
            isolation: spec.isolation,
            ..Default::default()
        },
        hostname: Some(spec.hostname.clone()).filter(|h| !h.is_empty()),
        network: spec.network.clone(),
        publish: spec.publish.clone(),
        extras,
        pod: Some(ctr::Join {
            pod: id.clone(),
            infra_dir: PathBuf::new(),
            namespaces: vec![],
            cgroup_parent: cgroup_parent(&id),
            hostname: String::new(),
        }),
        ..ctr::RunOpts::default()
    };
    let infra = ctr::create(store, db, &image, &command, &opts)?;
    let mut spec = spec;
    if spec.hostname.is_empty() {
        spec.hostname = infra.id[..12].to_string();
    }
    let pod = Pod {
        id,
        name,
        created: format::now(),
        infra: infra.id.clone(),
        spec,
    };
    let inserted = db.conn().execute(
        "INSERT INTO pods (id, name, created, infra, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            pod.id,
            pod.name,
            pod.created,
            pod.infra,
            serde_json::to_string(&pod.spec).unwrap_or_default()
        ],
    );
    if let Err(e) = inserted {
        let _ = ctr::remove(store, db, &infra);
        return Err(match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Refused(format!("the pod name {:?} is already in use", pod.name))
            }
            e => Error::Db(e),
        });
    }
    record(db, &pod, "create");
    Ok(pod)
}

/// Records a pod's event (Podman's: no image).
pub fn record(db: &Db, pod: &Pod, status: &str) {
    crate::events::Event::new("pod", status, &pod.id, &pod.name).record(&db.root);
}

/// The infra running, its namespaces bound to files; its row.
pub fn ensure_running(db: &Db, pod: &Pod) -> Result<Ctr> {
    let infra = db.fresh(db.find(&pod.infra)?)?;
    let infra = match infra.state.as_str() {
        "running" => infra,
        "paused" => {
            return Err(Error::invalid(format!(
                "pod {}: it is paused: unpause it first",
                pod.name
            )))
        }
        _ => {
            if infra.state == "exited" {
                ctr::reset_exited(db, &infra)?;
            }
            let c = ctr::start_detached(db, &infra.id)?;
            if c.state != "running" {
                return Err(Error::invalid(format!(
                    "pod {}: its infra container did not start (exit {}); see skiff logs {}",
                    pod.name,
                    c.exit_code.unwrap_or(125),
                    c.name
                )));
            }
            c
        }
    };
    // A VM pod's namespaces are the guest's: nothing on the host to bind.
    if pod.spec.isolation != crate::db::Isolation::Vm {
        bind_namespaces(db, pod, &infra)?;
    }
    Ok(infra)
}

/// The files a pod's namespaces are bound to, in the infra's directory.
fn ns_files(db: &Db, pod: &Pod) -> Vec<(&'static str, &'static str, PathBuf)> {
    let dir = db.dir(&pod.infra);
    vec![
        ("network", "net", dir.join("pod-net")),
        ("ipc", "ipc", dir.join("pod-ipc")),
        ("uts", "uts", dir.join("pod-uts")),
    ]
}

/// Binds the running infra's ipc and uts (and network, when it has no
/// CNI namespace file) to files, once per run of it.
fn bind_namespaces(db: &Db, pod: &Pod, infra: &Ctr) -> Result<()> {
    let cni_netns = db.dir(&pod.infra).join("netns").exists();
    for (_, ns, file) in ns_files(db, pod) {
        if ns == "net" && cni_netns {
            continue;
        }
        let source = PathBuf::from(format!("/proc/{}/ns/{ns}", infra.pid));
        let same = |a: &Path, b: &Path| {
            use std::os::unix::fs::MetadataExt;
            match (fs::metadata(a), fs::metadata(b)) {
                (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
                _ => false,
            }
        };
        if same(&source, &file) {
            continue;
        }
        unbind(&file);
        fs::write(&file, b"").map_err(|e| Error::at(&file, "making", e))?;
        rustix::mount::mount_bind(&source, &file).map_err(|e| {
            Error::io(
                format!("binding {} to {}", source.display(), file.display()),
                e.into(),
            )
        })?;
    }
    Ok(())
}

fn unbind(file: &Path) {
    let _ = rustix::mount::unmount(file, rustix::mount::UnmountFlags::DETACH);
    let _ = fs::remove_file(file);
}

/// What a member joins (the infra started first).
pub fn join(db: &Db, pod: &Pod) -> Result<ctr::Join> {
    let infra = ensure_running(db, pod)?;
    let dir = db.dir(&pod.infra);
    if pod.spec.isolation == crate::db::Isolation::Vm {
        // In the VM every container has the guest's network (the agent
        // leaves none of its own); the other shared namespaces are the
        // infra's in the guest, by its pid there.
        let guest_pid = crate::vm::guest_pid(&dir)?;
        let namespaces = [("ipc", "ipc"), ("uts", "uts"), ("pid", "pid")]
            .into_iter()
            .filter(|(_, ns)| pod.spec.share.iter().any(|s| s == ns))
            .map(|(kind, ns)| (kind, format!("/proc/{guest_pid}/ns/{ns}")))
            .collect();
        return Ok(ctr::Join {
            pod: pod.id.clone(),
            infra_dir: dir,
            namespaces,
            cgroup_parent: cgroup_parent(&pod.id),
            hostname: pod.spec.hostname.clone(),
        });
    }
    let mut namespaces = vec![];
    for (kind, ns, file) in ns_files(db, pod) {
        if !pod.spec.share.iter().any(|s| s == ns) {
            continue;
        }
        let path = if kind == "network" && dir.join("netns").exists() {
            dir.join("netns")
        } else {
            file
        };
        namespaces.push((kind, path.display().to_string()));
    }
    if pod.spec.share.iter().any(|s| s == "pid") {
        namespaces.push(("pid", format!("/proc/{}/ns/pid", infra.pid)));
    }
    Ok(ctr::Join {
        pod: pod.id.clone(),
        infra_dir: dir,
        namespaces,
        cgroup_parent: cgroup_parent(&pod.id),
        hostname: pod.spec.hostname.clone(),
    })
}

/// Podman's pod states: Created, Running, Degraded (some members run),
/// Exited, Paused.
pub fn state(pod: &Pod, members: &[Ctr]) -> &'static str {
    let others: Vec<&Ctr> = members.iter().filter(|c| c.id != pod.infra).collect();
    let running = others.iter().filter(|c| c.state == "running").count();
    let paused = others.iter().filter(|c| c.state == "paused").count();
    let infra_up = members
        .iter()
        .any(|c| c.id == pod.infra && c.state == "running");
    match (others.len(), running, paused) {
        (n, _, p) if n > 0 && p == n => "Paused",
        (n, r, _) if n > 0 && r == n => "Running",
        (_, r, _) if r > 0 => "Degraded",
        (0, _, _) if infra_up => "Running",
        _ if others.iter().all(|c| c.state == "created")
            && members.iter().all(|c| c.state == "created") =>
        {
            "Created"
        }
        _ => "Exited",
    }
}

/// `pod pause`: every running member, infra too (`freeze`); `pod
/// unpause`: every paused one. A pod with none is left as it is.
pub fn pause_all(db: &Db, pod: &Pod, freeze: bool) -> Result<()> {
    let want = if freeze { "running" } else { "paused" };
    for c in members(db, pod)? {
        let c = db.fresh(c)?;
        if c.state == want {
            crate::containers::pause(db, &c, freeze)?;
        }
    }
    record(db, pod, if freeze { "pause" } else { "unpause" });
    Ok(())
}

/// `pod start`: the infra, then every member not running.
pub fn start(db: &Db, pod: &Pod) -> Result<()> {
    ensure_running(db, pod)?;
    for c in members(db, pod)? {
        if c.id == pod.infra || c.state == "running" || c.state == "paused" {
            continue;
        }
        if c.state == "exited" {
            ctr::reset_exited(db, &c)?;
        }
        let c = ctr::start_detached(db, &c.id)?;
        if c.state == "exited" && c.started.is_none() {
            return Err(Error::invalid(format!(
                "pod {}: {} did not start (exit {})",
                pod.name,
                c.name,
                c.exit_code.unwrap_or(125)
            )));
        }
    }
    record(db, pod, "start");
    Ok(())
}

/// `pod stop`: the members, then the infra.
pub fn stop(db: &Db, pod: &Pod, timeout: Option<u64>) -> Result<()> {
    for c in members(db, pod)? {
        if c.state == "running" || c.state == "paused" || crate::db::restarting(&c) {
            ctr::stop(db, &c, timeout)?;
        }
    }
    record(db, pod, "stop");
    Ok(())
}

/// `pod kill`: the signal to every running member and the infra.
pub fn kill(db: &Db, pod: &Pod, sig: &str) -> Result<()> {
    let mut any = false;
    for c in members(db, pod)? {
        if c.state == "running" || c.state == "paused" {
            crate::db::mark_stopped_by_user(db, &c.id);
            ctr::signal(db, &c, sig)?;
            any = true;
        }
    }
    if !any {
        return Err(Error::invalid(format!(
            "pod {}: nothing in it runs",
            pod.name
        )));
    }
    record(db, pod, "kill");
    Ok(())
}

/// `pod rm`: refused while a member runs, unless `force` (then stopped);
/// the members, the infra, the namespace files, the cgroup parent and the
/// row go.
/// `pod rm`; with `force`, running members are stopped first, with
/// `timeout` seconds before SIGKILL (None: at once).
pub fn remove(
    store: &mut Store,
    db: &Db,
    pod: &Pod,
    force: bool,
    timeout: Option<u64>,
) -> Result<()> {
    let list = members(db, pod)?;
    let running: Vec<&str> = list
        .iter()
        .filter(|c| c.id != pod.infra && (c.state == "running" || c.state == "paused"))
        .map(|c| c.name.as_str())
        .collect();
    if !running.is_empty() && !force {
        return Err(Error::Refused(format!(
            "pod {}: {} running: stop the pod first, or rm -f",
            pod.name,
            running.join(", ")
        )));
    }
    for c in &list {
        if c.state == "running" || c.state == "paused" || crate::db::restarting(c) {
            ctr::stop(db, c, Some(timeout.unwrap_or(0)))?;
        }
        if c.id == pod.infra {
            for (_, _, file) in ns_files(db, pod) {
                unbind(&file);
            }
        }
        let c = db.find(&c.id)?;
        ctr::remove(store, db, &c)?;
    }
    remove_cgroup_parent(&pod.id);
    db.conn()
        .execute("DELETE FROM pods WHERE id = ?1", [&pod.id])
        .map_err(Error::Db)?;
    record(db, pod, "remove");
    Ok(())
}

/// The pod's group in every cgroup hierarchy mounted here (empty by now:
/// its containers' groups went with them).
fn remove_cgroup_parent(id: &str) {
    let parent = cgroup_parent(id);
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if !right.starts_with("cgroup") {
            continue;
        }
        if let Some(mp) = left.split(' ').nth(4) {
            let _ = fs::remove_dir(format!("{mp}{parent}"));
        }
    }
}

/// `pod inspect`'s document.
pub fn inspect_doc(db: &Db, pod: &Pod) -> Result<Value> {
    let list = members(db, pod)?;
    Ok(json!({
        "Id": pod.id,
        "Name": pod.name,
        "Created": format::rfc3339(pod.created, None),
        "State": state(pod, &list),
        "Hostname": pod.spec.hostname,
        "Labels": pod.spec.labels,
        "CgroupParent": cgroup_parent(&pod.id),
        "SharedNamespaces": pod.spec.share,
        "InfraContainerID": pod.infra,
        "InfraConfig": {
            "Network": pod.spec.network.clone().unwrap_or_else(|| "bridge".into()),
            "PortBindings": pod.spec.publish,
            "Image": pod.spec.infra_image.clone().unwrap_or_else(|| INFRA_IMAGE.into()),
        },
        "NumContainers": list.len(),
        "Containers": list.iter().map(|c| json!({"Id": c.id, "Name": c.name, "State": c.state})).collect::<Vec<_>>(),
    }))
}

/// `skiff __pause`: the infra's process. As a pid namespace's init (a pod
/// sharing pid) it reaps what is orphaned to it; TERM, INT or HUP end it.
pub fn pause() -> ! {
    // SAFETY: signal masks and waits in a single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let sig = libc::sigwaitinfo(&set, std::ptr::null_mut());
            if sig == libc::SIGCHLD {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            } else if sig > 0 {
                libc::_exit(0);
            }
        }
    }
}
