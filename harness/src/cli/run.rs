//! `cni-conformance run` and `list`: the catalog against plugins, and the
//! catalog itself.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use cni_conformance::checks::{self, Basis, Impl, Level, Rule};
use cni_conformance::report;
use cni_conformance::suite::{self, RunOptions};
use cni_conformance::suite::{CaseResult, PluginReport, Status};
use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
    Junit,
}

/// Runs every plugin and writes the report, always; the verdict: true when
/// no MUST check failed. Harness errors, plugins that could not be run and
/// runs that prove nothing are errors (exit 2), after the report.
pub(crate) fn run(
    plugins: &[PathBuf],
    opts: &RunOptions,
    format: Format,
    output: Option<PathBuf>,
) -> Result<bool> {
    let live = format == Format::Human && output.is_none();
    let out = Mutex::new(());
    let progress = |r: &CaseResult| {
        if live {
            let _guard = out.lock().expect("stdout");
            out!("{}", report::line(r));
        }
    };
    let mut reports = Vec::new();
    for plugin in plugins {
        if live {
            out!("== {}", plugin.display());
        }
        reports.push(
            suite::run_plugin(plugin, opts, &progress).unwrap_or_else(|e| PluginReport {
                plugin: plugin.display().to_string(),
                profile: opts.profile.clone().unwrap_or_default(),
                versions: Vec::new(),
                error: Some(suite::error_chain(&e)),
                results: Vec::new(),
            }),
        );
    }
    let text = match format {
        Format::Human => report::human(&reports),
        Format::Json => report::json(&reports),
        Format::Junit => report::junit(&reports)?,
    };
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            // The CI log shows the verdict too, not only the file.
            out!("{}", report::human(&reports).trim_start());
            out!("report written to {}", path.display());
        }
        None => out!("{}", text.trim_end()),
    }
    for rep in &reports {
        if let Some(e) = &rep.error {
            bail!("{}: {e}", rep.plugin);
        }
    }
    let errors = reports
        .iter()
        .flat_map(|r| &r.results)
        .filter(|r| r.status == Status::Error)
        .count();
    if errors > 0 {
        bail!("the harness could not run {errors} case(s): see the ERROR lines of the report");
    }
    for rep in &reports {
        let must: Vec<&CaseResult> = rep
            .results
            .iter()
            .filter(|r| r.level == Level::Must)
            .collect();
        let unjudged =
            |r: &&CaseResult| matches!(r.status, Status::NotApplicable | Status::Blocked);
        if !must.is_empty() && must.iter().all(unjudged) {
            bail!(
                "{}: none of the {} MUST cases could judge the plugin, so the run proves nothing (the first, {} at {}: {})",
                rep.plugin,
                must.len(),
                must[0].id,
                must[0].version,
                must[0].reason.as_deref().unwrap_or("no reason given")
            );
        }
    }
    Ok(reports
        .iter()
        .flat_map(|r| &r.results)
        .all(|r| r.status != Status::Fail))
}

/// One catalog entry, as `list --json` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    id: &'static str,
    refs: &'static str,
    kinds: Vec<String>,
    summary: &'static str,
    implemented: bool,
    not_yet: Option<&'static str>,
    /// By version range: level, clause, quote.
    rules: Vec<&'static Rule>,
}

/// `list`: every check, implemented or not, with its rules by version.
pub(crate) fn list(as_json: bool) -> Result<bool> {
    let catalog = checks::catalog();
    if as_json {
        let items: Vec<Entry> = catalog
            .iter()
            .map(|c| Entry {
                id: c.id,
                refs: c.refs,
                kinds: c.kinds.iter().map(ToString::to_string).collect(),
                summary: c.summary,
                implemented: c.run().is_some(),
                not_yet: match c.imp {
                    Impl::NotYet(why) => Some(why),
                    Impl::Run(_) => None,
                },
                rules: c.rules(),
            })
            .collect();
        let runtime = cni_conformance::runtimes::verdicts::catalog();
        let items: Vec<Entry> = items
            .into_iter()
            .chain(runtime.iter().map(|c| Entry {
                id: c.id,
                refs: c.obligation,
                kinds: vec!["runtime".into()],
                summary: c.summary,
                implemented: true,
                not_yet: None,
                rules: checks::rules::of(c.id),
            }))
            .collect();
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(true);
    }
    let runtime = cni_conformance::runtimes::verdicts::catalog();
    let rows = catalog
        .iter()
        .map(|c| (c.id, c.summary, c.refs, c.imp.not_yet(), c.rules()))
        .chain(
            runtime
                .iter()
                .map(|c| (c.id, c.summary, c.obligation, None, checks::rules::of(c.id))),
        );
    for (id, summary, refs, not_yet, rules) in rows {
        out!("{:<40} {} ({})", id, summary, refs);
        if let Some(why) = not_yet {
            out!("    not yet implemented: {why}");
        }
        for r in rules {
            let kinds = r
                .kinds
                .as_ref()
                .map(|k| {
                    let names: Vec<String> = k.iter().map(ToString::to_string).collect();
                    format!(" [{}]", names.join(", "))
                })
                .unwrap_or_default();
            let derived = if r.basis == Basis::Derived {
                " derived"
            } else {
                ""
            };
            out!(
                "    {:<12} {:<6}{kinds}{derived} {}: \"{}\"",
                r.versions.to_string(),
                r.level,
                r.clause,
                r.quote
            );
        }
    }
    let implemented = catalog.iter().filter(|c| c.run().is_some()).count();
    out!(
        "{} plugin checks, {implemented} implemented; {} runtime checks (`cni-conformance runtime`)",
        catalog.len(),
        runtime.len()
    );
    Ok(true)
}
