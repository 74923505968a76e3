//! What the engine's tests share: a real registry (Debian's
//! docker-registry) on 127.0.0.1, images made offline as OCI layouts and
//! pushed there with skopeo, and the skiff binary run against a store of
//! the test's own.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn skiff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

/// Podman on a store of the test's own under `dir` (root, runroot; the
/// vfs driver), its arguments to follow.
pub fn podman_at(dir: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs"]);
    cmd
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A store of the test's own; removed (unmounting what is left) on drop.
pub struct Engine {
    pub dir: tempfile::TempDir,
}

impl Engine {
    pub fn new() -> Engine {
        Engine {
            dir: tempfile::Builder::new()
                .prefix("skiff-store-")
                .tempdir_in("/var/tmp")
                .unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(skiff_bin());
        // The host's proxy variables would reach containers (--http-proxy
        // is on by default, as Podman's): environments compared whole
        // must not depend on the machine running the tests.
        for v in ["http_proxy", "https_proxy", "ftp_proxy", "no_proxy"] {
            cmd.env_remove(v).env_remove(v.to_uppercase());
        }
        cmd.arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs and asserts success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(o.status.success(), "skiff {args:?} failed: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs and asserts failure with 125 (the engine's own error); the text.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(
            !o.status.success(),
            "skiff {args:?} should have failed: {}",
            text(&o)
        );
        text(&o)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // What a test that failed midway left running: its pods and
        // containers, their monitors and groups (bounded: a hung one is
        // not waited for past a minute).
        let skiff = |args: &[&str]| {
            Command::new("timeout")
                .args(["60", skiff_bin(), "--root"])
                .arg(self.root())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .ok()
        };
        if let Some(pods) = skiff(&["pod", "ps", "-q"]) {
            for pod in String::from_utf8_lossy(&pods.stdout).split_whitespace() {
                skiff(&["pod", "rm", "-f", pod]);
            }
        }
        skiff(&["rm", "-a", "-f", "-t", "0"]);
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.root().display().to_string();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on 127.0.0.1: plain HTTP, or TLS with a
/// certificate of the test's own and htpasswd auth. Killed on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub htpasswd: PathBuf,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(false, false)
    }

    /// One whose Location headers are relative (`/v2/...`), as the
    /// distribution-spec allows (the default is absolute URLs).
    pub fn start_relative() -> Registry {
        Registry::start_with(false, true)
    }

    /// With TLS (a self-signed certificate) and basic auth for user
    /// "tester", password "s3cret".
    pub fn start_tls() -> Registry {
        Registry::start_with(true, false)
    }

    fn start_with(tls: bool, relative: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("skiff-registry-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let mut extra = String::new();
        if tls {
            // A CA of the test's own (ca.pem) and the server's certificate
            // it signs (cert.pem, for IP 127.0.0.1): clients that trust the
            // CA verify the server; others refuse it.
            let script = r#"set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=skiff-test-ca -keyout ca.key -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out server.csr
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem"#;
            let ok = Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(d)
                .output()
                .unwrap();
            assert!(ok.status.success(), "openssl: {}", text(&ok));
            let h = Command::new("htpasswd")
                .args(["-Bbn", "tester", "s3cret"])
                .output()
                .unwrap();
            assert!(h.status.success());
            fs::write(d.join("htpasswd"), &h.stdout).unwrap();
            extra = format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                d.join("cert.pem").display(),
                d.join("key.pem").display(),
                d.join("htpasswd").display()
            );
        }
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  relativeurls: {relative}\n{extra}",
                d.join("data").display()
            );
            fs::write(d.join("config.yml"), config).unwrap();
            let log = fs::File::create(d.join("log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(d.join("config.yml"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry (scripts/deps.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry { child, dir, port };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(d.join("log")).unwrap_or_default()
        );
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Requests for blobs (GET) the access log holds.
    pub fn blob_gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .count()
    }

    /// Pushes an OCI layout's image (or all of an index) with skopeo.
    pub fn push_layout(&self, layout: &Path, tag: &str, name: &str, all: bool) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--dest-tls-verify=false"]);
        if all {
            c.arg("--all");
        }
        if self.dir.path().join("htpasswd").exists() {
            c.args(["--dest-creds", "tester:s3cret"]);
        }
        let o = c
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}", self.addr()))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo copy: {}", text(&o));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file in a layer.
pub enum F<'a> {
    File(&'a str, Vec<u8>),
    Exec(&'a str, Vec<u8>),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// A layer's uncompressed tar.
pub fn tar_of(files: &[F]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match f {
            F::File(p, body) | F::Exec(p, body) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if matches!(f, F::Exec(..)) {
                    0o755
                } else {
                    0o644
                });
                h.set_size(body.len() as u64);
                b.append_data(&mut h, p, body.as_slice()).unwrap();
            }
            F::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            F::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// busybox-static with sh, echo, cat, ls, sha256sum as links.
pub fn busybox_layer() -> Vec<u8> {
    let bb = fs::read("/bin/busybox").expect("busybox-static");
    let mut files = vec![
        F::Dir("bin/"),
        F::Exec("bin/busybox", bb),
        F::Dir("tmp/"),
        F::File("etc/os-release", b"NAME=skiff-test\n".to_vec()),
        F::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nweb:x:1001:1002:web:/srv:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
        ),
        F::File("etc/group", b"root:x:0:\nweb:x:1002:\nextra:x:1003:web\nnogroup:x:65534:\n".to_vec()),
        F::Dir("srv/"),
        F::Dir("proc/"),
        F::Dir("sys/"),
        F::Dir("dev/"),
        F::File("notexec", b"#!/bin/sh\n".to_vec()),
    ];
    for app in [
        "sh",
        "echo",
        "cat",
        "ls",
        "sha256sum",
        "true",
        "sleep",
        "id",
        "hostname",
        "pwd",
        "env",
        "grep",
        "wc",
    ] {
        files.push(F::Link(
            Box::leak(format!("bin/{app}").into_boxed_str()),
            "busybox",
        ));
    }
    tar_of(&files)
}

#[derive(Clone, Copy)]
pub enum Z {
    Gzip,
    Zstd,
    Plain,
}

/// An OCI image layout under construction.
pub struct Layout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            index: vec![],
        }
    }

    fn blob(&self, bytes: &[u8]) -> String {
        let d = sha(bytes);
        fs::write(self.dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
        d
    }

    /// An image of these layers (uncompressed tars) for a platform; its
    /// manifest's descriptor (the index entry).
    pub fn image(&mut self, layers: &[Vec<u8>], z: Z, arch: &str, cmd: &[&str]) -> Value {
        self.image_with(layers, z, arch, json!({"Cmd": cmd, "Env": ["PATH=/bin"]}))
    }

    /// The same with the image config's `config` given whole.
    pub fn image_with(&mut self, layers: &[Vec<u8>], z: Z, arch: &str, run_config: Value) -> Value {
        let mut descs = vec![];
        let mut diff_ids = vec![];
        for l in layers {
            diff_ids.push(sha(l));
            let (bytes, mt) = match z {
                Z::Gzip => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(l).unwrap();
                    (
                        e.finish().unwrap(),
                        "application/vnd.oci.image.layer.v1.tar+gzip",
                    )
                }
                Z::Zstd => (
                    zstd::encode_all(l.as_slice(), 3).unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                ),
                Z::Plain => (l.clone(), "application/vnd.oci.image.layer.v1.tar"),
            };
            descs.push(json!({"mediaType": mt, "digest": self.blob(&bytes), "size": bytes.len()}));
        }
        let history: Vec<Value> = layers.iter().enumerate().map(|(i, _)| json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("layer {i}")})).collect();
        let config = json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": arch, "os": "linux",
            "config": run_config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        let cb = serde_json::to_vec(&config).unwrap();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.blob(&cb), "size": cb.len()},
            "layers": descs,
        });
        let mb = serde_json::to_vec(&manifest).unwrap();
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": self.blob(&mb), "size": mb.len(),
               "platform": {"architecture": arch, "os": "linux"}})
    }

    /// A manifest of blobs given as they are: the config's media type and
    /// bytes, each layer's media type and bytes; its descriptor.
    pub fn raw(&mut self, config_type: &str, config: &[u8], layers: &[(&str, Vec<u8>)]) -> Value {
        let descs: Vec<Value> = layers
            .iter()
            .map(|(mt, b)| json!({"mediaType": mt, "digest": self.blob(b), "size": b.len()}))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_type, "digest": self.blob(config), "size": config.len()},
            "layers": descs,
        });
        let mb = serde_json::to_vec(&manifest).unwrap();
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": self.blob(&mb), "size": mb.len()})
    }

    /// Names one image (a manifest) in index.json.
    pub fn tag(&mut self, desc: &Value, tag: &str) {
        let mut d = desc.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.index.push(d);
        self.write_index();
    }

    /// Names an index of several images in index.json.
    pub fn tag_index(&mut self, descs: &[Value], tag: &str) {
        let ix = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs});
        let b = serde_json::to_vec(&ix).unwrap();
        let d = json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": self.blob(&b), "size": b.len(),
                       "annotations": {"org.opencontainers.image.ref.name": tag}});
        self.index.push(d);
        self.write_index();
    }

    fn write_index(&self) {
        let ix = json!({"schemaVersion": 2, "manifests": self.index});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&ix).unwrap(),
        )
        .unwrap();
    }
}

