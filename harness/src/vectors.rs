//! Vectors: small data files (a config, an environment, a sequence of
//! verbs) replayed against a plugin into a normalised transcript. The
//! reference plugins' transcripts are insta snapshots in
//! `vectors/snapshots/`; any plugin's transcript can be compared with them.
//!
//! Every vector runs in a fresh sandbox, so stores start empty and
//! addresses are deterministic; MACs, namespace paths and the sandbox
//! folder are redacted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::runtime::{Attachment, Exit, NetworkConfig, Runtime, Step};
use crate::sandbox::{Sandbox, SandboxError, SandboxOptions, Scope};
use crate::spec::{Verb, Version};

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a vector")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("vector {name}: {detail}")]
    Bad { name: String, detail: String },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("vector {name}: {source}")]
    Exec {
        name: String,
        #[source]
        source: crate::runtime::exec::ExecError,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vector {
    #[serde(skip)]
    pub name: String,
    pub description: String,
    /// The network configuration; `$VECTORS` in strings is the vectors folder.
    pub config: Value,
    /// Make the master the config names (default true).
    #[serde(default = "yes")]
    pub make_master: bool,
    /// `ip` commands run before the steps, each `[scope, args...]` with
    /// scope `host` or `container` (e.g. a link already named eth0).
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    pub steps: Vec<StepSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepSpec {
    pub verb: String,
    #[serde(default)]
    pub container_id: Option<String>,
    #[serde(default)]
    pub ifname: Option<String>,
    /// `CNI_ARGS`.
    #[serde(default)]
    pub args: Option<String>,
    #[serde(default)]
    pub capability_args: Map<String, Value>,
    /// Environment overrides: a string sets, `null` unsets.
    #[serde(default)]
    pub env: Map<String, Value>,
    /// Raw stdin instead of the derived request config.
    #[serde(default)]
    pub stdin: Option<String>,
    /// GC: the attachments still valid, as `[containerID, ifname]` pairs.
    #[serde(default)]
    pub valid: Vec<(String, String)>,
    /// Merged into the request config (e.g. a changed `mode` for CHECK);
    /// `$NETNS` in strings is the container's namespace path.
    #[serde(default)]
    pub patch: Map<String, Value>,
}

/// Every `*.json` vector in `dir`, by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Vector>, VectorError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| VectorError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|source| VectorError::Read {
                path: p.clone(),
                source,
            })?;
            let mut v: Vector =
                serde_json::from_str(&text).map_err(|source| VectorError::Parse {
                    path: p.clone(),
                    source,
                })?;
            v.name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok(v)
        })
        .collect()
}

fn substitute(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, from, to)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replays `v` against the plugins in `cni_path`; its normalised transcript.
pub fn replay(v: &Vector, cni_path: &[PathBuf], vectors_dir: &Path) -> Result<Value, VectorError> {
    let bad = |detail: String| VectorError::Bad {
        name: v.name.clone(),
        detail,
    };
    let config = substitute(&v.config, "$VECTORS", &vectors_dir.display().to_string());
    let net =
        NetworkConfig::parse(config.to_string().as_bytes()).map_err(|e| bad(e.to_string()))?;
    let master = net.plugins[0]
        .get("master")
        .and_then(Value::as_str)
        .filter(|_| v.make_master)
        .map(str::to_string);
    let mut sb = Sandbox::new(&SandboxOptions {
        master,
        state_dirs: net.data_dirs(),
        ..Default::default()
    })?;
    let c = sb.add_container("ctr")?;
    let netns = sb.container(c).proc_path();
    for cmd in &v.setup {
        let scope = match cmd.first().map(String::as_str) {
            Some("host") => Scope::Host,
            Some("container") => Scope::Container(c),
            other => return Err(bad(format!("setup scope {other:?}: use host or container"))),
        };
        let args: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
        sb.ip(scope, &args)?;
    }
    let rt = Runtime::new(&sb, cni_path.to_vec(), Duration::from_secs(30));
    let plugin = net.plugin_type(0).to_string();
    let exec_err = |source| VectorError::Exec {
        name: v.name.clone(),
        source,
    };
    // The result cache a runtime keeps, by attachment.
    let mut cache: Map<String, Value> = Map::new();
    let mut steps = Vec::new();
    for spec in &v.steps {
        let att = Attachment {
            container_id: spec.container_id.clone().unwrap_or_else(|| "c1".into()),
            ifname: spec.ifname.clone().unwrap_or_else(|| "eth0".into()),
            netns: netns.clone(),
            args: spec
                .args
                .as_deref()
                .unwrap_or_default()
                .split(';')
                .filter_map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect(),
            capability_args: spec.capability_args.clone(),
        };
        let key = format!("{}/{}", att.container_id, att.ifname);
        // A verb the spec does not know (FROB) is sent as CNI_COMMAND as is.
        let verb: Option<Verb> = spec.verb.parse().ok();
        let prev = match verb {
            Some(Verb::Check | Verb::Del) if net.version_at_least(Version::V0_4_0) => {
                cache.get(&key).cloned()
            }
            _ => None,
        };
        let mut request = match verb {
            Some(Verb::Gc) => net.network_request(0, Some(&spec.valid)),
            Some(Verb::Status) => net.network_request(0, None),
            Some(Verb::Version) => json!({"cniVersion": net.cni_version}),
            _ => net.request(0, Some(&att), prev.as_ref()),
        };
        for (k, val) in &spec.patch {
            request[k] = substitute(val, "$NETNS", &netns);
        }
        let per_attachment = verb.is_some_and(Verb::per_attachment);
        let as_verb = verb.unwrap_or(Verb::Add);
        let mut env = rt.env_for(as_verb, per_attachment.then_some(&att));
        env.retain(|(k, _)| k != "CNI_COMMAND");
        env.push(("CNI_COMMAND".into(), spec.verb.clone()));
        for (k, val) in &spec.env {
            env.retain(|(name, _)| name != k);
            if let Some(s) = val.as_str() {
                env.push((k.clone(), s.to_string()));
            }
        }
        let step = match &spec.stdin {
            Some(raw) => rt.invoke_raw(&plugin, as_verb, raw.as_bytes(), env),
            None => rt.invoke(&plugin, as_verb, request, env),
        }
        .map_err(exec_err)?;
        if verb == Some(Verb::Add) && step.outcome.success() {
            if let Some(r) = step.outcome.json() {
                cache.insert(key.clone(), r);
            }
        }
        if verb == Some(Verb::Del) && step.outcome.success() {
            cache.remove(&key);
        }
        steps.push(transcribe(&step));
    }
    let mut transcript = json!({"description": v.description, "steps": steps});
    transcript = substitute(&transcript, &netns, "[netns]");
    transcript = substitute(&transcript, &sb.dir().display().to_string(), "[sandbox]");
    transcript = substitute(&transcript, &vectors_dir.display().to_string(), "[vectors]");
    for dir in cni_path {
        transcript = substitute(&transcript, &dir.display().to_string(), "[cni-path]");
    }
    Ok(redact_macs(transcript))
}

