//! ADD: the result against the schema and against the kernel, and what ADD
//! must refuse.

use crate::snapshot::Parts;
use serde_json::{Value, json};

use super::judge;
use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{ATTACHING, Check, Cx, INTERFACE, IPAM, row};
use crate::profile::PluginKind;
use crate::runtime::ErrorObject;
use crate::schema::{self, Kind};
use crate::spy;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("add.succeeds", "ADD-001, ADD-021", "ADD exits 0 and prints exactly one JSON result, not an error object.", succeeds),
        row("add.version-echo", "ADD-002", "The result's cniVersion is the one requested.", version_echo),
        row("add.schema", "ADD-003 to ADD-007, ADD-017", "The result has the structure of the requested version's schema (CIDRs, IPs, MACs, version fields, interface indexes).", result_schema),
        row("add.schema-extra-keys", "ADD-003 to ADD-007", "The result holds no key its version does not define (ips[].version at 1.x, 1.1-only fields before 1.1.0).", schema_extra_keys),
        row("add.ipam-abbreviated", "IPM-001", "An IPAM plugin's result is abbreviated: no interfaces, no ips[].interface.", ipam_abbreviated).kinds(IPAM),
        row("add.interface-entry", "ADD-010", "The result lists CNI_IFNAME with a non-empty sandbox.", interface_entry).kinds(INTERFACE),
        row("add.link-exists", "ADD-011", "After ADD a link named CNI_IFNAME exists in the container.", link_exists).kinds(INTERFACE),
        row("add.kernel-matches", "ADD-012", "Every reported address is on the interface it points to, with the reported MAC and MTU, and every reported route is present.", kernel_matches).kinds(INTERFACE),
        row("add.existing-ifname", "ADD-013", "ADD fails when CNI_IFNAME already exists in the container, and leaves that link alone.", existing_ifname).kinds(INTERFACE),
        row("add.after-del", "ADD-019", "ADD, DEL, then ADD again with the same attachment succeeds.", after_del),
        row("add.failure-reported", "ADD-020", "When its IPAM plugin fails, ADD exits non-zero.", failure_reported).kinds(ATTACHING),
        row("add.rollback", "ADD-R9", "An ADD that fails leaves nothing behind even before the runtime's DEL.", rollback),
        row("add.twice-fails", "ADD-R3, ADD-R6", "ADD twice for one attachment without DEL fails.", twice_fails).kinds(INTERFACE),
        row("add.keeps-prev-result-interface", "ADD-014, ADD-R5", "An interface plugin second in a list keeps the interfaces, addresses, routes and DNS of its prevResult in its result, adding its own.", keeps_prev_result).kinds(INTERFACE),
    ]
}

/// Checks that need a result block on the one that judges ADD.
pub(super) const SUCCEEDS: &str = "add.succeeds";

fn succeeds(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let step = a.last_step();
    let doc = step.outcome.json().filter(Value::is_object);
    match (&doc, step.outcome.success()) {
        (_, false) => deviation(format!("ADD failed: {}", step.outcome.exit)),
        (None, true) => deviation("ADD exited 0 without one JSON object on stdout"),
        (Some(d), true) if ErrorObject::parse(d).is_some() => {
            deviation("ADD exited 0 but printed an error object")
        }
        (Some(_), true) => pass("one JSON result"),
    }
}

fn version_echo(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let got = a
        .require(SUCCEEDS)?
        .get("cniVersion")
        .and_then(Value::as_str);
    match got {
        Some(v) if v == cx.version.as_str() => pass(format!("cniVersion {v}")),
        other => deviation(format!(
            "requested {}, result says {}",
            cx.version,
            super::say::or(other, "nothing (no cniVersion)")
        )),
    }
}

/// What the schema of the requested version says of the result, split
/// three ways: the structure; keys the version does not define; and, for
/// IPAM plugins, what an abbreviated result leaves out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Structure,
    ExtraKeys,
    Abbreviation,
}

/// Whether a violation is about an IPAM result's `interfaces` or
/// `ips[].interface` (which abbreviated results leave out).
fn about_abbreviation(v: &schema::Violation) -> bool {
    let p = &v.pointer;
    p == "/interfaces"
        || (p.starts_with("/ips/") && p.ends_with("/interface") && p.matches('/').count() == 3)
}

