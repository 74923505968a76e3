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
