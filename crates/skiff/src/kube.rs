//! `kube play`, `kube down` and `kube generate`, as Podman's: a Kubernetes
//! Pod (or a Deployment of one replica) becomes a pod with its containers,
//! and a pod becomes its YAML: the step from a laptop to a cluster.
//!
//! What is applied: metadata.name and labels; spec.hostname,
//! hostNetwork, restartPolicy, volumes (emptyDir: a named volume of the
//! pod's, shared by its containers; hostPath: a bind); each container's
//! name, image, command, args, workingDir, env (value), ports
//! (hostPort published for the pod), volumeMounts, resources.limits
//! (memory, cpu), stdin/tty. Any other field is said on stderr as
//! ignored, never dropped silently; an unknown kind is refused.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;
use serde::Deserialize;
use serde_json::Value;
use skiff_image::store::Store;
use skiff_image::{Error, Result};

use crate::db::Db;
use crate::pods;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    kind: Option<String>,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: yaml_serde::Value,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    hostname: Option<String>,
    #[serde(default)]
    host_network: bool,
    restart_policy: Option<String>,
    #[serde(default)]
    volumes: Vec<Volume>,
    #[serde(flatten)]
    other: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    image: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    working_dir: Option<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    ports: Vec<Port>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    resources: Resources,
    #[serde(default)]
    stdin: bool,
    #[serde(default)]
    tty: bool,
    #[serde(flatten)]
    other: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Debug, Deserialize)]
struct EnvVar {
    name: String,
    value: Option<String>,
    #[serde(rename = "valueFrom")]
    value_from: Option<yaml_serde::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Port {
    container_port: u16,
    host_port: Option<u16>,
    host_ip: Option<String>,
    protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Resources {
    #[serde(default)]
    limits: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    empty_dir: Option<yaml_serde::Value>,
    host_path: Option<HostPath>,
}

#[derive(Debug, Deserialize)]
struct HostPath {
    path: String,
}

/// run's flags, parsed from an argument list made here.
#[derive(Parser)]
struct Run {
    #[command(flatten)]
    args: crate::cli::RunArgs,
}

/// The pods of a YAML file (Pods, and Deployments of one replica), each
/// with its name and spec.
fn pods_of(file: &Path) -> Result<Vec<(String, Meta, PodSpec)>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::at(file, "reading", e))?;
    let what = |e: &dyn std::fmt::Display| Error::invalid(format!("{}: {e}", file.display()));
    let mut out = vec![];
    for (i, de) in yaml_serde::Deserializer::from_str(&text).enumerate() {
        let value = yaml_serde::Value::deserialize(de).map_err(|e| what(&e))?;
        if value.is_null() {
            continue;
        }
        let doc: Doc = yaml_serde::from_value(value).map_err(|e| what(&e))?;
        let (meta, spec) = match doc.kind.as_deref() {
            Some("Pod") => (doc.metadata, doc.spec),
            Some("Deployment") => {
                let replicas = doc
                    .spec
                    .get("replicas")
                    .and_then(|r| r.as_u64())
                    .unwrap_or(1);
                if replicas != 1 {
                    return Err(what(&format!(
                        "document {}: a Deployment of {replicas} replicas (one pod per host here: replicas 1)",
                        i + 1
                    )));
                }
                let template = doc.spec.get("template").cloned().unwrap_or_default();
                let mut meta: Meta = template
                    .get("metadata")
                    .cloned()
                    .map(yaml_serde::from_value)
                    .transpose()
                    .map_err(|e| what(&e))?
                    .unwrap_or_default();
                meta.name = doc.metadata.name.clone().or(meta.name);
                (meta, template.get("spec").cloned().unwrap_or_default())
            }
            other => {
                return Err(what(&format!(
                    "document {}: kind {other:?}: Pod or Deployment",
                    i + 1
                )))
            }
        };
        let spec: PodSpec = yaml_serde::from_value(spec).map_err(|e| what(&e))?;
        let name = meta
            .name
            .clone()
            .ok_or_else(|| what(&format!("document {}: metadata.name is missing", i + 1)))?;
        if spec.containers.is_empty() {
            return Err(what(&format!("pod {name}: spec.containers is empty")));
        }
        out.push((name, meta, spec));
    }
    Ok(out)
}

fn warn_ignored(whose: &str, other: &BTreeMap<String, yaml_serde::Value>) {
    for k in other.keys() {
        eprintln!("skiff: warning: {whose}: {k}: not applied (ignored)");
    }
}

/// A Kubernetes quantity of bytes ("128Mi", "1G", "1048576") as run's
/// --memory takes it (bytes).
fn bytes(q: &str) -> Option<u64> {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (u, m) in units {
        if let Some(n) = q.strip_suffix(u) {
            return n.parse::<u64>().ok().map(|n| n * m);
        }
    }
    q.parse().ok()
}

