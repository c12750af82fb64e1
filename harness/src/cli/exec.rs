//! `cni-conformance exec`: a cnitool that needs no set-up. It builds a
//! sandbox with the master the config names, runs one verb (a list runs as
//! a chain), and prints what the plugins answered and what changed in the
//! kernel.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use cni_conformance::observe;
use cni_conformance::runtime::{Attachment, ChainRun, NetworkConfig, Runtime, Step};
use cni_conformance::sandbox::{MasterKind, Sandbox, SandboxOptions, Scope};
use cni_conformance::schema::{self, Kind};
use cni_conformance::spec::Verb;
use serde_json::Value;

pub(crate) struct ExecArgs {
    pub verb: Verb,
    pub config: PathBuf,
    pub cni_path: Vec<PathBuf>,
    pub ifname: String,
    pub container_id: String,
    pub keep: bool,
    pub peer: bool,
    pub timeout: Duration,
}

/// The master a configuration names (the first plugin with `master`).
fn master_of(net: &NetworkConfig) -> Option<String> {
    net.plugins
        .iter()
        .find_map(|p| p.get("master")?.as_str().map(str::to_string))
}

fn print_run(run: &ChainRun, version: &str) {
    for step in &run.steps {
        out!(
            "-- {} {}: {} in {:.1} ms",
            step.plugin,
            step.verb,
            step.outcome.exit,
            step.outcome.duration.as_secs_f64() * 1000.0
        );
        let out = step.outcome.stdout.text();
        if !out.trim().is_empty() {
            out!("{}", out.trim_end());
            print_schema_check(step, version);
        }
        let err = step.outcome.stderr.text();
        if !err.trim().is_empty() {
            out!(
                "   stderr: {}",
                err.trim_end().replace('\n', "\n   stderr: ")
            );
        }
    }
}

/// Every output is checked against the schema of what it should be.
fn print_schema_check(step: &Step, version: &str) {
    let kind = match (step.verb, step.outcome.success()) {
        (_, false) => Kind::Error,
        (Verb::Add, true) => Kind::Result,
        (Verb::Version, true) => Kind::Version,
        (verb, true) => {
            out!("   note: {verb} printed something; the spec defines no output for it");
            return;
        }
    };
    let Some(doc) = step.outcome.json() else {
        out!("   schema: stdout is not one JSON document");
        return;
    };
    match schema::validate(kind, version, &doc) {
        Ok(v) if v.is_empty() => out!("   schema: valid {kind:?} for {version}"),
        Ok(v) => v.iter().for_each(|x| out!("   schema: {x}")),
        Err(e) => out!("   schema: {e}"),
    }
}

