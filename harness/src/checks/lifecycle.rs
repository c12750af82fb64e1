//! Checks across calls, chains, containers and faults: what unit tests of a
//! single plugin never see. Also the checklist assertions not covered yet,
//! listed so `list` shows them.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::case::{World, first_address, leaks, pool_world};
use super::{Case, CaseError, Check, Finding, Level, check, not_yet};
use crate::profile::PluginKind;
use crate::runtime::{Attachment, NetworkConfig, Runtime, Step};
use crate::sandbox::Scope;
use crate::spy;

pub fn checks() -> Vec<Check> {
    vec![
        check("leak.after-del", Level::Must, "SPEC.md#del (DEL-R1)", "After ADD and DEL nothing of the attachment remains: no link, address, route or state file (bookkeeping the profile names aside).", leak_after_del),
        check("leak.after-failed-add", Level::Must, "SPEC.md#lifecycle (L-4)", "After an ADD that fails on an exhausted pool, and the runtime's DEL, nothing of it remains.", leak_after_failed_add),
        check("add.rollback", Level::Should, "SPEC.md#add (ADD-R9)", "An ADD that fails leaves nothing behind even before the runtime's DEL.", add_rollback),
        check("add.twice-fails", Level::Must, "SPEC.md#add (ADD-R3, ADD-R6)", "ADD twice for one attachment without DEL fails.", add_twice).must_since("1.0.0"),
        check("attachment.two-in-one-container", Level::Must, "SPEC.md#add (ADD-018)", "Two attachments of one container (eth0, eth1; two networks) both ADD, and DEL of one leaves the other.", two_attachments).since("0.3.0"),
        check("chain.prev-result", Level::Must, "SPEC.md#network-configuration-lists (ADD-R5)", "In a list, the plugin's result reaches the next plugin as prevResult, and ADD and DEL reach the plugins in order and in reverse.", chain_prev_result).since("0.3.0"),
        check("chain.keeps-prev-result", Level::Must, "SPEC.md#add (ADD-015)", "A chained plugin's result keeps the interfaces, IPs, routes and DNS of its prevResult.", chain_keeps).since("0.3.0").must_since("1.0.0").kinds(&[PluginKind::Chained]),
        check("chain.failing-middle", Level::Must, "SPEC.md#lifecycle (L-4, DEL-R8)", "When a later plugin in the list fails ADD, the runtime's DEL reaches every plugin in reverse, the plugin's DEL succeeds, and nothing leaks.", chain_failing_middle).since("0.3.0"),
        check("concurrency.parallel-add", Level::Must, "SPEC.md#lifecycle (L-2, CON-001 to CON-003)", "100 parallel ADDs in separate containers all succeed with distinct addresses; 100 parallel DELs release everything.", parallel_add).once(),
        check("concurrency.small-range", Level::Must, "SPEC.md#lifecycle (L-2)", "With fewer addresses than parallel ADDs, the excess fails cleanly with error objects and no address is handed out twice.", small_range).once(),
        check("ipam.exhaust-release", Level::Must, "SPEC.md#del (IPM-002, IPM-003)", "A /29 fills up, the next ADD fails with an error object; after one DEL, ADD gets that address.", exhaust_release),
        check("gc.releases-stale", Level::Must, "SPEC.md#gc (GC-003, GC-004)", "GC releases what cni.dev/valid-attachments does not name.", gc_releases).since("1.1.0"),
        check("gc.keeps-valid", Level::Must, "SPEC.md#gc (GC-003)", "GC naming every attachment releases nothing.", gc_keeps).since("1.1.0"),
        check("status.usable", Level::Must, "SPEC.md#status (STA-001)", "STATUS succeeds, or fails with an error object, when nothing is wrong.", status_usable).since("1.1.0"),
        check("status.exhausted", Level::Should, "SPEC.md#status (STA-R2, STA-002)", "STATUS reports an exhausted pool with code 50 or 51.", status_exhausted).since("1.1.0"),
        check("fault.kill-during-add", Level::Must, "SPEC.md#lifecycle (L-4)", "A plugin killed at random points of ADD, then DEL, leaves no link, no reservation and a store that still works.", kill_during_add).once(),
        not_yet("add.keeps-prev-result-interface", Level::Must, "SPEC.md#add (ADD-014)", "An interface plugin given a prevResult keeps it in its result.", "the first interface plugin of a list never gets one from libcni; the checklist's synthetic case needs a decision on remapped interface indexes"),
        not_yet("version.legacy-only", Level::May, "SPEC.md#version (VER-008)", "A plugin without VERSION is treated as 0.1.0-only.", "informational; no plugin in reach behaves so"),
        not_yet("env.no-command", Level::May, "SPEC.md#parameters (ENV-010, ENV-011, ENV-014)", "Behaviour without CNI_COMMAND or CNI_PATH, or with unknown CNI_ARGS keys, is recorded.", "informational records, no verdict"),
        not_yet("del.changed-prev-result", Level::Must, "SPEC.md#del (DEL-009)", "DEL succeeds with a prevResult a later plugin changed.", "needs a MAC-changing chained plugin in the profile set"),
    ]
}

