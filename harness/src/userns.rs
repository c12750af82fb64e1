//! Rootless operation: an unprivileged harness moves itself into a new user
//! namespace, where it is root, with new network and mount namespaces.
//!
//! `unshare(CLONE_NEWUSER)` fails in a multi-threaded process, so this runs
//! first thing in `main`, before any thread exists.

use std::fs;

use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, getegid, geteuid};

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error(
        "cannot create a user namespace ({0}). Run as root, or allow unprivileged user \
         namespaces: sysctl kernel.unprivileged_userns_clone=1 (Debian), \
         kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+), \
         user.max_user_namespaces > 0"
    )]
    Unshare(nix::Error),
    #[error("cannot map uid/gid {0} into the new user namespace: {1}")]
    Map(String, std::io::Error),
}

/// How the harness runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Real root: sandboxes are made directly.
    Root,
    /// Was this uid; now root inside a user namespace of its own.
    Rootless { uid: u32 },
}

/// Becomes root in a new user namespace unless already root. Must be called
/// while the process has a single thread.
pub fn ensure_root() -> Result<Privilege, UsernsError> {
    let (uid, gid) = (geteuid(), getegid());
    if uid.is_root() {
        return Ok(Privilege::Root);
    }
    enter(uid, gid)?;
    Ok(Privilege::Rootless { uid: uid.as_raw() })
}

fn enter(uid: Uid, gid: Gid) -> Result<(), UsernsError> {
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
        .map_err(UsernsError::Unshare)?;
    let write = |path: &str, text: String| {
        fs::write(path, &text).map_err(|e| UsernsError::Map(format!("{path} <- {text}"), e))
    };
    // setgroups must be denied before an unprivileged process may map gids.
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}
