//! Starting processes inside a sandbox's namespaces.
//!
//! Everything here runs between `fork` and `exec` (`pre_exec`), where only
//! async-signal-safe calls are allowed: plain syscalls on values prepared
//! before the fork.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What the child does before `exec`, in order.
#[derive(Default)]
pub struct Prelude {
    /// Die with the harness, so nothing outlives it (even on SIGKILL).
    pub die_with_parent: bool,
    /// A process group of its own, so a timeout can kill the whole tree.
    pub own_process_group: bool,
    /// Join this mount namespace, then this network namespace.
    pub mount_ns: Option<RawFd>,
    pub net_ns: Option<RawFd>,
    /// Make new network and mount namespaces (for a keeper or a holder).
    pub unshare: libc::c_int,
    /// After unsharing the mount namespace: make every mount private.
    pub private_mounts: bool,
    /// `mount(source, target, fstype, flags, data)` calls, in order.
    pub mounts: Vec<Mount>,
}

pub struct Mount {
    pub source: CString,
    pub target: CString,
    pub fstype: Option<CString>,
    pub flags: libc::c_ulong,
    pub data: Option<CString>,
}

impl Prelude {
    /// Installs the prelude on `cmd`.
    pub fn apply(self, cmd: &mut Command) {
        // SAFETY: the closure only makes raw syscalls on data owned by it,
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || self.run());
        }
    }

    fn run(&self) -> io::Result<()> {
        unsafe {
            if self.die_with_parent {
                check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            }
            if self.own_process_group {
                check(libc::setpgid(0, 0))?;
            }
            if let Some(fd) = self.mount_ns {
                check(libc::setns(fd, libc::CLONE_NEWNS))?;
            }
            if let Some(fd) = self.net_ns {
                check(libc::setns(fd, libc::CLONE_NEWNET))?;
            }
            if self.unshare != 0 {
                check(libc::unshare(self.unshare))?;
            }
            if self.private_mounts {
                let root = c"/";
                check(libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
            }
            for m in &self.mounts {
                let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
                check(libc::mount(
                    m.source.as_ptr(),
                    m.target.as_ptr(),
                    ptr(&m.fstype),
                    m.flags,
                    ptr(&m.data).cast(),
                ))?;
            }
        }
        Ok(())
    }
}

pub fn cstring(s: impl AsRef<std::ffi::OsStr>) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(s.as_ref().as_bytes()).expect("no NUL in paths")
}