/// A CPU quantity ("500m", "2", "0.5") as run's --cpus takes it.
fn cpus(q: &str) -> Option<String> {
    match q.strip_suffix('m') {
        Some(milli) => milli
            .parse::<u64>()
            .ok()
            .map(|m| format!("{}", m as f64 / 1000.0)),
        None => q.parse::<f64>().ok().map(|c| c.to_string()),
    }
}

fn scalar(v: &yaml_serde::Value) -> String {
    match v {
        yaml_serde::Value::String(s) => s.clone(),
        yaml_serde::Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// The volume named in a pod for its emptyDirs.
fn volume_name(pod: &str, vol: &str) -> String {
    format!("{pod}-{vol}")
}

/// `kube play FILE`: each pod made and started; `--replace` removes a pod
/// of the same name first.
pub fn play(store: &mut Store, file: &Path, replace: bool) -> Result<i32> {
    let list = pods_of(file)?;
    let db = Db::open(&store.root)?;
    for (name, meta, spec) in &list {
        if pods::find(&db, name).is_ok() {
            if !replace {
                return Err(Error::Refused(format!(
                    "pod {name} exists: kube play --replace, or kube down first"
                )));
            }
            pods::remove(store, &db, &pods::find(&db, name)?, true, None)?;
        }
        // Every container's flags checked before anything is made.
        let runs = run_argvs(name, spec)?
            .into_iter()
            .map(|argv| {
                Run::try_parse_from(&argv)
                    .map(|r| r.args)
                    .map_err(|e| Error::invalid(format!("pod {name}: {}", e.render())))
            })
            .collect::<Result<Vec<_>>>()?;
        warn_ignored(&format!("pod {name}"), &spec.other);
        let mut publish = vec![];
        for c in &spec.containers {
            for p in &c.ports {
                if let Some(host) = p.host_port {
                    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    let ip = p
                        .host_ip
                        .as_deref()
                        .map(|i| format!("{i}:"))
                        .unwrap_or_default();
                    publish.push(format!("{ip}{host}:{}/{proto}", p.container_port));
                }
            }
        }
        let pod_spec = pods::Spec {
            share: pods::parse_share("net,ipc,uts")?,
            hostname: spec.hostname.clone().unwrap_or_else(|| name.clone()),
            network: spec.host_network.then(|| "host".to_string()),
            publish,
            infra_image: None,
            labels: meta.labels.clone(),
            isolation: Default::default(),
            resources: Default::default(),
            infra_name: None,
        };
        let pod = pods::create(store, &db, Some(name.clone()), pod_spec)?;
        println!("Pod:\n{}\nContainers:", pod.id);
        for args in runs {
            if let Err(e) = crate::ctl::run(store, args, false) {
                let _ = pods::remove(store, &db, &pod, true, None);
                return Err(e);
            }
        }
    }
    Ok(0)
}

/// One `run` argument list per container of the pod.
fn run_argvs(pod: &str, spec: &PodSpec) -> Result<Vec<Vec<String>>> {
    let restart = match spec.restart_policy.as_deref() {
        None | Some("Always") => "always",
        Some("OnFailure") => "on-failure",
        Some("Never") => "no",
        Some(other) => {
            return Err(Error::invalid(format!(
                "pod {pod}: restartPolicy {other:?}: Always, OnFailure or Never"
            )))
        }
    };
    let mut out = vec![];
    for c in &spec.containers {
        let whose = format!("pod {pod}, container {}", c.name);
        warn_ignored(&whose, &c.other);
        let mut a: Vec<String> = ["run", "-d", "--pod", pod, "--name"]
            .map(String::from)
            .to_vec();
        a.push(format!("{pod}-{}", c.name));
        a.extend(["--restart".into(), restart.into()]);
        for e in &c.env {
            match (&e.value, &e.value_from) {
                (_, Some(_)) => {
                    return Err(Error::invalid(format!(
                        "{whose}: env {}: valueFrom (secrets, config maps) is not supported",
                        e.name
                    )))
                }
                (v, None) => a.extend([
                    "-e".into(),
                    format!("{}={}", e.name, v.clone().unwrap_or_default()),
                ]),
            }
        }
        if let Some(w) = &c.working_dir {
            a.extend(["-w".into(), w.clone()]);
        }
        for (k, v) in &c.resources.limits {
            let v = scalar(v);
            match k.as_str() {
                "memory" => {
                    let b = bytes(&v).ok_or_else(|| {
                        Error::invalid(format!(
                            "{whose}: resources.limits.memory {v:?}: a quantity (128Mi)"
                        ))
                    })?;
                    a.extend(["--memory".into(), b.to_string()]);
                }
                "cpu" => {
                    let n = cpus(&v).ok_or_else(|| {
                        Error::invalid(format!(
                            "{whose}: resources.limits.cpu {v:?}: a quantity (500m, 2)"
                        ))
                    })?;
                    a.extend(["--cpus".into(), n]);
                }
                other => eprintln!(
                    "skiff: warning: {whose}: resources.limits.{other}: not applied (ignored)"
                ),
            }
        }
        for m in &c.volume_mounts {
            let v = spec
                .volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{whose}: volumeMounts {}: no such volume in the pod",
                        m.name
                    ))
                })?;
            let source = match (&v.empty_dir, &v.host_path) {
                (Some(_), _) => volume_name(pod, &v.name),
                (None, Some(h)) => h.path.clone(),
                (None, None) => {
                    return Err(Error::invalid(format!(
                        "pod {pod}: volume {}: emptyDir or hostPath (no other kind is supported)",
                        v.name
                    )))
                }
            };
            let ro = if m.read_only { ":ro" } else { "" };
            a.extend(["-v".into(), format!("{source}:{}{ro}", m.mount_path)]);
        }
        if c.stdin {
            a.push("-i".into());
        }
        if c.tty {
            a.push("-t".into());
        }
        let mut rest = c.args.clone();
        if let Some((first, more)) = c.command.split_first() {
            a.extend(["--entrypoint".into(), first.clone()]);
            let mut all = more.to_vec();
            all.extend(rest);
            rest = all;
        }
        a.push(c.image.clone());
        a.extend(rest);
        out.push(a);
    }
    Ok(out)
}

