//! Chains: the plugin in a list, between spies.

use serde_json::{Map, Value, json};

use super::context::{Spec, World};
use super::outcome::{Judged, deviation, pass};
use super::{CHAINED, Check, Cx, row};
use crate::runtime::NetworkConfig;
use crate::spy;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("chain.keeps-prev-result", "ADD-015", "A chained plugin's result keeps the interfaces, IPs, routes and DNS of its prevResult.", keeps_prev_result).kinds(CHAINED),
        row("chain.failing-middle", "L-4, DEL-R8", "When a later plugin in the list fails ADD, the plugin's DEL for that attachment succeeds (its leaks are leak.after-failed-add's subject).", failing_middle),
    ]
}

/// A world that records the spies' calls.
pub(super) fn spy_world(cx: &Cx) -> Result<World<'_>, super::Unjudged> {
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

/// What identifies an entry of a result list: interfaces by name,
/// addresses by address, routes by destination. A chained plugin may change
/// the rest ("with any possible modifications").
fn identity(key: &str, entry: &Value) -> Value {
    match key {
        "interfaces" => entry["name"].clone(),
        "ips" => entry["address"].clone(),
        _ => entry["dst"].clone(),
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
    let mut missing: Vec<String> = Vec::new();
    for key in ["interfaces", "ips", "routes"] {
        let have: Vec<Value> = mine[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| identity(key, e))
            .collect();
        for e in prev[key].as_array().into_iter().flatten() {
            if !have.contains(&identity(key, e)) {
                missing.push(format!("{key}: {e}"));
            }
        }
    }
    let servers = |r: &Value| -> Vec<Value> {
        r["dns"]["nameservers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let mine_servers = servers(mine);
    for n in servers(&prev) {
        if !mine_servers.contains(&n) {
            missing.push(format!("nameserver {n}"));
        }
    }
    if missing.is_empty() {
        pass("the result keeps its prevResult's interfaces, addresses, routes and DNS")
    } else {
        deviation(format!("dropped from prevResult: {}", missing.join("; ")))
    }
}

/// The plugin's own part when a later plugin fails ADD: its DEL (which
/// the runtime sends through the whole list) succeeds. What stays after it
/// is leak.after-failed-add's; the order of DEL through the list is the
/// runtime's.
fn failing_middle(cx: &Cx) -> Judged {
    let w = spy_world(cx)?;
    let a = w.add_to(&failing_after(&w), &w.att())?;
    if a.succeeded() {
        let e = super::CaseError::Unexpected("the spy set to fail ADD did not fail".into());
        return Err(e.into());
    }
    let del = a.del()?;
    let Some(own) = del.steps.iter().find(|s| s.plugin == cx.plugin) else {
        let e = super::CaseError::Unexpected("the runtime's DEL did not reach the plugin".into());
        return Err(e.into());
    };
    if own.outcome.success() {
        pass("the plugin's DEL after the failed list ADD succeeded")
    } else {
        deviation(format!(
            "the plugin's DEL after the failed list ADD failed: {}",
            super::say::failure(&own.outcome)
        ))
    }
}

/// The profile's list with a spy before the plugin and a spy after it
/// that fails ADD.
pub(super) fn failing_after(w: &World) -> NetworkConfig {
    spied(
        w,
        Some(spy_conf("first", &[])),
        spy_conf("failing", &["ADD"]),
    )
}
