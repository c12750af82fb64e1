//! The reference macvlan plugin.
//!
//! ADD validates everything first (config, IPAM binary, namespace, master,
//! interface name), then creates the link under its final name straight
//! into the container while IPAM runs, configures it and brings it up. Any
//! failure after the link or the IPAM call exists undoes both, so a failed
//! ADD leaves nothing behind.

pub mod config;

use std::net::IpAddr;
use std::path::PathBuf;

use netlink_packet_route::link::MacVlanMode;

use crate::delegate;
use crate::netlink::link::{self, Link, MacvlanSpec, format_mac};
use crate::netlink::route::RouteSpec;
use crate::netlink::{NetlinkError, Socket, addr, route};
use crate::netns::{Netns, NetnsError, write_sysctl};
use crate::protocol::env::Command;
use crate::protocol::{CniError, CniResult, Interface, Plugin, Request, code};
use config::{MacvlanConfig, ipam_type, mode_name};

pub struct Macvlan;

fn kernel(e: NetlinkError) -> CniError {
    CniError::new(code::KERNEL_FAILURE, e.to_string())
}

fn netns_error(e: NetnsError) -> CniError {
    match e {
        NetnsError::Missing(_) | NetnsError::NotANamespace(_) => {
            CniError::env(format!("CNI_NETNS: {e}"))
        }
        other => CniError::new(code::KERNEL_FAILURE, other.to_string()),
    }
}

/// Opens `CNI_NETNS`, refusing the plugin's own namespace.
fn container_netns(req: &Request) -> Result<Netns, CniError> {
    let path = req.env.netns.as_deref().unwrap_or_default();
    let ns = Netns::open(path).map_err(netns_error)?;
    if ns.is_own() {
        return Err(CniError::env(format!(
            "CNI_NETNS: {path} is the plugin's own network namespace"
        )));
    }
    Ok(ns)
}

fn temp_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("mv{:08x}", n as u32)
}

/// A socket in the plugin's own namespace, unless the master lives in the
/// container (`linkInContainer`).
fn host_socket(conf: &MacvlanConfig) -> Result<Option<Socket>, CniError> {
    if conf.link_in_container {
        Ok(None)
    } else {
        Socket::new().map(Some).map_err(kernel)
    }
}

/// The socket that sees the master, and where that is.
fn master_socket<'a>(
    host: &'a mut Option<Socket>,
    ctr: &'a mut Socket,
) -> (&'a mut Socket, &'static str) {
    match host.as_mut() {
        Some(h) => (h, "host"),
        None => (ctr, "container"),
    }
}

/// The master link, by name or as the default route's interface.
fn resolve_master(sock: &mut Socket, conf: &MacvlanConfig, place: &str) -> Result<Link, CniError> {
    match &conf.master {
        Some(name) => link::by_name(sock, name).map_err(kernel)?.ok_or_else(|| {
            CniError::config(format!(
                "master: interface {name:?} not found in the {place} namespace"
            ))
        }),
        None => {
            let index = route::default_route_link(sock)
                .map_err(kernel)?
                .ok_or_else(|| {
                    CniError::config(format!(
                        "master: not set, and the {place} namespace has no default route"
                    ))
                })?;
            link::by_index(sock, index).map_err(kernel)?.ok_or_else(|| {
                CniError::config(format!("master: default route interface #{index} vanished"))
            })
        }
    }
}

/// What ADD has created so far, for rollback.
struct Undo<'a> {
    link: Option<u32>,
    ipam: Option<(PathBuf, &'a [u8])>,
}

