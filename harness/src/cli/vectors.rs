//! `cni-conformance vectors`: replay the vector corpus against a plugin and
//! say, per vector, where its normalised output differs from the reference
//! plugins' (an informational comparison, not a verdict).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cni_conformance::vectors;

pub(crate) fn vectors(
    plugin: Option<PathBuf>,
    dir: Option<PathBuf>,
    reference_dir: &Path,
) -> Result<bool> {
    let dir = match dir {
        Some(d) => d,
        None => default_dir().context("no vectors folder here: pass --dir")?,
    };
    let dir = dir
        .canonicalize()
        .with_context(|| format!("opening {}", dir.display()))?;
    let corpus = vectors::load_dir(&dir)?;
    let (cni_path, only) = match &plugin {
        // The plugin's own folder first: its delegates are found beside it.
        Some(p) => {
            let name = p
                .file_name()
                .context("--plugin names no file")?
                .to_string_lossy()
                .into_owned();
            let folder = p.parent().context("--plugin has no folder")?.to_path_buf();
            (vec![folder, reference_dir.to_path_buf()], Some(name))
        }
        None => (vec![reference_dir.to_path_buf()], None),
    };
    let (mut same, mut differ, mut unreferenced, mut skipped) = (0, 0, 0, 0);
    for v in &corpus {
        let kind = v
            .config
            .get("type")
            .or_else(|| v.config.get("plugins").and_then(|p| p.get(0)?.get("type")));
        let kind = kind.and_then(|t| t.as_str()).unwrap_or_default();
        if only.as_deref().is_some_and(|o| o != kind) {
            skipped += 1;
            continue;
        }
        let actual = vectors::replay(v, &cni_path, &dir)?;
        match vectors::read_snapshot(&dir.join("snapshots").join(format!("{}.snap", v.name))) {
            None => {
                unreferenced += 1;
                out!(
                    "?    {:38} no reference transcript; this run's:\n{actual:#}",
                    v.name
                );
            }
            Some(expected) => {
                let diffs = vectors::differences(&expected, &actual);
                if diffs.is_empty() {
                    same += 1;
                    out!("same {}", v.name);
                } else {
                    differ += 1;
                    out!("diff {:38} {}", v.name, v.description);
                    for d in diffs.iter().take(6) {
                        out!("       {d}");
                    }
                    if diffs.len() > 6 {
                        out!("       ... {} more", diffs.len() - 6);
                    }
                }
            }
        }
    }
    out!(
        "{same} same as the reference, {differ} different, {unreferenced} without a reference, {skipped} for other plugins"
    );
    Ok(true)
}

/// `vectors/` in the current folder, else beside a build tree
/// (`target/<profile>/../../vectors`).
fn default_dir() -> Option<PathBuf> {
    let here = PathBuf::from("vectors");
    if here.is_dir() {
        return Some(here);
    }
    let exe = std::env::current_exe().ok()?;
    let repo = exe.ancestors().nth(3)?.join("vectors");
    repo.is_dir().then_some(repo)
}
