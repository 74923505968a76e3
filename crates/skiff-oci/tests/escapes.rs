//! Regression tests for the known container-escape classes.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;
use serde_json::json;

/// CVE-2019-5736 class: while init is still skiff-oci (parked in `created`), a
/// process in the container's pid namespace must not reach the host binary
/// through /proc/1/exe.
#[test]
fn runtime_binary_is_not_reachable_through_proc_exe() {
    let env = TestEnv::new("exe");
    let a = env.bundle("a", &["true"]);
    let id_a = env.id("a");
    env.ok(&["create", "--bundle", a.path(), &id_a]);
    let init = env.state(&id_a)["pid"].as_i64().unwrap();
    assert_eq!(read(format!("/proc/{init}/comm")).trim(), "skiff-oci");
    let mut b = env.bundle("b", &["sh", "-c", "cat /proc/1/exe > /dev/null 2>&1 && echo READ || echo denied; ls -l /proc/1/exe 2>&1 | grep -c skiff; true"]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{init}/ns/pid"));
        }
    }
    b.write();
    let (code, out, err) = env.run(&b, &env.id("b"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "denied\n0\n", "the host runtime binary was reachable");
    env.ok(&["delete", &id_a]);
}

/// CVE-2019-5736 class, the binary itself: what a container can reach of
/// the runtime (init parked in `created`; the runtime run again inside it
/// through /proc/self/exe by an exec) is a sealed copy, and a write
/// through it once the process has gone fails: the binary keeps its
/// bytes. Run with a copy of the binary, so that an unfixed runtime harms
/// only the copy.
#[test]
fn the_runtime_binary_cannot_be_overwritten_from_a_container() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let env = TestEnv::new("exeseal");
    let copy = env.base.join("skiff-oci-copy");
    fs::copy(skiff(), &copy).unwrap();
    let before = fs::read(&copy).unwrap();
    let oci = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&copy);
        cmd.arg("--root").arg(&env.root).args(args);
        cmd.stdin(std::process::Stdio::null());
        let out = output_via_files(&mut cmd, &env.base);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let b = env.bundle("a", &["sleep", "100"]);
    // Where the runtime run inside the container waits (opening a fifo
    // as its --log, before anything else).
    let fifo = b.rootfs().join("hold");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let id = env.id("a");
    oci(&["create", "--bundle", b.path(), &id]);
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let held_init = fs::File::open(format!("/proc/{init}/exe")).unwrap();
    oci(&["start", &id]);
    let pid_file = env.base.join("exec.pid");
    oci(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "/proc/self/exe",
        "--log",
        "/hold",
        "state",
        "x",
    ]);
    let pid = read(&pid_file).trim().to_string();
    let held_exec = fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    for (what, f) in [
        ("init", &held_init),
        ("the runtime run by exec", &held_exec),
    ] {
        // A sealed copy, or the file through a read-only mount.
        let target = fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        // SAFETY: fstatvfs fills the struct for a descriptor we own.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let read_only = unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) } == 0
            && st.f_flag & libc::ST_RDONLY != 0;
        assert!(
            read_only || target.to_string_lossy().starts_with("/memfd:"),
            "{what} runs the binary where it can be written: {}",
            target.display()
        );
    }
    env.ok(&["delete", "-f", &id]);
    // The processes gone, what they ran is written through what was held.
    for f in [&held_init, &held_exec] {
        let w = fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", f.as_raw_fd()));
        if let Ok(mut w) = w {
            assert!(
                w.write_all(b"PWNED").is_err(),
                "a write to the runtime's binary went through"
            );
        }
    }
    assert!(fs::read(&copy).unwrap() == before, "the binary was changed");
}

