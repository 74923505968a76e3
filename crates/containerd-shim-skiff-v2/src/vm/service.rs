//! The VM tier's Task service: one `Pod` (a sandbox and its tasks), each
//! RPC mapped onto the agent API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use containerd_shim_protos::api::UpdateTaskRequest;
use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
    PidsRequest, PidsResponse, ProcessInfo, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, Status,
    WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::ttrpc::{self, Code, TtrpcContext};
use serde_json::Value;
use skiff_vm::agent;
use skiff_vm::{AgentClient, Disk, GuestImage, Qemu, Sandbox, SandboxConfig};

use crate::error::ShimError;
use crate::events::{timestamp, Event, Publisher};

use super::rootfs::{make_disk, place_in_share, share_bind_mounts, unmount_all, vm_error};
use super::stdio::{copy_output, copy_stdin, join_within};
use super::{sandbox_name, state_root, Result, ROOTFS_SERIAL};

fn unsupported(what: &str) -> ShimError {
    ShimError::status(
        Code::UNIMPLEMENTED,
        format!("{what}: not supported by the VM tier yet (docs/vm.md)"),
    )
}

struct Proc {
    pid: u32,
    terminal: bool,
    stdin: String,
    stdout: String,
    stderr: String,
    /// An exec's process (JSON), until it is started.
    spec: Option<Vec<u8>>,
    started: bool,
    exit: Option<(u32, SystemTime)>,
}

struct VmTask {
    paused: bool,
    bundle: PathBuf,
    /// The mounts we made on the host for it (its rootfs and bind mounts in
    /// the share), unmounted in reverse at delete.
    host_mounts: Vec<PathBuf>,
    procs: HashMap<String, Proc>,
}

/// One VM and the tasks in it: a pod's containers (grouped by `start` as
/// for the namespace tier), or a single task.
struct Pod {
    sandbox: Sandbox,
    /// The rootfs disk of a VM booted without virtiofsd (one task only).
    image: Option<PathBuf>,
    tasks: HashMap<String, VmTask>,
}

impl Pod {
    fn task(&self, id: &str) -> Result<&VmTask> {
        self.tasks
            .get(id)
            .ok_or_else(|| ShimError::not_found(format!("task {id}")))
    }

    fn task_mut(&mut self, id: &str) -> Result<&mut VmTask> {
        self.tasks
            .get_mut(id)
            .ok_or_else(|| ShimError::not_found(format!("task {id}")))
    }

    /// Takes the VM down: the tasks' rootfs mounts, the sandbox, the disk.
    fn destroy(mut self) {
        self.sandbox.shutdown();
        for task in self.tasks.values() {
            unmount_all(&task.host_mounts);
        }
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

pub struct VmService {
    namespace: String,
    events: Publisher,
    shutdown: Mutex<Sender<()>>,
    pod: Mutex<Option<Pod>>,
    exited: Condvar,
}

fn no_pod(id: &str) -> ShimError {
    ShimError::not_found(format!("task {id}"))
}

fn proc_of<'a>(pod: &'a Option<Pod>, id: &str, exec_id: &str) -> Result<&'a Proc> {
    pod.as_ref()
        .ok_or_else(|| no_pod(id))?
        .task(id)?
        .procs
        .get(exec_id)
        .ok_or_else(|| ShimError::not_found(format!("process {exec_id:?} of task {id}")))
}

fn proc_of_mut<'a>(pod: &'a mut Option<Pod>, id: &str, exec_id: &str) -> Result<&'a mut Proc> {
    pod.as_mut()
        .ok_or_else(|| no_pod(id))?
        .task_mut(id)?
        .procs
        .get_mut(exec_id)
        .ok_or_else(|| ShimError::not_found(format!("process {exec_id:?} of task {id}")))
}

impl VmService {
    pub fn new(namespace: String, events: Publisher, shutdown: Sender<()>) -> VmService {
        VmService {
            namespace,
            events,
            shutdown: Mutex::new(shutdown),
            pod: Mutex::new(None),
            exited: Condvar::new(),
        }
    }

    /// On the server's way out: whatever VM is left goes, and the queued
    /// events get up to `flush` to reach containerd.
    pub fn take_down(&self, flush: Duration) {
        if let Some(pod) = self.lock().take() {
            pod.destroy();
        }
        self.events.flush(flush);
    }

