//! IPAM plugins: addresses are released, never handed out twice, and the
//! ones asked for are honoured.

use serde_json::json;

use super::add::SUCCEEDS;
use super::judge;
use super::outcome::{Judged, deviation, pass};
use super::{Check, Cx, IPAM, Level, conventions, row, spec};
use crate::spec::Version;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("ipam.release-reuse", Level::Must, spec("del", "IPM-002"), "In a one-address pool, ADD, DEL, then ADD for another container succeeds.", release_reuse).kinds(IPAM),
        row("ipam.exhaustion", Level::Must, spec("add", "IPM-003"), "In a one-address pool, a second ADD fails with an error object and never hands out the first address again.", exhaustion).kinds(IPAM),
        row("ipam.requested-ip", Level::Should, conventions("args-in-network-config", "IPM-004"), "An address asked for with args.cni.ips is handed out, and args wins over CNI_ARGS IP.", requested_ip).since(Version::V0_3_0).kinds(IPAM),
        row("ipam.exhaust-release", Level::Must, spec("del", "IPM-002, IPM-003"), "A /29 fills up, the next ADD fails with an error object; after one DEL, ADD gets that address.", exhaust_release),
    ]
}

/// A /30: one usable address.
const ONE_ADDRESS: &str = "10.89.0.0/30";

fn release_reuse(cx: &Cx) -> Judged {
    let w = cx.pool_world(ONE_ADDRESS, 1)?;
    let first = w.add(&w.attachment(0, "c1", "eth0"))?;
    if !first.succeeded() {
        return deviation("the first ADD failed");
    }
    if !first.del()?.succeeded() {
        return deviation("DEL failed");
    }
    if w.add(&w.attachment(0, "c2", "eth0"))?.succeeded() {
        pass("the released address was handed out again")
    } else {
        deviation("ADD after DEL found the pool still taken")
    }
}

fn exhaustion(cx: &Cx) -> Judged {
    let w = cx.pool_world(ONE_ADDRESS, 1)?;
    let first = w.add(&w.attachment(0, "c1", "eth0"))?;
    let taken = judge::first_address(first.require(SUCCEEDS)?);
    let second = w.add(&w.attachment(0, "c2", "eth0"))?;
    if second.succeeded() {
        let twice = second.result().and_then(judge::first_address) == taken;
        return deviation(if twice {
            format!(
                "{} was handed out twice",
                super::say::or(taken, "an address")
            )
        } else {
            "a one-address pool gave two addresses".into()
        });
    }
    if second.last_step().outcome.error().is_none() {
        deviation("the exhausted ADD failed without an error object")
    } else {
        pass("refused with an error object")
    }
}

fn requested_ip(cx: &Cx) -> Judged {
    let w = cx.pool_world("10.88.0.0/24", 1)?;
    let (asked, other) = (w.fill.host(77), w.fill.host(99));
    let a = w.add_edited(&w.att(), |c| {
        c.edit(|r| r["args"] = json!({"cni": {"ips": [asked.to_string()]}}))
            .set("CNI_ARGS", &format!("IgnoreUnknown=1;IP={other}"))
    })?;
    let got = a.result().and_then(judge::first_address);
    match got {
        Some(ip) if ip.ip() == asked => pass("args.cni.ips honoured over CNI_ARGS"),
        other_got => deviation(format!(
            "asked for {asked} (and CNI_ARGS {other}), got {}",
            super::say::or(other_got, "no address")
        )),
    }
}

fn exhaust_release(cx: &Cx) -> Judged {
    let w = cx.pool_world("10.84.0.0/29", 7)?;
    let atts: Vec<_> = (0..7)
        .map(|i| w.attachment(i, &format!("c{i}"), "eth0"))
        .collect();
    let mut held = Vec::new();
    let mut full = None;
    for att in &atts[..6] {
        let a = w.add(att)?;
        if a.succeeded() {
            held.push(a);
        } else {
            full = Some(a);
            break;
        }
    }
    let Some(refused) = full else {
        return deviation("six ADDs succeeded in a /29 with a gateway");
    };
    let full_at = held.len();
    if refused.last_step().outcome.error().is_none() {
        return deviation("the ADD on a full pool printed no error object");
    }
    if full_at == 0 {
        return super::outcome::blocked(SUCCEEDS, "the first ADD failed");
    }
    // Release one from the middle; the next ADD must get its address.
    let freed = held.remove(full_at / 2);
    let released = freed.result().and_then(judge::first_address);
    freed.del()?;
    let again = w.add(&atts[6])?;
    let got = again.result().and_then(judge::first_address);
    if got.is_some() && got == released {
        pass(format!(
            "full after {full_at}; the released {} came back",
            super::say::or(got, "address")
        ))
    } else {
        deviation(format!(
            "released {}, then ADD got {}",
            super::say::or(released, "no address"),
            super::say::or(got, "no address")
        ))
    }
}
