//! VERSION, and how a plugin treats versions it does not speak.

use serde_json::{Value, json};

use super::{Case, CaseError, Check, Finding, Level, check};
use crate::suite::KNOWN_VERSIONS;

pub fn checks() -> Vec<Check> {
    vec![
        check("version.answers", Level::Must, "SPEC.md#version (VER-001, VER-005)", "VERSION exits 0 with one JSON object, with only CNI_COMMAND set and with libcni's dummy variables.", answers).since("0.2.0"),
        check("version.lists-supported", Level::Must, "SPEC.md#version (VER-002)", "The VERSION answer has a cniVersion string and a non-empty supportedVersions list of strings.", lists_supported).since("0.2.0"),
        check("version.known-versions", Level::Should, "SPEC.md#version (VER-003)", "Every supported version is a known spec version.", known_versions).since("0.2.0"),
        check("version.echoes-input", Level::Should, "SPEC.md#version (VER-004)", "VERSION answers with the cniVersion it was given.", echoes_input).since("1.0.0"),
        check("version.empty-stdin", Level::Should, "SPEC.md#version (VER-006)", "VERSION works with nothing on stdin, as older runtimes call it.", empty_stdin).since("0.2.0"),
        check("version.refuses-unknown", Level::Must, "SPEC.md#version (VER-010)", "ADD with cniVersion 9.9.9 fails.", refuses_unknown),
        check("version.refuses-unknown-code", Level::Should, "SPEC.md#error-codes (VER-011)", "ADD with cniVersion 9.9.9 fails with code 1.", refuses_unknown_code),
    ]
}

fn version_call(
    case: &mut Case,
    stdin: &[u8],
    libcni_env: bool,
) -> Result<(bool, Option<Value>), CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let edits: &[(&str, Option<&str>)] = if libcni_env {
        &[
            ("CNI_NETNS", Some("dummy")),
            ("CNI_IFNAME", Some("dummy")),
            ("CNI_PATH", Some("dummy")),
        ]
    } else {
        &[
            ("CNI_CONTAINERID", None),
            ("CNI_NETNS", None),
            ("CNI_IFNAME", None),
            ("CNI_ARGS", None),
            ("CNI_PATH", None),
        ]
    };
    let step = case.call_raw(&rt, "VERSION", None, stdin, edits)?;
    Ok((
        step.outcome.success(),
        step.outcome.json().filter(Value::is_object),
    ))
}

fn request(case: &Case) -> Vec<u8> {
    json!({"cniVersion": case.version}).to_string().into_bytes()
}

fn answers(case: &mut Case) -> Result<Finding, CaseError> {
    let stdin = request(case);
    for libcni in [false, true] {
        let (ok, doc) = version_call(case, &stdin, libcni)?;
        if !ok || doc.is_none() {
            let how = if libcni {
                "with libcni's dummy variables"
            } else {
                "with only CNI_COMMAND"
            };
            return Ok(Finding::Deviation(format!(
                "VERSION {how} did not exit 0 with a JSON object"
            )));
        }
    }
    Ok(Finding::Pass("VERSION answered with a JSON object".into()))
}

fn supported(doc: &Value) -> Option<Vec<String>> {
    doc.get("supportedVersions")?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn lists_supported(case: &mut Case) -> Result<Finding, CaseError> {
    let stdin = request(case);
    let (_, doc) = version_call(case, &stdin, true)?;
    let doc = doc.unwrap_or_default();
    let version = doc
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match supported(&doc) {
        Some(list) if !list.is_empty() && !version.is_empty() => Ok(Finding::Pass(format!(
            "supports {}",
            super::say::list(&list)
        ))),
        // 0.2.0 may answer without a list (meaning 0.1.0 and 0.2.0).
        None if version == "0.2.0" => Ok(Finding::Pass("0.2.0 without a list".into())),
        _ => Ok(Finding::Deviation(format!("not a VERSION answer: {doc}"))),
    }
}

fn known_versions(case: &mut Case) -> Result<Finding, CaseError> {
    let stdin = request(case);
    let (_, doc) = version_call(case, &stdin, true)?;
    let list = doc.as_ref().and_then(supported).unwrap_or_default();
    let unknown: Vec<&String> = list
        .iter()
        .filter(|v| !KNOWN_VERSIONS.contains(&v.as_str()))
        .collect();
    Ok(if unknown.is_empty() {
        Finding::Pass("every supported version is known".into())
    } else {
        Finding::Deviation(format!(
            "unknown versions listed: {}",
            super::say::list(unknown)
        ))
    })
}

fn echoes_input(case: &mut Case) -> Result<Finding, CaseError> {
    let stdin = request(case);
    let (_, doc) = version_call(case, &stdin, true)?;
    let answered = doc
        .as_ref()
        .and_then(|d| d.get("cniVersion")?.as_str().map(str::to_string));
    Ok(if answered.as_deref() == Some(case.version.as_str()) {
        Finding::Pass(format!("answered {}", case.version))
    } else {
        Finding::Deviation(format!(
            "asked with {}, answered {}",
            case.version,
            super::say::or(answered, "no cniVersion")
        ))
    })
}

fn empty_stdin(case: &mut Case) -> Result<Finding, CaseError> {
    let (ok, doc) = version_call(case, b"", true)?;
    Ok(if ok && doc.is_some() {
        Finding::Pass("answered".into())
    } else {
        Finding::Deviation("VERSION with empty stdin did not answer".into())
    })
}

/// ADD with cniVersion 9.9.9: the step, for both checks.
fn unknown_version_add(case: &mut Case) -> Result<crate::runtime::Step, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    let mut req = w.request(Some(&att), None);
    req["cniVersion"] = json!("9.9.9");
    case.call(&rt, "ADD", Some(&att), req, &[])
}

fn refuses_unknown(case: &mut Case) -> Result<Finding, CaseError> {
    let step = unknown_version_add(case)?;
    Ok(if step.outcome.success() {
        Finding::Deviation("ADD with cniVersion 9.9.9 succeeded".into())
    } else {
        Finding::Pass("refused".into())
    })
}

fn refuses_unknown_code(case: &mut Case) -> Result<Finding, CaseError> {
    let step = unknown_version_add(case)?;
    let code = step.outcome.error_code();
    Ok(match code {
        Some(1) => Finding::Pass("code 1".into()),
        other => Finding::Deviation(format!("expected code 1, got {}", super::say::code(other))),
    })
}