/// `kube down FILE`: its pods removed (stopped first), with their
/// emptyDir volumes.
pub fn down(store: &mut Store, file: &Path) -> Result<i32> {
    let list = pods_of(file)?;
    let db = Db::open(&store.root)?;
    for (name, _, spec) in &list {
        match pods::find(&db, name) {
            Ok(p) => {
                pods::remove(store, &db, &p, true, None)?;
                println!("{}", p.id);
            }
            Err(_) => eprintln!("skiff: warning: pod {name}: not here"),
        }
        for v in spec.volumes.iter().filter(|v| v.empty_dir.is_some()) {
            let _ = crate::volumes::remove(&db, &volume_name(name, &v.name));
        }
    }
    Ok(0)
}

/// `kube generate POD`: the pod as a Kubernetes Pod.
pub fn generate(store: &Store, name: &str) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let pod = pods::find(&db, name)?;
    let mut containers = vec![];
    let mut ports: Vec<Value> = pod
        .spec
        .publish
        .iter()
        .filter_map(|p| {
            let (spec, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
            let container: u16 = parts.first()?.parse().ok()?;
            let host: Option<u16> = parts.get(1).and_then(|h| h.parse().ok());
            Some(serde_json::json!({"containerPort": container, "hostPort": host.unwrap_or(container), "protocol": proto.to_ascii_uppercase()}))
        })
        .collect();
    let mut volumes: Vec<Value> = vec![];
    for c in pods::members(&db, &pod)? {
        if c.id == pod.infra {
            continue;
        }
        let config: Value = std::fs::read(db.dir(&c.id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let env: Vec<Value> = config["process"]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str()?.split_once('='))
            .filter(|(k, _)| !matches!(*k, "PATH" | "HOSTNAME" | "TERM" | "container" | "HOME"))
            .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
            .collect();
        let short = c
            .name
            .strip_prefix(&format!("{}-", pod.name))
            .unwrap_or(&c.name)
            .to_string();
        let mut doc = serde_json::json!({
            "name": short,
            "image": c.image,
            "command": c.command,
        });
        if !env.is_empty() {
            doc["env"] = Value::Array(env);
        }
        if let Some(cwd) = config["process"]["cwd"].as_str().filter(|c| *c != "/") {
            doc["workingDir"] = cwd.into();
        }
        if !ports.is_empty() {
            doc["ports"] = Value::Array(std::mem::take(&mut ports));
        }
        let mounts = volume_mounts(&db, &pod.name, &config, &mut volumes);
        if !mounts.is_empty() {
            doc["volumeMounts"] = Value::Array(mounts);
        }
        let limits = limits_of(&config);
        if !limits.is_empty() {
            doc["resources"] = serde_json::json!({ "limits": limits });
        }
        containers.push(doc);
    }
    let mut metadata = serde_json::json!({"name": pod.name});
    if !pod.spec.labels.is_empty() {
        metadata["labels"] = serde_json::to_value(&pod.spec.labels).unwrap_or_default();
    }
    let mut spec = serde_json::json!({"containers": containers, "hostname": pod.spec.hostname});
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    if pod.spec.network.as_deref() == Some("host") {
        spec["hostNetwork"] = true.into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
    });
    print!(
        "{}",
        yaml_serde::to_string(&doc).map_err(|e| Error::invalid(format!("writing YAML: {e}")))?
    );
    Ok(0)
}

