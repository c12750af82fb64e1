//! The reference macvlan plugin against a real kernel, in throwaway
//! namespaces: a "host" whose `eth0` is one end of a veth pair, a "peer"
//! holding the other end (another machine on the segment), and a container.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use rstest::rstest;
use serde_json::{Value, json};
use support::{Call, Holder, Netns, call, ours, ours_dir, upstream};
use tempfile::TempDir;

struct World {
    host: Netns,
    ctr: Netns,
    peer: Netns,
    _peer_holder: Holder,
    store: TempDir,
}

impl World {
    fn new() -> World {
        let (host, ctr, peer) = (Netns::new(), Netns::new(), Netns::new());
        let peer_holder = peer.holder();
        let pid = peer_holder
            .netns_path()
            .split('/')
            .nth(2)
            .unwrap()
            .to_string();
        host.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &pid,
        ]);
        host.ip(&["link", "set", "eth0", "up"]);
        peer.ip(&["link", "set", "eth0", "up"]);
        World {
            host,
            ctr,
            peer,
            _peer_holder: peer_holder,
            store: TempDir::new().unwrap(),
        }
    }

    fn conf(&self, version: &str) -> Value {
        json!({"cniVersion": version, "name": "mvnet", "type": "macvlan", "master": "eth0",
               "ipam": {"type": "host-local", "subnet": "10.30.0.0/24", "dataDir": self.store.path(),
                        "routes": [{"dst": "0.0.0.0/0"}]}})
    }

    /// A call as the runtime makes it: in the host namespace, our plugins
    /// first in CNI_PATH.
    fn call<'a>(&'a self, bin: &Path, verb: &str, conf: &Value) -> Call<'a> {
        call(bin, verb, conf)
            .env("CNI_NETNS", self.ctr.path())
            .in_netns(&self.host)
    }

    fn ours(&self, verb: &str, conf: &Value) -> Call<'_> {
        self.call(&ours("macvlan"), verb, conf)
    }

    /// The reservations of network `mvnet`.
    fn reservations(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.store.path().join("mvnet")) else {
            return vec![];
        };
        let mut v: Vec<String> = dir
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect();
        v.sort();
        v
    }

    /// Container kernel state and reservations, to compare before and after.
    fn state(&self) -> (String, Vec<String>, String) {
        (
            self.ctr.snapshot(),
            self.reservations(),
            self.host.ip(&["-o", "link", "show"]),
        )
    }
}

fn with_prev(conf: &Value, result: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = result.clone();
    c
}

#[test]
fn the_walkthrough_works_verbatim() {
    let w = World::new();
    w.peer
        .ip(&["addr", "add", "192.168.122.1/24", "dev", "eth0"]);
    let container = w.ctr.holder();
    let var_lib = TempDir::new().unwrap();
    let conf = json!({"name":"macvlannet","type":"macvlan","master":"eth0","ipam":{"type":"host-local","subnet":"192.168.122.0/24","routes":[{"dst":"0.0.0.0/0"}]}});
    let run = |verb: &str| {
        call(ours("macvlan"), verb, &conf)
            .id("ffecae44150e")
            .env("CNI_NETNS", container.netns_path())
            .var_lib(var_lib.path())
            .in_netns(&w.host)
            .run()
    };
    let r = run("ADD").ok();
    assert_eq!(r["cniVersion"], "0.1.0");
    assert_eq!(r["dns"], json!({}));
    assert!(
        r.get("interfaces").is_none() && r.get("ips").is_none(),
        "{r}"
    );
    let ip = r["ip4"]["ip"].as_str().unwrap().to_string();
    assert!(ip.starts_with("192.168.122.") && ip.ends_with("/24"), "{r}");
    assert_eq!(r["ip4"]["gateway"], "192.168.122.1");
    let addr = ip.split('/').next().unwrap();
    assert!(
        w.ctr
            .ip(&["-o", "addr", "show", "dev", "eth0"])
            .contains(&format!("inet {ip}"))
    );
    assert!(
        w.ctr
            .ip(&["route", "show", "default"])
            .contains("default via 192.168.122.1 dev eth0")
    );
    let (ok, out) = w.peer.exec("ping", &["-c", "1", "-W", "2", addr]);
    assert!(ok, "the peer cannot ping the container: {out}");
    let store = var_lib.path().join("cni/networks/macvlannet");
    assert_eq!(fs::read(store.join(addr)).unwrap(), b"ffecae44150e\r\neth0");

    run("DEL").ok();
    run("DEL").ok();
    assert!(!w.ctr.ip(&["-o", "link", "show"]).contains("eth0"));
    assert!(!store.join(addr).exists());
}

