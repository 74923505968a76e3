//! The few rtnetlink requests the engine-native path makes (a bridge, a
//! veth pair with one end in a container's namespace, a link up, an
//! address, a default route, a link deleted), each one message and its
//! ack on a NETLINK_ROUTE socket; and what the VM tier needs to carry a
//! pod's network into its VM (the links, addresses and routes of a
//! namespace read back, an ingress qdisc with a u32 filter that
//! redirects every frame to another link, a link renamed or given an MTU).
//!
//! The messages are netlink-packet-route's types, framed and parsed by
//! netlink-packet-core, and sent on netlink-sys's blocking socket: the
//! rust-netlink crates that rtnetlink and netavark are built on, used
//! here without rtnetlink's async layer, so a request is still one
//! send and one receive on the calling thread, with no runtime.

use std::cell::Cell;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute,
    TcFilterU32Option, TcHandle, TcMessage, TcMirror, TcMirrorActionType, TcOption, TcU32Key,
    TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::{Error, Result};

/// A NETLINK_ROUTE socket of the calling thread's network namespace.
pub struct Socket {
    socket: netlink_sys::Socket,
    /// The last request's sequence number: its ack carries it back.
    seq: Cell<u32>,
}

impl Socket {
    pub fn open() -> Result<Socket> {
        let socket = netlink_sys::Socket::new(NETLINK_ROUTE)
            .map_err(|e| Error::io("opening a netlink socket", e))?;
        // Every wait bounded: a kernel that never answers is an error.
        // (netlink-sys has no setter for SO_RCVTIMEO.)
        let tv = libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a timeval that lives
        // through the call and its size.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if set != 0 {
            return Err(Error::io(
                "setting the netlink socket's receive timeout",
                io::Error::last_os_error(),
            ));
        }
        Ok(Socket {
            socket,
            seq: Cell::new(0),
        })
    }

    /// Sends one request (`flags` besides REQUEST and ACK) and reads its
    /// ack: Ok, or the kernel's errno under `what`.
    fn call(&self, what: &str, flags: u16, request: RouteNetlinkMessage) -> Result<()> {
        self.exchange(what, NLM_F_ACK | flags, request, |_| {})
    }

    /// Sends a dump request and returns every message of the answer.
    fn dump(&self, what: &str, request: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        let mut found = Vec::new();
        self.exchange(what, NLM_F_DUMP, request, |m| found.push(m))?;
        Ok(found)
    }

    /// Sends `request` and reads until its ack or, for a dump, its end;
    /// each message of ours before that goes to `each`.
    fn exchange(
        &self,
        what: &str,
        flags: u16,
        request: RouteNetlinkMessage,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<()> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request));
        message.finalize();
        let mut buf = vec![0u8; message.buffer_len()];
        message.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| Error::io(what.to_string(), e))?;
        let mut reply = Vec::with_capacity(64 * 1024);
        loop {
            reply.clear();
            self.socket
                .recv(&mut reply, 0)
                .map_err(|e| Error::io(what.to_string(), e))?;
            let mut rest = &reply[..];
            while !rest.is_empty() {
                let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|e| Error::Invalid(format!("{what}: the kernel's answer: {e}")))?;
                // Messages are 4-byte aligned; a zero length would not move.
                let len = (answer.header.length as usize + 3) & !3;
                if answer.header.sequence_number == seq {
                    match answer.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(()),
                                Some(_) => Err(Error::io(what.to_string(), e.to_io())),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::InnerMessage(m) => each(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                rest = rest.get(len..).unwrap_or_default();
            }
        }
    }

    /// A bridge `name`, up (EEXIST: there already, fine).
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        let mut link = LinkMessage::default();
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        link.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        ignore_exists(self.call(
            &format!("making bridge {name}"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(link),
        ))
    }

    /// A veth pair: `host` up on the bridge `master`, its peer `peer` (down)
    /// in the namespace `netns` (made there directly, so it never shows on
    /// the host).
    pub fn add_veth(&self, host: &str, master: u32, peer: &str, netns: &File) -> Result<()> {
        self.add_veth_with_mac(host, master, peer, None, netns)
    }

    /// `add_veth`, the peer given hardware address `peer_mac` (else the
    /// kernel's random one).
    pub fn add_veth_with_mac(
        &self,
        host: &str,
        master: u32,
        peer: &str,
        peer_mac: Option<[u8; 6]>,
        netns: &File,
    ) -> Result<()> {
        // Down: a veth end cannot come up before its peer is made
        // (ENOTCONN); `set_up` from inside the namespace.
        let mut peer_link = LinkMessage::default();
        peer_link.attributes = vec![
            LinkAttribute::IfName(peer.to_string()),
            LinkAttribute::NetNsFd(netns.as_raw_fd()),
        ];
        if let Some(mac) = peer_mac {
            peer_link
                .attributes
                .push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut link = LinkMessage::default();
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        link.attributes = vec![
            LinkAttribute::IfName(host.to_string()),
            LinkAttribute::Controller(master),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))),
            ]),
        ];
        self.call(
            &format!("making veth {host} (peer {peer})"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(link),
        )
    }

    /// Link `index` up.
    pub fn set_up(&self, index: u32) -> Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        self.call(
            &format!("setting link {index} up"),
            0,
            RouteNetlinkMessage::NewLink(link),
        )
    }

    /// Deletes link `name` (a veth: both ends go). Not there: fine.
    pub fn del_link(&self, name: &str) -> Result<()> {
        let mut link = LinkMessage::default();
        link.attributes = vec![LinkAttribute::IfName(name.to_string())];
        match self.call(
            &format!("deleting link {name}"),
            0,
            RouteNetlinkMessage::DelLink(link),
        ) {
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// `addr/prefix` on the link `index` (EEXIST: fine).
    pub fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        self.add_ip(index, IpAddr::V4(addr), prefix)
    }

    /// The default route through `gateway` on link `index`.
    pub fn add_default_route(&self, index: u32, gateway: Ipv4Addr) -> Result<()> {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet;
        route.header.destination_prefix_length = 0; // the default route
        route.header.table = RouteHeader::RT_TABLE_MAIN;
        route.header.protocol = RouteProtocol::Boot;
        route.header.scope = RouteScope::Universe;
        route.header.kind = RouteType::Unicast;
        route.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::Inet(gateway)),
            RouteAttribute::Oif(index),
        ];
        ignore_exists(self.call(
            &format!("adding the default route via {gateway}"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewRoute(route),
        ))
    }

    /// An address (v4 or v6) on link `index` (EEXIST: fine).
    pub fn add_ip(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let mut address = AddressMessage::default();
        address.header.family = family_of(&addr);
        address.header.prefix_len = prefix;
        address.header.scope = AddressScope::Universe;
        address.header.index = index;
        address.attributes = match addr {
            IpAddr::V4(_) => vec![
                AddressAttribute::Local(addr),
                AddressAttribute::Address(addr),
            ],
            IpAddr::V6(_) => vec![AddressAttribute::Address(addr)],
        };
        ignore_exists(self.call(
            &format!("adding address {addr}/{prefix}"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewAddress(address),
        ))
    }

    /// A route as read by `routes` (its `oif` the link to use; EEXIST: fine).
    pub fn add_route(&self, route: &Route) -> Result<()> {
        let mut message = RouteMessage::default();
        message.header.address_family = if route.v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Boot;
        message.header.scope = if route.gateway.is_none() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        message.header.kind = RouteType::Unicast;
        if let Some((dest, prefix)) = route.dest {
            message.header.destination_prefix_length = prefix;
            message
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::from(dest)));
        }
        if let Some(gateway) = route.gateway {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        }
        if let Some(oif) = route.oif {
            message.attributes.push(RouteAttribute::Oif(oif));
        }
        ignore_exists(self.call(
            &format!("adding the route {route}"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewRoute(message),
        ))
    }

    /// Renames link `index` and sets its MTU (each when given; the link
    /// must be down to be renamed).
    pub fn configure_link(&self, index: u32, name: Option<&str>, mtu: Option<u32>) -> Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        if let Some(name) = name {
            link.attributes
                .push(LinkAttribute::IfName(name.to_string()));
        }
        if let Some(mtu) = mtu {
            link.attributes.push(LinkAttribute::Mtu(mtu));
        }
        self.call(
            &format!("configuring link {index} (name {name:?}, mtu {mtu:?})"),
            0,
            RouteNetlinkMessage::NewLink(link),
        )
    }

    /// The namespace's links.
    pub fn links(&self) -> Result<Vec<Link>> {
        let answer = self.dump(
            "listing the links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }

    /// The namespace's addresses (v4 and v6).
    pub fn addresses(&self) -> Result<Vec<Address>> {
        let answer = self.dump(
            "listing the addresses",
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Address::from_message(a),
                _ => None,
            })
            .collect())
    }

    /// The unicast routes of the namespace's main table (v4 and v6), but
    /// those the kernel made itself for an address or a link.
    pub fn routes(&self) -> Result<Vec<Route>> {
        let answer = self.dump(
            "listing the routes",
            RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        )?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Route::from_message(r),
                _ => None,
            })
            .collect())
    }

    /// An ingress qdisc on link `index` (`tc qdisc add dev X ingress`).
    pub fn add_ingress_qdisc(&self, index: u32) -> Result<()> {
        let mut qdisc = TcMessage::with_index(index as i32);
        qdisc.header.handle = INGRESS_HANDLE;
        qdisc.header.parent = TcHandle::INGRESS;
        qdisc.attributes = vec![TcAttribute::Kind("ingress".into())];
        self.call(
            &format!("adding an ingress qdisc to link {index}"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewQueueDiscipline(qdisc),
        )
    }

    /// Removes link `index`'s ingress qdisc and its filters (none: fine).
    pub fn del_ingress_qdisc(&self, index: u32) -> Result<()> {
        let mut qdisc = TcMessage::with_index(index as i32);
        qdisc.header.handle = INGRESS_HANDLE;
        qdisc.header.parent = TcHandle::INGRESS;
        match self.call(
            &format!("removing link {index}'s ingress qdisc"),
            0,
            RouteNetlinkMessage::DelQueueDiscipline(qdisc),
        ) {
            Err(Error::Io { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOENT | libc::EINVAL | libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Every frame arriving on link `from` leaves by link `to` instead
    /// (`tc filter add dev FROM parent ffff: protocol all u32 match u8 0 0
    /// action mirred egress redirect dev TO`): `from` needs an ingress
    /// qdisc.
    pub fn redirect_ingress(&self, from: u32, to: u32) -> Result<()> {
        let mut filter = TcMessage::with_index(from as i32);
        filter.header.parent = INGRESS_HANDLE;
        // The priority (1) and the protocol (ETH_P_ALL, in network order).
        filter.header.info = (1 << 16) | u32::from((libc::ETH_P_ALL as u16).to_be());
        let mut match_all = TcU32Selector::default();
        match_all.flags = TcU32SelectorFlags::Terminal;
        match_all.nkeys = 1;
        match_all.keys = vec![TcU32Key::default()];
        let mut mirred = TcMirror::default();
        mirred.generic.action = TcActionType::Stolen;
        mirred.eaction = TcMirrorActionType::EgressRedir;
        mirred.ifindex = to;
        let mut action = TcAction::default();
        action.attributes = vec![
            TcActionAttribute::Kind("mirred".into()),
            TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
                mirred,
            ))]),
        ];
        filter.attributes = vec![
            TcAttribute::Kind("u32".into()),
            TcAttribute::Options(vec![
                TcOption::U32(TcFilterU32Option::Selector(match_all)),
                TcOption::U32(TcFilterU32Option::Action(vec![action])),
            ]),
        ];
        self.call(
            &format!("redirecting link {from}'s ingress to link {to}"),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewTrafficFilter(filter),
        )
    }
}

