//! The engine's image side against real parts: Debian's docker-registry on
//! 127.0.0.1 (plain, and TLS with basic auth), images made offline and
//! pushed with skopeo, Podman for archive round trips, overlayfs for the
//! image's tree.

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;

use common::*;
use serde_json::Value;

/// A busybox image pushed as REGISTRY/busybox:1; the layout's dir.
fn busybox(reg: &Registry, tmp: &std::path::Path) {
    let mut l = Layout::new(&tmp.join("bb"));
    let d = l.image(&[busybox_layer()], Z::Gzip, "amd64", &["sh"]);
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "busybox:1", false);
}

#[test]
fn pull_lists_inspects_mounts_and_removes_an_image() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    let name = format!("{}/busybox:1", reg.addr());
    let id = e.ok(&["pull", &name]).trim().to_string();
    assert_eq!(id.len(), 64, "pull prints the image id: {id}");

    let list = e.ok(&["images"]);
    let row = list.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        row.starts_with(&format!("{}/busybox", reg.addr())) && row.contains(&id[..12]),
        "{list}"
    );
    assert_eq!(e.ok(&["images", "-q"]).trim(), &id[..12]);
    let json: Value = serde_json::from_str(&e.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(json[0]["RepoTags"][0], name.as_str());

    let doc: Value = serde_json::from_str(&e.ok(&["inspect", "busybox:1"])).unwrap();
    let img = &doc[0];
    assert_eq!(img["Id"], format!("sha256:{id}").as_str());
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(img["RootFS"]["Layers"][0], sha(&busybox_layer()).as_str());
    assert!(img["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/busybox@sha256:", reg.addr())));
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.Id}}", &id[..12]]).trim(),
        format!("sha256:{id}")
    );
    assert!(e.ok(&["history", "busybox:1"]).contains("layer 0"));

    // The image's tree: an overlay of its layer; busybox runs in it.
    let m = e
        .ok(&["image", "mount", "--name", "t1", "busybox:1"])
        .trim()
        .to_string();
    let o = Command::new("chroot")
        .args([
            &m,
            "/bin/sh",
            "-c",
            "echo hello from $(cat /etc/os-release)",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello from NAME=skiff-test",
        "{}",
        text(&o)
    );
    fs::write(format!("{m}/tmp/written"), "x").unwrap();
    let layer_dir = fs::read_dir(e.root().join("layers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        !layer_dir.join("diff/tmp/written").exists(),
        "a write reached the image's layer"
    );
    // In use: rmi refuses without -f.
    let err = e.fails(&["rmi", "busybox:1"]);
    assert!(err.contains("in use by mount:t1"), "{err}");
    e.ok(&["image", "unmount", "t1"]);
    assert!(!e.root().join("mounts/t1").exists());

    let before = du(e.root());
    let out = e.ok(&["rmi", &name]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(e.ok(&["images", "-q"]).trim().is_empty());
    assert!(
        !layer_dir.exists(),
        "the layer stayed after its last image went"
    );
    assert!(
        du(e.root()) + 1_000_000 < before,
        "rmi freed less than the layer's size"
    );
    assert!(e.ok(&["system", "check"]).starts_with("ok"));
}

/// An image pulled by digest alone is named so, as Podman names it:
/// listed under its repository without a tag, not dangling, kept by
/// `image prune`; `rmi REPO@DIGEST` removes it.
#[test]
fn an_image_pulled_by_digest_is_named_and_kept_by_prune() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{}/busybox:1", reg.addr()))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let digest = doc["Digest"].as_str().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "skopeo: {}", text(&o));
    let e = Engine::new();
    let pinned = format!("{}/busybox@{digest}", reg.addr());
    let id = e.ok(&["pull", "-q", &pinned]).trim().to_string();
    let list = e.ok(&["images"]);
    let row = list.lines().nth(1).unwrap_or_default().to_string();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols[..2],
        [format!("{}/busybox", reg.addr()).as_str(), "<none>"],
        "{list}"
    );
    assert_eq!(e.ok(&["images", "-q", "--filter", "dangling=true"]), "");
    e.ok(&["image", "prune"]);
    assert_eq!(
        e.ok(&["images", "-q"]).trim(),
        &id[..12],
        "prune removed it"
    );
    let out = e.ok(&["rmi", &pinned]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(e.ok(&["images", "-q", "-a"]), "");
    // A tag given with the digest names nothing (the registry has no
    // such tag): the digest wins, as Podman's pull takes it.
    let both = format!("{}/busybox:nosuch@{digest}", reg.addr());
    e.ok(&["pull", "-q", &both]);
    let list = e.ok(&["images"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.contains("nosuch"), "{list}");
    e.ok(&["run", "--rm", "--network", "none", &both, "true"]);
}

/// A blob the registry serves with other bytes than its digest says (a
/// byte of the gzip header changed: it still unpacks to the right tree)
/// is refused naming the layer, and nothing of it stays: no image, no
/// layer, no blob, no partial download to resume from.
#[test]
fn a_layer_whose_digest_does_not_match_is_refused_and_nothing_kept() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let name = format!("{}/busybox:1", reg.addr());
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    let m: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let layer = m["layers"][0]["digest"].as_str().unwrap_or_default();
    assert!(layer.starts_with("sha256:"), "skopeo: {}", text(&o));
    let hex = &layer[7..];
    let data = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = fs::read(&data).unwrap();
    bytes[4] ^= 1; // the gzip header's mtime
    fs::write(&data, &bytes).unwrap();
    let e = Engine::new();
    let o = e.cmd(&["pull", "-q", &name]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(
        text(&o).contains("digest mismatch") && text(&o).contains(layer),
        "{}",
        text(&o)
    );
    assert_eq!(e.ok(&["images", "-q", "-a"]), "");
    for dir in ["ingest", "layers", "blobs/sha256", "tmp"] {
        let left: Vec<_> = fs::read_dir(e.root().join(dir))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}/ kept {left:?}");
    }
}

fn du(p: &std::path::Path) -> u64 {
    let o = Command::new("du").args(["-sb"]).arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_second_pull_fetches_only_the_manifest_and_layers_are_shared() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    // A second image on top of the same base layer.
    let mut l = Layout::new(&tmp.path().join("app"));
    let top = tar_of(&[F::File("app", b"v2".to_vec())]);
    let d = l.image(&[busybox_layer(), top], Z::Gzip, "amd64", &["cat", "/app"]);
    l.tag(&d, "2");
    reg.push_layout(&l.dir, "2", "app:2", false);

    let e = Engine::new();
    e.ok(&["pull", "-q", &format!("{}/busybox:1", reg.addr())]);
    let gets = reg.blob_gets();
    let again = e.cmd(&["pull", &format!("{}/busybox:1", reg.addr())]);
    assert!(text(&again).contains("up to date"), "{}", text(&again));
    assert_eq!(
        reg.blob_gets(),
        gets,
        "the re-pull fetched blobs:\n{}",
        reg.log()
    );
    // The app shares busybox's layer: only its own layer and config come.
    e.ok(&["pull", "-q", &format!("{}/app:2", reg.addr())]);
    assert_eq!(reg.blob_gets(), gets + 2, "{}", reg.log());
    assert_eq!(fs::read_dir(e.root().join("layers")).unwrap().count(), 2);
    // rmi of the base keeps the shared layer for the app.
    e.ok(&["rmi", &format!("{}/busybox:1", reg.addr())]);
    let m = e
        .ok(&["image", "mount", "--name", "app", "app:2"])
        .trim()
        .to_string();
    assert_eq!(fs::read_to_string(format!("{m}/app")).unwrap(), "v2");
    assert!(fs::metadata(format!("{m}/bin/busybox")).is_ok());
    e.ok(&["image", "unmount", "app"]);
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_files() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tar_of(&[
        F::Dir("a/"),
        F::File("a/x", b"x".to_vec()),
        F::File("a/y", b"y".to_vec()),
        F::Dir("d/"),
        F::File("d/old", b"old".to_vec()),
        F::File("d/sub/deep", b"deep".to_vec()),
    ]);
    let upper = tar_of(&[
        F::File("a/.wh.x", vec![]),
        F::Dir("d/"),
        F::File("d/.wh..wh..opq", vec![]),
        F::File("d/new", b"new".to_vec()),
    ]);
    let top = tar_of(&[F::File("a/z", b"z".to_vec())]);
    let mut l = Layout::new(&tmp.path().join("wh"));
    let d = l.image(&[base, upper, top], Z::Plain, "amd64", &["sh"]);
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "wh:1", false);
    let e = Engine::new();
    e.ok(&["pull", "-q", &format!("{}/wh:1", reg.addr())]);
    let m = e
        .ok(&["image", "mount", "--name", "wh", "wh:1"])
        .trim()
        .to_string();
    let names = |d: &str| {
        let mut v: Vec<String> = fs::read_dir(format!("{m}/{d}"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("a"), ["y", "z"], "a whiteout hides a/x");
    assert_eq!(
        names("d"),
        ["new"],
        "an opaque d/ hides what lower layers put there"
    );
    e.ok(&["image", "unmount", "wh"]);
}

#[test]
fn a_multi_platform_index_and_zstd_layers() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("multi"));
    let amd = l.image(
        &[tar_of(&[F::File("arch", b"amd64".to_vec())])],
        Z::Zstd,
        "amd64",
        &["sh"],
    );
    let arm = l.image(
        &[tar_of(&[F::File("arch", b"arm64".to_vec())])],
        Z::Gzip,
        "arm64",
        &["sh"],
    );
    l.tag_index(&[amd, arm], "1");
    reg.push_layout(&l.dir, "1", "multi:1", true);
    let e = Engine::new();
    let name = format!("{}/multi:1", reg.addr());
    e.ok(&["pull", "-q", &name]);
    let arch = |e: &Engine| {
        e.ok(&["inspect", "--format", "{{.Architecture}}", &name])
            .trim()
            .to_string()
    };
    assert_eq!(arch(&e), "amd64", "this machine's platform from the index");
    let m = e
        .ok(&["image", "mount", "--name", "m", &name])
        .trim()
        .to_string();
    assert_eq!(
        fs::read_to_string(format!("{m}/arch")).unwrap(),
        "amd64",
        "the zstd layer"
    );
    e.ok(&["image", "unmount", "m"]);
    e.ok(&["pull", "-q", "--platform", "linux/arm64", &name]);
    assert_eq!(arch(&e), "arm64");
    // create --platform: the name held another platform's image; pulled
    // again for the one asked, as Podman's create does.
    let o = e.cmd(&["create", "--name", "p", "--platform", "linux/amd64", &name]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Unable to find image"), "{}", text(&o));
    assert_eq!(arch(&e), "amd64");
    let o = e.cmd(&["create", "--name", "p2", "--platform", "linux/amd64", &name]);
    assert!(!text(&o).contains("Unable to find image"), "{}", text(&o));
    e.ok(&["rm", "p", "p2"]);
    let err = e.fails(&["create", "--platform", "amd64", &name]);
    assert!(err.contains("--platform"), "{err}");
    e.ok(&["pull", "-q", "--platform", "linux/arm64", &name]);
    // The index says arm64 without a variant (as most do): it serves v8,
    // what an arm64 machine asks for, as Podman takes it.
    let e2 = Engine::new();
    e2.ok(&["pull", "-q", "--platform", "linux/arm64/v8", &name]);
    assert_eq!(arch(&e2), "arm64");
    // Podman's --arch (--os, --variant) take the rest from this machine.
    let e3 = Engine::new();
    e3.ok(&["pull", "-q", "--arch", "arm64", &name]);
    assert_eq!(arch(&e3), "arm64");
    let err = e3.fails(&["pull", "--arch", "s390x", &name]);
    assert!(err.contains("no image for linux/s390x"), "{err}");
    let err = e3.fails(&[
        "pull",
        "--arch",
        "arm64",
        "--platform",
        "linux/arm64",
        &name,
    ]);
    assert!(
        err.contains("--platform cannot be given with --arch"),
        "{err}"
    );
    // A single-platform image of another platform: pulled, with Podman's
    // warning.
    let mut one = Layout::new(&tmp.path().join("one"));
    let d = one.image(
        &[tar_of(&[F::File("arch", b"s390x".to_vec())])],
        Z::Gzip,
        "s390x",
        &["sh"],
    );
    one.tag(&d, "1");
    reg.push_layout(&one.dir, "1", "one:1", false);
    let o = e3.cmd(&["pull", &format!("{}/one:1", reg.addr())]);
    assert!(
        o.status.success()
            && text(&o).contains(
                "image platform (linux/s390x) does not match the expected platform (linux/amd64)"
            ),
        "{}",
        text(&o)
    );
    let err = e.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no image for linux/s390x") && err.contains("linux/amd64"),
        "{err}"
    );
    let err = e.fails(&["pull", "--platform", "s390x", &name]);
    assert!(err.contains("--platform"), "{err}");
}

