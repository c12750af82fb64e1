//! Snapshots of a whole sandbox: every namespace it holds and the state
//! plugins wrote under its overlaid folders.

use crate::sandbox::{Sandbox, SandboxError, Scope};
use crate::snapshot::{self, Change, NetnsSnapshot, Parts, Snapshot, SnapshotError};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// Captures the host, peer and container namespaces (labelled "host",
/// "peer", "container <name>") and the state layers.
pub fn capture(sb: &Sandbox) -> Result<Snapshot, ObserveError> {
    let mut snap = Snapshot::default();
    let mut scopes = vec![Scope::Host];
    if sb.has_peer() {
        scopes.push(Scope::Peer);
    }
    scopes.extend((0..sb.containers().len()).map(Scope::Container));
    for scope in scopes {
        snap.namespaces
            .insert(sb.scope_name(scope), capture_scope(sb, scope, Parts::ALL)?);
    }
    for (label, layer) in sb.state_layers() {
        snap.files.insert(label, snapshot::capture_files(&layer)?);
    }
    Ok(snap)
}

/// Captures `parts` of one namespace: iproute2 run inside it, sysctls
/// read from it.
pub fn capture_scope(
    sb: &Sandbox,
    scope: Scope,
    parts: Parts,
) -> Result<NetnsSnapshot, ObserveError> {
    let runner = |batch: &str| {
        use std::io::{Read, Write};
        let what = format!("ip {}", snapshot::IP_BATCH.join(" "));
        let start = |source| SnapshotError::Start {
            what: format!("run {what}"),
            source,
        };
        let args: Vec<&std::ffi::OsStr> = snapshot::IP_BATCH.iter().map(|a| a.as_ref()).collect();
        let mut child = sb
            .spawn_in(scope, crate::sandbox::ip_program(), &args)
            .map_err(start)?;
        // A few short lines: they fit the pipe, so writing cannot block.
        let written = child.stdin.write_all(batch.as_bytes());
        drop(child.stdin);
        // The answer is read before stderr: `ip` writes its errors only
        // when it stops, after its last answer.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read = child
            .stdout
            .read_to_end(&mut out)
            .and_then(|_| child.stderr.read_to_end(&mut err));
        let status = Sandbox::reap(child.pid).map_err(start)?;
        if status.success() {
            written.and(read).map_err(start)?;
        } else {
            return Err(SnapshotError::Command {
                program: what,
                detail: String::from_utf8_lossy(&err).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    let mut netns = snapshot::capture_parts(runner, parts)?;
    if parts.sysctls {
        netns.sysctls = sysctls_of(sb, scope)?;
    }
    Ok(netns)
}

/// The sysctls of `scope`'s namespace, read on a thread of its own that
/// enters it (the harness's other threads never change namespace).
fn sysctls_of(
    sb: &Sandbox,
    scope: Scope,
) -> Result<std::collections::BTreeMap<String, String>, ObserveError> {
    let fd = sb.netns_fd(scope);
    std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("sysctls".into())
            .spawn_scoped(s, || {
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    SnapshotError::Start {
                        what: "enter the namespace".into(),
                        source: e.into(),
                    }
                })?;
                snapshot::read_sysctls()
            })
            .map_err(|source| SnapshotError::Start {
                what: "start a thread to read sysctls".into(),
                source,
            })?;
        reader.join().unwrap_or_else(|_| {
            Err(SnapshotError::Command {
                program: "the sysctl reader".into(),
                detail: "it panicked".into(),
            })
        })
    })
    .map_err(ObserveError::from)
}

pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    snapshot::diff(before, after)
}