const NO_POOL: &str = "the profile draws no addresses from a subnet";

fn leaks_finding(left: Vec<String>, ok: &str) -> Finding {
    if left.is_empty() {
        Finding::Pass(ok.into())
    } else {
        Finding::Deviation(format!("left behind: {}", left.join("; ")))
    }
}

fn leak_after_del(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let before = w.snapshot()?;
    let add = case.add(&w, &mut rt, &att)?;
    let del = case.del(&w, &mut rt, &att)?;
    if !add.succeeded() || !del.succeeded() {
        return Ok(Finding::Skip(
            "ADD or DEL failed (see add.succeeds, del.succeeds)".into(),
        ));
    }
    Ok(leaks_finding(
        leaks(&case.profile, &before, &w.snapshot()?),
        "nothing left behind",
    ))
}

/// Container 0 takes the only address of a /30; container 1's ADD then
/// fails. The snapshots around container 1's ADD and its DEL.
struct FailedAdd {
    before: crate::snapshot::Snapshot,
    after_add: crate::snapshot::Snapshot,
    after_del: crate::snapshot::Snapshot,
    failed: bool,
}

/// The failed-ADD scenario, or why it cannot be staged.
fn failed_add(case: &mut Case) -> Result<Result<FailedAdd, Finding>, CaseError> {
    let Some(w) = pool_world(case, "10.89.0.0/30", 2)? else {
        return Ok(Err(Finding::Skip(NO_POOL.into())));
    };
    let mut rt = case.runtime(&w);
    let (a, b) = (w.attachment(0, "c1", "eth0"), w.attachment(1, "c2", "eth0"));
    let first = case.add(&w, &mut rt, &a)?;
    if !first.succeeded() {
        case.del(&w, &mut rt, &a)?;
        return Ok(Err(Finding::Skip(
            "the ADD that takes the pool's only address failed, so no ADD could be made \
             to fail on exhaustion; the plugin's answer is in the evidence"
                .into(),
        )));
    }
    let before = w.snapshot()?;
    let second = case.add(&w, &mut rt, &b)?;
    let after_add = w.snapshot()?;
    case.del(&w, &mut rt, &b)?;
    let after_del = w.snapshot()?;
    case.del(&w, &mut rt, &a)?;
    Ok(Ok(FailedAdd {
        before,
        after_add,
        after_del,
        failed: !second.succeeded(),
    }))
}

fn leak_after_failed_add(case: &mut Case) -> Result<Finding, CaseError> {
    let f = match failed_add(case)? {
        Ok(f) => f,
        Err(why) => return Ok(why),
    };
    if !f.failed {
        return Ok(Finding::Deviation(
            "ADD succeeded in an exhausted pool".into(),
        ));
    }
    Ok(leaks_finding(
        leaks(&case.profile, &f.before, &f.after_del),
        "nothing left after DEL",
    ))
}

fn add_rollback(case: &mut Case) -> Result<Finding, CaseError> {
    let f = match failed_add(case)? {
        Ok(f) => f,
        Err(why) => return Ok(why),
    };
    if !f.failed {
        return Ok(Finding::Skip(
            "ADD did not fail (see leak.after-failed-add)".into(),
        ));
    }
    Ok(leaks_finding(
        leaks(&case.profile, &f.before, &f.after_add),
        "the failed ADD rolled back by itself",
    ))
}

