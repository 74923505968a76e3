//! What a user or a damaged disk can hand skiff-oci, mutated at random
//! (proptest; 128 cases a property here, PROPTEST_CASES=N for more; the
//! failures it finds are kept in proptest-regressions/ and run first):
//! config.json with fields removed or replaced by values of any type, and
//! state.json cut short or scribbled on. Whatever the input: no panic, no
//! hang, an error that says what it is about, and nothing left behind.

mod common;

use std::fs;

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
                prop_assert!(!cgroup_dir(ctrl, &format!("/{id}")).exists(), "{ctrl} cgroup left");
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
            prop_assert!(!cgroup_dir("pids", &format!("/{id}")).exists(), "cgroup left");
            Ok(())
        })?;
    }
}
