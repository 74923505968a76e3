//! linux.seccomp: the filter compiled by libseccomp and loaded into init.
//!
//! Names the runtime-spec uses map one to one onto libseccomp's. Like runc, a
//! syscall name this libseccomp does not know is skipped (profiles list
//! syscalls of newer kernels), and so is a rule whose action equals the default
//! action (libseccomp refuses those). SCMP_ACT_NOTIFY hands the listener fd to
//! the agent at `listenerPath`, with the container process state, over
//! SCM_RIGHTS.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
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

fn operator(op: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
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

/// Compiles the profile. Done before anything is dropped, so that a bad profile
/// fails `create` with a clear error.
pub fn compile(cfg: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
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
            cmps.push(ScmpArgCompare::new(
                arg.index() as u32,
                operator(arg.op(), arg.value_two()),
                arg.value(),
            ));
        }
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            ctx.add_rule_conditional(act, sc, &cmps)
                .map_err(|source| SeccompError::Invalid {
                    field: format!("syscalls[{i}]"),
                    reason: format!("{name}: {source}"),
                })?;
        }
    }
    Ok(ctx)
}

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
pub fn load(
    ctx: &ScmpFilterContext,
    cfg: &LinuxSeccomp,
    listener: Option<&UnixStream>,
    state: &serde_json::Value,
) -> Result<(), SeccompError> {
    ctx.load().map_err(filter_err("loading the filter"))?;
    let Some(sock) = listener else {
        return Ok(());
    };
    let path = cfg.listener_path().clone().unwrap_or_default();
    let fd: RawFd = ctx
        .get_notify_fd()
        .map_err(filter_err("getting the notify fd"))?;
    let mut msg = serde_json::Map::new();
    msg.insert("ociVersion".into(), state["ociVersion"].clone());
    msg.insert("fds".into(), serde_json::json!(["seccompFd"]));
    msg.insert("pid".into(), serde_json::json!(std::process::id()));
    msg.insert(
        "metadata".into(),
        serde_json::json!(cfg.listener_metadata().clone().unwrap_or_default()),
    );
    msg.insert("state".into(), state.clone());
    let bytes = serde_json::Value::Object(msg).to_string();
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
    let _ = nix::unistd::close(fd);
    Ok(())
}
