//! The few rtnetlink requests the engine-native path makes (a bridge, a
//! veth pair with one end in a container's namespace, a link up, an
//! address, a default route, a link deleted), each one message and its
//! ack on a NETLINK_ROUTE socket.
//!
//! Why raw messages rather than a crate: the maintained ones
//! (netlink-packet-route with netlink-sys, rtnetlink) change their message
//! types from one minor version to the next and rtnetlink is async; these
//! six requests are a few attributes each, and a request here is a
//! write and a read, synchronous, with no thread or runtime.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::{Error, Result};

const NLMSG_HDRLEN: usize = 16;
/// Not in libc: the veth driver's peer attribute (linux/veth.h).
const VETH_INFO_PEER: u16 = 1;

/// A request being built: the header, the family's fixed part, then
/// attributes (nested ones through `nest`/`end_nest`).
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Request {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        let flags = flags | libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16;
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        buf.extend_from_slice(fixed);
        Request { buf }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        self.pad();
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self
    }

    fn str_attr(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    /// Opens a nested attribute; its offset, for `end_nest`.
    fn nest(&mut self, kind: u16) -> usize {
        self.pad();
        let at = self.buf.len();
        self.attr(kind | libc::NLA_F_NESTED as u16, &[]);
        at
    }

    fn end_nest(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn bytes(mut self) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// struct ifinfomsg: family, type, index, flags, change.
fn ifinfomsg(index: i32, flags: u32) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&flags.to_ne_bytes());
    m
}

