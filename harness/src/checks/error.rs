//! The error object: where it goes, what it holds.

use serde_json::json;

use super::outcome::{Judged, Unjudged, blocked, deviation, not_applicable, pass};
use super::{Check, Cx, row};
use crate::runtime::Step;
use crate::schema::{self, Kind};
use crate::spec::{ErrorCode, Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("error.object", "ERR-001", "A failing plugin prints an error object with an integer code and a msg on stdout.", object),
        row("error.on-stdout", "ERR-002", "Errors are not only on stderr.", on_stdout),
        row("error.cni-version", "ERR-003", "The error object carries a cniVersion: the request's from 0.4.0.", cni_version),
        row("error.reserved-codes", "ERR-004", "Codes 1-99 are only those the requested version defines (0.1.0: 1; 0.2.0-0.3.1: 1, 2; 0.4.0: 1-3, 11; 1.0.0: 1-7, 11; 1.1.0: also 50, 51).", reserved_codes),
        row("error.code-2-names-field", "ERR-005", "An error with code 2 (unsupported field) names the key and the value it refuses.", code_2_names_field),
        row("error.schema", "the error object", "Every error object matches the error schema.", error_schema),
    ]
}

/// Calls every plugin must refuse: a missing variable, an unknown
/// command, undecodable stdin, a bad network name.
fn failures(cx: &Cx) -> Result<Vec<Step>, Unjudged> {
    let mut steps = Vec::new();
    // An ADD whose IPAM plugin fails (add.failure-reported judges that it
    // fails; its error object is judged here).
    match super::add::failing_ipam_world(cx) {
        Ok(w) => steps.push(w.add(&w.att())?.last_step().clone()),
        Err(Unjudged::NotApplicable(_)) => {}
        Err(e) => return Err(e),
    }
    let w = cx.world()?;
    let att = w.att();
    steps.extend([
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
    ]);
    Ok(steps)
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
        // 1.0.0's overview sends errors to stderr: there, one on stderr
        // with nothing on stdout counts.
        let on_stderr = cx.version == Version::V1_0_0
            && s.outcome.stdout.is_empty()
            && s.outcome
                .stderr
                .complete()
                .and_then(|b| serde_json::from_slice(b).ok())
                .as_ref()
                .and_then(crate::runtime::ErrorObject::parse)
                .is_some();
        (s.outcome.error().is_none() && !on_stderr).then(|| {
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
        // Before 0.4.0 the text asks only that it be there.
        let wrong = match e.cni_version.as_deref() {
            None => true,
            Some(v) => cx.version.has_check() && v != cx.version.as_str(),
        };
        wrong.then(|| {
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
        // Undecodable stdin names no version whose codes could apply.
        if s.request.is_string() {
            return None;
        }
        // 0 is outside the 1-99 the 0.4.0 MUST speaks of.
        let reserved = e.code != 0 && ErrorCode::reserved(e.code);
        (reserved && !ErrorCode::known_at(e.code, cx.version)).then(|| {
            format!(
                "{}: code {} is reserved and not one {} defines",
                command(s),
                e.code,
                cx.version
            )
        })
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

fn code_2_names_field(cx: &Cx) -> Judged {
    const KEY: &str = "cniConformanceUnsupported";
    const VALUE: &str = "value-4242";
    let w = cx.world()?;
    let a = super::env::add_edited(&w, |c| c.edit(|r| r[KEY] = json!(VALUE)))?;
    let Some(e) = a.last_step().outcome.error() else {
        return not_applicable("the plugin accepted the unknown field (it may)");
    };
    if !ErrorCode::UnsupportedField.is(Some(e.code)) {
        return not_applicable(format!(
            "the plugin refused the unknown field with code {}, not 2",
            e.code
        ));
    }
    let text = format!("{} {}", e.msg, e.details.unwrap_or_default());
    if text.contains(KEY) && text.contains(VALUE) {
        pass("code 2 names the key and its value")
    } else {
        deviation(format!(
            "code 2 without the key {KEY} and value {VALUE}: {text}"
        ))
    }
}
