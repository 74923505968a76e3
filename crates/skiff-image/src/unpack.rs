//! Unpacks one layer (a tar stream, maybe compressed) into a directory in
//! the form overlayfs reads: `.wh.NAME` becomes a 0:0 character device at
//! NAME, `.wh..wh..opq` an opaque directory (the `overlay.opaque` xattr).
//!
//! The layer is hostile input. Nothing it holds can place a file outside
//! the directory: entry names with `..` are refused; absolute names are
//! read relative to the layer (as Docker does); every parent directory is
//! opened with openat2(RESOLVE_IN_ROOT) from the layer's root, so symlinks
//! the layer made resolve inside it; the entry itself is made with *at()
//! calls on that parent that never follow a symlink at its name; a hard
//! link's target is found the same way and must be in this layer.
//! Overlay's own xattrs (`trusted.overlay.*`, `user.overlay.*`) are not
//! taken from a layer: they would steer the overlay mount.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;

use crate::digest::HashingReader;
use crate::error::{Context, Error, Result};
use crate::manifest::Compression;

/// What unpacking measured.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar: the layer's diff id.
    pub diff_id: String,
    /// Bytes of file content written.
    pub size: u64,
}

/// How the layer's whiteouts and opaque markers are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// In a user namespace: overlay's markers as `user.overlay.*` xattrs
    /// (overlay mounted with `userxattr`), not `trusted.` ones.
    pub user_xattrs: bool,
}

/// A decompressing reader for a layer blob.
pub fn decompressor<'a, R: Read + 'a>(r: R, c: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(r).ctx(|| "starting the zstd decoder".into())?,
        ),
    })
}

/// Unpacks `blob` (compressed as `c`) into `dest`, a directory that exists
/// and is empty; returns the diff id and size.
pub fn unpack(blob: impl Read, c: Compression, dest: &Path, opts: Options) -> Result<Unpacked> {
    let mut reader = HashingReader {
        inner: decompressor(blob, c)?,
        hasher: Default::default(),
    };
    let size = {
        let mut archive = tar::Archive::new(&mut reader);
        let mut u = Unpacker::new(dest, opts)?;
        let entries = archive
            .entries()
            .ctx(|| "reading the layer's tar stream".into())?;
        for entry in entries {
            let mut entry = entry.ctx(|| "reading the layer's tar stream".into())?;
            u.entry(&mut entry)?;
        }
        u.finish()?;
        u.size
    };
    // The diff id covers the whole stream, the end-of-archive blocks too.
    io::copy(&mut reader, &mut io::sink()).ctx(|| "reading the layer's tar stream".into())?;
    Ok(Unpacked {
        diff_id: reader.hasher.finish(),
        size,
    })
}

struct Unpacker {
    root: OwnedFd,
    opts: Options,
    /// The last parents opened, by their path in the layer.
    parents: HashMap<String, OwnedFd>,
    /// Directories whose times are set once everything below is written.
    dir_times: Vec<(String, Timestamps)>,
    size: u64,
}

/// An entry's name split into components, checked: no `..`, no NUL.
fn components(raw: &[u8], what: &str) -> Result<Vec<String>> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| Error::invalid(format!("layer entry {what}: name is not UTF-8")))?;
    let mut out = vec![];
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::Refused(format!(
                    "layer entry {s:?}: a name with \"..\" would leave the layer; refused"
                )))
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

