//! GC (1.1.0): stale attachments are released, valid ones kept.

use ipnetwork::IpNetwork;

use super::judge;
use super::outcome::{Judged, deviation, not_applicable, pass};
use super::{Check, Cx, row};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("gc.releases-stale", "GC-003, GC-004", "GC releases what cni.dev/valid-attachments does not name.", releases_stale),
        row("gc.continues-past-errors", "GC-R3", "A stale entry GC cannot remove does not stop it from releasing the others.", continues_past_errors),
        row("gc.keeps-valid", "GC-003", "GC naming every attachment releases nothing.", keeps_valid),
    ]
}

/// Fills a /29 (as many ADDs as the plugin allows, C), then GC naming
/// `keep` of them (indexes into the filled ones): whether GC succeeded,
/// C, the addresses the kept ones hold, and the addresses new containers
/// then get.
fn gc_then_fill(
    cx: &Cx,
    keep: &[usize],
) -> Result<(bool, usize, Vec<IpNetwork>, Vec<IpNetwork>), Judged> {
    // A /29 holds 8 addresses: 9 containers overflow it, 9 more refill it.
    let w = cx.pool_world("10.83.0.0/29", 18).map_err(Err)?;
    let atts: Vec<_> = (0..18)
        .map(|i| w.attachment(i, &format!("p{i}"), w.ifname()))
        .collect();
    let (held, refused) = super::ipam::fill(&w, &atts[..9])?;
    let capacity = held.len();
    drop(refused);
    let kept: Vec<&super::context::Attached> = keep.iter().filter_map(|i| held.get(*i)).collect();
    let valid: Vec<&crate::runtime::Attachment> = kept.iter().map(|a| &a.att).collect();
    let valid_addresses: Vec<IpNetwork> = kept
        .iter()
        .filter_map(|a| a.result().and_then(judge::first_address))
        .collect();
    let gc = w.gc(&valid).map_err(|e| Err(e.into()))?;
    let gc_ok = gc
        .steps
        .get(w.target())
        .is_some_and(|s| s.outcome.success());
    let mut got = Vec::new();
    for att in &atts[9..] {
        let a = w.add(att).map_err(|e| Err(e.into()))?;
        match a.result().and_then(judge::first_address) {
            Some(addr) => got.push(addr),
            None => break,
        }
    }
    // What GC released is gone: the guards must not DEL it again.
    for (i, a) in held.into_iter().enumerate() {
        if !keep.contains(&i) {
            a.release();
        }
    }
    Ok((gc_ok, capacity, valid_addresses, got))
}

fn releases_stale(cx: &Cx) -> Judged {
    let (ok, capacity, _, got) = match gc_then_fill(cx, &[0]) {
        Ok(x) => x,
        Err(judged) => return judged,
    };
    let stale = capacity - 1;
    match (ok, got.len()) {
        (false, _) => deviation("GC failed"),
        (true, g) if g >= stale => pass(format!(
            "the pool held {capacity}; GC keeping one released the {stale} stale ones"
        )),
        (true, g) => deviation(format!(
            "the pool held {capacity}; after GC kept one, only {g} of the {stale} stale addresses came back"
        )),
    }
}

fn keeps_valid(cx: &Cx) -> Judged {
    let (ok, capacity, valid, got) = match gc_then_fill(cx, &(0..9).collect::<Vec<_>>()) {
        Ok(x) => x,
        Err(judged) => return judged,
    };
    let reused: Vec<&IpNetwork> = got
        .iter()
        .filter(|a| valid.iter().any(|v| v.ip() == a.ip()))
        .collect();
    match (ok, reused.is_empty()) {
        (false, _) => deviation("GC failed"),
        (true, true) => pass(format!(
            "the pool held {capacity}; after GC named every attachment none of their addresses was handed out again"
        )),
        (true, false) => deviation(format!(
            "after GC named every attachment, ADD handed out their {} again",
            super::say::list(reused)
        )),
    }
}

fn continues_past_errors(cx: &Cx) -> Judged {
    let w = cx.pool_world("10.83.0.0/29", 3)?;
    // Three stale attachments; what each ADD keeps in the state folders.
    let mut kept = Vec::new();
    for c in 0..3 {
        let before = w.snapshot()?;
        let a = w.add(&w.attachment(c, &format!("p{c}"), w.ifname()))?;
        a.require(super::add::SUCCEEDS)?;
        kept.push(w.new_state_files(&before, &w.snapshot()?));
        a.release();
    }
    if kept.iter().any(Vec::is_empty) {
        return not_applicable("the plugin keeps no state file of its own for an attachment");
    }
    // The first one's files become folders with something in them: no GC
    // can simply remove them.
    for (folder, path) in &kept[0] {
        let file = w
            .state_file(folder, path)
            .ok_or_else(|| super::CaseError::Unexpected(format!("no state folder {folder}")))?;
        let io = |what: &str| {
            let what = format!("{what} {}", file.display());
            move |source| super::CaseError::Io { what, source }
        };
        std::fs::remove_file(&file).map_err(io("remove"))?;
        std::fs::create_dir(&file).map_err(io("make the folder"))?;
        std::fs::write(file.join("held"), "x").map_err(io("write into"))?;
    }
    w.gc(&[])?;
    let after = w.snapshot()?;
    let still: Vec<String> = kept[1..]
        .iter()
        .flatten()
        .filter(|(folder, path)| {
            let label = crate::snapshot::Scope::state_label(std::path::Path::new(folder));
            after
                .files
                .get(&label)
                .is_some_and(|f| f.entries.contains_key(path))
        })
        .map(|(folder, path)| format!("{folder}/{path}"))
        .collect();
    if still.is_empty() {
        pass("GC released the other stale attachments past the one it could not")
    } else {
        deviation(format!(
            "one stale entry GC could not remove stopped it: {} stayed",
            still.join(", ")
        ))
    }
}
