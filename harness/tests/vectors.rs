//! Every vector replayed against the reference plugins, pinned by insta
//! snapshots in vectors/snapshots (CI runs in check mode: an unreviewed
//! change fails).

mod common;
use common::reference_dir;

use std::path::{Path, PathBuf};

use cni_conformance::vectors;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors")
        .canonicalize()
        .unwrap()
}

#[test]
fn vectors_replay_against_the_reference_plugins() {
    let dir = vectors_dir();
    let all = vectors::load_dir(&dir).unwrap();
    assert!(all.len() >= 40, "only {} vectors", all.len());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir.join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for v in &all {
            let transcript = vectors::replay(v, &[reference_dir()], &dir).unwrap();
            insta::assert_json_snapshot!(v.name.clone(), transcript);
        }
    });
}
