//! The environment and the configuration: what a plugin must refuse, and
//! what it must tolerate.

use serde_json::{Value, json};

use super::{Case, CaseError, Check, Finding, INTERFACE, Level, check};
use crate::runtime::Step;

pub fn checks() -> Vec<Check> {
    vec![
        check(
            "env.missing-container-id",
            Level::Must,
            "SPEC.md#parameters (ENV-001)",
            "ADD without CNI_CONTAINERID fails.",
            |c| missing(c, "CNI_CONTAINERID"),
        )
        .since("0.4.0")
        .ipam_should(),
        check(
            "env.missing-netns",
            Level::Must,
            "SPEC.md#parameters (ENV-002)",
            "ADD without CNI_NETNS fails.",
            |c| missing(c, "CNI_NETNS"),
        )
        .ipam_should(),
        check(
            "env.missing-ifname",
            Level::Must,
            "SPEC.md#parameters (ENV-003)",
            "ADD without CNI_IFNAME fails.",
            |c| missing(c, "CNI_IFNAME"),
        )
        .ipam_should(),
        check(
            "env.missing-names-variable",
            Level::Should,
            "SPEC.md#error-codes (ENV-004)",
            "Missing variables are reported with code 4 and a message naming them.",
            missing_named,
        )
        .since("1.0.0"),
        check(
            "env.check-missing",
            Level::Must,
            "SPEC.md#check (ENV-005)",
            "CHECK without CNI_CONTAINERID, CNI_NETNS or CNI_IFNAME fails.",
            check_missing,
        )
        .since("0.4.0"),
        check(
            "env.del-missing",
            Level::Should,
            "SPEC.md#del (ENV-006)",
            "DEL without CNI_CONTAINERID or CNI_IFNAME fails with code 4.",
            del_missing,
        )
        .since("1.0.0"),
        check(
            "env.unknown-command",
            Level::Must,
            "SPEC.md#parameters (ENV-008)",
            "An unknown CNI_COMMAND fails.",
            unknown_command,
        ),
        check(
            "env.unknown-command-code",
            Level::Should,
            "SPEC.md#error-codes (ENV-009)",
            "An unknown CNI_COMMAND fails with code 4.",
            unknown_command_code,
        )
        .since("1.0.0"),
        check(
            "env.status-gc-without-attachment",
            Level::Must,
            "SPEC.md#status (ENV-012)",
            "STATUS and GC need no container variables.",
            status_gc_bare,
        )
        .since("1.1.0"),
        check(
            "env.kubernetes-args",
            Level::Should,
            "CONVENTIONS.md#cni_args (ENV-013)",
            "ADD works with the CNI_ARGS Kubernetes sends.",
            kubernetes_args,
        ),
        check(
            "env.extra-variables",
            Level::Should,
            "SPEC.md#parameters (ENV-015)",
            "Unrelated environment variables change nothing.",
            extra_variables,
        ),
        check(
            "config.bad-container-id",
            Level::Should,
            "SPEC.md#parameters (VAL-001, VAL-002)",
            "Container IDs outside the grammar are refused with code 4.",
            bad_container_id,
        )
        .since("1.0.0"),
        check(
            "config.valid-container-ids",
            Level::Must,
            "SPEC.md#parameters (VAL-003)",
            "Container IDs inside the grammar are accepted: a, 64 hex digits, a_b.c-d.",
            valid_container_ids,
        )
        .since("1.0.0"),
        check(
            "config.bad-ifname",
            Level::Must,
            "SPEC.md#parameters (VAL-004)",
            "Interface names Linux cannot have are refused.",
            bad_ifname,
        )
        .ipam_should(),
        check(
            "config.bad-ifname-code",
            Level::Should,
            "SPEC.md#error-codes (VAL-005)",
            "Bad interface names are refused with code 4.",
            bad_ifname_code,
        )
        .since("1.0.0"),
        check(
            "config.exact-ifname",
            Level::Must,
            "SPEC.md#add (VAL-006, ADD-R4)",
            "A 15-byte CNI_IFNAME is used exactly, never renamed.",
            exact_ifname,
        )
        .since("0.3.0")
        .kinds(INTERFACE),
        check(
            "config.bad-network-name",
            Level::Should,
            "SPEC.md#network-configuration (VAL-007, VAL-008)",
            "Network names outside the grammar are refused with code 7.",
            bad_network_name,
        )
        .since("1.0.0"),
        check(
            "config.not-json",
            Level::Must,
            "SPEC.md#error-codes (VAL-009)",
            "Undecodable stdin fails.",
            not_json,
        ),
        check(
            "config.not-json-code",
            Level::Should,
            "SPEC.md#error-codes (VAL-010)",
            "Undecodable stdin fails with code 6.",
            not_json_code,
        )
        .since("1.0.0"),
        check(
            "config.unknown-args",
            Level::Should,
            "CONVENTIONS.md#args-in-network-config (VAL-011)",
            "Unknown args and unknown keys are ignored.",
            |c| {
                tolerated(
                    c,
                    &[
                        (
                            "args",
                            json!({"cni": {"labels": [{"key": "a", "value": "b"}]}}),
                        ),
                        ("x-unknown", json!({"y": 1})),
                    ],
                )
            },
        )
        .since("0.2.0"),
        check(
            "config.capabilities-tolerated",
            Level::Should,
            "SPEC.md#network-configuration-lists (VAL-012)",
            "A leftover capabilities map does not break ADD.",
            |c| tolerated(c, &[("capabilities", json!({"portMappings": true}))]),
        )
        .since("0.3.0"),
        check(
            "config.runtime-config-tolerated",
            Level::Should,
            "CONVENTIONS.md#dynamic-plugin-specific-fields (VAL-013)",
            "An empty or unknown runtimeConfig does not break ADD.",
            |c| tolerated(c, &[("runtimeConfig", json!({"unknownCap": 1}))]),
        )
        .since("0.3.0"),
    ]
}

