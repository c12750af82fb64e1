//! The network configuration on stdin: the keys every plugin shares.
//! Plugin-specific keys are read by each plugin from [`NetConf::json`].

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde_json::{Map, Value};

use super::env::is_valid_identifier;
use super::error::CniError;
use super::result::CniResult;
use super::version::Version;

#[derive(Debug, Clone)]
pub struct NetConf {
    /// The exact bytes received, handed unchanged to delegated plugins.
    pub raw: Vec<u8>,
    pub json: Map<String, Value>,
    pub name: String,
    pub version: Version,
}

impl NetConf {
    /// Decodes and validates the common keys: JSON (code 6), `cniVersion`
    /// (absent means 0.1.0; unsupported is code 1), `name` (code 7).
    pub fn parse(raw: Vec<u8>) -> Result<NetConf, CniError> {
        let value: Value = serde_json::from_slice(&raw).map_err(|e| {
            CniError::decode(format!("the network configuration is not valid JSON: {e}"))
        })?;
        let Value::Object(json) = value else {
            return Err(CniError::decode(
                "the network configuration is not a JSON object",
            ));
        };
        let version = match json.get("cniVersion") {
            None => Version::V0_1_0,
            Some(Value::String(s)) if s.is_empty() => Version::V0_1_0,
            Some(Value::String(s)) => Version::parse(s).ok_or_else(|| {
                let all: Vec<&str> = Version::ALL.iter().map(|v| v.as_str()).collect();
                CniError::incompatible(format!("cniVersion {s:?} is not supported"))
                    .with_details(format!("config is {s:?}, plugin supports {all:?}"))
            })?,
            Some(_) => return Err(CniError::decode("cniVersion must be a string")),
        };
        // From here on the error answers in the config's version.
        let in_version = |mut e: CniError| {
            e.cni_version = Some(version.to_string());
            e
        };
        let name = match json.get("name") {
            Some(Value::String(n)) => n.clone(),
            None => {
                return Err(in_version(CniError::config(
                    "name: the network name is missing",
                )));
            }
            Some(_) => return Err(in_version(CniError::config("name: must be a string"))),
        };
        if !is_valid_identifier(&name) {
            return Err(in_version(CniError::config(
                "name: must start with a letter or digit and contain only letters, digits, '_', '.' and '-'",
            )
            .with_details(name)));
        }
        Ok(NetConf {
            raw,
            json,
            name,
            version,
        })
    }

    /// Deserialises the whole configuration into a plugin's own type; a type
    /// mismatch is an invalid configuration (code 7) naming the field.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CniError> {
        T::deserialize((&self.json).into_deserializer())
            .map_err(|e| CniError::config(format!("invalid network configuration: {e}")))
    }

    /// `runtimeConfig`, also under the `RuntimeConfig` spelling that Go's
    /// case-insensitive decoding accepts (upstream's own tests use it).
    pub fn runtime_config(&self) -> Option<&Map<String, Value>> {
        self.json
            .get("runtimeConfig")
            .or_else(|| self.json.get("RuntimeConfig"))
            .and_then(Value::as_object)
    }

    /// `prevResult`, read in this configuration's version.
    pub fn prev_result(&self) -> Result<Option<CniResult>, CniError> {
        match self.json.get("prevResult") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => CniResult::decode(v, self.version).map(Some),
        }
    }

    /// `args.cni.<key>`.
    pub fn cni_arg(&self, key: &str) -> Option<&Value> {
        self.json.get("args")?.get("cni")?.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::code;

    fn parse(s: &str) -> Result<NetConf, CniError> {
        NetConf::parse(s.as_bytes().to_vec())
    }

    #[test]
    fn missing_version_is_010() {
        assert_eq!(parse(r#"{"name":"n"}"#).unwrap().version, Version::V0_1_0);
    }

    #[test]
    fn codes_for_bad_input() {
        assert_eq!(parse("{not json").unwrap_err().code, code::DECODE_FAILURE);
        assert_eq!(parse("").unwrap_err().code, code::DECODE_FAILURE);
        assert_eq!(
            parse(r#"{"name":"n","cniVersion":9}"#).unwrap_err().code,
            code::DECODE_FAILURE
        );
        let e = parse(r#"{"name":"n","cniVersion":"9.9.9"}"#).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(e.msg.contains("cniVersion"));
        let e = parse(r#"{"cniVersion":"1.0.0"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.msg.starts_with("name")),
            (code::INVALID_CONFIG, true)
        );
        let e = parse(r#"{"cniVersion":"1.0.0","name":"../x"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
    }

    #[test]
    fn runtime_config_either_spelling() {
        let c = parse(r#"{"name":"n","RuntimeConfig":{"ips":["10.0.0.1"]}}"#).unwrap();
        assert!(c.runtime_config().unwrap().contains_key("ips"));
    }
}
