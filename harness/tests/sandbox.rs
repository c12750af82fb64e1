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
        .args(["-c", &format!("echo x > {marker}")])
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
        .find(|(l, _)| l == "state /var/lib/cni")
        .unwrap()
        .1;
    assert!(
        layer
            .join(marker.trim_start_matches("/var/lib/cni/"))
            .exists()
    );
}

/// A host that has run CNI before: root-owned state folders holding
/// another run's reservations. Plugins must see them empty and writable.
/// The folders are made on tmpfs in a mount namespace of the test's own
/// (the test binary runs itself there), so the machine is not touched.
#[test]
fn state_folders_are_empty_and_writable_whatever_the_host_holds() {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "on_a_host_that_ran_cni",
            "--ignored",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run in a mount namespace of its own by state_folders_are_empty_and_writable_whatever_the_host_holds"]
fn on_a_host_that_ran_cni() {
    use std::os::unix::fs::PermissionsExt;
    for root in ["/var/lib", "/run"] {
        nix::mount::mount(
            Some("tmpfs"),
            root,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("tmpfs on {root}: {e}"));
    }
    let dirs = [
        "/var/lib/cni/networks/net1",
        "/run/cni",
        "/var/lib/vendor/state",
    ];
    for dir in dirs {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(Path::new(dir).join("10.88.0.2"), "foreign\r\neth0").unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let sb = Sandbox::new(&SandboxOptions {
        state_dirs: vec!["/var/lib/vendor/state".into()],
        ..Default::default()
    })
    .unwrap();
    sb.probe_state(&["/var/lib/cni/conformance".into()])
        .unwrap();
    let script = "for d in /var/lib/cni/networks /run/cni /var/lib/vendor/state; do \
                  [ -z \"$(ls -A $d 2>/dev/null)\" ] || { echo \"$d is not empty\"; exit 1; }; \
                  mkdir -p $d/net1 && echo c1 > $d/net1/10.88.0.2 || exit 1; done";
    let out = sb
        .plugin_command("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(sb);
    for dir in dirs {
        assert_eq!(
            std::fs::read_to_string(Path::new(dir).join("10.88.0.2")).unwrap(),
            "foreign\r\neth0",
            "the machine's file in {dir} changed"
        );
    }
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
    let layers = sb.state_layers();
    let (_, layer) = layers
        .iter()
        .find(|(l, _)| *l == format!("state {}", data_dir.display()))
        .unwrap_or_else(|| panic!("{layers:?}"));
    assert!(layer.join("probe").is_file());
}
