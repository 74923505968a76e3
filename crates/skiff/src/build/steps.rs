//! The steps that change only the config: ARG (not even that), ENV,
//! LABEL, WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL,
//! HEALTHCHECK, SHELL, ONBUILD, MAINTAINER. Each adds a history entry
//! marked `empty_layer`.

use serde_json::{json, Value};
use skiff_image::Result;

use super::parse::{self, Form, Instruction};
use super::{Builder, Stage};

/// ARG NAME[=DEFAULT]...: the value is --build-arg's, else this
/// machine's for an automatic platform ARG (TARGETARCH, ...), else the
/// default, else the global ARG's of that name.
pub fn arg(b: &Builder, stage: &mut Stage, i: &Instruction) -> Result<()> {
    let pairs = parse::pairs(&i.rest, b.file.escape, false, None).map_err(|e| b.err(i, e))?;
    for (k, default) in pairs {
        let value = b
            .given_arg(&k)
            .or_else(|| super::platform_arg(&k))
            .or_else(|| default.map(|d| parse::expand(&d, b.file.escape, &|n| stage.lookup(n))))
            .or_else(|| b.global_args.get(&k).cloned().flatten());
        stage.args.insert(k, value);
    }
    Ok(())
}

/// The shell form's command line as argv: SHELL's (default /bin/sh -c).
pub fn shell_argv(stage: &Stage, line: &str) -> Vec<String> {
    let mut argv: Vec<String> = stage.config["config"]["Shell"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    argv.push(line.to_string());
    argv
}

fn argv_of(stage: &Stage, i: &Instruction) -> Vec<String> {
    match i.form() {
        Form::Exec(v) => v,
        Form::Shell(s) => shell_argv(stage, &s),
    }
}

/// Appends a history entry; `empty_layer` for config-only steps.
pub fn history(stage: &mut Stage, created: &str, created_by: &str, empty_layer: bool) {
    let mut entry = json!({"created": created, "created_by": created_by, "comment": "skiff build"});
    if empty_layer {
        entry["empty_layer"] = json!(true);
    }
    match stage.config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => stage.config["history"] = json!([entry]),
    }
    stage.config["created"] = json!(created);
}

