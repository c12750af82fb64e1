//! `CNI_ARGS` (`protocol::args`): `K=V` pairs separated by `;`.
#![no_main]

use cni_reference::protocol::args::CniArgs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // An environment variable reaches the plugin as a String only when it
    // is UTF-8 (std::env::var); other bytes read as unset.
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(args) = CniArgs::parse(raw) {
        for key in ["IP", "MAC", "IgnoreUnknown", "K8S_POD_NAME"] {
            let _ = args.get(key);
        }
    }
});
