//! Routes.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Result, Socket};

/// A route as the kernel holds it (the fields the plugins compare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: IpNetwork,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
}

/// A route to add through link `oif`.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub dst: IpNetwork,
    pub gw: Option<IpAddr>,
    pub oif: u32,
    pub table: Option<u32>,
    pub priority: Option<u32>,
    pub scope: Option<u8>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
}

fn route_address(ip: IpAddr) -> RouteAddress {
    RouteAddress::from(ip)
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Adds a route, appended beside any equal-prefix one (as upstream does).
pub fn add(sock: &mut Socket, r: &RouteSpec) -> Result<()> {
    let v4 = r.dst.is_ipv4();
    let mut msg = RouteMessage::default();
    let table = r.table.unwrap_or(RouteHeader::RT_TABLE_MAIN as u32);
    msg.header.address_family = if v4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    msg.header.destination_prefix_length = r.dst.prefix();
    msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = match r.scope {
        Some(s) => RouteScope::from(s),
        None if r.gw.is_none() => RouteScope::Link,
        None => RouteScope::Universe,
    };
    msg.attributes
        .push(RouteAttribute::Destination(route_address(r.dst.network())));
    msg.attributes
        .extend(r.gw.map(|g| RouteAttribute::Gateway(route_address(g))));
    msg.attributes.push(RouteAttribute::Oif(r.oif));
    msg.attributes.push(RouteAttribute::Table(table));
    msg.attributes
        .extend(r.priority.map(RouteAttribute::Priority));
    let metrics: Vec<RouteMetric> = r
        .mtu
        .map(RouteMetric::Mtu)
        .into_iter()
        .chain(r.advmss.map(RouteMetric::Advmss))
        .collect();
    if !metrics.is_empty() {
        msg.attributes.push(RouteAttribute::Metrics(metrics));
    }
    let what = match r.gw {
        Some(gw) => format!("adding route {} via {gw}", r.dst),
        None => format!("adding route {}", r.dst),
    };
    sock.request(
        RouteNetlinkMessage::NewRoute(msg),
        NLM_F_CREATE | NLM_F_APPEND,
        &what,
    )
}

/// Every unicast route of every table, both families.
pub fn list(sock: &mut Socket) -> Result<Vec<KernelRoute>> {
    let answers = sock.get(
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        true,
        "listing routes",
    )?;
    let mut out = Vec::new();
    for m in answers {
        let RouteNetlinkMessage::NewRoute(m) = m else {
            continue;
        };
        if m.header.kind != RouteType::Unicast {
            continue;
        }
        let v4 = m.header.address_family == AddressFamily::Inet;
        let mut dst_ip = None;
        let mut route = KernelRoute {
            dst: IpNetwork::new(
                if v4 {
                    IpAddr::from([0u8; 4])
                } else {
                    IpAddr::from([0u8; 16])
                },
                0,
            )
            .expect("prefix 0"),
            gw: None,
            oif: None,
            table: m.header.table as u32,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => dst_ip = ip_of(d),
                RouteAttribute::Gateway(g) => route.gw = ip_of(g),
                RouteAttribute::Oif(o) => route.oif = Some(*o),
                RouteAttribute::Table(t) => route.table = *t,
                _ => {}
            }
        }
        if let Some(ip) = dst_ip {
            let Ok(dst) = IpNetwork::new(ip, m.header.destination_prefix_length) else {
                continue;
            };
            route.dst = dst;
        }
        out.push(route);
    }
    Ok(out)
}

/// The output link of the first default route of the main table.
pub fn default_route_link(sock: &mut Socket) -> Result<Option<u32>> {
    Ok(list(sock)?
        .into_iter()
        .find(|r| {
            r.dst.prefix() == 0 && r.table == RouteHeader::RT_TABLE_MAIN as u32 && r.oif.is_some()
        })
        .and_then(|r| r.oif))
}
