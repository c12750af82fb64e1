//! ADD and CHECK: the result against the schema and against the kernel.

use serde_json::{Value, json};

use super::case::World;
use super::{ATTACHING, Case, CaseError, Check, Finding, INTERFACE, Level, check};
use crate::profile::PluginKind;
use crate::runtime::{Attachment, ErrorObject, Runtime, Step};
use crate::sandbox::Scope;
use crate::schema::{self, Kind};

pub fn checks() -> Vec<Check> {
    vec![
        check("add.succeeds", Level::Must, "SPEC.md#add (ADD-001, ADD-021)", "ADD exits 0 and prints exactly one JSON result, not an error object.", succeeds),
        check("add.version-echo", Level::Must, "SPEC.md#add (ADD-002)", "The result's cniVersion is the one requested.", version_echo).must_since("0.4.0"),
        check("add.schema", Level::Must, "SPEC.md#success (ADD-003 to ADD-007, ADD-017, IPM-001)", "The result matches the schema of the requested version (CIDRs, IPs, MACs, version fields, interface indexes; abbreviated for IPAM).", result_schema),
        check("add.interface-entry", Level::Should, "SPEC.md#success (ADD-010)", "The result lists CNI_IFNAME with a non-empty sandbox.", interface_entry).since("0.3.0").kinds(INTERFACE),
        check("add.link-exists", Level::Must, "SPEC.md#add (ADD-011)", "After ADD a link named CNI_IFNAME exists in the container.", link_exists).kinds(INTERFACE),
        check("add.kernel-matches", Level::Should, "SPEC.md#success (ADD-012)", "Every reported address is on the interface it points to, with the reported MAC and MTU, and every reported route is present.", kernel_matches).kinds(INTERFACE),
        check("add.existing-ifname", Level::Must, "SPEC.md#add (ADD-013)", "ADD fails when CNI_IFNAME already exists in the container, and leaves that link alone.", existing_ifname).must_since("1.0.0").kinds(INTERFACE),
        check("add.after-del", Level::Must, "SPEC.md#lifecycle (ADD-019)", "ADD, DEL, then ADD again with the same attachment succeeds.", after_del),
        check("add.failure-reported", Level::Must, "SPEC.md#error (ADD-020)", "When its IPAM plugin fails, ADD fails with an error object.", failure_reported).kinds(ATTACHING),
        check("check.passes-after-add", Level::Must, "SPEC.md#check (CHK-001)", "CHECK right after ADD, with its result as prevResult, succeeds.", check_passes).since("0.4.0"),
        check("check.no-output", Level::Should, "SPEC.md#check (CHK-002)", "A successful CHECK prints nothing.", check_silent).since("0.4.0"),
        check("check.detects-missing-link", Level::Should, "SPEC.md#check (CHK-003)", "CHECK fails once the interface is gone.", check_missing_link).since("0.4.0").kinds(INTERFACE),
        check("check.detects-missing-address", Level::Should, "SPEC.md#check (CHK-004)", "CHECK fails once a reported address is gone.", check_missing_address).since("0.4.0").kinds(INTERFACE),
        check("check.tolerates-additions", Level::Must, "SPEC.md#check (CHK-005)", "CHECK succeeds when later plugins added routes, interfaces and addresses.", check_tolerates).since("0.4.0"),
        check("check.refused-before-040", Level::May, "SPEC.md#check (CHK-006)", "CHECK with a config older than 0.4.0 fails with code 1.", check_refused).until("0.3.1"),
    ]
}

/// ADD through the list: the world, the runtime pieces and the target's step.
struct Added {
    w: World,
    att: Attachment,
    step: Step,
    result: Option<Value>,
}

fn added(case: &mut Case) -> Result<Added, CaseError> {
    let w = case.world()?;
    let att = w.att();
    let (step, result) = {
        let mut rt = case.runtime(&w);
        let run = case.add(&w, &mut rt, &att)?;
        let step = run.steps.last().cloned().expect("a list has plugins");
        (step, run.result.clone())
    };
    Ok(Added {
        w,
        att,
        step,
        result,
    })
}

