//! Health checks: the `--health-*` flags over the image's HEALTHCHECK
//! (Docker's `Healthcheck` object), run by the container's monitor every
//! interval and by `healthcheck run`. The results go to `health.json` in
//! the container's directory, which `inspect` shows as State.Health and
//! `ps` as "(healthy)" (Podman's and Docker's names and rules).
//!
//! Below `containers`: the probe is a command the caller builds (an exec
//! into its container); this module bounds it by the timeout, keeps its
//! output, and turns the results into a status.

use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_image::{Error, Result};

use crate::format;
use crate::stdio::{pipe, set_nonblocking};

const SECOND: u64 = 1_000_000_000;
/// Docker's and Podman's defaults.
const DEFAULT_INTERVAL: u64 = 30 * SECOND;
const DEFAULT_TIMEOUT: u64 = 30 * SECOND;
const DEFAULT_RETRIES: u32 = 3;
/// Results kept (Docker's and Podman's five).
const KEPT: usize = 5;
/// A probe's output kept, in bytes (Docker's 4 KiB).
const OUTPUT_MAX: usize = 4096;

/// The results, in the container's directory.
pub const FILE: &str = "health.json";
/// Left by a check whose action is restart: the monitor starts the
/// container again whatever its restart policy says.
pub const RESTART_MARK: &str = "health-restart";

/// A container's health check, as its monitor runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// Docker's Test: ["CMD", argv...] or ["CMD-SHELL", line].
    pub test: Vec<String>,
    /// Between checks, in ns; None (`--health-interval disable`): no
    /// timer, `healthcheck run` only.
    pub interval: Option<u64>,
    pub timeout: u64,
    /// Failures in this long after the start do not count.
    pub start_period: u64,
    /// Failures in a row that make it unhealthy.
    pub retries: u32,
    /// none, kill, restart or stop: what the monitor does once it turns
    /// unhealthy (Podman's --health-on-failure).
    pub on_failure: String,
}

/// The flags as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub retries: Option<u32>,
    pub on_failure: Option<String>,
    /// --no-healthcheck.
    pub disabled: bool,
}

impl Healthcheck {
    /// The check a container gets: the flags over the image's
    /// `Healthcheck` (each field the flags leave out is the image's, else
    /// Docker's default). None when neither has one, or either says
    /// NONE. A flag that would tune no check is refused, naming it.
    pub fn resolve(f: &Flags, image: Option<&Value>) -> Result<Option<Healthcheck>> {
        let on_failure = f.on_failure.clone().unwrap_or_else(|| "none".into());
        if !matches!(on_failure.as_str(), "none" | "kill" | "restart" | "stop") {
            return Err(Error::invalid(format!(
                "--health-on-failure {on_failure:?}: none, kill, restart or stop"
            )));
        }
        if f.disabled && f.cmd.is_some() {
            return Err(Error::invalid(
                "--no-healthcheck and --health-cmd conflict: give one",
            ));
        }
        let test = match (&f.cmd, f.disabled) {
            (_, true) => vec![],
            (Some(cmd), false) => parse_cmd(cmd)?,
            (None, false) => image
                .and_then(|h| h.get("Test"))
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        };
        if test.first().is_none_or(|t| t == "NONE") {
            let tuned = [
                ("--health-interval", f.interval.is_some()),
                ("--health-timeout", f.timeout.is_some()),
                ("--health-start-period", f.start_period.is_some()),
                ("--health-retries", f.retries.is_some()),
                ("--health-on-failure", f.on_failure.is_some()),
            ];
            if let Some((flag, _)) = tuned.iter().find(|(_, given)| *given) {
                return Err(Error::invalid(format!(
                    "{flag}: no health check to apply it to (give --health-cmd, or use an image with a HEALTHCHECK)"
                )));
            }
            return Ok(None);
        }
        let shape_ok = match test[0].as_str() {
            "CMD" => test.len() > 1 && !test[1].is_empty(),
            "CMD-SHELL" => test.len() == 2 && !test[1].trim().is_empty(),
            _ => false,
        };
        if !shape_ok {
            return Err(Error::invalid(format!(
                "Healthcheck.Test {test:?}: [\"CMD\", program, args...], [\"CMD-SHELL\", command] or [\"NONE\"]"
            )));
        }
        let image_ns = |key: &str| {
            image
                .and_then(|h| h.get(key))
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
        };
        let interval = match f.interval.as_deref() {
            Some("disable") => None,
            Some(text) => Some(at_least_a_second("--health-interval", text)?),
            None => Some(image_ns("Interval").unwrap_or(DEFAULT_INTERVAL)),
        };
        let timeout = match &f.timeout {
            Some(text) => at_least_a_second("--health-timeout", text)?,
            None => image_ns("Timeout").unwrap_or(DEFAULT_TIMEOUT),
        };
        let start_period = match &f.start_period {
            Some(text) => duration("--health-start-period", text)?,
            None => image_ns("StartPeriod").unwrap_or(0),
        };
        let retries = match f.retries {
            Some(0) => {
                return Err(Error::invalid(
                    "--health-retries 0: at least 1 (failures in a row that make it unhealthy)",
                ))
            }
            Some(n) => n,
            None => image_ns("Retries").map_or(DEFAULT_RETRIES, |n| n.min(u32::MAX as u64) as u32),
        };
        Ok(Some(Healthcheck {
            test,
            interval,
            timeout,
            start_period,
            retries,
            on_failure,
        }))
    }

