//! TAP 14: one test point per case. Deviations that do not fail the run
//! (warn, note) are `ok` with a comment, cases with no verdict `# SKIP`,
//! expected failures `not ok ... # TODO`; YAML diagnostics carry the rule.

use std::fmt::Write as _;

use super::Run;
use crate::suite::Status;

fn yaml(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(s).expect("strings serialise")
}

pub fn tap(run: Run) -> String {
    let results: Vec<_> = run.reports.iter().flat_map(|p| &p.results).collect();
    let broken: Vec<_> = run.reports.iter().filter(|p| p.error.is_some()).collect();
    let mut s = String::from("TAP version 14\n");
    let _ = writeln!(s, "1..{}", results.len() + broken.len());
    let _ = writeln!(s, "# {}", run.provenance.headline());
    let mut n = 0;
    for p in &broken {
        n += 1;
        let _ = writeln!(s, "not ok {n} - {} could not be run", p.plugin);
        let _ = writeln!(
            s,
            "  ---\n  message: {}\n  ...",
            yaml(p.error.as_deref().unwrap_or(""))
        );
    }
    for r in results {
        n += 1;
        let name = format!(
            "{} [{}] {}",
            r.id,
            r.version,
            r.plugin.rsplit('/').next().unwrap_or("")
        );
        let (ok, directive) = match r.status {
            Status::Pass => (true, String::new()),
            Status::Warn | Status::Note => (
                true,
                format!(" # {}: {}", r.status.word(), r.message.replace('#', "\\#")),
            ),
            Status::NotApplicable | Status::NotExercised | Status::Blocked => (
                true,
                format!(
                    " # SKIP {}",
                    r.reason.as_deref().unwrap_or("").replace('#', "\\#")
                ),
            ),
            Status::XFail => (
                false,
                format!(
                    " # TODO {}",
                    r.reason.as_deref().unwrap_or("").replace('#', "\\#")
                ),
            ),
            Status::Fail | Status::XPass | Status::Error => (false, String::new()),
        };
        let _ = writeln!(
            s,
            "{} {n} - {}{directive}",
            if ok { "ok" } else { "not ok" },
            name.replace('#', "\\#")
        );
        if matches!(
            r.status,
            Status::Fail | Status::XPass | Status::Error | Status::Warn
        ) {
            let _ = writeln!(s, "  ---");
            let _ = writeln!(s, "  status: {}", yaml(r.status.word()));
            let _ = writeln!(
                s,
                "  message: {}",
                yaml(if r.message.is_empty() {
                    r.reason.as_deref().unwrap_or("")
                } else {
                    &r.message
                })
            );
            let _ = writeln!(s, "  level: {}", yaml(&r.level.to_string()));
            let _ = writeln!(s, "  clause: {}", yaml(&r.clause));
            let _ = writeln!(s, "  quote: {}", yaml(&r.quote));
            if !r.evidence.is_empty() {
                let _ = writeln!(s, "  evidence:");
                for e in &r.evidence {
                    let _ = writeln!(s, "    - {}", yaml(e));
                }
            }
            let _ = writeln!(s, "  ...");
        }
    }
    s
}
