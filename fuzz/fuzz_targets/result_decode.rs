//! Results of every version (`protocol::result`), as a `prevResult` is
//! read: decoded in each version's shape, then written back in each
//! version, as a plugin passes a prevResult on with its own additions.
#![no_main]

use cni_reference::protocol::{CniResult, Version};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for version in Version::ALL {
        let Ok(result) = CniResult::decode(&value, version) else {
            continue;
        };
        for out in Version::ALL {
            let _ = result.representable(out);
            let _ = result.encode(out);
        }
        let _ = result.clone().on_top_of(result);
    }
});