#[test]
fn push_sends_only_missing_blobs_and_keeps_the_digest() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    e.ok(&["pull", "-q", &format!("{}/busybox:1", reg.addr())]);
    let digest = e
        .ok(&["inspect", "--format", "{{.Digest}}", "busybox:1"])
        .trim()
        .to_string();
    let out = e.cmd(&["push", "busybox:1", &format!("{}/copy/bb:9", reg.addr())]);
    // Its layer is mounted from the repository it came from, not sent.
    assert!(
        out.status.success() && text(&out).contains("0 blobs sent, 1 already there"),
        "{}",
        text(&out)
    );
    let out = e.cmd(&["push", "busybox:1", &format!("{}/copy/bb:10", reg.addr())]);
    assert!(
        text(&out).contains("0 blobs sent, 1 already there"),
        "{}",
        text(&out)
    );
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{}/copy/bb:9", reg.addr()))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(doc["Digest"], digest.as_str(), "{}", text(&o));
    // A new image (imported) goes whole to a registry that lacks it.
    let rootfs = tmp.path().join("rootfs.tar");
    fs::write(&rootfs, tar_of(&[F::File("hello", b"world".to_vec())])).unwrap();
    e.ok(&["import", rootfs.to_str().unwrap(), "imported:1"]);
    assert!(e.ok(&["images"]).contains("localhost/imported"));
    let out = e.cmd(&["push", "imported:1", &format!("{}/imported:1", reg.addr())]);
    assert!(
        text(&out).contains("1 blobs sent, 0 already there"),
        "{}",
        text(&out)
    );
    let e2 = Engine::new();
    e2.ok(&["pull", "-q", &format!("{}/imported:1", reg.addr())]);
    let m = e2
        .ok(&["image", "mount", "--name", "i", "imported:1"])
        .trim()
        .to_string();
    assert_eq!(fs::read_to_string(format!("{m}/hello")).unwrap(), "world");
    e2.ok(&["image", "unmount", "i"]);
}

