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

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

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
    /// The same with zeros after the stream up to a whole 10 KiB record
    /// (GNU tar's): zstd:chunked writers of containers/storage before
    /// about 1.45 (Debian 12's skopeo and podman) drop that padding, so
    /// their blob unpacks to the config's tar short of trailing zeros.
    pub padded_diff_id: String,
    /// Bytes of file content written.
    pub size: u64,
}

/// GNU tar's record: its tars end padded with zeros to a whole one.
pub const TAR_RECORD: u64 = 10240;

impl Unpacked {
    /// Whether the tar unpacked is the one `diff_id` names: the stream
    /// itself, or it with the record padding an old zstd:chunked writer
    /// dropped (the same tree; Podman takes those layers too).
    pub fn matches(&self, diff_id: &str) -> bool {
        self.diff_id == diff_id || self.padded_diff_id == diff_id
    }
}

/// How the layer's whiteouts and opaque markers are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// In a user namespace (rootless): opaque directories marked with the
    /// `user.overlay.opaque` xattr (overlay mounted with `userxattr`), not
    /// the `trusted.` one only real root may set; device nodes left out.
    pub user_xattrs: bool,
    /// Not a layer (`skiff cp` into a container): `.wh.` names are files
    /// like any other, not whiteouts.
    pub literal: bool,
}

impl Options {
    /// As this process may write them: rootless or not.
    pub fn for_this_process() -> Options {
        Options {
            user_xattrs: crate::rootless(),
            literal: false,
        }
    }
}

/// A decompressing reader for a layer blob.
pub fn decompressor<'a, R: Read + Send + 'a>(
    r: R,
    c: Compression,
) -> Result<Box<dyn Read + Send + 'a>> {
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
pub fn unpack(
    blob: impl Read + Send,
    c: Compression,
    dest: &Path,
    opts: Options,
) -> Result<Unpacked> {
    unpack_owned(blob, c, dest, opts, &|uid, gid| (uid, gid))
}

/// The host's owner of an entry's (uid, gid).
pub type Owners<'a> = &'a dyn Fn(u64, u64) -> (u64, u64);

/// `unpack`, each entry owned by `owners` of its tar owner (a user
/// namespace's ids on the host: `skiff cp` into a container with maps).
pub fn unpack_owned(
    blob: impl Read + Send,
    c: Compression,
    dest: &Path,
    opts: Options,
    owners: Owners<'_>,
) -> Result<Unpacked> {
    let decoder = decompressor(blob, c)?;
    // Two stages on two threads: decompressing and hashing the stream
    // (the diff id) here, reading the tar and making its entries below.
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    std::thread::scope(|scope| {
        let inflate = scope.spawn(move || -> Result<(String, String)> {
            let mut reader = HashingReader {
                inner: decoder,
                hasher: Default::default(),
            };
            loop {
                let mut buf = vec![0u8; 256 * 1024];
                let n = match read_full(&mut reader, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(Error::io("reading the layer's tar stream", e));
                    }
                };
                if n == 0 {
                    let mut padded = reader.hasher.clone();
                    let pad = (TAR_RECORD - padded.len % TAR_RECORD) % TAR_RECORD;
                    padded.update(&vec![0u8; pad as usize]);
                    return Ok((reader.hasher.finish(), padded.finish()));
                }
                buf.truncate(n);
                // The tar side stopped (an error of its own): keep hashing
                // is pointless, end here.
                if tx.send(Ok(buf)).is_err() {
                    return Ok((String::new(), String::new()));
                }
            }
        });
        let made = (|| -> Result<u64> {
            let mut stream = BufferReader {
                rx,
                current: Vec::new(),
                at: 0,
            };
            let size = {
                let mut archive = tar::Archive::new(&mut stream);
                let mut u = Unpacker::new(dest, opts, owners)?;
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
            // The diff id covers the whole stream, the end-of-archive
            // blocks too.
            io::copy(&mut stream, &mut io::sink())
                .ctx(|| "reading the layer's tar stream".into())?;
            Ok(size)
        })();
        let ids = inflate
            .join()
            .map_err(|_| Error::invalid("the decompressing thread panicked"))?;
        let size = made?;
        let (diff_id, padded_diff_id) = ids?;
        Ok(Unpacked {
            diff_id,
            padded_diff_id,
            size,
        })
    })
}

/// Reads until `buf` is full or the stream ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The decompressed stream, as the inflating thread hands it over.
struct BufferReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for BufferReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.current = b;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

