//! Faults: a plugin killed part-way through ADD, at a point the harness
//! holds it at (so every run kills it at the same step).

use serde_json::json;

use super::judge;
use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, row};
use crate::runtime::Exit;
use crate::spec::Verb;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("fault.kill-during-add", "L-4", "A plugin killed while its IPAM plugin runs, then DEL: nothing of the attachment stays.", kill_during_add).once(),
    ]
}

fn kill_during_add(cx: &Cx) -> Judged {
    // The spy, as IPAM, records ADD and never answers: the plugin is held
    // waiting for it, and is killed there.
    let ipam = json!({"type": crate::spy::NAME, "spyHangOn": ["ADD"]});
    let w = cx.spied_ipam_world(Some(ipam))?;
    let att = w.att();
    let before = w.snapshot()?;
    let reached = || {
        w.spy_records()
            .iter()
            .any(|r| r["command"] == Verb::Add.as_str())
    };
    let add = w.call(Verb::Add, Some(&att)).kill_when(&reached).run()?;
    if add.outcome.exit != Exit::TimedOut {
        return Err(Unjudged::NotApplicable(format!(
            "ADD ended by itself ({}) before its IPAM plugin answered: there was nothing to kill it in",
            add.outcome.exit
        )));
    }
    let del = w.call(Verb::Del, Some(&att)).run()?;
    if !del.outcome.success() {
        return deviation(format!(
            "DEL after ADD was killed while IPAM ran failed: {}",
            super::say::failure(&del.outcome)
        ));
    }
    let left = judge::leaks(&cx.profile, &before, &w.snapshot()?);
    if left.is_empty() {
        pass("killed while its IPAM plugin ran, then DEL: nothing stayed")
    } else {
        deviation(format!(
            "killed while its IPAM plugin ran, then DEL, left: {}",
            judge::lines(&left)
        ))
    }
}