/// IPv4 addresses and the first gateway of a result, any version.
fn ipv4_of(result: &Value) -> (Vec<String>, Option<String>) {
    let mut addrs = Vec::new();
    let mut gateway = None;
    let entries: Vec<&Value> = match result.get("ips").and_then(Value::as_array) {
        Some(ips) => ips.iter().collect(),
        None => result.get("ip4").into_iter().collect(),
    };
    for e in entries {
        let cidr = e
            .get("address")
            .or_else(|| e.get("ip"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some((ip, _)) = cidr.split_once('/').filter(|(ip, _)| ip.contains('.')) {
            addrs.push(ip.to_string());
            gateway =
                gateway.or_else(|| e.get("gateway").and_then(Value::as_str).map(str::to_string));
        }
    }
    (addrs, gateway)
}

/// The walkthrough's last step: another host on the segment pings the
/// container. The peer takes the gateway address.
fn ping_from_peer(sb: &Sandbox, master: &str, result: &Value) -> Result<()> {
    let (addrs, gateway) = ipv4_of(result);
    let (Some(gw), false) = (gateway, addrs.is_empty()) else {
        return Ok(());
    };
    let prefix = result
        .get("ips")
        .and_then(|ips| ips.get(0)?.get("address"))
        .or_else(|| result.get("ip4").and_then(|ip| ip.get("ip")))
        .and_then(Value::as_str)
        .and_then(|c| c.split_once('/'))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "24".into());
    sb.ip(
        Scope::Peer,
        &["addr", "add", &format!("{gw}/{prefix}"), "dev", master],
    )?;
    for addr in addrs {
        let seen = match sb
            .command(Scope::Peer, "ping")
            .args(["-c", "1", "-W", "2", &addr])
            .output()
        {
            Ok(o) if o.status.success() => "reachable",
            Ok(_) => "NOT reachable",
            Err(_) => "not tried (ping is not installed: apt-get install iputils-ping)",
        };
        out!("== peer {gw} pings {addr}: {seen}");
    }
    Ok(())
}

pub(crate) fn exec(args: ExecArgs) -> Result<bool> {
    let bytes = std::fs::read(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let net = NetworkConfig::parse(&bytes).context("loading the network configuration")?;
    let master = master_of(&net);
    let mut sb = Sandbox::new(&SandboxOptions {
        master: master.clone(),
        prefer_veth: args.peer,
        state_dirs: net.data_dirs(),
        lo_down: args.ifname == "lo",
        ..SandboxOptions::default()
    })?;
    let c = sb.add_container("ctr0")?;
    let att = Attachment {
        container_id: args.container_id.clone(),
        ifname: args.ifname.clone(),
        netns: sb.container(c).proc_path(),
        args: Vec::new(),
        capability_args: Default::default(),
    };
    out!("== sandbox {}", sb.dir().display());
    if let Some(m) = sb.master() {
        let kind = match m.kind {
            MasterKind::Dummy => "dummy link",
            MasterKind::Veth => "veth, other end in the peer namespace",
        };
        out!("== master {} ({kind})", m.name);
    }
    out!(
        "== container {} (CNI_NETNS={})",
        att.container_id,
        att.netns
    );
    let rt = Runtime::new(&sb, args.cni_path.clone(), args.timeout);
    let before = observe::capture(&sb)?;
    let run = match args.verb {
        Verb::Add => rt.add(&net, &att)?,
        Verb::Del => rt.del(&net, &att)?,
        Verb::Check => rt.check(&net, &att)?,
        Verb::Status => rt.status(&net)?,
        Verb::Gc => rt.gc(&net, &[])?,
        Verb::Version => {
            let steps = (0..net.plugins.len())
                .map(|i| rt.version(net.plugin_type(i), &net.cni_version))
                .collect::<Result<Vec<_>, _>>()?;
            ChainRun {
                steps,
                result: None,
            }
        }
    };
    print_run(&run, &net.cni_version);
    let after = observe::capture(&sb)?;
    out!("== changes:");
    let changes = observe::changes(&before, &after);
    if changes.is_empty() {
        out!("   (none)");
    }
    for c in changes {
        out!("   {c}");
    }
    if let (Some(result), Some(m)) = (&run.result, sb.master().cloned()) {
        if m.kind == MasterKind::Veth {
            ping_from_peer(&sb, &m.name, result)?;
        }
    }
    let ok = run.succeeded();
    if args.keep {
        out!(
            "== kept: host namespace /proc/{}/ns/net; press Enter to clean up",
            sb.pids()[0]
        );
        let _ = std::io::stdin().lock().lines().next();
    } else if args.verb == Verb::Add {
        let del = rt.del(&net, &att)?;
        print_run(&del, &net.cni_version);
        let end = observe::capture(&sb)?;
        // The peer's address and neighbour are the harness's own doing.
        let left: Vec<_> = observe::changes(&before, &end)
            .into_iter()
            .filter(|c| c.scope != cni_conformance::snapshot::Scope::Netns("peer".into()))
            .collect();
        if left.is_empty() {
            out!("== after DEL: everything is as before ADD");
        } else {
            out!("== after DEL, still different from before ADD:");
            for c in left {
                out!("   {c}");
            }
        }
    }
    Ok(ok)
}
