//! What skiff-oci prints: runc's shapes, which callers parse.

use std::io::Write;
use std::path::Path;

use skiff_runtime::oci_spec::runtime::Spec;
use skiff_runtime::state::{StateRoot, Status};

use crate::cli::ListFormat;
use crate::Result;

/// runc's layout, which Docker and containerd parse: name and version,
/// then `commit:`, `spec:` and `libseccomp:` lines.
pub fn version() -> Result<()> {
    crate::out(&format!(
        "skiff-oci version {}\ncommit: {}\nspec: {}\nlibseccomp: {}",
        env!("CARGO_PKG_VERSION"),
        env!("SKIFF_COMMIT"),
        skiff_runtime::state::OCI_VERSION,
        skiff_runtime::seccomp::libseccomp_version()
    ))
}

/// Text made at build time (the manual page, completion scripts), as is.
pub fn print(text: &str) -> Result<()> {
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

pub fn state(root: &StateRoot, id: &str) -> Result<()> {
    let record = root.load(id)?;
    let view = record.view(record.status(root));
    // No newline after it: runc writes the indented JSON alone.
    print(&serde_json::to_string_pretty(&view)?)
}

pub fn list(root: &StateRoot, format: ListFormat, quiet: bool) -> Result<()> {
    let mut records = Vec::new();
    for id in root.list()? {
        if let Ok(r) = root.load(&id) {
            let status = r.status(root);
            let owner = owner_of(&root.dir.join(&id));
            records.push((r, status, owner));
        }
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for (r, _, _) in &records {
            writeln!(out, "{}", r.id)?;
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        // The owner is filled in here, as runc's list does (its `state`
        // leaves it empty).
        let views: Vec<_> = records
            .iter()
            .map(|(r, s, owner)| {
                let mut view = r.view(*s);
                view.owner = owner;
                view
            })
            .collect();
        // None is `null`, as runc prints its empty (nil) list.
        if views.is_empty() {
            writeln!(out, "null")?;
        } else {
            writeln!(out, "{}", serde_json::to_string(&views)?)?;
        }
        return Ok(());
    }
    // runc's tabwriter layout (minimum width 12, padding 3).
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(records.iter().map(|(r, s, owner)| {
                let pid = if *s == Status::Stopped { 0 } else { r.pid };
                [
                    r.id.clone(),
                    pid.to_string(),
                    s.as_str().to_string(),
                    r.bundle.display().to_string(),
                    r.created.clone(),
                    owner.clone(),
                ]
            }))
            .collect();
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = (widths[i] + 3).max(12)));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The user owning a container's state directory, by name from the host's
/// /etc/passwd, else `#UID` (runc's list).
fn owner_of(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

pub fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("{}: exists; remove it first", path.display()).into());
    }
    let mut spec = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    spec.set_hostname(Some("skiff".into()));
    // A cgroup namespace only on a unified (cgroup v2) host, as runc's spec:
    // clients that add their own on v1 hosts would list it twice.
    if !unified_cgroup_host() {
        if let Some(namespaces) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.namespaces_mut().as_mut())
        {
            namespaces.retain(|n| {
                n.typ() != skiff_runtime::oci_spec::runtime::LinuxNamespaceType::Cgroup
            });
        }
    }
    // runc's default: no device access beyond the standard devices, which the
    // runtime allows on its own.
    if let Some(linux) = spec.linux_mut() {
        if let Some(res) = linux.resources_mut() {
            let mut deny = skiff_runtime::oci_spec::runtime::LinuxDeviceCgroup::default();
            deny.set_allow(false);
            deny.set_access(Some("rwm".into()));
            res.set_devices(Some(vec![deny]));
        }
    }
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
        p.set_args(Some(vec!["sh".into()]));
        // No inheritable capabilities, as in runc's spec since
        // CVE-2022-29162: they would let a program keep capabilities
        // across execve through file capabilities.
        if let Some(mut caps) = p.capabilities().clone() {
            caps.set_inheritable(None);
            p.set_capabilities(Some(caps));
        }
    }
    if spec.annotations().as_ref().is_some_and(|a| a.is_empty()) {
        spec.set_annotations(None);
    }
    // A rootless spec's /sys bind lists `rbind` first, as runc's.
    for m in spec.mounts_mut().iter_mut().flatten() {
        if let Some(opts) = m
            .options()
            .clone()
            .filter(|o| o.iter().any(|o| o == "rbind"))
        {
            let mut opts = opts;
            opts.sort_by_key(|o| o != "rbind");
            m.set_options(Some(opts));
        }
    }
    let text = sorted_capability_lists(&serde_json::to_string_pretty(&spec)?);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// The same bytes every time, as runc's `spec`: the capability sets
/// (oci-spec's hash sets, in no fixed order) sorted by name, as runc lists
/// them. Each is a one-line-per-name array of the pretty JSON written just
/// before, so it is sorted where it stands and the fields keep their order.
fn sorted_capability_lists(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut names: Vec<&str> = Vec::new();
    let mut in_set = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if in_set && t.starts_with(']') {
            names.sort_by_key(|l| l.trim().trim_end_matches(','));
            let last = names.len().saturating_sub(1);
            for (i, l) in names.drain(..).enumerate() {
                let bare = l.trim_end_matches('\n').trim_end_matches(',');
                out.push_str(bare);
                out.push_str(if i == last { "\n" } else { ",\n" });
            }
            in_set = false;
        }
        if in_set {
            names.push(line);
            continue;
        }
        out.push_str(line);
        in_set = [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ]
        .iter()
        .any(|set| t == format!("\"{set}\": ["));
    }
    out
}

/// Whether /sys/fs/cgroup is the cgroup2 tree itself (runc's test).
fn unified_cgroup_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub fn features() -> Result<()> {
    crate::out(&serde_json::to_string_pretty(
        &skiff_runtime::features::json(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_lists_are_sorted_where_they_stand() {
        let text = "{\n  \"process\": {\n    \"capabilities\": {\n      \"bounding\": [\n        \"CAP_KILL\",\n        \"CAP_AUDIT_WRITE\",\n        \"CAP_NET_BIND_SERVICE\"\n      ],\n      \"ambient\": [\n        \"CAP_KILL\"\n      ]\n    },\n    \"args\": [\n      \"z\",\n      \"a\"\n    ]\n  }\n}";
        let sorted = sorted_capability_lists(text);
        let want = "{\n  \"process\": {\n    \"capabilities\": {\n      \"bounding\": [\n        \"CAP_AUDIT_WRITE\",\n        \"CAP_KILL\",\n        \"CAP_NET_BIND_SERVICE\"\n      ],\n      \"ambient\": [\n        \"CAP_KILL\"\n      ]\n    },\n    \"args\": [\n      \"z\",\n      \"a\"\n    ]\n  }\n}";
        assert_eq!(sorted, want);
    }
}
