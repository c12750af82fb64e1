//! The `cni-conformance` binary as users run it: `exec` and `doctor`, as
//! root and as an unprivileged user.

mod common;
use common::{harness, real_root};

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

const WALKTHROUGH: &str = r#"{"name":"macvlannet","type":"macvlan","master":"eth0","ipam":{"type":"host-local","subnet":"192.168.122.0/24","routes":[{"dst":"0.0.0.0/0"}]}}"#;

/// The harness and the reference plugins where any user may run them,
/// with the walkthrough's config.
fn world_readable_kit() -> TempDir {
    let kit = common::world_readable_kit();
    fs::write(kit.path().join("walkthrough.json"), WALKTHROUGH).unwrap();
    kit
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the kit's harness; as an unprivileged user when `unprivileged` and
/// this process can switch to one.
fn run(kit: &Path, unprivileged: bool, args: &[&str]) -> Output {
    let bin = kit.join("cni-conformance");
    let mut cmd = if unprivileged && real_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(args)
        .current_dir(kit)
        .output()
        .expect("run the harness (setpriv comes with util-linux)")
}

fn assert_walkthrough(out: &Output) {
    let t = text(out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(
            r#"{"cniVersion":"0.1.0","ip4":{"ip":"192.168.122.2/24","gateway":"192.168.122.1""#
        ),
        "{t}"
    );
    assert!(
        t.contains("address 192.168.122.2/24 on eth0 added in container ctr0"),
        "{t}"
    );
    assert!(
        t.contains("route default via 192.168.122.1 dev eth0 added in container ctr0"),
        "{t}"
    );
    assert!(t.contains("file networks/macvlannet/192.168.122.2 (\"cnitest\\r\\neth0\") added in state /var/lib/cni"), "{t}");
    assert!(t.contains("pings 192.168.122.2: reachable"), "{t}");
    let after_del = t.split("after DEL").nth(1).unwrap_or_default();
    assert!(
        !after_del.contains("192.168.122.2 ("),
        "the reservation survived DEL: {t}"
    );
    assert!(
        !after_del.contains("link eth0"),
        "the link survived DEL: {t}"
    );
}

#[test]
fn exec_reproduces_the_walkthrough() {
    let kit = world_readable_kit();
    let p = kit.path().display().to_string();
    assert_walkthrough(&run(
        kit.path(),
        false,
        &[
            "exec",
            "ADD",
            "--config",
            "walkthrough.json",
            "--cni-path",
            &p,
            "--peer",
        ],
    ));
}

#[test]
fn exec_runs_as_an_unprivileged_user() {
    let kit = world_readable_kit();
    let p = kit.path().display().to_string();
    assert_walkthrough(&run(
        kit.path(),
        true,
        &[
            "exec",
            "ADD",
            "--config",
            "walkthrough.json",
            "--cni-path",
            &p,
            "--peer",
        ],
    ));
    let doctor = run(kit.path(), true, &["doctor", "--cni-path", &p]);
    let t = text(&doctor);
    assert!(doctor.status.success(), "{t}");
    if real_root() {
        assert!(t.contains("privileges: uid 65534"), "{t}");
    }
}

/// The walkthrough on a host that has run CNI before (root-owned state
/// folders holding another run's reservation of 192.168.122.2): the same
/// transcript as on a clean host, as root and as an ordinary user.
#[test]
fn exec_on_a_used_host_as_root_and_as_an_unprivileged_user() {
    let kit = world_readable_kit();
    let p = kit.path().display().to_string();
    let args = [
        "exec",
        "ADD",
        "--config",
        "walkthrough.json",
        "--cni-path",
        &p,
        "--peer",
    ];
    let mut users = vec![false];
    if real_root() {
        users.push(true);
    }
    for unprivileged in users {
        let out = common::on_a_used_host(&kit.path().join("cni-conformance"), &args, unprivileged)
            .current_dir(kit.path())
            .output()
            .unwrap();
        assert_walkthrough(&out);
    }
}

#[test]
fn doctor_reports_link_kinds_and_plugins() {
    let kit = world_readable_kit();
    let p = kit.path().display().to_string();
    let out = run(
        kit.path(),
        false,
        &["doctor", "--cni-path", &format!("{p}:/usr/lib/cni")],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for kind in ["dummy", "veth", "macvlan", "ipvlan", "bridge", "vlan"] {
        assert!(t.contains(&format!("link kind {kind}")), "{t}");
    }
    assert!(t.contains("ok   link kind veth"), "{t}");
    assert!(
        t.contains(&format!("{p}/macvlan")) && t.contains("speaks [\"0.1.0\""),
        "{t}"
    );
    assert!(t.contains("/usr/lib/cni/host-local"), "{t}");
}

#[test]
fn exec_reports_a_missing_plugin_as_a_harness_error() {
    let kit = world_readable_kit();
    let out = run(
        kit.path(),
        false,
        &[
            "exec",
            "ADD",
            "--config",
            "walkthrough.json",
            "--cni-path",
            "/nonexistent",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not found in CNI_PATH"),
        "{}",
        text(&out)
    );
}

#[test]
fn sigterm_removes_the_sandbox() {
    use std::io::{BufRead, BufReader};
    let kit = world_readable_kit();
    let p = kit.path().display().to_string();
    let mut child = Command::new(kit.path().join("cni-conformance"))
        .args([
            "exec",
            "ADD",
            "--config",
            "walkthrough.json",
            "--cni-path",
            &p,
            "--keep",
        ])
        .current_dir(kit.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Held open to the end: the signal, not an end of input, stops it.
    let _stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap);
    let dir = lines
        .next()
        .unwrap()
        .trim_start_matches("== sandbox ")
        .to_string();
    // Read until the harness says it is waiting: the sandbox is complete.
    let kept = lines
        .find(|l| l.starts_with("== kept"))
        .expect("exec --keep waits");
    let keeper: u32 = kept
        .split("/proc/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(Path::new(&dir).exists() && Path::new(&format!("/proc/{keeper}")).exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    assert!(!Path::new(&dir).exists(), "{dir} survived SIGTERM");
    // The keeper dies with the harness (it may linger a moment as a zombie
    // of init, but it no longer runs).
    let state = fs::read_to_string(format!("/proc/{keeper}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z"),
        "keeper {keeper} still runs: {state}"
    );
}

#[test]
fn validate_exit_codes() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let run = |args: &[&str]| {
        Command::new(harness())
            .arg("validate")
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&[
        "--kind",
        "result",
        examples
            .join("result-1.0/valid/macvlan.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let bad = run(&[
        "--kind",
        "result",
        examples
            .join("result-1.0/invalid/version-field-at-100.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("/ips/0/version"), "{}", text(&bad));
    assert_eq!(
        run(&["--kind", "nonsense", "x.json"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["--kind", "result", "/nonexistent.json"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["--kind"]).status.code(), Some(2));
}

#[test]
fn vectors_compare_a_plugin_with_the_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let d = dir.to_str().unwrap();
    let ours = Command::new(harness())
        .args(["vectors", "--dir", d])
        .output()
        .unwrap();
    let t = text(&ours);
    assert!(ours.status.success(), "{t}");
    assert!(
        t.contains(" 0 different, 0 without a reference"),
        "the reference differs from its own snapshots: {t}"
    );
    // Upstream macvlan answers 999 where the spec has codes: reported, not fatal.
    let up = Command::new(harness())
        .args(["vectors", "--dir", d, "--plugin", "/usr/lib/cni/macvlan"])
        .output()
        .unwrap();
    let t = text(&up);
    assert!(up.status.success(), "{t}");
    assert!(
        t.contains("diff error-7-bad-mode") && t.contains("expected 7, got 999"),
        "{t}"
    );
    assert!(t.contains("for other plugins"), "{t}");
}

/// A run that would prove nothing is a harness error (exit 2) that says
/// why, never a green "0 passed, 0 failed".
#[test]
fn runs_that_select_nothing_exit_2_with_the_reason() {
    let tmp = TempDir::new().unwrap();
    fs::write(tmp.path().join("not-executable"), "#!/bin/sh\n").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", "--versions", "9.9.9"],
            "\"9.9.9\" is not a CNI spec version",
        ),
        (
            &["run", "--filter", "nosuchcheck"],
            "no implemented check's ID contains \"nosuchcheck\"",
        ),
        (
            &[
                "run",
                "--plugin",
                "/usr/lib/cni/macvlan",
                "--versions",
                "1.1.0",
            ],
            "no case to run: it advertises 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0; --versions asked for 1.1.0",
        ),
        (
            &[
                "run",
                "--plugin",
                "/usr/lib/cni/static",
                "--filter",
                "ipam.exhaustion",
                "--versions",
                "1.0.0",
            ],
            "none of the 1 MUST cases could judge the plugin",
        ),
        (
            &["run", "--profile", "./my-plugn.toml"],
            "reading profile ./my-plugn.toml: No such file or directory",
        ),
        (
            &["run", "--plugin", "./not-executable"],
            "not executable (chmod +x ./not-executable)",
        ),
        (
            &["run", "--plugin", "./nothing-here"],
            "--plugin ./nothing-here: cannot read it: No such file or directory",
        ),
    ];
    for (args, why) in cases {
        let out = Command::new(harness())
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(why), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
}

/// `list | head -1`: the reader is gone before the harness has printed
/// everything (here: before it prints anything, so every write meets a
/// closed pipe); the harness exits 0 without a panic.
#[test]
fn list_into_a_closed_pipe_exits_cleanly() {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = Command::new(harness())
        .arg("list")
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