struct Unpacker<'a> {
    root: OwnedFd,
    opts: Options,
    owners: Owners<'a>,
    /// The last parents opened, by their path in the layer.
    parents: HashMap<String, Arc<OwnedFd>>,
    /// Writes files and symlinks on worker threads (creating a file is a
    /// synchronous round trip to the filesystem's journal; several at once
    /// overlap them).
    pool: Pool,
    /// Entries handed to the pool and maybe not made yet: another entry
    /// at the same path waits for them.
    pending: HashSet<String>,
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

impl<'a> Unpacker<'a> {
    fn new(dest: &Path, opts: Options, owners: Owners<'a>) -> Result<Unpacker<'a>> {
        let root = rfs::open(
            dest,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("opening {}", dest.display()))?;
        Ok(Unpacker {
            root,
            opts,
            owners,
            parents: HashMap::new(),
            pool: Pool::new(WORKERS),
            pending: HashSet::new(),
            dir_times: vec![],
            size: 0,
        })
    }

    fn resolve_flags() -> ResolveFlags {
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
    }

    /// Opens a directory of the layer by its path (symlinks resolved inside
    /// the layer), making missing ones (0755, root's) on the way.
    fn dir(&mut self, path: &[String]) -> Result<Arc<OwnedFd>> {
        let key = path.join("/");
        if let Some(fd) = self.parents.get(&key) {
            return Ok(fd.clone());
        }
        let open = |p: &str| {
            crate::inroot::openat2(
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
        let fd = Arc::new(fd);
        self.parents.insert(key, fd.clone());
        Ok(fd)
    }

    /// Waits for the pool's outstanding work; its first error.
    fn flush(&mut self) -> Result<()> {
        self.pending.clear();
        self.pool.wait()
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
                    // What the pool writes below it must be done first.
                    self.flush()?;
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
        let mut meta = Meta::of(e, &shown)?;
        (meta.uid, meta.gid) = (self.owners)(meta.uid, meta.gid);
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
        // An entry where the pool may still be writing an earlier one (an
        // appended tar's second copy, a whiteout of it), and every hard
        // link (its target may be pending): the pool finishes first.
        if !self.pending.is_empty() {
            let hidden = name.strip_prefix(".wh.").filter(|h| !h.starts_with(".wh."));
            let mut at = parents.to_vec();
            at.push(hidden.unwrap_or(name).to_string());
            // A pending symlink on the way to this entry must exist
            // before the way is walked (or it would be made a directory).
            let through_pending =
                (1..=parents.len()).any(|i| self.pending.contains(&parents[..i].join("/")));
            if kind == tar::EntryType::Link
                || through_pending
                || self.pending.contains(&at.join("/"))
            {
                self.flush()?;
            }
        }
        let parent = self.dir(parents)?;
        // Whiteouts.
        if let Some(hidden) = name.strip_prefix(".wh.").filter(|_| !self.opts.literal) {
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
                let size = e.size();
                if size <= POOLED_FILE_MAX {
                    let mut body = Vec::with_capacity(size as usize);
                    e.read_to_end(&mut body)
                        .ctx(|| format!("layer entry {shown}: reading"))?;
                    self.pending.insert(comps.join("/"));
                    return self.pool.submit(Job {
                        parent,
                        name: name.clone(),
                        shown,
                        body: Body::File(body),
                        meta,
                        opts: self.opts,
                    });
                }
                self.size += write_file(&parent, name, &shown, e, &meta, self.opts)?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::invalid(format!("layer entry {shown}: a symlink without a target"))
                    })?
                    .into_owned();
                self.clear(&parent, name, false, &shown)?;
                self.pending.insert(comps.join("/"));
                return self.pool.submit(Job {
                    parent,
                    name: name.clone(),
                    shown,
                    body: Body::Symlink(target),
                    meta,
                    opts: self.opts,
                });
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
            // In a user namespace no device can be made (Podman and
            // rootless Docker leave them out too); a container gets its
            // devices from the runtime, not from its image.
            tar::EntryType::Char | tar::EntryType::Block if self.opts.user_xattrs => {}
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

    /// A 0:0 character device: overlay's whiteout. (Unprivileged callers
    /// may make this one device since Linux 5.8, in a user namespace too.)
    fn whiteout(&mut self, parent: &OwnedFd, name: &str, shown: &str) -> Result<()> {
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
        self.flush()?;
        self.size += self.pool.finish()?;
        self.parents.clear();
        for (path, times) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let fd = crate::inroot::openat2(
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

/// Worker threads writing files and symlinks (the syscalls wait on the
/// filesystem, not the CPU: more of them than cores still helps).
const WORKERS: usize = 4;
/// Files up to this size are read into memory and written by the pool;
/// larger ones by the unpacking thread itself (the queue's memory stays
/// below 64 such files).
const POOLED_FILE_MAX: u64 = 256 * 1024;

enum Body {
    File(Vec<u8>),
    Symlink(Vec<u8>),
}

struct Job {
    parent: Arc<OwnedFd>,
    name: String,
    shown: String,
    body: Body,
    meta: Meta,
    opts: Options,
}

#[derive(Default)]
struct PoolState {
    outstanding: Mutex<usize>,
    idle: Condvar,
    error: Mutex<Option<Error>>,
    written: AtomicU64,
}

struct Pool {
    tx: Option<mpsc::SyncSender<Job>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    state: Arc<PoolState>,
}

impl Pool {
    fn new(n: usize) -> Pool {
        let (tx, rx) = mpsc::sync_channel::<Job>(64);
        let rx = Arc::new(Mutex::new(rx));
        let state = Arc::new(PoolState::default());
        let workers = (0..n)
            .filter_map(|i| {
                let (rx, state) = (rx.clone(), state.clone());
                std::thread::Builder::new()
                    .name(format!("unpack-{i}"))
                    .spawn(move || loop {
                        let job = match rx.lock().map(|r| r.recv()) {
                            Ok(Ok(job)) => job,
                            _ => return,
                        };
                        let failed = state.error.lock().map(|e| e.is_some()).unwrap_or(true);
                        if !failed {
                            match job.run() {
                                Ok(n) => {
                                    state.written.fetch_add(n, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    if let Ok(mut slot) = state.error.lock() {
                                        slot.get_or_insert(e);
                                    }
                                }
                            }
                        }
                        if let Ok(mut n) = state.outstanding.lock() {
                            *n -= 1;
                            if *n == 0 {
                                state.idle.notify_all();
                            }
                        }
                    })
                    .ok()
            })
            .collect();
        Pool {
            tx: Some(tx),
            workers,
            state,
        }
    }

    fn submit(&mut self, job: Job) -> Result<()> {
        if self.workers.is_empty() {
            return job.run().map(|n| {
                self.state.written.fetch_add(n, Ordering::Relaxed);
            });
        }
        if let Ok(mut n) = self.state.outstanding.lock() {
            *n += 1;
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(Error::invalid("the unpacking threads are gone"));
        }
        Ok(())
    }

    /// Waits until every job handed over is done; the first error.
    fn wait(&mut self) -> Result<()> {
        let mut n = self
            .state
            .outstanding
            .lock()
            .map_err(|_| Error::invalid("an unpacking thread panicked"))?;
        while *n > 0 {
            n = self
                .state
                .idle
                .wait(n)
                .map_err(|_| Error::invalid("an unpacking thread panicked"))?;
        }
        drop(n);
        match self.state.error.lock().map(|mut e| e.take()) {
            Ok(Some(e)) => Err(e),
            Ok(None) => Ok(()),
            Err(_) => Err(Error::invalid("an unpacking thread panicked")),
        }
    }

    /// Ends the workers; the bytes of file content they wrote.
    fn finish(&mut self) -> Result<u64> {
        self.wait()?;
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        Ok(self.state.written.load(Ordering::Relaxed))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Job {
    fn run(self) -> Result<u64> {
        match self.body {
            Body::File(bytes) => write_file(
                &self.parent,
                &self.name,
                &self.shown,
                &mut bytes.as_slice(),
                &self.meta,
                self.opts,
            ),
            Body::Symlink(target) => {
                let (parent, name, shown) = (&self.parent, self.name.as_str(), &self.shown);
                rfs::symlinkat(target.as_slice(), &**parent, name)
                    .ctx(|| format!("layer entry {shown}: making the symlink"))?;
                rfs::chownat(
                    &**parent,
                    name,
                    Some(self.meta.uid()),
                    Some(self.meta.gid()),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("layer entry {shown}: owner"))?;
                rfs::utimensat(&**parent, name, &self.meta.times, AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| format!("layer entry {shown}: times"))?;
                Ok(0)
            }
        }
    }
}

/// Makes a regular file (its name cleared before) with its content, owner,
/// mode, xattrs and times; the bytes written.
fn write_file(
    parent: &OwnedFd,
    name: &str,
    shown: &str,
    content: &mut dyn Read,
    meta: &Meta,
    opts: Options,
) -> Result<u64> {
    let fd = rfs::openat(
        parent,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .ctx(|| format!("layer entry {shown}"))?;
    let mut file = std::fs::File::from(fd);
    let n = io::copy(content, &mut file).ctx(|| format!("layer entry {shown}: writing"))?;
    meta.apply_fd(&file, shown, opts)?;
    rfs::futimens(&file, &meta.times).ctx(|| format!("layer entry {shown}: times"))?;
    Ok(n)
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
