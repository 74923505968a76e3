//! Readying the guest, as its PID 1: the kernel filesystems, the modules
//! the initramfs carries (virtio, vsock, virtio-blk; the cloud kernel has
//! them as modules), and a root that containers can pivot_root away from.
//!
//! Only what serving needs comes before the agent says it serves (the vsock
//! transport's modules); the rootfs's device driver is loaded when a
//! container first needs it (`load_driver`), and the cgroup
//! controllers are enabled in the background while the host connects
//! (`finish_in_background`; a create waits for it).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Condvar, Mutex};

use nix::mount::{mount, MsFlags};

use crate::error::AgentError;

/// The modules to load before serving (the vsock transport), one path per
/// line, in dependency order (written by scripts/vm-image.sh).
const MODULE_LIST: &str = "/lib/modules/load-order";
/// The modules a rootfs on a disk needs past those (virtio-blk).
const DISK_MODULES: &str = "/lib/modules/load-disk";
/// The modules the virtio-fs share needs past those (fuse, virtiofs).
const SHARE_MODULES: &str = "/lib/modules/load-share";
/// The modules a pod's network needs (virtio-net), at its first interface.
const NETWORK_MODULES: &str = "/lib/modules/load-net";

/// `skiff_trace=1` on the kernel command line: the agent's own steps, with
/// the time since boot, on the console (and the library's phases, call.rs).
fn tracing() -> bool {
    std::env::var_os("skiff_trace").is_some()
}

/// A step of the agent's, on the console when tracing.
pub fn trace(step: std::fmt::Arguments<'_>) {
    if tracing() {
        eprintln!("skiff-agent: {step} at {:?}", since_boot());
    }
}

/// Time since the kernel started (CLOCK_BOOTTIME), for the console log.
pub fn since_boot() -> std::time::Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(std::time::Duration::from)
        .unwrap_or_default()
}

pub fn is_init() -> bool {
    std::process::id() == 1
}

/// The device drivers loaded on first use, opened while the initramfs that
/// holds them is still the root (a VM uses one rootfs kind, maybe a
/// network, and each costs 20-30 ms of the start under TCG). None outside
/// a guest.
static DRIVERS: Mutex<Option<Drivers>> = Mutex::new(None);

struct Drivers {
    disk: Vec<(String, File)>,
    share: Vec<(String, File)>,
    network: Vec<(String, File)>,
}

/// A device the guest may need a driver for.
#[derive(Clone, Copy)]
pub enum Device {
    /// A container's rootfs on a virtio-blk disk.
    Disk,
    /// Containers' rootfs in the virtio-fs share.
    Share,
    /// The pod's network (virtio-net).
    Network,
}

