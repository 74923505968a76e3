//! `skiff build`: an image from a Containerfile (or Dockerfile), a step at
//! a time, each step cached in the store's database.
//!
//! A stage's image so far is a config and a list of layers. A step that
//! changes only the config (ENV, CMD, LABEL, ...) adds a history entry
//! marked `empty_layer`; RUN runs the command in a container of the stage
//! so far (the path `skiff run` takes: containers::create, then its
//! monitor in the foreground) and commits the container's upper dir as a
//! layer; COPY and ADD lay their files out in a scratch directory and make
//! that a layer. Each step's result is kept under a key of its parent and
//! its own text (see cache.rs), so a rebuild that changes nothing runs
//! nothing.
//!
//! Build lives in the engine's crate, not a crate of its own, because RUN
//! needs the containers of containers.rs, which live here too.

mod cache;
mod context;
mod copy;
mod mounts;
mod parse;
mod run;
mod squash;
mod steps;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};
use skiff_image::manifest::{Descriptor, Manifest, Platform};
use skiff_image::reference::Reference;
use skiff_image::store::{remove_tree, Store};
use skiff_image::{pull, Error, Result};

use cache::Snapshot;
pub use mounts::{Secret, SecretSource};
use parse::{Containerfile, Instruction};

/// What `skiff build` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub context: String,
    pub file: Option<PathBuf>,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: Pull,
    pub network: String,
    /// RUN containers get no /etc/hosts.
    pub no_hosts: bool,
    pub labels: Vec<(String, String)>,
    /// --annotation: the image manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// --squash-all: the image as one layer.
    pub squash_all: bool,
    /// --secret: what RUN --mount=type=secret reads.
    pub secrets: Vec<Secret>,
    pub quiet: bool,
    pub registry: crate::cli::RegistryArgs,
}

/// When FROM (and COPY --from) pull an image: Podman's --pull policies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Pull {
    Always,
    #[default]
    Missing,
    Never,
}

/// Build args every build knows without an ARG (Docker's proxy args).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Docker's default PATH, for a base that has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of an automatic platform ARG (Docker's TARGETPLATFORM,
/// BUILDARCH, ...): this machine's, in Go's names, as the build is for
/// this machine. None for any other name.
pub fn platform_arg(name: &str) -> Option<String> {
    let arch = crate::spec::go_arch();
    // Docker leaves out arm64's v8, the only variant it runs.
    let variant = Platform::host()
        .variant
        .filter(|v| arch != "arm64" || v != "v8");
    let platform = match &variant {
        Some(v) => format!("linux/{arch}/{v}"),
        None => format!("linux/{arch}"),
    };
    let value = match name.strip_prefix("TARGET").or(name.strip_prefix("BUILD"))? {
        "PLATFORM" => platform,
        "OS" => "linux".into(),
        "ARCH" => arch.into(),
        "VARIANT" => variant.unwrap_or_default(),
        _ => return None,
    };
    Some(value)
}

/// The context: a directory (or none, with the Containerfile on stdin),
/// and a directory of our own to remove at the end (a tar on stdin).
struct Context {
    dir: Option<PathBuf>,
    owned: Option<PathBuf>,
    ignore: context::Ignore,
    file_name: String,
    text: String,
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Some(d) = &self.owned {
            let _ = remove_tree(d);
        }
    }
}

/// A stage's state as its steps go.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: Option<String>,
    /// The whole image config (architecture, os, config, rootfs, history).
    pub config: Value,
    pub layers: Vec<Descriptor>,
    /// The ARGs declared in this stage, with their values (None: declared
    /// without one).
    pub args: BTreeMap<String, Option<String>>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// FROM an image (whose ONBUILD triggers then run).
    pub from_image: bool,
}

