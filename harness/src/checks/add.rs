//! ADD: the result against the schema and against the kernel, and what ADD
//! must refuse.

use crate::snapshot::Parts;
use serde_json::{Value, json};

use super::judge;
use super::outcome::{Judged, Unjudged, blocked, deviation, pass};
use super::{ATTACHING, Check, Cx, INTERFACE, Level, not_yet, row, spec};
use crate::profile::PluginKind;
use crate::runtime::ErrorObject;
use crate::schema::{self, Kind};
use crate::spec::Version;
use crate::spy;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("add.succeeds", Level::Must, spec("add", "ADD-001, ADD-021"), "ADD exits 0 and prints exactly one JSON result, not an error object.", succeeds),
        row("add.version-echo", Level::Must, spec("add", "ADD-002"), "The result's cniVersion is the one requested.", version_echo).must_since(Version::V0_4_0),
        row("add.schema", Level::Must, spec("success", "ADD-003 to ADD-007, ADD-017, IPM-001"), "The result matches the schema of the requested version (CIDRs, IPs, MACs, version fields, interface indexes; abbreviated for IPAM).", result_schema),
        row("add.interface-entry", Level::Should, spec("success", "ADD-010"), "The result lists CNI_IFNAME with a non-empty sandbox.", interface_entry).since(Version::V0_3_0).kinds(INTERFACE),
        row("add.link-exists", Level::Must, spec("add", "ADD-011"), "After ADD a link named CNI_IFNAME exists in the container.", link_exists).kinds(INTERFACE),
        row("add.kernel-matches", Level::Should, spec("success", "ADD-012"), "Every reported address is on the interface it points to, with the reported MAC and MTU, and every reported route is present.", kernel_matches).kinds(INTERFACE),
        row("add.existing-ifname", Level::Must, spec("add", "ADD-013"), "ADD fails when CNI_IFNAME already exists in the container, and leaves that link alone.", existing_ifname).must_since(Version::V1_0_0).kinds(INTERFACE),
        row("add.after-del", Level::Must, spec("lifecycle", "ADD-019"), "ADD, DEL, then ADD again with the same attachment succeeds.", after_del),
        row("add.failure-reported", Level::Must, spec("error", "ADD-020"), "When its IPAM plugin fails, ADD fails with an error object.", failure_reported).kinds(ATTACHING),
        row("add.rollback", Level::Should, spec("add", "ADD-R9"), "An ADD that fails leaves nothing behind even before the runtime's DEL.", rollback),
        row("add.twice-fails", Level::Must, spec("add", "ADD-R3, ADD-R6"), "ADD twice for one attachment without DEL fails.", twice_fails).must_since(Version::V1_0_0),
        not_yet("add.keeps-prev-result-interface", Level::Must, spec("add", "ADD-014"), "An interface plugin given a prevResult keeps it in its result.", "the first interface plugin of a list never gets one from libcni; the checklist's synthetic case needs a decision on remapped interface indexes"),
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

fn result_schema(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let doc = a.require(SUCCEEDS)?;
    let kind = if cx.kind() == PluginKind::Ipam {
        Kind::IpamResult
    } else {
        Kind::Result
    };
    match schema::validate(kind, cx.version.as_str(), doc) {
        Ok(v) if v.is_empty() => pass(format!("valid {kind:?} for {}", cx.version)),
        Ok(v) => deviation(
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(e) => deviation(e.to_string()),
    }
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
    w.set_up(
        0,
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer",
        ],
    )?;
    let a = w.add(&w.att())?;
    let kept = w
        .kernel(0, Parts::LINKS)?
        .link("eth0")
        .is_some_and(|l| l.kind.as_deref() == Some("veth"));
    match (a.succeeded(), kept) {
        (true, _) => deviation("ADD succeeded although eth0 already existed"),
        (false, false) => deviation("ADD failed but the existing eth0 was changed or removed"),
        (false, true) => pass("refused, existing link untouched"),
    }
}

fn after_del(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let first = w.add(&w.att())?;
    first.require(SUCCEEDS)?;
    first.del()?;
    if w.add(&w.att())?.succeeded() {
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
    match (step.outcome.success(), step.outcome.error()) {
        (true, _) => deviation("ADD succeeded although its IPAM plugin failed"),
        (false, None) => deviation("ADD failed without an error object on stdout"),
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
    let first = w.add(&w.attachment(0, "c1", "eth0"))?;
    first.require(SUCCEEDS)?;
    let before = w.snapshot()?;
    let second = w.add(&w.attachment(1, "c2", "eth0"))?;
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
