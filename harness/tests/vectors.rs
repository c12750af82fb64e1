//! Every vector replayed against the reference plugins, pinned by insta
//! snapshots in vectors/snapshots (CI runs in check mode: an unreviewed
//! change fails).

mod common;
use common::reference_dir;

use std::path::{Path, PathBuf};

use cni_conformance::vectors;
use rstest::rstest;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors")
        .canonicalize()
        .unwrap()
}

#[test]
fn there_are_many_vectors() {
    let all = vectors::load_dir(&vectors_dir()).unwrap();
    assert!(all.len() >= 40, "only {} vectors", all.len());
}

/// One test per vector: its transcript against the reference plugins is
/// its snapshot.
#[rstest]
fn replays_as_its_snapshot(#[files("../vectors/*.json")] path: PathBuf) {
    let dir = vectors_dir();
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let v = vectors::load_dir(&dir)
        .unwrap()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} did not load"));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir.join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        let transcript = vectors::replay(&v, &[reference_dir()], &dir).unwrap();
        insta::assert_json_snapshot!(v.name.clone(), transcript);
    });
}
