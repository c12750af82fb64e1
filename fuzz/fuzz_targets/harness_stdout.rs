//! A plugin's stdout as the harness reads it: JSON (`Outcome::json`), an
//! error object (`runtime::ErrorObject::parse`), a VERSION answer
//! (`suite::advertised`), and a result as the judging code reads it
//! (`checks::judge`: its interface, addresses, and what it claims against
//! a kernel snapshot).
#![no_main]

use cni_conformance::checks::judge;
use cni_conformance::runtime::ErrorObject;
use cni_conformance::snapshot::NetnsSnapshot;
use cni_conformance::suite::advertised;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = ErrorObject::parse(&doc);
    let _ = advertised(&doc);
    let _ = judge::own_interface(&doc, "eth0");
    let _ = judge::first_address(&doc);
    let _ = judge::addresses(&doc);
    let mut kernel = NetnsSnapshot::default();
    let _ = judge::disagreements(&doc, &kernel, "eth0");
    kernel.links.insert("eth0".into(), link());
    let _ = judge::disagreements(&doc, &kernel, "eth0");
});

fn link() -> cni_conformance::snapshot::Link {
    cni_conformance::snapshot::Link {
        ifindex: 2,
        kind: Some("macvlan".into()),
        mac: Some("0a:58:0a:00:00:02".into()),
        mtu: 1500,
        up: true,
        master: None,
        macvlan_mode: Some("bridge".into()),
    }
}
