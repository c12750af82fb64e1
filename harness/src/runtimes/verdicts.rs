//! The `runtime.*` checks: pure functions over what the scenarios recorded.
//! A rule the runtime never exercised (no CHECK, no GC, no failed ADD
//! recorded) is `NotExercised`, never a pass.

use std::collections::BTreeMap;

use serde_json::Value;

use super::scenario::{POSITIONS, Played, unknown_field};
use crate::spec::Version;
use crate::spy::Call;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass(String),
    Deviation(String),
    NotExercised(String),
}

#[derive(Debug, Clone)]
pub struct Judged {
    pub verdict: Verdict,
    /// The version the runtime spoke where the rule was exercised (the
    /// rule in force there judges it); `None`: the run's version.
    pub version: Option<Version>,
    /// The recorded calls that show it.
    pub evidence: Vec<String>,
}

/// Everything the scenarios left.
pub struct Evidence<'a> {
    pub played: &'a [Played],
    /// The inode of the network namespace the runtime runs in.
    pub runtime_netns: u64,
}

pub struct RuntimeCheck {
    pub id: &'static str,
    /// The rule of `runtime-obligations` it tests (R1 ... R34).
    pub obligation: &'static str,
    pub summary: &'static str,
    pub judge: fn(&Evidence) -> Judged,
}

fn pass(msg: impl Into<String>) -> Judged {
    Judged {
        verdict: Verdict::Pass(msg.into()),
        version: None,
        evidence: Vec::new(),
    }
}

fn unexercised(msg: impl Into<String>) -> Judged {
    Judged {
        verdict: Verdict::NotExercised(msg.into()),
        version: None,
        evidence: Vec::new(),
    }
}

fn deviation(msg: impl Into<String>, evidence: Vec<String>) -> Judged {
    Judged {
        verdict: Verdict::Deviation(msg.into()),
        version: None,
        evidence,
    }
}

impl Judged {
    fn at(mut self, v: Option<Version>) -> Judged {
        self.version = v;
        self
    }
}

