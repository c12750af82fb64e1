//! host-local's configuration (`host_local::config`): `ipam` with its
//! subnet or range sets, routes, `runtimeConfig.ipRanges`, requested
//! addresses (`args.cni.ips`, `runtimeConfig.ips`, `CNI_ARGS` `IP=`), then
//! the first candidates of each validated range set, as ADD walks them.
//! Input: `CNI_ARGS`, a NUL byte, the config (or only the config).
#![no_main]

mod common;

use cni_reference::host_local::config::{IpamConfig, store_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(req) = common::add_request(data) else {
        return;
    };
    let _ = store_dir(&req);
    let Ok(conf) = IpamConfig::load(&req) else {
        return;
    };
    // A requested address stands in for the round-robin cursor read back
    // from `last_reserved_ip.N`.
    let last = conf.requested.first().copied();
    for set in &conf.range_sets {
        let _ = set.describe();
        for ip in &conf.requested {
            let _ = set.range_for(*ip).map(|r| r.is_assignable(*ip));
        }
        for _ in set.candidates(last).take(3) {}
    }
});
