//! Root filesystem: mounts in order with their options, /dev, masked and
//! read-only paths, read-only root, pivot_root and --no-pivot, and mount
//! destinations that try to leave the rootfs through a symlink.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::*;
use serde_json::json;

#[test]
fn mounts_apply_their_options() {
    let env = TestEnv::new("mounts");
    let host_dir = env.base.join("shared");
    fs::create_dir_all(&host_dir).unwrap();
    fs::write(host_dir.join("f"), "from-host").unwrap();
    let out = env.run_sh(
        "m",
        "grep -E ' /data | /scratch ' /proc/self/mountinfo; cat /data/f; touch /data/x 2>&1 || echo ro-ok; \
         touch /scratch/y && echo tmpfs-rw-ok; stat -c %a /scratch",
        |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro", "nosuid"]}));
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nodev", "noexec", "mode=1770", "size=1m"]}));
        },
    );
    let data = out.lines().find(|l| l.contains(" /data ")).expect(&out);
    assert!(data.contains(" ro,") && data.contains("nosuid"), "{data}");
    let scratch = out.lines().find(|l| l.contains(" /scratch ")).expect(&out);
    assert!(
        scratch.contains("nodev") && scratch.contains("noexec") && scratch.contains("size=1024k"),
        "{scratch}"
    );
    assert!(out.contains("from-host"));
    assert!(out.contains("ro-ok"));
    assert!(out.contains("tmpfs-rw-ok"));
    assert!(out.trim_end().ends_with("1770"), "{out}");
    assert!(!host_dir.join("x").exists());
}

#[test]
fn symlinked_destination_stays_inside_the_rootfs() {
    let env = TestEnv::new("escape");
    let target = env.base.join("host-target");
    fs::create_dir_all(&target).unwrap();
    let mut b = env.bundle("b", &["sh", "-c", "mount | grep -c evil-mount; ls /escape"]);
    // An image with a symlink to a host path, used as a mount destination.
    symlink(&target, b.rootfs().join("escape")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/escape/evil-mount", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    // The mount landed inside the rootfs (at rootfs/<target path>), never on the host.
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    assert!(b
        .rootfs()
        .join(target.strip_prefix("/").unwrap())
        .join("evil-mount")
        .is_dir());
    assert!(host_mounts("evil-mount").is_empty());
}

#[test]
fn dev_has_standard_devices_links_and_configured_devices() {
    let env = TestEnv::new("dev");
    let out = env.run_sh(
        "d",
        "stat -c '%n %t:%T %a %F' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/skiff-null; \
         readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx; echo x > /dev/null && echo null-ok; ls /dev/pts/ptmx",
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/skiff-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 0}]);
        },
    );
    for want in [
        "/dev/null 1:3 666",
        "/dev/zero 1:5",
        "/dev/full 1:7",
        "/dev/urandom 1:9",
        "/dev/tty 5:0",
        "/dev/skiff-null 1:3 640",
    ] {
        assert!(out.contains(want), "{want} missing in {out}");
    }
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx"),
        "{out}"
    );
    assert!(out.contains("null-ok"));
}

/// Nodes are made with the umask cleared and chowned only where the owner
/// differs: modes and owners come out exact under any caller umask, also in
/// a set-group-ID /dev (whose group new nodes would take). The program then
/// starts with 0022 (no process.user.umask here), as runc's and crun's do.
#[test]
fn device_modes_and_owners_are_exact_under_a_strict_umask() {
    let env = TestEnv::new("devumask");
    let mut b = env.bundle(
        "u",
        &[
            "sh",
            "-c",
            "stat -c '%n %a %u:%g' /dev/null /dev/tty /dev/skiff-owned; umask",
        ],
    );
    b.config["linux"]["devices"] = json!([{"path": "/dev/skiff-owned", "type": "c", "major": 1, "minor": 3, "fileMode": 0o660, "uid": 1234, "gid": 2345}]);
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"] = json!(["nosuid", "strictatime", "mode=2755", "gid=5", "size=65536k"]);
        }
    }
    b.write();
    let text = env.run_under(&["sh", "-c", "umask 077; exec \"$0\" \"$@\""], &b, "u");
    assert_eq!(
        text,
        "/dev/null 666 0:0\n/dev/tty 666 0:0\n/dev/skiff-owned 660 1234:2345\n0022\n"
    );
}