fn ts(secs: u64, nanos: u32) -> Timestamps {
    let t = Timespec {
        tv_sec: secs.min(i64::MAX as u64) as i64,
        tv_nsec: nanos as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Unpacker {
    fn new(dest: &Path, opts: Options) -> Result<Unpacker> {
        let root = rfs::open(
            dest,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("opening {}", dest.display()))?;
        Ok(Unpacker {
            root,
            opts,
            parents: HashMap::new(),
            dir_times: vec![],
            size: 0,
        })
    }

    fn resolve_flags() -> ResolveFlags {
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
    }

    /// Opens a directory of the layer by its path (symlinks resolved inside
    /// the layer), making missing ones (0755, root's) on the way.
    fn dir(&mut self, path: &[String]) -> Result<OwnedFd> {
        let key = path.join("/");
        if let Some(fd) = self.parents.get(&key) {
            return fd.try_clone().ctx(|| "duplicating a directory fd".into());
        }
        let open = |p: &str| {
            rfs::openat2(
                &self.root,
                if p.is_empty() { "." } else { p },
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                Self::resolve_flags(),
            )
        };
        let fd = match open(&key) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                let mut fd = self
                    .root
                    .try_clone()
                    .ctx(|| "duplicating a directory fd".into())?;
                for i in 0..path.len() {
                    let prefix = path[..=i].join("/");
                    fd = match open(&prefix) {
                        Ok(fd) => fd,
                        Err(Errno::NOENT) => {
                            match rfs::mkdirat(&fd, path[i].as_str(), Mode::from_raw_mode(0o755)) {
                                Ok(()) => {}
                                // Something is there that leads nowhere: a
                                // symlink to what the layer lacks (Docker
                                // fails these too).
                                Err(Errno::EXIST) => {
                                    return Err(Error::invalid(format!(
                                        "layer entry {}: {prefix} is a symlink to a directory this layer does not have",
                                        path.join("/")
                                    )))
                                }
                                Err(e) => {
                                    return Err(Error::io(format!("layer entry {prefix}: making the directory"), e.into()))
                                }
                            }
                            open(&prefix).ctx(|| format!("layer entry {prefix}: opening"))?
                        }
                        Err(e) => {
                            return Err(Error::io(
                                format!("layer entry {prefix}: opening"),
                                e.into(),
                            ))
                        }
                    };
                }
                fd
            }
            Err(e) => {
                return Err(Error::io(
                    format!("layer entry {key}/: opening its directory"),
                    e.into(),
                ))
            }
        };
        if self.parents.len() > 64 {
            self.parents.clear();
        }
        self.parents.insert(
            key,
            fd.try_clone().ctx(|| "duplicating a directory fd".into())?,
        );
        Ok(fd)
    }

    /// Clears the way for a new entry at `name` in `parent` (a previous
    /// entry of the same name, as appended tars have); a directory stays
    /// when a directory replaces it.
    fn clear(&mut self, parent: &OwnedFd, name: &str, keep_dir: bool, what: &str) -> Result<()> {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::io(format!("layer entry {what}"), e.into())),
            Ok(st) => {
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if is_dir && keep_dir {
                    return Ok(());
                }
                if is_dir {
                    self.parents.clear();
                    let p = format!(
                        "/proc/self/fd/{}/{name}",
                        std::os::fd::AsRawFd::as_raw_fd(parent)
                    );
                    crate::store::remove_tree(Path::new(&p))
                } else {
                    rfs::unlinkat(parent, name, AtFlags::empty())
                        .ctx(|| format!("layer entry {what}: replacing"))
                }
            }
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let comps = components(&raw, &shown)?;
        let kind = e.header().entry_type();
        let meta = Meta::of(e, &shown)?;
        let Some((name, parents)) = comps.split_last() else {
            // The layer's root itself: its mode, owner and times.
            if kind.is_dir() {
                let root = self
                    .root
                    .try_clone()
                    .ctx(|| "duplicating a directory fd".into())?;
                meta.apply_fd(&root, &shown, self.opts)?;
                self.dir_times.push((String::new(), meta.times));
            }
            return Ok(());
        };
        let parent = self.dir(parents)?;
        // Whiteouts.
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                let key = if self.opts.user_xattrs {
                    "user.overlay.opaque"
                } else {
                    "trusted.overlay.opaque"
                };
                return rfs::fsetxattr(&parent, key, b"y", rfs::XattrFlags::empty())
                    .ctx(|| format!("layer entry {shown}: marking the directory opaque"));
            }
            if hidden.starts_with(".wh.") {
                return Ok(()); // AUFS's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
            }
            self.clear(&parent, hidden, false, &shown)?;
            return self.whiteout(&parent, hidden, &shown);
        }
        match kind {
            tar::EntryType::Directory => {
                self.clear(&parent, name, true, &shown)?;
                match rfs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::io(format!("layer entry {shown}"), e.into())),
                }
                let fd = rfs::openat(
                    &parent,
                    name.as_str(),
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| format!("layer entry {shown}"))?;
                meta.apply_fd(&fd, &shown, self.opts)?;
                self.dir_times.push((comps.join("/"), meta.times));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.clear(&parent, name, false, &shown)?;
                let fd = rfs::openat(
                    &parent,
                    name.as_str(),
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .ctx(|| format!("layer entry {shown}"))?;
                let mut file = std::fs::File::from(fd);
                let n = io::copy(e, &mut file).ctx(|| format!("layer entry {shown}: writing"))?;
                self.size += n;
                meta.apply_fd(&file, &shown, self.opts)?;
                rfs::futimens(&file, &meta.times).ctx(|| format!("layer entry {shown}: times"))?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::invalid(format!("layer entry {shown}: a symlink without a target"))
                    })?
                    .into_owned();
                self.clear(&parent, name, false, &shown)?;
                rfs::symlinkat(target.as_slice(), &parent, name.as_str())
                    .ctx(|| format!("layer entry {shown}: making the symlink"))?;
                rfs::chownat(
                    &parent,
                    name.as_str(),
                    Some(meta.uid()),
                    Some(meta.gid()),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("layer entry {shown}: owner"))?;
                rfs::utimensat(
                    &parent,
                    name.as_str(),
                    &meta.times,
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("layer entry {shown}: times"))?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::invalid(format!("layer entry {shown}: a hard link without a target"))
                    })?
                    .into_owned();
                let tshown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = components(&target, &tshown)?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(Error::Refused(format!(
                        "layer entry {shown}: a hard link to the layer's root"
                    )));
                };
                let tparent = self.dir(tparents)?;
                self.clear(&parent, name, false, &shown)?;
                rfs::linkat(&tparent, tname.as_str(), &parent, name.as_str(), AtFlags::empty()).map_err(|e| {
                    Error::io(
                        format!("layer entry {shown}: a hard link to {tshown:?}, which must be a file of this layer"),
                        e.into(),
                    )
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rfs::makedev(
                    e.header().device_major().ok().flatten().unwrap_or(0),
                    e.header().device_minor().ok().flatten().unwrap_or(0),
                );
                self.clear(&parent, name, false, &shown)?;
                rfs::mknodat(&parent, name.as_str(), ft, Mode::from_raw_mode(0o600), dev)
                    .ctx(|| format!("layer entry {shown}: making the node"))?;
                rfs::chownat(
                    &parent,
                    name.as_str(),
                    Some(meta.uid()),
                    Some(meta.gid()),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("layer entry {shown}: owner"))?;
                rfs::chmodat(
                    &parent,
                    name.as_str(),
                    Mode::from_raw_mode(meta.mode),
                    AtFlags::empty(),
                )
                .ctx(|| format!("layer entry {shown}: mode"))?;
                rfs::utimensat(
                    &parent,
                    name.as_str(),
                    &meta.times,
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("layer entry {shown}: times"))?;
            }
            // Headers the tar crate folds into the next entry.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => {
                return Err(Error::invalid(format!(
                    "layer entry {shown}: tar entry type {:?} is not one a layer may hold",
                    other.as_byte() as char
                )))
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, parent: &OwnedFd, name: &str, shown: &str) -> Result<()> {
        if self.opts.user_xattrs {
            // In a user namespace no 0:0 device can be made: an empty file
            // with overlay's whiteout xattr (overlay with userxattr, 6.7+).
            let fd = rfs::openat(
                parent,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .ctx(|| format!("layer entry {shown}: whiteout"))?;
            return rfs::fsetxattr(&fd, "user.overlay.whiteout", b"y", rfs::XattrFlags::empty())
                .ctx(|| format!("layer entry {shown}: whiteout"));
        }
        rfs::mknodat(
            parent,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .ctx(|| format!("layer entry {shown}: making the whiteout"))
    }

    /// Directory times last: writing below a directory changes its mtime.
    fn finish(&mut self) -> Result<()> {
        self.parents.clear();
        for (path, times) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let fd = rfs::openat2(
                &self.root,
                if path.is_empty() { "." } else { path.as_str() },
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
                Self::resolve_flags(),
            );
            // A directory a later entry replaced is gone: nothing to set.
            if let Ok(fd) = fd {
                rfs::futimens(&fd, &times).ctx(|| format!("layer entry {path}/: times"))?;
            }
        }
        Ok(())
    }
}

