//! The part of Go's text/template that `--format` users write: fields
//! (`{{.State.Status}}`, `{{.}}`, `{{$}}`), `if`/`else if`/`else`,
//! `range` (with `$i, $v :=`), `with`, pipelines (`{{.X | json}}`),
//! `{{-`/`-}}` trimming, comments, and the functions Podman's and
//! Docker's templates offer most: json, index, join, split, lower, upper,
//! title, truncate, pad, len, printf, println, eq, ne, lt, le, gt, ge,
//! not, and, or.
//! A field that does not exist is an error naming it, as Go's is for a
//! struct; a map key that does not exist, through `index`, is empty.

use serde_json::Value;

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` from dot ("" for dot itself).
    Field(String),
    /// `$name.A.B` ("" name: the root).
    Var(String, String),
    Str(String),
    Num(f64),
    Bool(bool),
    Func(String),
    /// A parenthesised pipeline, and a field path of its value
    /// (`(index .Mounts 0).Destination`).
    Sub(Vec<Vec<Arg>>, String),
}

type Pipe = Vec<Vec<Arg>>;

#[derive(Debug)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Vec<String>, Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// One `{{...}}` or the text between.
enum Piece {
    Text(String),
    Action(String),
}

fn pieces(tpl: &str) -> Result<Vec<Piece>, String> {
    let mut out = vec![];
    let mut rest = tpl;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("unclosed {{")?;
        let mut inner = &after[..end];
        if let Some(i) = inner.strip_prefix("- ").or(inner.strip_prefix("-\t")) {
            text = text.trim_end();
            inner = i;
        } else if inner == "-" {
            text = text.trim_end();
            inner = "";
        }
        trim_next = false;
        if let Some(i) = inner.strip_suffix(" -").or(inner.strip_suffix("\t-")) {
            trim_next = true;
            inner = i;
        }
        out.push(Piece::Text(text.to_string()));
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            out.push(Piece::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(if trim_next {
        rest.trim_start().to_string()
    } else {
        rest.to_string()
    }));
    Ok(out)
}

/// The words of an action: strings whole, `|`, `(` and `)` apart.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = vec![];
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut w = String::from("\"");
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => w.push('\n'),
                        Some('t') => w.push('\t'),
                        Some(o) => w.push(o),
                        None => return Err(format!("{s:?}: unterminated string")),
                    },
                    Some('"') => break,
                    Some(o) => w.push(o),
                    None => return Err(format!("{s:?}: unterminated string")),
                }
            }
            out.push(w);
        } else if c == '`' {
            chars.next();
            let mut w = String::from("\"");
            loop {
                match chars.next() {
                    Some('`') => break,
                    Some(o) => w.push(o),
                    None => return Err(format!("{s:?}: unterminated string")),
                }
            }
            out.push(w);
        } else if c == '|' || c == '(' || c == ')' {
            chars.next();
            out.push(c.to_string());
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '|' || c == '(' || c == ')' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn parse_pipe(ws: &[String]) -> Result<Pipe, String> {
    let mut pipe: Pipe = vec![];
    let mut cmd = vec![];
    let mut i = 0;
    while i < ws.len() {
        let w = &ws[i];
        match w.as_str() {
            "|" => {
                if cmd.is_empty() {
                    return Err("empty command in a pipeline".into());
                }
                pipe.push(std::mem::take(&mut cmd));
            }
            "(" => {
                let mut depth = 1;
                let mut j = i + 1;
                while j < ws.len() && depth > 0 {
                    match ws[j].as_str() {
                        "(" => depth += 1,
                        ")" => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err("unclosed (".into());
                }
                let sub = parse_pipe(&ws[i + 1..j - 1])?;
                let path = match ws.get(j).and_then(|w| w.strip_prefix('.')) {
                    Some(p) => {
                        j += 1;
                        p.to_string()
                    }
                    None => String::new(),
                };
                cmd.push(Arg::Sub(sub, path));
                i = j;
                continue;
            }
            ")" => return Err("unexpected )".into()),
            _ => cmd.push(arg(w)?),
        }
        i += 1;
    }
    if cmd.is_empty() {
        return Err("missing value".into());
    }
    pipe.push(cmd);
    Ok(pipe)
}

fn arg(w: &str) -> Result<Arg, String> {
    Ok(if let Some(s) = w.strip_prefix('"') {
        Arg::Str(s.to_string())
    } else if let Some(p) = w.strip_prefix('.') {
        Arg::Field(p.to_string())
    } else if let Some(v) = w.strip_prefix('$') {
        let (name, path) = v.split_once('.').unwrap_or((v, ""));
        Arg::Var(name.to_string(), path.to_string())
    } else if w == "true" || w == "false" {
        Arg::Bool(w == "true")
    } else if let Ok(n) = w.parse::<f64>() {
        Arg::Num(n)
    } else if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !w.is_empty() {
        Arg::Func(w.to_string())
    } else {
        return Err(format!(
            "{w:?} is not a field (.Name), a string or a function"
        ));
    })
}

/// Nodes up to an `end` or `else` (which is returned) or the end.
fn parse_nodes(
    it: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = vec![];
    while let Some(p) = it.next() {
        let a = match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
                continue;
            }
            Piece::Action(a) => a,
        };
        let ws = words(&a)?;
        let Some(first) = ws.first() else {
            return Err("empty {{}}".into());
        };
        match first.as_str() {
            "end" => return Ok((nodes, Some("end".into()))),
            "else" => return Ok((nodes, Some(a))),
            "if" | "with" => {
                let pipe = parse_pipe(&ws[1..])?;
                let (body, alt) = parse_block(it, first)?;
                nodes.push(if first == "if" {
                    Node::If(pipe, body, alt)
                } else {
                    Node::With(pipe, body, alt)
                });
            }
            "range" => {
                let mut rest = &ws[1..];
                let mut vars = vec![];
                if let Some(pos) = rest.iter().position(|w| w == ":=") {
                    vars = rest[..pos]
                        .join(" ")
                        .split([',', ' '])
                        .filter(|v| !v.is_empty())
                        .map(|v| {
                            v.strip_prefix('$')
                                .map(str::to_string)
                                .ok_or_else(|| format!("range: {v:?} is not a $variable"))
                        })
                        .collect::<Result<_, _>>()?;
                    rest = &rest[pos + 1..];
                }
                let pipe = parse_pipe(rest)?;
                let (body, alt) = parse_block(it, "range")?;
                nodes.push(Node::Range(vars, pipe, body, alt));
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(format!("{{{{{first}}}}} is not supported here"))
            }
            _ => nodes.push(Node::Action(parse_pipe(&ws)?)),
        }
    }
    Ok((nodes, None))
}

