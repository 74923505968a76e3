//! linux.seccomp: the filter compiled by libseccomp and loaded into init.
//!
//! Names the runtime-spec uses map one to one onto libseccomp's. Like runc, a
//! syscall name this libseccomp does not know is skipped (profiles list
//! syscalls of newer kernels), and so is a rule whose action equals the default
//! action (libseccomp refuses those). SCMP_ACT_NOTIFY hands the listener fd to
//! the agent at `listenerPath`, with the container process state, over
//! SCM_RIGHTS.
//!
//! libseccomp compiles; skiff loads the program itself (seccomp(2)), from the
//! bytes libseccomp exported, which `cache` keeps for the next start.

mod cache;
pub use cache::libseccomp_version;

use std::io::{IoSlice, Read, Seek};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.seccomp: {step}: {source}")]
    Filter {
        step: &'static str,
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: {step}: {source}")]
    Export {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("linux.seccomp: {step}: {source}")]
    Load {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("linux.seccomp.listenerPath {path}: {step}: {source}")]
    Listener {
        path: PathBuf,
        step: &'static str,
        source: std::io::Error,
    },
}

fn filter_err(step: &'static str) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    move |source| SeccompError::Filter { step, source }
}

/// The EPERM default for SCMP_ACT_ERRNO without errnoRet, as runc uses.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(DEFAULT_ERRNO) as i32)
        }
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(DEFAULT_ERRNO) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

/// One argument condition. For SCMP_CMP_MASKED_EQ `value` is the mask and
/// `valueTwo` what the masked argument must equal (libseccomp's datum_a and
/// datum_b, as runc passes them: Docker's profile allows `clone` only when
/// `flags & value` (the namespace flags) is `valueTwo`, 0).
fn condition(
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> ScmpArgCompare {
    let op = match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                index,
                ScmpCompareOp::MaskedEqual(value),
                value_two.unwrap_or(0),
            );
        }
    };
    ScmpArgCompare::new(index, op, value)
}

/// Whether the profile lets every call of `name` through: a rule allows it
/// outright (or the default does) and no rule gives it another action.
pub fn plainly_allows(cfg: &LinuxSeccomp, name: &str) -> bool {
    let rules = || {
        cfg.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
    };
    let allow = LinuxSeccompAction::ScmpActAllow;
    if rules().any(|r| r.action() != allow) {
        return false;
    }
    cfg.default_action() == allow || rules().any(|r| r.args().as_ref().is_none_or(|a| a.is_empty()))
}

