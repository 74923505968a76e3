//! The shim's command line, as containerd gives it (Go `flag` style), with a
//! line of help for each flag and action: args.rs parses with this table and
//! build.rs makes the manual page from it.

pub struct Flag {
    pub name: &'static str,
    /// What the flag's value is called; None for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

pub const ABOUT: &str = "containerd's shim v2 for skiff (runtime io.containerd.skiff.v2)";

/// The manual page's description (build.rs).
#[allow(dead_code)]
pub const DESCRIPTION: &str = "containerd starts this program itself, as it starts any \
shim v2: it is not meant to be run by hand. Put it on containerd's PATH and name the \
runtime io.containerd.skiff.v2 (ctr run --runtime io.containerd.skiff.v2, or a CRI \
runtime handler whose runtime_type it is). It serves containerd's Task API over ttrpc \
and runs containers with the skiff library in-process, one server per pod. Flags are \
taken as -name value, -name=value or --name; unknown ones are skipped. Runtime options \
(runc's): NoPivotRoot, NoNewKeyring, SystemdCgroup and IoUid/IoGid apply, the others \
are refused by name; a cgroupsPath slice:prefix:name uses systemd's cgroup driver \
(through skiff-systemd).";

pub const FLAGS: &[Flag] = &[
    Flag {
        name: "namespace",
        value: Some("NS"),
        help: "containerd namespace of the task",
    },
    Flag {
        name: "address",
        value: Some("ADDR"),
        help: "containerd's gRPC address",
    },
    Flag {
        name: "publish-binary",
        value: Some("BIN"),
        help: "the containerd binary that publishes events",
    },
    Flag {
        name: "id",
        value: Some("ID"),
        help: "the task id",
    },
    Flag {
        name: "bundle",
        value: Some("DIR"),
        help: "the task's bundle (for delete)",
    },
    Flag {
        name: "shell",
        value: Some("SHELL"),
        help: "with completion: bash, zsh or fish",
    },
    Flag {
        name: "debug",
        value: None,
        help: "debug output",
    },
    Flag {
        name: "info",
        value: None,
        help: "print the RuntimeInfo containerd 2.x asks for (name, version, features)",
    },
    Flag {
        name: "v",
        value: None,
        help: "print the version",
    },
    Flag {
        name: "version",
        value: None,
        help: "print the version",
    },
];

pub const ACTIONS: &[(&str, &str)] = &[
    (
        "start",
        "start the pod's server (or find it running) and print its address as the calling containerd reads it",
    ),
    (
        "delete",
        "containerd's cleanup of a task whose server is gone: kill what is left, remove its state",
    ),
    ("serve", "the server itself (what start runs)"),
    ("man", "print this manual page (roff, for man(1))"),
    ("completion", "print a completion script for -shell SHELL"),
];

/// What a usage error prints after itself: the actions and the flags.
pub fn usage() -> String {
    let mut text = format!(
        "{ABOUT}\nusage: containerd-shim-skiff-v2 [flags] {}\n",
        ACTIONS
            .iter()
            .map(|(a, _)| *a)
            .collect::<Vec<_>>()
            .join("|")
    );
    for f in FLAGS {
        let name = match f.value {
            Some(v) => format!("-{} {v}", f.name),
            None => format!("-{}", f.name),
        };
        text.push_str(&format!("  {name:<22} {}\n", f.help));
    }
    text
}
