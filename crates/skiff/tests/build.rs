//! `skiff build`: Containerfiles built as Docker and Buildah build them,
//! RUN in real containers (skiff-oci, $SKIFF_OCI), the layer cache, and
//! the image run by skiff and loaded by Podman. The base image is busybox
//! pulled from a registry of the test's own.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// A store (with `busybox:1` pulled from a registry on 127.0.0.1, when
/// `pulled`) and the registry.
struct Fixture {
    e: Engine,
    base: String,
    _reg: Registry,
}

fn fixture() -> Fixture {
    fixture_with(true)
}

fn fixture_with(pulled: bool) -> Fixture {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Layout::new(&tmp.path().join("bb"));
    let d = l.image(&[busybox_layer()], Z::Gzip, "amd64", &["sh"]);
    l.tag(&d, "1");
    reg.push_layout(&l.dir, "1", "busybox:1", false);
    let base = format!("{}/busybox:1", reg.addr());
    let e = Engine::new();
    if pulled {
        e.ok(&["pull", "-q", &base]);
    }
    Fixture { e, base, _reg: reg }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let ids = self.e.cmd(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.e.cmd(&["rm", "-f", id]);
        }
    }
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
}

/// No container row or directory, nothing under tmp/: what a build must
/// leave behind, done or failed.
fn nothing_left(e: &Engine) {
    assert_eq!(e.ok(&["ps", "-a", "-q"]).trim(), "", "a container was left");
    let root = e.root().display().to_string();
    let mounted: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root))
        .map(str::to_string)
        .collect();
    assert!(mounted.is_empty(), "mounts were left: {mounted:?}");
    for d in ["containers", "tmp"] {
        let left: Vec<_> = fs::read_dir(e.root().join(d))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{d}/ holds {left:?}");
    }
}

fn image_config(e: &Engine, name: &str) -> Value {
    let doc: Value = serde_json::from_str(&e.ok(&["inspect", name])).unwrap();
    doc[0].clone()
}

#[test]
fn multi_stage_build_with_args_ignore_heredoc_and_copy_from() {
    need!("docker-registry", "skopeo");
    // FROM pulls the base from the registry: the store starts empty.
    let f = fixture_with(false);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("app/main.txt", "main\n"),
            ("app/notes.log", "left out\n"),
            ("secret", "never copied\n"),
            (".dockerignore", "# the ignore file\nsecret\n**/*.log\n"),
            (
                "Containerfile",
                &format!(
                    r#"# syntax=docker/dockerfile:1
ARG BASE={base}
FROM $BASE AS builder
ARG FLAVOUR=plain
RUN busybox mkdir -p /out && echo "built $FLAVOUR" > /out/artifact

FROM ${{BASE}}
ENV DEST=/srv/app \
    MODE=test
WORKDIR $DEST
COPY app/ ./
COPY --from=builder /out/artifact ./
COPY --from={base} /etc/os-release /srv/base-os-release
RUN <<EOF
echo from-heredoc > /srv/heredoc
cat /srv/app/artifact
EOF
LABEL org.example.kind=test
EXPOSE 8080/tcp
USER web
CMD ["sh", "-c", "cat /srv/app/main.txt /srv/app/artifact /srv/heredoc; id -u; pwd"]
"#,
                    base = f.base
                ),
            ),
        ],
    );
    let out = f.e.cmd(&[
        "build",
        "-t",
        "app:1",
        "--build-arg",
        "FLAVOUR=spicy",
        "--build-arg",
        "UNUSED=1",
        "--label",
        "from.flag=1",
        "--annotation",
        "org.opencontainers.image.title=app",
        "--annotation",
        "org.example.note=a=b",
        ctx.path().to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("STEP 1/14: FROM "), "{t}");
    assert!(t.contains("STEP 8/14: COPY --from=builder"), "{t}");
    assert!(t.contains("built spicy"), "the RUN's output is shown: {t}");
    // Podman's last lines, on stdout: COMMIT and the -t as given, the
    // short id, each name, the whole id.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Vec<&str> = stdout.lines().rev().take(4).collect();
    let id = last[0];
    assert_eq!(id.len(), 64, "{stdout}");
    assert_eq!(
        last,
        vec![
            id,
            "Successfully tagged localhost/app:1",
            &format!("--> {}", &id[..11]),
            "COMMIT app:1"
        ],
        "{stdout}"
    );
    assert!(t.contains("warning: --build-arg UNUSED : no ARG"), "{t}");
    nothing_left(&f.e);

    // The image as `skiff run` runs it: files, ENV, WORKDIR, USER, CMD.
    let run = f.e.ok(&["run", "--rm", "--network", "none", "app:1"]);
    assert_eq!(run, "main\nbuilt spicy\nfrom-heredoc\n1001\n/srv/app\n");
    let ls = f.e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "ls",
        "-A",
        "/srv/app",
        "/",
    ]);
    assert!(
        !ls.contains("notes.log"),
        "the ignore file left it out: {ls}"
    );
    assert!(!ls.contains("secret"), "{ls}");
    let os = f.e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "cat",
        "/srv/base-os-release",
    ]);
    assert_eq!(os, "NAME=skiff-test\n");
    assert!(
        f.e.ok(&["images"]).contains("/busybox"),
        "FROM pulled the base"
    );

    let doc = image_config(&f.e, "app:1");
    let cfg = &doc["Config"];
    assert_eq!(cfg["User"], "web");
    assert_eq!(cfg["WorkingDir"], "/srv/app");
    assert!(
        cfg["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "MODE=test"),
        "{cfg}"
    );
    assert_eq!(cfg["Labels"]["org.example.kind"], "test");
    assert_eq!(cfg["Labels"]["from.flag"], "1");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object(), "{cfg}");
    // Five layers on the base's one (WORKDIR making /srv/app, COPY, COPY
    // --from twice, RUN); the config-only steps are empty_layer history
    // entries.
    assert_eq!(
        doc["RootFS"]["Layers"].as_array().unwrap().len(),
        6,
        "{doc}"
    );
    let layered = doc["History"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .count();
    assert_eq!(layered, 6, "one history entry per layer: {doc}");
    // Pushable: another store pulls it back and runs it the same.
    let pushed = f.base.replace("busybox:1", "built/app:1");
    f.e.ok(&["push", "app:1", &pushed]);
    let other = Engine::new();
    other.ok(&["pull", "-q", &pushed]);
    let run = other.ok(&["run", "--rm", "--network", "none", &pushed]);
    assert_eq!(run, "main\nbuilt spicy\nfrom-heredoc\n1001\n/srv/app\n");
    let hist = f.e.ok(&["history", "--no-trunc", "app:1"]);
    assert!(hist.contains("#(nop) ENV DEST=/srv/app"), "{hist}");
    // --annotation: the manifest's annotations, as the registry has them.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{pushed}"))
        .output()
        .unwrap();
    let m: Value = serde_json::from_slice(&raw.stdout).expect("skopeo's manifest");
    assert_eq!(
        m["annotations"],
        serde_json::json!({"org.opencontainers.image.title": "app", "org.example.note": "a=b"}),
        "{m}"
    );
    // A rebuild with others: the same image (config), its manifest
    // replaced.
    let digest = |e: &Engine| e.ok(&["inspect", "--format", "{{.Id}} {{.Digest}}", "app:1"]);
    let before = digest(&f.e);
    let rebuilt = f.e.ok(&[
        "build",
        "-q",
        "-t",
        "app:1",
        "--build-arg",
        "FLAVOUR=spicy",
        "--label",
        "from.flag=1",
        "--annotation",
        "org.example.note=other",
        ctx.path().to_str().unwrap(),
    ]);
    let after = digest(&f.e);
    assert_eq!(
        after.split(' ').next(),
        Some(format!("sha256:{}", rebuilt.trim()).as_str())
    );
    assert_eq!(
        before.split(' ').next(),
        after.split(' ').next(),
        "the same image"
    );
    assert_ne!(before, after, "its manifest replaced");
}

