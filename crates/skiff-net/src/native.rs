//! The engine-native path for the networks the engine makes itself (the
//! shape `network.rs` writes: bridge with host-local addresses, portmap,
//! firewall with same-bridge isolation, a `tuning` without settings):
//! what the plugins would do, without running them.
//!
//! Per network, once (checked by a stamp in /run holding the bridge's
//! ifindex, so a reboot or a deleted bridge makes it again): the bridge,
//! its gateway address, and one `iptables-restore --noflush` batch with two
//! chains named after the bridge, `SKIFF-FW-BRIDGE` (filter, jumped to from
//! the top of FORWARD: replies and published ports in, the bridge's own
//! traffic, nothing else in; out to the world unless internal) and
//! `SKIFF-MASQ-BRIDGE` (nat, from POSTROUTING: masquerade of the subnet
//! going out). Per container: a veth pair, address and default route
//! through netlink, a lease in host-local's own files, and iptables only
//! for published ports (one batch in, one out). See docs/engine.md for
//! why iptables rather than a table of our own in nftables.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::netlink::{self, Socket};
use crate::network::{parse_cidr, Network, LEASES};
use crate::ports::PortMapping;
use crate::{Error, Result};

/// Stamps (a network's rules are set) and their locks; tmpfs, so a reboot,
/// which also empties the rule tables, clears them.
const STAMPS: &str = "/run/skiff/networks";
/// A restore or a lock that takes longer is an error.
const WAIT: Duration = Duration::from_secs(30);

/// What the native path needs of a network, read from its conflist.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub bridge: String,
    pub subnet: (Ipv4Addr, u8),
    pub gateway: Ipv4Addr,
    /// No gateway address on the bridge, no route out, no masquerade.
    pub internal: bool,
}

/// The plan for `net` if its list is the engine's own shape, None for any
/// other (extra plugins, other IPAM, settings the native path does not
/// know): those go through the CNI plugins.
pub fn plan(net: &Network) -> Option<Plan> {
    let plugins = net.conflist["plugins"].as_array()?;
    let only = |v: &Value, keys: &[&str]| {
        v.as_object()
            .is_some_and(|o| o.keys().all(|k| keys.contains(&k.as_str())))
    };
    let (mut bridge, mut portmap, mut firewall) = (None, false, false);
    for (i, p) in plugins.iter().enumerate() {
        match p["type"].as_str()? {
            "bridge" if i == 0 => bridge = Some(p),
            "portmap" if !portmap => {
                portmap = only(p, &["type", "capabilities"])
                    && p["capabilities"] == json!({"portMappings": true});
                if !portmap {
                    return None;
                }
            }
            "firewall" if !firewall => {
                firewall = only(p, &["type", "backend", "ingressPolicy"])
                    && p["ingressPolicy"] == "same-bridge"
                    && (p["backend"].is_null() || p["backend"] == "iptables");
                if !firewall {
                    return None;
                }
            }
            // Podman's lists have it with nothing set: it changes nothing.
            "tuning" if only(p, &["type"]) => {}
            _ => return None,
        }
    }
    let b = bridge?;
    let bridge_keys = [
        "type",
        "bridge",
        "isGateway",
        "ipMasq",
        "hairpinMode",
        "ipam",
    ];
    let known = portmap && firewall && only(b, &bridge_keys) && b["hairpinMode"] == true;
    if !known {
        return None;
    }
    let gateway_on = b["isGateway"] == true;
    if gateway_on != (b["ipMasq"] == true) {
        return None;
    }
    let ipam = &b["ipam"];
    if !only(ipam, &["type", "routes", "ranges"]) || ipam["type"] != "host-local" {
        return None;
    }
    let default_route = json!([{"dst": "0.0.0.0/0"}]);
    let routes_ok = match gateway_on {
        true => ipam["routes"] == default_route,
        false => ipam["routes"].is_null() || ipam["routes"] == json!([]),
    };
    let ranges = ipam["ranges"].as_array()?;
    let set = ranges.first()?.as_array()?;
    if !routes_ok || ranges.len() != 1 || set.len() != 1 || !only(&set[0], &["subnet", "gateway"]) {
        return None;
    }
    let subnet = parse_cidr(set[0]["subnet"].as_str()?)?;
    let gateway: Ipv4Addr = set[0]["gateway"].as_str()?.parse().ok()?;
    let name = b["bridge"].as_str()?.to_string();
    if subnet.1 > 30 || name.is_empty() || name.len() > 15 || !inside(subnet, gateway) {
        return None;
    }
    Some(Plan {
        name: net.name.clone(),
        bridge: name,
        subnet,
        gateway,
        internal: !gateway_on,
    })
}

