//! Concurrency: many containers at once, each its own attachment.

use std::collections::HashSet;

use ipnetwork::IpNetwork;
use serde_json::Value;

use super::context::World;
use super::judge;
use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, row};
use crate::runtime::{Attachment, Step};
use crate::spec::{ErrorCode, Verb};

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("concurrency.parallel-add", "L-2, CON-001 to CON-003", "100 parallel ADDs in separate containers all succeed with distinct addresses (code 11 answers are retried); 100 parallel DELs release everything.", parallel_add).once(),
        row("concurrency.small-range", "L-2", "With fewer addresses than parallel ADDs, the excess fails and no address is handed out twice (code 11 answers are retried).", small_range).once(),
    ]
}

/// `n` containers' attachments.
fn containers(w: &World, n: usize) -> Vec<Attachment> {
    (0..n)
        .map(|i| w.attachment(i, &format!("p{i}"), w.ifname()))
        .collect()
}

/// How often an ADD answered with code 11 is tried again.
const RETRIES: usize = 3;

/// `n` parallel ADDs of the plugin under test in separate containers
/// drawing from `subnet`: each attachment with its own step.
struct Race<'c> {
    w: World<'c>,
    added: Vec<(Attachment, Step)>,
}

fn race<'c>(cx: &'c Cx, subnet: &str, n: usize) -> Result<Race<'c>, Unjudged> {
    let w = cx.pool_world(subnet, n)?;
    let atts = containers(&w, n);
    let steps = w.parallel(&atts, |att| {
        // Code 11 is the text's "try again later": a runtime would, so
        // the harness does (a bounded number of times).
        let mut step = w.call(Verb::Add, Some(att)).run()?;
        for _ in 0..RETRIES {
            if !ErrorCode::TryAgainLater.is(step.outcome.error_code()) {
                break;
            }
            step = w.call(Verb::Add, Some(att)).run()?;
        }
        Ok(step)
    })?;
    Ok(Race {
        added: atts.into_iter().zip(steps).collect(),
        w,
    })
}

impl Race<'_> {
    fn result(step: &Step) -> Option<Value> {
        step.outcome.json().filter(|_| step.outcome.success())
    }

    fn addresses(&self) -> Vec<IpNetwork> {
        self.added
            .iter()
            .filter_map(|(_, s)| Self::result(s))
            .filter_map(|r| judge::first_address(&r))
            .collect()
    }

    fn distinct(&self) -> usize {
        self.addresses().iter().collect::<HashSet<_>>().len()
    }

    /// DEL of every container at once, each with its own ADD's result.
    fn del_all(&self) -> Result<Vec<Step>, Unjudged> {
        let with_check = self.w.cx().version.has_check();
        Ok(self.w.parallel(&self.added, |(att, add)| {
            let prev = Self::result(add).filter(|_| with_check);
            self.w.call(Verb::Del, Some(att)).prev(prev.as_ref()).run()
        })?)
    }
}

fn parallel_add(cx: &Cx) -> Judged {
    const N: usize = 100;
    let r = race(cx, "10.86.0.0/24", N)?;
    let ok = r.added.iter().filter(|(_, s)| s.outcome.success()).count();
    let del_ok = r.del_all()?.iter().filter(|s| s.outcome.success()).count();
    // The pool is whole again: one more container gets an address.
    let first = &r.added[0].0;
    let again = r.w.call(Verb::Add, Some(first)).run()?;
    r.w.call(Verb::Del, Some(first))
        .prev(Race::result(&again).as_ref())
        .run()?;
    let addresses = r.addresses();
    if ok != N {
        let example = r
            .added
            .iter()
            .find(|(_, s)| !s.outcome.success())
            .map(|(_, s)| s.outcome.stdout_text());
        deviation(format!(
            "{ok} of {N} parallel ADDs succeeded; e.g. {}",
            super::say::or(example, "no output")
        ))
    } else if r.distinct() != addresses.len() {
        deviation(format!(
            "{} addresses handed out for {} ADDs",
            r.distinct(),
            addresses.len()
        ))
    } else if del_ok != N {
        deviation(format!("{del_ok} of {N} parallel DELs succeeded"))
    } else if !again.outcome.success() {
        deviation("after the DELs the pool did not hand out an address again")
    } else {
        pass(format!(
            "{N} ADDs, {N} distinct addresses, {N} DELs, pool usable again"
        ))
    }
}

fn small_range(cx: &Cx) -> Judged {
    const N: usize = 20;
    let r = race(cx, "10.85.0.0/28", N)?;
    let unclean = r
        .added
        .iter()
        .filter(|(_, s)| !s.outcome.success() && s.outcome.error().is_none())
        .count();
    r.del_all()?;
    let addresses = r.addresses();
    if r.distinct() != addresses.len() {
        deviation(format!(
            "{} distinct addresses for {} successful ADDs",
            r.distinct(),
            addresses.len()
        ))
    } else if addresses.len() == N {
        deviation(format!("a /28 handed out {N} addresses"))
    } else {
        // Error objects are error.object's to judge; they are counted here.
        pass(format!(
            "{} ADDs succeeded with distinct addresses, {} failed ({unclean} without an error object)",
            addresses.len(),
            N - addresses.len()
        ))
    }
}
