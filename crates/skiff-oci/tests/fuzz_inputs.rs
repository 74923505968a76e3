//! What a user or a damaged disk can hand skiff-oci, mutated at random
//! (proptest; 128 cases a property here, PROPTEST_CASES=N for more; the
//! failures it finds are kept in proptest-regressions/ and run first):
//! config.json with fields removed or replaced by values of any type,
//! state.json cut short or scribbled on, `exec --process` files mutated the
//! same way, seccomp profiles of random syscalls, actions and argument
//! rules, and command lines drawn from the real flags and garbage.
//! Whatever the input: no panic, no hang, an error that says what it is
//! about, and nothing left behind.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every path into `v` (object keys and array indexes), hooks left out: a
/// hook's path is run on the host, and a random one is nothing to run.
fn paths(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "hooks" {
                    continue;
                }
                here.push(json!(k));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(json!(i));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// Replaces (or with None removes) what `path` names in `v`, if an earlier
/// change left it there.
fn mutate(v: &mut Value, path: &[Value], with: Option<Value>) {
    let (last, parents) = path.split_last().expect("paths are never empty");
    let mut at = v;
    for p in parents {
        let next = match p {
            Value::String(k) => at.get_mut(k.as_str()),
            Value::Number(i) => at.get_mut(i.as_u64().unwrap() as usize),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        at = next;
    }
    match (at, last, with) {
        (Value::Object(m), Value::String(k), None) => {
            m.remove(k);
        }
        (Value::Array(a), Value::Number(i), None) => {
            let i = i.as_u64().unwrap() as usize;
            if i < a.len() {
                a.remove(i);
            }
        }
        (Value::Object(m), Value::String(k), Some(new)) => {
            m.insert(k.clone(), new);
        }
        (Value::Array(a), Value::Number(i), Some(new)) => {
            if let Some(slot) = a.get_mut(i.as_u64().unwrap() as usize) {
                *slot = new;
            }
        }
        _ => {}
    }
}

/// A JSON value of any type, with the edges of each.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(-1i64), Just(0), Just(1), Just(u32::MAX as i64 + 1)].prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[a-zA-Z0-9 ./:=,_-]{0,24}".prop_map(Value::from),
        Just(json!("../../../../etc")),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, "x", null])),
        Just(json!({"type": "bind", "x": [{}]})),
    ]
}

/// Checks one run of skiff-oci: it ended by itself (no signal: panics abort),
/// within the bound, with an error line when it failed.
fn ended_cleanly(what: &str, code: i32, err: &str) -> Result<(), TestCaseError> {
    prop_assert!(code == 0 || code == 1, "{what}: exit {code}: {err}");
    prop_assert!(!err.contains("panicked"), "{what}: {err}");
    if code != 0 {
        prop_assert!(!err.trim().is_empty(), "{what}: failed without a word");
    }
    Ok(())
}

