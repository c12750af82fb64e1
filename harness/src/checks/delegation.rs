//! Delegation: with the spy standing in as the IPAM plugin, what the plugin
//! hands it, and what it carries back.

use serde_json::{Value, json};

use super::context::{World, ipam_result};
use super::outcome::{Judged, blocked, deviation, not_applicable, pass};
use super::{Check, Cx, INTERFACE, row};
use crate::profile::Fill;
use crate::spec::Verb;
use crate::spy;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("delegation.add", "DLG-001, DLG-002", "ADD runs the IPAM plugin found in CNI_PATH once, with the same CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH.", add).kinds(INTERFACE),
        row("delegation.same-config", "DLG-003", "The IPAM plugin receives the whole network config the plugin received.", same_config).kinds(INTERFACE),
        row("delegation.every-verb", "DLG-006, DLG-008 to DLG-010", "CHECK, DEL, GC and STATUS reach the IPAM plugin too, where the version has them.", every_verb).kinds(INTERFACE),
        row("delegation.same-env-every-verb", "DLG-002, DLG-006, DLG-008 to DLG-010", "CHECK, DEL, GC and STATUS give the IPAM plugin the environment the plugin got, as ADD does.", same_env_every_verb).kinds(INTERFACE),
        row("delegation.ipam-failure-fails", "DLG-008, D-5", "When the IPAM plugin fails CHECK, DEL or GC, the plugin fails that verb too.", ipam_failure_fails).kinds(INTERFACE),
        row("delegation.missing-plugin", "DLG-012", "ADD exits non-zero when the IPAM plugin is not in CNI_PATH.", missing_plugin).kinds(INTERFACE),
        row("delegation.result-carried", "DLG-004, ADD-R8", "The IPAM plugin's addresses (with interface indexes), routes and dns reach the plugin's result.", result_carried).kinds(INTERFACE),
        row("delegation.error-carried", "DLG-005, D-5", "When the IPAM plugin fails ADD, the plugin fails and calls the IPAM plugin's DEL itself.", error_carried).kinds(INTERFACE),
        row("delegation.del-without-netns", "DLG-007", "With the namespace gone, DEL still reaches the IPAM plugin and succeeds.", del_without_netns).kinds(INTERFACE),
        row("delegation.stderr", "DLG-011, D-3", "What the IPAM plugin writes to stderr shows in the plugin's stderr.", stderr_forwarded).kinds(INTERFACE),
    ]
}

/// Checks that need the plugin to work with the spy as IPAM block on this.
const ADD: &str = "delegation.add";

