//! Sandboxes come up as described and leave nothing behind.

use std::path::Path;

use cni_conformance::sandbox::{MasterKind, Sandbox, SandboxOptions, Scope};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_sandbox_has_a_master_containers_and_private_state_dirs() {
    let mut sb = Sandbox::new(&SandboxOptions {
        master: Some("eth0".into()),
        prefer_veth: false,
        ..Default::default()
    })
    .unwrap();
    let master = sb.master().unwrap().clone();
    let shown = sb.ip(Scope::Host, &["-d", "link", "show", "eth0"]).unwrap();
    match master.kind {
        MasterKind::Dummy => assert!(shown.contains("dummy"), "{shown}"),
        MasterKind::Veth => {
            assert!(shown.contains("veth"), "{shown}");
            assert!(
                sb.ip(Scope::Peer, &["link", "show", "eth0"])
                    .unwrap()
                    .contains("UP")
            );
        }
    }
    let c = sb.add_container("ctr0").unwrap();
    assert!(
        sb.ip(Scope::Container(c), &["link", "show", "lo"])
            .unwrap()
            .contains("UP")
    );
    // Both paths name the same namespace, as seen from where plugins run.
    let proc_path = sb.container(c).proc_path();
    let file = sb.container(c).file_path().to_path_buf();
    let out = sb
        .plugin_command("sh")
        .args([
            "-c",
            &format!(
                "readlink {proc_path}; stat -L -c %i {proc_path} {}",
                file.display()
            ),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let inodes: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        inodes.len(),
        2,
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        inodes[0], inodes[1],
        "the bind-mounted file is not the container's namespace"
    );
    // A plugin writing to /var/lib/cni writes into the sandbox, not the machine.
    let marker = format!("/var/lib/cni/conformance-probe-{}", std::process::id());
    let status = sb
        .plugin_command("sh")
        .args(["-c", &format!("mkdir -p /var/lib/cni && echo x > {marker}")])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        !Path::new(&marker).exists(),
        "the write reached the machine"
    );
    let layer = sb
        .state_layers()
        .into_iter()
        .find(|(l, _)| l == "state /var/lib")
        .unwrap()
        .1;
    assert!(layer.join(marker.trim_start_matches("/var/lib/")).exists());
}

#[test]
fn dropping_a_sandbox_leaves_no_process_folder_or_namespace() {
    let mut sb = Sandbox::new(&SandboxOptions {
        master: Some("m0".into()),
        prefer_veth: true,
        ..Default::default()
    })
    .unwrap();
    sb.add_container("a").unwrap();
    sb.add_container("b").unwrap();
    let pids = sb.pids();
    let dir = sb.dir().to_path_buf();
    assert_eq!(pids.len(), 4, "keeper, peer and two containers");
    assert!(pids.iter().all(|p| alive(*p)));
    drop(sb);
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived its sandbox");
    }
    assert!(!dir.exists(), "{} outlived its sandbox", dir.display());
}

#[test]
fn a_profile_data_dir_is_overlaid_too() {
    let base = tempfile::TempDir::new().unwrap();
    let data_dir = base.path().join("not-yet/networks");
    let sb = Sandbox::new(&SandboxOptions {
        state_dirs: vec![data_dir.clone()],
        ..Default::default()
    })
    .unwrap();
    let status = sb
        .plugin_command("sh")
        .args([
            "-c",
            &format!("mkdir -p {0} && echo x > {0}/probe", data_dir.display()),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        !base.path().join("not-yet").exists(),
        "the write reached the machine"
    );
    let labels: Vec<String> = sb.state_layers().into_iter().map(|(l, _)| l).collect();
    assert!(
        labels.contains(&format!("state {}", base.path().display())),
        "{labels:?}"
    );
}
