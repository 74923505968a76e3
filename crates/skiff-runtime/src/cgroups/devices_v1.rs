//! linux.resources.devices on a v1 devices hierarchy, as the kernel keeps
//! them: a default (allow or deny every device) and exceptions to it, each
//! rule written to devices.allow or devices.deny changing one or the other.
//! The config's rules are played through that model first, so that what is
//! written is the state they end in, one write per device, not every rule;
//! and, for a live container (`update`), only the difference from what the
//! group allows now: rewriting from "deny all" would cut its processes off
//! their devices for a moment (runc's emulator does the same).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// A device (or a class of them): type 'a', 'b' or 'c', and numbers ("*"
/// for any), as devices.list prints them.
type Key = (char, String, String);

/// Access bits: r, w, m.
const R: u8 = 1;
const W: u8 = 2;
const M: u8 = 4;

#[derive(Debug, PartialEq)]
struct State {
    allow_default: bool,
    exceptions: BTreeMap<Key, u8>,
}

/// Checks each rule's access letters (r, w, m, at least one), naming the
/// rule by its index in linux.resources.devices.
pub fn check(rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    for (i, r) in rules.iter().enumerate() {
        if let Some(access) = r.access() {
            if access.is_empty() || access.chars().any(|c| !"rwm".contains(c)) {
                return Err(CgroupError::Invalid {
                    field: format!("linux.resources.devices[{i}].access"),
                    reason: format!("{access:?}: only the letters r, w and m, at least one"),
                });
            }
        }
    }
    Ok(())
}

fn bits(access: &str) -> u8 {
    access.chars().fold(0, |b, c| match c {
        'r' => b | R,
        'w' => b | W,
        'm' => b | M,
        _ => b,
    })
}

