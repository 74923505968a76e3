//! A container's network, as `run --network` and `-p` ask for it: none (a
//! namespace with loopback only), the host's, another container's, or a
//! CNI network (the default `skiff` bridge or a user network), set up at
//! create and torn down at rm. What was set up is kept in the container's
//! `net.json`: the network, the namespace's file, the plugins' result and
//! the published ports, so that rm (and `system check --repair`) can undo
//! it whatever happened in between.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skiff_image::{Error, Result};
use skiff_net::cni::{self, Attach};
use skiff_net::ports::PortMapping;
use skiff_net::{native, netns, Network};

use crate::db::{Ctr, Db};

/// net.json's `path`: how an attachment was made (records without one
/// were made by CNI).
const NATIVE: &str = "native";
const CNI: &str = "cni";

/// What `--network` chose.
pub enum Choice {
    /// A namespace of the container's own with loopback only.
    None,
    Host,
    /// Another container's namespace (its file or its init's).
    Join(PathBuf),
    Cni(Network),
    /// A namespace of its own connected by pasta (Debian's passt):
    /// user-mode networking, what a rootless user gets (Podman 5's
    /// default), published ports included.
    Pasta,
}

/// Where pasta is looked for.
const PASTA: &str = "/usr/bin/pasta";

fn net_err(e: skiff_net::Error) -> Error {
    match e {
        skiff_net::Error::Io { context, source } => Error::io(context, source),
        other => Error::invalid(other.to_string()),
    }
}

/// The store's networks directory.
pub fn networks_dir(db: &Db) -> PathBuf {
    db.root.join("networks")
}

/// `--network`: none, host, bridge (the default network), container:NAME
/// or a network's name; Docker's default is the bridge.
pub fn choose(db: &Db, network: Option<&str>) -> Result<Choice> {
    // Rootless, bridges and their rules are out of reach: user-mode
    // networking through pasta is the default (a namespace with loopback
    // only where pasta is not installed).
    let rootless = skiff_image::rootless();
    let pasta = Path::new(PASTA).exists();
    let wanted = network.unwrap_or(match (rootless, pasta) {
        (false, _) => "bridge",
        (true, true) => "pasta",
        (true, false) => "none",
    });
    if rootless && !matches!(wanted, "none" | "host" | "pasta") && !wanted.starts_with("container:")
    {
        return Err(Error::invalid(format!(
            "--network {wanted}: bridge networks need root; use pasta (user-mode networking), none or host"
        )));
    }
    Ok(match wanted {
        "none" => Choice::None,
        "host" => Choice::Host,
        "pasta" if !pasta => {
            return Err(Error::invalid(format!(
                "--network pasta: {PASTA} is not installed (Debian's passt package)"
            )))
        }
        "pasta" => Choice::Pasta,
        "bridge" | "default" => Choice::Cni(
            Network::load(&networks_dir(db), skiff_net::network::DEFAULT).map_err(net_err)?,
        ),
        other => match other.strip_prefix("container:") {
            Some(name) => {
                let c = db.fresh(db.find(name)?)?;
                let own = db.dir(&c.id).join("netns");
                if own.exists() {
                    Choice::Join(own)
                } else if c.state == "running" && c.pid > 0 {
                    Choice::Join(format!("/proc/{}/ns/net", c.pid).into())
                } else {
                    return Err(Error::invalid(format!(
                        "--network container:{name}: it has no network namespace to join (not running)"
                    )));
                }
            }
            None => Choice::Cni(
                Network::load(&networks_dir(db), other)
                    .map_err(|e| Error::invalid(format!("--network {other}: {}", net_err(e))))?,
            ),
        },
    })
}

/// -p and -P: the mappings (-P: every port the image exposes, each on a
/// free host port).
pub fn publish(specs: &[String], all: bool, exposed: &[String]) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for s in specs {
        out.extend(skiff_net::ports::parse(s).map_err(net_err)?);
    }
    if all {
        for key in exposed {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            if out
                .iter()
                .any(|m| m.container_port.to_string() == port && m.protocol == proto)
            {
                continue;
            }
            out.extend(skiff_net::ports::parse(&format!("{port}/{proto}")).map_err(net_err)?);
        }
    }
    Ok(out)
}

