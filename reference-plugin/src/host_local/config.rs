//! host-local's configuration: the `ipam` object, requested addresses and
//! `runtimeConfig.ipRanges`, validated into range sets.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde_json::Value;

use super::range::{RangeSet, RangeSpec};
use crate::protocol::result::parse_route;
use crate::protocol::{CniError, Request, Route};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpam {
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    range_start: Option<String>,
    #[serde(default)]
    range_end: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    ranges: Vec<Vec<RangeSpec>>,
    #[serde(default)]
    routes: Vec<Value>,
    #[serde(default)]
    resolv_conf: Option<String>,
}

/// What DEL, GC and CHECK need: where the store is. Read without validating
/// the ranges, so a DEL still releases after the ranges were edited badly.
pub fn store_dir(req: &Request) -> Result<PathBuf, CniError> {
    let ipam = ipam_object(req)?;
    let data_dir = match ipam.get("dataDir") {
        None | Some(Value::Null) => DEFAULT_DATA_DIR,
        Some(Value::String(s)) if s.is_empty() => DEFAULT_DATA_DIR,
        Some(Value::String(s)) => s,
        Some(_) => return Err(CniError::config("ipam.dataDir: must be a string")),
    };
    Ok(PathBuf::from(data_dir))
}

fn ipam_object(req: &Request) -> Result<&serde_json::Map<String, Value>, CniError> {
    req.conf
        .json
        .get("ipam")
        .and_then(Value::as_object)
        .ok_or_else(|| CniError::config("ipam: the IPAM configuration is missing"))
}

/// The full, validated configuration ADD, STATUS and CHECK use.
#[derive(Debug, Clone)]
pub struct IpamConfig {
    pub data_dir: PathBuf,
    pub range_sets: Vec<RangeSet>,
    pub routes: Vec<Route>,
    pub resolv_conf: Option<PathBuf>,
    /// Specific addresses asked for, in the order given.
    pub requested: Vec<IpAddr>,
}

impl IpamConfig {
    pub fn load(req: &Request) -> Result<IpamConfig, CniError> {
        let raw: RawIpam = RawIpam::deserialize(ipam_object(req)?.into_deserializer())
            .map_err(|e| CniError::config(format!("ipam: {e}")))?;
        let mut specs: Vec<(String, Vec<RangeSpec>)> = Vec::new();
        if let Some(rc) = req.conf.runtime_config().and_then(|rc| rc.get("ipRanges")) {
            let sets: Vec<Vec<RangeSpec>> = Vec::deserialize(rc)
                .map_err(|e| CniError::config(format!("runtimeConfig.ipRanges: {e}")))?;
            specs.extend(
                sets.into_iter()
                    .enumerate()
                    .map(|(i, s)| (format!("runtimeConfig.ipRanges[{i}]"), s)),
            );
        }
        if let Some(subnet) = raw.subnet {
            let spec = RangeSpec {
                subnet,
                range_start: raw.range_start,
                range_end: raw.range_end,
                gateway: raw.gateway,
            };
            specs.push(("ipam.subnet".into(), vec![spec]));
        }
        specs.extend(
            raw.ranges
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("ipam.ranges[{i}]"), s)),
        );
        if specs.is_empty() {
            return Err(CniError::config(
                "ipam: no IP ranges specified (subnet or ranges)",
            ));
        }
        let mut range_sets = Vec::new();
        for (field, set) in &specs {
            let set =
                RangeSet::validate(set).map_err(|e| CniError::config(format!("{field}: {e}")))?;
            if let Some(j) = range_sets
                .iter()
                .position(|other: &RangeSet| other.overlaps(&set))
            {
                return Err(CniError::config(format!(
                    "{field}: overlaps with {}",
                    specs[j].0
                )));
            }
            range_sets.push(set);
        }
        if !req.conf.version.has_multiple_ips() {
            let v4 = range_sets.iter().filter(|s| s.is_ipv4()).count();
            if v4 > 1 || range_sets.len() - v4 > 1 {
                return Err(CniError::config(format!(
                    "ipam: cniVersion {} allows one address per family, but {} range sets are configured",
                    req.conf.version,
                    range_sets.len()
                )));
            }
        }
        let routes = raw
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_route(r)
                    .ok_or_else(|| CniError::config(format!("ipam.routes[{i}]: invalid route {r}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpamConfig {
            data_dir: store_dir(req)?,
            range_sets,
            routes,
            resolv_conf: raw.resolv_conf.filter(|s| !s.is_empty()).map(PathBuf::from),
            requested: requested_ips(req)?,
        })
    }
}

/// Requested addresses: `args.cni.ips` and `runtimeConfig.ips` in that order;
/// `CNI_ARGS IP=` only when neither is given, since the spec makes `args` win
/// over `CNI_ARGS`. A `/prefix` is accepted and ignored, as upstream does.
fn requested_ips(req: &Request) -> Result<Vec<IpAddr>, CniError> {
    let mut out: Vec<IpAddr> = Vec::new();
    let lists = [
        ("args.cni.ips", req.conf.cni_arg("ips")),
        (
            "runtimeConfig.ips",
            req.conf.runtime_config().and_then(|rc| rc.get("ips")),
        ),
    ];
    for (field, list) in lists {
        let Some(list) = list else { continue };
        let items = list
            .as_array()
            .ok_or_else(|| CniError::config(format!("{field}: must be a list")))?;
        for item in items {
            let s = item
                .as_str()
                .ok_or_else(|| CniError::config(format!("{field}: entries must be strings")))?;
            let ip = parse_requested(s)
                .ok_or_else(|| CniError::config(format!("{field}: {s:?} is not an IP address")))?;
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    if out.is_empty() {
        if let Some(s) = req.args.get("IP") {
            out.push(
                parse_requested(s).ok_or_else(|| {
                    CniError::env(format!("CNI_ARGS: IP={s} is not an IP address"))
                })?,
            );
        }
    }
    Ok(out)
}

fn parse_requested(s: &str) -> Option<IpAddr> {
    s.split('/').next()?.parse().ok()
}
