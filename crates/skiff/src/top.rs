//! `top`: a container's processes as Podman shows them (its psgo
//! descriptors: the pids, users and groups the container sees, Go's
//! durations), read from the host's /proc; descriptors psgo does not know
//! are ps(1)'s, run inside the container as Podman runs them.

use std::collections::HashMap;
use std::path::Path;

use skiff_image::{Error, Result};

/// Podman's columns when none are named.
pub const DEFAULT: &[&str] = &[
    "user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args",
];

/// A descriptor's column header, or None for one psgo does not know.
pub fn header(descriptor: &str) -> Option<&'static str> {
    Some(match descriptor {
        "args" => "COMMAND",
        "comm" => "COMMAND",
        "capamb" => "AMBIENT CAPS",
        "capbnd" => "BOUNDING CAPS",
        "capeff" => "EFFECTIVE CAPS",
        "capinh" => "INHERITED CAPS",
        "capprm" => "PERMITTED CAPS",
        "etime" => "ELAPSED",
        "group" => "GROUP",
        "hgroup" => "HGROUP",
        "hpid" => "HPID",
        "huser" => "HUSER",
        "label" => "LABEL",
        "nice" => "NI",
        "pcpu" => "%CPU",
        "pgid" => "PGID",
        "pid" => "PID",
        "ppid" => "PPID",
        "rgroup" => "RGROUP",
        "rss" => "RSS",
        "ruser" => "RUSER",
        "seccomp" => "SECCOMP",
        "state" => "STATE",
        "time" => "TIME",
        "tty" => "TTY",
        "user" => "USER",
        "vsz" => "VSZ",
        _ => return None,
    })
}

/// The descriptors named on the command line (each word may hold several,
/// comma-separated, as psgo reads them); None when any is not psgo's, so
/// that the words go to ps(1) in the container instead. No words: the
/// defaults.
pub fn descriptors(words: &[String]) -> Option<Vec<String>> {
    if words.is_empty() {
        return Some(DEFAULT.iter().map(|d| d.to_string()).collect());
    }
    let named: Vec<String> = words
        .iter()
        .flat_map(|w| w.split(','))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    (!named.is_empty() && named.iter().all(|d| header(d).is_some())).then_some(named)
}

/// What one process shows, read from /proc (or, for a VM's, the agent).
#[derive(Debug, Default, Clone)]
pub struct Proc {
    pub host_pid: i64,
    /// In the container's pid namespace; 0 when outside it.
    pub pid: i64,
    pub ppid: i64,
    pub pgid: i64,
    /// Real and effective ids, as the container numbers them.
    pub uids: (u32, u32),
    pub gids: (u32, u32),
    /// Effective ids as the host numbers them.
    pub host_ids: (u32, u32),
    pub state: String,
    pub comm: String,
    pub args: String,
    pub nice: i64,
    pub tty: String,
    /// Since it started and on the CPU, in ns.
    pub elapsed_ns: u64,
    pub cpu_ns: u64,
    pub vsz_kib: u64,
    pub rss_kib: u64,
    pub caps: [u64; 5],
    pub seccomp: String,
    pub label: String,
}

/// The processes with these host pids, the pids as the container's pid
/// namespace numbers them (the last of each NSpid), sorted by it.
pub fn read_procs(host_pids: &[i64]) -> Vec<Proc> {
    let mut procs: Vec<Proc> = host_pids.iter().filter_map(|&p| read_proc(p)).collect();
    // A parent outside the container (its runtime, the monitor) is 0, as
    // the container's own /proc shows it.
    let inside: HashMap<i64, i64> = procs.iter().map(|p| (p.host_pid, p.pid)).collect();
    for p in &mut procs {
        p.ppid = inside.get(&p.ppid).copied().unwrap_or(0);
        p.pgid = inside.get(&p.pgid).copied().unwrap_or(0);
    }
    procs.sort_by_key(|p| p.pid);
    procs
}