fn schema_part(cx: &Cx, part: Part) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let doc = a.require(SUCCEEDS)?;
    let ipam = cx.kind() == PluginKind::Ipam;
    let kind = if ipam { Kind::IpamResult } else { Kind::Result };
    let all = match schema::validate(kind, cx.version.as_str(), doc) {
        Ok(v) => v,
        Err(e) => return deviation(e.to_string()),
    };
    // A key the version forbids is a `false` subschema.
    let undeclared = |v: &schema::Violation| v.rule == "falseSchema";
    let mine: Vec<&schema::Violation> = all
        .iter()
        .filter(|v| match part {
            Part::Structure => !undeclared(v),
            Part::ExtraKeys => undeclared(v) && !(ipam && about_abbreviation(v)),
            Part::Abbreviation => undeclared(v) && about_abbreviation(v),
        })
        .collect();
    if mine.is_empty() {
        pass(match part {
            Part::Structure => format!("valid {kind:?} structure for {}", cx.version),
            Part::ExtraKeys => format!("no key {} does not define", cx.version),
            Part::Abbreviation => "abbreviated: no interfaces, no ips[].interface".into(),
        })
    } else {
        let list: Vec<String> = mine.iter().map(ToString::to_string).collect();
        deviation(list.join("; "))
    }
}

fn result_schema(cx: &Cx) -> Judged {
    schema_part(cx, Part::Structure)
}

fn schema_extra_keys(cx: &Cx) -> Judged {
    schema_part(cx, Part::ExtraKeys)
}

fn ipam_abbreviated(cx: &Cx) -> Judged {
    schema_part(cx, Part::Abbreviation)
}

fn interface_entry(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?;
    match judge::own_interface(result, &a.att.ifname) {
        Some((_, i))
            if i.get("sandbox")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()) =>
        {
            pass("listed with its sandbox")
        }
        Some(_) => deviation(format!("{} is listed without a sandbox", a.att.ifname)),
        None => deviation(format!("the result does not list {}", a.att.ifname)),
    }
}

fn link_exists(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    a.require(SUCCEEDS)?;
    if w.kernel(0, Parts::LINKS)?.link(&a.att.ifname).is_some() {
        pass(format!("{} exists", a.att.ifname))
    } else {
        deviation(format!(
            "ADD succeeded but no link {} is in the container",
            a.att.ifname
        ))
    }
}

fn kernel_matches(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let result = a.require(SUCCEEDS)?;
    let kernel = w.kernel(0, Parts::RESULT)?;
    if kernel.link(&a.att.ifname).is_none() {
        return blocked(
            "add.link-exists",
            format!("no link {} in the container", a.att.ifname),
        );
    }
    let issues = judge::disagreements(result, &kernel, &a.att.ifname);
    if issues.is_empty() {
        pass("the kernel holds what the result says")
    } else {
        deviation(issues.join("; "))
    }
}

fn existing_ifname(cx: &Cx) -> Judged {
    let w = cx.world()?;
    w.creates_its_interface()?;
    let ifname = w.ifname().to_string();
    let peer = format!("{ifname}peer");
    w.set_up(
        0,
        &[
            "link", "add", &ifname, "type", "veth", "peer", "name", &peer,
        ],
    )?;
    let a = w.add(&w.att())?;
    let kept = w
        .kernel(0, Parts::LINKS)?
        .link(&ifname)
        .is_some_and(|l| l.kind.as_deref() == Some("veth"));
    // No sentence speaks of the existing link once ADD failed: reported.
    match (a.succeeded(), kept) {
        (true, _) => deviation(format!("ADD succeeded although {ifname} already existed")),
        (false, false) => pass(format!(
            "refused (the existing {ifname} was changed or removed, though)"
        )),
        (false, true) => pass("refused, existing link untouched"),
    }
}

fn after_del(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let first = w.add(&w.att())?;
    first.require(SUCCEEDS)?;
    first.del()?;
    let again = w.add(&w.att())?;
    cx.own_failure(&again.run)?;
    if again.succeeded() {
        pass("ADD after DEL succeeded")
    } else {
        deviation("ADD after DEL failed")
    }
}

/// A world whose plugin's IPAM is the spy, failing ADD; not applicable
/// without delegated IPAM.
pub(super) fn failing_ipam_world(cx: &Cx) -> Result<super::context::World<'_>, Unjudged> {
    cx.spied_ipam_world(Some(json!({"type": spy::NAME, "spyFailOn": ["ADD"]})))
}

