//! What a musl build needs beyond musl itself.
//!
//! Debian's static libseccomp is compiled against glibc with fortified stdio:
//! its PFC exporter (`seccomp_export_pfc`, text output for debugging, which
//! skiff never calls) references glibc's `__fprintf_chk`, which musl lacks.
//! This definition satisfies the linker; it writes nothing and reports failure.

/// glibc's checked fprintf, as the linker needs it for libseccomp's exporter.
/// Never called by skiff. (A variadic callee that ignores its arguments is
/// sound on x86_64: they travel in registers and on the caller's stack.)
#[no_mangle]
pub extern "C" fn __fprintf_chk(
    _stream: *mut libc::c_void,
    _flag: libc::c_int,
    _format: *const libc::c_char,
) -> libc::c_int {
    -1
}
