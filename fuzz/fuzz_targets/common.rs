//! Shared by the targets that read a plugin-specific configuration: the
//! request a plugin builds from its environment and stdin.

use cni_reference::protocol::Request;
use cni_reference::protocol::args::CniArgs;
use cni_reference::protocol::env::{Command, Environment};
use cni_reference::protocol::netconf::NetConf;

/// `CNI_ARGS` and the config on stdin, split at the first NUL byte (no NUL:
/// all of it is the config and `CNI_ARGS` is empty), read as the protocol
/// layer reads them for ADD. `None` where that layer already refuses.
pub fn add_request(data: &[u8]) -> Option<Request> {
    let (args, stdin) = match data.iter().position(|&b| b == 0) {
        Some(i) => (std::str::from_utf8(&data[..i]).ok()?, &data[i + 1..]),
        None => ("", data),
    };
    let conf = NetConf::parse(stdin.to_vec()).ok()?;
    let args_parsed = CniArgs::parse(args).ok()?;
    Some(Request {
        env: Environment {
            command: Command::Add,
            container_id: Some("c1".into()),
            netns: Some("/var/run/netns/c1".into()),
            ifname: Some("eth0".into()),
            args: args.into(),
            path: Vec::new(),
        },
        args: args_parsed,
        conf,
    })
}
