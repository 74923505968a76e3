//! A process's stdio between containerd's fifos and the agent's
//! ReadStdout/ReadStderr/WriteStdin.

use std::fs::{File, OpenOptions};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use skiff_vm::stdio::Output;
use skiff_vm::AgentClient;

/// Copies a process's stdout or stderr from the agent into containerd's
/// fifo (or drops it without one) until the stream ends.
pub(super) fn copy_output(agent: &AgentClient, id: &str, exec_id: &str, path: &str, stderr: bool) {
    let mut output = Output::new(agent.clone(), id, exec_id, stderr);
    match OpenOptions::new().write(true).open(path) {
        // A reader that went away: the rest is drained, so the process
        // never blocks on a full pipe.
        Ok(mut fifo) if !path.is_empty() => {
            if std::io::copy(&mut output, &mut fifo).is_err() {
                let _ = std::io::copy(&mut output, &mut std::io::sink());
            }
        }
        _ => {
            let _ = std::io::copy(&mut output, &mut std::io::sink());
        }
    }
}

/// Copies containerd's stdin fifo to the process until it ends, then
/// closes the process's stdin.
pub(super) fn copy_stdin(agent: &AgentClient, id: &str, exec_id: &str, path: &str) {
    match File::open(path) {
        Ok(input) => skiff_vm::stdio::copy_stdin(agent, id, exec_id, input),
        Err(_) => skiff_vm::stdio::copy_stdin(agent, id, exec_id, std::io::empty()),
    }
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
