//! Every process a plugin starts, found and ended: each sandbox's plugins
//! run in a cgroup (v2) of its own, which no `setsid` or double fork can
//! leave. After a call, what is still in it outlived the call; at the end,
//! `cgroup.kill` ends it all at once.
//!
//! Where the machine gives no writable cgroup v2 hierarchy (an
//! unprivileged harness, a v1-only machine), there is no tracker: plugins
//! are then ended by process group only (`doctor` says which).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The run's own cgroup, `<v2 mount>/<ours>/cni-conformance-<pid>`: made
/// with its first sandbox's and removed with its last, under this lock.
static RUN_ROOT: Mutex<()> = Mutex::new(());

fn run_root() -> Option<&'static Path> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| Some(hierarchy()?.join(format!("cni-conformance-{}", std::process::id()))))
        .as_deref()
}

/// The cgroup v2 folder this process is in, when it is writable.
pub fn hierarchy() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = mount.join(rel.trim_start_matches('/'));
    nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).ok()?;
    Some(dir)
}

/// Kills what every sandbox's cgroup holds and removes them (a stopping
/// harness).
pub fn kill_run() {
    let Some(root) = run_root() else { return };
    // Each drop takes RUN_ROOT itself.
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            let t = Tracker {
                dir: entry.path(),
                join: None,
            };
            drop(t);
        }
    }
}

/// Whether calls can be tracked here.
pub fn available() -> bool {
    run_root().is_some()
}

/// One call's cgroup.
pub struct Tracker {
    dir: PathBuf,
    /// `cgroup.procs`, open for writing: a child writes "0" to it to join.
    join: Option<File>,
}

/// A process that outlived the call that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    pub pid: i32,
    /// Its command line, arguments joined by spaces.
    pub command: String,
}

impl std::fmt::Display for Survivor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} `{}`", self.pid, self.command)
    }
}

impl Tracker {
    /// A cgroup of its own in the run's, if the machine allows one.
    pub fn new() -> Option<Tracker> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "call-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let root = run_root()?;
        let _lock = RUN_ROOT.lock().unwrap_or_else(|e| e.into_inner());
        match std::fs::create_dir(root) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return None,
            _ => {}
        }
        let dir = root.join(name);
        std::fs::create_dir(&dir).ok()?;
        match File::options().write(true).open(dir.join("cgroup.procs")) {
            Ok(join) => Some(Tracker {
                dir,
                join: Some(join),
            }),
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The descriptor a starting child writes "0" to, to join.
    pub fn join_fd(&self) -> Option<RawFd> {
        self.join.as_ref().map(File::as_raw_fd)
    }

    /// The processes in it now.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The processes in it now, with their command lines.
    pub fn survivors(&self) -> Vec<Survivor> {
        self.pids()
            .into_iter()
            .map(|pid| Survivor {
                pid,
                command: command_line(pid),
            })
            .collect()
    }

    /// Kills everything in it and waits until it is empty (at most
    /// `limit`: a process stuck in the kernel is not waited for forever).
    pub fn kill_all(&self, limit: Duration) -> std::io::Result<()> {
        std::fs::write(self.dir.join("cgroup.kill"), "1")?;
        let deadline = Instant::now() + limit;
        let mut events = File::open(self.dir.join("cgroup.events"))?;
        loop {
            let mut text = String::new();
            events.read_to_string(&mut text)?;
            if text.lines().any(|l| l == "populated 0") {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("processes of {} did not end", self.dir.display()),
                ));
            }
            // cgroup.events signals a change as POLLPRI.
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&events),
                nix::poll::PollFlags::POLLPRI,
            )];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            use std::io::Seek;
            events.seek(std::io::SeekFrom::Start(0))?;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.pids().is_empty() {
            let _ = self.kill_all(Duration::from_secs(10));
        }
        let _lock = RUN_ROOT.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_dir(&self.dir);
        // The run's cgroup goes with its last sandbox's (it is busy while
        // another one is left).
        if let Some(root) = run_root() {
            let _ = std::fs::remove_dir(root);
        }
    }
}

/// `/proc/<pid>/cmdline` as one line (`[name]` when it has none).
pub fn command_line(pid: i32) -> String {
    let mut raw = Vec::new();
    let _ = File::open(format!("/proc/{pid}/cmdline")).and_then(|mut f| f.read_to_end(&mut raw));
    let text: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if text.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_else(|_| "[gone]".into())
    } else {
        text.join(" ")
    }
}

/// Writes "0" to `fd` (a `cgroup.procs`): the calling process joins. For
/// a child between clone and exec: one raw system call.
pub(crate) fn join_raw(fd: RawFd) -> std::io::Result<()> {
    let rc = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