#[test]
fn a_failing_run_names_its_line_and_leaves_nothing() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    let images_before = f.e.ok(&["images", "-a", "-q"]);
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {}\nRUN echo first > /first\n\nRUN echo failing; exit 7\nRUN echo never\n",
                f.base
            ),
        )],
    );
    let out =
        f.e.cmd(&["build", "-t", "broken:1", ctx.path().to_str().unwrap()]);
    let t = text(&out);
    // The RUN's exit code is the build's, as Podman's.
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(
        t.contains(
            "Dockerfile:4: RUN: [\"/bin/sh\",\"-c\",\"echo failing; exit 7\"] exited with 7"
        ),
        "{t}"
    );
    assert!(!t.contains("never"), "{t}");
    nothing_left(&f.e);
    assert_eq!(
        f.e.ok(&["images", "-a", "-q"]),
        images_before,
        "no image was left"
    );
}

#[test]
fn an_unchanged_rebuild_runs_nothing_and_a_changed_file_reruns_from_its_copy() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("one.txt", "one\n"),
            ("two.txt", "two\n"),
            (
                "Containerfile",
                &format!(
                    "FROM {}\nRUN echo ran-first && echo 1 > /first\nCOPY one.txt /\nRUN echo ran-second && cat /one.txt > /second\nCOPY two.txt /\nRUN echo ran-third\n",
                    f.base
                ),
            ),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    let iid = ctx.path().join("iid");
    let first = f.e.ok(&[
        "build",
        "-q",
        "--iidfile",
        iid.to_str().unwrap(),
        "-t",
        "c:1",
        dir,
    ]);
    let id = first.trim().to_string();
    assert_eq!(id.len(), 64, "--quiet prints the image id only: {first:?}");
    assert_eq!(fs::read_to_string(&iid).unwrap(), format!("sha256:{id}"));

    let again = f.e.cmd(&["build", "-t", "c:1", dir]);
    let t = text(&again);
    assert!(again.status.success(), "{t}");
    assert_eq!(t.matches("--> Using cache").count(), 5, "{t}");
    assert!(
        !t.lines().any(|l| l.starts_with("ran-")),
        "a RUN ran again: {t}"
    );
    assert_eq!(
        f.e.ok(&["inspect", "--format", "{{.Id}}", "c:1"]).trim(),
        format!("sha256:{id}")
    );
    nothing_left(&f.e);

    // one.txt changes: the first RUN is cached, everything from its COPY reruns.
    fs::write(ctx.path().join("one.txt"), "ONE\n").unwrap();
    let out = f.e.cmd(&["build", "-t", "c:2", dir]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let ran = |what: &str| t.lines().any(|l| l == what);
    assert!(!ran("ran-first"), "{t}");
    assert!(ran("ran-second") && ran("ran-third"), "{t}");
    assert_eq!(t.matches("--> Using cache").count(), 1, "{t}");
    assert_eq!(
        f.e.ok(&["run", "--rm", "--network", "none", "c:2", "cat", "/second"]),
        "ONE\n"
    );

    // The cache holds its layers: with the images gone (and their
    // unused layers collected), a rebuild still runs nothing.
    fs::write(ctx.path().join("one.txt"), "one\n").unwrap();
    f.e.ok(&["rmi", "c:1", "c:2"]);
    let out = f.e.cmd(&["build", "-t", "c:1", dir]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(t.matches("--> Using cache").count(), 5, "{t}");
    assert_eq!(
        f.e.ok(&["inspect", "--format", "{{.Id}}", "c:1"]).trim(),
        format!("sha256:{id}")
    );
    // Until the cache is forgotten.
    f.e.ok(&["image", "prune", "--build-cache"]);
    let out = f.e.cmd(&["build", "-t", "c:1", dir]);
    let t = text(&out);
    assert!(out.status.success() && !t.contains("Using cache"), "{t}");

    // --no-cache runs everything.
    let out = f.e.cmd(&["build", "--no-cache", dir]);
    let t = text(&out);
    assert!(
        t.lines().any(|l| l == "ran-first") && !t.contains("Using cache"),
        "{t}"
    );
    nothing_left(&f.e);
}

#[test]
fn copy_flags_globs_and_add_of_a_local_archive() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("a.conf", "a\n"), ("b.conf", "b\n"), ("c.txt", "c\n")],
    );
    fs::write(
        ctx.path().join("bundle.tar"),
        tar_of(&[
            F::Dir("pkg/"),
            F::File("pkg/inside", b"unpacked\n".to_vec()),
        ]),
    )
    .unwrap();
    write(
        ctx.path(),
        &[(
            "Containerfile",
            &format!(
                "FROM {}\nARG WHO=builder\nCOPY --chown=web:web --chmod=600 *.conf /etc/app/\nADD bundle.tar /opt/\nCOPY <<EOF /etc/motd\nhello $WHO\nEOF\nCOPY <<'EOF' /etc/motd2\nkept $WHO\nEOF\nCOPY . /whole/\n",
                f.base
            ),
        )],
    );
    f.e.ok(&["build", "-q", "-t", "flags:1", ctx.path().to_str().unwrap()]);
    let out = f.e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "flags:1",
        "sh",
        "-c",
        "ls -ln /etc/app; cat /opt/pkg/inside /etc/motd /etc/motd2; ls -ld /whole; ls /whole | wc -l",
    ]);
    assert!(
        out.contains("-rw-------    1 1001     1002") && out.contains("a.conf"),
        "{out}"
    );
    assert!(out.contains("b.conf") && !out.contains("c.txt"), "{out}");
    assert!(out.contains("unpacked\n"), "{out}");
    assert!(out.contains("hello builder\n"), "{out}");
    // The context's own directory (a 0700 temporary one) is not copied:
    // /whole is made 0755.
    assert!(
        out.contains("drwxr-xr-x") && out.contains("/whole\n"),
        "{out}"
    );
    assert!(out.ends_with("/whole\n5\n"), "the context's 5 files: {out}");
    assert!(
        out.contains("kept $WHO\n"),
        "a quoted heredoc is kept as written: {out}"
    );
    nothing_left(&f.e);
}

