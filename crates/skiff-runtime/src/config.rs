//! Loading a bundle: config.json parsed with oci-spec, then checked so that a bad
//! field is reported by its JSON path before anything is created.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bundle {path}: {source}")]
    BundleDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config.json: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config.json: {field}: {message}")]
    Parse { field: String, message: String },
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A bundle directory with its parsed and checked config.json.
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem on the host.
    pub rootfs: PathBuf,
    /// mounts[i].uidMappings/gidMappings (runtime-spec 1.1, idmapped mounts),
    /// which the oci-spec types do not carry; empty when no mount has any.
    pub mount_idmaps: Vec<MountIdmap>,
}

/// The id mappings of one mount.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountIdmap {
    #[serde(default)]
    pub uid_mappings: Vec<LinuxIdMapping>,
    #[serde(default)]
    pub gid_mappings: Vec<LinuxIdMapping>,
}

impl MountIdmap {
    pub fn is_empty(&self) -> bool {
        self.uid_mappings.is_empty() && self.gid_mappings.is_empty()
    }
}

/// Reads mounts[].uidMappings/gidMappings; only when the document mentions id
/// mappings at all, so the common config is parsed once.
fn parse_mount_idmaps(bytes: &[u8]) -> Result<Vec<MountIdmap>, ConfigError> {
    // Cheap test first: without the word, no mount can have mappings.
    if !bytes.windows(8).any(|w| w == b"Mappings") {
        return Ok(Vec::new());
    }
    #[derive(serde::Deserialize)]
    struct Mounts {
        #[serde(default)]
        mounts: Vec<MountIdmap>,
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let m: Mounts =
        serde_path_to_error::deserialize(&mut de).map_err(|err| ConfigError::Parse {
            field: err.path().to_string(),
            message: err.into_inner().to_string(),
        })?;
    Ok(if m.mounts.iter().all(MountIdmap::is_empty) {
        Vec::new()
    } else {
        m.mounts
    })
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, ConfigError> {
        let dir = fs::canonicalize(dir).map_err(|source| ConfigError::BundleDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("config.json");
        let bytes = fs::read(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let t = crate::trace::phase("parse");
        let mut spec = parse(&bytes)?;
        bind_sources_from_bundle(&mut spec, &dir);
        drop(t);
        let _t = crate::trace::phase("validate");
        let rootfs = validate(&spec, &dir)?;
        let mount_idmaps = parse_mount_idmaps(&bytes)?;
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            mount_idmaps,
        })
    }
}

/// Bind mount sources given relative to the bundle (the runtime-spec allows
/// it) made absolute, as runc does: from then on a source is a path that
/// means the same to the runtime, to init, and to what opens it for a user
/// namespace (see rootfs::open_bind_sources).
fn bind_sources_from_bundle(spec: &mut Spec, bundle: &Path) {
    let Some(mounts) = spec.mounts_mut().as_mut() else {
        return;
    };
    for m in mounts.iter_mut() {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if let Some(source) = m.source().as_ref().filter(|s| bind && s.is_relative()) {
            let absolute = bundle.join(source);
            m.set_source(Some(absolute));
        }
    }
}

/// Parses config.json, naming the JSON path of the first field that does not
/// fit. Capability names this build does not know are left out with a
/// warning, as runc does (a newer kernel's capability in an image's config
/// should not stop it from running): only when the strict parse failed, so
/// the usual path parses once.
pub fn parse(bytes: &[u8]) -> Result<Spec, ConfigError> {
    match parse_strict(bytes) {
        Err(ConfigError::Parse { field, message })
            if field.starts_with("process.capabilities.") =>
        {
            without_unknown_capabilities(bytes)
                .unwrap_or(Err(ConfigError::Parse { field, message }))
        }
        other => other,
    }
}

/// config.json without the capability names oci-spec does not know, if
/// there were any.
fn without_unknown_capabilities(bytes: &[u8]) -> Option<Result<Spec, ConfigError>> {
    let mut doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let unknown = remove_unknown_capabilities(doc.pointer_mut("/process/capabilities")?);
    if unknown.is_empty() {
        return None;
    }
    crate::log::warn(&format!(
        "process.capabilities: ignoring unknown capabilities {}",
        unknown.join(", ")
    ));
    Some(parse_strict(&serde_json::to_vec(&doc).ok()?))
}

/// Takes the names oci-spec does not know out of a process's capability
/// sets (a JSON object of lists), returning them sorted, each once: what
/// runc ignores with a warning (config.json's, and exec's --process).
pub fn remove_unknown_capabilities(sets: &mut serde_json::Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let Some(sets) = sets.as_object_mut() else {
        return unknown;
    };
    for list in sets.values_mut().filter_map(|v| v.as_array_mut()) {
        list.retain(|name| {
            let known =
                serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
            if !known {
                unknown.push(name.to_string());
            }
            known
        });
    }
    unknown.sort();
    unknown.dedup();
    unknown
}

fn parse_strict(bytes: &[u8]) -> Result<Spec, ConfigError> {
    // The plain parse first: tracking the path costs an allocation per
    // field (~3 ms of the VM tier's create under TCG), and only a config
    // that does not parse needs it, parsed again to name the field.
    if let Ok(spec) = serde_json::from_slice(bytes) {
        return Ok(spec);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let field = if field == "." {
            "(document)".to_string()
        } else {
            field
        };
        ConfigError::Parse {
            field,
            message: inner.to_string(),
        }
    })
}

