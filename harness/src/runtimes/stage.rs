//! Where a runtime under test runs: a sandbox (its own network namespace,
//! and a mount namespace with `/var/lib`, `/run`, `/etc/cni/net.d` and
//! `/opt/cni/bin` shown empty), a private work folder for the runtime's
//! storage, the network lists, the plugin folder (the spy and the real
//! plugins it delegates to) and a busybox root filesystem.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use crate::sandbox::{Sandbox, SandboxError, SandboxOptions, Scope};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} not found (install it; `doctor` lists what runtime judging needs)")]
    Missing(String),
    #[error(transparent)]
    Plugin(#[from] crate::runtime::exec::ExecError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StageError {
    let what = what.into();
    move |source| StageError::Io { what, source }
}

/// What a command run in the stage did.
#[derive(Debug, Clone)]
pub struct Done {
    pub ok: bool,
    pub output: String,
}

/// The real plugins the spies delegate to (ptp and host-local give the
/// container a working interface), and loopback for runtimes that add it.
pub const DELEGATES: [&str; 3] = ["ptp", "host-local", "loopback"];

/// Folders that runtimes read by default and that the stage shows empty.
const DEFAULT_DIRS: [&str; 2] = ["/etc/cni/net.d", "/opt/cni/bin"];

pub struct Stage {
    // Field order is drop order: the sandbox's processes die first.
    sandbox: Mutex<Sandbox>,
    pub work: PathBuf,
    pub netdir: PathBuf,
    pub plugindir: PathBuf,
    pub rootfs: PathBuf,
    /// A cgroup name of its own: runtimes put their containers under it,
    /// and it goes at the end.
    pub cgroup: String,
    runtime_netns: u64,
    _dir: tempfile::TempDir,
}

impl Stage {
    /// A fresh stage; `plugin_dirs` is where the delegates are found.
    pub fn new(harness: &Path, plugin_dirs: &[PathBuf]) -> Result<Stage, StageError> {
        let dir = tempfile::Builder::new()
            .prefix("cni-runtime-")
            .tempdir()
            .map_err(io("a work folder"))?;
        let work = dir.path().to_path_buf();
        let (netdir, plugindir, rootfs) =
            (work.join("net.d"), work.join("bin"), work.join("rootfs"));
        for d in [&netdir, &plugindir, &rootfs.join("bin")] {
            std::fs::create_dir_all(d).map_err(io(format!("{}", d.display())))?;
        }
        crate::spy::install(&plugindir, harness).map_err(io("the spy"))?;
        for name in DELEGATES {
            let found = plugin_dirs
                .iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| StageError::Missing(format!("plugin {name}")))?;
            std::os::unix::fs::symlink(&found, plugindir.join(name)).map_err(io(name))?;
        }
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| StageError::Missing("busybox (package busybox-static)".into()))?;
        std::fs::copy(&busybox, rootfs.join("bin/busybox")).map_err(io("busybox"))?;
        for applet in ["sh", "sleep", "true", "ip", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .map_err(io(applet))?;
        }
        let sandbox = Sandbox::new(&SandboxOptions {
            state_dirs: DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
            writable_host: true,
            ..SandboxOptions::default()
        })?;
        let runtime_netns = nix::sys::stat::fstat(sandbox.netns_fd(Scope::Host))
            .map(|s| s.st_ino)
            .map_err(|e| io("the sandbox's namespace")(e.into()))?;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let cgroup = format!(
            "cni-conformance-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        Ok(Stage {
            sandbox: Mutex::new(sandbox),
            work,
            netdir,
            plugindir,
            rootfs,
            cgroup,
            runtime_netns,
            _dir: dir,
        })
    }

    pub fn sandbox(&self) -> MutexGuard<'_, Sandbox> {
        self.sandbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inode of the network namespace the runtime runs in.
    pub fn runtime_netns(&self) -> u64 {
        self.runtime_netns
    }

    /// Makes `list` the only network list in the folder runtimes read.
    pub fn write_list(&self, list: &Value) -> Result<(), StageError> {
        for entry in std::fs::read_dir(&self.netdir).map_err(io("the list folder"))? {
            let path = entry.map_err(io("the list folder"))?.path();
            std::fs::remove_file(&path).map_err(io(format!("{}", path.display())))?;
        }
        let name = list["name"].as_str().unwrap_or("net");
        let path = self.netdir.join(format!("10-{name}.conflist"));
        let text = serde_json::to_string_pretty(list).expect("values serialise");
        std::fs::write(&path, text).map_err(io(format!("{}", path.display())))
    }

    /// Runs `script` with `sh -c` in the stage (the runtime's network and
    /// mount namespaces), killed after `limit`.
    pub fn shell(
        &self,
        script: &str,
        env: &[(String, String)],
        limit: Duration,
    ) -> Result<Done, StageError> {
        let mut cmd = self.sandbox().plugin_command("timeout");
        cmd.args([
            "-s",
            "KILL",
            &limit.as_secs().max(1).to_string(),
            "sh",
            "-c",
            script,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
        let out = cmd.output().map_err(io("sh"))?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(Done {
            ok: out.status.success(),
            output,
        })
    }

    /// Removes the stage's cgroups (deepest first) in every hierarchy; what
    /// could not be removed, as messages.
    pub fn remove_cgroups(&self) -> Vec<String> {
        let mut left = Vec::new();
        let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
            return left;
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut candidates: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
        candidates.extend(roots.flatten().map(|e| e.path()));
        for root in candidates {
            let top = root.join(&self.cgroup);
            if top.is_dir() {
                collect_dirs(&top, &mut dirs);
            }
        }
        // Deepest first: a cgroup goes only when its children are gone.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            if let Err(e) = std::fs::remove_dir(&d) {
                left.push(format!("cgroup {}: {e}", d.display()));
            }
        }
        left
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// The inode of a namespace file.
pub fn ns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}
