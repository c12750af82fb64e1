//! DEL: it succeeds whatever is already gone, and undoes what ADD did.

use serde_json::Value;

use super::add::{SUCCEEDS, failing_ipam_world};
use super::context::{Attached, Call};
use super::judge;
use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{ATTACHING, Check, Cx, not_yet, row};
use crate::runtime::Step;
use crate::spec::Verb;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("del.succeeds", "DEL-001", "DEL after ADD, with the ADD result as prevResult, succeeds.", succeeds),
        row("del.idempotent", "DEL-002", "A second DEL of the same attachment succeeds.", idempotent),
        row("del.without-add", "DEL-003", "DEL of an attachment never added succeeds.", without_add),
        row("del.netns-gone", "DEL-004", "DEL succeeds when the container's namespace is already gone.", netns_gone),
        row("del.netns-empty", "ENV-007", "DEL succeeds with CNI_NETNS empty.", netns_empty),
        row("del.without-prev-result", "DEL-005", "DEL succeeds without prevResult.", without_prev_result),
        row("del.restores-kernel", "DEL-006", "After DEL the host and the container hold what they held before ADD.", restores_kernel),
        row("del.after-failed-add", "DEL-007", "DEL after a failed ADD succeeds.", after_failed_add).kinds(ATTACHING),
        row("del.no-output", "DEL-008", "A successful DEL prints nothing.", no_output),
        not_yet("del.changed-prev-result", "DEL-009", "DEL succeeds with a prevResult a later plugin changed.", "needs a MAC-changing chained plugin in the profile set"),
    ]
}

fn verdict(step: &Step, what: &str) -> Judged {
    if step.outcome.success() {
        pass(format!("{what} succeeded"))
    } else {
        deviation(format!(
            "{what} failed: {}",
            super::say::failure(&step.outcome)
        ))
    }
}

/// DEL of the plugin under test for `a` (the guard's own DEL still runs
/// through the list afterwards, as a runtime's would).
fn target_del<'w, 'c>(
    a: &Attached<'w, 'c>,
    prev: Option<&Value>,
    edit: impl FnOnce(Call<'w, 'c>) -> Call<'w, 'c>,
) -> Result<Step, Unjudged> {
    let w = a.world();
    let prev = prev.filter(|_| w.cx().version.has_check());
    Ok(edit(w.call(Verb::Del, Some(&a.att)).prev(prev)).run()?)
}

fn succeeds(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?;
    verdict(&target_del(&a, Some(result), |c| c)?, "DEL")
}

fn idempotent(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?;
    target_del(&a, Some(result), |c| c)?;
    verdict(&target_del(&a, Some(result), |c| c)?, "the second DEL")
}

fn without_add(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let att = w.attachment(0, "never-added", w.ifname());
    let step = w.call(Verb::Del, Some(&att)).run()?;
    verdict(&step, "DEL of an attachment never added")
}

fn netns_gone(cx: &Cx) -> Judged {
    let mut w = cx.world()?;
    let (att, result) = {
        let a = w.add(&w.att())?;
        a.require(SUCCEEDS)?;
        a.release()
    };
    w.sb.remove_container(0);
    let prev = result.filter(|_| cx.version.has_check());
    let step = w.call(Verb::Del, Some(&att)).prev(prev.as_ref()).run()?;
    verdict(&step, "DEL with the namespace gone")
}

fn netns_empty(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?;
    let step = target_del(&a, Some(result), |c| c.set("CNI_NETNS", ""))?;
    verdict(&step, "DEL with CNI_NETNS empty")
}

fn without_prev_result(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    a.require(SUCCEEDS)?;
    verdict(&target_del(&a, None, |c| c)?, "DEL without prevResult")
}

fn restores_kernel(cx: &Cx) -> Judged {
    let (before, after) = super::leak::around_add_and_del(cx)?;
    // The network's shared state (a bridge, forwarding) may stay.
    let left: Vec<_> = judge::kernel_changes(&before, &after)
        .into_iter()
        .filter(|c| !judge::is_shared(&cx.profile, c))
        .collect();
    super::leak::judged(&left, "the kernel is as before ADD")
}

fn after_failed_add(cx: &Cx) -> Judged {
    let w = failing_ipam_world(cx)?;
    let a = w.add(&w.att())?;
    if a.succeeded() {
        return blocked(
            "add.failure-reported",
            "ADD did not fail when its IPAM plugin did",
        );
    }
    verdict(&target_del(&a, None, |c| c)?, "DEL after a failed ADD")
}

fn no_output(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let step = target_del(&a, a.result(), |c| c)?;
    match (step.outcome.success(), step.outcome.stdout.is_empty()) {
        (false, _) => blocked("del.succeeds", "DEL failed"),
        (true, true) => pass("nothing printed"),
        (true, false) => deviation(format!("DEL printed {}", step.outcome.stdout_text().trim())),
    }
}
