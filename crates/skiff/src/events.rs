//! The store's event log, as Podman's file backend keeps one: a JSON
//! document a line in `<root>/events/events.log`, appended by each command
//! that changes a container, image, pod, volume or network, and read by
//! `events` (filtered, followed, in Podman's words).

use std::collections::BTreeMap;
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_image::{Error, Result};

use crate::format;

/// One event, with Podman's field names, in its JSON's order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    /// A container's `died` only.
    #[serde(
        rename = "ContainerExitCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exit_code: Option<i32>,
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "Image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: String,
    /// RFC 3339 with nanoseconds (Go's RFC3339Nano: trailing zeros go), UTC.
    #[serde(rename = "Time")]
    pub time: String,
    #[serde(rename = "Type")]
    pub kind: String,
    /// A pod's container's pod.
    #[serde(rename = "PodID", default, skip_serializing_if = "String::is_empty")]
    pub pod_id: String,
    /// The container's labels (null when none, as Podman writes it).
    #[serde(rename = "Attributes", default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Event {
    /// An event of `kind` (container, image, pod, volume, network) now.
    pub fn new(kind: &str, status: &str, id: &str, name: &str) -> Event {
        Event {
            kind: kind.into(),
            status: status.into(),
            id: id.into(),
            name: name.into(),
            time: go_nano(&format::rfc3339_now()),
            ..Default::default()
        }
    }

    pub fn image(mut self, image: &str) -> Event {
        self.image = image.into();
        self
    }

    pub fn attribute(mut self, key: &str, value: &str) -> Event {
        self.attributes
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    pub fn pod(mut self, pod_id: &str) -> Event {
        self.pod_id = pod_id.into();
        self
    }

    pub fn exit_code(mut self, code: i32) -> Event {
        self.exit_code = Some(code);
        self
    }

    /// Appends it to the store's log. An event that cannot be written is
    /// said on stderr and does not fail the command that made it.
    pub fn record(&self, root: &Path) {
        if let Err(e) = append(root, self) {
            eprintln!(
                "skiff: writing the {} {} event: {e}",
                self.kind, self.status
            );
        }
    }

    /// Seconds since the epoch.
    fn moment(&self) -> f64 {
        format::parse_time_fine(&self.time).unwrap_or(0.0)
    }
}

/// RFC 3339 with nanoseconds as Go's RFC3339Nano writes it: the
/// fraction's trailing zeros (and a fraction of zero) left out.
fn go_nano(rfc: &str) -> String {
    match rfc.split_once('.') {
        Some((whole, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{digits}Z")
            }
        }
        None => rfc.to_string(),
    }
}

/// Records a network's own event (create, remove): by its name, as skiff's
/// networks have no other id.
pub fn network(root: &Path, status: &str, name: &str) {
    Event::new("network", status, name, name)
        .attribute("driver", "bridge")
        .record(root);
}

/// Records an image's event: its id (without "sha256:") and the name it
/// went by.
pub fn image(root: &Path, status: &str, id: &str, name: &str) {
    Event::new("image", status, id.trim_start_matches("sha256:"), name).record(root);
}

fn log_path(root: &Path) -> PathBuf {
    root.join("events").join("events.log")
}

/// One write of one line with O_APPEND: lines of concurrent commands do
/// not interleave.
fn append(root: &Path, e: &Event) -> std::io::Result<()> {
    let path = log_path(root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(e)?;
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?
        .write_all(&line)
}

/// `events`' flags, checked.
#[derive(Debug, Default)]
pub struct Query {
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// key -> the values given for it (any of them matches; every key must).
    pub filters: BTreeMap<String, Vec<String>>,
    pub stream: bool,
    pub format: Option<String>,
    pub truncate: bool,
}

const FILTER_KEYS: &[&str] = &[
    "container",
    "event",
    "image",
    "label",
    "network",
    "pod",
    "type",
    "volume",
];
const TYPES: &[&str] = &["container", "image", "network", "pod", "system", "volume"];

impl Query {
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        filters: &[String],
        stream: bool,
        format: Option<String>,
        no_trunc: bool,
    ) -> Result<Query> {
        let moment = |flag: &str, v: Option<&str>| {
            v.map(|s| {
                format::parse_moment(s).map_err(|e| Error::invalid(format!("--{flag} {s:?}: {e}")))
            })
            .transpose()
        };
        let mut q = Query {
            since: moment("since", since)?,
            until: moment("until", until)?,
            stream,
            format,
            truncate: !no_trunc,
            ..Default::default()
        };
        for f in filters {
            let Some((key, value)) = f.split_once('=') else {
                return Err(Error::invalid(format!(
                    "--filter {f:?}: KEY=VALUE (KEY one of {})",
                    FILTER_KEYS.join(", ")
                )));
            };
            let key = if key == "status" { "event" } else { key };
            if !FILTER_KEYS.contains(&key) {
                return Err(Error::invalid(format!(
                    "--filter {f:?}: {key:?} is not a filter (one of {})",
                    FILTER_KEYS.join(", ")
                )));
            }
            if key == "type" && !TYPES.contains(&value) {
                return Err(Error::invalid(format!(
                    "--filter {f:?}: unknown event type {value:?} (one of {})",
                    TYPES.join(", ")
                )));
            }
            q.filters
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
        Ok(q)
    }

    fn matches(&self, e: &Event) -> bool {
        let t = e.moment();
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
            return false;
        }
        self.filters.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "container" => e.kind == "container" && names(e, v),
                "pod" => e.kind == "pod" && names(e, v),
                "volume" => e.kind == "volume" && names(e, v),
                "network" => e.kind == "network" && names(e, v),
                "image" => {
                    (e.kind == "image" && names(e, v)) || (e.kind == "container" && e.image == *v)
                }
                "event" => e.status == *v,
                "type" => e.kind == *v,
                "label" => {
                    let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
                    e.attributes
                        .as_ref()
                        .and_then(|a| a.get(k))
                        .is_some_and(|a| val.is_empty() || a == val)
                }
                _ => false,
            })
        })
    }
}

