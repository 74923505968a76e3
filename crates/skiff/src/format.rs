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

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            Value::Object(m) => m.get(part).or_else(|| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(part))
                    .map(|(_, v)| v)
            })?,
            _ => return None,
        };
    }
    Some(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Renders a Go-style template over a JSON value: `{{.A.B}}`,
/// `{{json .A}}`, `{{ .A }}`; `\t` and `\n` as escapes. Anything else
/// between braces is an error naming it.
pub fn template(tpl: &str, v: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template {tpl:?}: unclosed {{{{"))?;
        let expr = after[..end].trim();
        let (json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path
            .strip_prefix('.')
            .ok_or_else(|| format!("template {tpl:?}: {{{{{expr}}}}} is not a field (.Name) this template language knows"))?;
        let val = if path.is_empty() {
            Some(v)
        } else {
            lookup(v, path)
        };
        let val = val.ok_or_else(|| format!("template {tpl:?}: no field {path:?}"))?;
        if json {
            out.push_str(&serde_json::to_string(val).unwrap_or_default());
        } else {
            out.push_str(&plain(val));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\t", "\t").replace("\\n", "\n"))
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
        assert!(template("{{.Nope}}", &v).is_err());
        assert!(template("{{range .X}}", &v).is_err());
    }

    #[test]
    fn sizes_read_as_podman_writes_them() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_234_567), "1.23 MB");
        assert_eq!(size(123_456_789), "123 MB");
    }
}
