//! The error object: where it goes, what it holds.

use serde_json::json;

use super::{Case, CaseError, Check, Finding, Level, check};
use crate::runtime::Step;
use crate::schema::{self, Kind};

pub fn checks() -> Vec<Check> {
    vec![
        check(
            "error.object",
            Level::Should,
            "SPEC.md#error (ERR-001)",
            "A failing plugin prints an error object with an integer code and a msg on stdout.",
            object,
        ),
        check(
            "error.object-040",
            Level::Must,
            "SPEC.md#result-types (ERR-001, 0.4.0)",
            "At 0.4.0 the error object on stdout is a MUST.",
            object,
        )
        .since("0.4.0")
        .until("0.4.0"),
        check(
            "error.on-stdout",
            Level::Should,
            "SPEC.md#error (ERR-002)",
            "Errors are not only on stderr.",
            on_stdout,
        ),
        check(
            "error.cni-version",
            Level::Should,
            "SPEC.md#error (ERR-003)",
            "The error object carries the request's cniVersion.",
            cni_version,
        ),
        check(
            "error.reserved-codes",
            Level::Should,
            "SPEC.md#error-codes (ERR-004)",
            "Codes 1-99 are only the spec's own (1-7, 11, 50, 51).",
            reserved_codes,
        ),
        check(
            "error.reserved-codes-040",
            Level::Must,
            "SPEC.md#error-codes (ERR-004, 0.4.0)",
            "At 0.4.0 codes 1-99 must not be used other than as specified.",
            reserved_codes,
        )
        .since("0.4.0")
        .until("0.4.0"),
        check(
            "error.schema",
            Level::Should,
            "SPEC.md#error",
            "Every error object matches the error schema.",
            error_schema,
        ),
    ]
}

/// Failing calls every plugin must refuse: a missing variable, an
/// unknown command, undecodable stdin, a bad network name.
fn failures(case: &mut Case) -> Result<Vec<Step>, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    let req = w.request(Some(&att), None);
    let mut bad_name = req.clone();
    bad_name["name"] = json!("bad/name");
    Ok(vec![
        case.call(&rt, "ADD", Some(&att), req.clone(), &[("CNI_IFNAME", None)])?,
        case.call(&rt, "FROB", Some(&att), req, &[])?,
        case.call_raw(&rt, "ADD", Some(&att), b"{not json", &[])?,
        case.call(&rt, "ADD", Some(&att), bad_name, &[])?,
    ])
}

fn judge(case: &mut Case, verdict: impl Fn(&Step) -> Option<String>) -> Result<Finding, CaseError> {
    let steps = failures(case)?;
    let problems: Vec<String> = steps
        .iter()
        .filter(|s| !s.outcome.success())
        .filter_map(&verdict)
        .collect();
    Ok(if steps.iter().all(|s| s.outcome.success()) {
        Finding::Skip("none of the failing calls failed".into())
    } else if problems.is_empty() {
        Finding::Pass("every error is well formed".into())
    } else {
        Finding::Deviation(problems.join("; "))
    })
}

fn object(case: &mut Case) -> Result<Finding, CaseError> {
    judge(case, |s| {
        let parsed = s.outcome.error();
        parsed.is_none().then(|| {
            format!(
                "{} {}: no error object on stdout (it printed {:?})",
                s.verb,
                s.outcome.exit,
                s.outcome.stdout_text().trim()
            )
        })
    })
}

fn on_stdout(case: &mut Case) -> Result<Finding, CaseError> {
    judge(case, |s| {
        (s.outcome.stdout.is_empty() && !s.outcome.stderr.is_empty())
            .then(|| format!("{}: error only on stderr", s.verb))
    })
}

fn cni_version(case: &mut Case) -> Result<Finding, CaseError> {
    let version = case.version.clone();
    judge(case, |s| {
        // Undecodable stdin names no version to echo.
        if s.request.is_string() {
            return None;
        }
        let e = s.outcome.error()?;
        (e.cni_version.as_deref() != Some(version.as_str())).then(|| {
            format!(
                "{}: cniVersion {}",
                s.verb,
                super::say::or(e.cni_version.as_deref(), "missing")
            )
        })
    })
}

fn reserved_codes(case: &mut Case) -> Result<Finding, CaseError> {
    judge(case, |s| {
        let e = s.outcome.error()?;
        let known = [1, 2, 3, 4, 5, 6, 7, 11, 50, 51];
        ((1..100).contains(&e.code) && !known.contains(&e.code))
            .then(|| format!("{}: reserved code {}", s.verb, e.code))
    })
}

fn error_schema(case: &mut Case) -> Result<Finding, CaseError> {
    let version = case.version.clone();
    judge(case, |s| {
        let doc = s.outcome.json()?;
        let v = schema::validate(Kind::Error, &version, &doc).ok()?;
        (!v.is_empty()).then(|| {
            format!(
                "{}: {}",
                s.verb,
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    })
}
