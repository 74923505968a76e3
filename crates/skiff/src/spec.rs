//! The OCI runtime config (config.json) for a container of an image: the
//! image's config (Entrypoint, Cmd, Env, WorkingDir, User) under the
//! command line's flags, in Docker's defaults (its capability set, masked
//! and read-only paths, no device beyond the standard ones).

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What a container runs, resolved from the image and the flags.
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub terminal: bool,
}

/// The container's network namespace.
pub enum NetNs {
    /// A new one (loopback only).
    Own,
    /// The host's.
    Host,
    /// One made or owned by another (a CNI network's, another container's).
    Path(String),
}

pub struct Plan<'a> {
    pub process: Process,
    pub hostname: &'a str,
    pub network: NetNs,
    /// Files of the container's own, bound over the image's.
    pub etc_files: &'a [(String, String)],
    pub read_only: bool,
    pub cgroup_ns: bool,
    pub extras: &'a Extras,
    /// Namespaces (pid, ipc, uts) joined by path instead of made: a pod's.
    pub joined: &'a [(&'static str, String)],
    /// linux.cgroupsPath: a pod's members are under the pod's group.
    pub cgroups_path: Option<String>,
    /// --uidmap/--userns: a user namespace of its own, with these maps.
    pub id_maps: Option<&'a crate::idmap::IdMaps>,
    /// root.path when it is not the container's own `rootfs` (--rootfs
    /// used as it is: its real path, which runtimes insist on).
    pub root_path: Option<String>,
}

pub fn config(p: &Plan) -> Value {
    let caps = if p.extras.privileged {
        all_caps()
    } else {
        capabilities(p.extras)
    };
    let mut namespaces: Vec<Value> = ["pid", "ipc", "uts", "mount"]
        .iter()
        .filter(|t| !p.extras.host_namespaces.contains(t))
        .map(|t| match p.joined.iter().find(|(j, _)| j == t) {
            Some((_, path)) => json!({"type": t, "path": path}),
            None => json!({"type": t}),
        })
        .collect();
    if p.extras.private_cgroupns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    match &p.network {
        NetNs::Own => namespaces.push(json!({"type": "network"})),
        NetNs::Path(path) => namespaces.push(json!({"type": "network", "path": path})),
        NetNs::Host => {}
    }
    if p.cgroup_ns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    if p.id_maps.is_some() {
        namespaces.push(json!({"type": "user"}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    if let Some(size) = p.extras.shm_size {
        let shm = mounts.iter_mut().find(|m| m["destination"] == "/dev/shm");
        if let Some(opts) = shm.and_then(|m| m["options"].as_array_mut()) {
            opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("size=")));
            opts.push(json!(format!("size={}k", size / 1024)));
        }
    }
    for (dest, src) in p.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    mounts.extend(p.extras.mounts.iter().cloned());
    // Shallower destinations first, as Podman sorts them: a mount under
    // another's destination (/run/.containerenv under a --read-only
    // /run tmpfs) comes after it, never hidden by it; the order of
    // equally deep ones stays (a -v over /etc/hosts wins).
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .unwrap_or_default()
            .split('/')
            .filter(|c| !c.is_empty())
            .count()
    });
    let mut resources = p.extras.resources.clone();
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    if p.extras.privileged {
        rules.push(json!({"allow": true, "access": "rwm"}));
        // /sys and its cgroup view writable, as Docker's privileged has them.
        for m in &mut mounts {
            let sys = m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup";
            if let Some(opts) = m["options"].as_array_mut().filter(|_| sys) {
                opts.retain(|o| o != "ro");
            }
        }
    }
    let mut devices = Vec::new();
    for d in &p.extras.devices {
        let mut node = d.clone();
        let access = node
            .as_object_mut()
            .and_then(|o| o.remove("access"))
            .unwrap_or(json!("rwm"));
        rules.push(json!({"allow": true, "type": node["type"], "major": node["major"], "minor": node["minor"], "access": access}));
        devices.push(node);
    }
    rules.extend(p.extras.device_rules.iter().cloned());
    resources.insert("devices".into(), Value::Array(rules));
    // Privileged means unconfined unless a profile was given by name.
    let seccomp = p
        .extras
        .seccomp
        .as_ref()
        .filter(|_| !p.extras.privileged || p.extras.seccomp_given)
        .map(|prof| seccomp_for(prof, &caps));
    let (masked, readonly): (&[&str], &[&str]) = if p.extras.privileged {
        (&[], &[])
    } else {
        (MASKED, READONLY)
    };
    let mut out = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": p.process.terminal,
            "user": {"uid": p.process.uid, "gid": p.process.gid, "additionalGids": p.process.groups},
            "args": p.process.args,
            "env": p.process.env,
            "cwd": p.process.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": p.extras.no_new_privileges,
            "rlimits": p.extras.rlimits,
        },
        "root": {"path": p.root_path.as_deref().unwrap_or("rootfs"), "readonly": p.read_only},
        "hostname": p.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
            "resources": resources,
            "devices": devices,
        },
    });
    if let Some(Ok(sc)) = seccomp {
        out["linux"]["seccomp"] = sc;
    }
    if let Some(domain) = p.extras.personality {
        out["linux"]["personality"] = json!({"domain": domain});
    }
    if let Some(m) = p.id_maps {
        let (uid, gid) = m.to_spec();
        out["linux"]["uidMappings"] = uid;
        out["linux"]["gidMappings"] = gid;
    }
    // In the host's UTS namespace the hostname is the host's.
    if p.extras.host_namespaces.contains(&"uts") {
        if let Some(o) = out.as_object_mut() {
            o.remove("hostname");
        }
    }
    if !p.extras.sysctl.is_empty() {
        out["linux"]["sysctl"] = Value::Object(p.extras.sysctl.clone());
    }
    if let Some(m) = p.extras.umask {
        out["process"]["user"]["umask"] = json!(m);
    }
    if let Some(n) = p.extras.oom_score_adj {
        out["process"]["oomScoreAdj"] = json!(n);
    }
    if !p.extras.annotations.is_empty() {
        out["annotations"] = Value::Object(p.extras.annotations.clone());
    }
    if let Some(path) = &p.cgroups_path {
        out["linux"]["cgroupsPath"] = json!(path);
    }
    out
}

/// The command: --entrypoint (or the image's Entrypoint), then the
/// arguments given (or the image's Cmd), as Docker combines them.
pub fn command(image_cfg: &Value, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
    let (mut out, cmd) = command_parts(image_cfg, entrypoint, args);
    out.extend(cmd);
    out
}

