//! The runtime options containerd sends with Create: runc's
//! (`containerd.runc.v1.Options`, what `SystemdCgroup = true` and ctr's
//! `--runc-systemd-cgroup` set). Those that apply to a runtime run in-process
//! are applied; the others, set, are refused with the option's name.

use std::path::Path;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options;
use containerd_shim_protos::ttrpc::Code;

use crate::error::ShimError;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RuntimeFlags {
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub systemd_cgroup: bool,
    /// IoUid/IoGid: who owns the process's stdio pipes and fifos
    /// (containerd 2.x sets them to the root of a pod's user namespace).
    pub io_owner: Option<(u32, u32)>,
}

fn invalid(message: String) -> ShimError {
    ShimError::status(Code::INVALID_ARGUMENT, message)
}

pub fn parse(options: Option<&Any>) -> Result<RuntimeFlags, ShimError> {
    let Some(any) = options.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
        return Ok(RuntimeFlags::default());
    };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    // What the CRI sends a runtime type it does not know when its options
    // table is set (`SystemdCgroup = true` copied from runc's, say): the
    // table's keys are dropped on the way, and an empty message remains.
    if name == "runtimeoptions.v1.Options" && any.value.is_empty() {
        return Ok(RuntimeFlags::default());
    }
    if name != "containerd.runc.v1.Options" {
        return Err(invalid(format!(
            "runtime options of type {:?}: the skiff shim takes runc's (containerd.runc.v1.Options)",
            any.type_url
        )));
    }
    let o = Options::parse_from_bytes(&any.value)
        .map_err(|e| invalid(format!("runtime options: {e}")))?;
    let unsupported = [
        (
            "BinaryName",
            !o.binary_name.is_empty(),
            "the shim runs containers with its library, not a binary",
        ),
        (
            "Root",
            !o.root.is_empty(),
            "the shim keeps its state under containerd's state directory",
        ),
        ("ShimCgroup", !o.shim_cgroup.is_empty(), "not supported"),
        (
            "CriuImagePath",
            !o.criu_image_path.is_empty(),
            "give the path with each checkpoint (its ImagePath)",
        ),
        (
            "CriuWorkPath",
            !o.criu_work_path.is_empty(),
            "give the path with each checkpoint (its WorkPath)",
        ),
        (
            "TaskApiAddress",
            !o.task_api_address.is_empty(),
            "not supported",
        ),
    ];
    if let Some((field, _, why)) = unsupported.iter().find(|(_, set, _)| *set) {
        return Err(invalid(format!("runtime option {field}: {why}")));
    }
    Ok(RuntimeFlags {
        no_pivot: o.no_pivot_root,
        no_new_keyring: o.no_new_keyring,
        systemd_cgroup: o.systemd_cgroup,
        io_owner: (o.io_uid != 0 || o.io_gid != 0).then_some((o.io_uid, o.io_gid)),
    })
}

/// Whether the bundle's linux.cgroupsPath is systemd's `slice:prefix:name`
/// (what containerd's CRI writes when the runtime's SystemdCgroup is set,
/// an option the CRI passes only to runc's runtime type): then the systemd
/// driver is used without the option, on a host where systemd runs.
pub fn systemd_path_in(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    let path = doc["linux"]["cgroupsPath"].as_str().unwrap_or_default();
    let parts: Vec<&str> = path.split(':').collect();
    parts.len() == 3
        && parts[0].ends_with(".slice")
        && !parts[0].contains('/')
        && Path::new("/run/systemd/system").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(o: &Options) -> Any {
        let mut a = Any::new();
        a.type_url = "containerd.runc.v1.Options".into();
        a.value = o.write_to_bytes().unwrap();
        a
    }

    #[test]
    fn runc_options_apply_or_are_refused_by_name() {
        assert_eq!(parse(None).unwrap(), RuntimeFlags::default());
        let o = Options {
            systemd_cgroup: true,
            no_pivot_root: true,
            ..Default::default()
        };
        let flags = parse(Some(&any(&o))).unwrap();
        assert!(flags.systemd_cgroup && flags.no_pivot && !flags.no_new_keyring);
        assert_eq!(flags.io_owner, None);
        let o = Options {
            io_uid: 65536,
            io_gid: 65537,
            ..Default::default()
        };
        assert_eq!(
            parse(Some(&any(&o))).unwrap().io_owner,
            Some((65536, 65537))
        );
        let o = Options {
            binary_name: "/usr/bin/runc".into(),
            ..Default::default()
        };
        assert!(format!("{:?}", parse(Some(&any(&o))).unwrap_err()).contains("BinaryName"));
        // The CRI's empty runtimeoptions are nothing to refuse; a config
        // path in them is.
        let mut other = Any::new();
        other.type_url = "runtimeoptions.v1.Options".into();
        assert_eq!(parse(Some(&other)).unwrap(), RuntimeFlags::default());
        other.value = vec![0x12, 0x02, b'/', b'x'];
        assert!(format!("{:?}", parse(Some(&other)).unwrap_err()).contains("runtimeoptions"));
    }
}
