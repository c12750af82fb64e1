//! CHECK: it passes right after ADD, consults `prevResult`, notices what
//! went missing and tolerates what later plugins added.

use crate::snapshot::Parts;
use serde_json::{Value, json};

use super::add::SUCCEEDS;
use super::context::Attached;
use super::judge;
use super::outcome::{Judged, Unjudged, blocked, deviation, not_applicable, pass};
use super::{Check, Cx, INTERFACE, IPAM, row};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("check.passes-after-add", "CHK-001", "CHECK right after ADD, with its result as prevResult, succeeds.", passes),
        row("check.no-output", "CHK-002", "A successful CHECK prints nothing.", silent),
        row("check.consults-prev-result", "CHK-R1", "CHECK fails when prevResult puts an address on CNI_IFNAME that the link lacks.", consults_prev_result).kinds(INTERFACE),
        row("check.detects-missing-link", "CHK-003", "CHECK fails once the interface is gone.", missing_link).kinds(INTERFACE),
        row("check.detects-missing-address", "CHK-004", "CHECK fails once a reported address is gone.", missing_address).kinds(INTERFACE),
        row("check.detects-missing-reservation", "CHK-R3", "An IPAM plugin's CHECK fails once the state it keeps for the attachment (its reservation) is gone.", missing_reservation).kinds(IPAM),
        row("check.tolerates-additions", "CHK-005", "CHECK succeeds when later plugins added routes, interfaces and addresses.", tolerates),
        row("check.refused-before-040", "CHK-006", "CHECK with a config older than 0.4.0 fails with code 1.", refused_before_040),
    ]
}

/// CHECK of the plugin under test for `a`, with `prev` as prevResult.
fn check_with(a: &Attached, prev: &Value) -> Result<Step, Unjudged> {
    Ok(a.world()
        .call(Verb::Check, Some(&a.att))
        .prev(Some(prev))
        .run()?)
}

fn passes(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let step = check_with(&a, a.require(SUCCEEDS)?)?;
    if step.outcome.success() {
        pass("CHECK succeeded")
    } else {
        deviation(format!(
            "CHECK right after ADD failed: {}",
            super::say::failure(&step.outcome)
        ))
    }
}

fn silent(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let step = check_with(&a, a.require(SUCCEEDS)?)?;
    match (step.outcome.success(), step.outcome.stdout.is_empty()) {
        (false, _) => blocked("check.passes-after-add", "CHECK failed"),
        (true, true) => pass("nothing printed"),
        (true, false) => deviation(format!(
            "CHECK printed {}",
            step.outcome.stdout_text().trim()
        )),
    }
}

/// CHECK must fail: a verdict on the answer.
fn must_fail(step: &Step, what: &str) -> Judged {
    // The error object is error.object's to judge.
    match (step.outcome.success(), step.outcome.error()) {
        (true, _) => deviation(format!("CHECK succeeded although {what}")),
        (false, None) => pass("CHECK failed (without an error object: see error.object)"),
        (false, Some(e)) => pass(format!("CHECK failed with code {}", e.code)),
    }
}

fn consults_prev_result(cx: &Cx) -> Judged {
    if cx.profile.ipam == crate::profile::Ipam::None {
        return not_applicable("the plugin assigns no addresses of the network's: none to expect");
    }
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let mut prev = a.require(SUCCEEDS)?.clone();
    let Some((idx, _)) = judge::own_interface(&prev, &a.att.ifname) else {
        return blocked(
            "add.interface-entry",
            format!("the result does not list {}", a.att.ifname),
        );
    };
    // An address in the plugin's subnet that nobody put on the link.
    let absent = format!("{}/{}", w.fill.host(200), w.fill.subnet.prefix());
    let mut ip = json!({"address": absent, "interface": idx});
    if cx.version.has_ip_version_field() {
        ip["version"] = json!("4");
    }
    match prev["ips"].as_array_mut() {
        Some(ips) => ips.push(ip),
        None => prev["ips"] = json!([ip]),
    }
    let step = check_with(&a, &prev)?;
    must_fail(
        &step,
        &format!(
            "prevResult puts {absent} on {}, which lacks it",
            a.att.ifname
        ),
    )
}

fn missing_link(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?.clone();
    match w.kernel(0, Parts::LINKS)?.link(&a.att.ifname) {
        None => {
            let why = format!("there is no link {} to remove", a.att.ifname);
            return blocked("add.link-exists", why);
        }
        // A namespace's loopback cannot be deleted.
        Some(l) if a.att.ifname == "lo" && l.kind.is_none() => {
            return not_applicable(
                "the interface is the namespace's loopback, which cannot be deleted",
            );
        }
        Some(_) => {}
    }
    w.set_up(0, &["link", "del", &a.att.ifname])?;
    must_fail(&check_with(&a, &result)?, "the interface is gone")
}