/// One recorded call on a line, times relative to the scenario's first.
pub fn show(p: &Played, c: &Call) -> String {
    let t0 = p.calls.iter().map(|c| c.start_ns).min().unwrap_or(0);
    let ms = |ns: u64| ns.saturating_sub(t0) as f64 / 1e6;
    let prev = c
        .prev_result()
        .map(|r| format!(", prevResult from {}", nonce(r).unwrap_or("?")))
        .unwrap_or_default();
    format!(
        "[{}] {} {} #{} container {} ifname {} ({:.0}-{:.0} ms, exit {}{prev})",
        p.scenario,
        c.name,
        c.command,
        c.call,
        short(c.container_id()),
        c.ifname(),
        ms(c.start_ns),
        ms(c.end_ns),
        c.exit
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Whose result a document is: the spies stamp `dns.domain` with
/// `<spy>.<call>.<pid>.nonce`.
pub fn nonce(result: &Value) -> Option<&str> {
    result.get("dns")?.get("domain")?.as_str()
}

fn position(c: &Call) -> usize {
    POSITIONS
        .iter()
        .position(|p| *p == c.name)
        .unwrap_or(usize::MAX)
}

fn version_of(c: &Call) -> Option<Version> {
    c.stdin.get("cniVersion")?.as_str()?.parse().ok()
}

impl Evidence<'_> {
    fn scenario(&self, name: &str) -> Option<&Played> {
        self.played.iter().find(|p| p.scenario == name)
    }

    /// Every call the runtime made, with its scenario.
    fn all(&self) -> Vec<(&Played, &Call)> {
        self.played
            .iter()
            .flat_map(|p| p.runtime_calls().into_iter().map(move |c| (p, c)))
            .collect()
    }

    /// The version the runtime chose for the plain lifecycle.
    pub fn version(&self) -> Option<Version> {
        self.scenario("lifecycle")?
            .runtime_calls()
            .first()
            .and_then(|c| version_of(c))
    }
}

/// Runtime calls per container, in start order.
fn by_container(p: &Played) -> BTreeMap<String, Vec<&Call>> {
    let mut map: BTreeMap<String, Vec<&Call>> = BTreeMap::new();
    for c in p.runtime_calls() {
        if !c.container_id().is_empty() {
            map.entry(c.container_id().to_string()).or_default().push(c);
        }
    }
    map
}

/// Collects the calls that break `bad` over every scenario.
fn every_call(e: &Evidence, what: &str, bad: impl Fn(&Played, &Call) -> bool) -> Judged {
    // VERSION's stdin is `{"cniVersion"}` alone: no list, no fields to judge.
    let all: Vec<(&Played, &Call)> = e
        .all()
        .into_iter()
        .filter(|(_, c)| c.command != "VERSION")
        .collect();
    if all.is_empty() {
        return unexercised("the runtime made no call to the spies");
    }
    let bad: Vec<&(&Played, &Call)> = all.iter().filter(|(p, c)| bad(p, c)).collect();
    match bad.first() {
        None => pass(format!("{} calls: {what}", all.len())),
        // Judged by the rule of the version the runtime spoke in that call.
        Some((_, first)) => deviation(
            format!("{} of {} calls: not {what}", bad.len(), all.len()),
            bad.iter().map(|(p, c)| show(p, c)).collect(),
        )
        .at(version_of(first)),
    }
}

fn required_env(e: &Evidence) -> Judged {
    every_call(e, "every variable its verb requires", |_, c| {
        let has = |k: &str| c.var(k).is_some_and(|v| !v.is_empty());
        let need: &[&str] = match c.command.as_str() {
            "ADD" | "CHECK" => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "DEL" => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            "GC" | "STATUS" => &["CNI_PATH"],
            _ => &[],
        };
        c.var("CNI_COMMAND") != Some(c.command.as_str()) || !need.iter().all(|k| has(k))
    })
}

fn cni_path(e: &Evidence) -> Judged {
    every_call(e, "given CNI_PATH", |_, c| {
        c.var("CNI_PATH").is_none_or(str::is_empty)
    })
}

fn in_runtime_netns(e: &Evidence) -> Judged {
    let rt = e.runtime_netns;
    every_call(e, "run in the runtime's network namespace", |_, c| {
        c.netns_inode != rt || c.cni_netns.as_ref().is_some_and(|n| n.ino == c.netns_inode)
    })
}

fn container_id_grammar(e: &Evidence) -> Judged {
    let ok = |id: &str| {
        let mut chars = id.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    every_call(
        e,
        "given a container ID of letters, digits, _ . -",
        |_, c| matches!(c.command.as_str(), "ADD" | "CHECK" | "DEL") && !ok(c.container_id()),
    )
}

fn netns_created(e: &Evidence) -> Judged {
    let rt = e.runtime_netns;
    let adds: Vec<(&Played, &Call)> = e
        .all()
        .into_iter()
        .filter(|(_, c)| c.command == "ADD")
        .collect();
    if adds.is_empty() {
        return unexercised("no ADD was recorded");
    }
    let mut found: Vec<String> = adds
        .iter()
        .filter(|(_, c)| match &c.cni_netns {
            Some(n) => !n.nsfs || n.ino == rt,
            None => true,
        })
        .map(|(p, c)| {
            format!(
                "{}: CNI_NETNS {:?} is not a new namespace",
                show(p, c),
                c.var("CNI_NETNS")
            )
        })
        .collect();
    // Two containers up at once must not share one namespace.
    if let Some(p) = e.scenario("concurrent") {
        let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
        for c in p.runtime_calls().into_iter().filter(|c| c.command == "ADD") {
            if let Some(n) = &c.cni_netns
                && let Some(other) = seen.insert(n.ino, c.container_id())
                && other != c.container_id()
            {
                found.push(format!(
                    "{}: same namespace as container {}",
                    show(p, c),
                    short(other)
                ));
            }
        }
    }
    if found.is_empty() {
        pass(format!(
            "{} ADDs, each with a namespace file of its own container",
            adds.len()
        ))
    } else {
        deviation(
            "CNI_NETNS was not a namespace the runtime created for the container",
            found,
        )
    }
}

/// Consecutive calls of `verb` on one container must step through the list
/// in `forward` (or reverse) order; a new pass starts at the first (last)
/// plugin.
fn order(e: &Evidence, verb: &str, forward: bool) -> Judged {
    let mut passes = 0;
    let mut found = Vec::new();
    for p in e.played {
        for calls in by_container(p).values() {
            let calls: Vec<&&Call> = calls.iter().filter(|c| c.command == verb).collect();
            let first = if forward { 0 } else { POSITIONS.len() - 1 };
            for (i, c) in calls.iter().enumerate() {
                let pos = position(c);
                let starts = pos == first;
                passes += usize::from(starts);
                let follows = i > 0 && {
                    let prev = position(calls[i - 1]);
                    if forward {
                        pos == prev + 1
                    } else {
                        pos + 1 == prev
                    }
                };
                let sequential = i == 0 || calls[i - 1].end_ns <= c.start_ns;
                if !(starts || follows) || (follows && !sequential) {
                    found.push(show(p, c));
                }
            }
        }
    }
    if passes == 0 {
        return unexercised(format!("no {verb} was recorded"));
    }
    if found.is_empty() {
        pass(format!(
            "{passes} {verb} passes, each in {}list order",
            if forward { "" } else { "reverse " }
        ))
    } else {
        deviation(
            format!(
                "{verb} out of {}list order",
                if forward { "" } else { "reverse " }
            ),
            found,
        )
    }
}

fn add_in_order(e: &Evidence) -> Judged {
    order(e, "ADD", true)
}

fn del_reverse_order(e: &Evidence) -> Judged {
    order(e, "DEL", false)
}

/// The failed ADD of the `failing-add` scenario (plugin B fails it).
fn failed_add<'a>(e: &'a Evidence<'a>) -> Option<(&'a Played, &'a Call)> {
    let p = e.scenario("failing-add")?;
    p.runtime_calls()
        .into_iter()
        .find(|c| c.command == "ADD" && c.exit != 0)
        .map(|c| (p, c))
}

fn add_halts_on_error(e: &Evidence) -> Judged {
    let Some((p, failed)) = failed_add(e) else {
        return unexercised("no ADD failed (the runtime never called plugin B)");
    };
    let later: Vec<String> = p
        .runtime_calls()
        .into_iter()
        .filter(|c| {
            c.command == "ADD" && c.start_ns > failed.start_ns && position(c) > position(failed)
        })
        .filter(|c| c.container_id() == failed.container_id())
        .map(|c| show(p, c))
        .collect();
    let reported = p.did("run").map(|d| !d.ok);
    match (later.is_empty(), reported) {
        (true, Some(true)) => {
            pass("B failed ADD: C was not called and the runtime reported the failure")
        }
        (true, _) => deviation(
            "B failed ADD and the runtime reported success",
            vec![show(p, failed)],
        ),
        (false, _) => deviation("plugins after the failed one were still called", later),
    }
}

fn del_after_failed_add(e: &Evidence) -> Judged {
    let Some((p, failed)) = failed_add(e) else {
        return unexercised("no ADD failed (the runtime never called plugin B)");
    };
    let dels: Vec<&Call> = p
        .runtime_calls()
        .into_iter()
        .filter(|c| {
            c.command == "DEL"
                && c.container_id() == failed.container_id()
                && c.start_ns > failed.start_ns
        })
        .collect();
    if dels.is_empty() {
        deviation(
            "no DEL followed the failed ADD, not even when the container was removed",
            p.runtime_calls().into_iter().map(|c| show(p, c)).collect(),
        )
    } else {
        pass(format!("{} DEL calls followed the failed ADD", dels.len()))
    }
}

fn every_add_deleted(e: &Evidence) -> Judged {
    let mut adds = 0;
    let mut found = Vec::new();
    for p in e.played {
        for (id, calls) in by_container(p) {
            let last_add = calls.iter().rposition(|c| c.command == "ADD");
            let Some(i) = last_add else { continue };
            adds += 1;
            if !calls[i..].iter().any(|c| c.command == "DEL") {
                found.push(format!(
                    "[{}] container {}: ADD never followed by DEL",
                    p.scenario,
                    short(&id)
                ));
            }
        }
    }
    if adds == 0 {
        unexercised("no ADD was recorded")
    } else if found.is_empty() {
        pass(format!(
            "{adds} containers added, each deleted after its last ADD"
        ))
    } else {
        deviation("containers were removed without a DEL", found)
    }
}

fn first_add_without_prev(e: &Evidence) -> Judged {
    every_call(e, "the first plugin's ADD without prevResult", |_, c| {
        c.command == "ADD" && position(c) == 0 && c.prev_result().is_some()
    })
}

/// The nonce each ADD answered with, by (container, position).
fn last_answer_before<'a>(calls: &[&'a Call], pos: usize, before: u64) -> Option<&'a Call> {
    calls
        .iter()
        .filter(|c| c.command == "ADD" && position(c) == pos && c.end_ns <= before && c.exit == 0)
        .max_by_key(|c| c.end_ns)
        .copied()
}