    fn lock(&self) -> MutexGuard<'_, Option<Pod>> {
        self.pod.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn agent(&self, id: &str) -> Result<AgentClient> {
        let pod = self.lock();
        let pod = pod.as_ref().ok_or_else(|| no_pod(id))?;
        pod.task(id)?;
        pod.sandbox
            .agent()
            .cloned()
            .ok_or_else(|| ShimError::status(Code::INTERNAL, "the agent is not connected"))
    }

    fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        let id = req.id.clone();
        let bundle = PathBuf::from(&req.bundle);
        let config_path = bundle.join("config.json");
        let config = std::fs::read(&config_path)
            .map_err(ShimError::io(format!("reading {}", config_path.display())))?;
        let mut spec: Value = serde_json::from_slice(&config)
            .map_err(|e| ShimError::status(Code::INVALID_ARGUMENT, format!("config.json: {e}")))?;
        let host_root = bundle.join(spec["root"]["path"].as_str().unwrap_or("rootfs"));

        // 1. The VM: the pod's, or a new one.
        let shared = match self.lock().as_ref() {
            Some(pod) if pod.tasks.contains_key(&id) => {
                return Err(ShimError::status(
                    Code::ALREADY_EXISTS,
                    format!("task {id} exists"),
                ))
            }
            Some(pod) => Some(
                pod.sandbox
                    .shared_dir()
                    .ok_or_else(|| unsupported("a second task in a VM without virtiofsd"))?,
            ),
            None => None,
        };
        let (shared, new_pod) = match shared {
            Some(dir) => (Some(dir), None),
            None => {
                let group = crate::start::group_id(&bundle).unwrap_or_else(|| id.clone());
                let size = skiff_vm::GuestSize::for_first_task(&spec);
                let pod = self.boot(&sandbox_name(&group), &req, &spec, &host_root, size)?;
                (pod.sandbox.shared_dir(), Some(pod))
            }
        };

        // 2. The rootfs where the guest sees it (mounted in the share, or
        // already on the VM's disk), and the host's bind mounts with it.
        let placed = match &shared {
            Some(dir) => place_in_share(dir, &id, &req, &host_root).and_then(|root| {
                let mut made = vec![root];
                let binds = share_bind_mounts(dir, &id, &mut spec);
                match binds {
                    Ok(b) => {
                        made.extend(b);
                        Ok(made)
                    }
                    Err(e) => {
                        unmount_all(&made);
                        Err(e)
                    }
                }
            }),
            None => Ok(Vec::new()),
        };
        let host_mounts = match placed {
            Ok(m) => m,
            Err(e) => {
                if let Some(pod) = new_pod {
                    pod.destroy();
                }
                return Err(e);
            }
        };

        // 3. The container, by the agent.
        let request = agent::CreateContainerRequest {
            container_id: id.clone(),
            oci_config: if shared.is_some() {
                spec.to_string().into_bytes()
            } else {
                config
            },
            rootfs_disk_serial: if shared.is_some() { "" } else { ROOTFS_SERIAL }.into(),
            rootfs_share_path: if shared.is_some() {
                format!("{id}/rootfs")
            } else {
                String::new()
            },
            ..Default::default()
        };
        let agent = match &new_pod {
            Some(pod) => pod.sandbox.agent().cloned(),
            None => self
                .lock()
                .as_ref()
                .and_then(|p| p.sandbox.agent().cloned()),
        };
        let created = agent
            .ok_or_else(|| ShimError::status(Code::INTERNAL, "the agent is not connected"))
            .and_then(|a| {
                a.create_container(ctx(), &request)
                    .map_err(|e| agent_error("CreateContainer", e))
            });
        let pid = match created {
            Ok(r) => r.pid as u32,
            Err(e) => {
                if let Some(pod) = new_pod {
                    pod.destroy();
                }
                unmount_all(&host_mounts);
                return Err(e);
            }
        };

