//! A plugin that hangs on every ADD costs a couple of timeouts, not one per
//! case: after `GIVE_UP_AFTER` consecutive timeouts the run stops calling
//! ADD and the cases that need it are blocked by the timeout.

mod common;

use std::process::Command;

use cni_conformance::suite::GIVE_UP_AFTER;
use serde_json::Value;

#[test]
fn a_plugin_that_hangs_on_add_is_given_up_on() {
    let dir = common::macvlan_kit(Some(
        "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && exec sleep 1000\nexec \"$0.real\"\n",
    ));
    let script = dir.path().join("macvlan");
    let jobs = 2;
    let out = Command::new(common::harness())
        .args([
            "run",
            "--timeout",
            "2",
            "--jobs",
            "2",
            "--versions",
            "1.0.0",
            "--format",
            "json",
        ])
        .arg("--plugin")
        .arg(&script)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = report["results"].as_array().unwrap();
    let timed_out = results
        .iter()
        .filter(|r| r["evidence"].to_string().contains("timed out"))
        .count();
    let given_up: Vec<&Value> = results
        .iter()
        .filter(|r| r["blockedBy"] == "timeout")
        .collect();
    // At most one timeout per job before the count is reached, then none.
    assert!(
        (1..=(GIVE_UP_AFTER as usize + jobs)).contains(&timed_out),
        "{timed_out} cases timed out"
    );
    assert!(
        given_up.len() > 20,
        "only {} cases given up on",
        given_up.len()
    );
    assert!(
        given_up
            .iter()
            .all(|r| r["reason"].as_str().unwrap().contains("timed out on ADD"))
    );
    assert_eq!(report["summary"]["errors"], 0);
}