/// ADD of the plugin under test with edited variables and request.
fn add_with(
    case: &mut Case,
    edits: &[(&str, Option<&str>)],
    patch: impl FnOnce(&mut Value),
    then_del: bool,
) -> Result<Step, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let prev = case.prepare(&w, &rt, &att)?;
    let mut req = w.request(Some(&att), prev.as_ref());
    patch(&mut req);
    let step = case.call(&rt, "ADD", Some(&att), req, edits)?;
    if then_del {
        case.del(&w, &mut rt, &att)?;
    }
    Ok(step)
}

fn missing(case: &mut Case, var: &str) -> Result<Finding, CaseError> {
    let step = add_with(case, &[(var, None)], |_| {}, true)?;
    Ok(if step.outcome.success() {
        Finding::Deviation(format!("ADD without {var} succeeded"))
    } else {
        Finding::Pass(format!("refused without {var}"))
    })
}

fn missing_named(case: &mut Case) -> Result<Finding, CaseError> {
    for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let step = add_with(case, &[(var, None)], |_| {}, true)?;
        let err = step.outcome.error();
        match err {
            Some(e) if e.code == 4 && e.msg.contains(var) => {}
            Some(e) => {
                return Ok(Finding::Deviation(format!(
                    "without {var}: code {} \"{}\"",
                    e.code, e.msg
                )));
            }
            None => {
                return Ok(Finding::Deviation(format!(
                    "without {var}: no error object"
                )));
            }
        }
    }
    Ok(Finding::Pass("code 4 naming the variable".into()))
}

fn check_missing(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    let prev = run.result.clone();
    let mut finding = Finding::Pass("CHECK refused each missing variable".into());
    for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let step = case.call(
            &rt,
            "CHECK",
            Some(&att),
            w.request(Some(&att), prev.as_ref()),
            &[(var, None)],
        )?;
        if step.outcome.success() {
            finding = Finding::Deviation(format!("CHECK without {var} succeeded"));
            break;
        }
    }
    case.del(&w, &mut rt, &att)?;
    Ok(finding)
}

