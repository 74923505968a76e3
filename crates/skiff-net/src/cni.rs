//! Running a network list's plugins (CNI 1.0: ADD in order, each given
//! the previous one's result; DEL in reverse, given the ADD's result).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::network::Network;
use crate::ports::PortMapping;
use crate::{Error, Result};

/// Where Debian's containernetworking-plugins and other installs put them.
const PLUGIN_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"];
/// A plugin that takes longer is killed: its error then says so.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// One container on one network.
pub struct Attach<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    pub ports: &'a [PortMapping],
    /// An address asked for (host-local takes it from CNI_ARGS).
    pub ip: Option<&'a str>,
    /// A hardware address asked for (the bridge plugin takes CNI_ARGS' MAC).
    pub mac: Option<&'a str>,
}

fn plugin_path(kind: &str) -> Option<PathBuf> {
    PLUGIN_DIRS
        .iter()
        .map(|d| Path::new(d).join(kind))
        .find(|p| p.is_file())
}

/// The config one plugin of the list is given.
fn plugin_config(net: &Network, plugin: &Value, a: &Attach<'_>, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    conf["cniVersion"] = net.conflist["cniVersion"].clone();
    conf["name"] = json!(net.name);
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"] == true && !a.ports.is_empty() {
        let mappings: Vec<Value> = a.ports.iter().map(PortMapping::to_cni).collect();
        conf["runtimeConfig"] = json!({ "portMappings": mappings });
    }
    conf
}

/// CNI_ARGS: the address and hardware address asked for, if any.
fn cni_args(a: &Attach<'_>) -> String {
    let mut args = String::from("IgnoreUnknown=1");
    if let Some(ip) = a.ip {
        args += &format!(";IP={ip}");
    }
    if let Some(mac) = a.mac {
        args += &format!(";MAC={mac}");
    }
    args
}

/// Runs one plugin; its stdout (the result) or its error.
fn exec(net: &Network, command: &str, conf: &Value, a: &Attach<'_>) -> Result<Value> {
    let kind = conf["type"].as_str().unwrap_or_default().to_string();
    let path = plugin_path(&kind).ok_or_else(|| Error::Plugin {
        network: net.name.clone(),
        plugin: kind.clone(),
        message: format!(
            "not found in {} (Debian: apt-get install containernetworking-plugins)",
            PLUGIN_DIRS.join(", ")
        ),
    })?;
    let mut child = Command::new(&path)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", a.container_id)
        .env("CNI_NETNS", a.netns)
        .env("CNI_IFNAME", a.ifname)
        .env("CNI_PATH", PLUGIN_DIRS.join(":"))
        .env("CNI_ARGS", cni_args(a))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("running {}", path.display()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(conf.to_string().as_bytes());
    }
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_end(&mut o);
        }
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_end(&mut e);
        }
        (o, e)
    });
    let deadline = Instant::now() + PLUGIN_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let (stdout, stderr) = reader.join().unwrap_or_default();
    let fail = |message: String| Error::Plugin {
        network: net.name.clone(),
        plugin: kind.clone(),
        message,
    };
    let Some(status) = status else {
        return Err(fail(format!(
            "{command} took over {} s",
            PLUGIN_TIMEOUT.as_secs()
        )));
    };
    let parsed: Value = serde_json::from_slice(&stdout).unwrap_or(Value::Null);
    if !status.success() {
        let msg = parsed["msg"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&stderr).trim().to_string());
        let details = parsed["details"].as_str().unwrap_or_default();
        return Err(fail(if details.is_empty() {
            msg
        } else {
            format!("{msg}: {details}")
        }));
    }
    Ok(parsed)
}

/// The plugins of `net` that have something to do for `a`: portmap (a
/// plugin taking `portMappings`) is left out for a container that
/// publishes no port. Its ADD then passes the result on unchanged and
/// there is nothing for its DEL; each run of it costs a few ms of
/// iptables. (A DEL after a kill, which cannot know the ports, removes
/// the rules by the container's id: see doctor.)
fn plugins_for(net: &Network, a: &Attach<'_>) -> Vec<Value> {
    net.conflist["plugins"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !(p["capabilities"]["portMappings"] == true && a.ports.is_empty()))
        .collect()
}

/// ADD: the container's interface on `net`; the list's result (its
/// addresses). On failure what was added is deleted again.
pub fn add(net: &Network, a: &Attach<'_>) -> Result<Value> {
    let plugins = plugins_for(net, a);
    let mut prev: Option<Value> = None;
    for (i, plugin) in plugins.iter().enumerate() {
        let conf = plugin_config(net, plugin, a, prev.as_ref());
        match exec(net, "ADD", &conf, a) {
            Ok(result) => {
                if !result.is_null() {
                    prev = Some(result);
                }
            }
            Err(e) => {
                for p in plugins[..=i].iter().rev() {
                    let conf = plugin_config(net, p, a, prev.as_ref());
                    let _ = exec(net, "DEL", &conf, a);
                }
                return Err(e);
            }
        }
    }
    prev.ok_or_else(|| Error::Invalid(format!("network {}: its plugins gave no result", net.name)))
}

/// DEL, every plugin in reverse order, given the ADD's result; all are
/// tried, the first error is returned.
pub fn del(net: &Network, a: &Attach<'_>, result: Option<&Value>) -> Result<()> {
    let plugins = plugins_for(net, a);
    let mut first = None;
    for plugin in plugins.iter().rev() {
        let conf = plugin_config(net, plugin, a, result);
        if let Err(e) = exec(net, "DEL", &conf, a) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The IPv4 addresses (without prefix) of an ADD's result.
pub fn addresses(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["address"].as_str())
                .filter_map(|a| a.split('/').next())
                .filter(|a| !a.contains(':'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
