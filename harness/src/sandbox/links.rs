//! Master links made through rtnetlink, only to build sandboxes (an `ip`
//! process per request cost more than the plugin calls they served).
//!
//! The socket is opened by a short-lived thread inside the sandbox's own
//! namespace and is bound to it for good, so no request can reach the
//! machine's. Reading kernel state for verdicts stays with iproute2 (see
//! `snapshot`): the harness judges through a tool it did not write.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{op}: {source}")]
    Kernel {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink {op}: {detail}")]
    Transport { op: String, detail: String },
}

/// A NETLINK_ROUTE socket of one namespace.
pub struct Links {
    sock: Socket,
    seq: u32,
}

impl Links {
    /// A socket in `netns`, opened on a thread that enters it (the
    /// caller's threads never change namespace).
    pub fn open(netns: BorrowedFd<'_>) -> Result<Links, LinkError> {
        let transport = |detail: String| LinkError::Transport {
            op: "socket".into(),
            detail,
        };
        let sock = std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| transport(format!("entering the namespace: {e}")))?;
                let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| transport(e.to_string()))?;
                sock.bind_auto().map_err(|e| transport(e.to_string()))?;
                sock.connect(&SocketAddr::new(0, 0))
                    .map_err(|e| transport(e.to_string()))?;
                Ok(sock)
            })
            .join()
            .unwrap_or_else(|_| Err(transport("the opening thread panicked".into())))
        })?;
        Ok(Links { sock, seq: 0 })
    }

    /// Creates a `dummy` link, up.
    pub fn add_dummy(&mut self, name: &str) -> Result<(), LinkError> {
        let mut msg = up(name);
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Dummy,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add dummy {name}"),
        )
    }

    /// Creates a veth pair: `name` here, up, and `peer` in the namespace
    /// `peer_netns`, down (the kernel cannot open an end before the pair
    /// is complete: [`Links::set_up`] it through a socket there).
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
    ) -> Result<(), LinkError> {
        let mut other = LinkMessage::default();
        other.attributes.push(LinkAttribute::IfName(peer.into()));
        other
            .attributes
            .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        let mut msg = up(name);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(other))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add veth {name} (peer {peer})"),
        )
    }

    /// Brings the link `name` up.
    pub fn set_up(&mut self, name: &str) -> Result<(), LinkError> {
        self.request(
            RouteNetlinkMessage::SetLink(up(name)),
            0,
            &format!("set {name} up"),
        )
    }

    /// Sends a request and waits for the kernel's answer.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, op: &str) -> Result<(), LinkError> {
        let transport = |detail: String| LinkError::Transport {
            op: op.into(),
            detail,
        };
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock
            .send(&bytes, 0)
            .map_err(|e| transport(e.to_string()))?;
        let mut buf = Vec::with_capacity(8192);
        loop {
            buf.clear();
            self.sock
                .recv(&mut buf, 0)
                .map_err(|e| transport(e.to_string()))?;
            let mut offset = 0;
            while offset < buf.len() {
                let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                    .map_err(|e| transport(e.to_string()))?;
                let len = answer.header.length as usize;
                if len == 0 {
                    return Err(transport("a zero-length message".into()));
                }
                offset += len.next_multiple_of(4);
                if answer.header.sequence_number != self.seq {
                    continue;
                }
                if let NetlinkPayload::Error(e) = answer.payload {
                    return match e.code {
                        None => Ok(()),
                        Some(_) => Err(LinkError::Kernel {
                            op: op.into(),
                            source: e.to_io(),
                        }),
                    };
                }
            }
        }
    }
}

/// A link message for `name`, brought up as it is made.
fn up(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes.push(LinkAttribute::IfName(name.into()));
    msg
}
