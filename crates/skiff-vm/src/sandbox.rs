//! One sandbox: a VM with skiff-agent as PID 1 and the helpers it needs,
//! launched in order and taken down in reverse, every wait bounded.
//!
//! Launch: state directory -> vsock backend (vhost-device-vsock) ->
//! virtiofsd -> the pod's network mirrored onto taps (network.rs) -> the
//! hypervisor -> the agent's port answers -> the guest given the pod's
//! interfaces and routes. Teardown (`shutdown`, or Drop): DestroySandbox
//! -> the hypervisor exits (else SIGKILL) -> the vsock backend and
//! virtiofsd are stopped (the former does not exit when the VM goes away)
//! -> the pod's links lose our qdiscs -> the state directory is removed.

use std::os::fd::{AsFd, IntoRawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiff_agent_api::agent::Empty;
use skiff_agent_api::agent_ttrpc::AgentClient;
use skiff_agent_api::{ttrpc, AGENT_PORT, READY_PORT, SHARE_TAG};

use crate::error::{log_tail, VmError};
use crate::hypervisor::{Disk, Hypervisor, VmSpec};
use crate::network::PodNetwork;
use crate::vsock;

/// The guest's vsock context id; each VM has its own backend, so all may
/// use the same one.
const GUEST_CID: u32 = 3;
/// Whether process `pid` has a unix socket listening on `path`: its
/// network namespace's /proc/net/unix lists the socket with the
/// listening flag (__SO_ACCEPTCON) once listen has been called.
fn listening(pid: u32, path: &Path) -> bool {
    const ACCEPTING: u32 = 1 << 16;
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) else {
        return false;
    };
    let path = path.as_os_str().as_encoded_bytes();
    table.lines().skip(1).any(|line| {
        // Num RefCount Protocol Flags Type St Inode Path: the path is all
        // that follows the seventh field, and may hold spaces.
        let mut rest = line;
        let mut fields = [""; 7];
        for field in &mut fields {
            let (head, tail) = rest.trim_start().split_once(' ').unwrap_or((rest, ""));
            *field = head;
            rest = tail;
        }
        rest.trim_start().as_bytes() == path
            && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & ACCEPTING != 0)
    })
}

/// The hybrid vsock socket in the state directory.
const VSOCK_SOCKET: &str = "vsock.sock";
/// The pids of the hypervisor and the helpers, one a line.
const PIDS_FILE: &str = "pids";
/// How much of a log an error carries.
const LOG_TAIL: usize = 4096;
/// Connecting to the agent once it said it serves: a round trip through
/// the backend and the guest takes 0.24 ms under TCG; this is for a host
/// under load.
const CONNECT_BOUND: Duration = Duration::from_secs(5);

pub struct SandboxConfig {
    pub id: String,
    /// The sandbox's state directory is `state_root/id`.
    pub state_root: PathBuf,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub vhost_device_vsock: PathBuf,
    pub hypervisor: Box<dyn Hypervisor>,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disks: Vec<Disk>,
    /// virtiofsd: with it, the sandbox shares `<dir>/shared` into the guest
    /// (tag SHARE_TAG), where a pod's containers' rootfs are mounted.
    pub virtiofsd: Option<PathBuf>,
    /// Appended to the kernel command line (e.g. `skiff_bare=1`).
    pub extra_cmdline: String,
    /// Launch to the agent's answer; TCG boots take ~2 s on an idle host
    /// and three times that on a busy one.
    pub boot_bound: Duration,
    /// The pod's network namespace (bound on a file, e.g. the CNI's
    /// /var/run/netns/cni-...): its interfaces become the VM's.
    pub network: Option<PathBuf>,
}

pub struct Sandbox {
    id: String,
    dir: PathBuf,
    console: PathBuf,
    vm: Option<Child>,
    vsock_backend: Option<Child>,
    virtiofsd: Option<Child>,
    vsock_socket: PathBuf,
    /// Where the agent's readiness connection arrives (READY_PORT).
    ready: Option<UnixListener>,
    agent: Option<AgentClient>,
    launched: Instant,
    network: Option<PodNetwork>,
}

impl Sandbox {
    /// Launches the VM and waits until its agent answers (not for a
    /// container: see `wait_for_agent`).
    pub fn launch(config: SandboxConfig) -> Result<Sandbox, VmError> {
        let mut sandbox = Sandbox::start_vm(&config)?;
        sandbox.wait_for_agent(config.boot_bound)?;
        sandbox.configure_network()?;
        Ok(sandbox)
    }