fn add_twice(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let first = case.add(&w, &mut rt, &att)?;
    let second = case.add(&w, &mut rt, &att)?;
    case.del(&w, &mut rt, &att)?;
    Ok(match (first.succeeded(), second.succeeded()) {
        (false, _) => Finding::Skip("the first ADD failed (see add.succeeds)".into()),
        (true, true) => Finding::Deviation("a second ADD of the same attachment succeeded".into()),
        (true, false) => Finding::Pass("refused".into()),
    })
}

fn two_attachments(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    // The second network: another name and subnet, same profile.
    let mut fill = w.fill.clone();
    fill.subnet = "10.87.0.0/24".into();
    let doc = case
        .profile
        .network(&case.version, "conformance-b", &fill)?;
    let net_b = NetworkConfig::parse(doc.to_string().as_bytes())
        .map_err(|e| CaseError::Config(e.to_string()))?;
    let mut rt = case.runtime(&w);
    let (a, b) = (w.attachment(0, "c1", "eth0"), w.attachment(0, "c1", "eth1"));
    let add_a = case.add(&w, &mut rt, &a)?;
    let add_b = case.noted(rt.add(&net_b, &b)?);
    let mut finding = if !add_a.succeeded() || !add_b.succeeded() {
        Finding::Deviation(format!(
            "ADD eth0: {}, ADD eth1: {}",
            add_a.succeeded(),
            add_b.succeeded()
        ))
    } else {
        Finding::Pass("both attachments came and went independently".into())
    };
    if add_a.succeeded() && add_b.succeeded() {
        case.noted(rt.del(&net_b, &b)?);
        let links = w.sb.ip(Scope::Container(0), &["-o", "link", "show"])?;
        if case.kind() == PluginKind::Interface && !links.contains(": eth0") {
            finding = Finding::Deviation("DEL of eth1 removed eth0".into());
        } else if w.net.version_at_least("0.4.0") {
            let check = case.noted(rt.check(&w.net, &a)?);
            if !check.succeeded() {
                finding = Finding::Deviation("CHECK of eth0 fails after DEL of eth1".into());
            }
        }
    }
    case.del(&w, &mut rt, &a)?;
    rt.del(&net_b, &b)?;
    Ok(finding)
}

/// The profile's list with spies around the plugin under test.
fn spied(
    w: &World,
    before: Option<Map<String, Value>>,
    after: Map<String, Value>,
) -> NetworkConfig {
    let mut net = w.net.clone();
    if let Some(b) = before {
        net.plugins.insert(0, b);
    }
    net.plugins.push(after);
    net.is_list = true;
    net
}

fn spy_conf(tag: &str, fail_on: &[&str]) -> Map<String, Value> {
    let v = json!({"type": spy::NAME, "tag": tag, "spyFailOn": fail_on});
    v.as_object().cloned().expect("object")
}

