//! `--isolation vm` (docs/vm.md): the container runs in a VM of its own,
//! made by skiff-agent inside it, through the VM tier's host side
//! (crates/skiff-vm, which the containerd shim uses too).
//!
//! The container's monitor owns the VM: per run it boots the sandbox
//! (sized from the container's limits), binds the container's rootfs and
//! host bind mounts (its /etc files, volumes) into the sandbox's virtio-fs
//! share, asks the agent to create and start it, copies its output into the
//! log and waits; then it removes the container and takes the VM down.
//! Other commands (`exec`, `kill`, `stop`, `pause`) open their own
//! connection to the agent through the sandbox's vsock socket, found by the
//! container's id.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_image::{Error, Result};
use skiff_vm::agent;
use skiff_vm::stdio::{call_context, copy_stdin, Output};
use skiff_vm::{AgentClient, GuestImage, GuestSize, Qemu, Sandbox, SandboxConfig};

use crate::db::{Ctr, Db};
use crate::stdio::Ran;

/// Where the engine's sandboxes live: short, so that the helpers' socket
/// paths fit sun_path.
const STATE_ROOT: &str = "/run/skiff-vm/engine";

/// A container's sandbox directory (its id's first 16 digits: the
/// container ids are random).
pub fn sandbox_dir(id: &str) -> PathBuf {
    PathBuf::from(STATE_ROOT).join(sandbox_name(id))
}

fn sandbox_name(id: &str) -> &str {
    &id[..id.len().min(16)]
}

/// The flags `run --isolation vm` cannot honour yet, refused naming the
/// flag (none is dropped silently). Checked before anything is made.
pub fn refuse_unsupported(a: &crate::cli::RunArgs) -> Result<()> {
    let refuse = |flag: &str, why: &str| {
        Err(Error::invalid(format!(
            "{flag} with --isolation vm: {why} (docs/vm.md)"
        )))
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return refuse(
            "--isolation vm",
            "needs root (the rootfs is bound into the VM's share)",
        );
    }
    if let Some(n) = a.network.as_deref() {
        refuse_network(n)?;
    }
    let checks: [(bool, &str, &str); 13] = [
        (
            a.userns.is_some() || !a.uidmap.is_empty() || !a.gidmap.is_empty(),
            "--userns/--uidmap/--gidmap",
            "the VM is the container's boundary",
        ),
        (
            !a.secret.is_empty(),
            "--secret",
            "not carried into the VM's container yet",
        ),
        (
            a.cgroup_parent.is_some(),
            "--cgroup-parent",
            "the container's group is the guest's",
        ),
        (
            [&a.pid, &a.ipc, &a.uts]
                .iter()
                .any(|m| m.as_deref() == Some("host")),
            "--pid/--ipc/--uts host",
            "the VM has no host namespaces to share",
        ),
        (
            !a.sysctl.is_empty(),
            "--sysctl",
            "not carried into the VM's container yet",
        ),
        (
            a.shm_size.is_some(),
            "--shm-size",
            "not carried into the VM's container yet",
        ),
        (
            a.privileged,
            "--privileged",
            "the host's devices are not in the VM",
        ),
        (
            !a.device.is_empty(),
            "--device",
            "the host's devices are not in the VM",
        ),
        (
            a.runtime.is_some(),
            "--runtime",
            "the agent in the VM is the runtime",
        ),
        (
            a.limits.cpuset_cpus.is_some(),
            "--cpuset-cpus",
            "the VM's CPUs are not the host's; use --cpus",
        ),
        (
            a.limits.cpuset_mems.is_some(),
            "--cpuset-mems",
            "the VM's memory nodes are not the host's; use --memory",
        ),
        (
            !a.device_cgroup_rule.is_empty()
                || !a.device_read_bps.is_empty()
                || !a.device_write_bps.is_empty()
                || !a.device_read_iops.is_empty()
                || !a.device_write_iops.is_empty()
                || !a.blkio_weight_device.is_empty(),
            "--device-cgroup-rule/--device-*-bps/--device-*-iops/--blkio-weight-device",
            "the host's devices are not in the VM",
        ),
        (
            a.pidfile.is_some(),
            "--pidfile",
            "the container's processes are the guest's, not the host's",
        ),
    ];
    for (given, flag, why) in checks {
        if given {
            return refuse(flag, why);
        }
    }
    Ok(())
}

