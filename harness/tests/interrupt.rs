//! A run stopped by SIGINT or SIGTERM half-way leaves nothing behind: no
//! folder, no process, no namespace, no mount, no link. The runs are
//! stopped after a given number of result lines, so each stop lands at the
//! same point of the run every time (the one test of this binary: nothing
//! else makes sandboxes meanwhile).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;

/// What a run could leave: its folders, processes started from our
/// binaries or parked as holders, network namespaces, mounts, links.
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    folders: BTreeSet<String>,
    processes: BTreeSet<String>,
    netns: BTreeSet<u64>,
    mounts: usize,
    links: String,
}

fn machine() -> Machine {
    let mut folders = BTreeSet::new();
    for base in [Path::new("/dev/shm").to_path_buf(), std::env::temp_dir()] {
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("cni-conformance-") {
                folders.insert(e.path().display().to_string());
            }
        }
    }
    let reference = common::reference_dir();
    let mut processes = BTreeSet::new();
    let mut netns = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
        if comm.trim() == "cni-holder" || exe.starts_with(&reference) {
            processes.insert(format!("{pid} {} {}", comm.trim(), exe.display()));
        }
        if let Ok(ns) = std::fs::metadata(e.path().join("ns/net")) {
            use std::os::unix::fs::MetadataExt;
            netns.insert(ns.ino());
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let links = String::from_utf8(
        Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .expect("ip")
            .stdout,
    )
    .unwrap()
    .lines()
    .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_string())
    .collect::<Vec<_>>()
    .join(" ");
    Machine {
        folders,
        processes,
        netns,
        mounts,
        links,
    }
}

/// Starts a run of the reference plugins, reads `lines` lines of its
/// live report, sends `signal` and waits for it.
fn stop_after(lines: usize, signal: Signal) {
    let dir = common::reference_dir();
    let mut child = Command::new(common::harness())
        .arg("run")
        .arg("--plugin")
        .arg(dir.join("macvlan"))
        .arg("--plugin")
        .arg(dir.join("host-local"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for n in 0..lines {
        line.clear();
        let read = out.read_line(&mut line).unwrap();
        assert!(read > 0, "the run ended after {n} lines, before the stop");
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    // The rest of the report, so the harness never blocks on a full pipe.
    std::io::copy(&mut out, &mut std::io::sink()).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + signal as i32),
        "stopped by {signal} after {lines} lines"
    );
}

#[test]
fn a_run_stopped_by_a_signal_leaves_nothing_behind() {
    let before = machine();
    // Early (the first sandboxes), in the macvlan run, in the host-local run.
    for (lines, signal) in [
        (3, Signal::SIGINT),
        (120, Signal::SIGTERM),
        (330, Signal::SIGINT),
        (500, Signal::SIGINT),
        (700, Signal::SIGTERM),
    ] {
        stop_after(lines, signal);
        assert_eq!(
            machine(),
            before,
            "left behind by a run stopped by {signal} after {lines} lines"
        );
    }
}
