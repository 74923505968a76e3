//! checkpoint and restore with CRIU, as runc's callers use them: a counting
//! container is saved and brought back, and counts on from where it stopped,
//! with its bind mounts, its groups and a new caller's stdio; a container
//! with a terminal comes back on its pty, whose new master reaches the
//! restore's console socket; bad input is refused by name and leaves nothing.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A CRIU that works on this kernel (4.x: Debian 12's 3.17 cannot), or None
/// after saying why the test is skipped.
fn criu() -> Option<String> {
    for path in ["/usr/local/sbin/criu", "/usr/sbin/criu"] {
        let works = Command::new(path)
            .arg("check")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some(path.to_string());
        }
    }
    eprintln!("skipped: no criu that passes `criu check` (scripts/deps.sh builds 4.2)");
    None
}

/// A container that prints a count on stdout every 0.1 s and writes it to
/// /data/count, /data being a bind mount of a host directory.
fn counting_bundle(env: &TestEnv, name: &str) -> (Bundle, std::path::PathBuf) {
    let data = env.base.join(format!("{name}-data"));
    fs::create_dir_all(&data).unwrap();
    let mut b = env.bundle(
        name,
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i; echo $i > /data/count; sleep 0.1; done",
        ],
    );
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data",
        "type": "bind",
        "source": data,
        "options": ["rbind", "rw"]
    }));
    b.config["root"]["readonly"] = json!(false);
    b.write();
    (b, data)
}

/// skiff-oci with stdin /dev/null, stdout a pipe returned to read, and
/// stderr a file: what the container inherits.
fn with_pipe(
    env: &TestEnv,
    args: &[&str],
) -> (
    std::process::ExitStatus,
    BufReader<std::process::ChildStdout>,
) {
    let mut cmd = env.cmd(args);
    let err = fs::File::create(env.base.join("stderr")).unwrap();
    let mut child = cmd.stdout(Stdio::piped()).stderr(err).spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let status = child.wait().unwrap();
    (status, out)
}

fn next_count(lines: &mut BufReader<std::process::ChildStdout>) -> u64 {
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {line:?}"))
}

