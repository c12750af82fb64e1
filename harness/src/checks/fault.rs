//! Faults: a plugin killed part-way through ADD.

use std::time::Duration;

use super::judge;
use super::outcome::{Judged, deviation, pass};
use super::{Check, Cx, Level, row, spec};
use crate::runtime::Exit;
use crate::spec::Verb;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("fault.kill-during-add", Level::Must, spec("lifecycle", "L-4"), "A plugin killed at random points of ADD, then DEL, leaves no link, no reservation and a store that still works.", kill_during_add).once(),
    ]
}

/// Kill points spread over an ADD: reproducible "random" delays.
fn delays(trials: usize, max_us: u64) -> Vec<Duration> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..trials)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(200 + x % max_us)
        })
        .collect()
}

fn kill_during_add(cx: &Cx) -> Judged {
    const TRIALS: usize = 24;
    let w = cx.world()?;
    let att = w.att();
    let before = w.snapshot()?;
    let mut killed = 0;
    for d in delays(TRIALS, 8000) {
        let add = w.call(Verb::Add, Some(&att)).kill_after(d).run()?;
        if add.outcome.exit == Exit::TimedOut {
            killed += 1;
        }
        let del = w.call(Verb::Del, Some(&att)).run()?;
        if !del.outcome.success() {
            return deviation(format!(
                "DEL after ADD was killed at {d:?} failed: {}",
                del.outcome.stdout_text().trim()
            ));
        }
        let left = judge::leaks(&cx.profile, &before, &w.snapshot()?);
        if !left.is_empty() {
            return deviation(format!(
                "killed at {d:?}, then DEL, left: {}",
                judge::lines(&left)
            ));
        }
    }
    // The store still works.
    let add = w.call(Verb::Add, Some(&att)).run()?;
    let result = add.outcome.json();
    let del = w.call(Verb::Del, Some(&att)).prev(result.as_ref()).run()?;
    if add.outcome.success() && del.outcome.success() {
        pass(format!(
            "{killed} of {TRIALS} ADDs killed part-way; DEL always cleaned up; the store still works"
        ))
    } else {
        deviation("after the killed ADDs, ADD and DEL no longer work")
    }
}
