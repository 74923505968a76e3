//! `--uidmap`, `--gidmap` and `--userns`: a container in a user namespace
//! of its own, its root some unprivileged host id, as Podman's. The
//! image's files are shared with every other container: the overlay's
//! lower layers are seen through an idmapped mount (host root's files are
//! the container root's, as containerd's user-namespaced pods see them),
//! and only the container's own upper directory is given to its root.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use serde_json::{json, Value};
use skiff_image::{Error, Result};

/// Ids `container..container+size` are host ids `host..host+size`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// A container's uid and gid maps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdMaps {
    pub uid: Vec<Range>,
    pub gid: Vec<Range>,
}

/// What the flags ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Userns {
    /// These maps.
    Maps(IdMaps),
    /// `--userns auto[:size=N]`: a free range of /etc/subuid's and
    /// /etc/subgid's `containers` entry, chosen at create.
    Auto { size: u32 },
}

/// Podman's `auto` size when none is given.
const AUTO_SIZE: u32 = 65536;

/// The flags, checked: None for the host's user namespace (the default).
pub fn parse(
    userns: Option<&str>,
    uid: &[String],
    gid: &[String],
) -> std::result::Result<Option<Userns>, String> {
    let maps = |flag: &str, given: &[String]| -> std::result::Result<Vec<Range>, String> {
        let list = given
            .iter()
            .map(|m| range(flag, m))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        check_overlaps(flag, &list)?;
        Ok(list)
    };
    let (uid, gid) = (maps("--uidmap", uid)?, maps("--gidmap", gid)?);
    let mode = userns.unwrap_or("");
    if !uid.is_empty() || !gid.is_empty() {
        if !matches!(mode, "" | "private") {
            return Err(format!(
                "--userns {mode:?} with --uidmap/--gidmap: give one or the other"
            ));
        }
        // One map given: the other is the same (Podman's).
        let (uid, gid) = match (uid.is_empty(), gid.is_empty()) {
            (true, _) => (gid.clone(), gid),
            (_, true) => (uid.clone(), uid),
            _ => (uid, gid),
        };
        return Ok(Some(Userns::Maps(IdMaps { uid, gid })));
    }
    match mode {
        "" | "host" => Ok(None),
        "auto" => Ok(Some(Userns::Auto { size: AUTO_SIZE })),
        m if m.starts_with("auto:") => {
            let mut size = AUTO_SIZE;
            for opt in m["auto:".len()..].split(',') {
                match opt.split_once('=') {
                    Some(("size", n)) => {
                        size = n
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("--userns {m:?}: size is a number of ids"))?
                    }
                    _ => return Err(format!("--userns {m:?}: auto takes size=N")),
                }
            }
            Ok(Some(Userns::Auto { size }))
        }
        "keep-id" | "nomap" => Err(format!(
            "--userns {mode}: a rootless engine's mode (its user's own id kept); as root use --uidmap or auto"
        )),
        m => Err(format!(
            "--userns {m:?}: host, auto[:size=N], or --uidmap CONTAINER:HOST:SIZE"
        )),
    }
}

/// `CONTAINER:HOST:SIZE`.
fn range(flag: &str, text: &str) -> std::result::Result<Range, String> {
    let n: Vec<Option<u32>> = text.split(':').map(|p| p.parse().ok()).collect();
    match n.as_slice() {
        [Some(container), Some(host), Some(size)]
            if *size > 0
                && container.checked_add(*size).is_some()
                && host.checked_add(*size).is_some() =>
        {
            Ok(Range {
                container: *container,
                host: *host,
                size: *size,
            })
        }
        _ => Err(format!(
            "{flag} {text:?}: CONTAINER:HOST:SIZE, numbers, SIZE at least 1"
        )),
    }
}

/// The kernel refuses a map whose ranges overlap, on either side.
fn check_overlaps(flag: &str, list: &[Range]) -> std::result::Result<(), String> {
    let apart = |a: u32, b: u32, size_a: u32, size_b: u32| a + size_a <= b || b + size_b <= a;
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            if !apart(a.container, b.container, a.size, b.size)
                || !apart(a.host, b.host, a.size, b.size)
            {
                return Err(format!("{flag}: the ranges of {a:?} and {b:?} overlap"));
            }
        }
    }
    Ok(())
}

impl IdMaps {
    /// The host's ids of container ids `uid` and `gid` (None: unmapped).
    pub fn host_ids(&self, uid: u32, gid: u32) -> (Option<u32>, Option<u32>) {
        let find = |list: &[Range], id: u32| {
            list.iter()
                .find(|r| id >= r.container && id - r.container < r.size)
                .map(|r| r.host + (id - r.container))
        };
        (find(&self.uid, uid), find(&self.gid, gid))
    }