/// CVE-2024-21626 class, exec: a cwd through /proc/self/fd/N, also one
/// the caller passed in (--preserve-fds) naming a host directory, is
/// refused, as runc refuses it.
#[test]
fn exec_cwd_through_a_descriptor_is_refused() {
    let env = TestEnv::new("execcwdfd");
    let b = env.bundle("a", &["sleep", "100"]);
    let id = env.id("a");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let mark = format!("/skiff-escape-{}", std::process::id());
    let script = format!("cd ../../../../../../..; touch .{mark}; pwd");
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        let (code, out, _) = env.bounded(&["exec", "--cwd", &cwd, &id, "sh", "-c", &script], &[]);
        assert!(
            code != 0 || !std::path::Path::new(&mark).exists(),
            "fd {n}: escaped to the host's root ({out})"
        );
        let _ = fs::remove_file(&mark);
    }
    // A host directory given on purpose: refused, not entered.
    let mut cmd = env.cmd(&[
        "exec",
        "--preserve-fds",
        "1",
        "--cwd",
        "/proc/self/fd/3",
        &id,
        "sh",
        "-c",
        &script,
    ]);
    let dir = fs::File::open("/").unwrap();
    use std::os::fd::AsRawFd;
    let raw = dir.as_raw_fd();
    // SAFETY: dup2 in the child before exec, onto fd 3.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let ok = match raw {
                3 => libc::fcntl(3, libc::F_SETFD, 0) == 0,
                _ => libc::dup2(raw, 3) == 3,
            };
            match ok {
                true => Ok(()),
                false => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let out = output_via_files(&mut cmd, &env.base);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let escaped = std::path::Path::new(&mark).exists();
    let _ = fs::remove_file(&mark);
    assert!(
        !escaped,
        "a preserved host descriptor let exec into the host's root"
    );
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("outside the container's root"), "{err}");
    env.ok(&["delete", "-f", &id]);
}

/// CVE-2024-21626 class: a cwd through /proc/self/fd/N must not give the
/// container a host directory.
#[test]
fn cwd_through_a_leaked_fd_is_impossible() {
    let env = TestEnv::new("cwdfd");
    for n in 3..9 {
        let mut b = env.bundle(
            &format!("b{n}"),
            &["sh", "-c", "readlink /proc/self/cwd; ls .. | head -3"],
        );
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.write();
        let (code, out, _) = env.run(&b, &env.id(&format!("c{n}")));
        if code == 0 {
            // If it ran at all, its cwd is inside the container.
            assert!(
                !out.contains("skiff-tests")
                    && !out.contains("/sys/fs/cgroup")
                    && !out.contains("/run/"),
                "fd {n}: {out}"
            );
        }
        assert!(env.container_dirs().is_empty());
    }
}