fn transcribe(step: &Step) -> Value {
    let exit = match step.outcome.exit {
        Exit::Code(c) => json!(c),
        Exit::Signal(s) => json!(format!("signal {s}")),
        Exit::TimedOut => json!("timeout"),
    };
    let text = step.outcome.stdout_text();
    let output = if text.trim().is_empty() {
        Value::Null
    } else {
        step.outcome.json().unwrap_or_else(|| json!({"text": text}))
    };
    // The command as sent, which may be one the spec does not know.
    let verb = step
        .env
        .iter()
        .find(|(k, _)| k == "CNI_COMMAND")
        .map_or(step.verb.as_str(), |(_, v)| v.as_str());
    json!({"verb": verb, "exit": exit, "output": output})
}

/// Replaces every colon-separated 6-byte hex MAC inside `s`.
fn redact_macs_in(s: &str) -> String {
    let b = s.as_bytes();
    let is_hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    let mac_at = |i: usize| {
        (0..6).all(|k| {
            is_hex(i + 3 * k)
                && is_hex(i + 3 * k + 1)
                && (k == 5 || b.get(i + 3 * k + 2) == Some(&b':'))
        })
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        // A MAC starts at a boundary and is not followed by more hex.
        if (i == 0 || !b[i - 1].is_ascii_hexdigit() && b[i - 1] != b':')
            && mac_at(i)
            && !is_hex(i + 17)
        {
            out.push_str("[mac]");
            i += 17;
        } else {
            out.push(s[i..].chars().next().expect("in bounds"));
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

fn redact_macs(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(redact_macs_in(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(redact_macs).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, x)| (k, redact_macs(x))).collect())
        }
        other => other,
    }
}

/// The transcript stored in an insta snapshot file (`.snap`).
pub fn read_snapshot(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    // Header between the first two `---` lines, then the JSON.
    let body = text.splitn(3, "---\n").nth(2)?;
    serde_json::from_str(body).ok()
}

/// Where `actual` differs from `expected`, as JSON pointers. Error
/// messages are a plugin's own wording and are not compared.
pub fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("", expected, actual, &mut out);
    out
}

fn diff_at(at: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            let is_error = eo.contains_key("code") && eo.contains_key("msg");
            let keys: std::collections::BTreeSet<&String> = eo.keys().chain(ao.keys()).collect();
            for k in keys {
                if is_error && (k == "msg" || k == "details") {
                    continue;
                }
                match (eo.get(k), ao.get(k)) {
                    (Some(x), Some(y)) => diff_at(&format!("{at}/{k}"), x, y, out),
                    (Some(_), None) => out.push(format!("{at}/{k} missing")),
                    (None, Some(_)) => out.push(format!("{at}/{k} unexpected")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (x, y)) in ea.iter().zip(aa).enumerate() {
                diff_at(&format!("{at}/{i}"), x, y, out);
            }
        }
        _ if e == a => {}
        _ => out.push(format!("{at}: expected {e}, got {a}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_redacted_and_error_wording_is_not_compared() {
        let v = redact_macs(
            json!({"interfaces": [{"mac": "0a:58:0a:01:00:02", "name": "eth0"}],
                                   "msg": "MAC c2:00:00:00:00:99, not fd00::1 or 10:20"}),
        );
        assert_eq!(
            v,
            json!({"interfaces": [{"mac": "[mac]", "name": "eth0"}], "msg": "MAC [mac], not fd00::1 or 10:20"})
        );
        let e = json!({"steps": [{"output": {"code": 7, "msg": "ours"}}]});
        assert!(
            differences(
                &e,
                &json!({"steps": [{"output": {"code": 7, "msg": "theirs"}}]})
            )
            .is_empty()
        );
        assert_eq!(
            differences(
                &e,
                &json!({"steps": [{"output": {"code": 999, "msg": "x"}}]})
            ),
            ["/steps/0/output/code: expected 7, got 999"]
        );
    }
}
