//! The whole run against the reference plugins: no failure, every report
//! format well formed.

mod common;
use common::harness;

use std::process::Command;

use cni_conformance::schema::{self, Kind};
use tempfile::TempDir;

#[test]
fn the_reference_plugins_pass_every_check() {
    let out = TempDir::new().unwrap();
    let json = out.path().join("report.json");
    let run = Command::new(harness())
        .args(["run", "--format", "json", "--output"])
        .arg(&json)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v = schema::validate(Kind::Report, "1.1.0", &report).unwrap();
    assert!(v.is_empty(), "the report breaks its schema: {v:#?}");
    assert_eq!(report["summary"]["failed"], 0);
    let results = report["results"].as_array().unwrap();
    assert!(results.len() > 400, "only {} results", results.len());
    for r in results {
        assert_ne!(r["status"], "fail", "{r}");
        if r["status"] == "skip" {
            assert!(
                r["reason"].as_str().is_some_and(|s| !s.is_empty()),
                "a skip without reason: {r}"
            );
        }
    }
}

#[test]
fn junit_and_list_outputs() {
    let out = TempDir::new().unwrap();
    let xml = out.path().join("report.xml");
    let run = Command::new(harness())
        .args([
            "run",
            "--filter",
            "del.",
            "--versions",
            "1.0.0",
            "--format",
            "junit",
            "--output",
        ])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(run.status.success());
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        text.starts_with("<?xml") && text.contains("<testcase name=\"del.idempotent [1.0.0]\""),
        "{text}"
    );
    let list = Command::new(harness())
        .args(["list", "--json"])
        .output()
        .unwrap();
    let items: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let items = items.as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|c| c["id"] == "del.idempotent" && c["level"] == "MUST")
    );
    assert!(
        items
            .iter()
            .any(|c| c["implemented"] == false && c["notYet"].is_string())
    );
}

#[test]
fn upstream_plugins_complete_with_their_known_deviations() {
    let out = TempDir::new().unwrap();
    let json = out.path().join("report.json");
    let run = Command::new(harness())
        .args([
            "run",
            "--plugin",
            "/usr/lib/cni/macvlan",
            "--plugin",
            "/usr/lib/cni/host-local",
            "--format",
            "json",
            "--output",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "upstream has MUST failures: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let with = |status: &str| -> std::collections::BTreeSet<String> {
        results
            .iter()
            .filter(|r| r["status"] == status)
            .map(|r| {
                format!(
                    "{} {}",
                    r["plugin"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                )
            })
            .collect()
    };
    // Each is a real upstream deviation, listed in the README. Whether a
    // kill lands inside upstream's unprotected windows varies from run to
    // run, so the fault check may or may not be among them.
    let known: std::collections::BTreeSet<String> = [
        "macvlan check.tolerates-additions",
        "macvlan fault.kill-during-add",
        "host-local fault.kill-during-add",
    ]
    .map(String::from)
    .into();
    let failing = with("fail");
    assert!(
        failing.contains("macvlan check.tolerates-additions"),
        "{failing:?}"
    );
    assert!(
        failing.is_subset(&known),
        "unexpected upstream failures: {failing:?}"
    );
    // The link upstream macvlan leaks when IPAM fails.
    assert!(
        with("warn").contains("macvlan add.rollback"),
        "{:?}",
        with("warn")
    );
}