        // 4. Recorded and announced.
        let init = Proc {
            pid,
            terminal: req.terminal,
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            spec: None,
            started: false,
            exit: None,
        };
        let task = VmTask {
            paused: false,
            bundle,
            host_mounts,
            procs: HashMap::from([(String::new(), init)]),
        };
        {
            let mut guard = self.lock();
            if let Some(pod) = new_pod {
                *guard = Some(pod);
            }
            if let Some(pod) = guard.as_mut() {
                pod.tasks.insert(id.clone(), task);
            }
        }
        self.events.publish(Event::Create(TaskCreate {
            container_id: id,
            bundle: req.bundle,
            pid,
            ..Default::default()
        }));
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    /// A new VM for the pod `group`, of `size` (the pod's limits from
    /// the CRI's sandbox annotations, else the first task's own: docs/vm.md,
    /// "Sizing"). With virtiofsd (SKIFF_VM_VIRTIOFSD or
    /// /var/lib/skiff/vm/virtiofsd) it shares a directory for the pod's
    /// rootfs; without, the first task's rootfs becomes its disk (and the
    /// pod can hold only that task). The network namespace the task joins
    /// (the CRI's pod netns) becomes the VM's network.
    fn boot(
        &self,
        group: &str,
        req: &CreateTaskRequest,
        spec: &Value,
        host_root: &Path,
        size: skiff_vm::GuestSize,
    ) -> Result<Pod> {
        let state_root = state_root(&self.namespace);
        std::fs::create_dir_all(&state_root)
            .map_err(ShimError::io(format!("creating {}", state_root.display())))?;
        let image_files = GuestImage::find().map_err(vm_error)?;
        let virtiofsd = image_files.virtiofsd.clone();
        let mut disks = Vec::new();
        let mut image = None;
        if virtiofsd.is_none() {
            let path = state_root.join(format!("{group}.rootfs.ext4"));
            make_disk(req, host_root, &path)?;
            disks.push(Disk {
                path: path.clone(),
                serial: ROOTFS_SERIAL.into(),
                read_only: false,
            });
            image = Some(path);
        }
        let config = SandboxConfig {
            id: group.to_string(),
            state_root: state_root.clone(),
            kernel: image_files.kernel,
            initramfs: image_files.initramfs,
            vhost_device_vsock: image_files.vhost_device_vsock,
            hypervisor: Box::new(Qemu::default()),
            cpus: size.cpus,
            memory_mib: size.memory_mib,
            disks,
            virtiofsd,
            extra_cmdline: String::new(),
            boot_bound: Duration::from_secs(90),
            network: skiff_vm::network::netns_of(spec),
        };
        match Sandbox::launch(config) {
            Ok(sandbox) => Ok(Pod {
                sandbox,
                image,
                tasks: HashMap::new(),
            }),
            Err(e) => {
                if let Some(path) = &image {
                    let _ = std::fs::remove_file(path);
                }
                Err(ShimError::status(
                    Code::INTERNAL,
                    format!("booting the VM: {e}"),
                ))
            }
        }
    }

    fn start(self: &Arc<Self>, req: StartRequest) -> Result<StartResponse> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let agent = self.agent(id)?;
        let (spec, stdio) = {
            let pod = self.lock();
            let p = proc_of(&pod, id, exec_id)?;
            if p.started {
                return Err(ShimError::status(
                    Code::FAILED_PRECONDITION,
                    format!("process {exec_id:?} was started already"),
                ));
            }
            (
                p.spec.clone(),
                [p.stdin.clone(), p.stdout.clone(), p.stderr.clone()],
            )
        };
        let pid = match spec {
            None => {
                let r = agent::ContainerRequest {
                    container_id: id.into(),
                    ..Default::default()
                };
                agent
                    .start_container(ctx(), &r)
                    .map_err(|e| agent_error("StartContainer", e))?;
                None
            }
            Some(process) => {
                let r = agent::ExecProcessRequest {
                    container_id: id.into(),
                    exec_id: exec_id.into(),
                    process,
                    ..Default::default()
                };
                let started = agent
                    .exec_process(ctx(), &r)
                    .map_err(|e| agent_error("ExecProcess", e))?;
                Some(started.pid as u32)
            }
        };
        let pid = {
            let mut pod = self.lock();
            let p = proc_of_mut(&mut pod, id, exec_id)?;
            p.started = true;
            if let Some(pid) = pid {
                p.pid = pid;
            }
            p.pid
        };
        self.watch(agent, id, exec_id, stdio);
        self.events.publish(if exec_id.is_empty() {
            Event::Start(TaskStart {
                container_id: id.into(),
                pid,
                ..Default::default()
            })
        } else {
            Event::ExecStarted(TaskExecStarted {
                container_id: id.into(),
                exec_id: exec_id.into(),
                pid,
                ..Default::default()
            })
        });
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    /// A process's stdio copiers and its waiter: WaitProcess, then the
    /// output to its end (bounded), then the exit recorded and published.
    fn watch(self: &Arc<Self>, agent: AgentClient, id: &str, exec_id: &str, stdio: [String; 3]) {
        let [stdin, stdout, stderr] = stdio;
        if !stdin.is_empty() {
            let (agent, id, exec_id) = (agent.clone(), id.to_string(), exec_id.to_string());
            std::thread::spawn(move || copy_stdin(&agent, &id, &exec_id, &stdin));
        }
        let copiers: Vec<JoinHandle<()>> = [(stdout, false), (stderr, true)]
            .into_iter()
            .map(|(path, is_stderr)| {
                let (agent, id, exec_id) = (agent.clone(), id.to_string(), exec_id.to_string());
                std::thread::spawn(move || copy_output(&agent, &id, &exec_id, &path, is_stderr))
            })
            .collect();
        let (service, id, exec_id) = (Arc::clone(self), id.to_string(), exec_id.to_string());
        std::thread::spawn(move || {
            let r = agent::ProcessRequest {
                container_id: id.clone(),
                exec_id: exec_id.clone(),
                ..Default::default()
            };
            // No bound: a process may run for as long as it likes; the
            // call ends with the VM at the latest (the connection drops).
            let (status, oom) = match agent.wait_process(ttrpc::context::Context::default(), &r) {
                Ok(w) => (w.status as u32, w.oom_killed),
                Err(_) => (255, false),
            };
            join_within(copiers, Duration::from_secs(5));
            // Before the exit it caused, as runc's shim tells it.
            if oom {
                service.events.publish(Event::Oom(TaskOOM {
                    container_id: id.clone(),
                    ..Default::default()
                }));
            }
            service.exited(&id, &exec_id, status);
        });
    }

