//! The agent API (proto/agent.proto), one method per RPC: check the
//! request against the table, do the work (library calls that clone or
//! spawn go through `call.rs`), record the outcome.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::Pid;
use serde_json::Value;
use skiff_agent_api::agent::{
    ContainerRequest, CreateContainerRequest, Empty, ExecProcessRequest, GuestDetailsResponse,
    GuestProcess, Interface, ListProcessesResponse, ProcessRequest, ProcessStarted,
    ReadStreamRequest, ReadStreamResponse, ResizePtyRequest, SignalProcessRequest,
    StatsContainerResponse, UpdateContainerRequest, UpdateRoutesRequest, WaitProcessResponse,
    WriteStreamRequest,
};
use skiff_agent_api::agent_ttrpc::Agent;
use skiff_agent_api::ttrpc::{self, TtrpcContext};
use skiff_agent_api::{GUEST_SHARE_DIR, SHARE_TAG};
use skiff_runtime::process::console;
use skiff_runtime::signal::SignalNumber;
use skiff_runtime::state::StateRoot;

use crate::call::{self, Call};
use crate::error::AgentError;
use crate::guest;
use crate::reaper::Reaper;

type Result<T> = std::result::Result<T, AgentError>;

/// The agent's own state: bundles, runtime state, call answers.
const STATE_DIR: &str = "/run/skiff-agent";
/// The most one ReadStdout/ReadStderr returns.
const READ_MAX: usize = 1 << 20;

struct Proc {
    pid: i32,
    stdin: Option<File>,
    stdout: Arc<File>,
    stderr: Arc<File>,
    /// With a terminal: the pty master (stdin and stdout are copies of it).
    master: Option<OwnedFd>,
    /// The container's OOM kills when the process started.
    oom_kills_before: u64,
}

struct Container {
    bundle: PathBuf,
    procs: HashMap<String, Proc>,
    /// No poststart hooks: the library's start only releases init from its
    /// exec fifo and spawns nothing, so it runs here, without a copy.
    start_here: bool,
}

pub struct Service {
    reaper: Arc<Reaper>,
    state: PathBuf,
    /// In a guest: power off at DestroySandbox (outside one, exit).
    in_guest: bool,
    containers: Mutex<HashMap<String, Container>>,
    /// Held while the share is looked up and mounted.
    share_lock: Mutex<()>,
}

/// How a new process's stdio is made: three pipes, or (process.terminal)
/// a pty whose master the library sends to a console socket of ours.
enum StdioPlan {
    Pipes {
        stdin: File,
        stdout: File,
        stderr: File,
        theirs: [OwnedFd; 3],
    },
    Terminal {
        socket: PathBuf,
        listener: UnixListener,
    },
}

