//! macvlan's configuration, validated before anything is created.

use netlink_packet_route::link::MacVlanMode;
use serde::Deserialize;
use serde_json::Value;

use crate::protocol::{CniError, Dns, Request};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    master: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    link_in_container: bool,
    #[serde(default)]
    bcqueuelen: Option<u32>,
    #[serde(default)]
    ipam: Option<Value>,
    #[serde(default)]
    dns: Option<Dns>,
}

#[derive(Debug, Clone)]
pub struct MacvlanConfig {
    /// `None`: the interface of the default route.
    pub master: Option<String>,
    pub mode: MacVlanMode,
    /// `None`: inherit the master's.
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub link_in_container: bool,
    pub bc_queue_len: Option<u32>,
    /// `None`: layer 2 only.
    pub ipam_type: Option<String>,
    pub dns: Dns,
}

pub fn parse_mode(name: &str) -> Option<MacVlanMode> {
    Some(match name {
        "" | "bridge" => MacVlanMode::Bridge,
        "private" => MacVlanMode::Private,
        "vepa" => MacVlanMode::Vepa,
        "passthru" => MacVlanMode::Passthrough,
        "source" => MacVlanMode::Source,
        _ => return None,
    })
}

pub fn mode_name(mode: MacVlanMode) -> &'static str {
    match mode {
        MacVlanMode::Private => "private",
        MacVlanMode::Vepa => "vepa",
        MacVlanMode::Passthrough => "passthru",
        MacVlanMode::Source => "source",
        _ => "bridge",
    }
}

/// A unicast MAC in colon-hex (6 bytes); `what` names where it came from.
fn parse_mac(s: &str, what: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{what}: {s:?} is not a MAC address (six hex bytes separated by ':')");
    let bytes: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok().filter(|_| p.len() == 2))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let mac: [u8; 6] = bytes.try_into().map_err(|_| bad())?;
    if mac[0] & 1 == 1 {
        return Err(format!("{what}: {s} is a multicast address"));
    }
    Ok(mac)
}

/// `ipam.type`, read leniently (DEL, GC and STATUS must not fail on the
/// rest of a configuration).
pub fn ipam_type(req: &Request) -> Option<String> {
    req.conf
        .json
        .get("ipam")?
        .get("type")?
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

impl MacvlanConfig {
    pub fn load(req: &Request) -> Result<MacvlanConfig, CniError> {
        let raw: Raw = req.conf.decode()?;
        let mode_name = raw.mode.unwrap_or_default();
        let mode = parse_mode(&mode_name).ok_or_else(|| {
            CniError::config(format!(
                "mode: {mode_name:?} is not one of bridge, private, vepa, passthru, source"
            ))
        })?;
        // Precedence as upstream: runtimeConfig.mac, then CNI_ARGS MAC, then mac.
        let mac = if let Some(m) = req.conf.runtime_config().and_then(|rc| rc.get("mac")) {
            let s = m
                .as_str()
                .ok_or_else(|| CniError::config("runtimeConfig.mac: must be a string"))?;
            Some(parse_mac(s, "runtimeConfig.mac").map_err(CniError::config)?)
        } else if let Some(s) = req.args.get("MAC") {
            Some(parse_mac(s, "CNI_ARGS MAC").map_err(CniError::env)?)
        } else {
            raw.mac
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| parse_mac(s, "mac").map_err(CniError::config))
                .transpose()?
        };
        if let Some(ipam) = &raw.ipam {
            if !ipam.is_object() || ipam.get("type").is_some_and(|t| !t.is_string()) {
                return Err(CniError::config(
                    "ipam: must be an object with a string \"type\"",
                ));
            }
        }
        Ok(MacvlanConfig {
            master: raw.master.filter(|m| !m.is_empty()),
            mode,
            mtu: raw.mtu.filter(|m| *m > 0),
            mac,
            link_in_container: raw.link_in_container,
            bc_queue_len: raw.bcqueuelen.filter(|q| *q > 0),
            ipam_type: ipam_type(req),
            dns: raw.dns.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("c2:11:22:33:44:55", "mac").unwrap(),
            [0xc2, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        assert!(parse_mac("c2:11:22:33:44", "mac").is_err());
        assert!(parse_mac("zz:11:22:33:44:55", "mac").is_err());
        assert!(parse_mac("c2:11:22:33:44:55:66:77", "mac").is_err());
        assert!(
            parse_mac("01:00:5e:00:00:01", "mac")
                .unwrap_err()
                .contains("multicast")
        );
    }

    #[test]
    fn modes() {
        for m in ["bridge", "private", "vepa", "passthru", "source"] {
            assert_eq!(mode_name(parse_mode(m).unwrap()), m);
        }
        assert_eq!(parse_mode(""), Some(MacVlanMode::Bridge));
        assert_eq!(parse_mode("Bridge"), None);
    }
}