/// A spy IPAM section answering the plain result, with `extra` options.
fn spy_ipam(cx: &Cx, extra: Value) -> Value {
    let fill = Fill::new(&cx.plugin);
    let mut ipam = json!({"type": spy::NAME, "spyResult": ipam_result(cx.version, &fill)});
    if let (Some(o), Some(e)) = (ipam.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    ipam
}

/// The calls the spy recorded for `verb`.
fn spy_calls(w: &World, verb: Verb) -> Vec<Value> {
    w.spy_records()
        .into_iter()
        .filter(|r| r["command"] == verb.as_str())
        .collect()
}

/// The default attachment with CNI_ARGS, so forwarding them is seen.
fn with_args(w: &super::context::World) -> crate::runtime::Attachment {
    let mut att = w.att();
    att.args = vec![
        ("IgnoreUnknown".into(), "1".into()),
        ("K8S_POD_NAME".into(), "p".into()),
    ];
    att
}

fn add(cx: &Cx) -> Judged {
    let w = cx.spied_ipam_world(None)?;
    let att = with_args(&w);
    let a = w.add(&att)?;
    let expected = w.env_for(Verb::Add, Some(&att));
    let adds = spy_calls(&w, Verb::Add);
    // A retry after a failed IPAM ADD (code 11: try again) is allowed.
    let done: Vec<&Value> = adds.iter().filter(|r| r["exit"] == 0).collect();
    if done.len() != 1 {
        return deviation(format!(
            "the IPAM plugin's ADD succeeded {} times for one ADD",
            done.len()
        ));
    }
    let seen = &done[0]["env"];
    let differing: Vec<String> = expected
        .iter()
        .filter(|(k, _)| {
            [
                "CNI_CONTAINERID",
                "CNI_NETNS",
                "CNI_IFNAME",
                "CNI_ARGS",
                "CNI_PATH",
            ]
            .contains(&k.as_str())
        })
        .filter(|(k, v)| seen[k.as_str()].as_str().unwrap_or_default() != v)
        .map(|(k, v)| format!("{k}: plugin got {v:?}, IPAM got {}", seen[k.as_str()]))
        .collect();
    if !differing.is_empty() {
        deviation(differing.join("; "))
    } else if !a.succeeded() {
        deviation("ADD failed although its IPAM plugin answered")
    } else {
        pass("the IPAM plugin ran once with the plugin's environment")
    }
}

fn same_config(cx: &Cx) -> Judged {
    let w = cx.spied_ipam_world(None)?;
    let a = w.add(&w.att())?;
    let Some(sent) = a.target_step().map(|s| s.request.clone()) else {
        return blocked(
            super::add::SUCCEEDS,
            "the plugins before it in the list failed",
        );
    };
    let received = spy_calls(&w, Verb::Add).first().map(|r| r["stdin"].clone());
    if received.as_ref() == Some(&sent) {
        pass("the IPAM plugin got the same config")
    } else {
        deviation(format!(
            "the plugin got {sent}, its IPAM plugin {}",
            super::say::or(received, "was not called")
        ))
    }
}

fn every_verb(cx: &Cx) -> Judged {
    let w = cx.spied_ipam_world(None)?;
    let a = w.add(&w.att())?;
    a.require(ADD)?;
    let mut verbs = vec![Verb::Check, Verb::Del];
    a.check()?;
    a.del()?;
    if cx.version.has_gc_and_status() {
        verbs.extend([Verb::Gc, Verb::Status]);
        w.gc(&[])?;
        w.status()?;
    }
    let seen: Vec<Value> = w.spy_records();
    let missing: Vec<&str> = verbs
        .iter()
        .filter(|v| !seen.iter().any(|r| r["command"] == v.as_str()))
        .map(|v| v.as_str())
        .collect();
    if missing.is_empty() {
        let all: Vec<&str> = verbs.iter().map(|v| v.as_str()).collect();
        pass(format!("{} reached the IPAM plugin", all.join(", ")))
    } else {
        deviation(format!(
            "never forwarded to the IPAM plugin: {}",
            missing.join(", ")
        ))
    }
}

fn missing_plugin(cx: &Cx) -> Judged {
    let w = cx.spied_ipam_world(Some(json!({"type": "cni-conformance-no-such-ipam"})))?;
    let a = w.add(&w.att())?;
    let step = a.last_step();
    match (step.outcome.success(), step.outcome.error()) {
        (true, _) => deviation("ADD succeeded without its IPAM plugin"),
        (false, None) => pass("failed (without an error object: see error.object)"),
        (false, Some(e)) => pass(format!("failed with code {}", e.code)),
    }
}

fn result_carried(cx: &Cx) -> Judged {
    let fill = Fill::new(&cx.plugin);
    let prefix = fill.subnet.prefix();
    let (first, second) = (
        format!("{}/{prefix}", fill.host(5)),
        format!("{}/{prefix}", fill.host(6)),
    );
    let (gateway, dns) = (fill.gateway().to_string(), fill.host(53).to_string());
    let mut ips = vec![
        json!({"address": first, "gateway": gateway}),
        json!({"address": second}),
    ];
    if cx.version.has_ip_version_field() {
        ips.iter_mut().for_each(|ip| ip["version"] = json!("4"));
    }
    let result = json!({"ips": ips, "routes": [{"dst": "192.0.2.0/24", "gw": gateway}],
                        "dns": {"nameservers": [dns]}});
    let w = cx.spied_ipam_world(Some(spy_ipam(cx, json!({"spyResult": result}))))?;
    let a = w.add(&w.att())?;
    let Some(r) = a.result() else {
        // Not a deviation: no sentence obliges a plugin to accept every
        // IPAM result (delegation.add judges the plain one).
        return not_applicable(
            "ADD failed with this check's IPAM result (two addresses, a route, DNS), \
             so what it carries cannot be judged; the plugin's answer is in the evidence",
        );
    };
    let count = r["interfaces"].as_array().map_or(0, Vec::len) as u64;
    let got: Vec<&Value> = r["ips"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let addresses: Vec<&str> = got.iter().filter_map(|i| i["address"].as_str()).collect();
    let mut missing = Vec::new();
    for addr in [&first, &second] {
        if !addresses.contains(&addr.as_str()) {
            missing.push(format!("address {addr}"));
        }
    }
    if got
        .iter()
        .any(|i| i["interface"].as_u64().is_none_or(|x| x >= count))
    {
        missing.push("a valid interface index on every address".into());
    }
    if !r["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|x| x["dst"] == "192.0.2.0/24")
    {
        missing.push("route 192.0.2.0/24".into());
    }
    if !r["dns"]["nameservers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|x| *x == dns)
    {
        missing.push(format!("nameserver {dns}"));
    }
    if missing.is_empty() {
        pass("the IPAM result reached the plugin's result")
    } else {
        deviation(format!("the result lacks {}", missing.join(", ")))
    }
}

fn error_carried(cx: &Cx) -> Judged {
    let ipam = spy_ipam(cx, json!({"spyFailOn": ["ADD"], "spyFailCode": 11}));
    let w = cx.spied_ipam_world(Some(ipam))?;
    let a = w.add(&w.att())?;
    let step = a.last_step();
    // What the plugin did by itself, before any DEL from the runtime.
    let called_del = !spy_calls(&w, Verb::Del).is_empty();
    // Passing code 11 on is no rule of the text: it is only reported.
    let code = super::say::code(step.outcome.error_code());
    match (step.outcome.success(), called_del) {
        (true, _) => blocked(
            "add.failure-reported",
            "ADD succeeded although its IPAM plugin failed",
        ),
        (false, true) => pass(format!(
            "failed ({code}; IPAM said code 11) and called IPAM DEL"
        )),
        (false, false) => deviation(format!(
            "failed ({code}; IPAM said code 11) but never called the IPAM plugin's DEL"
        )),
    }
}

fn del_without_netns(cx: &Cx) -> Judged {
    let mut w = cx.spied_ipam_world(None)?;
    let (att, result) = {
        let a = w.add(&w.att())?;
        a.require(ADD)?;
        a.release()
    };
    w.sb.remove_container(0);
    let prev = result.filter(|_| cx.version.has_check());
    let step = w.call(Verb::Del, Some(&att)).prev(prev.as_ref()).run()?;
    let reached = !spy_calls(&w, Verb::Del).is_empty();
    match (step.outcome.success(), reached) {
        (true, true) => pass("DEL reached the IPAM plugin and succeeded"),
        (ok, reached) => deviation(format!(
            "DEL {}; it {} the IPAM plugin",
            if ok { "succeeded" } else { "failed" },
            if reached { "reached" } else { "did not reach" }
        )),
    }
}

fn stderr_forwarded(cx: &Cx) -> Judged {
    let w = cx.spied_ipam_world(Some(spy_ipam(cx, json!({"spyStderr": "STUB-MARKER"}))))?;
    let a = w.add(&w.att())?;
    if a.last_step().outcome.stderr_text().contains("STUB-MARKER") {
        pass("the IPAM plugin's stderr came through")
    } else {
        deviation("the IPAM plugin's stderr did not reach the plugin's")
    }
}

/// The variables a verb carries for an attachment (all of them) or for a
/// network (GC, STATUS: only the plugin path).
fn carried(verb: Verb) -> &'static [&'static str] {
    if verb.per_attachment() {
        &[
            "CNI_CONTAINERID",
            "CNI_NETNS",
            "CNI_IFNAME",
            "CNI_ARGS",
            "CNI_PATH",
        ]
    } else {
        &["CNI_PATH"]
    }
}

fn same_env_every_verb(cx: &Cx) -> Judged {
    let w = cx.spied_ipam_world(None)?;
    let att = with_args(&w);
    let a = w.add(&att)?;
    a.require(ADD)?;
    let mut verbs = Vec::new();
    if cx.version.has_check() {
        a.check()?;
        verbs.push(Verb::Check);
    }
    a.del()?;
    verbs.push(Verb::Del);
    if cx.version.has_gc_and_status() {
        w.gc(&[])?;
        w.status()?;
        verbs.extend([Verb::Gc, Verb::Status]);
    }
    let mut problems = Vec::new();
    for verb in verbs {
        let expected = w.env_for(verb, verb.per_attachment().then_some(&att));
        let calls = spy_calls(&w, verb);
        let Some(seen) = calls.first().map(|r| &r["env"]) else {
            problems.push(format!("{verb} never reached the IPAM plugin"));
            continue;
        };
        for (k, v) in expected
            .iter()
            .filter(|(k, _)| carried(verb).contains(&k.as_str()))
        {
            if seen[k.as_str()].as_str().unwrap_or_default() != v {
                problems.push(format!(
                    "{verb} {k}: plugin got {v:?}, IPAM got {}",
                    seen[k.as_str()]
                ));
            }
        }
    }
    if problems.is_empty() {
        pass("the IPAM plugin got the plugin's environment on every verb")
    } else {
        deviation(problems.join("; "))
    }
}

fn ipam_failure_fails(cx: &Cx) -> Judged {
    let mut verbs = Vec::new();
    if cx.version.has_check() {
        verbs.push(Verb::Check);
    }
    verbs.push(Verb::Del);
    if cx.version.has_gc_and_status() {
        verbs.push(Verb::Gc);
    }
    let mut problems = Vec::new();
    for verb in verbs {
        let ipam = spy_ipam(cx, json!({"spyFailOn": [verb.as_str()]}));
        let w = cx.spied_ipam_world(Some(ipam))?;
        let a = w.add(&w.att())?;
        a.require(ADD)?;
        let run = match verb {
            Verb::Check => a.check()?,
            Verb::Del => a.del()?,
            _ => w.gc(&[])?,
        };
        let own = run.steps.iter().find(|s| s.plugin == cx.plugin);
        match own {
            Some(s) if !s.outcome.success() => {}
            Some(_) => problems.push(format!(
                "{verb} succeeded although its IPAM plugin failed it"
            )),
            None => problems.push(format!("{verb} never reached the plugin")),
        }
    }
    if problems.is_empty() {
        pass("CHECK, DEL and GC failed when the IPAM plugin failed them")
    } else {
        deviation(problems.join("; "))
    }
}
