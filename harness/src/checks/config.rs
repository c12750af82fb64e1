//! The configuration: names, IDs and documents a plugin must refuse, and
//! additions it must tolerate.

use crate::snapshot::Parts;
use serde_json::{Value, json};

use super::env::add_edited;
use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{Check, Cx, INTERFACE, row};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("config.bad-container-id", "VAL-001, VAL-002", "Container IDs outside the grammar are refused with code 4.", bad_container_id),
        row("config.valid-container-ids", "VAL-003", "Container IDs inside the grammar are accepted: a, 64 hex digits, a_b.c-d.", valid_container_ids),
        row("config.bad-ifname", "VAL-004", "Interface names Linux cannot have are refused.", bad_ifname),
        row("config.bad-ifname-code", "VAL-005", "Bad interface names are refused with code 4.", bad_ifname_code),
        row("config.exact-ifname", "VAL-006, ADD-R4", "A 15-byte CNI_IFNAME is used exactly, never renamed.", exact_ifname).kinds(INTERFACE),
        row("config.bad-network-name", "VAL-007, VAL-008", "Network names outside the grammar are refused with code 7.", bad_network_name),
        row("config.not-json", "VAL-009", "Undecodable stdin fails.", not_json),
        row("config.not-json-code", "VAL-010", "Undecodable stdin fails with code 6.", not_json_code),
        row("config.unknown-args", "VAL-011", "Unknown args and unknown keys are ignored.", |c| tolerated(c, &[&[("args", json!({"cni": {"labels": [{"key": "a", "value": "b"}]}}))]])),
        row("config.capabilities-tolerated", "VAL-012", "A leftover capabilities map does not break ADD.", |c| tolerated(c, &[&[("capabilities", json!({"portMappings": true}))]])),
        row("config.runtime-config-tolerated", "VAL-013", "An empty runtimeConfig (which a runtime inserts) does not break ADD.", |c| tolerated(c, &[&[("runtimeConfig", json!({}))]])),
    ]
}

// Outside the grammar for every reading of "alphanumeric" (an "ä" is
// alphanumeric to some).
const BAD_IDS: [&str; 4] = ["-abc", "a/b", "a b", "ab:c"];
const BAD_IFNAMES: [(&str, &str); 6] = [
    ("16 bytes", "abcdefghijklmnop"),
    (".", "."),
    ("..", ".."),
    ("a/b", "a/b"),
    ("a:b", "a:b"),
    ("a b", "a b"),
];

/// ADD with `var` set to each value must fail (with `code`, when given).
/// A code check whose call succeeded is blocked by `base`, the check that
/// judges the refusal itself.
fn refused_all(
    cx: &Cx,
    values: &[(&str, &str)],
    var: &str,
    code: Option<ErrorCode>,
    base: Option<&'static str>,
) -> Judged {
    for (label, value) in values {
        let w = cx.world()?;
        let a = add_edited(&w, |c| c.set(var, value))?;
        let step = a.last_step();
        let got = step.outcome.error_code();
        if let (true, Some(base)) = (step.outcome.success(), base) {
            return blocked(base, format!("ADD with {var}={label} succeeded"));
        }
        if step.outcome.success() || code.is_some_and(|c| !c.is(got)) {
            return deviation(format!(
                "{var}={label}: {}, {}",
                step.outcome.exit,
                super::say::code(got)
            ));
        }
    }
    pass(format!("every bad {var} refused"))
}

fn bad_container_id(cx: &Cx) -> Judged {
    let ids: Vec<(&str, &str)> = BAD_IDS.iter().map(|id| (*id, *id)).collect();
    refused_all(
        cx,
        &ids,
        "CNI_CONTAINERID",
        Some(ErrorCode::InvalidEnvironment),
        None,
    )
}

