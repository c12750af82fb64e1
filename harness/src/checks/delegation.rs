//! Delegation (SPEC.md "Delegated plugins"): an interface plugin runs its
//! IPAM plugin from CNI_PATH with its own environment and config, for
//! every verb. The spy stands in for the IPAM plugin and records what it
//! was given.

use serde_json::{Value, json};

use super::case::World;
use super::{Case, CaseError, Check, Finding, INTERFACE, Level, check};
use crate::spy;

pub fn checks() -> Vec<Check> {
    vec![
        check("delegation.add", Level::Must, "SPEC.md#delegated-plugins (DLG-001, DLG-002)", "ADD runs the IPAM plugin found in CNI_PATH once, with the same CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH.", add).must_since("1.0.0").kinds(INTERFACE),
        check("delegation.same-config", Level::Should, "SPEC.md#delegated-plugins (DLG-003)", "The IPAM plugin receives the whole network config the plugin received.", same_config).kinds(INTERFACE),
        check("delegation.every-verb", Level::Must, "SPEC.md#delegated-plugins (DLG-006, DLG-008 to DLG-010)", "CHECK, DEL, GC and STATUS reach the IPAM plugin too, where the version has them.", every_verb).since("0.4.0").must_since("1.0.0").kinds(INTERFACE),
        check("delegation.missing-plugin", Level::Must, "SPEC.md#delegated-plugins (DLG-012)", "ADD fails with an error object when the IPAM plugin is not in CNI_PATH.", missing_plugin).kinds(INTERFACE),
        check("delegation.result-carried", Level::Should, "SPEC.md#add (DLG-004, ADD-R8)", "The IPAM plugin's addresses (with interface indexes), routes and dns reach the plugin's result.", result_carried).since("0.3.0").kinds(INTERFACE),
        check("delegation.error-carried", Level::Should, "SPEC.md#delegated-plugins (DLG-005, D-5)", "When the IPAM plugin fails ADD with code 11, the plugin fails with code 11 and calls the IPAM plugin's DEL.", error_carried).kinds(INTERFACE),
        check("delegation.del-without-netns", Level::Should, "SPEC.md#del (DLG-007)", "With the namespace gone, DEL still reaches the IPAM plugin and succeeds.", del_without_netns).kinds(INTERFACE),
        check("delegation.stderr", Level::Should, "SPEC.md#delegated-plugins (DLG-011, D-3)", "What the IPAM plugin writes to stderr shows in the plugin's stderr.", stderr_forwarded).since("1.0.0").kinds(INTERFACE),
    ]
}

/// The IPAM result the spy answers with, in `version`'s shape.
fn ipam_result(version: &str, w: &World) -> Value {
    let address = format!(
        "{}5/24",
        w.fill.gateway().trim_end_matches(char::is_numeric)
    );
    let gateway = w.fill.gateway();
    match version {
        "0.1.0" | "0.2.0" => json!({"ip4": {"ip": address, "gateway": gateway}, "dns": {}}),
        "0.3.0" | "0.3.1" | "0.4.0" => {
            json!({"ips": [{"version": "4", "address": address, "gateway": gateway}], "dns": {}})
        }
        _ => json!({"ips": [{"address": address, "gateway": gateway}], "dns": {}}),
    }
}

/// A world whose plugin delegates IPAM to the spy; `None` when the
/// profile has no IPAM section or no spy is available.
fn spied_world(case: &Case, ipam: Option<Value>) -> Result<Option<World>, CaseError> {
    if case.spy_dir.is_none() || !case.profile.config.contains("\"ipam\"") {
        return Ok(None);
    }
    let mut w = case.world()?;
    let t = w.target();
    let ipam = ipam
        .unwrap_or_else(|| json!({"type": spy::NAME, "spyResult": ipam_result(&case.version, &w)}));
    w.net.plugins[t].insert("ipam".into(), ipam);
    Ok(Some(w))
}

const NO_SPY: &str = "the profile delegates no IPAM the spy could stand in for";

