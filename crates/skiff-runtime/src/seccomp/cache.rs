//! Compiled seccomp programs kept under the state root (`ROOT/.seccomp/`),
//! so that a profile libseccomp has compiled once is loaded from bytes on
//! every later start: libseccomp takes about 7 ms for a Docker-sized profile
//! here, reading the program back well under 0.1 ms.
//!
//! A file is named by a hash of its key but holds the whole key, and a
//! lookup compares it byte for byte: a hash collision (FNV is not
//! collision-resistant, and profiles can come from users) costs a compile,
//! never another profile's program. The key is the profile as JSON plus what
//! the generated code depends on: libseccomp's version and API level, the
//! kernel release and this file's format. Writes are atomic (rename) and
//! best effort: a cache that cannot be written only costs speed.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

const MAGIC: &[u8] = b"skiff-seccomp-cache 1\n";
/// Bumped whenever `compile` would turn the same profile into a different
/// program (action mapping, skipped rules, optimisation level; 2: the
/// operands of SCMP_CMP_MASKED_EQ were swapped).
const COMPILE_REVISION: u32 = 2;
/// More profiles than this in one state root, and the cache starts over.
const MAX_ENTRIES: usize = 64;

/// The cache directory of a state root.
pub fn dir(state_root: &Path) -> PathBuf {
    state_root.join(".seccomp")
}

/// The version of the libseccomp linked in ("2.5.4").
pub fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

/// What a compiled program depends on, `cfg` included.
pub fn key(cfg: &LinuxSeccomp) -> Vec<u8> {
    let v = libseccomp_version();
    let kernel = crate::procfs::read("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut key = format!(
        "skiff {} compile {COMPILE_REVISION}\nlibseccomp {v} api {}\nkernel {}\n",
        env!("CARGO_PKG_VERSION"),
        libseccomp::get_api(),
        kernel.trim()
    )
    .into_bytes();
    // Serializing the spec type cannot fail (no maps with non-string keys).
    key.extend(serde_json::to_vec(cfg).unwrap_or_default());
    key
}

fn file(dir: &Path, key: &[u8]) -> PathBuf {
    dir.join(format!("{:016x}", crate::fnv::hash64(key)))
}

/// The program compiled earlier for exactly `key`, if any. Only a file of
/// ours that nobody else may write is trusted.
pub fn lookup(dir: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let mut f = fs::File::open(file(dir, key)).ok()?;
    let meta = f.metadata().ok()?;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    if rest.len() < len || &rest[..len] != key {
        return None;
    }
    // Whole BPF instructions, at least one.
    let program = &rest[len..];
    if program.is_empty() || program.len() % 8 != 0 {
        return None;
    }
    Some(program.to_vec())
}

/// Drops what is kept for `key`.
pub fn forget(dir: &Path, key: &[u8]) {
    let _ = fs::remove_file(file(dir, key));
}

/// Keeps `program` for `key`.
pub fn store(dir: &Path, key: &[u8], program: &[u8]) {
    let mkdir = || fs::DirBuilder::new().mode(0o700).create(dir);
    if mkdir().is_err() && !dir.is_dir() {
        return;
    }
    if fs::read_dir(dir).is_ok_and(|d| d.count() >= MAX_ENTRIES) {
        let _ = fs::remove_dir_all(dir);
        if mkdir().is_err() {
            return;
        }
    }
    let mut data = MAGIC.to_vec();
    data.extend((key.len() as u64).to_le_bytes());
    data.extend(key);
    data.extend(program);
    let dest = file(dir, key);
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&data))
        .and_then(|()| fs::rename(&tmp, &dest));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(default: &str) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({"defaultAction": default})).unwrap()
    }

    #[test]
    fn a_stored_program_is_found_by_its_key_only() {
        let dir = std::env::temp_dir().join(format!("skiff-seccomp-cache-{}", std::process::id()));
        let (a, b) = (
            key(&profile("SCMP_ACT_ALLOW")),
            key(&profile("SCMP_ACT_LOG")),
        );
        assert_ne!(a, b);
        store(&dir, &a, b"program-a-16bytes");
        assert_eq!(lookup(&dir, &a), None, "not whole instructions");
        store(&dir, &a, b"program-a16bytes");
        assert_eq!(lookup(&dir, &a).as_deref(), Some(&b"program-a16bytes"[..]));
        assert_eq!(lookup(&dir, &b), None);
        // A file under a's name that holds another key (a collision) is not a's.
        let mut data = MAGIC.to_vec();
        data.extend((b.len() as u64).to_le_bytes());
        data.extend(&b);
        data.extend(b"program-b");
        fs::write(file(&dir, &a), data).unwrap();
        assert_eq!(lookup(&dir, &a), None);
        // Damaged files are misses, not errors.
        fs::write(file(&dir, &a), b"skiff-seccomp-cache 1\n\xff").unwrap();
        assert_eq!(lookup(&dir, &a), None);
        // So is a program of broken instructions, and a file others may write.
        store(&dir, &b, b"0123456789");
        assert_eq!(lookup(&dir, &b), None);
        store(&dir, &b, b"01234567");
        assert_eq!(lookup(&dir, &b).as_deref(), Some(&b"01234567"[..]));
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(file(&dir, &b), fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(lookup(&dir, &b), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
