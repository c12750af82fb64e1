//! Leaks: after the last DEL, nothing of an attachment remains.

use super::add::{SUCCEEDS, failed_add};
use super::judge;
use super::outcome::{Judged, blocked, deviation, pass};
use super::{Check, Cx, Level, check, spec};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        check("leak.after-del", Level::Must, spec("del", "DEL-R1"), "After ADD and DEL nothing of the attachment remains: no link, address, route or state file (bookkeeping the profile names aside).", after_del),
        check("leak.after-failed-add", Level::Must, spec("lifecycle", "L-4"), "After an ADD that fails on an exhausted pool, and the runtime's DEL, nothing of it remains.", after_failed_add),
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

fn after_del(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let before = w.snapshot()?;
    let a = w.add(&w.att())?;
    a.require(SUCCEEDS)?;
    if !a.del()?.succeeded() {
        return blocked("del.succeeds", "DEL failed");
    }
    judged(
        &judge::leaks(&cx.profile, &before, &w.snapshot()?),
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
