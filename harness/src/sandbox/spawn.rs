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

/// Brings `lo` up in the calling thread's network namespace, with the two
/// ioctls `ip link set lo up` amounts to (safe after `fork`).
fn lo_up() -> io::Result<()> {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = io::Error::last_os_error();
        libc::close(fd);
        if rc == 0 { Ok(()) } else { Err(err) }
    }
}

/// Forks a process that runs `prelude`, brings `lo` up if asked, and then
/// only waits to be killed: a holder of namespaces that costs no `exec`
/// (a `sleep` per holder was a tenth of a run's processes). Returns once
/// the prelude has succeeded in the child, or with the child's error.
///
/// The child drops every inherited descriptor (it never execs, so
/// close-on-exec would not do it: another thread's plugin pipes must not
/// stay open in it), restores default signal handling (SIGINT kills it as
/// it killed `sleep`) and names itself `cni-holder`.
pub fn park(prelude: &Prelude, lo: bool) -> io::Result<libc::pid_t> {
    let devnull = c"/dev/null";
    let mut fds = [0; 2];
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let (rd, wr) = (fds[0], fds[1]);
    // SAFETY: between fork and the end of the child's branch only raw
    // syscalls run, on values made before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let err = io::Error::last_os_error();
        unsafe {
            libc::close(rd);
            libc::close(wr);
        }
        return Err(err);
    }
    if pid == 0 {
        unsafe {
            for sig in 1..libc::SIGRTMIN() {
                libc::signal(sig, libc::SIG_DFL);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            let status = prelude
                .run()
                .and_then(|()| if lo { lo_up() } else { Ok(()) })
                .err()
                .map_or(0, |e| e.raw_os_error().unwrap_or(libc::EIO));
            let null = libc::open(devnull.as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
            }
            libc::prctl(libc::PR_SET_NAME, c"cni-holder".as_ptr());
            libc::write(wr, (&status as *const i32).cast(), 4);
            if status != 0 {
                libc::_exit(127);
            }
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            loop {
                libc::pause();
            }
        }
    }
    unsafe { libc::close(wr) };
    let mut status: i32 = 0;
    let n = loop {
        let n = unsafe { libc::read(rd, (&mut status as *mut i32).cast(), 4) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    unsafe { libc::close(rd) };
    if n == 4 && status == 0 {
        return Ok(pid);
    }
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    Err(if n == 4 {
        io::Error::from_raw_os_error(status)
    } else {
        io::Error::other("the holder died before it was ready")
    })
}
