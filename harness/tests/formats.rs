//! The report formats: TAP 14 whose plan matches its test points, JUnit
//! and HTML that parse as XML, Markdown with the failures, and `report`
//! merging JSON reports into one matrix.

mod common;

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

fn plugins(broken: bool) -> TempDir {
    common::check_prints_kit(broken)
}

fn report(plugins: &Path, format: &str) -> String {
    let out = Command::new(common::harness())
        .args([
            "run",
            "--filter",
            "check.",
            "--versions",
            "0.4.0,1.0.0",
            "--format",
            format,
        ])
        .arg("--plugin")
        .arg(plugins.join("macvlan"))
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn parses_as_xml(text: &str) {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
}

#[test]
fn tap_plans_exactly_its_test_points() {
    let bin = plugins(true);
    let tap = report(bin.path(), "tap");
    let mut lines = tap.lines();
    assert_eq!(lines.next(), Some("TAP version 14"));
    let plan: usize = lines
        .next()
        .and_then(|l| l.strip_prefix("1.."))
        .and_then(|n| n.parse().ok())
        .expect("a plan line");
    let points: Vec<&str> = tap
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .collect();
    assert_eq!(points.len(), plan);
    for (i, p) in points.iter().enumerate() {
        let n = p.trim_start_matches("not ").trim_start_matches("ok ");
        assert!(
            n.starts_with(&format!("{} ", i + 1)),
            "point {} is {p}",
            i + 1
        );
    }
    assert!(
        tap.contains("not ok") && tap.contains("check.no-output [0.4.0]"),
        "{tap}"
    );
}

#[test]
fn junit_and_html_are_well_formed() {
    let bin = plugins(true);
    parses_as_xml(&report(bin.path(), "junit"));
    let html = report(bin.path(), "html");
    parses_as_xml(&html);
    // Failures first: the failing case leads its cell.
    let fail = html.find("<b>FAIL</b>").expect("a failure");
    let first_pass = html.find("<b>pass</b>").expect("a pass");
    assert!(fail < first_pass);
}

#[test]
fn markdown_lists_each_failure_with_its_rule() {
    let bin = plugins(true);
    let md = report(bin.path(), "markdown");
    assert!(md.contains("| judged | pass | fail |"), "{md}");
    assert!(
        md.contains("`check.no-output` [0.4.0]")
            && md.contains("The plugin must return either nothing or an error."),
        "{md}"
    );
}

#[test]
fn report_merges_json_reports_into_one_matrix() {
    let (good, bad) = (plugins(false), plugins(true));
    let dir = TempDir::new().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, report(good.path(), "json")).unwrap();
    std::fs::write(&b, report(bad.path(), "json")).unwrap();
    let out = Command::new(common::harness())
        .args(["report", "--format", "html"])
        .args([&a, &b])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = String::from_utf8(out.stdout).unwrap();
    parses_as_xml(&html);
    // Every case is in the matrix, and both plugin rows, the failing one first.
    let cases = |text: &str| text.matches("<li class=").count();
    let a_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let b_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    let total =
        a_json["results"].as_array().unwrap().len() + b_json["results"].as_array().unwrap().len();
    assert_eq!(cases(&html), total);
    let rows: Vec<usize> = [bad.path(), good.path()]
        .iter()
        .map(|p| {
            html.find(&p.join("macvlan").display().to_string())
                .expect("its row")
        })
        .collect();
    assert!(rows[0] < rows[1], "the failing plugin is not first");
}

#[test]
fn every_report_carries_its_provenance() {
    let bin = plugins(false);
    let json: serde_json::Value = serde_json::from_str(&report(bin.path(), "json")).unwrap();
    let p = &json["provenance"];
    let macvlan = bin.path().join("macvlan");
    let bytes = std::fs::read(&macvlan).unwrap();
    let sha = cni_conformance::report::provenance::sha256_hex(&bytes);
    assert_eq!(p["judged"][0]["sha256"], sha.as_str());
    assert_eq!(p["catalogHash"].as_str().unwrap().len(), 64);
    assert!(p["catalogChecks"].as_u64().unwrap() > 100);
    assert!(!p["kernel"].as_str().unwrap().is_empty());
    assert_eq!(p["mode"], "normal");
    assert_eq!(p["casesNotRun"], 0);
    assert!(
        p["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "--filter")
    );
}

#[test]
fn the_markdown_summary_goes_to_github_step_summary() {
    let bin = plugins(true);
    let dir = TempDir::new().unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = Command::new(common::harness())
        .args(["run", "--filter", "check.no-output", "--versions", "0.4.0"])
        .arg("--plugin")
        .arg(bin.path().join("macvlan"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("earlier step\n## CNI conformance"),
        "{text}"
    );
    assert!(text.contains("`check.no-output` [0.4.0]"));
    assert!(text.len() < cni_conformance::report::markdown::STEP_SUMMARY_LIMIT);
}