/// Waits (bounded) until `pid` is gone: a checkpointed init's pid is freed
/// when the host's init reaps it, slowly here.
fn wait_gone(pid: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_checkpointed_container_counts_on_after_restore() {
    let Some(criu) = criu() else { return };
    let env = TestEnv::new("ckpt");
    let (b, data) = counting_bundle(&env, "count");
    let id = env.id("count");
    let images = env.base.join("images");
    let images = images.to_str().unwrap();
    let _sweep = GroupSweep(id.clone());

    // Running, its output read through a pipe.
    let (status, mut before) = with_pipe(&env, &["run", "-d", "--bundle", b.path(), &id]);
    assert!(status.success(), "{}", read(env.base.join("stderr")));
    let mut last = 0;
    for _ in 0..5 {
        last = next_count(&mut before);
    }
    let old_pid = env.state(&id)["pid"].as_i64().unwrap();

    // Saved: the container is gone, as after runc's checkpoint.
    env.ok(&["--criu", &criu, "checkpoint", "--image-path", images, &id]);
    assert!(
        env.container_dirs().is_empty(),
        "checkpoint left the container"
    );
    assert!(
        !default_group("memory", &id).exists(),
        "checkpoint left its group"
    );
    let saved: u64 = read(data.join("count")).trim().parse().unwrap();
    assert!(saved >= last, "saved {saved} after printing {last}");
    wait_gone(old_pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        read(data.join("count")).trim().parse::<u64>().unwrap(),
        saved,
        "still counting after the checkpoint"
    );

    // Restored with a new pipe as its stdout: it counts on from `saved`.
    let (status, mut after) = with_pipe(
        &env,
        &[
            "--criu",
            &criu,
            "restore",
            "-d",
            "--bundle",
            b.path(),
            "--image-path",
            images,
            &id,
        ],
    );
    assert!(
        status.success(),
        "restore: {}",
        read(env.base.join("stderr"))
    );
    let first = next_count(&mut after);
    assert!(
        first > saved && first <= saved + 3,
        "restored count {first} does not follow {saved}"
    );
    assert_eq!(next_count(&mut after), first + 1);
    assert_eq!(env.status(&id), "running");

    // In the container's groups, limits applied from the config.
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let procs = read(cgroup_dir("pids", &id).join("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "restored init {pid} is not in its group: {procs}"
    );

    env.ok(&["delete", "--force", &id]);
    assert!(!pid_alive(pid));
    assert!(env.container_dirs().is_empty());
    assert!(!cgroup_dir("pids", &id).exists(), "delete left the group");
}

/// --leave-running keeps the original; the copy restored under another id
/// runs in groups named after the new id, and a foreground restore returns
/// the container's exit code and removes it.
#[test]
fn leave_running_and_a_foreground_restore_under_another_id() {
    let Some(criu) = criu() else { return };
    let env = TestEnv::new("ckpt2");
    let mut b = env.bundle(
        "five",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done; exit 7",
        ],
    );
    b.config["root"]["readonly"] = json!(false);
    b.write();
    let (one, two) = (env.id("one"), env.id("two"));
    let _sweeps = (GroupSweep(one.clone()), GroupSweep(two.clone()));
    let images = env.base.join("images");
    let images = images.to_str().unwrap();
    // stdout /dev/null, stderr a file: the container keeps what it inherits.
    let null = |args: &[&str]| {
        let err_path = env.base.join("stderr");
        let status = env
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        (status.code().unwrap_or(-1), read(&err_path))
    };
    let (code, err) = null(&["run", "-d", "--bundle", b.path(), &one]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let (code, err) = null(&[
        "--criu",
        &criu,
        "checkpoint",
        "--leave-running",
        "--image-path",
        images,
        &one,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.status(&one), "running");

    // The saved container had stdin and stdout on one file (/dev/null):
    // a restore whose stdin and stdout differ is refused (CRIU would open
    // the one for both), and leaves nothing.
    let status = env
        .cmd(&[
            "--criu",
            &criu,
            "restore",
            "--bundle",
            b.path(),
            "--image-path",
            images,
            &two,
        ])
        .stdout(fs::File::create(env.base.join("out")).unwrap())
        .stderr(fs::File::create(env.base.join("stderr")).unwrap())
        .status()
        .unwrap();
    assert!(!status.success());
    let err = read(env.base.join("stderr"));
    assert!(err.contains("stdio"), "{err}");
    assert!(
        !env.container_dirs().contains(&two),
        "a refused restore left state"
    );
    assert!(
        !cgroup_dir("memory", &two).exists(),
        "a refused restore left a group"
    );

    // The copy, in the foreground: it finishes the loop and exits 7.
    // --no-pivot is taken, and changes nothing (as with runc: CRIU builds
    // the restored mount namespace itself).
    let (code, err) = null(&[
        "--criu",
        &criu,
        "restore",
        "--no-pivot",
        "--bundle",
        b.path(),
        "--image-path",
        images,
        &two,
    ]);
    assert_eq!(code, 7, "foreground restore: {err}");
    assert!(
        !env.container_dirs().contains(&two),
        "a foreground restore keeps the container after it exits"
    );
    assert!(!cgroup_dir("memory", &two).exists());
    env.ok(&["delete", "--force", &one]);
}

/// Where the copy runs: a detached restore under another id is in that id's
/// groups (CRIU's cgroup roots rewritten), not the checkpointed one's; its
/// prestart and createRuntime hooks run (at CRIU's setup-namespaces, as
/// runc's) with the restored init's pid in the state.
#[test]
fn a_restore_under_another_id_uses_its_own_groups() {
    let Some(criu) = criu() else { return };
    let env = TestEnv::new("ckpt3");
    let mut b = env.bundle("sleeper", &["sleep", "1000"]);
    let hook = |kind: &str| {
        let out = env.base.join(format!("{kind}.json"));
        json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}])
    };
    b.config["hooks"] =
        json!({"prestart": hook("prestart"), "createRuntime": hook("createRuntime")});
    b.write();
    let (one, two, three) = (env.id("a"), env.id("b"), env.id("c"));
    let _sweeps = (
        GroupSweep(one.clone()),
        GroupSweep(two.clone()),
        GroupSweep(three.clone()),
    );
    let images = env.base.join("images");
    let images = images.to_str().unwrap();
    env.ok(&["run", "-d", "--bundle", b.path(), &one]);
    env.ok(&["--criu", &criu, "checkpoint", "--image-path", images, &one]);
    let pid_file = env.base.join("two.pid");
    // CRIU's log and scratch files in a --work-path of their own.
    let work = env.base.join("work");
    env.ok(&[
        "--criu",
        &criu,
        "restore",
        "-d",
        "--bundle",
        b.path(),
        "--image-path",
        images,
        "--work-path",
        work.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &two,
    ]);
    assert!(
        work.join("restore.log").exists(),
        "no restore.log in --work-path"
    );
    assert!(
        !work.join("skiff-criu.conf").exists(),
        "criu's configuration file left"
    );
    let pid = read(&pid_file).trim().to_string();
    assert_eq!(env.state(&two)["pid"].as_i64().unwrap().to_string(), pid);
    for kind in ["prestart", "createRuntime"] {
        let state: serde_json::Value =
            serde_json::from_str(&read(env.base.join(format!("{kind}.json")))).unwrap();
        assert_eq!(state["id"], two.as_str(), "{kind}: {state}");
        assert_eq!(state["status"], "creating", "{kind}: {state}");
        assert_eq!(state["pid"].to_string(), pid, "{kind}: {state}");
    }
    let groups = read(format!("/proc/{pid}/cgroup"));
    assert!(
        groups.lines().all(|l| l.ends_with(&format!("/{two}"))),
        "restored under {two}, but in: {groups}"
    );

    // A prestart hook that fails fails the restore, by name, and CRIU
    // takes back what it restored: nothing of the third copy is left.
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    b.write();
    let err = env.fails(&[
        "--criu",
        &criu,
        "restore",
        "-d",
        "--bundle",
        b.path(),
        "--image-path",
        images,
        &three,
    ]);
    assert!(err.contains("hooks.prestart"), "{err}");
    assert!(!env.container_dirs().contains(&three), "state left: {err}");
    assert!(!cgroup_dir("memory", &three).exists(), "group left: {err}");
    env.ok(&["delete", "--force", &two]);
}

