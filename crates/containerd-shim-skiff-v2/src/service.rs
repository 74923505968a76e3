//! The Task service containerd calls over ttrpc, one method per RPC, each
//! reading top to bottom: check the request against the table, do the work
//! with the skiff library (in a forked copy where it clones or spawns, see
//! `forked.rs`), record the outcome, publish the event.
//!
//! Events are published while the table is locked, so their order is the
//! order of the changes they announce.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use containerd_shim_protos::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ProcessInfo, ResizePtyRequest, ResumeRequest,
    ShutdownRequest, StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest,
    StatsResponse, Status, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::ttrpc::{self, Code, TtrpcContext};

use nix::unistd::Pid;
use serde_json::{json, Value};
use skiff_runtime::cgroups::Layout;
use skiff_runtime::container::{
    self, CheckpointOptions, CreateOptions, ExecOptions, RestoreOptions,
};
use skiff_runtime::oci_spec::runtime::{LinuxResources, Process};
use skiff_runtime::process::console;
use skiff_runtime::state::StateRoot;

use crate::checkpoint;
use crate::error::ShimError;
use crate::events::{timestamp, Event, Publisher};
use crate::forked::{self, Inherit};
use crate::mounts;
use crate::options;
use crate::process::{Phase, Proc, Task};
use crate::reaper::{Exit, Reaper};
use crate::stdio::{self, Paths};

pub struct Service {
    namespace: String,
    root: StateRoot,
    layout: Option<Layout>,
    table: Mutex<Table>,
    changed: Condvar,
    events: Publisher,
    reaper: Arc<Reaper>,
    shutdown: Mutex<Sender<()>>,
    /// cgroup v2: an inotify watch on each task's memory.events, so an OOM
    /// kill is read when it happens, while the group still exists (under
    /// systemd a scope's group goes as soon as it is empty: a look at
    /// init's exit came too late).
    oom_events: Option<std::os::fd::OwnedFd>,
}

#[derive(Default)]
struct Table {
    tasks: HashMap<String, Task>,
    /// Exits of pids not (yet) registered: a process that died before its
    /// Start recorded the pid.
    early_exits: HashMap<i32, Exit>,
}

type Result<T> = std::result::Result<T, ShimError>;

fn no_task(id: &str) -> ShimError {
    ShimError::not_found(format!("task {id}"))
}

fn no_process(id: &str, exec_id: &str) -> ShimError {
    ShimError::not_found(format!("process {exec_id} of task {id}"))
}

impl Service {
    pub fn new(
        namespace: String,
        root: StateRoot,
        events: Publisher,
        reaper: Arc<Reaper>,
        shutdown: Sender<()>,
    ) -> Service {
        Service {
            namespace,
            root,
            layout: Layout::detect().ok(),
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
            events,
            reaper,
            shutdown: Mutex::new(shutdown),
            oom_events: oom_inotify(),
        }
    }

    /// The inotify descriptor the OOM watcher blocks on (v2 hosts).
    pub fn oom_events(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.oom_events.as_ref().map(|f| f.as_fd())
    }