/// Whether the profile has any SCMP_ACT_NOTIFY rule.
pub fn wants_listener(cfg: &LinuxSeccomp) -> bool {
    cfg.default_action() == LinuxSeccompAction::ScmpActNotify
        || cfg
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// A filter ready to load: classic BPF as libseccomp generated it, and the
/// seccomp(2) flags the profile asks for.
pub struct Program {
    insns: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    /// The cache entry it was read from, if it was.
    cached: Option<(PathBuf, Vec<u8>)>,
}

/// The step named by the error of a filter the kernel refused to load.
const LOAD_STEP: &str = "loading the filter";

impl Program {
    /// Called with what a process that was to load this program reported
    /// (init, exec's child): when the kernel refused a program read back from
    /// the cache as invalid (EINVAL; not, say, EACCES, which is no fault of
    /// the program), that entry goes, and the next start compiles the
    /// profile again instead of failing the same way for good.
    pub fn forget_if_refused(&self, reported: &str) {
        let invalid = std::io::Error::from_raw_os_error(libc::EINVAL).to_string();
        let refused = reported
            .strip_prefix("linux.seccomp: ")
            .and_then(|r| r.strip_prefix(LOAD_STEP))
            .is_some_and(|r| r.ends_with(&invalid));
        if let (true, Some((dir, key))) = (refused, &self.cached) {
            cache::forget(dir, key);
        }
    }
}

/// The program for `cfg`: read back from the cache of `state_root` when an
/// earlier start compiled the same profile, else compiled now (and kept).
/// Done before anything is dropped, so that a bad profile fails `create`
/// with a clear error.
pub fn program(cfg: &LinuxSeccomp, state_root: Option<&Path>) -> Result<Program, SeccompError> {
    let cache = state_root.map(|root| (cache::dir(root), cache::key(cfg)));
    // A cached program the kernel would refuse (a damaged file) is compiled
    // again: its load may come after the container was reported created.
    let cached = cache
        .as_ref()
        .and_then(|(dir, key)| cache::lookup(dir, key))
        .map(|bytes| instructions(&bytes))
        .filter(|insns| loadable(insns));
    let from_cache = cached.is_some();
    let insns = match cached {
        Some(insns) => insns,
        None => {
            let bytes = export(&compile(cfg)?)?;
            if let Some((dir, key)) = &cache {
                cache::store(dir, key, &bytes);
            }
            instructions(&bytes)
        }
    };
    let mut flags = 0;
    for flag in cfg.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Init and exec's child are single-threaded: nothing to synchronise.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        };
    }
    if wants_listener(cfg) {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    Ok(Program {
        insns,
        flags,
        cached: cache.filter(|_| from_cache),
    })
}

/// Classic BPF instructions from their bytes (8 each, native order).
fn instructions(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect()
}

/// Whether the kernel's seccomp loader would take `insns`, by its own rules
/// (seccomp_check_filter, bpf_check_classic): at most 4096 instructions,
/// only those seccomp allows, loads inside struct seccomp_data, scratch
/// memory in range, no division by a zero constant, jumps that land inside,
/// and a return at the end.
fn loadable(insns: &[libc::sock_filter]) -> bool {
    const MAX_INSNS: usize = 4096;
    const SECCOMP_DATA_LEN: u32 = 64;
    const MEM_WORDS: u32 = 16;
    let len = insns.len();
    if len == 0 || len > MAX_INSNS {
        return false;
    }
    let lands = |pc: usize, offset: u32| pc + 1 + (offset as usize) < len;
    let each_ok = insns.iter().enumerate().all(|(pc, i)| {
        let (code, k) = (i.code as u32, i.k);
        match code {
            0x20 => k < SECCOMP_DATA_LEN && k % 4 == 0,      // ld [k]
            0x80 | 0x81 | 0x00 | 0x01 | 0x07 | 0x87 => true, // ld/ldx len, ld/ldx imm, tax, txa
            0x60 | 0x61 | 0x02 | 0x03 => k < MEM_WORDS,      // ld/ldx M[k], st, stx
            0x06 | 0x16 => true,                             // ret k, ret a
            // alu: add sub mul div or and lsh rsh xor (k, x), neg
            0x04 | 0x14 | 0x24 | 0x44 | 0x54 | 0xa4 => true,
            0x34 => k != 0,
            0x64 | 0x74 => k < 32,
            0x0c | 0x1c | 0x2c | 0x3c | 0x4c | 0x5c | 0x6c | 0x7c | 0xac | 0x84 => true,
            0x05 => lands(pc, k), // ja
            // jeq jgt jge jset (k, x)
            0x15 | 0x25 | 0x35 | 0x45 | 0x1d | 0x2d | 0x3d | 0x4d => {
                lands(pc, i.jt as u32) && lands(pc, i.jf as u32)
            }
            _ => false,
        }
    });
    each_ok && matches!(insns[len - 1].code, 0x06 | 0x16)
}

/// The BPF libseccomp generates for `ctx`, through a memfd (its export API
/// writes to a file descriptor).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    let io = |step: &'static str| move |source| SeccompError::Export { step, source };
    let fd = nix::sys::memfd::memfd_create(
        c"skiff-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| io("memfd_create")(e.into()))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file)
        .map_err(filter_err("exporting the program"))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(io("reading the exported program"))?;
    Ok(bytes)
}

/// Compiles the profile with libseccomp.
fn compile(cfg: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    // It would catch what the runtime needs to hand the listener over.
    if cfg.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::Invalid {
            field: "defaultAction".into(),
            reason: "SCMP_ACT_NOTIFY cannot be the default action".into(),
        });
    }
    let default = action(cfg.default_action(), cfg.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(filter_err("creating the filter"))?;
    for (i, arch) in cfg.architectures().iter().flatten().enumerate() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let a = ScmpArch::from_str(&name).map_err(|_| SeccompError::Invalid {
            field: format!("architectures[{i}]"),
            reason: format!("{name} is not known to libseccomp"),
        })?;
        ctx.add_arch(a)
            .map_err(filter_err("adding an architecture"))?;
    }
    for flag in cfg.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true)
                    .map_err(filter_err("flag SECCOMP_FILTER_FLAG_LOG"))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true)
                    .map_err(filter_err("flag SECCOMP_FILTER_FLAG_SPEC_ALLOW"))?;
            }
            // TSYNC: init is single-threaded; every thread is synchronised anyway.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
        }
    }
    // skiff sets no_new_privs itself when the config asks for it; libseccomp
    // must not force it on.
    ctx.set_ctl_nnp(false)
        .map_err(filter_err("no_new_privs control"))?;
    // A binary tree of syscall numbers instead of a linear list: each syscall
    // of the container runs O(log n) instructions, and the kernel builds its
    // per-syscall action cache at load in a fraction of the time (Docker-sized
    // profile: measured load 0.76 -> 0.21 ms).
    ctx.set_ctl_optimize(2)
        .map_err(filter_err("binary tree optimization"))?;
    for (i, rule) in cfg.syscalls().iter().flatten().enumerate() {
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            continue;
        }
        let mut cmps = Vec::new();
        for (j, arg) in rule.args().iter().flatten().enumerate() {
            if arg.index() > 5 {
                return Err(SeccompError::Invalid {
                    field: format!("syscalls[{i}].args[{j}].index"),
                    reason: format!("{} is past the 6 syscall arguments", arg.index()),
                });
            }
            cmps.push(condition(
                arg.index() as u32,
                arg.op(),
                arg.value(),
                arg.value_two(),
            ));
        }
        if act == ScmpAction::Notify {
            if let Some(name) = rule
                .names()
                .iter()
                .find(|n| NOTIFY_REFUSED.contains(&n.as_str()))
            {
                return Err(SeccompError::Invalid {
                    field: format!("syscalls[{i}]"),
                    reason: format!(
                        "SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it to \
                         hand the listener over after the filter is loaded (it would deadlock)"
                    ),
                });
            }
        }
        // libseccomp refuses two conditions on one argument in one rule:
        // then each condition is a rule of its own (so they are ORed), as
        // runc does.
        let mut indexes: Vec<u32> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| a.index() as u32)
            .collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        let groups: Vec<&[ScmpArgCompare]> = match repeated {
            true => cmps.chunks(1).collect(),
            false => vec![&cmps[..]],
        };
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            for group in &groups {
                ctx.add_rule_conditional(act, sc, group).map_err(|source| {
                    SeccompError::Invalid {
                        field: format!("syscalls[{i}]"),
                        reason: format!("{name}: {source}"),
                    }
                })?;
            }
        }
    }
    Ok(ctx)
}

