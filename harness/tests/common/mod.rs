//! Paths the integration tests share.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The harness binary cargo built for these tests.
pub fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cni-conformance"))
}

/// Our reference plugins are built beside the harness in the same target
/// folder.
pub fn reference_dir() -> PathBuf {
    let dir = harness().parent().unwrap().to_path_buf();
    assert!(
        dir.join("macvlan").is_file(),
        "the reference plugins are not built in {}: run `cargo build --workspace` (cargo test --workspace does)",
        dir.display()
    );
    dir
}