fn failure_reported(cx: &Cx) -> Judged {
    let w = failing_ipam_world(cx)?;
    let a = w.add(&w.att())?;
    let step = a.last_step();
    // The exit status is this check's; the error object is error.object's.
    match (step.outcome.success(), step.outcome.error()) {
        (true, _) => deviation("ADD succeeded although its IPAM plugin failed"),
        (false, None) => pass("failed (without an error object: see error.object)"),
        (false, Some(e)) => pass(format!("failed with code {}", e.code)),
    }
}

/// Container 0 takes the only address of a /30; container 1's ADD then
/// fails. The snapshots around container 1's ADD and after its DEL.
pub(super) struct FailedAdd {
    pub before: crate::snapshot::Snapshot,
    pub after_add: crate::snapshot::Snapshot,
    pub after_del: crate::snapshot::Snapshot,
    /// Whether the second ADD failed, as it should.
    pub failed: bool,
}

pub(super) fn failed_add(cx: &Cx) -> Result<FailedAdd, Unjudged> {
    let w = cx.pool_world("10.89.0.0/30", 2)?;
    let first = w.add(&w.attachment(0, "c1", w.ifname()))?;
    first.require(SUCCEEDS)?;
    let before = w.snapshot()?;
    let second = w.add(&w.attachment(1, "c2", w.ifname()))?;
    let after_add = w.snapshot()?;
    let failed = !second.succeeded();
    second.del()?;
    let after_del = w.snapshot()?;
    Ok(FailedAdd {
        before,
        after_add,
        after_del,
        failed,
    })
}

fn rollback(cx: &Cx) -> Judged {
    let f = failed_add(cx)?;
    if !f.failed {
        return blocked(
            "leak.after-failed-add",
            "ADD did not fail on an exhausted pool",
        );
    }
    let left = judge::leaks(&cx.profile, &f.before, &f.after_add);
    if left.is_empty() {
        pass("the failed ADD rolled back by itself")
    } else {
        deviation(format!("left behind: {}", judge::lines(&left)))
    }
}

fn twice_fails(cx: &Cx) -> Judged {
    let w = cx.world()?;
    w.creates_its_interface()?;
    let first = w.add(&w.att())?;
    first.require(SUCCEEDS)?;
    let second = w.add(&w.att())?;
    let again = second.succeeded();
    // One attachment, one DEL: the first guard's.
    let _ = second.release();
    if again {
        deviation("a second ADD of the same attachment succeeded")
    } else {
        pass("refused")
    }
}

fn keeps_prev_result(cx: &Cx) -> Judged {
    cx.spy_dir()?;
    let w = cx.world()?;
    // What a plugin before it in the list reported.
    let mut ip = json!({"address": "192.0.2.7/24", "interface": 0});
    if cx.version.has_ip_version_field() {
        ip["version"] = json!("4");
    }
    let before = json!({"type": crate::spy::NAME, "spyResult": {
        "interfaces": [{"name": "spy0"}],
        "ips": [ip],
        "routes": [{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}],
        "dns": {"nameservers": ["192.0.2.53"]}}});
    let mut net = w.net.clone();
    net.plugins
        .insert(0, before.as_object().cloned().expect("an object"));
    net.is_list = true;
    let a = w.add_to(&net, &w.att())?;
    let r = a.require(SUCCEEDS)?;
    let has = |key: &str, field: &str, want: &str| {
        r[key]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x[field] == want)
    };
    let mut missing = Vec::new();
    if !has("interfaces", "name", "spy0") {
        missing.push("interface spy0");
    }
    if !has("ips", "address", "192.0.2.7/24") {
        missing.push("address 192.0.2.7/24");
    }
    if !has("routes", "dst", "198.51.100.0/24") {
        missing.push("route 198.51.100.0/24");
    }
    let dns = r["dns"]["nameservers"].as_array();
    if !dns.into_iter().flatten().any(|n| n == "192.0.2.53") {
        missing.push("nameserver 192.0.2.53");
    }
    if !missing.is_empty() {
        return deviation(format!("dropped from prevResult: {}", missing.join(", ")));
    }
    // What the plugin adds of its own is its business ("prevResult plus
    // this plugin's modifications").
    pass("prevResult kept")
}
