//! Networks: CNI network lists in the store's `networks/` directory, one
//! `NAME.conflist` each, in the format Podman's CNI backend wrote (a user
//! may drop one of their own in). `skiff`, the default, is made on first
//! use: a bridge `skiff0` on 10.121.0.0/16 with NAT out.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

pub const DEFAULT: &str = "skiff";
/// Where host-local keeps its leases: a directory per network, a file per
/// address holding the container's id and interface.
pub const LEASES: &str = "/var/lib/cni/networks";
const DEFAULT_BRIDGE: &str = "skiff0";
const DEFAULT_SUBNET: &str = "10.121.0.0/16";

#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    /// The network list as written (cniVersion, name, plugins).
    pub conflist: Value,
    pub path: PathBuf,
}

/// `a.b.c.d/n`: the network address (host bits cleared) and the prefix.
pub fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = mask(prefix);
    Some((Ipv4Addr::from(u32::from(addr) & mask), prefix))
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

/// A name as Podman takes one: letters, digits, `-`, `_`, `.`; not empty,
/// not starting with a dot or dash.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with(['.', '-'])
}

/// What `network create` takes.
#[derive(Debug, Default)]
pub struct CreateOptions<'a> {
    pub subnet: Option<&'a str>,
    pub gateway: Option<&'a str>,
    /// No route out and no NAT: containers reach each other only.
    pub internal: bool,
    /// Its labels, kept where Podman's CNI backend keeps them
    /// (`args.podman_labels` of the list).
    pub labels: serde_json::Map<String, Value>,
}

impl Network {
    fn file(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.conflist"))
    }

