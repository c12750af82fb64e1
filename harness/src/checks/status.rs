//! STATUS (1.1.0): the plugin says whether it is ready for ADD.

use super::add::SUCCEEDS;
use super::outcome::{Judged, blocked, deviation, pass};
use super::{Check, Cx, Level, row, spec};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("status.usable", Level::Must, spec("status", "STA-001"), "STATUS succeeds, or fails with an error object, when nothing is wrong.", usable).since(Version::V1_1_0),
        row("status.exhausted", Level::Should, spec("status", "STA-R2, STA-002"), "STATUS reports an exhausted pool with code 50 or 51.", exhausted).since(Version::V1_1_0),
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
        (false, Some(e)) => deviation(format!(
            "STATUS failed in a fresh sandbox with code {}: {}",
            e.code, e.msg
        )),
        (false, None) => deviation("STATUS failed without an error object"),
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