/// `command`'s two parts, the container's Entrypoint and Cmd.
pub fn command_parts(
    image_cfg: &Value,
    entrypoint: Option<&str>,
    args: &[String],
) -> (Vec<String>, Vec<String>) {
    let list = |k: &str| -> Vec<String> {
        image_cfg
            .get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let out = match entrypoint {
        Some("") => vec![],
        // Podman's JSON form, `--entrypoint '["sh","-c"]'`: the words
        // given (a string that is not a JSON list of strings is one word,
        // as Docker reads every --entrypoint).
        Some(e) => match serde_json::from_str::<Vec<String>>(e) {
            Ok(words) => words,
            _ => vec![e.to_string()],
        },
        None => list("Entrypoint"),
    };
    // A given entrypoint drops the image's Cmd too (Docker's rule).
    let cmd = if !args.is_empty() {
        args.to_vec()
    } else if entrypoint.is_none() {
        list("Cmd")
    } else {
        vec![]
    };
    (out, cmd)
}

/// Which environment a container starts from, under -e's.
#[derive(Debug, Clone, Default)]
pub struct EnvRules {
    pub defaults: EnvDefaults,
    /// Without the image's (--unsetenv-all).
    pub no_image: bool,
    /// Names taken out of the defaults' and the image's (--unsetenv).
    pub unset: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum EnvDefaults {
    /// Podman's: PATH, TERM=xterm, container=podman.
    #[default]
    Podman,
    /// PATH only: a build's RUN (Buildah's and Docker's builds add no more).
    Path,
    /// None (--unsetenv-all).
    Nothing,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `--env-merge NAME=VALUE`: VALUE with each `${X}` replaced by the
/// image's value of X (empty if it has none), as Podman's.
pub fn env_merge(image_cfg: &Value, merges: &[String]) -> Vec<String> {
    let image: Vec<(&str, &str)> = image_cfg["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('='))
        .collect();
    merges
        .iter()
        .map(|m| {
            let (name, mut value) = m.split_once('=').unwrap_or((m, ""));
            let mut out = String::new();
            while let Some(at) = value.find("${") {
                out.push_str(&value[..at]);
                let rest = &value[at + 2..];
                match rest.find('}') {
                    Some(end) => {
                        let key = &rest[..end];
                        out.push_str(image.iter().find(|(k, _)| *k == key).map_or("", |(_, v)| v));
                        value = &rest[end + 1..];
                    }
                    None => {
                        out.push_str(&value[at..]);
                        value = "";
                    }
                }
            }
            out.push_str(value);
            format!("{name}={out}")
        })
        .collect()
}

/// The environment, as Podman makes it: its defaults (PATH, TERM=xterm,
/// container=podman), then the image's, less --unsetenv's names, then -e
/// (a later name wins); HOME and HOSTNAME where none of those set them,
/// even with --unsetenv-all (Podman's).
pub fn environment(
    image_cfg: &Value,
    given: &[String],
    hostname: &str,
    home: Option<&str>,
    rules: &EnvRules,
) -> Vec<String> {
    fn set(env: &mut Vec<String>, kv: String) {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    let mut env: Vec<String> = match rules.defaults {
        EnvDefaults::Podman => vec![
            DEFAULT_PATH.into(),
            "TERM=xterm".into(),
            // What systemd and tools read to know they run in a container;
            // Podman's word, for the tools that know it (skiff's
            // containers are Podman's in every way they look at).
            "container=podman".into(),
        ],
        EnvDefaults::Path => vec![DEFAULT_PATH.into()],
        EnvDefaults::Nothing => vec![],
    };
    if let (Some(a), false) = (
        image_cfg.get("Env").and_then(|v| v.as_array()),
        rules.no_image,
    ) {
        for e in a.iter().filter_map(|x| x.as_str()) {
            set(&mut env, e.to_string());
        }
    }
    env.retain(|e| {
        !rules
            .unset
            .iter()
            .any(|u| e.split('=').next() == Some(u.as_str()))
    });
    for e in given {
        if e.contains('=') {
            set(&mut env, e.clone());
        } else if let Ok(v) = std::env::var(e) {
            // `-e NAME` takes the caller's value, as Docker does.
            set(&mut env, format!("{e}={v}"));
        }
    }
    // Added last, whatever was unset (Podman adds them after its
    // --unsetenv and --unsetenv-all).
    let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(k));
    if let Some(h) = home {
        if !has(&env, "HOME=") {
            env.push(format!("HOME={h}"));
        }
    }
    if !has(&env, "HOSTNAME=") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_does() {
        let c = json!({"Entrypoint": ["/ep"], "Cmd": ["a", "b"]});
        assert_eq!(command(&c, None, &[]), ["/ep", "a", "b"]);
        assert_eq!(command(&c, None, &["x".into()]), ["/ep", "x"]);
        assert_eq!(command(&c, Some("/other"), &[]), ["/other"]);
        assert_eq!(command(&c, Some(""), &["sh".into()]), ["sh"]);
        assert_eq!(command(&json!({"Cmd": ["sh"]}), None, &[]), ["sh"]);
        // Podman's JSON form; anything else is one word.
        assert_eq!(
            command(&c, Some(r#"["sh","-c"]"#), &["x".into()]),
            ["sh", "-c", "x"]
        );
        assert_eq!(command(&c, Some("[x"), &[]), ["[x"]);
    }

    #[test]
    fn later_environment_wins() {
        let c = json!({"Env": ["A=1", "PATH=/bin"]});
        let e = environment(
            &c,
            &["A=2".into(), "B=3".into()],
            "h",
            Some("/root"),
            &EnvRules::default(),
        );
        assert!(e.contains(&"A=2".to_string()) && e.contains(&"B=3".to_string()));
        assert!(e.contains(&"PATH=/bin".to_string()) && !e.contains(&"A=1".to_string()));
        assert!(e.contains(&"HOME=/root".to_string()) && e.contains(&"HOSTNAME=h".to_string()));
        // Podman's defaults, under the image's and -e.
        assert!(
            e.contains(&"TERM=xterm".to_string()) && e.contains(&"container=podman".to_string())
        );
        let e = environment(
            &c,
            &["container=other".into()],
            "h",
            None,
            &EnvRules::default(),
        );
        assert!(
            e.contains(&"container=other".to_string()) && !e.iter().any(|v| v.starts_with("HOME="))
        );
        // --unsetenv: out of the defaults' and the image's, not -e's.
        let rules = EnvRules {
            unset: vec!["PATH".into(), "container".into(), "HOSTNAME".into()],
            ..Default::default()
        };
        assert_eq!(
            environment(&c, &["A=2".into()], "h", None, &rules),
            ["TERM=xterm", "A=2", "HOSTNAME=h"]
        );
        // --unsetenv-all: -e's alone, then HOME and HOSTNAME.
        let rules = EnvRules {
            defaults: EnvDefaults::Nothing,
            no_image: true,
            unset: vec![],
        };
        assert_eq!(
            environment(&c, &["B=3".into()], "h", Some("/root"), &rules),
            ["B=3", "HOME=/root", "HOSTNAME=h"]
        );
    }
}

/// What `run`'s resource, capability, mount and limit flags add to the
/// config, parsed (each error names its flag).
#[derive(Debug, Default, Clone)]
pub struct Extras {
    pub resources: serde_json::Map<String, Value>,
    pub caps_add: Vec<String>,
    pub caps_drop: Vec<String>,
    pub mounts: Vec<Value>,
    /// -v HOST:PATH:U: host directories given to the container's user.
    pub chown_binds: Vec<String>,
    pub rlimits: Vec<Value>,
    pub no_new_privileges: bool,
    /// linux.seccomp: None = unconfined.
    pub seccomp: Option<Value>,
    /// `--security-opt seccomp=...` given (unconfined or a file).
    pub seccomp_given: bool,
    /// --privileged: every capability, no seccomp, no masked paths.
    pub privileged: bool,
    /// linux.devices entries, each with the `access` its cgroup rule gets.
    pub devices: Vec<Value>,
    /// --group-add, resolved against the image's /etc/group at create.
    pub groups_add: Vec<String>,
    /// Volumes (-v NAME:PATH, -v PATH, --mount type=volume), made and
    /// bound at create.
    pub volumes: Vec<VolumeRequest>,
    /// --shm-size: /dev/shm's size in bytes.
    pub shm_size: Option<i64>,
    /// --sysctl: linux.sysctl.
    pub sysctl: serde_json::Map<String, Value>,
    /// --annotation: the config's annotations.
    pub annotations: serde_json::Map<String, Value>,
    /// --pid/--ipc/--uts host: the namespaces not made (the host's kept).
    pub host_namespaces: Vec<&'static str>,
    /// --cgroupns private: a cgroup namespace of its own.
    pub private_cgroupns: bool,
    /// --oom-score-adj: process.oomScoreAdj.
    pub oom_score_adj: Option<i32>,
    /// --umask: process.user.umask.
    pub umask: Option<u32>,
    /// --tz: the host's zone file to copy to the container's /etc/localtime.
    pub tz: Option<std::path::PathBuf>,
    /// --device-cgroup-rule: linux.resources.devices allow rules.
    pub device_rules: Vec<Value>,
    /// --cgroup-parent: the group the container's goes under (absolute).
    pub cgroup_parent: Option<String>,
    /// --secret: given to the container at create.
    pub secrets: Vec<crate::secrets::Request>,
    /// --userns/--uidmap/--gidmap: a user namespace of its own.
    pub userns: Option<crate::idmap::Userns>,
    /// --personality: linux.personality's domain.
    pub personality: Option<&'static str>,
}

/// --tz's zone file: the host's /etc/localtime for `local`, else the zone
/// under /usr/share/zoneinfo (Podman's), a name that stays inside it.
fn zone_file(zone: &str) -> Result<std::path::PathBuf, String> {
    if zone == "local" {
        return Ok("/etc/localtime".into());
    }
    let inside = !zone.is_empty()
        && !zone.starts_with('/')
        && zone
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !inside {
        return Err(format!(
            "--tz {zone:?}: a zone name such as Europe/Paris or UTC, or local"
        ));
    }
    let path = std::path::Path::new("/usr/share/zoneinfo").join(zone);
    if !path.is_file() {
        return Err(format!(
            "--tz {zone:?}: no such zone in /usr/share/zoneinfo"
        ));
    }
    Ok(path)
}

/// A volume a container asks for: a named one (made on first use) or,
/// without a name, an anonymous one of its own.
#[derive(Debug, Clone)]
pub struct VolumeRequest {
    pub name: Option<String>,
    pub destination: String,
    pub read_only: bool,
    /// Mount options given (-v's propagation, exec, suid, dev and their
    /// negations).
    pub options: Vec<String>,
    /// nocopy: not filled from the image.
    pub nocopy: bool,
    /// U: owned by the container's user.
    pub chown: bool,
}

/// -v's options after the paths: Podman's (and Docker's) words, each
/// applied or refused by name.
#[derive(Debug, Default, PartialEq)]
pub struct VolumeOptions {
    pub read_only: bool,
    /// Mount options for the bind: propagation, (no)exec, (no)suid,
    /// (no)dev.
    pub options: Vec<String>,
    /// `bind`: not recursive (the default is rbind).
    pub plain_bind: bool,
    pub nocopy: bool,
    pub chown: bool,
}

impl VolumeOptions {
    /// `given`, the options of `shown` (the flag's whole value).
    pub fn parse(flag: &str, shown: &str, given: &str) -> Result<VolumeOptions, String> {
        let mut v = VolumeOptions::default();
        for o in given.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => v.read_only = true,
                "rw" => v.read_only = false,
                // SELinux relabelling (no SELinux here), and Docker
                // Desktop's consistency words: nothing to do.
                "z" | "Z" | "cached" | "delegated" | "consistent" => {}
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    v.options.retain(|x| !PROPAGATIONS.contains(&x.as_str()));
                    v.options.push(o.to_string());
                }
                "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev" => {
                    v.options.push(o.to_string())
                }
                "bind" => v.plain_bind = true,
                "rbind" => v.plain_bind = false,
                "nocopy" => v.nocopy = true,
                "copy" => v.nocopy = false,
                "U" => v.chown = true,
                "O" => {
                    return Err(format!(
                        "{flag} {shown:?}: option O (an overlay over the host directory) is not supported here"
                    ))
                }
                "idmap" => {
                    return Err(format!(
                        "{flag} {shown:?}: option idmap is not supported here (--uidmap maps the image's layers)"
                    ))
                }
                o => {
                    return Err(format!(
                        "{flag} {shown:?}: option {o:?}: ro, rw, z, Z, a propagation (rprivate, rshared, rslave, ...), exec, noexec, suid, nosuid, dev, nodev, bind, rbind, nocopy or U"
                    ))
                }
            }
        }
        Ok(v)
    }
}

const PROPAGATIONS: &[&str] = &[
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// Bytes of "64m", "1g", "512k", "1024" (Docker's units: 1024s).
pub fn parse_size(flag: &str, s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{flag} {s:?}: a size such as 64m or 1g"))?;
    if n <= 0.0 || !n.is_finite() {
        return Err(format!("{flag} {s:?}: must be positive"));
    }
    Ok((n * mult as f64) as i64)
}

fn cap_name(flag: &str, c: &str) -> Result<String, String> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    // A name the kernel's list has (Podman refuses others, exit 125).
    if !CAPABILITY_NAMES.iter().any(|n| name[4..] == **n) {
        return Err(format!("{flag} {c:?}: not a capability name"));
    }
    Ok(name)
}

/// The capabilities by bit, without CAP_ (the kernel's order).
pub const CAPABILITY_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Every capability this kernel knows, by name (for ALL).
pub fn all_caps() -> Vec<String> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    // Only those this process may still give: a root without some (this
    // machine's lacks CAP_SYS_RESOURCE) cannot raise them in a container.
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    CAPABILITY_NAMES
        .iter()
        .enumerate()
        .take(last as usize + 1)
        .filter(|(i, _)| bounding & (1 << i) != 0)
        .map(|(_, n)| format!("CAP_{n}"))
        .collect()
}

/// The capability set: Docker's defaults, less --cap-drop, plus --cap-add.
pub fn capabilities(x: &Extras) -> Vec<String> {
    let mut caps: Vec<String> = if x.caps_drop.iter().any(|c| c == "ALL") {
        vec![]
    } else {
        DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
    };
    caps.retain(|c| !x.caps_drop.contains(c));
    for a in &x.caps_add {
        if a == "ALL" {
            caps = all_caps();
        } else if !caps.contains(a) {
            caps.push(a.clone());
        }
    }
    caps
}

/// `run`'s flags, into what the config gets.
pub fn extras(a: &crate::cli::RunArgs) -> Result<Extras, String> {
    // A flag this command does not know stops the flags: it is not an
    // image name to look for in registries.
    if a.image().starts_with('-') {
        return Err(format!("unknown flag: {}", a.image()));
    }
    if let Some(p) = a.pull.as_deref() {
        if !matches!(p, "missing" | "always" | "never" | "newer") {
            return Err(format!("--pull {p:?}: missing, always, never or newer"));
        }
    }
    let mut x = resource_extras(&Limits {
        oom_kill_disable: a.oom_kill_disable,
        ..Limits::of(&a.limits)
    })?;
    x.caps_add = a
        .cap_add
        .iter()
        .map(|c| cap_name("--cap-add", c))
        .collect::<Result<_, _>>()?;
    x.caps_drop = a
        .cap_drop
        .iter()
        .map(|c| cap_name("--cap-drop", c))
        .collect::<Result<_, _>>()?;
    mount_extras(&mut x, &a.volume, &a.mount, &a.tmpfs)?;
    // Podman's --read-only-tmpfs (on by default): the places programs
    // write scratch files stay writable, each unless mounted otherwise.
    if a.read_only && a.read_only_tmpfs != Some(false) {
        for dst in ["/run", "/tmp", "/var/tmp"] {
            let taken = x.mounts.iter().any(|m| m["destination"] == dst)
                || x.volumes.iter().any(|v| v.destination == dst);
            // Sticky and open to all, whatever the image's directory is.
            let mode = if dst == "/run" {
                "mode=755"
            } else {
                "mode=1777"
            };
            if !taken {
                x.mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": ["rw", "nosuid", "nodev", mode]}));
            }
        }
    }
    limit_extras(&mut x, &a.ulimit, &a.security_opt)?;
    for (flag, mode, ns) in [
        ("--pid", &a.pid, "pid"),
        ("--ipc", &a.ipc, "ipc"),
        ("--uts", &a.uts, "uts"),
    ] {
        match mode.as_deref() {
            None | Some("private" | "") => {}
            Some("host") if a.pod.is_some() => {
                return Err(format!(
                    "{flag} host: not with --pod (its members share the pod's)"
                ))
            }
            Some("host") => x.host_namespaces.push(ns),
            Some(m) => return Err(format!("{flag} {m:?}: host or private")),
        }
    }
    match a.cgroupns.as_deref() {
        None | Some("host" | "") => {}
        Some("private") => x.private_cgroupns = true,
        Some(m) => return Err(format!("--cgroupns {m:?}: host or private")),
    }
    if let Some(n) = a.oom_score_adj {
        if !(-1000..=1000).contains(&n) {
            return Err(format!("--oom-score-adj {n}: from -1000 to 1000"));
        }
        x.oom_score_adj = Some(n);
    }
    if let Some(m) = &a.umask {
        x.umask = Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| format!("--umask {m:?}: octal, 0000 to 0777"))?,
        );
    }
    if let Some(zone) = &a.tz {
        x.tz = Some(zone_file(zone)?);
    }
    if x.host_namespaces.contains(&"uts") && a.hostname.is_some() {
        return Err("--hostname: not with --uts host (the host's name is the container's)".into());
    }
    if let Some(sz) = &a.shm_size {
        let bytes = parse_size("--shm-size", sz)?;
        if bytes < 1024 {
            return Err(format!("--shm-size {sz:?}: at least 1k"));
        }
        x.shm_size = Some(bytes);
    }
    for (flag, given, into) in [
        ("--sysctl", &a.sysctl, &mut x.sysctl),
        ("--annotation", &a.annotation, &mut x.annotations),
    ] {
        for kv in given {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    into.insert(k.to_string(), json!(v));
                }
                _ => return Err(format!("{flag} {kv:?}: KEY=VALUE")),
            }
        }
    }
    x.privileged = a.privileged;
    if a.privileged {
        x.devices = host_devices();
    }
    for d in &a.device {
        x.devices.push(device(d)?);
    }
    x.device_rules = a
        .device_cgroup_rule
        .iter()
        .map(|r| device_rule(r))
        .collect::<Result<_, _>>()?;
    let mut block_io = serde_json::Map::new();
    for (flag, key, given, bytes) in [
        (
            "--device-read-bps",
            "throttleReadBpsDevice",
            &a.device_read_bps,
            true,
        ),
        (
            "--device-write-bps",
            "throttleWriteBpsDevice",
            &a.device_write_bps,
            true,
        ),
        (
            "--device-read-iops",
            "throttleReadIOPSDevice",
            &a.device_read_iops,
            false,
        ),
        (
            "--device-write-iops",
            "throttleWriteIOPSDevice",
            &a.device_write_iops,
            false,
        ),
    ] {
        if !given.is_empty() {
            let list = given
                .iter()
                .map(|g| throttle(flag, g, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            block_io.insert(key.into(), Value::Array(list));
        }
    }
    if !a.blkio_weight_device.is_empty() {
        let list = a
            .blkio_weight_device
            .iter()
            .map(|g| weight_device(g))
            .collect::<Result<Vec<_>, _>>()?;
        block_io.insert("weightDevice".into(), Value::Array(list));
    }
    if !block_io.is_empty() {
        // With --blkio-weight's, in one object.
        let entry = x.resources.entry("blockIO").or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.extend(block_io);
        }
    }
    x.personality = match a.personality.as_deref() {
        None => None,
        Some(d) if d.eq_ignore_ascii_case("LINUX") => Some("LINUX"),
        Some(d) if d.eq_ignore_ascii_case("LINUX32") => Some("LINUX32"),
        Some(d) => return Err(format!("--personality {d:?}: LINUX or LINUX32")),
    };
    if let Some(p) = a.seccomp_policy.as_deref().filter(|p| *p != "default") {
        return Err(format!(
            "--seccomp-policy {p:?}: default is the only policy (the engine's profile, or --security-opt's)"
        ));
    }
    x.groups_add = a.group_add.clone();
    x.cgroup_parent = a.cgroup_parent.as_deref().map(cgroup_parent).transpose()?;
    x.userns = crate::idmap::parse(a.userns.as_deref(), &a.uidmap, &a.gidmap)?;
    if x.userns.is_some() {
        if skiff_image::rootless() {
            return Err("--userns/--uidmap/--gidmap: a rootless engine's containers are in its user namespace already (not supported yet)".into());
        }
        if a.pod.is_some() {
            return Err(
                "--userns/--uidmap/--gidmap with --pod: a pod's containers share its namespaces"
                    .into(),
            );
        }
    }
    x.secrets = a
        .secret
        .iter()
        .map(|s| crate::secrets::parse_request(s))
        .collect::<Result<_, _>>()?;
    if x.cgroup_parent.is_some() && a.pod.is_some() {
        return Err(
            "--cgroup-parent with --pod: a pod's containers are under the pod's group".into(),
        );
    }
    match a.cgroups.as_deref() {
        None | Some("enabled") => {}
        Some(other) => {
            return Err(format!(
                "--cgroups {other:?}: only enabled (every container has a group of its own; \
                 disabled, no-conmon and split are Podman's conmon and systemd modes)"
            ))
        }
    }
    Ok(x)
}

