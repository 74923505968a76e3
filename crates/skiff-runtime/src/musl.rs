//! What a musl build needs beyond musl itself.
//!
//! - `__fprintf_chk`: Debian's static libseccomp and LLVM's libunwind are
//!   compiled against glibc with fortified stdio and reference glibc's
//!   checked fprintf, which musl lacks: libseccomp's PFC exporter
//!   (`seccomp_export_pfc`, debugging text skiff never asks for) and
//!   libunwind's fatal-error reports (with panic=abort nothing unwinds).
//!   This one writes nothing and reports failure.
//! - `abort`: musl's sends SIGABRT to the thread id it cached at start-up,
//!   which a raw clone3 child (init, exec's children) still holds from its
//!   parent: a panic there would signal the waiting runtime, or whatever
//!   process has that number in the child's pid namespace. This one asks the
//!   kernel who it is.

use crate::sys;

/// glibc's checked fprintf, as the linker needs it (see the module doc).
/// (A variadic callee that ignores its arguments is sound on x86_64: they
/// travel in registers and on the caller's stack.)
#[no_mangle]
pub extern "C" fn __fprintf_chk(
    _stream: *mut libc::c_void,
    _flag: libc::c_int,
    _format: *const libc::c_char,
) -> libc::c_int {
    -1
}

/// abort(3) for a process whose threads may be raw clones: SIGABRT, at its
/// default action and unblocked, to the calling thread as the kernel knows
/// it; then a fault, which also ends a pid namespace's init (immune to a
/// SIGABRT it sends itself) and anything a seccomp filter keeps alive.
#[no_mangle]
pub extern "C" fn abort() -> ! {
    sys::set_default_action(libc::SIGABRT);
    let unblock: u64 = 1 << (libc::SIGABRT - 1);
    // SAFETY: raw syscalls on this thread's own signal state, reading only
    // the mask above; tgkill targets this thread.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_UNBLOCK,
            &unblock as *const u64,
            std::ptr::null_mut::<libc::c_void>(),
            8usize,
        );
        let pid = libc::syscall(libc::SYS_getpid);
        let tid = libc::syscall(libc::SYS_gettid);
        libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGABRT);
    }
    sys::fault()
}
