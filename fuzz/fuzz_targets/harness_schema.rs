//! Schema validation of what a plugin prints (`schema`): results and IPAM
//! results of every version, error objects and VERSION answers, with the
//! semantic rules JSON Schema cannot say.
#![no_main]

use cni_conformance::schema::{Kind, validate, validate_against};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PLUGIN_OUTPUT: [&str; 9] = [
    "result-0.2.json",
    "result-0.4.json",
    "result-1.0.json",
    "result-1.1.json",
    "ipam-result-0.4.json",
    "ipam-result-1.0.json",
    "ipam-result-1.1.json",
    "error.json",
    "version.json",
];

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // As the checks do: the schema of the version the document names.
    let version = doc.get("cniVersion").and_then(Value::as_str).unwrap_or("");
    for kind in [Kind::Result, Kind::IpamResult, Kind::Error, Kind::Version] {
        if let Ok(violations) = validate(kind, version, &doc) {
            for v in violations {
                let _ = v.to_string();
            }
        }
    }
    for name in PLUGIN_OUTPUT {
        let _ = validate_against(name, &doc);
    }
});
