//! A pod's network carried into its VM, as kata's default ("tcfilter")
//! model does it: the CNI (or the engine) made the pod's interfaces in a
//! network namespace on the host; for each Ethernet link there the
//! sandbox makes a tap device beside it, and two tc filters hand every
//! frame arriving on one to the other's egress. qemu gets the tap's file
//! descriptor as a virtio-net device with the link's MAC, and the agent
//! gives that device the link's name, MTU, addresses and routes, so the
//! guest answers at the pod's IP exactly as the namespace would have.
//! The namespace's own stack sees nothing more (its ingress is stolen).
//!
//! The taps live as long as qemu holds them; `release` takes the ingress
//! qdiscs (and so the filters) off the pod's links again.

use std::fs::OpenOptions;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use skiff_agent_api::agent;
use skiff_net::netlink::{self, Link, Route, Socket};

use crate::error::VmError;
use crate::hypervisor::{mac_text, NicDevice};

/// One of the pod's interfaces, mirrored onto a tap.
#[derive(Debug)]
pub struct Nic {
    /// The pod's link (its name on the host side, e.g. eth0).
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Its addresses, with prefix lengths (link-local ones left out: the
    /// guest's kernel makes its own from the same MAC).
    pub addresses: Vec<(IpAddr, u8)>,
    /// The tap's open file, for qemu's `-netdev tap,fd=`; closed once
    /// qemu has its own.
    tap: Option<OwnedFd>,
}

/// The pod's network as the VM gets it.
#[derive(Debug)]
pub struct PodNetwork {
    netns: PathBuf,
    pub nics: Vec<Nic>,
    /// The namespace's routes over those links, each with its link's name.
    pub routes: Vec<(Route, String)>,
    /// The pod's links that have our ingress qdisc.
    mirrored: Vec<u32>,
}

impl PodNetwork {
    /// Mirrors every Ethernet link of the namespace bound at `netns` onto
    /// a tap of its own (None when there is none: a namespace with only
    /// loopback, whose VM needs no device).
    pub fn mirror(netns: &Path) -> Result<Option<PodNetwork>, VmError> {
        let shown = netns.to_path_buf();
        let found = netlink::in_netns(netns, move || {
            let nl = Socket::open()?;
            let links: Vec<Link> = nl
                .links()?
                .into_iter()
                .filter(|l| !l.loopback && l.mac.is_some() && !is_tap(&l.name))
                .collect();
            if links.is_empty() {
                return Ok(None);
            }
            let addresses = nl.addresses()?;
            let routes = nl.routes()?;
            let mut network = PodNetwork {
                netns: shown,
                nics: Vec::new(),
                routes: Vec::new(),
                mirrored: Vec::new(),
            };
            for (i, link) in links.iter().enumerate() {
                if let Err(e) = network.mirror_link(&nl, i, link, &addresses) {
                    network.unmirror(&nl);
                    return Err(e);
                }
            }
            network.routes = routes
                .into_iter()
                .filter_map(|r| {
                    let link = links.iter().find(|l| Some(l.index) == r.oif)?;
                    Some((r, link.name.clone()))
                })
                .collect();
            Ok(Some(network))
        });
        found.map_err(|e| VmError::Network(format!("{}: {e}", netns.display())))
    }

