//! One plugin call under ptrace, its process tree followed through forks,
//! threads and execs (the delegated IPAM plugin included), and killed at
//! the entry of a chosen *step*.
//!
//! A step is a system call that changes what outlives the process: a file
//! opened for writing, written, linked, renamed, removed, synced; a folder
//! made or removed; a netlink message sent (links, addresses, routes); a
//! program executed. Everything else (memory, futexes, reads, pipes, a Go
//! runtime's own calls) is left out, so the steps of a call come in the
//! same order in every run, whatever the scheduler does.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::exec::{ExecError, Exit, Outcome, Pumps};
use crate::sandbox::Sandbox;

/// One step of a call, as the kill report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// 1-based, in the order the call made them.
    pub index: usize,
    pub syscall: &'static str,
    /// The program that made it (its file name).
    pub program: String,
    /// The file or folder it names, when it names one.
    pub target: Option<String>,
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {} ({}, in {}",
            self.index, self.syscall, self.program
        )?;
        if let Some(t) = &self.target {
            write!(f, ", {t}")?;
        }
        f.write_str(")")
    }
}

/// A traced call: how it ended, its steps up to the end (or the kill).
#[derive(Debug)]
pub struct Traced {
    pub outcome: Outcome,
    pub points: Vec<Point>,
    /// The step it was killed at, if it got that far.
    pub killed_at: Option<Point>,
}

/// Runs `plugin` in `sandbox` as [`super::exec::run`] does, traced; with
/// `kill_at = Some(k)` the whole tree is killed with SIGKILL at the entry
/// of step k. The tracer is a thread of its own: ptrace ties a tracee to
/// the thread that traces it, and that thread waits only for its own.
pub fn run(
    sandbox: &Sandbox,
    plugin: &Path,
    env: &[(String, String)],
    stdin: &[u8],
    kill_at: Option<usize>,
    timeout: Duration,
) -> Result<Traced, ExecError> {
    std::thread::scope(|s| {
        s.spawn(|| trace(sandbox, plugin, env, stdin, kill_at, timeout))
            .join()
            .unwrap_or_else(|_| {
                Err(ExecError::Thread {
                    plugin: plugin.display().to_string(),
                    source: std::io::Error::other("the tracer panicked"),
                })
            })
    })
}

fn trace(
    sandbox: &Sandbox,
    plugin: &Path,
    env: &[(String, String)],
    stdin: &[u8],
    kill_at: Option<usize>,
    timeout: Duration,
) -> Result<Traced, ExecError> {
    let start = Instant::now();
    let child = sandbox
        .spawn_traced_plugin(plugin, env)
        .map_err(|source| ExecError::Spawn {
            plugin: plugin.display().to_string(),
            source,
        })?;
    let main = Pid::from_raw(child.pid);
    let tracees: Arc<Mutex<HashSet<Pid>>> = Arc::new(Mutex::new(HashSet::from([main])));
    let kill_all = {
        let tracees = Arc::clone(&tracees);
        move || {
            let _ = nix::sys::signal::killpg(main, Signal::SIGKILL);
            for t in tracees.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let _ = nix::sys::signal::kill(*t, Signal::SIGKILL);
            }
        }
    };
    // A thread that cannot be started is the harness's failure: the tree
    // is killed (the loop is never entered, so nothing else would end it).
    let thread_err = |source| {
        kill_all();
        ExecError::Thread {
            plugin: plugin.display().to_string(),
            source,
        }
    };
    let io = Pumps::start(child, stdin).map_err(thread_err)?;
    // The deadline: a watchdog kills the tree; the loop below then sees
    // every tracee end.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let kill_all = kill_all.clone();
        let timed_out = Arc::clone(&timed_out);
        std::thread::Builder::new()
            .spawn(move || {
                if done_rx.recv_timeout(timeout).is_err() {
                    timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                    kill_all();
                }
            })
            .map_err(thread_err)?
    };
    let mut points = Vec::new();
    let mut killed_at = None;
    let mut status = None;
    let flags = WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD;
    let options = ptrace::Options::PTRACE_O_TRACESYSGOOD
        | ptrace::Options::PTRACE_O_TRACEFORK
        | ptrace::Options::PTRACE_O_TRACEVFORK
        | ptrace::Options::PTRACE_O_TRACECLONE
        | ptrace::Options::PTRACE_O_TRACEEXEC
        | ptrace::Options::PTRACE_O_EXITKILL;
    let mut first = true;
    loop {
        let ws = match nix::sys::wait::waitpid(None, Some(flags)) {
            Ok(ws) => ws,
            Err(nix::errno::Errno::EINTR) => continue,
            // No tracee left.
            Err(_) => break,
        };
        match ws {
            WaitStatus::Exited(pid, code) => {
                tracees
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&pid);
                if pid == main {
                    status = Some(Exit::Code(code));
                    Sandbox::forget(main.as_raw());
                    // As an untraced call ends: what it left behind would
                    // hold the pipes (and this loop) open.
                    kill_all();
                }
            }
            WaitStatus::Signaled(pid, sig, _) => {
                tracees
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&pid);
                if pid == main {
                    status = Some(Exit::Signal(sig as i32));
                    Sandbox::forget(main.as_raw());
                    kill_all();
                }
            }
            WaitStatus::Stopped(pid, sig) => {
                if first && pid == main {
                    // The stop after exec that PTRACE_TRACEME arranges.
                    first = false;
                    let _ = ptrace::setoptions(pid, options);
                    let _ = ptrace::syscall(pid, None);
                    continue;
                }
                tracees
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(pid);
                // A new tracee's first stop, or a signal to pass on.
                let pass = (sig != Signal::SIGSTOP && sig != Signal::SIGTRAP).then_some(sig);
                let _ = ptrace::syscall(pid, pass);
            }
            WaitStatus::PtraceEvent(pid, _, event) => {
                if matches!(
                    event,
                    libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE
                ) && let Ok(new) = ptrace::getevent(pid)
                {
                    tracees
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(Pid::from_raw(new as i32));
                }
                let _ = ptrace::syscall(pid, None);
            }
            WaitStatus::PtraceSyscall(pid) => {
                if let Some(point) = point_at(pid, points.len() + 1) {
                    let kill = kill_at == Some(point.index);
                    points.push(point.clone());
                    if kill {
                        killed_at = Some(point);
                        kill_all();
                        continue;
                    }
                }
                let _ = ptrace::syscall(pid, None);
            }
            _ => {}
        }
    }
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let (stdout, stderr) = io.finish();
    let exit = if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        Exit::TimedOut
    } else {
        status.unwrap_or(Exit::Signal(libc::SIGKILL))
    };
    Ok(Traced {
        outcome: Outcome {
            exit,
            stdout,
            stderr,
            duration: start.elapsed(),
            survivors: Vec::new(),
            folders_full: sandbox.folders_full(),
            forks_refused: 0,
        },
        points,
        killed_at,
    })
}

