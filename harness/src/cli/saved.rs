//! Reading back a JSON report written by `run` or `runtime` (for `report`
//! and `--rerun-failed`).

use anyhow::{Context, Result};
use cni_conformance::report::Provenance;
use cni_conformance::suite::{CaseResult, PluginReport};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    #[serde(default)]
    provenance: Option<Provenance>,
    plugins: Vec<PluginReport>,
    results: Vec<CaseResult>,
}

/// A JSON report written by `run` or `runtime`: its plugins, each with its
/// results again, and its provenance.
pub(crate) fn load(path: &std::path::Path) -> Result<(Vec<PluginReport>, Option<Provenance>)> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let saved: Saved = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a JSON report of this harness", path.display()))?;
    let reports = saved
        .plugins
        .into_iter()
        .map(|mut p| {
            // A result names its plugin by type (the binary's file name);
            // a runtime's results name it as its report does.
            let name = std::path::Path::new(&p.plugin)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            p.results = saved
                .results
                .iter()
                .filter(|r| r.plugin == p.plugin || r.plugin == name)
                .cloned()
                .collect();
            p
        })
        .collect();
    Ok((reports, saved.provenance))
}
