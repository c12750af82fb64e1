//! Network namespaces named by `CNI_NETNS`.
//!
//! `setns` moves only the calling thread. The plugins are single-threaded
//! and synchronous: namespace work ([`Netns::run`]) enters, does one short
//! thing (open a netlink socket, which stays bound to the namespace; write
//! sysctls) and comes straight back, so delegated plugins are always
//! executed from the runtime's namespace.

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

    /// Runs `f` inside the namespace, on the calling thread, and returns to
    /// the thread's own namespace afterwards (aborting the process if that
    /// is impossible: nothing may run in the wrong namespace). Cheaper than a
    /// thread; used only for short, synchronous work such as opening a
    /// netlink socket or writing sysctls.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
        let home = File::open("/proc/thread-self/ns/net").map_err(|source| NetnsError::Open {
            path: "/proc/thread-self/ns/net".into(),
            source,
        })?;
        setns(self.fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
            path: self.path.clone(),
            source,
        })?;
        let _back = Return(home);
        Ok(f())
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

/// Takes the thread back to its namespace when dropped, also on unwind.
struct Return(File);

impl Drop for Return {
    fn drop(&mut self) {
        if let Err(e) = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
            eprintln!("cannot return to the plugin's own network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Writes a sysctl of the calling thread's namespace (under /proc/sys).
pub fn write_sysctl(key: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value)
}
