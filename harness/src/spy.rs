//! The spy plugin: the harness binary started under the name `cni-spy`
//! (a symlink in a sandbox's plugin folder). It records every invocation it
//! receives (verb, `CNI_*` environment, stdin, its exit status) as one JSON
//! line in the file named by `CNI_SPY_LOG`, and behaves as a well-mannered chained plugin:
//! ADD passes `prevResult` through, the other verbs print nothing. Options:
//! `spyFailOn` (a list of verbs) makes it fail those verbs with code 100;
//! `spyFailCode` is the code it fails with; `spyStderr` is written to stderr;
//! `spyResult` is what ADD answers instead (an IPAM result, when the spy
//! stands in as a delegated IPAM plugin: then its options sit in `ipam`);
//! `spyHangOn` (verbs) makes it never answer, once it has recorded the call.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

pub const NAME: &str = "cni-spy";

/// Whether this process was started as the spy.
pub fn invoked_as_spy() -> bool {
    std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n == NAME))
        .unwrap_or(false)
}

/// Links the spy into `dir` as a plugin named `cni-spy`.
pub fn install(dir: &Path, harness: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(harness, dir.join(NAME))
}

pub fn main() -> ExitCode {
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let config: Option<Value> = serde_json::from_slice(&stdin).ok();
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let env: Map<String, Value> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CNI_"))
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let version = config
        .as_ref()
        .and_then(|c| c.get("cniVersion")?.as_str())
        .unwrap_or(crate::spec::Version::V0_1_0.as_str())
        .to_string();
    // Options sit beside `type`: at the top for a plugin of a list, under
    // `ipam` when the spy is a delegated IPAM plugin.
    let options = config.as_ref().map(|c| match c.get("ipam") {
        Some(ipam) if ipam.get("type").and_then(Value::as_str) == Some(NAME) => ipam.clone(),
        _ => c.clone(),
    });
    let option = |key: &str| options.as_ref().and_then(|o| o.get(key).cloned());
    let fail_on = option("spyFailOn")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let (code, answer) = if fail_on.iter().any(|v| v.as_str() == Some(command.as_str())) {
        let code = option("spyFailCode")
            .and_then(|c| c.as_u64())
            .unwrap_or(100);
        let msg = format!("cni-spy fails {command} as configured");
        (
            1,
            Some(json!({"cniVersion": version, "code": code, "msg": msg})),
        )
    } else {
        let answer = match command.as_str() {
            "VERSION" => {
                Some(json!({"cniVersion": version, "supportedVersions": crate::spec::Version::ALL}))
            }
            "ADD" => {
                let given = option("spyResult")
                    .or_else(|| config.as_ref().and_then(|c| c.get("prevResult").cloned()));
                Some(match given {
                    Some(mut r) => {
                        r["cniVersion"] = json!(version);
                        r
                    }
                    None => json!({"cniVersion": version, "dns": {}}),
                })
            }
            _ => None,
        };
        (0, answer)
    };
    let record = json!({
        "command": command,
        "env": env,
        "stdin": config.clone().unwrap_or_else(|| json!(String::from_utf8_lossy(&stdin))),
        "exit": code,
    });
    if let Ok(path) = std::env::var("CNI_SPY_LOG") {
        // One write per record: appends of a line are not interleaved.
        let line = format!("{record}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!("cni-spy: cannot record to {path}: {e}");
        }
    }
    if let Some(text) = option("spyStderr").and_then(|v| v.as_str().map(str::to_string)) {
        eprintln!("{text}");
    }
    // Holds its caller at a known point until the harness kills it.
    let hang = option("spyHangOn")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    if hang.iter().any(|v| v.as_str() == Some(command.as_str())) {
        loop {
            std::thread::park();
        }
    }
    if let Some(a) = answer {
        println!("{a}");
    }
    ExitCode::from(code)
}

/// The records of a spy log, in order.
pub fn read_log(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