/// `--cgroup-parent`: a cgroupfs path, absolute (a relative one is under
/// the root, as init's group is here), without `.` or `..` steps.
fn cgroup_parent(given: &str) -> Result<String, String> {
    let steps: Vec<&str> = given.split('/').filter(|s| !s.is_empty()).collect();
    if steps.is_empty() || steps.iter().any(|s| *s == "." || *s == "..") {
        return Err(format!(
            "--cgroup-parent {given:?}: a group's path, e.g. /skiff.slice or /batch/jobs"
        ));
    }
    Ok(format!("/{}", steps.join("/")))
}

/// --device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS' (Docker's): an allow
/// rule of linux.resources.devices.
fn device_rule(rule: &str) -> Result<Value, String> {
    let bad = || {
        format!("--device-cgroup-rule {rule:?}: 'TYPE MAJOR:MINOR ACCESS', TYPE a, b or c, * for any number, ACCESS of r, w and m")
    };
    let words: Vec<&str> = rule.split_whitespace().collect();
    let [kind, numbers, access] = words.as_slice() else {
        return Err(bad());
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<Value, String> {
        match n {
            "*" => Ok(Value::Null),
            n => n.parse::<i64>().map(|n| json!(n)).map_err(|_| bad()),
        }
    };
    if !matches!(*kind, "a" | "b" | "c")
        || access.is_empty()
        || !access.chars().all(|c| "rwm".contains(c))
    {
        return Err(bad());
    }
    let mut r = json!({"allow": true, "type": kind, "access": access});
    for (key, n) in [("major", number(major)?), ("minor", number(minor)?)] {
        if !n.is_null() {
            r[key] = n;
        }
    }
    Ok(r)
}

/// --device-read-bps and the like, PATH:RATE: a throttle entry of
/// linux.resources.blockIO for the block device at PATH.
/// `--blkio-weight-device PATH:WEIGHT`.
fn weight_device(given: &str) -> Result<Value, String> {
    let flag = "--blkio-weight-device";
    let (path, w) = given
        .rsplit_once(':')
        .ok_or_else(|| format!("{flag} {given:?}: PATH:WEIGHT"))?;
    let w: u16 = w
        .parse()
        .map_err(|_| format!("{flag} {given:?}: WEIGHT is a number, 10 to 1000"))?;
    let mut dev = throttle(flag, &format!("{path}:0"), false)?;
    if let Some(o) = dev.as_object_mut() {
        o.remove("rate");
        o.insert("weight".into(), json!(blkio_weight(flag, w)?));
    }
    Ok(dev)
}

fn throttle(flag: &str, given: &str, bytes: bool) -> Result<Value, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (path, rate) = given
        .rsplit_once(':')
        .ok_or_else(|| format!("{flag} {given:?}: PATH:RATE"))?;
    let rate = match bytes {
        true => parse_size(flag, rate)?,
        false => rate
            .parse::<i64>()
            .map_err(|_| format!("{flag} {given:?}: PATH:N, N operations a second"))?,
    };
    let meta = std::fs::metadata(path)
        .ok()
        .filter(|m| m.file_type().is_block_device())
        .ok_or_else(|| format!("{flag} {given:?}: {path} is not a block device"))?;
    let rdev = meta.rdev();
    Ok(json!({
        "major": libc::major(rdev),
        "minor": libc::minor(rdev),
        "rate": rate,
    }))
}

