//! Markdown: a summary table, then each failure (and each warning) with
//! its clause, quote, what was expected, what was seen and the evidence.
//! Kept under a size limit so it fits a CI step summary.

use std::fmt::Write as _;

use super::Run;
use crate::suite::{Status, Summary};

/// GitHub's step summary takes at most 1 MiB.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report, at most `limit` bytes (what does not fit is cut,
/// and the cut is said).
pub fn markdown(run: Run, limit: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## CNI conformance\n\n{}\n", run.provenance.headline());
    s.push_str("| judged | pass | fail | warn | note | xfail | xpass | n/a | not exercised | blocked | error |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for p in run.reports {
        let m = Summary::of(&p.results);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&p.plugin),
            m.passed,
            m.failed,
            m.warned,
            m.noted,
            m.xfailed,
            m.xpassed,
            m.not_applicable,
            m.not_exercised,
            m.blocked,
            m.errors
        );
    }
    for p in run.reports.iter().filter(|p| p.error.is_some()) {
        let _ = writeln!(
            s,
            "\n**{} could not be run:** {}",
            cell(&p.plugin),
            p.error.as_deref().unwrap_or("")
        );
    }
    let mut details = String::new();
    for (title, wanted) in [
        (
            "Failures",
            &[Status::Fail, Status::XPass, Status::Error][..],
        ),
        ("Warnings", &[Status::Warn][..]),
    ] {
        let rows: Vec<_> = run
            .reports
            .iter()
            .flat_map(|p| &p.results)
            .filter(|r| wanted.contains(&r.status))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(details, "\n### {title}\n");
        for r in rows {
            let _ = writeln!(
                details,
                "- **{}** `{}` [{}] ({} {})\n  - expected: {}\n  - seen: {}\n  - rule: {} \"{}\"",
                r.status.word(),
                r.id,
                r.version,
                r.plugin.rsplit('/').next().unwrap_or(""),
                r.level,
                cell(&r.summary),
                cell(if r.message.is_empty() {
                    r.reason.as_deref().unwrap_or("")
                } else {
                    &r.message
                }),
                r.clause,
                cell(&r.quote)
            );
            for e in r.evidence.iter().take(10) {
                let _ = writeln!(details, "  - evidence: `{}`", e.replace('`', "'"));
            }
        }
    }
    if s.len() + details.len() > limit {
        let room = limit.saturating_sub(s.len() + 200);
        let mut cut = room.min(details.len());
        while !details.is_char_boundary(cut) {
            cut -= 1;
        }
        details.truncate(cut);
        details.push_str("\n\n_(cut to fit; the JSON report has everything)_\n");
    }
    s + &details
}
