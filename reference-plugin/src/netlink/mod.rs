//! A small synchronous rtnetlink client: one request, its answer, done.
//!
//! A socket talks to the namespace it was created in, whatever thread uses
//! it later, so a plugin opens one socket inside the container namespace
//! (see [`crate::netns`]) and never has to `setns` around netlink calls.

pub mod addr;
pub mod link;

pub mod route;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket as RawSocket, SocketAddr, protocols::NETLINK_ROUTE};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused a request.
    #[error("{op}: {source}")]
    Kernel {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// The socket itself failed, or an answer could not be decoded.
    #[error("netlink {op}: {detail}")]
    Transport { op: String, detail: String },
}

impl NetlinkError {
    /// The errno the kernel answered with, if it answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            NetlinkError::Transport { .. } => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, NetlinkError>;

pub struct Socket {
    sock: RawSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Socket> {
        let transport = |e: std::io::Error| NetlinkError::Transport {
            op: "socket".into(),
            detail: e.to_string(),
        };
        let mut sock = RawSocket::new(NETLINK_ROUTE).map_err(transport)?;
        sock.bind_auto().map_err(transport)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(transport)?;
        Ok(Socket {
            sock,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16, op: &str) -> Result<u32> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock
            .send(&bytes, 0)
            .map_err(|e| NetlinkError::Transport {
                op: op.into(),
                detail: e.to_string(),
            })?;
        Ok(self.seq)
    }

    /// Receives the messages answering `seq` until `done` says so.
    fn receive(
        &mut self,
        seq: u32,
        op: &str,
        mut each: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Result<bool>,
    ) -> Result<()> {
        let transport = |detail: String| NetlinkError::Transport {
            op: op.into(),
            detail,
        };
        loop {
            self.buf.clear();
            self.sock
                .recv(&mut self.buf, 0)
                .map_err(|e| transport(e.to_string()))?;
            let mut offset = 0;
            while offset < self.buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..])
                    .map_err(|e| transport(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(transport("zero-length message".into()));
                }
                offset += len.next_multiple_of(4);
                if msg.header.sequence_number != seq {
                    continue;
                }
                if let NetlinkPayload::Error(e) = &msg.payload {
                    return match e.code {
                        None => Ok(()),
                        Some(_) => Err(NetlinkError::Kernel {
                            op: op.into(),
                            source: e.to_io(),
                        }),
                    };
                }
                if matches!(msg.payload, NetlinkPayload::Done(_)) || !each(msg)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends a request and waits for the kernel's acknowledgement.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, op: &str) -> Result<()> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | flags, op)?;
        self.receive(seq, op, |_| Ok(true))
    }

    /// Sends a GET request and returns every answer (one, or a dump's many).
    pub fn get(
        &mut self,
        msg: RouteNetlinkMessage,
        dump: bool,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        let seq = self.send(msg, flags, op)?;
        let mut out = Vec::new();
        self.receive(seq, op, |m| {
            let multipart = m.header.flags & NLM_F_MULTIPART != 0;
            if let NetlinkPayload::InnerMessage(inner) = m.payload {
                out.push(inner);
            }
            Ok(multipart)
        })?;
        Ok(out)
    }
}
