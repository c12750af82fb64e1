//! The reference host-local IPAM plugin.

pub mod config;
pub mod index;
pub mod owner;
pub mod range;
pub mod reservations;
pub mod resolv;
pub mod store;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;
use serde_json::Value;

use crate::protocol::{CniError, CniResult, Dns, IpConfig, Plugin, Request, code};
use config::IpamConfig;
use owner::Owner;
use range::RangeSet;
use store::{Store, StoreError};

pub struct HostLocal;

impl From<StoreError> for CniError {
    fn from(e: StoreError) -> CniError {
        let code = match e {
            StoreError::LockTimeout(..) => code::TRY_AGAIN_LATER,
            _ => code::STORE_FAILURE,
        };
        CniError::new(code, e.to_string())
    }
}

fn in_any_set(sets: &[RangeSet], ip: IpAddr) -> bool {
    sets.iter().any(|s| s.range_for(ip).is_some())
}

impl Plugin for HostLocal {
    fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        let conf = IpamConfig::load(req)?;
        let dns = match &conf.resolv_conf {
            Some(path) => resolv::read(path)?,
            None => Dns::default(),
        };
        let mut store =
            Store::open(&conf.data_dir, &req.conf.name, true)?.expect("created on open");
        let (id, ifname) = (req.env.container_id(), req.env.ifname());
        let mut taken = Vec::new();
        let outcome = allocate(&conf, &mut store, id, ifname, &mut taken).and_then(|ips| {
            let result = CniResult {
                ips,
                routes: conf.routes.clone(),
                dns,
                ..CniResult::default()
            };
            // Refuse before committing anything the runtime could not read.
            result.representable(req.conf.version).map(|_| result)
        });
        if outcome.is_err() {
            for ip in taken {
                store.release(ip)?;
            }
        }
        store.commit()?;
        outcome
    }

    fn del(&self, req: &Request) -> Result<(), CniError> {
        let Some(mut store) = Store::open(&config::store_dir(req)?, &req.conf.name, false)? else {
            return Ok(());
        };
        for ip in store.held_by(req.env.container_id(), req.env.ifname()) {
            store.release(ip)?;
        }
        Ok(store.commit()?)
    }

    fn check(&self, req: &Request) -> Result<(), CniError> {
        let conf = IpamConfig::load(req)?;
        let (id, ifname) = (req.env.container_id(), req.env.ifname());
        let missing = || {
            CniError::new(
                code::RESERVATION_MISSING,
                format!(
                    "no address is reserved for container {id} interface {ifname} in network {}",
                    req.conf.name
                ),
            )
        };
        let store = Store::open(&conf.data_dir, &req.conf.name, false)?.ok_or_else(missing)?;
        let held = store.held_by(id, ifname);
        if held.is_empty() {
            return Err(missing());
        }
        if let Some(prev) = req.conf.prev_result()? {
            // prevResult may list other plugins' addresses: judge only ours.
            for ip in prev
                .ips
                .iter()
                .map(|c| c.address.ip())
                .filter(|ip| in_any_set(&conf.range_sets, *ip))
            {
                if !held.contains(&ip) {
                    return Err(CniError::new(
                        code::RESERVATION_MISSING,
                        format!(
                            "prevResult address {ip} is not reserved for container {id} interface {ifname}"
                        ),
                    ));
                }
            }
        }
        Ok(store.commit()?)
    }

    fn status(&self, req: &Request) -> Result<(), CniError> {
        let conf = IpamConfig::load(req)?;
        let unavailable = |msg: String| CniError::new(code::NOT_AVAILABLE, msg);
        let dir = conf.data_dir.join(&req.conf.name);
        let store = match Store::open(&conf.data_dir, &req.conf.name, false) {
            Ok(s) => s,
            Err(e) => return Err(unavailable(format!("the IPAM store is unusable: {e}"))),
        };
        let Some(store) = store else {
            return writable_ancestor(&dir).map_err(unavailable);
        };
        if nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_err() {
            return Err(unavailable(format!(
                "the IPAM store {} is not writable",
                dir.display()
            )));
        }
        for (i, set) in conf.range_sets.iter().enumerate() {
            let reservations = store.reservations();
            if !set
                .candidates(None)
                .any(|(_, ip)| !reservations.contains(ip))
            {
                return Err(unavailable(format!(
                    "range set {i} ({}) has no free address",
                    set.describe()
                )));
            }
        }
        Ok(())
    }

    fn gc(&self, req: &Request) -> Result<(), CniError> {
        let Some(valid) = valid_attachments(req)? else {
            // Without the list nothing can be told stale: keep everything.
            return Ok(());
        };
        let Some(mut store) = Store::open(&config::store_dir(req)?, &req.conf.name, false)? else {
            return Ok(());
        };
        let stale: Vec<IpAddr> = store
            .reservations()
            .iter()
            .filter(|(_, owner)| match owner {
                Owner::Attachment { id, ifname } => !valid.contains(&(id.clone(), ifname.clone())),
                Owner::Legacy { id } => !valid.iter().any(|(v, _)| v == id),
                Owner::Torn => true,
            })
            .map(|(ip, _)| ip)
            .collect();
        // One entry that cannot go does not keep the others: release what
        // can be, then report what could not.
        let mut failed = Vec::new();
        for ip in stale {
            if let Err(e) = store.release(ip) {
                failed.push(e.to_string());
            }
        }
        store.commit()?;
        match failed.split_first() {
            None => Ok(()),
            Some((first, rest)) => {
                let e = CniError::new(code::STORE_FAILURE, first.clone());
                Err(if rest.is_empty() {
                    e
                } else {
                    e.with_details(rest.join("; "))
                })
            }
        }
    }
}

