//! Profiles: how to configure a plugin under test. A profile names the
//! plugin's kind, a config template with placeholders, and what it needs
//! (a master link, a preceding interface plugin for chained plugins).
//! Built-in profiles cover the reference plugins and common upstream ones;
//! vendors write theirs in TOML.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

/// What a plugin does, which decides the checks that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Creates the interface `CNI_IFNAME` in the container.
    Interface,
    /// Hands out addresses; called directly or delegated to.
    Ipam,
    /// Modifies what a preceding plugin created.
    Chained,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Interface => "interface",
            PluginKind::Ipam => "ipam",
            PluginKind::Chained => "chained",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub kind: PluginKind,
    /// The plugin's config as JSON text. Placeholders: `{{type}}`,
    /// `{{master}}`, `{{subnet}}` (an IPv4 /24 unless a check needs
    /// another), `{{gateway}}`, `{{data_dir}}`.
    pub config: String,
    /// Whether the sandbox needs a master link named `{{master}}`.
    #[serde(default)]
    pub needs_master: bool,
    /// For chained plugins: the plugin config that runs before it.
    #[serde(default)]
    pub preceding: Option<String>,
    /// State files that are the plugin's bookkeeping, not an attachment's,
    /// and may stay after DEL (file-name patterns, `*` a wildcard).
    #[serde(default)]
    pub bookkeeping: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "no built-in profile {name:?} (built in: {}); a profile file's path needs a `/` or a .toml ending",
        built_in_names()
    )]
    Unknown { name: String },
    #[error(
        "no built-in profile for a plugin named {plugin:?} (built in: {}): write one and pass --profile FILE (see the README)",
        built_in_names()
    )]
    NoneFor { plugin: String },
    #[error("reading profile {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("profile {name}: the config template is not JSON once filled in: {detail}")]
    Template { name: String, detail: String },
}

/// The values placeholders take in one case.
#[derive(Debug, Clone)]
pub struct Fill {
    pub plugin_type: String,
    pub master: String,
    pub subnet: String,
    pub data_dir: String,
}

impl Fill {
    pub fn new(plugin_type: &str) -> Fill {
        Fill {
            plugin_type: plugin_type.into(),
            master: "eth0".into(),
            subnet: "10.88.0.0/24".into(),
            data_dir: "/var/lib/cni/conformance".into(),
        }
    }

