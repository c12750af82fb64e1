//! Delegation (spec §"Delegated plugins"): find the plugin named by a config
//! field in `CNI_PATH` and run it with this invocation's environment and
//! stdin, only `CNI_COMMAND` changed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::Value;

use crate::protocol::env::Command;
use crate::protocol::{CniError, CniResult, Version, code};

/// The first regular file named `name` in the `CNI_PATH` folders.
pub fn find(name: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    if name.is_empty() || name.contains('/') {
        return Err(CniError::config(format!(
            "ipam.type: {name:?} is not a plugin name"
        )));
    }
    path.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let dirs: Vec<String> = path.iter().map(|d| d.display().to_string()).collect();
            CniError::new(
                code::DELEGATE_FAILURE,
                format!(
                    "failed to find plugin {name:?} in CNI_PATH [{}]",
                    dirs.join(":")
                ),
            )
        })
}

/// Runs the delegate; its stdout on success, its error object on failure.
/// Its stderr goes straight to ours.
pub fn run(plugin: &Path, command: Command, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let name = plugin.display();
    let failed = |why: String| {
        CniError::new(
            code::DELEGATE_FAILURE,
            format!("delegated plugin {name}: {why}"),
        )
    };
    let mut child = Process::new(plugin)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failed(format!("cannot run: {e}")))?;
    // A delegate that exits without reading stdin is judged by its answer.
    let _ = child.stdin.take().expect("piped").write_all(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    // Pass its error through, code included (spec: return the delegate's error).
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(v) if v["code"].is_u64() => {
            let mut e = CniError::new(
                v["code"].as_u64().unwrap() as u32,
                v["msg"].as_str().unwrap_or_default(),
            );
            e.details = v["details"].as_str().map(str::to_string);
            Err(e)
        }
        _ => Err(failed(format!(
            "failed ({}) without an error object: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        ))),
    }
}

/// ADD through the delegate, its answer read as a result.
pub fn add(plugin: &Path, stdin: &[u8], version: Version) -> Result<CniResult, CniError> {
    let out = run(plugin, Command::Add, stdin)?;
    let bad = |why: String| {
        CniError::new(
            code::DELEGATE_FAILURE,
            format!("IPAM plugin {}: {why}", plugin.display()),
        )
    };
    let v: Value =
        serde_json::from_slice(&out).map_err(|e| bad(format!("its result is not JSON: {e}")))?;
    let answered = v["cniVersion"]
        .as_str()
        .and_then(Version::parse)
        .unwrap_or(version);
    CniResult::decode(&v, answered).map_err(|e| bad(e.msg))
}
