//! Addresses on a link.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Result, Socket};

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// Adds `addr` to link `index`. IPv6 addresses skip duplicate address
/// detection: IPAM already guarantees uniqueness, and waiting for DAD would
/// hold ADD for seconds (upstream waits up to 5 s).
pub fn add(sock: &mut Socket, index: u32, addr: IpNetwork) -> Result<()> {
    let ip = addr.ip();
    let mut msg = AddressMessage::default();
    msg.header.family = family(&ip);
    msg.header.prefix_len = addr.prefix();
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Address(ip));
    if ip.is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(ip));
    } else {
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    sock.request(
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("adding address {addr}"),
    )
}

/// The addresses of link `index`, with their prefix lengths.
pub fn list(sock: &mut Socket, index: u32) -> Result<Vec<IpNetwork>> {
    let answers = sock.get(
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        true,
        "listing addresses",
    )?;
    let mut out = Vec::new();
    for m in answers {
        let RouteNetlinkMessage::NewAddress(m) = m else {
            continue;
        };
        if m.header.index != index {
            continue;
        }
        // For IPv4 `Local` is the address itself; `Address` may be a peer.
        let local = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let address = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        if let Some(ip) = local.or(address) {
            out.extend(IpNetwork::new(ip, m.header.prefix_len).ok());
        }
    }
    Ok(out)
}
