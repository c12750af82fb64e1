//! Snapshots of a whole sandbox: every namespace it holds and the state
//! plugins wrote under its overlaid folders.

use crate::sandbox::{Sandbox, SandboxError, Scope};
use crate::snapshot::{self, Change, Snapshot, SnapshotError};

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
        let runner = |program: &str, args: &[&str]| {
            let out = sb
                .command(scope, program)
                .args(args)
                .output()
                .map_err(|e| SnapshotError::Command {
                    program: program.into(),
                    detail: e.to_string(),
                })?;
            if !out.status.success() {
                return Err(SnapshotError::Command {
                    program: format!("{program} {}", args.join(" ")),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        snap.namespaces
            .insert(sb.scope_name(scope), snapshot::capture_netns(runner)?);
    }
    for (label, layer) in sb.state_layers() {
        snap.files.insert(label, snapshot::capture_files(&layer)?);
    }
    Ok(snap)
}

pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    snapshot::diff(before, after)
}