fn valid_container_ids(cx: &Cx) -> Judged {
    let long = "0123456789abcdef".repeat(4);
    for id in ["a", long.as_str(), "a_b.c-d"] {
        let w = cx.world()?;
        let a = add_edited(&w, |c| c.set("CNI_CONTAINERID", id))?;
        let step = a.last_step();
        if !step.outcome.success() {
            return deviation(format!(
                "container ID {id:?} refused: {}",
                super::say::failure(&step.outcome)
            ));
        }
    }
    pass("accepted")
}

fn bad_ifname(cx: &Cx) -> Judged {
    refused_all(cx, &BAD_IFNAMES, "CNI_IFNAME", None, None)
}

fn bad_ifname_code(cx: &Cx) -> Judged {
    refused_all(
        cx,
        &BAD_IFNAMES,
        "CNI_IFNAME",
        Some(ErrorCode::InvalidEnvironment),
        Some("config.bad-ifname"),
    )
}

fn exact_ifname(cx: &Cx) -> Judged {
    const NAME: &str = "abcdefghijklmno";
    let w = cx.world()?;
    w.creates_its_interface()?;
    let a = w.add(&w.attachment(0, "c1", NAME))?;
    if !a.succeeded() {
        return pass("refused the 15-byte name (allowed)");
    }
    let kernel = w.kernel(0, Parts::LINKS)?;
    if kernel.link(NAME).is_some() {
        pass("the interface has the exact name")
    } else {
        let names: Vec<&String> = kernel.links.keys().collect();
        deviation(format!(
            "ADD succeeded but no link is named {NAME}; the container has {}",
            super::say::list(names)
        ))
    }
}

fn bad_network_name(cx: &Cx) -> Judged {
    for name in ["-net", "my net", "a/b", ""] {
        let w = cx.world()?;
        let a = add_edited(&w, |c| c.edit(|r| r["name"] = json!(name)))?;
        let step = a.last_step();
        let code = step.outcome.error_code();
        if step.outcome.success() || !ErrorCode::InvalidConfig.is(code) {
            return deviation(format!(
                "name {name:?}: {}, {}",
                step.outcome.exit,
                super::say::code(code)
            ));
        }
    }
    pass("refused with code 7")
}

/// ADD with undecodable stdin, and with none.
fn not_json_steps(cx: &Cx) -> Result<Vec<Step>, Unjudged> {
    let w = cx.world()?;
    let att = w.att();
    let mut steps = Vec::new();
    for stdin in [b"{not json".as_slice(), b"".as_slice()] {
        steps.push(w.call(Verb::Add, Some(&att)).raw_stdin(stdin).run()?);
    }
    Ok(steps)
}

fn not_json(cx: &Cx) -> Judged {
    if not_json_steps(cx)?.iter().any(|s| s.outcome.success()) {
        deviation("ADD with undecodable stdin succeeded")
    } else {
        pass("refused")
    }
}

fn not_json_code(cx: &Cx) -> Judged {
    let steps = not_json_steps(cx)?;
    if steps.iter().any(|s| s.outcome.success()) {
        return blocked("config.not-json", "ADD with undecodable stdin succeeded");
    }
    let codes: Vec<Option<u64>> = steps.iter().map(|s| s.outcome.error_code()).collect();
    if codes.iter().all(|c| ErrorCode::Decoding.is(*c)) {
        pass("code 6")
    } else {
        deviation(format!(
            "expected code 6, got {}",
            super::say::codes(&codes)
        ))
    }
}

/// ADD with each set of extra keys in the request must succeed.
fn tolerated(cx: &Cx, sets: &[&[(&str, Value)]]) -> Judged {
    for extra in sets {
        let w = cx.world()?;
        let a = add_edited(&w, |c| {
            c.edit(|r| {
                for (k, v) in extra.iter() {
                    r[*k] = v.clone();
                }
            })
        })?;
        let step = a.last_step();
        if !step.outcome.success() {
            let keys: Vec<String> = extra.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            return deviation(format!(
                "ADD with {} failed: {}",
                keys.join(", "),
                super::say::failure(&step.outcome)
            ));
        }
    }
    pass("ADD succeeded")
}