/// Whether a command is on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Skips (with a line saying so) when a tool the test needs is missing.
#[macro_export]
macro_rules! need {
    ($($cmd:expr),+) => {
        $(if !common::have($cmd) {
            eprintln!("skipped: {} is not installed (scripts/deps.sh)", $cmd);
            return;
        })+
    };
}

/// A private dockerd (Debian's docker.io) in a network namespace of its
/// own, its data under a directory of the test's (vfs storage). Stopped,
/// with what it mounted, on drop.
pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Child,
    had_run_docker: bool,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("skiff-store-dockerd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let base = dir.path().display().to_string();
        let had_run_docker = Path::new("/run/docker").exists();
        fs::write(
            dir.path().join("daemon.json"),
            format!("{{\"deprecated-key-path\": \"{base}/key.json\"}}"),
        )
        .unwrap();
        let child = Command::new("unshare")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec dockerd \"$@\"",
                "sh",
            ])
            .args([
                "--data-root",
                &format!("{base}/data"),
                "--exec-root",
                &format!("{base}/exec"),
            ])
            .args([
                "--pidfile",
                &format!("{base}/dockerd.pid"),
                "--config-file",
                &format!("{base}/daemon.json"),
            ])
            .args([
                "-H",
                &format!("unix://{base}/docker.sock"),
                "--storage-driver",
                "vfs",
            ])
            .stdout(fs::File::create(dir.path().join("dockerd.log")).unwrap())
            .stderr(fs::File::create(dir.path().join("dockerd.err")).unwrap())
            .spawn()
            .expect("dockerd (docker.io, scripts/deps.sh)");
        let d = Dockerd {
            dir,
            child,
            had_run_docker,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while d.docker(&["version"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                fs::read_to_string(d.dir.path().join("dockerd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(format!("unix://{}/docker.sock", self.dir.path().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(o.status.success(), "docker {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let base = self.dir.path().display().to_string();
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &format!("containerd.*{base}")])
            .status();
        let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|p| p.starts_with(&base))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", &p]).status();
        }
        if !self.had_run_docker {
            let _ = fs::remove_dir("/run/docker/plugins");
            let _ = fs::remove_dir("/run/docker");
        }
    }
}

/// A store of the test's own with `app:1` (busybox; Cmd echoes GREETING
/// and the working directory; Env PATH=/bin, GREETING=hi; WorkingDir
/// /srv), pushed to `reg` and pulled from it.
pub fn app_store(reg: &Registry) -> Engine {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("app"));
    let d = l.image_with(
        &[busybox_layer()],
        Z::Gzip,
        "amd64",
        json!({"Cmd": ["sh", "-c", "echo from-cmd $GREETING in $(pwd)"], "Env": ["PATH=/bin", "GREETING=hi"], "WorkingDir": "/srv"}),
    );
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "app:1", false);
    let e = Engine::new();
    e.ok(&["pull", "-q", &format!("{}/app:1", reg.addr())]);
    e
}
