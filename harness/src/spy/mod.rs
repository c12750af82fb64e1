//! The spy plugin: the harness binary started under the name `cni-spy`
//! (a symlink in a plugin folder). It records every invocation (see
//! [`record::Call`]: times, pids, parent, `CNI_*` environment, stdin, its
//! namespaces, its answer) in the log named by `spyLog` or `CNI_SPY_LOG`,
//! and behaves as a well-mannered chained plugin: ADD passes `prevResult`
//! through, the other verbs print nothing.
//!
//! Options sit beside `type` (under `ipam` when the spy is the delegated
//! IPAM plugin):
//! - `spyName`: its label in the log (a list position, `ipam`);
//! - `spyFailOn` (verbs) fails those verbs, with `spyFailCode` (100);
//! - `spyScript`: `[{"verb", "call"?, "code"?, "sleepMs"?}]`: the n-th call
//!   of a verb (every call without `call`) sleeps, then fails with `code`;
//! - `spyResult`: what ADD answers instead (an IPAM result);
//! - `spyDelegate`: a plugin type run with the same environment and stdin
//!   (its `type` replaced), whose answer becomes the spy's;
//! - `spyNonce`: ADD's result carries `dns.domain` `<name>.<call>.<pid>.nonce`,
//!   so a later `prevResult` shows whose result it is;
//! - `spyStderr` is written to stderr;
//! - `spyHangOn` (verbs) never answers, once the call is recorded.

pub mod record;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use serde_json::{Map, Value, json};

pub use record::{Call, NetnsStat, read_calls, read_log};

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

/// CLOCK_MONOTONIC in nanoseconds: the clock every record uses.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

fn netns_stat(path: &str) -> Option<NetnsStat> {
    let meta = std::fs::metadata(path).ok()?;
    let nsfs = nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false);
    Some(NetnsStat {
        dev: meta.dev(),
        ino: meta.ino(),
        nsfs,
    })
}

/// One entry of `spyScript`.
struct Act {
    code: Option<u64>,
    sleep_ms: u64,
}

fn scripted(options: &Value, command: &str, call: u32) -> Act {
    let mut act = Act {
        code: None,
        sleep_ms: 0,
    };
    let fail_on = options.get("spyFailOn").and_then(Value::as_array);
    if fail_on.is_some_and(|v| v.iter().any(|v| v.as_str() == Some(command))) {
        act.code = Some(
            options
                .get("spyFailCode")
                .and_then(Value::as_u64)
                .unwrap_or(100),
        );
    }
    for entry in options
        .get("spyScript")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let verb = entry.get("verb").and_then(Value::as_str);
        let nth = entry.get("call").and_then(Value::as_u64);
        if verb == Some(command) && nth.is_none_or(|n| n == u64::from(call)) {
            if let Some(code) = entry.get("code").and_then(Value::as_u64) {
                act.code = Some(code);
            }
            act.sleep_ms += entry.get("sleepMs").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    act
}

/// Runs `plugin` (found in `CNI_PATH`) with this process's environment and
/// `stdin`: (exit status, stdout).
fn delegate(plugin: &str, stdin: &[u8]) -> Result<(u8, Vec<u8>), String> {
    let dirs = std::env::var_os("CNI_PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&dirs).collect();
    let path = crate::runtime::exec::find_plugin(plugin, &dirs).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {plugin}: {e}"))?;
    Ok((
        out.status.code().unwrap_or(1).clamp(0, 255) as u8,
        out.stdout,
    ))
}

pub fn main() -> ExitCode {
    let start_ns = monotonic_ns();
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
    // Delegated IPAM: the main plugin passes its own config on, so the
    // top-level type is the main plugin's and `ipam.type` is the spy.
    let as_ipam = config.as_ref().is_some_and(|c| {
        c.get("type").and_then(Value::as_str) != Some(NAME)
            && c.pointer("/ipam/type").and_then(Value::as_str) == Some(NAME)
    });
    let options = match &config {
        Some(c) if as_ipam => c["ipam"].clone(),
        Some(c) => c.clone(),
        None => Value::Null,
    };
    let option = |key: &str| options.get(key).cloned();
    let name = option("spyName")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "spy".into());
    let log: Option<PathBuf> = option("spyLog")
        .and_then(|v| v.as_str().map(PathBuf::from))
        .or_else(|| std::env::var_os("CNI_SPY_LOG").map(PathBuf::from));
    let call = match &log {
        Some(path) => record::begin(path, &name, &command, start_ns).unwrap_or_else(|e| {
            eprintln!("cni-spy: cannot record to {}: {e}", path.display());
            0
        }),
        None => 0,
    };
    let act = scripted(&options, &command, call);
    if act.sleep_ms > 0 {
        // Widens the call on purpose, so that a runtime running two
        // operations at once shows overlapping calls.
        std::thread::sleep(std::time::Duration::from_millis(act.sleep_ms));
    }
    let (code, answer) = if let Some(code) = act.code {
        let msg = format!("cni-spy fails {command} as configured");
        (
            1,
            Some(json!({"cniVersion": version, "code": code, "msg": msg})),
        )
    } else if let Some(plugin) = option("spyDelegate").and_then(|v| v.as_str().map(str::to_string))
    {
        let mut request = config.clone().unwrap_or(Value::Null);
        if as_ipam {
            request["ipam"]["type"] = json!(plugin);
        } else {
            request["type"] = json!(plugin);
        }
        let bytes = serde_json::to_vec(&request).expect("values serialise");
        match delegate(&plugin, &bytes) {
            Ok((code, out)) => (code, serde_json::from_slice(&out).ok()),
            Err(msg) => (
                1,
                Some(json!({"cniVersion": version, "code": 999, "msg": msg})),
            ),
        }
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
    let answer = match answer {
        Some(mut a) if code == 0 && command == "ADD" && option("spyNonce") == Some(json!(true)) => {
            if !a.get("dns").is_some_and(Value::is_object) {
                a["dns"] = json!({});
            }
            a["dns"]["domain"] = json!(format!("{name}.{call}.{}.nonce", std::process::id()));
            Some(a)
        }
        other => other,
    };
    let ppid = nix::unistd::getppid().as_raw() as u32;
    let record = json!({
        "name": name,
        "command": command,
        "call": call,
        "start_ns": start_ns,
        "end_ns": monotonic_ns(),
        "pid": std::process::id(),
        "ppid": ppid,
        "parent_exe": std::fs::read_link(format!("/proc/{ppid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "env": env,
        "stdin": config.clone().unwrap_or_else(|| json!(String::from_utf8_lossy(&stdin))),
        "netns_inode": std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).unwrap_or(0),
        "cni_netns": std::env::var("CNI_NETNS").ok().and_then(|p| netns_stat(&p)),
        "answer": answer,
        "exit": code,
    });
    if let Some(path) = &log
        && let Err(e) = record::finish(path, &record)
    {
        eprintln!("cni-spy: cannot record to {}: {e}", path.display());
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
