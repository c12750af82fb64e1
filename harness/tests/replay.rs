//! Replay bundles: a fail of a broken plugin leaves a folder that
//! reproduces it (exit 1), and reports it fixed (exit 0) with the plugin
//! swapped for the reference one; `--rerun-failed` reruns exactly the
//! failed cases of a saved report.

mod common;

use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

fn plugins(broken: bool) -> TempDir {
    common::check_prints_kit(broken)
}

fn harness() -> Command {
    Command::new(common::harness())
}

#[test]
fn a_bundle_reproduces_until_the_plugin_is_fixed() {
    let broken = plugins(true);
    let out = TempDir::new().unwrap();
    let bundles = out.path().join("bundles");
    let run = harness()
        .args([
            "run",
            "--filter",
            "check.",
            "--versions",
            "0.4.0",
            "--format",
            "json",
        ])
        .arg("--plugin")
        .arg(broken.path().join("macvlan"))
        .arg("--bundle")
        .arg(&bundles)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let folder = bundles.join("macvlan-check.no-output@0.4.0");
    for f in ["case.json", "calls.json", "evidence.txt", "replay.sh"] {
        assert!(
            folder.join(f).is_file(),
            "{f} missing in {}",
            folder.display()
        );
    }
    let calls: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("calls.json")).unwrap()).unwrap();
    let check = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["env"]["CNI_COMMAND"] == "CHECK")
        .expect("the CHECK call in full");
    assert_eq!(check["stdout"], "{}\n");
    assert!(check["stdin"]["prevResult"].is_object());

    // The script reproduces it.
    let again = Command::new(folder.join("replay.sh")).output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("still deviates"));

    // The reference plugin fixes it.
    let fixed_dir = plugins(false);
    let fixed = harness()
        .arg("replay")
        .arg(&folder)
        .arg("--plugin")
        .arg(fixed_dir.path().join("macvlan"))
        .output()
        .unwrap();
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&fixed.stdout),
        String::from_utf8_lossy(&fixed.stderr)
    );
    assert!(String::from_utf8_lossy(&fixed.stdout).contains("fixed"));
}

#[test]
fn rerun_failed_runs_exactly_the_failed_cases() {
    let broken = plugins(true);
    let out = TempDir::new().unwrap();
    let saved = out.path().join("report.json");
    let first = harness()
        .args([
            "run",
            "--filter",
            "check.",
            "--versions",
            "0.4.0,1.0.0",
            "--format",
            "json",
            "--output",
        ])
        .arg(&saved)
        .arg("--plugin")
        .arg(broken.path().join("macvlan"))
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1));
    let rerun = harness()
        .args(["run", "--format", "json", "--rerun-failed"])
        .arg(&saved)
        .output()
        .unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let report: Value = serde_json::from_slice(&rerun.stdout).unwrap();
    let ran: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {}", r["id"], r["version"], r["status"]))
        .collect();
    assert_eq!(ran, vec!["\"check.no-output\" \"0.4.0\" \"fail\""]);
}
