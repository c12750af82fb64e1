//! The first checks: run a plugin's VERSION verb the way libcni does and
//! judge the answer (spec §"VERSION", checks VER-001 to VER-004).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

pub const KNOWN_VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Must,
    Should,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub id: &'static str,
    pub level: Level,
    pub passed: bool,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot run {plugin}: {source}")]
    Spawn {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs VERSION with `stdin` and returns (exit code, stdout).
fn version_call(plugin: &Path, stdin: &str) -> Result<(Option<i32>, String), ProbeError> {
    let spawn_err = |source| ProbeError::Spawn {
        plugin: plugin.display().to_string(),
        source,
    };
    let mut child = Command::new(plugin)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(spawn_err)?;
    // A plugin may exit without reading stdin; that is not our failure.
    let _ = child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output().map_err(spawn_err)?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// Judges a plugin's VERSION answers.
pub fn probe(plugin: &Path) -> Result<Vec<Verdict>, ProbeError> {
    let mut verdicts = Vec::new();
    let mut judge = |id, level, passed: bool, message: String| {
        verdicts.push(Verdict {
            id,
            level,
            passed,
            message,
        })
    };
    let (code, stdout) = version_call(plugin, r#"{"cniVersion":"1.1.0"}"#)?;
    let parsed: Option<Value> = serde_json::from_str(&stdout).ok().filter(Value::is_object);
    judge(
        "version.answers-json",
        Level::Must,
        code == Some(0) && parsed.is_some(),
        format!("exit {code:?}, stdout {:?}", stdout.trim()),
    );
    let supported: Vec<String> = parsed
        .as_ref()
        .and_then(|v| v.get("supportedVersions")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    judge(
        "version.lists-supported",
        Level::Must,
        !supported.is_empty(),
        format!("supportedVersions {supported:?}"),
    );
    let unknown: Vec<&String> = supported
        .iter()
        .filter(|s| !KNOWN_VERSIONS.contains(&s.as_str()))
        .collect();
    judge(
        "version.known-versions",
        Level::Should,
        unknown.is_empty(),
        format!("unknown entries {unknown:?}"),
    );
    for v in supported.iter().filter(|v| v.as_str() >= "1.0.0") {
        let (_, out) = version_call(plugin, &format!(r#"{{"cniVersion":"{v}"}}"#))?;
        let echoed = serde_json::from_str::<Value>(&out)
            .ok()
            .and_then(|o| o["cniVersion"].as_str().map(str::to_string));
        judge(
            "version.echoes-input",
            Level::Should,
            echoed.as_deref() == Some(v),
            format!("asked {v}, answered {echoed:?}"),
        );
    }
    Ok(verdicts)
}