/// The body of an if/with/range and its else part (an `else if` chain
/// is an If in the else part).
fn parse_block(
    it: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    what: &str,
) -> Result<(Vec<Node>, Vec<Node>), String> {
    let (body, term) = parse_nodes(it)?;
    match term.as_deref() {
        Some("end") => Ok((body, vec![])),
        Some(e) => {
            let ws = words(e)?;
            if ws.len() > 1 && (ws[1] == "if" || ws[1] == "with") {
                let pipe = parse_pipe(&ws[2..])?;
                let (b, a) = parse_block(it, what)?;
                let node = if ws[1] == "if" {
                    Node::If(pipe, b, a)
                } else {
                    Node::With(pipe, b, a)
                };
                return Ok((body, vec![node]));
            }
            let (alt, term) = parse_nodes(it)?;
            if term.as_deref() != Some("end") {
                return Err(format!("{{{{{what}}}}}: no {{{{end}}}}"));
            }
            Ok((body, alt))
        }
        None => Err(format!("{{{{{what}}}}}: no {{{{end}}}}")),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A value printed as Go prints it.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", plain(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        other => other.to_string(),
    }
}

/// `.A.B` in `v`: exact names first, then regardless of case (Podman's
/// documents and Docker's differ in case here and there).
/// A name the document lacks is no value (Go's for a map's missing key:
/// `<no value>` printed, false to `if` and `with`), as is anything below
/// it; a name below a string or a number is an error.
fn lookup(v: &Value, path: &str) -> Result<Value, String> {
    const NONE: &Value = &Value::Null;
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            Value::Object(m) => m
                .get(part)
                .or_else(|| {
                    m.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(part))
                        .map(|(_, v)| v)
                })
                // Podman's JSON keys in snake case, its template's fields
                // in Go's (network_interface: .NetworkInterface).
                .or_else(|| {
                    m.iter()
                        .find(|(k, _)| {
                            k.contains('_') && k.replace('_', "").eq_ignore_ascii_case(part)
                        })
                        .map(|(_, v)| v)
                })
                .unwrap_or(NONE),
            Value::Null => NONE,
            _ => return Err(format!("no field {path:?}")),
        };
    }
    Ok(cur.clone())
}

