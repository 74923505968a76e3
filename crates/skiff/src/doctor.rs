//! `skiff doctor [--fix]`: what crashes left in the store (a container's
//! directory without its row or the other way round, runtime state of no
//! container, a container recorded running whose monitor is gone), and
//! what the host offers the engine (CNI plugins, iptables, CRIU, overlay,
//! newuidmap), a line each with what to do. Exit 0 when nothing is left.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use skiff_image::store::Store;
use skiff_image::Result;

use crate::containers::{self as ctr};
use crate::db::Db;

fn line(kind: &str, what: &str, todo: &str) {
    if todo.is_empty() {
        println!("{kind:<6} {what}");
    } else {
        println!("{kind:<6} {what}: {todo}");
    }
}

pub fn run(store: &mut Store, fix: bool) -> Result<i32> {
    let db = Db::open(&store.root)?;
    let left = store_leaks(store, &db, fix)?;
    host();
    Ok(if left == 0 { 0 } else { 1 })
}

/// The store's leftovers; how many are left (after --fix, none that it
/// could remove).
fn store_leaks(store: &mut Store, db: &Db, fix: bool) -> Result<usize> {
    let rows = db.all()?;
    let mut left = 0;
    let mut report = |what: String, todo: &str, fixed: Result<()>| match (fix, fixed) {
        (true, Ok(())) => line("fixed", &what, ""),
        (true, Err(e)) => {
            left += 1;
            line("leak", &what, &format!("could not fix: {e}"));
        }
        (false, _) => {
            left += 1;
            line("leak", &what, todo);
        }
    };
    // Rows recorded running whose monitor and init are gone.
    for c in &rows {
        if c.state == "running" || c.state == "paused" {
            let fresh = db.fresh(c.clone())?;
            if fresh.state == "exited" {
                line(
                    "fixed",
                    &format!(
                        "container {}: its monitor was gone; recorded exited",
                        c.name
                    ),
                    "",
                );
            }
        }
    }
    // Directories without rows.
    let ids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
    let dirs: Vec<String> = fs::read_dir(db.root.join("containers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for d in dirs.iter().filter(|d| !ids.contains(d)) {
        let dir = db.dir(d);
        let fixed = if fix {
            let _ = crate::net::teardown(db, &dir, d);
            // A create killed midway: its namespace file (bound before
            // net.json was written), its rootfs, whatever else.
            unmount_under(&dir);
            skiff_image::mount::unmount_at(&dir.join("rootfs"))
                .and_then(|()| skiff_image::store::remove_tree(&dir))
                .and_then(|()| store.release(&format!("container:{d}")).map(|_| ()))
        } else {
            Ok(())
        };
        report(
            format!("container directory {} without a container", dir.display()),
            "skiff doctor --fix",
            fixed,
        );
    }
    // Rows without directories.
    for c in rows.iter().filter(|c| !dirs.contains(&c.id)) {
        let fixed = if fix {
            ctr::forget(store, db, c)
        } else {
            Ok(())
        };
        report(
            format!("container {} without its directory", c.name),
            "skiff doctor --fix",
            fixed,
        );
    }
    // Runtime state of no container.
    let runtime_root = db.runtime_root();
    let states: Vec<String> = fs::read_dir(&runtime_root)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for s in states.iter().filter(|s| !ids.contains(s)) {
        let fixed = if fix {
            let ok = Command::new(ctr::runtime())
                .arg("--root")
                .arg(&runtime_root)
                .args(["delete", "--force", s])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            match ok {
                true => Ok(()),
                false => Err(skiff_image::Error::invalid(
                    "skiff-oci delete --force failed",
                )),
            }
        } else {
            Ok(())
        };
        report(
            format!("runtime state {s} of no container"),
            "skiff doctor --fix",
            fixed,
        );
    }
    // Address leases (and the port and firewall rules made with them) of
    // containers whose network namespace is gone: a kill -9 of everything
    // between create and rm. Any store's container holds its namespace
    // as a mount, so a lease without one is nobody's.
    for (net, id, ifname, ip) in stale_leases(db) {
        let native = skiff_net::native::plan(&net);
        let fixed = if let (true, Some(plan)) = (fix, &native) {
            // The engine's own path: its derived veth, the lease, rules
            // naming the container; no plugin to run.
            skiff_net::native::release_stale(plan, &id, &ifname, &ip);
            Ok(())
        } else if fix {
            // A path that is not there: the plugins then undo what is
            // outside the namespace (a left file is refused as not one);
            // the address, which the firewall plugin's rules name, from
            // the lease, as a result of their ADD would have said it.
            let gone = Path::new("/run/skiff-namespace-gone").join(&id);
            let attach = skiff_net::cni::Attach {
                container_id: &id,
                netns: &gone,
                ifname: &ifname,
                ports: &[],
                ip: None,
                mac: None,
            };
            let prefix = net
                .subnet()
                .and_then(|s| s.split_once('/').map(|(_, p)| p.to_string()))
                .unwrap_or_else(|| "32".into());
            let result = serde_json::json!({
                "cniVersion": net.conflist["cniVersion"],
                "interfaces": [{"name": ifname, "sandbox": gone}],
                "ips": [{"address": format!("{ip}/{prefix}"), "interface": 0}],
            });
            let freed = skiff_net::cni::del(&net, &attach, Some(&result))
                .map_err(|e| skiff_image::Error::invalid(e.to_string()));
            skiff_net::network::remove_rules_of(&id);
            freed
        } else {
            Ok(())
        };
        report(
            format!(
                "network {}: an address leased to container {} (gone), with its rules",
                net.name,
                &id[..id.len().min(12)]
            ),
            "skiff doctor --fix",
            fixed,
        );
    }
    // Rules that name a container of our networks that is gone, once the
    // leases are done with.
    for (net, id) in stale_rule_owners(db) {
        let fixed = if fix {
            skiff_net::network::remove_rules_of(&id);
            Ok(())
        } else {
            Ok(())
        };
        report(
            format!(
                "network {net}: rules of container {} (gone)",
                &id[..id.len().min(12)]
            ),
            "skiff doctor --fix",
            fixed,
        );
    }
    // The firewall plugin's forward rules name an address and no
    // container: those of an address of our networks that nobody leases
    // any more (a DEL killed halfway) are nobody's.
    for (net, ip) in stale_forward_rules(db) {
        let fixed = if fix {
            skiff_net::network::remove_forward_rules(&ip);
            Ok(())
        } else {
            Ok(())
        };
        report(
            format!("network {net}: forward rules of {ip}, which no container has"),
            "skiff doctor --fix",
            fixed,
        );
    }
    // The native path's networks whose rules went (a flush, a firewall
    // reload) while their stamp says they are set.
    for net in skiff_net::Network::list(&crate::net::networks_dir(db)).unwrap_or_default() {
        let Some(plan) = skiff_net::native::plan(&net) else {
            continue;
        };
        if !skiff_net::native::rules_lost(&plan) {
            continue;
        }
        let fixed = if fix {
            skiff_net::native::remake_network(&plan)
                .map_err(|e| skiff_image::Error::invalid(e.to_string()))
        } else {
            Ok(())
        };
        report(
            format!("network {}: its rules (NAT, isolation) are gone", net.name),
            "skiff doctor --fix",
            fixed,
        );
    }
    // The native path's per-network chains whose bridge is gone (a
    // network removed by hand, its bridge deleted): nobody's.
    for bridge in skiff_net::native::orphaned_chains() {
        let fixed = if fix {
            skiff_net::native::remove_network(&bridge)
                .map_err(|e| skiff_image::Error::invalid(e.to_string()))
        } else {
            Ok(())
        };
        report(
            format!("rules of bridge {bridge}, which is gone"),
            "skiff doctor --fix",
            fixed,
        );
    }
    if left == 0 && !fix {
        line("ok", "the store: nothing left behind", "");
    }
    Ok(left)
}

/// Whether container `id` of any store holds its network namespace as a
/// mount (every live container does, from create to rm), from one read
/// of the mount table.
fn namespace_holders() -> impl Fn(&str) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    move |id: &str| {
        let tail = format!("/{id}/netns");
        mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| m.ends_with(&tail))
    }
}