/// The ports a container exposes: its image's ExposedPorts and --expose's
/// (PORT[-PORT][/PROTO]), each once, in order.
pub fn exposed_by(image_config: &Value, given: &[String]) -> Result<Vec<String>> {
    let mut all: Vec<String> = image_config
        .get("ExposedPorts")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for g in given {
        let ports = exposed_ports(g).map_err(|e| Error::invalid(format!("--expose {e}")))?;
        for p in ports {
            if !all.contains(&p) {
                all.push(p);
            }
        }
    }
    Ok(all)
}

/// EXPOSE's and --expose's port[/proto] or range, as ExposedPorts keys.
pub fn exposed_ports(w: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{w:?}: the protocol is tcp, udp or sctp"));
    }
    let bad = || format!("{w:?}: expected PORT[-PORT][/PROTO]");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// What create sets up: the namespace and the interface; net.json written.
pub struct Attached {
    pub netns: PathBuf,
    pub addresses: Vec<String>,
}

/// The address and hardware address asked for (--ip, --mac-address).
#[derive(Clone, Copy, Default)]
pub struct Wanted<'a> {
    pub ip: Option<&'a str>,
    pub mac: Option<&'a str>,
}

pub fn setup(
    dir: &Path,
    id: &str,
    net: &Network,
    ports: &[PortMapping],
    wanted: Wanted<'_>,
) -> Result<Attached> {
    if let Some(ip) = wanted.ip {
        check_ip_in(net, ip)?;
    }
    let ns = dir.join("netns");
    netns::create(&ns).map_err(net_err)?;
    let (result, path) = match add_to(net, id, &ns, "eth0", ports, wanted) {
        Ok(r) => r,
        Err(e) => {
            let _ = netns::remove(&ns);
            return Err(e);
        }
    };
    let record = json!({
        "network": net.name,
        "path": path,
        "netns": ns,
        "result": result,
        "ports": ports.iter().map(PortMapping::to_json).collect::<Vec<_>>(),
    });
    write_record(dir, &record)?;
    Ok(Attached {
        netns: ns,
        addresses: cni::addresses(&result),
    })
}

/// The path a container takes onto `net`: the engine's own (no plugin
/// runs) for a list of the shape the engine writes, CNI's plugins for any
/// other. Its result (CNI's shape either way) and the path's name, kept in
/// net.json so that teardown undoes the same.
fn add_to(
    net: &Network,
    id: &str,
    ns: &Path,
    ifname: &str,
    ports: &[PortMapping],
    wanted: Wanted<'_>,
) -> Result<(Value, &'static str)> {
    if let Some(plan) = native::plan(net) {
        let a = native::Attach {
            id,
            netns: ns,
            ifname,
            ports,
            ip: wanted.ip.and_then(|i| i.parse().ok()),
            mac: wanted.mac.and_then(skiff_net::native::parse_mac),
        };
        return native::attach(&plan, &a)
            .map(|r| (r, NATIVE))
            .map_err(net_err);
    }
    let attach = Attach {
        container_id: id,
        netns: ns,
        ifname,
        ports,
        ip: wanted.ip,
        mac: wanted.mac,
    };
    cni::add(net, &attach).map(|r| (r, CNI)).map_err(net_err)
}

/// Undoes `add_to` along the path it took (`ns`: the namespace, or a path
/// that is not there once it is gone; `namespace_goes`: the caller
/// removes the namespace next, and the engine's veth goes with it).
fn remove_from(
    net: &Network,
    id: &str,
    ns: &Path,
    a: &Attachment,
    ports: &[PortMapping],
    namespace_goes: bool,
) -> Result<()> {
    if a.path == NATIVE {
        return match native::plan(net) {
            Some(plan) => native::detach(&plan, id, &a.ifname, &a.result, ports, namespace_goes),
            // Its list was changed since: what the engine made is undone
            // by name and id, no plugin has any of it.
            None => native::detach_unplanned(&net.name, id, &a.ifname, &a.result, namespace_goes),
        }
        .map_err(net_err);
    }
    let attach = Attach {
        container_id: id,
        netns: ns,
        ifname: &a.ifname,
        ports,
        ip: None,
        mac: None,
    };
    cni::del(net, &attach, Some(&a.result)).map_err(net_err)
}

