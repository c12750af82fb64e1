//! Judging as pure functions over what the kernel held and what the plugin
//! answered: no sandbox, no process, so each is tested on fixtures.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;

use crate::profile::Profile;
use crate::snapshot::{
    self, Change, ChangeKind, FileEntry, NetnsSnapshot, Object, Scope, Snapshot,
};

/// What an attachment made and left behind between two snapshots: kernel
/// objects and state files that were not there before, except neighbours
/// (learnt from traffic), folders, and the network's shared state and
/// bookkeeping files the profile names (which may stay). Objects that
/// existed before and changed are del.restores-kernel's subject.
pub fn leaks(profile: &Profile, before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    snapshot::diff(before, after)
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Added && !is_shared(profile, c))
        .collect()
}

/// Whether a change is the network's (shared state, bookkeeping, folders)
/// or traffic's (neighbours), not an attachment's.
pub fn is_shared(profile: &Profile, c: &Change) -> bool {
    match &c.object {
        Object::Neighbour { .. } => true,
        Object::File { path, entry } => {
            *entry == FileEntry::Directory || profile.is_bookkeeping(path)
        }
        other => profile.is_shared(&other.to_string()),
    }
}

/// What an attachment leaves behind after its DEL while another one of
/// the network stays: the changes from `before` (no attachment) to
/// `after` (only the other one), less the other's own (`others`, what its
/// ADD changed) and the network's shared state.
pub fn own_leaks(
    profile: &Profile,
    before: &Snapshot,
    after: &Snapshot,
    others: &[Change],
) -> Vec<Change> {
    leaks(profile, before, after)
        .into_iter()
        .filter(|c| {
            !others
                .iter()
                .any(|o| o.scope == c.scope && o.object == c.object)
        })
        .collect()
}

/// Kernel changes between two snapshots (state files and neighbours left
/// out).
pub fn kernel_changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    snapshot::diff(before, after)
        .into_iter()
        .filter(|c| {
            matches!(c.scope, Scope::Netns(_)) && !matches!(c.object, Object::Neighbour { .. })
        })
        .collect()
}

/// Changes as one line for a report.
pub fn lines(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The result's entry for `ifname` and its index.
pub fn own_interface<'r>(result: &'r Value, ifname: &str) -> Option<(usize, &'r Value)> {
    result
        .get("interfaces")?
        .as_array()?
        .iter()
        .enumerate()
        .find(|(_, i)| i["name"] == ifname)
}

/// The first address of a result, in any version's layout.
pub fn first_address(r: &Value) -> Option<IpNetwork> {
    r.get("ips")
        .and_then(|i| i.get(0)?.get("address"))
        .or_else(|| r.get("ip4")?.get("ip"))?
        .as_str()?
        .parse()
        .ok()
}

/// Every address of a result, in any version's layout.
pub fn addresses(r: &Value) -> Vec<IpNetwork> {
    let listed = r
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.get("address")?.as_str());
    let legacy = ["ip4", "ip6"]
        .iter()
        .filter_map(|k| r.get(*k)?.get("ip")?.as_str());
    listed
        .chain(legacy)
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The addresses a result puts on `ifname`: those whose `interface` is its
/// index, or (0.1.0, 0.2.0, which have no interfaces) all of them.
fn reported_addresses(result: &Value, ifname: &str) -> Vec<String> {
    match own_interface(result, ifname) {
        Some((idx, _)) => result
            .get("ips")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|ip| ip.get("interface").and_then(Value::as_u64) == Some(idx as u64))
            .filter_map(|ip| ip["address"].as_str().map(str::to_string))
            .collect(),
        None => ["ip4", "ip6"]
            .iter()
            .filter_map(|k| result.get(*k)?.get("ip")?.as_str().map(str::to_string))
            .collect(),
    }
}

/// Every route of a result, in any version's layout.
fn reported_routes(result: &Value) -> Vec<&Value> {
    let mut routes: Vec<&Value> = result
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    for k in ["ip4", "ip6"] {
        routes.extend(
            result
                .get(k)
                .and_then(|x| x.get("routes")?.as_array())
                .into_iter()
                .flatten(),
        );
    }
    routes
}

/// The network part only: `10.1.2.3/24` and `10.1.2.0/24` name one route.
fn network_of(n: IpNetwork) -> IpNetwork {
    IpNetwork::new(n.network(), n.prefix()).expect("same prefix")
}

