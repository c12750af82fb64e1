//! The resolv.conf host-local reads for `resolvConf` (`host_local::resolv`).
#![no_main]

use cni_reference::host_local::resolv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `resolv::read` refuses a file that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = resolv::parse(text);
});
