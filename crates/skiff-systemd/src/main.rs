//! `skiff-systemd`: the systemd cgroup driver's helper. skiff-oci and the
//! shim run it for the few calls `--systemd-cgroup` makes (start a scope,
//! set its properties, stop it), so that D-Bus stays out of their own
//! binaries and start paths. Resources come as linux.resources JSON on stdin.
//!
//!   skiff-systemd start-scope UNIT SLICE PID v1|v2   < resources.json
//!   skiff-systemd set-resources UNIT v1|v2           < resources.json
//!   skiff-systemd stop UNIT

use std::io::Read;

use skiff::cgroups::{ScopeUnit, UnitManager};
use skiff::oci_spec::runtime::LinuxResources;
use skiff_systemd::Systemd;

fn resources() -> Result<Option<LinuxResources>, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the resources from stdin: {e}"))?;
    if text.trim().is_empty() || text.trim() == "null" {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("linux.resources on stdin: {e}"))
}

fn tree(word: &str) -> Result<bool, String> {
    match word {
        "v2" => Ok(true),
        "v1" => Ok(false),
        other => Err(format!(
            "the cgroup version must be v1 or v2, not {other:?}"
        )),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let systemd = Systemd::new();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words[..] {
        ["start-scope", unit, slice, pid, version] => {
            let pid = pid
                .parse::<i32>()
                .map_err(|_| format!("pid {pid:?} is not a number"))?;
            let unit = ScopeUnit {
                name: unit.into(),
                slice: slice.into(),
            };
            systemd.start_scope(&unit, pid, resources()?.as_ref(), tree(version)?)
        }
        ["set-resources", unit, version] => {
            let v2 = tree(version)?;
            match resources()? {
                Some(res) => systemd.set_resources(unit, &res, v2),
                None => Ok(()),
            }
        }
        ["stop", unit] => systemd.stop(unit),
        _ => Err(
            "usage: skiff-systemd start-scope UNIT SLICE PID v1|v2 | set-resources UNIT v1|v2 | stop UNIT"
                .into(),
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
