//! Output: sizes, ages, tables and Go-style templates (`{{.Id}}`,
//! `{{json .Config}}`), as Docker's and Podman's users read them.

use serde_json::Value;

/// 1.23 MB, as Podman writes sizes (SI units, 3 significant digits).
pub fn size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", units[i])
    } else if v >= 10.0 {
        format!("{v:.1} {}", units[i])
    } else {
        format!("{v:.2} {}", units[i])
    }
}

/// Seconds since the epoch of an RFC 3339 time (2024-01-02T03:04:05.123Z,
/// or with an offset); None if it does not parse.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let oh: i64 = r[1..3].parse().ok()?;
            let om: i64 = r[4..6].parse().ok()?;
            let o = oh * 3600 + om * 60;
            if r.starts_with('+') {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Seconds since the epoch of an RFC 3339 time, with its fraction.
pub fn parse_time_fine(s: &str) -> Option<f64> {
    let secs = parse_time(s)?;
    let frac = s
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            format!("0.{digits}").parse::<f64>().unwrap_or(0.0)
        })
        .unwrap_or(0.0);
    Some(secs as f64 + frac)
}

pub fn now_fine() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A moment as `logs --since` takes it (Podman's forms): RFC 3339
/// (2024-01-02T03:04:05Z, or a date alone), seconds since the epoch
/// (1700000000, 1700000000.5), or a Go duration before now (90s, 10m,
/// 1h30m, 250ms). Seconds since the epoch.
pub fn parse_moment(s: &str) -> Result<f64, String> {
    if let Some(t) = parse_time_fine(s) {
        return Ok(t);
    }
    if s.len() == 10 {
        if let Some(t) = parse_time(&format!("{s}T00:00:00Z")) {
            return Ok(t as f64);
        }
    }
    if let Ok(t) = s.parse::<f64>() {
        return Ok(t);
    }
    go_duration(s)
        .map(|d| now_fine() - d)
        .ok_or_else(|| format!("{s:?}: not a time (RFC 3339, Unix seconds) or a duration (10m)"))
}

/// Seconds of a Go duration ("1h30m", "1.5s", "300ms").
pub(crate) fn go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(total)
}

/// (year, month, day) of days since the epoch (proleptic Gregorian).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 in UTC of seconds since the epoch, with nanoseconds when given
/// (2024-01-02T03:04:05Z, 2024-01-02T03:04:05.000000123Z).
pub fn rfc3339(secs: i64, nanos: Option<u32>) -> String {
    let (y, m, d) = civil(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    let frac = nanos.map(|n| format!(".{n:09}")).unwrap_or_default();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Now in RFC 3339 with nanoseconds.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, Some(d.subsec_nanos()))
}