impl Stage {
    fn config_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.config).unwrap_or_default()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            config: self.config_bytes(),
            layers: self.layers.clone(),
        }
    }

    fn restore(&mut self, s: Snapshot) -> Result<()> {
        self.config = serde_json::from_slice(&s.config)
            .map_err(|e| Error::invalid(format!("build cache: a config: {e}")))?;
        self.layers = s.layers;
        Ok(())
    }

    /// The run config (`config` of the image config), made an object.
    pub fn run_config(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"]
            .as_object_mut()
            .expect("made an object above")
    }

    pub fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A variable as a step's text sees it: ENV first, then ARG.
    pub fn lookup(&self, name: &str) -> Option<String> {
        for e in self.env().iter().rev() {
            if let Some((k, v)) = e.split_once('=') {
                if k == name {
                    return Some(v.to_string());
                }
            }
        }
        self.args.get(name).cloned().flatten()
    }

    /// The chain ids of its layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for d in self.config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let d = d.as_str().unwrap_or_default();
            let c = skiff_image::digest::chain_id(out.last().map(String::as_str), d);
            out.push(c);
        }
        out
    }

    /// The working directory ("/" when none is set).
    pub fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }
}

/// A build under way.
pub struct Builder<'a> {
    pub store: &'a mut Store,
    pub db: crate::db::Db,
    pub o: &'a Options,
    pub file: Containerfile,
    ctx: Context,
    /// Global ARGs (before the first FROM) with their values.
    global_args: BTreeMap<String, Option<String>>,
    /// The stages built, by index; their names.
    done: HashMap<usize, Stage>,
    names: HashMap<String, usize>,
    step: usize,
    total: usize,
    /// Images this build recorded only to run or copy from; removed at
    /// the end.
    pub intermediates: Vec<String>,
    /// Docker's default seccomp profile for RUN containers, when present.
    pub extras: crate::spec::Extras,
    /// The exit code of the RUN that failed the build.
    pub run_exit: Option<i32>,
}

/// Set by SIGINT or SIGTERM: the build stops after the step under way
/// (its container removed, like every other), instead of dying with a
/// container and a mount left behind.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM only set INTERRUPTED from here on. A RUN's command
/// gets ctrl-c too (it is in the terminal's foreground process group) and
/// ends; exec resets the handler in the programs started.
fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = note_interrupt as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A build that failed: why, and the code `skiff build` exits with (a
/// failing RUN's own, as Podman's; else 125, the engine's).
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    pub exit_code: i32,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            exit_code: 125,
        }
    }
}