/// A NETLINK_ROUTE socket of the calling thread's network namespace.
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    pub fn open() -> Result<Socket> {
        // SAFETY: socket() with constant arguments; the fd is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::io(
                "opening a netlink socket",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is a socket we just made and own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Every wait bounded: a kernel that never answers is an error.
        let tv = libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval that lives through the call.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Socket { fd })
    }

    /// Sends one request and reads its ack: Ok, or the kernel's errno.
    fn call(&self, what: &str, req: Request) -> Result<()> {
        let msg = req.bytes();
        // SAFETY: send of a buffer that lives through the call; the kernel
        // is the default destination of a netlink socket.
        let sent = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
            )
        };
        if sent < 0 {
            return Err(Error::io(what.to_string(), io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: recv into a buffer of the length given.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                return Err(Error::io(what.to_string(), io::Error::last_os_error()));
            }
            let mut at = 0usize;
            let n = n as usize;
            while at + NLMSG_HDRLEN <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
                let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                if kind == libc::NLMSG_ERROR as u16 && at + NLMSG_HDRLEN + 4 <= n {
                    let off = at + NLMSG_HDRLEN;
                    let errno = -i32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4]));
                    return match errno {
                        0 => Ok(()),
                        e => Err(Error::io(what.to_string(), io::Error::from_raw_os_error(e))),
                    };
                }
                if len < NLMSG_HDRLEN {
                    break;
                }
                at += (len + 3) & !3;
            }
        }
    }

    /// A bridge `name`, up (EEXIST: there already, fine).
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        let mut r = Request::new(
            libc::RTM_NEWLINK,
            (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            &ifinfomsg(0, libc::IFF_UP as u32),
        );
        r.str_attr(libc::IFLA_IFNAME, name);
        let info = r.nest(libc::IFLA_LINKINFO);
        r.str_attr(libc::IFLA_INFO_KIND, "bridge");
        r.end_nest(info);
        ignore_exists(self.call(&format!("making bridge {name}"), r))
    }

    /// A veth pair: `host` up on the bridge `master`, its peer `peer` (down)
    /// in the namespace `netns` (made there directly, so it never shows on
    /// the host).
    pub fn add_veth(&self, host: &str, master: u32, peer: &str, netns: &File) -> Result<()> {
        let mut r = Request::new(
            libc::RTM_NEWLINK,
            (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            &ifinfomsg(0, libc::IFF_UP as u32),
        );
        r.str_attr(libc::IFLA_IFNAME, host);
        r.attr(libc::IFLA_MASTER, &master.to_ne_bytes());
        let info = r.nest(libc::IFLA_LINKINFO);
        r.str_attr(libc::IFLA_INFO_KIND, "veth");
        let data = r.nest(libc::IFLA_INFO_DATA);
        let p = r.nest(VETH_INFO_PEER);
        // Down: a veth end cannot come up before its peer is made
        // (ENOTCONN); `set_up` from inside the namespace.
        r.buf.extend_from_slice(&ifinfomsg(0, 0));
        r.str_attr(libc::IFLA_IFNAME, peer);
        r.attr(libc::IFLA_NET_NS_FD, &netns.as_raw_fd().to_ne_bytes());
        r.end_nest(p);
        r.end_nest(data);
        r.end_nest(info);
        self.call(&format!("making veth {host} (peer {peer})"), r)
    }

    /// Link `index` up.
    pub fn set_up(&self, index: u32) -> Result<()> {
        let r = Request::new(
            libc::RTM_NEWLINK,
            0,
            &ifinfomsg(index as i32, libc::IFF_UP as u32),
        );
        self.call(&format!("setting link {index} up"), r)
    }

    /// Deletes link `name` (a veth: both ends go). Not there: fine.
    pub fn del_link(&self, name: &str) -> Result<()> {
        let mut r = Request::new(libc::RTM_DELLINK, 0, &ifinfomsg(0, 0));
        r.str_attr(libc::IFLA_IFNAME, name);
        match self.call(&format!("deleting link {name}"), r) {
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// `addr/prefix` on the link `index` (EEXIST: fine).
    pub fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut fixed = vec![libc::AF_INET as u8, prefix, 0, libc::RT_SCOPE_UNIVERSE];
        fixed.extend_from_slice(&index.to_ne_bytes());
        let mut r = Request::new(
            libc::RTM_NEWADDR,
            (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            &fixed,
        );
        r.attr(libc::IFA_LOCAL, &addr.octets());
        r.attr(libc::IFA_ADDRESS, &addr.octets());
        ignore_exists(self.call(&format!("adding address {addr}/{prefix}"), r))
    }

    /// The default route through `gateway` on link `index`.
    pub fn add_default_route(&self, index: u32, gateway: Ipv4Addr) -> Result<()> {
        let fixed = [
            libc::AF_INET as u8,
            0, // dst_len: the default route
            0,
            0,
            libc::RT_TABLE_MAIN,
            libc::RTPROT_BOOT,
            libc::RT_SCOPE_UNIVERSE,
            libc::RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let mut r = Request::new(
            libc::RTM_NEWROUTE,
            (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            &fixed,
        );
        r.attr(libc::RTA_GATEWAY, &gateway.octets());
        r.attr(libc::RTA_OIF, &index.to_ne_bytes());
        ignore_exists(self.call(&format!("adding the default route via {gateway}"), r))
    }
}

fn ignore_exists(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// The index of link `name` in the calling thread's namespace.
pub fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name that lives through the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Runs `f` on a thread of its own that has joined the network namespace
/// bound at `netns` (a namespace is per thread: this process keeps its
/// own); the thread ends with `f`.
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let ns = File::open(netns).map_err(|e| Error::io(format!("opening {}", netns.display()), e))?;
    let shown = netns.display().to_string();
    std::thread::spawn(move || {
        // SAFETY: setns of this thread to an nsfs file we hold open.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::io(
                format!("joining the network namespace {shown}"),
                io::Error::last_os_error(),
            ));
        }
        f()
    })
    .join()
    .unwrap_or_else(|_| {
        Err(Error::Invalid(
            "a network namespace's thread panicked".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns;

    /// Two namespaces of the test's own ("host" and "container"): a
    /// bridge with an address in the first, a veth made from there with
    /// its peer in the second, addressed and routed; a TCP connection
    /// from the container to the bridge's address then works. Nothing of
    /// the real host is touched. Needs root (skipped, and said, without).
    #[test]
    fn a_veth_into_a_namespace_reaches_the_bridge() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("skiff-netlink-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (host, ctr) = (dir.join("host"), dir.join("ctr"));
        netns::create(&host).unwrap();
        netns::create(&ctr).unwrap();
        let gw = Ipv4Addr::new(10, 250, 0, 1);
        let ip = Ipv4Addr::new(10, 250, 0, 2);
        let ctr2 = ctr.clone();
        let listener = in_netns(&host, move || {
            let nl = Socket::open()?;
            nl.add_bridge("tbr0")?;
            nl.add_bridge("tbr0")?; // again: there already, fine
            let br = index_of("tbr0").unwrap();
            nl.add_address(br, gw, 24)?;
            let ns = File::open(&ctr2).unwrap();
            nl.add_veth("tveth0", br, "eth0", &ns)?;
            assert!(
                index_of("eth0").is_none(),
                "the peer showed on the host side"
            );
            let err = nl.add_veth("tveth0", br, "eth0", &ns).unwrap_err();
            assert!(err.to_string().contains("tveth0"), "{err}");
            let l = std::net::TcpListener::bind((gw, 0)).unwrap();
            Ok(l)
        })
        .unwrap();
        let port = listener.local_addr().unwrap().port();
        in_netns(&ctr, move || {
            let nl = Socket::open()?;
            let eth0 = index_of("eth0").unwrap();
            nl.set_up(eth0)?;
            nl.add_address(eth0, ip, 24)?;
            nl.add_default_route(eth0, gw)?;
            let to = std::net::SocketAddr::from((gw, port));
            std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_secs(5))
                .map_err(|e| Error::io("connecting to the bridge", e))?;
            Ok(())
        })
        .unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(ip));
        in_netns(&host, || {
            let nl = Socket::open()?;
            nl.del_link("tveth0")?;
            nl.del_link("tveth0")?; // gone: fine
            assert!(index_of("tveth0").is_none());
            Ok(())
        })
        .unwrap();
        netns::remove(&host).unwrap();
        netns::remove(&ctr).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