impl Plugin for Macvlan {
    fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        let conf = MacvlanConfig::load(req)?;
        let version = req.conf.version;
        // A plugin given a prevResult (second in a list) passes it on with
        // its own additions; a broken one fails before anything is made.
        let prev = req.conf.prev_result()?;
        if conf.ipam_type.is_none() && !version.has_multiple_ips() {
            return Err(CniError::config(format!(
                "ipam: a layer-2-only attachment has no address, which a cniVersion {version} result cannot express"
            )));
        }
        let ipam = conf
            .ipam_type
            .as_deref()
            .map(|t| delegate::find(t, &req.env.path))
            .transpose()?;
        let ifname = req.env.ifname();
        let netns = container_netns(req)?;
        let mut ctr = netns.socket().map_err(netns_error)?;
        if link::by_name(&mut ctr, ifname).map_err(kernel)?.is_some() {
            return Err(CniError::new(
                code::INTERFACE_EXISTS,
                format!("interface {ifname} already exists in {}", netns.path()),
            ));
        }
        let mut host = host_socket(&conf)?;
        let (master_sock, place) = master_socket(&mut host, &mut ctr);
        let master = resolve_master(master_sock, &conf, place)?;
        if let Some(mtu) = conf.mtu {
            if !(68..=master.mtu).contains(&mtu) {
                return Err(CniError::config(format!(
                    "mtu: {mtu} is outside [68, {}] (the master {}'s MTU)",
                    master.mtu, master.name
                )));
            }
        }
        // IPAM runs while the link is made: the two are independent, and
        // the delegate's process start and fsyncs are most of ADD's time.
        let mut undo = Undo {
            link: None,
            ipam: None,
        };
        let running = match &ipam {
            Some(plugin) => {
                undo.ipam = Some((plugin.clone(), &req.conf.raw));
                Some(delegate::start(plugin, Command::Add, &req.conf.raw)?)
            }
            None => None,
        };
        let made = create_link(master_sock, &conf, &master, &netns, ifname).and_then(|made_as| {
            let l = link::by_name(&mut ctr, &made_as)
                .map_err(kernel)?
                .ok_or_else(|| {
                    CniError::new(
                        code::KERNEL_FAILURE,
                        format!("the new link {made_as} vanished"),
                    )
                })?;
            undo.link = Some(l.index);
            if made_as != ifname {
                link::rename(&mut ctr, l.index, ifname).map_err(kernel)?;
            }
            Ok(l)
        });
        let ipam_result = running.map(|r| r.finish_add(version)).transpose();
        let outcome = made.and_then(|l| configure(req, &conf, &netns, &mut ctr, &l, ipam_result?));
        if outcome.is_err() {
            rollback(&mut ctr, undo);
        }
        outcome.map(|own| match prev {
            Some(prev) => own.on_top_of(prev),
            None => own,
        })
    }

    fn del(&self, req: &Request) -> Result<(), CniError> {
        let mut errors = Vec::new();
        if let Some(t) = ipam_type(req) {
            match delegate::find(&t, &req.env.path) {
                Ok(p) => errors.extend(delegate::run(&p, Command::Del, &req.conf.raw).err()),
                // Failing would make DEL fail forever (the ADD that preceded
                // it failed the same way); what IPAM may hold stays for GC.
                Err(e) => eprintln!("macvlan: DEL: IPAM not released: {}", e.msg),
            }
        }
        if let Err(e) = delete_link(req) {
            errors.push(e);
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => {
                let rest: Vec<String> = errors[1..].iter().map(|e| e.msg.clone()).collect();
                Err(errors.remove(0).with_details(rest.join("; ")))
            }
        }
    }

    fn check(&self, req: &Request) -> Result<(), CniError> {
        let conf = MacvlanConfig::load(req)?;
        let prev = req
            .conf
            .prev_result()?
            .ok_or_else(|| CniError::config("prevResult: CHECK needs the result of ADD"))?;
        if let Some(t) = &conf.ipam_type {
            run_ipam(req, t, Command::Check)?;
        }
        check_interface(req, &conf, &prev)
    }

    fn status(&self, req: &Request) -> Result<(), CniError> {
        let conf = MacvlanConfig::load(req)?;
        // With linkInContainer the master lives in containers we cannot see.
        if !conf.link_in_container {
            let mut host = Socket::new().map_err(kernel)?;
            if let Err(e) = resolve_master(&mut host, &conf, "host") {
                let code = if conf.master.is_some() {
                    code::LIMITED_CONNECTIVITY
                } else {
                    code::NOT_AVAILABLE
                };
                return Err(CniError::new(code, e.msg));
            }
        }
        if let Some(t) = &conf.ipam_type {
            run_ipam(req, t, Command::Status)?;
        }
        Ok(())
    }

    fn gc(&self, req: &Request) -> Result<(), CniError> {
        // The links die with their namespaces; only IPAM has state to collect.
        if let Some(t) = ipam_type(req) {
            run_ipam(req, &t, Command::Gc)?;
        }
        Ok(())
    }
}

/// Runs the IPAM plugin `t` with our own stdin, as the spec's delegation
/// asks, for a verb whose output we do not need.
fn run_ipam(req: &Request, t: &str, command: Command) -> Result<(), CniError> {
    delegate::run(&delegate::find(t, &req.env.path)?, command, &req.conf.raw).map(drop)
}

