//! Cgroup v2 for real: this machine has v1 controllers, so a throwaway VM
//! (Debian's cloud kernel under qemu TCG, an initramfs with busybox and this
//! skiff-oci) boots into a pure cgroup v2 tree and runs scripts/v2-vm/init.sh:
//! limits read back from the group, pause/resume via cgroup.freeze, update,
//! stats, exec into the group, an OOM kill (137), a pids limit holding, the
//! cgroup2 mount inside the container, and nothing left behind.

mod common;

use std::process::Command;

#[test]
fn cgroup_v2_in_a_vm() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/v2-vm/run.sh");
    let out = Command::new(script).arg(common::skiff()).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "v2 VM checks failed:\n{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
    assert!(!text.contains("FAIL "), "{text}");
}
