//! host-local's allocator and on-disk store, through the real binary.

mod support;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{call, ours};
use tempfile::TempDir;

fn hl() -> PathBuf {
    ours("host-local")
}

fn conf(dir: &Path, ipam: Value) -> Value {
    let mut ipam = ipam;
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!(dir);
    json!({"cniVersion": "1.1.0", "name": "net1", "type": "host-local", "ipam": ipam})
}

fn add(c: &Value, id: &str) -> Vec<String> {
    let r = call(hl(), "ADD", c).id(id).run().ok();
    r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].as_str().unwrap().to_string())
        .collect()
}

fn del(c: &Value, id: &str) {
    call(hl(), "DEL", c).id(id).run().ok();
}

/// The address files of network `net1`, as `ip -> content`.
fn reservations(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fs::read_dir(dir.join("net1"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name()
                .to_str()
                .unwrap()
                .parse::<std::net::IpAddr>()
                .is_ok()
        })
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn files_are_byte_compatible_with_upstream() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.1.2.0/24"}));
    add(&c, "c1");
    let file = dir.path().join("net1/10.1.2.2");
    assert_eq!(fs::read(&file).unwrap(), b"c1\r\neth0");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read(dir.path().join("net1/last_reserved_ip.0")).unwrap(),
        b"10.1.2.2"
    );
    assert!(dir.path().join("net1/lock").is_file());
    let names: HashSet<String> = fs::read_dir(dir.path().join("net1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: HashSet<String> = [
        "10.1.2.2",
        "last_reserved_ip.0",
        "lock",
        "cni-reference.index",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, expected, "no temporary file stays behind");
}

#[test]
fn exhaustion_then_release_reuses_the_address() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.3.0.0/29"}));
    let got: Vec<String> = (1..=5).flat_map(|i| add(&c, &format!("c{i}"))).collect();
    assert_eq!(
        got,
        [
            "10.3.0.2/29",
            "10.3.0.3/29",
            "10.3.0.4/29",
            "10.3.0.5/29",
            "10.3.0.6/29"
        ]
    );
    let msg = call(hl(), "ADD", &c).id("c6").run().err_code(101);
    assert!(
        msg.contains("no IP addresses available in range set: 10.3.0.1-10.3.0.6"),
        "{msg}"
    );
    del(&c, "c3");
    assert_eq!(add(&c, "c6"), ["10.3.0.4/29"]);
}

#[test]
fn round_robin_continues_after_the_last_reserved_and_wraps() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.3.0.0/29"}));
    add(&c, "a");
    add(&c, "b");
    del(&c, "a");
    // .2 is free again, but round robin goes on from .3.
    assert_eq!(add(&c, "c"), ["10.3.0.4/29"]);
    add(&c, "d");
    add(&c, "e");
    // After .6 it wraps to the start.
    assert_eq!(add(&c, "f"), ["10.3.0.2/29"]);
}

#[test]
fn a_cursor_outside_the_range_restarts_from_the_start() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.3.0.0/29"}));
    add(&c, "a");
    fs::write(dir.path().join("net1/last_reserved_ip.0"), "garbage").unwrap();
    assert_eq!(add(&c, "b"), ["10.3.0.3/29"]);
}

#[test]
fn requested_addresses_from_args_runtime_config_and_cni_args() {
    let dir = TempDir::new().unwrap();
    let mut c = conf(dir.path(), json!({"subnet": "10.4.0.0/24"}));
    c["args"] = json!({"cni": {"ips": ["10.4.0.88"]}});
    // args.cni.ips wins over CNI_ARGS IP.
    let r = call(hl(), "ADD", &c)
        .id("a")
        .env("CNI_ARGS", "IgnoreUnknown=1;IP=10.4.0.99")
        .run()
        .ok();
    assert_eq!(r["ips"][0]["address"], "10.4.0.88/24");

    let mut rc = conf(dir.path(), json!({"subnet": "10.4.0.0/24"}));
    rc["runtimeConfig"] = json!({"ips": ["10.4.0.77/24"]});
    assert_eq!(add(&rc, "b"), ["10.4.0.77/24"]);

    let plain = conf(dir.path(), json!({"subnet": "10.4.0.0/24"}));
    let r = call(hl(), "ADD", &plain)
        .id("c")
        .env("CNI_ARGS", "IgnoreUnknown=1;IP=10.4.0.99")
        .run()
        .ok();
    assert_eq!(r["ips"][0]["address"], "10.4.0.99/24");

    // Taken, the gateway, or outside every range: 102, nothing left behind.
    let before = reservations(dir.path());
    for (ip, words) in [
        ("10.4.0.88", "not available"),
        ("10.4.0.1", "gateway"),
        ("10.9.9.9", "failed to allocate all requested IPs: 10.9.9.9"),
    ] {
        let msg = call(hl(), "ADD", &plain)
            .id("d")
            .env("CNI_ARGS", format!("IP={ip}"))
            .run()
            .err_code(102);
        assert!(msg.contains(words), "{msg}");
    }
    assert_eq!(reservations(dir.path()), before);
}