    /// The subnet's first host, the usual gateway.
    pub fn gateway(&self) -> String {
        let net = self.subnet.split('/').next().unwrap_or_default();
        let mut octets: Vec<u32> = net.split('.').filter_map(|o| o.parse().ok()).collect();
        if let Some(last) = octets.last_mut() {
            *last += 1;
        }
        octets
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

const BUILT_IN: [(&str, &str); 6] = [
    (
        "macvlan",
        r#"name = "macvlan"
kind = "interface"
needs_master = true
config = '{"type": "{{type}}", "master": "{{master}}", "ipam": {"type": "host-local", "subnet": "{{subnet}}", "dataDir": "{{data_dir}}"}}'
bookkeeping = ["lock", "last_reserved_ip.*", "cni-reference.index"]
"#,
    ),
    (
        "host-local",
        r#"name = "host-local"
kind = "ipam"
config = '{"type": "{{type}}", "ipam": {"type": "{{type}}", "subnet": "{{subnet}}", "dataDir": "{{data_dir}}"}}'
bookkeeping = ["lock", "last_reserved_ip.*", "cni-reference.index"]
"#,
    ),
    (
        "bridge",
        r#"name = "bridge"
kind = "interface"
config = '{"type": "{{type}}", "bridge": "cni-conf0", "isGateway": true, "ipam": {"type": "host-local", "subnet": "{{subnet}}", "dataDir": "{{data_dir}}"}}'
bookkeeping = ["lock", "last_reserved_ip.*", "cni-reference.index"]
"#,
    ),
    (
        "ptp",
        r#"name = "ptp"
kind = "interface"
config = '{"type": "{{type}}", "ipam": {"type": "host-local", "subnet": "{{subnet}}", "dataDir": "{{data_dir}}"}}'
bookkeeping = ["lock", "last_reserved_ip.*", "cni-reference.index"]
"#,
    ),
    (
        "static",
        r#"name = "static"
kind = "ipam"
config = '{"type": "{{type}}", "ipam": {"type": "{{type}}", "addresses": [{"address": "{{gateway}}/24"}]}}'
"#,
    ),
    (
        "tuning",
        r#"name = "tuning"
kind = "chained"
config = '{"type": "{{type}}", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}}'
preceding = '{"type": "ptp", "ipam": {"type": "host-local", "subnet": "{{subnet}}", "dataDir": "{{data_dir}}"}}'
bookkeeping = ["lock", "last_reserved_ip.*", "cni-reference.index"]
"#,
    ),
];

fn built_in_names() -> String {
    BUILT_IN.map(|(n, _)| n).join(", ")
}

/// `*` matches any run of characters; nothing else is special.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

impl Profile {
    /// Whether a state file (its last path component) is bookkeeping.
    pub fn is_bookkeeping(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.bookkeeping.iter().any(|p| matches(p, name))
    }

    /// Whether the profile draws addresses from `{{subnet}}`.
    pub fn has_pool(&self) -> bool {
        self.config.contains("{{subnet}}")
    }

    pub fn built_in(name: &str) -> Option<Profile> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Some(toml::from_str(text).expect("built-in profiles parse"))
    }

    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ProfileError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// `--profile NAME|FILE`, or the built-in profile named like the plugin.
    /// A choice with a `/` or a `.toml` ending (or naming a file) is a file.
    pub fn resolve(choice: Option<&str>, plugin_file_name: &str) -> Result<Profile, ProfileError> {
        match choice {
            Some(c) if c.contains('/') || c.ends_with(".toml") || Path::new(c).is_file() => {
                Profile::from_file(Path::new(c))
            }
            Some(c) => Profile::built_in(c).ok_or_else(|| ProfileError::Unknown { name: c.into() }),
            None => Profile::built_in(plugin_file_name).ok_or_else(|| ProfileError::NoneFor {
                plugin: plugin_file_name.into(),
            }),
        }
    }

    fn fill(&self, text: &str, f: &Fill) -> Result<Value, ProfileError> {
        let filled = text
            .replace("{{type}}", &f.plugin_type)
            .replace("{{master}}", &f.master)
            .replace("{{subnet}}", &f.subnet)
            .replace("{{gateway}}", &f.gateway())
            .replace("{{data_dir}}", &f.data_dir);
        serde_json::from_str(&filled).map_err(|e| ProfileError::Template {
            name: self.name.clone(),
            detail: e.to_string(),
        })
    }

    /// The network configuration for one case: a list from 0.3.0 on (with
    /// the preceding plugin for chained profiles), a single config before.
    pub fn network(&self, version: &str, name: &str, f: &Fill) -> Result<Value, ProfileError> {
        let plugin = self.fill(&self.config, f)?;
        let list = crate::runtime::config::version_key(version)
            >= crate::runtime::config::version_key("0.3.0");
        if !list {
            let mut single = plugin;
            single["cniVersion"] = json!(version);
            single["name"] = json!(name);
            return Ok(single);
        }
        let mut plugins = Vec::new();
        if let Some(p) = &self.preceding {
            plugins.push(self.fill(p, f)?);
        }
        plugins.push(plugin);
        Ok(json!({"cniVersion": version, "name": name, "plugins": plugins}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_fills_in() {
        for (name, _) in BUILT_IN {
            let p = Profile::built_in(name).unwrap();
            for v in ["0.2.0", "1.1.0"] {
                let net = p.network(v, "conf", &Fill::new(name)).unwrap();
                assert_eq!(net["cniVersion"], v, "{name}");
            }
        }
        let tuning = Profile::built_in("tuning")
            .unwrap()
            .network("1.0.0", "c", &Fill::new("tuning"))
            .unwrap();
        assert_eq!(tuning["plugins"][0]["type"], "ptp");
        assert_eq!(Fill::new("x").gateway(), "10.88.0.1");
        let hl = Profile::built_in("host-local").unwrap();
        assert!(
            hl.is_bookkeeping("cni/networks/n/last_reserved_ip.0") && hl.is_bookkeeping("x/lock")
        );
        assert!(!hl.is_bookkeeping("cni/networks/n/10.88.0.2"));
    }
}
