//! `exec`: turns runc's exec flags (or --process) into a runtime-spec process
//! and runs it through the library; the exit code is the process's.

use std::collections::HashSet;
use std::fs;

use nix::unistd::Pid;
use skiff_runtime::container::{self, ExecOptions};
use skiff_runtime::oci_spec::runtime::{Capability, Process};
use skiff_runtime::state::{Record, StateRoot};

use crate::cli::ExecArgs;
use crate::Result;

pub fn run(root: &StateRoot, args: &ExecArgs) -> Result<i32> {
    let record = root.load(&args.id)?;
    let process = match &args.process {
        Some(path) => read_process(path, &record)?,
        None => from_flags(&record, args)?,
    };
    if !args.detach {
        container::block_forwarded_signals();
    }
    // A terminal without --console-socket: in the foreground, the pty is
    // relayed here, as runc does (`exec -t ctr sh`); detached, there would
    // be nobody to hold it.
    let terminal = process.terminal() == Some(true);
    let relay = match (terminal, args.console_socket.is_some(), args.detach) {
        (true, false, true) => {
            return Err("exec: a terminal (-t) with -d needs --console-socket".into())
        }
        (true, false, false) => Some(
            std::os::unix::net::UnixStream::pair()
                .map_err(|e| format!("exec: a socketpair for the terminal: {e}"))?,
        ),
        _ => None,
    };
    let pid = container::exec_in(
        root,
        &record,
        &ExecOptions {
            id: &args.id,
            process,
            console_socket: args.console_socket.as_deref(),
            console_stream: relay.as_ref().map(|(_, theirs)| theirs),
            pid_file: args.pid_file.as_deref(),
            preserve_fds: args.preserve_fds,
            ignore_paused: args.ignore_paused,
            sub_cgroups: &args.cgroup,
        },
    )?;
    if args.detach {
        return Ok(0);
    }
    let pid = Pid::from_raw(pid.as_raw());
    let _t = skiff_runtime::trace::phase("wait");
    match relay {
        Some((ours, theirs)) => {
            drop(theirs);
            let master = skiff_runtime::process::console::receive_master(&ours)
                .map_err(|e| format!("exec: receiving the pty: {e}"))?;
            Ok(container::relay_and_wait(pid, master))
        }
        None => Ok(container::wait_forwarding(pid)),
    }
}

/// A --process file. Without `user` the process runs as uid 0, gid 0, as
/// runc's does (the runtime-spec's Go types default it so); without
/// `capabilities` it gets the container's, as with runc.
fn read_process(path: &std::path::Path, record: &Record) -> Result<Process> {
    let bytes = fs::read(path).map_err(|e| format!("--process {}: {e}", path.display()))?;
    let mut doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("--process {}: {e}", path.display()))?;
    if let Some(obj) = doc.as_object_mut() {
        obj.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        let container_caps = record
            .process
            .as_ref()
            .and_then(|p| p.capabilities().as_ref());
        if let (false, Some(caps)) = (obj.contains_key("capabilities"), container_caps) {
            obj.insert("capabilities".into(), serde_json::to_value(caps)?);
        }
        // Names this build does not know are left out with a warning, as
        // runc does and as config.json's are.
        if let Some(sets) = obj.get_mut("capabilities") {
            let unknown = skiff_runtime::config::remove_unknown_capabilities(sets);
            if !unknown.is_empty() {
                skiff_runtime::log::warn(&format!(
                    "--process {}: capabilities: ignoring unknown capabilities {}",
                    path.display(),
                    unknown.join(", ")
                ));
            }
        }
    }
    // The error names the field, as config.json's do: serde's alone says
    // "invalid type: map, expected a string" and leaves the reader to
    // guess where.
    serde_path_to_error::deserialize::<_, Process>(doc).map_err(|e| {
        let field = match e.path().to_string() {
            top if top == "." => "(document)".to_string(),
            field => field,
        };
        format!("--process {}: {field}: {}", path.display(), e.into_inner()).into()
    })
}

/// The container's process with runc's exec flags applied on top.
fn from_flags(record: &Record, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        return Err("exec: a command is required (or --process)".into());
    }
    let mut p = record.process.clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .map_err(|_| format!("--user {u:?}: uid must be a number"))?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            let gid: u32 = g
                .parse()
                .map_err(|_| format!("--user {u:?}: gid must be a number"))?;
            p.user_mut().set_gid(gid);
        }
    }
    // Added to the container's, as runc adds them.
    if !a.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        for g in &a.additional_gids {
            if !gids.contains(g) {
                gids.push(*g);
            }
        }
        p.user_mut().set_additional_gids(Some(gids));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if let Some(nnp) = a.no_new_privs {
        p.set_no_new_privileges(Some(nnp));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut add = HashSet::new();
        for name in &a.cap {
            // One this build does not know is left out with a warning, as
            // runc does (and as config.json's are).
            match serde_json::from_value::<Capability>(serde_json::Value::String(name.clone())) {
                Ok(c) => {
                    add.insert(c);
                }
                Err(_) => skiff_runtime::log::warn(&format!(
                    "--cap {name:?}: ignoring an unknown capability"
                )),
            }
        }
        let merge = |set: &Option<HashSet<Capability>>| -> Option<HashSet<Capability>> {
            Some(
                set.clone()
                    .unwrap_or_default()
                    .union(&add)
                    .copied()
                    .collect(),
            )
        };
        // Not inheritable, not ambient: runc's answer to CVE-2022-29162.
        // There an added capability would outlive execve even into a
        // non-root user's programs.
        caps.set_bounding(merge(caps.bounding()));
        caps.set_effective(merge(caps.effective()));
        caps.set_permitted(merge(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
