//! `cni-conformance run` and `list`: the catalog against plugins, and the
//! catalog itself.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use cni_conformance::checks::{self, Basis, Impl, Level, Rule};
use cni_conformance::expectations::Expectations;
use cni_conformance::report::{self, Mode, Provenance};
use cni_conformance::suite::{self, RunOptions};
use cni_conformance::suite::{CaseResult, PluginReport, Status};
use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
    Junit,
    Tap,
    Markdown,
    Html,
}

/// How a run judges, and what it knows beforehand.
pub(crate) struct Judging {
    pub mode: Mode,
    pub expectations: Option<Expectations>,
    /// Print where the run's time went.
    pub timings: bool,
}

/// Where a run's time went: each part summed over the cases, and the
/// wall clock.
fn timings(reports: &[PluginReport], wall: std::time::Duration, jobs: usize) -> String {
    let mut sum = cni_conformance::checks::Timings::default();
    let mut cases_ms = 0u64;
    let mut n = 0;
    for r in reports.iter().flat_map(|p| &p.results) {
        sum += r.timings;
        cases_ms += r.duration_ms;
        n += 1;
    }
    let s = |us: u64| us as f64 / 1e6;
    let cases = cases_ms as f64 / 1e3;
    let judged =
        (cases - s(sum.setup_us + sum.plugin_us + sum.observe_us + sum.teardown_us)).max(0.0);
    format!(
        "timings: {n} cases in {:.1} s wall ({jobs} jobs); summed over cases {cases:.1} s = sandbox set-up {:.1} s + plugins {:.1} s + snapshots {:.1} s + tear-down {:.1} s + judging {judged:.1} s",
        wall.as_secs_f64(),
        s(sum.setup_us),
        s(sum.plugin_us),
        s(sum.observe_us),
        s(sum.teardown_us),
    )
}

/// Writes the report in `format` to `output` (or stdout); when
/// `GITHUB_STEP_SUMMARY` names a file, the Markdown summary is appended
/// to it too.
pub(crate) fn write_report(
    reports: &[PluginReport],
    provenance: &Provenance,
    format: Format,
    output: Option<PathBuf>,
) -> Result<()> {
    let run = report::Run {
        reports,
        provenance,
    };
    let text = match format {
        Format::Human => report::human(run),
        Format::Json => report::json(run),
        Format::Junit => report::junit(run)?,
        Format::Tap => report::tap::tap(run),
        Format::Markdown => report::markdown::markdown(run, usize::MAX),
        Format::Html => report::html::html(run),
    };
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            // The CI log shows the verdict too, not only the file.
            out!("{}", report::human(run).trim_start());
            out!("report written to {}", path.display());
        }
        None => out!("{}", text.trim_end()),
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        use std::io::Write as _;
        let md = report::markdown::markdown(run, report::markdown::STEP_SUMMARY_LIMIT);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(md.as_bytes()))
            .with_context(|| {
                format!(
                    "appending to GITHUB_STEP_SUMMARY {}",
                    summary.to_string_lossy()
                )
            })?;
    }
    Ok(())
}

/// The run's verdict after the report is written: plugins that could not
/// be run and harness errors are errors (exit 2); otherwise true unless a
/// MUST failed, an expectation went stale (xpass), or, in strict and
/// certification modes, a SHOULD deviated.
pub(crate) fn verdict(reports: &[PluginReport], mode: Mode) -> Result<bool> {
    for rep in reports {
        if let Some(e) = &rep.error {
            bail!("{}: {e}", rep.plugin);
        }
    }
    let all = || reports.iter().flat_map(|r| &r.results);
    let errors = all().filter(|r| r.status == Status::Error).count();
    if errors > 0 {
        bail!("the harness could not run {errors} case(s): see the ERROR lines of the report");
    }
    for rep in reports {
        let must: Vec<&CaseResult> = rep
            .results
            .iter()
            .filter(|r| r.level == Level::Must)
            .collect();
        let unjudged = |r: &&CaseResult| {
            matches!(
                r.status,
                Status::NotApplicable | Status::Blocked | Status::NotExercised
            )
        };
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
    let stale: Vec<&CaseResult> = all().filter(|r| r.status == Status::XPass).collect();
    for r in &stale {
        eprintln!("cni-conformance: {} [{}]: {}", r.id, r.version, r.message);
    }
    // A plugin that keeps hanging cannot pass: the MUST cases given up on
    // would each have waited for the same timeout.
    let given_up = all()
        .filter(|r| r.blocked_by.as_deref() == Some("timeout") && r.level == Level::Must)
        .count();
    if given_up > 0 {
        eprintln!(
            "cni-conformance: {given_up} MUST case(s) not run because the plugin kept timing out (see blocked)"
        );
    }
    let strict = mode != Mode::Normal;
    Ok(stale.is_empty()
        && given_up == 0
        && all().all(|r| r.status != Status::Fail && !(strict && r.status == Status::Warn)))
}

/// Runs every plugin and writes the report, always; then the verdict.
pub(crate) fn run(
    plugins: &[PathBuf],
    opts: &RunOptions,
    judging: &Judging,
    format: Format,
    output: Option<PathBuf>,
    bundle: Option<&std::path::Path>,
) -> Result<bool> {
    let paths: Vec<&std::path::Path> = plugins.iter().map(PathBuf::as_path).collect();
    let mut provenance = Provenance::now(&paths, std::env::args().skip(1).collect(), judging.mode);
    provenance.expectations = judging.expectations.as_ref().map(|e| e.path.clone());
    let live = format == Format::Human && output.is_none();
    if live {
        out!("{}", provenance.headline());
    }
    let wall = std::time::Instant::now();
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
        let mut rep = suite::run_plugin(plugin, opts, &progress).unwrap_or_else(|e| PluginReport {
            plugin: plugin.display().to_string(),
            profile: opts.profile.clone().unwrap_or_default(),
            versions: Vec::new(),
            error: Some(suite::error_chain(&e)),
            results: Vec::new(),
        });
        if let Some(x) = &judging.expectations {
            x.apply(&mut rep.results);
        }
        reports.push(rep);
    }
    write_report(&reports, &provenance, format, output)?;
    if judging.timings {
        // On stderr: stdout may be the report itself.
        eprintln!("{}", timings(&reports, wall.elapsed(), opts.jobs));
    }
    if let Some(dir) = bundle {
        let n = super::replay::write_bundles(dir, &reports, opts)?;
        eprintln!("cni-conformance: {n} replay folder(s) in {}", dir.display());
    }
    verdict(&reports, judging.mode)
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
