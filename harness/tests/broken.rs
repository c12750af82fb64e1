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

use cni_conformance::suite::{self, RunOptions, Status};
use tempfile::TempDir;

struct Broken {
    name: String,
    checks: Vec<String>,
    plugin_type: String,
    version: String,
    script: PathBuf,
}

fn broken_set() -> Vec<Broken> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut set: Vec<Broken> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|script| {
            let text = fs::read_to_string(&script).unwrap();
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
                version: field("version"),
                script,
            }
        })
        .collect();
    set.sort_by(|a, b| a.name.cmp(&b.name));
    set
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
fn every_broken_plugin_trips_its_check() {
    let set = broken_set();
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
    let spy = TempDir::new().unwrap();
    cni_conformance::spy::install(spy.path(), &common::harness()).unwrap();
    let cases: Vec<(&Broken, &String)> = set
        .iter()
        .flat_map(|b| b.checks.iter().map(move |c| (b, c)))
        .collect();
    // Two at a time, like the run itself.
    let missed: Vec<String> = cases
        .chunks(2)
        .flat_map(|pair| {
            std::thread::scope(|s| {
                let handles: Vec<_> = pair
                    .iter()
                    .map(|(b, check)| s.spawn(|| trips(b, check, spy.path())))
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(
        missed.is_empty(),
        "broken plugins not caught:\n{}",
        missed.join("\n")
    );
}

/// `None` when `check` fails (or warns) on the broken plugin `b`.
fn trips(b: &Broken, check: &str, spy_dir: &Path) -> Option<String> {
    let dir = install(b);
    let opts = RunOptions {
        // The chained profile's preceding plugin (ptp) comes from upstream.
        cni_path: vec![PathBuf::from("/usr/lib/cni")],
        profile: None,
        versions: Some(vec![b.version.clone()]),
        filter: Some(check.to_string()),
        timeout: Duration::from_secs(20),
        jobs: 1,
        spy_dir: Some(spy_dir.to_path_buf()),
    };
    let report = suite::run_plugin(&dir.path().join(&b.plugin_type), &opts, &|_| {}).unwrap();
    let result = report
        .results
        .iter()
        .find(|r| r.id == check && r.version == b.version);
    match result.map(|r| r.status) {
        Some(Status::Fail | Status::Warn) => None,
        other => Some(format!(
            "{}: {check} at {} gave {other:?}",
            b.name, b.version
        )),
    }
}