/// `pod create --isolation vm`: what a VM pod cannot have yet, refused
/// naming the flag.
pub fn refuse_for_pod(network: Option<&str>) -> Result<()> {
    if let Some(n) = network {
        refuse_network(n)?;
    }
    Ok(())
}

/// Where a VM container's init's pid in the guest is kept (the row's pid
/// is 0: there is none on the host).
const GUEST_PID_FILE: &str = "guest-pid";

fn record_guest_pid(dir: &std::path::Path, pid: i32) -> Result<()> {
    let path = dir.join(GUEST_PID_FILE);
    std::fs::write(&path, pid.to_string()).map_err(|e| Error::at(&path, "writing", e))
}

/// The guest pid of VM container `dir`'s running init.
pub fn guest_pid(dir: &std::path::Path) -> Result<i32> {
    let path = dir.join(GUEST_PID_FILE);
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| Error::invalid(format!("{}: no guest pid recorded", path.display())))
}

/// The networks a VM cannot be on: the host's own (the guest has a
/// kernel of its own, which cannot share the host's stack) and another
/// container's (its namespace's traffic would be taken from it). A
/// bridge or a named network is a namespace of the VM's own, which the
/// VM mirrors (skiff-vm's network.rs).
fn refuse_network(network: &str) -> Result<()> {
    if network == "host" || network.starts_with("container:") || network.starts_with("ns:") {
        return Err(Error::invalid(format!(
            "--network {network} with --isolation vm: the VM's network is a namespace of its own (none, bridge or a network's name; docs/vm.md)"
        )));
    }
    Ok(())
}

/// One run of a VM container: boot (or, for a VM pod's member, attach to
/// the pod's VM), share, create, start, copy, wait, then the container
/// removed and a VM of its own taken down (also when a step failed).
pub(crate) fn run_once(
    db: &Db,
    id: &str,
    pod: Option<&str>,
    io: crate::stdio::RunIo,
    log: &crate::stdio::SharedLog,
    hub: &crate::attach::Hub,
) -> Result<Ran> {
    let dir = db.dir(id);
    crate::db::mark_starting(db, id, std::process::id() as i64)?;
    let config_path = dir.join("config.json");
    let mut spec: Value = std::fs::read(&config_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Error::invalid(format!("{}: unreadable", config_path.display())))?;

    // The guest's hierarchy is cgroup v2 whatever the host's: the
    // container sees its own cgroup there, as on a v2 host.
    if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
        if !list.iter().any(|n| n["type"] == "cgroup") {
            list.push(json!({"type": "cgroup"}));
        }
    }

    // 1. The VM: the pod's (its infra's, running), or one of its own
    // sized from the container's limits.
    let vm = match pod {
        Some(infra) => Vm::attach(infra),
        None => Vm::boot(&spec, id),
    };
    let mut vm = match vm {
        Ok(vm) => vm,
        Err(msg) => return Ok(Ran::NotStarted(msg)),
    };
    let shared = vm.shared.clone();
    skiff_image::trace::mark("vm: the agent answers");

    // 2. The rootfs and the host's bind mounts where the guest sees them.
    let mut mounts = Vec::new();
    let placed = skiff_vm::share::bind_rootfs(&shared, id, &dir.join("rootfs"))
        .and_then(|root| {
            mounts.push(root);
            skiff_vm::share::share_bind_mounts(&shared, id, &mut spec)
        })
        .map(|binds| mounts.extend(binds));
    let ran = match placed {
        Ok(()) => run_in(&vm.agent, db, id, &spec, io, log, hub),
        Err(e) => Ok(Ran::NotStarted(e.to_string())),
    };

    // 3. Down again, whatever happened.
    let r = agent::ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    };
    let _ = vm.agent.remove_container(call_context(), &r);
    skiff_vm::share::unmount_all(&mounts);
    if let Some(mut sandbox) = vm.own.take() {
        sandbox.shutdown();
    }
    skiff_image::trace::mark("vm: container removed, VM down");
    ran
}

/// The VM a run uses: its own sandbox, or the pod's reached through its
/// state directory.
struct Vm {
    agent: AgentClient,
    shared: PathBuf,
    own: Option<Sandbox>,
}