/// What skiff pushes is what skopeo and Podman read back: the manifest's
/// digest, the config's (the image id) and the layers' digests as
/// `inspect` shows them; each blob went up in one request body (POST,
/// then PUT with it), not a PATCH per MiB.
#[test]
fn a_pushed_image_reads_back_in_skopeo_and_podman_sent_whole() {
    need!("docker-registry", "skopeo", "podman");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    // 3 MiB gzip cannot shrink: a layer over the old 1 MiB chunks.
    let mut noise = vec![0u8; 3 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let rootfs = tmp.path().join("rootfs.tar");
    fs::write(&rootfs, tar_of(&[F::File("noise", noise)])).unwrap();
    let e = Engine::new();
    e.ok(&["import", rootfs.to_str().unwrap(), "noise:1"]);
    let dest = format!("{}/team/noise:1", reg.addr());
    e.ok(&["push", "noise:1", &dest]);
    let log = reg.log();
    let uploads = |method: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"{method} /v2/team/noise/blobs/uploads/")))
            .count()
    };
    assert_eq!(uploads("PATCH"), 0, "blobs were sent in chunks");
    assert_eq!(
        uploads("PUT"),
        2,
        "a PUT for the layer and one for the config"
    );
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", "noise:1"])).unwrap();
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    let sk: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let digest = e.ok(&["inspect", "--format", "{{.Digest}}", "noise:1"]);
    assert_eq!(sk["Digest"], digest.trim(), "{}", text(&o));
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    let raw: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(
        raw["config"]["digest"], doc[0]["Id"],
        "the config is the image id"
    );
    assert_eq!(sk["Layers"][0], raw["layers"][0]["digest"]);
    let pm = tmp.path().join("podman");
    let podman = |args: &[&str]| {
        let o = podman_at(&pm).args(args).output().unwrap();
        assert!(o.status.success(), "podman {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let rel = Registry::start_relative();
    let rdest = format!("{}/team/noise:1", rel.addr());
    e.ok(&["push", "noise:1", &rdest]);
    assert!(
        rel.log().contains("\"PUT /v2/team/noise/blobs/uploads/"),
        "{}",
        rel.log()
    );
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{rdest}"))
        .output()
        .unwrap();
    let rsk: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(rsk["Digest"], digest.trim(), "{}", text(&o));
    podman(&["pull", "-q", "--tls-verify=false", &dest]);
    let pid = podman(&["image", "inspect", "--format", "{{.Id}} {{.Digest}}", &dest]);
    assert_eq!(
        pid.trim(),
        format!(
            "{} {}",
            doc[0]["Id"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("sha256:"),
            digest.trim()
        )
    );
    podman(&["rmi", "-a", "-f"]);
}

/// Two images of one layer in two compressions (zstd, gzip): the second
/// pull finds the tree there already but still fetches its own blob, so
/// it saves and pushes as its manifest says, digest unchanged.
#[test]
fn a_layer_present_in_another_compression_still_brings_its_blob() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("two"));
    let z = l.image(&[busybox_layer()], Z::Zstd, "amd64", &["sh"]);
    l.tag(&z, "z");
    let g = l.image(&[busybox_layer()], Z::Gzip, "amd64", &["true"]);
    l.tag(&g, "g");
    reg.push_layout(&l.dir, "z", "two:z", false);
    reg.push_layout(&l.dir, "g", "two:g", false);
    let e = Engine::new();
    e.ok(&["pull", "-q", &format!("{}/two:z", reg.addr())]);
    let gname = format!("{}/two:g", reg.addr());
    e.ok(&["pull", "-q", &gname]);
    let archive = tmp.path().join("g.tar");
    e.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        &gname,
    ]);
    let other = Registry::start();
    let dest = format!("{}/two:g", other.addr());
    e.ok(&["push", &gname, &dest]);
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(doc["Digest"], g["digest"], "{}", text(&o));
    assert!(e.ok(&["system", "check"]).starts_with("ok"));
    // The same image (its config) loaded from a docker-archive, whose
    // manifest differs: a pull then fetches no blob at all.
    let docker = tmp.path().join("g-docker.tar");
    e.ok(&["save", "-o", docker.to_str().unwrap(), &gname]);
    let e2 = Engine::new();
    e2.ok(&["load", "-i", docker.to_str().unwrap()]);
    let before = reg.blob_gets();
    e2.ok(&["pull", "-q", &gname]);
    assert_eq!(
        reg.blob_gets(),
        before,
        "blobs fetched for an image the store has"
    );
    assert!(e2.ok(&["system", "check"]).starts_with("ok"));
}

