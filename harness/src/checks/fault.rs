//! Faults: a plugin killed part-way through ADD or DEL. The steps of a
//! call (every file, folder and netlink operation, every program started:
//! [`crate::runtime::trace`]) are counted in a clean run, then the call is
//! run again and killed at the entry of each step in turn, so every run
//! kills at the same points and no window is left to chance.

use super::judge;
use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, row};
use crate::spec::Verb;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("fault.kill-at-every-step", "L-4", "ADD killed at each of its steps (file, folder and netlink operations, programs started), then DEL; DEL killed at each of its steps, then DEL again: nothing stays, and another container's ADD and DEL still succeed.", kill_at_every_step).once(),
    ]
}

/// Kill points a default run covers at most per verb; `every` covers all.
pub const DEFAULT_POINTS: usize = 12;

/// The points to cover of `n`: all of them up to `budget`, else `budget`
/// spread evenly from the first to the last (the same ones every run).
fn chosen(n: usize, budget: usize) -> Vec<usize> {
    if n <= budget {
        return (1..=n).collect();
    }
    let mut out: Vec<usize> = (0..budget)
        .map(|i| 1 + i * (n - 1) / (budget - 1).max(1))
        .collect();
    out.dedup();
    out
}

fn kill_at_every_step(cx: &Cx) -> Judged {
    // A clean run of each verb, traced: how many steps each makes.
    let w = cx.world()?;
    let att = w.att();
    let (add, add_trace) = w.call(Verb::Add, Some(&att)).traced(None)?;
    if !add.outcome.success() {
        return Err(Unjudged::NotApplicable(format!(
            "ADD fails on its own: {}",
            super::say::failure(&add.outcome)
        )));
    }
    let (del, del_trace) = w
        .call(Verb::Del, Some(&att))
        .prev(add.outcome.json().as_ref())
        .traced(None)?;
    if !del.outcome.success() {
        return Err(Unjudged::Blocked {
            by: "del.succeeds",
            why: "DEL failed".into(),
        });
    }
    drop(w);
    let budget = cx.kill_points().unwrap_or(usize::MAX);
    let points: Vec<(Verb, usize)> = chosen(add_trace.points.len(), budget)
        .into_iter()
        .map(|k| (Verb::Add, k))
        .chain(
            chosen(del_trace.points.len(), budget)
                .into_iter()
                .map(|k| (Verb::Del, k)),
        )
        .collect();
    let total = add_trace.points.len() + del_trace.points.len();
    // Two sandboxes at a time: the run's other jobs keep the cores busy.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Kill, Unjudged>> = cx.overlapping(|| {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((verb, k)) = points.get(i) else {
                                break out;
                            };
                            out.push((i, kill_point(cx, *verb, *k)));
                        }
                    })
                })
                .collect();
            let mut all: Vec<(usize, Result<Kill, Unjudged>)> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, r)| r).collect()
        })
    });
    let mut findings = Vec::new();
    let mut reached = [0, 0];
    for ((verb, _), r) in points.iter().zip(results) {
        let slot = usize::from(*verb == Verb::Del);
        match r? {
            Kill::NotReached => continue,
            Kill::Clean => {}
            Kill::Left(f) => findings.push(f),
        }
        reached[slot] += 1;
    }
    let covered = format!(
        "{} of {total} steps ({} of ADD's {}, {} of DEL's {})",
        reached[0] + reached[1],
        reached[0],
        add_trace.points.len(),
        reached[1],
        del_trace.points.len()
    );
    if findings.is_empty() {
        pass(format!(
            "killed at {covered}, then DEL: nothing stayed and the store still works"
        ))
    } else {
        deviation(format!("killed at {covered}:\n{}", findings.join("\n")))
    }
}

/// What one kill point came to.
enum Kill {
    /// This run made fewer steps than the clean one: nothing to judge.
    NotReached,
    Clean,
    /// What stayed, or what failed afterwards.
    Left(String),
}

/// One kill point in a sandbox of its own.
fn kill_point(cx: &Cx, verb: Verb, k: usize) -> Result<Kill, Unjudged> {
    let w = cx.world()?;
    let att = w.att();
    let before = w.snapshot()?;
    let mut prev = None;
    if verb == Verb::Del {
        let add = w.call(Verb::Add, Some(&att)).run()?;
        if !add.outcome.success() {
            return Ok(Kill::Left(format!(
                "ADD before killing DEL at step {k} failed: {}",
                super::say::failure(&add.outcome)
            )));
        }
        prev = add.outcome.json();
    }
    let (_, traced) = w
        .call(verb, Some(&att))
        .prev(prev.as_ref())
        .traced(Some(k))?;
    let Some(point) = traced.killed_at else {
        return Ok(Kill::NotReached);
    };
    let at = format!("killed at {point} of {verb}");
    // As a runtime does: DEL, and once more if that fails.
    let mut del = w.call(Verb::Del, Some(&att)).prev(prev.as_ref()).run()?;
    if !del.outcome.success() {
        del = w.call(Verb::Del, Some(&att)).prev(prev.as_ref()).run()?;
    }
    if !del.outcome.success() {
        return Ok(Kill::Left(format!(
            "{at}: DEL afterwards fails: {}",
            super::say::failure(&del.outcome)
        )));
    }
    let left = judge::leaks(&cx.profile, &before, &w.snapshot()?);
    if !left.is_empty() {
        cx.evidence(format!("{at}, then DEL, left: {}", judge::lines(&left)));
        let stable: Vec<String> = left.iter().map(stable).collect();
        return Ok(Kill::Left(format!(
            "{at}, then DEL, left: {}",
            stable.join("; ")
        )));
    }
    // The store still works: another container comes and goes.
    let other = w.attachment(0, "after-the-kill", w.ifname());
    let again = w.call(Verb::Add, Some(&other)).run()?;
    if !again.outcome.success() {
        return Ok(Kill::Left(format!(
            "{at}, then DEL: ADD of another container fails: {}",
            super::say::failure(&again.outcome)
        )));
    }
    let gone = w
        .call(Verb::Del, Some(&other))
        .prev(again.outcome.json().as_ref())
        .run()?;
    if !gone.outcome.success() {
        return Ok(Kill::Left(format!(
            "{at}, then DEL: DEL of another container fails: {}",
            super::say::failure(&gone.outcome)
        )));
    }
    Ok(Kill::Clean)
}

/// What stayed, in words that are the same in every run: a link by its
/// kind and mode, not its name or MAC (the kernel picks MACs, plugins often
/// random temporary names); the evidence keeps the full description.
fn stable(c: &crate::snapshot::Change) -> String {
    let is_mac = |p: &str| p.len() == 17 && p.split(':').all(|b| b.len() == 2);
    match &c.object {
        crate::snapshot::Object::Link(_) => {
            let detail: Vec<&str> = c.detail.split(", ").filter(|p| !is_mac(p)).collect();
            format!("a link ({}) {} in {}", detail.join(", "), c.kind, c.scope)
        }
        _ => c.to_string(),
    }
}