/// The resource flags, as given: `run`/`create`'s, and a VM pod's size.
#[derive(Debug, Default, Clone, Copy)]
pub struct Limits<'a> {
    pub memory: Option<&'a str>,
    pub memory_swap: Option<&'a str>,
    pub memory_reservation: Option<&'a str>,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: bool,
    pub cpus: Option<&'a str>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<&'a str>,
    pub cpuset_mems: Option<&'a str>,
    pub pids: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub blkio_weight: Option<u16>,
}

impl<'a> Limits<'a> {
    /// The flags `run`, `create` and `update` share.
    pub fn of(a: &'a crate::cli::LimitArgs) -> Limits<'a> {
        Limits {
            memory: a.memory.as_deref(),
            memory_swap: a.memory_swap.as_deref(),
            memory_reservation: a.memory_reservation.as_deref(),
            memory_swappiness: a.memory_swappiness,
            oom_kill_disable: false,
            cpus: a.cpus.as_deref(),
            cpu_shares: a.cpu_shares,
            cpu_quota: a.cpu_quota,
            cpu_period: a.cpu_period,
            cpuset_cpus: a.cpuset_cpus.as_deref(),
            cpuset_mems: a.cpuset_mems.as_deref(),
            pids: a.pids_limit,
            cpu_rt_period: a.cpu_rt_period,
            cpu_rt_runtime: a.cpu_rt_runtime,
            blkio_weight: a.blkio_weight,
        }
    }
}

/// linux.resources from the flags, checked as Docker checks them.
pub fn resource_extras(l: &Limits) -> Result<Extras, String> {
    let mut x = Extras::default();
    let mem = memory_limits(l)?;
    if !mem.is_empty() {
        x.resources.insert("memory".into(), Value::Object(mem));
    }
    let cpu = cpu_limits(l)?;
    if !cpu.is_empty() {
        x.resources.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = l.pids {
        x.resources
            .insert("pids".into(), json!({"limit": if p <= 0 { -1 } else { p }}));
    }
    if let Some(w) = l.blkio_weight {
        x.resources.insert(
            "blockIO".into(),
            json!({"weight": blkio_weight("--blkio-weight", w)?}),
        );
    }
    Ok(x)
}

/// A block I/O weight: 10 to 1000, as the kernel takes it.
fn blkio_weight(flag: &str, w: u16) -> Result<u16, String> {
    match w {
        10..=1000 => Ok(w),
        _ => Err(format!("{flag} {w}: from 10 to 1000")),
    }
}

/// linux.resources.memory: --memory, --memory-swap, --memory-reservation,
/// --memory-swappiness, --oom-kill-disable.
fn memory_limits(l: &Limits) -> Result<serde_json::Map<String, Value>, String> {
    let mut mem = serde_json::Map::new();
    if let Some(m) = l.memory {
        let bytes = parse_size("--memory", m)?;
        if bytes < 6 << 20 {
            return Err(format!("--memory {m:?}: the minimum is 6m (Docker's)"));
        }
        mem.insert("limit".into(), json!(bytes));
    }
    let limit = mem.get("limit").and_then(Value::as_i64);
    if let Some(s) = l.memory_swap {
        let total = if s.trim() == "-1" {
            -1
        } else {
            parse_size("--memory-swap", s)?
        };
        match limit {
            None => return Err("--memory-swap needs --memory".into()),
            Some(l) if total != -1 && total < l => {
                return Err(format!("--memory-swap {s:?}: must be at least --memory"))
            }
            _ => {}
        }
        mem.insert("swap".into(), json!(total));
    }
    if let Some(r) = l.memory_reservation {
        let bytes = parse_size("--memory-reservation", r)?;
        if limit.is_some_and(|l| bytes > l) {
            return Err(format!(
                "--memory-reservation {r:?}: must not be above --memory"
            ));
        }
        mem.insert("reservation".into(), json!(bytes));
    }
    match l.memory_swappiness {
        None | Some(-1) => {}
        Some(n @ 0..=100) => {
            mem.insert("swappiness".into(), json!(n));
        }
        Some(n) => {
            return Err(format!(
                "--memory-swappiness {n}: from 0 to 100 (-1: the host's)"
            ))
        }
    }
    if l.oom_kill_disable {
        mem.insert("disableOOMKiller".into(), json!(true));
    }
    Ok(mem)
}

/// linux.resources.cpu: --cpus (a quota over 100 ms), --cpu-quota and
/// --cpu-period (not with --cpus: Docker's rule), --cpu-shares,
/// --cpuset-cpus, --cpuset-mems.
fn cpu_limits(l: &Limits) -> Result<serde_json::Map<String, Value>, String> {
    let mut cpu = serde_json::Map::new();
    if let Some(c) = l.cpus {
        let n: f64 = c
            .parse()
            .map_err(|_| format!("--cpus {c:?}: a number such as 1.5"))?;
        if n <= 0.0 || !n.is_finite() {
            return Err(format!("--cpus {c:?}: must be positive"));
        }
        if l.cpu_quota.is_some() || l.cpu_period.is_some() {
            return Err("--cpus and --cpu-quota/--cpu-period conflict: give one".into());
        }
        cpu.insert("quota".into(), json!((n * 100_000.0) as i64));
        cpu.insert("period".into(), json!(100_000));
    }
    if let Some(q) = l.cpu_quota {
        if q != -1 && q < 1000 {
            return Err(format!("--cpu-quota {q}: at least 1000 µs (-1: none)"));
        }
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = l.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            return Err(format!("--cpu-period {p}: from 1000 to 1000000 µs"));
        }
        cpu.insert("period".into(), json!(p));
    }
    if let Some(sh) = l.cpu_shares {
        cpu.insert("shares".into(), json!(sh));
    }
    if let Some(p) = l.cpu_rt_period {
        cpu.insert("realtimePeriod".into(), json!(p));
    }
    if let Some(r) = l.cpu_rt_runtime {
        if r < -1 {
            return Err(format!(
                "--cpu-rt-runtime {r}: µs per period (-1: all of it)"
            ));
        }
        cpu.insert("realtimeRuntime".into(), json!(r));
    }
    for (flag, key, list) in [
        ("--cpuset-cpus", "cpus", l.cpuset_cpus),
        ("--cpuset-mems", "mems", l.cpuset_mems),
    ] {
        let Some(set) = list else { continue };
        if set.is_empty()
            || !set
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
        {
            return Err(format!("{flag} {set:?}: a list such as 0-1 or 0,2"));
        }
        cpu.insert(key.into(), json!(set));
    }
    Ok(cpu)
}

/// -v, --mount, --tmpfs.
fn mount_extras(
    x: &mut Extras,
    volumes: &[String],
    mounts: &[String],
    tmpfs: &[String],
) -> Result<(), String> {
    for v in volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opt) = match parts.as_slice() {
            // A path alone: an anonymous volume there.
            [d] => ("", *d, ""),
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                return Err(format!(
                    "-v {v:?}: [HOST-PATH|VOLUME:]CONTAINER-PATH[:ro|rw]"
                ))
            }
        };
        if !dst.starts_with('/') {
            return Err(format!("-v {v:?}: the container path must be absolute"));
        }
        let o = VolumeOptions::parse("-v", v, opt)?;
        if src.is_empty() || !src.starts_with(['/', '.']) {
            x.volumes.push(VolumeRequest {
                name: (!src.is_empty()).then(|| src.to_string()),
                destination: dst.to_string(),
                read_only: o.read_only,
                options: o.options,
                nocopy: o.nocopy,
                chown: o.chown,
            });
            continue;
        }
        if !src.starts_with('/') {
            return Err(format!("-v {v:?}: a host path must be absolute"));
        }
        if !Path::new(src).exists() {
            return Err(format!("-v {v:?}: {src} does not exist"));
        }
        let mut b = bind_with(src, dst, o.read_only, &o.options);
        if o.plain_bind {
            b["options"][0] = json!("bind");
        }
        if o.chown {
            x.chown_binds.push(src.to_string());
        }
        x.mounts.push(b);
    }
    for m in mounts {
        let mut kv = std::collections::HashMap::new();
        for part in m.split(',') {
            let (k, val) = part.split_once('=').unwrap_or((part, ""));
            kv.insert(k.trim().to_string(), val.trim().to_string());
        }
        // Every key is applied or refused by name: a silently dropped
        // option would change what the container sees.
        for k in kv.keys() {
            let known = [
                "type",
                "source",
                "src",
                "target",
                "destination",
                "dst",
                "readonly",
                "ro",
                "tmpfs-size",
                "tmpfs-mode",
                "bind-propagation",
                "bind-nonrecursive",
                "relabel",
                "consistency",
                "volume-nocopy",
                // A tmpfs's flags (Podman's).
                "exec",
                "noexec",
                "suid",
                "nosuid",
                "dev",
                "nodev",
                "tmpcopyup",
                "notmpcopyup",
            ];
            if !known.contains(&k.as_str()) {
                return Err(format!("--mount {m:?}: option {k:?} is not supported here"));
            }
        }
        let target = kv
            .get("target")
            .or(kv.get("destination"))
            .or(kv.get("dst"))
            .cloned()
            .unwrap_or_default();
        if !target.starts_with('/') {
            return Err(format!("--mount {m:?}: target=ABSOLUTE_PATH is needed"));
        }
        match kv.get("type").map(String::as_str).unwrap_or("volume") {
            "bind" => {
                let src = kv
                    .get("source")
                    .or(kv.get("src"))
                    .cloned()
                    .unwrap_or_default();
                if !src.starts_with('/') || !Path::new(&src).exists() {
                    return Err(format!(
                        "--mount {m:?}: source= must be an existing absolute host path"
                    ));
                }
                let mut b = bind(&src, &target, mount_read_only(m, &kv)?);
                if kv
                    .get("bind-nonrecursive")
                    .is_some_and(|v| v.is_empty() || v == "true")
                {
                    b["options"][0] = json!("bind");
                }
                if let Some(p) = kv.get("bind-propagation") {
                    let known = [
                        "private", "rprivate", "shared", "rshared", "slave", "rslave",
                    ];
                    if !known.contains(&p.as_str()) {
                        return Err(format!(
                            "--mount {m:?}: bind-propagation={p:?}: one of {known:?}"
                        ));
                    }
                    if let Some(o) = b["options"].as_array_mut() {
                        o.retain(|x| x != "rprivate");
                        o.push(json!(p));
                    }
                }
                x.mounts.push(b);
            }
            "tmpfs" => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                for flag in ["exec", "noexec", "suid", "dev", "tmpcopyup"] {
                    if kv.contains_key(flag) {
                        opts.retain(|o| o.trim_start_matches("no") != flag);
                        opts.push(flag.to_string());
                    }
                }
                if let Some(sz) = kv.get("tmpfs-size") {
                    opts.push(format!("size={}", parse_size("--mount tmpfs-size", sz)?));
                }
                if let Some(mode) = kv.get("tmpfs-mode") {
                    u32::from_str_radix(mode, 8).map_err(|_| {
                        format!("--mount {m:?}: tmpfs-mode={mode:?}: octal, as 1777")
                    })?;
                    opts.push(format!("mode={mode}"));
                }
                x.mounts.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
            }
            "volume" => x.volumes.push(VolumeRequest {
                name: kv
                    .get("source")
                    .or(kv.get("src"))
                    .filter(|s| !s.is_empty())
                    .cloned(),
                destination: target,
                read_only: mount_read_only(m, &kv)?,
                options: Vec::new(),
                nocopy: kv.contains_key("volume-nocopy"),
                chown: false,
            }),
            t => return Err(format!("--mount {m:?}: type {t:?}: bind, volume or tmpfs")),
        }
    }
    for t in tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            return Err(format!("--tmpfs {t:?}: the path must be absolute"));
        }
        // Podman's defaults (not Docker's noexec); notmpcopyup is the
        // default already (a tmpfs starts empty here).
        let mut o = vec!["nosuid".to_string(), "nodev".to_string()];
        o.extend(
            opts.split(',')
                .filter(|s| !s.is_empty() && *s != "notmpcopyup")
                .map(str::to_string),
        );
        x.mounts
            .push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    Ok(())
}

