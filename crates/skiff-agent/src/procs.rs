//! ListProcesses: what `ps` would say of a container's processes, read
//! from the guest's /proc (the guest has no ps), for the engine's `top`
//! and the shim's Pids.

use skiff_agent_api::agent::GuestProcess;

/// The process `pid` as /proc shows it now; None once it is gone.
pub fn read(pid: i32, uptime_seconds: f64, ticks_per_second: u64) -> Option<GuestProcess> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may hold spaces or ')': the fields
    // after it start past the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    // Fields from the state (3rd) on; ppid is the 4th, utime the 14th,
    // stime the 15th, starttime the 22nd.
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = ticks_per_second.max(1);
    let started = field(22)? as f64 / ticks as f64;
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    Some(GuestProcess {
        pid,
        ppid: field(4)? as i32,
        uid,
        elapsed_seconds: (uptime_seconds - started).max(0.0) as u64,
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        args: if args.is_empty() {
            format!("[{comm}]")
        } else {
            args
        },
        ..Default::default()
    })
}

/// Seconds since the guest booted (/proc/uptime's first field).
pub fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The kernel's clock ticks per second (USER_HZ).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_reads_as_ps_would_show_it() {
        let me = std::process::id() as i32;
        let p = read(me, uptime(), ticks_per_second()).expect("our own /proc entry");
        assert_eq!(p.pid, me);
        // SAFETY: getppid and getuid have no preconditions.
        assert_eq!(p.ppid, unsafe { libc::getppid() });
        assert_eq!(p.uid, unsafe { libc::getuid() });
        assert!(
            p.args.contains("skiff_agent") || p.args.contains("skiff-agent"),
            "{}",
            p.args
        );
        assert!(p.elapsed_seconds < 3600, "{}", p.elapsed_seconds);
        assert!(read(i32::MAX, uptime(), 100).is_none());
    }
}