/// Whether `v` names the event's object: its name, its id, or the id's
/// start.
fn names(e: &Event, v: &str) -> bool {
    e.name == v || (!v.is_empty() && e.id.starts_with(v))
}

/// `events`: what the log holds (since/until, filtered; a stream without
/// --since skips the past), then with `stream` what is added to it until
/// interrupted or `until` is past.
pub fn show(root: &Path, q: &Query) -> Result<i32> {
    let path = log_path(root);
    // A stream shows what comes from now on, unless --since asks for the
    // past too (Podman's).
    let mut offset = match (q.stream, q.since) {
        (true, None) => std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    };
    loop {
        offset = print_from(&path, offset, q)?;
        if !q.stream {
            return Ok(0);
        }
        if q.until.is_some_and(|u| format::now_fine() > u) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints the matching whole lines after `offset`; the offset after the
/// last whole line read.
fn print_from(path: &Path, offset: u64, q: &Query) -> Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(Error::io("reading the event log", e)),
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .map_err(|e| Error::io("reading the event log", e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut at = offset;
    let mut out = std::io::stdout().lock();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("reading the event log", e))?;
        // A line still being written is read again next time.
        if n == 0 || !line.ends_with('\n') {
            return Ok(at);
        }
        at += n as u64;
        let Ok(e) = serde_json::from_str::<Event>(&line) else {
            continue;
        };
        if q.matches(&e) {
            let text = render(&e, q)?;
            if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                // The reader went away (a closed pipe): done.
                std::process::exit(0);
            }
        }
    }
}

/// One event as Podman prints it: its line, JSON, or a Go template.
fn render(e: &Event, q: &Query) -> Result<String> {
    match q.format.as_deref() {
        Some("json") => Ok(serde_json::to_string(e).unwrap_or_default()),
        Some(tpl) => {
            let tpl = if tpl.ends_with('\n') {
                tpl.trim_end_matches('\n').to_string()
            } else {
                tpl.to_string()
            };
            let v: Value = serde_json::to_value(e).unwrap_or_default();
            crate::template::render(&tpl, &template_value(v, e))
                .map_err(|m| Error::invalid(format!("--format: {m}")))
        }
        None => Ok(human(e, q.truncate)),
    }
}

/// The fields a template sees: the JSON's, with Time as Go prints a
/// time.Time.
fn template_value(mut v: Value, e: &Event) -> Value {
    v["Time"] = Value::String(go_time_fine(&e.time));
    v
}

/// "2024-01-02 03:04:05.123456789 +0000 UTC": Go's time.Time, as
/// Podman's lines start.
fn go_time_fine(rfc: &str) -> String {
    let Some((date, rest)) = rfc.split_once('T') else {
        return rfc.to_string();
    };
    let clock = rest.trim_end_matches('Z');
    let clock = if clock.contains('.') {
        clock.trim_end_matches('0').trim_end_matches('.')
    } else {
        clock
    };
    format!("{date} {clock} +0000 UTC")
}

