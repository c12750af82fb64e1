//! The exec protocol through the real host-local binary: result shapes per
//! version and every error code it can produce.

mod support;

use std::fs::File;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use rstest::rstest;
use serde_json::{Value, json};
use support::{call, ours};
use tempfile::TempDir;

fn conf(version: &str, dir: &Path) -> Value {
    json!({
        "cniVersion": version, "name": "net1", "type": "host-local",
        "ipam": {"type": "host-local", "subnet": "10.1.2.0/24", "dataDir": dir,
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.1.2.254"}]}
    })
}

fn hl() -> std::path::PathBuf {
    ours("host-local")
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[rstest]
fn add_result_has_the_requested_version_shape(
    #[values("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")] version: &str,
) {
    let dir = TempDir::new().unwrap();
    let r = call(hl(), "ADD", &conf(version, dir.path())).run().ok();
    assert_eq!(r["cniVersion"], version);
    match version {
        "0.1.0" | "0.2.0" => {
            assert_eq!(keys(&r), ["cniVersion", "dns", "ip4"]);
            assert_eq!(
                r["ip4"],
                json!({"ip": "10.1.2.2/24", "gateway": "10.1.2.1",
                       "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.1.2.254"}]})
            );
        }
        _ => {
            // Abbreviated IPAM result: no interfaces, no interface index.
            assert_eq!(keys(&r), ["cniVersion", "dns", "ips", "routes"]);
            let mut ip = json!({"address": "10.1.2.2/24", "gateway": "10.1.2.1"});
            if version.starts_with("0.") {
                ip["version"] = json!("4");
            }
            assert_eq!(r["ips"], json!([ip]));
            assert_eq!(
                r["routes"][1],
                json!({"dst": "10.9.0.0/16", "gw": "10.1.2.254"})
            );
        }
    }
    assert_eq!(r["dns"], json!({}));
    // DEL prints nothing and succeeds.
    assert_eq!(
        call(hl(), "DEL", &conf(version, dir.path())).run().ok(),
        Value::Null
    );
}

#[rstest]
fn check_exists_from_040(
    #[values("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")] version: &str,
) {
    let dir = TempDir::new().unwrap();
    let c = conf(version, dir.path());
    call(hl(), "ADD", &c).run().ok();
    let check = call(hl(), "CHECK", &c).run();
    if version >= "0.4.0" {
        assert_eq!(check.ok(), Value::Null);
    } else {
        assert!(check.err_code(1).contains("CHECK"));
    }
}