impl Added {
    /// DEL through the list, with this runtime's cache rebuilt.
    fn clean(&self, case: &mut Case) -> Result<(), CaseError> {
        let rt = case.runtime(&self.w);
        for i in (0..self.w.net.plugins.len()).rev() {
            let req = self.w.net.request(i, Some(&self.att), self.result.as_ref());
            rt.call(self.w.net.plugin_type(i), "DEL", req, Some(&self.att))?;
        }
        Ok(())
    }

    fn target_check(
        &self,
        case: &mut Case,
        rt: &Runtime,
        prev: Option<&Value>,
    ) -> Result<Step, CaseError> {
        case.call(
            rt,
            "CHECK",
            Some(&self.att),
            self.w.request(Some(&self.att), prev),
            &[],
        )
    }
}

fn finish(case: &mut Case, a: &Added, f: Finding) -> Result<Finding, CaseError> {
    a.clean(case)?;
    Ok(f)
}

fn succeeds(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let doc = a.step.outcome.json().filter(Value::is_object);
    let f = match (&doc, a.step.outcome.success()) {
        (_, false) => Finding::Deviation(format!("ADD failed: {}", a.step.outcome.exit)),
        (None, true) => Finding::Deviation("ADD exited 0 without one JSON object on stdout".into()),
        (Some(d), true) if ErrorObject::parse(d).is_some() => {
            Finding::Deviation("ADD exited 0 but printed an error object".into())
        }
        (Some(_), true) => Finding::Pass("one JSON result".into()),
    };
    finish(case, &a, f)
}

fn version_echo(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let got = a
        .result
        .as_ref()
        .and_then(|r| r.get("cniVersion")?.as_str().map(str::to_string));
    let f = match got {
        Some(v) if v == case.version => Finding::Pass(format!("cniVersion {v}")),
        other if a.step.outcome.success() => Finding::Deviation(format!(
            "requested {}, result says {}",
            case.version,
            super::say::or(other, "nothing (no cniVersion)")
        )),
        _ => Finding::Skip("ADD failed (see add.succeeds)".into()),
    };
    finish(case, &a, f)
}

fn result_schema(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let Some(doc) = a.step.outcome.json().filter(|_| a.step.outcome.success()) else {
        return finish(
            case,
            &a,
            Finding::Skip("ADD failed (see add.succeeds)".into()),
        );
    };
    let kind = if case.kind() == PluginKind::Ipam {
        Kind::IpamResult
    } else {
        Kind::Result
    };
    let f = match schema::validate(kind, &case.version, &doc) {
        Ok(v) if v.is_empty() => Finding::Pass(format!("valid {kind:?} for {}", case.version)),
        Ok(v) => Finding::Deviation(
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(e) => Finding::Deviation(e.to_string()),
    };
    finish(case, &a, f)
}

/// The result's entry for CNI_IFNAME and its index.
fn own_interface<'r>(result: &'r Value, ifname: &str) -> Option<(usize, &'r Value)> {
    result
        .get("interfaces")?
        .as_array()?
        .iter()
        .enumerate()
        .find(|(_, i)| i["name"] == ifname)
}

fn interface_entry(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let f = match a
        .result
        .as_ref()
        .and_then(|r| own_interface(r, &a.att.ifname))
    {
        Some((_, i))
            if i.get("sandbox")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()) =>
        {
            Finding::Pass("listed with its sandbox".into())
        }
        Some(_) => Finding::Deviation(format!("{} is listed without a sandbox", a.att.ifname)),
        None if a.step.outcome.success() => {
            Finding::Deviation(format!("the result does not list {}", a.att.ifname))
        }
        None => Finding::Skip("ADD failed (see add.succeeds)".into()),
    };
    finish(case, &a, f)
}

