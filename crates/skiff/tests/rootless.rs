//! Rootless: an unprivileged user's `skiff` pulls, lists, mounts and
//! removes images in a store under its own home, as root of a user
//! namespace of its own (its subordinate ids from /etc/subuid), the layers'
//! owners mapped into that range on disk; and runs containers and pods
//! there, every command in the same namespaces.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Held while /etc/subuid and /etc/subgid are read and rewritten
/// (useradd, userdel, a test's own edit): the tests run in parallel, and a
/// userdel that read the file before another test's edit would write its
/// old lines back.
static SUBIDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn subids_lock() -> std::sync::MutexGuard<'static, ()> {
    SUBIDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A user made for the test (useradd gives it subordinate ids), removed
/// with everything of it on drop.
struct User {
    name: String,
    home: tempfile::TempDir,
    skiff: PathBuf,
    made_subid_files: bool,
}

impl User {
    fn new() -> User {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("skt-eng{}x{n}", std::process::id() % 100_000);
        let subids = subids_lock();
        let _ = Command::new("/usr/sbin/userdel").arg(&name).output();
        let made_subid_files = !Path::new("/etc/subuid").exists();
        for f in ["/etc/subuid", "/etc/subgid"] {
            if !Path::new(f).exists() {
                fs::write(f, "").unwrap();
            }
        }
        let home = tempfile::Builder::new()
            .prefix("skiff-store-home-")
            .tempdir_in("/var/tmp")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new("/usr/sbin/useradd")
            .args(["-M", "-s", "/bin/sh", "-d"])
            .arg(home.path())
            .arg(&name)
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd: {}", text(&out));
        drop(subids);
        // The binary where the user can run it (the checkout may be under
        // a home the user cannot enter).
        let skiff = home.path().join("skiff");
        fs::copy(skiff_bin(), &skiff).unwrap();
        fs::set_permissions(&skiff, fs::Permissions::from_mode(0o755)).unwrap();
        // And the runtime beside it, where the engine looks for it.
        if let Some(oci) = std::env::var_os("SKIFF_OCI") {
            let to = home.path().join("skiff-oci");
            fs::copy(oci, &to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let ok = Command::new("chown")
            .args(["-R", &format!("{name}:{name}")])
            .arg(home.path())
            .status()
            .unwrap();
        assert!(ok.success());
        User {
            name,
            home,
            skiff,
            made_subid_files,
        }
    }

    fn subuid_start(&self) -> u64 {
        let t = fs::read_to_string("/etc/subuid").unwrap();
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("{}:", self.name)))
            .and_then(|r| r.split(':').next())
            .and_then(|s| s.parse().ok())
            .expect("useradd gave no subordinate ids")
    }

