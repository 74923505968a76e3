//! The pod's network in the guest (UpdateInterface, UpdateRoutes): the
//! host mirrored each of the pod's interfaces onto a virtio-net device
//! with the same MAC (skiff-vm's network.rs); here that device gets the
//! interface's name, MTU and addresses, and the pod's routes are added.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use skiff_agent_api::agent::{Interface, UpdateRoutesRequest};
use skiff_net::netlink::{self, Route, Socket};

use crate::error::AgentError;
use crate::guest;

type Result<T> = std::result::Result<T, AgentError>;

/// How long a device may take to show after its driver loaded.
const DEVICE_BOUND: Duration = Duration::from_secs(5);

pub fn update_interface(req: &Interface) -> Result<()> {
    let mac = parse_mac(&req.mac)?;
    let addresses = req
        .addresses
        .iter()
        .map(|a| parse_cidr(a, "addresses"))
        .collect::<Result<Vec<_>>>()?;
    if req.name.is_empty() || req.name.len() > 15 || req.name.contains('/') {
        return Err(AgentError::InvalidArgument(format!(
            "name: {:?} is not an interface name",
            req.name
        )));
    }
    guest::load_driver(guest::Device::Network)?;
    let nl = Socket::open().map_err(net_error)?;
    let link = device_with(&nl, mac, &req.mac)?;
    let rename = (link.name != req.name).then_some(req.name.as_str());
    let mtu = (req.mtu != 0 && req.mtu != link.mtu).then_some(req.mtu);
    if rename.is_some() || mtu.is_some() {
        nl.configure_link(link.index, rename, mtu)
            .map_err(net_error)?;
    }
    for (ip, prefix) in addresses {
        nl.add_ip(link.index, ip, prefix).map_err(net_error)?;
    }
    nl.set_up(link.index).map_err(net_error)
}

pub fn update_routes(req: &UpdateRoutesRequest) -> Result<()> {
    let nl = Socket::open().map_err(net_error)?;
    for r in &req.routes {
        let (dest, prefix) = parse_cidr(&r.destination, "routes.destination")?;
        let gateway = match r.gateway.as_str() {
            "" => None,
            g => Some(g.parse::<IpAddr>().map_err(|_| {
                AgentError::InvalidArgument(format!("routes.gateway: {g:?} is not an address"))
            })?),
        };
        let oif = netlink::index_of(&r.device).ok_or_else(|| {
            AgentError::NotFound(format!("routes.device: no interface {:?}", r.device))
        })?;
        let route = Route {
            v6: dest.is_ipv6(),
            dest: (prefix != 0).then_some((dest, prefix)),
            gateway,
            oif: Some(oif),
        };
        nl.add_route(&route).map_err(net_error)?;
    }
    Ok(())
}

/// The link with hardware address `mac`, waited for (bounded): its driver
/// may still be probing.
fn device_with(nl: &Socket, mac: [u8; 6], shown: &str) -> Result<netlink::Link> {
    let deadline = Instant::now() + DEVICE_BOUND;
    loop {
        let links = nl.links().map_err(net_error)?;
        if let Some(link) = links.into_iter().find(|l| l.mac == Some(mac)) {
            return Ok(link);
        }
        if Instant::now() > deadline {
            return Err(AgentError::NotFound(format!(
                "mac: no network device with address {shown} in the guest"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn net_error(e: skiff_net::Error) -> AgentError {
    AgentError::Runtime(format!("network: {e}"))
}

fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = || AgentError::InvalidArgument(format!("mac: {text:?} is not aa:bb:cc:dd:ee:ff"));
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    bytes.try_into().map_err(|_| bad())
}

/// "10.88.0.5/16" -> (address, 16); the prefix within the family's bits.
fn parse_cidr(text: &str, field: &str) -> Result<(IpAddr, u8)> {
    let bad = || AgentError::InvalidArgument(format!("{field}: {text:?} is not ADDRESS/PREFIX"));
    let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_macs_are_checked_naming_the_field() {
        assert_eq!(
            parse_mac("0a:58:0a:58:00:2f").unwrap(),
            [0x0a, 0x58, 0x0a, 0x58, 0, 0x2f]
        );
        for bad in [
            "",
            "0a:58:0a:58:00",
            "0a:58:0a:58:00:2f:11",
            "zz:58:0a:58:00:2f",
            "a:58:0a:58:00:2f",
        ] {
            let e = parse_mac(bad).unwrap_err().to_string();
            assert!(e.starts_with("mac:"), "{e}");
        }
        assert_eq!(
            parse_cidr("10.88.0.5/16", "addresses").unwrap(),
            ("10.88.0.5".parse().unwrap(), 16)
        );
        assert_eq!(parse_cidr("::/0", "x").unwrap().1, 0);
        for bad in [
            "10.88.0.5",
            "10.88.0.5/33",
            "fd00::1/129",
            "x/8",
            "10.0.0.1/-1",
        ] {
            let e = parse_cidr(bad, "routes.destination")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("routes.destination:"), "{e}");
        }
    }

    #[test]
    fn a_bad_interface_request_is_refused_before_anything_is_done() {
        let req = Interface {
            name: "eth0".into(),
            mac: "0a:58:0a:58:00:2f".into(),
            addresses: vec!["10.88.0.5".into()],
            ..Default::default()
        };
        let e = update_interface(&req).unwrap_err().to_string();
        assert!(e.starts_with("addresses:"), "{e}");
        let req = Interface {
            name: "a-name-far-too-long".into(),
            mac: "0a:58:0a:58:00:2f".into(),
            ..Default::default()
        };
        let e = update_interface(&req).unwrap_err().to_string();
        assert!(e.starts_with("name:"), "{e}");
    }
}
