//! Which cgroup layout the host has, read from /proc/self/mountinfo.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// One mounted v1 hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// Controllers bound to it ("cpu", "cpuacct", ...) and named hierarchies
    /// ("name=systemd").
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directory name runc and systemd use for it (cpu,cpuacct; systemd).
    pub fn dir_name(&self) -> String {
        self.mount
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.controllers.join(","))
    }
}

#[derive(Debug, Clone)]
pub enum Layout {
    /// One unified v2 tree.
    V2 { root: PathBuf },
    /// v1 hierarchies, plus (hybrid) a cgroup2 mount without controllers.
    V1 {
        hierarchies: Vec<Hierarchy>,
        unified: Option<PathBuf>,
    },
}

/// Mount options that are not controller names.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "nosuid",
    "nodev",
    "noexec",
    "relatime",
    "noatime",
    "clone_children",
    "noprefix",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

impl Layout {
    pub fn detect() -> Result<Layout, CgroupError> {
        // Most hosts have one cgroup2 tree at /sys/fs/cgroup: one statfs
        // says so, where the mount table of a busy node can run to hundreds
        // of kilobytes (systemd and crun decide the same way).
        let unified = Path::new("/sys/fs/cgroup");
        if nix::sys::statfs::statfs(unified)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        {
            return Ok(Layout::V2 {
                root: unified.to_path_buf(),
            });
        }
        let text = crate::procfs::read("/proc/self/mountinfo")
            .map_err(|e| CgroupError::Detect(format!("reading /proc/self/mountinfo: {e}")))?;
        Ok(Self::parse(&text))
    }

    fn parse(mountinfo: &str) -> Layout {
        let mut found: Vec<((bool, bool), Hierarchy)> = Vec::new();
        let mut v2: Option<((bool, bool), PathBuf)> = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut r = right.split(' ');
            let (fstype, _source, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
            if !matches!(fstype, Some("cgroup" | "cgroup2")) {
                continue;
            }
            let mut fields = left.split(' ');
            let (root, mount) = match (fields.nth(3), fields.next()) {
                (Some(root), Some(m)) => (root, crate::procfs::unescape_mountinfo(m)),
                _ => continue,
            };
            // Where a hierarchy is mounted more than once, the mount of its
            // root under /sys/fs/cgroup is it; a bind of one group (what a
            // runtime left in the host's table) only where there is nothing
            // better (a host-namespaced container's own /sys/fs/cgroup).
            let rank = (root == "/", mount.starts_with("/sys/fs/cgroup"));
            match fstype {
                Some("cgroup2") if v2.as_ref().is_none_or(|(r, _)| rank > *r) => {
                    v2 = Some((rank, mount));
                }
                Some("cgroup") => {
                    let controllers: Vec<String> = opts
                        .split(',')
                        .filter(|o| {
                            !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    match found.iter_mut().find(|(_, h)| h.controllers == controllers) {
                        Some((r, h)) if rank > *r => {
                            *r = rank;
                            h.mount = mount;
                        }
                        Some(_) => {}
                        None => found.push((rank, Hierarchy { mount, controllers })),
                    }
                }
                _ => {}
            }
        }
        let hierarchies: Vec<Hierarchy> = found.into_iter().map(|(_, h)| h).collect();
        let v2 = v2.map(|(_, m)| m);
        if hierarchies.is_empty() {
            Layout::V2 {
                root: v2.unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup")),
            }
        } else {
            Layout::V1 {
                hierarchies,
                unified: v2,
            }
        }
    }

    /// This process's own group in a hierarchy (None: the v2 tree), from
    /// `own` (the text of /proc/self/cgroup); relative cgroupsPath values are
    /// resolved below it.
    pub fn current(own: &str, hierarchy: Option<&Hierarchy>) -> String {
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_id, ctrls, path) = (parts.next(), parts.next(), parts.next());
            let (Some(ctrls), Some(path)) = (ctrls, path) else {
                continue;
            };
            let matches = match hierarchy {
                None => ctrls.is_empty(),
                Some(h) => !ctrls.is_empty() && ctrls.split(',').all(|c| h.has(c)),
            };
            if matches {
                return path.to_string();
            }
        }
        "/".to_string()
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_is_v1_with_unified() {
        match Layout::parse(HYBRID) {
            Layout::V1 {
                hierarchies,
                unified,
            } => {
                assert_eq!(hierarchies.len(), 3);
                assert!(hierarchies[0].has("cpu"));
                assert!(hierarchies[2].has("name=systemd"));
                assert_eq!(unified.unwrap(), PathBuf::from("/sys/fs/cgroup/unified"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A hierarchy mounted twice (the second first in the table, as a
    /// runtime's leftovers can be) and a bind of one group: the mount under
    /// /sys/fs/cgroup is the hierarchy, the bind is none.
    #[test]
    fn other_mounts_of_a_hierarchy_are_not_it() {
        let table = format!(
            "40 25 0:27 / /tmp/b/rootfs/sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             41 25 0:28 /c1 /tmp/b/rootfs/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n{HYBRID}"
        );
        match Layout::parse(&table) {
            Layout::V1 { hierarchies, .. } => {
                assert_eq!(hierarchies.len(), 3, "{hierarchies:?}");
                assert!(
                    hierarchies
                        .iter()
                        .all(|h| h.mount.starts_with("/sys/fs/cgroup")),
                    "{hierarchies:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// In a container sharing the host's cgroup namespace every hierarchy is
    /// a bind of a group: those are then the hierarchies.
    #[test]
    fn binds_count_where_there_is_nothing_else() {
        let table = "31 30 0:27 /docker/x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                     32 30 0:28 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        match Layout::parse(table) {
            Layout::V1 { hierarchies, .. } => assert_eq!(hierarchies.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pure_v2() {
        let l = Layout::parse("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert!(l.is_v2());
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(
            crate::procfs::unescape_mountinfo("/a\\040b"),
            PathBuf::from("/a b")
        );
    }
}
