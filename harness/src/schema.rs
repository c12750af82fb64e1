//! Validation of every document the protocol exchanges against the JSON
//! Schemas in `schemas/` (compiled into the binary), plus the rules JSON
//! Schema cannot say (an `ips[].interface` index beyond `interfaces`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    Config,
    Conflist,
    Result,
    IpamResult,
    Error,
    Version,
    Gc,
    Report,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("no {kind} schema for cniVersion {version:?}")]
    NoSchema { kind: String, version: String },
}

/// Every schema file, by name, as shipped in `schemas/`.
pub const SCHEMAS: [(&str, &str); 13] = [
    ("config.json", include_str!("../../schemas/config.json")),
    ("conflist.json", include_str!("../../schemas/conflist.json")),
    (
        "result-0.2.json",
        include_str!("../../schemas/result-0.2.json"),
    ),
    (
        "result-0.4.json",
        include_str!("../../schemas/result-0.4.json"),
    ),
    (
        "result-1.0.json",
        include_str!("../../schemas/result-1.0.json"),
    ),
    (
        "result-1.1.json",
        include_str!("../../schemas/result-1.1.json"),
    ),
    (
        "ipam-result-0.4.json",
        include_str!("../../schemas/ipam-result-0.4.json"),
    ),
    (
        "ipam-result-1.0.json",
        include_str!("../../schemas/ipam-result-1.0.json"),
    ),
    (
        "ipam-result-1.1.json",
        include_str!("../../schemas/ipam-result-1.1.json"),
    ),
    ("error.json", include_str!("../../schemas/error.json")),
    ("version.json", include_str!("../../schemas/version.json")),
    ("gc.json", include_str!("../../schemas/gc.json")),
    ("report.json", include_str!("../../schemas/report.json")),
];

/// The schema file for a kind in a version. Version-independent kinds
/// ignore `version`.
pub fn schema_name(kind: Kind, version: &str) -> Result<&'static str, SchemaError> {
    use crate::spec::Version;
    // One result schema per shape: 0.1-0.2 (ip4/ip6), 0.3-0.4 (lists with
    // ips[].version), 1.0 and 1.1.
    let family = version.parse::<Version>().ok().map(|v| match v {
        Version::V0_1_0 | Version::V0_2_0 => "0.2",
        Version::V0_3_0 | Version::V0_3_1 | Version::V0_4_0 => "0.4",
        Version::V1_0_0 => "1.0",
        Version::V1_1_0 => "1.1",
    });
    let none = || SchemaError::NoSchema {
        kind: format!("{kind:?}"),
        version: version.into(),
    };
    Ok(match (kind, family) {
        (Kind::Config, _) => "config.json",
        (Kind::Conflist, _) => "conflist.json",
        (Kind::Error, _) => "error.json",
        (Kind::Version, _) => "version.json",
        (Kind::Gc, _) => "gc.json",
        (Kind::Report, _) => "report.json",
        // Before 0.3.0 an IPAM result has the same shape as any result.
        (Kind::Result | Kind::IpamResult, Some("0.2")) => "result-0.2.json",
        (Kind::Result, Some("0.4")) => "result-0.4.json",
        (Kind::Result, Some("1.0")) => "result-1.0.json",
        (Kind::Result, Some("1.1")) => "result-1.1.json",
        (Kind::IpamResult, Some("0.4")) => "ipam-result-0.4.json",
        (Kind::IpamResult, Some("1.0")) => "ipam-result-1.0.json",
        (Kind::IpamResult, Some("1.1")) => "ipam-result-1.1.json",
        _ => return Err(none()),
    })
}

/// `cidr`: an address and a prefix length that fits its family.
fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(len)) = (ip.parse::<IpAddr>(), len.parse::<u8>()) else {
        return false;
    };
    len <= if ip.is_ipv4() { 32 } else { 128 }
}

fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