/// The base bundle, made once per test binary run.
fn base(env: &TestEnv) -> (Bundle, Vec<Vec<Value>>) {
    let b = env.bundle("b", &["true"]);
    let mut all = Vec::new();
    paths(&b.config, &mut Vec::new(), &mut all);
    (b, all)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// config.json with up to three fields removed or replaced.
    #[test]
    fn any_config_is_created_or_refused_by_name(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), proptest::option::of(any_value())), 1..4)
    ) {
        thread_local! {
            static ENV: TestEnv = TestEnv::new("fuzzcfg");
        }
        ENV.with(|env| -> Result<(), TestCaseError> {
            thread_local! {
                static BASE: std::cell::OnceCell<(std::path::PathBuf, Value, Vec<Vec<Value>>)> = const { std::cell::OnceCell::new() };
            }
            let (dir, config, all) = BASE.with(|c| c.get_or_init(|| {
                let (b, all) = base(env);
                (b.dir.clone(), b.config.clone(), all)
            }).clone());
            let mut config = config;
            for (index, with) in &picks {
                let path = index.get(&all);
                mutate(&mut config, path, with.clone());
            }
            fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
            let id = env.id("c");
            let (code, _, err) = env.bounded(&["create", "--bundle", dir.to_str().unwrap(), &id], &[]);
            ended_cleanly("create", code, &err)?;
            if code == 0 {
                let (code, _, err) = env.bounded(&["delete", "--force", &id], &[]);
                ended_cleanly("delete", code, &err)?;
            } else {
                // The error names where it is: the config, a field, a step.
                prop_assert!(err.contains("config.json") || err.contains('.') || err.contains(':'), "{err}");
            }
            prop_assert!(env.container_dirs().is_empty(), "state left after {picks:?}");
            for ctrl in ["memory", "pids"] {
                prop_assert!(!default_group(ctrl, &id).exists(), "{ctrl} cgroup left");
            }
            prop_assert!(host_mounts(dir.to_str().unwrap()).is_empty(), "mount left");
            Ok(())
        })?;
    }

    /// state.json cut short, or with bytes changed, under a live container:
    /// state, kill and list end with an error or an answer, never a crash,
    /// and delete refuses a record it cannot read (also with --force).
    #[test]
    fn a_damaged_state_file_is_an_error_not_a_crash(
        cut in any::<prop::sample::Index>(),
        scribble in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        thread_local! {
            static ENV: TestEnv = TestEnv::new("fuzzstate");
        }
        ENV.with(|env| -> Result<(), TestCaseError> {
            thread_local! {
                static BUNDLE: std::cell::OnceCell<std::path::PathBuf> = const { std::cell::OnceCell::new() };
            }
            let dir = BUNDLE.with(|c| c.get_or_init(|| env.bundle("b", &["sleep", "100"]).dir.clone()).clone());
            let id = env.id("s");
            env.ok(&["create", "--bundle", dir.to_str().unwrap(), &id]);
            let pid = env.state(&id)["pid"].as_i64().unwrap();
            let file = env.root.join(&id).join("state.json");
            let good = fs::read(&file).unwrap();
            let mut bytes = good.clone();
            bytes.truncate(cut.index(bytes.len() + 1));
            for (at, b) in &scribble {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = *b;
                }
            }
            fs::write(&file, &bytes).unwrap();
            let mut calls = vec![
                vec!["state", id.as_str()],
                vec!["kill", id.as_str(), "0"],
                vec!["list"],
            ];
            // A record that no longer parses stops delete, with or without
            // --force, before it acts. (One scribbled into other valid JSON
            // is believed, as runc believes its own: its pid and start time
            // could name another process, so delete is not tried on it.)
            if serde_json::from_slice::<Value>(&bytes).is_err() {
                calls.push(vec!["delete", id.as_str()]);
                calls.push(vec!["delete", "--force", id.as_str()]);
            }
            for args in calls {
                let (code, _, err) = env.bounded(&args, &[]);
                ended_cleanly(args[0], code, &err)?;
                if args[0] == "delete" && bytes != good {
                    prop_assert!(code == 1 && err.contains(&id), "{args:?}: {err}");
                }
            }
            // The good record back: the container goes the usual way.
            fs::write(&file, &good).unwrap();
            env.ok(&["delete", "--force", &id]);
            prop_assert!(!pid_alive(pid), "init {pid} outlived its delete");
            prop_assert!(!default_group("pids", &id).exists(), "cgroup left");
            Ok(())
        })?;
    }
}

