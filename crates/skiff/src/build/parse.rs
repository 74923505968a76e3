//! The Containerfile parser: parser directives, comments, line
//! continuations, heredocs, flags, JSON (exec) and shell forms. Every
//! instruction keeps the line it starts on, so errors name FILE:LINE.
//!
//! The project's own: the crates.io parser (dockerfile-parser) has no
//! heredocs and no `escape` directive, and gives no line per instruction.

use std::fmt;

/// An error that names where: FILE:LINE: INSTRUCTION: what.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub instruction: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.instruction.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.instruction, self.message
            )
        }
    }
}

/// A heredoc's body (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    pub name: String,
    pub body: String,
    /// `<<"EOF"` or `<<'EOF'`: no variables are expanded in the body.
    pub quoted: bool,
}

/// The argument of RUN, CMD, ENTRYPOINT, SHELL: a JSON array (exec form)
/// or a command line for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Form {
    Exec(Vec<String>),
    Shell(String),
}

/// One instruction as written.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// The line it starts on (1-based).
    pub line: usize,
    /// Upper case: RUN, COPY, ...
    pub keyword: String,
    /// Leading `--name=value` flags (`--name` alone: value "").
    pub flags: Vec<(String, String)>,
    /// The rest of the line, continuations joined, flags taken off.
    pub rest: String,
    pub heredocs: Vec<Heredoc>,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The instruction as history shows it: `KEYWORD --flags rest`.
    pub fn text(&self) -> String {
        let mut s = self.keyword.clone();
        for (n, v) in &self.flags {
            s.push_str(&format!(" --{n}={v}"));
        }
        if !self.rest.is_empty() {
            s.push(' ');
            s.push_str(&self.rest);
        }
        s
    }

    /// The exec form if the rest is a JSON array of strings, else the
    /// shell form.
    pub fn form(&self) -> Form {
        let t = self.rest.trim();
        if t.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
                return Form::Exec(v);
            }
        }
        Form::Shell(t.to_string())
    }
}

/// A parsed file.
#[derive(Debug, Clone)]
pub struct Containerfile {
    pub file: String,
    pub instructions: Vec<Instruction>,
    pub escape: char,
}

const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Instructions whose flags are read (others take `--` as text).
const FLAGGED: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];

/// Instructions that may carry heredocs.
const HEREDOC: &[&str] = &["RUN", "COPY", "ADD"];

pub fn parse(file: &str, text: &str) -> Result<Containerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let err = |line: usize, instruction: &str, message: String| ParseError {
        file: file.to_string(),
        line,
        instruction: instruction.to_string(),
        message,
    };
    let (escape, mut i) = directives(&lines).map_err(|(l, m)| err(l, "", m))?;
    let mut out = vec![];
    while i < lines.len() {
        let first = lines[i].trim();
        if first.is_empty() || first.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        // The logical line: continuations joined, comment lines inside
        // left out (Docker's rule).
        let mut logical = String::new();
        loop {
            let raw = lines[i];
            i += 1;
            let t = raw.trim_end();
            if let Some(stripped) = t.strip_suffix(escape) {
                logical.push_str(stripped);
                while i < lines.len() && lines[i].trim_start().starts_with('#') {
                    i += 1;
                }
                if i >= lines.len() {
                    break;
                }
            } else {
                logical.push_str(t);
                break;
            }
        }
        let logical = logical.trim();
        let (word, rest) = logical
            .split_once(|c: char| c.is_whitespace())
            .unwrap_or((logical, ""));
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(err(start + 1, word, "unknown instruction".into()));
        }
        let mut rest = rest.trim().to_string();
        let mut flags = vec![];
        if FLAGGED.contains(&keyword.as_str()) {
            while let Some(f) = rest.strip_prefix("--") {
                let end = f.find(char::is_whitespace).unwrap_or(f.len());
                let (name, value) = match f[..end].split_once('=') {
                    Some((n, v)) => (n.to_string(), v.to_string()),
                    None => (f[..end].to_string(), String::new()),
                };
                if name.is_empty() {
                    return Err(err(start + 1, &keyword, "an empty flag (--)".into()));
                }
                flags.push((name, value));
                rest = f[end..].trim_start().to_string();
            }
        }
        let mut heredocs = vec![];
        if HEREDOC.contains(&keyword.as_str()) {
            for (name, strip_tabs, quoted) in heredoc_markers(&rest) {
                let mut body = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == name {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    return Err(err(
                        start + 1,
                        &keyword,
                        format!("heredoc <<{name} is not closed (no line {name:?} follows)"),
                    ));
                }
                heredocs.push(Heredoc { name, body, quoted });
            }
        }
        if rest.is_empty() && heredocs.is_empty() && !matches!(keyword.as_str(), "HEALTHCHECK") {
            return Err(err(start + 1, &keyword, "needs an argument".into()));
        }
        out.push(Instruction {
            line: start + 1,
            keyword,
            flags,
            rest,
            heredocs,
        });
    }
    if !out.iter().any(|i| i.keyword == "FROM") {
        return Err(err(lines.len().max(1), "", "no FROM instruction".into()));
    }
    Ok(Containerfile {
        file: file.to_string(),
        instructions: out,
        escape,
    })
}