/// `skiff build`: the image id.
pub fn build(store: &mut Store, o: &Options) -> std::result::Result<String, Failed> {
    catch_interrupts();
    let ctx = open_context(o)?;
    let file =
        parse::parse(&ctx.file_name, &ctx.text).map_err(|e| Error::invalid(e.to_string()))?;
    let tags = o
        .tags
        .iter()
        .map(|t| Reference::parse_local(t).map_err(|e| Error::invalid(format!("-t {t}: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let extras = crate::spec::Extras {
        seccomp: crate::spec::default_seccomp()?,
        ..Default::default()
    };
    let db = crate::db::Db::open(&store.root)?;
    let mut b = Builder {
        store,
        db,
        o,
        file,
        ctx,
        global_args: BTreeMap::new(),
        done: HashMap::new(),
        names: HashMap::new(),
        step: 0,
        total: 0,
        intermediates: vec![],
        extras,
        run_exit: None,
    };
    let r = b.build_all(&tags);
    b.remove_intermediates(r.as_ref().ok().map(String::as_str));
    r.map_err(|error| Failed {
        error,
        exit_code: b.run_exit.unwrap_or(125),
    })
}

/// The context and the Containerfile's text: `-` is a Containerfile on
/// stdin, or a tar of a context.
fn open_context(o: &Options) -> Result<Context> {
    if o.context == "-" {
        let mut input = vec![];
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| Error::io("reading the context from stdin", e))?;
        let is_tar = input.len() > 262 && &input[257..262] == b"ustar";
        let is_gzip = input.starts_with(&[0x1f, 0x8b]);
        if !is_tar && !is_gzip {
            let text = String::from_utf8(input)
                .map_err(|_| Error::invalid("stdin: the Containerfile is not UTF-8"))?;
            return Ok(Context {
                dir: None,
                owned: None,
                ignore: context::Ignore::default(),
                file_name: "-".into(),
                text,
            });
        }
        let dir = std::env::temp_dir().join(format!("skiff-build-context.{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::at(&dir, "making", e))?;
        let mut ctx = Context {
            dir: Some(dir.clone()),
            owned: Some(dir.clone()),
            ignore: context::Ignore::default(),
            file_name: String::new(),
            text: String::new(),
        };
        let reader: Box<dyn Read> = if is_gzip {
            Box::new(flate2::read::GzDecoder::new(&input[..]))
        } else {
            Box::new(&input[..])
        };
        tar::Archive::new(reader)
            .unpack(&dir)
            .map_err(|e| Error::io("unpacking the context from stdin", e))?;
        let (name, text) = containerfile(o, &dir)?;
        ctx.file_name = name;
        ctx.text = text;
        ctx.ignore = context::Ignore::of_context(&dir, None)?;
        return Ok(ctx);
    }
    let dir = PathBuf::from(&o.context);
    if !dir.is_dir() {
        return Err(Error::invalid(format!(
            "context {}: not a directory (give a directory, or - for stdin)",
            dir.display()
        )));
    }
    let (file_name, text) = containerfile(o, &dir)?;
    Ok(Context {
        ignore: context::Ignore::of_context(&dir, o.file.as_deref())?,
        dir: Some(dir),
        owned: None,
        file_name,
        text,
    })
}

/// `-f FILE`, else the context's Containerfile, else its Dockerfile.
fn containerfile(o: &Options, dir: &Path) -> Result<(String, String)> {
    let path = match &o.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .map_err(|e| Error::io("-f -: reading stdin", e))?;
            return Ok(("-".into(), t));
        }
        Some(f) => f.clone(),
        None => ["Containerfile", "Dockerfile"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{}: no Containerfile or Dockerfile in the context (-f names another)",
                    dir.display()
                ))
            })?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::at(&path, "-f: reading", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok((name, text))
}

impl Builder<'_> {
    /// An error naming the step: FILE:LINE: INSTRUCTION: what.
    pub fn err(&self, i: &Instruction, msg: impl std::fmt::Display) -> Error {
        Error::invalid(format!(
            "{}:{}: {}: {msg}",
            self.file.file, i.line, i.keyword
        ))
    }

    pub fn say(&self, text: impl std::fmt::Display) {
        if !self.o.quiet {
            println!("{text}");
        }
    }

    pub fn context_dir(&self) -> Option<&Path> {
        self.ctx.dir.as_deref()
    }

    pub fn ignore(&self) -> &context::Ignore {
        &self.ctx.ignore
    }

    /// Every stage the target needs, built in order; the target's image.
    fn build_all(&mut self, tags: &[Reference]) -> Result<String> {
        let stages = self.split_stages()?;
        let target = self.target_index(&stages)?;
        let needed = self.needed(&stages, target);
        self.total = needed.iter().map(|&s| stages[s].1.len() + 1).sum();
        for &s in &needed {
            let (from, body) = stages[s].clone();
            let stage = self.build_stage(s, &from, &body)?;
            self.done.insert(s, stage);
        }
        let mut last = self
            .done
            .remove(&target)
            .ok_or_else(|| Error::invalid("the target stage was not built (an internal error)"))?;
        self.finish(&mut last, tags)
    }

    /// The global ARGs, then each stage: its FROM and the rest.
    fn split_stages(&mut self) -> Result<Vec<(Instruction, Vec<Instruction>)>> {
        let mut stages: Vec<(Instruction, Vec<Instruction>)> = vec![];
        for i in self.file.instructions.clone() {
            if i.keyword == "FROM" {
                stages.push((i, vec![]));
                continue;
            }
            match stages.last_mut() {
                Some((_, body)) => body.push(i),
                None if i.keyword == "ARG" => {
                    for (k, v) in parse::pairs(&i.rest, self.file.escape, false, None)
                        .map_err(|e| self.err(&i, e))?
                    {
                        let v = self.given_arg(&k).or(platform_arg(&k)).or(v.map(|v| {
                            parse::expand(&v, self.file.escape, &|n| {
                                self.global_args.get(n).cloned().flatten()
                            })
                        }));
                        self.global_args.insert(k, v);
                    }
                }
                None => return Err(self.err(&i, "only ARG may come before the first FROM")),
            }
        }
        for (n, (from, _)) in stages.iter().enumerate() {
            let words =
                parse::words(&from.rest, self.file.escape).map_err(|e| self.err(from, e))?;
            match words.as_slice() {
                [_] => {}
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let name = name.to_ascii_lowercase();
                    if self.names.insert(name.clone(), n).is_some() {
                        return Err(self.err(from, format!("stage name {name:?} is used twice")));
                    }
                }
                _ => return Err(self.err(from, "expected FROM [--platform=P] IMAGE [AS NAME]")),
            }
        }
        Ok(stages)
    }

    fn target_index(&self, stages: &[(Instruction, Vec<Instruction>)]) -> Result<usize> {
        match &self.o.target {
            None => Ok(stages.len() - 1),
            Some(t) => self
                .names
                .get(&t.to_ascii_lowercase())
                .copied()
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "--target {t}: no stage of that name in {}",
                        self.file.file
                    ))
                }),
        }
    }

    /// The stages `target` needs (FROM a stage, COPY --from, RUN
    /// --mount=from=), in order.
    fn needed(&self, stages: &[(Instruction, Vec<Instruction>)], target: usize) -> Vec<usize> {
        let mut need = vec![false; stages.len()];
        let mut todo = vec![target];
        while let Some(s) = todo.pop() {
            if need[s] {
                continue;
            }
            need[s] = true;
            let from_word = parse::words_in(
                &stages[s].0.rest,
                self.file.escape,
                Some(&|n| self.global_args.get(n).cloned().flatten()),
            )
            .ok()
            .and_then(|w| w.first().cloned())
            .unwrap_or_default();
            let mut refs = vec![from_word];
            for i in &stages[s].1 {
                if let Some(f) = i.flag("from") {
                    refs.push(f.to_string());
                }
                if i.keyword == "RUN" {
                    refs.extend(mounts::froms(i));
                }
            }
            for r in refs {
                if let Some(&n) = self.names.get(&r.to_ascii_lowercase()) {
                    if n < s {
                        todo.push(n);
                    }
                } else if let Ok(n) = r.parse::<usize>() {
                    if n < s {
                        todo.push(n);
                    }
                }
            }
        }
        (0..stages.len()).filter(|&s| need[s]).collect()
    }

    /// Docker's warning for a --build-arg no ARG took.
    fn warn_unused_args(&self) {
        let declared: Vec<String> = self
            .file
            .instructions
            .iter()
            .filter(|i| i.keyword == "ARG")
            .filter_map(|i| parse::pairs(&i.rest, self.file.escape, false, None).ok())
            .flatten()
            .map(|(k, _)| k)
            .collect();
        let unused: Vec<&str> = self
            .o
            .build_args
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !declared.iter().any(|d| d == k) && !PREDEFINED_ARGS.contains(k))
            .collect();
        if !unused.is_empty() {
            eprintln!(
                "skiff: warning: --build-arg {} : no ARG of {} takes it",
                unused.join(", "),
                self.file.file
            );
        }
    }

    /// A --build-arg value.
    fn given_arg(&self, name: &str) -> Option<String> {
        self.o
            .build_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn build_stage(
        &mut self,
        index: usize,
        from: &Instruction,
        body: &[Instruction],
    ) -> Result<Stage> {
        let mut stage = self.start_stage(index, from)?;
        self.run_onbuild_triggers(&mut stage, from)?;
        for i in body {
            if interrupted() {
                return Err(Error::Refused(
                    "build interrupted (SIGINT or SIGTERM)".into(),
                ));
            }
            self.step += 1;
            let text = self.step_text(&stage, i);
            self.say(format!("STEP {}/{}: {}", self.step, self.total, text));
            self.run_step(&mut stage, i)?;
        }
        Ok(stage)
    }

    /// The base image's ONBUILD triggers, run right after FROM as Docker
    /// runs them; the image built does not inherit them.
    fn run_onbuild_triggers(&mut self, stage: &mut Stage, from: &Instruction) -> Result<()> {
        let triggers: Vec<String> = stage.config["config"]["OnBuild"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if triggers.is_empty() || !stage.from_image {
            return Ok(());
        }
        stage.run_config().remove("OnBuild");
        for t in triggers {
            let parsed =
                parse::parse(&self.file.file, &format!("FROM scratch\n{t}\n")).map_err(|e| {
                    self.err(
                        from,
                        format!("the base image's ONBUILD {t:?}: {}", e.message),
                    )
                })?;
            for mut i in parsed.instructions.into_iter().skip(1) {
                if matches!(i.keyword.as_str(), "FROM" | "ONBUILD" | "MAINTAINER") {
                    return Err(
                        self.err(from, format!("the base image's ONBUILD {t:?}: not allowed"))
                    );
                }
                i.line = from.line;
                self.say(format!("--> ONBUILD {}", i.text()));
                self.run_step(stage, &i)?;
            }
        }
        Ok(())
    }

    /// FROM: scratch, an earlier stage, or an image (pulled when the
    /// store lacks it, or with --pull).
    fn start_stage(&mut self, index: usize, from: &Instruction) -> Result<Stage> {
        let globals = self.global_args.clone();
        let rest = parse::expand(&from.rest, self.file.escape, &|n| {
            globals.get(n).cloned().flatten()
        });
        let words = parse::words_in(
            &from.rest,
            self.file.escape,
            Some(&|n| globals.get(n).cloned().flatten()),
        )
        .map_err(|e| self.err(from, e))?;
        let base = words.first().cloned().unwrap_or_default();
        let name = (words.len() == 3).then(|| words[2].to_ascii_lowercase());
        self.step += 1;
        self.say(format!("STEP {}/{}: FROM {}", self.step, self.total, rest));
        if let Some(p) = from.flag("platform") {
            let p = parse::expand(p, self.file.escape, &|n| globals.get(n).cloned().flatten());
            if Platform::parse(&p)
                .map(|p| p != Platform::host())
                .unwrap_or(true)
            {
                eprintln!(
                    "skiff: warning: {}:{}: FROM --platform={p}: this machine's platform is built",
                    self.file.file, from.line
                );
            }
        }
        let mut stage = if base.eq_ignore_ascii_case("scratch") {
            Stage {
                name: None,
                config: json!({
                    "architecture": Platform::host().architecture,
                    "os": "linux",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                }),
                layers: vec![],
                args: BTreeMap::new(),
                cmd_set: false,
                from_image: false,
            }
        } else if let Some(s) = self
            .names
            .get(&base.to_ascii_lowercase())
            .filter(|&&n| n < index)
            .and_then(|n| self.done.get(n))
        {
            let mut s = s.clone();
            s.args.clear();
            s.cmd_set = false;
            s.from_image = false;
            s
        } else {
            self.image_stage(from, &base)?
        };
        stage.name = name;
        // Buildah and BuildKit give a base without PATH (scratch, most
        // imported images) Docker's default, so `ENV PATH=/x:$PATH`
        // and RUN find programs, and the image carries it.
        if !stage.env().iter().any(|e| e.starts_with("PATH=")) {
            let mut env = stage.env();
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
            stage.run_config().insert("Env".into(), json!(env));
        }
        if interrupted() {
            return Err(Error::Refused(
                "build interrupted (SIGINT or SIGTERM)".into(),
            ));
        }
        Ok(stage)
    }

    /// A stage from an image of the store (pulled if need be).
    fn image_stage(&mut self, from: &Instruction, base: &str) -> Result<Stage> {
        let img = match (self.o.pull, self.store.find(base)) {
            (Pull::Missing | Pull::Never, Ok(img)) => img,
            (Pull::Never, Err(_)) => {
                return Err(self.err(from, format!("{base}: not in the store, and --pull=never")))
            }
            _ => {
                let r = Reference::parse(base).map_err(|e| self.err(from, e))?;
                let opts = crate::images::registry_options(&self.o.registry, None)?;
                let progress: Box<dyn pull::Progress> = if self.o.quiet {
                    Box::new(pull::Quiet)
                } else {
                    Box::new(crate::progress::Reporter::new())
                };
                let p = pull::pull(self.store, &r, &opts, progress.as_ref())
                    .map_err(|e| self.err(from, format!("pulling {base}: {e}")))?;
                self.store.image(&p.id)?
            }
        };
        let config: Value = serde_json::from_slice(&img.config)
            .map_err(|e| self.err(from, format!("{base}: its config: {e}")))?;
        let m: Manifest = serde_json::from_slice(&img.manifest)
            .map_err(|e| self.err(from, format!("{base}: its manifest: {e}")))?;
        Ok(Stage {
            name: None,
            config,
            layers: m.layers,
            args: BTreeMap::new(),
            cmd_set: false,
            from_image: true,
        })
    }

    /// The step's text after substitution where Docker substitutes (what
    /// progress, history and the cache key see).
    fn step_text(&self, stage: &Stage, i: &Instruction) -> String {
        let substituted = matches!(
            i.keyword.as_str(),
            "ADD"
                | "COPY"
                | "ENV"
                | "EXPOSE"
                | "LABEL"
                | "STOPSIGNAL"
                | "USER"
                | "VOLUME"
                | "WORKDIR"
        );
        match substituted {
            true => parse::expand(&i.text(), self.file.escape, &|n| stage.lookup(n)),
            false => i.text(),
        }
    }

    /// One step: from the cache, else done.
    fn run_step(&mut self, stage: &mut Stage, i: &Instruction) -> Result<()> {
        if i.keyword == "ARG" {
            // Declares; changes nothing in the image.
            return steps::arg(self, stage, i);
        }
        let text = self.step_text(stage, i);
        let mut parts: Vec<String> = vec![text.clone()];
        for h in &i.heredocs {
            parts.push(h.body.clone());
        }
        let copy_plan = match i.keyword.as_str() {
            "COPY" | "ADD" => Some(copy::plan(self, stage, i)?),
            _ => None,
        };
        if let Some(p) = &copy_plan {
            parts.push(p.digest.clone());
        }
        let mount_plan = match i.keyword.as_str() {
            "RUN" => mounts::plan(self, stage, i)?,
            _ => mounts::Plan::default(),
        };
        parts.extend(mount_plan.key_parts.iter().cloned());
        if i.keyword == "RUN" {
            // What RUN sees besides its text: the build args' values.
            for (k, v) in &stage.args {
                parts.push(format!("{k}={}", v.clone().unwrap_or_default()));
            }
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let key = cache::key(&stage.config_bytes(), &refs);
        if !self.o.no_cache {
            if let Some(hit) = cache::get(self.store, &key)? {
                if self.usable(&hit)? {
                    stage.restore(hit)?;
                    self.say(format!("--> Using cache {}", short(&stage.config_bytes())));
                    return Ok(());
                }
            }
        }
        let created = crate::format::rfc3339(crate::format::now(), None);
        match i.keyword.as_str() {
            "RUN" => run::run(self, stage, i, &mount_plan, &created)?,
            "COPY" | "ADD" => copy::copy(
                self,
                stage,
                i,
                copy_plan.expect("planned above"),
                &created,
                &text,
            )?,
            "WORKDIR" => {
                steps::config(self, stage, i, &text, &created)?;
                if copy::workdir(self, stage).map_err(|e| self.err(i, e))? {
                    // The step made a layer: its history entry says so.
                    if let Some(h) = stage.config["history"]
                        .as_array_mut()
                        .and_then(|h| h.last_mut())
                        .and_then(|h| h.as_object_mut())
                    {
                        h.remove("empty_layer");
                    }
                }
            }
            _ => steps::config(self, stage, i, &text, &created)?,
        }
        cache::put(self.store, &key, &stage.snapshot(), &stage.chain_ids())?;
        self.say(format!("--> {}", short(&stage.config_bytes())));
        Ok(())
    }

    /// Whether a cached result's layers are all still in the store.
    fn usable(&self, s: &Snapshot) -> Result<bool> {
        let cfg: Value = match serde_json::from_slice(&s.config) {
            Ok(v) => v,
            Err(_) => return Ok(false),
        };
        let diff_ids = cfg["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if diff_ids.len() != s.layers.len() {
            return Ok(false);
        }
        let mut chain: Option<String> = None;
        for (d, l) in diff_ids.iter().zip(&s.layers) {
            let c = skiff_image::digest::chain_id(chain.as_deref(), d.as_str().unwrap_or_default());
            if !self.store.has_blob(&l.digest)? || !self.store.has_layer(&c)? {
                return Ok(false);
            }
            chain = Some(c);
        }
        Ok(true)
    }

    /// Records a stage's image (to run a container of it, or copy from
    /// it); removed at the end of the build if it was new.
    pub fn materialize(&mut self, config: &[u8], layers: &[Descriptor]) -> Result<String> {
        let id = skiff_image::digest::of(config);
        let existed = self.store.image(&id).is_ok();
        let id = skiff_image::assemble::put_image(self.store, config, layers, &[], None)?;
        if !existed && !self.intermediates.contains(&id) {
            self.intermediates.push(id.clone());
        }
        Ok(id)
    }

    fn remove_intermediates(&mut self, keep: Option<&str>) {
        for id in std::mem::take(&mut self.intermediates) {
            if Some(id.as_str()) == keep {
                continue;
            }
            let held = self
                .store
                .holders(&id)
                .map(|h| !h.is_empty())
                .unwrap_or(true);
            let named = self
                .store
                .image(&id)
                .map(|i| !i.names.is_empty())
                .unwrap_or(true);
            if !held && !named {
                let _ = self.store.remove_image(&id);
            }
        }
    }

    /// --label, --squash-all, then the image recorded under the tags.
    fn finish(&mut self, stage: &mut Stage, tags: &[Reference]) -> Result<String> {
        self.warn_unused_args();
        if !self.o.labels.is_empty() {
            let labels = stage
                .run_config()
                .entry("Labels")
                .or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in &self.o.labels {
                labels[k] = json!(v);
            }
        }
        if self.o.squash_all {
            squash::squash_all(self, stage)?;
        }
        let config = stage.config_bytes();
        let annotations = (!self.o.annotations.is_empty()).then_some(&self.o.annotations);
        let id = skiff_image::assemble::put_image(
            self.store,
            &config,
            &stage.layers,
            tags,
            annotations,
        )?;
        self.intermediates.retain(|i| i != &id);
        // Podman's last lines: COMMIT and the first -t as given, the
        // short id (Buildah's 11 digits), each name in full, then the
        // whole id last (scripts take it with `| tail -1`).
        let hex = id.trim_start_matches("sha256:");
        match self.o.tags.first() {
            Some(t) => self.say(format!("COMMIT {t}")),
            None => self.say("COMMIT"),
        }
        self.say(format!("--> {}", &hex[..11]));
        for t in tags {
            self.say(format!("Successfully tagged {}", t.name()));
        }
        self.say(hex);
        Ok(id)
    }
}

/// 11 hex digits (Buildah's short id) of a config's digest: a step's
/// result, as progress shows it.
fn short(config: &[u8]) -> String {
    skiff_image::digest::of(config)["sha256:".len()..][..11].to_string()
}