fn prev_result_is_previous(e: &Evidence) -> Judged {
    let mut judged = 0;
    let mut found = Vec::new();
    for p in e.played {
        for calls in by_container(p).values() {
            for c in calls
                .iter()
                .filter(|c| c.command == "ADD" && position(c) > 0)
            {
                judged += 1;
                let want = last_answer_before(calls, position(c) - 1, c.start_ns)
                    .and_then(|a| a.answer.as_ref())
                    .and_then(nonce);
                let got = c.prev_result().and_then(nonce);
                if want.is_none() || want != got {
                    found.push(format!(
                        "{}: expected the result of {}",
                        show(p, c),
                        want.unwrap_or("(none)")
                    ));
                }
            }
        }
    }
    if judged == 0 {
        unexercised("no ADD reached a second plugin")
    } else if found.is_empty() {
        pass(format!("{judged} ADDs got the previous plugin's result"))
    } else {
        deviation(
            "an ADD's prevResult was not the previous plugin's result",
            found,
        )
    }
}

/// CHECK or DEL calls after a successful ADD pass: their prevResult must be
/// the final plugin's result.
fn final_result(e: &Evidence, verb: &str, only: Option<&str>) -> Judged {
    let mut judged = 0;
    let mut found = Vec::new();
    let last = POSITIONS.len() - 1;
    for p in e
        .played
        .iter()
        .filter(|p| only.is_none_or(|s| s == p.scenario))
    {
        for calls in by_container(p).values() {
            for c in calls.iter().filter(|c| c.command == verb) {
                let Some(fin) = last_answer_before(calls, last, c.start_ns) else {
                    continue;
                };
                // The pass this final result belongs to failed nowhere.
                judged += 1;
                let want = fin.answer.as_ref().and_then(nonce);
                let got = c.prev_result().and_then(nonce);
                if want != got {
                    found.push(format!(
                        "{}: expected the final result {}",
                        show(p, c),
                        want.unwrap_or("?")
                    ));
                }
            }
        }
    }
    if judged == 0 {
        unexercised(format!("no {verb} followed a successful ADD"))
    } else if found.is_empty() {
        pass(format!(
            "{judged} {verb} calls got the final ADD result as prevResult"
        ))
    } else {
        deviation(
            format!("{verb} got another prevResult than the final ADD result"),
            found,
        )
    }
}

