//! Judging runtimes: a runtime (podman, buildah, containerd, this
//! harness's own, or any runtime a driver file describes) runs scenarios
//! whose network lists are made of spies; the `runtime.*` checks judge the
//! calls the spies recorded, each against the rule of the version the
//! runtime spoke.
//!
//! `stage` (where the runtime runs) → `driver` (how it is made to act;
//! `own` is the `self` driver) → `scenario` (lists and actions; what was
//! recorded) → `verdicts` (the checks, pure) → [`judge`] (results).

pub mod driver;
pub mod own;
pub mod scenario;
pub mod stage;
pub mod verdicts;

use std::path::{Path, PathBuf};

use crate::checks::rules::{self, Level};
use crate::spec::Version;
use crate::suite::{CaseResult, PluginReport, Status};

pub use driver::{Ability, Action, CommandDriver, Driver};
pub use own::{Fault, OwnDriver};
pub use stage::{Stage, StageError};
use verdicts::{Evidence, Verdict};

/// Plays every scenario with `driver` in a fresh stage and judges the
/// recorded calls. A stage or driver failure is the report's `error`,
/// never a verdict; whatever happens, the runtime's leftovers are removed
/// and any that could not be are reported as an error too.
pub fn judge(
    driver: &dyn Driver,
    harness: &Path,
    plugin_dirs: &[PathBuf],
    calls_dir: Option<&Path>,
) -> PluginReport {
    let mut report = PluginReport {
        plugin: format!("runtime {}", driver.name()),
        profile: "runtime scenarios".into(),
        versions: Vec::new(),
        error: None,
        results: Vec::new(),
    };
    let stage = match Stage::new(harness, plugin_dirs) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(crate::suite::error_chain(&e));
            return report;
        }
    };
    let played = driver
        .prepare(&stage)
        .and_then(|()| scenario::play_all(driver, &stage));
    let mut left = driver.teardown(&stage);
    left.extend(stage.remove_cgroups());
    let runtime_netns = stage.runtime_netns();
    drop(stage);
    let played = match played {
        Ok(p) => p,
        Err(e) => {
            report.error = Some(crate::suite::error_chain(&e));
            return report;
        }
    };
    if let Some(dir) = calls_dir
        && let Err(e) = scenario::save(&played, dir)
    {
        left.push(format!(
            "the calls could not be saved in {}: {e}",
            dir.display()
        ));
    }
    if !left.is_empty() {
        report.error = Some(format!("the runtime left: {}", left.join("; ")));
    }
    // A runtime that never reached a spy in the plain lifecycle was not
    // driven: that is the driver's failure, not a verdict.
    if let Some(p) = played.iter().find(|p| p.scenario == "lifecycle")
        && p.runtime_calls().is_empty()
    {
        let said: Vec<String> = p
            .acts
            .iter()
            .filter_map(|(a, d)| {
                d.as_ref()
                    .filter(|d| !d.ok)
                    .map(|d| format!("{}: {}", a.word(), d.output.trim()))
            })
            .collect();
        report.error = Some(format!(
            "the runtime called no plugin in the lifecycle scenario; {}",
            if said.is_empty() {
                "every action succeeded".to_string()
            } else {
                said.join("; ")
            }
        ));
        return report;
    }
    let evidence = Evidence {
        played: &played,
        runtime_netns,
    };
    let run_version = evidence.version().unwrap_or(Version::V1_0_0);
    for check in verdicts::catalog() {
        let judged = (check.judge)(&evidence);
        let version = judged.version.unwrap_or(run_version);
        let Some(rule) = rules::at_any(check.id, version) else {
            continue;
        };
        let (status, message, reason) = match judged.verdict {
            Verdict::Pass(m) => (Status::Pass, m, None),
            Verdict::Deviation(m) => (
                match rule.level {
                    Level::Must => Status::Fail,
                    Level::Should => Status::Warn,
                    Level::May | Level::Info => Status::Note,
                },
                m,
                None,
            ),
            Verdict::NotExercised(m) => (Status::NotExercised, String::new(), Some(m)),
        };
        if !report.versions.contains(&version) {
            report.versions.push(version);
        }
        report.results.push(CaseResult {
            plugin: report.plugin.clone(),
            id: check.id.into(),
            category: "runtime".into(),
            level: rule.level,
            version,
            status,
            message,
            reason,
            blocked_by: None,
            clause: rule.clause.clone(),
            quote: rule.quote.clone(),
            basis: rule.basis,
            summary: format!("{} ({})", check.summary, check.obligation),
            evidence: judged.evidence,
            // The scenarios ran once for every check together.
            duration_ms: 0,
            calls: Vec::new(),
            timings: Default::default(),
        });
    }
    report.versions.sort();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_check_has_a_rule_at_every_version_it_can_be_judged() {
        for c in verdicts::catalog() {
            for v in [Version::V0_4_0, Version::V1_0_0, Version::V1_1_0] {
                let r =
                    rules::at_any(c.id, v).unwrap_or_else(|| panic!("{} has no rule at {v}", c.id));
                assert!(
                    !r.quote.trim().is_empty() && !r.clause.is_empty(),
                    "{} at {v}",
                    c.id
                );
            }
        }
    }
}
