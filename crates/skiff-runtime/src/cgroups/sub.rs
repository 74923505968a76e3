//! `exec --cgroup`: the process goes into groups the container made below
//! its own, as runc's flag puts it: `PATH` for every controller, or
//! `CTRL[,CTRL]:PATH` for some, each PATH relative to the container's group
//! ("/" is the group itself) and never above it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupRecord, Layout};

/// The parsed `--cgroup` arguments.
#[derive(Debug, Default, PartialEq)]
pub struct SubGroups {
    /// The path for every controller not named.
    all: Option<PathBuf>,
    by_controller: HashMap<String, PathBuf>,
}

fn bad(arg: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::SubGroup {
        arg: arg.to_string(),
        reason: reason.into(),
    }
}

/// The path below the container's group: relative, without "..".
fn below(arg: &str, path: &str) -> Result<PathBuf, CgroupError> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad(arg, format!("bad sub cgroup path: {path}")))
            }
        }
    }
    Ok(out)
}

impl SubGroups {
    pub fn parse(args: &[String]) -> Result<SubGroups, CgroupError> {
        let mut subs = SubGroups::default();
        for arg in args {
            match arg.split_once(':') {
                Some((controllers, path)) => {
                    let path = below(arg, path)?;
                    for c in controllers.split(',') {
                        if c.is_empty() {
                            return Err(bad(arg, "empty controller name"));
                        }
                        if subs
                            .by_controller
                            .insert(c.to_string(), path.clone())
                            .is_some()
                        {
                            return Err(bad(arg, format!("controller {c} named twice")));
                        }
                    }
                }
                None => {
                    if subs.all.is_some() {
                        return Err(bad(arg, "more than one path without a controller"));
                    }
                    subs.all = Some(below(arg, arg)?);
                }
            }
        }
        Ok(subs)
    }
}

impl CgroupRecord {
    /// This record with its groups replaced by the sub-groups `subs` names
    /// (each controller's, or the one for all); what nothing names stays.
    /// Whether they exist is for the join to find out.
    pub fn with_sub_groups(
        &self,
        layout: &Layout,
        subs: &SubGroups,
    ) -> Result<CgroupRecord, CgroupError> {
        let mut out = self.clone();
        let all = subs.all.as_deref();
        match layout {
            Layout::V2 { .. } => {
                if let Some(c) = subs.by_controller.keys().next() {
                    return Err(bad(
                        &format!("{c}:..."),
                        "cgroup v2 has one group for every controller: give a path alone",
                    ));
                }
                if let Some(sub) = all {
                    out.dirs = self.dirs.iter().map(|d| d.join(sub)).collect();
                }
            }
            Layout::V1 { hierarchies, .. } => {
                if let Some(c) = subs
                    .by_controller
                    .keys()
                    .find(|c| !hierarchies.iter().any(|h| h.has(c)))
                {
                    return Err(bad(c, format!("unknown controller {c}")));
                }
                out.dirs = self
                    .dirs
                    .iter()
                    .map(|d| {
                        let named = hierarchies
                            .iter()
                            .find(|h| d.starts_with(&h.mount))
                            .and_then(|h| {
                                h.controllers.iter().find_map(|c| subs.by_controller.get(c))
                            });
                        match named.map(PathBuf::as_path).or(all) {
                            Some(sub) => d.join(sub),
                            None => d.clone(),
                        }
                    })
                    .collect();
            }
        }
        if let (Some(v2), Some(sub)) = (&self.v2, all) {
            out.v2 = Some(v2.join(sub));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::layout::Hierarchy;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments_as_runc_takes_them() {
        let subs = SubGroups::parse(&s(&["memory:submem", "cpu,cpuacct:/subcpu"])).unwrap();
        assert_eq!(subs.by_controller["memory"], PathBuf::from("submem"));
        assert_eq!(subs.by_controller["cpuacct"], PathBuf::from("subcpu"));
        assert_eq!(
            SubGroups::parse(&s(&["/"])).unwrap().all,
            Some(PathBuf::new())
        );
        for bad in [
            &["../x"][..],
            &["a/../../b"],
            &["cpu:.."],
            &["a", "b"],
            &[":x"],
            &["cpu:a", "cpu:b"],
        ] {
            assert!(SubGroups::parse(&s(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_controller_gets_its_own_path() {
        let layout = Layout::V1 {
            hierarchies: vec![
                Hierarchy {
                    mount: "/cg/memory".into(),
                    controllers: s(&["memory"]),
                },
                Hierarchy {
                    mount: "/cg/cpu,cpuacct".into(),
                    controllers: s(&["cpu", "cpuacct"]),
                },
                Hierarchy {
                    mount: "/cg/pids".into(),
                    controllers: s(&["pids"]),
                },
            ],
            unified: None,
        };
        let rec = CgroupRecord {
            dirs: vec![
                "/cg/memory/c".into(),
                "/cg/cpu,cpuacct/c".into(),
                "/cg/pids/c".into(),
            ],
            procs_dir: "/cg/pids/c".into(),
            freezer: None,
            v2: None,
            v2_known: true,
            shared: false,
            unit: None,
        };
        let subs = SubGroups::parse(&s(&["memory:m", "cpu:x"])).unwrap();
        let out = rec.with_sub_groups(&layout, &subs).unwrap();
        assert_eq!(
            out.dirs,
            vec![
                PathBuf::from("/cg/memory/c/m"),
                "/cg/cpu,cpuacct/c/x".into(),
                "/cg/pids/c".into()
            ]
        );
        let unknown = SubGroups::parse(&s(&["whaaat:/"])).unwrap();
        let err = rec
            .with_sub_groups(&layout, &unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown controller whaaat"), "{err}");
    }
}
