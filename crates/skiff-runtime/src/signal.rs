//! Signal names as `kill` takes them: "KILL", "SIGKILL", "sigkill", "9", and
//! the real-time ones runc accepts ("RTMIN+3", "SIGRTMAX-1", "37"): Docker
//! stops systemd images with SIGRTMIN+3.

use nix::sys::signal::Signal;

#[derive(Debug, thiserror::Error)]
#[error("signal {0:?}: not a signal name or number")]
pub struct BadSignal(pub String);

/// A signal number: a standard signal or a real-time one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalNumber(i32);

impl SignalNumber {
    /// `n` if it names a signal (1..=SIGRTMAX).
    pub fn new(n: i32) -> Option<Self> {
        (1..=SIGRTMAX).contains(&n).then_some(SignalNumber(n))
    }

    pub fn as_raw(self) -> i32 {
        self.0
    }
}

impl From<Signal> for SignalNumber {
    fn from(s: Signal) -> Self {
        SignalNumber(s as i32)
    }
}

/// `kill`'s signal argument, read as runc reads it: empty is SIGTERM, and 0
/// (no signal, only the check that the process exists) is allowed.
pub fn parse_for_kill(s: &str) -> Result<SignalNumber, BadSignal> {
    match s {
        "" => Ok(SignalNumber(libc::SIGTERM)),
        "0" => Ok(SignalNumber(0)),
        other => parse(other),
    }
}

/// SIGRTMIN as runc, Docker and systemd number it: glibc's, the kernel's 32
/// past the two glibc keeps for itself ("SIGRTMIN+3" is 37, systemd's halt
/// signal). Not libc::SIGRTMIN(), which is 35 in a musl build.
const SIGRTMIN: i32 = 34;
/// The kernel's last signal.
const SIGRTMAX: i32 = 64;

pub fn parse(s: &str) -> Result<SignalNumber, BadSignal> {
    let bad = || BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return SignalNumber::new(n).ok_or_else(bad);
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    // RTMIN, RTMIN+n, RTMAX, RTMAX-n: the sign is part of the name.
    let rt = |base: i32, rest: &str, sign: char| -> Option<SignalNumber> {
        let off: i32 = match rest {
            "" => 0,
            r => {
                let digits = r.strip_prefix(sign)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()?
            }
        };
        let n = if sign == '+' {
            base.checked_add(off)?
        } else {
            base.checked_sub(off)?
        };
        (SIGRTMIN..=SIGRTMAX)
            .contains(&n)
            .then_some(SignalNumber(n))
    };
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        return rt(SIGRTMIN, rest, '+').ok_or_else(bad);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        return rt(SIGRTMAX, rest, '-').ok_or_else(bad);
    }
    format!("SIG{bare}")
        .parse::<Signal>()
        .map(SignalNumber::from)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_takes_empty_as_term_and_zero_as_a_check() {
        assert_eq!(parse_for_kill("").unwrap().as_raw(), libc::SIGTERM);
        assert_eq!(parse_for_kill("0").unwrap().as_raw(), 0);
        assert_eq!(parse_for_kill("KILL").unwrap().as_raw(), libc::SIGKILL);
        assert!(parse("0").is_err() && parse_for_kill("99").is_err());
    }

    #[test]
    fn names_and_numbers() {
        let n = |s| parse(s).unwrap().as_raw();
        assert_eq!(n("KILL"), libc::SIGKILL);
        assert_eq!(n("SIGTERM"), libc::SIGTERM);
        assert_eq!(n("hup"), libc::SIGHUP);
        assert_eq!(n("9"), libc::SIGKILL);
        assert_eq!(n("SIGRTMIN+3"), 37);
        assert_eq!(n("RTMIN"), 34);
        assert_eq!(n("rtmax-1"), 63);
        assert_eq!(n("37"), 37);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
        assert!(parse("0").is_err());
        assert!(parse("RTMIN+99").is_err());
        assert!(parse("RTMIN+x").is_err());
        assert!(parse("RTMAX+1").is_err());
        assert!(parse("RTMIN-1").is_err());
        assert!(parse("RTMIN+99999999999").is_err());
        assert!(parse("RTMIN++1").is_err());
    }
}
