//! linux.namespaces: new ones, joined ones, user namespace id maps, time offsets.

mod common;

use std::fs;
use std::process::Command;

use common::*;
use serde_json::json;

fn ns_link(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn new_namespaces_differ_from_the_host() {
    let env = TestEnv::new("nsnew");
    let out = env.run_sh(
        "n",
        "echo $$; for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup | head -1",
        |c| {
            add_ns(c, "cgroup");
        },
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "init is PID 1: {out}");
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let inside = lines.next().unwrap();
        assert!(inside.starts_with(kind), "{inside}");
        assert_ne!(
            inside,
            ns_link("self", kind),
            "{kind} namespace is the host's"
        );
    }
    // In its own cgroup namespace the container's group is the root.
    assert!(lines.next().unwrap().ends_with(":/"), "{out}");
}

struct NetNs(String);

impl NetNs {
    /// A named network namespace made by `ip netns add` (lo down), removed
    /// when dropped; its path.
    fn add(name: String) -> (NetNs, String) {
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        let path = format!("/var/run/netns/{name}");
        (NetNs(name), path)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn joins_a_network_namespace_by_path() {
    let env = TestEnv::new("nsjoin");
    let (_ns, path) = NetNs::add(format!("skt-ns-{}", std::process::id()));
    let want = format!(
        "net:[{}]",
        std::fs::metadata(&path)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap()
    );
    let hook_out = env.base.join("hook-netns");
    let out = env.run_sh("j", "readlink /proc/self/ns/net", |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(path);
            }
        }
        // The runtime's hooks run in the runtime's namespaces, not the joined one.
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("readlink /proc/self/ns/net > {}", hook_out.display())]}]});
    });
    assert_eq!(out.trim(), want);
    assert_eq!(
        read(&hook_out).trim(),
        ns_link("self", "net"),
        "a hook ran in the container's network namespace"
    );
}

/// `lo`'s flags and its IPv4 address, as the container's netlink sees them
/// (a bind-mounted /sys could show another namespace's).
const LOOPBACK: &str =
    "ip -o link show lo | grep -o '<[A-Z_,]*>'; ip -4 addr show lo | grep -o 'inet [0-9./]*' || true";

/// Whether the flags line printed by [`LOOPBACK`] has UP.
fn is_up(flags: &str) -> bool {
    flags.trim_matches(['<', '>']).split(',').any(|f| f == "UP")
}

#[test]
fn a_new_network_namespace_gets_loopback_up_a_joined_one_is_left_alone() {
    let env = TestEnv::new("nslo");
    // New, as root and as root of a new user namespace (which owns it).
    for (name, userns) in [("root", false), ("userns", true)] {
        let out = env.run_sh(name, LOOPBACK, |c| {
            if userns {
                add_ns(c, "user");
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            }
        });
        let mut lines = out.lines();
        assert!(is_up(lines.next().unwrap_or("")), "{name}: {out}");
        assert_eq!(lines.next(), Some("inet 127.0.0.1/8"), "{name}: {out}");
    }
    // Joined by path: its maker decides; `ip netns add` leaves lo down.
    let (_ns, path) = NetNs::add(format!("skt-nslo-{}", std::process::id()));
    let out = env.run_sh("joined", LOOPBACK, |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(path);
            }
        }
    });
    let flags = out.lines().next().unwrap_or("");
    assert!(flags.contains("LOOPBACK") && !is_up(flags), "{out}");
}

#[test]
fn user_namespace_maps_ids() {
    let env = TestEnv::new("userns");
    let mut b = env.bundle("b", &["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; echo ok > /tmp/w 2>&1 || true; sleep 1000"]);
    add_ns(&mut b.config, "user");
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    // Seen from the host, the container's root is uid 100000.
    let status = read(format!("/proc/{pid}/status"));
    assert!(
        status.contains("Uid:\t100000\t100000\t100000\t100000"),
        "{status}"
    );
    assert!(read(format!("/proc/{pid}/uid_map"))
        .split_whitespace()
        .eq(["0", "100000", "65536"]));
    assert_ne!(ns_link(&pid, "user"), ns_link("self", "user"));
    // Root of a new user namespace cannot write the host's cgroup files: the
    // runtime placed init in its groups, and exec's caller its child.
    let procs = read(default_group("pids", &id).join("cgroup.procs"));
    assert!(procs.lines().any(|l| l == pid), "{procs}");
    let exec_pid = env.exec_detached(&id, &["sleep", "1000"]);
    assert_eq!(
        read(format!("/proc/{exec_pid}/cgroup")),
        read(format!("/proc/{pid}/cgroup"))
    );
    env.ok(&["delete", "--force", &id]);
}