fn add(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_world(case, None)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let (mut rt, log) = (case.spy_runtime(&w), w.spy_log());
    let mut att = w.att();
    att.args = vec![
        ("IgnoreUnknown".into(), "1".into()),
        ("K8S_POD_NAME".into(), "p".into()),
    ];
    let run = case.add(&w, &mut rt, &att)?;
    let expected = rt.env_for("ADD", Some(&att));
    case.del(&w, &mut rt, &att)?;
    let adds: Vec<Value> = spy::read_log(&log)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["command"] == "ADD")
        .collect();
    if adds.len() != 1 {
        return Ok(Finding::Deviation(format!(
            "the IPAM plugin ran {} times for one ADD",
            adds.len()
        )));
    }
    let seen = &adds[0]["env"];
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
    Ok(if !differing.is_empty() {
        Finding::Deviation(differing.join("; "))
    } else if !run.succeeded() {
        Finding::Deviation("ADD failed although its IPAM plugin answered".into())
    } else {
        Finding::Pass("the IPAM plugin ran once with the plugin's environment".into())
    })
}

fn same_config(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_world(case, None)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let (mut rt, log) = (case.spy_runtime(&w), w.spy_log());
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    case.del(&w, &mut rt, &att)?;
    let sent = &run.steps[w.target()].request;
    let received = spy::read_log(&log)
        .unwrap_or_default()
        .into_iter()
        .find(|r| r["command"] == "ADD")
        .map(|r| r["stdin"].clone());
    Ok(if received.as_ref() == Some(sent) {
        Finding::Pass("the IPAM plugin got the same config".into())
    } else {
        Finding::Deviation(format!(
            "the plugin got {sent}, its IPAM plugin {}",
            super::say::or(received, "was not called")
        ))
    })
}