impl Vm {
    fn boot(spec: &Value, id: &str) -> std::result::Result<Vm, String> {
        let sandbox = boot(spec, id).map_err(|e| format!("booting the VM: {e}"))?;
        let (Some(agent), Some(shared)) = (sandbox.agent().cloned(), sandbox.shared_dir()) else {
            return Err("the VM's agent is not connected, or it has no share".into());
        };
        Ok(Vm {
            agent,
            shared,
            own: Some(sandbox),
        })
    }

    fn attach(infra: &str) -> std::result::Result<Vm, String> {
        let dir = sandbox_dir(infra);
        let agent = skiff_vm::connect_agent(&dir)
            .map_err(|e| format!("the pod's VM (is the pod running?): {e}"))?;
        Ok(Vm {
            agent,
            shared: dir.join("shared"),
            own: None,
        })
    }
}

fn boot(spec: &Value, id: &str) -> std::result::Result<Sandbox, skiff_vm::VmError> {
    let image = GuestImage::find()?;
    // The engine shares the container's overlay rootfs as it is; without
    // virtiofsd it would have to copy it onto a disk per run.
    let Some(virtiofsd) = image.virtiofsd else {
        return Err(skiff_vm::VmError::Missing(
            "virtiofsd: missing (set SKIFF_VM_VIRTIOFSD, or run scripts/vm-image.sh --install)"
                .into(),
        ));
    };
    let size = GuestSize::from_oci(spec);
    Sandbox::launch(SandboxConfig {
        id: sandbox_name(id).to_string(),
        state_root: PathBuf::from(STATE_ROOT),
        kernel: image.kernel,
        initramfs: image.initramfs,
        vhost_device_vsock: image.vhost_device_vsock,
        hypervisor: Box::new(Qemu::default()),
        cpus: size.cpus,
        memory_mib: size.memory_mib,
        disks: Vec::new(),
        virtiofsd: Some(virtiofsd),
        extra_cmdline: String::new(),
        boot_bound: Duration::from_secs(90),
        network: skiff_vm::network::netns_of(spec),
    })
}

/// A VM container's stdin: ours (run -i), a pipe attach writes (-d -i, a
/// terminal), or none (closed at once, as /dev/null).
fn stdin_of(
    io: crate::stdio::RunIo,
    hub: &crate::attach::Hub,
) -> Result<Box<dyn std::io::Read + Send>> {
    if io.stdin_inherit {
        return Ok(Box::new(std::io::stdin()));
    }
    if io.interactive || io.tty {
        let (r, w) = crate::stdio::pipe()?;
        hub.set_input(w, false);
        return Ok(Box::new(r));
    }
    Ok(Box::new(std::io::empty()))
}