/// A config-only step.
pub fn config(
    b: &Builder,
    stage: &mut Stage,
    i: &Instruction,
    text: &str,
    created: &str,
) -> Result<()> {
    let esc = b.file.escape;
    let lookup_stage = stage.clone();
    let lookup = |n: &str| lookup_stage.lookup(n);
    let look: parse::Lookup = &lookup;
    let expanded = || parse::expand(&i.rest, esc, look);
    match i.keyword.as_str() {
        "ENV" => {
            let pairs = parse::pairs(&i.rest, esc, true, Some(look)).map_err(|e| b.err(i, e))?;
            let mut env = stage.env();
            for (k, v) in pairs {
                let v = v.unwrap_or_default();
                // A variable set again keeps its place (Docker's).
                let same =
                    |e: &String| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()) || e == &k;
                match env.iter().position(same) {
                    Some(at) => env[at] = format!("{k}={v}"),
                    None => env.push(format!("{k}={v}")),
                }
            }
            stage.run_config().insert("Env".into(), json!(env));
        }
        "LABEL" => {
            let pairs = parse::pairs(&i.rest, esc, true, Some(look)).map_err(|e| b.err(i, e))?;
            let labels = stage
                .run_config()
                .entry("Labels")
                .or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in pairs {
                labels[k] = json!(v.unwrap_or_default());
            }
        }
        "MAINTAINER" => stage.config["author"] = json!(expanded()),
        "WORKDIR" => {
            let w = expanded();
            let w = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", stage.workdir())
            };
            let w = format!("/{}", super::context::clean(&w));
            stage.run_config().insert("WorkingDir".into(), json!(w));
        }
        "USER" => {
            let u = expanded();
            if u.trim().is_empty() {
                return Err(b.err(i, "needs a user"));
            }
            stage.run_config().insert("User".into(), json!(u.trim()));
        }
        "CMD" => {
            let argv = argv_of(stage, i);
            stage.run_config().insert("Cmd".into(), json!(argv));
            stage.cmd_set = true;
        }
        "ENTRYPOINT" => {
            let argv = argv_of(stage, i);
            let cmd_set = stage.cmd_set;
            let rc = stage.run_config();
            rc.insert("Entrypoint".into(), json!(argv));
            // Docker's rule: a Cmd from the base image does not outlive a
            // new entrypoint.
            if !cmd_set {
                rc.remove("Cmd");
            }
        }
        "EXPOSE" => {
            let words = parse::words_in(&i.rest, esc, Some(look)).map_err(|e| b.err(i, e))?;
            let ports = stage
                .run_config()
                .entry("ExposedPorts")
                .or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for w in words {
                for p in crate::net::exposed_ports(&w).map_err(|e| b.err(i, e))? {
                    ports[p] = json!({});
                }
            }
        }
        "VOLUME" => {
            let list = match i.form() {
                Form::Exec(v) => v
                    .into_iter()
                    .map(|v| parse::expand(&v, esc, &|n| lookup_stage.lookup(n)))
                    .collect(),
                Form::Shell(_) => {
                    parse::words_in(&i.rest, esc, Some(look)).map_err(|e| b.err(i, e))?
                }
            };
            let vols = stage
                .run_config()
                .entry("Volumes")
                .or_insert_with(|| json!({}));
            if !vols.is_object() {
                *vols = json!({});
            }
            for v in list {
                if !v.starts_with('/') {
                    return Err(b.err(i, format!("{v:?}: a volume's path is absolute")));
                }
                vols[v] = json!({});
            }
        }
        "STOPSIGNAL" => {
            let s = expanded().trim().to_string();
            let valid = s.parse::<u32>().is_ok()
                || s.trim_start_matches("SIG")
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+');
            if s.is_empty() || !valid {
                return Err(b.err(i, format!("{s:?}: a signal's name (SIGTERM) or number")));
            }
            stage.run_config().insert("StopSignal".into(), json!(s));
        }
        "HEALTHCHECK" => {
            let hc = healthcheck(stage, i).map_err(|e| b.err(i, e))?;
            stage.run_config().insert("Healthcheck".into(), hc);
        }
        "SHELL" => match i.form() {
            Form::Exec(v) if !v.is_empty() => {
                stage.run_config().insert("Shell".into(), json!(v));
            }
            _ => {
                return Err(b.err(
                    i,
                    "needs the JSON form: SHELL [\"executable\", \"parameters\"]",
                ))
            }
        },
        "ONBUILD" => {
            let inner = i.rest.trim();
            let word = inner
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if matches!(word.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(b.err(i, format!("ONBUILD {word} is not allowed")));
            }
            let list = stage
                .run_config()
                .entry("OnBuild")
                .or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(a) = list.as_array_mut() {
                a.push(json!(inner));
            }
        }
        other => return Err(b.err(i, format!("{other}: not a config step (an internal error)"))),
    }
    history(stage, created, &format!("/bin/sh -c #(nop) {text}"), true);
    Ok(())
}

/// HEALTHCHECK NONE, or [--interval --timeout --start-period
/// --start-interval --retries] CMD ...: Docker's Healthcheck object.
fn healthcheck(stage: &Stage, i: &Instruction) -> std::result::Result<Value, String> {
    let rest = i.rest.trim();
    if rest.eq_ignore_ascii_case("NONE") {
        if !i.flags.is_empty() {
            return Err("HEALTHCHECK NONE takes no flags".into());
        }
        return Ok(json!({"Test": ["NONE"]}));
    }
    let (word, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !word.eq_ignore_ascii_case("CMD") || cmd.trim().is_empty() {
        return Err("expected HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE".into());
    }
    let cmd = cmd.trim();
    let test = match serde_json::from_str::<Vec<String>>(cmd) {
        Ok(v) if cmd.starts_with('[') => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v);
            t
        }
        _ => vec!["CMD-SHELL".to_string(), cmd.to_string()],
    };
    let _ = stage;
    let mut hc = json!({"Test": test});
    for (name, value) in &i.flags {
        let key = match name.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("--retries={value}: a number"))?;
                hc["Retries"] = json!(n);
                continue;
            }
            other => return Err(format!("--{other}: not a HEALTHCHECK flag")),
        };
        hc[key] = json!(duration_ns(value)
            .ok_or_else(|| format!("--{name}={value}: a duration (30s, 1m30s, 500ms)"))?);
    }
    Ok(hc)
}

/// Go's duration text (30s, 1m30s, 500ms, 1h) in nanoseconds.
fn duration_ns(s: &str) -> Option<u64> {
    crate::format::go_duration(s).map(|secs| (secs * 1e9).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ports() {
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("x"), None);
        use crate::net::exposed_ports as exposed;
        assert_eq!(exposed("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(exposed("53/udp").unwrap(), vec!["53/udp"]);
        assert_eq!(exposed("8000-8001").unwrap(), vec!["8000/tcp", "8001/tcp"]);
        assert!(exposed("x/tcp").is_err());
    }
}