    fn exited(&self, id: &str, exec_id: &str, status: u32) {
        let at = SystemTime::now();
        let mut pod = self.lock();
        let Ok(p) = proc_of_mut(&mut pod, id, exec_id) else {
            return;
        };
        p.exit = Some((status, at));
        self.events.publish(Event::Exit(TaskExit {
            container_id: id.into(),
            id: if exec_id.is_empty() { id } else { exec_id }.into(),
            pid: p.pid,
            exit_status: status,
            exited_at: MessageField::some(timestamp(at)),
            ..Default::default()
        }));
        drop(pod);
        self.exited.notify_all();
    }

    fn exec(&self, req: ExecProcessRequest) -> Result<Empty> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let spec = req
            .spec
            .as_ref()
            .map(|any| any.value.clone())
            .ok_or_else(|| ShimError::status(Code::INVALID_ARGUMENT, "exec: no spec"))?;
        let mut pod = self.lock();
        let t = pod.as_mut().ok_or_else(|| no_pod(id))?.task_mut(id)?;
        if exec_id.is_empty() || t.procs.contains_key(exec_id) {
            return Err(ShimError::status(
                Code::ALREADY_EXISTS,
                format!("exec {exec_id:?}: empty or in use"),
            ));
        }
        t.procs.insert(
            exec_id.to_string(),
            Proc {
                pid: 0,
                terminal: req.terminal,
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                spec: Some(spec),
                started: false,
                exit: None,
            },
        );
        self.events.publish(Event::ExecAdded(TaskExecAdded {
            container_id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    fn wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        let mut pod = self.lock();
        loop {
            let p = proc_of(&pod, &req.id, &req.exec_id)?;
            if let Some((status, at)) = p.exit {
                return Ok(WaitResponse {
                    exit_status: status,
                    exited_at: MessageField::some(timestamp(at)),
                    ..Default::default()
                });
            }
            pod = self
                .exited
                .wait_timeout(pod, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn kill(&self, req: KillRequest) -> Result<Empty> {
        let agent = self.agent(&req.id)?;
        // An ended process is NotFound, as runc's shim answers (containerd
        // takes it for "already stopped").
        if proc_of(&self.lock(), &req.id, &req.exec_id)?.exit.is_some() {
            return Err(ShimError::not_found(format!(
                "process {:?} of task {}: already finished",
                req.exec_id, req.id
            )));
        }
        let r = agent::SignalProcessRequest {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            signal: req.signal,
            ..Default::default()
        };
        agent
            .signal_process(ctx(), &r)
            .map_err(|e| agent_error("SignalProcess", e))?;
        Ok(Empty::new())
    }

    /// Pause or resume the task's container (its cgroup in the guest).
    fn pause(&self, id: &str, pause: bool) -> Result<Empty> {
        let agent = self.agent(id)?;
        let r = agent::ContainerRequest {
            container_id: id.into(),
            ..Default::default()
        };
        if pause {
            agent.pause_container(ctx(), &r)
        } else {
            agent.resume_container(ctx(), &r)
        }
        .map_err(|e| {
            agent_error(
                if pause {
                    "PauseContainer"
                } else {
                    "ResumeContainer"
                },
                e,
            )
        })?;
        if let Some(t) = self.lock().as_mut().and_then(|p| p.tasks.get_mut(id)) {
            t.paused = pause;
        }
        self.events.publish(if pause {
            Event::Paused(TaskPaused {
                container_id: id.into(),
                ..Default::default()
            })
        } else {
            Event::Resumed(TaskResumed {
                container_id: id.into(),
                ..Default::default()
            })
        });
        Ok(Empty::new())
    }

    /// The container's cgroup statistics from the guest, in containerd's
    /// cgroup v2 metrics form (the guest's hierarchy is v2).
    fn stats(&self, id: &str) -> Result<StatsResponse> {
        let agent = self.agent(id)?;
        let r = agent::ContainerRequest {
            container_id: id.into(),
            ..Default::default()
        };
        let raw = agent
            .stats_container(ctx(), &r)
            .map_err(|e| agent_error("StatsContainer", e))?
            .stats_json;
        let stats: Value = serde_json::from_slice(&raw)
            .map_err(|e| ShimError::status(Code::INTERNAL, format!("the agent's stats: {e}")))?;
        Ok(StatsResponse {
            stats: MessageField::some(crate::metrics::to_any(&stats, true)),
            ..Default::default()
        })
    }

    fn state(&self, req: StateRequest) -> Result<StateResponse> {
        let pod = self.lock();
        let t = pod.as_ref().ok_or_else(|| no_pod(&req.id))?.task(&req.id)?;
        let p = proc_of(&pod, &req.id, &req.exec_id)?;
        let status = match (p.started, p.exit) {
            (_, Some(_)) => Status::STOPPED,
            (true, None) if t.paused => Status::PAUSED,
            (true, None) => Status::RUNNING,
            (false, None) => Status::CREATED,
        };
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                &req.id
            } else {
                &req.exec_id
            }
            .clone(),
            bundle: t.bundle.display().to_string(),
            pid: p.pid,
            status: status.into(),
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.terminal,
            exit_status: p.exit.map(|e| e.0).unwrap_or(0),
            exited_at: p
                .exit
                .map(|e| MessageField::some(timestamp(e.1)))
                .unwrap_or_default(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    /// An exec: forgotten. A task: its container removed and its rootfs
    /// unmounted; with the pod's last task, the VM and its helpers are taken
    /// down.
    fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let mut guard = self.lock();
        let p = proc_of(&guard, &req.id, &req.exec_id)?;
        let (pid, exit) = (p.pid, p.exit);
        let pod = guard.as_mut().ok_or_else(|| no_pod(&req.id))?;
        if !req.exec_id.is_empty() {
            pod.task_mut(&req.id)?.procs.remove(&req.exec_id);
        } else {
            let task = pod.tasks.remove(&req.id).ok_or_else(|| no_pod(&req.id))?;
            let agent = pod.sandbox.agent().cloned();
            let last = pod.tasks.is_empty();
            let emptied = if last { guard.take() } else { None };
            drop(guard);
            if let Some(agent) = agent {
                let r = agent::ContainerRequest {
                    container_id: req.id.clone(),
                    ..Default::default()
                };
                let _ = agent.remove_container(ctx(), &r);
            }
            unmount_all(&task.host_mounts);
            if let Some(pod) = emptied {
                pod.destroy();
            }
            self.exited.notify_all();
        }
        let (status, at) = exit.unwrap_or((137, SystemTime::now()));
        if req.exec_id.is_empty() {
            self.events.publish(Event::Delete(TaskDelete {
                container_id: req.id.clone(),
                pid,
                exit_status: status,
                exited_at: MessageField::some(timestamp(at)),
                ..Default::default()
            }));
        }
        Ok(DeleteResponse {
            pid,
            exit_status: status,
            exited_at: MessageField::some(timestamp(at)),
            ..Default::default()
        })
    }
}

use skiff_vm::stdio::call_context as ctx;

fn agent_error(call: &str, e: ttrpc::Error) -> ShimError {
    match e {
        ttrpc::Error::RpcStatus(s) => {
            ShimError::status(s.code(), format!("the VM's agent, {call}: {}", s.message()))
        }
        other => ShimError::status(Code::INTERNAL, format!("the VM's agent, {call}: {other:?}")),
    }
}

/// The Task API over the service (which its threads share as an Arc).
pub(super) struct Api(pub(super) Arc<VmService>);

impl containerd_shim_protos::Task for Api {
    fn create(&self, _: &TtrpcContext, r: CreateTaskRequest) -> ttrpc::Result<CreateTaskResponse> {
        Ok(self.0.create(r)?)
    }
    fn start(&self, _: &TtrpcContext, r: StartRequest) -> ttrpc::Result<StartResponse> {
        Ok(self.0.start(r)?)
    }
    fn state(&self, _: &TtrpcContext, r: StateRequest) -> ttrpc::Result<StateResponse> {
        Ok(self.0.state(r)?)
    }
    fn delete(&self, _: &TtrpcContext, r: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        Ok(self.0.delete(r)?)
    }
    fn exec(&self, _: &TtrpcContext, r: ExecProcessRequest) -> ttrpc::Result<Empty> {
        Ok(self.0.exec(r)?)
    }
    fn kill(&self, _: &TtrpcContext, r: KillRequest) -> ttrpc::Result<Empty> {
        Ok(self.0.kill(r)?)
    }
    fn wait(&self, _: &TtrpcContext, r: WaitRequest) -> ttrpc::Result<WaitResponse> {
        Ok(self.0.wait(r)?)
    }
    /// Every process of the task's container (the guest's pids, from the
    /// agent's ListProcesses), as runc's shim lists its cgroup's.
    fn pids(&self, _: &TtrpcContext, r: PidsRequest) -> ttrpc::Result<PidsResponse> {
        let agent = self.0.agent(&r.id)?;
        let req = agent::ContainerRequest {
            container_id: r.id.clone(),
            ..Default::default()
        };
        let listed = agent
            .list_processes(ctx(), &req)
            .map_err(|e| agent_error("ListProcesses", e))?;
        Ok(PidsResponse {
            processes: listed
                .processes
                .iter()
                .map(|p| ProcessInfo {
                    pid: p.pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }
    fn pause(&self, _: &TtrpcContext, r: PauseRequest) -> ttrpc::Result<Empty> {
        Ok(self.0.pause(&r.id, true)?)
    }
    fn resume(&self, _: &TtrpcContext, r: ResumeRequest) -> ttrpc::Result<Empty> {
        Ok(self.0.pause(&r.id, false)?)
    }
    fn stats(&self, _: &TtrpcContext, r: StatsRequest) -> ttrpc::Result<StatsResponse> {
        Ok(self.0.stats(&r.id)?)
    }
    fn update(&self, _: &TtrpcContext, r: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        let Some(resources) = r.resources.as_ref() else {
            return Ok(Empty::new());
        };
        let agent = self.0.agent(&r.id)?;
        let req = agent::UpdateContainerRequest {
            container_id: r.id.clone(),
            resources: resources.value.clone(),
            ..Default::default()
        };
        agent
            .update_container(ctx(), &req)
            .map_err(|e| agent_error("UpdateContainer", e))?;
        Ok(Empty::new())
    }
    fn resize_pty(&self, _: &TtrpcContext, r: ResizePtyRequest) -> ttrpc::Result<Empty> {
        let agent = self.0.agent(&r.id)?;
        let req = agent::ResizePtyRequest {
            container_id: r.id.clone(),
            exec_id: r.exec_id.clone(),
            rows: r.height,
            cols: r.width,
            ..Default::default()
        };
        agent
            .resize_pty(ctx(), &req)
            .map_err(|e| agent_error("ResizePty", e))?;
        Ok(Empty::new())
    }
    fn close_io(&self, _: &TtrpcContext, _: CloseIORequest) -> ttrpc::Result<Empty> {
        // stdin is closed when containerd's side of the fifo closes.
        Ok(Empty::new())
    }
    fn connect(&self, _: &TtrpcContext, r: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        let task_pid = self
            .0
            .lock()
            .as_ref()
            .and_then(|pod| pod.tasks.get(&r.id))
            .and_then(|t| t.procs.get("").map(|p| p.pid))
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }
    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> ttrpc::Result<Empty> {
        if self.0.lock().is_none() {
            let _ = self
                .0
                .shutdown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(());
        }
        Ok(Empty::new())
    }
}
