//! The command line containerd gives a shim, Go `flag` style: `-namespace NS
//! -address ADDR -publish-binary BIN -id ID [-debug] [-bundle PATH] ACTION`.
//! `-flag value`, `-flag=value` and `--flag` are all accepted; unknown flags
//! are skipped (newer containerd versions add some) rather than refused.

use std::path::PathBuf;

use crate::error::ShimError;

#[derive(Debug, Default, Clone)]
pub struct Args {
    pub namespace: String,
    /// containerd's gRPC address (part of the socket name, as runc's shim does).
    pub address: String,
    pub publish_binary: String,
    pub id: String,
    pub bundle: Option<PathBuf>,
    pub debug: bool,
    pub action: String,
    /// With the completion action: the shell.
    pub shell: String,
}

use crate::flags::FLAGS;

/// Whether `name` is a flag of ours that takes no value.
fn switch(name: &str) -> bool {
    FLAGS.iter().any(|f| f.name == name && f.value.is_none())
}

impl Args {
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, ShimError> {
        let mut args = Args::default();
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                if !args.action.is_empty() {
                    return Err(ShimError::Usage(format!("unexpected argument {arg:?}")));
                }
                args.action = arg;
                continue;
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if switch(name) {
                match name {
                    "debug" => args.debug = inline.as_deref() != Some("false"),
                    "info" => args.action = "info".into(),
                    _ => args.action = "version".into(),
                }
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| ShimError::Usage(format!("flag -{name} needs a value")))?,
            };
            match name {
                "namespace" => args.namespace = value,
                "address" => args.address = value,
                "publish-binary" => args.publish_binary = value,
                "id" => args.id = value,
                "bundle" => args.bundle = Some(PathBuf::from(value)),
                "shell" => args.shell = value,
                _ => {}
            }
        }
        if args.action.is_empty() {
            return Err(ShimError::Usage(
                "no action given (start, delete or serve)".into(),
            ));
        }
        if !["version", "info", "man", "completion"].contains(&args.action.as_str()) {
            if args.namespace.is_empty() {
                return Err(ShimError::Usage("flag -namespace is required".into()));
            }
            if args.id.is_empty() {
                return Err(ShimError::Usage("flag -id is required".into()));
            }
        }
        Ok(args)
    }

    /// The same flags, for the server process `start` spawns.
    pub fn to_argv(&self, action: &str) -> Vec<String> {
        let mut v = vec![
            "-namespace".to_string(),
            self.namespace.clone(),
            "-address".into(),
            self.address.clone(),
            "-publish-binary".into(),
            self.publish_binary.clone(),
            "-id".into(),
            self.id.clone(),
        ];
        if self.debug {
            v.push("-debug".into());
        }
        v.push(action.into());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, ShimError> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn containerd_16_start_line() {
        let a = parse("-namespace k8s.io -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id abc -debug start").unwrap();
        assert_eq!(a.namespace, "k8s.io");
        assert_eq!(a.address, "/run/containerd/containerd.sock");
        assert_eq!(a.id, "abc");
        assert!(a.debug);
        assert_eq!(a.action, "start");
    }

    #[test]
    fn equals_form_double_dash_and_unknown_flags() {
        let a = parse("--namespace=default -id=x -future-flag 3 -bundle /b delete").unwrap();
        assert_eq!(a.namespace, "default");
        assert_eq!(a.id, "x");
        assert_eq!(a.bundle, Some(PathBuf::from("/b")));
        assert_eq!(a.action, "delete");
    }

    /// containerd 2.x runs `SHIM -info` alone, the options on stdin.
    /// Every flag the table lists is one the parser takes.
    #[test]
    fn the_table_is_the_parser() {
        for f in FLAGS {
            let line = match (f.value, f.name) {
                (Some(_), _) => format!("-namespace n -id i -{} x start", f.name),
                // These are actions of their own.
                (None, "info" | "v" | "version") => format!("-{}", f.name),
                (None, _) => format!("-namespace n -id i -{} start", f.name),
            };
            let a = parse(&line).unwrap();
            match f.name {
                "address" => assert_eq!(a.address, "x"),
                "publish-binary" => assert_eq!(a.publish_binary, "x"),
                "bundle" => assert_eq!(a.bundle, Some(PathBuf::from("x"))),
                "debug" => assert!(a.debug),
                "info" => assert_eq!(a.action, "info"),
                "v" | "version" => assert_eq!(a.action, "version"),
                "namespace" => assert_eq!(a.namespace, "x"),
                "shell" => assert_eq!(a.shell, "x"),
                "id" => assert_eq!(a.id, "x"),
                other => panic!("flag -{other} is listed but not parsed"),
            }
        }
        assert_eq!(parse("man").unwrap().action, "man");
    }

    #[test]
    fn info_needs_nothing_else() {
        assert_eq!(parse("-info").unwrap().action, "info");
    }

    #[test]
    fn missing_pieces_name_the_flag() {
        let e = parse("-namespace ns start").unwrap_err().to_string();
        assert!(e.contains("-id"), "{e}");
        let e = parse("-namespace").unwrap_err().to_string();
        assert!(e.contains("-namespace needs a value"), "{e}");
        let e = parse("-namespace a -id b").unwrap_err().to_string();
        assert!(e.contains("no action"), "{e}");
        let e = parse("-namespace a -id b start extra")
            .unwrap_err()
            .to_string();
        assert!(e.contains("extra"), "{e}");
    }
}
