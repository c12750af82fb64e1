//! Network configurations as a runtime loads them (a single-plugin config
//! is a list of one), and the request config each plugin receives.

use serde_json::{Map, Value, json};

use crate::spec::Version;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the network configuration is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("the network configuration is not a JSON object")]
    NotObject,
    #[error("the network configuration has no {0}")]
    Missing(&'static str),
    #[error("plugins[{0}] is not an object with a \"type\"")]
    BadPlugin(usize),
}

#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    pub disable_gc: bool,
    pub plugins: Vec<Map<String, Value>>,
    /// Whether it came as a list (`plugins`) or a single plugin config.
    pub is_list: bool,
}

/// One attachment: what a runtime passes besides the config.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
    /// `CNI_NETNS`; empty for "no namespace" (DEL after teardown).
    pub netns: String,
    /// `CNI_ARGS` pairs.
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, `mac`, `ips`, ...), offered
    /// to the plugins that declare the capability.
    pub capability_args: Map<String, Value>,
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl NetworkConfig {
    pub fn parse(bytes: &[u8]) -> Result<NetworkConfig, ConfigError> {
        let v: Value = serde_json::from_slice(bytes).map_err(ConfigError::NotJson)?;
        let obj = v.as_object().ok_or(ConfigError::NotObject)?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or(ConfigError::Missing("name"))?
            .to_string();
        // An absent cniVersion is 0.1.0, as libcni reads it.
        let cni_version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or(Version::V0_1_0.as_str())
            .to_string();
        let (plugins, is_list) = match obj.get("plugins") {
            Some(Value::Array(list)) => {
                let plugins = list
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        p.as_object()
                            .filter(|o| o.get("type").and_then(Value::as_str).is_some())
                            .cloned()
                            .ok_or(ConfigError::BadPlugin(i))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (plugins, true)
            }
            Some(_) => return Err(ConfigError::BadPlugin(0)),
            None => {
                obj.get("type")
                    .and_then(Value::as_str)
                    .ok_or(ConfigError::Missing("type"))?;
                (vec![obj.clone()], false)
            }
        };
        if plugins.is_empty() {
            return Err(ConfigError::Missing("plugins"));
        }
        Ok(NetworkConfig {
            name,
            cni_version,
            disable_check: truthy(obj.get("disableCheck")),
            disable_gc: truthy(obj.get("disableGC")),
            plugins,
            is_list,
        })
    }

    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins[i]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The `ipam.dataDir`s the plugins name: they write there, so a
    /// sandbox gives them those folders empty.
    pub fn data_dirs(&self) -> Vec<std::path::PathBuf> {
        self.plugins
            .iter()
            .filter_map(|p| p.get("ipam")?.get("dataDir")?.as_str().map(Into::into))
            .collect()
    }

    /// Whether the version has a verb: CHECK from 0.4.0, GC and STATUS
    /// from 1.1.0.
    pub fn version_at_least(&self, v: Version) -> bool {
        self.version().is_some_and(|own| own >= v)
    }

    /// The spec version the config names, if it is one.
    pub fn version(&self) -> Option<Version> {
        self.cni_version.parse().ok()
    }

    /// The config plugin `i` receives (spec §"Deriving the request
    /// configuration"): `name` and `cniVersion` injected, `runtimeConfig`
    /// from its capabilities, `prevResult` when given.
    pub fn request(&self, i: usize, att: Option<&Attachment>, prev: Option<&Value>) -> Value {
        let mut obj = self.plugins[i].clone();
        obj.insert("name".into(), json!(self.name));
        obj.insert("cniVersion".into(), json!(self.cni_version));
        let caps = obj
            .get("capabilities")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if self.is_list && self.version_at_least(Version::V1_0_0) {
            obj.remove("capabilities");
        }
        if let Some(att) = att {
            let rc: Map<String, Value> = att
                .capability_args
                .iter()
                .filter(|(k, _)| caps.get(*k).and_then(Value::as_bool) == Some(true))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // libcni adds runtimeConfig only when something is in it.
            if !rc.is_empty() {
                obj.insert("runtimeConfig".into(), Value::Object(rc));
            }
        }
        if let Some(prev) = prev {
            obj.insert("prevResult".into(), prev.clone());
        }
        Value::Object(obj)
    }

    /// The config GC and STATUS receive: no runtimeConfig, no prevResult.
    pub fn network_request(&self, i: usize, valid: Option<&[(String, String)]>) -> Value {
        let mut v = self.request(i, None, None);
        if let Some(valid) = valid {
            let list: Vec<Value> = valid
                .iter()
                .map(|(id, ifname)| json!({"containerID": id, "ifname": ifname}))
                .collect();
            // Both spellings, as libcni ≥ 1.2.3 sends them.
            v["cni.dev/valid-attachments"] = Value::Array(list.clone());
            v["cni.dev/attachments"] = Value::Array(list);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_config_is_a_list_of_one() {
        let c = NetworkConfig::parse(br#"{"name":"n","type":"macvlan","master":"eth0"}"#).unwrap();
        assert_eq!(
            (c.cni_version.as_str(), c.plugins.len(), c.is_list),
            ("0.1.0", 1, false)
        );
        assert_eq!(c.request(0, None, None)["master"], "eth0");
    }

    #[test]
    fn requests_get_name_version_runtime_config_and_prev_result() {
        let c = NetworkConfig::parse(
            br#"{"cniVersion":"1.0.0","name":"n","disableCheck":"TRUE","plugins":[
                {"type":"a","capabilities":{"mac":true,"ips":false}},{"type":"b"}]}"#,
        )
        .unwrap();
        assert!(c.disable_check);
        let mut caps = Map::new();
        caps.insert("mac".into(), json!("c2:00:00:00:00:01"));
        caps.insert("ips".into(), json!(["10.0.0.5"]));
        let att = Attachment {
            container_id: "c".into(),
            ifname: "eth0".into(),
            netns: "/x".into(),
            args: vec![],
            capability_args: caps,
        };
        let r = c.request(0, Some(&att), Some(&json!({"cniVersion":"1.0.0"})));
        assert_eq!(r["name"], "n");
        assert_eq!(r["cniVersion"], "1.0.0");
        assert_eq!(r["runtimeConfig"], json!({"mac": "c2:00:00:00:00:01"}));
        assert!(r.get("capabilities").is_none());
        assert_eq!(r["prevResult"]["cniVersion"], "1.0.0");
        assert!(
            c.request(1, Some(&att), None)
                .get("runtimeConfig")
                .is_none()
        );
        let gc = c.network_request(1, Some(&[("c".into(), "eth0".into())]));
        assert_eq!(gc["cni.dev/valid-attachments"], gc["cni.dev/attachments"]);
    }

    #[test]
    fn an_unknown_version_has_no_verbs_of_later_versions() {
        let c = NetworkConfig::parse(br#"{"cniVersion":"9.9.9","name":"n","type":"x"}"#).unwrap();
        assert_eq!(c.version(), None);
        assert!(!c.version_at_least(Version::V0_4_0));
    }
}
