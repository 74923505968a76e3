//! RUN: the command in a container of the stage so far, made and run as
//! `skiff run` makes and runs one (containers::create, its monitor in the
//! foreground), then the container's upper dir committed as a layer and
//! the container removed, whatever the command did.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use skiff_image::Result;

use super::parse::{Form, Instruction};
use super::steps::{history, shell_argv};
use super::{mounts, Builder, Stage};
use crate::containers::{self as ctr, RunOpts};

/// Files and mount points the runtime makes in a rootfs that lacks them
/// (bind targets, /proc, /sys, /dev): not the command's work, so left out
/// of the layer when they are new and empty.
const RUNTIME_MADE: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "run/.containerenv",
    "proc",
    "sys",
    "dev",
    "etc",
    "run",
];

pub fn run(
    b: &mut Builder,
    stage: &mut Stage,
    i: &Instruction,
    plan: &mounts::Plan,
    created: &str,
) -> Result<()> {
    if let Some((flag, _)) = i.flags.iter().find(|(f, _)| f != "mount") {
        return Err(b.err(
            i,
            format!("--{flag}: not supported (RUN takes --mount only here)"),
        ));
    }
    let (argv, shown) = command(stage, i);
    let image = run_image(b, stage)?;
    // Made before the container and undone (dropped) after it is removed.
    let mounts = mounts::make(b, i, plan)?;
    let code_and_ctr = run_container(b, stage, &image, &argv, &mounts.mounts, i)?;
    let (code, c) = code_and_ctr;
    let made = if super::interrupted() {
        Err(b.err(i, "build interrupted (SIGINT or SIGTERM)"))
    } else if code == 0 {
        commit_upper(b, stage, &c, &mounts.targets, created, &shown)
    } else {
        b.run_exit = Some(code);
        Err(b.err(
            i,
            format!(
                "{} exited with {code}",
                serde_json::to_string(&argv).unwrap_or_default()
            ),
        ))
    };
    let removed = ctr::remove(b.store, &b.db, &c);
    made?;
    removed
}

/// The argv RUN runs, and how history shows it.
fn command(stage: &Stage, i: &Instruction) -> (Vec<String>, String) {
    match i.form() {
        Form::Exec(v) if i.heredocs.is_empty() => {
            let shown = serde_json::to_string(&v).unwrap_or_default();
            (v, format!("RUN {shown}"))
        }
        _ => {
            let rest = i.rest.trim();
            // `RUN <<EOF`: the heredoc is the script; else the shell reads
            // the heredocs as written (`RUN python3 <<EOF`).
            let script = match i.heredocs.as_slice() {
                [h] if rest
                    .trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == h.name =>
                {
                    h.body.clone()
                }
                _ => {
                    let mut s = rest.to_string();
                    for h in &i.heredocs {
                        s.push('\n');
                        s.push_str(&h.body);
                        s.push_str(&h.name);
                    }
                    s
                }
            };
            let argv = shell_argv(stage, &script);
            let shown = format!("{} {}", argv[..argv.len() - 1].join(" "), script.trim_end());
            (argv, shown)
        }
    }
}

/// The stage recorded as an image to run: without its VOLUMEs (what RUN
/// writes under them is kept, not put in anonymous volumes) or
/// entrypoint.
fn run_image(b: &mut Builder, stage: &Stage) -> Result<String> {
    let mut cfg = stage.config.clone();
    if let Some(rc) = cfg["config"].as_object_mut() {
        rc.remove("Volumes");
        rc.remove("Entrypoint");
        rc.remove("Healthcheck");
    }
    let bytes = serde_json::to_vec(&cfg).unwrap_or_default();
    b.materialize(&bytes, &stage.layers)
}

/// Makes and runs the container; its exit code and row.
fn run_container(
    b: &mut Builder,
    stage: &Stage,
    image: &str,
    argv: &[String],
    mounts: &[serde_json::Value],
    i: &Instruction,
) -> Result<(i32, crate::db::Ctr)> {
    // Build args reach RUN as environment, under ENV of the same name.
    let env_names: Vec<String> = stage
        .env()
        .iter()
        .map(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e).to_string())
        .collect();
    let mut env = vec![];
    for (k, v) in &stage.args {
        if let Some(v) = v {
            if !env_names.contains(k) {
                env.push(format!("{k}={v}"));
            }
        }
    }
    // Docker's proxy args reach RUN without an ARG.
    for k in super::PREDEFINED_ARGS {
        if let Some(v) = b.given_arg(k) {
            if !stage.args.contains_key(*k) {
                env.push(format!("{k}={v}"));
            }
        }
    }
    let user = stage.config["config"]["User"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    let opts = RunOpts {
        name: Some(format!("skiff-build-{}", random_hex())),
        env,
        workdir: Some(stage.workdir()),
        user,
        entrypoint: Some(String::new()),
        network: Some(b.o.network.clone()),
        no_hosts: b.o.no_hosts,
        extras: crate::spec::Extras {
            mounts: b.extras.mounts.iter().chain(mounts).cloned().collect(),
            ..b.extras.clone()
        },
        // Buildah's and Docker's RUN: no TERM or container=podman.
        env_rules: crate::spec::EnvRules {
            defaults: crate::spec::EnvDefaults::Path,
            ..Default::default()
        },
        ..RunOpts::default()
    };
    let c = ctr::create(b.store, &b.db, image, argv, &opts).map_err(|e| b.err(i, e))?;
    // The command's output is the build's (not with --quiet).
    let echo = match b.o.quiet {
        true => crate::attach::Echo::NONE,
        false => crate::attach::Echo::ALL,
    };
    let ran = ctr::monitor(b.store, &b.db, &c.id, echo, false);
    match ran {
        Ok(code) => Ok((code, c)),
        Err(e) => {
            let _ = ctr::remove(b.store, &b.db, &c);
            Err(b.err(i, e))
        }
    }
}

