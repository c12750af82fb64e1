//! `cni-conformance doctor`: can this machine run the suite, and how.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use cni_conformance::profile::Profile;
use cni_conformance::runtime::Runtime;
use cni_conformance::sandbox::{Sandbox, Scope};
use cni_conformance::suite;
use cni_conformance::userns::Privilege;

fn line(ok: bool, what: &str, meaning: &str) {
    out!("{} {what:<34} {meaning}", if ok { "ok  " } else { "--  " });
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Prints one line per fact; fails only when no sandbox can be made.
pub(crate) fn doctor(privilege: Privilege, plugin_dirs: &[PathBuf]) -> Result<bool> {
    match privilege {
        Privilege::Root => line(true, "privileges: root", "sandboxes are made directly"),
        Privilege::Rootless { uid } => line(
            true,
            &format!("privileges: uid {uid}"),
            "running as root inside a user namespace of its own",
        ),
    }
    let userns_clone = read("/proc/sys/kernel/unprivileged_userns_clone");
    let max = read("/proc/sys/user/max_user_namespaces");
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let rootless_ok = userns_clone.as_deref() != Some("0")
        && max.as_deref() != Some("0")
        && apparmor.as_deref() != Some("1");
    line(
        rootless_ok,
        "unprivileged user namespaces",
        if rootless_ok {
            "ordinary users can run the suite without sudo"
        } else {
            "only root can run the suite (see kernel.unprivileged_userns_clone, user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns)"
        },
    );
    // Exactly the sandbox a run's cases get, proven as a run proves it.
    let profile = Profile::built_in("macvlan").expect("built in");
    let sb = match suite::usable_sandbox(&profile, "macvlan") {
        Ok(sb) => {
            line(
                true,
                "sandbox",
                "throwaway host namespace with /var/lib and /run overlaid: plugins cannot touch the machine",
            );
            let base = sb.dir().parent().unwrap_or(sb.dir()).to_path_buf();
            line(
                true,
                "sandbox folders",
                &if base == std::path::Path::new("/dev/shm") {
                    "in /dev/shm (memory): plugins' fsyncs of throwaway state cost nothing"
                        .to_string()
                } else {
                    format!(
                        "in {} (no writable memory file system at /dev/shm): runs are slower where plugins fsync",
                        base.display()
                    )
                },
            );
            line(
                true,
                "state folders",
                &format!(
                    "{} and the profiles' dataDir are empty and writable for plugins, whatever the machine holds",
                    sb.state_folders()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            sb
        }
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            line(false, "sandbox", &format!("{why}; no check can run"));
            return Ok(false);
        }
    };
    let kinds = link_kinds(&sb);
    upstream(&kinds);
    match (
        cni_conformance::sandbox::cgroup::available(),
        cni_conformance::sandbox::cgroup::hierarchy(),
    ) {
        (true, Some(dir)) => line(
            true,
            "process tracking: cgroup v2",
            &format!(
                "under {}: what a call leaves running is named and ended",
                dir.display()
            ),
        ),
        _ => line(
            false,
            "process tracking: none",
            "no writable cgroup v2: plugins are ended by process group only, a detached process is not seen (leak.processes not applicable)",
        ),
    }
    {
        use cni_conformance::sandbox::cgroup::{TASK_LIMIT, TaskBound, task_bound};
        let bounded = format!(
            "a call may have {TASK_LIMIT} processes and threads at once; a fork bomb meets that bound"
        );
        match task_bound() {
            Some(TaskBound::V2) => line(true, "fork bound: cgroup v2 pids", &bounded),
            Some(TaskBound::V1(dir)) => line(
                true,
                "fork bound: cgroup v1 pids",
                &format!("under {}: {bounded}", dir.parent().unwrap_or(dir).display()),
            ),
            None => line(
                false,
                "fork bound: none",
                "no pids controller to use: a plugin's processes are bounded only by the machine's limits",
            ),
        }
    }
    for tool in ["ip", "ping"] {
        let found = cni_conformance::sandbox::find_in_path(tool);
        line(
            found.is_some(),
            &format!("tool {tool}"),
            match (tool, found.is_some()) {
                ("ip", true) => "used to build sandboxes and read kernel state",
                ("ip", false) => "missing: install iproute2; no sandbox can be built",
                (_, true) => "used to prove a container is reachable from the peer",
                (_, false) => "missing: reachability is not checked (install iputils-ping)",
            },
        );
    }
    plugins(&sb, plugin_dirs);
    Ok(true)
}

/// Which link kinds the kernel makes, with a line for each.
fn link_kinds(sb: &Sandbox) -> Vec<(&'static str, bool)> {
    let add = |args: &[&str]| sb.ip(Scope::Host, args).is_ok();
    let veth = add(&[
        "link", "add", "dr-veth", "type", "veth", "peer", "name", "dr-vethp",
    ]);
    let kinds = [
        (
            "dummy",
            add(&["link", "add", "dr-dummy", "type", "dummy"]),
            "masters are dummy links",
            "masters are veth pairs with a peer namespace",
        ),
        (
            "veth",
            veth,
            "peer namespaces can reach containers",
            "no veth: masters need the dummy driver and no peer can ping",
        ),
        (
            "macvlan",
            veth && add(&["link", "add", "dr-mv", "link", "dr-veth", "type", "macvlan"]),
            "macvlan plugins can be tested",
            "macvlan plugins cannot be tested here",
        ),
        (
            "ipvlan",
            veth && add(&["link", "add", "dr-iv", "link", "dr-veth", "type", "ipvlan"]),
            "ipvlan plugins can be tested",
            "ipvlan plugins cannot be tested here",
        ),
        (
            "bridge",
            add(&["link", "add", "dr-br", "type", "bridge"]),
            "bridge plugins can be tested",
            "bridge plugins cannot be tested here",
        ),
        (
            "vlan",
            veth && add(&[
                "link", "add", "link", "dr-veth", "name", "dr-vlan", "type", "vlan", "id", "5",
            ]),
            "vlan plugins can be tested",
            "vlan plugins cannot be tested here",
        ),
        (
            "vrf",
            add(&["link", "add", "dr-vrf", "type", "vrf", "table", "10"]),
            "vrf plugins can be tested",
            "vrf plugins cannot be tested here",
        ),
        (
            "ifb",
            add(&["link", "add", "dr-ifb", "type", "ifb"]),
            "bandwidth can shape egress",
            "bandwidth cannot shape egress here",
        ),
    ];
    for (kind, ok, yes, no) in &kinds {
        line(
            *ok,
            &format!("link kind {kind}"),
            if *ok { yes } else { no },
        );
    }
    kinds.iter().map(|(k, ok, ..)| (*k, *ok)).collect()
}

/// The upstream plugins the suite judges (a built-in profile each), and
/// why the others are not judged here.
fn upstream(kinds: &[(&str, bool)]) {
    let has = |k: &str| kinds.iter().any(|(kind, ok)| *kind == k && *ok);
    let names = cni_conformance::profile::built_in_names();
    line(true, "built-in profiles", &names);
    for (plugin, why) in [
        (
            "vlan",
            (!has("vlan")).then_some("the kernel makes no vlan links here"),
        ),
        (
            "ipvlan",
            (!has("ipvlan")).then_some("the kernel makes no ipvlan links here"),
        ),
        (
            "vrf",
            (!has("vrf")).then_some("the kernel makes no vrf links here"),
        ),
        (
            "dhcp",
            Some("needs `dhcp daemon` running and a DHCP server on the segment"),
        ),
    ] {
        let why = why.unwrap_or("no built-in profile yet: pass --profile FILE");
        line(
            false,
            &format!("plugin {plugin}"),
            &format!("not judged: {why}"),
        );
    }
}

fn plugins(sb: &Sandbox, dirs: &[PathBuf]) {
    for dir in dirs {
        for name in ["macvlan", "host-local"] {
            let path = dir.join(name);
            if !path.is_file() {
                line(false, &format!("{}", path.display()), "not found");
                continue;
            }
            let single = Runtime::new(sb, vec![dir.to_path_buf()], Duration::from_secs(10));
            let versions = single
                .version(name, cni_conformance::spec::Version::NEWEST.as_str())
                .ok()
                .and_then(|s| s.outcome.json())
                .and_then(|v| v.get("supportedVersions").cloned())
                .map(|v| v.to_string())
                .unwrap_or_else(|| "did not answer VERSION".into());
            line(
                true,
                &format!("{}", path.display()),
                &format!("speaks {versions}"),
            );
        }
    }
}

/// The folders searched for plugins by default: the reference plugins
/// beside this binary, then the usual install locations.
pub(crate) fn default_plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(here) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(here);
    }
    dirs.extend(
        ["/opt/cni/bin", "/usr/lib/cni"]
            .map(PathBuf::from)
            .into_iter()
            .filter(|d| d.is_dir()),
    );
    dirs
}