fn inside(subnet: (Ipv4Addr, u8), ip: Ipv4Addr) -> bool {
    let mask = if subnet.1 == 0 {
        0
    } else {
        u32::MAX << (32 - subnet.1)
    };
    u32::from(ip) & mask == u32::from(subnet.0)
}

impl Plan {
    fn cidr(&self) -> String {
        format!("{}/{}", self.subnet.0, self.subnet.1)
    }

    fn broadcast(&self) -> u32 {
        u32::from(self.subnet.0) | (u32::MAX >> self.subnet.1)
    }
}

pub fn fw_chain(bridge: &str) -> String {
    format!("SKIFF-FW-{bridge}")
}

pub fn masq_chain(bridge: &str) -> String {
    format!("SKIFF-MASQ-{bridge}")
}

/// A container's published-port chain (nat), named from its id.
pub fn port_chain(id: &str) -> String {
    format!("SKIFF-DN-{}", &id[..id.len().min(16)])
}

/// The host end of container `id`'s veth for interface `ifname`: derived,
/// so that doctor finds it from a lease alone.
pub fn veth_name(id: &str, ifname: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{id}\0{ifname}")));
    format!("vsk{}", &h[..12])
}

/// The comment the port rules carry: the portmap plugin's form, so that
/// doctor's sweep of rules by container id finds them too.
fn owner_comment(network: &str, id: &str) -> String {
    format!("\"name: \\\"{network}\\\" id: \\\"{id}\\\"\"")
}

/// The per-network batch: two chains and their jumps.
pub fn network_rules(p: &Plan) -> String {
    let (fw, masq, br) = (fw_chain(&p.bridge), masq_chain(&p.bridge), &p.bridge);
    let comment = format!("\"skiff network {}\"", p.name);
    let mut s = format!("*filter\n:{fw} - [0:0]\n");
    // Into the bridge: replies and published ports (DNAT), its own
    // containers; nothing else, so other bridges are kept out (what the
    // firewall plugin's same-bridge policy gives) whatever rules of
    // others' come after, and Docker's FORWARD policy DROP does not hold
    // ours back.
    s += &format!("-A {fw} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n");
    s += &format!("-A {fw} -i {br} -o {br} -j ACCEPT\n");
    s += &format!("-A {fw} -o {br} -j DROP\n");
    // To another of the engine's bridges: that bridge's chain decides.
    s += &format!("-A {fw} -i {br} -o skbr+ -j RETURN\n");
    s += &format!("-A {fw} -i {br} -o skiff0 -j RETURN\n");
    let out = if p.internal { "DROP" } else { "ACCEPT" };
    s += &format!("-A {fw} -i {br} -j {out}\n");
    s += &format!("-I FORWARD 1 -m comment --comment {comment} -j {fw}\nCOMMIT\n");
    if !p.internal {
        let cidr = p.cidr();
        s += &format!("*nat\n:{masq} - [0:0]\n");
        s += &format!("-A {masq} -d {cidr} -j RETURN\n");
        s += &format!("-A {masq} -d 224.0.0.0/4 -j RETURN\n");
        s += &format!("-A {masq} -j MASQUERADE\n");
        s +=
            &format!("-A POSTROUTING -s {cidr} -m comment --comment {comment} -j {masq}\nCOMMIT\n");
    }
    s
}

