//! A run stopped by SIGINT or SIGTERM half-way leaves nothing behind: no
//! folder, no process (so no namespace it held), no mount, no link, no
//! cgroup. The
//! runs are stopped after a given number of result lines, so each stop
//! lands at the same point of the run every time. The test gives the runs a
//! `/dev/shm` and a temporary folder of their own, and counts only
//! processes of this build's binaries, so other runs on the machine are
//! never taken for leftovers.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;

/// What a run could leave: its folders, processes of this build's harness
/// (its holders) and plugins, mounts, links.
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    folders: BTreeSet<String>,
    processes: BTreeSet<String>,
    mounts: usize,
    links: String,
    /// The runs' cgroups.
    cgroups: BTreeSet<String>,
}

fn machine(tmp: &Path) -> Machine {
    let mut folders = BTreeSet::new();
    for base in [Path::new("/dev/shm"), tmp] {
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("cni-conformance-") {
                folders.insert(e.path().display().to_string());
            }
        }
    }
    // The harness's holders share its binary; plugins are the reference
    // plugins of this build.
    let reference = common::reference_dir().canonicalize().unwrap();
    let mut processes = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
        if exe.starts_with(&reference) {
            processes.insert(format!("{pid} {} {}", comm.trim(), exe.display()));
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
    // The v2 hierarchy's, and the v1 pids hierarchy's that bound forks.
    use cni_conformance::sandbox::cgroup::{TaskBound, hierarchy, task_bound};
    let pids = match task_bound() {
        Some(TaskBound::V1(run)) => run.parent().map(Path::to_path_buf),
        _ => None,
    };
    let cgroups = hierarchy()
        .into_iter()
        .chain(pids)
        .flat_map(|h| {
            std::fs::read_dir(&h)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().display().to_string())
                .filter(|n| n.contains("/cni-conformance-"))
                .collect::<Vec<_>>()
        })
        .collect();
    Machine {
        folders,
        processes,
        mounts,
        links,
        cgroups,
    }
}

/// Starts a run of the reference plugins, reads `lines` lines of its
/// live report, sends `signal` and waits for it.
fn stop_after(lines: usize, signal: Signal, tmp: &Path) {
    let dir = common::reference_dir();
    let mut child = Command::new(common::harness())
        .env("TMPDIR", tmp)
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

/// A fresh `/dev/shm`, the runs' alone (this test binary has a mount
/// namespace of its own, ci/test-runner.sh), for one test at a time: each
/// test counts what the runs left there.
fn own_shm() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static MOUNTED: std::sync::Once = std::sync::Once::new();
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    MOUNTED.call_once(|| {
        nix::mount::mount(
            Some("tmpfs"),
            "/dev/shm",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mounting a tmpfs of this test's own on /dev/shm (tests run as root or in a user namespace, see ci/test-runner.sh)");
    });
    guard
}

/// Runs the reference plugins with a panic once sandbox `n` is up.
fn panic_at_sandbox(n: u32, tmp: &Path) {
    let dir = common::reference_dir();
    let out = Command::new(common::harness())
        .env("TMPDIR", tmp)
        .env("CNI_CONFORMANCE_PANIC_AT_SANDBOX", n.to_string())
        .arg("run")
        .arg("--plugin")
        .arg(dir.join("macvlan"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("asks for a panic"),
        "no panic at sandbox {n}: {:?}; stderr: {stderr}",
        out.status
    );
    assert!(!out.status.success(), "{:?}", out.status);
}

#[test]
fn a_run_that_panics_leaves_nothing_behind() {
    let _alone = own_shm();
    let tmp = tempfile::TempDir::new().unwrap();
    let before = machine(tmp.path());
    // The first sandbox, and one among others running at once.
    for n in [0, 30] {
        panic_at_sandbox(n, tmp.path());
        assert_eq!(
            machine(tmp.path()),
            before,
            "left behind by a run that panicked at sandbox {n}"
        );
    }
}

#[test]
fn a_run_stopped_by_a_signal_leaves_nothing_behind() {
    let _alone = own_shm();
    let tmp = tempfile::TempDir::new().unwrap();
    let before = machine(tmp.path());
    // Early (the first sandboxes), in the macvlan run, in the host-local run.
    for (lines, signal) in [
        (3, Signal::SIGINT),
        (120, Signal::SIGTERM),
        (330, Signal::SIGINT),
        (500, Signal::SIGINT),
        (700, Signal::SIGTERM),
    ] {
        stop_after(lines, signal, tmp.path());
        assert_eq!(
            machine(tmp.path()),
            before,
            "left behind by a run stopped by {signal} after {lines} lines"
        );
    }
}
