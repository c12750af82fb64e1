//! What the spy writes per call, and reading it back. A call leaves two
//! lines in the log: a `begin` line written under a lock (which numbers the
//! call) and, once it answers, the full record. A call that never answers
//! (killed, hung) leaves only its `begin` line.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `CNI_NETNS` path as the spy saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsStat {
    pub dev: u64,
    pub ino: u64,
    /// Whether it is a namespace file (nsfs), as a runtime's netns is.
    pub nsfs: bool,
}

/// One call, as the spy recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// The spy's label (`spyName`): its list position or `ipam`.
    #[serde(default)]
    pub name: String,
    pub command: String,
    /// 1 for the first call of this verb to this label, and so on.
    #[serde(default)]
    pub call: u32,
    /// CLOCK_MONOTONIC, nanoseconds: one clock for every process.
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub end_ns: u64,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub ppid: u32,
    /// The executable of the process that started the spy.
    #[serde(default)]
    pub parent_exe: String,
    /// Every `CNI_*` variable.
    pub env: serde_json::Map<String, Value>,
    /// Stdin parsed, or as a string when it is not JSON.
    pub stdin: Value,
    /// The inode of the spy's own network namespace.
    #[serde(default)]
    pub netns_inode: u64,
    #[serde(default)]
    pub cni_netns: Option<NetnsStat>,
    /// What it printed (parsed), if anything.
    #[serde(default)]
    pub answer: Option<Value>,
    pub exit: u8,
}

impl Call {
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env.get(key).and_then(Value::as_str)
    }

    pub fn container_id(&self) -> &str {
        self.var("CNI_CONTAINERID").unwrap_or("")
    }

    pub fn ifname(&self) -> &str {
        self.var("CNI_IFNAME").unwrap_or("")
    }

    pub fn prev_result(&self) -> Option<&Value> {
        self.stdin.get("prevResult")
    }

    /// Whether the two calls ran at overlapping times.
    pub fn overlaps(&self, other: &Call) -> bool {
        self.start_ns < other.end_ns && other.start_ns < self.end_ns
    }
}

#[derive(Serialize, Deserialize)]
struct Begin {
    begin: bool,
    name: String,
    command: String,
    call: u32,
    pid: u32,
    start_ns: u64,
}

/// Numbers this call (1 + the calls of `name` with `command` before it)
/// and records its start, under an exclusive lock of the log.
pub fn begin(log: &Path, name: &str, command: &str, start_ns: u64) -> std::io::Result<u32> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(log)?;
    nix::fcntl::Flock::lock(file.try_clone()?, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
        .and_then(|lock| {
            let text = std::fs::read_to_string(log)?;
            let call = 1 + text
                .lines()
                .filter_map(|l| serde_json::from_str::<Begin>(l).ok())
                .filter(|b| b.name == name && b.command == command)
                .count() as u32;
            let line = serde_json::to_string(&Begin {
                begin: true,
                name: name.into(),
                command: command.into(),
                call,
                pid: std::process::id(),
                start_ns,
            })
            .expect("serialises");
            file.write_all(format!("{line}\n").as_bytes())?;
            drop(lock);
            Ok(call)
        })
}

/// Appends one finished call (one write: appends are not interleaved).
pub fn finish(log: &Path, record: &Value) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?
        .write_all(format!("{record}\n").as_bytes())
}

/// The finished calls of a log, in order of their answers.
pub fn read_calls(log: &Path) -> std::io::Result<Vec<Call>> {
    Ok(read_log(log)?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// The finished calls as JSON values, in order (the `begin` lines left out).
pub fn read_log(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("begin").is_none())
        .collect())
}

/// Calls that began and never answered: (name, command, pid).
pub fn unanswered(path: &Path) -> std::io::Result<Vec<(String, String, u32)>> {
    let text = std::fs::read_to_string(path)?;
    let begun: Vec<Begin> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let done = read_calls(path)?;
    Ok(begun
        .into_iter()
        .filter(|b| {
            !done
                .iter()
                .any(|c| c.pid == b.pid && c.command == b.command && c.name == b.name)
        })
        .map(|b| (b.name, b.command, b.pid))
        .collect())
}
