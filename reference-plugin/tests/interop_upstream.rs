//! Interoperability with the upstream Go plugins in /usr/lib/cni
//! (Debian's containernetworking-plugins).

mod support;

use std::fs;
use std::path::Path;

use rstest::rstest;
use serde_json::{Value, json};
use support::{Netns, call, ours, ours_dir, upstream};
use tempfile::TempDir;

fn ipam_conf(dir: &Path) -> Value {
    json!({"cniVersion": "1.0.0", "name": "shared", "type": "host-local",
           "ipam": {"type": "host-local", "subnet": "10.20.0.0/24", "dataDir": dir}})
}

fn address(r: &Value) -> &str {
    r["ips"][0]["address"].as_str().unwrap()
}

#[test]
fn a_store_filled_by_upstream_is_read_correctly() {
    let dir = TempDir::new().unwrap();
    let c = ipam_conf(dir.path());
    let go = upstream("host-local");
    let rs = ours("host-local");
    for id in ["u1", "u2", "u3"] {
        call(&go, "ADD", &c).id(id).run().ok();
    }
    // No duplicate: ours continues after upstream's cursor.
    assert_eq!(
        address(&call(&rs, "ADD", &c).id("r1").run().ok()),
        "10.20.0.5/24"
    );
    // Ours recognises upstream's reservation of the same attachment.
    assert!(
        call(&rs, "ADD", &c)
            .id("u2")
            .run()
            .err_code(103)
            .contains("10.20.0.3")
    );
    call(&rs, "CHECK", &c).id("u2").run().ok();
    // And releases it.
    call(&rs, "DEL", &c).id("u2").run().ok();
    assert!(!dir.path().join("shared/10.20.0.3").exists());
    // Upstream, in turn, sees ours: no duplicate, and it can release ours.
    assert_eq!(
        address(&call(&go, "ADD", &c).id("u4").run().ok()),
        "10.20.0.6/24"
    );
    call(&go, "DEL", &c).id("r1").run().ok();
    assert!(!dir.path().join("shared/10.20.0.5").exists());
    // Ours after upstream's changes: the index is stale and must be rebuilt.
    assert_eq!(
        address(&call(&rs, "ADD", &c).id("r2").run().ok()),
        "10.20.0.7/24"
    );
    call(&rs, "ADD", &c).id("u4").run().err_code(103);
    // An upstream file of the pre-2018 format (bare ID) is released by DEL.
    fs::write(dir.path().join("shared/10.20.0.99"), "legacy").unwrap();
    call(&rs, "DEL", &c).id("legacy").run().ok();
    assert!(!dir.path().join("shared/10.20.0.99").exists());
}

#[test]
fn both_implementations_interleaved_never_duplicate() {
    let dir = TempDir::new().unwrap();
    let mut c = ipam_conf(dir.path());
    c["ipam"]["subnet"] = json!("10.21.0.0/28");
    let (go, rs) = (upstream("host-local"), ours("host-local"));
    let mut seen = std::collections::HashSet::new();
    for i in 0..13 {
        let bin = if i % 2 == 0 { &go } else { &rs };
        let r = call(bin, "ADD", &c).id(&format!("c{i}")).run().ok();
        assert!(
            seen.insert(address(&r).to_string()),
            "duplicate {}",
            address(&r)
        );
    }
    // Full: both agree.
    call(&rs, "ADD", &c).id("x").run().err_code(101);
    assert_ne!(call(&go, "ADD", &c).id("x").run().status, 0);
}

/// The upstream macvlan delegating to our host-local, in a throwaway host
/// namespace whose master `m0` is one end of a veth pair.
#[rstest]
fn upstream_macvlan_with_our_host_local(#[values("1.0.0", "0.4.0")] version: &str) {
    let dir = TempDir::new().unwrap();
    let host = Netns::new();
    let ctr = Netns::new();
    host.ip(&[
        "link", "add", "m0", "type", "veth", "peer", "name", "m0peer",
    ]);
    host.ip(&["link", "set", "m0", "up"]);
    let c = json!({"cniVersion": version, "name": "interop", "type": "macvlan", "master": "m0",
                   "ipam": {"type": "host-local", "subnet": "10.22.0.0/24", "dataDir": dir.path(),
                            "routes": [{"dst": "0.0.0.0/0"}]}});
    let macvlan = upstream("macvlan");
    let run = |verb: &str, conf: &Value| {
        call(&macvlan, verb, conf)
            .env("CNI_NETNS", ctr.path())
            .env("CNI_PATH", ours_dir().display().to_string())
            .env("CNI_NETNS_OVERRIDE", "1")
            .in_netns(&host)
            .run()
    };
    let r = run("ADD", &c).ok();
    assert_eq!(r["cniVersion"], version);
    assert_eq!(address(&r), "10.22.0.2/24");
    // Our host-local did the allocation: its index sits beside the file.
    let store = dir.path().join("interop");
    assert_eq!(fs::read(store.join("10.22.0.2")).unwrap(), b"c1\r\neth0");
    assert!(store.join("cni-reference.index").is_file());
    let addrs = ctr.ip_json(&["addr", "show", "dev", "eth0"]);
    assert!(
        addrs.to_string().contains("\"local\":\"10.22.0.2\""),
        "{addrs}"
    );
    let routes = ctr.ip(&["route", "show", "default"]);
    assert!(routes.contains("via 10.22.0.1 dev eth0"), "{routes}");

    let mut check = c.clone();
    check["prevResult"] = r;
    run("CHECK", &check).ok();
    run("DEL", &check).ok();
    run("DEL", &check).ok();
    assert!(!store.join("10.22.0.2").exists());
    let links = ctr.ip(&["-o", "link", "show"]);
    assert!(!links.contains("eth0"), "the macvlan is left: {links}");
}
