//! Published ports: `-p [IP:][HOST:]CTR[/PROTO]` as Docker reads them,
//! ranges included, and free host ports for `-P` and `-p CTR`.

use serde_json::{json, Value};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Empty: every address of the host.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// tcp or udp.
    pub protocol: String,
}

impl PortMapping {
    /// The portmap plugin's form.
    pub fn to_cni(&self) -> Value {
        json!({
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol,
            "hostIP": self.host_ip,
        })
    }

    /// Docker's `port` line: `80/tcp -> 0.0.0.0:8080`.
    pub fn describe(&self) -> String {
        let ip = if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        };
        format!(
            "{}/{} -> {ip}:{}",
            self.container_port, self.protocol, self.host_port
        )
    }

    pub fn to_json(&self) -> Value {
        json!({"host_ip": self.host_ip, "host_port": self.host_port, "container_port": self.container_port, "protocol": self.protocol})
    }

    pub fn from_json(v: &Value) -> Option<PortMapping> {
        Some(PortMapping {
            host_ip: v["host_ip"].as_str()?.to_string(),
            host_port: v["host_port"].as_u64()? as u16,
            container_port: v["container_port"].as_u64()? as u16,
            protocol: v["protocol"].as_str()?.to_string(),
        })
    }
}

/// A free port on the host for `protocol`, as the kernel hands one out.
pub fn free_port(protocol: &str) -> Result<u16> {
    let port = if protocol == "udp" {
        std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("0.0.0.0:0").and_then(|s| s.local_addr())
    };
    port.map(|a| a.port())
        .map_err(|e| Error::io("finding a free host port", e))
}

fn range(flag: &str, text: &str) -> Result<(u16, u16)> {
    let bad = || {
        Error::Invalid(format!(
            "{flag}: {text:?} is not a port or a range of ports"
        ))
    };
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// One `-p` value: one mapping per port of its range.
pub fn parse(spec: &str) -> Result<Vec<PortMapping>> {
    let flag = format!("-p {spec}");
    let (body, protocol) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, p),
        None => (spec, "tcp"),
    };
    if protocol != "tcp" && protocol != "udp" {
        return Err(Error::Invalid(format!(
            "{flag}: protocol {protocol:?}: tcp or udp"
        )));
    }
    let parts: Vec<&str> = body.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => {
            return Err(Error::Invalid(format!(
                "{flag}: [IP:][HOST:]CONTAINER[/PROTO]"
            )))
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(Error::Invalid(format!(
            "{flag}: {ip:?} is not an IPv4 address"
        )));
    }
    let (c0, c1) = range(&flag, ctr)?;
    let hosts: Vec<u16> = if host.is_empty() {
        (c0..=c1)
            .map(|_| free_port(protocol))
            .collect::<Result<_>>()?
    } else {
        let (h0, h1) = range(&flag, host)?;
        if h1 - h0 != c1 - c0 {
            return Err(Error::Invalid(format!(
                "{flag}: the host and container ranges differ in length"
            )));
        }
        (h0..=h1).collect()
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(c, h)| PortMapping {
            host_ip: ip.to_string(),
            host_port: h,
            container_port: c,
            protocol: protocol.to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_forms_parse() {
        let m = parse("8080:80").unwrap();
        assert_eq!(
            (m[0].host_port, m[0].container_port, m[0].protocol.as_str()),
            (8080, 80, "tcp")
        );
        let m = parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(
            (m[0].host_ip.as_str(), m[0].protocol.as_str()),
            ("127.0.0.1", "udp")
        );
        let m = parse("9000-9001:90-91").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[1].host_port, m[1].container_port), (9001, 91));
        assert!(parse("80").unwrap()[0].host_port > 0);
        assert_eq!(m[0].describe(), "90/tcp -> 0.0.0.0:9000");
        for bad in [
            "x:80",
            "80/sctp",
            "1:2:3:4",
            "9000-9002:90-91",
            "0:80",
            "nope:80:80",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
