//! fault.kill-at-every-step: a call killed at the entry of each of its
//! steps in turn, then DEL. The findings name the step and are the same
//! in every run.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The result of fault.kill-at-every-step for `plugin`, every point.
fn kill_points(plugin: &Path, cni_path: Option<&str>) -> Value {
    let mut cmd = Command::new(common::harness());
    cmd.args([
        "run",
        "--filter",
        "fault.kill-at-every-step",
        "--kill-points",
        "all",
    ])
    .args(["--format", "json"])
    .arg("--plugin")
    .arg(plugin);
    if let Some(p) = cni_path {
        cmd.args(["--cni-path", p]);
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{results:#?}");
    results[0].clone()
}

/// The step numbers the findings name, in order.
fn steps(message: &str) -> Vec<usize> {
    message
        .lines()
        .filter_map(|l| l.strip_prefix("killed at step "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_scratch_file_kept_between_two_steps_is_caught_at_exactly_those_steps() {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/scratch-file-when-killed"),
    )
    .unwrap();
    let kit = common::macvlan_kit(Some(&script));
    let r = kill_points(&kit.path().join("macvlan"), None);
    assert_eq!(r["status"], "note", "{r:#}");
    let message = r["message"].as_str().unwrap();
    let found = steps(message);
    // Step 1 makes the file (killed there, nothing exists yet); every
    // step from the next one to the removal, included, leaves it.
    let removal = message
        .lines()
        .find(|l| l.contains("(unlinkat, in rm, /run/cni/scratch-file)"))
        .unwrap_or_else(|| panic!("no finding at the removal: {message}"));
    let last = steps(removal)[0];
    assert_eq!(found, (2..=last).collect::<Vec<_>>(), "{message}");
    let first = message
        .lines()
        .find(|l| l.starts_with("killed at step 2 "))
        .unwrap();
    assert!(
        first.contains("execve"),
        "step 2 starts the real plugin: {first}"
    );
    for line in message.lines().skip(1) {
        assert!(line.contains("scratch-file"), "{line}");
    }
}

#[test]
fn the_reference_plugins_leave_nothing_at_any_step_in_two_runs() {
    let dir = common::reference_dir();
    for plugin in ["macvlan", "host-local"] {
        let first = kill_points(&dir.join(plugin), None);
        assert_eq!(first["status"], "pass", "{plugin}: {first:#}");
        let again = kill_points(&dir.join(plugin), None);
        assert_eq!(first["message"], again["message"], "{plugin}");
        let message = first["message"].as_str().unwrap();
        assert!(message.starts_with("killed at "), "{message}");
    }
}

#[test]
fn upstream_macvlan_and_host_local_show_their_known_windows_in_two_runs() {
    let upstream = Path::new("/usr/lib/cni");
    let macvlan = kill_points(&upstream.join("macvlan"), Some("/usr/lib/cni"));
    assert_eq!(macvlan["status"], "note", "{macvlan:#}");
    let message = macvlan["message"].as_str().unwrap();
    // The macvlan link made under a temporary name, killed before it is
    // renamed and moved: DEL looks for the final name and leaves it.
    assert!(
        message
            .lines()
            .any(|l| l.contains("(sendto, in macvlan, netlink) of ADD")
                && l.contains("a link (macvlan, bridge) added in container")),
        "{message}"
    );
    // host-local's reservation file, created before it is written.
    assert!(
        message
            .lines()
            .any(|l| l.contains("in host-local") && l.contains("(\"\") added")),
        "{message}"
    );
    let again = kill_points(&upstream.join("macvlan"), Some("/usr/lib/cni"));
    assert_eq!(macvlan["message"], again["message"]);
    let host_local = kill_points(&upstream.join("host-local"), Some("/usr/lib/cni"));
    assert_eq!(host_local["status"], "note", "{host_local:#}");
    let again = kill_points(&upstream.join("host-local"), Some("/usr/lib/cni"));
    assert_eq!(host_local["message"], again["message"]);
}