#[rstest]
fn add_check_del_in_every_version(
    #[values("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")] version: &str,
) {
    let w = World::new();
    let conf = w.conf(version);
    let before = w.state();
    let r = w.ours("ADD", &conf).run().ok();
    assert_eq!(r["cniVersion"], version);
    let link = &w.ctr.ip_json(&["-d", "link", "show", "eth0"])[0];
    assert_eq!(link["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(link["linkinfo"]["info_data"]["mode"], "bridge");
    assert!(link["flags"].to_string().contains("UP"));
    if version < "0.3.0" {
        assert_eq!(r["ip4"]["ip"], "10.30.0.2/24");
    } else {
        assert_eq!(r["interfaces"][0]["name"], "eth0");
        assert_eq!(r["interfaces"][0]["mac"], link["address"]);
        assert_eq!(r["interfaces"][0]["sandbox"], w.ctr.path());
        assert_eq!(r["ips"][0]["address"], "10.30.0.2/24");
        assert_eq!(r["ips"][0]["interface"], 0);
        assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0"}]));
        assert_eq!(r["interfaces"][0].get("mtu").is_some(), version == "1.1.0");
    }
    assert!(
        w.ctr
            .ip(&["route", "show", "default"])
            .contains("via 10.30.0.1 dev eth0")
    );
    let check = w.ours("CHECK", &with_prev(&conf, &r)).run();
    if version >= "0.4.0" {
        check.ok();
    } else {
        check.err_code(1);
    }
    w.ours("DEL", &with_prev(&conf, &r)).run().ok();
    w.ours("DEL", &conf).run().ok();
    assert_eq!(w.state(), before, "DEL left something behind");
}

#[rstest]
fn every_mode(#[values("bridge", "private", "vepa", "passthru", "source")] mode: &str) {
    let w = World::new();
    let mut conf = w.conf("1.0.0");
    conf["mode"] = json!(mode);
    let r = w.ours("ADD", &conf).run().ok();
    let link = &w.ctr.ip_json(&["-d", "link", "show", "eth0"])[0];
    assert_eq!(link["linkinfo"]["info_data"]["mode"], mode);
    w.ours("CHECK", &with_prev(&conf, &r)).run().ok();
    // CHECK notices a configuration that no longer matches the link.
    let mut other = with_prev(&conf, &r);
    other["mode"] = json!(if mode == "vepa" { "bridge" } else { "vepa" });
    assert!(w.ours("CHECK", &other).run().err_code(112).contains("mode"));
    w.ours("DEL", &conf).run().ok();
    assert!(w.reservations().is_empty());
}

#[test]
fn layer_2_only() {
    let w = World::new();
    let conf = json!({"cniVersion": "1.0.0", "name": "l2", "type": "macvlan", "master": "eth0"});
    let r = w.ours("ADD", &conf).run().ok();
    assert!(r.get("ips").is_none());
    assert_eq!(r["interfaces"][0]["name"], "eth0");
    assert!(w.ctr.ip(&["-o", "link", "show", "eth0"]).contains("UP"));
    w.ours("CHECK", &with_prev(&conf, &r)).run().ok();
    w.ours("DEL", &conf).run().ok();
    // 0.2.0 has no way to say "no address": refused before anything exists.
    let before = w.state();
    let mut old = conf.clone();
    old["cniVersion"] = json!("0.2.0");
    assert!(w.ours("ADD", &old).run().err_code(127).contains("ipam"));
    assert_eq!(w.state(), before);
}

#[test]
fn dual_stack() {
    let w = World::new();
    let conf = json!({"cniVersion": "1.0.0", "name": "mvnet", "type": "macvlan", "master": "eth0",
        "ipam": {"type": "host-local", "dataDir": w.store.path(),
                 "ranges": [[{"subnet": "10.31.0.0/24"}], [{"subnet": "fd00:31::/64"}]],
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}});
    let r = w.ours("ADD", &conf).run().ok();
    let addrs: Vec<&str> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["10.31.0.2/24", "fd00:31::2/64"]);
    let shown = w.ctr.ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(
        shown.contains("inet 10.31.0.2/24") && shown.contains("inet6 fd00:31::2/64"),
        "{shown}"
    );
    assert!(
        w.ctr
            .ip(&["-6", "route", "show", "default"])
            .contains("via fd00:31::1 dev eth0")
    );
    w.ours("CHECK", &with_prev(&conf, &r)).run().ok();
    w.ours("DEL", &conf).run().ok();
    assert!(w.reservations().is_empty());
}

#[test]
fn mac_precedence_and_mtu() {
    let w = World::new();
    let mut conf = w.conf("1.0.0");
    conf["mac"] = json!("c2:11:22:33:44:01");
    conf["mtu"] = json!(1400);
    let r = w
        .ours("ADD", &conf)
        .env("CNI_ARGS", "IgnoreUnknown=1;MAC=c2:11:22:33:44:02")
        .run()
        .ok();
    assert_eq!(r["interfaces"][0]["mac"], "c2:11:22:33:44:02");
    assert!(
        w.ctr
            .ip(&["-o", "link", "show", "eth0"])
            .contains("mtu 1400")
    );
    w.ours("DEL", &conf).run().ok();
    conf["runtimeConfig"] = json!({"mac": "c2:11:22:33:44:03"});
    let r = w
        .ours("ADD", &conf)
        .env("CNI_ARGS", "MAC=c2:11:22:33:44:02")
        .run()
        .ok();
    assert_eq!(r["interfaces"][0]["mac"], "c2:11:22:33:44:03");
    let mut stale = with_prev(&conf, &r);
    stale["prevResult"]["interfaces"][0]["mac"] = json!("c2:11:22:33:44:99");
    assert!(w.ours("CHECK", &stale).run().err_code(112).contains("MAC"));
    w.ours("DEL", &conf).run().ok();
}

#[test]
fn check_finds_what_changed() {
    let w = World::new();
    let conf = w.conf("1.0.0");
    let r = w.ours("ADD", &conf).run().ok();
    let prev = with_prev(&conf, &r);
    w.ctr.ip(&["addr", "del", "10.30.0.2/24", "dev", "eth0"]);
    assert!(
        w.ours("CHECK", &prev)
            .run()
            .err_code(112)
            .contains("10.30.0.2/24")
    );
    w.ctr.ip(&["link", "del", "eth0"]);
    assert!(
        w.ours("CHECK", &prev)
            .run()
            .err_code(112)
            .contains("does not exist")
    );
    // Without prevResult there is nothing to check against.
    w.ours("CHECK", &conf).run().err_code(7);
    w.ours("DEL", &conf).run().ok();
}

/// Each failure leaves the container and the store exactly as before.
#[rstest]
#[case::exhausted_range("exhausted", 101)]
#[case::missing_ipam_binary("no-ipam", 110)]
#[case::bad_route("bad-route", 111)]
#[case::existing_ifname("ifname-exists", 114)]
#[case::missing_master("no-master", 7)]
#[case::bad_mtu("bad-mtu", 7)]
#[case::bad_mode("bad-mode", 7)]
#[case::bad_mac("bad-mac", 7)]
#[case::missing_netns("no-netns", 4)]
fn failures_leave_nothing_behind(#[case] failure: &str, #[case] code: u64) {
    let w = World::new();
    let mut conf = w.conf("1.0.0");
    let mut netns = w.ctr.path();
    match failure {
        "exhausted" => {
            conf["ipam"]["subnet"] = json!("10.30.0.0/30");
            let other = Netns::new();
            call(ours("macvlan"), "ADD", &conf)
                .id("other")
                .env("CNI_NETNS", other.path())
                .in_netns(&w.host)
                .run()
                .ok();
        }
        "no-ipam" => conf["ipam"]["type"] = json!("no-such-ipam"),
        "bad-route" => {
            conf["ipam"]["routes"] = json!([{"dst": "10.99.0.0/16", "gw": "10.200.0.1"}])
        }
        "ifname-exists" => {
            w.ctr.ip(&[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
            ]);
        }
        "no-master" => conf["master"] = json!("eth9"),
        "bad-mtu" => conf["mtu"] = json!(9000),
        "bad-mode" => conf["mode"] = json!("bogus"),
        "bad-mac" => conf["mac"] = json!("zz:zz"),
        "no-netns" => netns = "/var/run/netns/does-not-exist".into(),
        _ => unreachable!(),
    }
    let before = w.state();
    let out = call(ours("macvlan"), "ADD", &conf)
        .env("CNI_NETNS", &netns)
        .in_netns(&w.host)
        .run();
    let msg = out.err_code(code);
    match failure {
        "no-master" => assert!(msg.contains("master") && msg.contains("eth9"), "{msg}"),
        "bad-mtu" => assert!(msg.contains("mtu"), "{msg}"),
        "bad-mode" => assert!(msg.contains("mode"), "{msg}"),
        "bad-mac" => assert!(msg.contains("mac"), "{msg}"),
        "no-netns" => assert!(msg.contains("/var/run/netns/does-not-exist"), "{msg}"),
        "no-ipam" => assert!(msg.contains("no-such-ipam"), "{msg}"),
        "ifname-exists" => assert!(msg.contains("eth0"), "{msg}"),
        _ => {}
    }
    assert_eq!(w.state(), before, "a failed ADD left something behind");
    // The runtime's DEL after a failed ADD succeeds and keeps foreign links.
    call(ours("macvlan"), "DEL", &conf)
        .env("CNI_NETNS", &netns)
        .in_netns(&w.host)
        .run()
        .ok();
    if failure == "ifname-exists" {
        assert!(
            w.ctr.ip(&["-o", "link", "show"]).contains("eth0@eth0p"),
            "DEL removed a foreign link"
        );
    }
}

#[test]
fn del_succeeds_whatever_is_already_gone() {
    let w = World::new();
    let conf = w.conf("1.0.0");
    // The namespace is gone.
    let gone = Netns::new();
    let path = gone.path();
    call(ours("macvlan"), "ADD", &conf)
        .id("a")
        .env("CNI_NETNS", &path)
        .in_netns(&w.host)
        .run()
        .ok();
    drop(gone);
    call(ours("macvlan"), "DEL", &conf)
        .id("a")
        .env("CNI_NETNS", &path)
        .in_netns(&w.host)
        .run()
        .ok();
    // CNI_NETNS empty.
    w.ours("ADD", &conf).id("b").run().ok();
    call(ours("macvlan"), "DEL", &conf)
        .id("b")
        .unset("CNI_NETNS")
        .in_netns(&w.host)
        .run()
        .ok();
    w.ctr.ip(&["link", "del", "eth0"]);
    // The master is gone.
    w.ours("ADD", &conf).id("c").run().ok();
    w.host.ip(&["link", "del", "eth0"]);
    w.ours("DEL", &conf).id("c").run().ok();
    assert!(w.reservations().is_empty(), "{:?}", w.reservations());
}

#[test]
fn refuses_its_own_namespace() {
    let w = World::new();
    let conf = w.conf("1.0.0");
    let before = w.host.snapshot();
    let out = call(ours("macvlan"), "ADD", &conf)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .in_netns(&w.host)
        .run();
    assert!(out.err_code(4).contains("own network namespace"));
    let out = call(ours("macvlan"), "DEL", &conf)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .in_netns(&w.host)
        .run();
    out.err_code(4);
    assert_eq!(w.host.snapshot(), before);
}

#[test]
fn status_and_gc_reach_ipam() {
    let w = World::new();
    let mut conf = w.conf("1.1.0");
    conf["ipam"]["subnet"] = json!("10.30.0.0/30");
    let status = |c: &Value| {
        call(ours("macvlan"), "STATUS", c)
            .unset("CNI_CONTAINERID")
            .unset("CNI_IFNAME")
            .unset("CNI_NETNS")
            .in_netns(&w.host)
            .run()
    };
    status(&conf).ok();
    w.ours("ADD", &conf).run().ok();
    // Exhausted: host-local's 50 comes through.
    status(&conf).err_code(50);
    // GC with no valid attachment releases the reservation through IPAM.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    call(ours("macvlan"), "GC", &gc)
        .in_netns(&w.host)
        .run()
        .ok();
    assert!(w.reservations().is_empty());
    status(&conf).ok();
    let mut missing = conf.clone();
    missing["master"] = json!("eth9");
    assert!(status(&missing).err_code(51).contains("eth9"));
    w.ours("DEL", &conf).run().ok();
}

#[test]
fn without_master_the_default_route_interface_is_used() {
    let w = World::new();
    w.host.ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"]);
    w.host.ip(&["route", "add", "default", "via", "192.0.2.1"]);
    let mut conf = w.conf("1.0.0");
    conf.as_object_mut().unwrap().remove("master");
    let r = w.ours("ADD", &conf).run().ok();
    let link = &w.ctr.ip_json(&["-d", "link", "show", "eth0"])[0];
    assert_eq!(link["linkinfo"]["info_kind"], "macvlan");
    w.ours("CHECK", &with_prev(&conf, &r)).run().ok();
    w.ours("DEL", &conf).run().ok();
}

#[rstest]
fn our_macvlan_with_upstream_host_local(#[values("1.0.0", "0.4.0")] version: &str) {
    let w = World::new();
    let conf = w.conf(version);
    let run = |verb: &str, c: &Value| w.ours(verb, c).env("CNI_PATH", support::UPSTREAM_DIR).run();
    upstream("host-local");
    let r = run("ADD", &conf).ok();
    assert_eq!(r["ips"][0]["address"], "10.30.0.2/24");
    assert!(
        !w.store.path().join("mvnet/cni-reference.index").exists(),
        "our host-local ran instead"
    );
    run("CHECK", &with_prev(&conf, &r)).ok();
    run("DEL", &with_prev(&conf, &r)).ok();
    assert!(w.reservations().is_empty());
    assert!(!w.ctr.ip(&["-o", "link", "show"]).contains("eth0"));
}

#[test]
fn cni_path_order_picks_the_first_match() {
    let w = World::new();
    let conf = w.conf("1.0.0");
    let path = format!("{}:{}", ours_dir().display(), support::UPSTREAM_DIR);
    w.ours("ADD", &conf).env("CNI_PATH", path).run().ok();
    assert!(w.store.path().join("mvnet/cni-reference.index").exists());
    w.ours("DEL", &conf).run().ok();
    let _: PathBuf = ours_dir();
}