fn compile(text: &str) -> Validator {
    let schema: Value = serde_json::from_str(text).expect("shipped schemas are JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .with_format("cidr", is_cidr)
        .with_format("ip", is_ip)
        .build(&schema)
        .expect("shipped schemas compile")
}

fn validator(name: &str) -> &'static Validator {
    static CACHE: OnceLock<HashMap<&'static str, Validator>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| SCHEMAS.iter().map(|(n, t)| (*n, compile(t))).collect());
    &cache[name]
}

/// One rule a document breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value ("" for the document itself).
    pub pointer: String,
    /// The schema keyword, or `semantic:<rule>` for rules outside JSON Schema.
    pub rule: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {} [{}]", self.message, self.rule)
    }
}

/// Every violation of `doc` as a `kind` in `version`; empty when valid.
pub fn validate(kind: Kind, version: &str, doc: &Value) -> Result<Vec<Violation>, SchemaError> {
    Ok(validate_against(schema_name(kind, version)?, doc))
}

/// Every violation of `doc` against the schema file `name` (one of
/// [`SCHEMAS`]); results also get the semantic checks.
pub fn validate_against(name: &str, doc: &Value) -> Vec<Violation> {
    let mut out: Vec<Violation> = validator(name)
        .iter_errors(doc)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let rule = e.kind().keyword().to_string();
            // A `false` subschema is how the schemas say "this field does
            // not exist in this version"; say so in words.
            let message = if rule == "falseSchema" {
                let field = pointer.rsplit('/').next().unwrap_or_default();
                format!(
                    "{field:?} is not part of this version's {}",
                    name.trim_end_matches(".json")
                )
            } else {
                e.to_string()
            };
            Violation {
                pointer,
                rule,
                message,
            }
        })
        .collect();
    if name.starts_with("result-") {
        out.extend(interface_indexes(doc));
    }
    out
}

/// `ips[].interface` must index `interfaces`.
fn interface_indexes(doc: &Value) -> Vec<Violation> {
    let count = doc
        .get("interfaces")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ips = doc
        .get("ips")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    ips.iter()
        .enumerate()
        .filter_map(|(i, ip)| {
            let n = ip.get("interface")?;
            // An integral number too large for u64 (1e308) is out of range
            // too; a negative or fractional one is the schema's to report.
            let index = match (n.as_u64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 => n.to_string(),
                _ => return None,
            };
            let beyond = n.as_u64().is_none_or(|i| i >= count as u64);
            beyond.then(|| Violation {
                pointer: format!("/ips/{i}/interface"),
                rule: "semantic:interface-index".into(),
                message: format!(
                    "interface index {index} is beyond the {count} interface(s) listed"
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_is_valid_draft_2020_12() {
        for (name, text) in SCHEMAS {
            let schema: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name}"
            );
            if let Err(e) = jsonschema::meta::validate(&schema) {
                panic!("{name} is not a valid schema: {e}");
            }
        }
    }

    #[test]
    fn formats() {
        assert!(is_cidr("10.1.2.3/24") && is_cidr("2001:db8::1/128") && is_cidr("0.0.0.0/0"));
        assert!(!is_cidr("10.1.2.3") && !is_cidr("10.1.2.3/33") && !is_cidr("zz/8"));
        assert!(is_ip("fe80::1") && !is_ip("10.1.2.3/24"));
    }

    #[test]
    fn an_enormous_interface_index_is_reported() {
        let doc = json!({"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}],
                         "ips":[{"address":"10.0.0.2/24","interface":1e308}]});
        let v = interface_indexes(&doc);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("1e+308"), "{}", v[0].message);
    }

    #[test]
    fn interface_index_beyond_the_list_is_reported() {
        let doc = json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],
                         "ips":[{"address":"10.0.0.2/24","interface":0},{"address":"10.0.0.3/24","interface":1}]});
        let v = validate(Kind::Result, "1.0.0", &doc).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].pointer.as_str(), v[0].rule.as_str()),
            ("/ips/1/interface", "semantic:interface-index")
        );
    }

    #[test]
    fn unknown_versions_have_no_result_schema() {
        assert!(schema_name(Kind::Result, "9.9.9").is_err());
        assert_eq!(
            schema_name(Kind::IpamResult, "0.2.0").unwrap(),
            "result-0.2.json"
        );
    }
}
