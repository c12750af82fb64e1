//! Network namespaces named by `CNI_NETNS`.
//!
//! `setns` moves only the calling thread, so namespace work runs on a
//! short-lived thread of its own ([`Netns::run`]) and the main thread, which
//! executes delegated plugins, never leaves the runtime's namespace.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::{CloneFlags, setns};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

use crate::netlink;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is not a network namespace")]
    NotANamespace(String),
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter {path}: {source}")]
    Enter {
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("netlink in {path}: {source}")]
    Netlink {
        path: String,
        #[source]
        source: netlink::NetlinkError,
    },
}

pub struct Netns {
    file: File,
    path: String,
}

impl Netns {
    pub fn open(path: &str) -> Result<Netns, NetnsError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NetnsError::Missing(path.into()),
            _ => NetnsError::Open {
                path: path.into(),
                source: e,
            },
        })?;
        match fstatfs(&file) {
            Ok(fs) if fs.filesystem_type() == NSFS_MAGIC => Ok(Netns {
                file,
                path: path.into(),
            }),
            _ => Err(NetnsError::NotANamespace(path.into())),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Whether this is the namespace the plugin itself runs in: a recycled
    /// `/proc/<pid>/ns/net` can point there, and acting on it would touch
    /// the host's own interfaces.
    pub fn is_own(&self) -> bool {
        let (Ok(theirs), Ok(ours)) = (
            self.file.metadata(),
            std::fs::metadata("/proc/thread-self/ns/net"),
        ) else {
            return false;
        };
        (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino())
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(f())
            })
            .join()
            .expect("namespace thread panicked")
        })
    }

    /// A netlink socket bound to this namespace, usable from any thread.
    pub fn socket(&self) -> Result<netlink::Socket, NetnsError> {
        self.run(netlink::Socket::new)?
            .map_err(|source| NetnsError::Netlink {
                path: self.path.clone(),
                source,
            })
    }
}

/// Writes a sysctl of the calling thread's namespace (under /proc/sys).
pub fn write_sysctl(key: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value)
}