/// Syscalls SCMP_ACT_NOTIFY may not catch: the runtime makes them after the
/// filter is loaded and before the agent has the listener (runc refuses
/// `write` for the same reason; skiff sends with sendmsg).
const NOTIFY_REFUSED: &[&str] = &["write", "sendmsg"];

/// Connects to the notify agent: done before pivot_root, while its path is
/// visible.
pub fn connect_listener(cfg: &LinuxSeccomp) -> Result<Option<UnixStream>, SeccompError> {
    if !wants_listener(cfg) {
        return Ok(None);
    }
    let path = cfg
        .listener_path()
        .clone()
        .ok_or_else(|| SeccompError::Invalid {
            field: "listenerPath".into(),
            reason: "required with SCMP_ACT_NOTIFY".into(),
        })?;
    UnixStream::connect(&path)
        .map(Some)
        .map_err(|source| SeccompError::Listener {
            path,
            step: "connecting",
            source,
        })
}

/// Loads the filter into this process and, for NOTIFY, sends the listener fd
/// with the container process state (runtime-spec "containerProcessState").
///
/// `pid` is the loading process's, as the host sees it (runtime-spec
/// containerProcessState; inside the container's pid namespace getpid()
/// says 1).
pub fn load(
    program: &Program,
    cfg: &LinuxSeccomp,
    listener: Option<&UnixStream>,
    state: &serde_json::Value,
    pid: i32,
) -> Result<(), SeccompError> {
    // The message for the agent, made before the filter is loaded: it may
    // catch brk or mmap, and nobody would answer before the agent has it.
    let path = cfg.listener_path().clone().unwrap_or_default();
    let message = listener.map(|_| {
        let mut msg = serde_json::Map::new();
        msg.insert("ociVersion".into(), state["ociVersion"].clone());
        msg.insert("fds".into(), serde_json::json!(["seccompFd"]));
        msg.insert("pid".into(), serde_json::json!(pid));
        msg.insert(
            "metadata".into(),
            serde_json::json!(cfg.listener_metadata().clone().unwrap_or_default()),
        );
        msg.insert("state".into(), state.clone());
        serde_json::Value::Object(msg).to_string()
    });
    let notify_fd =
        crate::sys::seccomp_set_filter(&program.insns, program.flags).map_err(|source| {
            SeccompError::Load {
                step: LOAD_STEP,
                source,
            }
        })?;
    let (Some(sock), Some(notify_fd), Some(bytes)) = (listener, notify_fd, message) else {
        return Ok(());
    };
    let fd: RawFd = notify_fd.as_raw_fd();
    let fds = [fd];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| SeccompError::Listener {
        path,
        step: "sending the listener fd",
        source: e.into(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    /// What libseccomp makes passes; damage of the kinds the kernel refuses
    /// does not.
    #[test]
    fn loadable_follows_the_kernels_rules() {
        let cfg: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]
        }))
        .unwrap();
        let good = instructions(&export(&compile(&cfg).unwrap()).unwrap());
        assert!(loadable(&good));
        let ret = insn(0x06, 0, 0, 0x7fff_0000);
        assert!(loadable(&[ret]));
        assert!(!loadable(&[]));
        assert!(!loadable(&[insn(0xff, 0, 0, 0), ret]), "unknown opcode");
        assert!(
            !loadable(&[insn(0x20, 0, 0, 64), ret]),
            "load past seccomp_data"
        );
        assert!(!loadable(&[insn(0x15, 5, 0, 1), ret]), "jump past the end");
        assert!(!loadable(&[insn(0x34, 0, 0, 0), ret]), "division by zero");
        assert!(
            !loadable(&[ret, insn(0x20, 0, 0, 0)]),
            "no return at the end"
        );
        assert!(!loadable(&vec![ret; 4097]), "too long");
    }

    /// Only the kernel's EINVAL for the load step drops a cache entry; so the
    /// wording this matches is the wording `SeccompError::Load` prints.
    #[test]
    fn only_an_invalid_program_is_forgotten() {
        let dir = std::env::temp_dir().join(format!("skiff-seccomp-forget-{}", std::process::id()));
        let key = b"key".to_vec();
        let program = Program {
            insns: Vec::new(),
            flags: 0,
            cached: Some((dir.clone(), key.clone())),
        };
        let report = |errno| {
            SeccompError::Load {
                step: LOAD_STEP,
                source: std::io::Error::from_raw_os_error(errno),
            }
            .to_string()
        };
        cache::store(&dir, &key, b"01234567");
        program.forget_if_refused(&report(libc::EACCES));
        program.forget_if_refused("linux.seccomp: something else: Invalid argument (os error 22)");
        assert!(cache::lookup(&dir, &key).is_some());
        program.forget_if_refused(&report(libc::EINVAL));
        assert!(cache::lookup(&dir, &key).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