fn del_missing(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    for var in ["CNI_CONTAINERID", "CNI_IFNAME"] {
        let step = case.call(
            &rt,
            "DEL",
            Some(&att),
            w.request(Some(&att), None),
            &[(var, None)],
        )?;
        if step.outcome.success() || step.outcome.error_code() != Some(4) {
            return Ok(Finding::Deviation(format!(
                "DEL without {var}: {}, {}",
                step.outcome.exit,
                super::say::code(step.outcome.error_code())
            )));
        }
    }
    Ok(Finding::Pass("refused with code 4".into()))
}

fn unknown_command_step(case: &mut Case) -> Result<Step, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    case.call(&rt, "FROB", Some(&att), w.request(Some(&att), None), &[])
}

fn unknown_command(case: &mut Case) -> Result<Finding, CaseError> {
    let step = unknown_command_step(case)?;
    Ok(if step.outcome.success() {
        Finding::Deviation("CNI_COMMAND=FROB succeeded".into())
    } else {
        Finding::Pass("refused".into())
    })
}

fn unknown_command_code(case: &mut Case) -> Result<Finding, CaseError> {
    let step = unknown_command_step(case)?;
    Ok(match step.outcome.error_code() {
        Some(4) => Finding::Pass("code 4".into()),
        other => Finding::Deviation(format!("expected code 4, got {}", super::say::code(other))),
    })
}

fn status_gc_bare(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let bare: &[(&str, Option<&str>)] = &[
        ("CNI_CONTAINERID", None),
        ("CNI_NETNS", None),
        ("CNI_IFNAME", None),
        ("CNI_ARGS", None),
    ];
    for (verb, req) in [
        ("STATUS", w.net.network_request(w.target(), None)),
        ("GC", w.net.network_request(w.target(), Some(&[]))),
    ] {
        let step = case.call(&rt, verb, None, req, bare)?;
        let err = step.outcome.error();
        if let Some(e) = err.filter(|e| {
            e.code == 4
                && ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
                    .iter()
                    .any(|v| e.msg.contains(v))
        }) {
            return Ok(Finding::Deviation(format!(
                "{verb} wants container variables: {}",
                e.msg
            )));
        }
    }
    Ok(Finding::Pass(
        "STATUS and GC ran without container variables".into(),
    ))
}

fn kubernetes_args(case: &mut Case) -> Result<Finding, CaseError> {
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=c1";
    let step = add_with(case, &[("CNI_ARGS", Some(args))], |_| {}, true)?;
    Ok(if step.outcome.success() {
        Finding::Pass("accepted".into())
    } else {
        Finding::Deviation(format!(
            "ADD with Kubernetes CNI_ARGS failed: {}",
            step.outcome.stdout_text().trim()
        ))
    })
}

fn extra_variables(case: &mut Case) -> Result<Finding, CaseError> {
    let extra = [
        (
            "TRACEPARENT",
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ),
        ("CNI_UNRELATED", Some("x")),
    ];
    let step = add_with(case, &extra, |_| {}, true)?;
    Ok(if step.outcome.success() {
        Finding::Pass("accepted".into())
    } else {
        Finding::Deviation(format!(
            "ADD with extra variables failed: {}",
            step.outcome.stdout_text().trim()
        ))
    })
}

fn refused_all(
    case: &mut Case,
    cases: &[(&str, Option<&str>)],
    var: &str,
    want_code: Option<u64>,
) -> Result<Finding, CaseError> {
    for (label, value) in cases {
        let step = add_with(case, &[(var, *value)], |_| {}, true)?;
        let code = step.outcome.error_code();
        let ok = !step.outcome.success() && want_code.is_none_or(|w| code == Some(w));
        if !ok {
            return Ok(Finding::Deviation(format!(
                "{var}={label}: {}, {}",
                step.outcome.exit,
                super::say::code(code)
            )));
        }
    }
    Ok(Finding::Pass(format!("every bad {var} refused")))
}

const BAD_IDS: [(&str, Option<&str>); 5] = [
    ("-abc", Some("-abc")),
    ("a/b", Some("a/b")),
    ("a b", Some("a b")),
    ("ab:c", Some("ab:c")),
    ("ä", Some("ä")),
];
const BAD_IFNAMES: [(&str, Option<&str>); 6] = [
    ("16 bytes", Some("abcdefghijklmnop")),
    (".", Some(".")),
    ("..", Some("..")),
    ("a/b", Some("a/b")),
    ("a:b", Some("a:b")),
    ("a b", Some("a b")),
];