/// Podman's line for an event.
fn human(e: &Event, truncate: bool) -> String {
    let id = if truncate && e.id.len() > 12 {
        &e.id[..12]
    } else {
        &e.id
    };
    let head = format!("{} {} {}", go_time_fine(&e.time), e.kind, e.status);
    match e.kind.as_str() {
        "container" | "pod" => {
            let mut s = format!("{head} {id} (image={}, name={}", e.image, e.name);
            if !e.pod_id.is_empty() {
                s.push_str(&format!(", pod_id={}", e.pod_id));
            }
            for (k, v) in e.attributes.iter().flatten() {
                s.push_str(&format!(", {k}={v}"));
            }
            s + ")"
        }
        // A network's own (create, remove) and a container's (connect,
        // disconnect: the container's id, the network's name).
        "network" => match e.status.as_str() {
            "create" | "remove" => {
                let driver = e.attributes.as_ref().and_then(|a| a.get("driver"));
                format!(
                    "{head} {} (name={}, type={})",
                    e.id,
                    e.name,
                    driver.map(String::as_str).unwrap_or("bridge")
                )
            }
            _ => format!("{head} {id} (container={id}, name={})", e.name),
        },
        "image" => format!("{head} {id} {}", e.name),
        _ => format!("{head} {}", e.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str, kind: &str, status: &str, name: &str) -> Event {
        Event {
            time: time.into(),
            ..Event::new(kind, status, "0123456789abcdef0123", name)
        }
    }

    #[test]
    fn filters_and_times_select_as_podmans() {
        let q = |f: &[&str]| {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            Query::parse(None, None, &f, false, None, false).unwrap()
        };
        let e = at("2026-01-02T03:04:05.5Z", "container", "start", "web").image("app:1");
        assert!(q(&["container=web"]).matches(&e));
        assert!(q(&["container=0123"]).matches(&e));
        assert!(!q(&["container=db"]).matches(&e));
        assert!(q(&["event=start", "event=die"]).matches(&e));
        assert!(!q(&["event=start", "type=image"]).matches(&e));
        assert!(q(&["status=start", "image=app:1"]).matches(&e));
        let e = e.attribute("tier", "front");
        assert!(q(&["label=tier=front"]).matches(&e));
        assert!(q(&["label=tier"]).matches(&e));
        assert!(!q(&["label=tier=back"]).matches(&e));
        let timed = |since: &str, until: &str| {
            Query::parse(Some(since), Some(until), &[], false, None, false).unwrap()
        };
        assert!(timed("2026-01-02T03:04:05Z", "2026-01-02T03:04:06Z").matches(&e));
        assert!(!timed("2026-01-02T03:04:06Z", "2026-01-02T03:05:00Z").matches(&e));
        for bad in ["nope", "colour=red", "type=boat"] {
            let err = Query::parse(None, None, &[bad.into()], false, None, false).unwrap_err();
            assert!(err.to_string().contains("--filter"), "{err}");
        }
        assert!(Query::parse(Some("yesterday-ish"), None, &[], false, None, false).is_err());
    }

    #[test]
    fn lines_read_as_podmans() {
        let e = at("2026-01-02T03:04:05.12Z", "container", "died", "web")
            .image("docker.io/library/app:1")
            .exit_code(3)
            .pod("feed")
            .attribute("tier", "front");
        assert_eq!(
            human(&e, true),
            "2026-01-02 03:04:05.12 +0000 UTC container died 0123456789ab \
             (image=docker.io/library/app:1, name=web, pod_id=feed, tier=front)"
        );
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"ContainerExitCode":3,"ID":"0123456789abcdef0123","Image":"docker.io/library/app:1","Name":"web","Status":"died","Time":"2026-01-02T03:04:05.12Z","Type":"container","PodID":"feed","Attributes":{"tier":"front"}}"#
        );
        let v = at("2026-01-02T03:04:05Z", "volume", "create", "data");
        assert_eq!(
            serde_json::to_string(&Event {
                id: String::new(),
                ..v
            })
            .unwrap(),
            r#"{"Name":"data","Status":"create","Time":"2026-01-02T03:04:05Z","Type":"volume","Attributes":null}"#
        );
        assert_eq!(
            go_nano("2026-01-02T03:04:05.120000000Z"),
            "2026-01-02T03:04:05.12Z"
        );
        assert_eq!(
            go_nano("2026-01-02T03:04:05.000000000Z"),
            "2026-01-02T03:04:05Z"
        );
        let i = at("2026-01-02T03:04:05Z", "image", "pull", "app:1");
        assert_eq!(
            human(&i, false),
            "2026-01-02 03:04:05 +0000 UTC image pull 0123456789abcdef0123 app:1"
        );
        let v = at("2026-01-02T03:04:05Z", "volume", "create", "data");
        assert_eq!(
            human(&v, true),
            "2026-01-02 03:04:05 +0000 UTC volume create data"
        );
    }
}