/// --mount's `readonly` (or `ro`): alone, or =true|false|1|0 as Docker
/// and Podman take it.
fn mount_read_only(
    m: &str,
    kv: &std::collections::HashMap<String, String>,
) -> Result<bool, String> {
    match kv.get("readonly").or(kv.get("ro")).map(String::as_str) {
        None => Ok(false),
        Some("" | "true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(format!("--mount {m:?}: readonly={v:?}: true or false")),
    }
}

/// --ulimit, --security-opt.
fn limit_extras(x: &mut Extras, ulimits: &[String], security: &[String]) -> Result<(), String> {
    for u in ulimits {
        let (name, vals) = u
            .split_once('=')
            .ok_or_else(|| format!("--ulimit {u:?}: NAME=SOFT[:HARD]"))?;
        let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
        let num = |v: &str| -> Result<u64, String> {
            if v == "-1" || v == "unlimited" {
                Ok(u64::MAX)
            } else {
                v.parse()
                    .map_err(|_| format!("--ulimit {u:?}: {v:?} is not a number"))
            }
        };
        let (soft, hard) = (num(soft)?, num(hard)?);
        if soft > hard {
            return Err(format!(
                "--ulimit {u:?}: the soft limit is above the hard one"
            ));
        }
        let known = [
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
            "as",
        ];
        if !known.contains(&name) {
            return Err(format!("--ulimit {u:?}: unknown limit {name:?}"));
        }
        x.rlimits.push(json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": soft, "hard": hard}));
    }
    for s in security {
        match s.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => x.no_new_privileges = true,
            "no-new-privileges=false" | "no-new-privileges:false" => {}
            "seccomp=unconfined" | "seccomp:unconfined" => x.seccomp_given = true,
            // Podman's scripts say these for SELinux and AppArmor hosts;
            // this engine applies neither, so they hold already.
            "label=disable" | "label:disable" | "apparmor=unconfined" | "apparmor:unconfined" => {}
            o if o.starts_with("seccomp=") || o.starts_with("seccomp:") => {
                let path = &o["seccomp=".len()..];
                let text = std::fs::read_to_string(path).map_err(|e| format!("--security-opt {o:?}: {e}"))?;
                let v: Value = serde_json::from_str(&text).map_err(|e| format!("--security-opt {o:?}: not JSON: {e}"))?;
                x.seccomp = Some(v);
                x.seccomp_given = true;
            }
            o => return Err(format!("--security-opt {o:?}: no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json")),
        }
    }
    Ok(())
}

/// A `--device HOST[:CONTAINER[:PERMISSIONS]]`: the node as linux.devices
/// has it, and the cgroup rule that allows it.
fn device(spec: &str) -> Result<Value, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, inside, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if !p.starts_with('/') => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(format!("--device {spec:?}: HOST[:CONTAINER[:PERMISSIONS]]")),
    };
    if perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
        return Err(format!(
            "--device {spec:?}: permissions {perms:?}: of r, w and m"
        ));
    }
    if !inside.starts_with('/') {
        return Err(format!(
            "--device {spec:?}: the container path must be absolute"
        ));
    }
    node(host, inside)
        .map(|mut d| {
            d["access"] = json!(perms);
            d
        })
        .ok_or_else(|| format!("--device {spec:?}: {host} is not a character or block device"))
}