/// What the runtime-spec requires of a process: config.json's, and an
/// `exec`'d one's (its flags or --process file), as runc checks both.
pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<(), ConfigError> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(invalid("process.args", "must name a program to run")),
    }
    if !process.cwd().is_absolute() {
        return Err(invalid("process.cwd", "must be an absolute path"));
    }
    if let Some(env) = process.env() {
        // An empty KEY too: runc refuses it, and execve would pass it on.
        if let Some((i, _)) = env
            .iter()
            .enumerate()
            .find(|(_, e)| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
        {
            return Err(invalid(format!("process.env[{i}]"), "must be KEY=VALUE"));
        }
    }
    // runtime-spec: "If rlimits contains duplicated entries with same type,
    // the runtime MUST generate an error" (runc 1.1.5 applies each in turn).
    let rlimits = process.rlimits().as_deref().unwrap_or_default();
    for (i, r) in rlimits.iter().enumerate() {
        if rlimits[..i].iter().any(|earlier| earlier.typ() == r.typ()) {
            return Err(invalid(
                format!("process.rlimits[{i}].type"),
                format!(
                    "{} is listed twice",
                    serde_json::to_string(&r.typ()).unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// `path` with `.` and `..` resolved by name alone (as Go's
/// filepath.Clean), symlinks not followed.
fn lexically_clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Checks what the runtime-spec requires and what skiff needs, returning the
/// absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf, ConfigError> {
    // Any 1.x: the runtime-spec keeps compatibility within a major version.
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {version:?}: skiff runs 1.x bundles"),
        ));
    }

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "required"))?;
    let mut rootfs = bundle.join(root.path());
    // The rootfs by its real path: what the mount table says about what is
    // in it (--no-pivot's hiding of procfs and sysfs, among others) is
    // compared with it. The bundle is canonical already; "rootfs" itself,
    // one plain component that is no symlink, needs no more. A root.path
    // that is a symlink or passes through one is refused, as runc refuses
    // it ("not an absolute path, or a symlink"); ".." is taken lexically.
    let plain = root.path().components().count() == 1
        && matches!(
            root.path().components().next(),
            Some(std::path::Component::Normal(_))
        )
        && fs::symlink_metadata(&rootfs).is_ok_and(|m| !m.file_type().is_symlink());
    if !plain {
        if let Ok(real) = fs::canonicalize(&rootfs) {
            if real != lexically_clean(&rootfs) {
                return Err(invalid(
                    "root.path",
                    format!(
                        "{} is a symlink or passes through one (to {})",
                        rootfs.display(),
                        real.display()
                    ),
                ));
            }
            rootfs = real;
        }
    }
    match fs::metadata(&rootfs) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ))
        }
        Err(err) => return Err(invalid("root.path", format!("{}: {err}", rootfs.display()))),
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "required"))?;
    validate_process(process)?;

    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if m.destination().as_os_str().is_empty() {
                return Err(invalid(format!("mounts[{i}].destination"), "required"));
            }
        }
    }

    if let Some(hooks) = spec.hooks() {
        let lists: [(&str, &Option<Vec<Hook>>); 6] = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in lists {
            for (i, hook) in list.iter().flatten().enumerate() {
                if !hook.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{name}[{i}].path"),
                        "must be an absolute path",
                    ));
                }
                if matches!(hook.timeout(), Some(t) if t <= 0) {
                    return Err(invalid(
                        format!("hooks.{name}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }

    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.into_iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("{} is listed twice", crate::namespaces::ns_name(ns.typ())),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    "must be an absolute path",
                ));
            }
        }
    }
    let new_user = namespaces
        .into_iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if new_user {
        let l = linux.expect("namespaces come from linux");
        if l.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.uidMappings",
                "required with a new user namespace",
            ));
        }
        if l.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.gidMappings",
                "required with a new user namespace",
            ));
        }
    }
    // Offsets are written into a time namespace made for the container
    // (the kernel takes them only before a process lives in it), for the two
    // clocks it offsets; elsewhere the write would fail with a bare errno.
    if let Some(offsets) = linux
        .and_then(|l| l.time_offsets().as_ref())
        .filter(|o| !o.is_empty())
    {
        if let Some(clock) = offsets
            .keys()
            .find(|k| !matches!(k.as_str(), "monotonic" | "boottime"))
        {
            return Err(invalid(
                format!("linux.timeOffsets.{clock}"),
                "only monotonic and boottime are offset by a time namespace",
            ));
        }
        let time_ns = namespaces
            .into_iter()
            .flatten()
            .find(|ns| ns.typ() == LinuxNamespaceType::Time);
        match time_ns {
            None => {
                return Err(invalid(
                    "linux.timeOffsets",
                    "needs a time namespace (linux.namespaces has none)",
                ))
            }
            Some(ns) if ns.path().is_some() => {
                return Err(invalid(
                    "linux.timeOffsets",
                    "cannot be set for a time namespace joined by path",
                ))
            }
            Some(_) => {}
        }
    }
    crate::process::lsm::check(process, linux).map_err(|e| match e {
        crate::process::ProcessError::Attribute { field, source } => {
            invalid(field, source.to_string())
        }
        other => invalid("process", other.to_string()),
    })?;
    // runtime-spec: a file already at a device's path that is not the
    // device asked for MUST be an error; so is a path listed twice for two
    // different devices (the second would find the first there).
    let devices = linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    for (i, d) in devices.iter().enumerate() {
        let differs = |e: &&oci_spec::runtime::LinuxDevice| {
            e.path() == d.path()
                && (e.typ(), e.major(), e.minor()) != (d.typ(), d.major(), d.minor())
        };
        if let Some(first) = devices[..i].iter().find(differs) {
            return Err(invalid(
                format!("linux.devices[{i}].path"),
                format!(
                    "{} is listed before as another device ({:?} {}:{})",
                    d.path().display(),
                    first.typ(),
                    first.major(),
                    first.minor()
                ),
            ));
        }
        // The runtime makes the standard devices itself (the runtime-spec's
        // default devices), with the numbers Linux gives them: an entry may
        // change one's mode or owner, not which device it is (a /dev/null
        // that is not the null device would also be refused later, when
        // masked paths are bound to it).
        let path = clean(d.path());
        if let Some((major, minor)) = standard_device(&path) {
            let char_device = matches!(d.typ(), LinuxDeviceType::C | LinuxDeviceType::U);
            if !char_device || (d.major(), d.minor()) != (major as i64, minor as i64) {
                return Err(invalid(
                    format!("linux.devices[{i}]"),
                    format!(
                        "{} is the char device {major}:{minor} (a standard device the runtime \
                         makes); an entry for it may change its mode or owner, not make it {} {}:{}",
                        path.display(),
                        d.typ().as_str(),
                        d.major(),
                        d.minor()
                    ),
                ));
            }
        }
    }
    if linux.is_some_and(|l| l.intel_rdt().is_some()) {
        return Err(invalid(
            "linux.intelRdt",
            "not supported (no Intel RDT in skiff; features says so)",
        ));
    }
    if linux.is_some_and(|l| l.net_devices().as_ref().is_some_and(|d| !d.is_empty())) {
        return Err(invalid(
            "linux.netDevices",
            "moving host network devices into the container is not supported",
        ));
    }
    let private_mount = namespaces
        .into_iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::Mount && ns.path().is_none());
    if !private_mount {
        refuse_mount_changes(spec)?;
    }
    let private_uts = namespaces
        .into_iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::Uts);
    // Without one, sethostname/setdomainname would rename the host.
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !private_uts {
        return Err(invalid(
            "hostname",
            "needs a uts namespace in linux.namespaces",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|d| !d.is_empty()) && !private_uts {
        return Err(invalid(
            "domainname",
            "needs a uts namespace in linux.namespaces",
        ));
    }
    if let Some(sysctls) = linux.and_then(|l| l.sysctl().as_ref()) {
        let namespaces = namespaces.map(Vec::as_slice).unwrap_or_default();
        crate::sysctl::validate(sysctls, namespaces).map_err(|e| invalid(e.field, e.reason))?;
    }
    if let Some(prop) = linux.and_then(|l| l.rootfs_propagation().as_ref()) {
        if propagation_flag(prop).is_none() {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {prop:?}"),
            ));
        }
    }
    Ok(rootfs)
}

