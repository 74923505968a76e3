//! Attaching to a detached container: its monitor keeps the output (and
//! the terminal's master, or the write end of the container's stdin) and
//! serves them on `attach.sock` in the container's directory, as conmon
//! serves Podman's attach; `skiff attach` is the client.
//!
//! Frames, both ways: a kind byte, a big-endian u32 length, the bytes.
//! Client to monitor: STDIN data, RESIZE (rows, cols: two u16), CLOSE
//! (the client's stdin ended); a client's first frame is a RESIZE, or an
//! empty STDIN without a terminal, so the monitor knows it is there and
//! the terminal has its size (a foreground `run -t` starts the container
//! only then). Monitor to client: STDOUT, STDERR, EXIT (the code, a
//! big-endian i32). When the container ends, the monitor sends EXIT and
//! closes every client (`attach` falls back to the store's exit code when
//! the EXIT frame did not come).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use skiff_image::{Error, Result};

pub const STDIN: u8 = 0;
pub const RESIZE: u8 = 1;
pub const CLOSE: u8 = 2;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;

fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + data.len());
    f.push(kind);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// Reads one frame; None at the end of the stream. Payloads are at most
/// 1 MiB (a bigger length is a broken peer: the end).
fn read_frame(r: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 1 << 20 {
        return None;
    }
    let mut data = vec![0; len];
    r.read_exact(&mut data).ok()?;
    Some((head[0], data))
}

/// The monitor's side: the clients attached now, and where their input
/// goes.
#[derive(Clone, Default)]
pub struct Hub {
    clients: Arc<Mutex<Vec<UnixStream>>>,
    /// The container's stdin: the terminal's master, or a pipe's write end.
    input: Arc<Mutex<Option<fs::File>>>,
    /// The terminal's master, for resizes.
    tty: Arc<Mutex<Option<RawFd>>>,
    /// Clients whose first frame was taken.
    greeted: Arc<(Mutex<usize>, std::sync::Condvar)>,
    /// A terminal that is not ours to ioctl (a VM's, resized through its
    /// agent): what a RESIZE calls.
    remote_tty: Arc<Mutex<Option<ResizeHook>>>,
}

/// Resizes a terminal the hub holds no master of: (rows, cols).
pub type ResizeHook = Box<dyn Fn(u16, u16) + Send>;

impl Hub {
    /// Serves `dir/attach.sock` on a thread of its own.
    pub fn serve(&self, dir: &Path) -> Result<()> {
        let (listener, _dir) = bind_in(dir, "attach.sock")?;
        let hub = self.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                hub.add(conn);
            }
        });
        Ok(())
    }

    fn add(&self, conn: UnixStream) {
        let Ok(reader) = conn.try_clone() else { return };
        if let Ok(mut list) = self.clients.lock() {
            list.push(conn);
        }
        let hub = self.clone();
        std::thread::spawn(move || hub.take_input(reader));
    }

    /// A client's frames: input for the container, resizes.
    fn take_input(&self, mut conn: UnixStream) {
        let mut first = true;
        while let Some((kind, data)) = read_frame(&mut conn) {
            self.take_frame(kind, &data);
            if std::mem::take(&mut first) {
                let (n, cv) = &*self.greeted;
                if let Ok(mut n) = n.lock() {
                    *n += 1;
                    cv.notify_all();
                }
            }
        }
    }

    /// Waits (at most `limit`) until a client has connected and sent its
    /// first frame; whether one did.
    pub fn wait_client(&self, limit: std::time::Duration) -> bool {
        let (n, cv) = &*self.greeted;
        let Ok(guard) = n.lock() else { return false };
        cv.wait_timeout_while(guard, limit, |n| *n == 0)
            .map(|(n, _)| *n > 0)
            .unwrap_or(false)
    }

    fn take_frame(&self, kind: u8, data: &[u8]) {
        match kind {
            STDIN => {
                if let Ok(mut input) = self.input.lock() {
                    if let Some(f) = input.as_mut() {
                        let _ = f.write_all(data);
                    }
                }
            }
            RESIZE if data.len() == 4 => {
                let rows = u16::from_be_bytes([data[0], data[1]]);
                let cols = u16::from_be_bytes([data[2], data[3]]);
                if let Some(fd) = self.tty.lock().ok().and_then(|t| *t) {
                    set_size(fd, rows, cols);
                } else if let Some(resize) = self
                    .remote_tty
                    .lock()
                    .ok()
                    .as_deref()
                    .and_then(Option::as_ref)
                {
                    resize(rows, cols);
                }
            }
            // A pipe's end closed: the container reads EOF (a
            // terminal stays, as Docker's does).
            CLOSE => {
                if let Ok(mut input) = self.input.lock() {
                    let remote = self.remote_tty.lock().is_ok_and(|r| r.is_some());
                    if self.tty.lock().ok().and_then(|t| *t).is_none() && !remote {
                        input.take();
                    }
                }
            }
            _ => {}
        }
    }

    /// A terminal held elsewhere (a VM's): input goes to the pipe
    /// `set_input` gives, resizes to `resize`, and a client's CLOSE leaves
    /// it open, as a terminal.
    pub fn set_remote_tty(&self, resize: ResizeHook) {
        if let Ok(mut r) = self.remote_tty.lock() {
            *r = Some(resize);
        }
    }

    /// Where input goes: the terminal's master (`tty`) or a pipe.
    pub fn set_input(&self, input: fs::File, tty: bool) {
        if tty {
            if let Ok(mut t) = self.tty.lock() {
                *t = Some(input.as_raw_fd());
            }
        }
        if let Ok(mut i) = self.input.lock() {
            *i = Some(input);
        }
    }

    /// Output to every client; one that cannot take it is dropped.
    pub fn send(&self, kind: u8, data: &[u8]) {
        let f = frame(kind, data);
        if let Ok(mut list) = self.clients.lock() {
            list.retain_mut(|c| c.write_all(&f).is_ok());
        }
    }

    /// The container ended: every client is let go (they see the end).
    pub fn close(&self) {
        if let Ok(mut list) = self.clients.lock() {
            for c in list.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        if let Ok(mut t) = self.tty.lock() {
            t.take();
        }
        if let Ok(mut i) = self.input.lock() {
            i.take();
        }
    }
}

fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the struct we pass.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

pub(crate) fn size_of(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills the struct we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}

/// A socket path short enough for sun_path (108 bytes) however deep `dir`
/// is: through /proc/PID/fd of a descriptor of `dir`, held open by the
/// caller while the path is used (also by another process: skiff-oci).
fn short_path(dir: &Path, name: &str) -> Result<(std::path::PathBuf, OwnedFd)> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::at(dir, "opening", e.into()))?;
    let path = format!("/proc/{}/fd/{}/{name}", std::process::id(), fd.as_raw_fd());
    Ok((path.into(), fd))
}

/// Listens on `dir/name` (a stale socket there replaced). The socket is
/// bound under a temporary name and renamed into place once it listens:
/// bind makes the file before listen, and a client that finds the file
/// in between is refused (a foreground `run -t` waits for the file, then
/// connects).
fn bind_in(dir: &Path, name: &str) -> Result<(UnixListener, OwnedFd)> {
    let (path, fd) = short_path(dir, name)?;
    let staging = path.with_file_name(format!(".{name}.new"));
    let _ = fs::remove_file(&staging);
    let listener =
        UnixListener::bind(&staging).map_err(|e| Error::at(&dir.join(name), "listening on", e))?;
    fs::rename(&staging, &path).map_err(|e| Error::at(&dir.join(name), "placing", e))?;
    Ok((listener, fd))
}

/// The monitor's console socket for a terminal: skiff-oci sends the pty's
/// master through it (`--console-socket`).
pub struct ConsoleSocket {
    listener: UnixListener,
    /// The path skiff-oci is given (short, see short_path).
    pub path: std::path::PathBuf,
    /// What keeps `path` valid.
    _dir: OwnedFd,
}

impl ConsoleSocket {
    pub fn listen(dir: &Path) -> Result<ConsoleSocket> {
        let (listener, dir_fd) = bind_in(dir, "console.sock")?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("listening on the console socket", e))?;
        let path = format!(
            "/proc/{}/fd/{}/console.sock",
            std::process::id(),
            dir_fd.as_raw_fd()
        );
        Ok(ConsoleSocket {
            listener,
            path: path.into(),
            _dir: dir_fd,
        })
    }

    /// The master, once skiff-oci create has sent it (it has returned by
    /// then: the connection waits in the backlog).
    pub fn receive(&self) -> Result<fs::File> {
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| Error::io("receiving the terminal from skiff-oci", e))?;
        conn.set_nonblocking(false)
            .map_err(|e| Error::io("receiving the terminal from skiff-oci", e))?;
        receive_fd(&conn).map(fs::File::from)
    }
}