/// Where the kernel (the container's namespace) disagrees with what the
/// result reports for `ifname`; empty when it holds all of it. Addresses
/// and routes compare as parsed values.
pub fn disagreements(result: &Value, kernel: &NetnsSnapshot, ifname: &str) -> Vec<String> {
    let Some(link) = kernel.link(ifname) else {
        return vec![format!("no link {ifname}")];
    };
    let mut out = Vec::new();
    if let Some((_, iface)) = own_interface(result, ifname) {
        if let Some(mac) = iface.get("mac").and_then(Value::as_str) {
            if !link
                .mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
            {
                out.push(format!(
                    "MAC: result {mac}, kernel {}",
                    link.mac.as_deref().unwrap_or("none")
                ));
            }
        }
        if let Some(mtu) = iface.get("mtu").and_then(Value::as_u64) {
            if u64::from(link.mtu) != mtu {
                out.push(format!("MTU: result {mtu}, kernel {}", link.mtu));
            }
        }
    }
    let present: Vec<IpNetwork> = kernel.addresses_on(ifname).collect();
    for text in reported_addresses(result, ifname) {
        match text.parse::<IpNetwork>() {
            Ok(addr) if present.contains(&addr) => {}
            Ok(addr) => out.push(format!(
                "address {addr} is not on {ifname} (it has {})",
                super::say::list(&present)
            )),
            Err(_) => out.push(format!("address {text:?} is not an address")),
        }
    }
    for r in reported_routes(result) {
        let dst = r["dst"].as_str().and_then(|d| d.parse::<IpNetwork>().ok());
        let gw = r.get("gw").and_then(Value::as_str);
        let gw_parsed = gw.map(str::parse::<IpAddr>).transpose();
        match (dst, gw_parsed) {
            (Some(dst), Ok(gw)) => {
                if !kernel.has_route(network_of(dst), gw) {
                    out.push(format!("route {r} is missing"));
                }
            }
            _ => out.push(format!("route {r} is not a route")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Address, Link, Route};
    use serde_json::json;

    fn kernel() -> NetnsSnapshot {
        let mut k = NetnsSnapshot::default();
        k.links.insert(
            "eth0".into(),
            Link {
                ifindex: 2,
                kind: Some("macvlan".into()),
                mac: Some("0a:58:0a:00:00:02".into()),
                mtu: 1500,
                up: true,
                master: None,
                macvlan_mode: Some("bridge".into()),
            },
        );
        for a in ["10.1.2.3/24", "fd00::5/64", "10.9.9.9/32"] {
            k.addresses.insert(Address {
                ifname: "eth0".into(),
                addr: a.parse().unwrap(),
            });
        }
        k.routes.insert(Route {
            table: "main".into(),
            dst: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("10.1.2.1".parse().unwrap()),
            dev: Some("eth0".into()),
        });
        k.routes.insert(Route {
            table: "main".into(),
            dst: "10.1.2.0/24".parse().unwrap(),
            gateway: None,
            dev: Some("eth0".into()),
        });
        k
    }

    #[test]
    fn a_result_the_kernel_holds_agrees_in_every_layout() {
        let k = kernel();
        let v1 = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "mac": "0A:58:0A:00:00:02", "sandbox": "/x"}],
            "ips": [{"address": "10.1.2.3/24", "interface": 0},
                    {"address": "fd00:0:0::5/64", "interface": 0},
                    {"address": "10.9.9.9/32", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}, {"dst": "10.1.2.7/24"}]});
        assert_eq!(disagreements(&v1, &k, "eth0"), Vec::<String>::new());
        let v01 = json!({"cniVersion": "0.1.0",
            "ip4": {"ip": "10.1.2.3/24", "routes": [{"dst": "0.0.0.0/0"}]}});
        assert_eq!(disagreements(&v01, &k, "eth0"), Vec::<String>::new());
    }

    #[test]
    fn what_the_kernel_lacks_is_named() {
        let k = kernel();
        let r = json!({"interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:09", "mtu": 9000}],
            "ips": [{"address": "10.1.2.4/24", "interface": 0},
                    {"address": "192.0.2.1/24", "interface": 1}],
            "routes": [{"dst": "198.51.100.0/24"}, {"dst": "0.0.0.0/0", "gw": "10.1.2.254"}]});
        assert_eq!(
            disagreements(&r, &k, "eth0"),
            [
                "MAC: result 02:00:00:00:00:09, kernel 0a:58:0a:00:00:02",
                "MTU: result 9000, kernel 1500",
                "address 10.1.2.4/24 is not on eth0 (it has 10.1.2.3/24, 10.9.9.9/32, fd00::5/64)",
                r#"route {"dst":"198.51.100.0/24"} is missing"#,
                r#"route {"dst":"0.0.0.0/0","gw":"10.1.2.254"} is missing"#,
            ]
        );
        assert_eq!(disagreements(&r, &k, "eth1"), ["no link eth1"]);
    }

    #[test]
    fn leaks_leave_out_neighbours_folders_and_bookkeeping() {
        let profile = Profile::built_in("host-local").unwrap();
        let file = |text: &str| FileEntry::File {
            size: text.len() as u64,
            crc32: 0,
            text: Some(text.into()),
        };
        let mut after = Snapshot::default();
        let mut ns = NetnsSnapshot::default();
        ns.neighbours.insert(
            ("eth0".into(), "10.1.2.1".into()),
            "02:00:00:00:00:01".into(),
        );
        ns.addresses.insert(Address {
            ifname: "eth0".into(),
            addr: "10.1.2.3/24".parse().unwrap(),
        });
        after.namespaces.insert("container ctr0".into(), ns);
        let mut files = snapshot::FilesSnapshot::default();
        files
            .entries
            .insert("networks".into(), FileEntry::Directory);
        files.entries.insert("networks/n/lock".into(), file(""));
        files
            .entries
            .insert("networks/n/10.1.2.3".into(), file("c1\r\neth0"));
        after.files.insert("state /var/lib/cni".into(), files);
        let left = leaks(&profile, &Snapshot::default(), &after);
        assert_eq!(
            lines(&left),
            "address 10.1.2.3/24 on eth0 added in container ctr0; \
             file networks/n/10.1.2.3 (\"c1\\r\\neth0\") added in state /var/lib/cni"
        );
        assert_eq!(
            lines(&kernel_changes(&Snapshot::default(), &after)),
            "address 10.1.2.3/24 on eth0 added in container ctr0"
        );
    }

    #[test]
    fn addresses_are_read_from_every_layout() {
        let a: IpNetwork = "10.1.2.3/24".parse().unwrap();
        assert_eq!(
            first_address(&json!({"ips": [{"address": "10.1.2.3/24"}]})),
            Some(a)
        );
        assert_eq!(
            first_address(&json!({"ip4": {"ip": "10.1.2.3/24"}})),
            Some(a)
        );
        assert_eq!(first_address(&json!({"dns": {}})), None);
        assert_eq!(
            addresses(&json!({"ip4": {"ip": "10.1.2.3/24"}, "ip6": {"ip": "fd00::5/64"}})).len(),
            2
        );
    }
}
