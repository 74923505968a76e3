//! Finding the program to run and running it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ProcessError;

/// Resolves args[0] the way execvp would, with the container's PATH, inside the
/// container's root (call after pivot_root). Done before `create` returns so a
/// missing program is reported by `create`, as runc does.
pub fn resolve(arg0: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    let not_found = |reason: &str| ProcessError::Executable {
        name: arg0.to_string(),
        reason: reason.to_string(),
    };
    // In runc's words, which Docker and Podman read to pick exit codes 127
    // (not found) and 126 (not executable).
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Err(e) => {
                let errno = nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT));
                Err(not_found(&format!(
                    "stat {arg0}: {}",
                    lowercase(errno.desc())
                )))
            }
            Ok(_) if !check(&p) => Err(not_found("permission denied")),
            Ok(_) => Ok(p),
        };
    }
    // Without PATH a bare name is found nowhere, as with runc (Go's
    // LookPath on an empty PATH); the differential test compares.
    // The last PATH, the one the program sees (runc's environment keeps
    // a name's last value).
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .ok_or_else(|| not_found("executable file not found in $PATH"))?;
    // The first match; one found through a relative entry (".", "") is
    // refused, as Go's LookPath makes runc refuse it.
    let found = path
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|p| check(p))
        .ok_or_else(|| not_found("executable file not found in $PATH"))?;
    match found.is_absolute() {
        true => Ok(found),
        false => Err(not_found(
            "cannot run executable found relative to current directory",
        )),
    }
}

/// An errno text as Go prints it ("no such file or directory").
fn lowercase(desc: &str) -> String {
    let mut c = desc.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn check(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn cstring(s: &[u8]) -> CString {
    // Interior NULs cannot be passed to execve; config.json strings never have
    // them unless escaped on purpose, and then the string is cut there.
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// An execve made ready: every string and pointer array allocated, so that
/// the call itself allocates nothing (it comes after the seccomp filter,
/// which may refuse brk and mmap).
pub struct Prepared {
    path: PathBuf,
    path_c: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

pub fn prepare(path: &Path, args: &[String], env: &[String]) -> Prepared {
    let argv: Vec<CString> = args.iter().map(|a| cstring(a.as_bytes())).collect();
    let envp: Vec<CString> = env.iter().map(|e| cstring(e.as_bytes())).collect();
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let (argv_p, envp_p) = (ptrs(&argv), ptrs(&envp));
    Prepared {
        path: path.to_path_buf(),
        path_c: cstring(path.as_os_str().as_bytes()),
        _strings: argv.into_iter().chain(envp).collect(),
        argv: argv_p,
        envp: envp_p,
    }
}

impl Prepared {
    /// execve: only returns on failure.
    pub fn exec(&self) -> ProcessError {
        // SAFETY: the path and both NULL-terminated arrays point into
        // CStrings `self` owns, alive for the call.
        unsafe { libc::execve(self.path_c.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        let e = nix::errno::Errno::last();
        ProcessError::Executable {
            name: self.path.display().to_string(),
            reason: e.desc().to_string(),
        }
    }
}
