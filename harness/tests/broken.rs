//! Proof that the checks catch bugs: every deliberately broken plugin in
//! tests/broken makes the check it targets fail (or warn, for SHOULD
//! checks), while the unbroken reference plugins pass them all (the full
//! run in tests/suite.rs).
//!
//! Each broken plugin is a small wrapper around a reference plugin; its
//! header says which check it breaks, as which plugin type and in which
//! version.

mod common;
use common::reference_dir;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cni_conformance::checks::rules::Level;
use cni_conformance::spec::Version;
use cni_conformance::suite::Status;
use cni_conformance::suite::{self, RunOptions};
use rstest::rstest;
use tempfile::TempDir;

struct Broken {
    name: String,
    checks: Vec<String>,
    plugin_type: String,
    version: Version,
    script: PathBuf,
}

fn read(script: &Path) -> Broken {
    let text = fs::read_to_string(script).unwrap();
    let header = text
        .lines()
        .find(|l| l.starts_with("# breaks:"))
        .unwrap_or_else(|| panic!("{} has no header", script.display()));
    let field = |key: &str| {
        let rest = header
            .split(&format!("{key}:"))
            .nth(1)
            .unwrap_or_else(|| panic!("{header}: no {key}"));
        rest.split_whitespace().next().unwrap().to_string()
    };
    Broken {
        name: script.file_name().unwrap().to_string_lossy().into_owned(),
        checks: field("breaks").split(',').map(str::to_string).collect(),
        plugin_type: field("type"),
        version: field("version").parse().unwrap(),
        script: script.to_path_buf(),
    }
}

/// A plugin folder: the wrapper under the plugin's name, the real plugin
/// beside it as `<name>.real`, the other reference plugin as delegate, and
/// the spy (a well-behaved chained plugin to break).
fn install(b: &Broken) -> TempDir {
    let dir = TempDir::new().unwrap();
    let reference = reference_dir();
    fs::copy(&b.script, dir.path().join(&b.plugin_type)).unwrap();
    cni_conformance::spy::install(dir.path(), &common::harness()).unwrap();
    for name in ["macvlan", "host-local"] {
        let target = if name == b.plugin_type {
            format!("{name}.real")
        } else {
            name.to_string()
        };
        std::os::unix::fs::symlink(reference.join(name), dir.path().join(target)).unwrap();
    }
    dir
}

#[test]
fn the_broken_set_targets_many_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let set: Vec<Broken> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| read(&e.unwrap().path()))
        .collect();
    assert!(set.len() >= 15, "only {} broken plugins", set.len());
    let distinct: std::collections::BTreeSet<&str> = set
        .iter()
        .flat_map(|b| b.checks.iter().map(String::as_str))
        .collect();
    assert!(
        distinct.len() >= 15,
        "only {} distinct checks are targeted",
        distinct.len()
    );
    let catalog = cni_conformance::checks::catalog();
    for b in &set {
        for c in &b.checks {
            assert!(
                catalog.iter().any(|e| e.id == c),
                "{}: no check {c}",
                b.name
            );
        }
    }
    // A SHOULD, MAY or INFO check is only worth its warning if something
    // can trigger it.
    for check in &catalog {
        let soft = check.rules().iter().any(|r| r.level != Level::Must);
        if soft && check.run().is_some() {
            assert!(
                distinct.contains(check.id),
                "{} has SHOULD/MAY/INFO rules but no broken plugin triggers it",
                check.id
            );
        }
    }
}

/// One test per broken plugin: each check its header names deviates on
/// it, at the level its rule has at that version (fail for MUST, warn for
/// SHOULD, note for MAY and INFO).
#[rstest]
fn trips_its_checks(#[files("tests/broken/*")] script: PathBuf) {
    let b = read(&script);
    let spy = TempDir::new().unwrap();
    cni_conformance::spy::install(spy.path(), &common::harness()).unwrap();
    let dir = install(&b);
    for check in &b.checks {
        let opts = RunOptions {
            only: None,
            // The chained profile's preceding plugin (ptp) comes from upstream.
            cni_path: vec![PathBuf::from("/usr/lib/cni")],
            profile: None,
            versions: Some(vec![b.version]),
            filter: Some(check.to_string()),
            timeout: Duration::from_secs(20),
            jobs: 1,
            spy_dir: Some(spy.path().to_path_buf()),
            kill_points: None,
        };
        let report = suite::run_plugin(&dir.path().join(&b.plugin_type), &opts, &|_| {}).unwrap();
        let result = report
            .results
            .iter()
            .find(|r| r.id == *check && r.version == b.version)
            .unwrap_or_else(|| panic!("{}: {check} did not run at {}", b.name, b.version));
        let expected = match result.level {
            Level::Must => Status::Fail,
            Level::Should => Status::Warn,
            Level::May | Level::Info => Status::Note,
        };
        assert_eq!(
            result.status,
            expected,
            "{}: {check} ({}) at {}: {}",
            b.name,
            result.level,
            b.version,
            result.reason.as_deref().unwrap_or(&result.message)
        );
    }
}