    /// Link `link` onto tap `i`: the tap made with the link's MTU and up,
    /// an ingress qdisc on both, each one's frames redirected to the other.
    fn mirror_link(
        &mut self,
        nl: &Socket,
        i: usize,
        link: &Link,
        addresses: &[netlink::Address],
    ) -> skiff_net::Result<()> {
        let tap_name = format!("tap{i}_skiff");
        let tap = open_tap(&tap_name)?;
        let tap_index = netlink::index_of(&tap_name)
            .ok_or_else(|| skiff_net::Error::Invalid(format!("{tap_name} vanished")))?;
        nl.configure_link(tap_index, None, Some(link.mtu))?;
        nl.set_up(tap_index)?;
        // One a killed owner left (its qemu, and so its tap, gone) would
        // make the add fail; the namespace is the pod's alone.
        nl.del_ingress_qdisc(link.index)?;
        nl.add_ingress_qdisc(link.index)?;
        self.mirrored.push(link.index);
        nl.add_ingress_qdisc(tap_index)?;
        nl.redirect_ingress(link.index, tap_index)?;
        nl.redirect_ingress(tap_index, link.index)?;
        self.nics.push(Nic {
            name: link.name.clone(),
            mac: link.mac.unwrap_or_default(),
            mtu: link.mtu,
            addresses: addresses
                .iter()
                .filter(|a| a.index == link.index && !a.link_scope)
                .map(|a| (a.ip, a.prefix))
                .collect(),
            tap: Some(tap),
        });
        Ok(())
    }

    fn unmirror(&self, nl: &Socket) {
        for index in &self.mirrored {
            if let Err(e) = nl.del_ingress_qdisc(*index) {
                eprintln!("skiff-vm: {}: {e}", self.netns.display());
            }
        }
    }

    /// What the agent's UpdateInterface calls get, one per NIC.
    pub fn interfaces(&self) -> Vec<agent::Interface> {
        self.nics
            .iter()
            .map(|nic| agent::Interface {
                name: nic.name.clone(),
                mac: mac_text(&nic.mac),
                mtu: nic.mtu,
                addresses: nic
                    .addresses
                    .iter()
                    .map(|(ip, prefix)| format!("{ip}/{prefix}"))
                    .collect(),
                ..Default::default()
            })
            .collect()
    }