#[test]
fn dual_stack_gives_one_address_per_range_set() {
    let dir = TempDir::new().unwrap();
    let ipam = json!({"ranges": [[{"subnet": "10.5.0.0/24"}], [{"subnet": "fd00:5::/64"}]],
                      "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]});
    let c = conf(dir.path(), ipam.clone());
    let r = call(hl(), "ADD", &c).run().ok();
    assert_eq!(
        r["ips"],
        json!([{"address": "10.5.0.2/24", "gateway": "10.5.0.1"}, {"address": "fd00:5::2/64", "gateway": "fd00:5::1"}])
    );
    assert_eq!(
        fs::read(dir.path().join("net1/fd00:5::2")).unwrap(),
        b"c1\r\neth0"
    );
    assert_eq!(
        fs::read(dir.path().join("net1/last_reserved_ip.1")).unwrap(),
        b"fd00:5::2"
    );
    // 0.2.0 carries one of each family.
    let mut old = conf(dir.path(), ipam);
    old["cniVersion"] = json!("0.2.0");
    let r = call(hl(), "ADD", &old).id("c2").run().ok();
    assert_eq!(r["ip4"]["ip"], "10.5.0.3/24");
    assert_eq!(r["ip6"]["ip"], "fd00:5::3/64");
    assert_eq!(r["ip6"]["routes"], json!([{"dst": "::/0"}]));
}

#[test]
fn a_set_of_several_ranges_rolls_over() {
    let dir = TempDir::new().unwrap();
    let c = conf(
        dir.path(),
        json!({"ranges": [[{"subnet": "10.6.0.0/30"}, {"subnet": "10.6.1.0/30"}]]}),
    );
    assert_eq!(add(&c, "a"), ["10.6.0.2/30"]);
    assert_eq!(add(&c, "b"), ["10.6.1.2/30"]);
    call(hl(), "ADD", &c).id("c").run().err_code(101);
}

#[test]
fn runtime_ip_ranges_come_first() {
    let dir = TempDir::new().unwrap();
    let mut c = conf(dir.path(), json!({"subnet": "10.7.0.0/24"}));
    c["runtimeConfig"] =
        json!({"ipRanges": [[{"subnet": "10.8.0.0/24", "rangeStart": "10.8.0.50"}]]});
    assert_eq!(add(&c, "a"), ["10.8.0.50/24", "10.7.0.2/24"]);
}

#[test]
fn resolv_conf_fills_dns() {
    let dir = TempDir::new().unwrap();
    let resolv = dir.path().join("resolv.conf");
    fs::write(
        &resolv,
        "nameserver 10.0.0.53\nsearch a.example\noptions ndots:2\n",
    )
    .unwrap();
    let c = conf(
        dir.path(),
        json!({"subnet": "10.9.0.0/24", "resolvConf": resolv}),
    );
    let r = call(hl(), "ADD", &c).run().ok();
    assert_eq!(
        r["dns"],
        json!({"nameservers": ["10.0.0.53"], "search": ["a.example"], "options": ["ndots:2"]})
    );
}

#[test]
fn add_twice_without_del_fails_and_del_is_idempotent() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.10.0.0/24"}));
    add(&c, "a");
    assert!(
        call(hl(), "ADD", &c)
            .id("a")
            .run()
            .err_code(103)
            .contains("10.10.0.2")
    );
    // Another interface of the same container is another attachment.
    call(hl(), "ADD", &c)
        .id("a")
        .env("CNI_IFNAME", "net1")
        .run()
        .ok();
    del(&c, "a");
    del(&c, "a");
    assert_eq!(
        reservations(dir.path()),
        [("10.10.0.3".to_string(), "a\r\nnet1".to_string())]
    );
    call(hl(), "DEL", &c).id("never-added").run().ok();
}

#[test]
fn del_check_and_gc_never_create_the_store() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.11.0.0/24"}));
    del(&c, "a");
    call(hl(), "CHECK", &c).id("a").run().err_code(104);
    call(
        hl(),
        "GC",
        &json!({"cniVersion": "1.1.0", "name": "net1", "cni.dev/valid-attachments": [],
                             "ipam": c["ipam"]}),
    )
    .run()
    .ok();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn del_releases_even_when_the_ranges_became_invalid() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.12.0.0/24"}));
    add(&c, "a");
    let broken = conf(dir.path(), json!({"subnet": "not a subnet"}));
    del(&broken, "a");
    assert!(reservations(dir.path()).is_empty());
}

#[test]
fn check_compares_prev_result_with_the_reservation() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.13.0.0/24"}));
    let r = call(hl(), "ADD", &c).run().ok();
    let mut with_prev = c.clone();
    with_prev["prevResult"] = r.clone();
    call(hl(), "CHECK", &with_prev).run().ok();
    // Another plugin's address outside our ranges is not ours to judge.
    with_prev["prevResult"]["ips"]
        .as_array_mut()
        .unwrap()
        .push(json!({"address": "192.0.2.5/24"}));
    call(hl(), "CHECK", &with_prev).run().ok();
    // An address of our range that this attachment does not hold fails.
    with_prev["prevResult"]["ips"][0]["address"] = json!("10.13.0.77/24");
    assert!(
        call(hl(), "CHECK", &with_prev)
            .run()
            .err_code(104)
            .contains("10.13.0.77")
    );
    // A container ID that looks like an address is not matched against the cursor file.
    call(hl(), "CHECK", &c).id("10.13.0.2").run().err_code(104);
}