fn container_links(w: &World) -> Result<Value, CaseError> {
    let text =
        w.sb.ip(Scope::Container(0), &["-j", "-d", "link", "show"])?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn link_exists(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let links = container_links(&a.w)?;
    let found = links
        .as_array()
        .into_iter()
        .flatten()
        .any(|l| l["ifname"] == a.att.ifname);
    let f = match (found, a.step.outcome.success()) {
        (true, _) => Finding::Pass(format!("{} exists", a.att.ifname)),
        (false, true) => Finding::Deviation(format!(
            "ADD succeeded but no link {} is in the container",
            a.att.ifname
        )),
        (false, false) => Finding::Skip("ADD failed (see add.succeeds)".into()),
    };
    finish(case, &a, f)
}

/// (address/prefix) pairs on `ifname` in the container.
fn addresses_on(w: &World, ifname: &str) -> Result<Vec<String>, CaseError> {
    let text =
        w.sb.ip(Scope::Container(0), &["-j", "addr", "show", "dev", ifname])?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| {
            Some(format!(
                "{}/{}",
                a["local"].as_str()?,
                a["prefixlen"].as_u64()?
            ))
        })
        .collect())
}

/// Where the kernel disagrees with the result, if anywhere.
fn disagreements(w: &World, result: &Value, ifname: &str) -> Result<Vec<String>, CaseError> {
    let mut out = Vec::new();
    let links = container_links(w)?;
    let Some(link) = links
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["ifname"] == ifname)
    else {
        return Ok(vec![format!("no link {ifname}")]);
    };
    let present = addresses_on(w, ifname)?;
    let mut reported: Vec<String> = Vec::new();
    match own_interface(result, ifname) {
        Some((idx, iface)) => {
            if let Some(mac) = iface.get("mac").and_then(Value::as_str) {
                if !link["address"]
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(mac))
                {
                    out.push(format!("MAC: result {mac}, kernel {}", link["address"]));
                }
            }
            if let Some(mtu) = iface.get("mtu").and_then(Value::as_u64) {
                if link["mtu"].as_u64() != Some(mtu) {
                    out.push(format!("MTU: result {mtu}, kernel {}", link["mtu"]));
                }
            }
            for ip in result
                .get("ips")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if ip.get("interface").and_then(Value::as_u64) == Some(idx as u64) {
                    reported.extend(ip["address"].as_str().map(str::to_string));
                }
            }
        }
        // 0.1.0/0.2.0: ip4/ip6 belong to CNI_IFNAME.
        None => reported.extend(
            ["ip4", "ip6"]
                .iter()
                .filter_map(|k| result.get(*k)?.get("ip")?.as_str().map(str::to_string)),
        ),
    }
    for addr in &reported {
        if !present.contains(addr) {
            out.push(format!(
                "address {addr} is not on {ifname} (it has {})",
                super::say::list(&present)
            ));
        }
    }
    let routes4 = w.sb.ip(
        Scope::Container(0),
        &["-4", "route", "show", "table", "all"],
    )?;
    let routes6 = w.sb.ip(
        Scope::Container(0),
        &["-6", "route", "show", "table", "all"],
    )?;
    let mut routes: Vec<Value> = result
        .get("routes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for k in ["ip4", "ip6"] {
        routes.extend(
            result
                .get(k)
                .and_then(|x| x.get("routes")?.as_array().cloned())
                .unwrap_or_default(),
        );
    }
    for r in routes {
        let dst = r["dst"].as_str().unwrap_or_default();
        let shown = if dst == "0.0.0.0/0" || dst == "::/0" {
            "default".to_string()
        } else {
            dst.to_string()
        };
        let table = if dst.contains(':') {
            &routes6
        } else {
            &routes4
        };
        let found = table.lines().any(|l| {
            l.split_whitespace().next() == Some(shown.as_str())
                && r.get("gw")
                    .and_then(Value::as_str)
                    .is_none_or(|gw| l.contains(&format!("via {gw} ")))
        });
        if !found {
            out.push(format!("route {r} is missing"));
        }
    }
    Ok(out)
}

fn kernel_matches(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let Some(result) = a.result.clone().filter(|_| a.step.outcome.success()) else {
        return finish(
            case,
            &a,
            Finding::Skip("ADD failed (see add.succeeds)".into()),
        );
    };
    let issues = disagreements(&a.w, &result, &a.att.ifname)?;
    let f = if issues.is_empty() {
        Finding::Pass("the kernel holds what the result says".into())
    } else {
        Finding::Deviation(issues.join("; "))
    };
    finish(case, &a, f)
}