    fn uid(&self) -> u32 {
        let o = Command::new("id")
            .args(["-u", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    }

    fn skiff(&self, args: &[&str]) -> Output {
        Command::new("/usr/sbin/runuser")
            .args(["-u", &self.name, "--", "env"])
            .arg(format!("HOME={}", self.home.path().display()))
            .arg(format!(
                "XDG_DATA_HOME={}",
                self.home.path().join("data").display()
            ))
            .arg(format!(
                "XDG_RUNTIME_DIR={}",
                self.home.path().join("run").display()
            ))
            .arg(&self.skiff)
            .args(args)
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.skiff(args);
        assert!(
            o.status.success(),
            "skiff {args:?} as {}: {}",
            self.name,
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let _subids = subids_lock();
        let _ = Command::new("/usr/sbin/userdel").arg(&self.name).output();
        if self.made_subid_files {
            for f in ["/etc/subuid", "/etc/subgid"] {
                if fs::read_to_string(f).is_ok_and(|t| t.trim().is_empty()) {
                    let _ = fs::remove_file(f);
                }
            }
        }
        // Files the user's namespace wrote belong to its subordinate ids.
        let _ = Command::new("rm").arg("-rf").arg(self.home.path()).status();
    }
}

/// Whether this host lets an unprivileged user make a user namespace.
fn userns_allowed() -> bool {
    let sysctl = |f: &str| {
        fs::read_to_string(f)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    sysctl("/proc/sys/user/max_user_namespaces") != "0"
        && sysctl("/proc/sys/kernel/unprivileged_userns_clone") != "0"
}

#[test]
fn an_unprivileged_user_pulls_lists_mounts_and_removes_images() {
    need!("docker-registry", "skopeo", "newuidmap");
    if !userns_allowed() {
        eprintln!("skipped: unprivileged user namespaces are off on this host");
        return;
    }
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("bb"));
    let upper = tar_of(&[
        F::Dir("etc/"),
        F::File("etc/.wh.os-release", vec![]),
        F::File("etc/motd", b"rootless\n".to_vec()),
    ]);
    let d = l.image(&[busybox_layer(), upper], Z::Gzip, "amd64", &["sh"]);
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "bb:1", false);
    let u = User::new();
    let name = format!("{}/bb:1", reg.addr());
    let id = u.ok(&["pull", "-q", &name]).trim().to_string();
    assert!(u.ok(&["images", "-q"]).contains(&id[..12]));
    // The store is the user's, under its XDG_DATA_HOME; the layers' root
    // files are the user's own uid on disk (root in its namespace).
    let store = u.home.path().join("data/skiff");
    assert!(
        store.join("store.db").exists(),
        "no store under XDG_DATA_HOME"
    );
    let layer = fs::read_dir(store.join("layers"))
        .unwrap()
        .flatten()
        .find(|e| e.path().join("diff/bin/busybox").exists())
        .unwrap()
        .path();
    assert_eq!(
        fs::metadata(layer.join("diff/bin/busybox")).unwrap().uid(),
        u.uid()
    );
    assert!(u.subuid_start() > 0);
    // In the engine's namespace the image mounts as an overlay (userxattr),
    // the whiteout hiding the lower file.
    let out = u.ok(&[
        "unshare",
        "sh",
        "-c",
        &format!("m=$({} image mount --name r bb:1) && cat $m/etc/motd && ls $m/etc && $m/bin/busybox true && echo ran && {} image unmount r", u.skiff.display(), u.skiff.display()),
    ]);
    assert!(out.contains("rootless") && out.contains("ran"), "{out}");
    assert!(
        !out.contains("os-release"),
        "the whiteout did not hide os-release: {out}"
    );
    u.ok(&["rmi", &name]);
    assert!(u.ok(&["images", "-q"]).trim().is_empty());
    assert_eq!(fs::read_dir(store.join("layers")).unwrap().count(), 0);
}

#[test]
fn without_subordinate_ids_the_error_says_what_to_do() {
    let u = User::new();
    // Take the user's ranges away.
    let _subids = subids_lock();
    for f in ["/etc/subuid", "/etc/subgid"] {
        let t = fs::read_to_string(f).unwrap_or_default();
        let kept: String = t
            .lines()
            .filter(|l| !l.starts_with(&format!("{}:", u.name)))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(f, kept).unwrap();
    }
    let o = u.skiff(&["images"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o).contains("/etc/subuid") && text(&o).contains("usermod"),
        "{}",
        text(&o)
    );
}

/// Containers as an unprivileged user, end to end: run (foreground and
/// detached), exec and cp into a container another command made (every
/// command joins the one namespace holder), logs, a named volume, a pod
/// whose member joins the infra's namespaces, stop and rm; what needs a
/// cgroup the user was not given is refused by name; nothing is left
/// but the holder.
#[test]
fn an_unprivileged_user_runs_containers_and_pods() {
    need!("docker-registry", "skopeo", "newuidmap");
    if !userns_allowed() {
        eprintln!("skipped: unprivileged user namespaces are off on this host");
        return;
    }
    if std::env::var_os("SKIFF_OCI").is_none() {
        eprintln!("skipped: SKIFF_OCI (the runtime to copy where the user can run it) is not set");
        return;
    }
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("bb"));
    let d = l.image(&[busybox_layer()], Z::Gzip, "amd64", &["sh"]);
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "bb:1", false);
    let u = User::new();
    let image = format!("{}/bb:1", reg.addr());
    u.ok(&["pull", "-q", &image]);
    let out = u.ok(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    assert!(out.starts_with("0\n"), "{out}");
    assert!(out.contains(&u.uid().to_string()), "{out}");
    u.ok(&[
        "run",
        "-d",
        "--name",
        "d1",
        "-v",
        "v1:/data",
        &image,
        "sh",
        "-c",
        "echo made > /data/f; echo logged; sleep 100",
    ]);
    let mut tries = 0;
    while u.skiff(&["exec", "d1", "cat", "/data/f"]).stdout != b"made\n" {
        tries += 1;
        assert!(
            tries < 100,
            "exec into d1: {}",
            text(&u.skiff(&["exec", "d1", "cat", "/data/f"]))
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let copied = u.skiff(&["cp", "d1:/data/f", "-"]);
    assert!(copied.status.success(), "{}", text(&copied));
    assert!(String::from_utf8_lossy(&copied.stdout).contains("made"));
    assert!(u.ok(&["logs", "d1"]).contains("logged"));
    // A cgroup limit the user has no group for: named.
    let o = u.skiff(&["pause", "d1"]);
    assert!(
        !o.status.success() && text(&o).contains("no cgroup"),
        "{}",
        text(&o)
    );
    u.ok(&["pod", "create", "--name", "rp", "--hostname", "rootpod"]);
    assert_eq!(
        u.ok(&["run", "--rm", "--pod", "rp", &image, "hostname"]),
        "rootpod\n"
    );
    u.ok(&["pod", "rm", "-f", "rp"]);
    published(&u, &image);
    u.ok(&["stop", "-t", "1", "d1"]);
    u.ok(&["rm", "d1"]);
    u.ok(&["volume", "rm", "v1"]);
    assert_eq!(u.ok(&["ps", "-a", "-q"]).trim(), "");
    // Left: the namespace holder alone (monitors that just ended may still
    // wait, as zombies, for the host's init to reap them).
    let others = || {
        let o = Command::new("ps")
            .args(["-u", &u.name, "-o", "stat=,args="])
            .output()
            .unwrap();
        let procs = String::from_utf8_lossy(&o.stdout).into_owned();
        procs
            .lines()
            .filter(|l| !l.trim_start().starts_with('Z') && !l.ends_with("skiff __pause"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Bounded: what was killed may take a moment to be gone.
    let mut left = others();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = others();
    }
    assert!(left.is_empty(), "{left:?}");
}

/// A port published by a rootless container (pasta, the default network
/// there) answers on the host; rm stops its pasta.
fn published(u: &User, image: &str) {
    use std::os::unix::fs::PermissionsExt;
    let tun = fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o006 == 0o006);
    if !Path::new("/usr/bin/pasta").exists() || !tun.unwrap_or(false) {
        eprintln!("skipped: rootless -p (no pasta, or /dev/net/tun not open to users)");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = u.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        image,
        "sh",
        "-c",
        "while true; do busybox nc -l -p 80 -e echo via-pasta; done",
    ]);
    let id = id.trim().to_string();
    let mut answer = String::new();
    for _ in 0..100 {
        use std::io::Read;
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            answer.clear();
            let _ = s.read_to_string(&mut answer);
            if answer == "via-pasta\n" {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(answer, "via-pasta\n");
    u.ok(&["rm", "-f", "web"]);
    // pasta runs as passt's build for the CPU (comm passt.avx2): by its
    // command line, which names the container's directory.
    let o = Command::new("pgrep")
        .args(["-u", &u.name, "-f", &format!("^/usr/bin/pasta .*{id}")])
        .output()
        .unwrap();
    assert!(o.stdout.is_empty(), "pasta left running");
}
