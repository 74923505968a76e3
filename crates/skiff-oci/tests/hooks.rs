//! Hooks (runtime-spec "POSIX-platform Hooks"): timeouts that hold whatever
//! the hook does with its stdio, the environment and working directory they
//! get, and poststart/poststop failures that do not stop the rest.

mod common;

use std::fs;

use common::*;
use serde_json::json;

fn sh_hook(script: &str) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// A state far bigger than a pipe holds (annotations) and a hook that never
/// reads its stdin: the timeout still ends it, and create fails. Before, the
/// write of the state blocked until the hook exited, which then counted as
/// success.
#[test]
fn a_timeout_holds_when_the_hook_does_not_read_a_large_state() {
    let env = TestEnv::new("hooktimeout");
    let mut b = env.bundle("b", &["true"]);
    b.config["annotations"] = json!({"big": "x".repeat(256 << 10)});
    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "40"], "timeout": 1}]});
    b.write();
    let (code, _, err) = env.bounded(&["create", "--bundle", b.path(), &env.id("c")], &[]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("hooks.prestart[0]") && err.contains("timed out"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
}

/// A hook that writes more than a pipe holds to stderr and fails: the runtime
/// drains it and reports the failure (before, it waited forever for a hook
/// blocked on its full stderr).
#[test]
fn a_hook_writing_much_output_neither_hangs_nor_hides_its_error() {
    let env = TestEnv::new("hookoutput");
    let mut b = env.bundle("b", &["true"]);
    b.config["hooks"] = json!({"createRuntime": [sh_hook(
        "i=0; while [ $i -lt 2000 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' >&2; i=$((i+1)); done; echo LAST-WORDS; exit 4"
    )]});
    b.write();
    let (code, _, err) = env.bounded(&["create", "--bundle", b.path(), &env.id("c")], &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("hooks.createRuntime[0]"), "{err}");
    assert!(
        err.contains("LAST-WORDS") && err.contains("exit status: 4"),
        "{err}"
    );
    assert!(env.container_dirs().is_empty());
}

/// Every hook, also those of a foreground `run` (which blocks the signals it
/// forwards), starts with an empty signal mask and no ignored signals, as
/// runc's do.
#[test]
fn hooks_start_with_an_empty_signal_mask() {
    let env = TestEnv::new("hookmask");
    let mut b = env.bundle("b", &["true"]);
    let log = env.base.join("masks");
    let probe = sh_hook(&format!(
        "grep -E '^Sig(Blk|Ign)' /proc/self/status >> {}",
        log.display()
    ));
    b.config["hooks"] = json!({"prestart": [probe], "poststart": [probe], "poststop": [probe]});
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    let text = read(&log);
    assert_eq!(text.lines().count(), 6, "{text}");
    for line in text.lines() {
        assert!(line.ends_with("\t0000000000000000"), "{text}");
    }
}

/// runtime-spec: a failing poststart or poststop hook is a warning; the
/// hooks after it still run, and so does the lifecycle.
#[test]
fn failing_poststart_and_poststop_hooks_do_not_stop_the_rest() {
    let env = TestEnv::new("hookwarn");
    let mut b = env.bundle("b", &["true"]);
    let log = env.base.join("ran");
    let mark = |name: &str| sh_hook(&format!("echo {name} >> {}", log.display()));
    b.config["hooks"] = json!({
        "poststart": [sh_hook("exit 1"), mark("poststart-after")],
        "poststop": [sh_hook("exit 1"), mark("poststop-after")],
    });
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("hooks.poststart[0]"), "{err}");
    assert!(err.contains("hooks.poststop[0]"), "{err}");
    assert_eq!(read(&log), "poststart-after\npoststop-after\n");
    assert!(env.container_dirs().is_empty());
}

/// createContainer hooks run in the container's root (relative paths reach
/// the rootfs), as runc's do; a hook without `env` gets the runtime's
/// environment, one with `env: []` none.
#[test]
fn hooks_get_the_rootfs_as_cwd_and_the_runtime_environment() {
    let env = TestEnv::new("hookenv");
    let mut b = env.bundle("b", &["true"]);
    let log = env.base.join("seen");
    let l = log.display();
    b.config["hooks"] = json!({
        "createContainer": [sh_hook(&format!("test -x ./usr/bin/busybox && echo cwd-is-rootfs >> {l}"))],
        "prestart": [
            sh_hook(&format!("echo inherited=$SKIFF_HOOK_PROBE >> {l}")),
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo empty=$SKIFF_HOOK_PROBE >> {l}")], "env": []},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo own=$SKIFF_HOOK_PROBE >> {l}")], "env": ["SKIFF_HOOK_PROBE=mine"]},
        ],
    });
    b.write();
    let (code, _, err) = env.bounded(
        &["run", "--bundle", b.path(), &env.id("c")],
        &[("SKIFF_HOOK_PROBE", "from-runtime")],
    );
    assert_eq!(code, 0, "{err}");
    let seen = read(&log);
    for want in [
        "inherited=from-runtime",
        "empty=\n",
        "own=mine",
        "cwd-is-rootfs",
    ] {
        assert!(seen.contains(want), "{want}: {seen}");
    }
    fs::remove_file(&log).unwrap();
}

/// poststart and poststop hooks run in the bundle (runc chdirs there before
/// any hook; hooks read `config.json` relative to it), and poststop's state
/// has no pid, as runc's: init's pid may name another process by then.
#[test]
fn poststart_and_poststop_get_the_bundle_as_cwd_and_poststop_no_pid() {
    let env = TestEnv::new("hookpost");
    let mut b = env.bundle("b", &["true"]);
    let save = |name: &str| {
        let f = env.base.join(name);
        sh_hook(&format!("cat > {0}; echo >> {0}; pwd >> {0}", f.display()))
    };
    b.config["hooks"] = json!({"poststart": [save("poststart")], "poststop": [save("poststop")]});
    b.write();
    let (code, out, err) = env.run(&b, &env.id("c"));
    assert_eq!(code, 0, "{out}{err}");
    for (hook, status, with_pid) in [
        ("poststart", "running", true),
        ("poststop", "stopped", false),
    ] {
        let seen = read(env.base.join(hook));
        let (state, cwd) = seen.split_once('\n').unwrap();
        let state: serde_json::Value = serde_json::from_str(state).unwrap();
        assert_eq!(state["status"], status, "{hook}: {seen}");
        assert_eq!(state.get("pid").is_some(), with_pid, "{hook}: {seen}");
        assert_eq!(cwd.trim(), b.path(), "{hook}");
    }
}
