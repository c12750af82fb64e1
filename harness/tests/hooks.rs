//! Daemon-backed plugins: a profile's `setup` and `teardown` run around
//! each sandbox, where plugins run; a plugin that needs its agent passes
//! with them, and a failing `setup` is a harness error (exit 2), never a
//! verdict.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// A macvlan that refuses to work unless its "agent" (a file the setup
/// makes under the sandbox's /run) is there.
fn agent_plugin() -> TempDir {
    common::macvlan_kit(Some(
        "#!/bin/sh\n[ -f /run/agent.sock ] || { echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"agent down\"}'; exit 1; }\nexec \"$0.real\"\n",
    ))
}

fn profile(dir: &Path, hooks: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/macvlan.toml"),
    )
    .unwrap();
    let path = dir.join("agent.toml");
    std::fs::write(&path, format!("{base}\n{hooks}\n")).unwrap();
    path
}

fn run(plugins: &Path, profile: &Path) -> (Output, Option<Value>) {
    let out = Command::new(common::harness())
        .args([
            "run",
            "--filter",
            "add.succeeds",
            "--versions",
            "1.0.0",
            "--format",
            "json",
        ])
        .arg("--plugin")
        .arg(plugins.join("macvlan"))
        .arg("--profile")
        .arg(profile)
        .output()
        .unwrap();
    (out.clone(), serde_json::from_slice(&out.stdout).ok())
}

#[test]
fn setup_brings_the_agent_and_teardown_removes_it() {
    let bin = agent_plugin();
    let marks = TempDir::new().unwrap();
    // Teardown ends this process: the sandbox sees the machine read-only,
    // so a signal is how a hook can be seen from outside.
    let mut witness = Command::new("sleep").arg("987650").spawn().unwrap();
    let p = profile(
        marks.path(),
        &format!(
            "setup = 'touch /run/agent.sock && test -d \"$CNI_CONFORMANCE_DIR\" && test -n \"$CNI_CONFORMANCE_CONTAINERS\"'\nteardown = 'rm /run/agent.sock && test -n \"$CNI_CONFORMANCE_NETWORK\" && kill {}'",
            witness.id()
        ),
    );
    let (out, report) = run(bin.path(), &p);
    // The signal was sent before the run ended; its delivery is the
    // kernel's, so the end is awaited (bounded), not assumed.
    let pid = witness.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(witness.wait().unwrap());
    });
    let ended = rx.recv_timeout(std::time::Duration::from_secs(10)).ok();
    if ended.is_none() {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    waiter.join().unwrap();
    let report = report.expect("a report");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["results"][0]["status"], "pass");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        ended.and_then(|s| s.signal()),
        Some(libc::SIGTERM),
        "teardown did not run"
    );
}

#[test]
fn without_its_agent_the_plugin_fails() {
    let bin = agent_plugin();
    let marks = TempDir::new().unwrap();
    let p = profile(marks.path(), "");
    let (out, report) = run(bin.path(), &p);
    assert_eq!(report.unwrap()["results"][0]["status"], "fail");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_failing_setup_is_a_harness_error() {
    let bin = agent_plugin();
    let marks = TempDir::new().unwrap();
    let p = profile(marks.path(), "setup = 'echo no agent today; exit 3'");
    let (out, report) = run(bin.path(), &p);
    let report = report.expect("a report");
    let r = &report["results"][0];
    assert_eq!(r["status"], "error", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("no agent today"),
        "{r:#}"
    );
    assert_eq!(out.status.code(), Some(2));
}