#[test]
fn parser_errors_name_file_line_and_instruction() {
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path().to_str().unwrap();
    let cases = [
        (
            "FROM scratch\n\nFROB x\n",
            "Containerfile:3: FROB: unknown instruction",
        ),
        (
            "FROM scratch\nRUN <<EOF\necho never closed\n",
            "Containerfile:2: RUN: heredoc <<EOF is not closed",
        ),
        (
            "# escape=x\nFROM scratch\n",
            "Containerfile:1: escape directive",
        ),
        (
            "ARG A\nRUN true\nFROM scratch\n",
            "Containerfile:2: RUN: only ARG may come before the first FROM",
        ),
        (
            "FROM scratch\nSHELL /bin/bash\n",
            "Containerfile:2: SHELL: needs the JSON form",
        ),
        (
            "FROM scratch\nADD https://example.com/f /f\n",
            "Containerfile:2: ADD: https://example.com/f: remote sources are refused",
        ),
        (
            "FROM scratch\nCOPY missing /\n",
            "Containerfile:2: COPY: missing: not in the build context",
        ),
        (
            "FROM scratch\nCOPY *.none /\n",
            "Containerfile:2: COPY: *.none: not in the build context",
        ),
        (
            "FROM scratch\nEXPOSE 80/http\n",
            "Containerfile:2: EXPOSE: \"80/http\": the protocol",
        ),
        (
            "FROM scratch AS first\nCOPY --from=later x /\nFROM first AS later\n",
            "Containerfile:2: COPY: --from=later: a stage copies only from a stage before it",
        ),
    ];
    for (text, want) in cases {
        fs::write(ctx.path().join("Containerfile"), text).unwrap();
        let out = e.fails(&["build", dir]);
        assert!(out.contains(want), "{text:?}: {out}");
    }
    let out = e.fails(&["build", "--network", "slirp", dir]);
    assert!(out.contains("--network slirp"), "{out}");
    // Podman's flags this build does not do are refused by name.
    for (flags, want) in [
        (
            &["--platform", "linux/s390x"][..],
            "--platform linux/s390x: only this machine's",
        ),
        (
            &["--annotation", "novalue"][..],
            "--annotation \"novalue\": expected KEY=VALUE",
        ),
        (&["--squash"][..], "--squash: not supported"),
        (&["--pull=sometimes"][..], "--pull=sometimes: expected"),
    ] {
        let out = e.fails(&[&["build"][..], flags, &[dir][..]].concat());
        assert!(out.contains(want), "{flags:?}: {out}");
    }
    fs::write(ctx.path().join("Containerfile"), "FROM nothere:1\n").unwrap();
    let out = e.fails(&["build", "--pull=never", dir]);
    assert!(
        out.contains("Containerfile:1: FROM: nothere:1: not in the store, and --pull=never"),
        "{out}"
    );
    let out = e.fails(&["build", "--target", "nope", dir]);
    assert!(out.contains("--target nope"), "{out}");
}

