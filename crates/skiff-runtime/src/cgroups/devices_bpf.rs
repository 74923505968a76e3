//! linux.resources.devices on cgroup v2: an eBPF program of type
//! CGROUP_DEVICE attached to the container's group. The program reads the
//! device type, access, major and minor from its context and walks the rules
//! from last to first, so the last matching rule decides (the v1 semantics);
//! when none matches, access is denied.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;
use crate::sys::{self, BpfInsn};

const LDXW: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// BPF_DEVCG_ACC_* bits for an access string.
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// The program for `rules` (in config order).
pub fn program(rules: &[LinuxDeviceCgroup]) -> Vec<BpfInsn> {
    // r2 = type (BPF_DEVCG_DEV_BLOCK 1, CHAR 2), r3 = access, r4 = major, r5 = minor.
    let mut p = vec![
        insn(LDXW, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDXW, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDXW, 4, 1, 4, 0),
        insn(LDXW, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut block = Vec::new();
        let typ = match rule.typ() {
            Some(LinuxDeviceType::B) => Some(1),
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(2),
            _ => None,
        };
        if let Some(t) = typ {
            block.push(insn(JNE_K, 2, 0, 0, t));
        }
        let access = access_bits(rule.access().as_deref().unwrap_or("rwm"));
        if access != 7 {
            // Skip the rule if anything outside its access is asked for.
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, !access & 7));
            block.push(insn(JNE_K, 1, 0, 0, 0));
        }
        if let Some(major) = rule.major().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 5, 0, 0, minor as i32));
        }
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(rule.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Every jump in the block skips to the block's end.
        let len = block.len();
        let conditional = len > 2;
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        // A rule matching every device decides for everything before it: the
        // verifier rejects code that can never run.
        if !conditional {
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let cg = File::open(dir).map_err(|source| CgroupError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    sys::attach_device_program(cg.as_fd(), &program(rules)).map_err(|source| CgroupError::Write {
        resource: "devices",
        path: dir.to_path_buf(),
        value: "eBPF device program".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_skip_to_the_end_of_their_block() {
        let mut deny = LinuxDeviceCgroup::default();
        deny.set_allow(false);
        deny.set_access(Some("rwm".into()));
        let mut null = LinuxDeviceCgroup::default();
        null.set_allow(true);
        null.set_typ(Some(LinuxDeviceType::C));
        null.set_major(Some(1));
        null.set_minor(Some(3));
        null.set_access(Some("rw".into()));
        let p = program(&[deny, null]);
        // prologue 6; null block: type, 3 access, major, minor, mov, exit = 8;
        // deny block (matches everything): mov, exit = 2, and nothing after.
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(p[6], insn(JNE_K, 2, 0, 7, 2));
        assert_eq!(p[9].off, 4);
        assert_eq!(p[12], insn(MOV64_K, 0, 0, 0, 1));
        assert_eq!(p[14], insn(MOV64_K, 0, 0, 0, 0));
        assert_eq!(p[15], insn(EXIT, 0, 0, 0, 0));
    }
}

#[cfg(test)]
mod kernel_tests {
    use super::*;

    /// Loads and attaches a real program where the host has a cgroup2 tree.
    #[test]
    fn program_loads_and_attaches() {
        let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists());
        let Some(base) = base else { return };
        let dir = base.join(format!("skt-bpf-unit-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let mut deny = LinuxDeviceCgroup::default();
        deny.set_allow(false);
        deny.set_access(Some("rwm".into()));
        let result = attach(&dir, &[deny]);
        std::fs::remove_dir(&dir).unwrap();
        result.unwrap();
    }
}
