//! One internal result model, written in and read from every version's shape.
//!
//! The model is the 1.1.0 result. Writing to an older version drops what it
//! cannot say only where the loss is harmless (1.1-only hints such as an
//! interface `mtu` or a route `table`), and fails where the result would lie
//! (0.1.0/0.2.0 with no address, or two addresses of one family).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value, json};

use super::error::{CniError, code};
use super::version::{ResultFamily, Version};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub sandbox: Option<String>,
    pub mtu: Option<u32>,
    pub socket_path: Option<String>,
    pub pci_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address with its prefix length; host bits are kept.
    pub address: IpNetwork,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`; absent in abbreviated (IPAM) results.
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNetwork,
    pub gw: Option<IpAddr>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    pub priority: Option<u32>,
    pub table: Option<u32>,
    pub scope: Option<u32>,
}

impl Route {
    pub fn new(dst: IpNetwork, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

fn unrepresentable(version: Version, why: &str) -> CniError {
    CniError::new(
        code::UNREPRESENTABLE_RESULT,
        format!("the result cannot be written in cniVersion {version}: {why}"),
    )
}

fn ip_family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "4" } else { "6" }
}

/// One legacy family entry: its key (`ip4`/`ip6`), address and routes.
type LegacyFamily<'a> = (&'static str, &'a IpConfig, Vec<&'a Route>);

impl Dns {
    /// `self` with what `other` adds: its nameservers, search domains and
    /// options not already there, its domain when `self` has none.
    fn merged(mut self, other: Dns) -> Dns {
        for (mine, theirs) in [
            (&mut self.nameservers, other.nameservers),
            (&mut self.search, other.search),
            (&mut self.options, other.options),
        ] {
            for x in theirs {
                if !mine.contains(&x) {
                    mine.push(x);
                }
            }
        }
        self.domain = self.domain.or(other.domain);
        self
    }
}

impl CniResult {
    /// The result of a plugin given `prev`: `prev` kept whole, with this
    /// result's interfaces, addresses (their interface indexes moved past
    /// `prev`'s), routes and DNS added.
    pub fn on_top_of(self, prev: CniResult) -> CniResult {
        let offset = prev.interfaces.len();
        let mut out = prev;
        out.interfaces.extend(self.interfaces);
        out.ips.extend(self.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        out.routes.extend(self.routes);
        out.dns = out.dns.merged(self.dns);
        out
    }

    /// Writes the result in `version`'s shape.
    pub fn encode(&self, version: Version) -> Result<Value, CniError> {
        let mut out = Map::new();
        out.insert("cniVersion".into(), json!(version.as_str()));
        match version.family() {
            ResultFamily::Legacy => self.encode_legacy(version, &mut out)?,
            family => self.encode_list(version, family, &mut out),
        }
        out.insert(
            "dns".into(),
            serde_json::to_value(&self.dns).expect("dns serialises"),
        );
        Ok(Value::Object(out))
    }

    /// Whether `version` can carry this result, without building it: only
    /// the legacy layout (one address per family) can refuse one.
    pub fn representable(&self, version: Version) -> Result<(), CniError> {
        if version.family() == ResultFamily::Legacy {
            self.legacy_families(version)?;
        }
        Ok(())
    }

    /// The legacy `ip4` and `ip6` entries: at most one address per family,
    /// with that family's routes.
    fn legacy_families(&self, version: Version) -> Result<Vec<LegacyFamily<'_>>, CniError> {
        if self.ips.is_empty() {
            return Err(unrepresentable(version, "it has no IP address"));
        }
        let mut out = Vec::new();
        for (key, v4) in [("ip4", true), ("ip6", false)] {
            let mut ips = self.ips.iter().filter(|ip| ip.address.is_ipv4() == v4);
            let routes: Vec<&Route> = self
                .routes
                .iter()
                .filter(|r| r.dst.is_ipv4() == v4)
                .collect();
            let Some(ip) = ips.next() else {
                if !routes.is_empty() {
                    return Err(unrepresentable(
                        version,
                        "it has a route of a family without an address",
                    ));
                }
                continue;
            };
            if ips.next().is_some() {
                return Err(unrepresentable(
                    version,
                    "it has more than one address of one family",
                ));
            }
            out.push((key, ip, routes));
        }
        Ok(out)
    }

    fn encode_legacy(
        &self,
        version: Version,
        out: &mut Map<String, Value>,
    ) -> Result<(), CniError> {
        for (key, ip, routes) in self.legacy_families(version)? {
            let mut obj = Map::new();
            obj.insert("ip".into(), json!(ip.address.to_string()));
            if let Some(gw) = ip.gateway {
                obj.insert("gateway".into(), json!(gw.to_string()));
            }
            if !routes.is_empty() {
                let list: Vec<Value> = routes.iter().map(|r| route_json(r, false)).collect();
                obj.insert("routes".into(), Value::Array(list));
            }
            out.insert(key.into(), Value::Object(obj));
        }
        Ok(())
    }

    fn encode_list(&self, version: Version, family: ResultFamily, out: &mut Map<String, Value>) {
        let v11 = version >= Version::V1_1_0;
        if !self.interfaces.is_empty() {
            let list = self
                .interfaces
                .iter()
                .map(|i| {
                    let mut o = Map::new();
                    o.insert("name".into(), json!(i.name));
                    put_opt(&mut o, "mac", i.mac.as_ref().map(|m| json!(m)));
                    put_opt(&mut o, "sandbox", i.sandbox.as_ref().map(|s| json!(s)));
                    if v11 {
                        put_opt(&mut o, "mtu", i.mtu.map(|m| json!(m)));
                        put_opt(
                            &mut o,
                            "socketPath",
                            i.socket_path.as_ref().map(|s| json!(s)),
                        );
                        put_opt(&mut o, "pciID", i.pci_id.as_ref().map(|s| json!(s)));
                    }
                    Value::Object(o)
                })
                .collect();
            out.insert("interfaces".into(), Value::Array(list));
        }
        if !self.ips.is_empty() {
            let list = self
                .ips
                .iter()
                .map(|ip| {
                    let mut o = Map::new();
                    if family == ResultFamily::Versioned {
                        o.insert("version".into(), json!(ip_family(&ip.address.ip())));
                    }
                    o.insert("address".into(), json!(ip.address.to_string()));
                    put_opt(&mut o, "gateway", ip.gateway.map(|g| json!(g.to_string())));
                    put_opt(&mut o, "interface", ip.interface.map(|i| json!(i)));
                    Value::Object(o)
                })
                .collect();
            out.insert("ips".into(), Value::Array(list));
        }
        if !self.routes.is_empty() {
            let list = self.routes.iter().map(|r| route_json(r, v11)).collect();
            out.insert("routes".into(), Value::Array(list));
        }
    }

    /// Reads a result (for example `prevResult`) written in `version`'s shape.
    pub fn decode(value: &Value, version: Version) -> Result<CniResult, CniError> {
        let bad = |what: &str| CniError::decode(format!("prevResult: {what}"));
        let obj = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        let dns = match obj.get("dns") {
            None | Some(Value::Null) => Dns::default(),
            Some(d) => serde_json::from_value(d.clone()).map_err(|e| bad(&format!("dns: {e}")))?,
        };
        let mut result = CniResult {
            dns,
            ..CniResult::default()
        };
        if version.family() == ResultFamily::Legacy {
            for key in ["ip4", "ip6"] {
                let Some(ipo) = obj.get(key) else { continue };
                result.ips.push(IpConfig {
                    address: parse_cidr(ipo.get("ip")).ok_or_else(|| bad(&format!("{key}.ip")))?,
                    gateway: parse_opt_ip(ipo.get("gateway"))
                        .map_err(|_| bad(&format!("{key}.gateway")))?,
                    interface: None,
                });
                for r in items(ipo, "routes") {
                    result
                        .routes
                        .push(parse_route(r).ok_or_else(|| bad(&format!("{key}.routes")))?);
                }
            }
            return Ok(result);
        }
        for i in items(value, "interfaces") {
            let s = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_string);
            result.interfaces.push(Interface {
                name: s("name").ok_or_else(|| bad("interfaces[].name"))?,
                mac: s("mac"),
                sandbox: s("sandbox"),
                mtu: i.get("mtu").and_then(Value::as_u64).map(|m| m as u32),
                socket_path: s("socketPath"),
                pci_id: s("pciID"),
            });
        }
        // The 0.3.0 text named the list `ip`; every implementation wrote `ips`.
        let ips_key = if obj.contains_key("ips") { "ips" } else { "ip" };
        for ip in items(value, ips_key) {
            result.ips.push(IpConfig {
                address: parse_cidr(ip.get("address")).ok_or_else(|| bad("ips[].address"))?,
                gateway: parse_opt_ip(ip.get("gateway")).map_err(|_| bad("ips[].gateway"))?,
                interface: ip
                    .get("interface")
                    .and_then(Value::as_u64)
                    .map(|i| i as usize),
            });
        }
        for r in items(value, "routes") {
            result
                .routes
                .push(parse_route(r).ok_or_else(|| bad("routes[]"))?);
        }
        Ok(result)
    }
}

/// The elements of the list under `key`; none when absent or not a list.
fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn put_opt(o: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        o.insert(key.into(), v);
    }
}

fn route_json(r: &Route, v11: bool) -> Value {
    let mut o = Map::new();
    o.insert("dst".into(), json!(r.dst.to_string()));
    put_opt(&mut o, "gw", r.gw.map(|g| json!(g.to_string())));
    if v11 {
        for (k, v) in [
            ("mtu", r.mtu),
            ("advmss", r.advmss),
            ("priority", r.priority),
            ("table", r.table),
            ("scope", r.scope),
        ] {
            put_opt(&mut o, k, v.map(|n| json!(n)));
        }
    }
    Value::Object(o)
}

fn parse_cidr(v: Option<&Value>) -> Option<IpNetwork> {
    v?.as_str()?.parse().ok()
}

fn parse_opt_ip(v: Option<&Value>) -> Result<Option<IpAddr>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// Parses one route object as written in configs and results.
pub fn parse_route(v: &Value) -> Option<Route> {
    let num = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as u32);
    Some(Route {
        dst: parse_cidr(v.get("dst"))?,
        gw: parse_opt_ip(v.get("gw")).ok()?,
        mtu: num("mtu"),
        advmss: num("advmss"),
        priority: num("priority"),
        table: num("table"),
        scope: num("scope"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dual_stack() -> CniResult {
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("0a:58:0a:00:00:02".into()),
                sandbox: Some("/run/netns/c1".into()),
                mtu: Some(1500),
                ..Interface::default()
            }],
            ips: vec![
                IpConfig {
                    address: "10.1.2.5/24".parse().unwrap(),
                    gateway: Some("10.1.2.1".parse().unwrap()),
                    interface: Some(0),
                },
                IpConfig {
                    address: "2001:db8::5/64".parse().unwrap(),
                    gateway: None,
                    interface: Some(0),
                },
            ],
            routes: vec![
                Route {
                    table: Some(100),
                    ..Route::new("0.0.0.0/0".parse().unwrap(), None)
                },
                Route::new(
                    "::/0".parse().unwrap(),
                    Some("2001:db8::1".parse().unwrap()),
                ),
            ],
            dns: Dns {
                nameservers: vec!["10.1.2.1".into()],
                ..Dns::default()
            },
        }
    }

    #[test]
    fn legacy_shape() {
        let v = dual_stack().encode(Version::V0_2_0).unwrap();
        assert_eq!(
            v,
            json!({"cniVersion":"0.2.0",
                "ip4":{"ip":"10.1.2.5/24","gateway":"10.1.2.1","routes":[{"dst":"0.0.0.0/0"}]},
                "ip6":{"ip":"2001:db8::5/64","routes":[{"dst":"::/0","gw":"2001:db8::1"}]},
                "dns":{"nameservers":["10.1.2.1"]}})
        );
    }

    #[test]
    fn versioned_shape_has_ip_version_and_no_11_fields() {
        let v = dual_stack().encode(Version::V0_4_0).unwrap();
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["ips"][1]["version"], "6");
        assert_eq!(v["ips"][1]["interface"], 0);
        assert!(v["interfaces"][0].get("mtu").is_none());
        assert!(v["routes"][0].get("table").is_none());
    }

    #[test]
    fn modern_shapes() {
        let v10 = dual_stack().encode(Version::V1_0_0).unwrap();
        assert!(v10["ips"][0].get("version").is_none());
        assert!(v10["routes"][0].get("table").is_none());
        let v11 = dual_stack().encode(Version::V1_1_0).unwrap();
        assert_eq!(v11["interfaces"][0]["mtu"], 1500);
        assert_eq!(v11["routes"][0]["table"], 100);
    }

    #[test]
    fn empty_dns_is_an_empty_object() {
        let r = CniResult {
            ips: dual_stack().ips,
            ..CniResult::default()
        };
        assert_eq!(r.encode(Version::V1_0_0).unwrap()["dns"], json!({}));
    }

    #[test]
    fn legacy_refuses_what_it_cannot_say() {
        let l2 = CniResult {
            interfaces: dual_stack().interfaces,
            ..CniResult::default()
        };
        for v in [Version::V0_1_0, Version::V0_2_0] {
            assert_eq!(l2.encode(v).unwrap_err().code, code::UNREPRESENTABLE_RESULT);
        }
        assert!(l2.encode(Version::V0_3_1).is_ok());
        let mut two_v4 = dual_stack();
        two_v4.ips[1].address = "10.1.3.5/24".parse().unwrap();
        assert!(two_v4.encode(Version::V0_1_0).is_err());
    }

    #[test]
    fn decode_inverts_encode_for_every_version() {
        let full = dual_stack();
        for v in Version::ALL {
            let back = CniResult::decode(&full.encode(v).unwrap(), v).unwrap();
            match v.family() {
                ResultFamily::Legacy => {
                    assert_eq!(back.ips.len(), 2);
                    assert_eq!(back.routes.len(), 2);
                }
                _ if v >= Version::V1_1_0 => assert_eq!(back, full),
                _ => {
                    assert_eq!(back.ips, full.ips);
                    assert_eq!(back.interfaces[0].mac, full.interfaces[0].mac);
                }
            }
        }
    }

    #[test]
    fn decode_accepts_the_030_ip_key() {
        let r = CniResult::decode(
            &json!({"cniVersion":"0.3.0","ip":[{"version":"4","address":"10.0.0.2/24"}]}),
            Version::V0_3_0,
        )
        .unwrap();
        assert_eq!(r.ips.len(), 1);
    }

    #[test]
    fn a_result_on_top_of_prev_result_keeps_it_whole() {
        let prev = CniResult {
            interfaces: vec![Interface {
                name: "spy0".into(),
                ..Interface::default()
            }],
            ips: vec![IpConfig {
                address: "192.0.2.7/24".parse().unwrap(),
                gateway: None,
                interface: Some(0),
            }],
            routes: vec![],
            dns: Dns {
                nameservers: vec!["192.0.2.53".into()],
                ..Dns::default()
            },
        };
        let mut own = dual_stack();
        own.dns.nameservers = vec!["192.0.2.53".into(), "10.1.2.53".into()];
        let merged = own.clone().on_top_of(prev.clone());
        assert_eq!(merged.interfaces[0], prev.interfaces[0]);
        assert_eq!(merged.interfaces[1], own.interfaces[0]);
        assert_eq!(merged.ips[0], prev.ips[0]);
        assert!(merged.ips[1..].iter().all(|ip| ip.interface == Some(1)));
        assert_eq!(merged.routes, own.routes);
        assert_eq!(merged.dns.nameservers, ["192.0.2.53", "10.1.2.53"]);
    }
}