    /// The program and its arguments: CMD's as they are, CMD-SHELL's
    /// line through /bin/sh -c.
    pub fn argv(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), self.test[1].clone()],
            _ => self.test.get(1..).unwrap_or_default().to_vec(),
        }
    }

    /// Docker's Config.Healthcheck (durations in ns; an interval of 0
    /// when it has no timer).
    pub fn inspect(&self) -> Value {
        serde_json::json!({
            "Test": self.test,
            "Interval": self.interval.unwrap_or(0),
            "Timeout": self.timeout,
            "StartPeriod": self.start_period,
            "Retries": self.retries,
        })
    }
}

/// --health-cmd as Podman reads it: a JSON list or a line. "none"
/// disables the image's; CMD and CMD-SHELL keep their meaning; a list of
/// more than one word is a program and its arguments; anything else is a
/// line for the shell.
fn parse_cmd(text: &str) -> Result<Vec<String>> {
    let (words, list) = match serde_json::from_str::<Vec<String>>(text) {
        Ok(v) => (v, true),
        Err(_) => (text.splitn(2, ' ').map(String::from).collect(), false),
    };
    let Some(first) = words.first().filter(|w| !w.trim().is_empty()) else {
        return Err(Error::invalid(format!(
            "--health-cmd {text:?}: a command (or none)"
        )));
    };
    Ok(match first.as_str() {
        "none" | "NONE" => vec!["NONE".into()],
        "CMD" if !list => text.split_whitespace().map(String::from).collect(),
        "CMD" | "CMD-SHELL" => words,
        _ if list && words.len() > 1 => std::iter::once("CMD".to_string()).chain(words).collect(),
        _ => vec!["CMD-SHELL".into(), words.join(" ")],
    })
}

/// A Go duration (30s, 1m30s, 500ms) in ns.
fn duration(flag: &str, text: &str) -> Result<u64> {
    format::go_duration(text)
        .filter(|s| *s >= 0.0)
        .map(|s| (s * 1e9).round() as u64)
        .ok_or_else(|| Error::invalid(format!("{flag} {text:?}: a duration (30s, 1m30s, 500ms)")))
}

fn at_least_a_second(flag: &str, text: &str) -> Result<u64> {
    let ns = duration(flag, text)?;
    if ns < SECOND {
        return Err(Error::invalid(format!("{flag} {text:?}: at least 1s")));
    }
    Ok(ns)
}

/// The results so far: Docker's and Podman's State.Health.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: String,
    pub failing_streak: u32,
    /// The last results, oldest first.
    pub log: Vec<Entry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub start: String,
    pub end: String,
    /// The check's exit code; -1 when it timed out.
    pub exit_code: i64,
    pub output: String,
}

/// One run of the check.
#[derive(Debug, Clone)]
pub struct Probe {
    pub entry: Entry,
    pub timed_out: bool,
}