#[test]
fn bad_checkpoint_and_restore_input_is_refused_by_name() {
    let env = TestEnv::new("ckptbad");
    let images = env.base.join("images");
    let images = images.to_str().unwrap();
    let err = env.fails(&["checkpoint", "--image-path", images, "skt-nosuch"]);
    assert!(err.contains("skt-nosuch"), "{err}");

    let mut b = env.bundle("b", &["true"]);
    let id = env.id("r");
    let _sweep = GroupSweep(id.clone());
    fs::create_dir_all(env.base.join("empty")).unwrap();
    let empty = env.base.join("empty");
    let bundle = b.path().to_string();
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "-d", "--bundle", &bundle, "--image-path"];
        args.push(empty.to_str().unwrap());
        args.extend_from_slice(extra);
        args.push(&id);
        env.fails(&args)
    };
    let err = restore(&[]);
    assert!(err.contains("no checkpoint"), "{err}");
    for (flag, value, named) in [
        (
            "--manage-cgroups-mode",
            Some("hard"),
            "--manage-cgroups-mode",
        ),
        ("--empty-ns", Some("ipc"), "--empty-ns"),
        ("--lazy-pages", None, "--lazy-pages"),
        ("--preserve-fds", Some("1"), "--preserve-fds"),
    ] {
        let mut extra = vec![flag];
        extra.extend(value);
        let err = restore(&extra);
        assert!(err.contains(named), "{flag}: {err}");
    }
    let err = env.fails(&["checkpoint", "--page-server", "127.0.0.1:1", "skt-nosuch"]);
    assert!(err.contains("--page-server"), "{err}");

    // Hooks of init's (createContainer, startContainer) cannot run on a
    // restore, which has no init setting up: refused, as runc skips them.
    fs::write(
        empty.join("skiff-checkpoint.json"),
        r#"{"externals":[],"stdio":[null,null,null],"externalNetns":false}"#,
    )
    .unwrap();
    b.config["hooks"] = json!({"createContainer": [{"path": "/bin/true"}]});
    b.write();
    let err = restore(&[]);
    assert!(err.contains("hooks.createContainer"), "{err}");

    // A console socket for a container without a terminal, and a terminal
    // without one: both refused, before anything is made.
    b.config["hooks"] = json!({});
    b.write();
    let err = restore(&["--console-socket", "/tmp/nosuch.sock"]);
    assert!(err.contains("--console-socket"), "{err}");
    fs::write(
        empty.join("skiff-checkpoint.json"),
        r#"{"externals":[],"stdio":[null,null,null],"externalNetns":false,"terminal":true}"#,
    )
    .unwrap();
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let err = restore(&[]);
    assert!(err.contains("--console-socket"), "{err}");

    // A --work-path that CRIU's configuration file cannot name: refused.
    b.config["process"]["terminal"] = json!(false);
    b.write();
    fs::write(
        empty.join("skiff-checkpoint.json"),
        r#"{"externals":[],"stdio":[null,null,null],"externalNetns":false}"#,
    )
    .unwrap();
    let spaced = env.base.join("work dir");
    let err = restore(&["--work-path", spaced.to_str().unwrap()]);
    assert!(err.contains("--work-path"), "{err}");
    assert!(
        env.container_dirs().is_empty(),
        "a refused restore left state"
    );
    assert!(
        !cgroup_dir("memory", &id).exists(),
        "a refused restore left a group"
    );
}

