//! A disposable world for one plugin under test.
//!
//! - A *keeper* process holds the sandbox's "host" network namespace (where
//!   plugins run, so the machine's own network is never touched) and a
//!   private mount namespace in which `/var/lib` and `/run` are overlays
//!   whose writable layer lives in the sandbox folder: a plugin writing to
//!   its default state paths leaves no trace on the machine.
//! - A master link, named as the config wants: a `dummy` link where the
//!   kernel has the driver, else one end of a veth pair whose other end sits
//!   in a *peer* namespace (another machine on the segment).
//! - Containers: each a network namespace held by a process, reachable both
//!   as `/proc/<pid>/ns/net` and as a bind-mounted file.
//!
//! Every process started here dies with the harness (`PR_SET_PDEATHSIG`);
//! dropping the sandbox kills them and removes its folder, which takes the
//! namespaces, links and mounts with it.

pub mod spawn;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use spawn::{Mount, Prelude, cstring};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot create the sandbox folder: {0}")]
    Folder(#[source] std::io::Error),
    #[error("cannot start the {what} process: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`ip {args}` failed in {scope}: {stderr}")]
    Ip {
        args: String,
        scope: String,
        stderr: String,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What kind of link the master is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKind {
    Dummy,
    /// One end of a veth pair; the other end is in the peer namespace and
    /// carries the same name there.
    Veth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    pub name: String,
    pub kind: MasterKind,
}

/// Which namespace a command runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Host,
    Peer,
    Container(usize),
}

#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Create a master link with this name in the host namespace.
    pub master: Option<String>,
    /// Use a veth master even where `dummy` exists (for a reachable peer).
    pub prefer_veth: bool,
    /// More folders plugins may write to (a profile's `dataDir`): each is
    /// overlaid like `/var/lib` and `/run`, through its nearest existing
    /// ancestor when it does not exist yet.
    pub state_dirs: Vec<PathBuf>,
}

/// A process parked in a namespace, killed on drop.
struct Holder {
    child: Child,
    net: File,
}

impl Holder {
    fn start(what: &str, prelude: Prelude) -> Result<Holder, SandboxError> {
        let mut cmd = Command::new("sleep");
        cmd.arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        prelude.apply(&mut cmd);
        let spawn_err = |source| SandboxError::Spawn {
            what: what.into(),
            source,
        };
        let child = cmd.spawn().map_err(spawn_err)?;
        // spawn() returns after exec, so the namespaces are in place.
        let path = format!("/proc/{}/ns/net", child.id());
        let net = File::open(&path).map_err(|source| SandboxError::Open { path, source })?;
        Ok(Holder { child, net })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Container {
    holder: Holder,
    pub name: String,
    file: PathBuf,
}

impl Container {
    /// `/proc/<pid>/ns/net` of the process holding the namespace.
    pub fn proc_path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.pid())
    }

    /// The bind-mounted file naming the namespace; it exists only inside
    /// the sandbox's mount namespace, where plugins run.
    pub fn file_path(&self) -> &Path {
        &self.file
    }
}

/// Sandboxes alive in this process, so a SIGINT/SIGTERM can clean them.
static LIVE: Mutex<Vec<(u64, Vec<u32>, PathBuf)>> = Mutex::new(Vec::new());

/// Kills a sandbox's processes, waits for them, and removes its folder.
fn tear_down(pids: &[u32], dir: &Path) {
    let pids: Vec<nix::unistd::Pid> = pids
        .iter()
        .map(|p| nix::unistd::Pid::from_raw(*p as i32))
        .collect();
    for pid in &pids {
        let _ = nix::sys::signal::kill(*pid, nix::sys::signal::SIGKILL);
    }
    for pid in &pids {
        let _ = nix::sys::wait::waitpid(*pid, None);
    }
    // The overlays go with the keeper's mount namespace, which the kernel
    // frees a moment after its last process: until then their work folders
    // are busy. A bounded retry, not a wait for anything in particular.
    let mut pause = std::time::Duration::from_millis(2);
    for _ in 0..10 {
        // Entries may vanish under it while the kernel cleans up, so judge
        // by whether the folder is gone, not by what the call returned.
        let _ = std::fs::remove_dir_all(dir);
        if !dir.exists() {
            return;
        }
        std::thread::sleep(pause);
        pause *= 2;
    }
}

/// Held while a sandbox is torn down, so a signal arriving meanwhile waits
/// for the teardown to finish before the process exits.
static TEARING_DOWN: Mutex<()> = Mutex::new(());

/// Kills every sandbox's processes and removes its folder: for signal
/// handlers, which cannot run destructors.
pub fn clean_all_live() {
    let _busy = TEARING_DOWN.lock().unwrap_or_else(|e| e.into_inner());
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, pids, dir) in live {
        tear_down(&pids, &dir);
    }
}