/// (verb, tag) of each spy call.
fn spy_calls(records: &[Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap_or_default().to_string(),
                r["stdin"]["tag"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn chain_prev_result(case: &mut Case) -> Result<Finding, CaseError> {
    if case.spy_dir.is_none() {
        return Ok(Finding::Skip("no spy plugin available".into()));
    }
    let w = case.world()?;
    let net = spied(&w, Some(spy_conf("first", &[])), spy_conf("last", &[]));
    let (mut rt, log) = (case.spy_runtime(&w), w.spy_log());
    let att = w.att();
    let add = case.noted(rt.add(&net, &att)?);
    let target = &add.steps.get(net.plugins.len() - 2).cloned();
    rt.del(&net, &att)?;
    let records = spy::read_log(&log).unwrap_or_default();
    let calls = spy_calls(&records);
    let order: Vec<(String, String)> = [
        ("ADD", "first"),
        ("ADD", "last"),
        ("DEL", "last"),
        ("DEL", "first"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let Some(target) = target.as_ref().filter(|s| s.outcome.success()) else {
        return Ok(Finding::Skip(
            "ADD in the list failed (see add.succeeds)".into(),
        ));
    };
    let produced = target.outcome.json();
    let received = records
        .iter()
        .find(|r| r["command"] == "ADD" && r["stdin"]["tag"] == "last")
        .map(|r| r["stdin"]["prevResult"].clone());
    Ok(if calls != order {
        Finding::Deviation(format!(
            "the spies saw {}",
            super::say::list(calls.iter().map(|(verb, tag)| format!("{verb} {tag}")))
        ))
    } else if received != produced {
        Finding::Deviation(format!(
            "the next plugin received {} as prevResult, not the plugin's result",
            super::say::or(received, "nothing")
        ))
    } else {
        Finding::Pass("the result reached the next plugin; ADD in order, DEL in reverse".into())
    })
}

fn chain_keeps(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let run = case.add_then_del(&w)?;
    if !run.succeeded() || run.steps.len() < 2 {
        return Ok(Finding::Skip(
            "ADD in the list failed (see add.succeeds)".into(),
        ));
    }
    let prev = run.steps[run.steps.len() - 2]
        .outcome
        .json()
        .unwrap_or_default();
    let mine = run.result.unwrap_or_default();
    let missing: Vec<String> = ["interfaces", "ips", "routes"]
        .iter()
        .flat_map(|k| {
            let have: Vec<&Value> = mine
                .get(*k)
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            prev.get(*k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(move |e| !have.contains(&e))
                .map(move |e| format!("{k}: {e}"))
        })
        .collect();
    Ok(if missing.is_empty() {
        Finding::Pass("the result keeps its prevResult".into())
    } else {
        Finding::Deviation(format!("dropped from prevResult: {}", missing.join("; ")))
    })
}

fn chain_failing_middle(case: &mut Case) -> Result<Finding, CaseError> {
    if case.spy_dir.is_none() {
        return Ok(Finding::Skip("no spy plugin available".into()));
    }
    let w = case.world()?;
    let net = spied(
        &w,
        Some(spy_conf("first", &[])),
        spy_conf("failing", &["ADD"]),
    );
    let (mut rt, log) = (case.spy_runtime(&w), w.spy_log());
    let att = w.att();
    let before = w.snapshot()?;
    let add = case.noted(rt.add(&net, &att)?);
    let del = case.noted(rt.del(&net, &att)?);
    let calls = spy_calls(&spy::read_log(&log).unwrap_or_default());
    let target_del = del.steps.iter().find(|s| s.plugin == case.plugin_type);
    let left = leaks(&case.profile, &before, &w.snapshot()?);
    Ok(if add.succeeded() {
        Finding::Skip("the failing spy did not fail".into())
    } else if !del.succeeded() {
        Finding::Deviation(format!(
            "DEL after the failed list ADD failed at {}",
            del.failure().map_or("?", |s| s.plugin.as_str())
        ))
    } else if target_del.is_none()
        || !calls.ends_with(&[
            ("DEL".to_string(), "failing".to_string()),
            ("DEL".to_string(), "first".to_string()),
        ])
    {
        Finding::Deviation(format!(
            "DEL did not reach every plugin in reverse: spies saw {calls:?}"
        ))
    } else {
        leaks_finding(left, "DEL reached every plugin and nothing leaked")
    })
}

/// ADD `n` containers at once; the steps in container order.
fn parallel(
    case: &mut Case,
    rt: &Runtime,
    w: &World,
    verb: &str,
    atts: &[Attachment],
    prev: &[Option<Value>],
) -> Vec<crate::runtime::Step> {
    let plugin = case.plugin_type.as_str();
    std::thread::scope(|s| {
        let handles: Vec<_> = atts
            .iter()
            .zip(prev)
            .map(|(att, p)| {
                let req = w.request(Some(att), p.as_ref());
                s.spawn(move || rt.call(plugin, verb, req, Some(att)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().and_then(Result::ok))
            .collect()
    })
}

fn containers(w: &World, n: usize) -> Vec<Attachment> {
    (0..n)
        .map(|i| w.attachment(i, &format!("p{i}"), "eth0"))
        .collect()
}

/// `n` parallel ADDs in separate containers drawing from `subnet`: the
/// steps, their results and the addresses handed out; a skip when the
/// profile has nothing to race for.
struct Race {
    w: World,
    atts: Vec<Attachment>,
    added: Vec<Step>,
    results: Vec<Option<Value>>,
    addresses: Vec<String>,
}

fn race(case: &mut Case, subnet: &str, n: usize) -> Result<Result<Race, Finding>, CaseError> {
    if case.kind() == PluginKind::Chained {
        return Ok(Err(Finding::Skip(
            "a chained plugin has no addresses of its own to race for".into(),
        )));
    }
    let Some(w) = pool_world(case, subnet, n)? else {
        return Ok(Err(Finding::Skip(NO_POOL.into())));
    };
    let atts = containers(&w, n);
    let added = {
        let rt = case.runtime(&w);
        parallel(case, &rt, &w, "ADD", &atts, &vec![None; n])
    };
    let results: Vec<Option<Value>> = added
        .iter()
        .map(|s| s.outcome.json().filter(|_| s.outcome.success()))
        .collect();
    let addresses = results.iter().flatten().filter_map(first_address).collect();
    Ok(Ok(Race {
        w,
        atts,
        added,
        results,
        addresses,
    }))
}

impl Race {
    fn distinct(&self) -> usize {
        self.addresses.iter().collect::<HashSet<_>>().len()
    }
}

fn parallel_add(case: &mut Case) -> Result<Finding, CaseError> {
    const N: usize = 100;
    let r = match race(case, "10.86.0.0/24", N)? {
        Ok(r) => r,
        Err(skip) => return Ok(skip),
    };
    let rt = case.runtime(&r.w);
    let ok = r.results.iter().filter(|x| x.is_some()).count();
    let deleted = parallel(case, &rt, &r.w, "DEL", &r.atts, &r.results);
    let del_ok = deleted.iter().filter(|s| s.outcome.success()).count();
    // The pool is whole again: one more container gets an address.
    let first = &r.atts[0];
    let again = rt.call(
        &case.plugin_type,
        "ADD",
        r.w.request(Some(first), None),
        Some(first),
    )?;
    rt.call(
        &case.plugin_type,
        "DEL",
        r.w.request(Some(first), None),
        Some(first),
    )?;
    Ok(if ok != N {
        let example = r
            .added
            .iter()
            .find(|s| !s.outcome.success())
            .map(|s| s.outcome.stdout_text());
        Finding::Deviation(format!(
            "{ok} of {N} parallel ADDs succeeded; e.g. {}",
            super::say::or(example, "no output")
        ))
    } else if r.distinct() != r.addresses.len() {
        Finding::Deviation(format!(
            "{} addresses handed out for {} ADDs",
            r.distinct(),
            r.addresses.len()
        ))
    } else if del_ok != N {
        Finding::Deviation(format!("{del_ok} of {N} parallel DELs succeeded"))
    } else if !again.outcome.success() {
        Finding::Deviation("after the DELs the pool did not hand out an address again".into())
    } else {
        Finding::Pass(format!(
            "{N} ADDs, {N} distinct addresses, {N} DELs, pool usable again"
        ))
    })
}

fn small_range(case: &mut Case) -> Result<Finding, CaseError> {
    const N: usize = 20;
    let r = match race(case, "10.85.0.0/28", N)? {
        Ok(r) => r,
        Err(skip) => return Ok(skip),
    };
    let unclean = r
        .added
        .iter()
        .filter(|s| !s.outcome.success() && s.outcome.error().is_none())
        .count();
    let rt = case.runtime(&r.w);
    parallel(case, &rt, &r.w, "DEL", &r.atts, &r.results);
    Ok(if r.distinct() != r.addresses.len() {
        Finding::Deviation(format!(
            "{} distinct addresses for {} successful ADDs",
            r.distinct(),
            r.addresses.len()
        ))
    } else if r.addresses.len() == N {
        Finding::Deviation(format!("a /28 handed out {N} addresses"))
    } else if unclean > 0 {
        Finding::Deviation(format!("{unclean} failed ADDs printed no error object"))
    } else {
        Finding::Pass(format!(
            "{} ADDs succeeded with distinct addresses, {} failed cleanly",
            r.addresses.len(),
            N - r.addresses.len()
        ))
    })
}

fn exhaust_release(case: &mut Case) -> Result<Finding, CaseError> {
    if case.kind() == PluginKind::Chained {
        return Ok(Finding::Skip(
            "a chained plugin has no addresses of its own".into(),
        ));
    }
    let Some(w) = pool_world(case, "10.84.0.0/29", 7)? else {
        return Ok(Finding::Skip(NO_POOL.into()));
    };
    let rt = case.runtime(&w);
    let atts = containers(&w, 7);
    let mut held: Vec<Option<Value>> = Vec::new();
    let mut first_failure = None;
    for (i, att) in atts.iter().enumerate().take(6) {
        let step = case.call(&rt, "ADD", Some(att), w.request(Some(att), None), &[])?;
        if step.outcome.success() {
            held.push(step.outcome.json());
        } else {
            first_failure = Some((i, step));
            break;
        }
    }
    let Some((full_at, step)) = first_failure else {
        return Ok(Finding::Deviation(
            "six ADDs succeeded in a /29 with a gateway".into(),
        ));
    };
    let clean = step.outcome.error().is_some();
    let finding = if !clean {
        Finding::Deviation("the ADD on a full pool printed no error object".into())
    } else if full_at == 0 {
        Finding::Skip("the first ADD failed (see add.succeeds)".into())
    } else {
        let freed = full_at / 2;
        let released = held[freed].as_ref().and_then(first_address);
        case.call(
            &rt,
            "DEL",
            Some(&atts[freed]),
            w.request(Some(&atts[freed]), held[freed].as_ref()),
            &[],
        )?;
        let again = case.call(
            &rt,
            "ADD",
            Some(&atts[6]),
            w.request(Some(&atts[6]), None),
            &[],
        )?;
        let got = again.outcome.json().as_ref().and_then(first_address);
        if got.is_some() && got == released {
            Finding::Pass(format!(
                "full after {full_at}; the released {} came back",
                got.unwrap_or_default()
            ))
        } else {
            Finding::Deviation(format!(
                "released {}, then ADD got {}",
                super::say::or(released, "no address"),
                super::say::or(got, "no address")
            ))
        }
    };
    for att in &atts {
        rt.call(
            &case.plugin_type,
            "DEL",
            w.request(Some(att), None),
            Some(att),
        )?;
    }
    Ok(finding)
}

/// Three attachments in a /29; GC naming `keep`; then how many new
/// containers still get an address (of up to four tries).
fn gc_then_fill(case: &mut Case, keep: &[usize]) -> Result<Option<(bool, usize)>, CaseError> {
    let Some(w) = pool_world(case, "10.83.0.0/29", 7)? else {
        return Ok(None);
    };
    let rt = case.runtime(&w);
    let atts = containers(&w, 7);
    for att in &atts[..3] {
        let step = case.call(&rt, "ADD", Some(att), w.request(Some(att), None), &[])?;
        if !step.outcome.success() {
            return Ok(None);
        }
    }
    let valid: Vec<(String, String)> = keep
        .iter()
        .map(|i| (atts[*i].container_id.clone(), atts[*i].ifname.clone()))
        .collect();
    let gc = case.call(
        &rt,
        "GC",
        None,
        w.net.network_request(w.target(), Some(&valid)),
        &[],
    )?;
    let mut got = 0;
    for att in &atts[3..] {
        if case
            .call(&rt, "ADD", Some(att), w.request(Some(att), None), &[])?
            .outcome
            .success()
        {
            got += 1;
        }
    }
    for att in &atts {
        rt.call(
            &case.plugin_type,
            "DEL",
            w.request(Some(att), None),
            Some(att),
        )?;
    }
    Ok(Some((gc.outcome.success(), got)))
}

fn gc_releases(case: &mut Case) -> Result<Finding, CaseError> {
    Ok(match gc_then_fill(case, &[1])? {
        None => Finding::Skip(NO_POOL.into()),
        Some((false, _)) => Finding::Deviation("GC failed".into()),
        // Five addresses: one kept, so four new containers fit.
        Some((true, 4)) => Finding::Pass("the two stale attachments' addresses came back".into()),
        Some((true, got)) => Finding::Deviation(format!(
            "after GC kept one of three, only {got} of 4 new ADDs got an address"
        )),
    })
}

fn gc_keeps(case: &mut Case) -> Result<Finding, CaseError> {
    Ok(match gc_then_fill(case, &[0, 1, 2])? {
        None => Finding::Skip(NO_POOL.into()),
        Some((false, _)) => Finding::Deviation("GC failed".into()),
        Some((true, 2)) => Finding::Pass("nothing named was released".into()),
        Some((true, got)) => Finding::Deviation(format!(
            "after GC named all three, {got} new ADDs got an address (2 fit)"
        )),
    })
}

fn status_step(
    case: &mut Case,
    w: &World,
    rt: &Runtime,
) -> Result<crate::runtime::Step, CaseError> {
    case.call(
        rt,
        "STATUS",
        None,
        w.net.network_request(w.target(), None),
        &[],
    )
}

fn status_usable(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let step = status_step(case, &w, &rt)?;
    Ok(match (step.outcome.success(), step.outcome.error()) {
        (true, _) => Finding::Pass("STATUS succeeded".into()),
        (false, Some(e)) => Finding::Deviation(format!(
            "STATUS failed in a fresh sandbox with code {}: {}",
            e.code, e.msg
        )),
        (false, None) => Finding::Deviation("STATUS failed without an error object".into()),
    })
}

fn status_exhausted(case: &mut Case) -> Result<Finding, CaseError> {
    if case.kind() == PluginKind::Chained {
        return Ok(Finding::Skip(
            "a chained plugin has no pool of its own".into(),
        ));
    }
    let Some(w) = pool_world(case, "10.82.0.0/30", 1)? else {
        return Ok(Finding::Skip(NO_POOL.into()));
    };
    let rt = case.runtime(&w);
    let att = w.att();
    let add = case.call(&rt, "ADD", Some(&att), w.request(Some(&att), None), &[])?;
    let step = status_step(case, &w, &rt)?;
    rt.call(
        &case.plugin_type,
        "DEL",
        w.request(Some(&att), add.outcome.json().as_ref()),
        Some(&att),
    )?;
    let code = step.outcome.error_code();
    Ok(
        match (add.outcome.success(), step.outcome.success(), code) {
            (false, ..) => Finding::Skip("ADD failed (see add.succeeds)".into()),
            (true, false, Some(50 | 51)) => Finding::Pass("exhaustion reported".into()),
            (true, ok, code) => Finding::Deviation(format!(
                "STATUS on an exhausted pool: {}",
                if ok {
                    "success".to_string()
                } else {
                    super::say::code(code)
                }
            )),
        },
    )
}

/// Kill points spread over an ADD: reproducible "random" delays.
fn delays(trials: usize, max_us: u64) -> Vec<Duration> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..trials)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(200 + x % max_us)
        })
        .collect()
}

fn kill_during_add(case: &mut Case) -> Result<Finding, CaseError> {
    const TRIALS: usize = 24;
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    let before = w.snapshot()?;
    let mut killed = 0;
    for d in delays(TRIALS, 8000) {
        let mut quick = case.runtime(&w);
        quick.timeout = d;
        let add = quick.call(
            &case.plugin_type,
            "ADD",
            w.request(Some(&att), None),
            Some(&att),
        )?;
        if add.outcome.exit == crate::runtime::Exit::TimedOut {
            killed += 1;
        }
        let del = case.call(&rt, "DEL", Some(&att), w.request(Some(&att), None), &[])?;
        if !del.outcome.success() {
            return Ok(Finding::Deviation(format!(
                "DEL after ADD was killed at {d:?} failed: {}",
                del.outcome.stdout_text().trim()
            )));
        }
        let left = leaks(&case.profile, &before, &w.snapshot()?);
        if !left.is_empty() {
            return Ok(Finding::Deviation(format!(
                "killed at {d:?}, then DEL, left: {}",
                left.join("; ")
            )));
        }
    }
    // The store still works.
    let add = case.call(&rt, "ADD", Some(&att), w.request(Some(&att), None), &[])?;
    let del = case.call(
        &rt,
        "DEL",
        Some(&att),
        w.request(Some(&att), add.outcome.json().as_ref()),
        &[],
    )?;
    Ok(if add.outcome.success() && del.outcome.success() {
        Finding::Pass(format!(
            "{killed} of {TRIALS} ADDs killed part-way; DEL always cleaned up; the store still works"
        ))
    } else {
        Finding::Deviation("after the killed ADDs, ADD and DEL no longer work".into())
    })
}