#[test]
fn gc_releases_what_is_not_valid() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.14.0.0/24"}));
    for id in ["a", "b", "c"] {
        add(&c, id);
    }
    fs::write(dir.path().join("net1/10.14.0.50"), "legacy").unwrap();
    let gc = |key: &str, valid: Value| {
        let mut g = c.clone();
        g[key] = valid;
        call(hl(), "GC", &g)
            .unset("CNI_CONTAINERID")
            .unset("CNI_IFNAME")
            .unset("CNI_NETNS")
            .run()
            .ok();
    };
    let att = |id: &str| json!({"containerID": id, "ifname": "eth0"});
    // Without either key, nothing can be judged stale.
    call(hl(), "GC", &c).run().ok();
    assert_eq!(reservations(dir.path()).len(), 4);
    gc(
        "cni.dev/valid-attachments",
        json!([att("a"), att("b"), att("c"), att("legacy")]),
    );
    assert_eq!(reservations(dir.path()).len(), 4);
    gc("cni.dev/attachments", json!([att("b")]));
    assert_eq!(
        reservations(dir.path()),
        [("10.14.0.3".to_string(), "b\r\neth0".to_string())]
    );
}

#[test]
fn crash_leftovers_are_reclaimed() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.15.0.0/29"}));
    add(&c, "a");
    let net = dir.path().join("net1");
    // A reservation torn by a crash (upstream writes without fsync), a
    // temporary file of ours, and a torn index.
    fs::write(net.join("10.15.0.3"), "").unwrap();
    fs::write(net.join(".reserving-10.15.0.4"), "b\r\neth0").unwrap();
    let index = net.join("cni-reference.index");
    let mut bytes = fs::read(&index).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(&index, bytes).unwrap();
    assert_eq!(add(&c, "b"), ["10.15.0.3/29"]);
    assert!(!net.join(".reserving-10.15.0.4").exists());
    assert_eq!(
        reservations(dir.path()),
        [
            ("10.15.0.2".to_string(), "a\r\neth0".to_string()),
            ("10.15.0.3".to_string(), "b\r\neth0".to_string())
        ]
    );
}

#[test]
fn changes_made_behind_the_index_are_seen() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.16.0.0/29"}));
    add(&c, "a");
    let net = dir.path().join("net1");
    // Another implementation reserves .3 and releases .2.
    fs::write(net.join("10.16.0.3"), "x\r\neth0").unwrap();
    fs::remove_file(net.join("10.16.0.2")).unwrap();
    assert_eq!(add(&c, "b"), ["10.16.0.4/29"]);
    call(hl(), "ADD", &c).id("x").run().err_code(103);
    call(hl(), "ADD", &c).id("a").run().ok();
}

#[test]
fn names_and_ids_cannot_escape_the_data_dir() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let mut c = conf(&data, json!({"subnet": "10.17.0.0/24"}));
    for name in ["../escape", "..", "a/b", "/abs"] {
        c["name"] = json!(name);
        call(hl(), "ADD", &c).run().err_code(7);
        call(hl(), "DEL", &c).run().err_code(7);
    }
    c["name"] = json!("net1");
    for id in ["../../escape", "a/b", "/etc/passwd"] {
        call(hl(), "ADD", &c).id(id).run().err_code(4);
        call(hl(), "DEL", &c).id(id).run().err_code(4);
    }
    call(hl(), "ADD", &c)
        .env("CNI_IFNAME", "../x")
        .run()
        .err_code(4);
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        entries.is_empty(),
        "nothing may be created anywhere: {entries:?}"
    );
}

#[test]
fn parallel_adds_never_share_an_address() {
    let dir = TempDir::new().unwrap();
    let c = conf(dir.path(), json!({"subnet": "10.18.0.0/28"}));
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                s.spawn({
                    let c = &c;
                    move || call(hl(), "ADD", c).id(&format!("p{i}")).run()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == 0)
        .map(|o| o.ok()["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    // A /28 holds 13 assignable addresses (.1 is the gateway).
    assert_eq!(ok.len(), 13);
    assert_eq!(
        ok.iter().collect::<HashSet<_>>().len(),
        13,
        "duplicate address: {ok:?}"
    );
    for o in outcomes.iter().filter(|o| o.status != 0) {
        o.err_code(101);
    }
    std::thread::scope(|s| {
        for i in 0..20 {
            let c = &c;
            s.spawn(move || del(c, &format!("p{i}")));
        }
    });
    assert!(reservations(dir.path()).is_empty());
    assert_eq!(add(&c, "again"), ["10.18.0.2/28"]);
}