/// One descriptor passed with SCM_RIGHTS.
fn receive_fd(conn: &UnixStream) -> Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one descriptor's control message, aligned.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive
    // the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg into the buffers described by msg.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Error::io(
            "receiving the terminal from skiff-oci",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: CMSG_FIRSTHDR/CMSG_DATA walk the control buffer the kernel
    // filled; a descriptor is read only from an SCM_RIGHTS message.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd: RawFd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(Error::invalid(
        "skiff-oci sent no terminal over the console socket",
    ))
}

/// The local terminal in raw mode until dropped.
pub(crate) struct Raw {
    fd: RawFd,
    saved: libc::termios,
}

impl Raw {
    pub(crate) fn new(fd: RawFd) -> Option<Raw> {
        // SAFETY: tcgetattr fills the struct; cfmakeraw edits a copy.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
            Some(Raw { fd, saved })
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in new.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// How an attach ended.
pub enum Ended {
    /// The container ended (the monitor let us go), with this code when
    /// the monitor said it.
    Container(Option<i32>),
    /// The detach keys were typed: the container runs on.
    Detached,
}

/// Which of a container's output streams reach this command's (a
/// foreground run's, an attach's): both unless `--attach` names some.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Echo {
    pub stdout: bool,
    pub stderr: bool,
}

impl Echo {
    pub const ALL: Echo = Echo {
        stdout: true,
        stderr: true,
    };
    pub const NONE: Echo = Echo {
        stdout: false,
        stderr: false,
    };

    /// Whether output of `kind` (attach's STDOUT or STDERR frame) goes on.
    pub fn passes(self, kind: u8) -> bool {
        match kind {
            STDERR => self.stderr,
            _ => self.stdout,
        }
    }
}

/// `skiff attach`: the container's output here, this terminal's (or
/// stdin's) input there, until the container ends or ctrl-p ctrl-q.
pub fn attach(dir: &Path, tty: bool, stdin: bool, out: Echo, keys: &[u8]) -> Result<Ended> {
    let (short, _dir) = short_path(dir, "attach.sock")?;
    let conn = UnixStream::connect(&short).map_err(|e| {
        Error::invalid(format!(
            "attaching: {}: {e} (is the container running?)",
            dir.join("attach.sock").display()
        ))
    })?;
    let local_tty = tty && unsafe { libc::isatty(0) } == 1;
    let raw = if local_tty { Raw::new(0) } else { None };
    // The first frame: this terminal's size, or an empty one.
    {
        let mut w = conn.try_clone().map_err(|e| Error::io("attaching", e))?;
        let sent = match local_tty.then(|| size_of(0)).flatten() {
            Some(size) => w.write_all(&size_frame(size)),
            None => w.write_all(&frame(STDIN, &[])),
        };
        sent.map_err(|e| Error::io("attaching", e))?;
    }
    // SIGWINCH is taken by a thread of its own (blocked for the others).
    if local_tty {
        block_winch();
        let mut w = conn.try_clone().map_err(|e| Error::io("attaching", e))?;
        std::thread::spawn(move || loop {
            if !wait_winch() || !send_size(&mut w) {
                return;
            }
        });
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Ended>();
    if stdin {
        let mut w = conn.try_clone().map_err(|e| Error::io("attaching", e))?;
        let tx = done_tx.clone();
        // Detach keys mean something typed on a terminal only.
        let keys = if local_tty { keys.to_vec() } else { Vec::new() };
        std::thread::spawn(move || {
            if forward_input(&mut w, &keys) {
                let _ = tx.send(Ended::Detached);
            }
        });
    }
    let mut r = conn;
    std::thread::spawn(move || {
        let mut code = None;
        while let Some((kind, data)) = read_frame(&mut r) {
            if kind == EXIT {
                code = <[u8; 4]>::try_from(data.as_slice())
                    .ok()
                    .map(i32::from_be_bytes);
                continue;
            }
            if !out.passes(kind) {
                continue;
            }
            let written = if kind == STDERR {
                std::io::stderr().write_all(&data)
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&data).and_then(|()| out.flush())
            };
            if written.is_err() {
                break;
            }
        }
        let _ = done_tx.send(Ended::Container(code));
    });
    let ended = done_rx.recv().unwrap_or(Ended::Container(None));
    drop(raw);
    if matches!(ended, Ended::Detached) && local_tty {
        eprintln!();
    }
    Ok(ended)
}

/// `--detach-keys`: Docker's form, keys separated by commas, each a
/// character or ctrl-CHAR (ctrl-a .. ctrl-z, ctrl-@, ctrl-[, ctrl-\\,
/// ctrl-], ctrl-^, ctrl-_); "" turns detaching off.
pub fn parse_detach_keys(text: &str) -> Result<Vec<u8>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|k| {
            let bad = || {
                Error::invalid(format!(
                    "--detach-keys {text:?}: {k:?} is not a key (a character or ctrl-CHAR)"
                ))
            };
            match k.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_uppercase();
                    match c {
                        b'@'..=b'_' => Ok(c & 0x1f),
                        _ => Err(bad()),
                    }
                }
                Some(_) => Err(bad()),
                None if k.len() == 1 => Ok(k.as_bytes()[0]),
                None => Err(bad()),
            }
        })
        .collect()
}

