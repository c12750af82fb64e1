//! The whole run against the reference plugins: no failure, every report
//! format well formed.

mod common;
use common::harness;

use std::process::Command;

use cni_conformance::schema::{self, Kind};
use tempfile::TempDir;

/// The sorted (plugin, id, version, status) of a report.
fn verdicts(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["plugin"], r["id"], r["version"], r["status"]
            )
        })
        .collect();
    v.sort();
    v
}

/// Report text is for people: no Rust `Option` debug output.
fn assert_readable(report: &str) {
    for bad in ["Some(", "None"] {
        if let Some(at) = report.find(bad) {
            panic!(
                "report text holds {bad:?}: ...{}...",
                &report[at.saturating_sub(200)..(at + 100).min(report.len())]
            );
        }
    }
}

/// The full run on a host that has run CNI before (root-owned state
/// folders with another run's reservations), as root and, where the test
/// is real root, as an ordinary user: every case passes, the same verdicts
/// both ways.
#[test]
fn the_reference_plugins_pass_every_check_as_root_and_rootless_on_a_used_host() {
    let kit = common::world_readable_kit();
    let mut users = vec![false];
    if common::real_root() {
        users.push(true);
    }
    // Where an unprivileged harness may write its report.
    let reports = TempDir::new().unwrap();
    std::fs::set_permissions(
        reports.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut seen = Vec::new();
    for unprivileged in users {
        let json = reports.path().join(format!("report-{unprivileged}.json"));
        let json_arg = json.display().to_string();
        let run = common::on_a_used_host(
            &kit.path().join("cni-conformance"),
            &["run", "--format", "json", "--output", &json_arg],
            unprivileged,
        )
        .current_dir(kit.path())
        .output()
        .unwrap();
        assert_eq!(
            run.status.code(),
            Some(0),
            "unprivileged: {unprivileged}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let text = std::fs::read_to_string(&json).unwrap();
        assert_readable(&text);
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        let v = schema::validate(Kind::Report, "1.1.0", &report).unwrap();
        assert!(v.is_empty(), "the report breaks its schema: {v:#?}");
        assert_eq!(report["summary"]["failed"], 0);
        let results = report["results"].as_array().unwrap();
        assert!(results.len() > 400, "only {} results", results.len());
        // Every case passes, but those that do not apply (the reference
        // plugins never answer code 2; without root there is no cgroup to
        // follow processes in).
        for r in results {
            let id = r["id"].as_str().unwrap();
            let na = r["status"] == "not-applicable"
                && (id == "error.code-2-names-field" || (unprivileged && id == "leak.processes"));
            assert!(
                r["status"] == "pass" || na,
                "unprivileged: {unprivileged}: {r}"
            );
        }
        // The summary reaches stdout (the CI log) too.
        assert!(
            String::from_utf8_lossy(&run.stdout).contains(" passed, 0 failed"),
            "{}",
            String::from_utf8_lossy(&run.stdout)
        );
        seen.push(verdicts(&report));
    }
    if let [root, rootless] = seen.as_slice() {
        // But for the process check, which needs a cgroup root has.
        let comparable = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .filter(|l| !l.contains("\"leak.processes\""))
                .cloned()
                .collect()
        };
        assert_eq!(
            comparable(root),
            comparable(rootless),
            "rootless verdicts differ from root's"
        );
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
    // Every case carries the rule it was judged by.
    let cases = text.matches("<testcase ").count();
    for property in ["level", "clause", "quote", "basis"] {
        assert_eq!(
            text.matches(&format!("<property name=\"{property}\""))
                .count(),
            cases,
            "not every case has its {property}"
        );
    }
    let list = Command::new(harness())
        .args(["list", "--json"])
        .output()
        .unwrap();
    let items: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let items = items.as_array().unwrap();
    assert!(items.iter().any(|c| {
        c["id"] == "del.idempotent"
            && c["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["level"] == "MUST")
    }));
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
    let text = std::fs::read_to_string(&json).unwrap();
    assert_readable(&text);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
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
    // Each is a real upstream deviation under a MUST of its version's
    // text, listed in the README.
    let known: std::collections::BTreeSet<String> = [
        "macvlan add.keeps-prev-result-interface",
        "macvlan check.tolerates-additions",
        "macvlan error.cni-version",
        "macvlan error.reserved-codes",
        "host-local error.cni-version",
        "host-local error.reserved-codes",
    ]
    .map(String::from)
    .into();
    assert_eq!(with("fail"), known);
    for r in results.iter().filter(|r| r["status"] == "fail") {
        assert_eq!(r["level"], "MUST", "{r}");
        assert!(r["quote"].as_str().is_some_and(|q| q.len() > 10), "{r}");
    }
    // The link upstream macvlan leaks when IPAM fails: a note (no sentence
    // asks a plugin to roll back by itself).
    assert!(
        with("note").contains("macvlan add.rollback"),
        "{:?}",
        with("note")
    );
}

/// A plugin that names its interface net0 whatever CNI_IFNAME says: a full
/// report (exit 1), `config.exact-ifname` fails, the checks that need the
/// interface are blocked by the one that judges it, and no case is lost.
#[test]
fn a_plugin_that_renames_its_interface_gets_a_full_report() {
    let broken = TempDir::new().unwrap();
    let reference = common::reference_dir();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/renames-ifname"),
        broken.path().join("macvlan"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        reference.join("macvlan"),
        broken.path().join("macvlan.real"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        reference.join("host-local"),
        broken.path().join("host-local"),
    )
    .unwrap();
    let report = |plugin: &std::path::Path, expect: i32| {
        let json = broken.path().join("report.json");
        let run = Command::new(harness())
            .args(["run", "--plugin"])
            .arg(plugin)
            .args(["--versions", "1.0.0", "--format", "json", "--output"])
            .arg(&json)
            .output()
            .unwrap();
        assert_eq!(
            run.status.code(),
            Some(expect),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        r["results"].as_array().unwrap().clone()
    };
    let bad = report(&broken.path().join("macvlan"), 1);
    let good = report(&reference.join("macvlan"), 0);
    let cases = |rs: &[serde_json::Value]| -> Vec<String> {
        rs.iter()
            .map(|r| format!("{} {}", r["id"], r["version"]))
            .collect()
    };
    assert_eq!(cases(&bad), cases(&good), "a case was lost");
    let status = |id: &str| {
        bad.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    assert_eq!(status("config.exact-ifname")["status"], "fail");
    assert_eq!(status("add.link-exists")["status"], "fail");
    let missing_link = status("check.detects-missing-link");
    assert_eq!(missing_link["status"], "blocked", "{missing_link}");
    assert_eq!(missing_link["blockedBy"], "add.link-exists");
    assert!(
        bad.iter().all(|r| r["status"] != "error"),
        "harness errors in {bad:?}"
    );
}