/// Create, start, copy and wait, in a VM that runs.
fn run_in(
    agent: &AgentClient,
    db: &Db,
    id: &str,
    spec: &Value,
    io: crate::stdio::RunIo,
    log: &crate::stdio::SharedLog,
    hub: &crate::attach::Hub,
) -> Result<Ran> {
    let create = agent::CreateContainerRequest {
        container_id: id.into(),
        oci_config: spec.to_string().into_bytes(),
        rootfs_share_path: skiff_vm::share::rootfs_path(id),
        ..Default::default()
    };
    match agent.create_container(call_context(), &create) {
        // A VM pod's members join its infra's namespaces by this pid.
        Ok(made) => record_guest_pid(&db.dir(id), made.pid)?,
        Err(e) => return Ok(Ran::NotStarted(agent_message(e))),
    }
    let c = db.find(id)?;
    crate::db::record(db, &c, "init");
    let stdin = stdin_of(io, hub)?;
    // With a terminal the agent holds its master: its output is stdout,
    // resizes go through the agent (stderr ends at once).
    if io.tty {
        let (agent, id) = (agent.clone(), id.to_string());
        hub.set_remote_tty(Box::new(move |rows, cols| {
            let r = agent::ResizePtyRequest {
                container_id: id.clone(),
                rows: rows.into(),
                cols: cols.into(),
                ..Default::default()
            };
            let _ = agent.resize_pty(call_context(), &r);
        }));
    }
    let copiers: Vec<_> = [("stdout", false), ("stderr", true)]
        .into_iter()
        .map(|(stream, is_stderr)| {
            let output = Output::new(agent.clone(), id, "", is_stderr);
            let (log, hub) = (log.clone(), hub.clone());
            let echo = io.echo;
            std::thread::spawn(move || match io.tty && !is_stderr {
                true => crate::stdio::copy_terminal(output, &log, &hub),
                false => crate::stdio::copy_output(output, stream, &log, &hub, echo),
            })
        })
        .collect();
    // A foreground `run -t` attaches first (its terminal's size), as for a
    // namespace container; one that never comes is not waited for long.
    if io.hold {
        hub.wait_client(Duration::from_secs(30));
    }
    let start = agent::ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    };
    if let Err(e) = agent.start_container(call_context(), &start) {
        return Ok(Ran::NotStarted(agent_message(e)));
    }
    // No host pid: the container's processes are the guest's.
    crate::db::mark_running(db, id, 0, std::process::id() as i64)?;
    crate::db::record(db, &c, "start");
    skiff_image::trace::mark("vm: the container runs");
    // Closed at once when there is no input, as /dev/null would be.
    {
        let (agent, id) = (agent.clone(), id.to_string());
        std::thread::spawn(move || copy_stdin(&agent, &id, "", stdin));
    }
    let wait = agent::ProcessRequest {
        container_id: id.into(),
        ..Default::default()
    };
    // No bound: a container runs for as long as it likes; the call ends
    // with the VM at the latest.
    let code = match agent.wait_process(skiff_vm::ttrpc::context::Context::default(), &wait) {
        Ok(w) => w.status,
        // A VM gone under it (its pod's, stopped first): killed with it.
        Err(_) => 137,
    };
    // What the container's children still hold open ends with the VM:
    // bounded, so a stuck stream cannot hold the monitor.
    join_within(copiers, Duration::from_secs(5));
    Ok(Ran::Exited(code))
}

fn join_within(handles: Vec<std::thread::JoinHandle<()>>, bound: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for h in handles {
            let _ = h.join();
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(bound);
}

/// The agent's message for a failed call, without ttrpc's wrapping.
fn agent_message(e: skiff_vm::ttrpc::Error) -> String {
    match e {
        skiff_vm::ttrpc::Error::RpcStatus(s) => s.message().to_string(),
        other => format!("the VM's agent: {other:?}"),
    }
}

/// A connection to the agent of the running container's VM (its own, or
/// its pod's).
fn agent_of(db: &Db, c: &Ctr) -> Result<AgentClient> {
    let owner = crate::db::Settings::load(&db.dir(&c.id))
        .vm_pod
        .unwrap_or_else(|| c.id.clone());
    skiff_vm::connect_agent(&sandbox_dir(&owner))
        .map_err(|e| Error::invalid(format!("{}: its VM: {e}", c.name)))
}

/// A signal to the container's init in its VM (KILL ends the guest's pid
/// namespace, so all of it: Docker's kill).
pub fn signal(db: &Db, c: &Ctr, sig: &str) -> Result<()> {
    let number =
        signal_number(sig).ok_or_else(|| Error::invalid(format!("{sig:?}: not a signal")))?;
    let r = agent::SignalProcessRequest {
        container_id: c.id.clone(),
        exec_id: String::new(),
        signal: number,
        ..Default::default()
    };
    let sent = agent_of(db, c).and_then(|agent| {
        agent
            .signal_process(call_context(), &r)
            .map_err(|e| Error::invalid(format!("{}: {}", c.name, agent_message(e))))
    });
    match sent {
        Ok(_) => Ok(()),
        // Its init ended and the monitor is taking the VM down (bounded):
        // the agent no longer has it. Ended is what the signal was for.
        Err(e) => match crate::db::wait_exit(db, &c.id, Some(Duration::from_secs(20)))? {
            Some(_) => Ok(()),
            None => Err(e),
        },
    }
}

/// A signal's number from its name (with or without SIG) or number.
fn signal_number(sig: &str) -> Option<u32> {
    if let Ok(n) = sig.parse::<u32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = format!("SIG{}", sig.trim_start_matches("SIG"));
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32 as u32)
}