/// One process's fields; ppid and pgid still the host's.
fn read_proc(host_pid: i64) -> Option<Proc> {
    let dir = format!("/proc/{host_pid}");
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    // Fields from the state on (stat's third field is rest[0]).
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| {
        rest.get(n - 3)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let line = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let ids = |key: &str| {
        let v: Vec<u32> = line(key).iter().filter_map(|x| x.parse().ok()).collect();
        (
            v.first().copied().unwrap_or(0),
            v.get(1).copied().unwrap_or(0),
        )
    };
    let caps = ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"].map(|k| {
        line(k)
            .first()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    });
    let cmdline = std::fs::read(format!("{dir}/cmdline")).unwrap_or_default();
    // psgo splits at each NUL and joins with spaces: the last argument's
    // NUL leaves a space at the end.
    let args = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .collect::<Vec<_>>()
        .join(" ");
    let tick = clock_ticks();
    let started_ns = field(22) as u64 * 1_000_000_000 / tick;
    // status gives the ids as the host numbers them; the container's are
    // through its user namespace's maps.
    let (host_uids, host_gids) = (ids("Uid:"), ids("Gid:"));
    let inside = |map: &str, (real, effective): (u32, u32)| {
        (
            inside_id(host_pid, map, real),
            inside_id(host_pid, map, effective),
        )
    };
    let (uids, gids) = (inside("uid_map", host_uids), inside("gid_map", host_gids));
    Some(Proc {
        host_pid,
        pid: line("NSpid:")
            .last()
            .and_then(|p| p.parse().ok())
            .unwrap_or(host_pid),
        ppid: field(4),
        pgid: field(5),
        uids,
        gids,
        host_ids: (host_uids.1, host_gids.1),
        state: rest.first().unwrap_or(&"?").to_string(),
        args: if args.is_empty() {
            format!("[{comm}]")
        } else {
            args
        },
        comm,
        nice: field(19),
        tty: tty_name(field(7)),
        elapsed_ns: uptime_ns().saturating_sub(started_ns),
        cpu_ns: (field(14) + field(15)) as u64 * 1_000_000_000 / tick,
        vsz_kib: field(23) as u64 / 1024,
        rss_kib: field(24) as u64 * page_kib(),
        caps,
        seccomp: match line("Seccomp:").first().map(String::as_str) {
            Some("1") => "strict",
            Some("2") => "filter",
            _ => "disabled",
        }
        .to_string(),
        label: std::fs::read_to_string(format!("{dir}/attr/current"))
            .map(|l| l.trim_end_matches(['\0', '\n']).to_string())
            .unwrap_or_default(),
    })
}

/// The id the process's user namespace gives host id `id` (the same
/// without a user namespace of its own; 65534, the overflow id, when it
/// is not mapped).
fn inside_id(pid: i64, map: &str, id: u32) -> u32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{map}")).unwrap_or_default();
    for l in text.lines() {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, len] = v[..] {
            if (outside..outside + len).contains(&(id as u64)) {
                return (inside + id as u64 - outside) as u32;
            }
        }
    }
    65534
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn page_kib() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64 / 1024
    } else {
        4
    }
}

