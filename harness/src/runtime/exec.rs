//! Running one plugin as a runtime does: environment, stdin, a deadline,
//! and everything it answered.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::capture::{self, Captured};
use crate::sandbox::{
    Sandbox,
    cgroup::{self, Survivor},
    spawn::Piped,
};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("plugin {name:?} not found in CNI_PATH {path:?}")]
    NotFound { name: String, path: Vec<PathBuf> },
    #[error("plugin name {0:?} may not contain '/'")]
    BadName(String),
    #[error("cannot start {plugin}: {source}")]
    Spawn {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a thread to talk to {plugin}: {source}")]
    Thread {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
    /// The plugin timed out on this verb too often in a row: the call is
    /// not made (see [`Breaker`]).
    #[error(
        "{plugin} timed out on {verb} {timeouts} times in a row, so its {verb} calls are no longer made"
    )]
    GaveUp {
        plugin: String,
        verb: crate::spec::Verb,
        timeouts: u32,
    },
}

/// Gives up on a verb of a plugin after `limit` consecutive timeouts, so a
/// plugin that hangs on every ADD costs a few timeouts, not one per case.
/// Shared by every case of a run; any answer in time resets the count.
#[derive(Debug)]
pub struct Breaker {
    limit: u32,
    timeouts: std::sync::Mutex<std::collections::HashMap<(String, crate::spec::Verb), u32>>,
}