#[test]
fn scratch_containerfile_on_stdin_and_a_target_stage() {
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("hello", "world\n"),
            ("Containerfile", "FROM scratch AS first\nCOPY hello /\nENV A=1\nFROM scratch\nCOPY --from=first /hello /again\n"),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    let id = e.ok(&["build", "-q", "--target", "first", "-t", "first:1", dir]);
    let doc = image_config(&e, "first:1");
    assert_eq!(doc["Id"], format!("sha256:{}", id.trim()));
    assert_eq!(
        doc["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "{doc}"
    );
    let m = e
        .ok(&["image", "mount", "--name", "f", "first:1"])
        .trim()
        .to_string();
    assert_eq!(fs::read_to_string(format!("{m}/hello")).unwrap(), "world\n");
    e.ok(&["image", "unmount", "f"]);
    // A stage named through a global ARG, in a file given with -f.
    let other = ctx.path().join("Other.containerfile");
    fs::write(
        &other,
        "ARG SRC=first\nFROM scratch AS first\nCOPY hello /\nFROM ${SRC}\nLABEL from=arg\n",
    )
    .unwrap();
    e.ok(&[
        "build",
        "-q",
        "-f",
        other.to_str().unwrap(),
        "-t",
        "viaarg:1",
        dir,
    ]);
    let doc = image_config(&e, "viaarg:1");
    assert_eq!(
        doc["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "{doc}"
    );
    assert_eq!(doc["Config"]["Labels"]["from"], "arg");
    // The ignore file beside a -f Containerfile wins over the context's.
    fs::write(ctx.path().join(".dockerignore"), "nothing\n").unwrap();
    fs::write(
        ctx.path().join("Other.containerfile.dockerignore"),
        "hello\n",
    )
    .unwrap();
    let err = e.fails(&["build", "-f", other.to_str().unwrap(), dir]);
    assert!(
        err.contains("COPY: hello: not in the build context"),
        "{err}"
    );
    // A Containerfile on stdin: no context to copy from.
    let mut child = Command::new(skiff_bin())
        .arg("--root")
        .arg(e.root())
        .args(["build", "-q", "-t", "stdin:1", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch\nLABEL a=b\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(image_config(&e, "stdin:1")["Config"]["Labels"]["a"], "b");
}

#[test]
fn podman_loads_and_runs_the_built_image() {
    need!("docker-registry", "skopeo", "podman", "runc");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Containerfile",
            &format!(
                "FROM {}\nRUN echo built-here > /built\nCMD [\"cat\", \"/built\"]\n",
                f.base
            ),
        )],
    );
    let id = f.e.ok(&[
        "build",
        "-q",
        "-t",
        "topodman:1",
        ctx.path().to_str().unwrap(),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("img.tar");
    f.e.ok(&["save", "-o", archive.to_str().unwrap(), "topodman:1"]);
    let pm = tmp.path().join("podman");
    // This machine's hard limits are below podman's default ulimits.
    let conf = tmp.path().join("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let podman = |args: &[&str]| {
        podman_at(&pm)
            .env("CONTAINERS_CONF", &conf)
            .args(args)
            .output()
            .unwrap()
    };
    let load = podman(&["load", "-i", archive.to_str().unwrap()]);
    assert!(load.status.success(), "{}", text(&load));
    let inspect = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost/topodman:1",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        id.trim(),
        "{}",
        text(&inspect)
    );
    // runc: crun refuses this host's hybrid cgroups.
    let run = podman(&[
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/topodman:1",
    ]);
    let ran = text(&run);
    let _ = podman(&["rmi", "-a", "-f"]);
    // Podman's mounts left under the test's directory.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(pm.to_str().unwrap()))
    {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    assert!(run.status.success() && ran.contains("built-here"), "{ran}");
}

#[test]
fn config_steps_are_recorded_as_docker_records_them() {
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Containerfile",
            r#"ARG BUILDPLATFORM
FROM --platform=$BUILDPLATFORM scratch
ARG TARGETARCH
ARG TARGETOS TARGETPLATFORM TARGETVARIANT BUILDARCH BUILDOS BUILDPLATFORM
LABEL plat="$TARGETOS/$TARGETARCH $TARGETPLATFORM $BUILDPLATFORM $BUILDARCH $BUILDOS v=$TARGETVARIANT"
SHELL ["/bin/busybox", "sh", "-c"]
ENTRYPOINT echo hi
CMD ["x"]
VOLUME /data /other
VOLUME ["/json"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/
ONBUILD RUN echo child
MAINTAINER someone
ENV K1=v1 K2="two words"
ENV OLD old form  value
ENV PATH=/x:$PATH
ARG A=aa
LABEL l3=${NOPE:-$K1} l4=${A:+${K1}x} l5=$A
ENV N1=${NOPE:-"q v"}
LABEL "quoted key"="v" plain=$K1
EXPOSE 53/udp 8000-8001
USER 1000:1000
"#,
        )],
    );
    fs::write(ctx.path().join("args"), "# a comment\nA=fromfile\n").unwrap();
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let out = e.cmd(&[
        "build",
        "-q",
        "--pull",
        "--layers",
        "--format",
        "docker",
        "--platform",
        &format!("linux/{arch}"),
        "--build-arg-file",
        ctx.path().join("args").to_str().unwrap(),
        "-t",
        "cfg:1",
        ctx.path().to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success() && !t.contains("warning"), "{t}");
    let mut doc = image_config(&e, "cfg:1");
    // The automatic platform ARGs: this machine's, in Go's names.
    let plat = doc["Config"]["Labels"]
        .as_object_mut()
        .and_then(|l| l.remove("plat"))
        .unwrap_or_default();
    assert_eq!(
        plat,
        format!("linux/{arch} linux/{arch} linux/{arch} {arch} linux v=")
    );
    let want: Value = serde_json::from_str(
        r#"{"Cmd": ["x"], "Entrypoint": ["/bin/busybox", "sh", "-c", "echo hi"],
            "Env": ["PATH=/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "K1=v1", "K2=two words", "OLD=old form  value", "N1=q v"],
            "ExposedPorts": {"53/udp": {}, "8000/tcp": {}, "8001/tcp": {}},
            "Healthcheck": {"Interval": 5000000000, "Retries": 2, "Test": ["CMD-SHELL", "curl -f http://localhost/"]},
            "Labels": {"plain": "v1", "quoted key": "v", "l3": "v1", "l4": "v1x", "l5": "fromfile"}, "OnBuild": ["RUN echo child"],
            "Shell": ["/bin/busybox", "sh", "-c"], "StopSignal": "SIGUSR1", "User": "1000:1000",
            "Volumes": {"/data": {}, "/json": {}, "/other": {}}, "WorkingDir": ""}"#,
    )
    .unwrap();
    assert_eq!(doc["Config"], want);
    assert_eq!(doc["Author"], "someone");
    // No layer, one empty_layer history entry per step.
    assert_eq!(
        doc["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(0),
        "{doc}"
    );
    let hist = doc["History"].as_array().unwrap();
    assert_eq!(hist.len(), 18, "{doc}");
    assert!(hist.iter().all(|h| h["empty_layer"] == true), "{doc}");
}

#[test]
fn an_interrupted_build_stops_after_its_step_and_leaves_nothing() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Containerfile",
            &format!(
                "FROM {}\nRUN sleep 1 && echo slept\nRUN echo next-step\n",
                f.base
            ),
        )],
    );
    let mut child = Command::new(skiff_bin())
        .arg("--root")
        .arg(f.e.root())
        .args(["build", ctx.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the RUN's container runs, SIGTERM to the build alone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while f.e.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN's container never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the build did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("Containerfile:2: RUN: build interrupted"), "{t}");
    assert!(!t.contains("next-step"), "{t}");
    nothing_left(&f.e);
}