/// The ingress qdisc's handle, `ffff:`.
const INGRESS_HANDLE: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0,
};

fn family_of(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// A link as `links` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The hardware address of an Ethernet link.
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub loopback: bool,
}

impl Link {
    fn from_message(l: LinkMessage) -> Link {
        let mut link = Link {
            index: l.header.index,
            name: String::new(),
            mac: None,
            mtu: 0,
            loopback: l.header.flags.contains(LinkFlags::Loopback),
        };
        let ether = l.header.link_layer_type == LinkLayerType::Ether;
        for attribute in l.attributes {
            match attribute {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Mtu(m) => link.mtu = m,
                LinkAttribute::Address(a) if ether => link.mac = a.try_into().ok(),
                _ => {}
            }
        }
        link
    }
}

/// An address as `addresses` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    /// Scope link (an IPv6 fe80:: address the kernel makes per link).
    pub link_scope: bool,
}

impl Address {
    fn from_message(a: AddressMessage) -> Option<Address> {
        let (mut local, mut address) = (None, None);
        for attribute in a.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                _ => {}
            }
        }
        Some(Address {
            index: a.header.index,
            ip: local.or(address)?,
            prefix: a.header.prefix_len,
            link_scope: a.header.scope == AddressScope::Link,
        })
    }
}