fn letters(b: u8) -> String {
    [(R, 'r'), (W, 'w'), (M, 'm')]
        .iter()
        .filter(|(bit, _)| b & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn key(r: &LinuxDeviceCgroup) -> Key {
    let typ = match r.typ() {
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        _ => 'a',
    };
    let num = |v: Option<i64>| v.map_or_else(|| "*".to_string(), |n| n.to_string());
    (typ, num(r.major()), num(r.minor()))
}

/// The state `rules` leave the group in, played from `start`.
fn play(start: State, rules: &[LinuxDeviceCgroup]) -> State {
    let mut s = start;
    for r in rules {
        let (k, b) = (key(r), bits(r.access().as_deref().unwrap_or("rwm")));
        if k.0 == 'a' {
            // "a" is every device: a new default, exceptions cleared.
            s = State {
                allow_default: r.allow(),
                exceptions: BTreeMap::new(),
            };
        } else if r.allow() == s.allow_default {
            // Agrees with the default: takes those bits off the exception.
            if let Some(e) = s.exceptions.get_mut(&k) {
                *e &= !b;
                if *e == 0 {
                    s.exceptions.remove(&k);
                }
            }
        } else {
            *s.exceptions.entry(k).or_insert(0) |= b;
        }
    }
    s
}

/// What the group allows now, from devices.list: "a *:* rwm" alone is the
/// allow default, whose deny exceptions the kernel does not list (so they
/// are unknown: None); anything else is the deny default and what it allows.
fn current(dir: &Path) -> Option<State> {
    let text = crate::procfs::read(dir.join("devices.list")).ok()?;
    let mut exceptions = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(t), Some(nums), Some(access)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (major, minor) = nums.split_once(':')?;
        let typ = t.chars().next()?;
        if typ == 'a' {
            return None;
        }
        *exceptions
            .entry((typ, major.to_string(), minor.to_string()))
            .or_insert(0) |= bits(access);
    }
    Some(State {
        allow_default: false,
        exceptions,
    })
}

/// The writes (file, rule) that take the group from `from` (None: unknown)
/// to `to`.
fn transition(from: Option<&State>, to: &State) -> Vec<(&'static str, String)> {
    let file = |allow: bool| {
        if allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    };
    let line = |(t, major, minor): &Key, b: u8| format!("{t} {major}:{minor} {}", letters(b));
    let mut writes = Vec::new();
    let same_default = from.is_some_and(|f| f.allow_default == to.allow_default);
    let none = BTreeMap::new();
    let had = match (from, same_default) {
        (Some(f), true) => &f.exceptions,
        _ => {
            writes.push((file(to.allow_default), "a *:* rwm".to_string()));
            &none
        }
    };
    // Exceptions go to the file opposite the default: adding bits there,
    // taking bits off through the default's file.
    for (k, want) in &to.exceptions {
        let have = had.get(k).copied().unwrap_or(0);
        if want & !have != 0 {
            writes.push((file(!to.allow_default), line(k, want & !have)));
        }
    }
    for (k, have) in had {
        let want = to.exceptions.get(k).copied().unwrap_or(0);
        if have & !want != 0 {
            writes.push((file(to.allow_default), line(k, have & !want)));
        }
    }
    writes
}

/// Writes `rules` into the devices group `dir`. `live`: the group holds a
/// running container, and only what changes is written.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup], live: bool) -> Result<(), CgroupError> {
    let from = if live { current(dir) } else { None };
    // Played from "deny every device", as runc's emulator is: rules that only
    // allow leave everything else denied (a rule "a" changes the default).
    let start = State {
        allow_default: false,
        exceptions: BTreeMap::new(),
    };
    let to = play(start, rules);
    let mut open: Option<(&str, std::fs::File)> = None;
    for (name, value) in transition(from.as_ref(), &to) {
        let path = dir.join(name);
        let failed = |source| CgroupError::Write {
            resource: "devices",
            path: path.clone(),
            value: value.clone(),
            source,
        };
        if open.as_ref().is_none_or(|(n, _)| *n != name) {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(failed)?;
            open = Some((name, file));
        }
        if let Some((_, file)) = open.as_mut() {
            file.write_all(value.as_bytes()).map_err(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(typ);
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.into()));
        r
    }

    #[test]
    fn rules_become_one_write_per_device() {
        let c = Some(LinuxDeviceType::C);
        let rules = [
            rule(false, None, None, None, "rwm"),
            rule(true, c, Some(1), Some(3), "rw"),
            rule(true, c, Some(1), Some(3), "m"),
            rule(true, c, Some(1), Some(5), "rwm"),
            rule(false, c, Some(1), Some(5), "w"),
        ];
        let to = play(
            State {
                allow_default: true,
                exceptions: BTreeMap::new(),
            },
            &rules,
        );
        let writes = transition(None, &to);
        assert_eq!(
            writes,
            vec![
                ("devices.deny", "a *:* rwm".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string()),
                ("devices.allow", "c 1:5 rm".to_string()),
            ]
        );
        // Live, from what the group has: only the difference, no deny-all.
        let mut now = to.exceptions.clone();
        now.remove(&('c', "1".into(), "5".into()));
        now.insert(('c', "10".into(), "200".into()), R | W | M);
        let from = State {
            allow_default: false,
            exceptions: now,
        };
        assert_eq!(
            transition(Some(&from), &to),
            vec![
                ("devices.allow", "c 1:5 rm".to_string()),
                ("devices.deny", "c 10:200 rwm".to_string()),
            ]
        );
    }

    /// Rules that only allow, from the deny default: what they allow, and
    /// nothing more (starting from "allow" they would have been no-ops, and a
    /// live group would have been opened to every device).
    #[test]
    fn allow_rules_alone_leave_the_rest_denied() {
        let c = Some(LinuxDeviceType::C);
        let rules = [rule(true, c, Some(1), Some(3), "rwm")];
        let deny = || State {
            allow_default: false,
            exceptions: BTreeMap::new(),
        };
        let to = play(deny(), &rules);
        assert!(!to.allow_default);
        assert_eq!(
            transition(Some(&deny()), &to),
            vec![("devices.allow", "c 1:3 rwm".to_string())]
        );
    }

    #[test]
    fn access_letters_are_checked() {
        let c = Some(LinuxDeviceType::C);
        assert!(check(&[rule(true, c, Some(1), Some(3), "rwm")]).is_ok());
        for bad in ["rwx", "", "R"] {
            let err = check(&[
                rule(true, c, Some(1), Some(3), "r"),
                rule(true, c, Some(1), Some(3), bad),
            ])
            .unwrap_err();
            assert!(
                err.to_string()
                    .contains("linux.resources.devices[1].access"),
                "{err}"
            );
        }
    }
}
