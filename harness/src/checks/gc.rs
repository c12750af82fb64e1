//! GC (1.1.0): stale attachments are released, valid ones kept.

use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, Level, row, spec};
use crate::spec::{Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("gc.releases-stale", Level::Must, spec("gc", "GC-003, GC-004"), "GC releases what cni.dev/valid-attachments does not name.", releases_stale).since(Version::V1_1_0),
        row("gc.keeps-valid", Level::Must, spec("gc", "GC-003"), "GC naming every attachment releases nothing.", keeps_valid).since(Version::V1_1_0),
    ]
}

/// Three attachments in a /29; GC naming `keep`; then whether GC
/// succeeded and how many new containers still get an address (of up to
/// four tries).
fn gc_then_fill(cx: &Cx, keep: &[usize]) -> Result<(bool, usize), Unjudged> {
    let w = cx.pool_world("10.83.0.0/29", 7)?;
    let atts: Vec<_> = (0..7)
        .map(|i| w.attachment(i, &format!("p{i}"), "eth0"))
        .collect();
    let mut held = Vec::new();
    for att in &atts[..3] {
        let step = w.call(Verb::Add, Some(att)).run()?;
        if !step.outcome.success() {
            return Err(Unjudged::Blocked {
                by: super::add::SUCCEEDS,
                why: "ADD into a /29 failed".into(),
            });
        }
        held.push(step);
    }
    let valid: Vec<(String, String)> = keep
        .iter()
        .map(|i| (atts[*i].container_id.clone(), atts[*i].ifname.clone()))
        .collect();
    let request = w.net.network_request(w.target(), Some(&valid));
    let gc = w.call(Verb::Gc, None).edit(|r| *r = request).run()?;
    let mut got = 0;
    for att in &atts[3..] {
        if w.call(Verb::Add, Some(att)).run()?.outcome.success() {
            got += 1;
        }
    }
    Ok((gc.outcome.success(), got))
}

fn releases_stale(cx: &Cx) -> Judged {
    match gc_then_fill(cx, &[1])? {
        (false, _) => deviation("GC failed"),
        // Five addresses: one kept, so four new containers fit.
        (true, 4) => pass("the two stale attachments' addresses came back"),
        (true, got) => deviation(format!(
            "after GC kept one of three, only {got} of 4 new ADDs got an address"
        )),
    }
}

fn keeps_valid(cx: &Cx) -> Judged {
    match gc_then_fill(cx, &[0, 1, 2])? {
        (false, _) => deviation("GC failed"),
        (true, 2) => pass("nothing named was released"),
        (true, got) => deviation(format!(
            "after GC named all three, {got} new ADDs got an address (2 fit)"
        )),
    }
}
