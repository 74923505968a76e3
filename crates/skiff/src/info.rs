//! `version`, `info` (`system info`) and `export`: what scripts ask of an
//! engine besides its containers, in Podman's shapes.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};
use skiff_image::store::Store;
use skiff_image::{Error, Result};

use crate::db::Db;
use crate::spec::go_arch;

/// The Client document of `version` (Podman's names).
fn version_doc() -> Value {
    let v = env!("CARGO_PKG_VERSION");
    json!({
        "Client": {
            "Version": v,
            "APIVersion": v,
            "Os": "linux",
            "OsArch": format!("linux/{}", go_arch()),
        }
    })
}

/// `version [--format json|TEMPLATE]`.
pub fn version(format: Option<&str>) -> Result<i32> {
    let doc = version_doc();
    match format {
        Some("json") => println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default()),
        Some(t) => println!(
            "{}",
            crate::template::render(t, &doc).map_err(Error::invalid)?
        ),
        None => {
            let c = &doc["Client"];
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            println!("Version:      {}", text("Version"));
            println!("API Version:  {}", text("APIVersion"));
            println!("OS/Arch:      {}", text("OsArch"));
        }
    }
    Ok(0)
}

/// `info [--format json|TEMPLATE]`: the host (kernel, cgroups, the OCI
/// runtime) and the store (where, and what it holds). A template sees Go's
/// field names (`{{.Host.Kernel}}`, `{{.Store.GraphRoot}}`); JSON and the
/// default YAML use Podman's keys (host.kernel, store.graphRoot).
pub fn info(store: &Store, format: Option<&str>) -> Result<i32> {
    let doc = info_doc(store)?;
    match format {
        Some("json") => println!(
            "{}",
            serde_json::to_string_pretty(&podman_keys(&doc)).unwrap_or_default()
        ),
        Some(t) => println!(
            "{}",
            crate::template::render(t, &doc).map_err(Error::invalid)?
        ),
        None => print!("{}", yaml(&podman_keys(&doc), 0)),
    }
    Ok(0)
}

fn info_doc(store: &Store) -> Result<Value> {
    let db = Db::open(&store.root)?;
    let mut counts = [0u64; 4];
    for c in db.all()? {
        let c = db.fresh(c)?;
        counts[0] += 1;
        match c.state.as_str() {
            "running" => counts[1] += 1,
            "paused" => counts[2] += 1,
            _ => counts[3] += 1,
        }
    }
    let kernel_file = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    let runtime = crate::containers::runtime();
    let runtime_version = std::process::Command::new(&runtime)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_default();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !Path::new("/sys/fs/cgroup/memory").exists();
    Ok(json!({
        "Host": {
            "Arch": go_arch(),
            "OS": "linux",
            "Kernel": kernel_file("osrelease"),
            "Hostname": kernel_file("hostname"),
            "CPUs": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "MemTotal": mem_total,
            "CgroupsVersion": if v2 { "v2" } else { "v1" },
            "CgroupManager": "cgroupfs",
            "Rootless": skiff_image::rootless(),
            "OCIRuntime": {
                "Name": runtime.file_name().map(|n| n.to_string_lossy().into_owned()),
                "Path": runtime,
                "Version": runtime_version,
            },
        },
        "Store": {
            "GraphRoot": store.root,
            "GraphDriverName": "overlay",
            "ContainerStore": {
                "Number": counts[0],
                "Running": counts[1],
                "Paused": counts[2],
                "Stopped": counts[3],
            },
            "ImageStore": {"Number": store.images()?.len()},
        },
        "Version": version_doc()["Client"],
    }))
}

/// Go's field names as Podman's JSON keys: the first letter lowered, and
/// the names it spells otherwise. The version's keys stay (Podman's do).
fn podman_keys(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let key = match k.as_str() {
            "OS" => "os".to_string(),
            "CPUs" => "cpus".to_string(),
            "CgroupsVersion" => "cgroupVersion".to_string(),
            "OCIRuntime" => "ociRuntime".to_string(),
            "Version" if v.is_object() => "version".to_string(),
            _ => {
                let mut c = k.chars();
                c.next()
                    .map(|f| f.to_lowercase().chain(c).collect())
                    .unwrap_or_default()
            }
        };
        let value = match k.as_str() {
            "Version" if v.is_object() => v.clone(),
            _ => podman_keys(v),
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

/// A JSON object as YAML (Podman's default `info` output): nested maps
/// indented by two, scalars as they print.
fn yaml(v: &Value, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    let mut out = String::new();
    if let Value::Object(m) = v {
        for (k, v) in m {
            match v {
                Value::Object(_) => out.push_str(&format!("{pad}{k}:\n{}", yaml(v, depth + 1))),
                Value::String(s) if s.is_empty() => out.push_str(&format!("{pad}{k}: \"\"\n")),
                Value::String(s) => out.push_str(&format!("{pad}{k}: {s}\n")),
                Value::Null => out.push_str(&format!("{pad}{k}: null\n")),
                other => out.push_str(&format!("{pad}{k}: {other}\n")),
            }
        }
    }
    out
}

/// `export CTR [-o FILE]`: the container's filesystem (its image and its
/// changes, not its volumes or bind mounts) as a tar archive, Docker's and
/// Podman's. Not to a terminal.
pub fn export(store: &Store, name: &str, output: Option<&Path>) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let c = db.find(name)?;
    let rootfs = db.dir(&c.id).join("rootfs");
    // Unmounted, the overlay's mount point is an empty directory.
    if std::fs::read_dir(&rootfs).map_or(true, |mut d| d.next().is_none()) {
        return Err(Error::invalid(format!(
            "export {name}: its root filesystem is not mounted"
        )));
    }
    // In a user namespace of its own, its files' owners on the host are
    // its ids shifted: the archive has them as the container sees them.
    if let Some(maps) = crate::idmap::read_maps(&db.dir(&c.id).join("config.json")) {
        let shift = |uid: u64, gid: u64| maps.container_ids(uid, gid);
        let out = archive_output(output, &format!("export {name}"))?;
        let mut w =
            skiff_image::commit::write_tree(&rootfs, Some(&shift), std::io::BufWriter::new(out))?;
        w.flush()
            .map_err(|e| Error::io(format!("export {name}: writing the archive"), e))?;
        return Ok(0);
    }
    archive_dir(&rootfs, output, &format!("export {name}"))
}

/// Where an archive goes: `output`, else stdout unless that is a terminal.
fn archive_output(output: Option<&Path>, what: &str) -> Result<Box<dyn Write>> {
    Ok(match output {
        Some(path) => Box::new(
            std::fs::File::create(path).map_err(|e| Error::at(path, "--output: creating", e))?,
        ),
        None => {
            // SAFETY: isatty on fd 1.
            if unsafe { libc::isatty(1) } == 1 {
                return Err(Error::invalid(format!(
                    "{what}: refusing to write an archive to a terminal; use -o FILE or redirect"
                )));
            }
            Box::new(std::io::stdout().lock())
        }
    })
}

/// A tar of `dir`'s tree (owners, modes and times kept; symlinks as
/// links) to `output`, else stdout unless that is a terminal. `what`
/// (the command) leads its errors.
pub fn archive_dir(dir: &Path, output: Option<&Path>, what: &str) -> Result<i32> {
    let out = archive_output(output, what)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)
        .and_then(|()| tar.into_inner())
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::io(format!("{what}: writing the archive"), e))?;
    Ok(0)
}
