//! The schemas against their examples, against broken results, and against
//! what real plugins (upstream and ours) print in every version they speak.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cni_conformance::runtime::{Attachment, NetworkConfig, Runtime};
use cni_conformance::sandbox::{Sandbox, SandboxOptions};
use cni_conformance::schema::{self, Kind, SCHEMAS};
use serde_json::{Value, json};
use tempfile::TempDir;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples")
}

fn docs(dir: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .map(|p| {
                    (
                        p.display().to_string(),
                        serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_schema_has_examples_and_they_behave() {
    let mut seen = 0;
    for (name, _) in SCHEMAS {
        let dir = examples_dir().join(name.trim_end_matches(".json"));
        let (valid, invalid) = (docs(&dir.join("valid")), docs(&dir.join("invalid")));
        assert!(
            !valid.is_empty() && !invalid.is_empty(),
            "{name} needs valid and invalid examples in {}",
            dir.display()
        );
        for (path, doc) in valid {
            let v = schema::validate_against(name, &doc);
            assert!(v.is_empty(), "{path} should be valid: {v:#?}");
            seen += 1;
        }
        for (path, doc) in invalid {
            assert!(
                !schema::validate_against(name, &doc).is_empty(),
                "{path} should be invalid"
            );
            seen += 1;
        }
    }
    assert!(seen >= 40, "only {seen} examples");
}

#[test]
fn broken_results_are_rejected_with_a_pointer_to_the_field() {
    let cases = [
        (
            "missing prefix length",
            json!({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2"}]}),
            "/ips/0/address",
        ),
        (
            "bad MAC",
            json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"0a:58"}]}),
            "/interfaces/0/mac",
        ),
        (
            "interface index out of range",
            json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.1.0.2/24","interface":1}]}),
            "/ips/0/interface",
        ),
        (
            "ip4 at 1.0.0",
            json!({"cniVersion":"1.0.0","ip4":{"ip":"10.1.0.2/24"}}),
            "/ip4",
        ),
        (
            "version field at 1.0.0",
            json!({"cniVersion":"1.0.0","ips":[{"version":"4","address":"10.1.0.2/24"}]}),
            "/ips/0/version",
        ),
    ];
    for (what, doc, pointer) in cases {
        let v = schema::validate(Kind::Result, "1.0.0", &doc).unwrap();
        assert!(
            v.iter().any(|x| x.pointer == pointer),
            "{what}: expected a violation at {pointer}, got {v:#?}"
        );
    }
}

fn plugin_dir(upstream: bool) -> PathBuf {
    if upstream {
        let d = PathBuf::from("/usr/lib/cni");
        assert!(
            d.join("macvlan").is_file(),
            "install containernetworking-plugins"
        );
        d
    } else {
        PathBuf::from(env!("CARGO_BIN_EXE_cni-conformance"))
            .parent()
            .unwrap()
            .to_path_buf()
    }
}

/// ADD results of macvlan (full) and host-local (abbreviated), VERSION and
/// an error, in every version the plugins speak, all valid.
fn real_outputs_validate(upstream: bool) {
    let dir = plugin_dir(upstream);
    let store = TempDir::new().unwrap();
    let mut sb = Sandbox::new(&SandboxOptions {
        master: Some("eth0".into()),
        ..Default::default()
    })
    .unwrap();
    let c = sb.add_container("ctr").unwrap();
    let rt = Runtime::new(&sb, vec![dir], Duration::from_secs(30));
    let version = rt
        .version("macvlan", "1.0.0")
        .unwrap()
        .outcome
        .json()
        .unwrap();
    assert!(
        schema::validate(Kind::Version, "1.0.0", &version)
            .unwrap()
            .is_empty(),
        "{version}"
    );
    let versions: Vec<String> = version["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(versions.len() >= 6);
    for (i, v) in versions.iter().enumerate() {
        let att = Attachment {
            container_id: format!("c{i}"),
            ifname: "eth0".into(),
            netns: sb.container(c).proc_path(),
            args: vec![],
            capability_args: Default::default(),
        };
        for (plugin, kind) in [("host-local", Kind::IpamResult), ("macvlan", Kind::Result)] {
            let conf = json!({"cniVersion": v, "name": format!("net-{plugin}"), "type": plugin, "master": "eth0",
                              "ipam": {"type": "host-local", "subnet": "10.50.0.0/24", "dataDir": store.path(),
                                       "routes": [{"dst": "0.0.0.0/0"}]}});
            let net = NetworkConfig::parse(conf.to_string().as_bytes()).unwrap();
            let run = rt.add(&net, &att).unwrap();
            let step = &run.steps[0];
            assert!(
                step.outcome.success(),
                "{plugin} ADD {v}: {}",
                step.outcome.stdout_text()
            );
            let doc = step.outcome.json().unwrap();
            let violations = schema::validate(kind, v, &doc).unwrap();
            assert!(
                violations.is_empty(),
                "{plugin} ADD {v}: {doc}\n{violations:#?}"
            );
            assert!(rt.del(&net, &att).unwrap().succeeded());
        }
    }
    let bad = json!({"cniVersion": "1.0.0", "name": "n", "type": "macvlan", "master": "nope",
                     "ipam": {"type": "host-local", "subnet": "10.51.0.0/24", "dataDir": store.path()}});
    let step = rt
        .call("macvlan", cni_conformance::spec::Verb::Add, bad, None)
        .unwrap();
    let err = step.outcome.json().unwrap();
    assert!(!step.outcome.success());
    assert!(
        schema::validate(Kind::Error, "1.0.0", &err)
            .unwrap()
            .is_empty(),
        "{err}"
    );
}

#[test]
fn upstream_outputs_validate() {
    real_outputs_validate(true);
}

#[test]
fn reference_outputs_validate() {
    real_outputs_validate(false);
}