/// Waits until the container's group holds no live process but `init`
/// (what an exec started is gone), bounded.
fn only_init_left(id: &str, init: i64) -> Result<(), TestCaseError> {
    let procs = default_group("pids", id).join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<i64> = fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| p != init && pid_alive(p))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        prop_assert!(
            Instant::now() < deadline,
            "exec'd processes left: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A seccomp profile of random parts: real syscall names and garbage,
/// every action and some that are not, errnos of any size, argument rules
/// with indexes past the six a syscall has, every operator and some that
/// are not, flags and architectures real and made up. Every rule allows
/// what `true` needs, or not: the kernel's answer is not the property.
fn any_seccomp() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        Just("SCMP_ACT_ALLOW"),
        Just("SCMP_ACT_ERRNO"),
        Just("SCMP_ACT_KILL"),
        Just("SCMP_ACT_KILL_PROCESS"),
        Just("SCMP_ACT_KILL_THREAD"),
        Just("SCMP_ACT_TRAP"),
        Just("SCMP_ACT_LOG"),
        Just("SCMP_ACT_TRACE"),
        Just("SCMP_ACT_NOTIFY"),
        Just("SCMP_ACT_NOPE"),
        Just(""),
    ]
    .prop_map(Value::from);
    let name = prop_oneof![
        Just("read"),
        Just("write"),
        Just("execve"),
        Just("openat"),
        Just("mmap"),
        Just("exit_group"),
        Just("getpid"),
        Just("clone"),
        Just("clone3"),
        Just("personality"),
        Just("socket"),
        Just("chmod"),
        Just("no_such_syscall"),
        Just(""),
        Just("../x"),
    ]
    .prop_map(Value::from);
    let op = prop_oneof![
        Just("SCMP_CMP_NE"),
        Just("SCMP_CMP_LT"),
        Just("SCMP_CMP_LE"),
        Just("SCMP_CMP_EQ"),
        Just("SCMP_CMP_GE"),
        Just("SCMP_CMP_GT"),
        Just("SCMP_CMP_MASKED_EQ"),
        Just("SCMP_CMP_NOPE"),
    ]
    .prop_map(Value::from);
    let arg = (
        prop_oneof![0u64..8, Just(u64::MAX)],
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        op,
    )
        .prop_map(|(index, value, two, op)| {
            let mut a = json!({"index": index, "value": value, "op": op});
            if let Some(two) = two {
                a["valueTwo"] = json!(two);
            }
            a
        });
    let errno = prop_oneof![
        Just(None),
        (0u64..5000).prop_map(Some),
        any::<u64>().prop_map(Some)
    ];
    let rule = (
        proptest::collection::vec(name, 0..4),
        action.clone(),
        errno.clone(),
        proptest::collection::vec(arg, 0..3),
    )
        .prop_map(|(names, action, errno, args)| {
            let mut r = json!({"names": names, "action": action});
            if let Some(e) = errno {
                r["errnoRet"] = json!(e);
            }
            if !args.is_empty() {
                r["args"] = json!(args);
            }
            r
        });
    let arch = prop_oneof![
        Just(vec![]),
        Just(vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        Just(vec!["SCMP_ARCH_AARCH64"]),
        Just(vec!["SCMP_ARCH_NOPE"]),
    ];
    let flags = prop_oneof![
        Just(vec![]),
        Just(vec!["SECCOMP_FILTER_FLAG_LOG"]),
        Just(vec!["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
        Just(vec!["SECCOMP_FILTER_FLAG_TSYNC"]),
        Just(vec!["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
        Just(vec!["SECCOMP_FILTER_FLAG_NOPE"]),
    ];
    (
        action,
        errno,
        arch,
        flags,
        proptest::collection::vec(rule, 0..6),
    )
        .prop_map(|(default, errno, arch, flags, rules)| {
            let mut p = json!({
                "defaultAction": default,
                "architectures": arch,
                "syscalls": rules,
            });
            if let Some(e) = errno {
                p["defaultErrnoRet"] = json!(e);
            }
            if !flags.is_empty() {
                p["flags"] = json!(flags);
            }
            p
        })
}

/// A command line of real subcommands and flags, values that fit them and
/// garbage. `events` is left out: it follows a container until it stops,
/// which is no hang. Paths stay inside the test's scratch directory.
fn any_argv() -> impl Strategy<Value = Vec<String>> {
    const SUBCOMMANDS: &[&str] = &[
        "create",
        "start",
        "run",
        "exec",
        "delete",
        "kill",
        "state",
        "list",
        "ps",
        "pause",
        "resume",
        "update",
        "spec",
        "features",
        "doctor",
        "checkpoint",
        "restore",
        "help",
    ];
    // Flags, global and of the subcommands.
    const FLAGS: &[&str] = &[
        "--root",
        "--log",
        "--log-format",
        "--debug",
        "--systemd-cgroup",
        "--rootless",
        "--help",
        "-h",
        "--version",
        "-v",
        "--bundle",
        "-b",
        "--pid-file",
        "--console-socket",
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
        "--force",
        "-f",
        "--format",
        "-q",
        "--all",
        "-a",
        "--detach",
        "-d",
        "--tty",
        "-t",
        "--env",
        "-e",
        "--cwd",
        "--user",
        "-u",
        "--cap",
        "--process",
        "-p",
        "--memory",
        "--pids-limit",
        "--cpu-shares",
        "--cpuset-cpus",
        "--resources",
        "-r",
        "--fix",
        "--image-path",
        "--leave-running",
        "--",
        "-",
        "--no-such-flag",
        "-Z",
    ];
    // Values: the test's container and bundle, signals, sizes, formats.
    const VALUES: &[&str] = &[
        "@id",
        "@bundle",
        "@scratch",
        "@process",
        "true",
        "KILL",
        "SIGTERM",
        "9",
        "0",
        "-1",
        "64m",
        "1g",
        "json",
        "table",
        "text",
        "1000:1000",
        "CAP_SYS_ADMIN",
        "A=b",
        "18446744073709551616",
        "",
        "../x",
        "--root=x",
        "==",
        "\u{e9}\u{1f600}",
    ];
    let pick = |list: &'static [&'static str]| prop::sample::select(list).prop_map(str::to_string);
    let word = prop_oneof![
        pick(SUBCOMMANDS),
        pick(FLAGS),
        pick(VALUES),
        "[a-zA-Z0-9 ./:=,_-]{0,12}",
    ];
    let words = proptest::collection::vec(word, 0..7);
    // Mostly a subcommand first, as a caller would write it, so that the
    // flags reach the subcommand's own parsing and action.
    (proptest::option::weighted(0.85, pick(SUBCOMMANDS)), words)
        .prop_map(|(sub, words)| sub.into_iter().chain(words).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// `exec --process` with a process.json of up to three fields removed
    /// or replaced: run or refused by name, the container running on, and
    /// nothing of the exec left.
    #[test]
    fn any_exec_process_is_run_or_refused_by_name(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), proptest::option::of(any_value())), 1..4)
    ) {
        thread_local! {
            static ENV: TestEnv = TestEnv::new("fuzzproc");
        }
        ENV.with(|env| -> Result<(), TestCaseError> {
            thread_local! {
                static BASE: std::cell::OnceCell<(Value, Vec<Vec<Value>>)> = const { std::cell::OnceCell::new() };
            }
            let id = env.id("c");
            let (process, all) = BASE.with(|c| c.get_or_init(|| {
                let b = env.bundle("b", &["sleep", "1000"]);
                env.ok(&["run", "-d", "--bundle", b.path(), &id]);
                let mut process = b.config["process"].clone();
                process["args"] = json!(["true"]);
                let mut all = Vec::new();
                paths(&process, &mut Vec::new(), &mut all);
                (process, all)
            }).clone());
            let init = env.state(&id)["pid"].as_i64().unwrap();
            let mut process = process;
            for (index, with) in &picks {
                let path: &Vec<Value> = index.get(&all);
                mutate(&mut process, path, with.clone());
            }
            let file = env.base.join("process.json");
            fs::write(&file, serde_json::to_vec(&process).unwrap()).unwrap();
            let (code, _, err) = env.bounded(&["exec", "--process", file.to_str().unwrap(), &id], &[]);
            // 255: the program could not be run (runc's code); others
            // (126, 127) are a shell's, when the args name one.
            prop_assert!(!err.contains("panicked"), "{err}");
            prop_assert!([0, 1, 126, 127, 255].contains(&code), "exec: exit {code}: {err}");
            if code == 1 || code == 255 {
                prop_assert!(!err.trim().is_empty(), "exec failed without a word");
            }
            // A file that does not parse is refused naming the field: the
            // words after the file's name are a path (`user.uid`,
            // `args[0]`, `(document)`), not serde's message.
            let file_name = format!("{}: ", file.display());
            if let Some(rest) = err.split_once(&file_name).map(|(_, r)| r) {
                let field = rest.split(": ").next().unwrap_or("");
                prop_assert!(!field.is_empty() && !field.contains(' '), "no field named: {err}");
            }
            prop_assert_eq!(env.status(&id), "running");
            prop_assert!(pid_alive(init), "init died of an exec");
            only_init_left(&id, init)?;
            Ok(())
        })?;
    }

    /// config.json with a random seccomp profile: created or refused by
    /// name; started, the container runs or is killed by its filter; and
    /// `delete --force` leaves nothing.
    #[test]
    fn any_seccomp_profile_is_loaded_or_refused_by_name(profile in any_seccomp()) {
        thread_local! {
            static ENV: TestEnv = TestEnv::new("fuzzseccomp");
        }
        ENV.with(|env| -> Result<(), TestCaseError> {
            thread_local! {
                static BASE: std::cell::OnceCell<(std::path::PathBuf, Value)> = const { std::cell::OnceCell::new() };
            }
            let (dir, config) = BASE.with(|c| c.get_or_init(|| {
                let b = env.bundle("b", &["true"]);
                (b.dir.clone(), b.config.clone())
            }).clone());
            let mut config = config;
            config["linux"]["seccomp"] = profile.clone();
            fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
            let id = env.id("c");
            let (code, _, err) = env.bounded(&["create", "--bundle", dir.to_str().unwrap(), &id], &[]);
            ended_cleanly("create", code, &err)?;
            if code == 0 {
                let (code, _, err) = env.bounded(&["start", &id], &[]);
                ended_cleanly("start", code, &err)?;
                let (code, _, err) = env.bounded(&["delete", "--force", &id], &[]);
                ended_cleanly("delete", code, &err)?;
            } else {
                prop_assert!(err.contains("seccomp"), "{err}");
            }
            prop_assert!(env.container_dirs().is_empty(), "state left after {profile}");
            for ctrl in ["memory", "pids"] {
                prop_assert!(!default_group(ctrl, &id).exists(), "{ctrl} cgroup left");
            }
            prop_assert!(host_mounts(dir.to_str().unwrap()).is_empty(), "mount left");
            Ok(())
        })?;
    }

    /// Any command line: exit 0, 1 or 2, or 3 for a command skiff-oci does
    /// not have (runc's code; 255 from an exec'd program that could not be
    /// run), never a panic, a signal or a hang; a failure
    /// says something; nothing is created outside the scratch directory,
    /// and what the command made of the test's container is deleted after.
    #[test]
    fn any_command_line_ends_with_an_answer(argv in any_argv()) {
        thread_local! {
            static ENV: TestEnv = TestEnv::new("fuzzcli");
        }
        ENV.with(|env| -> Result<(), TestCaseError> {
            thread_local! {
                static BUNDLE: std::cell::OnceCell<std::path::PathBuf> = const { std::cell::OnceCell::new() };
            }
            let bundle = BUNDLE.with(|c| c.get_or_init(|| env.bundle("b", &["sleep", "1000"]).dir.clone()).clone());
            // A created container for the commands to act on, and a
            // scratch directory (two deep: "../x" stays in the test's).
            let id = env.id("c");
            env.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
            let scratch = env.base.join("cwd").join("s");
            fs::create_dir_all(&scratch).unwrap();
            let process = env.base.join("process.json");
            fs::write(&process, r#"{"args":["true"],"cwd":"/"}"#).unwrap();
            let args: Vec<String> = argv
                .iter()
                .map(|a| match a.as_str() {
                    "@id" => id.clone(),
                    "@bundle" => bundle.to_str().unwrap().to_string(),
                    "@scratch" => scratch.to_str().unwrap().to_string(),
                    "@process" => process.to_str().unwrap().to_string(),
                    _ => a.clone(),
                })
                .collect();
            let before = outside_scratch();
            let out = std::process::Command::new("timeout")
                .args(["-s", "KILL", "30", skiff(), "--root"])
                .arg(&env.root)
                .args(&args)
                .current_dir(&scratch)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            // By signal (a panic aborts) or killed by timeout: None or 137.
            let code = out.status.code();
            prop_assert!(!err.contains("panicked"), "{args:?}: {err}");
            let exec_failed = code == Some(255) && args.iter().any(|a| a == "exec");
            prop_assert!(matches!(code, Some(0..=3)) || exec_failed, "{args:?}: exit {code:?}: {err}");
            if code != Some(0) {
                prop_assert!(!err.trim().is_empty(), "{args:?}: failed without a word");
            }
            // Whatever was made of it: gone with delete --force.
            for c in env.container_dirs() {
                let (code, _, err) = env.bounded(&["delete", "--force", &c], &[]);
                prop_assert_eq!(code, 0, "delete --force {} after {:?}: {}", c, args, err);
            }
            prop_assert!(env.container_dirs().is_empty(), "state left after {args:?}");
            prop_assert!(!default_group("pids", &id).exists(), "cgroup left after {args:?}");
            prop_assert!(host_mounts(bundle.to_str().unwrap()).is_empty(), "mount left after {args:?}");
            // Only names the command line holds: other processes on the
            // host (a compiler's temporary files) write to /tmp meanwhile.
            let made: Vec<String> = outside_scratch()
                .into_iter()
                .filter(|p| !before.contains(p) && named_by(&args, p))
                .collect();
            prop_assert!(made.is_empty(), "made outside the scratch dir: {:?} by {:?}", made, args);
            Ok(())
        })?;
    }
}

/// What is in /tmp/skiff-tests (other tests' directories aside) and in
/// the fuzzed commands' parent directories: a file made there came from a
/// path that escaped the scratch directory.
/// Whether `path`'s last component is a component of one of the
/// arguments (`a/b`, `--flag=a/b`): what a path escaping the scratch
/// directory would have made.
fn named_by(args: &[String], path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !name.is_empty()
        && args
            .iter()
            .flat_map(|a| a.split(['/', '=']))
            .any(|c| c == name)
}

fn outside_scratch() -> Vec<String> {
    let mut names: Vec<String> = ["/tmp", "/"]
        .iter()
        .flat_map(|d| fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .filter(|p| {
            !p.starts_with("/tmp/skiff")
                && !p.starts_with("/tmp/.tmp")
                && !p.starts_with("/tmp/cargo")
        })
        .collect();
    names.sort();
    names
}