struct Scope<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
}

impl Scope<'_> {
    fn var(&self, name: &str) -> Result<Value, String> {
        if name.is_empty() {
            return Ok(self.root.clone());
        }
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable ${name}"))
    }
}

fn eval_arg(a: &Arg, dot: &Value, s: &Scope) -> Result<Value, String> {
    match a {
        Arg::Field(p) => lookup(dot, p),
        Arg::Var(n, p) => lookup(&s.var(n)?, p),
        Arg::Str(t) => Ok(Value::String(t.clone())),
        Arg::Num(n) => Ok(serde_json::json!(n)),
        Arg::Bool(b) => Ok(Value::Bool(*b)),
        Arg::Func(f) => call(f, vec![]),
        Arg::Sub(p, path) => lookup(&eval_pipe(p, dot, s)?, path),
    }
}

fn eval_pipe(p: &Pipe, dot: &Value, s: &Scope) -> Result<Value, String> {
    let mut last: Option<Value> = None;
    for cmd in p {
        let v = match &cmd[0] {
            Arg::Func(f) => {
                let mut args = cmd[1..]
                    .iter()
                    .map(|a| eval_arg(a, dot, s))
                    .collect::<Result<Vec<_>, _>>()?;
                args.extend(last.take());
                call(f, args)?
            }
            a if cmd.len() == 1 && last.is_none() => eval_arg(a, dot, s)?,
            _ => return Err("a value cannot take arguments".into()),
        };
        last = Some(v);
    }
    last.ok_or_else(|| "empty pipeline".into())
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn compare(f: &str, a: &Value, b: &Value) -> Result<bool, String> {
    if f == "eq" || f == "ne" {
        let same = match (num(a), num(b), a, b) {
            (Some(x), Some(y), Value::Number(_), Value::Number(_)) => x == y,
            _ => a == b,
        };
        return Ok(same == (f == "eq"));
    }
    let o = match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => {
            let (x, y) = (num(a), num(b));
            let (Some(x), Some(y)) = (x, y) else {
                return Err(format!("{f}: values that cannot be compared"));
            };
            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
        }
    };
    Ok(match f {
        "lt" => o.is_lt(),
        "le" => o.is_le(),
        "gt" => o.is_gt(),
        _ => o.is_ge(),
    })
}

/// A count given to a function: a whole number, also one the template
/// wrote as text.
fn count(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
}

/// Go's fmt verbs the templates use: %s %v %d %q %%, with a width.
fn printf(args: &[Value]) -> Result<String, String> {
    let Some(Value::String(f)) = args.first() else {
        return Err("printf: a format string first".into());
    };
    let mut out = String::new();
    let mut rest = args[1..].iter();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' {
                width.push(d);
                chars.next();
            } else {
                break;
            }
        }
        // A precision: at most that many characters of a string.
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            precision = Some(digits.parse().unwrap_or(0));
        }
        let verb = chars.next().ok_or("printf: % at the end")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = rest.next().cloned().unwrap_or(Value::Null);
        let mut text = match verb {
            'q' => serde_json::to_string(&plain(&v)).unwrap_or_default(),
            'd' | 's' | 'v' => plain(&v),
            o => return Err(format!("printf: %{o} is not supported")),
        };
        if let (Some(p), 's' | 'v') = (precision, verb) {
            text = text.chars().take(p).collect();
        }
        let w: i64 = width.parse().unwrap_or(0);
        let n = w.unsigned_abs() as usize;
        if w < 0 {
            out.push_str(&format!("{text:<n$}"));
        } else {
            out.push_str(&format!("{text:>n$}"));
        }
    }
    Ok(out)
}