/// The batch that removes bridge `bridge`'s chains and the jumps to them,
/// from what `iptables-save` printed (empty: there are none).
pub fn network_rules_removal(saved: &str, bridge: &str) -> String {
    let ours = [fw_chain(bridge), masq_chain(bridge)];
    let mut out = String::new();
    let mut table = "";
    let mut body = String::new();
    let flush = |table: &str, body: &mut String, out: &mut String| {
        if !body.is_empty() {
            *out += &format!("*{table}\n{body}COMMIT\n");
            body.clear();
        }
    };
    let mut chains: Vec<String> = vec![];
    for line in saved.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t;
            continue;
        }
        if line == "COMMIT" {
            for c in chains.drain(..) {
                body += &format!("-F {c}\n-X {c}\n");
            }
            flush(table, &mut body, &mut out);
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split(' ').next().unwrap_or_default();
            if ours.iter().any(|c| c == name) {
                chains.push(name.to_string());
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let jumps_ours = words
            .windows(2)
            .any(|w| w[0] == "-j" && ours.iter().any(|c| c == w[1]));
        let in_ours = words.get(1).is_some_and(|c| ours.iter().any(|o| o == c));
        if line.starts_with("-A ") && jumps_ours && !in_ours {
            body += &format!("-D {}\n", &line[3..]);
        }
    }
    out
}