/// The container's upper dir as the stage's next layer.
fn commit_upper(
    b: &mut Builder,
    stage: &mut Stage,
    c: &crate::db::Ctr,
    mount_targets: &[String],
    created: &str,
    shown: &str,
) -> Result<()> {
    let upper = b.db.dir(&c.id).join("upper");
    let lowers: Vec<PathBuf> = stage
        .chain_ids()
        .iter()
        .rev()
        .filter_map(|ch| b.store.layer_dir(ch).ok().map(|d| d.join("diff")))
        .collect();
    // The mount points the runtime made (BuildKit leaves them out too),
    // before RUNTIME_MADE's /run that /run/secrets may stand in.
    for t in mount_targets {
        leave_out_mount_point(&upper, &lowers, t.trim_start_matches('/'));
    }
    for rel in RUNTIME_MADE {
        leave_out_if_made(&upper, &lowers, rel);
    }
    let parent = stage.chain_ids().last().cloned();
    let layer = skiff_image::assemble::layer_from_dir(b.store, &upper, parent.as_deref())?;
    add_layer(stage, layer, created, shown);
    Ok(())
}

/// Removes `rel` from the upper dir when it is new (no lower has it) and
/// empty (a file of no bytes, a directory of nothing).
fn leave_out_if_made(upper: &Path, lowers: &[PathBuf], rel: &str) {
    let p = upper.join(rel);
    let Ok(m) = fs::symlink_metadata(&p) else {
        return;
    };
    if lowers
        .iter()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
    {
        return;
    }
    if m.is_file() && m.len() == 0 {
        let _ = fs::remove_file(&p);
    } else if m.is_dir() {
        // Fails, as it should, when something is in it.
        let _ = fs::remove_dir(&p);
    }
}

/// Removes a mount point the runtime made from the upper dir, and the
/// parents it made for it, deepest first: each one new and empty, or a
/// directory overlay copied up only to make it in (empty in the upper
/// dir, not opaque, the lower's mode and owner). Stops at the first that
/// holds the command's work.
fn leave_out_mount_point(upper: &Path, lowers: &[PathBuf], rel: &str) {
    use std::os::unix::fs::MetadataExt;
    let mut rel = Path::new(rel);
    loop {
        let p = upper.join(rel);
        let Ok(m) = fs::symlink_metadata(&p) else {
            return;
        };
        let lower = lowers
            .iter()
            .find_map(|l| fs::symlink_metadata(l.join(rel)).ok());
        let removed = match lower {
            None if m.is_file() && m.len() == 0 => fs::remove_file(&p).is_ok(),
            None if m.is_dir() => fs::remove_dir(&p).is_ok(),
            Some(l)
                if m.is_dir()
                    && l.is_dir()
                    && (m.mode(), m.uid(), m.gid()) == (l.mode(), l.uid(), l.gid())
                    && !skiff_image::commit::opaque(&p) =>
            {
                fs::remove_dir(&p).is_ok()
            }
            _ => false,
        };
        match rel.parent() {
            Some(parent) if removed && !parent.as_os_str().is_empty() => rel = parent,
            _ => return,
        }
    }
}

/// A new layer on the stage: its descriptor, diff id and history.
pub fn add_layer(
    stage: &mut Stage,
    layer: skiff_image::assemble::NewLayer,
    created: &str,
    created_by: &str,
) {
    push_layer(stage, layer);
    history(stage, created, created_by, false);
}

/// A new layer on the stage: its descriptor and diff id (the caller
/// records its history).
pub fn push_layer(stage: &mut Stage, layer: skiff_image::assemble::NewLayer) {
    match stage.config["rootfs"]["diff_ids"].as_array_mut() {
        Some(a) => a.push(json!(layer.diff_id)),
        None => stage.config["rootfs"] = json!({"type": "layers", "diff_ids": [layer.diff_id]}),
    }
    stage.layers.push(layer.descriptor);
}

fn random_hex() -> String {
    let mut b = [0u8; 6];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        b.copy_from_slice(
            &(std::process::id() as u64 ^ crate::format::now() as u64).to_le_bytes()[..6],
        );
    }
    super::context::hex_string(&b)
}
