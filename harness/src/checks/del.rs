//! DEL: it succeeds whatever is already gone, and undoes what ADD did.

use super::{ATTACHING, Case, CaseError, Check, Finding, Level, check};
use crate::runtime::Step;

pub fn checks() -> Vec<Check> {
    vec![
        check(
            "del.succeeds",
            Level::Must,
            "SPEC.md#del (DEL-001)",
            "DEL after ADD, with the ADD result as prevResult, succeeds.",
            succeeds,
        ),
        check(
            "del.idempotent",
            Level::Must,
            "SPEC.md#del (DEL-002)",
            "A second DEL of the same attachment succeeds.",
            idempotent,
        )
        .must_since("1.0.0"),
        check(
            "del.without-add",
            Level::Must,
            "SPEC.md#del (DEL-003)",
            "DEL of an attachment never added succeeds.",
            without_add,
        )
        .must_since("1.0.0"),
        check(
            "del.netns-gone",
            Level::Must,
            "SPEC.md#del (DEL-004)",
            "DEL succeeds when the container's namespace is already gone.",
            netns_gone,
        )
        .must_since("1.0.0"),
        check(
            "del.netns-empty",
            Level::Must,
            "SPEC.md#del (ENV-007)",
            "DEL succeeds with CNI_NETNS empty.",
            netns_empty,
        )
        .since("0.4.0")
        .must_since("1.0.0"),
        check(
            "del.without-prev-result",
            Level::Should,
            "SPEC.md#del (DEL-005)",
            "DEL succeeds without prevResult.",
            without_prev_result,
        )
        .since("0.4.0"),
        check(
            "del.restores-kernel",
            Level::Should,
            "SPEC.md#del (DEL-006)",
            "After DEL the host and the container hold what they held before ADD.",
            restores_kernel,
        ),
        check(
            "del.after-failed-add",
            Level::Must,
            "SPEC.md#lifecycle (DEL-007)",
            "DEL after a failed ADD succeeds.",
            after_failed_add,
        )
        .must_since("1.0.0")
        .kinds(ATTACHING),
        check(
            "del.no-output",
            Level::May,
            "SPEC.md#del (DEL-008)",
            "A successful DEL prints nothing.",
            no_output,
        ),
    ]
}

fn verdict(step: &Step, what: &str) -> Finding {
    if step.outcome.success() {
        Finding::Pass(format!("{what} succeeded"))
    } else {
        Finding::Deviation(format!(
            "{what} failed: {} {}",
            step.outcome.exit,
            step.outcome.stdout_text().trim()
        ))
    }
}

/// ADD, then `del` (which returns the DEL step that decides).
fn after_add(
    case: &mut Case,
    del: impl FnOnce(
        &mut Case,
        &super::case::World,
        &crate::runtime::Runtime,
        &crate::runtime::Attachment,
        Option<&serde_json::Value>,
    ) -> Result<Step, CaseError>,
    what: &str,
) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    if !run.succeeded() {
        case.del(&w, &mut rt, &att)?;
        return Ok(Finding::Skip("ADD failed (see add.succeeds)".into()));
    }
    let step = del(case, &w, &rt, &att, run.result.as_ref())?;
    Ok(verdict(&step, what))
}

fn target_del(
    case: &mut Case,
    w: &super::case::World,
    rt: &crate::runtime::Runtime,
    att: &crate::runtime::Attachment,
    prev: Option<&serde_json::Value>,
    edits: &[(&str, Option<&str>)],
) -> Result<Step, CaseError> {
    let prev = if w.net.version_at_least("0.4.0") {
        prev
    } else {
        None
    };
    case.call(rt, "DEL", Some(att), w.request(Some(att), prev), edits)
}

fn succeeds(case: &mut Case) -> Result<Finding, CaseError> {
    after_add(
        case,
        |c, w, rt, att, prev| target_del(c, w, rt, att, prev, &[]),
        "DEL",
    )
}

fn idempotent(case: &mut Case) -> Result<Finding, CaseError> {
    after_add(
        case,
        |c, w, rt, att, prev| {
            target_del(c, w, rt, att, prev, &[])?;
            target_del(c, w, rt, att, prev, &[])
        },
        "the second DEL",
    )
}

fn without_add(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.attachment(0, "never-added", "eth0");
    let step = target_del(case, &w, &rt, &att, None, &[])?;
    Ok(verdict(&step, "DEL of an attachment never added"))
}

fn netns_gone(case: &mut Case) -> Result<Finding, CaseError> {
    let mut w = case.world()?;
    let att = w.att();
    let result = {
        let mut rt = case.runtime(&w);
        let run = case.add(&w, &mut rt, &att)?;
        if !run.succeeded() {
            case.del(&w, &mut rt, &att)?;
            return Ok(Finding::Skip("ADD failed (see add.succeeds)".into()));
        }
        run.result
    };
    w.sb.remove_container(0);
    let rt = case.runtime(&w);
    let step = target_del(case, &w, &rt, &att, result.as_ref(), &[])?;
    Ok(verdict(&step, "DEL with the namespace gone"))
}

fn netns_empty(case: &mut Case) -> Result<Finding, CaseError> {
    after_add(
        case,
        |c, w, rt, att, prev| target_del(c, w, rt, att, prev, &[("CNI_NETNS", Some(""))]),
        "DEL with CNI_NETNS empty",
    )
}

fn without_prev_result(case: &mut Case) -> Result<Finding, CaseError> {
    after_add(
        case,
        |c, w, rt, att, _| target_del(c, w, rt, att, None, &[]),
        "DEL without prevResult",
    )
}

fn restores_kernel(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let before = w.snapshot()?;
    let run = case.add(&w, &mut rt, &att)?;
    let del = case.del(&w, &mut rt, &att)?;
    if !run.succeeded() || !del.succeeded() {
        return Ok(Finding::Skip(
            "ADD or DEL failed (see add.succeeds, del.succeeds)".into(),
        ));
    }
    let left = w.kernel_changes(&before, &w.snapshot()?);
    Ok(if left.is_empty() {
        Finding::Pass("the kernel is as before ADD".into())
    } else {
        Finding::Deviation(format!("left behind: {}", left.join("; ")))
    })
}

fn after_failed_add(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = super::verbs::failing_ipam_world(case)? else {
        return Ok(Finding::Skip(
            "the profile delegates no IPAM that could be made to fail".into(),
        ));
    };
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    if run.succeeded() {
        return Ok(Finding::Skip(
            "ADD did not fail (see add.failure-reported)".into(),
        ));
    }
    let step = target_del(case, &w, &rt, &att, None, &[])?;
    Ok(verdict(&step, "DEL after a failed ADD"))
}

fn no_output(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    let step = target_del(case, &w, &rt, &att, run.result.as_ref(), &[])?;
    Ok(
        match (step.outcome.success(), step.outcome.stdout.is_empty()) {
            (false, _) => Finding::Skip("DEL failed (see del.succeeds)".into()),
            (true, true) => Finding::Pass("nothing printed".into()),
            (true, false) => {
                Finding::Deviation(format!("DEL printed {}", step.outcome.stdout_text().trim()))
            }
        },
    )
}