/// The image config's labels are the container's too, under --label's
/// (Docker's and Podman's Config.Labels); its StopSignal is kept.
#[test]
fn image_labels_and_stop_signal_reach_the_container() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("lab"));
    let d = l.image_with(
        &[busybox_layer()],
        Z::Gzip,
        "amd64",
        serde_json::json!({"Cmd": ["sh"], "Env": ["PATH=/bin"], "StopSignal": "SIGUSR1",
            "Labels": {"org.example.tier": "web", "org.example.team": "img"}}),
    );
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "lab:1", false);
    let e = Engine::new();
    let name = format!("{}/lab:1", reg.addr());
    e.ok(&["pull", "-q", &name]);
    e.ok(&[
        "create",
        "--name",
        "c",
        "--label",
        "org.example.team=ctr",
        &name,
    ]);
    let doc: Value = serde_json::from_str(&e.ok(&["container", "inspect", "c"])).unwrap();
    let cfg = &doc[0]["Config"];
    assert_eq!(cfg["Labels"]["org.example.tier"], "web", "{cfg}");
    assert_eq!(cfg["Labels"]["org.example.team"], "ctr", "--label wins");
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    e.ok(&["rm", "c"]);
}

/// zstd:chunked as Debian 12's skopeo (and podman) write it: the blob
/// decompresses to the layer's tar short of the zero padding GNU tar
/// ends a tar with (to a whole 10 KiB record), which the config's diff id
/// counts. Podman pulls it; so does skiff (the tree is the same), and its
/// docker-archive puts the padding back so loads check out.
#[test]
fn zstd_chunked_layers_from_debians_skopeo_pull_and_save() {
    need!("docker-registry", "skopeo", "podman");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layer = busybox_layer();
    layer.resize(layer.len().div_ceil(10240) * 10240, 0);
    let mut l = Layout::new(&tmp.path().join("gnu"));
    let d = l.image(&[layer], Z::Gzip, "amd64", &["sh"]);
    l.tag(&d, "1");
    let name = format!("{}/chunked:1", reg.addr());
    let o = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--dest-compress-format",
            "zstd:chunked",
        ])
        .arg(format!("oci:{}:1", l.dir.display()))
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", text(&o));
    let e = Engine::new();
    e.ok(&["pull", "-q", &name]);
    let m = e
        .ok(&["image", "mount", "--name", "c", &name])
        .trim()
        .to_string();
    assert!(fs::read_to_string(format!("{m}/etc/os-release"))
        .unwrap()
        .contains("skiff-test"));
    e.ok(&["image", "unmount", "c"]);
    let archive = tmp.path().join("chunked.tar");
    e.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    let pm = tmp.path().join("podman");
    let o = podman_at(&pm)
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(o.status.success(), "podman load: {}", text(&o));
    let e2 = Engine::new();
    e2.ok(&["load", "-i", archive.to_str().unwrap()]);
    let _ = podman_at(&pm).args(["rmi", "-a", "-f"]).output();
}