fn missing_address(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?.clone();
    let kernel = w.kernel(0, Parts::ADDRESSES)?;
    if kernel.link(&a.att.ifname).is_none() {
        return blocked(
            "add.link-exists",
            format!("no link {} in the container", a.att.ifname),
        );
    }
    let reported = judge::addresses(&result);
    let Some(addr) = kernel
        .addresses_on(&a.att.ifname)
        .find(|x| reported.contains(x))
    else {
        return blocked(
            "add.kernel-matches",
            "no reported address is on the interface",
        );
    };
    w.set_up(0, &["addr", "del", &addr.to_string(), "dev", &a.att.ifname])?;
    must_fail(&check_with(&a, &result)?, &format!("{addr} is gone"))
}

fn tolerates(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let mut prev = a.require(SUCCEEDS)?.clone();
    // A CHECK that fails with nothing added is check.passes-after-add's.
    if !check_with(&a, &prev)?.outcome.success() {
        return blocked(
            "check.passes-after-add",
            "CHECK fails even before anything is added",
        );
    }
    // What later plugins may add, made for real: a route in the container,
    // and another interface with its own address and route, which
    // prevResult then lists as a later plugin's result would.
    w.set_up(0, &["route", "add", "blackhole", "198.51.100.0/24"])?;
    for args in [
        &[
            "link", "add", "later0", "type", "veth", "peer", "name", "later0p",
        ][..],
        &["link", "set", "later0p", "up"],
        &["link", "set", "later0", "up"],
        &["addr", "add", "192.0.2.99/24", "dev", "later0"],
        &[
            "route",
            "add",
            "203.0.113.0/24",
            "via",
            "192.0.2.1",
            "dev",
            "later0",
        ],
    ] {
        w.set_up(0, args)?;
    }
    let mac = w
        .kernel(0, Parts::LINKS)?
        .link("later0")
        .and_then(|l| l.mac.clone())
        .unwrap_or_default();
    // Only list-shaped results can carry another interface.
    if cx.version.has_lists() {
        let mut interfaces = prev["interfaces"].as_array().cloned().unwrap_or_default();
        let idx = interfaces.len();
        let sandbox = a.att.netns.clone();
        interfaces.push(json!({"name": "later0", "mac": mac, "sandbox": sandbox}));
        prev["interfaces"] = Value::Array(interfaces);
        let mut ip = json!({"address": "192.0.2.99/24", "interface": idx});
        if cx.version.has_ip_version_field() {
            ip["version"] = json!("4");
        }
        let mut ips = prev["ips"].as_array().cloned().unwrap_or_default();
        ips.push(ip);
        prev["ips"] = Value::Array(ips);
        let mut routes = prev["routes"].as_array().cloned().unwrap_or_default();
        routes.push(json!({"dst": "203.0.113.0/24", "gw": "192.0.2.1"}));
        prev["routes"] = Value::Array(routes);
    }
    let step = check_with(&a, &prev)?;
    if step.outcome.success() {
        pass("CHECK tolerated later additions")
    } else {
        deviation(format!(
            "CHECK failed on additions by later plugins: {}",
            super::say::failure(&step.outcome)
        ))
    }
}

fn refused_before_040(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let att = w.att();
    let step = w.call(Verb::Check, Some(&att)).run()?;
    let code = step.outcome.error_code();
    match (
        step.outcome.success(),
        ErrorCode::IncompatibleVersion.is(code),
    ) {
        (false, true) => pass("refused with code 1"),
        (ok, _) => deviation(format!(
            "CHECK at {}: {}",
            cx.version,
            if ok {
                "success".to_string()
            } else {
                super::say::code(code)
            }
        )),
    }
}

fn missing_reservation(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let before = w.snapshot()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?.clone();
    let files = w.new_state_files(&before, &w.snapshot()?);
    if files.is_empty() {
        return not_applicable("the plugin keeps no state file of its own for the attachment");
    }
    let mut removed = Vec::new();
    for (folder, path) in &files {
        let file = w
            .state_file(folder, path)
            .ok_or_else(|| super::CaseError::Unexpected(format!("no state folder {folder}")))?;
        std::fs::remove_file(&file).map_err(|source| super::CaseError::Io {
            what: format!("remove {}", file.display()),
            source,
        })?;
        removed.push(format!("{folder}/{path}"));
    }
    must_fail(
        &check_with(&a, &result)?,
        &format!("{} is gone", removed.join(", ")),
    )
}