fn del_prev_result_final(e: &Evidence) -> Judged {
    final_result(e, "DEL", None)
}

fn check_prev_result_final(e: &Evidence) -> Judged {
    final_result(e, "CHECK", None)
}

fn result_cached(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("restart") else {
        return unexercised("no restart scenario");
    };
    let restarted = p.did("restart").is_some();
    let separate = p.runtime_calls().iter().any(|c| c.command == "DEL")
        && p.runtime_calls()
            .iter()
            .filter(|c| c.command == "ADD")
            .all(|a| {
                p.runtime_calls()
                    .iter()
                    .filter(|c| c.command == "DEL")
                    .all(|d| d.ppid != a.ppid)
            });
    if !restarted && !separate {
        return unexercised("the runtime was not restarted and added and deleted in one process");
    }
    let j = final_result(e, "DEL", Some("restart"));
    match j.verdict {
        Verdict::Pass(m) => pass(format!(
            "{m}, {}",
            if restarted {
                "after a restart"
            } else {
                "from another runtime process"
            }
        )),
        _ => j,
    }
}

fn check_same_parameters(e: &Evidence) -> Judged {
    let mut judged = 0;
    let mut found = Vec::new();
    for p in e.played {
        for calls in by_container(p).values() {
            for c in calls.iter().filter(|c| c.command == "CHECK") {
                let Some(add) = calls
                    .iter()
                    .filter(|a| {
                        a.command == "ADD" && position(a) == position(c) && a.end_ns <= c.start_ns
                    })
                    .max_by_key(|a| a.end_ns)
                else {
                    continue;
                };
                judged += 1;
                for k in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"] {
                    if add.var(k) != c.var(k) {
                        found.push(format!(
                            "{}: {k} {:?}, ADD had {:?}",
                            show(p, c),
                            c.var(k),
                            add.var(k)
                        ));
                    }
                }
            }
        }
    }
    if judged == 0 {
        unexercised("the runtime never called CHECK")
    } else if found.is_empty() {
        pass(format!("{judged} CHECK calls with their ADD's parameters"))
    } else {
        deviation("CHECK's parameters differ from the ADD's", found)
    }
}