impl Breaker {
    pub fn new(limit: u32) -> Breaker {
        Breaker {
            limit,
            timeouts: Default::default(),
        }
    }

    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, crate::spec::Verb), u32>>
    {
        self.timeouts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err` when the verb was given up on.
    pub fn admit(&self, plugin: &str, verb: crate::spec::Verb) -> Result<(), ExecError> {
        match self.map().get(&(plugin.to_string(), verb)) {
            Some(&n) if n >= self.limit => Err(ExecError::GaveUp {
                plugin: plugin.into(),
                verb,
                timeouts: n,
            }),
            _ => Ok(()),
        }
    }

    pub fn record(&self, plugin: &str, verb: crate::spec::Verb, exit: Exit) {
        let mut map = self.map();
        let n = map.entry((plugin.to_string(), verb)).or_insert(0);
        if exit == Exit::TimedOut {
            *n += 1;
        } else if *n < self.limit {
            *n = 0;
        }
    }
}

/// libcni's lookup: the first regular file named `name` in the folders.
pub fn find_plugin(name: &str, path: &[PathBuf]) -> Result<PathBuf, ExecError> {
    if name.contains('/') || name.is_empty() {
        return Err(ExecError::BadName(name.into()));
    }
    path.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ExecError::NotFound {
            name: name.into(),
            path: path.to_vec(),
        })
}

/// How a plugin process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed by the harness at the deadline.
    TimedOut,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => f.write_str("timed out (killed by the harness)"),
        }
    }
}

/// Everything one invocation produced; the raw bytes are kept for reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
    /// Processes it started that still ran when it had ended (the harness
    /// then ended them).
    pub survivors: Vec<Survivor>,
    /// The sandbox's writable folders were full when it ended.
    pub folders_full: bool,
    /// Forks and threads the kernel refused it: it had as many tasks as a
    /// call may have.
    pub forks_refused: u64,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// Stdout as one JSON document, if it is one.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.stdout.complete()?).ok()
    }

    /// Stdout as a CNI error object, if it is one.
    pub fn error(&self) -> Option<ErrorObject> {
        ErrorObject::parse(&self.json()?)
    }

    /// The error object's code, if stdout holds one.
    pub fn error_code(&self) -> Option<u64> {
        self.error().map(|e| e.code)
    }

    /// Stdout as text for a report or a message: at most
    /// [`capture::SHOWN`] bytes of it.
    pub fn stdout_text(&self) -> String {
        self.stdout.shown()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.shown()
    }
}

/// When the harness kills a plugin before it ends by itself.
#[derive(Clone, Copy)]
pub struct Kill<'a> {
    /// At this deadline, however far it got.
    pub after: Duration,
    /// As soon as this holds (it is asked every few milliseconds): for a
    /// plugin held at a known point, such as waiting for a delegate that
    /// never answers.
    pub when: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// Runs `plugin` in `sandbox` as a runtime does, with `env` only, feeding
/// `stdin` and closing it. The plugin leads a process group of its own,
/// which is killed as `kill` says.
pub fn run(
    sandbox: &Sandbox,
    plugin: &Path,
    env: &[(String, String)],
    stdin: &[u8],
    kill: Kill<'_>,
) -> Result<Outcome, ExecError> {
    let start = Instant::now();
    // Its cgroup: gone (and whatever is in it ended) when this returns.
    let tracker = cgroup::Tracker::new();
    let child = sandbox
        .spawn_plugin(plugin, env, tracker.as_ref())
        .map_err(|source| ExecError::Spawn {
            plugin: plugin.display().to_string(),
            source,
        })?;
    let pid = child.pid;
    let group = nix::unistd::Pid::from_raw(pid);
    // A thread that cannot be started (a process limit) is the harness's
    // failure: the plugin's group is killed and the call reported as not made.
    let thread_err = |source| {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
        let _ = Sandbox::reap(pid);
        ExecError::Thread {
            plugin: plugin.display().to_string(),
            source,
        }
    };
    let io = Pumps::start(child, stdin).map_err(thread_err)?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .spawn(move || {
            let _ = tx.send(Sandbox::reap(pid));
        })
        .map_err(thread_err)?;
    let deadline = start + kill.after;
    let (status, timed_out) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = match kill.when {
            Some(_) => left.min(Duration::from_millis(2)),
            None => left,
        };
        match rx.recv_timeout(wait) {
            Ok(s) => break (s, false),
            Err(_) if Instant::now() >= deadline || kill.when.is_some_and(|f| f()) => {
                // The plugin leads its process group: kill it and its children.
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
                break (rx.recv().expect("the waiter always answers"), true);
            }
            Err(_) => {}
        }
    };
    let duration = start.elapsed();
    // What it left running when it ended by itself (a plugin killed by the
    // harness leaves what was still dying: not a finding).
    let survivors = match &tracker {
        Some(t) if !timed_out => t.survivors(),
        _ => Vec::new(),
    };
    let forks_refused = tracker.as_ref().map_or(0, cgroup::Tracker::forks_refused);
    if !timed_out {
        // Children it left behind in its group would hold our pipes open.
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
    }
    // And those that left the group (setsid, a double fork).
    if let Some(t) = &tracker
        && (timed_out || !survivors.is_empty())
    {
        let _ = t.kill_all(Duration::from_secs(10));
    }
    let (stdout, stderr) = io.finish();
    let folders_full = sandbox.folders_full();
    let exit = if timed_out {
        Exit::TimedOut
    } else {
        exit_of(status.map_err(|source| ExecError::Spawn {
            plugin: plugin.display().to_string(),
            source,
        })?)
    };
    Ok(Outcome {
        exit,
        stdout,
        stderr,
        duration,
        survivors,
        folders_full,
        forks_refused,
    })
}

/// A started plugin's stdio, each on a thread of its own, so a plugin that
/// never reads stdin or floods stdout cannot deadlock the harness: `stdin`
/// written and closed, stdout and stderr read to their end.
pub(crate) struct Pumps {
    writer: std::thread::JoinHandle<()>,
    out: std::thread::JoinHandle<Captured>,
    err: std::thread::JoinHandle<Captured>,
}

impl Pumps {
    /// Starts the three threads (the error: one could not be started).
    pub(crate) fn start(child: Piped, stdin: &[u8]) -> std::io::Result<Pumps> {
        let Piped {
            stdin: mut input,
            stdout,
            stderr,
            ..
        } = child;
        let bytes = stdin.to_vec();
        let writer = std::thread::Builder::new().spawn(move || {
            let _ = input.write_all(&bytes);
        })?;
        let limit = capture::limit();
        let reader = |f: std::fs::File| move || Captured::read(f, limit);
        let out = std::thread::Builder::new().spawn(reader(stdout))?;
        let err = std::thread::Builder::new().spawn(reader(stderr))?;
        Ok(Pumps { writer, out, err })
    }

    /// Stdout and stderr, once the plugin (and whatever held its pipes)
    /// has ended.
    pub(crate) fn finish(self) -> (Captured, Captured) {
        let _ = self.writer.join();
        (
            self.out.join().unwrap_or_default(),
            self.err.join().unwrap_or_default(),
        )
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    }
}

/// A CNI error object as a runtime reads it (code and msg required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    pub cni_version: Option<String>,
    pub code: u64,
    pub msg: String,
    pub details: Option<String>,
}

impl ErrorObject {
    pub fn parse(v: &Value) -> Option<ErrorObject> {
        Some(ErrorObject {
            cni_version: v
                .get("cniVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
            code: v.get("code")?.as_u64()?,
            msg: v.get("msg")?.as_str()?.to_string(),
            details: v.get("details").and_then(Value::as_str).map(str::to_string),
        })
    }
}
