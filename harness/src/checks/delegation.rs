//! Delegation (SPEC.md "Delegated plugins"): an interface plugin runs its
//! IPAM plugin from CNI_PATH with its own environment and config, for
//! every verb. The spy stands in for the IPAM plugin and records what it
//! was given.

use serde_json::{Value, json};

use super::case::World;
use super::{Case, CaseError, Check, Finding, INTERFACE, Level, check};
use crate::runtime::{ErrorObject, Runtime};
use crate::spy;

pub fn checks() -> Vec<Check> {
    vec![
        check("delegation.add", Level::Must, "SPEC.md#delegated-plugins (DLG-001, DLG-002)", "ADD runs the IPAM plugin found in CNI_PATH once, with the same CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH.", add).must_since("1.0.0").kinds(INTERFACE),
        check("delegation.same-config", Level::Should, "SPEC.md#delegated-plugins (DLG-003)", "The IPAM plugin receives the whole network config the plugin received.", same_config).kinds(INTERFACE),
        check("delegation.every-verb", Level::Must, "SPEC.md#delegated-plugins (DLG-006, DLG-008 to DLG-010)", "CHECK, DEL, GC and STATUS reach the IPAM plugin too, where the version has them.", every_verb).since("0.4.0").must_since("1.0.0").kinds(INTERFACE),
        check("delegation.missing-plugin", Level::Must, "SPEC.md#delegated-plugins (DLG-012)", "ADD fails with an error object when the IPAM plugin is not in CNI_PATH.", missing_plugin).kinds(INTERFACE),
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

fn with_log<'a>(case: &Case, w: &'a World) -> (Runtime<'a>, std::path::PathBuf) {
    let mut rt = case.runtime(w);
    let log = w.sb.dir().join("ipam-spy.log");
    rt.extra_env
        .push(("CNI_SPY_LOG".into(), log.display().to_string()));
    (rt, log)
}

const NO_SPY: &str = "the profile delegates no IPAM the spy could stand in for";

fn add(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_world(case, None)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let (mut rt, log) = with_log(case, &w);
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
    let (mut rt, log) = with_log(case, &w);
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
            "the plugin got {sent}, its IPAM plugin {received:?}"
        ))
    })
}

fn every_verb(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = spied_world(case, None)? else {
        return Ok(Finding::Skip(NO_SPY.into()));
    };
    let (mut rt, log) = with_log(case, &w);
    let att = w.att();
    if !case.add(&w, &mut rt, &att)?.succeeded() {
        case.del(&w, &mut rt, &att)?;
        return Ok(Finding::Skip("ADD failed (see delegation.add)".into()));
    }
    let mut verbs = vec!["CHECK", "DEL"];
    rt.check(&w.net, &att)?
        .steps
        .iter()
        .for_each(|s| case.note(s));
    case.del(&w, &mut rt, &att)?;
    if w.net.version_at_least("1.1.0") {
        verbs.extend(["GC", "STATUS"]);
        rt.gc(&w.net, &[])?.steps.iter().for_each(|s| case.note(s));
        rt.status(&w.net)?.steps.iter().for_each(|s| case.note(s));
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
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    case.del(&w, &mut rt, &att)?;
    let step = run.steps.last().expect("steps");
    Ok(
        match (
            step.outcome.success(),
            step.outcome.json().as_ref().and_then(ErrorObject::parse),
        ) {
            (true, _) => Finding::Deviation("ADD succeeded without its IPAM plugin".into()),
            (false, None) => Finding::Deviation("ADD failed without an error object".into()),
            (false, Some(e)) => Finding::Pass(format!("failed with code {}", e.code)),
        },
    )
}
