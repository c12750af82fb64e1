//! Paths the integration tests share.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The harness binary cargo built for these tests.
pub(crate) fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cni-conformance"))
}

/// Our reference plugins are built beside the harness in the same target
/// folder.
pub(crate) fn reference_dir() -> PathBuf {
    let dir = harness().parent().unwrap().to_path_buf();
    assert!(
        dir.join("macvlan").is_file(),
        "the reference plugins are not built in {}: run `cargo build --workspace` (cargo test --workspace does)",
        dir.display()
    );
    dir
}

/// Whether this process is real root (not root of a user namespace).
pub(crate) fn real_root() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// The harness and the reference plugins copied where any user may run
/// them.
pub(crate) fn world_readable_kit() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let kit = tempfile::TempDir::new().unwrap();
    let from = harness().parent().unwrap().to_path_buf();
    for bin in ["cni-conformance", "macvlan", "host-local"] {
        let src = from.join(bin);
        assert!(
            src.is_file(),
            "{} is not built: run `cargo test --workspace`",
            src.display()
        );
        std::fs::copy(&src, kit.path().join(bin)).unwrap();
    }
    std::fs::set_permissions(kit.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    kit
}

/// Makes, in a mount namespace of its own (on tmpfs, so the machine is not
/// touched), a host that has run CNI before: root-owned `/var/lib/cni` and
/// `/run/cni` that an ordinary user cannot write to, holding another run's
/// reservations in the networks the walkthrough and the suite use.
const USED_HOST: &str = "set -e
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /run
for d in /var/lib/cni/networks/macvlannet /var/lib/cni/networks/conformance /var/lib/cni/conformance/conformance /run/cni; do
  mkdir -p $d
  printf 'someone\\r\\neth0' > $d/192.168.122.2
  printf 'someone\\r\\neth0' > $d/10.88.0.2
  chmod 700 $d
done
chmod 700 /var/lib/cni
exec \"$@\"";

/// `program args` on a used host (see [`USED_HOST`]), as uid 65534 when
/// `unprivileged` (real root only: a user namespace cannot switch users).
pub(crate) fn on_a_used_host(
    program: &std::path::Path,
    args: &[&str],
    unprivileged: bool,
) -> std::process::Command {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        USED_HOST,
        "sh",
    ]);
    if unprivileged {
        assert!(real_root(), "only real root can switch to another user");
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    cmd.arg(program).args(args);
    cmd
}

/// A plugin folder holding the reference macvlan and host-local, or, when
/// `wrapper` is given, that script as `macvlan` with the reference one
/// beside it as `macvlan.real` (how the broken plugins are built).
pub(crate) fn macvlan_kit(wrapper: Option<&str>) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let reference = reference_dir();
    let real = match wrapper {
        Some(script) => {
            let path = dir.path().join("macvlan");
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            "macvlan.real"
        }
        None => "macvlan",
    };
    std::os::unix::fs::symlink(reference.join("macvlan"), dir.path().join(real)).unwrap();
    std::os::unix::fs::symlink(reference.join("host-local"), dir.path().join("host-local"))
        .unwrap();
    dir
}

/// `macvlan_kit` with the broken `check-prints` macvlan (it fails
/// check.no-output at 0.4.0), or the reference one.
pub(crate) fn check_prints_kit(broken: bool) -> tempfile::TempDir {
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/check-prints"),
    )
    .unwrap();
    macvlan_kit(broken.then_some(script.as_str()))
}