/// Stdin to the monitor; true when the detach keys ended it (typed on a
/// terminal; a sequence begun and not finished goes through as typed).
fn forward_input(w: &mut UnixStream, keys: &[u8]) -> bool {
    let mut buf = [0u8; 4096];
    let mut matched = 0;
    loop {
        let n = match std::io::stdin().read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = w.write_all(&frame(CLOSE, &[]));
                return false;
            }
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + keys.len());
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    if !out.is_empty() {
                        let _ = w.write_all(&frame(STDIN, &out));
                    }
                    return true;
                }
                continue;
            }
            if matched > 0 {
                out.extend_from_slice(&keys[..matched]);
                matched = 0;
                if b == keys[0] {
                    matched = 1;
                    continue;
                }
            }
            out.push(b);
        }
        if !out.is_empty() && w.write_all(&frame(STDIN, &out)).is_err() {
            return false;
        }
    }
}

fn size_frame((rows, cols): (u16, u16)) -> Vec<u8> {
    let mut p = rows.to_be_bytes().to_vec();
    p.extend_from_slice(&cols.to_be_bytes());
    frame(RESIZE, &p)
}

fn send_size(w: &mut UnixStream) -> bool {
    match size_of(0) {
        Some(size) => w.write_all(&size_frame(size)).is_ok(),
        None => true,
    }
}

fn winch_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        set
    }
}

pub(crate) fn block_winch() {
    let set = winch_set();
    // SAFETY: blocks SIGWINCH in this thread (and the threads it starts).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

pub(crate) fn wait_winch() -> bool {
    let set = winch_set();
    let mut sig = 0;
    // SAFETY: waits for the blocked SIGWINCH.
    unsafe { libc::sigwait(&set, &mut sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that connects as soon as the socket's file shows up is
    /// never refused: the file appears only once it listens. Each round
    /// binds a new name, and its listener stays open to the end, so a
    /// refusal can only be a file that does not listen yet.
    #[test]
    fn a_socket_file_that_exists_accepts() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let round = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (dir, round, stop) = (dir.path().to_owned(), round.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut refused = 0;
                while !stop.load(Ordering::Relaxed) {
                    let path = dir.join(format!("{}.sock", round.load(Ordering::Relaxed)));
                    if let Err(e) = UnixStream::connect(&path) {
                        refused += (e.kind() == std::io::ErrorKind::ConnectionRefused) as usize;
                    }
                }
                refused
            })
        };
        let mut listeners = vec![];
        for n in 1..=400 {
            round.store(n, Ordering::Relaxed);
            listeners.push(bind_in(dir.path(), &format!("{n}.sock")).unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(watcher.join().unwrap(), 0, "connections refused");
    }

    #[test]
    fn detach_keys_are_dockers() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-a,x,ctrl-@").unwrap(), [1, b'x', 0]);
        assert!(parse_detach_keys("").unwrap().is_empty());
        for bad in ["ctrl-", "ctrl-ab", "alt-x", "xy", "ctrl-1"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_round_trip_and_bad_lengths_end_the_stream() {
        let mut bytes = frame(STDOUT, b"hello");
        bytes.extend(frame(RESIZE, &[0, 24, 0, 80]));
        let mut r = &bytes[..];
        assert_eq!(read_frame(&mut r), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(read_frame(&mut r), Some((RESIZE, vec![0, 24, 0, 80])));
        assert_eq!(read_frame(&mut r), None);
        let mut huge = vec![STDIN];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(read_frame(&mut &huge[..]), None);
    }
}
