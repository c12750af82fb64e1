//! The runtime side against real plugins in sandboxes: upstream and
//! reference macvlan through a chain, timeouts, signals, the spy.

mod common;
use cni_conformance::spec::Verb;
use common::reference_dir;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cni_conformance::observe;
use cni_conformance::runtime::{Attachment, Exit, NetworkConfig, Runtime};
use cni_conformance::sandbox::{Sandbox, SandboxOptions, Scope};
use cni_conformance::snapshot::Snapshot;
use cni_conformance::spy;
use serde_json::{Value, json};
use tempfile::TempDir;

fn upstream_dir() -> PathBuf {
    let dir = PathBuf::from("/usr/lib/cni");
    assert!(
        dir.join("macvlan").is_file(),
        "install the upstream plugins: apt-get install containernetworking-plugins"
    );
    dir
}

/// A folder of shell-script plugins.
fn script_plugins(scripts: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (name, body) in scripts {
        let path = dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn attachment(sb: &Sandbox, c: usize) -> Attachment {
    Attachment {
        container_id: "c1".into(),
        ifname: "eth0".into(),
        netns: sb.container(c).proc_path(),
        args: vec![("IgnoreUnknown".into(), "1".into())],
        capability_args: Default::default(),
    }
}

fn macvlan_conf(version: &str, store: &Path) -> NetworkConfig {
    let conf = json!({"cniVersion": version, "name": "rt", "plugins": [
        {"type": "macvlan", "master": "eth0",
         "ipam": {"type": "host-local", "subnet": "10.40.0.0/24", "dataDir": store}}]});
    NetworkConfig::parse(conf.to_string().as_bytes()).unwrap()
}

fn addresses(sb: &Sandbox, c: usize) -> Vec<String> {
    let v: Value =
        serde_json::from_str(&sb.ip(Scope::Container(c), &["-j", "addr", "show"]).unwrap())
            .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            let name = l["ifname"].as_str().unwrap().to_string();
            l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["family"] == "inet")
                .map(move |a| format!("{name} {}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        })
        .collect()
}

fn run_macvlan_chain(dir: PathBuf) {
    let store = TempDir::new().unwrap();
    let mut sb = Sandbox::new(&SandboxOptions {
        master: Some("eth0".into()),
        prefer_veth: false,
        ..Default::default()
    })
    .unwrap();
    let c = sb.add_container("ctr").unwrap();
    let att = attachment(&sb, c);
    let net = macvlan_conf("1.0.0", store.path());
    let rt = Runtime::new(&sb, vec![dir], Duration::from_secs(30));
    let kernel_changes = |from: &Snapshot| -> Vec<String> {
        let now = observe::capture(&sb).unwrap();
        observe::changes(from, &now)
            .iter()
            .filter(|ch| matches!(ch.scope, cni_conformance::snapshot::Scope::Netns(_)))
            .map(ToString::to_string)
            .collect()
    };
    let before = observe::capture(&sb).unwrap();
    let add = rt.add(&net, &att).unwrap();
    assert!(add.succeeded(), "{:#?}", add.steps);
    let result = add.result.clone().unwrap();
    assert_eq!(result["ips"][0]["address"], "10.40.0.2/24");
    assert_eq!(addresses(&sb, c), ["lo 127.0.0.1/8", "eth0 10.40.0.2/24"]);
    // The kernel holds exactly what the result says, and nothing changed
    // outside the container.
    let mac = result["interfaces"][0]["mac"].as_str().unwrap();
    assert_eq!(
        kernel_changes(&before),
        [
            format!("link eth0 (macvlan, bridge, {mac}) added in container ctr"),
            "address 10.40.0.2/24 on eth0 added in container ctr".to_string(),
            "route 10.40.0.0/24 dev eth0 added in container ctr".to_string(),
        ]
    );
    let check = rt.check(&net, &att).unwrap();
    assert!(check.succeeded(), "{:#?}", check.steps);
    assert!(check.steps[0].request.get("prevResult").is_some());
    let del = rt.del(&net, &att).unwrap();
    assert!(del.succeeded(), "{:#?}", del.steps);
    assert!(rt.cached_result(&net, &att).is_none());
    assert!(
        kernel_changes(&before).is_empty(),
        "DEL left kernel state behind"
    );
}

#[test]
fn upstream_macvlan_through_the_runtime() {
    run_macvlan_chain(upstream_dir());
}

#[test]
fn reference_macvlan_through_the_runtime() {
    run_macvlan_chain(reference_dir());
}

#[test]
fn a_hanging_plugin_is_killed_at_the_deadline_and_the_sandbox_cleaned() {
    let plugins = script_plugins(&[("hang", "sleep 1000 & sleep 1000")]);
    let sb = Sandbox::new(&SandboxOptions::default()).unwrap();
    let (pids, dir) = (sb.pids(), sb.dir().to_path_buf());
    let rt = Runtime::new(
        &sb,
        vec![plugins.path().to_path_buf()],
        Duration::from_millis(300),
    );
    let step = rt
        .call(
            "hang",
            Verb::Add,
            json!({"cniVersion": "1.0.0", "name": "n", "type": "hang"}),
            None,
        )
        .unwrap();
    assert_eq!(step.outcome.exit, Exit::TimedOut);
    assert!(step.outcome.duration >= Duration::from_millis(300));
    drop(rt);
    drop(sb);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} left behind"
        );
    }
    assert!(!dir.exists());
}

