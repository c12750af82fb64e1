//! `cni-conformance runtime`: the self runtime passes every rule, each
//! broken runtime trips its check at its rule's level, and podman, buildah
//! and containerd are judged end to end with nothing left behind.

mod common;

use std::process::Command;

use cni_conformance::runtimes::Fault;
use rstest::rstest;
use serde_json::Value;

/// One runtime run at a time: each test then proves its own run left
/// nothing (and the runtimes' timings do not disturb each other).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `runtime ARGS --format json`: (exit code, report).
fn judge(args: &[&str]) -> (i32, Value) {
    let out = Command::new(common::harness())
        .arg("runtime")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("the harness runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results")
}

fn status_of<'a>(report: &'a Value, id: &str) -> &'a str {
    results(report)
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["status"].as_str())
        .unwrap_or_else(|| panic!("{id} is not in the report"))
}

/// What a runtime run may leave: nothing named after the stage.
fn assert_nothing_left() {
    let tmp: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cni-runtime-"))
        .collect();
    assert!(tmp.is_empty(), "stage folders left: {tmp:?}");
    let mut cgroups = Vec::new();
    for root in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dirs = std::iter::once(root.path()).chain(
            std::fs::read_dir(root.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path()),
        );
        cgroups.extend(dirs.filter(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("cni-conformance-"))
        }));
    }
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let procs: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("/cni-runtime-"))
        .collect();
    assert!(procs.is_empty(), "processes left: {procs:?}");
}

#[test]
fn the_self_runtime_passes_every_rule() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (code, report) = judge(&["--driver", "self"]);
    let not_passed: Vec<String> = results(&report)
        .iter()
        .filter(|r| r["status"] != "pass")
        .map(|r| format!("{} {}: {}", r["id"], r["status"], r["reason"]))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(code, 0);
    assert_eq!(results(&report).len(), 31);
    assert_nothing_left();
}

#[rstest]
#[case(Fault::ForwardDel, "forward-del")]
#[case(Fault::NoDelAfterFailedAdd, "no-del-after-failed-add")]
#[case(Fault::FirstResultAsPrev, "first-result-as-prev")]
#[case(Fault::ParallelAdd, "parallel-add")]
#[case(Fault::GcDuringAdd, "gc-during-add")]
#[case(Fault::KeepCapabilities, "keep-capabilities")]
#[case(Fault::LowestVersion, "lowest-version")]
fn a_broken_runtime_trips_its_check(#[case] fault: Fault, #[case] flag: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (code, report) = judge(&["--driver", "self", "--fault", flag]);
    let r = results(&report)
        .iter()
        .find(|r| r["id"] == fault.trips())
        .unwrap_or_else(|| panic!("{} not reported", fault.trips()));
    let want = match r["level"].as_str() {
        Some("MUST") => "fail",
        Some("SHOULD") => "warn",
        _ => "note",
    };
    assert_eq!(r["status"], want, "{flag}: {r:#}");
    assert_eq!(code, if want == "fail" { 1 } else { 0 });
    assert_nothing_left();
}

/// The real runtimes `.ci/run` installs: each is driven through every
/// scenario and each rule gets a verdict or `not-exercised`.
#[rstest]
#[case("podman")]
#[case("buildah")]
#[case("containerd")]
fn a_real_runtime_is_judged_end_to_end(#[case] driver: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (code, report) = judge(&["--driver", driver]);
    assert!(
        code == 0 || code == 1,
        "{driver}: exit {code}: {}",
        report["plugins"]
    );
    assert!(
        report["plugins"][0].get("error").is_none(),
        "{}",
        report["plugins"]
    );
    for r in results(&report) {
        let s = r["status"].as_str().unwrap();
        assert!(
            ["pass", "fail", "warn", "note", "not-exercised"].contains(&s),
            "{driver}: {} is {s}",
            r["id"]
        );
    }
    assert_eq!(results(&report).len(), 31);
    // The plain lifecycle went through: ADD and DEL in order.
    for id in [
        "runtime.add-in-order",
        "runtime.del-reverse-order",
        "runtime.every-add-deleted",
    ] {
        assert_eq!(status_of(&report, id), "pass", "{driver}: {id}");
    }
    assert_nothing_left();
}