/// A container's published ports: its chain of DNATs (jumped to for the
/// host's own addresses, from outside and from the host), and masquerade
/// of what reaches it from loopback (route_localnet) or from its own
/// network (hairpin), so replies come back the way they went.
pub fn port_rules(op: char, p: &Plan, id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> String {
    let chain = port_chain(id);
    let comment = owner_comment(&p.name, id);
    let mut s = String::from("*nat\n");
    if op == 'A' {
        s += &format!(":{chain} - [0:0]\n");
        for m in ports {
            let dst = match m.host_ip.as_str() {
                "" | "0.0.0.0" => String::new(),
                h => format!("-d {h}/32 "),
            };
            s += &format!(
                "-A {chain} {dst}-p {proto} -m {proto} --dport {hp} -j DNAT --to-destination {ip}:{cp}\n",
                proto = m.protocol,
                hp = m.host_port,
                cp = m.container_port
            );
        }
    }
    for hook in ["PREROUTING", "OUTPUT"] {
        s += &format!(
            "-{op} {hook} -m addrtype --dst-type LOCAL -m comment --comment {comment} -j {chain}\n"
        );
    }
    for m in ports {
        for src in ["127.0.0.0/8".to_string(), p.cidr()] {
            s += &format!(
                "-{op} POSTROUTING -s {src} -d {ip}/32 -p {proto} -m {proto} --dport {cp} -m conntrack --ctstate DNAT -m comment --comment {comment} -j MASQUERADE\n",
                proto = m.protocol,
                cp = m.container_port
            );
        }
    }
    if op == 'D' {
        s += &format!("-F {chain}\n-X {chain}\n");
    }
    s + "COMMIT\n"
}

/// Runs `iptables-restore --noflush` on `script`, bounded.
fn restore(what: &str, script: &str) -> Result<()> {
    let fail = |message: String| Error::Invalid(format!("{what}: iptables-restore: {message}"));
    let mut child = Command::new("iptables-restore")
        .args(["--noflush", "-w", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("{what}: running iptables-restore"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let deadline = Instant::now() + WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(_)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(fail(err.trim().to_string()));
            }
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("took over {} s", WAIT.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_micros(500)),
            Err(e) => {
                return Err(Error::io(
                    format!("{what}: waiting for iptables-restore"),
                    e,
                ))
            }
        }
    }
}

fn iptables_save() -> String {
    Command::new("iptables-save")
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// An exclusive flock on `path` (made if missing), held while the file
/// lives; bounded.
fn lock(path: &Path) -> Result<fs::File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("making {}", dir.display()), e))?;
    }
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let deadline = Instant::now() + WAIT;
    loop {
        // SAFETY: flock on a file we hold open.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) || Instant::now() > deadline {
            return Err(Error::io(format!("locking {}", path.display()), e));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn stamp_path(bridge: &str) -> PathBuf {
    Path::new(STAMPS).join(bridge)
}

fn lock_path(bridge: &str) -> PathBuf {
    Path::new(STAMPS).join(format!("{bridge}.lock"))
}

fn ifindex_text(bridge: &str) -> Option<String> {
    fs::read_to_string(format!("/sys/class/net/{bridge}/ifindex"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Makes sure the network's bridge, address and rules are there: a read of
/// two small files when they are (the stamp holds the ifindex of the
/// bridge its rules were made for); else made again, whole, under the
/// network's lock.
pub fn ensure_network(p: &Plan) -> Result<()> {
    let stamp = stamp_path(&p.bridge);
    let current = |_: ()| {
        let idx = ifindex_text(&p.bridge)?;
        (fs::read_to_string(&stamp).ok()?.trim() == idx).then_some(())
    };
    if current(()).is_some() {
        return Ok(());
    }
    let _held = lock(&lock_path(&p.bridge))?;
    if current(()).is_some() {
        return Ok(());
    }
    // Phase 1: the bridge and its gateway address.
    let nl = Socket::open()?;
    nl.add_bridge(&p.bridge)?;
    let index = netlink::index_of(&p.bridge).ok_or_else(|| {
        Error::Invalid(format!("network {}: bridge {} went away", p.name, p.bridge))
    })?;
    if !p.internal {
        nl.add_address(index, p.gateway, p.subnet.1)?;
        // Routing between the bridge and the world, and published ports
        // reached on 127.0.0.1 (DNAT from loopback to the bridge).
        write_sysctl("/proc/sys/net/ipv4/ip_forward")?;
        write_sysctl(&format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            p.bridge
        ))?;
    }
    // Phase 2: the rules, replacing any of an earlier bridge of this name.
    let script = network_rules_removal(&iptables_save(), &p.bridge) + &network_rules(p);
    restore(&format!("network {}", p.name), &script)?;
    // Phase 3: the stamp.
    fs::write(&stamp, index.to_string())
        .map_err(|e| Error::io(format!("writing {}", stamp.display()), e))
}

fn write_sysctl(path: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    fs::write(path, "1").map_err(|e| Error::io(format!("setting {path}"), e))
}

/// `network rm`: the network's chains and jumps first (a doctor that
/// finds chains without a bridge takes them for a crash's), then its
/// bridge (once no container uses it), leases directory and file.
pub fn remove(net: &Network) -> Result<()> {
    if net.name == crate::network::DEFAULT {
        return Err(Error::Invalid(format!(
            "network {}: the default network cannot be removed",
            net.name
        )));
    }
    if let Some(bridge) = net.bridge() {
        remove_network(&bridge)?;
    }
    net.remove_bridge_and_files()
}

/// Removes bridge `bridge`'s chains and jumps and its stamp (the bridge
/// itself goes with `network::remove_bridge`).
pub fn remove_network(bridge: &str) -> Result<()> {
    let _ = fs::remove_file(stamp_path(bridge));
    let _ = fs::remove_file(lock_path(bridge));
    let script = network_rules_removal(&iptables_save(), bridge);
    if script.is_empty() {
        return Ok(());
    }
    restore(&format!("bridge {bridge}"), &script)
}

/// Whether the network's stamp says its rules are set (for the bridge
/// there now) while its chains are not in the tables (flushed by hand or
/// by a firewall reload): its containers have no way out until it is made
/// again.
pub fn rules_lost(p: &Plan) -> bool {
    let stamped = ifindex_text(&p.bridge).is_some_and(|idx| {
        fs::read_to_string(stamp_path(&p.bridge)).is_ok_and(|s| s.trim() == idx)
    });
    if !stamped {
        return false;
    }
    let saved = iptables_save();
    let has = |chain: String| saved.lines().any(|l| l.starts_with(&format!(":{chain} ")));
    !has(fw_chain(&p.bridge)) || (!p.internal && !has(masq_chain(&p.bridge)))
}

/// Makes the network's bridge, address and rules again, whole.
pub fn remake_network(p: &Plan) -> Result<()> {
    let _ = fs::remove_file(stamp_path(&p.bridge));
    ensure_network(p)
}

/// Bridges whose chains are there but whose device is not (a network
/// removed by hand, a bridge deleted): their rules are nobody's.
///
/// The tables are read again once the devices were looked at: `network
/// rm` takes the chains away before the bridge, so a bridge found gone
/// whose chains the second read no longer has was being removed, not
/// orphaned.
pub fn orphaned_chains() -> Vec<String> {
    let bridges_of = |saved: &str| -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for line in saved.lines() {
            let Some(name) = line
                .strip_prefix(":SKIFF-FW-")
                .or_else(|| line.strip_prefix(":SKIFF-MASQ-"))
            else {
                continue;
            };
            let bridge = name.split(' ').next().unwrap_or_default().to_string();
            if !bridge.is_empty() && !out.contains(&bridge) {
                out.push(bridge);
            }
        }
        out
    };
    let gone: Vec<String> = bridges_of(&iptables_save())
        .into_iter()
        .filter(|b| !Path::new("/sys/class/net").join(b).exists())
        .collect();
    if gone.is_empty() {
        return gone;
    }
    let still = bridges_of(&iptables_save());
    gone.into_iter().filter(|b| still.contains(b)).collect()
}

// ---- addresses: host-local's files ----

fn lease_dir(p: &Plan) -> PathBuf {
    Path::new(LEASES).join(&p.name)
}

/// An address for container `id` (the one asked for, else the next free
/// one after the last handed out, as host-local hands them out): a file
/// named after it holding the id and interface, made under host-local's
/// own lock so the two never hand out one address twice.
pub fn allocate(p: &Plan, id: &str, ifname: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
    allocate_in(&lease_dir(p), p, id, ifname, want)
}

fn allocate_in(
    dir: &Path,
    p: &Plan,
    id: &str,
    ifname: &str,
    want: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let _held = lock(&dir.join("lock"))?;
    let content = format!("{id}\r\n{ifname}");
    let take = |ip: Ipv4Addr| -> Result<bool> {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(ip.to_string()))
        {
            Ok(mut f) => f
                .write_all(content.as_bytes())
                .map(|()| true)
                .map_err(|e| Error::io(format!("writing the lease of {ip}"), e)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io(format!("leasing {ip}"), e)),
        }
    };
    let (first, last) = (u32::from(p.subnet.0) + 1, p.broadcast() - 1);
    if let Some(ip) = want {
        let n = u32::from(ip);
        if n < first || n > last || ip == p.gateway {
            return Err(Error::Invalid(format!(
                "--ip {ip}: not a container address of network {} ({})",
                p.name,
                p.cidr()
            )));
        }
        return match take(ip)? {
            true => Ok(ip),
            false => Err(Error::Invalid(format!(
                "--ip {ip}: already in use on network {}",
                p.name
            ))),
        };
    }
    let last_file = dir.join("last_reserved_ip.0");
    let after = fs::read_to_string(&last_file)
        .ok()
        .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .filter(|n| (first..=last).contains(n))
        .unwrap_or(last);
    let count = last - first + 1;
    for i in 1..=count {
        let n = first + (after - first + i) % count;
        let ip = Ipv4Addr::from(n);
        if ip != p.gateway && take(ip)? {
            let _ = fs::write(&last_file, ip.to_string());
            return Ok(ip);
        }
    }
    Err(Error::Invalid(format!(
        "network {}: no free address in {}",
        p.name,
        p.cidr()
    )))
}

/// Releases `ip`'s lease if container `id` holds it.
pub fn release(network: &str, ip: &str, id: &str) {
    let path = Path::new(LEASES).join(network).join(ip);
    let holder = fs::read_to_string(&path).unwrap_or_default();
    if holder.split_whitespace().next() == Some(id) {
        let _ = fs::remove_file(path);
    }
}

// ---- a container on a network ----

/// One container's interface on a network, as `attach` takes it.
pub struct Attach<'a> {
    pub id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    pub ports: &'a [PortMapping],
    pub ip: Option<Ipv4Addr>,
    /// The interface's hardware address (else a random one).
    pub mac: Option<[u8; 6]>,
}