#[test]
fn symlinks_in_the_context_never_reach_the_host() {
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("secret"), "host secret\n").unwrap();
    let c = ctx.path();
    // Read side: a link out of the context resolves inside it.
    std::os::unix::fs::symlink(host.path(), c.join("out")).unwrap();
    write(
        c,
        &[("Containerfile", "FROM scratch\nCOPY out/secret /stolen\n")],
    );
    let err = e.fails(&["build", c.to_str().unwrap()]);
    assert!(
        err.contains("Containerfile:2: COPY: out/secret: not in the build context"),
        "{err}"
    );
    // Write side: a later source's file under an earlier source's link
    // lands in the image, not through the link on the host.
    fs::create_dir_all(c.join("one")).unwrap();
    std::os::unix::fs::symlink(host.path(), c.join("one/x")).unwrap();
    write(
        c,
        &[
            ("two/x/planted", "planted\n"),
            ("Containerfile", "FROM scratch\nCOPY one two /dst/\n"),
        ],
    );
    e.ok(&["build", "-q", "-t", "links:1", c.to_str().unwrap()]);
    assert!(
        !host.path().join("planted").exists(),
        "COPY wrote through a link onto the host"
    );
    let m = e
        .ok(&["image", "mount", "--name", "l", "links:1"])
        .trim()
        .to_string();
    let planted = fs::read_to_string(format!("{m}/dst/x/planted"));
    e.ok(&["image", "unmount", "l"]);
    assert_eq!(planted.unwrap(), "planted\n");
}

#[test]
fn the_cache_holds_its_layers_until_pruned() {
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("x", "some content\n"),
            ("Containerfile", "FROM scratch\nCOPY x /x\nLABEL z=1\n"),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    e.ok(&["build", "-q", "-t", "df:1", dir]);
    e.ok(&["rmi", "df:1"]);
    let layers = || fs::read_dir(e.root().join("layers")).unwrap().count();
    assert_eq!(layers(), 1, "the cache keeps the COPY's layer");
    let df = e.ok(&["system", "df"]);
    let row = df
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_default()
        .to_string();
    assert!(
        row.split_whitespace().nth(2) == Some("2") && row.contains(" 13 B"),
        "{df}"
    );
    e.ok(&["image", "prune", "--build-cache"]);
    assert_eq!(layers(), 0, "prune --build-cache freed it");
    let df = e.ok(&["system", "df"]);
    assert!(df.contains("Build Cache     0"), "{df}");
}

#[test]
fn onbuild_triggers_run_in_the_child_build_only() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Containerfile",
                &format!(
                    "FROM {}\nONBUILD RUN echo trigger-ran > /trig\nONBUILD LABEL child=yes\n",
                    f.base
                ),
            ),
            ("Child", "FROM onbase:1\nRUN cat /trig\n"),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    f.e.ok(&["build", "-q", "-t", "onbase:1", dir]);
    let base = image_config(&f.e, "onbase:1");
    assert_eq!(
        base["Config"]["OnBuild"].as_array().map(Vec::len),
        Some(2),
        "{base}"
    );
    assert!(
        base["Config"]["Labels"]["child"].is_null(),
        "recorded, not run: {base}"
    );
    let child = ctx.path().join("Child");
    let out = f.e.ok(&[
        "build",
        "-t",
        "onchild:1",
        "-f",
        child.to_str().unwrap(),
        dir,
    ]);
    assert!(out.lines().any(|l| l == "trigger-ran"), "{out}");
    let doc = image_config(&f.e, "onchild:1");
    assert_eq!(doc["Config"]["Labels"]["child"], "yes");
    assert!(doc["Config"]["OnBuild"].is_null(), "not inherited: {doc}");
    nothing_left(&f.e);
}