/// Creates the macvlan straight into the container under its final name,
/// so that whenever the plugin is killed, DEL finds it by `CNI_IFNAME`.
/// Kernels that register the device in the runtime's namespace first
/// refuse a name taken there (EEXIST); only then does it fall back to a
/// temporary name, renamed afterwards. Returns the name it was made with.
fn create_link(
    sock: &mut Socket,
    conf: &MacvlanConfig,
    master: &Link,
    netns: &Netns,
    ifname: &str,
) -> Result<String, CniError> {
    let names = std::iter::once(ifname.to_string()).chain((0..3).map(|_| temp_name()));
    for name in names {
        let spec = MacvlanSpec {
            name: &name,
            master: master.index,
            mode: conf.mode,
            mtu: conf.mtu,
            mac: conf.mac,
            bc_queue_len: conf.bc_queue_len,
            netns: (!conf.link_in_container).then(|| netns.fd()),
        };
        match link::create_macvlan(sock, &spec) {
            Ok(()) => return Ok(name),
            Err(e) if e.errno() == Some(libc::EEXIST) => continue,
            Err(e) => {
                let hint = match (e.errno(), conf.mode) {
                    (Some(libc::EINVAL), MacVlanMode::Passthrough) => {
                        " (passthru needs a master with no other macvlan on it)"
                    }
                    (Some(libc::EINVAL), _) => " (check mtu and mode against the master)",
                    _ => "",
                };
                return Err(CniError::new(code::KERNEL_FAILURE, format!("{e}{hint}")));
            }
        }
    }
    Err(CniError::new(
        code::TRY_AGAIN_LATER,
        "could not find a free interface name to create the link with",
    ))
}

/// Everything after the link exists and IPAM answered; `rollback` undoes
/// it all.
fn configure(
    req: &Request,
    conf: &MacvlanConfig,
    netns: &Netns,
    ctr: &mut Socket,
    link: &Link,
    ipam: Option<CniResult>,
) -> Result<CniResult, CniError> {
    // Renaming and configuring change neither the MAC nor the MTU.
    let index = link.index;
    let ifname = req.env.ifname();
    let mut result = match ipam {
        Some(r) if r.ips.is_empty() => {
            return Err(CniError::new(
                code::DELEGATE_FAILURE,
                "the IPAM plugin returned no IP address",
            ));
        }
        Some(r) => r,
        None => CniResult::default(),
    };
    if !result.ips.is_empty() {
        let has_v6 = result.ips.iter().any(|ip| ip.address.is_ipv6());
        let name = ifname.to_string();
        netns
            .run(move || {
                // Announce the new address on link-up; best effort, as upstream.
                let _ = write_sysctl(&format!("net/ipv4/conf/{name}/arp_notify"), "1");
                let _ = write_sysctl(&format!("net/ipv6/conf/{name}/ndisc_notify"), "1");
                if has_v6 {
                    let _ = write_sysctl("net/ipv6/conf/lo/disable_ipv6", "0");
                    let _ = write_sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "0");
                    let _ = write_sysctl(&format!("net/ipv6/conf/{name}/keep_addr_on_down"), "1");
                }
            })
            .map_err(netns_error)?;
        for ip in &result.ips {
            addr::add(ctr, index, ip.address).map_err(kernel)?;
        }
    }
    link::set_up(ctr, index).map_err(kernel)?;
    let gateway = |v4: bool| {
        result
            .ips
            .iter()
            .filter(|ip| ip.address.is_ipv4() == v4)
            .find_map(|ip| ip.gateway)
    };
    for r in &result.routes {
        let spec = RouteSpec {
            dst: r.dst,
            gw: r.gw.or_else(|| gateway(r.dst.is_ipv4())),
            oif: index,
            table: r.table,
            priority: r.priority,
            scope: r.scope.map(|s| s as u8),
            mtu: r.mtu,
            advmss: r.advmss,
        };
        route::add(ctr, &spec).map_err(|e| {
            CniError::new(
                code::KERNEL_FAILURE,
                format!("{e} (a route from the IPAM result could not be added)"),
            )
        })?;
    }
    result.interfaces = vec![Interface {
        name: ifname.to_string(),
        mac: link.mac.as_ref().map(format_mac),
        sandbox: req.env.netns.clone(),
        mtu: Some(link.mtu),
        ..Interface::default()
    }];
    for ip in &mut result.ips {
        ip.interface = Some(0);
    }
    // The config's own dns wins; without one, the IPAM plugin's (spec:
    // a delegating plugin reports its delegate's dns).
    if !conf.dns.is_empty() {
        result.dns = conf.dns.clone();
    }
    // Refuse now, while it can still be undone, what the runtime could not read.
    result.representable(req.conf.version)?;
    Ok(result)
}

fn rollback(ctr: &mut Socket, undo: Undo) {
    if let Some(index) = undo.link {
        if let Err(e) = link::delete(ctr, index) {
            eprintln!("macvlan: rollback: {e}");
        }
    }
    if let Some((plugin, stdin)) = undo.ipam {
        if let Err(e) = delegate::run(&plugin, Command::Del, stdin) {
            eprintln!("macvlan: rollback: IPAM DEL: {e}");
        }
    }
}