/// A random hardware address, locally administered and unicast (as the
/// kernel's own random ones).
fn random_mac() -> [u8; 6] {
    let mut b = [0u8; 6];
    // SAFETY: getrandom(2) writes at most b.len() bytes into b.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    b[0] = (b[0] & 0xfe) | 0x02;
    b
}

/// A hardware address from text: six octets of two hexadecimal digits,
/// separated by colons or hyphens.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for b in &mut mac {
        let part = parts.next().filter(|p| p.len() == 2)?;
        *b = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A hardware address as text (aa:bb:cc:dd:ee:ff).
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Connects the container: the network made sure of, an address leased,
/// the veth made, addressed and routed inside, its published ports. The
/// result has the CNI result's shape (the engine reads its `ips`). On
/// failure what was done is undone.
pub fn attach(p: &Plan, a: &Attach<'_>) -> Result<Value> {
    ensure_network(p)?;
    let ip = allocate(p, a.id, a.ifname, a.ip)?;
    let veth = veth_name(a.id, a.ifname);
    let mac = a.mac.unwrap_or_else(random_mac);
    let done = connect(p, a, &veth, ip, mac).and_then(|()| match a.ports.is_empty() {
        true => Ok(()),
        false => restore(
            &format!("network {}: published ports", p.name),
            &port_rules('A', p, a.id, ip, a.ports),
        ),
    });
    if let Err(e) = done {
        if let Ok(nl) = Socket::open() {
            let _ = nl.del_link(&veth);
        }
        release(&p.name, &ip.to_string(), a.id);
        return Err(e);
    }
    let prefix = p.subnet.1;
    let mut result = json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": p.bridge},
            {"name": veth},
            {"name": a.ifname, "sandbox": a.netns, "mac": mac_text(&mac)},
        ],
        "ips": [{"address": format!("{ip}/{prefix}"), "gateway": p.gateway.to_string(), "interface": 2}],
    });
    if !p.internal {
        result["routes"] = json!([{"dst": "0.0.0.0/0", "gw": p.gateway.to_string()}]);
    }
    Ok(result)
}

