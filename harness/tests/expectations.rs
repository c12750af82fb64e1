//! `run --expectations`: an expected deviation keeps the run green
//! (`xfail`), an expectation that now passes fails it (`xpass`) naming the
//! entry, and a file naming an unknown check is refused (exit 2) with its
//! line.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

const EXPECT: &str = "# known deviations\n[[expect]]\nid = \"check.no-output\"\nversions = [\"0.4.0\"]\nexpect = \"fail\"\nreason = \"our CHECK prints an empty object\"\n";

fn plugins(broken: bool) -> TempDir {
    common::check_prints_kit(broken)
}

fn run(plugins: &Path, expectations: &Path) -> (Output, Option<Value>) {
    let out = Command::new(common::harness())
        .args([
            "run",
            "--filter",
            "check.no-output",
            "--versions",
            "0.4.0",
            "--format",
            "json",
        ])
        .arg("--plugin")
        .arg(plugins.join("macvlan"))
        .arg("--expectations")
        .arg(expectations)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).ok();
    (out, report)
}

fn file(text: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("expectations.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn an_expected_failure_keeps_the_run_green() {
    let (_d, expect) = file(EXPECT);
    let bin = plugins(true);
    let (out, report) = run(bin.path(), &expect);
    let report = report.expect("a JSON report");
    assert_eq!(report["results"][0]["status"], "xfail", "{report:#}");
    assert_eq!(report["summary"]["xfailed"], 1);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_expectation_that_now_passes_fails_the_run_and_names_the_entry() {
    let (_d, expect) = file(EXPECT);
    let bin = plugins(false);
    let (out, report) = run(bin.path(), &expect);
    let report = report.expect("a JSON report");
    assert_eq!(report["results"][0]["status"], "xpass", "{report:#}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expectations.toml:3")
            && stderr.contains("remove it from the expectations file"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_unknown_id_is_refused_with_its_line() {
    let (_d, expect) = file(&format!(
        "{EXPECT}\n[[expect]]\nid = \"check.no-such-thing\"\nexpect = \"warn\"\nreason = \"r\"\n"
    ));
    let bin = plugins(false);
    let (out, _) = run(bin.path(), &expect);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("expectations.toml:9") && stderr.contains("check.no-such-thing"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_file_is_refused_with_its_line() {
    let (_d, expect) =
        file("[[expect]]\nid = \"check.no-output\"\nexpect = \"maybe\"\nreason = \"r\"\n");
    let bin = plugins(false);
    let (out, _) = run(bin.path(), &expect);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expectations.toml:3"), "{stderr}");
}

/// host-local that treats cniVersion 9.9.9 as 1.0.0: a SHOULD deviation
/// at 0.4.0 (version.refuses-unknown).
fn lenient_host_local() -> TempDir {
    let dir = TempDir::new().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/accepts-unknown-version");
    std::fs::copy(script, dir.path().join("host-local")).unwrap();
    std::os::unix::fs::symlink(
        common::reference_dir().join("host-local"),
        dir.path().join("host-local.real"),
    )
    .unwrap();
    dir
}

fn judge_should(extra: &[&str]) -> Output {
    let bin = lenient_host_local();
    Command::new(common::harness())
        .args([
            "run",
            "--filter",
            "version.refuses-unknown",
            "--versions",
            "0.4.0",
            "--format",
            "json",
        ])
        .arg("--plugin")
        .arg(bin.path().join("host-local"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn strict_mode_fails_on_a_should() {
    let normal = judge_should(&[]);
    let report: Value = serde_json::from_slice(&normal.stdout).unwrap();
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "warn")
    );
    assert_eq!(normal.status.code(), Some(0));
    let strict = judge_should(&["--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&strict.stdout).unwrap();
    assert_eq!(report["provenance"]["mode"], "strict");
}

#[test]
fn certification_takes_no_filter_and_says_so() {
    // --certify refuses what would narrow it.
    let narrowed = judge_should(&["--certify"]);
    assert_eq!(narrowed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&narrowed.stderr).contains("cannot be used with"));
}
