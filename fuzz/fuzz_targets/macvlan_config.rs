//! macvlan's own configuration (`macvlan::config`): mode, MTU, MAC (from
//! `runtimeConfig.mac`, `CNI_ARGS` `MAC=` or `mac`), `ipam`, `dns`.
//! Input: `CNI_ARGS`, a NUL byte, the config (or only the config).
#![no_main]

mod common;

use cni_reference::macvlan::config::{MacvlanConfig, ipam_type};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(req) = common::add_request(data) else {
        return;
    };
    let _ = ipam_type(&req);
    let _ = MacvlanConfig::load(&req);
});