/// The device node at `host` (following a symlink, as Docker does), for
/// `inside`; None when it is no device.
fn node(host: &str, inside: &str) -> Option<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(host).ok()?;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(json!({
        "path": inside,
        "type": kind,
        "major": libc::major(rdev),
        "minor": libc::minor(rdev),
        "fileMode": meta.mode() & 0o7777,
        "uid": meta.uid(),
        "gid": meta.gid(),
        "access": "rwm",
    }))
}

/// --privileged: every device node under the host's /dev, as Docker gives
/// them (not the ptys, which the container has of its own).
fn host_devices() -> Vec<Value> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let skip = [
                    "/dev/pts",
                    "/dev/shm",
                    "/dev/mqueue",
                    "/dev/.lxc",
                    "/dev/.udev",
                ];
                if !skip.iter().any(|s| path == Path::new(s)) {
                    dirs.push(path);
                }
                continue;
            }
            if ft.is_symlink()
                || path == Path::new("/dev/ptmx")
                || path == Path::new("/dev/console")
            {
                continue;
            }
            let p = path.display().to_string();
            found.extend(node(&p, &p));
        }
    }
    found.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    found
}

pub fn bind(src: &str, dst: &str, ro: bool) -> Value {
    bind_with(src, dst, ro, &[])
}