/// Since boot, in ns (stat's start times count from there).
fn uptime_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// stat's tty_nr as ps names it: pts/N, ttyN, or ? for none.
fn tty_name(nr: i64) -> String {
    let (major, minor) = ((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

/// The name `id` has in a passwd or group file's text, else the number.
pub fn name_in(file: &str, id: u32) -> String {
    file.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let n = f.nth(1)?.parse::<u32>().ok()?;
            (n == id && !name.is_empty()).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| id.to_string())
}

/// The container's and the host's passwd and group files, for the names.
pub struct Names {
    pub passwd: String,
    pub group: String,
    host_passwd: String,
    host_group: String,
}

impl Names {
    pub fn of_rootfs(rootfs: &Path) -> Names {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        Names {
            passwd: read(&rootfs.join("etc/passwd")),
            group: read(&rootfs.join("etc/group")),
            host_passwd: read(Path::new("/etc/passwd")),
            host_group: read(Path::new("/etc/group")),
        }
    }
}

/// A capability set as psgo shows it: none, full (every one this host's
/// kernel has), or the names in alphabetical order.
fn caps_text(set: u64) -> String {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    let full = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    match set {
        0 => "none".into(),
        s if s & full == full => "full".into(),
        s => {
            let mut names: Vec<String> = (0..64)
                .filter(|b| s & (1 << b) != 0)
                .map(|b| {
                    crate::spec::CAPABILITY_NAMES
                        .get(b)
                        .map(|n| n.to_string())
                        .unwrap_or(b.to_string())
                })
                .collect();
            names.sort();
            names.join(",")
        }
    }
}

/// One cell: `descriptor` of `p`.
pub fn cell(descriptor: &str, p: &Proc, names: &Names) -> String {
    match descriptor {
        "args" => p.args.clone(),
        "comm" => p.comm.clone(),
        "capinh" => caps_text(p.caps[0]),
        "capprm" => caps_text(p.caps[1]),
        "capeff" => caps_text(p.caps[2]),
        "capbnd" => caps_text(p.caps[3]),
        "capamb" => caps_text(p.caps[4]),
        "etime" => crate::format::go_duration_text(p.elapsed_ns),
        "group" => name_in(&names.group, p.gids.1),
        "hgroup" => name_in(&names.host_group, p.host_ids.1),
        "hpid" => p.host_pid.to_string(),
        "huser" => name_in(&names.host_passwd, p.host_ids.0),
        "label" => p.label.clone(),
        "nice" => p.nice.to_string(),
        "pcpu" => {
            let share = if p.elapsed_ns == 0 {
                0.0
            } else {
                p.cpu_ns as f64 / p.elapsed_ns as f64 * 100.0
            };
            format!("{share:.3}")
        }
        "pgid" => p.pgid.to_string(),
        "pid" => p.pid.to_string(),
        "ppid" => p.ppid.to_string(),
        "rgroup" => name_in(&names.group, p.gids.0),
        "rss" => p.rss_kib.to_string(),
        "ruser" => name_in(&names.passwd, p.uids.0),
        "seccomp" => p.seccomp.clone(),
        "state" => p.state.clone(),
        // Whole seconds, as psgo counts CPU time.
        "time" => crate::format::go_duration_text(p.cpu_ns / 1_000_000_000 * 1_000_000_000),
        "tty" => p.tty.clone(),
        "user" => name_in(&names.passwd, p.uids.1),
        "vsz" => p.vsz_kib.to_string(),
        _ => String::new(),
    }
}

/// The table: Podman's writer (Go's tabwriter: cells at least 12 wide,
/// two spaces of padding; the last column not padded).
pub fn render(descriptors: &[String], procs: &[Proc], names: &Names) -> String {
    let mut rows: Vec<Vec<String>> = vec![descriptors
        .iter()
        .map(|d| header(d).unwrap_or_default().to_string())
        .collect()];
    for p in procs {
        rows.push(descriptors.iter().map(|d| cell(d, p, names)).collect());
    }
    crate::format::tabwriter(&rows)
}

/// Refuses descriptors a VM container cannot show (the agent reports the
/// default columns only).
pub fn check_vm(descriptors: &[String]) -> Result<()> {
    match descriptors.iter().find(|d| !DEFAULT.contains(&d.as_str())) {
        Some(d) => Err(Error::invalid(format!(
            "top: descriptor {d:?} is not available for a container with --isolation vm (it has: {})",
            DEFAULT.join(", ")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_psgos_or_go_to_ps() {
        assert_eq!(descriptors(&[]).unwrap().len(), 8);
        let named = descriptors(&["pid,user".into(), "args".into()]).unwrap();
        assert_eq!(named, ["pid", "user", "args"]);
        assert!(descriptors(&["-ef".into()]).is_none());
        assert!(descriptors(&["pid".into(), "bogus".into()]).is_none());
    }

    #[test]
    fn cells_read_as_psgo_writes_them() {
        let names = Names {
            passwd: "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n".into(),
            group: "root:x:0:\n".into(),
            host_passwd: String::new(),
            host_group: String::new(),
        };
        let p = Proc {
            pid: 1,
            uids: (0, 65534),
            elapsed_ns: 7_458_370_386,
            cpu_ns: 2_500_000_000,
            tty: "?".into(),
            caps: [0, u64::MAX, 0b101, 0, 0],
            ..Default::default()
        };
        assert_eq!(cell("user", &p, &names), "nobody");
        assert_eq!(cell("ruser", &p, &names), "root");
        assert_eq!(cell("group", &p, &names), "root");
        assert_eq!(cell("etime", &p, &names), "7.458370386s");
        assert_eq!(cell("time", &p, &names), "2s");
        assert_eq!(cell("pcpu", &p, &names), "33.519");
        assert_eq!(cell("capinh", &p, &names), "none");
        assert_eq!(cell("capprm", &p, &names), "full");
        assert_eq!(cell("capeff", &p, &names), "CHOWN,DAC_READ_SEARCH");
        let p = Proc {
            caps: [0, 0, 1 << 21 | 1 << 5 | 1, 0, 0],
            ..p
        };
        assert_eq!(cell("capeff", &p, &names), "CHOWN,KILL,SYS_ADMIN");
    }

    #[test]
    fn the_table_is_gos_tabwriter() {
        let rows = vec![
            vec!["USER".to_string(), "PID".into(), "COMMAND".into()],
            vec!["root".to_string(), "1".into(), "sleep 1000".into()],
            vec!["a-longer-name".to_string(), "22".into(), "sh".into()],
        ];
        assert_eq!(
            crate::format::tabwriter(&rows),
            "USER           PID         COMMAND\n\
             root           1           sleep 1000\n\
             a-longer-name  22          sh\n"
        );
    }

    #[test]
    fn terminals_by_number() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(136 << 8), "pts/0");
        assert_eq!(tty_name((136 << 8) | 3), "pts/3");
    }
}