/// Owner, mode, times and xattrs of an entry (PAX records win over the
/// header's fields).
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    times: Timestamps,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(e: &mut tar::Entry<R>, shown: &str) -> Result<Meta> {
        let h = e.header();
        let bad =
            |f: &str| Error::invalid(format!("layer entry {shown}: its {f} field does not parse"));
        let mut m = Meta {
            uid: h.uid().map_err(|_| bad("uid"))?,
            gid: h.gid().map_err(|_| bad("gid"))?,
            mode: h.mode().map_err(|_| bad("mode"))? & 0o7777,
            times: ts(h.mtime().map_err(|_| bad("mtime"))?, 0),
            xattrs: vec![],
        };
        if let Some(pax) = e.pax_extensions().map_err(|_| bad("PAX header"))? {
            for ext in pax {
                let ext = ext.map_err(|_| bad("PAX header"))?;
                let Ok(key) = ext.key() else { continue };
                let num = || std::str::from_utf8(ext.value_bytes()).ok().map(str::trim);
                match key {
                    "uid" => {
                        m.uid = num()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad("PAX uid"))?
                    }
                    "gid" => {
                        m.gid = num()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad("PAX gid"))?
                    }
                    "mtime" => {
                        let v = num().ok_or_else(|| bad("PAX mtime"))?;
                        let (s, frac) = v.split_once('.').unwrap_or((v, "0"));
                        let secs: i64 = s.parse().map_err(|_| bad("PAX mtime"))?;
                        let nanos: u32 = format!("{frac:0<9}")[..9].parse().unwrap_or(0);
                        m.times = ts(secs.max(0) as u64, nanos);
                    }
                    k if k.starts_with("SCHILY.xattr.") => {
                        let name = &k["SCHILY.xattr.".len()..];
                        if !name.starts_with("trusted.overlay.")
                            && !name.starts_with("user.overlay.")
                        {
                            m.xattrs
                                .push((name.to_string(), ext.value_bytes().to_vec()));
                        }
                    }
                    _ => {}
                }
            }
        }
        if m.uid > u32::MAX as u64 || m.gid > u32::MAX as u64 {
            return Err(Error::invalid(format!(
                "layer entry {shown}: owner {}:{} out of range",
                m.uid, m.gid
            )));
        }
        Ok(m)
    }

    fn uid(&self) -> rustix::fs::Uid {
        rustix::fs::Uid::from_raw(self.uid as u32)
    }

    fn gid(&self) -> rustix::fs::Gid {
        rustix::fs::Gid::from_raw(self.gid as u32)
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs, on an
    /// open file or directory.
    fn apply_fd(&self, fd: &impl AsFd, shown: &str, _opts: Options) -> Result<()> {
        rfs::fchown(fd, Some(self.uid()), Some(self.gid()))
            .ctx(|| format!("layer entry {shown}: owner"))?;
        rfs::fchmod(fd, Mode::from_raw_mode(self.mode))
            .ctx(|| format!("layer entry {shown}: mode"))?;
        for (k, v) in &self.xattrs {
            rfs::fsetxattr(fd, k.as_str(), v, rfs::XattrFlags::empty())
                .ctx(|| format!("layer entry {shown}: xattr {k}"))?;
        }
        Ok(())
    }
}
