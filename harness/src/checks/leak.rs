//! Leaks: DEL takes away what the attachment made; what the network keeps
//! for all its attachments (a bridge, forwarding, IPAM bookkeeping) may
//! stay, and is reported, not judged.

use super::add::{SUCCEEDS, failed_add};
use super::judge;
use super::outcome::{Judged, Unjudged, deviation, not_applicable, pass};
use super::{Check, Cx, row};
use crate::snapshot::{Change, ChangeKind, Snapshot};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("leak.after-del", "DEL-R1", "Two attachments of one network; after DEL of one, nothing of it remains (no link, address, route or state file of its own) and the other's are untouched; the network's shared state may stay.", after_del),
        row("leak.after-failed-add", "L-4", "After an ADD that fails (an exhausted pool; a later plugin of the list failing) and the runtime's DEL, nothing of it remains.", after_failed_add),
        row("leak.processes", "none", "ADD, CHECK and DEL leave no process running after they return (a daemon aside); the harness ends any it finds.", processes),
        row("leak.shared-state", "DEL-R1", "What the network itself still holds after its last attachment's DEL (a bridge, forwarding, bookkeeping aside), reported.", shared_state),
    ]
}

/// A finding on what was left.
pub(super) fn judged(left: &[Change], ok: &str) -> Judged {
    if left.is_empty() {
        pass(ok)
    } else {
        deviation(format!("left behind: {}", judge::lines(left)))
    }
}

/// Snapshots before an ADD and after its DEL; blocked when either fails.
pub(super) fn around_add_and_del(cx: &Cx) -> Result<(Snapshot, Snapshot), Unjudged> {
    let w = cx.world()?;
    let before = w.snapshot()?;
    let a = w.add(&w.att())?;
    a.require(SUCCEEDS)?;
    if !a.del()?.succeeded() {
        return Err(Unjudged::Blocked {
            by: "del.succeeds",
            why: "DEL failed".into(),
        });
    }
    Ok((before, w.snapshot()?))
}

/// Two attachments of the network: snapshots with none, with both, with
/// the second only (after DEL of the first), and with none again, and
/// what the second's ADD changed.
struct TwoAttachments {
    none: Snapshot,
    second_only: Snapshot,
    at_end: Snapshot,
    second: Vec<Change>,
    both: Snapshot,
}

fn two_attachments(cx: &Cx) -> Result<TwoAttachments, Unjudged> {
    if cx.profile.one_attachment {
        // One attachment at a time: its DEL leaves the network empty.
        let (none, after) = around_add_and_del(cx)?;
        return Ok(TwoAttachments {
            second: Vec::new(),
            both: after.clone(),
            second_only: after.clone(),
            at_end: after,
            none,
        });
    }
    let w = cx.world_with(super::context::Spec {
        containers: 2,
        ..Default::default()
    })?;
    let none = w.snapshot()?;
    let first = w.add(&w.attachment(0, "c1", w.ifname()))?;
    first.require(SUCCEEDS)?;
    let one = w.snapshot()?;
    let second = w.add(&w.attachment(1, "c2", w.ifname()))?;
    if !second.succeeded() {
        return Err(Unjudged::NotApplicable(
            "a second attachment of the network could not be added (concurrency.* judge that)"
                .into(),
        ));
    }
    let both = w.snapshot()?;
    if !first.del()?.succeeded() {
        return Err(Unjudged::Blocked {
            by: "del.succeeds",
            why: "DEL failed".into(),
        });
    }
    let second_only = w.snapshot()?;
    if !second.del()?.succeeded() {
        return Err(Unjudged::Blocked {
            by: "del.succeeds",
            why: "DEL failed".into(),
        });
    }
    Ok(TwoAttachments {
        second: crate::snapshot::diff(&one, &both),
        none,
        second_only,
        at_end: w.snapshot()?,
        both,
    })
}

fn after_del(cx: &Cx) -> Judged {
    let t = two_attachments(cx)?;
    let left = judge::own_leaks(&cx.profile, &t.none, &t.second_only, &t.second);
    // The other attachment's own state, as its ADD made it, must hold.
    let touched: Vec<Change> = crate::snapshot::diff(&t.both, &t.second_only)
        .into_iter()
        .filter(|c| {
            c.kind != ChangeKind::Added
                && t.second
                    .iter()
                    .any(|o| o.scope == c.scope && o.object == c.object)
                && !judge::is_shared(&cx.profile, c)
        })
        .collect();
    if !touched.is_empty() {
        return deviation(format!(
            "DEL of one attachment changed the other's: {}",
            judge::lines(&touched)
        ));
    }
    judged(
        &left,
        "nothing of the deleted attachment remains; the other's is untouched",
    )
}