    /// What the agent's UpdateRoutes call gets: routes on a link first,
    /// then those through a gateway (which need the former).
    pub fn routes_request(&self) -> agent::UpdateRoutesRequest {
        let mut routes: Vec<&(Route, String)> = self.routes.iter().collect();
        routes.sort_by_key(|(r, _)| r.gateway.is_some());
        agent::UpdateRoutesRequest {
            routes: routes
                .into_iter()
                .map(|(r, device)| agent::Route {
                    destination: match r.dest {
                        Some((ip, prefix)) => format!("{ip}/{prefix}"),
                        None if r.v6 => "::/0".into(),
                        None => "0.0.0.0/0".into(),
                    },
                    gateway: r.gateway.map(|g| g.to_string()).unwrap_or_default(),
                    device: device.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The VM's network devices: each tap's file and the MAC it gets.
    pub fn devices(&self) -> Vec<NicDevice> {
        self.nics
            .iter()
            .filter_map(|nic| {
                nic.tap.as_ref().map(|tap| NicDevice {
                    tap_fd: tap.as_raw_fd(),
                    mac: nic.mac,
                })
            })
            .collect()
    }

    /// Closes the taps' files: qemu has its own copies once it runs, and
    /// each tap must go when qemu does.
    pub fn close_taps(&mut self) {
        for nic in &mut self.nics {
            nic.tap = None;
        }
    }

    /// Takes the filters off the pod's links (the taps went with qemu). A
    /// namespace already gone (the CNI's teardown ran first) is fine.
    pub fn release(&self) {
        if self.mirrored.is_empty() || !self.netns.exists() {
            return;
        }
        let mirrored = self.mirrored.clone();
        let netns = self.netns.clone();
        let done = netlink::in_netns(&self.netns, move || {
            let nl = Socket::open()?;
            for index in mirrored {
                nl.del_ingress_qdisc(index)?;
            }
            Ok(())
        });
        if let Err(e) = done {
            eprintln!("skiff-vm: releasing {}: {e}", netns.display());
        }
    }
}

/// Whether this host can carry a pod's network into a VM: a tap
/// (/dev/net/tun), and an ingress qdisc with a u32 filter whose mirred
/// action redirects, tried on `lo` of a network namespace of a thread's
/// own (gone with the thread: nothing is left). The error says what is
/// missing; tests skip on it.
pub fn host_can_mirror() -> Result<(), VmError> {
    if !Path::new("/dev/net/tun").exists() {
        return Err(VmError::Network("no /dev/net/tun (the pod's taps)".into()));
    }
    let tried = std::thread::spawn(|| -> skiff_net::Result<()> {
        // SAFETY: unshare of this thread's network namespace only; the
        // thread ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(skiff_net::Error::io(
                "a network namespace to try tc in",
                std::io::Error::last_os_error(),
            ));
        }
        let nl = Socket::open()?;
        let lo = netlink::index_of("lo")
            .ok_or_else(|| skiff_net::Error::Invalid("no lo in a new namespace".into()))?;
        nl.add_ingress_qdisc(lo)?;
        nl.redirect_ingress(lo, lo)
    })
    .join();
    match tried {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(VmError::Network(format!(
            "the kernel's ingress qdisc, u32 filter and mirred action: {e}"
        ))),
        Err(_) => Err(VmError::Network("trying tc: the thread panicked".into())),
    }
}

/// The network namespace an OCI config joins by path (the CRI's pod
/// netns on the pause container, the engine's per-container one): the
/// pod's network the VM mirrors. None for a new namespace of its own or
/// none at all (the VM's network is then its loopback).
pub fn netns_of(spec: &serde_json::Value) -> Option<PathBuf> {
    spec["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find(|ns| ns["type"] == "network")?["path"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn is_tap(name: &str) -> bool {
    name.starts_with("tap") && name.ends_with("_skiff")
}

/// A tap device `name` in the calling thread's namespace, with virtio-net
/// headers (qemu finds that out from the file), gone when its last file
/// is closed.
fn open_tap(name: &str) -> skiff_net::Result<OwnedFd> {
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| skiff_net::Error::io("opening /dev/net/tun", e))?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
    // SAFETY: TUNSETIFF reads the ifreq we own, for the file we hold.
    if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF as _, &req) } != 0 {
        return Err(skiff_net::Error::io(
            format!("making tap {name}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(OwnedFd::from(tun))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_namespace_is_the_one_joined_by_path() {
        let joined = serde_json::json!({"linux": {"namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"}]}});
        assert_eq!(
            netns_of(&joined),
            Some(PathBuf::from("/var/run/netns/cni-1"))
        );
        let own = serde_json::json!({"linux": {"namespaces": [{"type": "network"}]}});
        assert_eq!(netns_of(&own), None);
        assert_eq!(netns_of(&serde_json::json!({})), None);
    }

    #[test]
    fn routes_on_a_link_go_before_routes_through_a_gateway() {
        let gw = Route {
            v6: false,
            dest: None,
            gateway: Some("10.88.0.1".parse().unwrap()),
            oif: Some(2),
        };
        let link = Route {
            v6: false,
            dest: Some(("169.254.1.1".parse().unwrap(), 32)),
            gateway: None,
            oif: Some(2),
        };
        let v6 = Route {
            v6: true,
            dest: None,
            gateway: Some("fd00::1".parse().unwrap()),
            oif: Some(2),
        };
        let network = PodNetwork {
            netns: PathBuf::from("/x"),
            nics: Vec::new(),
            routes: vec![
                (gw, "eth0".into()),
                (link, "eth0".into()),
                (v6, "eth0".into()),
            ],
            mirrored: Vec::new(),
        };
        let sent: Vec<_> = network
            .routes_request()
            .routes
            .iter()
            .map(|r| format!("{} {} {}", r.destination, r.gateway, r.device))
            .collect();
        assert_eq!(
            sent,
            [
                "169.254.1.1/32  eth0",
                "0.0.0.0/0 10.88.0.1 eth0",
                "::/0 fd00::1 eth0"
            ]
        );
        assert_eq!(
            mac_text(&[0x0a, 0x58, 0, 0xff, 1, 0x2f]),
            "0a:58:00:ff:01:2f"
        );
    }
}
