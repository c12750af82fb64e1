//! The error object: where it goes, what it holds.

use serde_json::json;

use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{Check, Cx, Level, row, spec};
use crate::runtime::Step;
use crate::schema::{self, Kind};
use crate::spec::{ErrorCode, Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("error.object", Level::Should, spec("error", "ERR-001"), "A failing plugin prints an error object with an integer code and a msg on stdout.", object),
        row("error.object-040", Level::Must, spec("result-types", "ERR-001, 0.4.0"), "At 0.4.0 the error object on stdout is a MUST.", object).since(Version::V0_4_0).until(Version::V0_4_0),
        row("error.on-stdout", Level::Should, spec("error", "ERR-002"), "Errors are not only on stderr.", on_stdout),
        row("error.cni-version", Level::Should, spec("error", "ERR-003"), "The error object carries the request's cniVersion.", cni_version),
        row("error.reserved-codes", Level::Should, spec("error-codes", "ERR-004"), "Codes 1-99 are only the spec's own (1-7, 11, 50, 51).", reserved_codes),
        row("error.reserved-codes-040", Level::Must, spec("error-codes", "ERR-004, 0.4.0"), "At 0.4.0 codes 1-99 must not be used other than as specified.", reserved_codes).since(Version::V0_4_0).until(Version::V0_4_0),
        row("error.schema", Level::Should, spec("error", "the error object"), "Every error object matches the error schema.", error_schema),
    ]
}

/// Calls every plugin must refuse: a missing variable, an unknown
/// command, undecodable stdin, a bad network name.
fn failures(cx: &Cx) -> Result<Vec<Step>, Unjudged> {
    let w = cx.world()?;
    let att = w.att();
    Ok(vec![
        w.call(Verb::Add, Some(&att)).unset("CNI_IFNAME").run()?,
        w.call(Verb::Add, Some(&att))
            .set("CNI_COMMAND", "FROB")
            .run()?,
        w.call(Verb::Add, Some(&att))
            .raw_stdin(b"{not json")
            .run()?,
        w.call(Verb::Add, Some(&att))
            .edit(|r| r["name"] = json!("bad/name"))
            .run()?,
    ])
}

/// The `CNI_COMMAND` a step was made with.
fn command(s: &Step) -> &str {
    s.env
        .iter()
        .find(|(k, _)| k == "CNI_COMMAND")
        .map_or(s.verb.as_str(), |(_, v)| v.as_str())
}

/// Judges every failing call with `verdict` (a problem, or none).
fn judge(cx: &Cx, verdict: impl Fn(&Step) -> Option<String>) -> Judged {
    let steps = failures(cx)?;
    if steps.iter().all(|s| s.outcome.success()) {
        return blocked(
            "config.not-json",
            "none of the calls a plugin must refuse failed",
        );
    }
    let problems: Vec<String> = steps
        .iter()
        .filter(|s| !s.outcome.success())
        .filter_map(&verdict)
        .collect();
    if problems.is_empty() {
        pass("every error is well formed")
    } else {
        deviation(problems.join("; "))
    }
}

fn object(cx: &Cx) -> Judged {
    judge(cx, |s| {
        s.outcome.error().is_none().then(|| {
            format!(
                "{} {}: no error object on stdout (it printed {:?})",
                command(s),
                s.outcome.exit,
                s.outcome.stdout_text().trim()
            )
        })
    })
}

fn on_stdout(cx: &Cx) -> Judged {
    judge(cx, |s| {
        (s.outcome.stdout.is_empty() && !s.outcome.stderr.is_empty())
            .then(|| format!("{}: error only on stderr", command(s)))
    })
}

fn cni_version(cx: &Cx) -> Judged {
    judge(cx, |s| {
        // Undecodable stdin names no version to echo.
        if s.request.is_string() {
            return None;
        }
        let e = s.outcome.error()?;
        (e.cni_version.as_deref() != Some(cx.version.as_str())).then(|| {
            format!(
                "{}: cniVersion {}",
                command(s),
                super::say::or(e.cni_version.as_deref(), "missing")
            )
        })
    })
}

fn reserved_codes(cx: &Cx) -> Judged {
    judge(cx, |s| {
        let e = s.outcome.error()?;
        (ErrorCode::reserved(e.code) && e.code != 0 && ErrorCode::of(e.code).is_none())
            .then(|| format!("{}: reserved code {}", command(s), e.code))
    })
}

fn error_schema(cx: &Cx) -> Judged {
    judge(cx, |s| {
        let doc = s.outcome.json()?;
        let v = schema::validate(Kind::Error, cx.version.as_str(), &doc).ok()?;
        (!v.is_empty()).then(|| {
            let list: Vec<String> = v.iter().map(ToString::to_string).collect();
            format!("{}: {}", command(s), list.join(", "))
        })
    })
}