#[test]
fn save_and_load_round_trip_with_podman() {
    need!("docker-registry", "skopeo", "podman");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    let name = format!("{}/busybox:1", reg.addr());
    let id = e.ok(&["pull", "-q", &name]).trim().to_string();
    let pm = tmp.path().join("podman");
    let podman = |args: &[&str]| {
        let o = podman_at(&pm).args(args).output().unwrap();
        assert!(o.status.success(), "podman {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    for format in ["docker-archive", "oci-archive"] {
        let file = tmp.path().join(format!("{format}.tar"));
        e.ok(&[
            "save",
            "--format",
            format,
            "-o",
            file.to_str().unwrap(),
            "busybox:1",
        ]);
        podman(&["load", "-i", file.to_str().unwrap()]);
        let pid = podman(&["image", "inspect", "--format", "{{.Id}}", &name]);
        assert_eq!(pid.trim(), id, "{format}: podman loaded another image");
        podman(&["rmi", "-f", &name]);
    }
    // And back: Podman's archives load here, under Podman's names.
    podman(&[
        "pull",
        "-q",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]);
    podman(&["tag", &name, "localhost/frompodman:2"]);
    for format in ["docker-archive", "oci-archive"] {
        let file = tmp.path().join(format!("p-{format}.tar"));
        podman(&[
            "save",
            "--format",
            format,
            "-o",
            file.to_str().unwrap(),
            "localhost/frompodman:2",
        ]);
        let e2 = Engine::new();
        let out = e2.ok(&["load", "-i", file.to_str().unwrap()]);
        assert!(
            out.contains("Loaded image: localhost/frompodman:2"),
            "{format}: {out}"
        );
        assert_eq!(
            e2.ok(&["inspect", "--format", "{{.Id}}", "frompodman:2"])
                .trim(),
            format!("sha256:{id}")
        );
        let m = e2
            .ok(&["image", "mount", "--name", "p", "frompodman:2"])
            .trim()
            .to_string();
        let o = Command::new("chroot")
            .args([&m, "/bin/echo", "ran"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ran", "{format}");
        e2.ok(&["image", "unmount", "p"]);
    }
    // skopeo's archives with names of no registry: an oci-archive's
    // ref.name becomes localhost/NAME, a docker-archive's RepoTags
    // docker.io/NAME, as Podman's load names them.
    let layout = format!("oci:{}:1", tmp.path().join("bb").display());
    for (dest, want) in [
        ("oci-archive", "localhost/team/bb:3"),
        ("docker-archive", "docker.io/team/bb:3"),
    ] {
        let file = tmp.path().join(format!("s-{dest}.tar"));
        let o = Command::new("skopeo")
            .args(["copy", "-q", &layout])
            .arg(format!("{dest}:{}:team/bb:3", file.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo: {}", text(&o));
        let e3 = Engine::new();
        let out = e3.ok(&["load", "-i", file.to_str().unwrap()]);
        assert!(
            out.contains(&format!("Loaded image: {want}")),
            "{dest}: {out}"
        );
        let out = podman(&["load", "-i", file.to_str().unwrap()]);
        assert!(out.contains(want), "podman, {dest}: {out}");
        // Compressed (`docker save | gzip`), as Docker's load takes it.
        let plain = fs::read(&file).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        for (ext, bytes) in [
            ("gz", gz.finish().unwrap()),
            ("zst", zstd::encode_all(plain.as_slice(), 3).unwrap()),
        ] {
            let packed = tmp.path().join(format!("s-{dest}.tar.{ext}"));
            fs::write(&packed, bytes).unwrap();
            let e4 = Engine::new();
            let out = e4.ok(&["load", "-i", packed.to_str().unwrap()]);
            assert!(
                out.contains(&format!("Loaded image: {want}")),
                "{ext}: {out}"
            );
        }
    }
    let bz = tmp.path().join("x.tar.bz2");
    fs::write(&bz, b"BZh91AY&SY").unwrap();
    let err = Engine::new().fails(&["load", "-i", bz.to_str().unwrap()]);
    assert!(err.contains("bzip2"), "{err}");
    podman(&["rmi", "-a", "-f"]);
}

#[test]
fn tls_and_basic_auth_with_login_and_logout() {
    need!("docker-registry", "skopeo", "openssl", "htpasswd");
    let reg = Registry::start_tls();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    let name = format!("{}/busybox:1", reg.addr());
    let auth = tmp.path().join("auth.json");
    let authf = auth.to_str().unwrap();
    // A certificate nobody trusts: refused, with the way out named.
    let err = e.fails(&["pull", "--authfile", authf, &name]);
    assert!(err.contains("--tls-verify=false"), "{err}");
    let err = e.fails(&["pull", "--tls-verify=false", "--authfile", authf, &name]);
    assert!(err.contains("Not authorized"), "{err}");
    let err = e.fails(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authf,
        "-u",
        "tester",
        "-p",
        "wrong",
        &reg.addr(),
    ]);
    assert!(err.contains("login refused"), "{err}");
    assert!(!auth.exists(), "a refused login wrote credentials");
    e.ok(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authf,
        "-u",
        "tester",
        "-p",
        "s3cret",
        &reg.addr(),
    ]);
    let doc: Value = serde_json::from_str(&fs::read_to_string(&auth).unwrap()).unwrap();
    assert!(doc["auths"][reg.addr()]["auth"].is_string());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    e.ok(&[
        "pull",
        "-q",
        "--tls-verify=false",
        "--authfile",
        authf,
        &name,
    ]);
    e.ok(&[
        "push",
        "--tls-verify=false",
        "--authfile",
        authf,
        "busybox:1",
        &format!("{}/again:1", reg.addr()),
    ]);
    e.ok(&["logout", "--authfile", authf, &reg.addr()]);
    let err = e.fails(&["logout", "--authfile", authf, &reg.addr()]);
    assert!(err.contains("not logged into"), "{err}");
    // --creds works without a file; with the registry's CA trusted
    // (--cert-dir), TLS is verified and passes.
    let e2 = Engine::new();
    let certs = tmp.path().join("certs");
    fs::create_dir(&certs).unwrap();
    fs::copy(reg.dir.path().join("ca.pem"), certs.join("ca.crt")).unwrap();
    let certs = certs.to_str().unwrap();
    e2.ok(&[
        "pull",
        "-q",
        "--cert-dir",
        certs,
        "--creds",
        "tester:s3cret",
        &name,
    ]);
    // run pulls what it lacks with the same registry flags (--creds too).
    let e3 = Engine::new();
    let o = e3.cmd(&[
        "run",
        "--rm",
        "--cert-dir",
        certs,
        "--creds",
        "tester:s3cret",
        &name,
        "echo",
        "pulled-by-run",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "pulled-by-run",
        "{}",
        text(&o)
    );
}

#[test]
fn a_pull_killed_midway_resumes_and_leaves_the_store_consistent() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    // 48 MB that does not compress, in two layers, so kills land mid-download.
    let noise = |seed: u64, n: usize| {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
    };
    let mut l = Layout::new(&tmp.path().join("big"));
    let d = l.image(
        &[
            tar_of(&[F::File("one", noise(1, 24 << 20))]),
            tar_of(&[F::File("two", noise(2, 24 << 20))]),
        ],
        Z::Gzip,
        "amd64",
        &["sh"],
    );
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "big:1", false);
    let name = format!("{}/big:1", reg.addr());
    let e = Engine::new();
    let mut partial_seen = false;
    for delay_ms in [5u64, 30, 80, 150, 300] {
        let mut child = Command::new(skiff_bin())
            .arg("--root")
            .arg(e.root())
            .args(["pull", "-q", &name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Never a half image: listed whole or not at all.
        let list = e.ok(&["images", "-q"]);
        if !list.trim().is_empty() {
            assert!(e.ok(&["system", "check"]).starts_with("ok"));
        }
        partial_seen |= fs::read_dir(e.root().join("ingest"))
            .map(|d| {
                d.flatten()
                    .any(|f| f.metadata().map(|m| m.len() > 0).unwrap_or(false))
            })
            .unwrap_or(false);
    }
    let id = e.ok(&["pull", "-q", &name]).trim().to_string();
    assert_eq!(
        format!("sha256:{id}"),
        e.ok(&["inspect", "--format", "{{.Id}}", &name]).trim()
    );
    let check = e.ok(&["system", "check"]);
    assert!(check.starts_with("ok: 3 blobs and 2 layers"), "{check}");
    let m = e
        .ok(&["image", "mount", "--name", "big", &name])
        .trim()
        .to_string();
    assert_eq!(fs::read(format!("{m}/one")).unwrap(), noise(1, 24 << 20));
    assert_eq!(fs::read(format!("{m}/two")).unwrap(), noise(2, 24 << 20));
    e.ok(&["image", "unmount", "big"]);
    assert!(
        fs::read_dir(e.root().join("ingest"))
            .unwrap()
            .next()
            .is_none(),
        "ingest/ kept a finished download"
    );
    // A kill mid-download left part of a blob, and a later pull asked
    // only for the rest (the registry answered 206 Partial Content).
    if partial_seen {
        assert!(
            reg.log().contains("\" 206 "),
            "no ranged request after a partial download:\n{}",
            reg.log()
        );
    } else {
        eprintln!("no kill landed mid-download (this machine was too fast or too slow)");
    }
}

#[test]
fn system_check_finds_and_repairs_a_damaged_blob() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    e.ok(&["pull", "-q", &format!("{}/busybox:1", reg.addr())]);
    let blob = fs::read_dir(e.root().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|f| f.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let o = e.cmd(&["system", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("damaged"), "{}", text(&o));
    e.ok(&["system", "check", "--repair"]);
    assert!(e.ok(&["system", "check"]).starts_with("ok"));
    assert!(
        e.ok(&["images", "-q"]).trim().is_empty(),
        "the image that needed the blob is gone"
    );
    // And the next pull brings it back whole.
    e.ok(&["pull", "-q", &format!("{}/busybox:1", reg.addr())]);
    assert!(e.ok(&["system", "check"]).starts_with("ok"));
}

#[test]
fn bad_input_is_named_and_exits_125() {
    let e = Engine::new();
    for (args, want) in [
        (vec!["pull", "Not A Ref"], "image reference"),
        (vec!["inspect", "nosuchimage"], "image not known"),
        (vec!["rmi", "nosuchimage"], "image not known"),
        (vec!["images", "--filter", "color=red"], "--filter"),
        (
            vec!["save", "--format", "zip", "-o", "/dev/null", "x"],
            "--format",
        ),
        (
            vec!["pull", "--creds", "nocolon", "127.0.0.1:1/x"],
            "--creds",
        ),
        (vec!["pull", "127.0.0.1:1/x:1"], "127.0.0.1:1"),
    ] {
        let o = e.cmd(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    let o = e.cmd(&["pull", "Not A Ref"]);
    assert_eq!(o.status.code(), Some(125));
    let junk = tempfile::NamedTempFile::new().unwrap();
    fs::write(junk.path(), b"not a tar at all, just words").unwrap();
    let err = e.fails(&["load", "-i", junk.path().to_str().unwrap()]);
    assert!(err.contains("archive"), "{err}");
    assert!(
        fs::read_dir(e.root().join("tmp")).unwrap().next().is_none(),
        "load left scratch behind"
    );
}

/// What the image-spec names but an engine may not run: an artifact (a
/// Helm chart's config type) and a layer of an unknown type are refused
/// naming the field, with nothing stored; non-distributable layers
/// (plain and zstd) are pulled from the registry like any other.
#[test]
fn artifacts_and_unknown_layer_types_are_refused_and_foreign_layers_pulled() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("odd"));
    let layer = tar_of(&[F::File("hello", b"foreign".to_vec())]);
    let config = |n: usize| {
        let diff_ids = vec![sha(&layer); n];
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    };
    let oci_config = "application/vnd.oci.image.config.v1+json";
    let helm = l.raw(
        "application/vnd.cncf.helm.config.v1+json",
        b"{}",
        &[(
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            b"chart".to_vec(),
        )],
    );
    l.tag(&helm, "helm");
    let weird = l.raw(
        oci_config,
        &config(1),
        &[("application/vnd.example.weird", layer.clone())],
    );
    l.tag(&weird, "weird");
    let foreign = l.raw(
        oci_config,
        &config(2),
        &[
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                layer.clone(),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                zstd::encode_all(layer.as_slice(), 3).unwrap(),
            ),
        ],
    );
    l.tag(&foreign, "foreign");
    for t in ["helm", "weird", "foreign"] {
        reg.push_layout(&l.dir, t, &format!("odd:{t}"), false);
    }
    let e = Engine::new();
    for (t, want) in [
        (
            "helm",
            "config.mediaType \"application/vnd.cncf.helm.config.v1+json\"",
        ),
        ("weird", "application/vnd.example.weird"),
    ] {
        let o = e.cmd(&["pull", "-q", &format!("{}/odd:{t}", reg.addr())]);
        assert_eq!(o.status.code(), Some(125), "{t}: {}", text(&o));
        assert!(text(&o).contains(want), "{t}: {}", text(&o));
    }
    assert_eq!(e.ok(&["images", "-a", "-q"]), "", "nothing listed");
    let blobs = fs::read_dir(e.root().join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "no blob of a refused image kept");
    let name = format!("{}/odd:foreign", reg.addr());
    e.ok(&["pull", "-q", &name]);
    let m = e
        .ok(&["image", "mount", "--name", "f", &name])
        .trim()
        .to_string();
    assert_eq!(fs::read_to_string(format!("{m}/hello")).unwrap(), "foreign");
    e.ok(&["image", "unmount", "f"]);
}

/// A real multi-thousand-file image: a debootstrapped Debian 12 (minbase,
/// made once into target/engine-bench/rootfs, as scripts/bench-engine.sh
/// makes it; skipped without a Debian mirror), imported, pushed, pulled
/// into another store, run, and pruned with its space given back.
#[test]
fn a_debootstrapped_debian_round_trips_runs_and_is_pruned() {
    need!("docker-registry", "skopeo", "debootstrap");
    let work = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/engine-bench");
    let rootfs = work.join("rootfs");
    if !rootfs.join("etc/debian_version").exists() {
        fs::create_dir_all(&work).unwrap();
        let tmp = work.join("rootfs.tmp");
        let _ = fs::remove_dir_all(&tmp);
        let o = Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&tmp)
            .arg("http://deb.debian.org/debian")
            .output()
            .unwrap();
        if !o.status.success() {
            let _ = fs::remove_dir_all(&tmp);
            eprintln!("skipped: no Debian mirror for debootstrap");
            return;
        }
        fs::rename(&tmp, &rootfs).unwrap();
    }
    let reg = Registry::start();
    let seed = Engine::new();
    let tar = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | {} --root {} import - debian:12",
            rootfs.display(),
            skiff_bin(),
            seed.root().display()
        ))
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", text(&tar));
    let name = format!("{}/debian:12", reg.addr());
    seed.ok(&["push", "-q", "debian:12", &name]);
    let e = Engine::new();
    e.ok(&["pull", "-q", &name]);
    let files = String::from_utf8_lossy(
        &Command::new("sh")
            .arg("-c")
            .arg(format!("find {} | wc -l", rootfs.display()))
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse::<usize>()
    .unwrap();
    assert!(files > 3000, "a small Debian: {files} files");
    let o = e.cmd(&[
        "run",
        "--rm",
        &name,
        "sh",
        "-c",
        "cat /etc/debian_version; ls /usr/bin | wc -l; id -un",
    ]);
    let got = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(got.starts_with("12."), "{}", text(&o));
    assert!(
        got.lines()
            .nth(1)
            .unwrap_or("0")
            .parse::<usize>()
            .unwrap_or(0)
            > 100,
        "{got}"
    );
    assert_eq!(got.lines().nth(2), Some("root"));
    assert!(e.ok(&["system", "check"]).starts_with("ok"));
    // Prune without a name: nothing goes (the image is named); untagged,
    // it goes, and du sees the space come back.
    let before = du(e.root());
    e.ok(&["image", "prune", "-f"]);
    assert!(!e.ok(&["images", "-q"]).trim().is_empty());
    e.ok(&["tag", &name, "local/keep:1"]);
    let id = e.ok(&["images", "-q"]).trim().to_string();
    e.ok(&["rmi", &name]);
    assert_eq!(
        e.ok(&["images", "-q"]).trim(),
        id,
        "rmi of one name keeps the other"
    );
    e.ok(&["image", "prune", "-a", "-f"]);
    assert!(e.ok(&["images", "-q"]).trim().is_empty());
    let after = du(e.root());
    assert!(
        after + 150_000_000 < before,
        "prune gave back {} of {before} bytes",
        before - after
    );
}

/// Docker's side of the round trip (Debian's docker.io, a private dockerd):
/// `skiff save | docker load` and `docker save | skiff load` keep the image
/// id, and what was loaded runs.
#[test]
fn save_and_load_round_trip_with_docker() {
    need!("docker-registry", "skopeo", "dockerd");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    let name = format!("{}/busybox:1", reg.addr());
    let id = e.ok(&["pull", "-q", &name]).trim().to_string();
    let d = Dockerd::start();
    let file = tmp.path().join("to-docker.tar");
    e.ok(&["save", "-o", file.to_str().unwrap(), "busybox:1"]);
    d.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(
        d.ok(&["image", "inspect", "--format", "{{.Id}}", &name]),
        format!("sha256:{id}")
    );
    d.ok(&["tag", &name, "fromdocker:2"]);
    let back = tmp.path().join("from-docker.tar");
    d.ok(&["save", "-o", back.to_str().unwrap(), "fromdocker:2"]);
    let e2 = Engine::new();
    let out = e2.ok(&["load", "-i", back.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: docker.io/library/fromdocker:2"),
        "{out}"
    );
    assert_eq!(
        e2.ok(&["inspect", "--format", "{{.Id}}", "fromdocker:2"])
            .trim(),
        format!("sha256:{id}")
    );
    let o = e2.cmd(&["run", "--rm", "fromdocker:2", "echo", "ran"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ran",
        "{}",
        text(&o)
    );
}

/// registries.conf as Podman reads it: an alias, a search list whose first
/// registry does not answer, a mirror in front of a registry that does not
/// exist, a rewritten prefix, and a blocked registry.
#[test]
fn registries_conf_aliases_search_registries_mirrors_and_blocks() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let addr = reg.addr();
    let conf = tmp.path().join("registries.conf");
    fs::write(
        &conf,
        format!(
            r#"
unqualified-search-registries = ["127.0.0.1:1", "{addr}"]
[aliases]
"bb" = "{addr}/busybox"
[[registry]]
prefix = "mirrored.invalid"
location = "mirrored.invalid"
[[registry.mirror]]
location = "127.0.0.1:1"
[[registry.mirror]]
location = "{addr}"
[[registry]]
prefix = "rewritten.invalid/apps"
location = "{addr}"
[[registry]]
location = "blocked.invalid"
blocked = true
"#
        ),
    )
    .unwrap();
    let e = Engine::new();
    let pull = |name: &str| {
        Command::new(skiff_bin())
            .arg("--root")
            .arg(e.root())
            .args(["pull", "-q", name])
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .output()
            .unwrap()
    };
    let names = || -> Vec<String> {
        let json: Value = serde_json::from_str(&e.ok(&["images", "--format", "json"])).unwrap();
        let mut n: Vec<String> = json[0]["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    for (typed, kept) in [
        ("bb:1", format!("{addr}/busybox:1")),
        ("busybox:1", format!("{addr}/busybox:1")),
        (
            "mirrored.invalid/busybox:1",
            "mirrored.invalid/busybox:1".into(),
        ),
        (
            "rewritten.invalid/apps/busybox:1",
            "rewritten.invalid/apps/busybox:1".into(),
        ),
    ] {
        let o = pull(typed);
        assert!(o.status.success(), "pull {typed}: {}", text(&o));
        assert!(names().contains(&kept), "pull {typed}: {:?}", names());
    }
    // Not one of them came from anywhere but the one registry.
    assert_eq!(e.ok(&["images", "-q"]).lines().count(), 1);
    let o = pull("blocked.invalid/x:1");
    assert!(!o.status.success());
    assert!(text(&o).contains("blocked"), "{}", text(&o));
    fs::write(&conf, "unqualified-search-registries = 3\n").unwrap();
    let o = pull("busybox:1");
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(text(&o).contains(conf.to_str().unwrap()), "{}", text(&o));
}

/// `search`: a registry's catalog filtered by the term (Podman's table,
/// Go-tabwriter padded), `--list-tags`, `--limit`, templates; a term
/// with a tag, and Docker Hub's filters, refused by name.
#[test]
fn search_reads_the_catalog_and_lists_tags() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    let a = reg.addr();
    e.ok(&["pull", "-q", &format!("{a}/busybox:1")]);
    for dest in ["busybox:2", "lib/busyapp:latest", "other:1"] {
        e.ok(&["push", "-q", "busybox:1", &format!("{a}/{dest}")]);
    }
    let w = format!("{a}/lib/busyapp").len() + 2;
    let pad = |s: &str| format!("{s:<w$}");
    assert_eq!(
        e.ok(&["search", &format!("{a}/busy")]),
        format!(
            "{}DESCRIPTION\n{}\n{}\n",
            pad("NAME"),
            pad(&format!("{a}/busybox")),
            pad(&format!("{a}/lib/busyapp"))
        )
    );
    assert_eq!(
        e.ok(&[
            "search",
            "--limit",
            "1",
            "--format",
            "{{.Name}} {{.Index}}",
            &format!("{a}/")
        ]),
        format!("{a}/busybox {a}\n")
    );
    let tags = e.ok(&[
        "search",
        "--list-tags",
        "--format",
        "{{.Tag}}",
        &format!("{a}/busybox"),
    ]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);
    let doc: Value =
        serde_json::from_str(&e.ok(&["search", "--format", "json", &format!("{a}/other")]))
            .unwrap();
    assert_eq!(doc[0]["Name"], format!("{a}/other"));
    assert!(e
        .fails(&["search", "--list-tags", &format!("{a}/busybox:1")])
        .contains("without a tag"));
    assert!(e
        .fails(&["search", "--filter", "stars=3", &format!("{a}/busy")])
        .contains("--filter"));
    assert!(!e
        .fails(&["search", "--list-tags", &format!("{a}/nope")])
        .is_empty());
}

/// `manifest create/add/annotate/inspect/remove/push/rm`: a list of two of
/// the store's images (one claimed for arm64), pushed as an OCI index
/// that skopeo reads, from which a pull for each platform takes its own.
#[test]
fn a_manifest_list_is_made_pushed_and_pulled_per_platform() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    busybox(&reg, tmp.path());
    let e = Engine::new();
    let a = reg.addr();
    e.ok(&["pull", "-q", &format!("{a}/busybox:1")]);
    // A second image: the first's with a file more.
    e.ok(&[
        "run",
        "--name",
        "c",
        &format!("{a}/busybox:1"),
        "sh",
        "-c",
        "echo arm > /which",
    ]);
    let iid = tmp.path().join("iid");
    let second = e
        .ok(&[
            "commit",
            "--iidfile",
            iid.to_str().unwrap(),
            "c",
            "second:1",
        ])
        .trim()
        .to_string();
    assert_eq!(
        fs::read_to_string(&iid).unwrap(),
        format!("sha256:{second}")
    );
    e.ok(&["rm", "c"]);
    let first = e
        .ok(&["inspect", "--format", "{{.Id}}", "busybox:1"])
        .trim()
        .trim_start_matches("sha256:")
        .to_string();

    let id = e.ok(&["manifest", "create", "mylist", "busybox:1"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert!(e
        .fails(&["manifest", "create", "mylist"])
        .contains("exists"));
    e.ok(&[
        "manifest",
        "add",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        "--annotation",
        "team=a",
        "mylist",
        "second:1",
    ]);
    let index: Value = serde_json::from_str(&e.ok(&["manifest", "inspect", "mylist"])).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    assert_eq!(entries[0]["platform"]["architecture"], "amd64");
    assert_eq!(entries[1]["platform"]["architecture"], "arm64");
    assert_eq!(entries[1]["annotations"]["team"], "a");
    // annotate by a digest prefix; remove and add back.
    let d1 = entries[1]["digest"].as_str().unwrap().to_string();
    e.ok(&[
        "manifest",
        "annotate",
        "--os",
        "linux",
        "--annotation",
        "k=v",
        "mylist",
        &d1[7..19],
    ]);
    let index: Value =
        serde_json::from_str(&e.ok(&["manifest", "inspect", "localhost/mylist:latest"])).unwrap();
    assert_eq!(index["manifests"][1]["annotations"]["k"], "v");
    e.ok(&["manifest", "remove", "mylist", &d1]);
    let index: Value = serde_json::from_str(&e.ok(&["manifest", "inspect", "mylist"])).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert!(e
        .fails(&["manifest", "remove", "mylist", "sha256:0000"])
        .contains("no such manifest"));
    e.ok(&["manifest", "add", "--arch", "arm64", "mylist", "second:1"]);

    // push --digestfile: the manifest's digest, as inspect has it.
    let pushed = tmp.path().join("pushed");
    e.ok(&[
        "push",
        "-q",
        "--digestfile",
        pushed.to_str().unwrap(),
        "second:1",
        &format!("{a}/second:1"),
    ]);
    assert_eq!(
        fs::read_to_string(&pushed).unwrap(),
        e.ok(&["inspect", "--format", "{{.Digest}}", "second:1"])
            .trim()
    );
    let dest = format!("{a}/multi:1");
    let digest_file = tmp.path().join("digest");
    e.ok(&[
        "manifest",
        "push",
        "-q",
        "--digestfile",
        digest_file.to_str().unwrap(),
        "mylist",
        &dest,
    ]);
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{dest}"),
        ])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", text(&raw));
    let pushed: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(pushed["manifests"].as_array().unwrap().len(), 2, "{pushed}");
    assert_eq!(fs::read_to_string(&digest_file).unwrap(), sha(&raw.stdout));
    // Each platform's pull takes its own image.
    let other = Engine::new();
    assert_eq!(other.ok(&["pull", "-q", &dest]).trim(), first);
    let arm = Engine::new();
    assert_eq!(
        arm.ok(&["pull", "-q", "--platform", "linux/arm64", &dest])
            .trim(),
        second
    );

    assert_eq!(
        e.cmd(&["manifest", "exists", "mylist"]).status.code(),
        Some(0)
    );
    assert!(e
        .ok(&["manifest", "rm", "mylist"])
        .starts_with("Untagged: localhost/mylist:latest\n"));
    assert_eq!(
        e.cmd(&["manifest", "exists", "mylist"]).status.code(),
        Some(1)
    );
    assert!(e
        .fails(&["manifest", "inspect", "mylist"])
        .contains("no such manifest list"));
}
