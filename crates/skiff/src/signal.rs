//! Signal names as `kill` takes them: "KILL", "SIGKILL", "sigkill" or "9".

use nix::sys::signal::Signal;

#[derive(Debug, thiserror::Error)]
#[error("signal {0:?}: not a signal name or number")]
pub struct BadSignal(pub String);

pub fn parse(s: &str) -> Result<Signal, BadSignal> {
    let bad = || BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
    }
}
