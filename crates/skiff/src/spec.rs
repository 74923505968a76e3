//! The OCI runtime config (config.json) for a container of an image: the
//! image's config (Entrypoint, Cmd, Env, WorkingDir, User) under the
//! command line's flags, in Docker's defaults (its capability set, masked
//! and read-only paths, no device beyond the standard ones).

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

pub struct Plan<'a> {
    pub process: Process,
    pub hostname: &'a str,
    /// None: a network namespace of its own (loopback only, until
    /// networks land); Some: the host's.
    pub host_network: bool,
    /// Files of the container's own, bound over the image's.
    pub etc_files: &'a [(String, String)],
    pub read_only: bool,
    pub cgroup_ns: bool,
}

pub fn config(p: &Plan) -> Value {
    let caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !p.host_network {
        namespaces.push(json!({"type": "network"}));
    }
    if p.cgroup_ns {
        namespaces.push(json!({"type": "cgroup"}));
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
    for (dest, src) in p.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": p.process.terminal,
            "user": {"uid": p.process.uid, "gid": p.process.gid, "additionalGids": p.process.groups},
            "args": p.process.args,
            "env": p.process.env,
            "cwd": p.process.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false,
        },
        "root": {"path": "rootfs", "readonly": p.read_only},
        "hostname": p.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        },
    })
}

/// The command: --entrypoint (or the image's Entrypoint), then the
/// arguments given (or the image's Cmd), as Docker combines them.
pub fn command(image_cfg: &Value, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
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
    let mut out = match entrypoint {
        Some("") => vec![],
        Some(e) => vec![e.to_string()],
        None => list("Entrypoint"),
    };
    // A given entrypoint drops the image's Cmd too (Docker's rule).
    if !args.is_empty() {
        out.extend(args.iter().cloned());
    } else if entrypoint.is_none() {
        out.extend(list("Cmd"));
    }
    out
}

/// The environment: the image's, then -e (a later name wins); PATH and
/// HOSTNAME as Docker sets them.
pub fn environment(
    image_cfg: &Value,
    given: &[String],
    hostname: &str,
    home: Option<&str>,
    terminal: bool,
) -> Vec<String> {
    fn set(env: &mut Vec<String>, kv: String) {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    let mut env: Vec<String> = vec![format!("HOSTNAME={hostname}")];
    if let Some(a) = image_cfg.get("Env").and_then(|v| v.as_array()) {
        for e in a.iter().filter_map(|x| x.as_str()) {
            set(&mut env, e.to_string());
        }
    }
    for e in given {
        if e.contains('=') {
            set(&mut env, e.clone());
        } else if let Ok(v) = std::env::var(e) {
            // `-e NAME` takes the caller's value, as Docker does.
            set(&mut env, format!("{e}={v}"));
        }
    }
    let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(k));
    if !has(&env, "PATH=") {
        set(
            &mut env,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if terminal && !has(&env, "TERM=") {
        set(&mut env, "TERM=xterm".into());
    }
    if let Some(h) = home {
        if !has(&env, "HOME=") {
            set(&mut env, format!("HOME={h}"));
        }
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
    }

    #[test]
    fn later_environment_wins() {
        let c = json!({"Env": ["A=1", "PATH=/bin"]});
        let e = environment(&c, &["A=2".into(), "B=3".into()], "h", Some("/root"), false);
        assert!(e.contains(&"A=2".to_string()) && e.contains(&"B=3".to_string()));
        assert!(e.contains(&"PATH=/bin".to_string()) && !e.contains(&"A=1".to_string()));
        assert!(e.contains(&"HOME=/root".to_string()) && e.contains(&"HOSTNAME=h".to_string()));
    }
}
