//! The environment: the `CNI_*` variables a plugin needs, refuses and
//! tolerates.

use super::context::{Attached, Call};
use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{Check, Cx, not_yet, row};
use crate::spec::{ErrorCode, Verb};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("env.missing-container-id", "ENV-001", "ADD without CNI_CONTAINERID fails.", |c| missing(c, "CNI_CONTAINERID")),
        row("env.missing-netns", "ENV-002", "ADD without CNI_NETNS fails.", |c| missing(c, "CNI_NETNS")),
        row("env.missing-ifname", "ENV-003", "ADD without CNI_IFNAME fails.", |c| missing(c, "CNI_IFNAME")),
        row("env.missing-names-variable", "ENV-004", "Missing variables are reported with code 4 and a message naming them.", missing_named),
        row("env.check-missing", "ENV-005", "CHECK without CNI_CONTAINERID, CNI_NETNS or CNI_IFNAME fails.", check_missing),
        row("env.del-missing", "ENV-006", "DEL without CNI_CONTAINERID or CNI_IFNAME fails with code 4.", del_missing),
        row("env.unknown-command", "ENV-008", "An unknown CNI_COMMAND fails.", unknown_command),
        row("env.unknown-command-code", "ENV-009", "An unknown CNI_COMMAND fails with code 4.", unknown_command_code),
        row("env.status-gc-without-attachment", "ENV-012", "STATUS and GC need no container variables.", status_gc_bare),
        row("env.kubernetes-args", "ENV-013", "ADD works with the CNI_ARGS Kubernetes sends.", kubernetes_args),
        row("env.extra-variables", "ENV-015", "ADD, CHECK and DEL still succeed with unrelated environment variables set.", extra_variables),
        not_yet("env.no-command", "ENV-010, ENV-011, ENV-014", "Behaviour without CNI_COMMAND or CNI_PATH, or with unknown CNI_ARGS keys, is recorded.", "informational records, no verdict"),
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
            // "the error message" may sit in msg or in details.
            Some(e)
                if ErrorCode::InvalidEnvironment.is(Some(e.code))
                    && (e.msg.contains(var)
                        || e.details.as_deref().is_some_and(|d| d.contains(var))) => {}
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
    let step = unknown_command_step(cx)?;
    if step.outcome.success() {
        return super::outcome::blocked("env.unknown-command", "CNI_COMMAND=FROB succeeded");
    }
    let code = step.outcome.error_code();
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

/// ADD, CHECK (where the version has it) and DEL with more in the
/// environment than a runtime usually sets: each must succeed.
fn accepted_with(cx: &Cx, vars: &[(&str, &str)], what: &str) -> Judged {
    fn with<'w, 'c>(c: Call<'w, 'c>, vars: &[(&str, &str)]) -> Call<'w, 'c> {
        vars.iter().fold(c, |c, (k, v)| c.set(k, v))
    }
    let w = cx.world()?;
    let a = add_edited(&w, |c| with(c, vars))?;
    let mut steps = vec![a.last_step().clone()];
    if steps[0].outcome.success() {
        if cx.version.has_check() {
            let check = w.call(Verb::Check, Some(&a.att)).prev(a.result());
            let step = with(check, vars).run()?;
            // A CHECK that fails without the variables too is not theirs.
            if !step.outcome.success()
                && !w
                    .call(Verb::Check, Some(&a.att))
                    .prev(a.result())
                    .run()?
                    .outcome
                    .success()
            {
                return blocked("check.passes-after-add", "CHECK fails without them too");
            }
            steps.push(step);
        }
        let del = w.call(Verb::Del, Some(&a.att)).prev(a.result());
        steps.push(with(del, vars).run()?);
    }
    match steps.iter().find(|s| !s.outcome.success()) {
        None => pass("ADD, CHECK and DEL succeeded"),
        Some(s) => deviation(format!(
            "{} with {what} failed: {}",
            s.verb,
            super::say::failure(&s.outcome)
        )),
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
