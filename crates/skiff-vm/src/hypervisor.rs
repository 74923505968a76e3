//! The hypervisor interface: what a backend is given (`VmSpec`) and how it
//! starts a VM. The sandbox owns the process it returns (waits, kills).
//!
//! Only qemu with TCG runs guests on the machines this was built on (their
//! /dev/kvm cannot run a stock kernel); cloud-hypervisor and firecracker
//! take the same spec (kernel, initramfs, command line, a vhost-user vsock
//! socket, raw disks, a serial log) when a KVM host exists.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::error::VmError;

/// A network device of the guest: virtio-net on a tap the caller holds
/// open (its file is inherited by the hypervisor).
#[derive(Debug, Clone, Copy)]
pub struct NicDevice {
    pub tap_fd: std::os::fd::RawFd,
    pub mac: [u8; 6],
}

/// A MAC as qemu's `mac=` and the guest's tools write it:
/// "aa:bb:cc:dd:ee:ff".
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A disk the guest sees as virtio-blk, found there by its serial.
#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    pub serial: String,
    pub read_only: bool,
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub cmdline: String,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The vhost-user socket of the vsock device's backend.
    pub vhost_vsock_socket: PathBuf,
    pub disks: Vec<Disk>,
    /// virtio-fs shares: (tag, the vhost-user socket of their virtiofsd).
    pub shares: Vec<(String, PathBuf)>,
    /// The guest's serial console goes here (a hang is otherwise invisible).
    pub console_log: PathBuf,
    pub nics: Vec<NicDevice>,
}

pub trait Hypervisor: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts the VM; it runs until the guest powers off or is killed.
    fn launch(&self, spec: &VmSpec) -> Result<Child, VmError>;
}

/// qemu with TCG on a q35 machine. Guest memory is a shared memfd:
/// vhost-user backends (vhost-device-vsock) map it.
#[derive(Debug, Clone)]
pub struct Qemu {
    pub binary: PathBuf,
    /// "tcg", or "kvm" on a host whose KVM runs a stock kernel.
    pub accel: String,
}

impl Default for Qemu {
    fn default() -> Self {
        Qemu {
            binary: PathBuf::from("qemu-system-x86_64"),
            accel: "tcg".into(),
        }
    }
}

impl Qemu {
    pub fn args(&self, spec: &VmSpec) -> Vec<String> {
        let mem = spec.memory_mib;
        let mut args: Vec<String> = vec![
            "-machine".into(),
            format!("q35,accel={}", self.accel),
            "-cpu".into(),
            "max".into(),
            "-smp".into(),
            spec.cpus.to_string(),
            "-m".into(),
            format!("{mem}M"),
            "-object".into(),
            format!("memory-backend-memfd,id=mem,size={mem}M,share=on"),
            "-numa".into(),
            "node,memdev=mem".into(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-no-reboot".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-chardev".into(),
            format!("file,id=console,path={}", spec.console_log.display()),
            "-serial".into(),
            "chardev:console".into(),
            "-kernel".into(),
            spec.kernel.display().to_string(),
            "-initrd".into(),
            spec.initramfs.display().to_string(),
            "-append".into(),
            spec.cmdline.clone(),
            "-chardev".into(),
            format!("socket,id=vsock,path={}", spec.vhost_vsock_socket.display()),
            "-device".into(),
            "vhost-user-vsock-pci,chardev=vsock".into(),
        ];
        for (i, (tag, socket)) in spec.shares.iter().enumerate() {
            args.push("-chardev".into());
            args.push(format!("socket,id=fs{i},path={}", socket.display()));
            args.push("-device".into());
            args.push(format!("vhost-user-fs-pci,chardev=fs{i},tag={tag}"));
        }
        for (i, nic) in spec.nics.iter().enumerate() {
            args.push("-netdev".into());
            args.push(format!("tap,id=net{i},fd={}", nic.tap_fd));
            args.push("-device".into());
            args.push(format!(
                "virtio-net-pci,netdev=net{i},mac={}",
                mac_text(&nic.mac)
            ));
        }
        for (i, disk) in spec.disks.iter().enumerate() {
            args.push("-drive".into());
            args.push(format!(
                "file={},if=none,id=disk{i},format=raw,readonly={}",
                disk.path.display(),
                if disk.read_only { "on" } else { "off" }
            ));
            args.push("-device".into());
            args.push(format!(
                "virtio-blk-pci,drive=disk{i},serial={}",
                disk.serial
            ));
        }
        args
    }
}

impl Hypervisor for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn launch(&self, spec: &VmSpec) -> Result<Child, VmError> {
        for disk in &spec.disks {
            // qemu's -drive and -device take commas as separators.
            if disk.serial.contains(',') || disk.path.to_string_lossy().contains(',') {
                return Err(VmError::InvalidConfig(format!(
                    "disk {}: a comma in the path or serial",
                    disk.path.display()
                )));
            }
        }
        let log = std::fs::File::create(spec.console_log.with_extension("qemu.log")).map_err(
            VmError::path("creating", spec.console_log.with_extension("qemu.log")),
        )?;
        let inherited: Vec<_> = spec.nics.iter().map(|n| n.tap_fd).collect();
        let mut cmd = Command::new(&self.binary);
        // SAFETY: between fork and exec only fcntl, async-signal-safe, on
        // descriptors the caller holds open: qemu inherits the taps.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &inherited {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.args(self.args(spec))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| VmError::Spawn {
                program: self.binary.display().to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            kernel: "/k".into(),
            initramfs: "/i".into(),
            cmdline: "console=ttyS0".into(),
            cpus: 2,
            memory_mib: 300,
            vhost_vsock_socket: "/s/vhost.sock".into(),
            disks: vec![Disk {
                path: "/d/root.ext4".into(),
                serial: "rootfs".into(),
                read_only: true,
            }],
            shares: vec![("skiff".into(), "/s/fs.sock".into())],
            console_log: "/s/console.log".into(),
            nics: vec![NicDevice {
                tap_fd: 9,
                mac: [0x0a, 0x58, 0x0a, 0x58, 0, 0x2f],
            }],
        }
    }

    #[test]
    fn qemu_gets_shared_memory_and_every_device() {
        let args = Qemu::default().args(&spec()).join(" ");
        for want in [
            "-machine q35,accel=tcg",
            "-smp 2",
            "memory-backend-memfd,id=mem,size=300M,share=on",
            "socket,id=vsock,path=/s/vhost.sock",
            "vhost-user-vsock-pci,chardev=vsock",
            "socket,id=fs0,path=/s/fs.sock",
            "vhost-user-fs-pci,chardev=fs0,tag=skiff",
            "file=/d/root.ext4,if=none,id=disk0,format=raw,readonly=on",
            "virtio-blk-pci,drive=disk0,serial=rootfs",
            "file,id=console,path=/s/console.log",
            "-netdev tap,id=net0,fd=9",
            "virtio-net-pci,netdev=net0,mac=0a:58:0a:58:00:2f",
        ] {
            assert!(args.contains(want), "{want:?} missing in {args}");
        }
    }

    #[test]
    fn a_comma_in_a_disk_is_refused_before_qemu_runs() {
        let mut spec = spec();
        spec.disks[0].serial = "a,b".into();
        let qemu = Qemu {
            binary: "/nonexistent/qemu".into(),
            accel: "tcg".into(),
        };
        let e = qemu.launch(&spec).unwrap_err().to_string();
        assert!(e.contains("comma"), "{e}");
    }
}