/// A console socket that gives up after a while: accepts one connection
/// and returns the pty master received on it, or None.
fn console_master(listener: std::os::unix::net::UnixListener) -> Option<std::os::fd::OwnedFd> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return Some(recv_fd(&conn).0);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

/// Types `line` into the shell on `master` and reads until `marker` has
/// appeared in its output (bounded); the output read.
fn type_and_read(master: &std::os::fd::OwnedFd, line: &str, marker: &str) -> String {
    use std::os::fd::{AsFd, AsRawFd};
    nix::unistd::write(master, line.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = String::new();
    while !out.contains(marker) {
        assert!(
            Instant::now() < deadline,
            "{marker:?} never came back on the pty: {out:?}"
        );
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap() == 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        let n = nix::unistd::read(master.as_raw_fd(), &mut buf).unwrap_or(0);
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}

/// The pty name `tty` printed: the line of `out` that starts /dev/pts/.
fn pts_name(out: &str) -> String {
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("/dev/pts/"))
        .unwrap_or_else(|| panic!("no /dev/pts/N in {out:?}"))
        .to_string()
}

/// process.terminal: the checkpoint takes the shell on its pty; the
/// restore opens a new master for the pty it brings back at the same index
/// in the container's own devpts, and hands it to --console-socket, where
/// the shell answers (with what it had set before) as if nothing happened.
#[test]
fn a_container_with_a_terminal_comes_back_on_a_new_console() {
    let Some(criu) = criu() else { return };
    let env = TestEnv::new("ckpttty");
    let mut b = env.bundle("shell", &["sh"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["root"]["readonly"] = json!(false);
    b.write();
    let id = env.id("tty");
    let _sweep = GroupSweep(id.clone());
    let images = env.base.join("images");
    let images = images.to_str().unwrap();
    let listen = |name: &str| {
        let path = env.base.join(name);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let path = path.to_str().unwrap().to_string();
        (path, std::thread::spawn(move || console_master(listener)))
    };

    // Started on a pty; the shell remembers a variable, and says its tty.
    let (sock, receiver) = listen("console-1.sock");
    env.ok(&[
        "run",
        "-d",
        "--console-socket",
        &sock,
        "--bundle",
        b.path(),
        &id,
    ]);
    let master = receiver.join().unwrap().expect("no master from run");
    type_and_read(&master, "KEPT=before-42; echo RE''ADY\n", "READY");
    let before = pts_name(&type_and_read(
        &master,
        "tty; echo TT''Y-DONE\n",
        "TTY-DONE",
    ));

    // Saved and gone; the old master is left with no slave.
    env.ok(&["--criu", &criu, "checkpoint", "--image-path", images, &id]);
    assert!(
        env.container_dirs().is_empty(),
        "checkpoint left the container"
    );
    drop(master);

    // Restored: the new master arrives on the restore's console socket.
    let (sock, receiver) = listen("console-2.sock");
    env.ok(&[
        "--criu",
        &criu,
        "restore",
        "-d",
        "--console-socket",
        &sock,
        "--bundle",
        b.path(),
        "--image-path",
        images,
        &id,
    ]);
    let master = receiver
        .join()
        .unwrap()
        .expect("restore sent no pty master to --console-socket");
    assert_eq!(env.status(&id), "running");
    let out = type_and_read(&master, "echo \"kept=$KEPT\"\n", "kept=before-42");
    assert!(out.contains("kept=before-42"), "{out}");
    let after = pts_name(&type_and_read(
        &master,
        "tty; echo TT''Y-AGAIN\n",
        "TTY-AGAIN",
    ));
    assert_eq!(after, before, "the restored shell is on another pty");

    // Saved again, and restored in the foreground without a console
    // socket: skiff-oci relays the pty to its own terminal, as `run -t`
    // (and runc's restore) do, and returns the shell's exit code.
    let images2 = env.base.join("images2");
    let images2 = images2.to_str().unwrap();
    env.ok(&["--criu", &criu, "checkpoint", "--image-path", images2, &id]);
    drop(master);
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = env.cmd(&[
        "--criu",
        &criu,
        "restore",
        "--bundle",
        b.path(),
        "--image-path",
        images2,
        &id,
    ]);
    cmd.stdin(pty.slave.try_clone().unwrap())
        .stdout(pty.slave.try_clone().unwrap())
        .stderr(pty.slave.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(pty.slave);
    let out = type_and_read(
        &pty.master,
        "echo \"again=$KEPT\"; tty; echo RE''LAYED; exit 3\n",
        "RELAYED",
    );
    assert!(out.contains("again=before-42"), "{out}");
    assert_eq!(
        pts_name(&out[out.find("again=").unwrap()..]),
        before,
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a foreground restore did not return after its shell's exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(env.container_dirs().is_empty());
}

/// What a restore mounts from where it may have changed since: a mount
/// nested in a bind mount gets its mount point in the bind's source (where
/// create made it, here removed after the checkpoint), as runc makes them;
/// a masked file gets the host's /dev/null, as runc's, not whatever the
/// rootfs has at /dev/null by then (here, with no /dev mount, a regular
/// file planted where create made the node).
#[test]
fn restore_makes_nested_mount_points_in_bind_sources_and_masks_with_the_hosts_null() {
    let Some(criu) = criu() else { return };
    let env = TestEnv::new("ckptmnt");
    let data = env.base.join("data");
    fs::create_dir_all(&data).unwrap();
    let mut b = env.bundle(
        "nested",
        &["sh", "-c", "touch /data/sub/ready && sleep 1000"],
    );
    b.config["root"]["readonly"] = json!(false);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/dev");
    mounts.push(json!({
        "destination": "/data",
        "type": "bind",
        "source": data,
        "options": ["rbind", "rw"]
    }));
    mounts.push(json!({
        "destination": "/data/sub",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=1m"]
    }));
    // A masked file of the test's own (which /proc files exist depends on
    // the kernel's configuration).
    fs::write(b.dir.join("rootfs/secret"), "secret\n").unwrap();
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/secret"));
    b.write();
    let id = env.id("nested");
    let _sweep = GroupSweep(id.clone());
    let images = env.base.join("images");
    let images = images.to_str().unwrap();
    env.ok(&["run", "-d", "--bundle", b.path(), &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let ready = format!("/proc/{pid}/root/data/sub/ready");
    while !std::path::Path::new(&ready).exists() {
        assert!(Instant::now() < deadline, "the container never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }

    env.ok(&["--criu", &criu, "checkpoint", "--image-path", images, &id]);
    let notes = read(std::path::Path::new(images).join("skiff-checkpoint.json"));
    assert!(
        notes.contains("\"/secret\"") && notes.contains("masked"),
        "/secret not saved as a masked path: {notes}"
    );
    // create made /data/sub in the bind's source; a restore makes it again.
    fs::remove_dir(data.join("sub")).unwrap();
    wait_gone(pid);
    let null = b.dir.join("rootfs/dev/null");
    fs::remove_file(&null).unwrap();
    fs::write(&null, "planted\n").unwrap();

    env.ok(&[
        "--criu",
        &criu,
        "restore",
        "-d",
        "--bundle",
        b.path(),
        "--image-path",
        images,
        &id,
    ]);
    assert!(
        data.join("sub").is_dir(),
        "no mount point made in the source"
    );
    let out = env.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /secret; echo masked-read; cat /data/sub/ready && echo tmpfs-kept",
    ]);
    assert!(
        !out.contains("planted") && !out.contains("secret"),
        "/secret is not the null device after the restore: {out}"
    );
    assert!(
        out.contains("masked-read") && out.contains("tmpfs-kept"),
        "{out}"
    );
    env.ok(&["delete", "--force", &id]);
    assert!(env.container_dirs().is_empty());
}