/// (network, container id) of the iptables rules whose comments name one
/// of this store's networks and a container that holds no namespace: a
/// DEL killed after it released the address leaves the bridge plugin's
/// masquerade, which no lease then leads to.
fn stale_rule_owners(db: &Db) -> Vec<(String, String)> {
    let held = namespace_holders();
    let nets: Vec<String> = skiff_net::Network::list(&crate::net::networks_dir(db))
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.name)
        .collect();
    let mut out: Vec<(String, String)> = vec![];
    for table in ["nat", "filter"] {
        let Ok(o) = Command::new("iptables").args(["-t", table, "-S"]).output() else {
            continue;
        };
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let Some((_, rest)) = line.split_once("name: \\\"") else {
                continue;
            };
            let Some((net, rest)) = rest.split_once("\\\"") else {
                continue;
            };
            let Some((_, rest)) = rest.split_once("id: \\\"") else {
                continue;
            };
            let Some((id, _)) = rest.split_once("\\\"") else {
                continue;
            };
            if nets.iter().any(|n| n == net) && !held(id) && !out.iter().any(|(_, o)| o == id) {
                out.push((net.to_string(), id.to_string()));
            }
        }
    }
    out
}

/// (network, address) of CNI-FORWARD rules for an address inside one of
/// this store's networks that has no lease.
fn stale_forward_rules(db: &Db) -> Vec<(String, String)> {
    let Ok(out) = Command::new("iptables")
        .args(["-S", "CNI-FORWARD"])
        .output()
    else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let nets = skiff_net::Network::list(&crate::net::networks_dir(db)).unwrap_or_default();
    let mut out: Vec<(String, String)> = vec![];
    for rule in text.lines().filter(|l| l.starts_with("-A CNI-FORWARD ")) {
        let words: Vec<&str> = rule.split_whitespace().collect();
        for w in words.windows(2).filter(|w| w[0] == "-s" || w[0] == "-d") {
            let Some(ip) = w[1].strip_suffix("/32") else {
                continue;
            };
            let Ok(addr) = ip.parse::<std::net::Ipv4Addr>() else {
                continue;
            };
            for net in &nets {
                let inside = net.contains(addr);
                let leased = Path::new(skiff_net::network::LEASES)
                    .join(&net.name)
                    .join(ip)
                    .exists();
                if inside && !leased && !out.iter().any(|(_, o)| o == ip) {
                    out.push((net.name.clone(), ip.to_string()));
                }
            }
        }
    }
    out
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{}/", dir.display());
    let mut ours: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|m| m.starts_with(&prefix))
        .collect();
    ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in ours {
        let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// (network, container id, interface, address) of every lease of this
/// store's networks whose container has no network namespace mounted
/// anywhere.
fn stale_leases(db: &Db) -> Vec<(skiff_net::Network, String, String, String)> {
    let held = namespace_holders();
    let nets = skiff_net::Network::list(&crate::net::networks_dir(db)).unwrap_or_default();
    let mut out = vec![];
    for net in nets {
        let dir = Path::new(skiff_net::network::LEASES).join(&net.name);
        for lease in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = lease.file_name().to_string_lossy().into_owned();
            if name.parse::<std::net::IpAddr>().is_err() {
                continue;
            }
            let text = fs::read_to_string(lease.path()).unwrap_or_default();
            let mut words = text.split_whitespace();
            let (Some(id), ifname) = (words.next(), words.next().unwrap_or("eth0")) else {
                continue;
            };
            if !held(id) {
                out.push((net.clone(), id.to_string(), ifname.to_string(), name));
            }
        }
    }
    out
}