    /// The helpers and the VM, without waiting for the guest: a Sandbox that
    /// cleans up whatever of it exists when dropped.
    pub fn start_vm(config: &SandboxConfig) -> Result<Sandbox, VmError> {
        skiff_check_id(&config.id)?;
        let dir = config.state_root.join(&config.id);
        // The helpers' sockets live in it; sun_path holds 107 bytes.
        let longest = dir.join("vhost-vsock.sock");
        if longest.as_os_str().len() > 107 {
            return Err(VmError::InvalidConfig(format!(
                "state directory {}: too long for the unix sockets in it (sun_path holds 107 bytes)",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&config.state_root)
            .map_err(VmError::path("creating", &config.state_root))?;
        std::fs::create_dir(&dir).map_err(VmError::path("creating the sandbox directory", &dir))?;
        let mut sandbox = Sandbox {
            id: config.id.clone(),
            console: dir.join("console.log"),
            vsock_socket: dir.join(VSOCK_SOCKET),
            dir,
            vm: None,
            vsock_backend: None,
            virtiofsd: None,
            ready: None,
            agent: None,
            launched: Instant::now(),
            network: None,
        };
        let vhost_socket = sandbox.dir.join("vhost-vsock.sock");
        sandbox.vsock_backend = Some(sandbox.start_vsock_backend(config, &vhost_socket)?);
        // The backend hands a guest's connection to host port P to
        // `<uds path>_P`.
        let ready_path = PathBuf::from(format!("{}_{READY_PORT}", sandbox.vsock_socket.display()));
        let ready =
            UnixListener::bind(&ready_path).map_err(VmError::path("listening on", &ready_path))?;
        ready
            .set_nonblocking(true)
            .map_err(VmError::path("listening on", &ready_path))?;
        sandbox.ready = Some(ready);
        let mut shares = Vec::new();
        if let Some(binary) = &config.virtiofsd {
            let socket = sandbox.dir.join("virtiofs.sock");
            sandbox.virtiofsd = Some(sandbox.start_virtiofsd(binary, &socket)?);
            shares.push((SHARE_TAG.to_string(), socket));
        }
        if let Some(netns) = &config.network {
            sandbox.network = PodNetwork::mirror(netns)?;
        }
        let nics = sandbox
            .network
            .as_ref()
            .map(PodNetwork::devices)
            .unwrap_or_default();
        let spec = VmSpec {
            kernel: config.kernel.clone(),
            initramfs: config.initramfs.clone(),
            cmdline: format!(
                "console=ttyS0 panic=-1 quiet loglevel=3 {}",
                config.extra_cmdline
            ),
            cpus: config.cpus,
            memory_mib: config.memory_mib,
            vhost_vsock_socket: vhost_socket,
            disks: config.disks.clone(),
            shares,
            console_log: sandbox.console.clone(),
            nics,
        };
        sandbox.launched = Instant::now();
        let vm = config.hypervisor.launch(&spec);
        if let Some(network) = sandbox.network.as_mut() {
            network.close_taps();
        }
        sandbox.vm = Some(vm?);
        sandbox.record_pids()?;
        Ok(sandbox)
    }

    /// `<dir>/pids`: what `reap_leftovers` kills when the process that
    /// owned this sandbox died without taking it down (a SIGKILLed shim).
    fn record_pids(&self) -> Result<(), VmError> {
        let path = self.dir.join(PIDS_FILE);
        let text: String = self.pids().iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(&path, text).map_err(VmError::path("writing", &path))
    }

    /// vhost-device-vsock, and its vhost-user socket existing: qemu
    /// connects to it at start.
    fn start_vsock_backend(
        &self,
        config: &SandboxConfig,
        vhost_socket: &Path,
    ) -> Result<Child, VmError> {
        let mut cmd = Command::new(&config.vhost_device_vsock);
        cmd.arg("--guest-cid")
            .arg(GUEST_CID.to_string())
            .arg("--socket")
            .arg(vhost_socket)
            .arg("--uds-path")
            .arg(&self.vsock_socket);
        self.start_helper("vhost-device-vsock", cmd, vhost_socket)
    }

    /// virtiofsd serving `<dir>/shared`. No sandbox of its own (the VM is
    /// the boundary, and it must see the rootfs mounts made under the
    /// share after it started, in the shim's mount namespace).
    fn start_virtiofsd(&self, binary: &Path, socket: &Path) -> Result<Child, VmError> {
        let shared = self.dir.join("shared");
        std::fs::create_dir(&shared).map_err(VmError::path("creating", &shared))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--socket-path")
            .arg(socket)
            .arg("--shared-dir")
            .arg(&shared)
            .args(["--sandbox", "none", "--cache", "auto"]);
        self.start_helper("virtiofsd", cmd, socket)
    }

    /// Starts a helper (its stderr to `<dir>/<name>.log`) and waits until
    /// its vhost-user socket listens. The file alone is not enough: bind
    /// makes it before listen, and qemu, finding it in between, would be
    /// refused and end.
    fn start_helper(
        &self,
        name: &'static str,
        mut cmd: Command,
        socket: &Path,
    ) -> Result<Child, VmError> {
        let log = self.dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).map_err(VmError::path("creating", &log))?;
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|source| VmError::Spawn { program, source })?;
        let bound = Duration::from_secs(10);
        let deadline = Instant::now() + bound;
        while !listening(child.id(), socket) {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(VmError::Exited {
                    what: name,
                    waiting_for: "its socket",
                    status: status.to_string(),
                    log: log_tail(&log, LOG_TAIL),
                });
            }
            if Instant::now() > deadline {
                stop(&mut child, Duration::from_secs(2));
                return Err(VmError::Timeout {
                    waiting_for: "socket from a helper",
                    bound,
                    log: log_tail(&log, LOG_TAIL),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(child)
    }

    /// The directory shared into the guest (with virtiofsd), where a
    /// container's rootfs goes at `<shared>/<id>/rootfs`.
    pub fn shared_dir(&self) -> Option<PathBuf> {
        self.virtiofsd.as_ref().map(|_| self.dir.join("shared"))
    }

    /// Waits (while the VM runs) for the agent to say it serves, then
    /// connects to it.
    pub fn wait_for_agent(&mut self, bound: Duration) -> Result<(), VmError> {
        let deadline = Instant::now() + bound;
        let ready = self.ready.take();
        loop {
            if let Some(vm) = self.vm.as_mut() {
                if let Ok(Some(status)) = vm.try_wait() {
                    return Err(VmError::Exited {
                        what: "the VM",
                        waiting_for: "the agent answered",
                        status: status.to_string(),
                        log: log_tail(&self.console, LOG_TAIL),
                    });
                }
            }
            if ready.as_ref().is_none_or(|l| l.accept().is_ok()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(VmError::Timeout {
                    waiting_for: "readiness from the agent",
                    bound,
                    log: log_tail(&self.console, LOG_TAIL),
                });
            }
            // Woken by the call itself; the VM's liveness looked at every
            // 20 ms.
            if let Some(listener) = &ready {
                let mut fds = [nix::poll::PollFd::new(
                    listener.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u16));
            }
        }
        self.agent = Some(connect_agent(&self.dir)?);
        Ok(())
    }

    /// Gives the guest the pod's interfaces and routes (nothing without a
    /// network): after `wait_for_agent`.
    pub fn configure_network(&self) -> Result<(), VmError> {
        let (Some(network), Some(agent)) = (&self.network, &self.agent) else {
            return Ok(());
        };
        let ctx = || ttrpc::context::with_timeout(Duration::from_secs(30).as_nanos() as i64);
        for interface in network.interfaces() {
            agent.update_interface(ctx(), &interface)?;
        }
        agent.update_routes(ctx(), &network.routes_request())?;
        Ok(())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When the hypervisor was started.
    pub fn launched(&self) -> Instant {
        self.launched
    }

    pub fn console_log(&self) -> &Path {
        &self.console
    }

    /// The serial console so far (for error reports).
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    /// The pids of the processes this sandbox started (hypervisor, helpers).
    pub fn pids(&self) -> Vec<u32> {
        [&self.vm, &self.vsock_backend, &self.virtiofsd]
            .into_iter()
            .flatten()
            .map(Child::id)
            .collect()
    }

    /// The agent's client; None before `wait_for_agent` succeeded.
    pub fn agent(&self) -> Option<&AgentClient> {
        self.agent.as_ref()
    }

    /// Opens another connection to a guest vsock port.
    pub fn connect(&self, port: u32) -> std::io::Result<std::os::unix::net::UnixStream> {
        vsock::connect(&self.vsock_socket, port, Duration::from_secs(5))
    }

    /// Takes the sandbox down: asks the agent to power off, then makes sure
    /// of it. Every step bounded; also what Drop does.
    pub fn shutdown(&mut self) {
        if let Some(agent) = self.agent.take() {
            let ctx = ttrpc::context::with_timeout(Duration::from_secs(2).as_nanos() as i64);
            let _ = agent.destroy_sandbox(ctx, &Empty::new());
        }
        if let Some(mut vm) = self.vm.take() {
            if !exited_within(&mut vm, Duration::from_secs(5)) {
                stop(&mut vm, Duration::from_secs(5));
            }
        }
        if let Some(mut backend) = self.vsock_backend.take() {
            stop(&mut backend, Duration::from_secs(5));
        }
        // virtiofsd ends with its VM's connection; stopped in case it did not.
        if let Some(mut virtiofsd) = self.virtiofsd.take() {
            stop(&mut virtiofsd, Duration::from_secs(5));
        }
        if let Some(network) = self.network.take() {
            network.release();
        }
        remove_state_dir(&self.dir);
    }
}

/// A new connection to the agent of a running sandbox whose state
/// directory is `dir`, from another process than its owner (the engine's
/// `exec`, `kill`): the agent serves each connection.
pub fn connect_agent(dir: &Path) -> Result<AgentClient, VmError> {
    let socket = dir.join(VSOCK_SOCKET);
    let stream = vsock::connect(&socket, AGENT_PORT, CONNECT_BOUND).map_err(|e| VmError::Path {
        step: "connecting to the agent through",
        path: socket.clone(),
        source: e,
    })?;
    let client = ttrpc::Client::new(stream.into_raw_fd())?;
    Ok(AgentClient::new(client))
}

/// Takes down what a dead owner left of sandbox `dir`: each process in its
/// pids file that still runs with the directory on its command line (so a
/// reused pid is left alone) is SIGKILLed, then the directory is removed.
pub fn reap_leftovers(dir: &Path) {
    let pids = std::fs::read_to_string(dir.join(PIDS_FILE)).unwrap_or_default();
    let needle = dir.as_os_str().as_encoded_bytes();
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.windows(needle.len()).any(|w| w == needle) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
    remove_state_dir(dir);
}

/// The mount points at or below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points
}

/// Removes a sandbox's directory. A container's rootfs mounted in its share
/// and left there by its owner is unmounted first (lazily), and nothing is
/// removed while any mount remains below: the removal must never reach
/// into a rootfs.
fn remove_state_dir(dir: &Path) {
    for point in mounts_below(dir) {
        let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    let left = mounts_below(dir);
    if !left.is_empty() {
        eprintln!(
            "skiff-vm: not removing {}: still mounted below it: {left:?}",
            dir.display()
        );
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("skiff-vm: removing {}: {e}", dir.display());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn skiff_check_id(id: &str) -> Result<(), VmError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(VmError::InvalidConfig(format!(
            "id: {id:?} is not 1-64 of [A-Za-z0-9_.-] (not starting with '.')"
        )))
    }
}

/// True once `child` has exited (and is reaped), polling up to `bound`.
fn exited_within(child: &mut Child, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Err(_) => return true,
            Ok(None) if Instant::now() > deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// SIGTERM, then SIGKILL if it is still there after `bound`; reaped.
fn stop(child: &mut Child, bound: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
    if !exited_within(child, bound) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn ids_that_would_escape_the_state_directory_are_refused() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a,b"] {
            assert!(skiff_check_id(bad).is_err(), "{bad:?}");
        }
        assert!(skiff_check_id("pod-1_a.b").is_ok());
    }

    /// A bound socket is not listening until listen; a path with a space
    /// is matched whole.
    #[test]
    fn a_socket_counts_once_it_listens() {
        use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag};
        use nix::sys::socket::{SockType, UnixAddr};
        let dir = std::env::temp_dir().join(format!("skiff-vm-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a b.sock");
        let me = std::process::id();
        let checks = || -> Result<(), String> {
            if listening(me, &path) {
                return Err("listening before the socket exists".into());
            }
            let sock = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(|e| e.to_string())?;
            bind(sock.as_raw_fd(), &UnixAddr::new(&path).unwrap()).map_err(|e| e.to_string())?;
            if !path.exists() || listening(me, &path) {
                return Err("bound: the file, not yet listening".into());
            }
            listen(&sock, Backlog::new(1).unwrap()).map_err(|e| e.to_string())?;
            if !listening(me, &path) || listening(me, &dir.join("a")) {
                return Err("listening: this path, and no prefix of it".into());
            }
            Ok(())
        };
        let result = checks();
        let _ = std::fs::remove_dir_all(&dir);
        result.unwrap();
    }
}
