//! Plugins that attack the harness or the machine: what they start is
//! ended and named, what they write outside their sandbox is refused, and
//! the run still ends with a report.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// A plugin folder: `script` as macvlan, the reference plugins beside it
/// (`macvlan.real`, `host-local`).
fn plugin(script: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let reference = common::reference_dir();
    let path = dir.path().join("macvlan");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(reference.join("macvlan"), dir.path().join("macvlan.real")).unwrap();
    std::os::unix::fs::symlink(reference.join("host-local"), dir.path().join("host-local"))
        .unwrap();
    dir
}

/// Runs `filter`'s checks at 1.1.0 against the plugin; its exit code and
/// JSON report.
fn run(dir: &Path, filter: &str) -> (i32, Value) {
    let report = dir.join("report.json");
    let out = Command::new(common::harness())
        .args([
            "run",
            "--versions",
            "1.1.0",
            "--format",
            "json",
            "--filter",
            filter,
        ])
        .arg("--plugin")
        .arg(dir.join("macvlan"))
        .arg("--output")
        .arg(&report)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&text).unwrap(),
    )
}

fn result<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

/// `add.succeeds` fails (exit 1) and its evidence holds every one of `shown`.
fn add_fails_showing(dir: &Path, shown: &[&str]) {
    let (code, report) = run(dir, "add.succeeds");
    let r = result(&report, "add.succeeds");
    assert_eq!(r["status"], "fail", "{r:#}");
    let evidence = r["evidence"].to_string();
    for s in shown {
        assert!(evidence.contains(s), "the evidence lacks {s:?}: {evidence}");
    }
    assert_eq!(code, 1);
}

/// Processes whose command line is exactly `args`.
fn processes(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            (std::fs::read(e.path().join("cmdline")).ok()? == want).then_some(pid)
        })
        .collect()
}

#[test]
fn processes_a_plugin_leaves_running_are_ended_and_named() {
    // One detached with its output closed, one detached holding the
    // plugin's stdout (a harness reading to the end would wait for it).
    let dir = plugin(
        "#!/bin/sh\n\
         setsid sleep 987654 </dev/null >/dev/null 2>&1 &\n\
         setsid sleep 987653 &\n\
         exec \"$0.real\"\n",
    );
    let (code, report) = run(dir.path(), "leak.processes");
    let r = result(&report, "leak.processes");
    assert_eq!(r["status"], "note", "{r:#}");
    let message = r["message"].as_str().unwrap();
    assert!(message.contains("`sleep 987654`"), "{message}");
    assert!(message.contains("`sleep 987653`"), "{message}");
    assert!(
        r["evidence"]
            .to_string()
            .contains("running after it returned"),
        "{r:#}"
    );
    assert_eq!(code, 0, "a note fails nothing");
    assert_eq!(processes(&["sleep", "987654"]), Vec::<u32>::new());
    assert_eq!(processes(&["sleep", "987653"]), Vec::<u32>::new());
}

#[test]
fn a_well_behaved_plugin_leaves_no_process() {
    let dir = plugin("#!/bin/sh\nexec \"$0.real\"\n");
    let (code, report) = run(dir.path(), "leak.processes");
    assert_eq!(result(&report, "leak.processes")["status"], "pass");
    assert_eq!(code, 0);
}

#[test]
fn a_plugin_cannot_write_to_the_machine() {
    // As a plugin keeping its state in /etc would: it fails when it cannot.
    let probe = Path::new("/etc/cni-conformance-write-probe");
    let dir = plugin(&format!(
        "#!/bin/sh\n\
         if ! echo written > {p}; then\n\
           echo '{{\"cniVersion\":\"1.1.0\",\"code\":100,\"msg\":\"cannot write {p}\"}}'; exit 1\n\
         fi\n\
         exec \"$0.real\"\n",
        p = probe.display()
    ));
    add_fails_showing(dir.path(), &["Read-only file system", "cannot write"]);
    assert!(!probe.exists(), "the plugin wrote {}", probe.display());
}

#[test]
fn a_plugin_filling_its_folders_is_reported_and_bounded() {
    // 100 MB into /tmp, which is the sandbox's (64 MiB in all).
    let dir = plugin(
        "#!/bin/sh\n\
         if ! head -c 100000000 /dev/zero > /tmp/fill; then\n\
           echo '{\"cniVersion\":\"1.1.0\",\"code\":100,\"msg\":\"no room\"}'; exit 1\n\
         fi\n\
         exec \"$0.real\"\n",
    );
    add_fails_showing(dir.path(), &["No space left on device", "were full"]);
}

#[test]
fn a_fork_bomb_meets_the_bound_and_is_ended() {
    assert!(
        cni_conformance::sandbox::cgroup::task_bound().is_some(),
        "no pids controller to bound a call's processes with (see `cni-conformance doctor`)"
    );
    // Bounded itself (3000), should the harness's bound not hold: dash
    // stops at the first fork the kernel refuses ("Cannot fork").
    let dir = plugin(
        "#!/bin/sh\n\
         i=0\n\
         while [ $i -lt 3000 ]; do sleep 987652 & i=$((i+1)); done\n\
         echo '{\"cniVersion\":\"1.1.0\",\"code\":100,\"msg\":\"started 3000\"}'; exit 1\n",
    );
    add_fails_showing(
        dir.path(),
        &[
            "the kernel refused",
            "1024 processes and threads at once",
            "more processes running; the harness ended them",
        ],
    );
    assert_eq!(processes(&["sleep", "987652"]), Vec::<u32>::new());
    let (_, report) = run(dir.path(), "leak.processes");
    let message = result(&report, "leak.processes")["message"].to_string();
    assert!(message.contains("`sleep 987652` ("), "{message}");
    assert_eq!(processes(&["sleep", "987652"]), Vec::<u32>::new());
}