impl Health {
    pub fn load(dir: &Path) -> Option<Health> {
        fs::read(dir.join(FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// State.Health: the log null while empty, as Podman's.
    pub fn inspect(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if self.log.is_empty() {
            v["Log"] = Value::Null;
        }
        v
    }
}

/// A new run of the container starts over: starting, no failures, no log
/// (Docker's).
pub fn reset(dir: &Path) -> Result<()> {
    let _lock = Lock::take(dir)?;
    save(
        dir,
        &Health {
            status: "starting".into(),
            ..Health::default()
        },
    )
}

/// Adds a result and says what the container's health is now. Success
/// makes it healthy; a failure counts once the start period is over, and
/// `retries` of them in a row make it unhealthy.
pub fn record(dir: &Path, hc: &Healthcheck, run_started: i64, p: &Probe) -> Result<Health> {
    let _lock = Lock::take(dir)?;
    let mut h = Health::load(dir).unwrap_or_else(|| Health {
        status: "starting".into(),
        ..Health::default()
    });
    let since_start = format::now_fine() - run_started as f64;
    let in_start_period = since_start * 1e9 < hc.start_period as f64;
    if p.entry.exit_code == 0 {
        h.status = "healthy".into();
        h.failing_streak = 0;
    } else if !in_start_period {
        h.failing_streak += 1;
        if h.failing_streak >= hc.retries {
            h.status = "unhealthy".into();
        }
    }
    h.log.push(p.entry.clone());
    let extra = h.log.len().saturating_sub(KEPT);
    h.log.drain(..extra);
    save(dir, &h)?;
    Ok(h)
}

fn save(dir: &Path, h: &Health) -> Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    fs::write(&tmp, serde_json::to_vec(h).unwrap_or_default())
        .and_then(|()| fs::rename(&tmp, dir.join(FILE)))
        .map_err(|e| Error::at(&dir.join(FILE), "writing", e))
}

/// The monitor's timer and `healthcheck run` may record at once.
struct Lock {
    _held: fs::File,
}

impl Lock {
    fn take(dir: &Path) -> Result<Lock> {
        Ok(Lock {
            _held: skiff_image::store::lock_file(&dir.join("health.lock"))?,
        })
    }
}

/// Runs the check's command (an exec the caller built), its stdout and
/// stderr together into the result (the first 4 KiB, without the last
/// newline). Past `timeout` it is killed: the process the exec started,
/// by the pid it wrote to `pid_file`, and the exec itself; the result's
/// exit code is then -1.
pub fn probe(cmd: Command, pid_file: Option<&Path>, timeout: Duration) -> Result<Probe> {
    let start = format::rfc3339_now();
    let (mut r, w) = pipe()?;
    let mut cmd = cmd;
    let w2 = w
        .try_clone()
        .map_err(|e| Error::io("duplicating a pipe", e))?;
    cmd.stdin(Stdio::null()).stdout(w).stderr(w2);
    let spawned = cmd.spawn();
    // The pipe's write ends the command held close here: the output
    // ends with the check's processes.
    drop(cmd);
    let mut child = spawned.map_err(|e| Error::io("running the health check", e))?;
    set_nonblocking(&r);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut ended: Option<(i64, Instant)> = None;
    let mut timed_out = false;
    loop {
        let open = drain(&mut r, &mut out);
        if let Some((_, at)) = ended {
            // The check's own processes are done; what it left running in
            // the background may hold the pipe: not waited for long.
            if !open || at.elapsed() > Duration::from_millis(200) {
                break;
            }
        } else if let Some(code) = exited(&mut child) {
            ended = Some((code, Instant::now()));
            continue;
        } else if Instant::now() > deadline {
            kill_probe(&mut child, pid_file);
            timed_out = true;
            ended = Some((-1, Instant::now()));
            continue;
        }
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd of ours, for at most 20 ms.
        unsafe { libc::poll(&mut pfd, 1, 20) };
    }
    let code = ended.map_or(-1, |(c, _)| c);
    let mut output = String::from_utf8_lossy(&out).into_owned();
    if output.ends_with('\n') {
        output.pop();
    }
    Ok(Probe {
        entry: Entry {
            start,
            end: format::rfc3339_now(),
            exit_code: code,
            output,
        },
        timed_out,
    })
}

/// The check's exit code once it has ended (128 + a signal's number, as
/// a shell says; -1 when another wait took its status).
fn exited(child: &mut std::process::Child) -> Option<i64> {
    use std::os::unix::process::ExitStatusExt;
    match child.try_wait() {
        Ok(Some(status)) => Some(match status.code() {
            Some(code) => i64::from(code),
            None => 128 + i64::from(status.signal().unwrap_or(0)),
        }),
        Ok(None) => None,
        Err(_) => Some(-1),
    }
}

/// Reads what the pipe holds (keeping the first OUTPUT_MAX bytes); false
/// at its end.
fn drain(r: &mut fs::File, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let room = OUTPUT_MAX.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

fn kill_probe(child: &mut std::process::Child, pid_file: Option<&Path>) {
    let pid = pid_file
        .and_then(|p| fs::read_to_string(p).ok())
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|p| *p > 1);
    if let Some(pid) = pid {
        // SAFETY: a signal to the check's process, which the exec started
        // and still waits for.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The monitor's timer: `tick` every interval until the run ends (the
/// sender of `stop` goes). A check without an interval has no timer.
/// (`healthcheck run` skips a container that is not running, paused or
/// between restarts.)
pub fn every_interval(hc: &Healthcheck, stop: &Receiver<()>, mut tick: impl FnMut()) {
    let Some(interval) = hc.interval else {
        return;
    };
    while stop.recv_timeout(Duration::from_nanos(interval)) == Err(RecvTimeoutError::Timeout) {
        tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(cmd: &str) -> Flags {
        Flags {
            cmd: Some(cmd.into()),
            ..Flags::default()
        }
    }

    #[test]
    fn the_command_is_read_as_podman_reads_it() {
        let test = |cmd: &str| {
            Healthcheck::resolve(&flags(cmd), None)
                .unwrap()
                .map(|h| h.test)
        };
        let v = |w: &[&str]| Some(w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            test("curl -f http://x/"),
            v(&["CMD-SHELL", "curl -f http://x/"])
        );
        assert_eq!(test(r#"["ls","/"]"#), v(&["CMD", "ls", "/"]));
        assert_eq!(test(r#"["false"]"#), v(&["CMD-SHELL", "false"]));
        assert_eq!(test("CMD ls /"), v(&["CMD", "ls", "/"]));
        assert_eq!(test("CMD-SHELL exit 1"), v(&["CMD-SHELL", "exit 1"]));
        assert_eq!(test(r#"["CMD-SHELL","true"]"#), v(&["CMD-SHELL", "true"]));
        assert_eq!(test("none"), None);
        assert!(Healthcheck::resolve(&flags(""), None).is_err());
        assert!(Healthcheck::resolve(&flags("CMD"), None).is_err());
    }

    #[test]
    fn flags_tune_the_images_check_and_bad_ones_are_named() {
        let image = json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000u64, "Retries": 7});
        let f = Flags {
            timeout: Some("2s".into()),
            ..Flags::default()
        };
        let hc = Healthcheck::resolve(&f, Some(&image)).unwrap().unwrap();
        assert_eq!(hc.test, vec!["CMD", "true"]);
        assert_eq!(hc.interval, Some(5 * SECOND));
        assert_eq!(hc.timeout, 2 * SECOND);
        assert_eq!(hc.retries, 7);
        assert_eq!(hc.argv(), vec!["true"]);
        let none = Flags {
            disabled: true,
            ..Flags::default()
        };
        assert_eq!(Healthcheck::resolve(&none, Some(&image)).unwrap(), None);
        let disabled_image = json!({"Test": ["NONE"]});
        assert_eq!(
            Healthcheck::resolve(&Flags::default(), Some(&disabled_image)).unwrap(),
            None
        );
        let hc = Healthcheck::resolve(
            &Flags {
                interval: Some("disable".into()),
                ..flags("exit 0")
            },
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(hc.interval, None);
        assert_eq!(hc.argv(), vec!["/bin/sh", "-c", "exit 0"]);
        for (bad, named) in [
            (
                Flags {
                    interval: Some("500ms".into()),
                    ..flags("true")
                },
                "--health-interval",
            ),
            (
                Flags {
                    timeout: Some("soon".into()),
                    ..flags("true")
                },
                "--health-timeout",
            ),
            (
                Flags {
                    retries: Some(0),
                    ..flags("true")
                },
                "--health-retries",
            ),
            (
                Flags {
                    on_failure: Some("explode".into()),
                    ..flags("true")
                },
                "--health-on-failure",
            ),
            (
                Flags {
                    interval: Some("5s".into()),
                    ..Flags::default()
                },
                "--health-interval",
            ),
            (
                Flags {
                    disabled: true,
                    ..flags("true")
                },
                "--no-healthcheck",
            ),
        ] {
            let e = Healthcheck::resolve(&bad, None).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn failures_count_after_the_start_period_and_success_resets() {
        let dir = tempfile::tempdir().unwrap();
        let mut hc = Healthcheck::resolve(&flags("true"), None).unwrap().unwrap();
        hc.retries = 2;
        hc.start_period = 3600 * SECOND;
        let result = |code| Probe {
            entry: Entry {
                exit_code: code,
                ..Entry::default()
            },
            timed_out: false,
        };
        reset(dir.path()).unwrap();
        let now = format::now();
        // In the start period: a failure is logged, not counted.
        let h = record(dir.path(), &hc, now, &result(1)).unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        hc.start_period = 0;
        let h = record(dir.path(), &hc, now, &result(1)).unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 1));
        let h = record(dir.path(), &hc, now, &result(0)).unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        record(dir.path(), &hc, now, &result(1)).unwrap();
        let h = record(dir.path(), &hc, now, &result(-1)).unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        for _ in 0..4 {
            record(dir.path(), &hc, now, &result(1)).unwrap();
        }
        assert_eq!(Health::load(dir.path()).unwrap().log.len(), KEPT);
    }

    #[test]
    fn a_probe_keeps_both_streams_and_is_cut_at_its_timeout() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let p = probe(cmd, None, Duration::from_secs(10)).unwrap();
        assert_eq!(p.entry.exit_code, 3);
        assert_eq!(p.entry.output, "out\nerr");
        assert!(!p.timed_out);
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let p = probe(cmd, None, Duration::from_millis(300)).unwrap();
        assert!(p.timed_out && p.entry.exit_code == -1, "{p:?}");
    }
}
