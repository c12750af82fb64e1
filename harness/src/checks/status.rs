//! STATUS (1.1.0): the plugin says whether it is ready for ADD.

use super::add::SUCCEEDS;
use super::outcome::{Judged, blocked, deviation, not_applicable, pass};
use super::{Check, Cx, row};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("status.usable", "STA-001", "STATUS succeeds when ADD works; when it fails, it prints an error object and ADD indeed fails.", usable),
        row("status.exhausted", "STA-R2, STA-002", "STATUS fails when the pool is exhausted (the next ADD fails).", exhausted),
    ]
}

/// STATUS of the plugin under test, as a runtime asks it.
fn status_step(w: &super::context::World) -> Result<Step, super::Unjudged> {
    let request = w.net.network_request(w.target(), None);
    Ok(w.call(Verb::Status, None).edit(|r| *r = request).run()?)
}

fn usable(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let step = status_step(&w)?;
    match (step.outcome.success(), step.outcome.error()) {
        (true, _) => pass("STATUS succeeded"),
        (false, None) => deviation("STATUS failed without an error object"),
        // "Not ready" is an answer (a daemon-backed plugin without its
        // daemon): wrong only if ADD then works after all.
        (false, Some(e)) => {
            let a = w.add(&w.att())?;
            if a.succeeded() {
                deviation(format!(
                    "STATUS said code {} ({}), but ADD then worked",
                    e.code, e.msg
                ))
            } else {
                pass(format!(
                    "STATUS said code {}, and ADD indeed failed",
                    e.code
                ))
            }
        }
    }
}

fn exhausted(cx: &Cx) -> Judged {
    let w = cx.pool_world("10.82.0.0/30", 2)?;
    let first = w.attachment(0, "c1", w.ifname());
    let add = w.call(Verb::Add, Some(&first)).run()?;
    let result = add.outcome.json();
    // Whatever happens below, the first attachment goes again.
    let judged = exhausted_after(&w, &add);
    w.call(Verb::Del, Some(&first))
        .prev(result.as_ref())
        .run()?;
    judged
}

fn exhausted_after(w: &super::context::World, add: &Step) -> Judged {
    if !add.outcome.success() {
        return blocked(SUCCEEDS, "ADD failed");
    }
    let step = status_step(w)?;
    // A /30 is full after one ADD only if the plugin keeps the gateway
    // back; a second ADD that works shows room left, so nothing to judge.
    let probe = w.add(&w.attachment(1, "c2", w.ifname()))?;
    if probe.succeeded() {
        return not_applicable("the /30 pool still had room after one ADD for this plugin");
    }
    drop(probe);
    match (step.outcome.success(), step.outcome.error_code()) {
        (true, _) => {
            deviation("STATUS succeeded although the pool was exhausted (the next ADD failed)")
        }
        (false, code) => {
            let known = ErrorCode::NotAvailable.is(code) || ErrorCode::LimitedConnectivity.is(code);
            pass(format!(
                "STATUS failed on the exhausted pool ({}{})",
                super::say::code(code),
                if known {
                    ""
                } else {
                    "; 50 or 51 are the codes STATUS defines"
                }
            ))
        }
    }
}