fn bad_container_id(case: &mut Case) -> Result<Finding, CaseError> {
    refused_all(case, &BAD_IDS, "CNI_CONTAINERID", Some(4))
}

fn valid_container_ids(case: &mut Case) -> Result<Finding, CaseError> {
    let long = "0123456789abcdef".repeat(4);
    for id in ["a", long.as_str(), "a_b.c-d"] {
        let step = add_with(case, &[("CNI_CONTAINERID", Some(id))], |_| {}, false)?;
        if !step.outcome.success() {
            return Ok(Finding::Deviation(format!(
                "container ID {id:?} refused: {}",
                step.outcome.stdout_text().trim()
            )));
        }
    }
    Ok(Finding::Pass("accepted".into()))
}

fn bad_ifname(case: &mut Case) -> Result<Finding, CaseError> {
    refused_all(case, &BAD_IFNAMES, "CNI_IFNAME", None)
}

fn bad_ifname_code(case: &mut Case) -> Result<Finding, CaseError> {
    refused_all(case, &BAD_IFNAMES, "CNI_IFNAME", Some(4))
}

fn exact_ifname(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.attachment(0, "c1", "abcdefghijklmno");
    let run = case.add(&w, &mut rt, &att)?;
    let finding = if !run.succeeded() {
        Finding::Pass("refused the 15-byte name (allowed)".into())
    } else {
        let links =
            w.sb.ip(crate::sandbox::Scope::Container(0), &["-o", "link", "show"])?;
        if links.contains(": abcdefghijklmno") {
            Finding::Pass("the interface has the exact name".into())
        } else {
            Finding::Deviation(format!(
                "ADD succeeded but no link is named abcdefghijklmno: {links}"
            ))
        }
    };
    case.del(&w, &mut rt, &att)?;
    Ok(finding)
}

fn bad_network_name(case: &mut Case) -> Result<Finding, CaseError> {
    for name in ["-net", "my net", "a/b", ""] {
        let step = add_with(case, &[], |r| r["name"] = json!(name), true)?;
        if step.outcome.success() || step.outcome.error_code() != Some(7) {
            return Ok(Finding::Deviation(format!(
                "name {name:?}: {}, {}",
                step.outcome.exit,
                super::say::code(step.outcome.error_code())
            )));
        }
    }
    Ok(Finding::Pass("refused with code 7".into()))
}

fn not_json_steps(case: &mut Case) -> Result<Vec<Step>, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    [b"{not json".as_slice(), b"".as_slice()]
        .iter()
        .map(|stdin| case.call_raw(&rt, "ADD", Some(&att), stdin, &[]))
        .collect()
}

fn not_json(case: &mut Case) -> Result<Finding, CaseError> {
    let steps = not_json_steps(case)?;
    Ok(if steps.iter().any(|s| s.outcome.success()) {
        Finding::Deviation("ADD with undecodable stdin succeeded".into())
    } else {
        Finding::Pass("refused".into())
    })
}

fn not_json_code(case: &mut Case) -> Result<Finding, CaseError> {
    let steps = not_json_steps(case)?;
    let codes: Vec<Option<u64>> = steps.iter().map(|s| s.outcome.error_code()).collect();
    Ok(if codes.iter().all(|c| *c == Some(6)) {
        Finding::Pass("code 6".into())
    } else {
        Finding::Deviation(format!(
            "expected code 6, got {}",
            super::say::codes(&codes)
        ))
    })
}

fn tolerated(case: &mut Case, extra: &[(&str, Value)]) -> Result<Finding, CaseError> {
    let step = add_with(
        case,
        &[],
        |r| {
            for (k, v) in extra {
                r[*k] = v.clone();
            }
        },
        true,
    )?;
    Ok(if step.outcome.success() {
        Finding::Pass("ADD succeeded".into())
    } else {
        Finding::Deviation(format!("ADD failed: {}", step.outcome.stdout_text().trim()))
    })
}