fn check_only_live(e: &Evidence) -> Judged {
    let mut judged = 0;
    let mut found = Vec::new();
    for p in e.played {
        for c in p
            .runtime_calls()
            .into_iter()
            .filter(|c| c.command == "CHECK")
        {
            judged += 1;
            let before: Vec<&Call> = p
                .runtime_calls()
                .into_iter()
                .filter(|o| {
                    o.container_id() == c.container_id()
                        && o.ifname() == c.ifname()
                        && o.end_ns <= c.start_ns
                })
                .filter(|o| o.command == "ADD" || o.command == "DEL")
                .collect();
            let live = before
                .last()
                .is_some_and(|o| o.command == "ADD" && o.exit == 0);
            if !live {
                found.push(show(p, c));
            }
        }
    }
    if judged == 0 {
        unexercised("the runtime never called CHECK")
    } else if found.is_empty() {
        pass(format!("{judged} CHECK calls, each on a live attachment"))
    } else {
        deviation(
            "CHECK on an attachment that was not added or already deleted",
            found,
        )
    }
}

fn disable_check(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("disable-check") else {
        return unexercised("no disable-check scenario");
    };
    let checks: Vec<String> = p
        .runtime_calls()
        .into_iter()
        .filter(|c| c.command == "CHECK")
        .map(|c| show(p, c))
        .collect();
    if !checks.is_empty() {
        return deviation(
            "CHECK was called although the list has disableCheck true",
            checks,
        );
    }
    let calls_check = e
        .scenario("lifecycle")
        .is_some_and(|l| l.runtime_calls().iter().any(|c| c.command == "CHECK"));
    if calls_check {
        pass("CHECK in the lifecycle, none with disableCheck true")
    } else {
        unexercised("the runtime never calls CHECK, so disableCheck changes nothing")
    }
}

fn unknown_fields(e: &Evidence) -> Judged {
    every_call(e, "given each unknown field unchanged", |p, c| {
        let want = match (&p.rewritten, c.command.as_str()) {
            // After a rewrite, either text is the runtime's to send.
            (Some(_), "DEL") => return false,
            _ => unknown_field(&c.name),
        };
        c.stdin.get("x-conformance") != Some(&want)
    })
}

fn highest_version(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("versions") else {
        return unexercised("no versions scenario");
    };
    let Some(first) = p.runtime_calls().into_iter().find(|c| c.command == "ADD") else {
        return unexercised("the runtime made no ADD with the list");
    };
    let offered: Vec<Version> = std::iter::once(&p.list["cniVersion"])
        .chain(p.list["cniVersions"].as_array().into_iter().flatten())
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    let declared: Option<Version> = p.list["cniVersion"].as_str().and_then(|v| v.parse().ok());
    let chosen = version_of(first);
    let highest = offered.iter().max().copied();
    let j = match chosen {
        Some(v) if Some(v) == highest => pass(format!("chose {v}, the highest offered")),
        Some(v) if offered.contains(&v) && Some(v) >= declared => pass(format!(
            "chose {v} (cniVersion); cniVersions also offered {}: a runtime speaking it would choose it",
            highest.map(|h| h.as_str()).unwrap_or("?")
        )),
        _ => deviation(
            format!(
                "chose {:?} from cniVersion {:?} and cniVersions {:?}",
                first.stdin.get("cniVersion"),
                p.list["cniVersion"],
                p.list["cniVersions"]
            ),
            vec![show(p, first)],
        ),
    };
    j.at(Some(Version::V1_1_0))
}

fn name_and_version(e: &Evidence) -> Judged {
    every_call(e, "given the list's name and one cniVersion", |p, c| {
        let same_version = p
            .runtime_calls()
            .first()
            .map(|f| f.stdin.get("cniVersion") == c.stdin.get("cniVersion"))
            .unwrap_or(true);
        c.stdin.get("name") != p.list.get("name")
            || c.stdin.get("cniVersion").is_none()
            || !same_version
    })
}

fn capabilities_removed(e: &Evidence) -> Judged {
    every_call(e, "without the `capabilities` key", |_, c| {
        c.stdin.get("capabilities").is_some()
    })
}

