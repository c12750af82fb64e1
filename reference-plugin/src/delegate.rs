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

/// A delegate started and not yet waited for, so the caller can work in
/// the meantime.
pub struct Running {
    child: std::process::Child,
    plugin: PathBuf,
}

fn failure(plugin: &Path, why: String) -> CniError {
    CniError::new(
        code::DELEGATE_FAILURE,
        format!("delegated plugin {}: {why}", plugin.display()),
    )
}

/// Starts the delegate with this invocation's environment (only
/// `CNI_COMMAND` changed) and `stdin`. Its stderr goes straight to ours.
pub fn start(plugin: &Path, command: Command, stdin: &[u8]) -> Result<Running, CniError> {
    let mut child = Process::new(plugin)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failure(plugin, format!("cannot run: {e}")))?;
    // A delegate that exits without reading stdin is judged by its answer.
    let _ = child.stdin.take().expect("piped").write_all(stdin);
    Ok(Running {
        child,
        plugin: plugin.to_path_buf(),
    })
}

impl Running {
    /// Its stdout on success; its error object, code kept, on failure.
    pub fn finish(self) -> Result<Vec<u8>, CniError> {
        let plugin = self.plugin;
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| failure(&plugin, e.to_string()))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        // Pass its error through, code included (spec: return the delegate's error).
        Err(error_answer(&out.stdout).unwrap_or_else(|| {
            failure(
                &plugin,
                format!(
                    "failed ({}) without an error object: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            )
        }))
    }

    /// Finishes an ADD: its answer read as a result.
    pub fn finish_add(self, version: Version) -> Result<CniResult, CniError> {
        let plugin = self.plugin.clone();
        let out = self.finish()?;
        add_answer(&out, version).map_err(|why| {
            CniError::new(
                code::DELEGATE_FAILURE,
                format!("IPAM plugin {}: {why}", plugin.display()),
            )
        })
    }
}

/// A failed delegate's stdout read as its error object (code kept); `None`
/// when it holds none.
pub fn error_answer(stdout: &[u8]) -> Option<CniError> {
    let v = serde_json::from_slice::<Value>(stdout).ok()?;
    let code = v["code"].as_u64()?;
    let mut e = CniError::new(code as u32, v["msg"].as_str().unwrap_or_default());
    e.details = v["details"].as_str().map(str::to_string);
    Some(e)
}

/// A successful ADD's stdout read as a result, in the version it says it
/// is written in (`version`, the one asked for, when it names none we
/// speak); the error says why not.
pub fn add_answer(stdout: &[u8], version: Version) -> Result<CniResult, String> {
    let v: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("its result is not JSON: {e}"))?;
    let answered = v["cniVersion"]
        .as_str()
        .and_then(Version::parse)
        .unwrap_or(version);
    CniResult::decode(&v, answered).map_err(|e| e.msg)
}

/// Runs the delegate to completion.
pub fn run(plugin: &Path, command: Command, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    start(plugin, command, stdin)?.finish()
}