pub struct Sandbox {
    id: u64,
    // Field order is drop order: processes first, the folder last.
    containers: Vec<Container>,
    peer: Option<Holder>,
    keeper: Holder,
    host_mnt: File,
    master: Option<Master>,
    overlays: Vec<(PathBuf, PathBuf)>,
    dir: tempfile::TempDir,
}

/// State directories shadowed by overlays (they exist on every Linux).
const STATE_ROOTS: [&str; 2] = ["/var/lib", "/run"];

/// The folders to overlay: the standard roots and, for each extra state
/// folder, its nearest existing ancestor below `/`, without duplicates or
/// folders already inside another one.
fn overlay_roots(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = STATE_ROOTS
        .iter()
        .map(PathBuf::from)
        .filter(|r| r.is_dir())
        .collect();
    for dir in extra {
        let Some(existing) = dir.ancestors().find(|a| a.is_dir() && *a != Path::new("/")) else {
            continue;
        };
        if !roots.iter().any(|r| existing.starts_with(r)) {
            roots.retain(|r| !r.starts_with(existing));
            roots.push(existing.to_path_buf());
        }
    }
    roots
}

impl Sandbox {
    pub fn new(opts: &SandboxOptions) -> Result<Sandbox, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix("cni-conformance-")
            .tempdir()
            .map_err(SandboxError::Folder)?;
        let (keeper, overlays) = start_keeper(dir.path(), &opts.state_dirs)?;
        let mnt_path = format!("/proc/{}/ns/mnt", keeper.pid());
        let host_mnt = File::open(&mnt_path).map_err(|source| SandboxError::Open {
            path: mnt_path,
            source,
        })?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut sb = Sandbox {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            containers: Vec::new(),
            peer: None,
            keeper,
            host_mnt,
            master: None,
            overlays,
            dir,
        };
        sb.register();
        sb.ip(Scope::Host, &["link", "set", "lo", "up"])?;
        if let Some(name) = &opts.master {
            sb.master = Some(sb.make_master(name, opts.prefer_veth)?);
        }
        Ok(sb)
    }

    fn register(&self) {
        let pids = self.pids();
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(id, ..)| *id != self.id);
        live.push((self.id, pids, self.dir.path().to_path_buf()));
    }

    fn make_master(&mut self, name: &str, prefer_veth: bool) -> Result<Master, SandboxError> {
        if !prefer_veth
            && self
                .ip(Scope::Host, &["link", "add", name, "type", "dummy"])
                .is_ok()
        {
            self.ip(Scope::Host, &["link", "set", name, "up"])?;
            return Ok(Master {
                name: name.into(),
                kind: MasterKind::Dummy,
            });
        }
        let peer = Holder::start(
            "peer",
            Prelude {
                die_with_parent: true,
                unshare: libc::CLONE_NEWNET,
                ..Prelude::default()
            },
        )?;
        let pid = peer.pid().to_string();
        self.peer = Some(peer);
        self.register();
        self.ip(
            Scope::Host,
            &[
                "link", "add", name, "type", "veth", "peer", "name", name, "netns", &pid,
            ],
        )?;
        self.ip(Scope::Host, &["link", "set", name, "up"])?;
        self.ip(Scope::Peer, &["link", "set", "lo", "up"])?;
        self.ip(Scope::Peer, &["link", "set", name, "up"])?;
        Ok(Master {
            name: name.into(),
            kind: MasterKind::Veth,
        })
    }

    /// Adds a container namespace named `name` (the bind-mount's file name).
    pub fn add_container(&mut self, name: &str) -> Result<usize, SandboxError> {
        let netns_dir = self.dir.path().join("netns");
        std::fs::create_dir_all(&netns_dir).map_err(SandboxError::Folder)?;
        let file = netns_dir.join(name);
        File::create(&file).map_err(SandboxError::Folder)?;
        let holder = Holder::start(
            &format!("container {name}"),
            Prelude {
                die_with_parent: true,
                mount_ns: Some(self.host_mnt.as_raw_fd()),
                unshare: libc::CLONE_NEWNET,
                mounts: vec![Mount {
                    source: cstring("/proc/self/ns/net"),
                    target: cstring(&file),
                    fstype: None,
                    flags: libc::MS_BIND,
                    data: None,
                }],
                ..Prelude::default()
            },
        )?;
        self.containers.push(Container {
            holder,
            name: name.into(),
            file,
        });
        self.register();
        let index = self.containers.len() - 1;
        self.ip(Scope::Container(index), &["link", "set", "lo", "up"])?;
        Ok(index)
    }

    /// Ends container `index`'s namespace (its holder dies), as when a
    /// runtime tears a pod down before DEL. Paths to it stop resolving.
    pub fn remove_container(&mut self, index: usize) {
        let c = self.containers.remove(index);
        drop(c);
        self.register();
    }

    pub fn container(&self, index: usize) -> &Container {
        &self.containers[index]
    }

    pub fn containers(&self) -> &[Container] {
        &self.containers
    }

    pub fn master(&self) -> Option<&Master> {
        self.master.as_ref()
    }

    pub fn has_peer(&self) -> bool {
        self.peer.is_some()
    }

    /// The sandbox's folder on the machine (overlay layers, netns files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The folder whose files are what plugins wrote under each shadowed
    /// state root, labelled for snapshots.
    pub fn state_layers(&self) -> Vec<(String, PathBuf)> {
        self.overlays
            .iter()
            .map(|(root, upper)| (format!("state {}", root.display()), upper.clone()))
            .collect()
    }

    /// Every process the sandbox keeps, for leak checks.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.keeper.pid()];
        pids.extend(self.peer.as_ref().map(Holder::pid));
        pids.extend(self.containers.iter().map(|c| c.holder.pid()));
        pids
    }

    fn net_fd(&self, scope: Scope) -> i32 {
        match scope {
            Scope::Host => self.keeper.net.as_raw_fd(),
            Scope::Peer => self
                .peer
                .as_ref()
                .expect("this sandbox has a peer")
                .net
                .as_raw_fd(),
            Scope::Container(i) => self.containers[i].holder.net.as_raw_fd(),
        }
    }

    pub fn scope_name(&self, scope: Scope) -> String {
        match scope {
            Scope::Host => "host".into(),
            Scope::Peer => "peer".into(),
            Scope::Container(i) => format!("container {}", self.containers[i].name),
        }
    }

    /// A command that runs in `scope`'s network namespace.
    pub fn command(&self, scope: Scope, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        Prelude {
            die_with_parent: true,
            net_ns: Some(self.net_fd(scope)),
            ..Prelude::default()
        }
        .apply(&mut cmd);
        cmd
    }

    /// A command that runs as a runtime runs a plugin: in the host network
    /// namespace and the sandbox's mount namespace, in a process group of
    /// its own.
    pub fn plugin_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        Prelude {
            die_with_parent: true,
            own_process_group: true,
            mount_ns: Some(self.host_mnt.as_raw_fd()),
            net_ns: Some(self.net_fd(Scope::Host)),
            ..Prelude::default()
        }
        .apply(&mut cmd);
        cmd
    }

    /// Runs `ip ARGS` in `scope`; its stdout.
    pub fn ip(&self, scope: Scope, args: &[&str]) -> Result<String, SandboxError> {
        let out = self
            .command(scope, "ip")
            .args(args)
            .output()
            .map_err(|source| SandboxError::Spawn {
                what: "ip (is iproute2 installed?)".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(SandboxError::Ip {
                args: args.join(" "),
                scope: self.scope_name(scope),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _busy = TEARING_DOWN.lock().unwrap_or_else(|e| e.into_inner());
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, ..)| *id != self.id);
        // The holders' own drops then find nothing left to do.
        tear_down(&self.pids(), self.dir.path());
    }
}

/// Starts the keeper: new network and mount namespaces, every mount
/// private, overlays over the state roots.
fn start_keeper(
    dir: &Path,
    extra: &[PathBuf],
) -> Result<(Holder, Vec<(PathBuf, PathBuf)>), SandboxError> {
    let mut overlays = Vec::new();
    let mut plan = Vec::new();
    for root in overlay_roots(extra) {
        let root = root.as_path();
        let label = root.to_string_lossy().trim_matches('/').replace('/', "-");
        let (upper, work) = (
            dir.join("upper").join(&label),
            dir.join("work").join(&label),
        );
        std::fs::create_dir_all(&upper).map_err(SandboxError::Folder)?;
        std::fs::create_dir_all(&work).map_err(SandboxError::Folder)?;
        plan.push((root.to_path_buf(), upper.clone(), work));
        overlays.push((root.to_path_buf(), upper));
    }
    let prelude = |extra: &str| Prelude {
        die_with_parent: true,
        unshare: libc::CLONE_NEWNET | libc::CLONE_NEWNS,
        private_mounts: true,
        mounts: plan
            .iter()
            .map(|(root, upper, work)| Mount {
                source: cstring("overlay"),
                target: cstring(root),
                fstype: Some(cstring("overlay")),
                flags: 0,
                data: Some(cstring(format!(
                    "lowerdir={},upperdir={},workdir={}{extra}",
                    root.display(),
                    upper.display(),
                    work.display()
                ))),
            })
            .collect(),
        ..Prelude::default()
    };
    // Inside a user namespace overlayfs must keep its metadata in user.*
    // extended attributes.
    let keeper = Holder::start("sandbox keeper", prelude(""))
        .or_else(|_| Holder::start("sandbox keeper", prelude(",userxattr")))?;
    Ok((keeper, overlays))
}