fn call(f: &str, args: Vec<Value>) -> Result<Value, String> {
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{f}: {n} arguments wanted, {} given", args.len()))
        }
    };
    let s = |v: &Value| plain(v);
    Ok(match f {
        "json" => {
            want(1)?;
            Value::String(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        "index" => {
            if args.is_empty() {
                return Err("index: a value to index".into());
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Object(m), _) => m
                        .get(&s(k))
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                    (Value::Array(a), _) => {
                        let i = num(k).ok_or("index: a number for a list")? as usize;
                        a.get(i)
                            .cloned()
                            .ok_or(format!("index: {i} is out of range"))?
                    }
                    _ => return Err("index: not a map or a list".into()),
                };
            }
            cur
        }
        "join" => {
            want(2)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(s).collect(),
                Value::Null => vec![],
                v => vec![s(v)],
            };
            Value::String(items.join(&s(&args[1])))
        }
        "split" => {
            want(2)?;
            let sep = s(&args[1]);
            Value::Array(
                s(&args[0])
                    .split(sep.as_str())
                    .map(|x| Value::String(x.into()))
                    .collect(),
            )
        }
        "lower" => {
            want(1)?;
            Value::String(s(&args[0]).to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::String(s(&args[0]).to_uppercase())
        }
        // Go's strings.Title: each word's first letter, a word starting
        // after anything but a letter, a digit or '_'.
        "title" => {
            want(1)?;
            let mut after_separator = true;
            let mut out = String::new();
            for c in s(&args[0]).chars() {
                match after_separator {
                    true => out.extend(c.to_uppercase()),
                    false => out.push(c),
                }
                after_separator = !(c.is_alphanumeric() || c == '_');
            }
            Value::String(out)
        }
        // Podman's: the first N characters.
        "truncate" => {
            want(2)?;
            let n = count(&args[1]).ok_or("truncate: a length second")? as usize;
            Value::String(s(&args[0]).chars().take(n).collect())
        }
        // Podman's: the text with N spaces before and M after.
        "pad" => {
            want(3)?;
            let (before, after) = (count(&args[1]), count(&args[2]));
            let (Some(b), Some(a)) = (before, after) else {
                return Err("pad: TEXT BEFORE AFTER".into());
            };
            Value::String(format!(
                "{}{}{}",
                " ".repeat(b as usize),
                s(&args[0]),
                " ".repeat(a as usize)
            ))
        }
        "len" => {
            want(1)?;
            serde_json::json!(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(t) => t.len(),
                Value::Null => 0,
                _ => return Err("len: not a list, map or string".into()),
            })
        }
        "printf" => Value::String(printf(&args)?),
        "print" => Value::String(args.iter().map(s).collect::<Vec<_>>().join("")),
        "println" => Value::String(args.iter().map(s).collect::<Vec<_>>().join(" ") + "\n"),
        "not" => {
            want(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "and" => args
            .iter()
            .find(|v| !truthy(v))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|v| truthy(v))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            Value::Bool(compare(f, &args[0], &args[1])?)
        }
        _ => return Err(format!("function {f:?} not defined")),
    })
}

fn exec(nodes: &[Node], dot: &Value, s: &mut Scope, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&plain(&eval_pipe(p, dot, s)?)),
            Node::If(p, body, alt) => {
                let v = eval_pipe(p, dot, s)?;
                exec(if truthy(&v) { body } else { alt }, dot, s, out)?;
            }
            Node::With(p, body, alt) => {
                let v = eval_pipe(p, dot, s)?;
                if truthy(&v) {
                    exec(body, &v, s, out)?;
                } else {
                    exec(alt, dot, s, out)?;
                }
            }
            Node::Range(vars, p, body, alt) => {
                let v = eval_pipe(p, dot, s)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (serde_json::json!(i), x.clone()))
                        .collect(),
                    Value::Object(m) => {
                        let mut keys: Vec<&String> = m.keys().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| (Value::String(k.clone()), m[k].clone()))
                            .collect()
                    }
                    Value::Null => vec![],
                    _ => return Err(format!("range over {}: not a list or map", plain(&v))),
                };
                if items.is_empty() {
                    exec(alt, dot, s, out)?;
                }
                for (k, x) in items {
                    let depth = s.vars.len();
                    match vars.as_slice() {
                        [] => {}
                        [e] => s.vars.push((e.clone(), x.clone())),
                        [i, e, ..] => {
                            s.vars.push((i.clone(), k));
                            s.vars.push((e.clone(), x.clone()));
                        }
                    }
                    exec(body, &x, s, out)?;
                    s.vars.truncate(depth);
                }
            }
        }
    }
    Ok(())
}

