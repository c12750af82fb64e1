//! One self-contained HTML file (no script, no outside resource): a
//! matrix of what was judged × version, each cell counting its verdicts and
//! opening its cases with their rule and evidence; failures first, in the
//! matrix (rows with failures on top) and in each cell.

use std::fmt::Write as _;

use super::Run;
use crate::spec::Version;
use crate::suite::{CaseResult, Status};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Lower first: how urgently a reader should look.
fn rank(s: Status) -> u8 {
    match s {
        Status::Fail | Status::XPass => 0,
        Status::Error => 1,
        Status::Warn => 2,
        Status::Note => 3,
        Status::XFail => 4,
        Status::Blocked | Status::NotApplicable | Status::NotExercised => 5,
        Status::Pass => 6,
    }
}

fn class(s: Status) -> &'static str {
    match rank(s) {
        0 | 1 => "bad",
        2 => "warn",
        3 | 4 => "note",
        5 => "none",
        _ => "ok",
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f4f4f4}.bad{background:#fdd}.warn{background:#ffe8b0}.note{background:#eef}
.ok{background:#dfd}.none{background:#f6f6f6;color:#777}summary{cursor:pointer}
details ul{margin:.3em 0;padding-left:1.2em}li{margin:.2em 0}code{font-size:12px}
.q{color:#555;font-style:italic}";

fn case(r: &CaseResult) -> String {
    let mut s = format!(
        "<li class=\"{}\"><b>{}</b> <code>{}</code> {} {}",
        class(r.status),
        esc(r.status.word()),
        esc(&r.id),
        esc(&r.level.to_string()),
        esc(if r.message.is_empty() {
            r.reason.as_deref().unwrap_or("")
        } else {
            &r.message
        })
    );
    if rank(r.status) <= 4 {
        let _ = write!(
            s,
            "<br/>expected: {}<br/><span class=\"q\">{} \"{}\"</span>",
            esc(&r.summary),
            esc(&r.clause),
            esc(&r.quote)
        );
        if !r.evidence.is_empty() {
            s.push_str("<ul>");
            for e in &r.evidence {
                let _ = write!(s, "<li><code>{}</code></li>", esc(e));
            }
            s.push_str("</ul>");
        }
    }
    s.push_str("</li>");
    s
}

pub fn html(run: Run) -> String {
    let mut versions: Vec<Version> = run
        .reports
        .iter()
        .flat_map(|p| p.versions.clone())
        .collect();
    versions.sort();
    versions.dedup();
    let mut rows: Vec<_> = run.reports.iter().collect();
    rows.sort_by_key(|p| {
        (
            p.results
                .iter()
                .map(|r| rank(r.status))
                .min()
                .unwrap_or(if p.error.is_some() { 0 } else { 6 }),
            p.plugin.clone(),
        )
    });
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>CNI conformance</title><style>{STYLE}</style></head><body><h1>CNI conformance</h1><p>{}</p><table><tr><th>judged</th>",
        esc(&run.provenance.headline())
    );
    for v in &versions {
        let _ = write!(s, "<th>{}</th>", v.as_str());
    }
    s.push_str("</tr>");
    for p in rows {
        let _ = write!(s, "<tr><th>{}", esc(&p.plugin));
        if let Some(e) = &p.error {
            let _ = write!(s, "<br/><span class=\"bad\">not run: {}</span>", esc(e));
        }
        s.push_str("</th>");
        for v in &versions {
            let mut cases: Vec<&CaseResult> =
                p.results.iter().filter(|r| r.version == *v).collect();
            if cases.is_empty() {
                s.push_str("<td class=\"none\">-</td>");
                continue;
            }
            cases.sort_by_key(|r| (rank(r.status), r.id.clone()));
            // A cell's colour is its worst verdict; cases with no verdict
            // colour it only when nothing else is there.
            let worst = cases
                .iter()
                .map(|r| r.status)
                .find(|st| rank(*st) < 5)
                .or_else(|| {
                    cases
                        .iter()
                        .map(|r| r.status)
                        .find(|st| *st == Status::Pass)
                })
                .unwrap_or(cases[0].status);
            let count = |f: &dyn Fn(Status) -> bool| cases.iter().filter(|r| f(r.status)).count();
            let _ = write!(
                s,
                "<td class=\"{}\"><details><summary>{} fail, {} warn, {} note, {} pass</summary><ul>",
                class(worst),
                count(&|st| matches!(st, Status::Fail | Status::XPass | Status::Error)),
                count(&|st| st == Status::Warn),
                count(&|st| st == Status::Note),
                count(&|st| st == Status::Pass)
            );
            for r in cases {
                s.push_str(&case(r));
            }
            s.push_str("</ul></details></td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</table></body></html>\n");
    s
}
