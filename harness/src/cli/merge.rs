//! `cni-conformance report`: several JSON reports (plugins, runtimes) as
//! one matrix, in any format.

use std::path::PathBuf;

use anyhow::Result;
use cni_conformance::report::Provenance;
use cni_conformance::suite::PluginReport;

use super::run::Format;
use super::saved::load;

pub(crate) fn merge(files: &[PathBuf], format: Format, output: Option<PathBuf>) -> Result<bool> {
    let mut reports: Vec<PluginReport> = Vec::new();
    let mut provenance: Option<Provenance> = None;
    for f in files {
        let (saved, p) = load(f)?;
        reports.extend(saved);
        match (&mut provenance, p) {
            (None, p) => provenance = p,
            (Some(all), Some(p)) => all.judged.extend(p.judged),
            _ => {}
        }
    }
    let provenance = provenance.unwrap_or_default();
    super::run::write_report(&reports, &provenance, format, output)?;
    Ok(true)
}
