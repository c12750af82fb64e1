//! Leaks: after the last DEL, nothing of an attachment remains.

use super::add::{SUCCEEDS, failed_add};
use super::judge;
use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, Level, row, spec};
use crate::snapshot::Snapshot;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("leak.after-del", Level::Must, spec("del", "DEL-R1"), "After ADD and DEL nothing of the attachment remains: no link, address, route or state file (bookkeeping the profile names aside).", after_del),
        row("leak.after-failed-add", Level::Must, spec("lifecycle", "L-4"), "After an ADD that fails on an exhausted pool, and the runtime's DEL, nothing of it remains.", after_failed_add),
    ]
}

/// A finding on what was left.
pub(super) fn judged(left: &[crate::snapshot::Change], ok: &str) -> Judged {
    if left.is_empty() {
        pass(ok)
    } else {
        deviation(format!("left behind: {}", judge::lines(left)))
    }
}

/// Snapshots before an ADD and after its DEL; blocked when either fails.
pub(super) fn around_add_and_del(cx: &Cx) -> Result<(Snapshot, Snapshot), Unjudged> {
    let w = cx.world()?;
    let before = w.snapshot()?;
    let a = w.add(&w.att())?;
    a.require(SUCCEEDS)?;
    if !a.del()?.succeeded() {
        return Err(Unjudged::Blocked {
            by: "del.succeeds",
            why: "DEL failed".into(),
        });
    }
    Ok((before, w.snapshot()?))
}

fn after_del(cx: &Cx) -> Judged {
    let (before, after) = around_add_and_del(cx)?;
    judged(
        &judge::leaks(&cx.profile, &before, &after),
        "nothing left behind",
    )
}

fn after_failed_add(cx: &Cx) -> Judged {
    let f = failed_add(cx)?;
    if !f.failed {
        return deviation("ADD succeeded in an exhausted pool");
    }
    judged(
        &judge::leaks(&cx.profile, &f.before, &f.after_del),
        "nothing left after DEL",
    )
}