fn existing_ifname(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    w.sb.ip(
        Scope::Container(0),
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer",
        ],
    )?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    let links = container_links(&w)?;
    let kept = links
        .as_array()
        .into_iter()
        .flatten()
        .any(|l| l["ifname"] == "eth0" && l["linkinfo"]["info_kind"] == "veth");
    case.del(&w, &mut rt, &att)?;
    Ok(match (run.succeeded(), kept) {
        (true, _) => Finding::Deviation("ADD succeeded although eth0 already existed".into()),
        (false, false) => {
            Finding::Deviation("ADD failed but the existing eth0 was changed or removed".into())
        }
        (false, true) => Finding::Pass("refused, existing link untouched".into()),
    })
}

fn after_del(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let mut rt = case.runtime(&w);
    let att = w.att();
    let first = case.add(&w, &mut rt, &att)?;
    case.del(&w, &mut rt, &att)?;
    let again = case.add(&w, &mut rt, &att)?;
    case.del(&w, &mut rt, &att)?;
    Ok(match (first.succeeded(), again.succeeded()) {
        (false, _) => Finding::Skip("the first ADD failed (see add.succeeds)".into()),
        (true, true) => Finding::Pass("ADD after DEL succeeded".into()),
        (true, false) => Finding::Deviation("ADD after DEL failed".into()),
    })
}

/// The target's config with its IPAM replaced by a failing spy; `None`
/// when the profile has no IPAM section or no spy is available.
pub fn failing_ipam_world(case: &Case) -> Result<Option<World>, CaseError> {
    if case.spy_dir.is_none()
        || !case.profile.config.contains("\"ipam\"")
        || case.kind() == PluginKind::Ipam
    {
        return Ok(None);
    }
    let mut w = case.world()?;
    let t = w.target();
    w.net.plugins[t].insert(
        "ipam".into(),
        json!({"type": crate::spy::NAME, "spyFailOn": ["ADD"]}),
    );
    Ok(Some(w))
}

fn failure_reported(case: &mut Case) -> Result<Finding, CaseError> {
    let Some(w) = failing_ipam_world(case)? else {
        return Ok(Finding::Skip(
            "the profile delegates no IPAM that could be made to fail".into(),
        ));
    };
    let mut rt = case.runtime(&w);
    let att = w.att();
    let run = case.add(&w, &mut rt, &att)?;
    let step = run.steps.last().expect("steps");
    let err = step.outcome.error();
    case.del(&w, &mut rt, &att)?;
    Ok(match (step.outcome.success(), err) {
        (true, _) => Finding::Deviation("ADD succeeded although its IPAM plugin failed".into()),
        (false, None) => Finding::Deviation("ADD failed without an error object on stdout".into()),
        (false, Some(e)) => Finding::Pass(format!("failed with code {}", e.code)),
    })
}

fn check_passes(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    if !a.step.outcome.success() {
        return finish(
            case,
            &a,
            Finding::Skip("ADD failed (see add.succeeds)".into()),
        );
    }
    let rt = case.runtime(&a.w);
    let step = a.target_check(case, &rt, a.result.as_ref())?;
    let f = if step.outcome.success() {
        Finding::Pass("CHECK succeeded".into())
    } else {
        Finding::Deviation(format!(
            "CHECK right after ADD failed: {}",
            step.outcome.stdout_text().trim()
        ))
    };
    finish(case, &a, f)
}

fn check_silent(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let rt = case.runtime(&a.w);
    let step = a.target_check(case, &rt, a.result.as_ref())?;
    let f = match (step.outcome.success(), step.outcome.stdout.is_empty()) {
        (false, _) => Finding::Skip("CHECK failed (see check.passes-after-add)".into()),
        (true, true) => Finding::Pass("nothing printed".into()),
        (true, false) => Finding::Deviation(format!(
            "CHECK printed {}",
            step.outcome.stdout_text().trim()
        )),
    };
    finish(case, &a, f)
}