/// A duration in ns as Go prints a time.Duration (30s, 1m30s, 1.5s,
/// 500ms, 1h0m0s).
pub fn go_duration_text(ns: u64) -> String {
    const S: u64 = 1_000_000_000;
    if ns < S {
        return match ns {
            0 => "0s".into(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n => format!("{}ms", n as f64 / 1e6),
        };
    }
    let secs = ns / S;
    let frac = ns % S;
    let mut out = String::new();
    if secs >= 3600 {
        out.push_str(&format!("{}h", secs / 3600));
    }
    if secs >= 60 {
        out.push_str(&format!("{}m", secs / 60 % 60));
    }
    out.push_str(&(secs % 60).to_string());
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// A time as Go prints a time.Time in UTC (2024-01-02 03:04:05 +0000
/// UTC), which Podman's templates show for CreatedAt.
pub fn go_time(secs: i64) -> String {
    let t = rfc3339(secs, None);
    format!("{} {} +0000 UTC", &t[..10], &t[11..19])
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "3 hours ago", as Podman writes ages.
pub fn ago(t: Option<i64>) -> String {
    let Some(t) = t else { return "unknown".into() };
    let s = (now() - t).max(0);
    let (n, unit) = match s {
        0 => return "Less than a second ago".into(),
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 7 => (s / 86400, "day"),
        s if s < 86400 * 30 => (s / (86400 * 7), "week"),
        s if s < 86400 * 365 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    if n == 1 {
        format!("{} {unit} ago", if unit == "hour" { "An" } else { "1" })
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Prints rows as a table: columns padded to their widest cell, three
/// spaces apart, the last one not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A table's text, without its header line when `header` is false
/// (--noheading).
pub fn headed(text: String, header: bool) -> String {
    match (header, text.split_once('\n')) {
        (true, _) => text,
        (false, Some((_, rows))) => rows.to_string(),
        (false, None) => String::new(),
    }
}

/// The header line of a `table TEMPLATE`: each `{{.Field}}` as Podman
/// heads its column (CreatedAt: CREATED AT; ID: `id_header`), the text
/// between kept.
pub fn template_header(tpl: &str, id_header: &str) -> String {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let expr = after[..end].trim();
        let field = expr.rsplit(['.', ' ']).next().unwrap_or(expr);
        if field == "ID" {
            out.push_str(id_header);
        } else {
            // A word starts where a capital follows a small letter
            // (CreatedAt: CREATED AT; PIDs: PIDS).
            let mut prev_lower = false;
            for ch in field.chars() {
                if prev_lower && ch.is_ascii_uppercase() {
                    out.push(' ');
                }
                prev_lower = ch.is_ascii_lowercase();
                out.push(ch.to_ascii_uppercase());
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out.replace("\\t", "\t").replace("\\n", "\n")
}

/// A `table TEMPLATE`'s output: the header, then the rendered lines,
/// their tab-separated cells lined up as the default tables are.
pub fn template_table(tpl: &str, id_header: &str, lines: &[String]) -> String {
    let header = template_header(tpl, id_header);
    let head: Vec<&str> = header.split('\t').collect();
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    if rows.iter().all(|r| r.len() == head.len()) {
        table(&head, &rows)
    } else {
        let mut out = header + "\n";
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// Renders a Go template over a JSON value (crate::template: fields,
/// if/range/with, pipelines, Podman's functions); `\t` and `\n` as
/// escapes, as Podman takes them in --format.
pub fn template(tpl: &str, v: &Value) -> Result<String, String> {
    let tpl_escaped = tpl.replace("\\t", "\t").replace("\\n", "\n");
    crate::template::render(&tpl_escaped, v).map_err(|e| format!("template {tpl:?}: {e}"))
}

/// 64 random hex digits (a container's, pod's or secret's id), from
/// /dev/urandom (the clock and pid should it be unreadable).
pub fn random_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = now() as u64 ^ std::process::id() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Go's text/tabwriter as Podman's report writer sets it up: minwidth 12,
/// padding 2, spaces.
pub fn tabwriter(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i).filter(|_| i + 1 < r.len()))
                .map(|c| c.chars().count() + 2)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1709204400, Some(5)),
            "2024-02-29T11:00:00.000000005Z"
        );
        assert_eq!(parse_time(&rfc3339(1709204400, None)), Some(1709204400));
    }

    #[test]
    fn go_times_read_as_go_prints_them() {
        assert_eq!(go_time(1709204400), "2024-02-29 11:00:00 +0000 UTC");
    }

    #[test]
    fn table_headers_name_the_fields_as_podman_does() {
        assert_eq!(
            template_header(
                "{{.ID}}\t{{.Names}}\t{{.CreatedAt}}\t{{.PIDs}}",
                "CONTAINER ID"
            ),
            "CONTAINER ID\tNAMES\tCREATED AT\tPIDS"
        );
    }

    #[test]
    fn moments_parse_as_podman_takes_them() {
        assert_eq!(parse_moment("2024-01-02T03:04:05.5Z"), Ok(1_704_164_645.5));
        assert_eq!(parse_moment("2024-01-02"), Ok(1_704_153_600.0));
        assert_eq!(parse_moment("1700000000"), Ok(1_700_000_000.0));
        let ago = now_fine() - parse_moment("1h30m").unwrap();
        assert!((ago - 5400.0).abs() < 5.0, "{ago}");
        assert!(parse_moment("soon").is_err() && parse_moment("5x").is_err());
    }

    #[test]
    fn times_parse_as_rfc3339() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2024-02-29T12:00:00.5+01:00"), Some(1709204400));
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn templates_render_fields_and_json() {
        let v = serde_json::json!({"Id": "sha256:ab", "Config": {"Env": ["A=1"]}});
        assert_eq!(template("{{.Id}}", &v).unwrap(), "sha256:ab");
        assert_eq!(template("{{ json .Config.Env }}", &v).unwrap(), "[\"A=1\"]");
        assert_eq!(template("{{.id}}\\t", &v).unwrap(), "sha256:ab\t");
        assert_eq!(template("{{.Nope}}", &v).unwrap(), "<no value>");
        assert!(template("{{range .Id}}", &v).is_err());
    }

    #[test]
    fn sizes_read_as_podman_writes_them() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_234_567), "1.23 MB");
        assert_eq!(size(123_456_789), "123 MB");
    }
}
