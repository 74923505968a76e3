//! `doctor`: what a crash left under the state root (containers whose
//! init is gone, state that no longer parses; `--fix` removes them as
//! `delete --force` would), then what the host offers a runtime, one line
//! each, with what to do about what is missing. Beyond runc, crun and
//! youki, which have no such command.

use std::path::Path;

use skiff_runtime::container;
use skiff_runtime::state::{StateRoot, Status};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One finding: its kind ("ok", "warn", "leak", "fixed"), what, and what to do.
/// (A closed stdout ends the report quietly, as elsewhere in skiff-oci.)
fn line(kind: &str, what: &str, hint: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = if hint.is_empty() {
        writeln!(out, "{kind:<6} {what}")
    } else {
        writeln!(out, "{kind:<6} {what} -- {hint}")
    };
}

/// Exit code: 0 nothing leaked (or all fixed), 1 leaks left.
pub fn run(root: &StateRoot, fix: bool) -> Result<i32> {
    let left = leaks(root, fix)?;
    host();
    Ok(if left > 0 { 1 } else { 0 })
}

/// Containers under the state root a crash or a forgotten delete left.
fn leaks(root: &StateRoot, fix: bool) -> Result<usize> {
    let mut left = 0;
    // Every directory under the root (not only those with a state.json:
    // a create killed early leaves only the groups it wrote down).
    let mut ids: Vec<(String, std::time::SystemTime)> = std::fs::read_dir(&root.dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let age = e.metadata().and_then(|m| m.modified()).ok()?;
                    (!name.starts_with('.')).then_some((name, age))
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    let mut seen = 0;
    for (id, modified) in ids {
        let what = if !root.dir.join(&id).join("state.json").exists() {
            // A create still on its way has no state.json yet either.
            if modified
                .elapsed()
                .map(|a| a < std::time::Duration::from_secs(5))
                .unwrap_or(true)
            {
                continue;
            }
            format!("container {id}: no state, only what a create killed early wrote down")
        } else {
            match root.load(&id) {
                Ok(r) => match r.status(root) {
                    Status::Stopped => format!("container {id}: stopped, its init gone, never deleted"),
                    _ => continue,
                },
                Err(e) => format!("container {id}: its state does not load ({e}); a create or delete was cut short"),
            }
        };
        seen += 1;
        if !fix {
            line(
                "leak",
                &what,
                &format!("skiff-oci delete --force {id}, or doctor --fix"),
            );
            left += 1;
            continue;
        }
        // A state.json that no longer parses is set aside: delete --force
        // then works from the groups create wrote down (cgroups.json), as
        // after a create killed before its state was written.
        let state = root.dir.join(&id).join("state.json");
        if root.load(&id).is_err() && state.exists() {
            let _ = std::fs::rename(&state, root.dir.join(&id).join("state.json.damaged"));
        }
        match container::delete(root, &id, true) {
            Ok(()) => line(
                "fixed",
                &what,
                "removed: processes, cgroups, mounts and state",
            ),
            Err(e) => {
                // A directory with nothing the delete can use: remove it.
                let dir = root.dir.join(&id);
                if dir.is_dir() && std::fs::remove_dir_all(&dir).is_ok() {
                    line("fixed", &what, &format!("state directory removed ({e})"));
                } else {
                    line("leak", &what, &format!("could not remove it: {e}"));
                    left += 1;
                }
            }
        }
    }
    if seen == 0 {
        line(
            "ok",
            &format!("state root {}: nothing left behind", root.dir.display()),
            "",
        );
    }
    Ok(left)
}

fn kernel() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.exists())
        })
        .unwrap_or(None)
}

/// The host: cgroups, kernel features, what rootless use needs.
fn host() {
    use skiff_runtime::cgroups::Layout;
    match Layout::detect() {
        Ok(Layout::V2 { root }) => {
            let ctl = read(&format!("{}/cgroup.subtree_control", root.display()));
            let hint = if ctl.contains("memory") && ctl.contains("pids") {
                ""
            } else {
                "limits need memory and pids in the root's cgroup.subtree_control"
            };
            line(
                if hint.is_empty() { "ok" } else { "warn" },
                &format!(
                    "cgroup v2 at {}, controllers delegated: {}",
                    root.display(),
                    if ctl.is_empty() { "none" } else { &ctl }
                ),
                hint,
            );
        }
        Ok(Layout::V1 {
            hierarchies,
            unified,
        }) => line(
            "ok",
            &format!(
                "cgroup v1: {} hierarchies{}",
                hierarchies.len(),
                if unified.is_some() {
                    ", and a cgroup2 mount (hybrid)"
                } else {
                    ""
                }
            ),
            "",
        ),
        Err(e) => line(
            "warn",
            &format!("cgroups: {e}"),
            "mount cgroup2 on /sys/fs/cgroup, or the v1 hierarchies",
        ),
    }
    let (maj, min) = kernel();
    let at_least = |a: u32, b: u32| (maj, min) >= (a, b);
    let feature = |ok: bool, what: &str, hint: &str| {
        line(
            if ok { "ok" } else { "warn" },
            what,
            if ok { "" } else { hint },
        )
    };
    feature(
        at_least(5, 3),
        &format!("kernel {maj}.{min}: clone3"),
        "kernel 5.3+ (skiff-oci falls back to clone)",
    );
    feature(
        at_least(5, 7),
        "clone into a cgroup (CLONE_INTO_CGROUP)",
        "kernel 5.7+, saves a migration per start",
    );
    feature(
        at_least(5, 12),
        "idmapped mounts (user-namespaced pods)",
        "kernel 5.12+",
    );
    feature(
        at_least(5, 11),
        "overlay in a user namespace (rootless engine)",
        "kernel 5.11+",
    );
    let actions = read("/proc/sys/kernel/seccomp/actions_avail");
    feature(
        actions.contains("user_notif"),
        "seccomp user notification (SCMP_ACT_NOTIFY)",
        "kernel 5.0+ with seccomp",
    );
    let max_userns: u64 = read("/proc/sys/user/max_user_namespaces")
        .parse()
        .unwrap_or(0);
    let unpriv = read("/proc/sys/kernel/unprivileged_userns_clone");
    feature(
        max_userns > 0 && unpriv != "0",
        "user namespaces for unprivileged users (rootless)",
        "sysctl user.max_user_namespaces=28633 and kernel.unprivileged_userns_clone=1",
    );
    let setuid = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o4000 != 0)
            .unwrap_or(false)
    };
    let maps = ["newuidmap", "newgidmap"]
        .iter()
        .all(|t| on_path(t).is_some_and(|p| setuid(&p)));
    feature(
        maps,
        "newuidmap/newgidmap, setuid (rootless id ranges)",
        "apt install uidmap",
    );
    let user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root");
    if let Some(u) = user {
        let has = |f: &str| read(f).lines().any(|l| l.starts_with(&format!("{u}:")));
        feature(
            has("/etc/subuid") && has("/etc/subgid"),
            &format!("subordinate ids for {u} (/etc/subuid, /etc/subgid)"),
            &format!("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {u}"),
        );
    }
    if Path::new("/run/systemd/system").exists() {
        let helper = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("skiff-systemd")))
            .filter(|p| p.exists())
            .or_else(|| on_path("skiff-systemd"));
        feature(
            helper.is_some(),
            "systemd is PID 1: --systemd-cgroup's helper skiff-systemd",
            "install skiff-systemd beside skiff-oci (scripts/demo.sh does)",
        );
    } else {
        line(
            "ok",
            "systemd is not PID 1: cgroupfs driver (--systemd-cgroup is refused, naming it)",
            "",
        );
    }
}