    /// The container's ids of host ids `uid` and `gid`; an id the maps
    /// do not reach reads as the overflow id, 65534 (as the kernel shows
    /// it in the container).
    pub fn container_ids(&self, uid: u64, gid: u64) -> (u64, u64) {
        let find = |list: &[Range], id: u64| {
            list.iter()
                .find(|r| id >= r.host as u64 && id - (r.host as u64) < r.size as u64)
                .map_or(65534, |r| r.container as u64 + (id - r.host as u64))
        };
        (find(&self.uid, uid), find(&self.gid, gid))
    }

    /// linux.uidMappings and gidMappings.
    pub fn to_spec(&self) -> (Value, Value) {
        let list = |l: &[Range]| {
            l.iter()
                .map(|r| json!({"containerID": r.container, "hostID": r.host, "size": r.size}))
                .collect::<Vec<_>>()
        };
        (json!(list(&self.uid)), json!(list(&self.gid)))
    }

    /// Podman's inspect form, `CONTAINER:HOST:SIZE` each.
    pub fn texts(list: &[Range]) -> Vec<String> {
        list.iter()
            .map(|r| format!("{}:{}:{}", r.container, r.host, r.size))
            .collect()
    }

    fn oci(list: &[Range]) -> Result<Vec<LinuxIdMapping>> {
        list.iter()
            .map(|r| {
                LinuxIdMappingBuilder::default()
                    .container_id(r.container)
                    .host_id(r.host)
                    .size(r.size)
                    .build()
                    .map_err(|e| Error::invalid(format!("an id map: {e}")))
            })
            .collect()
    }
}

/// `--userns auto`: the first `size` ids of the `containers` entries of
/// /etc/subuid and /etc/subgid that none of `taken` (the maps of the
/// store's other containers) covers (Podman's rule, as root).
pub fn auto(taken: &[IdMaps], size: u32) -> Result<IdMaps> {
    let pick = |file: &str, uid: bool| -> Result<Range> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let ranges: Vec<(u32, u32)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                (f.next()? == "containers").then_some(())?;
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .collect();
        if ranges.is_empty() {
            return Err(Error::invalid(format!(
                "--userns auto: {file} has no range for the user \"containers\" (add e.g. containers:2147483647:2147483648)"
            )));
        }
        let used: Vec<Range> = taken
            .iter()
            .flat_map(|m| if uid { m.uid.clone() } else { m.gid.clone() })
            .collect();
        if let Some(r) = first_free(&ranges, &used, size) {
            return Ok(r);
        }
        Err(Error::invalid(format!(
            "--userns auto: no {size} ids of {file}'s \"containers\" ranges are free"
        )))
    };
    Ok(IdMaps {
        uid: vec![pick("/etc/subuid", true)?],
        gid: vec![pick("/etc/subgid", false)?],
    })
}

/// The first `size` host ids of `ranges` ((start, count) each) that none
/// of `used` covers, for container ids from 0.
fn first_free(ranges: &[(u32, u32)], used: &[Range], size: u32) -> Option<Range> {
    let size = size as u64;
    for &(start, count) in ranges {
        let (mut at, end) = (start as u64, start as u64 + count as u64);
        while at + size <= end {
            let clash = used
                .iter()
                .find(|r| (r.host as u64) < at + size && at < r.host as u64 + r.size as u64);
            match clash {
                None => {
                    return Some(Range {
                        container: 0,
                        host: at as u32,
                        size: size as u32,
                    })
                }
                Some(r) => at = r.host as u64 + r.size as u64,
            }
        }
    }
    None
}

/// A container's maps, from its config.
pub fn read_maps(config: &Path) -> Option<IdMaps> {
    let v: Value = serde_json::from_slice(&std::fs::read(config).ok()?).ok()?;
    maps_in(&v)
}

/// The maps a container's config (read already) gives its user namespace
/// of its own; None without one.
pub fn maps_in(v: &Value) -> Option<IdMaps> {
    let list = |key: &str| -> Vec<Range> {
        v["linux"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(Range {
                    container: m["containerID"].as_u64()? as u32,
                    host: m["hostID"].as_u64()? as u32,
                    size: m["size"].as_u64()? as u32,
                })
            })
            .collect()
    };
    let maps = IdMaps {
        uid: list("uidMappings"),
        gid: list("gidMappings"),
    };
    (!maps.uid.is_empty()).then_some(maps)
}

