//! Chains: the plugin in a list, between spies.

use serde_json::{Map, Value, json};

use super::context::{Spec, World};
use super::judge;
use super::leak;
use super::outcome::{Judged, blocked, deviation, pass};
use super::{CHAINED, Check, Cx, Level, row, spec};
use crate::runtime::NetworkConfig;
use crate::spec::Version;
use crate::spy;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("chain.prev-result", Level::Must, spec("network-configuration-lists", "ADD-R5"), "In a list, the plugin's result reaches the next plugin as prevResult, and ADD and DEL reach the plugins in order and in reverse.", prev_result).since(Version::V0_3_0),
        row("chain.keeps-prev-result", Level::Must, spec("add", "ADD-015"), "A chained plugin's result keeps the interfaces, IPs, routes and DNS of its prevResult.", keeps_prev_result).since(Version::V0_3_0).must_since(Version::V1_0_0).kinds(CHAINED),
        row("chain.failing-middle", Level::Must, spec("lifecycle", "L-4, DEL-R8"), "When a later plugin in the list fails ADD, the runtime's DEL reaches every plugin in reverse, the plugin's DEL succeeds, and nothing leaks.", failing_middle).since(Version::V0_3_0),
    ]
}

/// A world that records the spies' calls.
fn spy_world(cx: &Cx) -> Result<World<'_>, super::Unjudged> {
    cx.spy_dir()?;
    cx.world_with(Spec {
        spy_log: true,
        ..Spec::default()
    })
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

/// "VERB tag" of each spy call.
fn spy_calls(w: &World) -> Vec<String> {
    w.spy_records()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["command"].as_str().unwrap_or_default(),
                r["stdin"]["tag"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn prev_result(cx: &Cx) -> Judged {
    let w = spy_world(cx)?;
    let net = spied(&w, Some(spy_conf("first", &[])), spy_conf("last", &[]));
    let a = w.add_to(&net, &w.att())?;
    let target = a.run.steps.get(net.plugins.len() - 2).cloned();
    a.del()?;
    let calls = spy_calls(&w);
    let Some(target) = target.filter(|s| s.outcome.success()) else {
        return blocked(super::add::SUCCEEDS, "ADD of the plugin in the list failed");
    };
    let received = w
        .spy_records()
        .into_iter()
        .find(|r| r["command"] == "ADD" && r["stdin"]["tag"] == "last")
        .map(|r| r["stdin"]["prevResult"].clone());
    if calls != ["ADD first", "ADD last", "DEL last", "DEL first"] {
        deviation(format!("the spies saw {}", super::say::list(&calls)))
    } else if received != target.outcome.json() {
        deviation(format!(
            "the next plugin received {} as prevResult, not the plugin's result",
            super::say::or(received, "nothing")
        ))
    } else {
        pass("the result reached the next plugin; ADD in order, DEL in reverse")
    }
}

fn keeps_prev_result(cx: &Cx) -> Judged {
    let w = cx.world()?;
    let a = w.add(&w.att())?;
    let mine = a.require(super::add::SUCCEEDS)?;
    let prev = a.run.steps[a.run.steps.len() - 2]
        .outcome
        .json()
        .unwrap_or_default();
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
    if missing.is_empty() {
        pass("the result keeps its prevResult")
    } else {
        deviation(format!("dropped from prevResult: {}", missing.join("; ")))
    }
}

fn failing_middle(cx: &Cx) -> Judged {
    let w = spy_world(cx)?;
    let net = spied(
        &w,
        Some(spy_conf("first", &[])),
        spy_conf("failing", &["ADD"]),
    );
    let before = w.snapshot()?;
    let a = w.add_to(&net, &w.att())?;
    if a.succeeded() {
        return blocked("chain.prev-result", "the spy set to fail ADD did not fail");
    }
    let del = a.del()?;
    let calls = spy_calls(&w);
    let target_del = del.steps.iter().any(|s| s.plugin == cx.plugin);
    if !del.succeeded() {
        deviation(format!(
            "DEL after the failed list ADD failed at {}",
            del.failure().map_or("?", |s| s.plugin.as_str())
        ))
    } else if !target_del || !calls.ends_with(&["DEL failing".to_string(), "DEL first".to_string()])
    {
        deviation(format!(
            "DEL did not reach every plugin in reverse: the spies saw {}",
            super::say::list(&calls)
        ))
    } else {
        leak::judged(
            &judge::leaks(&cx.profile, &before, &w.snapshot()?),
            "DEL reached every plugin and nothing leaked",
        )
    }
}