/// The guest's set-up, in order, up to what serving needs; the agent's
/// listener, on `port`. It listens, and the host is told to connect, as
/// soon as the vsock transport is up: the host's connection (its accept of
/// the readiness call, its CONNECT, its first request: round trips through
/// vhost-device-vsock) then waits in the listener's backlog while the
/// guest leaves the initramfs and mounts, instead of after.
pub fn prepare(port: u32, ready_port: u32) -> Result<OwnedFd, AgentError> {
    mount_fs(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        "mode=0755",
    )?;
    mount_fs("proc", "/proc", "proc", nosuid_noexec(), "")?;
    mount_fs("sysfs", "/sys", "sysfs", nosuid_noexec(), "")?;
    let before = since_boot();
    load_modules(&open_modules(MODULE_LIST)?)?;
    eprintln!(
        "skiff-agent: init at {before:?} after boot, modules loaded in {:?}",
        since_boot().saturating_sub(before)
    );
    let listener = listen_vsock(port)?;
    announce_ready(ready_port)?;
    *DRIVERS.lock().unwrap_or_else(|p| p.into_inner()) = Some(Drivers {
        disk: open_modules(DISK_MODULES)?,
        share: open_modules(SHARE_MODULES)?,
        network: open_modules(NETWORK_MODULES)?,
    });
    leave_initramfs()?;
    mount_fs("cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid_noexec(), "")?;
    mount_fs(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID,
        "newinstance,ptmxmode=0666",
    )?;
    mount_fs("shm", "/dev/shm", "tmpfs", nosuid_noexec(), "mode=1777")?;
    mount_fs("run", "/run", "tmpfs", MsFlags::MS_NOSUID, "mode=0755")?;
    mount_fs("tmp", "/tmp", "tmpfs", MsFlags::MS_NOSUID, "mode=1777")?;
    loopback_up()?;
    Ok(listener)
}

/// A vsock stream socket listening on `port` of any CID, non-blocking as
/// ttrpc's own listeners are.
fn listen_vsock(port: u32) -> Result<OwnedFd, AgentError> {
    use nix::sys::socket::VsockAddr;
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    let setup = |step| move |e: nix::Error| AgentError::Setup(step, e.into());
    let sock = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(setup("creating the agent's socket"))?;
    bind(
        sock.as_raw_fd(),
        &VsockAddr::new(libc::VMADDR_CID_ANY, port),
    )
    .map_err(setup("binding the agent's port"))?;
    listen(
        &sock,
        Backlog::new(16).map_err(setup("listening on the agent's port"))?,
    )
    .map_err(setup("listening on the agent's port"))?;
    Ok(sock)
}

/// The driver of `device` loaded, if not yet (nothing to do outside a
/// guest). A failure leaves the modules to be tried again.
pub fn load_driver(device: Device) -> Result<(), AgentError> {
    let mut drivers = DRIVERS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(drivers) = drivers.as_mut() else {
        return Ok(());
    };
    let modules = match device {
        Device::Disk => &mut drivers.disk,
        Device::Share => &mut drivers.share,
        Device::Network => &mut drivers.network,
    };
    load_modules(modules)?;
    modules.clear();
    Ok(())
}

/// Whether `finish_in_background` is still at work.
static BACKGROUND_PENDING: Mutex<bool> = Mutex::new(false);
static BACKGROUND_DONE: Condvar = Condvar::new();

/// The rest of the guest's set-up, in a thread of its own while the host
/// connects and sends its first request: every cgroup controller enabled
/// in the root's subtree_control (the library would do it at the first
/// create: ~20 ms of it under TCG).
pub fn finish_in_background() {
    *BACKGROUND_PENDING.lock().unwrap_or_else(|p| p.into_inner()) = true;
    std::thread::spawn(|| {
        enable_cgroup_controllers();
        trace(format_args!("cgroup controllers enabled"));
        *BACKGROUND_PENDING.lock().unwrap_or_else(|p| p.into_inner()) = false;
        BACKGROUND_DONE.notify_all();
        report_readiness();
    });
}

/// On the console, should the readiness call have failed (the host then
/// waits for it in vain, and shows the console's tail): its connect was
/// not waited for. Done with the socket either way.
fn report_readiness() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{getsockopt, sockopt::SocketError};
    use std::os::fd::AsFd;
    let Some(sock) = READINESS.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
    let answered = poll(&mut fds, PollTimeout::from(10_000u16)).is_ok_and(|n| n > 0);
    match getsockopt(&sock, SocketError) {
        Ok(0) if answered => {}
        Ok(0) => eprintln!("skiff-agent: the host's readiness port did not answer in 10 s"),
        Ok(errno) => eprintln!(
            "skiff-agent: calling the host's readiness port: {}",
            std::io::Error::from_raw_os_error(errno)
        ),
        Err(e) => eprintln!("skiff-agent: calling the host's readiness port: {e}"),
    }
}

