//! The environment: the `CNI_*` variables a plugin needs, refuses and
//! tolerates.

use super::context::{Attached, Call};
use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, Level, conventions, not_yet, row, spec};
use crate::spec::{ErrorCode, Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("env.missing-container-id", Level::Must, spec("parameters", "ENV-001"), "ADD without CNI_CONTAINERID fails.", |c| missing(c, "CNI_CONTAINERID")).since(Version::V0_4_0).ipam_should(),
        row("env.missing-netns", Level::Must, spec("parameters", "ENV-002"), "ADD without CNI_NETNS fails.", |c| missing(c, "CNI_NETNS")).ipam_should(),
        row("env.missing-ifname", Level::Must, spec("parameters", "ENV-003"), "ADD without CNI_IFNAME fails.", |c| missing(c, "CNI_IFNAME")).ipam_should(),
        row("env.missing-names-variable", Level::Should, spec("error-codes", "ENV-004"), "Missing variables are reported with code 4 and a message naming them.", missing_named).since(Version::V1_0_0),
        row("env.check-missing", Level::Must, spec("check", "ENV-005"), "CHECK without CNI_CONTAINERID, CNI_NETNS or CNI_IFNAME fails.", check_missing).since(Version::V0_4_0),
        row("env.del-missing", Level::Should, spec("del", "ENV-006"), "DEL without CNI_CONTAINERID or CNI_IFNAME fails with code 4.", del_missing).since(Version::V1_0_0),
        row("env.unknown-command", Level::Must, spec("parameters", "ENV-008"), "An unknown CNI_COMMAND fails.", unknown_command),
        row("env.unknown-command-code", Level::Should, spec("error-codes", "ENV-009"), "An unknown CNI_COMMAND fails with code 4.", unknown_command_code).since(Version::V1_0_0),
        row("env.status-gc-without-attachment", Level::Must, spec("status", "ENV-012"), "STATUS and GC need no container variables.", status_gc_bare).since(Version::V1_1_0),
        row("env.kubernetes-args", Level::Should, conventions("cni_args", "ENV-013"), "ADD works with the CNI_ARGS Kubernetes sends.", kubernetes_args),
        row("env.extra-variables", Level::Should, spec("parameters", "ENV-015"), "Unrelated environment variables change nothing.", extra_variables),
        not_yet("env.no-command", Level::May, spec("parameters", "ENV-010, ENV-011, ENV-014"), "Behaviour without CNI_COMMAND or CNI_PATH, or with unknown CNI_ARGS keys, is recorded.", "informational records, no verdict"),
    ]
}

const ATTACHMENT_VARS: [&str; 3] = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"];

/// ADD (after the plugins before the target) with the target's call
/// edited; DEL follows when the guard drops.
pub(super) fn add_edited<'w, 'c>(
    w: &'w super::context::World<'c>,
    edit: impl FnOnce(Call<'w, 'c>) -> Call<'w, 'c>,
) -> Result<Attached<'w, 'c>, Unjudged> {
    Ok(w.add_edited(&w.att(), edit)?)
}

fn missing(cx: &Cx, var: &str) -> Judged {
    let w = cx.world()?;
    let a = add_edited(&w, |c| c.unset(var))?;
    if a.last_step().outcome.success() {
        deviation(format!("ADD without {var} succeeded"))
    } else {
        pass(format!("refused without {var}"))
    }
}

fn missing_named(cx: &Cx) -> Judged {
    for var in ATTACHMENT_VARS {
        let w = cx.world()?;
        let a = add_edited(&w, |c| c.unset(var))?;
        match a.last_step().outcome.error() {
            Some(e) if ErrorCode::InvalidEnvironment.is(Some(e.code)) && e.msg.contains(var) => {}
            Some(e) => return deviation(format!("without {var}: code {} \"{}\"", e.code, e.msg)),
            None => return deviation(format!("without {var}: no error object")),
        }
    }
    pass("code 4 naming the variable")
}

fn check_missing(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    for var in ATTACHMENT_VARS {
        let step = w
            .call(Verb::Check, Some(&a.att))
            .prev(a.result())
            .unset(var)
            .run()?;
        if step.outcome.success() {
            return deviation(format!("CHECK without {var} succeeded"));
        }
    }
    pass("CHECK refused each missing variable")
}

fn del_missing(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let att = w.att();
    for var in ["CNI_CONTAINERID", "CNI_IFNAME"] {
        let step = w.call(Verb::Del, Some(&att)).unset(var).run()?;
        let code = step.outcome.error_code();
        if step.outcome.success() || !ErrorCode::InvalidEnvironment.is(code) {
            return deviation(format!(
                "DEL without {var}: {}, {}",
                step.outcome.exit,
                super::say::code(code)
            ));
        }
    }
    pass("refused with code 4")
}

/// ADD with `CNI_COMMAND=FROB`.
fn unknown_command_step(cx: &Cx) -> Result<crate::runtime::Step, Unjudged> {
    let w = cx.world()?;
    let att = w.att();
    Ok(w.call(Verb::Add, Some(&att))
        .set("CNI_COMMAND", "FROB")
        .run()?)
}

fn unknown_command(cx: &Cx) -> Judged {
    if unknown_command_step(cx)?.outcome.success() {
        deviation("CNI_COMMAND=FROB succeeded")
    } else {
        pass("refused")
    }
}

fn unknown_command_code(cx: &Cx) -> Judged {
    let code = unknown_command_step(cx)?.outcome.error_code();
    if ErrorCode::InvalidEnvironment.is(code) {
        pass("code 4")
    } else {
        deviation(format!("expected code 4, got {}", super::say::code(code)))
    }
}

fn status_gc_bare(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let t = w.target();
    for (verb, req) in [
        (Verb::Status, w.net.network_request(t, None)),
        (Verb::Gc, w.net.network_request(t, Some(&[]))),
    ] {
        let step = ATTACHMENT_VARS
            .iter()
            .chain(&["CNI_ARGS"])
            .fold(w.call(verb, None).edit(|r| *r = req), |c, v| c.unset(v))
            .run()?;
        let wants = step.outcome.error().filter(|e| {
            ErrorCode::InvalidEnvironment.is(Some(e.code))
                && ATTACHMENT_VARS.iter().any(|v| e.msg.contains(v))
        });
        if let Some(e) = wants {
            return deviation(format!("{verb} wants container variables: {}", e.msg));
        }
    }
    pass("STATUS and GC ran without container variables")
}

/// ADD with more in the environment than a runtime usually sets.
fn accepted_with(cx: &Cx, vars: &[(&str, &str)], what: &str) -> Judged {
    let w = cx.world()?;
    let a = add_edited(&w, |c| vars.iter().fold(c, |c, (k, v)| c.set(k, v)))?;
    let s = a.last_step();
    if s.outcome.success() {
        pass("accepted")
    } else {
        deviation(format!(
            "ADD with {what} failed: {}",
            s.outcome.stdout_text().trim()
        ))
    }
}

fn kubernetes_args(cx: &Cx) -> Judged {
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=c1";
    accepted_with(cx, &[("CNI_ARGS", args)], "Kubernetes CNI_ARGS")
}

fn extra_variables(cx: &Cx) -> Judged {
    accepted_with(
        cx,
        &[
            (
                "TRACEPARENT",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("CNI_UNRELATED", "x"),
        ],
        "extra variables",
    )
}