/// Renders `tpl` over `v`; the error says what in it failed.
pub fn render(tpl: &str, v: &Value) -> Result<String, String> {
    let mut it = pieces(tpl)?.into_iter().peekable();
    let (nodes, term) = parse_nodes(&mut it)?;
    if let Some(t) = term {
        return Err(format!("unexpected {{{{{t}}}}}"));
    }
    let mut scope = Scope {
        root: v,
        vars: vec![],
    };
    let mut out = String::new();
    exec(&nodes, v, &mut scope, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_format_users_write() {
        let v = json!({
            "Name": "web", "State": {"Status": "running", "ExitCode": 0, "Pid": 42},
            "Config": {"Labels": {"a": "1", "b.c": "2"}, "Env": ["A=1", "B=2"], "Cmd": ["sh", "-c"]},
            "Mounts": [{"Destination": "/d"}, {"Destination": "/e"}],
            "NetworkSettings": {"Networks": {"n1": {"IPAddress": "10.0.0.2"}}},
        });
        let r = |t: &str| render(t, &v).unwrap();
        assert_eq!(r("{{.Name}} {{.State.Pid}}"), "web 42");
        assert_eq!(r(r#"{{index .Config.Labels "b.c"}}"#), "2");
        assert_eq!(r(r#"{{index .Config.Labels "zz"}}"#), "");
        assert_eq!(r("{{range .Config.Env}}{{.}};{{end}}"), "A=1;B=2;");
        assert_eq!(
            r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}"),
            "a=1 b.c=2 "
        );
        assert_eq!(
            r("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"),
            "10.0.0.2"
        );
        assert_eq!(r(r#"{{join .Config.Cmd " "}}"#), "sh -c");
        assert_eq!(
            r("{{json .Config.Cmd}}|{{.Config.Cmd | json}}"),
            r#"["sh","-c"]|["sh","-c"]"#
        );
        assert_eq!(
            r(r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#),
            "up"
        );
        assert_eq!(
            r(r#"{{if ne .State.ExitCode 0}}bad{{else if .State.Pid}}pid{{end}}"#),
            "pid"
        );
        assert_eq!(r("{{with .State}}{{.Status}}{{end}}"), "running");
        assert_eq!(
            r("{{len .Mounts}} {{(index .Mounts 1).Destination}}"),
            "2 /e"
        );
        assert_eq!(r("{{upper .Name}}{{/* note */}}"), "WEB");
        assert_eq!(r(r#"{{printf "%-5s|%d" .Name .State.Pid}}"#), "web  |42");
        assert_eq!(r("a  {{- .Name -}}  b"), "awebb");
        // A missing key is no value, as Go's for a map; false to if/with.
        assert_eq!(r("{{.Config.Labels.nokey}}"), "<no value>");
        assert_eq!(r("{{with .Config.Labels.x}}yes{{else}}no{{end}}"), "no");
        assert_eq!(r("{{.Nope.Deeper}}"), "<no value>");
        let net = json!({"network_interface": "br0", "dns_enabled": true});
        assert_eq!(
            render("{{.NetworkInterface}} {{.DNSEnabled}}", &net).unwrap(),
            "br0 true"
        );
        // Podman's functions, and a precision.
        assert_eq!(r(r#"{{printf "%.2s|%-4.1s|" .Name .Name}}"#), "we|w   |");
        assert_eq!(r("{{truncate .Name 2}}"), "we");
        assert_eq!(r(r#"{{title "h2-a b_c"}}"#), "H2-A B_c");
        assert_eq!(r("[{{pad .Name 1 2}}]"), "[ web  ]");
    }

    #[test]
    fn mistakes_are_errors() {
        let v = json!({"A": 1});
        assert!(render("{{.A.B}}", &v).is_err());
        assert!(render("{{range .A}}", &v).is_err());
        assert!(render("{{nofunc .A}}", &v).is_err());
        assert!(render("{{end}}", &v).is_err());
        assert!(render("{{.A", &v).is_err());
    }
}