/// `bind` with more options: a propagation given replaces rprivate.
pub fn bind_with(src: &str, dst: &str, ro: bool, more: &[String]) -> Value {
    let mut opts = vec!["rbind".to_string()];
    if !more.iter().any(|o| PROPAGATIONS.contains(&o.as_str())) {
        opts.push("rprivate".into());
    }
    if ro {
        opts.push("ro".into());
    }
    opts.extend(more.iter().cloned());
    json!({"destination": dst, "type": "bind", "source": src, "options": opts})
}

/// The default seccomp profile's places (the containers-common file
/// Podman uses; an admin's copy in /etc wins), as Docker's format.
/// Docker's default seccomp profile, containers-common's file (a broken
/// one fails by name); none, with a warning, where it is not installed.
pub fn default_seccomp() -> skiff_image::Result<Option<Value>> {
    use skiff_image::Error;
    match DEFAULT_SECCOMP
        .iter()
        .find(|p| std::path::Path::new(p).exists())
    {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::at(std::path::Path::new(path), "reading", e))?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::invalid(format!("{path}: not JSON: {e}")))
        }
        None => {
            eprintln!(
                "skiff: warning: no default seccomp profile ({}: install containers-common); the container runs without one",
                DEFAULT_SECCOMP.join(" or ")
            );
            Ok(None)
        }
    }
}

