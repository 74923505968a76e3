//! A process's stdio between containerd's fifos and the agent's
//! ReadStdout/ReadStderr/WriteStdin.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use skiff_vm::agent;
use skiff_vm::ttrpc;
use skiff_vm::AgentClient;

use super::service::ctx;

/// Copies a process's stdout or stderr from the agent into containerd's
/// fifo (or drops it without one) until the stream ends.
pub(super) fn copy_output(agent: &AgentClient, id: &str, exec_id: &str, path: &str, stderr: bool) {
    let mut out: Option<File> = if path.is_empty() {
        None
    } else {
        OpenOptions::new().write(true).open(path).ok()
    };
    let r = agent::ReadStreamRequest {
        container_id: id.into(),
        exec_id: exec_id.into(),
        len: 64 * 1024,
        ..Default::default()
    };
    loop {
        let read = if stderr {
            agent.read_stderr(ttrpc::context::Context::default(), &r)
        } else {
            agent.read_stdout(ttrpc::context::Context::default(), &r)
        };
        let data = match read {
            Ok(d) if !d.data.is_empty() => d.data,
            _ => return,
        };
        if let Some(f) = out.as_mut() {
            if f.write_all(&data).is_err() {
                out = None;
            }
        }
    }
}

/// Copies containerd's stdin fifo to the process until it ends, then
/// closes the process's stdin.
pub(super) fn copy_stdin(agent: &AgentClient, id: &str, exec_id: &str, path: &str) {
    if let Ok(mut input) = File::open(path) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let w = agent::WriteStreamRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
                data: buf[..n].to_vec(),
                ..Default::default()
            };
            if agent.write_stdin(ctx(), &w).is_err() {
                break;
            }
        }
    }
    let r = agent::ProcessRequest {
        container_id: id.into(),
        exec_id: exec_id.into(),
        ..Default::default()
    };
    let _ = agent.close_stdin(ctx(), &r);
}

/// Joins the copiers, giving up on them after `bound` (a process that
/// left a child holding its output open).
pub(super) fn join_within(handles: Vec<JoinHandle<()>>, bound: Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for h in handles {
            let _ = h.join();
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(bound);
}
