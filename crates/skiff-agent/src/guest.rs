//! Readying the guest, as its PID 1: the kernel filesystems, the modules
//! the initramfs carries (virtio, vsock, virtio-blk; the cloud kernel has
//! them as modules), and a root that containers can pivot_root away from.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::error::AgentError;

/// The modules to load, one path per line, in dependency order (written by
/// scripts/vm-image.sh).
const MODULE_LIST: &str = "/lib/modules/load-order";

/// Time since the kernel started (CLOCK_BOOTTIME), for the console log.
pub fn since_boot() -> std::time::Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(std::time::Duration::from)
        .unwrap_or_default()
}

pub fn is_init() -> bool {
    std::process::id() == 1
}

/// The guest's set-up, in order.
pub fn prepare() -> Result<(), AgentError> {
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
    load_modules()?;
    eprintln!(
        "skiff-agent: init at {before:?} after boot, modules loaded in {:?}",
        since_boot().saturating_sub(before)
    );
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
    Ok(())
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

/// insmod of each module in the list; one already loaded (or built in) is
/// fine.
fn load_modules() -> Result<(), AgentError> {
    let list = match std::fs::read_to_string(MODULE_LIST) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AgentError::path("reading", MODULE_LIST)(e)),
    };
    for module in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let file = File::open(module).map_err(AgentError::path("opening the module", module))?;
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

/// Tells the host the agent serves: a connection to its READY_PORT (the
/// host waits for it instead of probing a guest that may not be up).
pub fn announce_ready(port: u32) -> Result<(), AgentError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};
    let sock = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| AgentError::Setup("creating the readiness socket", e.into()))?;
    connect(
        sock.as_raw_fd(),
        &VsockAddr::new(libc::VMADDR_CID_HOST, port),
    )
    .map_err(|e| AgentError::Setup("connecting to the host's readiness port", e.into()))
}