    /// Watches a task's memory.events (cgroup v2), if there is one.
    fn watch_memory_events(&self, cg: &skiff_runtime::cgroups::CgroupRecord) {
        use std::os::fd::AsRawFd;
        let (Some(fd), Some(layout)) = (&self.oom_events, &self.layout) else {
            return;
        };
        if !layout.is_v2() {
            return;
        }
        let Some(dir) = cg.controller_dir(layout, "memory") else {
            return;
        };
        let Ok(path) =
            std::ffi::CString::new(dir.join("memory.events").as_os_str().as_encoded_bytes())
        else {
            return;
        };
        // SAFETY: adds a watch on our inotify fd; a failure only means no
        // prompt notice (the exit-time look and the poll remain).
        unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        let id = req.id.as_str();
        if self.lock().tasks.contains_key(id) {
            return Err(ShimError::status(
                Code::ALREADY_EXISTS,
                format!("task {id} already exists"),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let mut flags = options::parse(req.options.as_ref())?;
        flags.systemd_cgroup |= options::systemd_path_in(&bundle);
        // Snapshot mounts go onto <bundle>/rootfs (config.json's root.path).
        let mounted_rootfs = if req.rootfs.is_empty() {
            None
        } else {
            let target = bundle.join("rootfs");
            std::fs::create_dir_all(&target)
                .map_err(ShimError::io(format!("creating {}", target.display())))?;
            mounts::mount_rootfs(&req.rootfs, &target)?;
            Some(target)
        };
        let paths = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        if !req.parent_checkpoint.is_empty() {
            return Err(ShimError::status(
                Code::INVALID_ARGUMENT,
                "parent_checkpoint: restoring from a pre-dump chain is not supported",
            ));
        }
        let restore_from = (!req.checkpoint.is_empty()).then(|| PathBuf::from(&req.checkpoint));
        let created = self.create_container(id, &bundle, &paths, &flags, restore_from.as_deref());
        let (pid, io) = match created {
            Ok(c) => c,
            Err(e) => {
                if let Some(target) = &mounted_rootfs {
                    mounts::unmount_rootfs(target);
                }
                return Err(e);
            }
        };
        let cgroup = self.root.load(id).ok().and_then(|r| r.cgroup);
        if let Some(cg) = &cgroup {
            self.watch_memory_events(cg);
        }
        let parent_oom_kills = match (&cgroup, &self.layout) {
            (Some(cg), Some(layout)) => cg.parent_oom_kills(layout),
            _ => None,
        };
        let mut init = Proc::new(paths.clone(), None);
        init.pid = pid;
        init.io = io;
        let mut table = self.lock();
        table.tasks.insert(
            id.to_string(),
            Task {
                bundle,
                mounted_rootfs,
                init,
                execs: HashMap::new(),
                cgroup,
                paused: false,
                oom_kills: 0,
                parent_oom_kills,
                sigkilled: false,
                io_owner: flags.io_owner,
                restored: restore_from.is_some(),
            },
        );
        self.events.publish(Event::Create(TaskCreate {
            container_id: id.to_string(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: paths.stdin,
                stdout: paths.stdout,
                stderr: paths.stderr,
                terminal: paths.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        }));
        if let Some(exit) = take_early_exit(&mut table.early_exits, pid) {
            self.finish(&mut table, id, "", exit);
        }
        Ok(CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    /// The library's create (or, from a checkpoint, its restore: init then
    /// runs already, as after runc's restore), in a forked copy whose stdio
    /// is the task's.
    fn create_container(
        &self,
        id: &str,
        bundle: &Path,
        paths: &Paths,
        flags: &options::RuntimeFlags,
        restore_from: Option<&Path>,
    ) -> Result<(i32, stdio::Attached)> {
        let prepared = stdio::prepare(paths, id, &self.namespace, &self.reaper)?;
        stdio::hand_over(&prepared.fds, flags.io_owner)?;
        let theirs = prepared.console.as_ref().map(|(_, t)| t);
        let keep: Vec<i32> = theirs.iter().map(|t| t.as_raw_fd()).collect();
        let answer = forked::call(
            &self.reaper,
            Inherit {
                stdio: Some(prepared.fds.each_ref().map(|f| f.as_raw_fd())),
                keep: &keep,
            },
            || {
                let create = CreateOptions {
                    id,
                    bundle,
                    pid_file: None,
                    console_socket: None,
                    console_stream: theirs,
                    no_pivot: flags.no_pivot,
                    no_new_keyring: flags.no_new_keyring,
                    preserve_fds: 0,
                    listen_fds: 0,
                    systemd_cgroup: flags.systemd_cgroup,
                    relay_terminal: false,
                    start_now: false,
                };
                let record = match restore_from {
                    None => container::create(&self.root, &create)?.record,
                    Some(images) => {
                        container::restore(
                            &self.root,
                            &RestoreOptions {
                                create,
                                criu: checkpoint::criu_options(images, None, &Default::default())?,
                                lsm_profile: None,
                                lsm_mount_context: None,
                            },
                        )?
                        .record
                    }
                };
                Ok(json!(record.pid))
            },
        )?;
        let pid = answer.as_i64().unwrap_or(0) as i32;
        let mut io = prepared.attached;
        if let Some((ours, _)) = &prepared.console {
            let attached = console::receive_master(ours)
                .map_err(ShimError::io("receiving the pty master"))
                .and_then(|master| io.attach_terminal(master, paths));
            if let Err(e) = attached {
                // Not in the table yet, so nobody else would remove it.
                let nothing = Inherit {
                    stdio: None,
                    keep: &[],
                };
                let deleted = forked::call(&self.reaper, nothing, || {
                    container::delete(&self.root, id, true)?;
                    Ok(Value::Null)
                });
                if let Err(d) = deleted {
                    skiff_runtime::log::warn(&format!("removing {id} after a failed create: {d}"));
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(
                            Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                return Err(e);
            }
        }
        Ok((pid, io))
    }

    /// runc's checkpoint, in a forked copy: into the request's path, the
    /// task stopped afterwards unless the options keep it running (its
    /// exit then comes as any other).
    fn checkpoint(&self, req: CheckpointTaskRequest) -> Result<Empty> {
        let id = req.id.as_str();
        if !self.lock().tasks.contains_key(id) {
            return Err(no_task(id));
        }
        let o = checkpoint::parse(req.options.as_ref())?;
        // containerd puts ImagePath in the request's path as well.
        if !o.image_path.is_empty() && o.image_path != req.path {
            return Err(ShimError::status(
                Code::INVALID_ARGUMENT,
                format!(
                    "checkpoint option ImagePath {:?} differs from the request's path {:?}",
                    o.image_path, req.path
                ),
            ));
        }
        let images = PathBuf::from(&req.path);
        let work = (!o.work_path.is_empty()).then(|| PathBuf::from(&o.work_path));
        let criu = checkpoint::criu_options(&images, work.as_deref(), &o)?;
        let nothing = Inherit {
            stdio: None,
            keep: &[],
        };
        forked::call(&self.reaper, nothing, || {
            container::checkpoint(
                &self.root,
                id,
                &CheckpointOptions {
                    criu,
                    leave_running: !o.exit,
                    pre_dump: false,
                    parent_path: None,
                    link_remap: false,
                    tcp_skip_in_flight: false,
                },
            )?;
            Ok(Value::Null)
        })?;
        Ok(Empty::new())
    }

    fn start(&self, req: StartRequest) -> Result<StartResponse> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let (spec, paths, restored) = {
            let mut table = self.lock();
            let task = table.tasks.get_mut(id).ok_or_else(|| no_task(id))?;
            let restored = task.restored && exec_id.is_empty();
            let p = task
                .process_mut(exec_id)
                .ok_or_else(|| no_process(id, exec_id))?;
            if p.phase != Phase::Created || p.starting {
                return Err(ShimError::status(
                    Code::FAILED_PRECONDITION,
                    format!("process {exec_id} of task {id} is not created: cannot start it"),
                ));
            }
            p.starting = true;
            (p.spec.clone(), p.stdio.clone(), restored)
        };
        let started = match &spec {
            // Restored at create: it runs already.
            None if restored => Ok(None),
            None => forked::call(
                &self.reaper,
                Inherit {
                    stdio: None,
                    keep: &[],
                },
                || {
                    container::start(&self.root, id)?;
                    Ok(Value::Null)
                },
            )
            .map(|_| None),
            Some(spec) => self.exec_process(id, spec, &paths).map(Some),
        };

        let mut table = self.lock();
        let Table { tasks, early_exits } = &mut *table;
        let task = tasks.get_mut(id).ok_or_else(|| no_task(id))?;
        let p = task
            .process_mut(exec_id)
            .ok_or_else(|| no_process(id, exec_id))?;
        p.starting = false;
        let held = p.held_exit.take();
        let result = match started {
            Err(e) => Err(e),
            Ok(None) => {
                p.phase = Phase::Running;
                self.events.publish(Event::Start(TaskStart {
                    container_id: id.to_string(),
                    pid: p.pid as u32,
                    ..Default::default()
                }));
                Ok(p.pid)
            }
            Ok(Some((pid, io))) => {
                p.pid = pid;
                p.io = io;
                p.phase = Phase::Running;
                self.events.publish(Event::ExecStarted(TaskExecStarted {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                    pid: pid as u32,
                    ..Default::default()
                }));
                Ok(pid)
            }
        };
        let pid = p.pid;
        if let Some(exit) = held.or_else(|| take_early_exit(early_exits, pid)) {
            // It exited before its stdio was recorded (a quick exec): the
            // same wait for the terminal's output as process_exited's.
            table = self.drain_terminal(table, id, exec_id);
            self.finish(&mut table, id, exec_id, exit);
        }
        result.map(|pid| StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    /// The library's exec, in a forked copy whose stdio is the process's.
    fn exec_process(
        &self,
        id: &str,
        spec: &Process,
        paths: &Paths,
    ) -> Result<(i32, stdio::Attached)> {
        let prepared = stdio::prepare(paths, id, &self.namespace, &self.reaper)?;
        let owner = self.lock().tasks.get(id).and_then(|t| t.io_owner);
        stdio::hand_over(&prepared.fds, owner)?;
        let theirs = prepared.console.as_ref().map(|(_, t)| t);
        let keep: Vec<i32> = theirs.iter().map(|t| t.as_raw_fd()).collect();
        let answer = forked::call(
            &self.reaper,
            Inherit {
                stdio: Some(prepared.fds.each_ref().map(|f| f.as_raw_fd())),
                keep: &keep,
            },
            || {
                let pid = container::exec(
                    &self.root,
                    &ExecOptions {
                        id,
                        process: spec.clone(),
                        console_socket: None,
                        console_stream: theirs,
                        pid_file: None,
                        preserve_fds: 0,
                        ignore_paused: false,
                        sub_cgroups: &[],
                    },
                )?;
                Ok(json!(pid.as_raw()))
            },
        )?;
        let pid = answer.as_i64().unwrap_or(0) as i32;
        let mut io = prepared.attached;
        if let Some((ours, _)) = &prepared.console {
            let attached = console::receive_master(ours)
                .map_err(ShimError::io("receiving the pty master"))
                .and_then(|master| io.attach_terminal(master, paths));
            if let Err(e) = attached {
                // Untracked, the process would run on with nobody to wait for it.
                if pid > 0 {
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                return Err(e);
            }
        }
        Ok((pid, io))
    }

    fn exec(&self, req: ExecProcessRequest) -> Result<Empty> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let spec: Process = match req.spec.as_ref() {
            Some(any) => serde_json::from_slice(&any.value).map_err(|e| {
                ShimError::status(Code::INVALID_ARGUMENT, format!("exec spec: {e}"))
            })?,
            None => {
                return Err(ShimError::status(
                    Code::INVALID_ARGUMENT,
                    "exec spec: missing",
                ))
            }
        };
        let mut table = self.lock();
        let task = table.tasks.get_mut(id).ok_or_else(|| no_task(id))?;
        if exec_id.is_empty() || task.execs.contains_key(exec_id) {
            return Err(ShimError::status(
                Code::ALREADY_EXISTS,
                format!("exec id {exec_id:?} of task {id} is taken"),
            ));
        }
        if task.init.phase == Phase::Stopped {
            return Err(ShimError::status(
                Code::FAILED_PRECONDITION,
                format!("task {id} is stopped: cannot exec into it"),
            ));
        }
        let paths = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        task.execs
            .insert(exec_id.to_string(), Proc::new(paths, Some(spec)));
        self.events.publish(Event::ExecAdded(TaskExecAdded {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    /// Records an exit and announces it (TaskOOM first, when the kernel's
    /// OOM killer was the cause).
    fn finish(&self, table: &mut Table, id: &str, exec_id: &str, exit: Exit) {
        let Some(task) = table.tasks.get_mut(id) else {
            return;
        };
        // An OOM kill is told before the exit it caused: for init, and for
        // an exec'd process killed by SIGKILL (the OOM killer's signal),
        // rather than at the watcher's next look.
        let killed = exit.status == 128 + libc::SIGKILL as u32;
        if exec_id.is_empty() || killed {
            self.check_oom(id, task, killed);
        }
        if exec_id.is_empty() {
            self.kill_leftovers(id);
        }
        let Some(p) = task.process_mut(exec_id) else {
            return;
        };
        p.exited(exit);
        self.events.publish(Event::Exit(TaskExit {
            container_id: id.to_string(),
            id: if exec_id.is_empty() { id } else { exec_id }.to_string(),
            pid: p.pid as u32,
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        }));
        self.changed.notify_all();
    }

    /// When init of a container without a pid namespace of its own exits,
    /// what it started lives on (a kernel kills the rest of a pid namespace
    /// only with its init). containerd's runc shim kills them then; so do we,
    /// everything left in the container's groups, with SIGKILL, and wait
    /// (up to 2 s) for them to be gone: one may still hold the output fifo,
    /// which containerd closes once it hears of the exit (its last output
    /// would be lost, and containerd says "file already closed").
    fn kill_leftovers(&self, id: &str) {
        let Ok(record) = self.root.load(id) else {
            return;
        };
        if record.private_pid_ns {
            return;
        }
        let _ = container::kill(
            &self.root,
            id,
            nix::sys::signal::Signal::SIGKILL.into(),
            true,
        );
        let Some(cg) = &record.cgroup else {
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while cg.pids().is_ok_and(|p| !p.is_empty()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Before the server exits: the last events go out first.
    pub fn flush_events(&self) {
        self.events.flush(std::time::Duration::from_secs(2));
    }

    /// Called by the reaper for every exit that is not a forked helper's.
    /// An exit of a pid no task has (yet) is kept in `early_exits`, for a
    /// process that dies before its Create or Start has recorded its pid.
    pub fn process_exited(&self, pid: i32, exit: Exit) {
        let mut table = self.lock();
        let found = table
            .tasks
            .iter()
            .find_map(|(id, t)| t.find_pid(pid).map(|e| (id.clone(), e)));
        let Some((id, exec_id)) = found else {
            if table.early_exits.len() > 1024 {
                table.early_exits.clear();
            }
            table.early_exits.insert(pid, exit);
            return;
        };
        table = self.drain_terminal(table, &id, &exec_id);
        let Some(p) = table
            .tasks
            .get_mut(&id)
            .and_then(|t| t.process_mut(&exec_id))
        else {
            return;
        };
        if p.starting {
            p.held_exit = Some(exit);
            return;
        }
        self.finish(&mut table, &id, &exec_id, exit);
    }

    /// A terminal's last output reaches the fifo before the exit is told:
    /// containerd's client closes its ends of the fifos once it hears of the
    /// exit, and what was not read by then is lost. Bounded, in case a
    /// background process still holds the pty.
    fn drain_terminal<'a>(
        &'a self,
        mut table: MutexGuard<'a, Table>,
        id: &str,
        exec_id: &str,
    ) -> MutexGuard<'a, Table> {
        let drain = table
            .tasks
            .get_mut(id)
            .and_then(|t| t.process_mut(exec_id))
            .and_then(|p| p.io.take_drain());
        if let Some(rx) = drain {
            drop(table);
            let _ = rx.recv_timeout(std::time::Duration::from_millis(500));
            table = self.lock();
        }
        table
    }

    /// Publishes TaskOOM when the task's cgroup counted a new OOM kill.
    /// `killed`: a process of the task has just died of SIGKILL, the OOM
    /// killer's signal. If its group is gone by now (systemd removes an
    /// emptied scope's, racing this look and the watcher's), a kill the
    /// parent group counted since the last look is taken as this one:
    /// the parent's memory.events counts its whole subtree.
    fn check_oom(&self, id: &str, task: &mut Task, killed: bool) {
        let (Some(cg), Some(layout)) = (&task.cgroup, &self.layout) else {
            return;
        };
        // The parent first: a kill between the two reads is then in ours,
        // never only in the parent's baseline.
        let parent_now = cg.parent_oom_kills(layout);
        let kills = match cg.read_oom_kills(layout) {
            Some(kills) => {
                // Ours are in the parent's count too, read before or not.
                let ours = kills.saturating_sub(task.oom_kills);
                task.parent_oom_kills = match (parent_now, task.parent_oom_kills) {
                    (Some(now), Some(before)) => Some(now.max(before + ours)),
                    (now, before) => now.or(before),
                };
                kills
            }
            // Not when the SIGKILL was sent through us (Kill: a stop's
            // grace ran out, a user's kill -9).
            None if killed && !task.sigkilled => match (task.parent_oom_kills, parent_now) {
                (Some(before), Some(now)) if now > before => {
                    task.parent_oom_kills = Some(now);
                    task.oom_kills + 1
                }
                _ => return,
            },
            None => return,
        };
        // One TaskOOM per kill, as the runc shim sends them (bounded).
        for _ in task.oom_kills..kills.min(task.oom_kills + 64) {
            self.events.publish(Event::Oom(TaskOOM {
                container_id: id.to_string(),
                ..Default::default()
            }));
        }
        task.oom_kills = task.oom_kills.max(kills);
    }

    /// Polled by the OOM watcher: a process killed by the OOM killer that is
    /// not init still makes a TaskOOM.
    pub fn watch_oom(&self) {
        let mut table = self.lock();
        let ids: Vec<String> = table
            .tasks
            .iter()
            // Also a task still being started: a program that runs out of
            // memory at once is killed before Start has recorded it running.
            .filter(|(_, t)| t.init.phase != Phase::Stopped)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(task) = table.tasks.get_mut(&id) {
                self.check_oom(&id, task, false);
            }
        }
    }

    fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        if !exec_id.is_empty() {
            let mut table = self.lock();
            let task = table.tasks.get_mut(id).ok_or_else(|| no_task(id))?;
            let p = task
                .execs
                .get(exec_id)
                .ok_or_else(|| no_process(id, exec_id))?;
            if p.phase == Phase::Running || p.starting {
                return Err(ShimError::status(
                    Code::FAILED_PRECONDITION,
                    format!("process {exec_id} of task {id} is running: cannot delete it"),
                ));
            }
            let p = task.execs.remove(exec_id).expect("looked up above");
            return Ok(delete_response(&p));
        }
        {
            let table = self.lock();
            let task = table.tasks.get(id).ok_or_else(|| no_task(id))?;
            if task.init.phase == Phase::Running || task.init.starting {
                return Err(ShimError::status(
                    Code::FAILED_PRECONDITION,
                    format!("task {id} is running: cannot delete it"),
                ));
            }
        }
        // Created or stopped: the library kills a parked init, runs poststop
        // hooks and removes the cgroups and the state.
        forked::call(
            &self.reaper,
            Inherit {
                stdio: None,
                keep: &[],
            },
            || {
                container::delete(&self.root, id, true)?;
                Ok(Value::Null)
            },
        )?;
        let mut table = self.lock();
        let task = table.tasks.remove(id).ok_or_else(|| no_task(id))?;
        if let Some(target) = &task.mounted_rootfs {
            mounts::unmount_rootfs(target);
        }
        let resp = delete_response(&task.init);
        // The init's: no exec id (the runc shim's event).
        self.events.publish(Event::Delete(TaskDelete {
            container_id: id.to_string(),
            pid: resp.pid,
            exit_status: resp.exit_status,
            exited_at: resp.exited_at.clone(),
            ..Default::default()
        }));
        self.changed.notify_all();
        Ok(resp)
    }

    fn state(&self, req: StateRequest) -> Result<StateResponse> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let table = self.lock();
        let task = table.tasks.get(id).ok_or_else(|| no_task(id))?;
        let p = task
            .process(exec_id)
            .ok_or_else(|| no_process(id, exec_id))?;
        let status = match p.phase {
            Phase::Created => Status::CREATED,
            Phase::Running if task.paused && exec_id.is_empty() => Status::PAUSED,
            Phase::Running => Status::RUNNING,
            Phase::Stopped => Status::STOPPED,
        };
        Ok(StateResponse {
            id: if exec_id.is_empty() { id } else { exec_id }.to_string(),
            bundle: task.bundle.display().to_string(),
            pid: p.pid as u32,
            status: status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: p.exit.map(|e| e.status).unwrap_or(0),
            exited_at: p
                .exit
                .map(|e| MessageField::some(timestamp(e.at)))
                .unwrap_or_default(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        })
    }

    fn kill(&self, req: KillRequest) -> Result<Empty> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let sig = skiff_runtime::signal::SignalNumber::new(req.signal as i32).ok_or_else(|| {
            ShimError::status(
                Code::INVALID_ARGUMENT,
                format!("signal {} is not a signal", req.signal),
            )
        })?;
        let pid = {
            let mut table = self.lock();
            let task = table.tasks.get_mut(id).ok_or_else(|| no_task(id))?;
            // A SIGKILL of ours is not the OOM killer's (see check_oom).
            if req.signal == libc::SIGKILL as u32 {
                task.sigkilled = true;
            }
            let p = task
                .process(exec_id)
                .ok_or_else(|| no_process(id, exec_id))?;
            if p.exit.is_some() {
                return Err(ShimError::not_found(format!(
                    "process {} of task {id}: process already finished",
                    if exec_id.is_empty() { id } else { exec_id }
                )));
            }
            if p.pid == 0 {
                return Err(ShimError::status(
                    Code::FAILED_PRECONDITION,
                    format!("process {exec_id} of task {id} has not started: cannot signal it"),
                ));
            }
            p.pid
        };
        if exec_id.is_empty() && req.all {
            container::kill(&self.root, id, sig, true)?;
        } else {
            skiff_runtime::sys::kill(Pid::from_raw(pid), sig)
                .map_err(ShimError::io(format!("kill {pid}")))?;
        }
        // A frozen process does not die of SIGKILL until thawed: a paused
        // task that is killed is resumed, as runc does (else it stays
        // PAUSED for good, and a waiting `ctr run` with it).
        if exec_id.is_empty() && req.signal == libc::SIGKILL as u32 {
            let mut table = self.lock();
            if let Some(task) = table.tasks.get_mut(id).filter(|t| t.paused) {
                container::resume(&self.root, id)?;
                task.paused = false;
                self.events.publish(Event::Resumed(TaskResumed {
                    container_id: id.to_string(),
                    ..Default::default()
                }));
            }
        }
        Ok(Empty::new())
    }

    /// Fails with NotFound unless `id` is one of this shim's tasks: others
    /// in the same state root belong to other shims.
    fn own(&self, id: &str) -> Result<()> {
        match self.lock().tasks.contains_key(id) {
            true => Ok(()),
            false => Err(no_task(id)),
        }
    }

    fn pids(&self, req: PidsRequest) -> Result<PidsResponse> {
        self.own(&req.id)?;
        let pids = container::pids(&self.root, &req.id)?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|p| ProcessInfo {
                    pid: p.as_raw() as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, id: &str, pause: bool) -> Result<Empty> {
        let mut table = self.lock();
        let task = table.tasks.get_mut(id).ok_or_else(|| no_task(id))?;
        if pause {
            container::pause(&self.root, id)?;
            task.paused = true;
            self.events.publish(Event::Paused(TaskPaused {
                container_id: id.to_string(),
                ..Default::default()
            }));
        } else {
            container::resume(&self.root, id)?;
            task.paused = false;
            self.events.publish(Event::Resumed(TaskResumed {
                container_id: id.to_string(),
                ..Default::default()
            }));
        }
        Ok(Empty::new())
    }

    fn close_io(&self, req: CloseIORequest) -> Result<Empty> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let table = self.lock();
        let task = table.tasks.get(id).ok_or_else(|| no_task(id))?;
        let p = task
            .process(exec_id)
            .ok_or_else(|| no_process(id, exec_id))?;
        if req.stdin {
            p.io.close_stdin();
        }
        Ok(Empty::new())
    }

    fn resize_pty(&self, req: ResizePtyRequest) -> Result<Empty> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let table = self.lock();
        let task = table.tasks.get(id).ok_or_else(|| no_task(id))?;
        let p = task
            .process(exec_id)
            .ok_or_else(|| no_process(id, exec_id))?;
        let master = p.io.master_fd().ok_or_else(|| {
            ShimError::status(
                Code::FAILED_PRECONDITION,
                format!("process of task {id} has no terminal"),
            )
        })?;
        skiff_runtime::sys::set_window_size(master, req.height as u16, req.width as u16)
            .map_err(ShimError::io("resizing the pty"))?;
        Ok(Empty::new())
    }

    fn update(&self, req: UpdateTaskRequest) -> Result<Empty> {
        self.own(&req.id)?;
        let res: LinuxResources = match req.resources.as_ref() {
            Some(any) => serde_json::from_slice(&any.value).map_err(|e| {
                ShimError::status(Code::INVALID_ARGUMENT, format!("update resources: {e}"))
            })?,
            None => return Ok(Empty::new()),
        };
        // In a forked copy: with the systemd driver, update runs the
        // skiff-systemd helper, whose exit the shim's reaper would take
        // from under the library's wait (ECHILD).
        let nothing = Inherit {
            stdio: None,
            keep: &[],
        };
        forked::call(&self.reaper, nothing, || {
            container::update(&self.root, &req.id, &res)?;
            Ok(Value::Null)
        })?;
        Ok(Empty::new())
    }

    fn wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let mut table = self.lock();
        loop {
            let task = table.tasks.get(id).ok_or_else(|| no_task(id))?;
            let p = task
                .process(exec_id)
                .ok_or_else(|| no_process(id, exec_id))?;
            if let Some(exit) = p.exit {
                return Ok(WaitResponse {
                    exit_status: exit.status,
                    exited_at: MessageField::some(timestamp(exit.at)),
                    ..Default::default()
                });
            }
            table = self.changed.wait(table).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stats(&self, req: StatsRequest) -> Result<StatsResponse> {
        self.own(&req.id)?;
        let (stats, _) = container::stats(&self.root, &req.id)?;
        let unified = self.layout.as_ref().is_some_and(Layout::is_v2);
        Ok(StatsResponse {
            stats: MessageField::some(crate::metrics::to_any(&stats, unified)),
            ..Default::default()
        })
    }

    fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse> {
        let table = self.lock();
        let task_pid = table.tasks.get(&req.id).map(|t| t.init.pid).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid as u32,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    /// Exits the server once no task is left; a pod's shim stays for the
    /// pod's other containers.
    fn shutdown(&self) -> Result<Empty> {
        if self.lock().tasks.is_empty() {
            let _ = self
                .shutdown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(());
        }
        Ok(Empty::new())
    }
}

fn delete_response(p: &Proc) -> DeleteResponse {
    // A process that never ran was killed by the delete: 128 + SIGKILL, as runc's shim reports.
    let exit = p.exit.unwrap_or(Exit {
        status: 137,
        at: SystemTime::now(),
    });
    DeleteResponse {
        pid: p.pid as u32,
        exit_status: exit.status,
        exited_at: MessageField::some(timestamp(exit.at)),
        ..Default::default()
    }
}

/// The generated ttrpc interface, mapped onto the methods above.
impl containerd_shim_protos::Task for Service {
    fn state(&self, _: &TtrpcContext, r: StateRequest) -> ttrpc::Result<StateResponse> {
        Ok(Service::state(self, r)?)
    }
    fn create(&self, _: &TtrpcContext, r: CreateTaskRequest) -> ttrpc::Result<CreateTaskResponse> {
        Ok(Service::create(self, r)?)
    }
    fn start(&self, _: &TtrpcContext, r: StartRequest) -> ttrpc::Result<StartResponse> {
        Ok(Service::start(self, r)?)
    }
    fn delete(&self, _: &TtrpcContext, r: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        Ok(Service::delete(self, r)?)
    }
    fn pids(&self, _: &TtrpcContext, r: PidsRequest) -> ttrpc::Result<PidsResponse> {
        Ok(Service::pids(self, r)?)
    }
    fn pause(&self, _: &TtrpcContext, r: PauseRequest) -> ttrpc::Result<Empty> {
        Ok(Service::pause(self, &r.id, true)?)
    }
    fn resume(&self, _: &TtrpcContext, r: ResumeRequest) -> ttrpc::Result<Empty> {
        Ok(Service::pause(self, &r.id, false)?)
    }
    fn checkpoint(&self, _: &TtrpcContext, r: CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        Ok(Service::checkpoint(self, r)?)
    }
    fn kill(&self, _: &TtrpcContext, r: KillRequest) -> ttrpc::Result<Empty> {
        Ok(Service::kill(self, r)?)
    }
    fn exec(&self, _: &TtrpcContext, r: ExecProcessRequest) -> ttrpc::Result<Empty> {
        Ok(Service::exec(self, r)?)
    }
    fn resize_pty(&self, _: &TtrpcContext, r: ResizePtyRequest) -> ttrpc::Result<Empty> {
        Ok(Service::resize_pty(self, r)?)
    }
    fn close_io(&self, _: &TtrpcContext, r: CloseIORequest) -> ttrpc::Result<Empty> {
        Ok(Service::close_io(self, r)?)
    }
    fn update(&self, _: &TtrpcContext, r: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        Ok(Service::update(self, r)?)
    }
    fn wait(&self, _: &TtrpcContext, r: WaitRequest) -> ttrpc::Result<WaitResponse> {
        Ok(Service::wait(self, r)?)
    }
    fn stats(&self, _: &TtrpcContext, r: StatsRequest) -> ttrpc::Result<StatsResponse> {
        Ok(Service::stats(self, r)?)
    }
    fn connect(&self, _: &TtrpcContext, r: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        Ok(Service::connect(self, r)?)
    }
    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> ttrpc::Result<Empty> {
        Ok(Service::shutdown(self)?)
    }
}

/// The exit kept for `pid` when it died before it was recorded, unless the
/// entry is stale: our reaper collected that exit, so a pid that is alive
/// now belongs to a new process (pid reuse) and the entry is not its exit.
fn take_early_exit(early_exits: &mut HashMap<i32, Exit>, pid: i32) -> Option<Exit> {
    let exit = early_exits.remove(&pid)?;
    let gone = nix::sys::signal::kill(Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
    gone.then_some(exit)
}

/// An inotify instance for OOM notices, on a cgroup v2 host.
fn oom_inotify() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return None;
    }
    // SAFETY: a new fd, owned from here on.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    // SAFETY: fd is ours when non-negative.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