#[test]
fn copy_into_a_linked_directory_follows_the_link_as_the_image_would() {
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    // A merged-/usr base: /bin is a link to usr/bin.
    fs::write(
        ctx.path().join("base.tar"),
        tar_of(&[
            F::Dir("usr/"),
            F::Dir("usr/bin/"),
            F::File("usr/bin/tool", b"tool\n".to_vec()),
            F::Link("bin", "usr/bin"),
        ]),
    )
    .unwrap();
    write(
        ctx.path(),
        &[
            ("x", "x\n"),
            ("y", "y\n"),
            (
                "Containerfile",
                "FROM scratch\nADD base.tar /\nCOPY x /bin/\nCOPY y /bin\nWORKDIR /bin\nCOPY x z\n",
            ),
        ],
    );
    e.ok(&[
        "build",
        "-q",
        "-t",
        "merged:1",
        ctx.path().to_str().unwrap(),
    ]);
    let m = e
        .ok(&["image", "mount", "--name", "m", "merged:1"])
        .trim()
        .to_string();
    let link = fs::symlink_metadata(format!("{m}/bin")).map(|m| m.file_type().is_symlink());
    let listing: Vec<String> = fs::read_dir(format!("{m}/usr/bin"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    e.ok(&["image", "unmount", "m"]);
    assert_eq!(link.ok(), Some(true), "/bin is still the link");
    let mut listing = listing;
    listing.sort();
    assert_eq!(listing, vec!["tool", "x", "y", "z"]);
}

#[test]
fn workdir_is_made_as_the_user_and_copy_to_dot_lands_in_it() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("a.txt", "a\n"),
            (
                "Containerfile",
                &format!(
                    "FROM {}\nUSER web\nWORKDIR /wd/deep\nCOPY a.txt .\nUSER root\nWORKDIR /srv\nRUN ls /wd/deep > /listing; ls /etc > /etc-listing\n",
                    f.base
                ),
            ),
        ],
    );
    // The base is in the store: --pull=never builds; --no-hosts gives
    // RUN no /etc/hosts.
    let out = f.e.cmd(&[
        "build",
        "--pull=never",
        "--no-hosts",
        "-t",
        "wd:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let m =
        f.e.ok(&["image", "mount", "--name", "wd", "wd:1"])
            .trim()
            .to_string();
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &str| fs::symlink_metadata(format!("{m}/{p}")).ok();
    let listing = fs::read_to_string(format!("{m}/listing")).unwrap_or_default();
    let etc = fs::read_to_string(format!("{m}/etc-listing")).unwrap_or_default();
    let (wd, deep, srv) = (meta("wd"), meta("wd/deep"), meta("srv"));
    let a = meta("wd/deep/a.txt");
    f.e.ok(&["image", "unmount", "wd"]);
    assert_eq!(listing, "a.txt\n");
    assert!(!etc.contains("hosts\n") && etc.contains("passwd"), "{etc}");
    for d in [&wd, &deep] {
        let d = d.as_ref().expect("WORKDIR made it");
        assert!(d.is_dir());
        // BuildKit's: made as the USER of the step.
        assert_eq!((d.uid(), d.gid(), d.mode() & 0o7777), (1001, 1002, 0o755));
    }
    assert!(a.is_some_and(|a| a.is_file() && a.uid() == 0));
    assert_eq!(
        srv.map(|s| s.uid()),
        Some(0),
        "an existing WORKDIR is left be"
    );
    // Layers: the base's, WORKDIR /wd/deep's, COPY's, RUN's; WORKDIR
    // /srv (there already) is an empty_layer entry.
    let doc = image_config(&f.e, "wd:1");
    assert_eq!(
        doc["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(4),
        "{doc}"
    );
    let hist = doc["History"].as_array().unwrap();
    let entry = |what: &str| {
        hist.iter()
            .find(|h| h["created_by"].as_str().unwrap_or_default().ends_with(what))
            .cloned()
            .unwrap_or_default()
    };
    assert!(entry("WORKDIR /wd/deep")["empty_layer"].is_null(), "{doc}");
    assert_eq!(entry("WORKDIR /srv")["empty_layer"], true, "{doc}");
    nothing_left(&f.e);
}

/// The mtime of a path, not following a link.
fn mtime_of(p: &str) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(p).ok().map(|m| m.mtime())
}

#[test]
fn copy_and_add_sources_links_owners_archives_globs_and_mtimes() {
    use std::os::unix::fs::{symlink, MetadataExt};
    let e = Engine::new();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("a.txt", "a\n"),
            ("dir/f", "f\n"),
            ("dir/sub/g", "g\n"),
            ("single", "not a tar\n"),
            ("t/pkg/inside", "in\n"),
        ],
    );
    symlink("a.txt", c.join("alink")).unwrap();
    symlink("f", c.join("dir/ln")).unwrap();
    // A stage whose /d/link points at sub/f.
    fs::write(
        c.join("src.tar"),
        tar_of(&[
            F::Dir("d/"),
            F::Dir("d/sub/"),
            F::File("d/sub/f", b"stage f\n".to_vec()),
            F::Link("d/link", "sub/f"),
        ]),
    )
    .unwrap();
    fs::write(
        c.join("mt.tar"),
        tar_of(&[F::Dir("pkg/"), F::File("pkg/x", b"x\n".to_vec())]),
    )
    .unwrap();
    let sh = |cmd: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(c)
            .status()
            .unwrap();
        assert!(ok.success(), "{cmd}");
    };
    sh("gzip -k single && tar -C t -cf - pkg | xz > xz.tar.xz && tar -C t -cf - pkg | bzip2 > bz.tar.bz2");
    sh("touch -h -d 2001-02-03T00:00:00Z dir/sub dir/ln dir");
    write(
        c,
        &[(
            "Containerfile",
            "FROM scratch AS src\nADD src.tar /\nFROM scratch\nCOPY alink /l1\nCOPY --from=src /d/link /b\n\
             COPY dir /copied/\nCOPY --chown=1001:1002 dir /newd\nCOPY --chown=1001:1002 dir/f /newf/deep/\n\
             ADD single.gz /x/single/\nADD xz.tar.xz /x/xz/\nADD bz.tar.bz2 /x/bz/\nADD mt.tar /x/mt/\n\
             COPY a.txt *.nomatch /g/\n",
        )],
    );
    let out = e.cmd(&["build", "-q", "-t", "srcs:1", c.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let m = e
        .ok(&["image", "mount", "--name", "s", "srcs:1"])
        .trim()
        .to_string();
    let read = |p: &str| fs::read_to_string(format!("{m}/{p}")).unwrap_or_default();
    let meta = |p: &str| fs::symlink_metadata(format!("{m}/{p}")).ok();
    let is_file = |p: &str| meta(p).is_some_and(|m| m.file_type().is_file());
    let ids = |p: &str| meta(p).map(|m| (m.uid(), m.gid()));
    let got = (
        (read("l1"), is_file("l1"), read("b"), is_file("b")),
        fs::read_link(format!("{m}/copied/ln")).ok(),
        (
            ids("newd"),
            ids("newd/sub"),
            ids("newf"),
            ids("newf/deep"),
            ids("newf/deep/f"),
        ),
        (
            is_file("x/single/single.gz"),
            read("x/xz/pkg/inside"),
            read("x/bz/pkg/inside"),
        ),
        (
            mtime_of(&format!("{m}/copied/sub")),
            mtime_of(&format!("{m}/copied/ln")),
        ),
        mtime_of(&format!("{m}/x/mt/pkg")),
        (read("g/a.txt"), meta("g").map(|m| m.is_dir())),
    );
    e.ok(&["image", "unmount", "s"]);
    // A source that is a link: what it points to, as a file.
    assert_eq!(got.0, ("a\n".into(), true, "stage f\n".into(), true));
    // A link inside a copied directory stays a link.
    assert_eq!(got.1, Some(Path::new("f").to_path_buf()));
    // --chown owns the directories the COPY makes too.
    let own = Some((1001, 1002));
    assert_eq!(got.2, (own, own, own, own, own));
    // A gzip file that is not a tar is copied as it is; xz and bzip2
    // tars are unpacked.
    assert!(got.3 .0, "single.gz copied");
    assert_eq!((got.3 .1.as_str(), got.3 .2.as_str()), ("in\n", "in\n"));
    // Directories' and links' mtimes are kept, by COPY and by ADD's tar.
    assert_eq!(got.4, (Some(981_158_400), Some(981_158_400)));
    assert_eq!(got.5, Some(1_700_000_000));
    // A glob matching nothing is skipped beside one that matches.
    assert_eq!(got.6, ("a\n".into(), Some(true)));
}

/// The top layer of an image as the store unpacked it: its paths.
fn top_layer(e: &Engine, image: &str) -> Vec<String> {
    let cfg = image_config(e, image);
    let mut chain: Option<String> = None;
    for d in cfg["RootFS"]["Layers"].as_array().unwrap() {
        let d = d.as_str().unwrap();
        chain = Some(match chain {
            None => d.to_string(),
            Some(c) => sha(format!("{c} {d}").as_bytes()),
        });
    }
    let dir = e
        .root()
        .join("layers")
        .join(chain.unwrap().trim_start_matches("sha256:"))
        .join("diff");
    let mut out = vec![];
    let mut todo = vec![dir.clone()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            out.push(p.strip_prefix(&dir).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn run_mounts_bind_cache_tmpfs_and_secret_stay_out_of_the_image() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    let secret = ctx
        .path()
        .join("..")
        .join(format!("skiff-build-secret.{}", std::process::id()));
    fs::write(&secret, "hunter2-the-secret\n").unwrap();
    let _rm_secret = Remove(secret.clone());
    write(
        ctx.path(),
        &[
            ("src/data.txt", "data v1\n"),
            ("src/ignored.log", "shown all the same\n"),
            (".containerignore", "**/*.log\n"),
            (
                "Containerfile",
                &format!(
                    r#"FROM {base} AS helper
RUN busybox mkdir /out && echo from-stage > /out/f

FROM {base}
WORKDIR /srv
RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/data.txt /mnt/src/ignored.log > /copied && (echo x > /mnt/src/w 2>/dev/null && echo rw-bad || echo ro-ok) > /ro
RUN --mount=target=ctx,rw echo scribble > ctx/src/data.txt && cat ctx/src/data.txt > /rw-seen
RUN --mount=from=helper,source=/out,target=/h --mount=type=bind,from={base},source=/etc/os-release,target=/etc/base-os cat /h/f /etc/base-os > /from-stage
RUN --mount=type=cache,target=/var/cache/app,id=app,uid=1001,mode=0700,sharing=locked busybox stat -c '%u %a' /var/cache/app > /cache-owner && echo run >> /var/cache/app/runs && busybox wc -l < /var/cache/app/runs > /cache-runs
RUN --mount=type=secret,id=tok busybox stat -c '%a %u' /run/secrets/tok > /secret-mode && busybox sha256sum < /run/secrets/tok > /secret-sum
RUN --mount=type=secret,id=tok,target=/etc/deep/tok,mode=0440,uid=1001 --mount=type=secret,id=absent busybox stat -c '%a %u' /etc/deep/tok > /secret-mode2 && ls /run/secrets > /absent 2>&1 || echo none > /absent
RUN --mount=type=cache,target=/srv/c --mount=type=tmpfs,target=/srv/t/deep,size=1m echo t > /srv/t/deep/x && busybox df /srv/t/deep | grep -q tmpfs && echo cache-and-tmpfs
"#,
                    base = f.base
                ),
            ),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    let secret_flag = format!("id=tok,src={}", secret.display());
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "m:1", "--secret", &secret_flag];
        args.extend(extra);
        args.push(dir);
        f.e.cmd(&args)
    };
    let out = build(&[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("cache-and-tmpfs"), "{t}");
    nothing_left(&f.e);
    let cat = |p: &str| {
        f.e.ok(&["run", "--rm", "--network", "none", "m:1", "cat", p])
    };
    // The context's files, ignore file and all (Podman's bind), read-only.
    assert_eq!(cat("/copied"), "data v1\nshown all the same\n");
    assert_eq!(cat("/ro"), "ro-ok\n");
    // rw: the command wrote, the context is as it was.
    assert_eq!(cat("/rw-seen"), "scribble\n");
    assert_eq!(
        fs::read_to_string(ctx.path().join("src/data.txt")).unwrap(),
        "data v1\n"
    );
    assert_eq!(cat("/from-stage"), "from-stage\nNAME=skiff-test\n");
    assert_eq!(cat("/cache-owner"), "1001 700\n");
    assert_eq!(cat("/cache-runs").trim(), "1");
    // BuildKit's default mode, root's.
    assert_eq!(cat("/secret-mode"), "400 0\n");
    assert_eq!(cat("/secret-mode2"), "440 1001\n");
    assert_eq!(
        cat("/secret-sum").split_whitespace().next().unwrap(),
        sha(b"hunter2-the-secret\n").trim_start_matches("sha256:")
    );
    // An absent secret not required: no mount at all.
    assert_eq!(cat("/absent"), "none\n");
    // No mount point, no parent made for one, no mount's content: not in
    // the image.
    let ls = f.e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "m:1",
        "ls",
        "-a",
        "/",
        "/srv",
        "/etc",
        "/run",
    ]);
    // (/run is the container's own: its /run/.containerenv.)
    for gone in [
        "mnt", "ctx", "h", "var", "secrets", "c", "t", "deep", "base-os",
    ] {
        assert!(
            !ls.split_whitespace().any(|w| w == gone),
            "{gone} is in the image: {ls}"
        );
    }
    // The copied-up /srv (the cache's and tmpfs's parent) is not in that
    // RUN's layer either: only /etc, as every RUN's (the runtime's
    // /etc/hosts).
    assert_eq!(top_layer(&f.e, "m:1"), ["etc"]);
    let history = f.e.ok(&["history", "--no-trunc", "m:1"]);
    let inspect = f.e.ok(&["inspect", "m:1"]);
    assert!(
        !history.contains("hunter2") && !inspect.contains("hunter2"),
        "the secret's value is in the image's record"
    );

    // An unchanged rebuild runs nothing; a new secret value does not
    // rerun (BuildKit's rule: the key holds the secret's id, not its
    // value); a changed bound file reruns the RUN that binds it.
    fs::write(&secret, "another value\n").unwrap();
    let out = build(&[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(t.matches("--> Using cache").count(), 9, "{t}");
    fs::write(ctx.path().join("src/ignored.log"), "changed\n").unwrap();
    let out = build(&[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(t.matches("--> Using cache").count(), 2, "{t}");
    assert_eq!(cat("/copied"), "data v1\nchanged\n");
    // The cache directory outlives the builds.
    let out = build(&["--no-cache"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(cat("/cache-runs").trim(), "3");
    nothing_left(&f.e);
    // prune --build-cache empties the cache mounts too.
    let cache_dirs = f.e.root().join("build-cache-mounts");
    assert!(cache_dirs.exists());
    f.e.ok(&["image", "prune", "--build-cache"]);
    assert!(
        !cache_dirs.exists(),
        "the cache mounts outlived prune --build-cache"
    );

    // A required secret the build lacks fails the step, by name.
    write(
        ctx.path(),
        &[(
            "Containerfile",
            &format!(
                "FROM {}\nRUN --mount=type=secret,id=nope,required true\n",
                f.base
            ),
        )],
    );
    let t = f.e.fails(&["build", dir]);
    assert!(
        t.contains("Containerfile:2: RUN: --mount=type=secret,id=nope: required"),
        "{t}"
    );
    nothing_left(&f.e);
}

/// A file removed on drop.
struct Remove(std::path::PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn squash_all_makes_the_image_one_layer_with_its_deletions_applied() {
    need!("docker-registry", "skopeo");
    let f = fixture();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("x", "copied\n"),
            (
                "Containerfile",
                &format!(
                    "FROM {}\nRUN echo a > /a\nRUN busybox rm /etc/os-release\nCOPY x /x\nCMD [\"cat\", \"/a\", \"/x\"]\n",
                    f.base
                ),
            ),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    f.e.ok(&["build", "-q", "--squash-all", "-t", "sq:1", dir]);
    let doc = image_config(&f.e, "sq:1");
    assert_eq!(
        doc["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "{doc}"
    );
    let history = doc["History"].as_array().unwrap();
    let layered: Vec<_> = history
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .collect();
    assert_eq!(layered.len(), 1, "{doc}");
    assert_eq!(layered[0], history.last().unwrap());
    assert_eq!(
        f.e.ok(&["run", "--rm", "--network", "none", "sq:1"]),
        "a\ncopied\n"
    );
    // The base's files are in it; what a later step removed is not.
    let ls = f.e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "sq:1",
        "ls",
        "/etc",
        "/bin/busybox",
    ]);
    assert!(ls.contains("/bin/busybox") && ls.contains("passwd"), "{ls}");
    assert!(!ls.contains("os-release"), "{ls}");
    nothing_left(&f.e);
}