    /// The network `name` of the store's `dir`; the default one is made on
    /// first use.
    pub fn load(dir: &Path, name: &str) -> Result<Network> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!(
                "network {name:?}: not a valid name"
            )));
        }
        let path = Self::file(dir, name);
        if name == DEFAULT && !path.exists() {
            write(dir, &path, &default_conflist())?;
        }
        let text = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Invalid(format!("network {name}: no such network"))
            }
            _ => Error::io(format!("reading {}", path.display()), e),
        })?;
        let conflist: Value = serde_json::from_slice(&text).map_err(|e| {
            Error::Invalid(format!("{}: not a CNI network list: {e}", path.display()))
        })?;
        if !conflist["plugins"].is_array() {
            return Err(Error::Invalid(format!(
                "{}: a CNI network list needs \"plugins\"",
                path.display()
            )));
        }
        Ok(Network {
            name: name.to_string(),
            conflist,
            path,
        })
    }

    /// Every network of the store (the default one among them).
    pub fn list(dir: &Path) -> Result<Vec<Network>> {
        let mut names = vec![DEFAULT.to_string()];
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(name) = n.strip_suffix(".conflist") {
                    if name != DEFAULT {
                        names.push(name.to_string());
                    }
                }
            }
        }
        names.sort();
        names.iter().map(|n| Network::load(dir, n)).collect()
    }

    /// `network create`: a bridge of its own (named from the store and the
    /// network, so two stores never share one), a /24 of 10.122.0.0/16
    /// that no route of the host's and no other network covers, unless a
    /// subnet is given.
    pub fn create(dir: &Path, name: &str, o: &CreateOptions<'_>) -> Result<Network> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!(
                "network {name:?}: use letters, digits, '-', '_', '.'"
            )));
        }
        let path = Self::file(dir, name);
        if name == DEFAULT || path.exists() {
            return Err(Error::Invalid(format!("network {name}: already exists")));
        }
        let taken: Vec<(Ipv4Addr, u8)> = Network::list(dir)?
            .iter()
            .filter_map(|n| n.subnet().and_then(|s| parse_cidr(&s)))
            .chain(host_routes())
            .collect();
        let subnet = match o.subnet {
            Some(s) => {
                let cidr = parse_cidr(s).ok_or_else(|| {
                    Error::Invalid(format!(
                        "--subnet {s:?}: an IPv4 network such as 10.5.0.0/24"
                    ))
                })?;
                if cidr.1 > 30 {
                    return Err(Error::Invalid(format!(
                        "--subnet {s}: too small for containers"
                    )));
                }
                if let Some(t) = taken.iter().find(|t| overlaps(**t, cidr)) {
                    return Err(Error::Invalid(format!(
                        "--subnet {s}: overlaps {}/{} (another network or a route of the host's)",
                        t.0, t.1
                    )));
                }
                cidr
            }
            None => (1..=254)
                .map(|x| (Ipv4Addr::new(10, 122, x, 0), 24))
                .find(|c| !taken.iter().any(|t| overlaps(*t, *c)))
                .ok_or_else(|| {
                    Error::Invalid("no free subnet in 10.122.0.0/16: give --subnet".into())
                })?,
        };
        let gateway = match o.gateway {
            Some(g) => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| Error::Invalid(format!("--gateway {g:?}: an IPv4 address")))?;
                if !overlaps((ip, 32), subnet) {
                    return Err(Error::Invalid(format!(
                        "--gateway {g}: not in the subnet {}/{}",
                        subnet.0, subnet.1
                    )));
                }
                ip
            }
            None => Ipv4Addr::from(u32::from(subnet.0) + 1),
        };
        let bridge = {
            let h = hex::encode(Sha256::digest(format!("{}\0{name}", dir.display())));
            format!("skbr{}", &h[..10])
        };
        let mut conflist = conflist(
            name,
            &bridge,
            &format!("{}/{}", subnet.0, subnet.1),
            &gateway.to_string(),
            o.internal,
        );
        if !o.labels.is_empty() {
            conflist["args"] = json!({"podman_labels": o.labels});
        }
        write(dir, &path, &conflist)?;
        Network::load(dir, name)
    }

    /// `network rm` past the native path's rules (`native::remove`, which
    /// calls this): its bridge, its leases directory and its file.
    pub(crate) fn remove_bridge_and_files(&self) -> Result<()> {
        if let Some(bridge) = self.bridge() {
            remove_bridge(&bridge);
        }
        let _ = fs::remove_dir_all(Path::new(LEASES).join(&self.name));
        fs::remove_file(&self.path)
            .map_err(|e| Error::io(format!("removing {}", self.path.display()), e))
    }

    fn plugin(&self, kind: &str) -> Option<&Value> {
        self.conflist["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["type"] == kind)
    }

    pub fn bridge(&self) -> Option<String> {
        self.plugin("bridge")?["bridge"]
            .as_str()
            .map(str::to_string)
    }

    pub fn subnet(&self) -> Option<String> {
        let ranges = &self.plugin("bridge")?["ipam"]["ranges"];
        ranges[0][0]["subnet"].as_str().map(str::to_string)
    }

    /// Whether `addr` is in the network's subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.subnet()
            .and_then(|s| parse_cidr(&s))
            .is_some_and(|(base, prefix)| {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix)
                };
                u32::from(addr) & mask == u32::from(base)
            })
    }

    pub fn gateway(&self) -> Option<String> {
        let ranges = &self.plugin("bridge")?["ipam"]["ranges"];
        ranges[0][0]["gateway"].as_str().map(str::to_string)
    }

    pub fn internal(&self) -> bool {
        self.plugin("bridge")
            .is_some_and(|b| b["ipMasq"] != true && b["isGateway"] != true)
    }

    /// Podman's network id: the sha256 of the name, in hex.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.name.as_bytes()))
    }

    /// Its labels (`network create --label`).
    pub fn labels(&self) -> serde_json::Map<String, Value> {
        self.conflist["args"]["podman_labels"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    /// What `network inspect` shows (Podman's keys).
    pub fn inspect(&self) -> Value {
        json!({
            "name": self.name,
            "id": self.id(),
            "labels": self.labels(),
            "ipv6_enabled": false,
            "driver": "bridge",
            "network_interface": self.bridge(),
            "subnets": [{"subnet": self.subnet(), "gateway": self.gateway()}],
            "internal": self.internal(),
            "dns_enabled": true,
            "ipam_options": {"driver": "host-local"},
            "config_file": self.path,
        })
    }
}

/// Deletes a bridge and the rules the firewall plugin made for it (its
/// same-bridge isolation rules, which the plugin's DEL keeps for the
/// bridge's other containers).
pub fn remove_bridge(bridge: &str) {
    let quiet = |cmd: &mut std::process::Command| {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    };
    let _ = quiet(std::process::Command::new("ip").args(["link", "del", bridge]));
    let Ok(out) = std::process::Command::new("iptables").arg("-S").output() else {
        return;
    };
    let rules = String::from_utf8_lossy(&out.stdout).into_owned();
    for rule in rules.lines().filter(|l| l.starts_with("-A ")) {
        let words = split_rule(rule);
        if !words.iter().any(|w| w == bridge) {
            continue;
        }
        let mut args = words;
        args[0] = "-D".into();
        let _ = quiet(std::process::Command::new("iptables").args(&args));
    }
}

/// An `iptables -S` line as its words: a quoted comment is one, its
/// escaped quotes (`\"`) unescaped, as the shell would pass them.
fn split_rule(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if quoted => cur.extend(chars.next()),
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Removes the firewall plugin's forward rules for `ip` (`-s IP/32` and
/// `-d IP/32` in CNI-FORWARD): they carry no container id.
pub fn remove_forward_rules(ip: &str) {
    let Ok(out) = std::process::Command::new("iptables")
        .args(["-S", "CNI-FORWARD"])
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let host = format!("{ip}/32");
    for rule in text.lines().filter(|l| l.starts_with("-A CNI-FORWARD ")) {
        let mut words = split_rule(rule);
        if !words
            .windows(2)
            .any(|w| (w[0] == "-s" || w[0] == "-d") && w[1] == host)
        {
            continue;
        }
        words[0] = "-D".into();
        let _ = std::process::Command::new("iptables")
            .args(&words)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The chains CNI's plugins share between containers (never removed
/// here).
const SHARED_CHAINS: &[&str] = &[
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
    "CNI-FORWARD",
    "CNI-ADMIN",
    "CNI-ISOLATION-STAGE-1",
    "CNI-ISOLATION-STAGE-2",
];

/// Removes every iptables rule the plugins made for container `id` (their
/// comments name it) and the chains of its own those rules jump to: what
/// a DEL cannot undo once the container's namespace is gone (the bridge
/// plugin finds its masquerade by the addresses inside it).
pub fn remove_rules_of(id: &str) {
    let mark = format!("id: \"{id}\"");
    let quiet = |args: &[String]| {
        std::process::Command::new("iptables")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    };
    for table in ["nat", "filter"] {
        let Ok(out) = std::process::Command::new("iptables")
            .args(["-t", table, "-S"])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut chains: Vec<String> = vec![];
        for rule in text.lines().filter(|l| l.starts_with("-A ")) {
            let words = split_rule(rule);
            if !words.iter().any(|w| w.contains(&mark)) {
                continue;
            }
            if let Some(j) = words.iter().position(|w| w == "-j") {
                let target = &words[j + 1..j + 2];
                if let Some(t) = target.first().filter(|t| {
                    (t.starts_with("CNI-") || t.starts_with("SKIFF-DN-"))
                        && !SHARED_CHAINS.contains(&t.as_str())
                }) {
                    chains.push(t.clone());
                }
            }
            let mut args = vec!["-t".to_string(), table.to_string()];
            args.extend(words);
            args[2] = "-D".into();
            let _ = quiet(&args);
        }
        chains.sort();
        chains.dedup();
        for c in chains {
            for op in ["-F", "-X"] {
                let _ = quiet(&["-t".into(), table.into(), op.into(), c.clone()]);
            }
        }
    }
}

fn write(dir: &Path, path: &Path, conflist: &Value) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("making {}", dir.display()), e))?;
    // A name of this process's own: commands that make the default
    // network at once (its first use, in parallel) each rename a whole
    // file of their own into place.
    let tmp = path.with_extension(format!("conflist.tmp.{}", std::process::id()));
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(conflist).unwrap_or_default(),
    )
    .and_then(|()| fs::rename(&tmp, path))
    .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn default_conflist() -> Value {
    conflist(DEFAULT, DEFAULT_BRIDGE, DEFAULT_SUBNET, "10.121.0.1", false)
}

/// Podman's CNI list: bridge (with host-local addresses), portmap for
/// published ports, firewall (with containers of other bridges kept out).
/// Podman's list also runs tuning, with no setting: it changed nothing and
/// cost two plugin runs a container, so lists made here leave it out (a
/// list that has it still runs it).
fn conflist(name: &str, bridge: &str, subnet: &str, gateway: &str, internal: bool) -> Value {
    let routes = if internal {
        json!([])
    } else {
        json!([{"dst": "0.0.0.0/0"}])
    };
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": !internal,
                "ipMasq": !internal,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "routes": routes,
                    "ranges": [[{"subnet": subnet, "gateway": gateway}]]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"}
        ]
    })
}

