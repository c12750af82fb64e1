//! CHECK: it passes right after ADD, consults `prevResult`, notices what
//! went missing and tolerates what later plugins added.

use crate::snapshot::Parts;
use serde_json::{Value, json};

use super::add::SUCCEEDS;
use super::context::Attached;
use super::judge;
use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{Check, Cx, INTERFACE, Level, row, spec};
use crate::runtime::Step;
use crate::spec::{ErrorCode, Verb, Version};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("check.passes-after-add", Level::Must, spec("check", "CHK-001"), "CHECK right after ADD, with its result as prevResult, succeeds.", passes).since(Version::V0_4_0),
        row("check.no-output", Level::Should, spec("check", "CHK-002"), "A successful CHECK prints nothing.", silent).since(Version::V0_4_0),
        row("check.consults-prev-result", Level::Must, spec("check", "CHK-R1"), "CHECK fails when prevResult puts an address on CNI_IFNAME that the link lacks.", consults_prev_result).since(Version::V0_4_0).kinds(INTERFACE),
        row("check.detects-missing-link", Level::Should, spec("check", "CHK-003"), "CHECK fails once the interface is gone.", missing_link).since(Version::V0_4_0).kinds(INTERFACE),
        row("check.detects-missing-address", Level::Should, spec("check", "CHK-004"), "CHECK fails once a reported address is gone.", missing_address).since(Version::V0_4_0).kinds(INTERFACE),
        row("check.tolerates-additions", Level::Must, spec("check", "CHK-005"), "CHECK succeeds when later plugins added routes, interfaces and addresses.", tolerates).since(Version::V0_4_0),
        row("check.refused-before-040", Level::May, spec("check", "CHK-006"), "CHECK with a config older than 0.4.0 fails with code 1.", refused_before_040).until(Version::V0_3_1),
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
            step.outcome.stdout_text().trim()
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
    match (step.outcome.success(), step.outcome.error()) {
        (true, _) => deviation(format!("CHECK succeeded although {what}")),
        (false, None) => deviation("CHECK failed without an error object"),
        (false, Some(e)) => pass(format!("CHECK failed with code {}", e.code)),
    }
}

fn consults_prev_result(cx: &Cx) -> Judged {
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
    if w.kernel(0, Parts::LINKS)?.link(&a.att.ifname).is_none() {
        return blocked(
            "add.link-exists",
            format!("there is no link {} to remove", a.att.ifname),
        );
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
    // What later plugins may add: a route in the container, and an
    // unrelated interface with its own address and route in prevResult.
    w.set_up(0, &["route", "add", "blackhole", "198.51.100.0/24"])?;
    // Only list-shaped results can carry another interface.
    if cx.version.has_lists() {
        let mut interfaces = prev["interfaces"].as_array().cloned().unwrap_or_default();
        let idx = interfaces.len();
        interfaces.push(json!({"name": "hostdummy0", "mac": "c2:00:00:00:00:aa"}));
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
            step.outcome.stdout_text().trim()
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