impl StdioPlan {
    fn new(terminal: bool, state: &Path) -> Result<StdioPlan> {
        if terminal {
            static CONSOLES: AtomicU64 = AtomicU64::new(0);
            let dir = state.join("consoles");
            std::fs::create_dir_all(&dir).map_err(AgentError::path("creating", &dir))?;
            let socket = dir.join(format!("{}.sock", CONSOLES.fetch_add(1, Ordering::Relaxed)));
            let _ = std::fs::remove_file(&socket);
            let listener =
                UnixListener::bind(&socket).map_err(AgentError::path("listening on", &socket))?;
            return Ok(StdioPlan::Terminal { socket, listener });
        }
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| AgentError::Setup("creating a stdio pipe", e.into()))
        };
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok(StdioPlan::Pipes {
            stdin: File::from(in_w),
            stdout: File::from(out_r),
            stderr: File::from(err_r),
            theirs: [in_r, out_w, err_w],
        })
    }

    /// Runs the call that starts the process (given the console socket,
    /// if any) and returns the process with our ends of its stdio.
    fn run(
        self,
        start: impl FnOnce(Option<&Path>, Option<[OwnedFd; 3]>) -> Result<i32>,
    ) -> Result<Proc> {
        match self {
            StdioPlan::Pipes {
                stdin,
                stdout,
                stderr,
                theirs,
            } => Ok(Proc {
                pid: start(None, Some(theirs))?,
                stdin: Some(stdin),
                stdout: Arc::new(stdout),
                stderr: Arc::new(stderr),
                master: None,
                oom_kills_before: 0,
            }),
            StdioPlan::Terminal { socket, listener } => {
                let started = start(Some(&socket), None);
                let _ = std::fs::remove_file(&socket);
                let pid = started?;
                // The library connected and sent the master during the
                // call: the connection waits in the backlog.
                let master = listener
                    .set_nonblocking(true)
                    .and_then(|()| listener.accept())
                    .and_then(|(conn, _)| {
                        conn.set_nonblocking(false)?;
                        console::receive_master(&conn)
                    })
                    .map_err(|e| AgentError::Setup("receiving the pty master", e));
                let master = match master {
                    Ok(m) => m,
                    Err(e) => {
                        let _ =
                            nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                        return Err(e);
                    }
                };
                let copy = |what| {
                    master
                        .try_clone()
                        .map(File::from)
                        .map_err(|e| AgentError::Setup(what, e))
                };
                let null =
                    File::open("/dev/null").map_err(AgentError::path("opening", "/dev/null"))?;
                Ok(Proc {
                    pid,
                    stdin: Some(copy("duplicating the pty master")?),
                    stdout: Arc::new(copy("duplicating the pty master")?),
                    // A terminal has one output stream: stderr ends at once.
                    stderr: Arc::new(null),
                    master: Some(master),
                    oom_kills_before: 0,
                })
            }
        }
    }
}

