//! linux.sysctl: which kernel parameters a container may set, and where they
//! are written. Only parameters that belong to one of the container's own
//! namespaces are allowed, as runc and crun do: anything else would be
//! written to the host's kernel, for every process on it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// IPC namespace parameters outside `fs.mqueue.`.
const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// A key in dotted form (`net/ipv4/ip_forward` is taken as
/// `net.ipv4.ip_forward`), or why it is no sysctl name.
fn normalise(key: &str) -> Result<String, &'static str> {
    let dotted = key.replace('/', ".");
    if dotted.split('.').any(|c| c.is_empty() || c == "..") {
        return Err("is not a sysctl name (empty or `..` component)");
    }
    Ok(dotted)
}

/// A linux.sysctl entry refused: the field and why (config.rs makes it a
/// ConfigError).
#[derive(Debug, thiserror::Error)]
#[error("config.json: {field}: {reason}")]
pub struct SysctlError {
    pub field: String,
    pub reason: String,
}

/// Checks every key against the namespaces in `namespaces`; a network
/// namespace joined by path must not be the caller's own.
pub fn validate(
    sysctls: &HashMap<String, String>,
    namespaces: &[LinuxNamespace],
) -> Result<(), SysctlError> {
    let ns = |typ| namespaces.iter().find(|n| n.typ() == typ);
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("linux.sysctl.{key}");
        let invalid = |reason: &str| SysctlError {
            field: field.clone(),
            reason: reason.to_string(),
        };
        let name = normalise(key).map_err(invalid)?;
        let owner = if IPC.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
            LinuxNamespaceType::Ipc
        } else if name.starts_with("net.") {
            LinuxNamespaceType::Network
        } else if name == "kernel.domainname" {
            LinuxNamespaceType::Uts
        } else if name == "kernel.hostname" {
            return Err(invalid(
                "conflicts with the hostname field; set that instead",
            ));
        } else {
            return Err(invalid(
                "is not in a namespace of the container's own (it would change the host's)",
            ));
        };
        let Some(theirs) = ns(owner) else {
            return Err(invalid(&format!(
                "needs a{} {} namespace in linux.namespaces (it would change the host's)",
                if owner == LinuxNamespaceType::Ipc {
                    "n"
                } else {
                    ""
                },
                crate::namespaces::ns_name(owner)
            )));
        };
        // runc's rule too: a network namespace joined by path must not be
        // the one skiff itself runs in.
        if owner == LinuxNamespaceType::Network
            && theirs
                .path()
                .as_ref()
                .is_some_and(|p| same_ns(p, "/proc/self/ns/net"))
        {
            return Err(invalid("the network namespace joined is the host's"));
        }
    }
    Ok(())
}

/// Whether two namespace files name the same namespace.
fn same_ns(a: &Path, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Where `key` (validated) is written, below the container's /proc.
pub fn path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(p);
        }
        b.build().unwrap()
    }

    fn check(key: &str, namespaces: &[LinuxNamespace]) -> Result<(), String> {
        let map = HashMap::from([(key.to_string(), "1".to_string())]);
        validate(&map, namespaces).map_err(|e| e.to_string())
    }

    #[test]
    fn only_parameters_of_the_containers_namespaces_pass() {
        use LinuxNamespaceType::*;
        let all = [ns(Ipc, None), ns(Network, None), ns(Uts, None)];
        for ok in [
            "kernel.shmmax",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "net/ipv4/ip_unprivileged_port_start",
            "kernel.domainname",
        ] {
            assert!(check(ok, &all).is_ok(), "{ok}: {:?}", check(ok, &all));
        }
        for (bad, namespaces, why) in [
            ("vm.swappiness", &all[..], "not in a namespace"),
            ("kernel.pid_max", &all[..], "not in a namespace"),
            ("kernel.hostname", &all[..], "hostname field"),
            ("kernel.shmmax", &all[1..], "ipc namespace"),
            ("net.ipv4.ip_forward", &all[..1], "network namespace"),
            ("kernel.domainname", &all[..2], "uts namespace"),
            ("net.ipv4..", &all[..], "not a sysctl name"),
            ("net/../../etc/passwd", &all[..], "not a sysctl name"),
        ] {
            let err = check(bad, namespaces).unwrap_err();
            assert!(
                err.contains(&format!("linux.sysctl.{bad}")) && err.contains(why),
                "{bad}: {err}"
            );
        }
        // A network namespace joined by path that is the host's own.
        let host = [ns(Network, Some("/proc/self/ns/net"))];
        let err = check("net.ipv4.ip_forward", &host).unwrap_err();
        assert!(err.contains("host's"), "{err}");
    }
}