/// `--mac-address`: a unicast hardware address, as the kernel takes it
/// (lower case, colons).
pub fn check_mac(text: &str) -> Result<String> {
    match skiff_net::native::parse_mac(text) {
        Some(mac) if mac[0] & 1 == 0 => Ok(skiff_net::native::mac_text(&mac)),
        Some(_) => Err(Error::invalid(format!(
            "--mac-address {text:?}: a multicast address (the first octet's low bit is set)"
        ))),
        None => Err(Error::invalid(format!(
            "--mac-address {text:?}: six hexadecimal octets, aa:bb:cc:dd:ee:ff"
        ))),
    }
}

/// `--ip` (run, network connect): an IPv4 address in the network's subnet.
fn check_ip_in(net: &Network, ip: &str) -> Result<()> {
    let addr: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| Error::invalid(format!("--ip {ip:?}: an IPv4 address")))?;
    if !net.contains(addr) {
        return Err(Error::invalid(format!(
            "--ip {ip}: not in network {}'s subnet {}",
            net.name,
            net.subnet().unwrap_or_default()
        )));
    }
    Ok(())
}

/// A namespace of the container's own, connected by pasta: it copies the
/// host's addresses and routes into it (`--config-net`), forwards the
/// published ports from the host (nothing else: `-t none -u none` without
/// any), and nothing from the container to the host's own ports or
/// loopback (`-T none -U none`, `--no-map-gw`). pasta goes to the
/// background once the namespace is set up and quits when its file is
/// unbound; rm stops it too (its pid is in `pasta.pid`).
pub fn setup_pasta(dir: &Path, ports: &[PortMapping]) -> Result<Attached> {
    let ns = dir.join("netns");
    netns::create(&ns).map_err(net_err)?;
    let pidfile = dir.join("pasta.pid");
    let mut cmd = std::process::Command::new(PASTA);
    cmd.args([
        "--config-net",
        "--quiet",
        "--no-map-gw",
        "-T",
        "none",
        "-U",
        "none",
    ])
    .arg("--pid")
    .arg(&pidfile);
    for proto in ["tcp", "udp"] {
        let flag = if proto == "tcp" { "-t" } else { "-u" };
        let mine: Vec<&PortMapping> = ports.iter().filter(|m| m.protocol == proto).collect();
        if mine.is_empty() {
            cmd.args([flag, "none"]);
        }
        for m in mine {
            let from = match m.host_ip.as_str() {
                "" => m.host_port.to_string(),
                ip => format!("{ip}/{}", m.host_port),
            };
            cmd.arg(flag).arg(format!("{from}:{}", m.container_port));
        }
    }
    cmd.arg("--netns").arg(&ns);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {PASTA}"), e));
    let failed = match &out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(Error::invalid(format!(
            "pasta: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(_) => None,
    };
    if let Some(e) = failed.or(out.err()) {
        stop_pasta(dir);
        let _ = netns::remove(&ns);
        return Err(e);
    }
    let record = json!({
        "mode": "pasta",
        "network": "",
        "netns": ns,
        "ports": ports.iter().map(PortMapping::to_json).collect::<Vec<_>>(),
    });
    write_record(dir, &record)?;
    Ok(Attached {
        netns: ns,
        addresses: vec![],
    })
}

/// Stops the container's pasta (checked to be pasta: a pid may be reused).
fn stop_pasta(dir: &Path) {
    let Some(pid) = fs::read_to_string(dir.join("pasta.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    // pasta runs as itself or as passt's build for the CPU (passt.avx2).
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.starts_with("pasta") || comm.starts_with("passt") {
        // SAFETY: a signal to the process we checked.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // Gone (or only a zombie for init to reap) before rm returns,
        // bounded.
        let stat = format!("/proc/{pid}/stat");
        for _ in 0..200 {
            let state = fs::read_to_string(&stat).unwrap_or_default();
            let state = state.rsplit(") ").next().unwrap_or("").chars().next();
            if matches!(state, None | Some('Z') | Some('X')) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let _ = fs::remove_file(dir.join("pasta.pid"));
}

/// What net.json says (None: no CNI network).
pub fn record(dir: &Path) -> Option<Value> {
    fs::read(dir.join("net.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn write_record(dir: &Path, rec: &Value) -> Result<()> {
    let path = dir.join("net.json");
    fs::write(&path, serde_json::to_vec_pretty(rec).unwrap_or_default())
        .map_err(|e| Error::at(&path, "writing", e))
}

/// One network a container is on: its name, the interface in the
/// container, what the plugins answered.
pub struct Attachment {
    pub network: String,
    pub ifname: String,
    pub result: Value,
    /// `native` or `cni`.
    pub path: String,
}

/// Every network of a record: the one it was made with (`network`, on
/// eth0; "" once disconnected), then those `network connect` added
/// (`connected`, each on an interface of its own).
pub fn attachments(rec: &Value) -> Vec<Attachment> {
    let mut out = vec![];
    if let Some(name) = rec["network"].as_str().filter(|n| !n.is_empty()) {
        out.push(Attachment {
            network: name.to_string(),
            ifname: "eth0".into(),
            result: rec["result"].clone(),
            path: rec["path"].as_str().unwrap_or(CNI).to_string(),
        });
    }
    for a in rec["connected"].as_array().into_iter().flatten() {
        out.push(Attachment {
            network: a["network"].as_str().unwrap_or_default().to_string(),
            ifname: a["ifname"].as_str().unwrap_or("eth1").to_string(),
            result: a["result"].clone(),
            path: a["path"].as_str().unwrap_or(CNI).to_string(),
        });
    }
    out
}

/// The networks a container's directory says it is on.
pub fn networks_of(dir: &Path) -> Vec<String> {
    record(dir)
        .map(|r| attachments(&r).into_iter().map(|a| a.network).collect())
        .unwrap_or_default()
}

/// `network connect NET CTR`: another interface in the container's
/// namespace (made by a bridge network at create: none, host and a joined
/// namespace have none of the engine's to add to).
pub fn connect(db: &Db, c: &Ctr, net: &Network, ip: Option<&str>) -> Result<()> {
    let dir = db.dir(&c.id);
    let mut rec = record(&dir).ok_or_else(|| {
        Error::invalid(format!(
            "{}: it has no network of the engine's (none, host or another's): connect works on bridge networks",
            c.name
        ))
    })?;
    let on = attachments(&rec);
    if on.iter().any(|a| a.network == net.name) {
        return Err(Error::Refused(format!(
            "{}: already on network {}",
            c.name, net.name
        )));
    }
    if let Some(ip) = ip {
        check_ip_in(net, ip)?;
    }
    let ifname = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !on.iter().any(|a| &a.ifname == n))
        .unwrap_or_else(|| "eth9".into());
    let wanted = Wanted { ip, mac: None };
    let (result, path) = add_to(net, &c.id, &dir.join("netns"), &ifname, &[], wanted)?;
    let entry = json!({"network": net.name, "ifname": ifname, "result": result, "path": path});
    match rec["connected"].as_array_mut() {
        Some(list) => list.push(entry),
        None => rec["connected"] = json!([entry]),
    }
    write_record(&dir, &rec)?;
    refresh_hosts(db, &net.name);
    Ok(())
}

/// `network disconnect NET CTR`: its interface on that network goes (DEL
/// through the plugins), the others stay.
pub fn disconnect(db: &Db, c: &Ctr, name: &str) -> Result<()> {
    let dir = db.dir(&c.id);
    let mut rec = record(&dir).unwrap_or(Value::Null);
    let Some(a) = attachments(&rec).into_iter().find(|a| a.network == name) else {
        return Err(Error::invalid(format!("{}: not on network {name}", c.name)));
    };
    let net = Network::load(&networks_dir(db), name).map_err(net_err)?;
    let primary = rec["network"] == name;
    let ports: Vec<PortMapping> = if primary { ports_of(&dir) } else { vec![] };
    remove_from(&net, &c.id, &dir.join("netns"), &a, &ports, false)?;
    if primary {
        rec["network"] = json!("");
        rec["result"] = Value::Null;
        rec["ports"] = json!([]);
    } else if let Some(list) = rec["connected"].as_array_mut() {
        list.retain(|x| x["network"] != name);
    }
    write_record(&dir, &rec)?;
    refresh_hosts(db, name);
    // Its own file too: it is no longer among that network's containers.
    let all = memberships(db);
    if let Some((c, on)) = all.iter().find(|(x, _)| x.id == c.id) {
        write_hosts(db, c, on, &all);
    }
    Ok(())
}

pub fn ports_of(dir: &Path) -> Vec<PortMapping> {
    record(dir)
        .and_then(|r| r["ports"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(PortMapping::from_json)
        .collect()
}

/// Published ports held bound, not listening, for as long as this lives
/// (as Podman's conmon holds them): no host process and no other
/// container can take one meanwhile, and a start finds one taken. The
/// traffic to them is DNATed to the container before any socket sees it.
pub struct HeldPorts {
    _sockets: Vec<std::os::fd::OwnedFd>,
}

/// Binds each of `ports` on its host address (all: 0.0.0.0), or says
/// which one is taken.
pub fn hold_ports(ports: &[PortMapping]) -> Result<HeldPorts> {
    use rustix::net::{AddressFamily, SocketType};
    let mut sockets = Vec::new();
    for m in ports {
        let shown = match m.host_ip.is_empty() {
            true => format!("{}:{}/{}", m.host_port, m.container_port, m.protocol),
            false => format!(
                "{}:{}:{}/{}",
                m.host_ip, m.host_port, m.container_port, m.protocol
            ),
        };
        let ip: std::net::IpAddr = match m.host_ip.as_str() {
            "" => std::net::Ipv4Addr::UNSPECIFIED.into(),
            ip => ip
                .parse()
                .map_err(|_| Error::invalid(format!("-p {shown}: {ip:?} is not an address")))?,
        };
        let family = match ip {
            std::net::IpAddr::V4(_) => AddressFamily::INET,
            std::net::IpAddr::V6(_) => AddressFamily::INET6,
        };
        let kind = match m.protocol.as_str() {
            "udp" => SocketType::DGRAM,
            _ => SocketType::STREAM,
        };
        let fd = rustix::net::socket_with(family, kind, rustix::net::SocketFlags::CLOEXEC, None)
            .map_err(|e| Error::io(format!("-p {shown}: a socket"), e.into()))?;
        let addr = std::net::SocketAddr::new(ip, m.host_port);
        rustix::net::bind(&fd, &addr).map_err(|e| {
            Error::invalid(format!(
                "-p {shown}: the host's port {} is taken ({})",
                m.host_port,
                std::io::Error::from(e)
            ))
        })?;
        sockets.push(fd);
    }
    Ok(HeldPorts { _sockets: sockets })
}

/// The container's published ports, held (see HeldPorts); none for a
/// namespace pasta connects (pasta binds them itself).
pub fn hold_ports_of(dir: &Path) -> Result<HeldPorts> {
    match record(dir) {
        Some(r) if r["mode"] != "pasta" => hold_ports(&ports_of(dir)),
        _ => Ok(HeldPorts {
            _sockets: Vec::new(),
        }),
    }
}

/// Undoes setup: DEL through the plugins (the addresses, the port rules),
/// the namespace. What can be undone is, also when one step fails.
pub fn teardown(db: &Db, dir: &Path, id: &str) -> Result<()> {
    let Some(rec) = record(dir) else {
        return Ok(());
    };
    if rec["mode"] == "pasta" {
        stop_pasta(dir);
        netns::remove(&dir.join("netns")).map_err(net_err)?;
        let _ = fs::remove_file(dir.join("net.json"));
        return Ok(());
    }
    // A namespace that is gone (its mount lost to a reboot) is named by
    // a path that is not there: the plugins then undo what lies outside
    // it, and the rules they find only through it are removed by id.
    let bound = skiff_net::netns::is_bound(&dir.join("netns"));
    let ns = match bound {
        true => dir.join("netns"),
        false => Path::new("/run/skiff-namespace-gone").join(id),
    };
    let mut failed = None;
    for a in attachments(&rec) {
        match Network::load(&networks_dir(db), &a.network) {
            Ok(net) => {
                let ports: Vec<PortMapping> = if rec["network"] == a.network.as_str() {
                    rec["ports"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(PortMapping::from_json)
                        .collect()
                } else {
                    vec![]
                };
                // A bound namespace is removed below: the veth goes
                // with it.
                if let Err(e) = remove_from(&net, id, &ns, &a, &ports, bound) {
                    failed = Some(e);
                }
            }
            Err(e) => failed = Some(net_err(e)),
        }
    }
    if !bound {
        skiff_net::network::remove_rules_of(id);
    }
    netns::remove(&dir.join("netns")).map_err(net_err)?;
    let _ = fs::remove_file(dir.join("net.json"));
    failed.map_or(Ok(()), Err)
}

/// The /etc/hosts of a container, as Podman makes it: the host's entries
/// (`base`, the host's file), `host.containers.internal` at the network's
/// gateway (the host, as the container reaches it), itself, and (on a
/// user network) every other container of that network by name, so that
/// they reach each other by name. Rewritten in place (the file is bound
/// into the container) when a container joins or leaves the network.
pub fn hosts_text(
    base: &str,
    host_gateway: Option<&str>,
    own: Option<(&str, &[&str])>,
    peers: &[(String, Vec<String>)],
) -> String {
    let mut t = base_entries(base);
    if let Some(gw) = host_gateway {
        t.push_str(&format!("{gw}\thost.containers.internal\n"));
    }
    if let Some((ip, names)) = own {
        t.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    for (ip, names) in peers {
        t.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    t
}

/// The entries of the host's hosts file (its comments and blank lines
/// left out); loopback's names where it has none of its own.
fn base_entries(host: &str) -> String {
    let mut t: String = host
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| format!("{}\n", l.split_whitespace().collect::<Vec<_>>().join("\t")))
        .collect();
    let has = |t: &str, ip: &str| {
        t.lines().any(|l| {
            l.split('\t').next() == Some(ip) && l.split('\t').skip(1).any(|n| n == "localhost")
        })
    };
    if !has(&t, "127.0.0.1") {
        t.insert_str(0, "127.0.0.1\tlocalhost\n");
    }
    if !has(&t, "::1") && host.trim().is_empty() {
        t.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    }
    t
}

/// The host's /etc/hosts, the base of a container's.
pub fn host_hosts() -> String {
    fs::read_to_string("/etc/hosts").unwrap_or_default()
}

/// `--add-host HOST:IP` lines, checked (Docker's form; IPv6 in brackets
/// or bare after the first colon).
pub fn extra_hosts(specs: &[String]) -> Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|s| {
            let (host, ip) = s
                .split_once(':')
                .ok_or_else(|| Error::invalid(format!("--add-host {s:?}: HOST:IP")))?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::invalid(format!(
                    "--add-host {s:?}: HOST:IP, IP an address"
                )));
            }
            Ok((ip.to_string(), host.to_string()))
        })
        .collect()
}

/// `--dns ADDR`: checked addresses.
pub fn dns_servers(specs: &[String]) -> Result<Vec<String>> {
    specs
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(_) => Ok(s.clone()),
            Err(_) => Err(Error::invalid(format!("--dns {s:?}: an IP address"))),
        })
        .collect()
}

/// --dns-search and --dns-option values: one word each (a space or a
/// newline would make another line of resolv.conf).
pub fn dns_words(flag: &str, words: &[String]) -> Result<Vec<String>> {
    words
        .iter()
        .map(|w| match w.is_empty() || w.contains(char::is_whitespace) {
            true => Err(Error::invalid(format!("{flag} {w:?}: one word"))),
            false => Ok(w.clone()),
        })
        .collect()
}

/// resolv.conf with its `keyword` lines (search, options) replaced by one
/// of `words`; none at all for `search .` (Docker's "no search domain").
pub fn with_line(resolv: &str, keyword: &str, words: &[String]) -> String {
    let mut out: String = resolv
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(keyword))
        .map(|l| format!("{l}\n"))
        .collect();
    let words: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| *w != ".")
        .collect();
    if !words.is_empty() {
        out.push_str(&format!("{keyword} {}\n", words.join(" ")));
    }
    out
}

/// resolv.conf with `servers` in place of its nameservers.
pub fn with_nameservers(resolv: &str, servers: &[String]) -> String {
    let mut out: String = resolv
        .lines()
        .filter(|l| !l.trim_start().starts_with("nameserver"))
        .map(|l| format!("{l}\n"))
        .collect();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    out
}

/// Every container of the store with the networks it is on and its
/// address on each: every record read once.
fn memberships(db: &Db) -> Vec<(Ctr, Vec<(String, String)>)> {
    db.all()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let rec = record(&db.dir(&c.id))?;
            let on = attachments(&rec)
                .into_iter()
                .filter_map(|a| Some((a.network, cni::addresses(&a.result).into_iter().next()?)))
                .collect();
            Some((c, on))
        })
        .collect()
}

/// Rewrites the hosts file of every container on network `name`, each
/// naming all the others (the default network too: Docker's does not,
/// Podman's does), and, for one on several networks, the containers of
/// each.
pub fn refresh_hosts(db: &Db, name: &str) {
    let all = memberships(db);
    for (c, on) in &all {
        if on.iter().any(|(n, _)| n == name) {
            write_hosts(db, c, on, &all);
        }
    }
}

/// The hosts file of `c` (on the networks `on`, as `all` says): itself at
/// its first network's address (loopback when it is on none any more), the
/// containers of every network it is on, and its --add-host lines.
fn write_hosts(db: &Db, c: &Ctr, on: &[(String, String)], all: &[(Ctr, Vec<(String, String)>)]) {
    let dir = db.dir(&c.id);
    let ip = on
        .first()
        .map(|(_, ip)| ip.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    let hostname = fs::read_to_string(dir.join("hostname"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let settings = crate::db::Settings::load(&dir);
    let mut own_names = vec![hostname.as_str(), c.name.as_str()];
    own_names.extend(settings.network_aliases.iter().map(String::as_str));
    let mut peers: Vec<(String, Vec<String>)> = vec![];
    for (net, _) in on {
        for (p, theirs) in all {
            let Some((_, pip)) = theirs.iter().find(|(n, _)| n == net) else {
                continue;
            };
            if p.id != c.id && !peers.iter().any(|(_, n)| n[0] == p.name) {
                // Its name, then its --network-alias names.
                let mut names = vec![p.name.clone()];
                names.extend(crate::db::Settings::load(&db.dir(&p.id)).network_aliases);
                peers.push((pip.clone(), names));
            }
        }
    }
    // --add-host's, kept.
    peers.extend(
        settings
            .extra_hosts
            .iter()
            .map(|(ip, h)| (ip.clone(), vec![h.clone()])),
    );
    let gateway = record(&dir).and_then(|r| {
        r["result"]["ips"][0]["gateway"]
            .as_str()
            .map(str::to_string)
    });
    let text = hosts_text(
        &host_hosts(),
        gateway.as_deref(),
        Some((&ip, &own_names)),
        &peers,
    );
    // In place: the container has this very inode bound.
    if let Ok(mut f) = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join("hosts"))
    {
        use std::io::Write;
        let _ = f.write_all(text.as_bytes());
    }
}

/// The host's resolv.conf for a container with a network of its own:
/// nameservers on loopback (a local resolver) cannot be reached from it,
/// so they go, and with none left Docker's fallback is used.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or_default();
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_left_out() {
        let r = resolv_conf("search lan\nnameserver 127.0.0.53\n");
        assert_eq!(r, "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        assert_eq!(
            resolv_conf("nameserver 10.0.0.1\n"),
            "nameserver 10.0.0.1\n"
        );
    }

    #[test]
    fn hosts_name_the_container_and_its_peers() {
        let t = hosts_text(
            "# the host's\n127.0.0.1 localhost  vm\n\n10.0.0.9 nas # disks\n",
            Some("10.1.0.1"),
            Some(("10.1.0.2", &["abc", "web"])),
            &[("10.1.0.3".into(), vec!["db".into()])],
        );
        assert_eq!(
            t,
            "127.0.0.1\tlocalhost\tvm\n10.0.0.9\tnas\n10.1.0.1\thost.containers.internal\n\
             10.1.0.2\tabc web\n10.1.0.3\tdb\n"
        );
        // A host without a file: loopback's names.
        let t = hosts_text("", None, None, &[]);
        assert_eq!(
            t,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
    }
}