/// The netlink part of attach: veth on the bridge (hairpin on, so a
/// container reaches its own published ports), then inside the namespace
/// its address and default route.
fn connect(p: &Plan, a: &Attach<'_>, veth: &str, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
    let nl = Socket::open()?;
    let master = netlink::index_of(&p.bridge)
        .ok_or_else(|| Error::Invalid(format!("network {}: no bridge {}", p.name, p.bridge)))?;
    let ns = fs::File::open(a.netns)
        .map_err(|e| Error::io(format!("opening {}", a.netns.display()), e))?;
    nl.add_veth_with_mac(veth, master, a.ifname, Some(mac), &ns)?;
    let hairpin = format!("/sys/class/net/{veth}/brport/hairpin_mode");
    fs::write(&hairpin, "1").map_err(|e| Error::io(format!("setting {hairpin}"), e))?;
    let (ifname, prefix, gateway, internal) =
        (a.ifname.to_string(), p.subnet.1, p.gateway, p.internal);
    netlink::in_netns(a.netns, move || {
        let nl = Socket::open()?;
        let index = netlink::index_of(&ifname)
            .ok_or_else(|| Error::Invalid(format!("{ifname}: not in the namespace")))?;
        nl.set_up(index)?;
        nl.add_address(index, ip, prefix)?;
        if !internal {
            nl.add_default_route(index, gateway)?;
        }
        Ok(())
    })
}