/// process.oomScoreAdj with a user namespace (Docker's `--userns-remap`
/// sends one with every container): init, root of the namespace and no
/// longer dumpable, may not open its own /proc files, so the runtime writes
/// it, as runc does before entering the namespace. (A value below the
/// lowest a privileged writer set takes CAP_SYS_RESOURCE, which this
/// machine's bounding set lacks: 100 below the caller's 200 is not that.)
#[test]
fn oom_score_adj_in_a_user_namespace() {
    let env = TestEnv::new("usernsoom");
    let mut b = env.bundle("b", &["cat", "/proc/self/oom_score_adj"]);
    add_ns(&mut b.config, "user");
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["process"]["oomScoreAdj"] = json!(100);
    b.write();
    // The caller's own value is higher: 100 is a lowering.
    let out = sh_ok(&format!(
        "echo 200 > /proc/self/oom_score_adj && exec {} --root {} run --bundle {} {}",
        skiff(),
        env.root.display(),
        b.path(),
        env.id("c")
    ));
    assert_eq!(out.trim(), "100");
}

#[test]
fn time_namespace_offsets() {
    let env = TestEnv::new("timens");
    let out = env.run_sh("t", "cut -d. -f1 /proc/uptime", |c| {
        add_ns(c, "time");
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
    });
    let up: u64 = out.trim().parse().unwrap();
    assert!(up >= 1_000_000, "uptime {up}");
    // In a user namespace mapped to ids other than the host's root (the
    // offsets were refused: init's /proc files belonged to the host's root).
    let out = env.run_sh("u", "cut -d. -f1 /proc/uptime", |c| {
        add_ns(c, "time");
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
    });
    let up: u64 = out.trim().parse().unwrap();
    assert!(up >= 1_000_000, "uptime {up} in a user namespace");
}

/// exec into a container with its own time namespace: the caller joins it
/// before the clone (it applies to children), and the child sees the offset.
#[test]
fn exec_into_a_time_namespace_sees_its_offsets() {
    let env = TestEnv::new("timens-exec");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    add_ns(&mut b.config, "time");
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let out = env.oci(&["exec", &id, "cut", "-d.", "-f1", "/proc/uptime"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(up >= 1_000_000, "uptime {up}");
    env.ok(&["delete", "--force", &id]);
}

/// Idmapped bind mounts: a host directory owned by uid/gid 1000 shows up as
/// root's, without chowning anything on the host; writes land as 1000. As in
/// runc, the mappings are those of the idmapping user namespace: an id on disk
/// in [containerID, containerID+size) is seen as the matching hostID.
#[test]
fn idmapped_mounts_map_file_owners() {
    use std::os::unix::fs::{chown, MetadataExt};
    let env = TestEnv::new("idmap");
    let shared = env.base.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("f"), "data").unwrap();
    chown(&shared, Some(1000), Some(1000)).unwrap();
    chown(shared.join("f"), Some(1000), Some(1000)).unwrap();

    // No user namespace: on-disk 1000 is seen as 0.
    let out = env.run_sh(
        "plain",
        "stat -c '%u:%g' /data/f; touch /data/new && stat -c '%u:%g' /data/new",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": shared, "options": ["bind"],
                "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
                "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
            }));
        },
    );
    assert_eq!(out, "0:0\n0:0\n");
    let meta = std::fs::metadata(shared.join("new")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (1000, 1000),
        "a write through the mount lands as 1000"
    );
    assert_eq!(
        std::fs::metadata(shared.join("f")).unwrap().uid(),
        1000,
        "nothing was chowned"
    );

    // In a user namespace (0 -> 100000): the mount maps 1000 to 100000, which
    // is the container's root.
    // (/var exists in the image: the container's root may not create /data.)
    let out = env.run_sh("userns", "stat -c '%u:%g' /var/f", |c| {
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/var", "type": "bind", "source": shared, "options": ["bind"],
            "uidMappings": [{"containerID": 1000, "hostID": 100000, "size": 1}],
            "gidMappings": [{"containerID": 1000, "hostID": 100000, "size": 1}],
        }));
    });
    assert_eq!(out, "0:0\n");
}

/// A bundle that runs `args` without a mount namespace of its own: the
/// mount namespace left out, or (`join`) joined by path; with nothing that
/// needs one (mounts, masked and read-only paths, a read-only root).
fn without_private_mount_ns(
    env: &TestEnv,
    name: &str,
    join: Option<&str>,
    args: &[&str],
) -> Bundle {
    let mut b = env.bundle(name, args);
    let list = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != "mount");
    if let Some(path) = join {
        list.push(json!({"type": "mount", "path": path}));
    }
    b.config["mounts"] = json!([]);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.config["root"]["readonly"] = json!(false);
    std::fs::write(b.rootfs().join("in-the-rootfs"), "").unwrap();
    b.write();
    b
}

