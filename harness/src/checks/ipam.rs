//! IPAM plugins: addresses are released, never handed out twice, and the
//! ones asked for are honoured.

use ipnetwork::IpNetwork;
use serde_json::{Value, json};

use super::add::SUCCEEDS;
use super::judge;
use super::outcome::{Judged, Unjudged, deviation, not_applicable, pass};
use super::{Check, Cx, IPAM, row};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("ipam.release-reuse", "IPM-002", "In a one-address pool, ADD, DEL, then ADD for another container succeeds.", release_reuse).kinds(IPAM),
        row("ipam.exhaustion", "IPM-003", "A pool fills up: the next ADD fails, and no address is handed out twice.", exhaustion).kinds(IPAM),
        row("ipam.requested-ip", "IPM-004", "A plugin that hands out requested addresses takes them from args.cni.ips (with prefix), and args wins over CNI_ARGS IP.", requested_ip).kinds(IPAM),
        row("ipam.exhaust-release", "IPM-002, IPM-003", "A /29 fills up and ADD fails; after one DEL, ADD works again.", exhaust_release),
    ]
}

/// A /30: one usable address.
const ONE_ADDRESS: &str = "10.89.0.0/30";

fn release_reuse(cx: &Cx) -> Judged {
    let w = cx.pool_world(ONE_ADDRESS, 1)?;
    let first = w.add(&w.attachment(0, "c1", w.ifname()))?;
    first.require(SUCCEEDS)?;
    if !first.del()?.succeeded() {
        return deviation("DEL failed");
    }
    if w.add(&w.attachment(0, "c2", w.ifname()))?.succeeded() {
        pass("the released address was handed out again")
    } else {
        deviation("ADD after DEL found the pool still taken")
    }
}

fn exhaustion(cx: &Cx) -> Judged {
    // However many addresses the plugin's pool of a /29 holds, it fills
    // up, refuses the next ADD, and never hands an address out twice.
    let w = cx.pool_world("10.84.0.0/29", 9)?;
    let atts: Vec<_> = (0..9)
        .map(|i| w.attachment(i, &format!("c{i}"), w.ifname()))
        .collect();
    let (held, _refused) = match fill(&w, &atts) {
        Ok(x) => x,
        Err(judged) => return judged,
    };
    let addresses: Vec<_> = held
        .iter()
        .filter_map(|a| a.result().and_then(judge::first_address))
        .collect();
    let distinct: std::collections::HashSet<_> = addresses.iter().map(|a| a.ip()).collect();
    if distinct.len() != addresses.len() {
        return deviation(format!(
            "{} addresses handed out for {} ADDs: {}",
            distinct.len(),
            addresses.len(),
            super::say::list(&addresses)
        ));
    }
    pass(format!(
        "full after {} distinct addresses; the next ADD was refused",
        addresses.len()
    ))
}

fn requested_ip(cx: &Cx) -> Judged {
    let w = cx.pool_world("10.88.0.0/24", 1)?;
    let (asked, other) = (w.fill.host(77), w.fill.host(99));
    // With its prefix: "The plugin may require the IP address to include a
    // prefix length."
    let in_args = json!({"cni": {"ips": [format!("{asked}/{}", w.fill.subnet.prefix())]}});
    let add =
        |args: Option<&Value>, cni_args: Option<String>| -> Result<Option<IpNetwork>, Unjudged> {
            let a = w.add_edited(&w.att(), |mut c| {
                if let Some(args) = args {
                    c = c.edit(|r| r["args"] = args.clone());
                }
                match &cni_args {
                    Some(v) => c.set("CNI_ARGS", v),
                    None => c,
                }
            })?;
            // The guard's DEL runs here, before the next request.
            Ok(a.result().and_then(judge::first_address))
        };
    let got = |ip: Option<IpNetwork>| super::say::or(ip, "no address");
    let alone = add(Some(&in_args), None)?;
    if alone.is_none_or(|ip| ip.ip() != asked) {
        // A plugin may not offer requested addresses at all; it falls
        // under the convention only if it does, through CNI_ARGS.
        let legacy = add(None, Some(format!("IgnoreUnknown=1;IP={asked}")))?;
        return if legacy.is_some_and(|ip| ip.ip() == asked) {
            deviation(format!(
                "honours CNI_ARGS IP={asked} but not args.cni.ips (got {})",
                got(alone)
            ))
        } else {
            not_applicable("the plugin hands out no requested address, by args or CNI_ARGS")
        };
    }
    let both = add(Some(&in_args), Some(format!("IgnoreUnknown=1;IP={other}")))?;
    match both {
        Some(ip) if ip.ip() == asked => pass("args.cni.ips honoured, and over CNI_ARGS"),
        ip => deviation(format!(
            "args.cni.ips asked for {asked} and CNI_ARGS for {other}: got {}, but CNI_ARGS must be ignored",
            got(ip)
        )),
    }
}

/// Fills a /29 from container 0 on until an ADD is refused (whatever
/// the plugin's pool holds: gateway, network and broadcast addresses are
/// its business); the guards of the ADDs that succeeded, and the refused
/// one. Blocked when the first ADD fails; a deviation when the pool never
/// fills.
pub(super) fn fill<'w, 'c>(
    w: &'w super::context::World<'c>,
    atts: &[crate::runtime::Attachment],
) -> Result<
    (
        Vec<super::context::Attached<'w, 'c>>,
        super::context::Attached<'w, 'c>,
    ),
    Judged,
> {
    let mut held = Vec::new();
    for att in atts {
        let a = w.add(att).map_err(|e| Err(e.into()))?;
        if !a.succeeded() {
            if held.is_empty() {
                return Err(super::outcome::blocked(
                    SUCCEEDS,
                    "the first ADD into a /29 failed",
                ));
            }
            return Ok((held, a));
        }
        held.push(a);
    }
    Err(deviation(format!(
        "{} ADDs into a /29 all succeeded: more addresses than it holds",
        held.len()
    )))
}

fn exhaust_release(cx: &Cx) -> Judged {
    // A /29 holds 8 addresses: 9 containers always overflow it.
    let w = cx.pool_world("10.84.0.0/29", 10)?;
    let atts: Vec<_> = (0..10)
        .map(|i| w.attachment(i, &format!("c{i}"), w.ifname()))
        .collect();
    let (mut held, refused) = match fill(&w, &atts[..9]) {
        Ok(x) => x,
        Err(judged) => return judged,
    };
    let full_at = held.len();
    drop(refused);
    // Release one from the middle; the next ADD must find room.
    let freed = held.remove(full_at / 2);
    let released = freed.result().and_then(judge::first_address);
    freed.del()?;
    let again = w.add(&atts[9])?;
    match again.result().and_then(judge::first_address) {
        Some(got) => pass(format!(
            "full after {full_at} ADDs; after releasing {}, ADD got {got}",
            super::say::or(released, "an address")
        )),
        None => deviation(format!(
            "full after {full_at} ADDs; after releasing {}, ADD still failed",
            super::say::or(released, "an address")
        )),
    }
}