/// The step `pid` is about to make, if its system call is one (`index`
/// is the number it will get).
fn point_at(pid: Pid, index: usize) -> Option<Point> {
    let (nr, a) = syscall_entry(pid)?;
    let path = |addr: u64| read_path(pid, addr);
    let fd = |fd: u64| std::fs::read_link(format!("/proc/{pid}/fd/{}", fd as i32)).ok();
    let file = |fd_arg: u64| {
        fd(fd_arg)
            .map(|p| p.display().to_string())
            .filter(|p| p.starts_with('/') && !p.starts_with("/dev/"))
    };
    let writes = |flags: u64| {
        flags as i32 & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) != 0
    };
    let (syscall, target): (&'static str, Option<String>) = match nr {
        libc::SYS_open if writes(a[1]) => ("open", path(a[0])),
        libc::SYS_openat if writes(a[2]) => ("openat", path(a[1])),
        libc::SYS_creat => ("creat", path(a[0])),
        libc::SYS_write => ("write", Some(file(a[0])?)),
        libc::SYS_pwrite64 => ("pwrite64", Some(file(a[0])?)),
        libc::SYS_writev => ("writev", Some(file(a[0])?)),
        libc::SYS_ftruncate => ("ftruncate", Some(file(a[0])?)),
        libc::SYS_fsync => ("fsync", file(a[0])),
        libc::SYS_fdatasync => ("fdatasync", file(a[0])),
        libc::SYS_truncate => ("truncate", path(a[0])),
        libc::SYS_rename => ("rename", path(a[1])),
        libc::SYS_renameat => ("renameat", path(a[3])),
        libc::SYS_renameat2 => ("renameat2", path(a[3])),
        libc::SYS_link => ("link", path(a[1])),
        libc::SYS_linkat => ("linkat", path(a[3])),
        libc::SYS_symlink => ("symlink", path(a[1])),
        libc::SYS_symlinkat => ("symlinkat", path(a[2])),
        libc::SYS_unlink => ("unlink", path(a[0])),
        libc::SYS_unlinkat => ("unlinkat", path(a[1])),
        libc::SYS_mkdir => ("mkdir", path(a[0])),
        libc::SYS_mkdirat => ("mkdirat", path(a[1])),
        libc::SYS_rmdir => ("rmdir", path(a[0])),
        libc::SYS_execve => ("execve", path(a[0])),
        libc::SYS_execveat => ("execveat", path(a[1])),
        libc::SYS_sendto | libc::SYS_sendmsg if is_netlink(pid, a[0]) => (
            if nr == libc::SYS_sendto {
                "sendto"
            } else {
                "sendmsg"
            },
            Some("netlink".into()),
        ),
        _ => return None,
    };
    let program = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "?".into());
    Some(Point {
        index,
        syscall,
        program,
        target,
    })
}

/// The number and arguments of the system call `pid` is entering
/// (PTRACE_GET_SYSCALL_INFO read into the kernel's own layout: op at byte
/// 0, then arch, two pointers, and for an entry `nr` and six arguments).
fn syscall_entry(pid: Pid) -> Option<(i64, [u64; 6])> {
    let mut buf = [0u64; 10];
    let n = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            std::mem::size_of_val(&buf),
            buf.as_mut_ptr(),
        )
    };
    if n < 32 || buf[0] as u8 != libc::PTRACE_SYSCALL_INFO_ENTRY {
        return None;
    }
    let mut args = [0u64; 6];
    args.copy_from_slice(&buf[4..10]);
    Some((buf[3] as i64, args))
}

/// A NUL-terminated path in the tracee's memory (at most 4 KiB).
fn read_path(pid: Pid, addr: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = mem.read_at(&mut buf, addr).ok()?;
    let end = buf[..n].iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Whether `fd` of `pid` is a netlink socket (its inode is listed in the
/// process's `/proc/<pid>/net/netlink`).
fn is_netlink(pid: Pid, fd: u64) -> bool {
    let Ok(link) = std::fs::read_link(format!("/proc/{pid}/fd/{}", fd as i32)) else {
        return false;
    };
    let Some(inode) = link
        .to_str()
        .and_then(|l| l.strip_prefix("socket:["))
        .and_then(|l| l.strip_suffix(']'))
    else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some(inode))
    })
}
