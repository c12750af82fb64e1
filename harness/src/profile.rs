//! Profiles: how to configure a plugin under test. A profile names the
//! plugin's kind, what it can do (its IPAM, an address pool, a master
//! link) and a config template with placeholders. The built-in profiles
//! are the TOML files of `harness/profiles/`, compiled in; vendors write
//! theirs in the same format.

use std::fmt;
use std::path::Path;

use ipnetwork::Ipv4Network;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::spec::Version;

/// What a plugin does, which decides the checks that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Creates the interface `CNI_IFNAME` in the container.
    Interface,
    /// Hands out addresses; called directly or delegated to.
    Ipam,
    /// Modifies what a preceding plugin created.
    Chained,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Interface => "interface",
            PluginKind::Ipam => "ipam",
            PluginKind::Chained => "chained",
        })
    }
}

/// Where the plugin's addresses come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipam {
    /// It calls the IPAM plugin its config's `ipam.type` names (which the
    /// harness's spy can stand in for).
    Delegated,
    /// It is the IPAM plugin.
    #[serde(rename = "self")]
    Itself,
    /// It assigns no addresses.
    None,
}

/// A profile as written: the TOML format of `harness/profiles/*.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    kind: PluginKind,
    ipam: Ipam,
    pool: bool,
    #[serde(default)]
    master: bool,
    config: String,
    #[serde(default)]
    preceding: Option<String>,
    #[serde(default)]
    bookkeeping: Vec<String>,
    #[serde(default)]
    shared: Vec<String>,
    #[serde(default = "default_ifname")]
    ifname: String,
    #[serde(default)]
    one_attachment: bool,
    #[serde(default)]
    runtime_config: Option<String>,
    #[serde(default)]
    setup: Option<String>,
    #[serde(default)]
    teardown: Option<String>,
}

fn default_ifname() -> String {
    "eth0".into()
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub kind: PluginKind,
    pub ipam: Ipam,
    /// Whether its addresses come from `{{subnet}}`, so pool checks
    /// (exhaustion, concurrency, GC) apply.
    pub pool: bool,
    /// Whether the sandbox must create a master link named `{{master}}`.
    pub master: bool,
    /// The plugin's config, placeholders still in its strings.
    config: Value,
    /// For chained plugins: the plugin config that runs before it.
    preceding: Option<Value>,
    /// State files that are the network's bookkeeping, not an
    /// attachment's, and may stay after DEL (file-name patterns, `*` a
    /// wildcard).
    pub bookkeeping: Vec<String>,
    /// Kernel state the network keeps once made, not an attachment's (a
    /// bridge, its address, forwarding sysctls): patterns over what a
    /// snapshot calls it (`link cni-conf0`, `sysctl net/ipv4/ip_forward`,
    /// `address * on cni-conf0`), `*` a wildcard.
    pub shared: Vec<String>,
    /// `CNI_IFNAME` of the plugin's attachments (`lo` for loopback).
    pub ifname: String,
    /// Whether a sandbox can hold only one of its attachments at a time
    /// (host-device moves the one master link into the container).
    pub one_attachment: bool,
    /// What a runtime passes as capability arguments (`portMappings`,
    /// `bandwidth`, ...), offered to the plugins that declare them.
    pub runtime_config: serde_json::Map<String, Value>,
    /// Shell commands run in each sandbox's host namespace (and mount
    /// namespace) after it is made and before it goes: the agent a
    /// daemon-backed plugin talks to. Their failures are harness errors.
    pub setup: Option<String>,
    pub teardown: Option<String>,
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
    #[error("reading profile {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {path}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("profile {name}: {what} is not JSON")]
    Template {
        name: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("profile {name}: {why}")]
    Inconsistent { name: String, why: String },
}

/// The values placeholders take in one case.
#[derive(Debug, Clone)]
pub struct Fill {
    pub plugin_type: String,
    pub master: String,
    pub subnet: Ipv4Network,
    pub data_dir: String,
    /// Tells networks of one case apart (`0`, `1`): for resources a
    /// profile names per network, such as a bridge.
    pub net: String,
}

impl Fill {
    pub fn new(plugin_type: &str) -> Fill {
        Fill {
            plugin_type: plugin_type.into(),
            master: "eth0".into(),
            subnet: "10.88.0.0/24".parse().expect("a valid subnet"),
            data_dir: "/var/lib/cni/conformance".into(),
            net: "0".into(),
        }
    }