fn runtime_config(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("lifecycle") else {
        return unexercised("no lifecycle scenario");
    };
    let calls = p.runtime_calls();
    let asked = calls
        .iter()
        .filter(|c| c.command == "ADD" && position(c) == 0)
        .any(|c| c.stdin.pointer("/runtimeConfig/portMappings").is_some());
    let wrong: Vec<String> = calls
        .iter()
        .filter(|c| {
            let rc = c.stdin.get("runtimeConfig");
            let has = |k: &str| rc.and_then(|r| r.get(k)).is_some();
            has("bandwidth") || (position(c) != 0 && has("portMappings"))
        })
        .map(|c| show(p, c))
        .collect();
    if !wrong.is_empty() {
        return deviation(
            "runtimeConfig carried a capability the plugin did not declare or nobody asked for",
            wrong,
        );
    }
    if asked {
        pass("portMappings reached the plugin that declared it, and no other")
    } else {
        unexercised("the driver asked for no port mapping, or the runtime passed none")
    }
}

fn no_parallel_operations(e: &Evidence) -> Judged {
    let mut found = Vec::new();
    let mut n = 0;
    for p in e.played {
        for calls in by_container(p).values() {
            n += calls.len();
            for (i, a) in calls.iter().enumerate() {
                for b in &calls[i + 1..] {
                    if a.overlaps(b) {
                        found.push(format!("{} overlaps {}", show(p, a), show(p, b)));
                    }
                }
            }
        }
    }
    if n == 0 {
        unexercised("no call on a container was recorded")
    } else if found.is_empty() {
        pass(format!(
            "{n} calls, none at the same time as another on its container"
        ))
    } else {
        deviation("operations on one container ran at once", found)
    }
}

fn gc_calls<'a>(e: &'a Evidence<'a>) -> Vec<(&'a Played, &'a Call)> {
    e.all()
        .into_iter()
        .filter(|(_, c)| c.command == "GC")
        .collect()
}

fn gc_version(e: &Evidence) -> Option<Version> {
    gc_calls(e).first().and_then(|(_, c)| version_of(c))
}

fn gc_exclusive(e: &Evidence) -> Judged {
    let gcs = gc_calls(e);
    if gcs.is_empty() {
        return unexercised("the runtime never called GC");
    }
    let mut found = Vec::new();
    for (p, g) in &gcs {
        for c in p.runtime_calls() {
            if matches!(c.command.as_str(), "ADD" | "DEL") && g.overlaps(c) {
                found.push(format!("{} overlaps {}", show(p, g), show(p, c)));
            }
        }
    }
    let j = if found.is_empty() {
        pass(format!("{} GC calls, none during an ADD or DEL", gcs.len()))
    } else {
        deviation("GC ran while an ADD or DEL was under way", found)
    };
    j.at(gc_version(e))
}

fn gc_without_attachment(e: &Evidence) -> Judged {
    let gcs = gc_calls(e);
    if gcs.is_empty() {
        return unexercised("the runtime never called GC");
    }
    let mut found: Vec<String> = gcs
        .iter()
        .filter(|(_, c)| {
            ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
                .iter()
                .any(|k| c.var(k).is_some_and(|v| !v.is_empty()))
        })
        .map(|(p, c)| format!("{}: carries attachment variables", show(p, c)))
        .collect();
    for p in e.played {
        let got: Vec<&str> = p
            .runtime_calls()
            .iter()
            .filter(|c| c.command == "GC")
            .map(|c| c.name.as_str())
            .collect();
        if !got.is_empty() && POSITIONS.iter().any(|pos| !got.contains(pos)) {
            found.push(format!("[{}] GC reached only {got:?}", p.scenario));
        }
    }
    let j = if found.is_empty() {
        pass("GC reached every plugin, with no attachment variables")
    } else {
        deviation("GC carried attachment parameters or skipped plugins", found)
    };
    j.at(gc_version(e))
}