/// DEL's link half: gone namespace, gone link or a foreign link all count
/// as done; only a macvlan is ever deleted.
fn delete_link(req: &Request) -> Result<(), CniError> {
    let Some(path) = req.env.netns.as_deref() else {
        return Ok(());
    };
    let netns = match Netns::open(path) {
        Ok(ns) => ns,
        Err(NetnsError::Missing(_)) => return Ok(()),
        Err(e @ NetnsError::NotANamespace(_)) => {
            eprintln!("macvlan: DEL: {e}; nothing to delete there");
            return Ok(());
        }
        Err(e) => return Err(netns_error(e)),
    };
    if netns.is_own() {
        return Err(CniError::env(format!(
            "CNI_NETNS: {path} is the plugin's own network namespace"
        )));
    }
    let ifname = req.env.ifname();
    let mut ctr = netns.socket().map_err(netns_error)?;
    match link::by_name(&mut ctr, ifname).map_err(kernel)? {
        None => Ok(()),
        Some(l) if l.kind.as_deref() == Some("macvlan") => {
            link::delete(&mut ctr, l.index).map_err(kernel)
        }
        Some(l) => {
            eprintln!(
                "macvlan: DEL: {ifname} in {path} is a {:?} link, not a macvlan; left alone",
                l.kind
            );
            Ok(())
        }
    }
}

fn mismatch(msg: String) -> CniError {
    CniError::new(code::CHECK_MISMATCH, msg)
}

/// CHECK: the interface `prevResult` describes is in the container as ADD
/// left it.
fn check_interface(req: &Request, conf: &MacvlanConfig, prev: &CniResult) -> Result<(), CniError> {
    let ifname = req.env.ifname();
    let path = req.env.netns.as_deref().unwrap_or_default();
    let (idx, expected) = prev
        .interfaces
        .iter()
        .enumerate()
        .find(|(_, i)| i.name == ifname && i.sandbox.as_deref() == Some(path))
        .ok_or_else(|| {
            mismatch(format!(
                "prevResult lists no interface {ifname} in sandbox {path}"
            ))
        })?;
    let netns = container_netns(req)?;
    let mut ctr = netns.socket().map_err(netns_error)?;
    let mut host = host_socket(conf)?;
    let (master_sock, place) = master_socket(&mut host, &mut ctr);
    let master = resolve_master(master_sock, conf, place).map_err(|e| mismatch(e.msg))?;
    let link = link::by_name(&mut ctr, ifname)
        .map_err(kernel)?
        .ok_or_else(|| mismatch(format!("interface {ifname} does not exist in {path}")))?;
    if link.kind.as_deref() != Some("macvlan") {
        return Err(mismatch(format!(
            "interface {ifname} is a {:?} link, not a macvlan",
            link.kind
        )));
    }
    if link.macvlan_mode != Some(conf.mode) {
        let actual = link.macvlan_mode.map(mode_name).unwrap_or("unknown");
        return Err(mismatch(format!(
            "interface {ifname} has mode {actual}, expected {}",
            mode_name(conf.mode)
        )));
    }
    if link.parent != Some(master.index) {
        return Err(mismatch(format!(
            "interface {ifname} is not on master {}",
            master.name
        )));
    }
    let mac = link.mac.as_ref().map(format_mac);
    if let Some(want) = &expected.mac {
        if mac.as_deref().map(str::to_lowercase) != Some(want.to_lowercase()) {
            let actual = mac.as_deref().unwrap_or("none");
            return Err(mismatch(format!(
                "interface {ifname} has MAC {actual}, prevResult says {want}"
            )));
        }
    }
    let ours: Vec<_> = prev
        .ips
        .iter()
        .filter(|ip| ip.interface == Some(idx))
        .collect();
    let present = addr::list(&mut ctr, link.index).map_err(kernel)?;
    for ip in &ours {
        if !present.contains(&ip.address) {
            return Err(mismatch(format!(
                "address {} is not on interface {ifname}",
                ip.address
            )));
        }
    }
    // Only routes through our interface are ours to judge: their gateway (or
    // the default one of their family) lies in one of our subnets.
    let gateway = |v4: bool| {
        ours.iter()
            .filter(|ip| ip.address.is_ipv4() == v4)
            .find_map(|ip| ip.gateway)
    };
    let routes = route::list(&mut ctr).map_err(kernel)?;
    for r in &prev.routes {
        let gw: Option<IpAddr> = r.gw.or_else(|| gateway(r.dst.is_ipv4()));
        let on_our_link = gw.is_some_and(|g| ours.iter().any(|ip| ip.address.contains(g)));
        if !on_our_link {
            continue;
        }
        let found = routes
            .iter()
            .any(|k| k.dst == r.dst && k.gw == gw && k.oif == Some(link.index));
        if !found {
            return Err(mismatch(format!(
                "route {} via {} is missing from {ifname}",
                r.dst,
                gw.unwrap()
            )));
        }
    }
    Ok(())
}