/// `pause`/`unpause`: the container's cgroup in the guest, frozen or thawed.
pub fn pause(db: &Db, c: &Ctr, freeze: bool) -> Result<()> {
    let r = agent::ContainerRequest {
        container_id: c.id.clone(),
        ..Default::default()
    };
    let agent = agent_of(db, c)?;
    let done = if freeze {
        agent.pause_container(call_context(), &r)
    } else {
        agent.resume_container(call_context(), &r)
    };
    done.map_err(|e| Error::invalid(format!("{}: {}", c.name, agent_message(e))))?;
    Ok(())
}

/// The container's cgroup statistics in the guest (skiff-oci's `events
/// --stats` data); None when its VM does not answer.
pub fn stats(db: &Db, c: &Ctr) -> Option<Value> {
    let r = agent::ContainerRequest {
        container_id: c.id.clone(),
        ..Default::default()
    };
    let raw = agent_of(db, c)
        .ok()?
        .stats_container(call_context(), &r)
        .ok()?
        .stats_json;
    serde_json::from_slice(&raw).ok()
}

/// A VM container's processes in the guest (the agent reads them from the
/// guest's /proc): the columns of `top`'s defaults.
pub fn processes(db: &Db, c: &Ctr) -> Result<Vec<crate::top::Proc>> {
    let r = agent::ContainerRequest {
        container_id: c.id.clone(),
        ..Default::default()
    };
    let listed = agent_of(db, c)?
        .list_processes(call_context(), &r)
        .map_err(|e| Error::invalid(format!("top {}: {}", c.name, agent_message(e))))?;
    Ok(listed
        .processes
        .into_iter()
        .map(|p| crate::top::Proc {
            pid: p.pid.into(),
            ppid: p.ppid.into(),
            uids: (p.uid, p.uid),
            tty: "?".into(),
            elapsed_ns: p.elapsed_seconds * 1_000_000_000,
            cpu_ns: p.cpu_seconds * 1_000_000_000,
            args: p.args,
            ..Default::default()
        })
        .collect())
}