/// Parser directives at the top (`# escape=`, `# syntax=`, `# check=`):
/// the escape character and the first line after them.
fn directives(lines: &[&str]) -> Result<(char, usize), (usize, String)> {
    let mut escape = '\\';
    let mut seen: Vec<String> = vec![];
    for (n, l) in lines.iter().enumerate() {
        let Some(body) = l.trim().strip_prefix('#') else {
            return Ok((escape, n));
        };
        let Some((key, value)) = body.split_once('=') else {
            return Ok((escape, n));
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Ok((escape, n));
        }
        if seen.contains(&key) {
            return Err((n + 1, format!("parser directive {key} given twice")));
        }
        match key.as_str() {
            "escape" => {
                escape = match value.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    v => {
                        return Err((
                            n + 1,
                            format!(
                                "escape directive {v:?}: only \\ or ` may be the escape character"
                            ),
                        ))
                    }
                }
            }
            // The frontend image and build checks: not ours to follow.
            "syntax" | "check" => {}
            _ => return Ok((escape, n)),
        }
        seen.push(key);
    }
    Ok((escape, lines.len()))
}

/// The heredoc markers of a line, in order: (name, `<<-`, quoted). A
/// `<<` inside quotes, or a here-string (`<<<`), is none.
fn heredoc_markers(rest: &str) -> Vec<(String, bool, bool)> {
    let b: Vec<char> = rest.chars().collect();
    let mut out = vec![];
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '<'
                && b.get(i + 1) == Some(&'<')
                && b.get(i + 2) != Some(&'<')
                && (i == 0 || b[i - 1] != '<') =>
            {
                let mut j = i + 2;
                let strip = b.get(j) == Some(&'-');
                if strip {
                    j += 1;
                }
                let q = b.get(j).copied().filter(|c| *c == '"' || *c == '\'');
                if q.is_some() {
                    j += 1;
                }
                let start = j;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                    j += 1;
                }
                if j > start {
                    out.push((b[start..j].iter().collect(), strip, q.is_some()));
                    if q.is_some() && b.get(j) == q.as_ref() {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// Replaces `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` with
/// values from `lookup`; `escape` before `$` keeps it literal. Inside
/// single quotes nothing is replaced. Quotes outside a `${...}` are kept
/// (`words_in` takes them off); a word inside one is processed as Docker's
/// shell lexer processes it (see `dollar`).
pub fn expand(text: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut single = false;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && i + 1 < chars.len() && chars[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if c == '\'' {
            single = !single;
        }
        if c == '$' && !single {
            if let Some((len, value)) = dollar(&chars[i..], escape, lookup) {
                out.push_str(&value);
                i += len;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The variable at the start of `chars` (which starts with `$`): how many
/// chars it takes and its value; None for a lone `$` or a `${` that does
/// not close. `${NAME:-word}` and `${NAME:+word}`: the word is itself
/// processed as Docker's lexer processes it (processStopOn('}')): its
/// variables expanded, even nested `${...}`, its quotes and escapes taken
/// off, up to the first `}` outside quotes.
fn dollar(chars: &[char], escape: char, lookup: Lookup) -> Option<(usize, String)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(1) {
        Some('{') => {}
        Some(&c) if c.is_ascii_alphabetic() || c == '_' => {
            let n = 1 + chars[1..].iter().take_while(|c| is_name(**c)).count();
            let name: String = chars[1..n].iter().collect();
            return Some((n, lookup(&name).unwrap_or_default()));
        }
        _ => return None,
    }
    let name_len = chars[2..].iter().take_while(|c| is_name(**c)).count();
    let name: String = chars[2..2 + name_len].iter().collect();
    let at = 2 + name_len;
    match (chars.get(at), chars.get(at + 1)) {
        (Some('}'), _) => Some((at + 1, lookup(&name).unwrap_or_default())),
        (Some(':'), Some(&op)) if op == '-' || op == '+' => {
            let (word, used) = process_word(&chars[at + 2..], escape, Some(lookup), Some('}'))?;
            let set = lookup(&name).filter(|v| !v.is_empty());
            let value = match (op, set) {
                ('-', Some(v)) => v,
                ('-', None) => word,
                (_, Some(_)) => word,
                (_, None) => String::new(),
            };
            Some((at + 2 + used + 1, value))
        }
        _ => None,
    }
}

/// One word as Docker's lexer processes it, whitespace kept: variables
/// expanded (not without `lookup`; never in single quotes), quotes and
/// escapes taken off. With `stop`, the word ends at the first `stop`
/// outside quotes: the word and the chars taken before it; None when it
/// never comes (or a quote is left open).
fn process_word(
    chars: &[char],
    escape: char,
    lookup: Option<Lookup>,
    stop: Option<char>,
) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, c) if Some(c) == stop => return Some((out, i)),
            (None, '"') | (None, '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, c) if c == escape && q != Some('\'') && i + 1 < chars.len() => {
                i += 1;
                out.push(chars[i]);
            }
            (q, '$') if q != Some('\'') && lookup.is_some() => {
                let l = lookup.expect("checked above");
                if let Some((len, value)) = dollar(&chars[i..], escape, l) {
                    out.push_str(&value);
                    i += len;
                    continue;
                }
                out.push('$');
            }
            (_, c) => out.push(c),
        }
        i += 1;
    }
    match (stop, quote) {
        (None, None) => Some((out, i)),
        _ => None,
    }
}

/// How a step looks a variable up.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Splits on unquoted whitespace, taking quotes and escapes off (the
/// words of ENV, LABEL, ARG, COPY, EXPOSE, VOLUME in shell form).
pub fn words(text: &str, escape: char) -> Result<Vec<String>, String> {
    words_in(text, escape, None)
}

/// As `words`, with variables replaced within each word (never in single
/// quotes), so a value with spaces stays one word (Docker's rule).
pub fn words_in(text: &str, escape: char, lookup: Option<Lookup>) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, c) if c == escape && q != Some('\'') => {
                in_word = true;
                match chars.get(i) {
                    Some(&n) => {
                        cur.push(n);
                        i += 1;
                    }
                    None => cur.push(c),
                }
            }
            (q, '$') if q != Some('\'') && lookup.is_some() => {
                in_word = true;
                let l = lookup.expect("checked above");
                match dollar(&chars[i - 1..], escape, l) {
                    Some((n, value)) => {
                        cur.push_str(&value);
                        i += n - 1;
                    }
                    None => cur.push('$'),
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unmatched {q} quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// KEY=VALUE pairs (ENV, LABEL, ARG), or ENV's and LABEL's old form
/// `KEY VALUE`; variables replaced within each word when `lookup`.
pub fn pairs(
    text: &str,
    escape: char,
    old_form: bool,
    lookup: Option<Lookup>,
) -> Result<Vec<(String, Option<String>)>, String> {
    let ws = words_in(text, escape, lookup)?;
    let first_has_eq = ws.first().map(|w| w.contains('=')).unwrap_or(false);
    if old_form && !first_has_eq {
        let t = text.trim();
        let (k, v) = t
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{t:?}: needs KEY=VALUE or KEY VALUE"))?;
        // The value is one word, its inner whitespace as written
        // (Docker's parseNameVal, then ProcessWord).
        let chars: Vec<char> = v.trim().chars().collect();
        let (v, _) = process_word(&chars, escape, lookup, None)
            .ok_or_else(|| format!("{t:?}: an unmatched quote"))?;
        return Ok(vec![(k.to_string(), Some(v))]);
    }
    let mut out = vec![];
    for w in ws {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), Some(v.to_string()))),
            Some(_) => return Err(format!("{w:?}: an empty name")),
            None if old_form => return Err(format!("{w:?}: needs KEY=VALUE")),
            None => out.push((w, None)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_lines() {
        let f = parse(
            "Containerfile",
            "# syntax=docker/dockerfile:1\nFROM busybox AS base\n\n# a comment\nRUN echo a \\\n# inside\n    && echo b\nCMD [\"sh\", \"-c\", \"x\"]\n",
        )
        .unwrap();
        assert_eq!(f.instructions.len(), 3);
        assert_eq!(f.instructions[1].line, 5);
        assert_eq!(f.instructions[1].rest, "echo a     && echo b");
        assert_eq!(
            f.instructions[2].form(),
            Form::Exec(vec!["sh".into(), "-c".into(), "x".into()])
        );
    }

    #[test]
    fn escape_directive_and_flags() {
        let f = parse(
            "F",
            "# escape=`\nFROM x\nCOPY --from=a --chown=1:2 a `\n  b /c/\n",
        )
        .unwrap();
        let c = &f.instructions[1];
        assert_eq!(c.flag("from"), Some("a"));
        assert_eq!(c.flag("chown"), Some("1:2"));
        assert_eq!(c.rest, "a   b /c/");
    }

    #[test]
    fn heredocs() {
        let f = parse(
            "F",
            "FROM x\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-\"A\" /a\n\thello $X\n\tA\nRUN true\n",
        )
        .unwrap();
        assert_eq!(f.instructions[1].heredocs[0].body, "echo one\necho two\n");
        assert_eq!(f.instructions[2].heredocs[0].body, "hello $X\n");
        assert!(f.instructions[2].heredocs[0].quoted);
        assert_eq!(f.instructions[3].line, 9);
        // Not heredocs: quoted, or a here-string.
        let f = parse(
            "F",
            "FROM x\nRUN echo \"a <<b\" && cat <<<\"c\"\nRUN true\n",
        )
        .unwrap();
        assert!(f.instructions[1].heredocs.is_empty());
        assert_eq!(f.instructions.len(), 3);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("Containerfile", "FROM x\n\nBOGUS y\n").unwrap_err();
        assert_eq!(e.to_string(), "Containerfile:3: BOGUS: unknown instruction");
        let e = parse("F", "FROM x\nRUN <<EOF\nnever closed\n").unwrap_err();
        assert!(e.to_string().starts_with("F:2: RUN: heredoc"), "{e}");
        let e = parse("F", "FROM x\nRUN\n").unwrap_err();
        assert_eq!(e.to_string(), "F:2: RUN: needs an argument");
    }

    #[test]
    fn expansion_and_words() {
        let look = |n: &str| match n {
            "A" => Some("1".to_string()),
            "E" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand("$A ${A} ${B:-d} ${E:-d} ${A:+y} \\$A '$A'", '\\', &look),
            "1 1 d d y $A '$A'"
        );
        assert_eq!(
            words("a \"b c\" 'd e' f\\ g", '\\').unwrap(),
            vec!["a", "b c", "d e", "f g"]
        );
        assert_eq!(
            pairs("K=\"v w\" L=x", '\\', true, None).unwrap(),
            vec![
                ("K".into(), Some("v w".into())),
                ("L".into(), Some("x".into()))
            ]
        );
        assert_eq!(
            pairs("K v w", '\\', true, None).unwrap(),
            vec![("K".into(), Some("v w".into()))]
        );
        // A value with spaces stays one word; single quotes and the
        // escape keep a `$`.
        let b = |n: &str| (n == "B").then(|| "x y".to_string());
        assert_eq!(
            pairs("A=$B C='$B' D=\\$B E=${B:-z}", '\\', true, Some(&b)).unwrap(),
            vec![
                ("A".into(), Some("x y".into())),
                ("C".into(), Some("$B".into())),
                ("D".into(), Some("$B".into())),
                ("E".into(), Some("x y".into())),
            ]
        );
    }

    #[test]
    fn nested_words_and_the_legacy_form() {
        let look = |n: &str| match n {
            "A" => Some("aa".to_string()),
            "O" => Some("oo".to_string()),
            _ => None,
        };
        // The word of ${V:-word} / ${V:+word} is itself expanded, its
        // quotes taken off (Docker's lexer; Podman gives the same).
        assert_eq!(
            pairs(
                "l3=${NOPE:-$O} l4=${A:+${O}x} n1=${NOPE:-\"q v\"} n2=${NOPE:-'$O'}x",
                '\\',
                true,
                Some(&look)
            )
            .unwrap(),
            vec![
                ("l3".into(), Some("oo".into())),
                ("l4".into(), Some("oox".into())),
                ("n1".into(), Some("q v".into())),
                ("n2".into(), Some("$Ox".into())),
            ]
        );
        assert_eq!(expand("${A:+${O}x}-${NOPE:+y}", '\\', &look), "oox-");
        // ENV KEY a b  c: the value's whitespace as written.
        assert_eq!(
            pairs("LEG a b  c \"$O  d\"", '\\', true, Some(&look)).unwrap(),
            vec![("LEG".into(), Some("a b  c oo  d".into()))]
        );
    }
}