impl Service {
    pub fn new(reaper: Arc<Reaper>, in_guest: bool) -> Service {
        let state = std::env::var_os("SKIFF_AGENT_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(STATE_DIR));
        Service {
            reaper,
            state,
            in_guest,
            containers: Mutex::new(HashMap::new()),
            share_lock: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.state.join("bundles").join(id)
    }

    fn create(&self, req: CreateContainerRequest) -> Result<i32> {
        let id = req.container_id.as_str();
        skiff_runtime::state::check_id(id)
            .map_err(|e| AgentError::InvalidArgument(format!("container_id: {e}")))?;
        if self.lock().contains_key(id) {
            return Err(AgentError::AlreadyExists(format!("container {id} exists")));
        }
        guest::trace(format_args!("CreateContainer {id}"));
        // The cgroup controllers (guest.rs).
        guest::wait_for_background();
        let mut config = bundle_config(&req.oci_config)?;
        for (key, value) in take_network_sysctls(&mut config)? {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, &value).map_err(AgentError::path("writing", &path))?;
        }
        let bundle = self.bundle_dir(id);
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(AgentError::path("creating", &rootfs))?;
        let made = self.mount_rootfs(&req, &rootfs).and_then(|()| {
            if !req.rootfs_share_path.is_empty() {
                let shared = self.share()?.join(&req.rootfs_share_path);
                config["root"]["path"] = Value::from(shared.display().to_string());
            }
            let path = bundle.join("config.json");
            std::fs::write(&path, config.to_string())
                .map_err(AgentError::path("writing", &path))?;
            let terminal = config["process"]["terminal"].as_bool() == Some(true);
            StdioPlan::new(terminal, &self.state)?.run(|console, stdio| {
                let call = Call::Create {
                    id,
                    bundle: &bundle,
                    console,
                };
                call::run(&self.reaper, &self.state, call, stdio)
            })
        });
        let init = match made {
            Ok(m) => m,
            Err(e) => {
                remove_bundle(&bundle);
                return Err(e);
            }
        };
        let pid = init.pid;
        let poststart = &config["hooks"]["poststart"];
        let container = Container {
            bundle,
            procs: HashMap::from([(String::new(), init)]),
            start_here: poststart.as_array().is_none_or(|h| h.is_empty()),
        };
        self.lock().insert(id.to_string(), container);
        Ok(pid)
    }

    /// The sandbox's virtio-fs share, mounted on first use.
    fn share(&self) -> Result<PathBuf> {
        let _once = self.share_lock.lock().unwrap_or_else(|p| p.into_inner());
        let at = PathBuf::from(GUEST_SHARE_DIR);
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&at.display().to_string()));
        if !mounted {
            guest::load_driver(guest::Device::Share)?;
            std::fs::create_dir_all(&at).map_err(AgentError::path("creating", &at))?;
            mount(
                Some(SHARE_TAG),
                &at,
                Some("virtiofs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| AgentError::path("mounting the virtio-fs share on", &at)(e.into()))?;
        }
        Ok(at)
    }

    /// The disk named by its serial, mounted on the bundle's rootfs; with
    /// no serial (a rootfs in the share, or an agent tested outside a VM)
    /// the rootfs is left as it is.
    fn mount_rootfs(&self, req: &CreateContainerRequest, rootfs: &Path) -> Result<()> {
        let serial = req.rootfs_disk_serial.as_str();
        if serial.is_empty() {
            return Ok(());
        }
        let disk = guest::disk_by_serial(serial)?;
        mount(
            Some(&disk),
            rootfs,
            Some("ext4"),
            MsFlags::MS_NOATIME,
            None::<&str>,
        )
        .map_err(|e| AgentError::path("mounting the rootfs disk on", rootfs)(e.into()))
    }

    fn start(&self, req: ContainerRequest) -> Result<()> {
        let id = req.container_id.as_str();
        self.pid_of(id, "")?;
        let start_here = self.lock().get(id).is_some_and(|c| c.start_here);
        if start_here {
            let root = StateRoot::new(call::runtime_root(&self.state));
            return skiff_runtime::container::start(&root, id)
                .map_err(|e| AgentError::Runtime(e.to_string()));
        }
        call::run(&self.reaper, &self.state, Call::Start { id }, None)?;
        Ok(())
    }

    fn exec(&self, req: ExecProcessRequest) -> Result<i32> {
        let (id, exec_id) = (req.container_id.as_str(), req.exec_id.as_str());
        if exec_id.is_empty() {
            return Err(AgentError::InvalidArgument("exec_id: empty".into()));
        }
        match self.lock().get(id) {
            None => return Err(AgentError::NotFound(format!("container {id}"))),
            Some(c) if c.procs.contains_key(exec_id) => {
                return Err(AgentError::AlreadyExists(format!("exec {exec_id} in {id}")))
            }
            Some(_) => {}
        }
        let process: Value = serde_json::from_slice(&req.process)
            .map_err(|e| AgentError::InvalidArgument(format!("process: {e}")))?;
        let terminal = process["terminal"].as_bool() == Some(true);
        let oom_kills_before = self.oom_kills(id);
        let mut proc = StdioPlan::new(terminal, &self.state)?.run(|console, stdio| {
            let call = Call::Exec {
                id,
                process: &process,
                console,
            };
            call::run(&self.reaper, &self.state, call, stdio)
        })?;
        proc.oom_kills_before = oom_kills_before;
        let pid = proc.pid;
        match self.lock().get_mut(id) {
            Some(c) => {
                c.procs.insert(exec_id.to_string(), proc);
                Ok(pid)
            }
            None => {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                Err(AgentError::NotFound(format!(
                    "container {id} (removed meanwhile)"
                )))
            }
        }
    }

    /// The OOM kills counted in the container's memory cgroup (cgroup v2's
    /// memory.events), 0 when there is none to read.
    fn oom_kills(&self, id: &str) -> u64 {
        let root = StateRoot::new(call::runtime_root(&self.state));
        let Some(group) = root
            .load(id)
            .ok()
            .and_then(|r| r.cgroup)
            .and_then(|c| c.v2.or(Some(c.procs_dir)))
        else {
            return 0;
        };
        std::fs::read_to_string(group.join("memory.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits for the process's exit: (status, whether the OOM killer ended it).
    fn wait(&self, req: &ProcessRequest) -> Result<(i32, bool)> {
        let (pid, before) = {
            let containers = self.lock();
            let p = containers
                .get(&req.container_id)
                .and_then(|c| c.procs.get(&req.exec_id))
                .ok_or_else(|| {
                    AgentError::NotFound(format!("exec {:?} in {}", req.exec_id, req.container_id))
                })?;
            (p.pid, p.oom_kills_before)
        };
        let status = self.reaper.wait(pid, None).unwrap_or(-1);
        let oom = status == 128 + libc::SIGKILL && self.oom_kills(&req.container_id) > before;
        Ok((status, oom))
    }

    fn pid_of(&self, id: &str, exec_id: &str) -> Result<i32> {
        let containers = self.lock();
        let c = containers
            .get(id)
            .ok_or_else(|| AgentError::NotFound(format!("container {id}")))?;
        c.procs
            .get(exec_id)
            .map(|p| p.pid)
            .ok_or_else(|| AgentError::NotFound(format!("exec {exec_id} in {id}")))
    }

    fn signal(&self, req: SignalProcessRequest) -> Result<()> {
        let (id, exec_id) = (req.container_id.as_str(), req.exec_id.as_str());
        let pid = self.pid_of(id, exec_id)?;
        let sig = SignalNumber::new(req.signal as i32)
            .ok_or_else(|| AgentError::InvalidArgument(format!("signal: {}", req.signal)))?;
        // As runc's shim: signalling a process that has ended is NotFound
        // (containerd takes that for "already stopped").
        if self
            .reaper
            .wait(pid, Some(std::time::Duration::ZERO))
            .is_some()
        {
            return Err(AgentError::NotFound(format!(
                "process {exec_id:?} of {id}: already finished"
            )));
        }
        if exec_id.is_empty() {
            let root = StateRoot::new(call::runtime_root(&self.state));
            return skiff_runtime::container::kill(&root, id, sig, false)
                .map_err(|e| AgentError::Runtime(e.to_string()));
        }
        skiff_runtime::sys::kill(Pid::from_raw(pid), sig)
            .map_err(|e| AgentError::Runtime(format!("signalling pid {pid}: {e}")))
    }

    fn read_stream(&self, req: &ReadStreamRequest, stderr: bool) -> Result<Vec<u8>> {
        let stream = {
            let containers = self.lock();
            let p = containers
                .get(&req.container_id)
                .and_then(|c| c.procs.get(&req.exec_id))
                .ok_or_else(|| {
                    AgentError::NotFound(format!("exec {:?} in {}", req.exec_id, req.container_id))
                })?;
            Arc::clone(if stderr { &p.stderr } else { &p.stdout })
        };
        let mut buf = vec![0u8; (req.len as usize).clamp(1, READ_MAX)];
        // Outside the lock: this blocks until the process writes or ends.
        let n = loop {
            match (&*stream).read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A pty master reads EIO once the terminal's last user is gone.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break 0,
                r => break r.map_err(|e| AgentError::Setup("reading the process's output", e))?,
            }
        };
        buf.truncate(n);
        Ok(buf)
    }

    fn write_stdin(&self, req: &WriteStreamRequest) -> Result<()> {
        let mut containers = self.lock();
        let p = containers
            .get_mut(&req.container_id)
            .and_then(|c| c.procs.get_mut(&req.exec_id))
            .ok_or_else(|| AgentError::NotFound(format!("exec {:?}", req.exec_id)))?;
        let stdin = p
            .stdin
            .as_mut()
            .ok_or_else(|| AgentError::InvalidArgument("stdin: closed".into()))?;
        stdin
            .write_all(&req.data)
            .map_err(|e| AgentError::Setup("writing the process's stdin", e))
    }

    fn close_stdin(&self, req: &ProcessRequest) -> Result<()> {
        let mut containers = self.lock();
        let p = containers
            .get_mut(&req.container_id)
            .and_then(|c| c.procs.get_mut(&req.exec_id))
            .ok_or_else(|| AgentError::NotFound(format!("exec {:?}", req.exec_id)))?;
        p.stdin = None;
        Ok(())
    }

    /// Pause, resume and stats only touch the container's cgroup files:
    /// the library's calls run here, no copy needed.
    fn control(&self, id: &str, op: &str) -> Result<Option<Value>> {
        self.pid_of(id, "")?;
        let root = StateRoot::new(call::runtime_root(&self.state));
        let runtime =
            |e: skiff_runtime::container::ContainerError| AgentError::Runtime(e.to_string());
        match op {
            "pause" => skiff_runtime::container::pause(&root, id).map_err(runtime)?,
            "resume" => skiff_runtime::container::resume(&root, id).map_err(runtime)?,
            _ => {
                let (stats, _) = skiff_runtime::container::stats(&root, id).map_err(runtime)?;
                return Ok(Some(stats));
            }
        }
        Ok(None)
    }

    /// The processes of the container's cgroup, by pid.
    fn processes(&self, id: &str) -> Result<Vec<GuestProcess>> {
        self.pid_of(id, "")?;
        let root = StateRoot::new(call::runtime_root(&self.state));
        let pids = skiff_runtime::container::pids(&root, id)
            .map_err(|e| AgentError::Runtime(e.to_string()))?;
        let (uptime, ticks) = (crate::procs::uptime(), crate::procs::ticks_per_second());
        let mut found: Vec<GuestProcess> = pids
            .into_iter()
            .filter_map(|p| crate::procs::read(p.as_raw(), uptime, ticks))
            .collect();
        found.sort_by_key(|p| p.pid);
        Ok(found)
    }

    /// New limits on the container's cgroup (cgroupfs in the guest: no
    /// helper process, so the library's call runs here).
    fn update(&self, req: &UpdateContainerRequest) -> Result<()> {
        let id = req.container_id.as_str();
        self.pid_of(id, "")?;
        let resources = serde_json::from_slice(&req.resources)
            .map_err(|e| AgentError::InvalidArgument(format!("resources: {e}")))?;
        let root = StateRoot::new(call::runtime_root(&self.state));
        skiff_runtime::container::update(&root, id, &resources)
            .map_err(|e| AgentError::Runtime(e.to_string()))
    }

    fn resize_pty(&self, req: &ResizePtyRequest) -> Result<()> {
        let containers = self.lock();
        let p = containers
            .get(&req.container_id)
            .and_then(|c| c.procs.get(&req.exec_id))
            .ok_or_else(|| AgentError::NotFound(format!("exec {:?}", req.exec_id)))?;
        let master = p.master.as_ref().ok_or_else(|| {
            AgentError::InvalidArgument(format!("exec {:?}: no terminal", req.exec_id))
        })?;
        skiff_runtime::sys::set_window_size(master.as_fd(), req.rows as u16, req.cols as u16)
            .map_err(|e| AgentError::Setup("resizing the terminal", e))
    }

    fn remove(&self, req: ContainerRequest) -> Result<()> {
        let id = req.container_id.as_str();
        let Some(container) = self.lock().remove(id) else {
            return Err(AgentError::NotFound(format!("container {id}")));
        };
        let deleted = call::run(&self.reaper, &self.state, Call::Delete { id }, None);
        for p in container.procs.values() {
            self.reaper.forget(p.pid);
        }
        remove_bundle(&container.bundle);
        deleted.map(|_| ())
    }
}

/// The config as the bundle gets it: its root is the mounted disk.
fn bundle_config(raw: &[u8]) -> Result<Value> {
    let mut config: Value = serde_json::from_slice(raw)
        .map_err(|e| AgentError::InvalidArgument(format!("oci_config: {e}")))?;
    if !config.is_object() {
        return Err(AgentError::InvalidArgument(
            "oci_config: not an object".into(),
        ));
    }
    config["root"]["path"] = Value::from("rootfs");
    share_the_vms_network(&mut config);
    Ok(config)
}

/// The VM is the pod, and its network is the pod's (as in kata's guest):
/// every container is in the guest's network namespace, whether its config
/// asks for a new one or names one to join (a path on the host, as the CRI
/// gives, means nothing in the guest). A new one per container would also
/// cost ~20 ms of the start under TCG.
fn share_the_vms_network(config: &mut Value) {
    if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
        namespaces.retain(|ns| ns["type"] != "network");
    }
}

/// The config's `net.*` sysctls, taken out: they are the pod's network's,
/// which is the guest's (the container has no network namespace of its
/// own here, and the library refuses them without one), so the agent sets
/// them in the guest. containerd 2.x's CRI gives the sandbox
/// net.ipv4.ip_unprivileged_port_start and ping_group_range.
fn take_network_sysctls(config: &mut Value) -> Result<Vec<(String, String)>> {
    let Some(sysctl) = config["linux"]["sysctl"].as_object_mut() else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = sysctl
        .keys()
        .filter(|k| k.starts_with("net."))
        .cloned()
        .collect();
    let mut taken = Vec::new();
    for key in keys {
        let ok = key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        let value = sysctl
            .remove(&key)
            .and_then(|v| v.as_str().map(str::to_string));
        match (ok, value) {
            (true, Some(value)) => taken.push((key, value)),
            _ => {
                return Err(AgentError::InvalidArgument(format!(
                    "linux.sysctl.{key}: not a sysctl name with a string value"
                )))
            }
        }
    }
    Ok(taken)
}

/// Unmounts the rootfs (if mounted) and removes the bundle directory.
fn remove_bundle(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    let _ = umount2(&rootfs, MntFlags::MNT_DETACH);
    if let Err(e) = std::fs::remove_dir_all(bundle) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("skiff-agent: removing {}: {e}", bundle.display());
        }
    }
}

