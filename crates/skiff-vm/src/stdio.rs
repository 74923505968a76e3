//! A process's stdio over the agent API (ReadStdout/ReadStderr,
//! WriteStdin/CloseStdin) as std's Read, for whoever copies it on the host
//! (the shim into containerd's fifos, the engine into its log).

use std::io::Read;
use std::time::Duration;

use skiff_agent_api::agent;
use skiff_agent_api::agent_ttrpc::AgentClient;
use skiff_agent_api::ttrpc;

/// One of a process's output streams; reads return 0 at its end (or when
/// the agent is gone).
pub struct Output {
    agent: AgentClient,
    request: agent::ReadStreamRequest,
    stderr: bool,
    pending: Vec<u8>,
    at: usize,
}

impl Output {
    pub fn new(agent: AgentClient, id: &str, exec_id: &str, stderr: bool) -> Output {
        Output {
            agent,
            request: agent::ReadStreamRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
                len: 64 * 1024,
                ..Default::default()
            },
            stderr,
            pending: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            // No bound: a read lasts until the process writes or ends; the
            // call ends with the VM at the latest (the connection drops).
            let ctx = ttrpc::context::Context::default();
            let read = if self.stderr {
                self.agent.read_stderr(ctx, &self.request)
            } else {
                self.agent.read_stdout(ctx, &self.request)
            };
            self.pending = read.map(|r| r.data).unwrap_or_default();
            self.at = 0;
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Copies `input` to the process's stdin until it ends, then closes the
/// process's stdin.
pub fn copy_stdin(agent: &AgentClient, id: &str, exec_id: &str, mut input: impl Read) {
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
        if agent.write_stdin(call_context(), &w).is_err() {
            break;
        }
    }
    let r = agent::ProcessRequest {
        container_id: id.into(),
        exec_id: exec_id.into(),
        ..Default::default()
    };
    let _ = agent.close_stdin(call_context(), &r);
}

/// The bound of one agent call that does not wait for a process (create,
/// start, signal, ...): TCG is slow, a busy host slower.
pub fn call_context() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(Duration::from_secs(60).as_nanos() as i64)
}
