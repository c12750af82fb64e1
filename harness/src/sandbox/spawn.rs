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
    /// Last: be traced by the parent (which must be the tracing thread),
    /// stopping at the `exec` that follows.
    pub trace_me: bool,
    /// First: join the cgroups whose `cgroup.procs` these are open on.
    pub cgroups: Vec<RawFd>,
    /// After the mounts: every mount read-only except these (and `/proc`,
    /// whose `sys` stays read-only but for `/proc/sys/net`, which belongs
    /// to the network namespace).
    pub read_only_except: Option<Vec<CString>>,
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets (or clears) read-only on the mount at `path`, and on every mount
/// below it when `recursive`.
fn read_only(path: &std::ffi::CStr, on: bool, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: if on { libc::MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if on { 0 } else { libc::MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc as libc::c_int)
}

/// Binds `path` over itself: a mount of its own whose flags can differ.
fn bind_self(path: &std::ffi::CStr) -> io::Result<()> {
    check(unsafe {
        libc::mount(
            path.as_ptr(),
            path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    })
}

/// The machine read-only but for `writable`: system calls only (it runs
/// in a child that shares the harness's memory).
fn seal(writable: &[CString]) -> io::Result<()> {
    read_only(c"/", true, true)?;
    for w in writable {
        read_only(w, false, false)?;
    }
    // /proc itself stays writable (a process's own files); /proc/sys is
    // the machine's but for the network namespace's part.
    read_only(c"/proc", false, false)?;
    bind_self(c"/proc/sys")?;
    read_only(c"/proc/sys", true, true)?;
    bind_self(c"/proc/sys/net")?;
    read_only(c"/proc/sys/net", false, false)
}

#[derive(Clone)]
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
        for fd in &self.cgroups {
            super::cgroup::join_raw(*fd)?;
        }
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
            if let Some(writable) = &self.read_only_except {
                seal(writable)?;
            }
            if self.trace_me {
                check(libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) as libc::c_int)?;
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

/// Signals whose handling a child resets to the default, as `exec` would.
fn default_signals() {
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// Blocks every signal on the calling thread until dropped, so no handler
/// of the harness runs in a child that shares its memory before the child
/// has reset them.
struct Blocked(libc::sigset_t);

impl Blocked {
    fn all() -> Blocked {
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            Blocked(old)
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Starts `main(arg)` in a process that shares this one's memory
/// (CLONE_VM and `flags`), on `stack`, with every signal blocked across the
/// clone. The pid, or -1 with errno set.
///
/// # Safety
/// `main` must make only raw system calls, and `stack` and what `arg`
/// points to must outlive the child's use of them.
unsafe fn clone_vm(
    stack: &mut [u8],
    main: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    flags: libc::c_int,
    arg: *mut libc::c_void,
) -> libc::pid_t {
    let _blocked = Blocked::all();
    unsafe {
        let top = stack.as_mut_ptr().add(stack.len());
        let top = top.sub(top as usize % 16);
        libc::clone(main, top.cast(), libc::CLONE_VM | flags, arg)
    }
}

/// Unblocks every signal in a child.
fn unblock_all() {
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// What a parked child needs; read by it only before it reports ready.
struct ParkArgs<'a> {
    prelude: &'a Prelude,
    lo: bool,
    ready: RawFd,
}

extern "C" fn park_main(data: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `data` is the parent's ParkArgs, alive until it has read the
    // status written below; nothing of the parent's is touched after it.
    let (status, ready) = unsafe {
        let args = &*(data as *const ParkArgs);
        default_signals();
        unblock_all();
        let status = args
            .prelude
            .run()
            .and_then(|()| if args.lo { lo_up() } else { Ok(()) })
            .err()
            .map_or(0, |e| e.raw_os_error().unwrap_or(libc::EIO));
        (status, args.ready)
    };
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        libc::prctl(libc::PR_SET_NAME, c"cni-holder".as_ptr());
        libc::write(ready, (&status as *const i32).cast(), 4);
        if status != 0 {
            libc::_exit(127);
        }
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        loop {
            libc::pause();
        }
    }
}

/// The stack of a parked child; it must outlive the child.
pub struct Stack(Vec<u8>);

const STACK_SIZE: usize = 64 * 1024;

/// Starts a process that runs `prelude`, brings `lo` up if asked, and then
/// only waits to be killed: a holder of namespaces. It shares the harness's
/// memory (clone with CLONE_VM), so it costs neither an `exec` nor the
/// copy-on-write faults a `fork` leaves the harness with; it runs on
/// `Stack`, which the caller keeps until the process has been reaped.
/// Returns once the prelude has succeeded in the child, or its error.
///
/// The child drops every inherited descriptor (it never execs, so
/// close-on-exec would not do it: another thread's plugin pipes must not
/// stay open in it), restores default signal handling (SIGINT kills it as
/// it killed the `sleep` holders of old) and names itself `cni-holder`.
pub fn park(prelude: &Prelude, lo: bool) -> io::Result<(libc::pid_t, Stack)> {
    let mut fds = [0; 2];
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let (rd, wr) = (fds[0], fds[1]);
    let mut stack = Stack(vec![0u8; STACK_SIZE]);
    let args = ParkArgs {
        prelude,
        lo,
        ready: wr,
    };
    // SAFETY: the child runs park_main on its own stack and reads `args`
    // only before it writes its status, which is awaited below.
    let pid = unsafe {
        clone_vm(
            &mut stack.0,
            park_main,
            libc::SIGCHLD,
            (&args as *const ParkArgs).cast_mut().cast(),
        )
    };
    let clone_err = io::Error::last_os_error();
    unsafe { libc::close(wr) };
    if pid < 0 {
        unsafe { libc::close(rd) };
        return Err(clone_err);
    }
    let mut status: i32 = 0;
    let n = loop {
        let n = unsafe { libc::read(rd, (&mut status as *mut i32).cast(), 4) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    unsafe { libc::close(rd) };
    if n == 4 && status == 0 {
        return Ok((pid, stack));
    }
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
    }
    Err(if n == 4 {
        io::Error::from_raw_os_error(status)
    } else {
        io::Error::other("the holder died before it was ready")
    })
}

/// A started program with pipes to its stdin, stdout and stderr.
pub struct Piped {
    pub pid: libc::pid_t,
    pub stdin: std::fs::File,
    pub stdout: std::fs::File,
    pub stderr: std::fs::File,
}

impl Piped {
    /// Waits for `pid` to end, runs `before_reap` while it is a zombie
    /// (its pid not yet free for reuse), then reaps it.
    pub fn wait_then(
        pid: libc::pid_t,
        before_reap: impl FnOnce(),
    ) -> io::Result<std::process::ExitStatus> {
        loop {
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if rc == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        before_reap();
        Piped::wait(pid)
    }

    /// Waits for `pid` to end.
    pub fn wait(pid: libc::pid_t) -> io::Result<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let mut status = 0;
        loop {
            if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
                return Ok(std::process::ExitStatus::from_raw(status));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// What the child of [`spawn_piped`] needs, all made before the clone.
struct ExecArgs<'a> {
    prelude: &'a Prelude,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// The child's ends: stdin, stdout, stderr.
    stdio: [RawFd; 3],
    /// Where the child leaves its errno when it cannot exec.
    error: *mut i32,
}

extern "C" fn exec_main(data: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the parent is suspended (CLONE_VFORK) until this child execs
    // or exits, so everything `data` points to is alive.
    unsafe {
        let args = &*(data as *const ExecArgs);
        default_signals();
        let mut result = args.prelude.run();
        for (to, from) in args.stdio.iter().enumerate() {
            if result.is_ok() && libc::dup2(*from, to as i32) < 0 {
                result = Err(io::Error::last_os_error());
            }
        }
        if result.is_ok() {
            unblock_all();
            libc::execve(args.program, args.argv, args.envp);
            result = Err(io::Error::last_os_error());
        }
        *args.error = result
            .err()
            .and_then(|e| e.raw_os_error())
            .unwrap_or(libc::EIO);
        libc::_exit(127)
    }
}

/// Starts `program` (a path) with `args` and exactly `env`, after
/// `prelude`, with its stdin, stdout and stderr piped to the harness.
///
/// A `vfork`-style clone (CLONE_VM | CLONE_VFORK, what `posix_spawn` does):
/// `std::process::Command` forks whenever it has a pre-exec hook, and a
/// fork of the harness costs far more than the plugin it starts.
pub fn spawn_piped(
    program: &std::path::Path,
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
    prelude: &Prelude,
) -> io::Result<Piped> {
    use std::os::fd::FromRawFd;
    let program = cstring(program);
    let argv: Vec<CString> = std::iter::once(program.clone())
        .chain(args.iter().map(cstring))
        .collect();
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the environment"))?;
    let pointers = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let (argv_p, envp_p) = (pointers(&argv), pointers(&envp));
    let pipe = || -> io::Result<(RawFd, RawFd)> {
        let mut fds = [0; 2];
        check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
        Ok((fds[0], fds[1]))
    };
    let mut fds: Vec<RawFd> = Vec::with_capacity(6);
    let close_all = |fds: &[RawFd]| {
        fds.iter().for_each(|fd| unsafe {
            libc::close(*fd);
        })
    };
    for _ in 0..3 {
        match pipe() {
            Ok((r, w)) => fds.extend([r, w]),
            Err(e) => {
                close_all(&fds);
                return Err(e);
            }
        }
    }
    // stdin: the child reads fds[0], we write fds[1]; stdout and stderr:
    // the child writes fds[3] and fds[5], we read fds[2] and fds[4].
    let mut error: i32 = 0;
    let exec = ExecArgs {
        prelude,
        program: program.as_ptr(),
        argv: argv_p.as_ptr(),
        envp: envp_p.as_ptr(),
        stdio: [fds[0], fds[3], fds[5]],
        error: &mut error,
    };
    let mut stack = vec![0u8; STACK_SIZE];
    // SAFETY: see exec_main; the stack outlives the child's use of it
    // because this thread is suspended until the child execs or exits.
    let pid = unsafe {
        clone_vm(
            &mut stack,
            exec_main,
            libc::CLONE_VFORK | libc::SIGCHLD,
            (&exec as *const ExecArgs).cast_mut().cast(),
        )
    };
    let clone_err = io::Error::last_os_error();
    close_all(&[fds[0], fds[3], fds[5]]);
    if pid < 0 {
        close_all(&[fds[1], fds[2], fds[4]]);
        return Err(clone_err);
    }
    // SAFETY: a volatile read: the child wrote it through a raw pointer.
    let error = unsafe { std::ptr::read_volatile(&error) };
    // SAFETY: the parent's ends, owned from here on.
    let piped = unsafe {
        Piped {
            pid,
            stdin: std::fs::File::from_raw_fd(fds[1]),
            stdout: std::fs::File::from_raw_fd(fds[2]),
            stderr: std::fs::File::from_raw_fd(fds[4]),
        }
    };
    if error != 0 {
        let _ = Piped::wait(pid);
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(piped)
}
