//! `cni-conformance run` and `list`: the catalog against plugins, and the
//! catalog itself.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use cni_conformance::checks::{self, Level};
use cni_conformance::suite::{self, CaseResult, PluginReport, RunOptions, Status};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Junit,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s {
            "human" => Format::Human,
            "json" => Format::Json,
            "junit" => Format::Junit,
            other => bail!("unknown format {other:?}: use human, json or junit"),
        })
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Warn => "warn",
        Status::Skip => "skip",
    }
}

/// Runs every plugin; true when no MUST check failed.
pub fn run(
    plugins: &[PathBuf],
    opts: &RunOptions,
    format: Format,
    output: Option<PathBuf>,
) -> Result<bool> {
    let live = format == Format::Human && output.is_none();
    let out = Mutex::new(std::io::stdout());
    let progress = |r: &CaseResult| {
        if live {
            let mut o = out.lock().expect("stdout");
            let _ = writeln!(
                o,
                "{:4} {:<40} {:<6} {:<6} {}",
                status_word(r.status),
                r.id,
                r.version,
                r.level,
                short(r)
            );
        }
    };
    let mut reports = Vec::new();
    for plugin in plugins {
        if live {
            out!("== {}", plugin.display());
        }
        reports.push(
            suite::run_plugin(plugin, opts, &progress)
                .with_context(|| plugin.display().to_string())?,
        );
    }
    let text = match format {
        Format::Human => human(&reports),
        Format::Json => serde_json::to_string_pretty(&json_report(&reports))? + "\n",
        Format::Junit => junit(&reports)?,
    };
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            // The CI log shows the verdict too, not only the file.
            out!("{}", human(&reports).trim_start());
            out!("report written to {}", path.display());
        }
        None => out!("{}", text.trim_end()),
    }
    for rep in &reports {
        let must: Vec<&CaseResult> = rep
            .results
            .iter()
            .filter(|r| r.level == Level::Must)
            .collect();
        if !must.is_empty() && must.iter().all(|r| r.status == Status::Skip) {
            let why = must[0].reason.as_deref().unwrap_or("no reason given");
            bail!(
                "{}: all {} MUST cases were skipped, so the run proves nothing (the first: {} at {}: {why})",
                rep.plugin,
                must.len(),
                must[0].id,
                must[0].version
            );
        }
    }
    Ok(reports
        .iter()
        .flat_map(|r| &r.results)
        .all(|r| r.status != Status::Fail))
}

fn short(r: &CaseResult) -> String {
    match (&r.reason, r.status) {
        (Some(reason), Status::Skip) => format!("({reason})"),
        _ if r.status == Status::Pass => String::new(),
        _ => r.message.chars().take(160).collect(),
    }
}

/// The summary after the live lines: counts per category, then every
/// failure and warning with its clause, expectation and evidence.
fn human(reports: &[PluginReport]) -> String {
    let mut s = String::new();
    for rep in reports {
        s += &format!(
            "\n== {} (profile {}, versions {})\n",
            rep.plugin,
            rep.profile,
            rep.versions.join(" ")
        );
        let mut categories: Vec<&str> = rep.results.iter().map(|r| r.category.as_str()).collect();
        categories.dedup();
        for cat in categories {
            let sum = suite::summarise(rep.results.iter().filter(|r| r.category == cat));
            s += &format!(
                "   {cat:<12} {:>3} passed {:>3} failed {:>3} warned {:>3} skipped\n",
                sum.passed, sum.failed, sum.warned, sum.skipped
            );
        }
        for r in rep
            .results
            .iter()
            .filter(|r| matches!(r.status, Status::Fail | Status::Warn))
        {
            s += &format!(
                "\n{} {} [{}] {} ({})\n",
                status_word(r.status),
                r.id,
                r.version,
                r.level,
                r.clause
            );
            s += &format!("   expected: {}\n   happened: {}\n", r.summary, r.message);
            for e in &r.evidence {
                s += &format!("   plugin:   {}\n", e.chars().take(400).collect::<String>());
            }
        }
    }
    let all = suite::summarise(reports.iter().flat_map(|r| &r.results));
    s += &format!(
        "\n{} warned, {} skipped (each with its reason above or in --format json)\n",
        all.warned, all.skipped
    );
    s += &format!("{} passed, {} failed\n", all.passed, all.failed);
    s
}

fn json_report(reports: &[PluginReport]) -> serde_json::Value {
    let results: Vec<&CaseResult> = reports.iter().flat_map(|r| &r.results).collect();
    json!({
        "plugin": reports.iter().map(|r| r.plugin.as_str()).collect::<Vec<_>>().join(", "),
        "summary": suite::summarise(results.iter().copied()),
        "plugins": reports.iter().map(|r| json!({"plugin": r.plugin, "profile": r.profile, "versions": r.versions})).collect::<Vec<_>>(),
        "results": results,
    })
}

fn junit(reports: &[PluginReport]) -> Result<String> {
    let mut report = Report::new("cni-conformance");
    for rep in reports {
        let mut suite = TestSuite::new(rep.plugin.clone());
        for r in &rep.results {
            let status = match r.status {
                Status::Pass | Status::Warn => TestCaseStatus::success(),
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(r.message.clone());
                    s.set_description(r.evidence.join("\n"));
                    s
                }
                Status::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(r.reason.clone().unwrap_or_default());
                    s
                }
            };
            let mut case = TestCase::new(format!("{} [{}]", r.id, r.version), status);
            case.set_classname(r.category.clone());
            case.set_time(std::time::Duration::from_millis(r.duration_ms));
            if r.status == Status::Warn {
                case.set_system_out(format!("WARN ({} {}): {}", r.level, r.clause, r.message));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

/// `list`: every check, implemented or not.
pub fn list(as_json: bool) -> Result<bool> {
    let catalog = checks::catalog();
    if as_json {
        let items: Vec<serde_json::Value> = catalog
            .iter()
            .map(|c| {
                json!({"id": c.id, "level": c.level, "mustSince": c.must_since, "clause": c.clause,
                       "since": c.since, "until": c.until, "kinds": c.kinds.iter().map(|k| format!("{k:?}").to_lowercase()).collect::<Vec<_>>(),
                       "summary": c.summary, "implemented": c.run.is_some(), "notYet": c.not_yet})
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(true);
    }
    for c in &catalog {
        let range = match c.until {
            Some(u) => format!("{}-{u}", c.since),
            None => format!("{}+", c.since),
        };
        let level = match (c.level, c.must_since) {
            (Level::Must, Some(v)) => format!("MUST {v}+"),
            (l, _) => l.to_string(),
        };
        out!("{:<36} {:<11} {:<12} {}", c.id, level, range, c.summary);
        out!("{:<36} {}", "", c.clause);
        if let Some(why) = c.not_yet {
            out!("{:<36} not yet implemented: {why}", "");
        }
    }
    let implemented = catalog.iter().filter(|c| c.run.is_some()).count();
    out!("{} checks, {implemented} implemented", catalog.len());
    Ok(true)
}
