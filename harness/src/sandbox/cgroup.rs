//! Every process a plugin starts, found and ended: each plugin call runs
//! in a cgroup (v2) of its own, which no `setsid` or double fork can
//! leave. After a call, what is still in it outlived the call; at the end,
//! `cgroup.kill` ends it all at once.
//!
//! Each call may also have at most [`TASK_LIMIT`] processes and threads
//! at once, so a fork bomb meets that bound and not the machine's: through
//! the pids controller of the v2 cgroup when the machine delegates it, else
//! of a v1 pids cgroup of its own that the call joins as well.
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
/// with its first call's and removed with its last, under this lock.
static RUN_ROOT: Mutex<()> = Mutex::new(());

fn run_root() -> Option<&'static Path> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| Some(hierarchy()?.join(run_name())))
        .as_deref()
}

fn run_name() -> String {
    format!("cni-conformance-{}", std::process::id())
}

/// Processes and threads one call may have at once. A Go plugin runs
/// about ten threads, its IPAM plugin as many again.
pub const TASK_LIMIT: u64 = 1024;

/// How calls' tasks are bounded here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskBound {
    /// By the v2 cgroup's own pids controller.
    V2,
    /// By a v1 pids cgroup per call, under this folder.
    V1(PathBuf),
}

/// How calls' tasks are bounded, if they can be (only with a tracker).
pub fn task_bound() -> Option<&'static TaskBound> {
    static BOUND: OnceLock<Option<TaskBound>> = OnceLock::new();
    BOUND
        .get_or_init(|| {
            let own = hierarchy()?;
            let delegated = std::fs::read_to_string(own.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
            if delegated {
                return Some(TaskBound::V2);
            }
            Some(TaskBound::V1(v1_pids()?.join(run_name())))
        })
        .as_ref()
}

/// The v1 pids cgroup this process is in, when it is writable.
fn v1_pids() -> Option<PathBuf> {
    own_writable(
        |fstype, options| fstype == "cgroup" && options.split(',').any(|o| o == "pids"),
        |controllers| controllers.split(',').any(|c| c == "pids"),
    )
}

/// The cgroup v2 folder this process is in, when it is writable.
pub fn hierarchy() -> Option<PathBuf> {
    own_writable(|fstype, _| fstype == "cgroup2", str::is_empty)
}

/// This process's folder in the first cgroup mount whose file system type
/// and super options `mount` accepts, by the line of `/proc/self/cgroup`
/// whose controller list `line` accepts; when it is writable.
fn own_writable(
    mount: impl Fn(&str, &str) -> bool,
    line: impl Fn(&str) -> bool,
) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let point = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        // `fstype source super-options`
        let mut fields = right.split(' ');
        let (fstype, options) = (fields.next()?, fields.nth(1)?);
        mount(fstype, options).then(|| left.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let _hierarchy_id = parts.next()?;
        line(parts.next()?).then(|| parts.next())?
    })?;
    let dir = point.join(rel.trim_start_matches('/'));
    nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).ok()?;
    Some(dir)
}

/// Set by [`kill_run`]: no call gets a cgroup after it.
static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Kills what every call's cgroup holds and removes them (a stopping
/// harness). A call starting meanwhile gets none, so none is made after
/// the list is read.
pub fn kill_run() {
    let Some(root) = run_root() else { return };
    let entries: Vec<_> = {
        let _lock = RUN_ROOT.lock().unwrap_or_else(|e| e.into_inner());
        CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    };
    // Each drop takes RUN_ROOT itself.
    for entry in entries {
        if entry.path().is_dir() {
            let tasks = match task_bound() {
                Some(TaskBound::V1(run)) => Some(Tasks {
                    dir: run.join(entry.file_name()),
                    join: None,
                }),
                _ => None,
            };
            let t = Tracker {
                dir: entry.path(),
                join: None,
                tasks,
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
    /// Its v1 pids cgroup, where the bound is one.
    tasks: Option<Tasks>,
}

/// A call's v1 pids cgroup.
struct Tasks {
    dir: PathBuf,
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
        if CLOSED.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let bound = task_bound();
        match std::fs::create_dir(root) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return None,
            Err(_) => {}
            // Children get the controller only when their parent hands it on.
            Ok(()) if bound == Some(&TaskBound::V2) => {
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids");
            }
            Ok(()) => {}
        }
        let dir = root.join(&name);
        std::fs::create_dir(&dir).ok()?;
        // No Tracker before this succeeds: its drop takes the lock held here.
        let Ok(join) = File::options().write(true).open(dir.join("cgroup.procs")) else {
            let _ = std::fs::remove_dir(&dir);
            return None;
        };
        let mut t = Tracker {
            dir,
            join: Some(join),
            tasks: None,
        };
        match bound {
            Some(TaskBound::V2) => {
                let _ = std::fs::write(t.dir.join("pids.max"), TASK_LIMIT.to_string());
            }
            Some(TaskBound::V1(run)) => {
                // Unbounded rather than untracked when this fails.
                let _ = std::fs::create_dir(run);
                let dir = run.join(&name);
                if std::fs::create_dir(&dir).is_ok() {
                    let join = std::fs::write(dir.join("pids.max"), TASK_LIMIT.to_string())
                        .and_then(|_| File::options().write(true).open(dir.join("cgroup.procs")));
                    t.tasks = Some(Tasks {
                        dir,
                        join: join.ok(),
                    });
                }
            }
            None => {}
        }
        Some(t)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The descriptors a starting child writes "0" to, to join.
    pub fn join_fds(&self) -> Vec<RawFd> {
        let tasks = self.tasks.as_ref().and_then(|t| t.join.as_ref());
        self.join.iter().chain(tasks).map(File::as_raw_fd).collect()
    }

    /// How many times the kernel refused its processes a fork or a thread
    /// because the call had [`TASK_LIMIT`] tasks.
    pub fn forks_refused(&self) -> u64 {
        let dir = self.tasks.as_ref().map_or(&self.dir, |t| &t.dir);
        std::fs::read_to_string(dir.join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
            .unwrap_or(0)
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
        // A cgroup with a process left in it, even one still exiting, is
        // busy: end them and wait until they are gone.
        if let Err(e) = std::fs::remove_dir(&self.dir)
            && e.raw_os_error() == Some(libc::EBUSY)
        {
            let _ = self.kill_all(Duration::from_secs(10));
            let _ = std::fs::remove_dir(&self.dir);
        }
        let _lock = RUN_ROOT.lock().unwrap_or_else(|e| e.into_inner());
        // Its processes are gone: the v1 cgroup is empty too.
        if let Some(t) = &self.tasks {
            let _ = std::fs::remove_dir(&t.dir);
        }
        // The run's cgroups go with its last call's (they are busy while
        // another one is left).
        if let Some(root) = run_root() {
            let _ = std::fs::remove_dir(root);
        }
        if let Some(TaskBound::V1(run)) = task_bound() {
            let _ = std::fs::remove_dir(run);
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