/// After a failed ADD and the runtime's DEL, nothing of the attachment
/// stays: when the pool is exhausted, and when a plugin after it in the
/// list fails ADD.
fn after_failed_add(cx: &Cx) -> Judged {
    let mut judged_any = false;
    let mut left = Vec::new();
    match failed_add(cx) {
        Ok(f) if f.failed => {
            judged_any = true;
            left.extend(judge::leaks(&cx.profile, &f.before, &f.after_del));
        }
        Ok(_) | Err(Unjudged::NotApplicable(_)) => {}
        Err(e) => return Err(e),
    }
    match super::chain::spy_world(cx) {
        Ok(w) => {
            let before = w.snapshot()?;
            let a = w.add_to(&super::chain::failing_after(&w), &w.att())?;
            if !a.succeeded() {
                judged_any = true;
                a.del()?;
                left.extend(judge::leaks(&cx.profile, &before, &w.snapshot()?));
            }
        }
        Err(Unjudged::NotApplicable(_)) => {}
        Err(e) => return Err(e),
    }
    if !judged_any {
        return not_applicable(
            "no ADD could be made to fail: no pool to exhaust, no spy to fail after it",
        );
    }
    judged(&left, "nothing left after the failed ADDs and their DEL")
}

fn shared_state(cx: &Cx) -> Judged {
    let t = two_attachments(cx)?;
    // What the network holds: objects made, and changes the profile calls
    // the network's; other changes to what existed are
    // del.restores-kernel's subject.
    let left: Vec<Change> = crate::snapshot::diff(&t.none, &t.at_end)
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Added || judge::is_shared(&cx.profile, c))
        .filter(|c| match &c.object {
            crate::snapshot::Object::Neighbour { .. } => false,
            crate::snapshot::Object::File { path, entry } => {
                *entry != crate::snapshot::FileEntry::Directory && !cx.profile.is_bookkeeping(path)
            }
            _ => true,
        })
        .collect();
    let theirs = preceding_footprint(cx)?;
    let left: Vec<Change> = left
        .into_iter()
        .filter(|c| {
            !theirs
                .iter()
                .any(|o| o.scope == c.scope && o.object == c.object)
        })
        .collect();
    judged(
        &left,
        "after the last DEL the network holds nothing it did not hold before",
    )
}

/// What the plugins before a chained plugin leave after two attachments
/// of the list without it come and go: theirs, not the plugin's.
fn preceding_footprint(cx: &Cx) -> Result<Vec<Change>, Unjudged> {
    if cx.kind() != crate::profile::PluginKind::Chained || cx.profile.one_attachment {
        return Ok(Vec::new());
    }
    let w = cx.world_with(super::context::Spec {
        containers: 2,
        ..Default::default()
    })?;
    let mut before_it = w.net.clone();
    before_it.plugins.truncate(w.target());
    let none = w.snapshot()?;
    let mut held = Vec::new();
    for (c, id) in ["c1", "c2"].iter().enumerate() {
        let a = w.add_to(&before_it, &w.attachment(c, id, w.ifname()))?;
        if !a.succeeded() {
            return Err(Unjudged::NotApplicable(format!(
                "the plugins before it failed ADD on their own: {}",
                super::say::failure(&a.last_step().outcome)
            )));
        }
        held.push(a);
    }
    // Both DELs, through the shorter list, as the guards go.
    drop(held);
    Ok(crate::snapshot::diff(&none, &w.snapshot()?))
}

/// The processes the lifecycle's calls left running. The spec says nothing
/// of a plugin's processes: a note, for a vendor whose plugin leaves work
/// behind on every node.
fn processes(cx: &Cx) -> Judged {
    let w = cx.world()?;
    if !crate::sandbox::cgroup::available() {
        return not_applicable(
            "no writable cgroup v2 here to follow a plugin's processes (see `cni-conformance doctor`)",
        );
    }
    let a = w.add(&w.att())?;
    if a.succeeded() && cx.version >= crate::spec::Version::V0_4_0 {
        a.check()?;
    }
    a.del()?;
    let left = cx.survivors();
    if left.is_empty() {
        return pass("no process outlived the call that started it");
    }
    // The same command left many times (a fork bomb) is one item.
    let mut counted: Vec<(String, usize)> = Vec::new();
    for (call, p) in &left {
        let item = format!("{call}: `{p}`");
        match counted.iter_mut().find(|(i, _)| *i == item) {
            Some((_, n)) => *n += 1,
            None => counted.push((item, 1)),
        }
    }
    deviation(format!(
        "left running after the call returned (the harness ended them): {}",
        super::say::list(counted.into_iter().map(|(item, n)| match n {
            1 => item,
            n => format!("{item} ({n} of them)"),
        }))
    ))
}
