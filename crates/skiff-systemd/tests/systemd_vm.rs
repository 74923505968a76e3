//! The systemd cgroup driver (skiff-oci with this crate's helper, and the
//! shim) for real: this machine's PID 1 is not systemd, so a throwaway VM
//! (Debian 12 with systemd, dbus, runc, crun and containerd, booted under
//! qemu TCG, pure cgroup v2) runs scripts/systemd-vm/test.sh: skiff-oci
//! `--systemd-cgroup` makes a transient scope unit with init and the
//! resources as properties (the same as runc's driver makes for the same
//! bundle), update changes them, exec joins the scope, delete stops the unit
//! (also after init was killed), a kubepods-style slice is expanded and
//! created, a unit name in use is refused, the shim under containerd puts a
//! task with a systemd cgroupsPath in its scope, a CRI pod under a kubepods
//! slice (the skiff shim, and runc's shim with SystemdCgroup running
//! skiff-oci) has a scope per container, Podman and a rootless
//! caller get scopes too, and nothing is left behind; then, booted with a v1
//! (hybrid) tree, the scope's v1 groups and properties against runc's.

use std::path::Path;
use std::process::Command;

#[test]
fn systemd_cgroup_driver_in_a_vm() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/systemd-vm/run.sh"
    );
    let helper = env!("CARGO_BIN_EXE_skiff-systemd");
    let dir = Path::new(helper).parent().unwrap();
    // The skiff-oci under test (scripts/test.sh's static build), else the
    // one this build made beside the helper; the shim from there too.
    let skiff =
        std::env::var("SKIFF_OCI").unwrap_or_else(|_| dir.join("skiff-oci").display().to_string());
    let shim = dir.join("containerd-shim-skiff-v2");
    // The pure v2 tree, then the v1 (hybrid) one: one after the other, as
    // they share the VM's files.
    for tree in ["v2", "v1"] {
        let out = Command::new(script)
            .args([skiff.as_str(), helper, shim.to_str().unwrap()])
            .env("SKIFF_VM_CGROUP", tree)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{tree}:\n{text}");
        if out.status.code() == Some(77) {
            eprintln!("{}", text.lines().last().unwrap_or("skipped"));
            return;
        }
        assert!(
            out.status.success(),
            "systemd VM checks ({tree}) failed:\n{text}"
        );
        assert!(text.contains(" passed, 0 failed"), "{text}");
        assert!(!text.contains("FAIL "), "{text}");
        if tree == "v2" {
            assert!(!text.contains("skipped: the shim"), "{text}");
            for pod in [
                "skiff shim",
                "runc shim + skiff-oci --systemd-cgroup",
                "runc shim + runc (the reference)",
            ] {
                let line = format!("PASS CRI pod under a kubepods slice, {pod}");
                assert!(text.contains(&line), "missing {line:?}:\n{text}");
            }
        } else {
            assert!(text.contains("PASS v1: as runc's: MemoryLimit"), "{text}");
        }
    }
}

/// The manual page and the completions, generated at build time from the
/// command line: every command is in them.
#[test]
fn the_manual_page_lists_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_skiff-systemd"))
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout).replace("\\-", "-");
    for c in ["start-scope", "set-resources", "stop"] {
        assert!(
            page.contains(&format!("SKIFF-SYSTEMD {}", c.to_uppercase())),
            "{c}"
        );
    }
}