#[test]
fn a_plugin_that_kills_itself_is_reported_with_its_signal() {
    let plugins = script_plugins(&[("suicide", "kill -SEGV $$")]);
    let sb = Sandbox::new(&SandboxOptions::default()).unwrap();
    let rt = Runtime::new(
        &sb,
        vec![plugins.path().to_path_buf()],
        Duration::from_secs(10),
    );
    let step = rt
        .call(
            "suicide",
            Verb::Add,
            json!({"cniVersion": "1.0.0", "name": "n", "type": "suicide"}),
            None,
        )
        .unwrap();
    assert_eq!(step.outcome.exit, Exit::Signal(libc_sigsegv()));
}

fn libc_sigsegv() -> i32 {
    11
}

#[test]
fn the_spy_sees_order_environment_and_prev_result() {
    let bin = TempDir::new().unwrap();
    spy::install(bin.path(), &common::harness()).unwrap();
    let mut sb = Sandbox::new(&SandboxOptions::default()).unwrap();
    // The sandbox's folder: the rest of the machine is read-only to plugins.
    let log = sb.dir().join("spy.log");
    let c = sb.add_container("ctr").unwrap();
    let att = attachment(&sb, c);
    let conf = json!({"cniVersion": "1.0.0", "name": "chain", "plugins": [
        {"type": "cni-spy", "tag": "first", "capabilities": {"mac": true}},
        {"type": "cni-spy", "tag": "second"}]});
    let net = NetworkConfig::parse(conf.to_string().as_bytes()).unwrap();
    let mut rt = Runtime::new(&sb, vec![bin.path().to_path_buf()], Duration::from_secs(10));
    rt.extra_env
        .push(("CNI_SPY_LOG".into(), log.display().to_string()));
    let mut att_caps = att.clone();
    att_caps
        .capability_args
        .insert("mac".into(), json!("c2:00:00:00:00:01"));
    assert!(rt.add(&net, &att_caps).unwrap().succeeded());
    assert!(rt.del(&net, &att_caps).unwrap().succeeded());
    let records = spy::read_log(&log).unwrap();
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().into(),
                r["stdin"]["tag"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("ADD", "first"),
        ("ADD", "second"),
        ("DEL", "second"),
        ("DEL", "first"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, expected, "ADD in order, DEL in reverse");
    assert_eq!(records[0]["env"]["CNI_NETNS"], att.netns);
    assert_eq!(records[0]["env"]["CNI_ARGS"], "IgnoreUnknown=1");
    assert_eq!(
        records[0]["stdin"]["runtimeConfig"],
        json!({"mac": "c2:00:00:00:00:01"})
    );
    assert!(records[0]["stdin"].get("prevResult").is_none());
    assert_eq!(records[1]["stdin"]["prevResult"]["cniVersion"], "1.0.0");
    assert!(
        records[2]["stdin"].get("prevResult").is_some(),
        "DEL gets the cached result"
    );
}

/// libcni's gating: GC and STATUS exist from 1.1.0, and `disableGC`
/// stops GC; a gated verb reaches no plugin.
#[test]
fn gc_and_status_follow_version_and_disable_gc() {
    let bin = TempDir::new().unwrap();
    spy::install(bin.path(), &common::harness()).unwrap();
    let sb = Sandbox::new(&SandboxOptions::default()).unwrap();
    let log = sb.dir().join("spy.log");
    let mut rt = Runtime::new(&sb, vec![bin.path().to_path_buf()], Duration::from_secs(10));
    rt.extra_env
        .push(("CNI_SPY_LOG".into(), log.display().to_string()));
    let list = |version: &str, disable_gc: bool| {
        let conf = json!({"cniVersion": version, "name": "n", "disableGC": disable_gc,
            "plugins": [{"type": "cni-spy"}]});
        NetworkConfig::parse(conf.to_string().as_bytes()).unwrap()
    };
    let calls = |log: &Path| -> Vec<String> {
        spy::read_log(log)
            .unwrap_or_default()
            .iter()
            .map(|r| r["command"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(rt.gc(&list("1.1.0", true), &[]).unwrap().steps.is_empty());
    assert!(rt.gc(&list("1.0.0", false), &[]).unwrap().steps.is_empty());
    assert!(rt.status(&list("1.0.0", false)).unwrap().steps.is_empty());
    assert!(calls(&log).is_empty(), "{:?}", calls(&log));
    assert!(rt.gc(&list("1.1.0", false), &[]).unwrap().succeeded());
    assert!(rt.status(&list("1.1.0", false)).unwrap().succeeded());
    assert_eq!(calls(&log), ["GC", "STATUS"]);
}