/// `exec` in the VM: the process from the container's own (its env, cwd
/// and user, as -e, -w, -u change them), its output to ours; its exit
/// code.
pub fn exec(db: &Db, c: &Ctr, o: &crate::spec::ExecOpts) -> Result<i32> {
    if o.detach && o.tty {
        return Err(Error::invalid(
            "exec -d -t: a detached process's terminal would have no reader; use -d alone",
        ));
    }
    let dir = db.dir(&c.id);
    let config: Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut env: Vec<String> = config["process"]["env"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for e in o.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let user = match o.user {
        Some(u) => {
            let (uid, gid, groups, _) = crate::spec::resolve_user(&dir.join("rootfs"), u)?;
            json!({"uid": uid, "gid": gid, "additionalGids": groups})
        }
        None => config["process"]["user"].clone(),
    };
    let process = json!({
        "args": o.argv,
        "env": env,
        "cwd": o.workdir.map(Value::from).unwrap_or_else(|| config["process"]["cwd"].clone()),
        "user": user,
        "capabilities": config["process"]["capabilities"],
        "noNewPrivileges": config["process"]["noNewPrivileges"],
        "terminal": o.tty,
    });
    let exec_id = format!("exec-{}", &crate::db::random_id()[..12]);
    let agent = agent_of(db, c)?;
    let r = agent::ExecProcessRequest {
        container_id: c.id.clone(),
        exec_id: exec_id.clone(),
        process: process.to_string().into_bytes(),
        ..Default::default()
    };
    if let Err(e) = agent.exec_process(call_context(), &r) {
        let msg = agent_message(e);
        eprintln!("Error: {msg}");
        return Ok(crate::stdio::start_failure_code(&msg));
    }
    if o.detach {
        return spawn_drain(db, c, &exec_id).map(|()| 0);
    }
    // -t: the agent holds the terminal; ours is raw meanwhile, and its
    // size (now and on SIGWINCH) goes to the guest's.
    // SAFETY: isatty on fd 0.
    let local_tty = o.tty && unsafe { libc::isatty(0) } == 1;
    let _raw = local_tty.then(|| crate::attach::Raw::new(0)).flatten();
    if local_tty {
        crate::attach::block_winch();
        let resize = {
            let (agent, id, exec_id) = (agent.clone(), c.id.clone(), exec_id.clone());
            move || {
                if let Some((rows, cols)) = crate::attach::size_of(0) {
                    let r = agent::ResizePtyRequest {
                        container_id: id.clone(),
                        exec_id: exec_id.clone(),
                        rows: rows.into(),
                        cols: cols.into(),
                        ..Default::default()
                    };
                    let _ = agent.resize_pty(call_context(), &r);
                }
            }
        };
        resize();
        std::thread::spawn(move || {
            while crate::attach::wait_winch() {
                resize();
            }
        });
    }
    let copiers: Vec<_> = [false, true]
        .into_iter()
        .map(|is_stderr| {
            let output = Output::new(agent.clone(), &c.id, &exec_id, is_stderr);
            std::thread::spawn(move || match is_stderr {
                true => copy_flushed(output, std::io::stderr()),
                false => copy_flushed(output, std::io::stdout()),
            })
        })
        .collect();
    // Without -i the process's stdin is closed at once (as /dev/null); a
    // terminal's is left open (closing it would end the terminal).
    if o.interactive || !o.tty {
        let (agent, id, exec_id) = (agent.clone(), c.id.clone(), exec_id.clone());
        let interactive = o.interactive;
        std::thread::spawn(move || match interactive {
            true => copy_stdin(&agent, &id, &exec_id, std::io::stdin()),
            false => copy_stdin(&agent, &id, &exec_id, std::io::empty()),
        });
    }
    let wait = agent::ProcessRequest {
        container_id: c.id.clone(),
        exec_id,
        ..Default::default()
    };
    let code = match agent.wait_process(skiff_vm::ttrpc::context::Context::default(), &wait) {
        Ok(w) => w.status,
        Err(e) => {
            eprintln!("Error: {}", agent_message(e));
            125
        }
    };
    join_within(copiers, Duration::from_secs(5));
    Ok(code)
}

/// `exec -d`: the agent keeps the process's output in pipes, which would
/// fill and stop it; a process of ours in a session of its own reads them
/// (to nothing, as the namespace tier's exec -d does) until it ends.
fn spawn_drain(db: &Db, c: &Ctr, exec_id: &str) -> Result<()> {
    let owner = crate::db::Settings::load(&db.dir(&c.id))
        .vm_pod
        .unwrap_or_else(|| c.id.clone());
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__vm-drain")
        .arg(sandbox_dir(&owner))
        .args([&c.id, exec_id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::stdio::in_own_session(&mut cmd);
    cmd.spawn()
        .map(drop)
        .map_err(|e| Error::io("starting the reader of a detached exec", e))
}

/// `__vm-drain SANDBOX_DIR CONTAINER EXEC`: reads the exec's stdout and
/// stderr to nothing and waits for it (or for its VM to go); exits.
pub fn drain(args: &[String]) -> ! {
    let [dir, id, exec_id] = args else {
        std::process::exit(2);
    };
    let Ok(agent) = skiff_vm::connect_agent(std::path::Path::new(dir)) else {
        std::process::exit(1);
    };
    // Its stdin ends at once, as /dev/null.
    copy_stdin(&agent, id, exec_id, std::io::empty());
    let readers: Vec<_> = [false, true]
        .into_iter()
        .map(|is_stderr| {
            let mut output = Output::new(agent.clone(), id, exec_id, is_stderr);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut output, &mut std::io::sink());
            })
        })
        .collect();
    let wait = agent::ProcessRequest {
        container_id: id.clone(),
        exec_id: exec_id.clone(),
        ..Default::default()
    };
    let _ = agent.wait_process(skiff_vm::ttrpc::context::Context::default(), &wait);
    join_within(readers, Duration::from_secs(5));
    std::process::exit(0)
}

/// Copies a stream to ours as it comes (a terminal's prompt has no end of
/// line to wait for).
fn copy_flushed(mut from: impl std::io::Read, mut to: impl std::io::Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

/// What a VM container's monitor left when it died without taking its VM
/// down (kill -9): the sandbox's processes, mounts and directory.
pub fn clean_up(id: &str) {
    let dir = sandbox_dir(id);
    if dir.exists() {
        skiff_vm::reap_leftovers(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(signal_number("KILL"), Some(9));
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("15"), Some(15));
        assert_eq!(signal_number("0"), None);
        assert_eq!(signal_number("NOPE"), None);
    }
}