    /// The subnet's first host, the usual gateway.
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        self.host(1)
    }

    /// The subnet's `n`th address (0 is the network address).
    pub fn host(&self, n: u32) -> std::net::Ipv4Addr {
        self.subnet.nth(n).expect("the host is in the subnet")
    }

    fn placeholders(&self) -> [(&'static str, String); 6] {
        [
            ("{{net}}", self.net.clone()),
            ("{{type}}", self.plugin_type.clone()),
            ("{{master}}", self.master.clone()),
            ("{{subnet}}", self.subnet.to_string()),
            ("{{gateway}}", self.gateway().to_string()),
            ("{{data_dir}}", self.data_dir.clone()),
        ]
    }
}

/// The built-in profiles: the files of `harness/profiles/`.
const BUILT_IN: [(&str, &str); 12] = [
    ("macvlan", include_str!("../profiles/macvlan.toml")),
    ("host-local", include_str!("../profiles/host-local.toml")),
    ("bridge", include_str!("../profiles/bridge.toml")),
    ("ptp", include_str!("../profiles/ptp.toml")),
    ("static", include_str!("../profiles/static.toml")),
    ("tuning", include_str!("../profiles/tuning.toml")),
    ("portmap", include_str!("../profiles/portmap.toml")),
    ("bandwidth", include_str!("../profiles/bandwidth.toml")),
    ("firewall", include_str!("../profiles/firewall.toml")),
    ("sbr", include_str!("../profiles/sbr.toml")),
    ("host-device", include_str!("../profiles/host-device.toml")),
    ("loopback", include_str!("../profiles/loopback.toml")),
];

/// The built-in profiles' names, for help and errors.
pub fn built_in_names() -> String {
    BUILT_IN.map(|(n, _)| n).join(", ")
}

/// `*` matches any run of characters (any number of them); nothing else
/// is special.
fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether any string in `v` contains `needle`.
fn mentions(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|x| mentions(x, needle)),
        Value::Object(o) => o.values().any(|x| mentions(x, needle)),
        _ => false,
    }
}

/// `v` with every placeholder in its strings replaced; what a value holds
/// (a `"`, a `\`) cannot break the document.
fn filled(v: &Value, f: &Fill) -> Value {
    match v {
        Value::String(s) => {
            let mut s = s.clone();
            for (key, value) in f.placeholders() {
                s = s.replace(key, &value);
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| filled(x, f)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), filled(x, f))).collect())
        }
        other => other.clone(),
    }
}