/// A container's volumes as volumeMounts, the pod's volumes gathered in
/// `volumes`: the pod's own named volumes (`POD-NAME`, from emptyDir) as
/// emptyDir, other named volumes as persistentVolumeClaim (Podman's
/// mapping), host paths as hostPath. The engine's own binds (/etc files,
/// /dev/init) are not the user's and stay out.
fn volume_mounts(db: &Db, pod: &str, config: &Value, volumes: &mut Vec<Value>) -> Vec<Value> {
    let store_volumes = crate::volumes::dir(db);
    let containers = db.root.join("containers");
    let mut out = vec![];
    for m in config["mounts"].as_array().into_iter().flatten() {
        if m["type"] != "bind" {
            continue;
        }
        let (Some(src), Some(dest)) = (m["source"].as_str(), m["destination"].as_str()) else {
            continue;
        };
        let src = Path::new(src);
        if src.starts_with(&containers) || dest == "/dev/init" {
            continue;
        }
        let read_only = m["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "ro"));
        let (name, source) = match src.strip_prefix(&store_volumes) {
            Ok(rest) => {
                let vol = rest
                    .components()
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .unwrap_or_default();
                match vol.strip_prefix(&format!("{pod}-")) {
                    Some(short) => (short.to_string(), serde_json::json!({"emptyDir": {}})),
                    None => (
                        vol.clone(),
                        serde_json::json!({"persistentVolumeClaim": {"claimName": vol}}),
                    ),
                }
            }
            Err(_) => {
                let name = format!("host{}", dest.replace(['/', '.', '_'], "-"));
                (name, serde_json::json!({"hostPath": {"path": src}}))
            }
        };
        if !volumes.iter().any(|v| v["name"] == name.as_str()) {
            let mut v = source;
            v["name"] = name.clone().into();
            volumes.push(v);
        }
        let mut mount = serde_json::json!({"name": name, "mountPath": dest});
        if read_only {
            mount["readOnly"] = true.into();
        }
        out.push(mount);
    }
    out
}

/// resources.limits from the container's cgroup settings: memory in
/// bytes, cpu in millicores (quota over period).
fn limits_of(config: &Value) -> serde_json::Map<String, Value> {
    let r = &config["linux"]["resources"];
    let mut out = serde_json::Map::new();
    if let Some(mem) = r["memory"]["limit"].as_i64().filter(|m| *m > 0) {
        out.insert("memory".into(), mem.to_string().into());
    }
    if let (Some(q), Some(p)) = (r["cpu"]["quota"].as_i64(), r["cpu"]["period"].as_u64()) {
        if q > 0 && p > 0 {
            out.insert("cpu".into(), format!("{}m", q as u64 * 1000 / p).into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_as_kubernetes_writes_them() {
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("4096"), Some(4096));
        assert_eq!(bytes("lots"), None);
        assert_eq!(cpus("500m").as_deref(), Some("0.5"));
        assert_eq!(cpus("2").as_deref(), Some("2"));
        assert_eq!(cpus("x"), None);
    }

    #[test]
    fn a_pod_becomes_run_argument_lists() {
        let spec: PodSpec = yaml_serde::from_str(
            r#"
restartPolicy: OnFailure
volumes: [{name: data, emptyDir: {}}, {name: conf, hostPath: {path: /etc/x}}]
containers:
- name: app
  image: busybox
  command: [sh, -c]
  args: [echo hi]
  env: [{name: A, value: "1"}]
  workingDir: /srv
  resources: {limits: {memory: 64Mi, cpu: 250m}}
  volumeMounts: [{name: data, mountPath: /data}, {name: conf, mountPath: /conf, readOnly: true}]
"#,
        )
        .unwrap();
        let a = run_argvs("web", &spec).unwrap();
        let line = a[0].join(" ");
        assert_eq!(
            line,
            "run -d --pod web --name web-app --restart on-failure -e A=1 -w /srv --cpus 0.25 --memory 67108864 -v web-data:/data -v /etc/x:/conf:ro --entrypoint sh busybox -c echo hi"
        );
        let bad: PodSpec = yaml_serde::from_str(
            "containers: [{name: a, image: b, volumeMounts: [{name: nope, mountPath: /x}]}]",
        )
        .unwrap();
        assert!(run_argvs("p", &bad)
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }
}
