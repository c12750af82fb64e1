//! Links: look up, create a macvlan, rename, bring up, delete.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};

use super::{Result, Socket};

/// What the plugins need to know of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// `IFLA_LINK`: the parent's index (in the parent's namespace).
    pub parent: Option<u32>,
    pub macvlan_mode: Option<MacVlanMode>,
}

impl Link {
    fn from_message(m: LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            parent: None,
            macvlan_mode: None,
        };
        for attr in m.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Mtu(v) => link.mtu = v,
                LinkAttribute::Link(p) => link.parent = Some(p),
                LinkAttribute::Address(a) => link.mac = a.try_into().ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::MacVlan(data)) => {
                                link.macvlan_mode = data.into_iter().find_map(|d| match d {
                                    InfoMacVlan::Mode(m) => Some(m),
                                    _ => None,
                                })
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// Formats a MAC the way CNI results carry it.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn get(
    sock: &mut Socket,
    attr: Option<LinkAttribute>,
    index: u32,
    op: &str,
) -> Result<Option<Link>> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes.extend(attr);
    match sock.get(RouteNetlinkMessage::GetLink(msg), false, op) {
        Ok(mut answers) => Ok(match answers.pop() {
            Some(RouteNetlinkMessage::NewLink(m)) => Some(Link::from_message(m)),
            _ => None,
        }),
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn by_name(sock: &mut Socket, name: &str) -> Result<Option<Link>> {
    get(
        sock,
        Some(LinkAttribute::IfName(name.into())),
        0,
        &format!("looking up link {name}"),
    )
}

pub fn by_index(sock: &mut Socket, index: u32) -> Result<Option<Link>> {
    get(sock, None, index, &format!("looking up link #{index}"))
}

/// How to create a macvlan.
pub struct MacvlanSpec<'a> {
    pub name: &'a str,
    pub master: u32,
    pub mode: MacVlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub bc_queue_len: Option<u32>,
    /// Create it straight into this namespace.
    pub netns: Option<BorrowedFd<'a>>,
}

pub fn create_macvlan(sock: &mut Socket, spec: &MacvlanSpec) -> Result<()> {
    let mut data = vec![InfoMacVlan::Mode(spec.mode)];
    data.extend(spec.bc_queue_len.map(InfoMacVlan::BcQueueLen));
    let mut msg = LinkMessage::default();
    msg.attributes = vec![
        LinkAttribute::IfName(spec.name.into()),
        LinkAttribute::Link(spec.master),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(data)),
        ]),
    ];
    msg.attributes.extend(spec.mtu.map(LinkAttribute::Mtu));
    msg.attributes
        .extend(spec.mac.map(|m| LinkAttribute::Address(m.to_vec())));
    msg.attributes
        .extend(spec.netns.map(|fd| LinkAttribute::NetNsFd(fd.as_raw_fd())));
    sock.request(
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        "creating the macvlan",
    )
}

fn set(sock: &mut Socket, index: u32, f: impl FnOnce(&mut LinkMessage), op: &str) -> Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    f(&mut msg);
    sock.request(RouteNetlinkMessage::SetLink(msg), 0, op)
}

pub fn rename(sock: &mut Socket, index: u32, name: &str) -> Result<()> {
    set(
        sock,
        index,
        |m| m.attributes.push(LinkAttribute::IfName(name.into())),
        &format!("renaming the link to {name}"),
    )
}

pub fn set_up(sock: &mut Socket, index: u32) -> Result<()> {
    set(
        sock,
        index,
        |m| {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        },
        "bringing the link up",
    )
}

pub fn delete(sock: &mut Socket, index: u32) -> Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    match sock.request(RouteNetlinkMessage::DelLink(msg), 0, "deleting the link") {
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
        other => other,
    }
}