/// The host's IPv4 routes (/proc/net/route): subnets a network must not
/// take.
fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    let text = fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The bytes in network order, printed as a little-endian
            // number; the default route (mask 0) covers nothing.
            (mask != 0).then(|| (Ipv4Addr::from(dest.to_le_bytes()), mask.count_ones() as u8))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_overlap() {
        assert_eq!(
            parse_cidr("10.5.1.7/24"),
            Some((Ipv4Addr::new(10, 5, 1, 0), 24))
        );
        assert_eq!(parse_cidr("10.5.1.7"), None);
        assert_eq!(parse_cidr("10.5.1.0/33"), None);
        let a = parse_cidr("10.122.0.0/16").unwrap();
        assert!(overlaps(a, parse_cidr("10.122.9.0/24").unwrap()));
        assert!(!overlaps(a, parse_cidr("10.123.0.0/24").unwrap()));
    }

    #[test]
    fn rules_split_as_iptables_wrote_them() {
        let w = split_rule(r#"-A X -i br0 -m comment --comment "a b" -j DROP"#);
        assert_eq!(
            w,
            [
                "-A",
                "X",
                "-i",
                "br0",
                "-m",
                "comment",
                "--comment",
                "a b",
                "-j",
                "DROP"
            ]
        );
        let w = split_rule(r#"-A P -m comment --comment "name: \"lz\" id: \"ab\"" -j CNI-1"#);
        assert_eq!(w[5], r#"name: "lz" id: "ab""#);
        assert_eq!(w[7], "CNI-1");
    }

    #[test]
    fn names_are_podmans() {
        assert!(valid_name("web_1.net-a"));
        assert!(!valid_name("") && !valid_name("-x") && !valid_name("a/b") && !valid_name(".."));
    }

    #[test]
    fn networks_are_made_listed_and_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("skiff-net-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let n = Network::create(&dir, "web", &CreateOptions::default()).unwrap();
        assert!(
            n.subnet().unwrap().starts_with("10.122."),
            "{:?}",
            n.subnet()
        );
        assert!(n.bridge().unwrap().len() <= 15);
        let err = Network::create(&dir, "web", &CreateOptions::default()).unwrap_err();
        assert!(err.to_string().contains("already exists"));
        let bad = CreateOptions {
            subnet: Some("10.122.0.0/16"),
            ..Default::default()
        };
        let err = Network::create(&dir, "other", &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("overlaps"), "{err}");
        let names: Vec<String> = Network::list(&dir)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["skiff", "web"]);
        let _ = fs::remove_dir_all(&dir);
    }
}