#[test]
fn masked_and_readonly_paths_and_readonly_root() {
    let env = TestEnv::new("masked");
    let out = env.run_sh(
        "m",
        "stat -c '%t:%T' /proc/keys; ls /proc/acpi 2>/dev/null | wc -l; grep ' /proc/acpi ' /proc/self/mountinfo; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro; touch /newfile 2>/dev/null || echo root-ro",
        |c| {
            c["root"]["readonly"] = json!(true);
        },
    );
    assert!(
        out.starts_with("1:3\n"),
        "/proc/keys not masked with /dev/null: {out}"
    );
    let acpi = out
        .lines()
        .find(|l| l.contains(" /proc/acpi "))
        .expect(&out);
    assert!(acpi.contains(" ro") && acpi.contains("tmpfs"), "{acpi}");
    assert!(out.contains("sys-ro"));
    assert!(out.contains("root-ro"));
}

#[test]
fn pivot_root_hides_the_host_and_no_pivot_works() {
    let env = TestEnv::new("pivot");
    let script = "ls / | tr '\\n' ' '; echo; awk '{print $5}' /proc/self/mountinfo";
    for no_pivot in [false, true] {
        let name = if no_pivot { "np" } else { "p" };
        let b = env.bundle(name, &["sh", "-c", script]);
        let id = env.id(name);
        let mut args = vec!["run", "--bundle", b.path()];
        if no_pivot {
            args.push("--no-pivot");
        }
        args.push(&id);
        let out = env.oci(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The container sees its own root, not the host's (no /work, no /home).
        assert!(
            stdout.contains("usr") && !stdout.contains("work") && !stdout.contains("home"),
            "{stdout}"
        );
        // Only the container's own mounts: none of the host's is left over.
        for mp in stdout.lines().skip(1) {
            assert!(
                mp == "/" || ["/proc", "/dev", "/sys"].iter().any(|p| mp.starts_with(p)),
                "host mount {mp} visible in the container"
            );
        }
    }
}

#[test]
fn rootfs_propagation_and_hostname() {
    let env = TestEnv::new("prop");
    let out = env.run_sh(
        "h",
        "hostname; awk '$5 == \"/\"' /proc/self/mountinfo",
        |c| {
            c["hostname"] = json!("skiff-box");
            c["linux"]["rootfsPropagation"] = json!("private");
        },
    );
    assert!(out.starts_with("skiff-box\n"), "{out}");
    let root = out.lines().nth(1).unwrap();
    assert!(
        !root.contains("shared:") && !root.contains("master:"),
        "{root}"
    );
}

#[test]
fn no_mount_leaks_to_the_host() {
    let env = TestEnv::new("nomountleak");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    assert!(
        host_mounts(b.path()).is_empty(),
        "container mounts visible on the host"
    );
    env.ok(&["delete", "--force", &id]);
    assert!(host_mounts(b.path()).is_empty());
}

/// Unmounts the host mount at `.0` when dropped, also when the test fails.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// `rro`, `rnosuid`, `rnodev`, `rnoexec` reach the mounts below an `rbind`
/// too (mount_setattr with AT_RECURSIVE), where `ro` and friends stop at the
/// top: a host tree with a submount stays read-only all the way down.
#[test]
fn recursive_options_reach_submounts() {
    let env = TestEnv::new("rro");
    let host_dir = env.base.join("tree");
    let sub = host_dir.join("sub");
    fs::create_dir_all(&sub).unwrap();
    assert!(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "skt-rro"])
        .arg(&sub)
        .status()
        .unwrap()
        .success());
    let _sub = HostMount(sub.clone());
    let out = env.run_sh(
        "m",
        "grep -E ' /data(/sub)? ' /proc/self/mountinfo | cut -d' ' -f5,6; \
         touch /data/x 2>/dev/null || echo top-ro; touch /data/sub/y 2>/dev/null || echo sub-ro",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": host_dir,
                "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "nosymfollow"]
            }));
        },
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("/data")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    // nosymfollow is a flag of the top mount only.
    assert!(lines[0].contains("nosymfollow"), "{out}");
    for l in &lines {
        let opts: Vec<&str> = l.split_whitespace().nth(1).unwrap().split(',').collect();
        for want in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(opts.contains(&want), "{want} missing: {l}");
        }
    }
    assert!(out.contains("top-ro") && out.contains("sub-ro"), "{out}");
    assert!(!host_dir.join("x").exists() && !sub.join("y").exists());
}