/// Without a mount namespace of its own (none in linux.namespaces, or one
/// joined by path) the container is still switched into its rootfs (chroot,
/// as runc does), but nothing that would change a mount table it shares
/// with the host or with another container is done: each such field is
/// refused, naming it (masked and read-only paths in runc's words; runc
/// makes the mounts in the host's table and leaves them there).
fn refuse_mount_changes(spec: &Spec) -> Result<(), ConfigError> {
    const WHY: &str = "needs a private mount namespace (linux.namespaces has no \"mount\" \
                       of its own): it would change a mount table shared with others";
    let linux = spec.linux().as_ref();
    let non_empty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    if non_empty(linux.and_then(|l| l.masked_paths().as_ref())) {
        return Err(invalid(
            "linux.maskedPaths",
            "unable to restrict sys entries without a private MNT namespace",
        ));
    }
    if non_empty(linux.and_then(|l| l.readonly_paths().as_ref())) {
        return Err(invalid(
            "linux.readonlyPaths",
            "unable to restrict sys entries without a private MNT namespace",
        ));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        return Err(invalid("root.readonly", WHY));
    }
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(invalid("mounts[0]", WHY));
    }
    if linux
        .and_then(|l| l.devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        return Err(invalid("linux.devices", WHY));
    }
    if linux
        .and_then(|l| l.rootfs_propagation().as_ref())
        .is_some()
    {
        return Err(invalid("linux.rootfsPropagation", WHY));
    }
    Ok(())
}

