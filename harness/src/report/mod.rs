//! The report: a run's results in the formats people and CI read (human,
//! JSON, JUnit, TAP, Markdown, HTML). The JSON document is [`Report`], the
//! contract of `schemas/report.json`, versioned by [`FORMAT_VERSION`];
//! every format starts from a [`Run`]: the plugins' results and where they
//! come from ([`Provenance`]).

pub mod html;
pub mod markdown;
pub mod provenance;
pub mod tap;

pub use provenance::{Mode, Provenance};

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::suite::{CaseResult, PluginReport, Status, Summary};

/// Bumped when a field changes meaning or goes; new fields are additions.
/// 2: statuses not-applicable, blocked and error replace skip.
/// 3: levels per version with INFO, status note, quote and basis.
/// 4: provenance; statuses not-exercised, xfail and xpass.
pub const FORMAT_VERSION: u32 = 4;

/// What every format renders: the reports of one run and its provenance.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub reports: &'a [PluginReport],
    pub provenance: &'a Provenance,
}

/// The JSON report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report<'a> {
    pub format_version: u32,
    /// Every plugin, comma-separated.
    pub plugin: String,
    pub provenance: Provenance,
    pub summary: Summary,
    pub plugins: &'a [PluginReport],
    pub results: Vec<&'a CaseResult>,
}

impl<'a> Report<'a> {
    pub fn new(run: Run<'a>) -> Report<'a> {
        let plugins = run.reports;
        let results: Vec<&CaseResult> = plugins.iter().flat_map(|p| &p.results).collect();
        let mut provenance = run.provenance.clone();
        provenance.cases_not_run = results.iter().filter(|r| r.status == Status::Error).count()
            + plugins.iter().filter(|p| p.error.is_some()).count();
        Report {
            provenance,
            format_version: FORMAT_VERSION,
            plugin: plugins
                .iter()
                .map(|p| p.plugin.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            summary: Summary::of(results.iter().copied()),
            plugins,
            results,
        }
    }
}

/// The live line for one result.
pub fn line(r: &CaseResult) -> String {
    let tail = match r.status {
        Status::Pass => String::new(),
        Status::NotApplicable
        | Status::NotExercised
        | Status::Blocked
        | Status::Error
        | Status::XFail => format!("({})", r.reason.as_deref().unwrap_or_default()),
        Status::Fail | Status::Warn | Status::Note | Status::XPass => {
            r.message.chars().take(160).collect()
        }
    };
    format!(
        "{:7} {:<40} {:<6} {:<6} {tail}",
        r.status.word(),
        r.id,
        r.version,
        r.level
    )
}

/// The summary after the live lines: counts per category, then every
/// failure and warning with its clause, expectation and evidence, then
/// harness errors apart.
pub fn human(run: Run) -> String {
    let reports = run.reports;
    let mut s = String::new();
    let _ = writeln!(s, "{}", run.provenance.headline());
    for rep in reports {
        let versions: Vec<&str> = rep.versions.iter().map(|v| v.as_str()).collect();
        let _ = writeln!(
            s,
            "\n== {} (profile {}, versions {})",
            rep.plugin,
            rep.profile,
            versions.join(" ")
        );
        if let Some(e) = &rep.error {
            let _ = writeln!(s, "   not run: {e}");
        }
        let mut categories: Vec<&str> = Vec::new();
        for r in &rep.results {
            if !categories.contains(&r.category.as_str()) {
                categories.push(&r.category);
            }
        }
        for cat in categories {
            let sum = Summary::of(rep.results.iter().filter(|r| r.category == cat));
            let _ = writeln!(
                s,
                "   {cat:<12} {:>3} passed {:>3} failed {:>3} warned {:>3} noted {:>3} n/a {:>3} blocked{}",
                sum.passed,
                sum.failed,
                sum.warned,
                sum.noted,
                sum.not_applicable,
                sum.blocked,
                if sum.errors > 0 {
                    format!(" {:>3} ERRORS", sum.errors)
                } else {
                    String::new()
                }
            );
        }
        for r in rep.results.iter().filter(|r| {
            matches!(
                r.status,
                Status::Fail | Status::Warn | Status::Note | Status::XPass | Status::XFail
            )
        }) {
            let _ = writeln!(
                s,
                "\n{} {} [{}] {} {}{}: \"{}\"",
                r.status.word(),
                r.id,
                r.version,
                r.level,
                r.clause,
                if r.basis == crate::checks::Basis::Derived {
                    " (derived)"
                } else {
                    ""
                },
                r.quote
            );
            let _ = writeln!(s, "   expected: {}\n   happened: {}", r.summary, r.message);
            for e in &r.evidence {
                let _ = writeln!(
                    s,
                    "   plugin:   {}",
                    e.chars().take(400).collect::<String>()
                );
            }
        }
        let errors: Vec<&CaseResult> = rep
            .results
            .iter()
            .filter(|r| r.status == Status::Error)
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(
                s,
                "\nThe harness could not run {} case(s); these are no verdict on the plugin:",
                errors.len()
            );
            for r in errors {
                let _ = writeln!(
                    s,
                    "   ERROR {} [{}]: {}",
                    r.id,
                    r.version,
                    r.reason.as_deref().unwrap_or_default()
                );
            }
        }
    }
    let all = Summary::of(reports.iter().flat_map(|r| &r.results));
    let _ = writeln!(
        s,
        "\n{} warned, {} noted, {} not applicable, {} blocked (each with its reason above or in --format json)",
        all.warned, all.noted, all.not_applicable, all.blocked
    );
    if all.not_exercised > 0 {
        let _ = writeln!(
            s,
            "{} rules not exercised: the runtime never did what they govern",
            all.not_exercised
        );
    }
    if all.errors > 0 {
        let _ = writeln!(s, "{} harness errors", all.errors);
    }
    let _ = writeln!(s, "{} passed, {} failed", all.passed, all.failed);
    s
}

pub fn json(run: Run) -> String {
    serde_json::to_string_pretty(&Report::new(run)).expect("reports serialise") + "\n"
}

pub fn junit(run: Run) -> Result<String, quick_junit::SerializeError> {
    let reports = run.reports;
    let mut report = quick_junit::Report::new("cni-conformance");
    for rep in reports {
        let mut suite = TestSuite::new(rep.plugin.clone());
        for r in &rep.results {
            let status = match r.status {
                Status::Pass | Status::Warn | Status::Note | Status::XFail => {
                    TestCaseStatus::success()
                }
                Status::XPass => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(r.message.clone());
                    s
                }
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(r.message.clone());
                    s.set_description(r.evidence.join("\n"));
                    s
                }
                Status::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(r.reason.clone().unwrap_or_default());
                    s
                }
                Status::NotApplicable | Status::NotExercised | Status::Blocked => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(r.reason.clone().unwrap_or_default());
                    s
                }
            };
            let mut case = TestCase::new(format!("{} [{}]", r.id, r.version), status);
            case.set_classname(r.category.clone());
            // The rule the verdict rests on, on every case.
            let basis = format!("{:?}", r.basis).to_lowercase();
            case.add_properties([
                ("level", r.level.to_string().as_str()),
                ("clause", r.clause.as_str()),
                ("quote", r.quote.as_str()),
                ("basis", basis.as_str()),
            ]);
            case.set_time(std::time::Duration::from_millis(r.duration_ms));
            if matches!(r.status, Status::Warn | Status::Note) {
                case.set_system_out(format!(
                    "{} ({} {} \"{}\"): {}",
                    r.status.word().to_uppercase(),
                    r.level,
                    r.clause,
                    r.quote,
                    r.message
                ));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}