/// `tmpcopyup` (Podman's default for --tmpfs): the tmpfs starts with the
/// image directory's contents, owners, modes and symlinks; writes stay in
/// the tmpfs. With `ro` it is filled first, then read-only.
#[test]
fn tmpcopyup_fills_the_tmpfs_from_the_image() {
    use std::os::unix::fs::{chown, PermissionsExt};
    let env = TestEnv::new("copyup");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "grep -c ' /opt/seed .* tmpfs ' /proc/self/mountinfo; cat /opt/seed/file /opt/seed/d/inner; \
             stat -c '%u %g %a' /opt/seed/file; readlink /opt/seed/link; echo new > /opt/seed/new && cat /opt/seed/new; \
             grep ' /ro ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1; cat /ro/file; touch /ro/x 2>/dev/null || echo ro-ok",
        ],
    );
    let seed = b.rootfs().join("opt/seed");
    fs::create_dir_all(seed.join("d")).unwrap();
    fs::write(seed.join("file"), "seeded\n").unwrap();
    fs::write(seed.join("d/inner"), "inner\n").unwrap();
    chown(seed.join("file"), Some(1000), Some(1001)).unwrap();
    fs::set_permissions(seed.join("file"), fs::Permissions::from_mode(0o604)).unwrap();
    symlink("file", seed.join("link")).unwrap();
    fs::create_dir_all(b.rootfs().join("ro")).unwrap();
    fs::write(b.rootfs().join("ro/file"), "ro-seeded\n").unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/opt/seed", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "size=1m"]}));
    mounts.push(json!({"destination": "/ro", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "ro"]}));
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "1",
            "seeded",
            "inner",
            "1000 1001 604",
            "file",
            "new",
            "ro",
            "ro-seeded",
            "ro-ok"
        ],
        "{out}"
    );
    assert!(!seed.join("new").exists(), "the image was written");
}

/// rootfsPropagation shared and rshared (CRI sets rshared for Bidirectional
/// mounts): the container starts, its root is shared as asked, and nothing
/// of it shows up on the host.
#[test]
fn shared_rootfs_propagation_starts() {
    let env = TestEnv::new("rshared");
    for prop in ["shared", "rshared"] {
        let out = env.run_sh(prop, "awk '$5 == \"/\"' /proc/self/mountinfo", |c| {
            c["linux"]["rootfsPropagation"] = json!(prop);
        });
        assert!(out.contains(" shared:"), "{prop}: {out}");
        let base = env.base.display().to_string();
        assert!(
            host_mounts(&base).is_empty(),
            "{prop}: {:?}",
            host_mounts(&base)
        );
    }
}

/// A read-only tmpfs /dev: mounted writable, filled (/dev/pts, /dev/shm,
/// device nodes), then made read-only, as runc does. Before, /dev/pts could
/// not be made in it and create failed.
#[test]
fn a_read_only_dev_tmpfs_is_filled_first() {
    let env = TestEnv::new("rodev");
    let out = env.run_sh(
        "b",
        "test -d /dev/pts && test -c /dev/null && echo filled; touch /dev/x 2>&1; true",
        |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push(json!("ro"));
                }
            }
        },
    );
    assert!(out.contains("filled"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
}

/// rootfsPropagation "unbindable": the container's root is unbindable
/// (with and without --no-pivot). Before, binding the rootfs onto itself
/// failed with EINVAL.
#[test]
fn an_unbindable_root_propagation() {
    let env = TestEnv::new("unbindable");
    let mut b = env.bundle("b", &["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"]);
    b.config["linux"]["rootfsPropagation"] = json!("unbindable");
    b.write();
    for (n, extra) in [&[][..], &["--no-pivot"]].iter().enumerate() {
        let id = env.id(&format!("c{n}"));
        let mut args = vec!["run", "--bundle", b.path()];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = env.ok(&args);
        assert!(out.contains("unbindable"), "{extra:?}: {out}");
    }
}

/// A bind source relative to the bundle (the runtime-spec allows it): found
/// from whatever directory skiff-oci runs in, and, with a user namespace
/// whose root cannot reach it (a directory on the way is 0700, as rootless
/// podman's run directory is), opened for it by the runtime as absolute
/// sources are.
#[test]
fn bundle_relative_bind_sources() {
    let env = TestEnv::new("relbind");
    for (n, userns) in [false, true].into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{n}"), &["cat", "/data/file"]);
        let data = b.dir.join("private/data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("file"), "from-the-bundle\n").unwrap();
        // The rootfs is the host root's: the container's root (mapped
        // elsewhere) could not make the destination.
        fs::create_dir_all(b.rootfs().join("data")).unwrap();
        b.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": "private/data", "options": ["rbind", "ro"]}),
        );
        if userns {
            add_ns(&mut b.config, "user");
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            fs::set_permissions(
                b.dir.join("private"),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .unwrap();
        }
        b.write();
        let (code, out, err) = env.run(&b, &env.id(&format!("c{n}")));
        assert_eq!(code, 0, "user namespace {userns}: {out}{err}");
        assert_eq!(out, "from-the-bundle\n", "user namespace {userns}");
    }
}
