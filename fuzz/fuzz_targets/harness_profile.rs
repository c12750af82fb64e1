//! Profiles (`profile`): a profile's TOML, its JSON templates, the network
//! configuration filled in from it, and its bookkeeping/shared patterns.
#![no_main]

use cni_conformance::profile::{Fill, Profile};
use cni_conformance::spec::Version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Profile::from_text(text, "fuzz.toml") else {
        return;
    };
    let fill = Fill::new(&p.name);
    for v in [Version::V0_2_0, Version::V1_1_0] {
        let _ = p.network(v, "conf", &fill);
    }
    for object in ["link cni-conf0", "address 10.88.0.1/24 on cni-conf0", ""] {
        let _ = p.is_shared(object);
    }
    for path in [
        "cni/networks/n/last_reserved_ip.0",
        "x/lock",
        "10.88.0.2",
        "",
    ] {
        let _ = p.is_bookkeeping(path);
    }
});