pub const DEFAULT_SECCOMP: &[&str] = &[
    "/etc/containers/seccomp.json",
    "/usr/share/containers/seccomp.json",
];

/// Go's name for this machine's architecture, as Podman and Docker say it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

fn scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// A profile in Docker's (and containers-common's) format made the
/// runtime-spec's linux.seccomp for this machine and these capabilities,
/// as Docker does it: the host's architecture with its sub-architectures;
/// a rule kept when its `includes` (arches, all caps) hold and its
/// `excludes` (arches, any cap) do not. A profile already in the
/// runtime-spec's form (no `archMap`, no `includes`) passes as it is.
pub fn seccomp_for(profile: &Value, caps: &[String]) -> Result<Value, String> {
    let obj = profile
        .as_object()
        .ok_or("the seccomp profile is not a JSON object")?;
    let default = obj
        .get("defaultAction")
        .and_then(|v| v.as_str())
        .ok_or("the seccomp profile has no defaultAction")?;
    let mut out = serde_json::Map::new();
    out.insert("defaultAction".into(), json!(default));
    if let Some(r) = obj.get("defaultErrnoRet") {
        out.insert("defaultErrnoRet".into(), r.clone());
    }
    let arches: Vec<Value> = match obj.get("archMap").and_then(|a| a.as_array()) {
        Some(map) => map
            .iter()
            .find(|m| m.get("architecture").and_then(|a| a.as_str()) == Some(scmp_arch()))
            .map(|m| {
                let mut v = vec![m["architecture"].clone()];
                v.extend(
                    m.get("subArchitectures")
                        .and_then(|s| s.as_array())
                        .cloned()
                        .unwrap_or_default(),
                );
                v
            })
            .unwrap_or_default(),
        None => obj
            .get("architectures")
            .and_then(|a| a.as_array())
            .cloned()
            .unwrap_or_default(),
    };
    if !arches.is_empty() {
        out.insert("architectures".into(), Value::Array(arches));
    }
    let list = |v: Option<&Value>, k: &str| -> Vec<String> {
        v.and_then(|x| x.get(k))
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut rules = vec![];
    for s in obj
        .get("syscalls")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let inc = s.get("includes");
        let exc = s.get("excludes");
        let inc_arches = list(inc, "arches");
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == go_arch()) {
            continue;
        }
        if list(exc, "arches").iter().any(|a| a == go_arch()) {
            continue;
        }
        if !list(inc, "caps").iter().all(|c| caps.contains(c)) {
            continue;
        }
        if list(exc, "caps").iter().any(|c| caps.contains(c)) {
            continue;
        }
        let mut names = list(Some(&s), "names");
        if let Some(n) = s.get("name").and_then(|n| n.as_str()) {
            names.push(n.to_string());
        }
        if names.is_empty() {
            continue;
        }
        let mut r = serde_json::Map::new();
        r.insert("names".into(), json!(names));
        r.insert(
            "action".into(),
            s.get("action")
                .cloned()
                .ok_or("a seccomp rule without an action")?,
        );
        if let Some(e) = s.get("errnoRet") {
            r.insert("errnoRet".into(), e.clone());
        }
        if let Some(a) = s
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            r.insert("args".into(), a.clone());
        }
        rules.push(Value::Object(r));
    }
    out.insert("syscalls".into(), Value::Array(rules));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod seccomp_tests {
    use super::*;

    #[test]
    fn rules_are_kept_by_capabilities_and_architecture_as_docker_keeps_them() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["s390_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}
            ]
        });
        let out = seccomp_for(&p, &["CAP_CHOWN".into()]).unwrap();
        let names: Vec<&str> = out["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["names"][0].as_str().unwrap())
            .collect();
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                out["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            );
            assert_eq!(names, ["read", "unshare"]);
        }
        let admin = seccomp_for(&p, &["CAP_SYS_ADMIN".into()]).unwrap();
        let names: Vec<&str> = admin["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["names"][0].as_str().unwrap())
            .collect();
        assert!(names.contains(&"mount") && !names.contains(&"unshare"));
        assert_eq!(out["defaultErrnoRet"], 38);
        assert!(seccomp_for(&json!({"syscalls": []}), &[]).is_err());
    }
}

/// uid, gid, groups and home of USER[:GROUP] from the rootfs's passwd and
/// group files, read inside the rootfs (a symlink there resolves there),
/// regular files of at most 16 MiB.
pub(crate) fn resolve_user(
    rootfs: &Path,
    user: &str,
) -> skiff_image::Result<(u32, u32, Vec<u32>, Option<String>)> {
    let read = |rel: &str| read_in_rootfs(rootfs, rel);
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read("etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && (f[0] == u || f[2] == u));
    let (uid, mut gid, home, uname) = match (&entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| {
                skiff_image::Error::invalid(format!(
                    "--user {user}: /etc/passwd's entry has no numeric uid"
                ))
            })?,
            f[3].parse().unwrap_or(0),
            Some(f[5].to_string()),
            f[0].to_string(),
        ),
        // A uid the image does not know runs in group 0, as Docker's and
        // Podman's do.
        (None, Ok(n)) => (n, 0, None, String::new()),
        (None, Err(_)) => {
            return Err(skiff_image::Error::invalid(format!(
                "--user {user}: no user {u:?} in the image's /etc/passwd"
            )))
        }
    };
    let group = read("etc/group");
    if let Some(g) = g {
        gid = match group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == g || f[2] == g))
        {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                skiff_image::Error::invalid(format!(
                    "--user {user}: no group {g:?} in the image's /etc/group"
                ))
            })?,
        };
    }
    // The primary group first, then the user's others (Docker's list).
    let groups: Vec<u32> = if uname.is_empty() {
        vec![gid]
    } else {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == uname))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .fold(vec![gid], |mut v, g| {
                v.push(g);
                v
            })
    };
    Ok((uid, gid, groups, home))
}

/// A file of the image's (etc/passwd, ...), read inside the rootfs (a
/// symlink there resolves there): a regular file of at most 16 MiB, else
/// nothing.
pub(crate) fn read_in_rootfs(rootfs: &Path, rel: &str) -> String {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use skiff_image::inroot::openat2;
    let Ok(dir) = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return String::new();
    };
    let Ok(fd) = openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
        return String::new();
    };
    let f = std::fs::File::from(fd);
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return String::new();
    }
    let mut s = String::new();
    let _ = f.take(16 << 20).read_to_string(&mut s);
    s
}

/// The gid of group `name` in the image's /etc/group (--group-add).
pub(crate) fn group_id(rootfs: &Path, name: &str) -> skiff_image::Result<u32> {
    read_in_rootfs(rootfs, "etc/group")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| {
            skiff_image::Error::invalid(format!(
                "--group-add {name}: no such group in the image's /etc/group"
            ))
        })
}

/// What `exec` runs and how.
pub struct ExecOpts<'a> {
    pub argv: &'a [String],
    pub env: &'a [String],
    pub user: Option<&'a str>,
    pub workdir: Option<&'a str>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    /// exec --privileged: every capability for the process.
    pub privileged: bool,
}
