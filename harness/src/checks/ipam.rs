//! IPAM plugins: addresses are released and never handed out twice.

use serde_json::json;

use super::case::{first_address, pool_world};
use super::{Case, CaseError, Check, Finding, IPAM, Level, check};

pub fn checks() -> Vec<Check> {
    vec![
        check("ipam.release-reuse", Level::Must, "SPEC.md#del (IPM-002)", "In a one-address pool, ADD, DEL, then ADD for another container succeeds.", release_reuse).kinds(IPAM),
        check("ipam.exhaustion", Level::Must, "SPEC.md#add (IPM-003)", "In a one-address pool, a second ADD fails with an error object and never hands out the first address again.", exhaustion).kinds(IPAM),
        check("ipam.requested-ip", Level::Should, "CONVENTIONS.md#args-in-network-config (IPM-004)", "An address asked for with args.cni.ips is handed out, and args wins over CNI_ARGS IP.", requested_ip).since("0.3.0").kinds(IPAM),
    ]
}

fn release_reuse(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = pool_world(case, "10.89.0.0/30", 1)? else {
        return Ok(Finding::Skip("the profile has no subnet pool".into()));
    };
    let mut rt = case.runtime(&w);
    let (a, b) = (w.attachment(0, "c1", "eth0"), w.attachment(0, "c2", "eth0"));
    let first = case.add(&w, &mut rt, &a)?;
    let del = case.del(&w, &mut rt, &a)?;
    let second = case.add(&w, &mut rt, &b)?;
    case.del(&w, &mut rt, &b)?;
    Ok(
        match (first.succeeded(), del.succeeded(), second.succeeded()) {
            (true, true, true) => Finding::Pass("the released address was handed out again".into()),
            (false, ..) => Finding::Deviation("the first ADD failed".into()),
            (_, false, _) => Finding::Deviation("DEL failed".into()),
            (_, _, false) => Finding::Deviation("ADD after DEL found the pool still taken".into()),
        },
    )
}

fn exhaustion(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = pool_world(case, "10.89.0.0/30", 1)? else {
        return Ok(Finding::Skip("the profile has no subnet pool".into()));
    };
    let mut rt = case.runtime(&w);
    let (a, b) = (w.attachment(0, "c1", "eth0"), w.attachment(0, "c2", "eth0"));
    let first = case.add(&w, &mut rt, &a)?;
    let second = case.add(&w, &mut rt, &b)?;
    case.del(&w, &mut rt, &b)?;
    case.del(&w, &mut rt, &a)?;
    let step = second.steps.last().expect("steps");
    let taken = first.result.as_ref().and_then(first_address);
    Ok(if !first.succeeded() {
        Finding::Skip("the first ADD failed (see add.succeeds)".into())
    } else if second.succeeded() {
        let twice = second.result.as_ref().and_then(first_address) == taken;
        Finding::Deviation(if twice {
            format!(
                "{} was handed out twice",
                super::say::or(taken, "an address")
            )
        } else {
            "a one-address pool gave two addresses".into()
        })
    } else if step.outcome.error().is_none() {
        Finding::Deviation("the exhausted ADD failed without an error object".into())
    } else {
        Finding::Pass("refused with an error object".into())
    })
}

fn requested_ip(case: &mut Case) -> Result<Finding, CaseError> {
    if !case.profile.has_pool() {
        return Ok(Finding::Skip("the profile has no subnet pool".into()));
    }
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    let mut req = w.request(Some(&att), None);
    req["args"] = json!({"cni": {"ips": ["10.88.0.77"]}});
    let step = case.call(
        &rt,
        "ADD",
        Some(&att),
        req.clone(),
        &[("CNI_ARGS", Some("IgnoreUnknown=1;IP=10.88.0.99"))],
    )?;
    let got = step.outcome.json().as_ref().and_then(first_address);
    case.call(&rt, "DEL", Some(&att), req, &[])?;
    Ok(match got.as_deref() {
        Some("10.88.0.77/24") => Finding::Pass("args.cni.ips honoured over CNI_ARGS".into()),
        other => Finding::Deviation(format!(
            "asked for 10.88.0.77 (and CNI_ARGS 10.88.0.99), got {}",
            super::say::or(other, "no address")
        )),
    })
}