/// CVE-2025-31133 class: masking needs the real /dev/null; a container whose
/// /dev/null is something else (here a bind-mounted /dev holding a regular
/// file) is refused instead of getting that file mounted over /proc paths.
#[test]
fn masking_refuses_a_fake_dev_null() {
    let env = TestEnv::new("fakenull");
    let fake_dev = env.base.join("fakedev");
    fs::create_dir_all(&fake_dev).unwrap();
    fs::write(fake_dev.join("null"), "not a device").unwrap();
    let mut b = env.bundle("b", &["true"]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    mounts.push(
        json!({"destination": "/dev", "type": "bind", "source": fake_dev, "options": ["rbind"]}),
    );
    b.write();
    let err = env.fails(&["create", "--bundle", b.path(), &env.id("c")]);
    assert!(
        err.contains("maskedPaths") && err.contains("not the null device"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
    assert_eq!(read(fake_dev.join("null")), "not a device");
}

/// CVE-2025-52881 class: a sysctl write redirected by a mount over /proc/sys
/// is refused, and the file that was mounted there stays untouched.
#[test]
fn sysctl_write_cannot_be_redirected() {
    let env = TestEnv::new("sysctlredirect");
    let victim = env.base.join("victim");
    fs::write(&victim, "original").unwrap();
    let mut b = env.bundle("b", &["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/proc/sys/kernel/domainname", "type": "bind", "source": victim, "options": ["bind"]
    }));
    b.config["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
    b.write();
    let err = env.fails(&["create", "--bundle", b.path(), &env.id("c")]);
    assert!(err.contains("not on procfs"), "{err}");
    assert_eq!(read(&victim), "original");
    assert!(env.container_dirs().is_empty());
}

/// CVE-2025-52565 class: with a terminal, /dev/console is the container's pty,
/// even if the image put a symlink there.
#[test]
fn dev_console_is_the_pty() {
    let env = TestEnv::new("console");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "stat -c '%t %F' /dev/console; echo console-done",
        ],
    );
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let sock = env.base.join("console.sock");
    let receiver = console_receiver(&sock);
    let id = env.id("c");
    env.ok(&[
        "create",
        "--bundle",
        b.path(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let master = receiver.join().unwrap();
    env.ok(&["start", &id]);
    let out = read_pty_until(master, "console-done");
    // Major 136 (0x88): a /dev/pts device.
    assert!(out.contains("88 character special file"), "{out}");
}

/// The host's /dev/null is never chowned or chmodded, also for a container
/// running as another user in a user namespace with /dev/null as stdin.
#[test]
fn host_dev_null_is_never_chowned() {
    let env = TestEnv::new("devnull");
    let before = fs::metadata("/dev/null").unwrap();
    let mut b = env.bundle("b", &["sh", "-c", "cat; id -u"]);
    add_ns(&mut b.config, "user");
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "1000\n");
    let after = fs::metadata("/dev/null").unwrap();
    assert_eq!(
        (before.uid(), before.gid(), before.mode()),
        (after.uid(), after.gid(), after.mode())
    );
}

/// A read-only bind stays read-only when the image aims its destination,
/// through a symlink, at a path that the mounted host tree redirects (here
/// its `var/run -> /run`, as on every Debian host): the flags go to the mount
/// made, not to a path walked again after it. Before, the remount landed on
/// the container's root and the host directory stayed writable.
#[test]
fn read_only_bind_stays_read_only_through_symlinks_in_the_mounted_tree() {
    let env = TestEnv::new("robind");
    let host = env.base.join("hostdir");
    fs::create_dir_all(host.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", host.join("var/run")).unwrap();
    for (n, options) in [
        vec!["rbind", "ro"],
        vec!["bind", "rro"],
        vec!["rbind", "ro", "rprivate"],
    ]
    .iter()
    .enumerate()
    {
        let mut b = env.bundle(
            &format!("b{n}"),
            &[
                "sh",
                "-c",
                "touch /X/pwned 2>&1; touch /rootfs-ok && echo root-rw",
            ],
        );
        let rootfs = b.rootfs();
        fs::create_dir_all(rootfs.join("X/var/run")).unwrap();
        fs::create_dir_all(rootfs.join("run")).unwrap();
        std::os::unix::fs::symlink("X/var/run/../..", rootfs.join("host")).unwrap();
        b.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/host", "type": "bind", "source": host, "options": options}),
        );
        b.config["root"]["readonly"] = json!(false);
        b.write();
        let (code, out, err) = env.run(&b, &env.id(&format!("c{n}")));
        assert_eq!(code, 0, "{options:?}: {out}{err}");
        assert!(
            !host.join("pwned").exists(),
            "{options:?}: the container wrote into the read-only host directory"
        );
        assert!(out.contains("Read-only file system"), "{options:?}: {out}");
        assert!(
            out.contains("root-rw"),
            "{options:?}: the remount hit /: {out}"
        );
    }
}

/// The runtime reads the container's /etc/passwd (for HOME) with a bound: a
/// passwd that is /dev/zero or a fifo is refused at once, by create and by
/// exec, instead of eating memory (exec's, charged to the caller) or hanging.
#[test]
fn a_hostile_etc_passwd_is_refused_not_read_forever() {
    let env = TestEnv::new("passwd");
    for (n, plant) in ["ln -sf /dev/zero", "mkfifo"].iter().enumerate() {
        let b = env.bundle(&format!("b{n}"), &["true"]);
        let passwd = b.rootfs().join("etc/passwd");
        fs::remove_file(&passwd).unwrap();
        sh_ok(&format!("{plant} {}", passwd.display()));
        let (code, _, err) = env.bounded(
            &["run", "--bundle", b.path(), &env.id(&format!("c{n}"))],
            &[],
        );
        assert_ne!(code, 0, "{plant}: {err}");
        assert!(err.contains("/etc/passwd"), "{plant}: {err}");
        assert!(env.container_dirs().is_empty(), "{plant}: state left");
    }
    // exec (which takes the container's environment, without HOME here)
    // into a container whose passwd turned hostile after it started.
    let b = env.bundle("e", &["sleep", "60"]);
    let id = env.id("e");
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let passwd = b.rootfs().join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &passwd).unwrap();
    let (code, _, err) = env.bounded(&["exec", &id, "true"], &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("/etc/passwd"), "{err}");
    let (code, _, err) = env.bounded(&["exec", "--env", "HOME=/", &id, "true"], &[]);
    assert_eq!(code, 0, "with HOME given the file is not read: {err}");
    env.ok(&["delete", "--force", &id]);
}

/// A --pid-file in a directory others can write: a symlink planted at the
/// temporary name (`PIDFILE.tmp`, the name used before) is not written
/// through, and the pid file is written all the same, for create and exec.
#[test]
fn pid_file_temporaries_never_follow_a_planted_symlink() {
    let env = TestEnv::new("pidtmp");
    let victim = env.base.join("victim");
    fs::write(&victim, "precious").unwrap();
    let shared = env.base.join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let pid_file = shared.join("ctr.pid");
    std::os::unix::fs::symlink(&victim, shared.join("ctr.pid.tmp")).unwrap();
    let b = env.bundle("b", &["sleep", "60"]);
    let id = env.id("c");
    env.ok(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(read(&victim), "precious");
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(read(&pid_file), pid.to_string());
    env.ok(&["start", &id]);
    let exec_pid = shared.join("exec.pid");
    std::os::unix::fs::symlink(&victim, shared.join("exec.pid.tmp")).unwrap();
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        exec_pid.to_str().unwrap(),
        &id,
        "sleep",
        "1",
    ]);
    assert_eq!(read(&victim), "precious");
    assert!(read(&exec_pid).parse::<i64>().is_ok());
    let leftovers: Vec<_> = fs::read_dir(&shared)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    env.ok(&["delete", "--force", &id]);
}

/// --no-pivot: the host's procfs and sysfs, left beneath the moved rootfs,
/// must not let the container mount a fresh, unmasked /proc (the kernel
/// allows it where a full one is visible). Here a user namespace made in the
/// container (CAP_SETFCAP lets `unshare -r` map root) tries, with and without
/// --no-pivot, as runc refuses both.
#[test]
fn no_pivot_leaves_no_full_procfs_to_mount_again() {
    let env = TestEnv::new("nopivotproc");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED' 2>&1; echo done",
        ],
    );
    for set in ["bounding", "permitted", "effective"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    b.write();
    for (n, extra) in [&["--no-pivot"][..], &[]].iter().enumerate() {
        let id = env.id(&format!("c{n}"));
        let mut args = vec!["run", "--bundle", b.path()];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = env.ok(&args);
        assert!(out.contains("done"), "{extra:?}: {out}");
        assert!(
            !out.contains("MOUNTED"),
            "{extra:?}: a fresh procfs was mounted: {out}"
        );
    }
}

/// CVE-2019-16884 class: an image whose /proc or /sys is a symlink is
/// refused (procfs and sysfs go on ordinary directories only), as runc does.
#[test]
fn proc_or_sys_as_a_symlink_is_refused() {
    let env = TestEnv::new("procsymlink");
    for (n, dir) in ["proc", "sys"].iter().enumerate() {
        let b = env.bundle(&format!("b{n}"), &["true"]);
        let rootfs = b.rootfs();
        fs::remove_dir(rootfs.join(dir)).unwrap();
        fs::create_dir_all(rootfs.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", rootfs.join(dir)).unwrap();
        let err = env.fails(&["run", "--bundle", b.path(), &env.id(&format!("c{n}"))]);
        assert!(
            err.contains(&format!("/{dir}"))
                && err.contains("must be mounted on an ordinary directory"),
            "{dir}: {err}"
        );
        assert!(env.container_dirs().is_empty());
    }
}
