//! `tmpcopyup`: a tmpfs mounted over a directory of the image starts with
//! that directory's contents (Podman asks for it on every `--tmpfs`). The
//! directory is opened before the mount covers it; afterwards its entries
//! are copied into the new tmpfs with their modes, owners and times. Every
//! step is relative to an open directory and follows no symlink, so nothing
//! the image holds can point the copy elsewhere.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, FileStat, Mode, SFlag,
};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

/// Opens a directory to copy from or into (a real descriptor: O_PATH
/// cannot list entries).
pub fn open_dir(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copies everything in `from` into `to` (both open directories).
pub fn copy_tree(from: &OwnedFd, to: &OwnedFd) -> io::Result<()> {
    let names: Vec<CString> = Dir::from_fd(nix::unistd::dup(from.as_raw_fd())?)?
        .iter()
        .filter_map(Result::ok)
        .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
        .map(|e| e.file_name().to_owned())
        .collect();
    for name in names {
        let st = fstatat(
            Some(from.as_raw_fd()),
            name.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        copy_entry(from, to, &name, &st)?;
    }
    Ok(())
}

fn copy_entry(from: &OwnedFd, to: &OwnedFd, name: &CStr, st: &FileStat) -> io::Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let owner = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let (src, dst) = (from.as_raw_fd(), to.as_raw_fd());
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(Some(dst), name, Mode::from_bits_truncate(0o700))?;
            let (a, b) = (open_dir(src, name)?, open_dir(dst, name)?);
            copy_tree(&a, &b)?;
            fchown(b.as_raw_fd(), owner.0, owner.1)?;
            // The mode last: a read-only directory could not be filled.
            fchmod(b.as_raw_fd(), mode)?;
            set_times(dst, name, st)
        }
        SFlag::S_IFREG => {
            let flags = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let input = openat(Some(src), name, OFlag::O_RDONLY | flags, Mode::empty())?;
            // SAFETY: `openat` returned a new fd that nothing else owns.
            let mut input = unsafe { File::from_raw_fd(input) };
            let output = openat(
                Some(dst),
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | flags,
                Mode::from_bits_truncate(0o600),
            )?;
            // SAFETY: as above.
            let mut output = unsafe { File::from_raw_fd(output) };
            io::copy(&mut input, &mut output)?;
            fchown(output.as_raw_fd(), owner.0, owner.1)?;
            fchmod(output.as_raw_fd(), mode)?;
            set_times(dst, name, st)
        }
        // Links, fifos and device nodes as they are; a socket is no content.
        SFlag::S_IFLNK | SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
            if kind == SFlag::S_IFLNK {
                let target = readlinkat(Some(src), name)?;
                symlinkat(std::path::Path::new(&target), Some(dst), name)?;
            } else {
                mknodat(Some(dst), name, kind, mode, st.st_rdev)?;
            }
            fchownat(
                Some(dst),
                name,
                owner.0,
                owner.1,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
            // A link has no mode of its own.
            if kind != SFlag::S_IFLNK {
                fchmodat(Some(dst), name, mode, FchmodatFlags::FollowSymlink)?;
            }
            set_times(dst, name, st)
        }
        _ => Ok(()),
    }
}

/// The entry's access and modification times, as in the image.
fn set_times(dir: RawFd, name: &CStr, st: &FileStat) -> io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    utimensat(
        Some(dir),
        std::path::Path::new(std::ffi::OsStr::from_bytes(name.to_bytes())),
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}