/// Undoes attach from what its result says: the veth, the lease, the
/// published ports. `namespace_goes`: the caller removes the container's
/// namespace next, with no process left in it, and the veth goes with it
/// (the kernel tears a namespace down in the background; deleting the
/// veth here waits out an RCU grace period, 10-30 ms, most of a `run
/// --rm`'s network time). Everything is tried; the first error is
/// returned.
pub fn detach(
    p: &Plan,
    id: &str,
    ifname: &str,
    result: &Value,
    ports: &[PortMapping],
    namespace_goes: bool,
) -> Result<()> {
    let veth = result["interfaces"][1]["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| veth_name(id, ifname));
    let mut first = match namespace_goes {
        true => None,
        false => Socket::open().and_then(|nl| nl.del_link(&veth)).err(),
    };
    let ip = crate::cni::addresses(result).into_iter().next();
    if let Some(ip) = &ip {
        release(&p.name, ip, id);
    }
    if !ports.is_empty() {
        let removed = ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .map(|ip| {
                restore(
                    &format!("network {}: published ports", p.name),
                    &port_rules('D', p, id, ip, ports),
                )
            });
        // Not as recorded (changed by hand, half made): found by the id.
        if !matches!(removed, Some(Ok(()))) {
            crate::network::remove_rules_of(id);
        }
    }
    first.take().map_or(Ok(()), Err)
}

/// Undoes attach for a network whose list is no longer of the engine's
/// shape (changed by hand since): the veth by its name, the lease, rules
/// naming the container.
pub fn detach_unplanned(
    network: &str,
    id: &str,
    ifname: &str,
    result: &Value,
    namespace_goes: bool,
) -> Result<()> {
    let deleted = match namespace_goes {
        true => Ok(()),
        false => Socket::open().and_then(|nl| nl.del_link(&veth_name(id, ifname))),
    };
    if let Some(ip) = crate::cni::addresses(result).first() {
        release(network, ip, id);
    }
    crate::network::remove_rules_of(id);
    deleted
}

/// What doctor does for a lease of a container that is gone: its veth (if
/// its namespace lingers), the lease, rules naming it.
pub fn release_stale(p: &Plan, id: &str, ifname: &str, ip: &str) {
    if let Ok(nl) = Socket::open() {
        let _ = nl.del_link(&veth_name(id, ifname));
    }
    release(&p.name, ip, id);
    crate::network::remove_rules_of(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(conflist: Value) -> Network {
        Network {
            name: "web".into(),
            conflist,
            path: "/nonexistent".into(),
        }
    }

    fn engine_list() -> Value {
        json!({"cniVersion": "1.0.0", "name": "web", "plugins": [
            {"type": "bridge", "bridge": "skbr0123456789", "isGateway": true, "ipMasq": true, "hairpinMode": true,
             "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                      "ranges": [[{"subnet": "10.122.3.0/24", "gateway": "10.122.3.1"}]]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"}
        ]})
    }

    #[test]
    fn the_engines_own_lists_take_the_native_path() {
        let p = plan(&net(engine_list())).expect("native");
        assert_eq!(p.bridge, "skbr0123456789");
        assert_eq!(p.subnet, (Ipv4Addr::new(10, 122, 3, 0), 24));
        assert!(!p.internal);
        let mut with_tuning = engine_list();
        with_tuning["plugins"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "tuning"}));
        assert!(plan(&net(with_tuning)).is_some());
    }

    #[test]
    fn other_lists_go_through_cni() {
        let mut extra = engine_list();
        extra["plugins"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bandwidth", "ingressRate": 1}));
        assert!(plan(&net(extra)).is_none());
        let mut tuned = engine_list();
        tuned["plugins"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "tuning", "mtu": 1400}));
        assert!(plan(&net(tuned)).is_none());
        let mut dhcp = engine_list();
        dhcp["plugins"][0]["ipam"] = json!({"type": "dhcp"});
        assert!(plan(&net(dhcp)).is_none());
        let mut start = engine_list();
        start["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"] = json!("10.122.3.100");
        assert!(plan(&net(start)).is_none());
        let mut mtu = engine_list();
        mtu["plugins"][0]["mtu"] = json!(1400);
        assert!(plan(&net(mtu)).is_none());
    }

    #[test]
    fn network_rules_are_removed_whole_from_what_iptables_saved() {
        let p = plan(&net(engine_list())).unwrap();
        let rules = network_rules(&p);
        assert!(rules.contains(
            "-I FORWARD 1 -m comment --comment \"skiff network web\" -j SKIFF-FW-skbr0123456789"
        ));
        assert!(rules.contains("-A POSTROUTING -s 10.122.3.0/24"));
        // What iptables-save prints once they are in.
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:SKIFF-MASQ-skbr0123456789 - [0:0]\n\
            -A POSTROUTING -s 10.122.3.0/24 -m comment --comment \"skiff network web\" -j SKIFF-MASQ-skbr0123456789\n\
            -A POSTROUTING -s 10.1.0.0/16 -j MASQUERADE\n\
            -A SKIFF-MASQ-skbr0123456789 -j MASQUERADE\nCOMMIT\n\
            *filter\n:FORWARD ACCEPT [0:0]\n:SKIFF-FW-skbr0123456789 - [0:0]\n\
            -A FORWARD -m comment --comment \"skiff network web\" -j SKIFF-FW-skbr0123456789\n\
            -A FORWARD -j OTHER\nCOMMIT\n";
        let removal = network_rules_removal(saved, "skbr0123456789");
        assert_eq!(
            removal,
            "*nat\n-D POSTROUTING -s 10.122.3.0/24 -m comment --comment \"skiff network web\" -j SKIFF-MASQ-skbr0123456789\n\
             -F SKIFF-MASQ-skbr0123456789\n-X SKIFF-MASQ-skbr0123456789\nCOMMIT\n\
             *filter\n-D FORWARD -m comment --comment \"skiff network web\" -j SKIFF-FW-skbr0123456789\n\
             -F SKIFF-FW-skbr0123456789\n-X SKIFF-FW-skbr0123456789\nCOMMIT\n"
        );
        assert_eq!(network_rules_removal(saved, "skbrother"), "");
    }

    #[test]
    fn port_rules_go_in_and_out_as_one_batch() {
        let p = plan(&net(engine_list())).unwrap();
        let m = PortMapping {
            host_ip: "127.0.0.1".into(),
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let id = "0123456789abcdef0123";
        let ip = Ipv4Addr::new(10, 122, 3, 2);
        let add = port_rules('A', &p, id, ip, std::slice::from_ref(&m));
        assert!(add.contains("-A SKIFF-DN-0123456789abcdef -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.122.3.2:80"));
        assert!(add.contains("id: \\\"0123456789abcdef0123\\\""));
        let del = port_rules('D', &p, id, ip, &[m]);
        assert!(
            del.contains("-D OUTPUT ") && del.ends_with("-X SKIFF-DN-0123456789abcdef\nCOMMIT\n")
        );
        assert!(!del.contains("DNAT --to"));
    }

    #[test]
    fn addresses_are_leased_as_host_local_leases_them() {
        let dir = std::env::temp_dir().join(format!("skiff-lease-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut p = plan(&net(engine_list())).unwrap();
        p.subnet = (Ipv4Addr::new(10, 122, 3, 0), 29); // .2 to .6 for containers
        let a = allocate_in(&dir, &p, "aaa", "eth0", None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 122, 3, 2));
        assert_eq!(
            fs::read_to_string(dir.join("10.122.3.2")).unwrap(),
            "aaa\r\neth0"
        );
        let five = Ipv4Addr::new(10, 122, 3, 5);
        let want = Some(five);
        assert_eq!(allocate_in(&dir, &p, "bbb", "eth0", want).unwrap(), five);
        let taken = allocate_in(&dir, &p, "ccc", "eth0", want)
            .unwrap_err()
            .to_string();
        assert!(taken.contains("--ip 10.122.3.5: already in use"), "{taken}");
        for bad in ["10.122.3.1", "10.122.3.7", "10.122.4.2"] {
            let e = allocate_in(&dir, &p, "ccc", "eth0", bad.parse().ok()).unwrap_err();
            assert!(e.to_string().contains("--ip"), "{e}");
        }
        // After the last handed out, skipping what is taken, then wrapping.
        let got: Vec<Ipv4Addr> = (0..3)
            .map(|i| allocate_in(&dir, &p, &format!("x{i}"), "eth0", None).unwrap())
            .collect();
        assert_eq!(
            got.iter().map(|a| a.octets()[3]).collect::<Vec<_>>(),
            [3, 4, 6]
        );
        let full = allocate_in(&dir, &p, "y", "eth0", None)
            .unwrap_err()
            .to_string();
        assert!(full.contains("no free address"), "{full}");
        fs::remove_file(dir.join("10.122.3.3")).unwrap();
        assert_eq!(
            allocate_in(&dir, &p, "z", "eth0", None).unwrap().octets()[3],
            3
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn hardware_addresses_parse_as_six_octets() {
        assert_eq!(
            parse_mac("02:42:AC:11:00:0a"),
            Some([2, 0x42, 0xac, 0x11, 0, 0x0a])
        );
        assert_eq!(
            parse_mac("02-42-ac-11-00-0a"),
            Some([2, 0x42, 0xac, 0x11, 0, 0x0a])
        );
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0a:01",
            "2:42:ac:11:00:0a",
            "0g:42:ac:11:00:0a",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert_eq!(
            mac_text(&[2, 0x42, 0xac, 0x11, 0, 0x0a]),
            "02:42:ac:11:00:0a"
        );
        let r = random_mac();
        assert_eq!(r[0] & 3, 2, "locally administered, unicast: {r:?}");
    }

    #[test]
    fn veth_names_fit_and_are_derived() {
        let v = veth_name("abc", "eth0");
        assert_eq!(v.len(), 15);
        assert_eq!(v, veth_name("abc", "eth0"));
        assert_ne!(v, veth_name("abc", "eth1"));
    }
}