impl Agent for Service {
    fn create_container(
        &self,
        _: &TtrpcContext,
        req: CreateContainerRequest,
    ) -> ttrpc::Result<ProcessStarted> {
        let pid = self.create(req)?;
        Ok(ProcessStarted {
            pid,
            ..Default::default()
        })
    }

    fn start_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.start(req)?;
        Ok(Empty::new())
    }

    fn exec_process(
        &self,
        _: &TtrpcContext,
        req: ExecProcessRequest,
    ) -> ttrpc::Result<ProcessStarted> {
        let pid = self.exec(req)?;
        Ok(ProcessStarted {
            pid,
            ..Default::default()
        })
    }

    fn wait_process(
        &self,
        _: &TtrpcContext,
        req: ProcessRequest,
    ) -> ttrpc::Result<WaitProcessResponse> {
        let (status, oom_killed) = self.wait(&req)?;
        Ok(WaitProcessResponse {
            status,
            oom_killed,
            ..Default::default()
        })
    }

    fn signal_process(&self, _: &TtrpcContext, req: SignalProcessRequest) -> ttrpc::Result<Empty> {
        self.signal(req)?;
        Ok(Empty::new())
    }

    fn read_stdout(
        &self,
        _: &TtrpcContext,
        req: ReadStreamRequest,
    ) -> ttrpc::Result<ReadStreamResponse> {
        let data = self.read_stream(&req, false)?;
        Ok(ReadStreamResponse {
            data,
            ..Default::default()
        })
    }

    fn read_stderr(
        &self,
        _: &TtrpcContext,
        req: ReadStreamRequest,
    ) -> ttrpc::Result<ReadStreamResponse> {
        let data = self.read_stream(&req, true)?;
        Ok(ReadStreamResponse {
            data,
            ..Default::default()
        })
    }

    fn write_stdin(&self, _: &TtrpcContext, req: WriteStreamRequest) -> ttrpc::Result<Empty> {
        self.write_stdin(&req)?;
        Ok(Empty::new())
    }

    fn close_stdin(&self, _: &TtrpcContext, req: ProcessRequest) -> ttrpc::Result<Empty> {
        self.close_stdin(&req)?;
        Ok(Empty::new())
    }

    fn pause_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.control(&req.container_id, "pause")?;
        Ok(Empty::new())
    }

    fn resume_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.control(&req.container_id, "resume")?;
        Ok(Empty::new())
    }

    fn update_container(
        &self,
        _: &TtrpcContext,
        req: UpdateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        self.update(&req)?;
        Ok(Empty::new())
    }

    fn stats_container(
        &self,
        _: &TtrpcContext,
        req: ContainerRequest,
    ) -> ttrpc::Result<StatsContainerResponse> {
        let stats = self
            .control(&req.container_id, "stats")?
            .unwrap_or_default();
        Ok(StatsContainerResponse {
            stats_json: stats.to_string().into_bytes(),
            ..Default::default()
        })
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        self.resize_pty(&req)?;
        Ok(Empty::new())
    }

    fn remove_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.remove(req)?;
        Ok(Empty::new())
    }

    fn list_processes(
        &self,
        _: &TtrpcContext,
        req: ContainerRequest,
    ) -> ttrpc::Result<ListProcessesResponse> {
        Ok(ListProcessesResponse {
            processes: self.processes(&req.container_id)?,
            ..Default::default()
        })
    }

    fn update_interface(&self, _: &TtrpcContext, req: Interface) -> ttrpc::Result<Empty> {
        crate::network::update_interface(&req)?;
        Ok(Empty::new())
    }

    fn update_routes(&self, _: &TtrpcContext, req: UpdateRoutesRequest) -> ttrpc::Result<Empty> {
        crate::network::update_routes(&req)?;
        Ok(Empty::new())
    }

    fn guest_details(&self, _: &TtrpcContext, _: Empty) -> ttrpc::Result<GuestDetailsResponse> {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(GuestDetailsResponse {
            kernel_release: release,
            ..Default::default()
        })
    }

    fn destroy_sandbox(&self, _: &TtrpcContext, _: Empty) -> ttrpc::Result<Empty> {
        let in_guest = self.in_guest;
        // After the answer has gone out: the host waits for it, then for
        // the hypervisor to exit.
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            if in_guest {
                guest::power_off();
            }
            std::process::exit(0);
        });
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_gets_the_disk_as_root_and_the_vms_network() {
        let raw = br#"{"root": {"path": "/host/rootfs"}, "process": {"args": ["sh"]},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"},
                                     {"type": "network", "path": "/proc/1/ns/net"}]}}"#;
        let config = bundle_config(raw).unwrap();
        assert_eq!(config["root"]["path"], "rootfs");
        let kinds: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["pid"]);
    }

    #[test]
    fn network_sysctls_are_the_guests() {
        let mut config = serde_json::json!({"linux": {"sysctl": {
            "net.ipv4.ip_unprivileged_port_start": "0",
            "kernel.shm_rmid_forced": "1",
        }}});
        let taken = take_network_sysctls(&mut config).unwrap();
        assert_eq!(
            taken,
            [(
                "net.ipv4.ip_unprivileged_port_start".to_string(),
                "0".to_string()
            )]
        );
        assert_eq!(
            config["linux"]["sysctl"],
            serde_json::json!({"kernel.shm_rmid_forced": "1"})
        );
        let mut bad = serde_json::json!({"linux": {"sysctl": {"net../../x": "1"}}});
        let e = take_network_sysctls(&mut bad).unwrap_err().to_string();
        assert!(e.contains("linux.sysctl.net"), "{e}");
    }

    #[test]
    fn bad_configs_are_refused_naming_the_field() {
        let e = bundle_config(b"[1]").unwrap_err().to_string();
        assert!(e.contains("oci_config"), "{e}");
        assert!(bundle_config(b"not json").is_err());
    }
}