fn check_after(case: &mut Case, damage: &[&str], what: &str) -> Result<Finding, CaseError> {
    let a = added(case)?;
    if !a.step.outcome.success() {
        return finish(
            case,
            &a,
            Finding::Skip("ADD failed (see add.succeeds)".into()),
        );
    }
    let mut args: Vec<String> = damage.iter().map(|s| s.to_string()).collect();
    if what == "address" {
        let Some(addr) = addresses_on(&a.w, &a.att.ifname)?
            .into_iter()
            .find(|x| !x.starts_with("fe80"))
        else {
            return finish(
                case,
                &a,
                Finding::Skip("the interface has no address to remove".into()),
            );
        };
        args = vec![
            "addr".into(),
            "del".into(),
            addr,
            "dev".into(),
            a.att.ifname.clone(),
        ];
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    a.w.sb.ip(Scope::Container(0), &refs)?;
    let rt = case.runtime(&a.w);
    let step = a.target_check(case, &rt, a.result.as_ref())?;
    let f = match (step.outcome.success(), step.outcome.error()) {
        (true, _) => Finding::Deviation(format!("CHECK succeeded after the {what} was removed")),
        (false, None) => Finding::Deviation("CHECK failed without an error object".into()),
        (false, Some(e)) => Finding::Pass(format!("CHECK failed with code {}", e.code)),
    };
    finish(case, &a, f)
}

fn check_missing_link(case: &mut Case) -> Result<Finding, CaseError> {
    check_after(case, &["link", "del", "eth0"], "link")
}

fn check_missing_address(case: &mut Case) -> Result<Finding, CaseError> {
    check_after(case, &[], "address")
}

fn check_tolerates(case: &mut Case) -> Result<Finding, CaseError> {
    let a = added(case)?;
    let Some(mut prev) = a.result.clone().filter(|_| a.step.outcome.success()) else {
        return finish(
            case,
            &a,
            Finding::Skip("ADD failed (see add.succeeds)".into()),
        );
    };
    // What later plugins may add: a route in the container, and an
    // unrelated interface with its own address and route in prevResult.
    a.w.sb.ip(
        Scope::Container(0),
        &["route", "add", "blackhole", "198.51.100.0/24"],
    )?;
    // Only list-shaped results (0.3.0+) can carry another interface.
    if a.w.net.version_at_least("0.3.0") {
        let mut interfaces = prev["interfaces"].as_array().cloned().unwrap_or_default();
        let idx = interfaces.len();
        interfaces.push(json!({"name": "hostdummy0", "mac": "c2:00:00:00:00:aa"}));
        prev["interfaces"] = Value::Array(interfaces);
        let mut ip = json!({"address": "192.0.2.99/24", "interface": idx});
        if !a.w.net.version_at_least("1.0.0") {
            ip["version"] = json!("4");
        }
        let mut ips = prev["ips"].as_array().cloned().unwrap_or_default();
        ips.push(ip);
        prev["ips"] = Value::Array(ips);
        let mut routes = prev["routes"].as_array().cloned().unwrap_or_default();
        routes.push(json!({"dst": "203.0.113.0/24", "gw": "192.0.2.1"}));
        prev["routes"] = Value::Array(routes);
    }
    let rt = case.runtime(&a.w);
    let step = a.target_check(case, &rt, Some(&prev))?;
    let f = if step.outcome.success() {
        Finding::Pass("CHECK tolerated later additions".into())
    } else {
        Finding::Deviation(format!(
            "CHECK failed on additions by later plugins: {}",
            step.outcome.stdout_text().trim()
        ))
    };
    finish(case, &a, f)
}

fn check_refused(case: &mut Case) -> Result<Finding, CaseError> {
    let w = case.world()?;
    let rt = case.runtime(&w);
    let att = w.att();
    let step = case.call(&rt, "CHECK", Some(&att), w.request(Some(&att), None), &[])?;
    let code = step.outcome.error_code();
    Ok(match (step.outcome.success(), code) {
        (false, Some(1)) => Finding::Pass("refused with code 1".into()),
        (ok, code) => Finding::Deviation(format!(
            "CHECK at {}: {}",
            case.version,
            if ok {
                "success".to_string()
            } else {
                super::say::code(code)
            }
        )),
    })
}