fn gc_valid_attachments(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("gc") else {
        return unexercised("no gc scenario");
    };
    let gcs: Vec<&Call> = p
        .runtime_calls()
        .into_iter()
        .filter(|c| c.command == "GC")
        .collect();
    if gcs.is_empty() {
        return unexercised("the runtime never called GC");
    }
    // Alive at GC time: added, not deleted since.
    let mut found = Vec::new();
    for g in &gcs {
        let mut live: Vec<(String, String)> = Vec::new();
        for c in p
            .runtime_calls()
            .into_iter()
            .filter(|c| c.end_ns <= g.start_ns && position(c) == 0)
        {
            let key = (c.container_id().to_string(), c.ifname().to_string());
            match c.command.as_str() {
                "ADD" if c.exit == 0 => live.push(key),
                "DEL" => live.retain(|k| *k != key),
                _ => {}
            }
        }
        live.sort();
        live.dedup();
        let listed = g
            .stdin
            .get("cni.dev/valid-attachments")
            .or_else(|| g.stdin.get("cni.dev/attachments"));
        let mut got: Vec<(String, String)> = listed
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["containerID"].as_str().unwrap_or_default().to_string(),
                    a["ifname"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        got.sort();
        if listed.is_none() || got != live {
            found.push(format!("{}: listed {got:?}, alive {live:?}", show(p, g)));
        }
    }
    let j = if found.is_empty() {
        pass("GC listed exactly the attachments alive")
    } else {
        deviation(
            "GC's list of valid attachments is not the attachments alive",
            found,
        )
    };
    j.at(gc_version(e))
}

fn disable_gc(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("disable-gc") else {
        return unexercised("no disable-gc scenario");
    };
    let gcs: Vec<String> = p
        .runtime_calls()
        .into_iter()
        .filter(|c| c.command == "GC")
        .map(|c| show(p, c))
        .collect();
    if !gcs.is_empty() {
        return deviation("GC was called although the list has disableGC true", gcs)
            .at(Some(Version::V1_1_0));
    }
    if gc_calls(e).is_empty() {
        unexercised("the runtime never calls GC, so disableGC changes nothing")
    } else {
        pass("GC in the gc scenario, none with disableGC true").at(Some(Version::V1_1_0))
    }
}

fn no_add_twice(e: &Evidence) -> Judged {
    let mut found = Vec::new();
    let mut n = 0;
    for p in e.played {
        for calls in by_container(p).values() {
            // Per plugin position: ADD, ADD with no DEL between.
            for pos in 0..POSITIONS.len() {
                let mine: Vec<&&Call> = calls
                    .iter()
                    .filter(|c| position(c) == pos && (c.command == "ADD" || c.command == "DEL"))
                    .collect();
                for w in mine.windows(2) {
                    n += 1;
                    if w[0].command == "ADD"
                        && w[1].command == "ADD"
                        && w[0].ifname() == w[1].ifname()
                    {
                        found.push(format!("{} then {}", show(p, w[0]), show(p, w[1])));
                    }
                }
            }
        }
    }
    if n == 0 {
        unexercised("no ADD was followed by another call on its container")
    } else if found.is_empty() {
        pass("no ADD repeated without a DEL between")
    } else {
        deviation("ADD called twice for one attachment without DEL", found)
    }
}

fn config_unchanged_for_del(e: &Evidence) -> Judged {
    let Some(p) = e.scenario("config-change") else {
        return unexercised("no config-change scenario");
    };
    let since = p.rewritten_ns.unwrap_or(u64::MAX);
    let dels: Vec<&Call> = p
        .runtime_calls()
        .into_iter()
        .filter(|c| c.command == "DEL" && position(c) == 0 && c.start_ns >= since)
        .collect();
    if dels.is_empty() {
        return unexercised("no DEL after the list was rewritten (the runtime deleted before)");
    }
    let want = unknown_field("A");
    let changed: Vec<String> = dels
        .iter()
        .filter(|c| c.stdin.get("x-conformance") != Some(&want))
        .map(|c| format!("{}: got the rewritten config", show(p, c)))
        .collect();
    if changed.is_empty() {
        pass("DEL got the config the ADD had, not the rewritten file")
    } else {
        deviation("DEL got the config as rewritten after ADD", changed)
    }
}

fn ipam_by_plugin(e: &Evidence) -> Judged {
    let mut n = 0;
    let mut found = Vec::new();
    for p in e.played {
        let runtime_parents: Vec<&str> = p
            .runtime_calls()
            .iter()
            .map(|c| c.parent_exe.as_str())
            .collect();
        for c in p.calls.iter().filter(|c| c.name == "ipam") {
            n += 1;
            if runtime_parents.contains(&c.parent_exe.as_str()) {
                found.push(format!(
                    "[{}] ipam {} started by {}, the runtime",
                    p.scenario, c.command, c.parent_exe
                ));
            }
        }
    }
    if n == 0 {
        unexercised("no IPAM call was recorded")
    } else if found.is_empty() {
        pass(format!("{n} IPAM calls, each started by the plugin"))
    } else {
        deviation("the runtime called the IPAM plugin itself", found)
    }
}

/// Every runtime check, in report order.
pub fn catalog() -> Vec<RuntimeCheck> {
    let c = |id, obligation, summary, judge| RuntimeCheck {
        id,
        obligation,
        summary,
        judge,
    };
    vec![
        c(
            "runtime.required-env",
            "R8",
            "every call carries the variables its verb requires",
            required_env as fn(&Evidence) -> Judged,
        ),
        c(
            "runtime.cni-path",
            "R9",
            "CNI_PATH is given on every call",
            cni_path,
        ),
        c(
            "runtime.plugin-in-runtime-netns",
            "R4",
            "plugins run in the runtime's network namespace",
            in_runtime_netns,
        ),
        c(
            "runtime.container-id-grammar",
            "R5",
            "container IDs follow the spec's grammar",
            container_id_grammar,
        ),
        c(
            "runtime.netns-created",
            "R13",
            "each container gets a new network namespace before ADD",
            netns_created,
        ),
        c(
            "runtime.add-in-order",
            "R21",
            "ADD runs the list in order",
            add_in_order,
        ),
        c(
            "runtime.add-halts-on-error",
            "R21",
            "a failed ADD stops the list and is reported",
            add_halts_on_error,
        ),
        c(
            "runtime.first-add-without-prev-result",
            "R22",
            "the first plugin's ADD has no prevResult",
            first_add_without_prev,
        ),
        c(
            "runtime.prev-result-is-previous",
            "R23",
            "each later ADD gets the previous plugin's result",
            prev_result_is_previous,
        ),
        c(
            "runtime.del-reverse-order",
            "R24",
            "DEL runs the list in reverse",
            del_reverse_order,
        ),
        c(
            "runtime.del-prev-result-final",
            "R25",
            "DEL's prevResult is the final ADD result",
            del_prev_result_final,
        ),
        c(
            "runtime.del-after-failed-add",
            "R16",
            "a DEL follows a failed ADD",
            del_after_failed_add,
        ),
        c(
            "runtime.every-add-deleted",
            "R16",
            "every ADD is eventually followed by a DEL",
            every_add_deleted,
        ),
        c(
            "runtime.no-add-twice",
            "R7",
            "no second ADD for one attachment without DEL",
            no_add_twice,
        ),
        c(
            "runtime.result-cached",
            "R20",
            "the final result survives a runtime restart",
            result_cached,
        ),
        c(
            "runtime.check-only-live",
            "R10",
            "CHECK only on live attachments",
            check_only_live,
        ),
        c(
            "runtime.check-prev-result-final",
            "R11",
            "CHECK's prevResult is the final ADD result",
            check_prev_result_final,
        ),
        c(
            "runtime.check-same-parameters",
            "R12",
            "CHECK has the ADD's parameters",
            check_same_parameters,
        ),
        c(
            "runtime.disable-check",
            "R1",
            "no CHECK with disableCheck true",
            disable_check,
        ),
        c(
            "runtime.unknown-fields-preserved",
            "R2",
            "unknown fields reach the plugin unchanged",
            unknown_fields,
        ),
        c(
            "runtime.highest-version",
            "R3",
            "the highest supported version is chosen",
            highest_version,
        ),
        c(
            "runtime.name-and-version-inserted",
            "R30",
            "every config carries the list's name and version",
            name_and_version,
        ),
        c(
            "runtime.capabilities-key-removed",
            "R32",
            "no `capabilities` key in a plugin's config",
            capabilities_removed,
        ),
        c(
            "runtime.runtime-config-from-capabilities",
            "R31",
            "runtimeConfig holds requested, declared capabilities only",
            runtime_config,
        ),
        c(
            "runtime.no-parallel-operations",
            "R14",
            "no two operations on one container at once",
            no_parallel_operations,
        ),
        c(
            "runtime.config-unchanged-for-del",
            "R17",
            "DEL gets the config ADD had",
            config_unchanged_for_del,
        ),
        c(
            "runtime.ipam-invoked-by-plugin",
            "R33",
            "IPAM is called by the plugin, not the runtime",
            ipam_by_plugin,
        ),
        c(
            "runtime.gc-exclusive",
            "R15",
            "GC never overlaps ADD or DEL",
            gc_exclusive,
        ),
        c(
            "runtime.gc-without-attachment",
            "R27",
            "GC has no attachment parameters and reaches every plugin",
            gc_without_attachment,
        ),
        c(
            "runtime.gc-valid-attachments",
            "R28",
            "GC lists exactly the live attachments",
            gc_valid_attachments,
        ),
        c(
            "runtime.disable-gc",
            "R28+",
            "no GC with disableGC true",
            disable_gc,
        ),
    ]
}