/// Without a private mount namespace (none, or the host's joined by path)
/// the container still lives in its rootfs (chroot, as runc), never in the
/// host's root, and so does what `exec` starts in it; what would change the
/// shared mount table is refused, naming the field (masked paths in runc's
/// words). Before, `/` was the host's and masked paths were skipped.
#[test]
fn without_a_private_mount_namespace_the_root_is_still_the_rootfs() {
    let env = TestEnv::new("nomntns");
    // The host's mount namespace, as this test's process has it.
    let host = format!("/proc/{}/ns/mnt", std::process::id());
    for (n, join) in [None, Some(host.as_str())].into_iter().enumerate() {
        let b = without_private_mount_ns(&env, &format!("b{n}"), join, &["sh", "-c", "ls /; pwd"]);
        let (code, out, err) = env.run(&b, &env.id(&format!("c{n}")));
        assert_eq!(code, 0, "{join:?}: {out}{err}");
        assert!(
            out.contains("in-the-rootfs"),
            "{join:?}: / is not the rootfs: {out}"
        );
        assert!(
            !out.contains("boot"),
            "{join:?}: / looks like the host's: {out}"
        );

        let b = without_private_mount_ns(&env, &format!("e{n}"), join, &["sleep", "60"]);
        let id = env.id(&format!("e{n}"));
        env.ok(&["run", "-d", "--bundle", b.path(), &id]);
        let out = env.ok(&["exec", &id, "ls", "/"]);
        assert!(
            out.contains("in-the-rootfs"),
            "{join:?}: exec's / is not the rootfs: {out}"
        );
        env.ok(&["delete", "--force", &id]);

        // create + start: init parks on the exec fifo, reopened through the
        // host's /proc (the rootfs has none mounted).
        let id = env.id(&format!("cs{n}"));
        env.ok(&["create", "--bundle", b.path(), &id]);
        assert_eq!(env.status(&id), "created");
        env.ok(&["start", &id]);
        assert_eq!(env.status(&id), "running");
        env.ok(&["delete", "--force", &id]);
    }
    // What needs a private mount namespace is refused, and nothing is left.
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 4] = [
        ("linux.maskedPaths", |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/kcore"])
        }),
        ("linux.readonlyPaths", |c| {
            c["linux"]["readonlyPaths"] = json!(["/proc/sys"])
        }),
        ("root.readonly", |c| c["root"]["readonly"] = json!(true)),
        (
            "mounts[0]",
            |c| c["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]),
        ),
    ];
    for (n, (field, edit)) in edits.into_iter().enumerate() {
        let mut b = without_private_mount_ns(&env, &format!("r{n}"), None, &["true"]);
        edit(&mut b.config);
        b.write();
        let err = env.fails(&["run", "--bundle", b.path(), &env.id(&format!("r{n}"))]);
        assert!(err.contains(field), "{field}: {err}");
        assert!(env.container_dirs().is_empty(), "{field}: state left");
    }
    let mut b = env.bundle("masked", &["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    b.write();
    let err = env.fails(&["run", "--bundle", b.path(), &env.id("masked")]);
    assert!(
        err.contains("unable to restrict sys entries without a private MNT namespace"),
        "{err}"
    );
}

/// A process holding a user namespace with 0 mapped onto `host_id` (65536
/// ids), as containerd 2.x makes one for a pod with hostUsers: false;
/// killed on drop.
struct UserNs(std::process::Child);

impl UserNs {
    fn new(host_id: u32) -> UserNs {
        UserNs::made(host_id, false)
    }

    /// One whose `setgroups` says deny (as `unshare -r` and rootless
    /// tools leave it).
    fn setgroups_denied(host_id: u32) -> UserNs {
        UserNs::made(host_id, true)
    }

    fn made(host_id: u32, deny_setgroups: bool) -> UserNs {
        let holder = Command::new("unshare")
            .args(["--user", "sleep", "1000"])
            .spawn()
            .unwrap();
        let ns = UserNs(holder);
        let pid = ns.0.id();
        // Until unshare has made the namespace and exec'd sleep.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !read(format!("/proc/{pid}/cmdline")).starts_with("sleep") {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare never ran sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_ne!(ns_link(&pid.to_string(), "user"), ns_link("self", "user"));
        if deny_setgroups {
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny").unwrap();
        }
        for map in ["uid_map", "gid_map"] {
            std::fs::write(format!("/proc/{pid}/{map}"), format!("0 {host_id} 65536\n")).unwrap();
        }
        ns
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/user", self.0.id())
    }
}

impl Drop for UserNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A user namespace joined by path together with new pid, mount and other
/// namespaces (containerd 2.x's pods with hostUsers: false): init is pid 1
/// of a pid namespace that the joined user namespace owns, and runs as the
/// mapped root. runc does it with a two-stage clone; so does skiff (before,
/// create refused the combination).
#[test]
fn a_user_namespace_joined_by_path_owns_the_new_ones() {
    let env = TestEnv::new("usernsjoin");
    let userns = UserNs::new(300_000);
    let mut b = env.bundle("b", &["sleep", "1000"]);
    let list = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != "user");
    list.push(json!({"type": "user", "path": userns.path()}));
    // A bind source only the host's root may reach (as containerd's
    // sandbox /dev/shm): the runtime opens it for init.
    let private = env.base.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(private.join("note"), "host-only\n").unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/var", "type": "bind", "source": private, "options": ["rbind", "ro"]}));
    // ... and a file there, idmapped (containerd's /etc/hosts of such a pod):
    // a file, though init cannot look at its source's path.
    let map = json!([{"containerID": 0, "hostID": 300_000, "size": 65536}]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/group", "type": "bind", "source": private.join("note"),
        "options": ["rbind", "rprivate", "rw"], "uidMappings": map, "gidMappings": map}));
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let status = read(format!("/proc/{pid}/status"));
    assert!(
        status.contains("Uid:\t300000\t300000\t300000\t300000"),
        "{status}"
    );
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or("");
    assert!(
        nspid.split_whitespace().eq(["NSpid:", pid.as_str(), "1"]),
        "{status}"
    );
    assert_eq!(
        ns_link(&pid, "user"),
        ns_link(&userns.0.id().to_string(), "user")
    );
    assert_ne!(ns_link(&pid, "pid"), ns_link("self", "pid"));
    // Inside: /proc is the new pid namespace's (mounted with the joined
    // namespace's privileges), and exec joins the same namespaces.
    let out = env.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "tr '\\0' ' ' </proc/1/cmdline; echo; id -u; cat /proc/self/uid_map; grep -c ' /var ' /proc/self/mountinfo; cat /etc/group; stat -c %u /etc/group",
    ]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "sleep",
            "1000",
            "0",
            "0",
            "300000",
            "65536",
            "1",
            "host-only",
            "0"
        ],
        "{out}"
    );
    assert_eq!(read(format!("/proc/{pid}/root/var/note")), "host-only\n");
    env.ok(&["delete", "--force", &id]);
    assert!(!pid_alive(pid.parse().unwrap()));
}

