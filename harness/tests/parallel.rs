//! The 100 parallel ADDs of `concurrency.parallel-add`: each container's
//! DEL gets that container's own result, and calls the harness could not
//! make (a process limit) are a harness error, never the plugin's failure.
//!
//! Alone in its test binary: the process limit counts every task of the
//! user, so no other test of this binary may run meanwhile.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

/// A plugin whose container `pN` gets `10.86.0.(N+2)/24`, logging every
/// ADD and every DEL with the address its prevResult names to descriptor 3
/// (a pipe the test gave the harness, which plugins inherit: the machine's
/// files are read-only to them).
const NUMBERED: &str = r#"#!/bin/sh
in=$(cat)
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
ADD) n=${CNI_CONTAINERID#p}
     echo "ADD $CNI_CONTAINERID" >&3
     echo "{\"cniVersion\":\"1.1.0\",\"ips\":[{\"address\":\"10.86.0.$((n+2))/24\"}],\"dns\":{}}" ;;
DEL) addr=$(printf '%s' "$in" | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
     echo "DEL $CNI_CONTAINERID $addr" >&3 ;;
esac
"#;

/// A folder any user can use: the plugin and its profile.
fn kit() -> TempDir {
    let kit = common::world_readable_kit();
    fs::set_permissions(kit.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let plugin = kit.path().join("numbered");
    fs::write(&plugin, NUMBERED).unwrap();
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        kit.path().join("numbered.toml"),
        "name = \"numbered\"\nkind = \"ipam\"\nipam = \"self\"\npool = true\n\
         config = '{\"type\": \"{{type}}\", \"subnet\": \"{{subnet}}\"}'\n",
    )
    .unwrap();
    kit
}

/// Runs the check as uid 65534 (with at most `limit` processes); what it
/// printed and what the plugins logged.
fn run(kit: &Path, limit: Option<usize>) -> (std::process::Output, String) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let report = kit.join("report.json").display().to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "prlimit",
    ]);
    if let Some(n) = limit {
        cmd.arg(format!("--nproc={n}"));
    }
    cmd.arg(kit.join("cni-conformance")).args([
        "run",
        "--plugin",
        "./numbered",
        "--profile",
        "./numbered.toml",
        "--filter",
        "concurrency.parallel-add",
        "--jobs",
        "1",
        "--format",
        "json",
        "--output",
        &report,
    ]);
    let (read, write) = nix::unistd::pipe().unwrap();
    let fd = write.as_raw_fd();
    // SAFETY: dup2 only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .current_dir(kit)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(write);
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut log).unwrap();
        log
    });
    let out = child.wait_with_output().unwrap();
    (out, reader.join().unwrap())
}

#[test]
fn every_del_gets_its_own_result_and_spawn_failures_are_harness_errors() {
    assert!(
        common::real_root(),
        "this test switches to uid 65534 to limit its processes: run it as root (ci/test.sh does)"
    );
    let kit = kit();
    let (out, calls) = run(kit.path(), None);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let dels: Vec<&str> = calls.lines().filter(|l| l.starts_with("DEL ")).collect();
    assert!(dels.len() >= 100, "{calls}");
    for line in dels {
        let mut words = line.split(' ').skip(1);
        let (id, addr) = (words.next().unwrap(), words.next().unwrap_or(""));
        let n: u32 = id.trim_start_matches('p').parse().unwrap();
        // The last DEL of p0 follows a plain ADD and may come without one.
        if !addr.is_empty() {
            assert_eq!(addr, format!("10.86.0.{}/24", n + 2), "{line}");
        }
    }
    // uid 65534 owns nothing else: 150 tasks hold the sandbox's 100
    // containers but not 100 more plugin calls with their threads.
    let (out, _) = run(kit.path(), Some(150));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the harness could not run 1 case"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(kit.path().join("report.json")).unwrap()).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["id"], "concurrency.parallel-add");
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result["reason"].as_str().unwrap().contains("cannot start"),
        "{result}"
    );
}