impl Profile {
    fn parse(text: &str, path: &str) -> Result<Profile, ProfileError> {
        let p: ProfileFile = toml::from_str(text).map_err(|source| ProfileError::Parse {
            path: path.into(),
            source,
        })?;
        let json = |what, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|source| ProfileError::Template {
                name: p.name.clone(),
                what,
                source,
            })
        };
        let config = json("config", &p.config)?;
        let preceding = p
            .preceding
            .as_deref()
            .map(|t| json("preceding", t))
            .transpose()?;
        let inconsistent = |why: &str| ProfileError::Inconsistent {
            name: p.name.clone(),
            why: why.into(),
        };
        if !config.is_object() {
            return Err(inconsistent("config is not a JSON object"));
        }
        if p.pool && !mentions(&config, "{{subnet}}") {
            return Err(inconsistent(
                "pool = true, but the config draws nothing from {{subnet}}",
            ));
        }
        if p.ipam == Ipam::Delegated && !config["ipam"]["type"].is_string() {
            return Err(inconsistent(
                "ipam = \"delegated\", but the config has no ipam.type",
            ));
        }
        if p.master && !mentions(&config, "{{master}}") {
            return Err(inconsistent(
                "master = true, but the config names no {{master}}",
            ));
        }
        let runtime_config = match p
            .runtime_config
            .as_deref()
            .map(|t| json("runtime_config", t))
        {
            None => serde_json::Map::new(),
            Some(v) => match v? {
                Value::Object(o) => o,
                _ => return Err(inconsistent("runtime_config is not a JSON object")),
            },
        };
        if (p.kind == PluginKind::Chained) != preceding.is_some() {
            return Err(inconsistent(
                "a chained plugin needs `preceding`, and only a chained one has it",
            ));
        }
        Ok(Profile {
            name: p.name,
            kind: p.kind,
            ipam: p.ipam,
            pool: p.pool,
            master: p.master,
            config,
            preceding,
            bookkeeping: p.bookkeeping,
            shared: p.shared,
            ifname: p.ifname,
            one_attachment: p.one_attachment,
            runtime_config,
            setup: p.setup,
            teardown: p.teardown,
        })
    }

    /// Whether a kernel object (as a snapshot names it) is the network's
    /// shared state.
    pub fn is_shared(&self, object: &str) -> bool {
        self.shared.iter().any(|p| matches(p, object))
    }

    /// Whether a state file (its last path component) is bookkeeping.
    pub fn is_bookkeeping(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.bookkeeping.iter().any(|p| matches(p, name))
    }

    /// A profile from its TOML text (`path` only names it in errors), as
    /// [`Profile::from_file`] reads one; for fuzzing the parser alone.
    #[doc(hidden)]
    pub fn from_text(text: &str, path: &str) -> Result<Profile, ProfileError> {
        Profile::parse(text, path)
    }

    pub fn built_in(name: &str) -> Option<Profile> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Some(Profile::parse(text, name).expect("built-in profiles are valid"))
    }

    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Profile::parse(&text, &path.display().to_string())
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

    /// The plugin's own config, filled in.
    pub fn plugin_config(&self, f: &Fill) -> Value {
        filled(&self.config, f)
    }

    /// The network configuration for one case: a list when the version has
    /// lists (with the preceding plugin for chained profiles), a single
    /// config before.
    pub fn network(&self, version: Version, name: &str, f: &Fill) -> Value {
        let plugin = self.plugin_config(f);
        if !version.has_lists() {
            let mut single = plugin;
            single["cniVersion"] = json!(version);
            single["name"] = json!(name);
            return single;
        }
        let mut plugins = Vec::new();
        if let Some(p) = &self.preceding {
            plugins.push(filled(p, f));
        }
        plugins.push(plugin);
        json!({"cniVersion": version, "name": name, "plugins": plugins})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_fills_in() {
        for (name, _) in BUILT_IN {
            let p = Profile::built_in(name).unwrap();
            for v in [Version::V0_2_0, Version::V1_1_0] {
                let net = p.network(v, "conf", &Fill::new(name));
                assert_eq!(net["cniVersion"], v.as_str(), "{name}");
                assert!(!net.to_string().contains("{{"), "{name}: {net}");
            }
        }
        let tuning = Profile::built_in("tuning").unwrap().network(
            Version::V1_0_0,
            "c",
            &Fill::new("tuning"),
        );
        assert_eq!(tuning["plugins"][0]["type"], "ptp");
        assert_eq!(Fill::new("x").gateway().to_string(), "10.88.0.1");
        let hl = Profile::built_in("host-local").unwrap();
        assert!(
            hl.is_bookkeeping("cni/networks/n/last_reserved_ip.0") && hl.is_bookkeeping("x/lock")
        );
        assert!(!hl.is_bookkeeping("cni/networks/n/10.88.0.2"));
        let br = Profile::built_in("bridge").unwrap();
        assert!(br.is_shared("address 10.88.0.1/24 on cni-conf0"));
        assert!(br.is_shared("sysctl net/ipv4/conf/cni-conf0/forwarding"));
        assert!(!br.is_shared("link veth1234"));
        assert!(matches("a*b*c", "axxbyyc") && !matches("a*b*c", "axxc") && matches("*", ""));
    }

    #[test]
    fn placeholders_are_filled_inside_strings_whatever_the_value_holds() {
        let p = Profile::parse(
            r#"name = "q"
kind = "ipam"
ipam = "self"
pool = false
config = '{"type": "{{type}}", "ipam": {"type": "{{type}}", "dataDir": "{{data_dir}}/x"}}'
"#,
            "q.toml",
        )
        .unwrap();
        let mut f = Fill::new("odd\"name\\");
        f.data_dir = "/tmp/a \"b\"".into();
        let net = p.network(Version::V1_0_0, "n", &f);
        assert_eq!(net["plugins"][0]["type"], "odd\"name\\");
        assert_eq!(net["plugins"][0]["ipam"]["dataDir"], "/tmp/a \"b\"/x");
    }

    #[test]
    fn inconsistent_profiles_are_refused_with_the_reason() {
        let profile = |fields: &str| {
            let e = Profile::parse(
                &format!("name = \"v\"\nkind = \"interface\"\n{fields}"),
                "v.toml",
            )
            .unwrap_err();
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            text
        };
        assert!(
            profile("ipam = \"delegated\"\npool = true\nconfig = '{\"type\": \"v\"}'")
                .contains("draws nothing from {{subnet}}")
        );
        assert!(
            profile("ipam = \"delegated\"\npool = false\nconfig = '{\"type\": \"v\"}'")
                .contains("no ipam.type")
        );
        assert!(
            profile("ipam = \"none\"\npool = false\nconfig = '{\"type\": '").contains("not JSON")
        );
        assert!(profile("ipam = \"none\"\nconfig = '{}'").contains("missing field `pool`"));
    }
}
