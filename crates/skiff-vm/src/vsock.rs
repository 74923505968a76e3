//! The host end of a guest vsock port, "hybrid vsock": connect to the
//! backend's unix socket, send `CONNECT <port>\n`, read `OK <host port>\n`;
//! the stream then carries the connection. vhost-device-vsock,
//! firecracker and cloud-hypervisor all speak it.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One connection to `port` in the guest, waiting up to `bound` for the
/// answer. An error when nothing listens there yet (the backend closes the
/// stream) or the guest's vsock driver is not up (no answer at all: a
/// request sent before the driver starts is lost, not queued).
pub fn connect(uds: &Path, port: u32, bound: Duration) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(uds)?;
    stream.set_read_timeout(Some(bound))?;
    stream.write_all(format!("CONNECT {port}\n").as_bytes())?;
    // Byte by byte: what follows the line is the guest's.
    let mut line = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    while line.len() < 64 {
        match stream.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    if !line.starts_with(b"OK ") {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "vsock port {port}: {:?}",
                String::from_utf8_lossy(&line).trim()
            ),
        ));
    }
    stream.set_read_timeout(None)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    /// A stand-in backend: reads the CONNECT line, answers `reply` (and
    /// then the guest's first byte, when it accepts).
    fn backend(reply: &'static [u8]) -> (std::path::PathBuf, std::thread::JoinHandle<String>) {
        let dir = std::env::temp_dir().join(format!(
            "skiff-vsock-test-{}-{}",
            std::process::id(),
            reply.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vsock.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut line = String::new();
            std::io::BufReader::new(conn.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            conn.write_all(reply).unwrap();
            let _ = std::fs::remove_dir_all(dir);
            line
        });
        (path, handle)
    }

    #[test]
    fn connect_sends_the_port_and_leaves_the_guests_bytes_unread() {
        let (path, backend) = backend(b"OK 1073741824\nX");
        let mut stream = connect(&path, 1024, Duration::from_secs(5)).unwrap();
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"X");
        assert_eq!(backend.join().unwrap(), "CONNECT 1024\n");
    }

    #[test]
    fn a_refused_port_is_an_error() {
        let (path, backend) = backend(b"");
        let e = connect(&path, 1024, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        backend.join().unwrap();
    }
}