/// What the engine needs of the host.
fn host() {
    let have = |p: &str| Path::new(p).exists();
    let cni = ["/usr/lib/cni/bridge", "/opt/cni/bin/bridge"]
        .iter()
        .any(|p| have(p));
    match cni {
        true => line(
            "ok",
            "CNI plugins (network lists not of the engine's shape)",
            "",
        ),
        false => line(
            "warn",
            "no CNI plugins: network lists of a shape other than the engine's own fail",
            "apt-get install containernetworking-plugins",
        ),
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    match on_path("iptables") && on_path("iptables-restore") {
        true => line("ok", "iptables (NAT, published ports, isolation)", ""),
        false => line(
            "warn",
            "no iptables: CNI's NAT and ports fail",
            "apt-get install iptables",
        ),
    }
    let overlay = fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("overlay"));
    match overlay {
        true => line("ok", "overlay filesystem", ""),
        false => line(
            "warn",
            "no overlay filesystem: no container can start",
            "modprobe overlay",
        ),
    }
    let criu = Command::new("criu")
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match criu {
        true => line("ok", "criu (checkpoint, restore)", ""),
        false => line(
            "warn",
            "no criu that passes `criu check`: checkpoint and restore fail",
            "build CRIU 4.x (scripts/deps.sh does, from ../shared/criu)",
        ),
    }
    let tun_open = fs::metadata("/dev/net/tun")
        .map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o006 == 0o006
        })
        .unwrap_or(false);
    match (on_path("pasta"), tun_open) {
        (true, true) => line("ok", "pasta (rootless networking, published ports)", ""),
        (false, _) => line(
            "warn",
            "no pasta: rootless containers get loopback only, no -p",
            "apt-get install passt",
        ),
        (true, false) => line(
            "warn",
            "/dev/net/tun is not open to users: rootless pasta fails",
            "chmod 0666 /dev/net/tun (Debian's udev rule does)",
        ),
    }
    match on_path("newuidmap") {
        true => line("ok", "newuidmap (rootless)", ""),
        false => line(
            "warn",
            "no newuidmap: rootless stores fail",
            "apt-get install uidmap",
        ),
    }
    match ctr::runtime().exists() || on_path("skiff-oci") {
        true => line(
            "ok",
            &format!("OCI runtime {}", ctr::runtime().display()),
            "",
        ),
        false => line(
            "warn",
            "skiff-oci not found",
            "install it beside skiff or set SKIFF_OCI",
        ),
    }
}