/// Waits for `finish_in_background` (at once when there is none).
pub fn wait_for_background() {
    let mut pending = BACKGROUND_PENDING.lock().unwrap_or_else(|p| p.into_inner());
    while *pending {
        pending = BACKGROUND_DONE
            .wait(pending)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Every controller the root offers, enabled for its children, as the
/// library's create does on a container's path (cgroups::resources::
/// v2_enable_controllers); a failure is left for that create to meet.
fn enable_cgroup_controllers() {
    let root = Path::new("/sys/fs/cgroup");
    let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<String> = available
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect();
    if !wanted.is_empty() {
        let _ = std::fs::write(root.join("cgroup.subtree_control"), wanted.join(" "));
    }
}

/// The guest's loopback interface up: the pod's containers share the
/// guest's network namespace, and reach each other on 127.0.0.1 (the
/// kernel leaves `lo` down until someone brings it up).
fn loopback_up() -> Result<(), AgentError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| AgentError::Setup("creating a socket for lo", e.into()))?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the ifreq we own.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) };
    if rc != 0 {
        return Err(AgentError::Setup(
            "reading lo's flags",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: ifru_flags is the member SIOCGIFFLAGS filled in.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) };
    if rc != 0 {
        return Err(AgentError::Setup(
            "bringing lo up",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn nosuid_noexec() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
}

fn mount_fs(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), AgentError> {
    std::fs::create_dir_all(target).map_err(AgentError::path("creating", target))?;
    let data = (!data.is_empty()).then_some(data);
    mount(Some(source), target, Some(fstype), flags, data)
        .map_err(|e| AgentError::path("mounting", target)(e.into()))
}

/// The modules a list names, opened (a missing list is an empty one).
fn open_modules(list: &str) -> Result<Vec<(String, File)>, AgentError> {
    let text = match std::fs::read_to_string(list) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AgentError::path("reading", list)(e)),
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|module| {
            File::open(module)
                .map(|f| (module.to_string(), f))
                .map_err(AgentError::path("opening the module", module))
        })
        .collect()
}

/// finit_module of each module, in order; one already loaded (or built in)
/// is fine.
fn load_modules(modules: &[(String, File)]) -> Result<(), AgentError> {
    for (module, file) in modules {
        // SAFETY: finit_module reads the open file and an empty, NUL-ended
        // parameter string; no memory of ours is written.
        let rc =
            unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), c"".as_ptr(), 0) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(AgentError::path("loading the module", module)(e));
            }
        }
        trace(format_args!("module {module} loaded"));
    }
    Ok(())
}

/// The initramfs is the kernel's rootfs, which pivot_root(2) cannot move
/// away from (EINVAL), so a container could only chroot. As switch_root
/// does: a tmpfs becomes the root (moved over /, then chroot into it), and
/// pivot_root works for every container below it. The kernel filesystems
/// move along.
fn leave_initramfs() -> Result<(), AgentError> {
    let new_root = "/newroot";
    mount_fs("root", new_root, "tmpfs", MsFlags::MS_NOSUID, "mode=0755")?;
    for dir in ["/dev", "/proc", "/sys"] {
        let target = format!("{new_root}{dir}");
        std::fs::create_dir_all(&target).map_err(AgentError::path("creating", &target))?;
        mount(
            Some(dir),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| AgentError::path("moving", dir)(e.into()))?;
    }
    std::env::set_current_dir(new_root).map_err(AgentError::path("entering", new_root))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| AgentError::path("moving the new root over", "/")(e.into()))?;
    nix::unistd::chroot(".").map_err(|e| AgentError::path("chroot into", new_root)(e.into()))?;
    std::env::set_current_dir("/").map_err(AgentError::path("entering", "/"))?;
    Ok(())
}

/// Flushes the disks and powers the guest off (qemu then exits).
pub fn power_off() {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
}

/// The virtio-blk disk whose serial is `serial` (/sys/block/vdX/serial).
pub fn disk_by_serial(serial: &str) -> Result<std::path::PathBuf, AgentError> {
    load_driver(Device::Disk)?;
    let blocks = Path::new("/sys/block");
    let entries = std::fs::read_dir(blocks).map_err(AgentError::path("listing", blocks))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let found = std::fs::read_to_string(entry.path().join("serial")).unwrap_or_default();
        if found.trim() == serial {
            return Ok(Path::new("/dev").join(name));
        }
    }
    Err(AgentError::NotFound(format!(
        "rootfs_disk_serial: no disk with serial {serial:?} in the guest"
    )))
}

/// Tells the host to connect: a connection to its READY_PORT, made once
/// the agent's port listens (the host waits for it instead of probing a
/// guest that may not be up). Not waited for: the guest goes on with its
/// set-up while the call travels.
fn announce_ready(port: u32) -> Result<(), AgentError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};
    let sock = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| AgentError::Setup("creating the readiness socket", e.into()))?;
    match connect(
        sock.as_raw_fd(),
        &VsockAddr::new(libc::VMADDR_CID_HOST, port),
    ) {
        Ok(()) | Err(nix::Error::EINPROGRESS) => {}
        Err(e) => {
            return Err(AgentError::Setup(
                "connecting to the host's readiness port",
                e.into(),
            ))
        }
    }
    // Kept open until report_readiness: closing a connection still in
    // progress would abort it.
    *READINESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(sock);
    Ok(())
}

/// The readiness call's socket, connecting while the guest goes on.
static READINESS: Mutex<Option<OwnedFd>> = Mutex::new(None);
