//! What the macvlan plugin reads back from its delegated IPAM plugin
//! (`delegate`): a successful ADD's stdout as a result in the version it
//! names, and a failed call's stdout as an error object.
#![no_main]

use cni_reference::delegate::{add_answer, error_answer};
use cni_reference::protocol::Version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for asked in [Version::V0_2_0, Version::V0_4_0, Version::V1_1_0] {
        if let Ok(result) = add_answer(data, asked) {
            let _ = result.encode(asked);
        }
    }
    if let Some(e) = error_answer(data) {
        let _ = e.in_its_version();
    }
});