/// A unicast route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub v6: bool,
    /// Destination and prefix length; None for the default route.
    pub dest: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    /// The link the route leaves by.
    pub oif: Option<u32>,
}

impl Route {
    fn from_message(r: RouteMessage) -> Option<Route> {
        let h = &r.header;
        let main = h.table == RouteHeader::RT_TABLE_MAIN;
        if !main || h.kind != RouteType::Unicast || h.protocol == RouteProtocol::Kernel {
            return None;
        }
        let v6 = h.address_family == AddressFamily::Inet6;
        let prefix = h.destination_prefix_length;
        let mut route = Route {
            v6,
            dest: None,
            gateway: None,
            oif: None,
        };
        for attribute in r.attributes {
            match attribute {
                RouteAttribute::Destination(a) => route.dest = ip_of(a).map(|ip| (ip, prefix)),
                RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
                RouteAttribute::Oif(i) => route.oif = Some(i),
                _ => {}
            }
        }
        // IPv6's multicast and link-local routes are the kernel's per link.
        let kernels = matches!(route.dest, Some((IpAddr::V6(d), _)) if d.segments()[0] & 0xff00 == 0xff00 || d.segments()[0] & 0xffc0 == 0xfe80);
        (!kernels).then_some(route)
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.dest {
            Some((ip, prefix)) => write!(f, "{ip}/{prefix}")?,
            None => write!(f, "default")?,
        }
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " dev {oif}")?;
        }
        Ok(())
    }
}

fn ip_of(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
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
