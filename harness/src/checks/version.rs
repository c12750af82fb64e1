//! VERSION, and how a plugin treats versions it does not speak.

use serde_json::{Value, json};

use super::outcome::{Judged, deviation, pass};
use super::{Check, Cx, not_yet, row};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("version.answers", "VER-001, VER-005", "VERSION exits 0 with one JSON object, with only CNI_COMMAND set and with libcni's dummy variables.", answers),
        row("version.lists-supported", "VER-002", "The VERSION answer has a cniVersion string and a non-empty supportedVersions list of strings.", lists_supported),
        row("version.known-versions", "VER-003", "Every supported version is a known spec version.", known_versions),
        row("version.echoes-input", "VER-004", "VERSION answers with the cniVersion it was given.", echoes_input),
        row("version.empty-stdin", "VER-006", "VERSION works with nothing on stdin, as older runtimes call it.", empty_stdin),
        row("version.refuses-unknown", "VER-010", "ADD with cniVersion 9.9.9 fails.", refuses_unknown),
        row("version.refuses-unknown-code", "VER-011", "ADD with cniVersion 9.9.9 fails with code 1.", refuses_unknown_code),
        not_yet("version.legacy-only", "VER-008", "A plugin without VERSION is treated as 0.1.0-only.", "informational; no plugin in reach behaves so"),
    ]
}

/// How a runtime calls VERSION: libcni sets the attachment variables to
/// "dummy"; a bare runtime sets only `CNI_COMMAND`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Libcni,
    Bare,
}

/// VERSION with `stdin`: whether it exited 0, and its JSON object.
fn version_call(
    cx: &Cx,
    stdin: &[u8],
    caller: Caller,
) -> Result<(bool, Option<Value>), super::Unjudged> {
    let w = cx.world()?;
    let mut call = w.call(Verb::Version, None).raw_stdin(stdin);
    call = match caller {
        Caller::Libcni => ["CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
            .iter()
            .fold(call, |c, v| c.set(v, "dummy")),
        Caller::Bare => [
            "CNI_CONTAINERID",
            "CNI_NETNS",
            "CNI_IFNAME",
            "CNI_ARGS",
            "CNI_PATH",
        ]
        .iter()
        .fold(call, |c, v| c.unset(v)),
    };
    let step = call.run()?;
    Ok((
        step.outcome.success(),
        step.outcome.json().filter(Value::is_object),
    ))
}

fn request(cx: &Cx) -> Vec<u8> {
    json!({"cniVersion": cx.version}).to_string().into_bytes()
}

fn answers(cx: &Cx) -> Judged {
    let stdin = request(cx);
    for caller in [Caller::Bare, Caller::Libcni] {
        let (ok, doc) = version_call(cx, &stdin, caller)?;
        if !ok || doc.is_none() {
            let how = match caller {
                Caller::Libcni => "with libcni's dummy variables",
                Caller::Bare => "with only CNI_COMMAND",
            };
            return deviation(format!("VERSION {how} did not exit 0 with a JSON object"));
        }
    }
    pass("VERSION answered with a JSON object")
}

fn supported(doc: &Value) -> Option<Vec<String>> {
    doc.get("supportedVersions")?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn lists_supported(cx: &Cx) -> Judged {
    let (_, doc) = version_call(cx, &request(cx), Caller::Libcni)?;
    let doc = doc.unwrap_or_default();
    let version = doc
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match supported(&doc) {
        Some(list) if !list.is_empty() && !version.is_empty() => {
            pass(format!("supports {}", super::say::list(&list)))
        }
        // 0.2.0 may answer without a list (meaning 0.1.0 and 0.2.0).
        None if version.parse() == Ok(Version::V0_2_0) => pass("0.2.0 without a list"),
        _ => deviation(format!("not a VERSION answer: {doc}")),
    }
}

fn known_versions(cx: &Cx) -> Judged {
    let (_, doc) = version_call(cx, &request(cx), Caller::Libcni)?;
    let list = doc.as_ref().and_then(supported).unwrap_or_default();
    let unknown: Vec<&String> = list
        .iter()
        .filter(|v| v.parse::<Version>().is_err())
        .collect();
    if unknown.is_empty() {
        pass("every supported version is known")
    } else {
        deviation(format!(
            "unknown versions listed: {}",
            super::say::list(unknown)
        ))
    }
}

fn echoes_input(cx: &Cx) -> Judged {
    let (_, doc) = version_call(cx, &request(cx), Caller::Libcni)?;
    let answered = doc
        .as_ref()
        .and_then(|d| d.get("cniVersion")?.as_str().map(str::to_string));
    if answered.as_deref() == Some(cx.version.as_str()) {
        pass(format!("answered {}", cx.version))
    } else {
        deviation(format!(
            "asked with {}, answered {}",
            cx.version,
            super::say::or(answered, "no cniVersion")
        ))
    }
}

fn empty_stdin(cx: &Cx) -> Judged {
    match version_call(cx, b"", Caller::Libcni)? {
        (true, Some(_)) => pass("answered"),
        _ => deviation("VERSION with empty stdin did not answer"),
    }
}

/// ADD with cniVersion 9.9.9, for both checks.
fn unknown_version_add(cx: &Cx) -> Result<Step, super::Unjudged> {
    let w = cx.world()?;
    let att = w.att();
    let step = w
        .call(Verb::Add, Some(&att))
        .edit(|r| r["cniVersion"] = json!("9.9.9"))
        .run()?;
    Ok(step)
}

fn refuses_unknown(cx: &Cx) -> Judged {
    if unknown_version_add(cx)?.outcome.success() {
        deviation("ADD with cniVersion 9.9.9 succeeded")
    } else {
        pass("refused")
    }
}

fn refuses_unknown_code(cx: &Cx) -> Judged {
    let step = unknown_version_add(cx)?;
    if step.outcome.success() {
        return super::outcome::blocked(
            "version.refuses-unknown",
            "ADD with cniVersion 9.9.9 succeeded",
        );
    }
    let code = step.outcome.error_code();
    if ErrorCode::IncompatibleVersion.is(code) {
        pass("code 1")
    } else {
        deviation(format!("expected code 1, got {}", super::say::code(code)))
    }
}
