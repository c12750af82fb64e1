//! STATUS (1.1.0): the plugin says whether it is ready for ADD.

use super::add::SUCCEEDS;
use super::outcome::{Judged, blocked, deviation, pass};
use super::{Check, Cx, row};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("status.usable", "STA-001", "STATUS succeeds, or fails with an error object, when nothing is wrong.", usable),
        row("status.exhausted", "STA-R2, STA-002", "STATUS reports an exhausted pool with code 50 or 51.", exhausted),
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
    let w = cx.pool_world("10.82.0.0/30", 1)?;
    let att = w.att();
    let add = w.call(Verb::Add, Some(&att)).run()?;
    let step = status_step(&w)?;
    let result = add.outcome.json();
    w.call(Verb::Del, Some(&att)).prev(result.as_ref()).run()?;
    if !add.outcome.success() {
        return blocked(SUCCEEDS, "ADD failed");
    }
    let code = step.outcome.error_code();
    let reported = ErrorCode::NotAvailable.is(code) || ErrorCode::LimitedConnectivity.is(code);
    match (step.outcome.success(), reported) {
        (false, true) => pass("exhaustion reported"),
        (ok, _) => deviation(format!(
            "STATUS on an exhausted pool: {}",
            if ok {
                "success".to_string()
            } else {
                super::say::code(code)
            }
        )),
    }
}