/// The union of `cni.dev/valid-attachments` and its pre-release spelling
/// `cni.dev/attachments`; `None` when the runtime sent neither.
fn valid_attachments(req: &Request) -> Result<Option<HashSet<(String, String)>>, CniError> {
    let mut found = None;
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let Some(list) = req.conf.json.get(key) else {
            continue;
        };
        let set = found.get_or_insert_with(HashSet::new);
        let items = list
            .as_array()
            .ok_or_else(|| CniError::config(format!("{key}: must be a list")))?;
        for item in items {
            let field = |f: &str| item.get(f).and_then(Value::as_str).map(str::to_string);
            match (field("containerID"), field("ifname")) {
                (Some(id), Some(ifname)) => set.insert((id, ifname)),
                _ => {
                    return Err(CniError::config(format!(
                        "{key}: entries need containerID and ifname"
                    )));
                }
            };
        }
    }
    Ok(found)
}

/// One address per range set, requested ones first. Every address reserved
/// is pushed to `taken` so the caller can roll back on failure.
fn allocate(
    conf: &IpamConfig,
    store: &mut Store,
    id: &str,
    ifname: &str,
    taken: &mut Vec<IpAddr>,
) -> Result<Vec<IpConfig>, CniError> {
    let held: Vec<IpAddr> = store
        .held_by(id, ifname)
        .into_iter()
        .filter(|ip| in_any_set(&conf.range_sets, *ip))
        .collect();
    if let Some(ip) = held.first() {
        return Err(CniError::new(
            code::DUPLICATE_ATTACHMENT,
            format!(
                "{ip} has been allocated to {id} interface {ifname}, duplicate allocation is not allowed"
            ),
        ));
    }
    let mut requested = conf.requested.clone();
    let mut ips = Vec::new();
    for (i, set) in conf.range_sets.iter().enumerate() {
        let (range, ip) = match requested.iter().position(|r| set.range_for(*r).is_some()) {
            Some(pos) => {
                let ip = requested.remove(pos);
                let range = set.range_for(ip).expect("found above");
                if Some(ip) == range.gateway {
                    return Err(unavailable(
                        i,
                        format!("requested ip {ip} is subnet's gateway"),
                    ));
                }
                if !range.is_assignable(ip)
                    || store.reservations().contains(ip)
                    || !store.reserve(ip, id, ifname)?
                {
                    return Err(unavailable(
                        i,
                        format!(
                            "requested IP address {ip} is not available in range set {}",
                            set.describe()
                        ),
                    ));
                }
                (range, ip)
            }
            None => {
                let mut candidates = set.candidates(store.last_reserved(i));
                loop {
                    let Some((range, ip)) = candidates.next() else {
                        return Err(CniError::new(
                            code::RANGE_EXHAUSTED,
                            format!(
                                "failed to allocate for range {i}: no IP addresses available in range set: {}",
                                set.describe()
                            ),
                        ));
                    };
                    if !store.reservations().contains(ip) && store.reserve(ip, id, ifname)? {
                        break (range, ip);
                    }
                }
            }
        };
        taken.push(ip);
        store.set_last_reserved(i, ip)?;
        ips.push(IpConfig {
            address: IpNetwork::new(ip, range.subnet.prefix()).expect("prefix from a valid subnet"),
            gateway: range.gateway,
            interface: None,
        });
    }
    if !requested.is_empty() {
        let list: Vec<String> = requested.iter().map(IpAddr::to_string).collect();
        return Err(CniError::new(
            code::ADDRESS_UNAVAILABLE,
            format!("failed to allocate all requested IPs: {}", list.join(" ")),
        ));
    }
    Ok(ips)
}

fn unavailable(set: usize, msg: String) -> CniError {
    CniError::new(
        code::ADDRESS_UNAVAILABLE,
        format!("failed to allocate for range {set}: {msg}"),
    )
}

/// STATUS for a store not created yet: ADD can work if it can create it.
fn writable_ancestor(dir: &Path) -> Result<(), String> {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).map_err(|e| {
        format!(
            "cannot create the IPAM store under {}: {e}",
            existing.display()
        )
    })
}