/// `path` made absolute with "." and ".." resolved by name (runc's
/// CleanPath), as a path in the container's root is.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(name) => out.push(name),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Maps linux.rootfsPropagation (and a mount's propagation option) to mount
/// flags.
pub fn propagation_flag(name: &str) -> Option<nix::mount::MsFlags> {
    use nix::mount::MsFlags;
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The standard devices the runtime makes in /dev (the runtime-spec's
/// default devices): name, major, minor, as Linux numbers them. rootfs
/// makes them; validation keeps a linux.devices entry at one of their
/// paths from changing which device it is.
pub const STANDARD_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The standard device at `path` (/dev/NAME): its major and minor.
fn standard_device(path: &Path) -> Option<(u64, u64)> {
    let name = path.strip_prefix("/dev").ok()?.to_str()?;
    STANDARD_DEVICES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, major, minor)| (*major, *minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_the_field() {
        let json =
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let err = parse(json).unwrap_err().to_string();
        assert!(err.contains("linux.namespaces[1].type"), "{err}");
    }

    #[test]
    fn exec_cpu_affinity_is_checked() {
        // oci-spec checks it with a regex (regex-lite stands in: vendor/regex).
        let ok = br#"{"ociVersion":"1.2.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"execCPUAffinity":{"initial":"0-1,3","final":"2"}}}"#;
        assert!(parse(ok).is_ok(), "{:?}", parse(ok).err());
        let bad = br#"{"ociVersion":"1.2.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"execCPUAffinity":{"initial":"0-a"}}}"#;
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("process.execCPUAffinity.initial"), "{err}");
    }

    #[test]
    fn unknown_capabilities_are_left_out_others_kept() {
        let json = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL","CAP_FOO"],"effective":["CAP_BAR"]}}}"#;
        let spec = parse(json).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.effective().as_ref().unwrap().is_empty());
        // Anything else wrong there still fails, naming the field.
        let bad = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":"CAP_KILL"}}}"#;
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("process.capabilities.bounding"), "{err}");
    }

    #[test]
    fn syntax_error_is_reported() {
        let err = parse(b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("config.json:"), "{err}");
    }

    #[test]
    fn version_must_be_1x() {
        let dir = std::env::temp_dir();
        let mut spec = Spec::default();
        spec.set_version("2.0.0".into());
        let err = validate(&spec, &dir).unwrap_err().to_string();
        assert!(err.contains("ociVersion"), "{err}");
    }
}