/// The image's layers as `target`'s overlay, seen through `maps`: the
/// layers' common parent cloned, read-only and idmapped, at
/// `dir/layers.idmapped` while the overlay is made (the overlay keeps its
/// own references to them), and the upper directory given to the
/// container's root.
pub fn mount_rootfs(
    store: &skiff_image::Store,
    image_id: &str,
    dir: &Path,
    target: &Path,
    maps: &IdMaps,
) -> Result<()> {
    let what = |step: &str| format!("--uidmap: {step} for {}", target.display());
    let layers = skiff_image::mount::lower_dirs(store, image_id)?;
    let userns = skiff_runtime::rootfs::idmap::userns_with(
        &IdMaps::oci(&maps.uid)?,
        &IdMaps::oci(&maps.gid)?,
    )
    .map_err(|e| Error::io(what("a user namespace with the maps"), e))?;
    let view = dir.join("layers.idmapped");
    let lowers = match common_parent(&layers) {
        Some(common) => {
            std::fs::create_dir_all(&view).map_err(|e| Error::at(&view, "making", e))?;
            let attached = (|| {
                const MOUNT_ATTR_RDONLY: u64 = 0x1;
                let tree = skiff_runtime::sys::open_tree_clone(&common, true)?;
                skiff_runtime::sys::mount_setattr(tree.as_fd(), true, MOUNT_ATTR_RDONLY, 0, None)?;
                skiff_runtime::sys::set_idmap(tree.as_fd(), userns.as_fd(), true)?;
                let at = std::fs::File::open(&view)?;
                skiff_runtime::sys::move_mount_to(tree.as_fd(), at.as_fd())
            })();
            attached.map_err(|e| Error::io(what("idmapping the image's layers"), e))?;
            layers
                .iter()
                .map(|l| view.join(l.strip_prefix(&common).unwrap_or(l)))
                .collect()
        }
        None => Vec::new(),
    };
    // The upper directory is the container root's before the overlay is
    // made (the overlay's root takes its owner then).
    let (uid, gid) = maps.host_ids(0, 0);
    let upper = dir.join("upper");
    let given = std::fs::create_dir_all(&upper)
        .and_then(|()| std::os::unix::fs::chown(&upper, uid, gid))
        .map_err(|e| Error::at(&upper, "giving the container's root", e));
    let mounted = given.and_then(|()| {
        skiff_image::mount::mount_layers(lowers, dir, target)
            .map_err(|e| Error::io(what("mounting the overlay"), e))
    });
    let _ = rustix::mount::unmount(&view, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_dir(&view);
    mounted
}

/// The deepest directory every layer lies under (never `/`).
fn common_parent(layers: &[PathBuf]) -> Option<PathBuf> {
    let first = layers.first()?.parent()?;
    let common = first
        .ancestors()
        .find(|a| layers.iter().all(|l| l.starts_with(a)))?;
    (common.components().count() > 1).then(|| common.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_podmans() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse(None, &[], &[]).unwrap(), None);
        assert_eq!(parse(Some("host"), &[], &[]).unwrap(), None);
        let Some(Userns::Maps(m)) = parse(None, &s(&["0:100000:65536"]), &[]).unwrap() else {
            panic!("maps")
        };
        assert_eq!(m.uid, m.gid);
        assert_eq!(m.host_ids(0, 5), (Some(100000), Some(100005)));
        assert_eq!(m.host_ids(65536, 0).0, None);
        assert_eq!(
            parse(Some("auto:size=1024"), &[], &[]).unwrap(),
            Some(Userns::Auto { size: 1024 })
        );
        for (ns, uid) in [
            (None, vec!["0:1"]),
            (None, vec!["0:1:0"]),
            (None, vec!["0:100:10", "5:300:10"]),
            (None, vec!["0:100:10", "20:105:10"]),
            (Some("auto"), vec!["0:1:1"]),
            (Some("keep-id"), vec![]),
            (Some("auto:size=x"), vec![]),
            (Some("ns:/proc/1/ns/user"), vec![]),
        ] {
            assert!(parse(ns, &s(&uid), &[]).is_err(), "{ns:?} {uid:?}");
        }
    }

    #[test]
    fn auto_takes_the_first_free_ids() {
        let r = |host, size| Range {
            container: 0,
            host,
            size,
        };
        let ranges = [(1000, 300), (5000, 1000)];
        assert_eq!(first_free(&ranges, &[], 100), Some(r(1000, 100)));
        assert_eq!(
            first_free(&ranges, &[r(1000, 100)], 100),
            Some(r(1100, 100))
        );
        // Past one in the way, then into the next range when this is full.
        assert_eq!(first_free(&ranges, &[r(1050, 10)], 100), Some(r(1060, 100)));
        assert_eq!(
            first_free(&ranges, &[r(1000, 250)], 100),
            Some(r(5000, 100))
        );
        assert_eq!(first_free(&ranges, &[r(5000, 1000), r(1000, 300)], 1), None);
        assert_eq!(first_free(&ranges, &[], 2000), None);
    }
}
