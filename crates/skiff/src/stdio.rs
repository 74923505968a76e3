//! A container's output as its monitor keeps it: the log file (Podman's
//! k8s-file format, rotated by size), the attach hub's clients, and the
//! pipes or terminal between them and the container; how a run ended.

use std::fs;
use std::io::{BufRead, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_image::{Error, Result};

use crate::format;

/// The longest log line; a longer one is written in parts.
pub(crate) const LINE_MAX: u64 = 16 * 1024;

/// `--log-opt max-size=SIZE,max-file=N`: the log is rotated by size, so it
/// never fills the disk (Docker's `local` driver's defaults: 20m, 5).
/// `--log-driver none`: no log kept.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
    /// --log-driver none: the output goes to attached clients only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub off: bool,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_size: 20 << 20,
            max_files: 5,
            off: false,
        }
    }
}

impl LogLimits {
    /// From `--log-driver` and `--log-opt KEY=VALUE` flags. The drivers:
    /// k8s-file (the default; json-file is taken for it, as Podman takes
    /// it) and none.
    pub fn parse(driver: Option<&str>, opts: &[String]) -> Result<LogLimits> {
        let mut l = LogLimits::default();
        match driver.unwrap_or("k8s-file") {
            "k8s-file" | "json-file" => {}
            "none" => l.off = true,
            other => {
                return Err(Error::invalid(format!(
                    "--log-driver {other:?}: k8s-file (json-file) or none"
                )))
            }
        }
        for o in opts {
            match o.split_once('=') {
                Some(("max-size", v)) => {
                    l.max_size = crate::spec::parse_size("--log-opt max-size", v)
                        .map_err(Error::invalid)? as u64;
                    if l.max_size < 4096 {
                        return Err(Error::invalid(format!("--log-opt {o:?}: at least 4k")));
                    }
                }
                Some(("max-file", v)) => {
                    l.max_files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::invalid(format!("--log-opt {o:?}: a number of files, at least 1"))
                    })?;
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "--log-opt {o:?}: max-size=SIZE or max-file=N"
                    )))
                }
            }
        }
        Ok(l)
    }

    pub(crate) fn load(dir: &Path) -> LogLimits {
        fs::read(dir.join("log.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// The log file, rotated: ctr.log, then ctr.log.1 (newest) ... .N-1.
pub(crate) struct LogWriter {
    dir: PathBuf,
    file: fs::File,
    size: u64,
    limits: LogLimits,
}

impl LogWriter {
    pub(crate) fn open(dir: &Path, limits: LogLimits) -> Result<LogWriter> {
        let path = dir.join("ctr.log");
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::at(&path, "opening", e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            file,
            size,
            limits,
        })
    }

    /// One line (Podman's k8s-file format: TIME STREAM F|P TEXT).
    pub(crate) fn line(&mut self, stream: &str, line: &[u8]) {
        if self.limits.off {
            return;
        }
        let (text, full) = match line.strip_suffix(b"\n") {
            Some(t) => (t, "F"),
            None => (line, "P"),
        };
        let mut out = Vec::with_capacity(text.len() + 48);
        out.extend_from_slice(format!("{} {stream} {full} ", rfc3339_nanos()).as_bytes());
        out.extend_from_slice(text);
        out.push(b'\n');
        if self.size + out.len() as u64 > self.limits.max_size {
            self.rotate();
        }
        if self.file.write_all(&out).is_ok() {
            self.size += out.len() as u64;
        }
    }

    pub(crate) fn rotate(&mut self) {
        let name = |n: u32| {
            self.dir.join(if n == 0 {
                "ctr.log".to_string()
            } else {
                format!("ctr.log.{n}")
            })
        };
        if self.limits.max_files <= 1 {
            let _ = self.file.set_len(0);
            self.size = 0;
            return;
        }
        for n in (0..self.limits.max_files - 1).rev() {
            let _ = fs::rename(name(n), name(n + 1));
        }
        if let Ok(f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(name(0))
        {
            self.file = f;
            self.size = 0;
        }
    }
}

pub(crate) fn rfc3339_nanos() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format::rfc3339(d.as_secs() as i64, Some(d.subsec_nanos()))
}

/// Docker's and Podman's codes for a container that could not start:
/// 127 the program is not there, 126 it cannot be run, else 125.
pub(crate) fn start_failure_code(msg: &str) -> i32 {
    // Go's messages are lower case, the runtime's (Rust's) not.
    let msg = msg.to_ascii_lowercase();
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        125
    }
}

/// A container's log, shared by its output copiers.
pub(crate) type SharedLog = std::sync::Arc<std::sync::Mutex<LogWriter>>;

/// How one run of the container ended.
pub(crate) enum Ran {
    Exited(i32),
    /// create or start failed: the runtime's message.
    NotStarted(String),
}

/// How a run's stdio is wired.
#[derive(Clone, Copy)]
pub(crate) struct RunIo {
    /// Output to ours too (a foreground run), these streams.
    pub(crate) echo: crate::attach::Echo,
    /// The container reads our stdin (a foreground run -i).
    pub(crate) stdin_inherit: bool,
    /// A terminal: its master comes over a console socket.
    pub(crate) tty: bool,
    /// -d -i: a pipe to its stdin, written by attach.
    pub(crate) interactive: bool,
    /// A foreground `run -t` attaches: start once it is there.
    pub(crate) hold: bool,
}

/// Copies a terminal's output into the log (line by line) and to attached
/// clients (as it comes), until the terminal is closed (EIO).
pub(crate) fn copy_terminal(
    mut master: impl Read,
    log: &std::sync::Mutex<LogWriter>,
    hub: &crate::attach::Hub,
) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        hub.send(crate::attach::STDOUT, &buf[..n]);
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' || line.len() as u64 >= LINE_MAX {
                if let Ok(mut w) = log.lock() {
                    w.line("stdout", &line);
                }
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        if let Ok(mut w) = log.lock() {
            w.line("stdout", &line);
        }
    }
}

/// Copies one stream of the container into the log, line by line (and to
/// attached clients, and to ours when `echo` passes it).
pub(crate) fn copy_output(
    r: impl Read,
    stream: &str,
    log: &std::sync::Mutex<LogWriter>,
    hub: &crate::attach::Hub,
    echo: crate::attach::Echo,
) {
    let mut reader = std::io::BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line of at most 16 KiB (a longer one goes in parts, P as
        // Podman marks them): memory stays bounded.
        match (&mut reader).take(LINE_MAX).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Ok(mut w) = log.lock() {
                    w.line(stream, &line);
                }
                let kind = match stream {
                    "stdout" => crate::attach::STDOUT,
                    _ => crate::attach::STDERR,
                };
                hub.send(kind, &line);
                if echo.passes(kind) {
                    if stream == "stdout" {
                        let _ = std::io::stdout().write_all(&line);
                        let _ = std::io::stdout().flush();
                    } else {
                        let _ = std::io::stderr().write_all(&line);
                    }
                }
            }
        }
    }
}

pub(crate) fn set_nonblocking(f: &fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl flags of our own fd.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

pub(crate) fn pipe() -> Result<(fs::File, fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two fds, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("making a pipe", std::io::Error::last_os_error()));
    }
    use std::os::fd::FromRawFd;
    // SAFETY: fresh fds of ours.
    Ok(unsafe { (fs::File::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) })
}

/// The command's process starts a session of its own: it outlives us
/// (and our terminal's signals).
pub(crate) fn in_own_session(cmd: &mut Command) {
    // SAFETY: setsid in the child between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}
