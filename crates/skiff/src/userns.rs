//! Rootless: an unprivileged user's engine runs as root of a user
//! namespace of its own, as Podman's does: the user's uid is 0 there, ids
//! 1..N are the user's subordinate range (/etc/subuid, /etc/subgid, mapped
//! by the setuid newuidmap/newgidmap of Debian's uidmap), so a layer's
//! files keep their owners; with a mount namespace for overlay mounts.
//!
//! One namespace pair per user, kept, as Podman keeps its pause process:
//! the first command makes it and leaves a holder (`skiff __pause`, its pid
//! in $XDG_RUNTIME_DIR/skiff/pause.pid); every later command joins it
//! (setns), so that what one command made (a container's namespaces, an
//! overlay mount) the next can use: `exec` and `pod` join namespaces owned
//! by it, `cp` sees the rootfs mounts. Made or joined under a lock, so
//! two first commands at once make one.
//!
//! Done first thing in main, while the process has one thread. To make
//! the pair it forks; the child unshares and waits; the parent maps the
//! child's ids, lets it go on (it starts the holder, then runs the
//! command) and exits with its status.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The subordinate range of a user in FILE (`name:start:count` or
/// `uid:start:count`): the first one.
fn range(file: &str, name: &str, id: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        (who == name || who == id.to_string())
            .then(|| Some((start.parse().ok()?, count.parse().ok()?)))
            .flatten()
    })
}

fn user_name(uid: u32) -> String {
    // SAFETY: getpwuid's static record is read at once, single-threaded.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return uid.to_string();
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Enters the engine's user namespace when an unprivileged user runs it
/// (and it is not in one already). Returns in the namespace, or exits.
pub fn enter() -> Result<(), String> {
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 || std::env::var_os("SKIFF_ROOTLESS_UID").is_some() {
        return Ok(());
    }
    let dir = holder_dir(uid);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("making {}: {e}", dir.display()))?;
    let lock = fs::File::create(dir.join("pause.lock"))
        .map_err(|e| format!("making {}: {e}", dir.join("pause.lock").display()))?;
    // SAFETY: flock on a descriptor we own; released when it closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "locking {}: {}",
            dir.join("pause.lock").display(),
            std::io::Error::last_os_error()
        ));
    }
    if let Some(pid) = live_holder(&dir, uid) {
        join(pid)?;
        drop(lock);
        std::env::set_var("SKIFF_ROOTLESS_UID", uid.to_string());
        return Ok(());
    }
    let name = user_name(uid);
    let hint = format!(
        "rootless skiff needs a subordinate id range for {name} in /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name})"
    );
    let subuid = range("/etc/subuid", &name, uid).ok_or_else(|| hint.clone())?;
    let subgid = range("/etc/subgid", &name, uid).ok_or(hint)?;
    let (mut ours, mut theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    // SAFETY: single-threaded here (first thing in main); the child goes
    // on with ordinary Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(ours);
        let entered = child(&mut theirs, uid, &dir);
        // The holder is recorded (or this failed): others may look.
        drop(lock);
        let _ = theirs.write_all(b"d");
        return entered;
    }
    drop(theirs);
    let mut ready = [0u8; 1];
    let _ = ours.read_exact(&mut ready);
    let map = |tool: &str, own: u32, (start, count): (u64, u64)| -> Result<(), String> {
        let out = Command::new(tool)
            .args([pid.to_string(), "0".into(), own.to_string(), "1".into()])
            .args(["1".to_string(), start.to_string(), count.to_string()])
            .output()
            .map_err(|e| format!("running {tool} (Debian's uidmap package): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    };
    let mapped = map("newuidmap", uid, subuid).and_then(|()| map("newgidmap", gid, subgid));
    let _ = ours.write_all(if mapped.is_ok() { b"g" } else { b"x" });
    // Until the child has recorded its holder, the lock stays ours too.
    let _ = ours.read_exact(&mut ready);
    drop(lock);
    let mut status = 0;
    // SAFETY: waits for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    if let Err(e) = mapped {
        eprintln!("Error: {e}");
        std::process::exit(125);
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    std::process::exit(code);
}

/// Where the holder's pid and lock live: $XDG_RUNTIME_DIR/skiff, else a
/// directory of the user's under /tmp.
fn holder_dir(uid: u32) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("skiff"),
        None => PathBuf::from(format!("/tmp/skiff-{uid}")),
    }
}

/// The recorded holder, if it is still ours and alive (a pid reused by
/// another process is not: it must be our user's `skiff __pause`).
fn live_holder(dir: &Path, uid: u32) -> Option<i32> {
    let pid: i32 = fs::read_to_string(dir.join("pause.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let owner = fs::metadata(&proc).ok()?.uid();
    let cmdline = fs::read(proc.join("cmdline")).ok()?;
    let pausing = cmdline.split(|b| *b == 0).any(|a| a == b"__pause");
    (owner == uid && pausing).then_some(pid)
}

/// Joins the holder's user and mount namespaces (root there), keeping
/// the working directory (setns of a mount namespace moves it to /).
fn join(pid: i32) -> Result<(), String> {
    let cwd = std::env::current_dir().ok();
    let open = |ns: &str| {
        fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| format!("opening the engine's {ns} namespace (/proc/{pid}): {e}"))
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    // SAFETY: setns and set*id on this single-threaded process.
    unsafe {
        for (f, kind, what) in [
            (&user, libc::CLONE_NEWUSER, "user"),
            (&mnt, libc::CLONE_NEWNS, "mount"),
        ] {
            if libc::setns(f.as_raw_fd(), kind) != 0 {
                return Err(format!(
                    "joining the engine's {what} namespace: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(format!(
                "becoming root of the user namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    if let Some(d) = cwd {
        let _ = std::env::set_current_dir(d);
    }
    Ok(())
}

/// Starts the holder: `skiff __pause`, in its own session, with nothing of
/// ours open (no caller waits on a pipe it holds); its pid recorded.
fn start_holder(dir: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__pause")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::stdio::in_own_session(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting the namespace holder: {e}"))?;
    let pidfile = dir.join("pause.pid");
    fs::write(&pidfile, child.id().to_string())
        .map_err(|e| format!("writing {}: {e}", pidfile.display()))?;
    // Not waited for: it outlives us (re-parented to init).
    std::mem::forget(child);
    Ok(())
}

/// In the child: a user and a mount namespace, mapped by the parent; root
/// there; mounts private; the holder started.
fn child(sock: &mut UnixStream, uid: u32, dir: &Path) -> Result<(), String> {
    // SAFETY: unshare of namespaces for this single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
        let e = std::io::Error::last_os_error();
        let _ = sock.write_all(b"r");
        return Err(format!(
            "making a user namespace: {e} (are unprivileged user namespaces allowed? sysctl kernel.unprivileged_userns_clone)"
        ));
    }
    sock.write_all(b"r")
        .map_err(|e| format!("telling the parent: {e}"))?;
    let mut go = [0u8; 1];
    sock.read_exact(&mut go)
        .map_err(|e| format!("waiting for the id maps: {e}"))?;
    if go[0] != b'g' {
        // The parent says why and exits 125.
        std::process::exit(125);
    }
    // SAFETY: plain syscalls on this process.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(format!(
                "becoming root of the user namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!(
                "making mounts private: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    start_holder(dir)?;
    // Read by skiff-image (rootless()) and by a skiff run inside `unshare`.
    std::env::set_var("SKIFF_ROOTLESS_UID", uid.to_string());
    Ok(())
}
