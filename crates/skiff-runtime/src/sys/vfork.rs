//! A child that shares our memory until it execs, as posix_spawn makes one:
//! clone3 with CLONE_VM | CLONE_VFORK. No page table is copied, the child
//! takes no copy-on-write or text fault on what we already touched, and its
//! execve has no copied address space to tear down. exec's child uses it.
//!
//! The rules that make sharing memory safe, and that the closure must keep:
//! - we sleep from the clone until the child has exec'd or exited, so the
//!   two never run at once (CLONE_VFORK);
//! - the child runs on a stack of its own (mapped here, a guard page below),
//!   never on our frames;
//! - it ends with execve, `_exit` or `sys::exit_now`, never by returning
//!   nor through `exit`
//!   (which would run our atexit work and flush our stdio buffers);
//! - what it changes in memory (the heap, errno, the closure's captures)
//!   is ours afterwards. It runs as the thread that cloned it (same
//!   thread-locals, same malloc cache), which sleeps and held no lock at
//!   the clone, so the heap stays consistent (other threads, if any, go on
//!   beside it as threads do); but the closure must own nothing it could
//!   drop, as we would drop that again;
//! - it must not panic (the panic count it raises would be ours) nor start
//!   threads; the dumpable flag it sets is ours too (mm-wide);
//! - it may be killed at any instant (a seccomp kill, SIGKILL to the
//!   container's processes), perhaps holding one of our locks (malloc's,
//!   stderr's): it marks a [`SafePoint`] wherever it holds none, and a
//!   caller whose child ended elsewhere ends at once ([`SafePoint::check`]);
//! - kernels before 6.0 refuse CLONE_VM into another time namespace
//!   (EINVAL): the caller then makes a copy instead.

use std::convert::Infallible;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::unistd::Pid;

use super::{CloneArgs, CLONE_INTO_CGROUP};

/// Whether the child is at a point where it holds no lock of ours: set right
/// before its execve (cleared if that fails) and once it has sent its error.
pub(crate) struct SafePoint(AtomicBool);

impl SafePoint {
    pub(crate) const fn new() -> SafePoint {
        SafePoint(AtomicBool::new(false))
    }

    /// In the child: from here on it holds none of our locks (or, with
    /// `false`, may take them again).
    pub(crate) fn mark(&self, safe: bool) {
        self.0.store(safe, Ordering::Release);
    }

    /// In the caller, first thing once `spawn` returned: a child that ended
    /// away from a safe point may have died holding a lock of ours, and
    /// nothing in our memory can be trusted; the process ends here, with
    /// `what` on stderr (written directly: no lock taken) and status 255.
    pub(crate) fn check(&self, what: &str) {
        if self.0.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: write(2) of a buffer we own to stderr, then _exit(2):
        // neither touches the memory the child may have left inconsistent.
        unsafe {
            libc::write(2, what.as_ptr().cast(), what.len());
            libc::_exit(255)
        }
    }
}

/// Size of the child's stack (lazily backed: only what it touches costs).
const STACK_SIZE: usize = 256 * 1024;

/// A mapped stack with a guard page at its low end.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn map() -> io::Result<Stack> {
        let len = STACK_SIZE + 4096;
        // SAFETY: a fresh anonymous private mapping, owned by the Stack.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the first page of our own mapping becomes the guard.
        if unsafe { libc::mprotect(base, 4096, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, which the child
        // no longer uses: it has exec'd or exited when `spawn` returns.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Runs `child` in a new process that shares our memory until it execs;
/// returns its pid once it has exec'd or exited. With `cgroup` (a cgroup2
/// directory) it is born in that group.
///
/// # Safety
/// `child` must keep the module's rules: end with execve, `_exit` or
/// `sys::exit_now` only (no
/// `exit`, no return, no panic), start no thread, and own nothing that
/// dropping would free; the calling thread must hold no lock it shares.
pub(crate) unsafe fn spawn<F: FnOnce() -> Infallible>(
    cgroup: Option<BorrowedFd<'_>>,
    child: F,
) -> io::Result<Pid> {
    let stack = Stack::map()?;
    let mut slot = Some(child);
    let mut args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base as u64,
        stack_size: stack.len as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: the child starts on the top of `stack` (mapped, 16-byte
    // aligned, unused) and calls `trampoline::<F>` with a pointer to `slot`,
    // which lives in this frame until we return; we sleep meanwhile
    // (CLONE_VFORK), and the trampoline never returns.
    let ret = unsafe { clone3_call(&mut args, trampoline::<F>, (&raw mut slot).cast()) };
    // The child took the closure out of `slot`; if it did not run, ours drops here.
    drop(slot);
    drop(stack);
    match ret {
        r if r < 0 => Err(io::Error::from_raw_os_error(-r as i32)),
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// In the child, on its own stack: runs the closure, which never returns.
extern "C" fn trampoline<F: FnOnce() -> Infallible>(slot: *mut libc::c_void) -> ! {
    // SAFETY: `slot` points at the parent's `Option<F>`, alive while the
    // parent sleeps in the clone; the child takes it exactly once.
    let f = unsafe { (*slot.cast::<Option<F>>()).take() };
    match f {
        Some(f) => match f() {},
        // SAFETY: _exit ends this process at once, touching no shared state.
        None => unsafe { libc::_exit(127) },
    }
}

/// clone3(args), and in the child `entry(arg)` on the stack `args` names.
/// Returns the child's pid, or -errno.
///
/// # Safety
/// `args` must name a usable stack; `entry` must never return.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_call(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: the caller's contract. The parent's path is a plain syscall
    // (rcx and r11 clobbered); the child's starts with rsp at the top of its
    // new stack (the kernel sets it from args), clears the frame pointer and
    // calls `entry`, which does not return (ud2 if it ever did).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// Elsewhere: a copy of our memory (no CLONE_VM), still waited for until it
/// execs, so that the crate builds there. A copy's safe points stay in its
/// own memory, so [`SafePoint::check`] cannot see them: exec uses `spawn`
/// on x86_64 only.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone3_call(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> isize {
    args.flags &= !(libc::CLONE_VM as u64);
    args.stack = 0;
    args.stack_size = 0;
    // SAFETY: without CLONE_VM this is vfork-like fork(2): the child runs
    // `entry` on a copy of our memory and never returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => entry(arg),
        -1 => {
            -(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL) as isize)
        }
        pid => pid as isize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use std::sync::atomic::{AtomicU32, Ordering};

    // Elsewhere the child is a copy (see clone3_call), whose store is its own.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_child_writes_our_memory_and_has_ended_when_spawn_returns() {
        let seen = AtomicU32::new(0);
        // SAFETY: the child stores a number and _exits: no rule broken.
        let pid = unsafe {
            spawn(None, || {
                seen.store(std::process::id(), Ordering::SeqCst);
                libc::_exit(7)
            })
        }
        .unwrap();
        // Shared memory: the child's store is ours; CLONE_VFORK: it is done.
        assert_eq!(seen.load(Ordering::SeqCst), pid.as_raw() as u32);
        assert_ne!(pid.as_raw() as u32, std::process::id());
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 7));
    }
}