#[test]
fn config_without_cni_version_answers_in_010_shape() {
    let dir = TempDir::new().unwrap();
    let c = json!({"name": "macvlannet", "type": "macvlan", "master": "eth0",
                   "ipam": {"type": "host-local", "subnet": "192.168.122.0/24",
                            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": dir.path()}});
    let r = call(hl(), "ADD", &c).id("ffecae44150e").run().ok();
    assert_eq!(
        r,
        json!({"cniVersion": "0.1.0",
               "ip4": {"ip": "192.168.122.2/24", "gateway": "192.168.122.1", "routes": [{"dst": "0.0.0.0/0"}]},
               "dns": {}})
    );
}

#[test]
fn version_echoes_a_known_input_version() {
    let v = |stdin: &str| call(hl(), "VERSION", &json!({})).stdin(stdin).run().ok();
    let all = json!([
        "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"
    ]);
    assert_eq!(
        v(r#"{"cniVersion":"0.4.0"}"#),
        json!({"cniVersion": "0.4.0", "supportedVersions": all})
    );
    assert_eq!(v("")["cniVersion"], "1.1.0");
    assert_eq!(v("{garbage")["cniVersion"], "1.1.0");
    assert_eq!(v(r#"{"cniVersion":"9.9.9"}"#)["supportedVersions"], all);
}

#[test]
fn version_needs_no_other_variable() {
    let out = call(hl(), "VERSION", &json!({}))
        .unset("CNI_CONTAINERID")
        .unset("CNI_NETNS")
        .unset("CNI_IFNAME")
        .unset("CNI_PATH")
        .run();
    assert_eq!(out.ok()["cniVersion"], "1.1.0");
}

#[test]
fn code_1_incompatible_version() {
    let dir = TempDir::new().unwrap();
    let out = call(hl(), "ADD", &conf("9.9.9", dir.path())).run();
    assert!(out.err_code(1).contains("9.9.9"));
    assert!(out.err()["details"].as_str().unwrap().contains("1.1.0"));
    for (verb, version) in [("CHECK", "0.3.1"), ("GC", "1.0.0"), ("STATUS", "1.0.0")] {
        let msg = call(hl(), verb, &conf(version, dir.path()))
            .run()
            .err_code(1);
        assert!(msg.contains(verb), "{msg}");
    }
}

#[rstest]
#[case::no_ifname(&["CNI_IFNAME"], &[], "CNI_IFNAME")]
#[case::no_container_id(&["CNI_CONTAINERID"], &[], "CNI_CONTAINERID")]
#[case::no_netns(&["CNI_NETNS"], &[], "CNI_NETNS")]
#[case::no_command(&["CNI_COMMAND"], &[], "CNI_COMMAND")]
#[case::unknown_command(&[], &[("CNI_COMMAND", "FROB")], "CNI_COMMAND")]
#[case::bad_container_id(&[], &[("CNI_CONTAINERID", "a/../b")], "CNI_CONTAINERID")]
#[case::leading_dash(&[], &[("CNI_CONTAINERID", "-abc")], "CNI_CONTAINERID")]
#[case::long_ifname(&[], &[("CNI_IFNAME", "abcdefghijklmnop")], "CNI_IFNAME")]
#[case::ifname_colon(&[], &[("CNI_IFNAME", "a:b")], "CNI_IFNAME")]
#[case::ifname_dots(&[], &[("CNI_IFNAME", "..")], "CNI_IFNAME")]
#[case::bad_args(&[], &[("CNI_ARGS", "IgnoreUnknown=1;IP")], "CNI_ARGS")]
fn code_4_names_the_variable(
    #[case] unset: &[&str],
    #[case] set: &[(&str, &str)],
    #[case] var: &str,
) {
    let dir = TempDir::new().unwrap();
    let mut c = call(hl(), "ADD", &conf("1.0.0", dir.path()));
    for k in unset {
        c = c.unset(k);
    }
    for (k, v) in set {
        c = c.env(k, *v);
    }
    let msg = c.run().err_code(4);
    assert!(msg.contains(var), "{msg}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing may be written"
    );
}

#[test]
fn del_needs_no_netns_and_gc_status_need_no_attachment() {
    let dir = TempDir::new().unwrap();
    call(hl(), "DEL", &conf("1.0.0", dir.path()))
        .unset("CNI_NETNS")
        .run()
        .ok();
    for verb in ["GC", "STATUS"] {
        call(hl(), verb, &conf("1.1.0", dir.path()))
            .unset("CNI_CONTAINERID")
            .unset("CNI_NETNS")
            .unset("CNI_IFNAME")
            .unset("CNI_PATH")
            .run()
            .ok();
    }
}

#[test]
fn code_5_unreadable_stdin() {
    let dir = TempDir::new().unwrap();
    let msg = call(hl(), "ADD", &conf("1.0.0", dir.path()))
        .unreadable_stdin()
        .run()
        .err_code(5);
    assert!(msg.contains("stdin"), "{msg}");
}

#[rstest]
#[case::not_json("{not json")]
#[case::empty("")]
#[case::not_an_object("[1,2]")]
#[case::version_not_a_string(r#"{"cniVersion":1,"name":"n"}"#)]
fn code_6_undecodable(#[case] stdin: &str) {
    let dir = TempDir::new().unwrap();
    call(hl(), "ADD", &conf("1.0.0", dir.path()))
        .stdin(stdin)
        .run()
        .err_code(6);
}

#[rstest]
#[case::no_name(json!({"cniVersion":"1.0.0","ipam":{"subnet":"10.0.0.0/24"}}), "name")]
#[case::bad_name(json!({"cniVersion":"1.0.0","name":"../x","ipam":{"subnet":"10.0.0.0/24"}}), "name")]
#[case::no_ipam(json!({"cniVersion":"1.0.0","name":"n"}), "ipam")]
#[case::no_ranges(json!({"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}), "ranges")]
#[case::host_bits(json!({"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.0.0.5/24"}}), "ipam.subnet")]
#[case::slash_31(json!({"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/31"}]]}}), "ipam.ranges[0]")]
#[case::inverted(json!({"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.3"}}), "rangeStart")]
#[case::mixed(json!({"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]}}), "mixed")]
#[case::overlap(json!({"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/16"}],[{"subnet":"10.0.1.0/24"}]]}}), "overlaps")]
#[case::two_v4_at_020(json!({"cniVersion":"0.2.0","name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.1.0.0/24"}]]}}), "one address per family")]
#[case::bad_route(json!({"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.0.0.0/24","routes":[{"dst":"nowhere"}]}}), "ipam.routes[0]")]
#[case::bad_type(json!({"cniVersion":"1.0.0","name":"n","ipam":{"subnet":["10.0.0.0/24"]}}), "ipam")]
#[case::bad_requested(json!({"cniVersion":"1.0.0","name":"n","args":{"cni":{"ips":["bogus"]}},"ipam":{"subnet":"10.0.0.0/24"}}), "args.cni.ips")]
#[case::missing_resolv(json!({"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.0.0.0/24","resolvConf":"/nonexistent/resolv.conf"}}), "resolvConf")]
fn code_7_names_the_field(#[case] mut c: Value, #[case] field: &str) {
    let dir = TempDir::new().unwrap();
    if let Some(ipam) = c.get_mut("ipam") {
        ipam["dataDir"] = json!(dir.path());
    }
    // Code 7 is defined from 1.0.0; before, the plugin answers 120 + 7.
    let want = if c["cniVersion"] == "1.0.0" { 7 } else { 127 };
    let msg = call(hl(), "ADD", &c).run().err_code(want);
    assert!(msg.contains(field), "{msg}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing may be written"
    );
}

#[test]
fn code_11_when_the_store_stays_locked() {
    let dir = TempDir::new().unwrap();
    let c = conf("1.0.0", dir.path());
    call(hl(), "ADD", &c).run().ok();
    let lock = File::open(dir.path().join("net1/lock")).unwrap();
    let _held = Flock::lock(lock, FlockArg::LockExclusive).unwrap();
    let msg = call(hl(), "ADD", &c)
        .id("c2")
        .env("CNI_REFERENCE_LOCK_TIMEOUT_MS", "200")
        .run()
        .err_code(11);
    assert!(msg.contains("lock"), "{msg}");
}

#[test]
fn code_50_status_exhausted_or_unusable() {
    let dir = TempDir::new().unwrap();
    let mut c = conf("1.1.0", dir.path());
    c["ipam"]["subnet"] = json!("10.1.2.0/30");
    call(hl(), "STATUS", &c).run().ok();
    call(hl(), "ADD", &c).run().ok();
    assert!(
        call(hl(), "STATUS", &c)
            .run()
            .err_code(50)
            .contains("no free address")
    );
    call(hl(), "DEL", &c).run().ok();
    call(hl(), "STATUS", &c).run().ok();

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    c["ipam"]["dataDir"] = json!(file);
    call(hl(), "STATUS", &c).run().err_code(50);
}

#[test]
fn code_100_store_unusable_on_add() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut c = conf("1.0.0", dir.path());
    c["ipam"]["dataDir"] = json!(file);
    assert!(call(hl(), "ADD", &c).run().err_code(100).contains("a-file"));
}

#[test]
fn errors_carry_the_config_version_and_go_to_stdout_only() {
    let dir = TempDir::new().unwrap();
    let mut c = conf("0.4.0", dir.path());
    c["ipam"]["subnet"] = json!("10.1.2.0/30");
    call(hl(), "ADD", &c).run().ok();
    let out = call(hl(), "ADD", &c).id("c2").run();
    let e = out.err();
    assert_eq!(e["cniVersion"], "0.4.0");
    assert_eq!(e["code"], 101);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "exactly one document: {}",
        out.stdout
    );
}

/// Codes 1-99 "must not be used other than as specified here": a code the
/// requested version does not define yet becomes 120 + the code.
#[test]
fn well_known_codes_follow_the_requested_version() {
    let dir = TempDir::new().unwrap();
    for (version, want) in [("0.4.0", 124), ("1.0.0", 4), ("0.1.0", 124)] {
        let mut c = conf(version, dir.path());
        c["cniVersion"] = json!(version);
        call(hl(), "ADD", &c)
            .unset("CNI_IFNAME")
            .run()
            .err_code(want);
    }
}