/// A joined user namespace with setgroups denied: the process runs (no
/// setgroups call), and additional groups it cannot get are refused by
/// name, not dropped (runc's).
#[test]
fn a_joined_user_namespace_with_setgroups_denied() {
    let env = TestEnv::new("usernsdeny");
    let userns = UserNs::setgroups_denied(310_000);
    let mut b = env.bundle("b", &["sh", "-c", "id -u; id -G"]);
    let list = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != "user");
    list.push(json!({"type": "user", "path": userns.path()}));
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "0\n0\n");
    b.config["process"]["user"]["additionalGids"] = json!([5]);
    b.write();
    let (code, out, err) = env.run(&b, &env.id("g"));
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("additionalGids"), "{err}");
    assert!(env.container_dirs().is_empty());
}

/// exec into a container with a user namespace of its own that joined a
/// network namespace the host's user namespace owns (CNI's, as for
/// Kubernetes pods with hostUsers: false, or Podman's --uidmap): that one
/// is joined before the user namespace, the rest after (runc 1.1 joins the
/// user namespace first and fails with EPERM; runc 1.2 does this).
#[test]
fn exec_joins_a_host_owned_network_namespace_with_a_user_namespace() {
    let env = TestEnv::new("usernsnet");
    let (_ns, path) = NetNs::add(format!("skt-usernsnet-{}", std::process::id()));
    let mut b = env.bundle("b", &["sleep", "100"]);
    add_ns(&mut b.config, "user");
    let list = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != "network");
    list.push(json!({"type": "network", "path": path}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.write();
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    // The bind mount is no link: its inode is the namespace's.
    let want = format!(
        "net:[{}]",
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap())
    );
    let out = env.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; readlink /proc/self/ns/net; cat /proc/self/uid_map | tr -s ' '",
    ]);
    assert_eq!(out, format!("0\n{want}\n 0 100000 65536\n"));
    env.ok(&["delete", "-f", &id]);
}