fn every_verb(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_world(case, None)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let (mut rt, log) = (case.spy_runtime(&w), w.spy_log());
    let att = w.att();
    if !case.add(&w, &mut rt, &att)?.succeeded() {
        case.del(&w, &mut rt, &att)?;
        return Ok(Finding::Skip("ADD failed (see delegation.add)".into()));
    }
    let mut verbs = vec!["CHECK", "DEL"];
    case.noted(rt.check(&w.net, &att)?);
    case.del(&w, &mut rt, &att)?;
    if w.net.version_at_least("1.1.0") {
        verbs.extend(["GC", "STATUS"]);
        case.noted(rt.gc(&w.net, &[])?);
        case.noted(rt.status(&w.net)?);
    }
    let seen: Vec<String> = spy::read_log(&log)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["command"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&str> = verbs
        .iter()
        .copied()
        .filter(|v| !seen.iter().any(|s| s == v))
        .collect();
    Ok(if missing.is_empty() {
        Finding::Pass(format!("{} reached the IPAM plugin", verbs.join(", ")))
    } else {
        Finding::Deviation(format!(
            "never forwarded to the IPAM plugin: {}",
            missing.join(", ")
        ))
    })
}

fn missing_plugin(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_world(case, Some(json!({"type": "cni-conformance-no-such-ipam"})))? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let run = case.add_then_del(&w)?;
    let step = run.steps.last().expect("steps");
    Ok(match (step.outcome.success(), step.outcome.error()) {
        (true, _) => Finding::Deviation("ADD succeeded without its IPAM plugin".into()),
        (false, None) => Finding::Deviation("ADD failed without an error object".into()),
        (false, Some(e)) => Finding::Pass(format!("failed with code {}", e.code)),
    })
}

/// A spy IPAM section with `extra` options merged in.
fn spy_ipam(case: &Case, w: &World, extra: Value) -> Value {
    let mut ipam = json!({"type": spy::NAME, "spyResult": ipam_result(&case.version, w)});
    if let (Some(o), Some(e)) = (ipam.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    ipam
}

/// A world whose spy IPAM takes `extra` options (built in two steps: the
/// IPAM result depends on the world's fill).
fn spied_with(case: &Case, extra: Value) -> Result<Option<World>, CaseError> {
    let Some(mut w) = spied_world(case, None)? else {
        return Ok(None);
    };
    let t = w.target();
    let ipam = spy_ipam(case, &w, extra);
    w.net.plugins[t].insert("ipam".into(), ipam);
    Ok(Some(w))
}

fn result_carried(case: &mut Case) -> Result<Finding, CaseError> {
    let extra = json!({"spyResult": {
        "ips": [{"version": "4", "address": "10.88.0.5/24", "gateway": "10.88.0.1"},
                {"version": "4", "address": "10.88.0.6/24"}],
        "routes": [{"dst": "192.0.2.0/24", "gw": "10.88.0.1"}],
        "dns": {"nameservers": ["10.88.0.53"]}}});
    let Some(mut w) = spied_with(case, extra)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    if case.version.starts_with("1.") {
        // 1.x results have no version field.
        let t = w.target();
        let mut ipam = w.net.plugins[t]["ipam"].clone();
        for ip in ipam["spyResult"]["ips"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            ip.as_object_mut().map(|o| o.remove("version"));
        }
        w.net.plugins[t].insert("ipam".into(), ipam);
    }
    let run = case.add_then_del(&w)?;
    let ok = run.succeeded();
    let Some(r) = run.result.filter(|_| ok) else {
        // Not a deviation: no sentence obliges a plugin to accept every
        // IPAM result (delegation.add judges the plain one).
        return Ok(Finding::Skip(
            "ADD failed with this check's IPAM result (two addresses, a route, DNS), \
             so what it carries cannot be judged; the plugin's answer is in the evidence"
                .into(),
        ));
    };
    let count = r["interfaces"].as_array().map_or(0, Vec::len) as u64;
    let ips: Vec<&Value> = r["ips"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let addresses: Vec<&str> = ips.iter().filter_map(|i| i["address"].as_str()).collect();
    let mut missing = Vec::new();
    for a in ["10.88.0.5/24", "10.88.0.6/24"] {
        if !addresses.contains(&a) {
            missing.push(format!("address {a}"));
        }
    }
    if ips
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
        .any(|x| x == "10.88.0.53")
    {
        missing.push("nameserver 10.88.0.53".into());
    }
    Ok(if missing.is_empty() {
        Finding::Pass("the IPAM result reached the plugin's result".into())
    } else {
        Finding::Deviation(format!("the result lacks {}", missing.join(", ")))
    })
}

fn error_carried(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_with(case, json!({"spyFailOn": ["ADD"], "spyFailCode": 11}))? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let (mut rt, log) = (case.spy_runtime(&w), w.spy_log());
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    let step = run.steps.last().expect("steps").clone();
    // What the plugin did by itself, before any DEL from the runtime.
    let called_del = spy::read_log(&log)
        .unwrap_or_default()
        .iter()
        .any(|r| r["command"] == "DEL");
    case.del(&w, &mut rt, &att)?;
    let code = step.outcome.error_code();
    Ok(match (step.outcome.success(), code, called_del) {
        (true, ..) => Finding::Deviation("ADD succeeded although its IPAM plugin failed".into()),
        (false, Some(11), true) => Finding::Pass("code 11 passed on, IPAM DEL called".into()),
        (false, code, del) => Finding::Deviation(format!(
            "{} (IPAM said code 11); the plugin called IPAM DEL: {}",
            super::say::code(code),
            if del { "yes" } else { "no" }
        )),
    })
}

fn del_without_netns(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(mut w) = spied_world(case, None)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let att = w.att();
    let log = w.spy_log();
    let result = {
        let mut rt = case.spy_runtime(&w);
        let run = case.add(&w, &mut rt, &att)?;
        if !run.succeeded() {
            case.del(&w, &mut rt, &att)?;
            return Ok(Finding::Skip("ADD failed (see delegation.add)".into()));
        }
        run.result
    };
    w.sb.remove_container(0);
    let rt = case.spy_runtime(&w);
    let prev = if w.net.version_at_least("0.4.0") {
        result.as_ref()
    } else {
        None
    };
    let step = case.call(&rt, "DEL", Some(&att), w.request(Some(&att), prev), &[])?;
    let reached = spy::read_log(&log)
        .unwrap_or_default()
        .iter()
        .any(|r| r["command"] == "DEL");
    Ok(match (step.outcome.success(), reached) {
        (true, true) => Finding::Pass("DEL reached the IPAM plugin and succeeded".into()),
        (ok, reached) => Finding::Deviation(format!(
            "DEL succeeded: {ok}; reached the IPAM plugin: {reached}"
        )),
    })
}

fn stderr_forwarded(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_with(case, json!({"spyStderr": "STUB-MARKER"}))? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let run = case.add_then_del(&w)?;
    let step = run.steps.last().expect("steps");
    Ok(if step.outcome.stderr_text().contains("STUB-MARKER") {
        Finding::Pass("the IPAM plugin's stderr came through".into())
    } else {
        Finding::Deviation("the IPAM plugin's stderr did not reach the plugin's".into())
    })
}
