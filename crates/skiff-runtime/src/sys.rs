//! The thin syscall layer: the few calls that nix does not wrap, each wrapped once
//! with a `SAFETY:` note. Everything above this module is safe code.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

pub mod vfork;

/// Mirrors the kernel's `struct clone_args` (include/uapi/linux/sched.h) up to
/// `cgroup` (version 2, 88 bytes, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone_fork` returned in this process.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2) with namespace flags: the child starts in the new namespaces at once, so
/// with CLONE_NEWPID it is PID 1 there and no intermediate process is needed.
pub fn clone_fork(flags: u64) -> io::Result<Forked> {
    clone_fork_into(flags, None)
}

/// [`clone_fork`], and with `cgroup` (a cgroup2 directory) the child is born in
/// that group (CLONE_INTO_CGROUP): no migration, which is the costliest step
/// of joining a group.
pub fn clone_fork_into(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let mut args = CloneArgs {
        flags,
        // With CLONE_PARENT clone3 takes no exit signal: the child gets its
        // parent's (ours is SIGCHLD), as a sibling should.
        exit_signal: match flags & libc::CLONE_PARENT as u64 {
            0 => libc::SIGCHLD as u64,
            _ => 0,
        },
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(2): the
    // child gets a copy of this address space and returns here with 0 (with
    // CLONE_VFORK the caller just sleeps until the child execs or exits). The
    // caller is single-threaded (skiff-oci never starts threads), so no lock
    // is held by a thread that does not exist in the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// kill(2) with any signal number, real-time ones included (nix's `Signal`
/// has no real-time signals).
pub fn kill(pid: Pid, sig: crate::signal::SignalNumber) -> io::Result<()> {
    // SAFETY: kill takes a pid and a signal number and touches no memory.
    if unsafe { libc::kill(pid.as_raw(), sig.as_raw()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// pidfd_open(2): a file descriptor that becomes readable when the process exits,
/// so that waiting for a process that is not our child needs no polling loop.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// seccomp(SECCOMP_SET_MODE_FILTER): installs a classic BPF program (as
/// libseccomp would, but from bytes compiled earlier). With
/// SECCOMP_FILTER_FLAG_NEW_LISTENER in `flags` it returns the notify fd.
pub fn seccomp_set_filter(
    insns: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> io::Result<Option<OwnedFd>> {
    let len = u16::try_from(insns.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "filter longer than 65535 instructions",
        )
    })?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` instructions that outlive the call; the
    // kernel copies the program and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
}

/// Drops this program's read-only pages (code, constants) from the page
/// tables and, with glibc, returns free heap to the kernel (musl's allocator
/// does that by itself; skiff-oci's arena keeps what it has). The pages stay
/// in the page cache, shared, and fault back in when touched. For init, parked on the
/// exec fifo for as long as the caller likes, they were most of its resident
/// set (measured 1.8 MB -> 0.5 MB). Call it right before the wait: what
/// runs after it faults its pages back in.
pub fn release_idle_pages() {
    // SAFETY: malloc_trim only gives free memory of this process's heap back.
    // (musl's allocator returns freed memory by itself and has no such call.)
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
    // SAFETY: sysconf only reads a constant of the system.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u64,
        _ => 4096,
    };
    // The program's own load address and program headers: the first object
    // dl_iterate_phdr reports. (A static PIE linked without an interpreter,
    // as the musl build is, has no PT_PHDR to work the address out from.)
    let mut program: Option<(u64, &'static [libc::Elf64_Phdr])> = None;
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info, and `data` is the
        // Option below, which outlives the call.
        let (info, out) = unsafe {
            (
                &*info,
                &mut *(data as *mut Option<(u64, &'static [libc::Elf64_Phdr])>),
            )
        };
        let headers = match info.dlpi_phdr.is_null() {
            true => &[][..],
            // SAFETY: for the program itself dlpi_phdr is AT_PHDR: its
            // dlpi_phnum program headers lie in its own image, mapped for
            // the life of the process ('static).
            false => unsafe {
                std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize)
            },
        };
        *out = Some((info.dlpi_addr, headers));
        1 // the program comes first: stop there
    }
    // SAFETY: the callback only reads what it is given and writes `program`.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut program as *mut _ as *mut libc::c_void) };
    if let Some((base, headers)) = program {
        let read_only = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
        for h in read_only {
            // Whole pages only: a page shared with a writable segment may
            // hold data written since.
            let start = (base + h.p_vaddr).next_multiple_of(page);
            let end = (base + h.p_vaddr + h.p_memsz) / page * page;
            if end > start {
                // SAFETY: [start, end) lies inside a read-only, file-backed
                // segment of this program (no text relocations: a BIND_NOW
                // PIE), so no page of it differs from the file; dropping them
                // loses nothing, and the next access reads them back.
                unsafe {
                    libc::madvise(
                        start as *mut libc::c_void,
                        (end - start) as usize,
                        libc::MADV_DONTNEED,
                    )
                };
            }
        }
    }
}

/// Marks every fd from `first` up as close-on-exec, so that no host fd leaks into
/// the container's process (the CVE-2024-21626 class).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes flags on this process's fd table. Made
    // as a raw syscall: musl has no wrapper for it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable capability sets in one capset(2)
/// call; the kernel checks them together, so setting them one by one can fail.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| [v as u32, (v >> 32) as u32];
    let (e, p, i) = (split(effective), split(permitted), split(inheritable));
    let data = [
        Data {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        Data {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: header and data are valid repr(C) structs laid out as the kernel's
    // __user_cap_header_struct and two __user_cap_data_struct (version 3).
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends this process at once with `code`: no atexit work, no stdio flush (a
/// cloned child must not run the parent's). A seccomp filter may refuse
/// exit_group and exit alike, and musl's `_exit` then retries them forever;
/// a fault ends the process instead, as no filter or signal mask can stop it.
/// Writes nothing but errno, and that only if a call is refused (the rules of
/// [`vfork`] allow it).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: exit_group and exit take a number and, when allowed, do not
    // return (this process is single-threaded: exit ends it too).
    unsafe {
        libc::syscall(libc::SYS_exit_group, code);
        libc::syscall(libc::SYS_exit, code);
    }
    fault()
}

/// Ends this process by an illegal instruction. The kernel forces the signal
/// (SIGILL) even when it is blocked or ignored, resets its handler to the
/// default, and lifts a pid namespace init's immunity: the process ends.
pub fn fault() -> ! {
    loop {
        // SAFETY: the instruction touches no memory; it only traps.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("ud2", options(nomem, nostack))
        };
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            std::arch::asm!("udf #0", options(nomem, nostack))
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        std::process::abort();
    }
}

/// prctl(2) with integer arguments only (bounding set, ambient set, keep-caps,
/// no_new_privs).
pub fn prctl(option: i32, arg2: u64, arg3: u64) -> io::Result<()> {
    // SAFETY: every option this is called with takes integer arguments only.
    let ret = unsafe { libc::prctl(option, arg2, arg3, 0u64, 0u64) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// prctl(2) of an option that returns its value (PR_GET_DUMPABLE, say).
pub fn prctl_get(option: i32) -> Option<i32> {
    // SAFETY: a query option with no pointer arguments.
    let ret = unsafe { libc::prctl(option, 0u64, 0u64, 0u64, 0u64) };
    (ret >= 0).then_some(ret)
}

/// Joins a new anonymous session keyring, so that the container does not share the
/// host's (runc does the same unless --no-new-keyring).
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a NUL-terminated string.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `fd` the controlling terminal of this (new) session.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument; fd is a valid open terminal.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's window size (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a struct winsize into `ws`, which lives for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// Sets a terminal's window size.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a struct winsize that lives for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pty master's index in its devpts (TIOCGPTN).
pub fn pty_index(master: BorrowedFd<'_>) -> io::Result<u32> {
    let mut index: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int into `index`.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut index) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(index)
}

/// `n` in decimal, written into `buf` (no allocation: for exec's child).
pub fn decimal(n: i64, buf: &mut [u8; 24]) -> &str {
    let mut at = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// Whether this process's working directory is under its root: getcwd(2)
/// names a directory the root does not reach `(unreachable)/...` (or
/// fails). A cwd reached through a descriptor of the host's, such as
/// /proc/self/fd/N, is outside (CVE-2024-21626). No allocation: it runs
/// in exec's child.
pub fn cwd_is_inside_root() -> bool {
    let mut buf = [0u8; 4096];
    // SAFETY: getcwd writes at most buf.len() bytes into buf.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    n > 0 && buf[0] == b'/'
}

/// This process's pid in the pid namespace of the procfs at /proc: called
/// before pivot_root (or joining a mount namespace), the host's.
pub fn host_pid() -> io::Result<i32> {
    std::fs::read_link("/proc/self")?
        .to_str()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other("/proc/self is not a pid"))
}

/// Restores default dispositions and an empty mask for every signal, so that
/// the container's program does not inherit the runtime's (Rust ignores
/// SIGPIPE; `run` blocks the signals it forwards).
pub fn reset_signals() {
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            set_default_action(sig);
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

/// Makes each of `signals` end this process with status 128 + the signal,
/// and unblocks them. For an init parked on the exec fifo: as PID 1 of
/// its pid namespace it would ignore them with their default action (the
/// kernel delivers only handled signals to it), where runc's init, whose Go
/// runtime handles them, exits. execve gives the program default actions
/// again. Errors are ignored: a seccomp filter may refuse the calls.
pub fn exit_on_signals(signals: &[nix::sys::signal::Signal]) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow};
    extern "C" fn exit_with_signal(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe and touches no shared state.
        unsafe { libc::_exit(128 + sig) }
    }
    let action = SigAction::new(
        SigHandler::Handler(exit_with_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let mut set = SigSet::empty();
    for &sig in signals {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
        set.add(sig);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
}

/// Gives `sig` its default action, by a raw rt_sigaction: libc wrappers
/// refuse the numbers they keep for themselves (32-34 in musl, 32-33 in
/// glibc), and one the caller set to SIG_IGN would stay ignored across
/// execve. Async-signal-safe; writes nothing but errno on failure.
pub fn set_default_action(sig: i32) {
    // The kernel's struct sigaction (handler, flags, restorer, mask): all
    // zeroes is SIG_DFL.
    let default = [0u64; 4];
    // SAFETY: rt_sigaction reads the 32-byte kernel sigaction we own and
    // writes nothing (no old action asked for); 8 is the kernel's sigset
    // size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            default.as_ptr(),
            std::ptr::null_mut::<libc::c_void>(),
            8usize,
        );
    }
}

/// setdomainname(2).
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes for the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the cgroup
/// open at `cgroup` (BPF_F_ALLOW_MULTI, so the ancestors' programs still apply).
pub fn attach_device_program(cgroup: BorrowedFd<'_>, insns: &[BpfInsn]) -> io::Result<()> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    // The leading fields of union bpf_attr for BPF_PROG_LOAD; the kernel
    // accepts a shorter attr as long as what follows would be zero.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
    }
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let license = c"Apache-2.0";
    // Loaded without the verifier's log (kernels before 6.4 fail a load
    // whose log outgrows its buffer, ENOSPC, and containerd's default device
    // list makes a long one); only a rejected program is loaded again with
    // a log, to say why.
    let load = |log: &mut [u8]| -> i64 {
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            kern_version: 0,
            prog_flags: 0,
        };
        // SAFETY: `attr` points at `insns`, `license` and `log`, which
        // outlive the call; the size passed is that of the struct.
        unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &attr as *const ProgLoad,
                std::mem::size_of::<ProgLoad>(),
            )
        }
    };
    let fd = load(&mut []);
    if fd < 0 {
        let err = io::Error::last_os_error();
        let mut log = vec![0u8; 64 << 10];
        let _ = load(&mut log);
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        // The verifier's reason is its last line.
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(io::Error::new(
            err.kind(),
            format!("loading the program: {err}: {last}"),
        ));
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    let prog = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: `attach` is a valid bpf_attr prefix for BPF_PROG_ATTACH.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("attaching the program: {err}"),
        ));
    }
    Ok(())
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount (tree) at
/// `path`, to be changed and attached elsewhere with move_mount.
pub fn open_tree_clone(path: &std::path::Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    const AT_RECURSIVE: u32 = 0x8000;
    let c = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// mount_setattr(2) with MOUNT_ATTR_IDMAP: ids seen through the detached
/// mount `tree` are mapped through the user namespace `userns`.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    mount_setattr(tree, recursive, MOUNT_ATTR_IDMAP, 0, Some(userns))
}

/// mount_setattr(2) on the mount open at `mnt` (and, `recursive`, every
/// mount below it): the MOUNT_ATTR_* bits in `set` are set, those in `clear`
/// cleared; `userns` goes with MOUNT_ATTR_IDMAP.
pub fn mount_setattr(
    mnt: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: u32 = 0x8000;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `attr` is a valid struct mount_attr for the call; the empty path
    // with AT_EMPTY_PATH names `mnt` itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// move_mount(2) of the detached mount `tree` onto the file or directory open
/// at `target` (no path lookup on either side).
pub fn move_mount_to(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    // SAFETY: both paths are empty C strings naming the fds themselves.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The id of the mount `path` is in (statx STATX_MNT_ID), symlinks not
/// followed at the end.
pub fn mount_id(path: &std::path::Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    statx_mount(libc::AT_FDCWD, &c, libc::AT_SYMLINK_NOFOLLOW).map(|(id, _)| id)
}

/// Where the file open at `fd` sits: the id of its mount, and whether it is
/// that mount's root.
pub fn mount_of(fd: BorrowedFd<'_>) -> io::Result<(u64, bool)> {
    statx_mount(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// statx(2) for STATX_MNT_ID and the mount-root attribute.
fn statx_mount(dirfd: RawFd, path: &std::ffi::CStr, flags: i32) -> io::Result<(u64, bool)> {
    // SAFETY: statx is plain data, for which all zeroes is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated path and `st` a statx buffer we own,
    // both valid for the call. A raw syscall: musl before 1.2.5 has no
    // wrapper.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dirfd,
            path.as_ptr(),
            flags,
            libc::STATX_MNT_ID,
            &mut st as *mut libc::statx,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;
    let root = st.stx_attributes & STATX_ATTR_MOUNT_ROOT != 0;
    Ok((st.stx_mnt_id, root))
}

#[cfg(test)]
mod decimal_tests {
    #[test]
    fn numbers_are_written_in_decimal() {
        let mut buf = [0u8; 24];
        for n in [0i64, 7, -1, 222, -1000, 1000, i64::MAX, i64::MIN] {
            assert_eq!(super::decimal(n, &mut buf), n.to_string());
        }
    }
}
