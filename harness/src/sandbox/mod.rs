//! A disposable world for one plugin under test.
//!
//! - A *keeper* process holds the sandbox's "host" network namespace (where
//!   plugins run, so the machine's own network is never touched) and a
//!   private mount namespace in which `/var/lib`, `/run` and `/tmp` are overlays
//!   whose writable layer lives in the sandbox folder: a plugin writing to
//!   its default state paths leaves no trace on the machine. Everything
//!   else is read-only there (but the sandbox's folder and `/proc/sys/net`,
//!   the network namespace's own), unless `writable_host` says otherwise.
//! - State folders: CNI's conventional `/var/lib/cni` and `/run/cni`, and
//!   every extra folder a config names (a `dataDir`), are empty folders of
//!   the sandbox's own, mounted over whatever the machine holds there. A
//!   plugin never sees another run's (or the machine's) reservations, and an
//!   unprivileged harness never needs write access to root-owned folders.
//! - A master link, named as the config wants: a `dummy` link where the
//!   kernel has the driver, else one end of a veth pair whose other end sits
//!   in a *peer* namespace (another machine on the segment).
//! - Containers: each a network namespace held by a process, reachable both
//!   as `/proc/<pid>/ns/net` and as a bind-mounted file.
//!
//! Every process started here dies with the harness (`PR_SET_PDEATHSIG`);
//! dropping the sandbox kills them and removes its folder, which takes the
//! namespaces, links and mounts with it.

pub mod cgroup;
pub mod links;
pub mod spawn;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use links::Links;
use spawn::{Mount, Prelude, cstring};

/// The executable `tool` in `PATH`, if there is one.
pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// iproute2's `ip`, found once in `PATH` (a child searching `PATH` itself
/// tries every folder with an `execve`).
pub fn ip_program() -> &'static Path {
    static IP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    IP.get_or_init(|| find_in_path("ip").unwrap_or_else(|| PathBuf::from("ip")))
}

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
    #[error("cannot make the master link: {0}")]
    Link(String),
    #[error("cannot give plugins the state folder {path}: {why}")]
    StateDir { path: String, why: String },
    #[error("plugins cannot write to the state folder {path}: {detail}")]
    NotWritable { path: String, detail: String },
    #[error("the harness is stopping")]
    Stopping,
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
    /// More state folders plugins write to (a config's `dataDir`): each is
    /// shown empty and writable, like `/var/lib/cni` and `/run/cni`.
    pub state_dirs: Vec<PathBuf>,
    /// Containers keep `lo` down, as in a fresh namespace, for a plugin
    /// that brings `lo` up itself; otherwise `lo` is up, as after the
    /// loopback plugin runtimes run first.
    pub lo_down: bool,
    /// Leave the machine's file system writable to what runs in the
    /// sandbox (a runtime under judgement writes where it likes); by
    /// default everything but the sandbox's own folders is read-only.
    pub writable_host: bool,
}

/// A process parked in a namespace, killed on drop.
struct Holder {
    pid: u32,
    net: File,
    /// Set once the process has been killed and reaped: its pid may then
    /// belong to someone else.
    reaped: bool,
    /// Its stack (it shares the harness's memory): freed only after it.
    _stack: spawn::Stack,
}

impl Holder {
    /// Starts a holder; `lo` brings its network namespace's loopback up.
    fn start(what: &str, prelude: Prelude, lo: bool) -> Result<Holder, SandboxError> {
        let (pid, stack) = spawn::park(&prelude, lo).map_err(|source| SandboxError::Spawn {
            what: what.into(),
            source,
        })?;
        let pid = pid as u32;
        // park() returns after the prelude, so the namespaces are in place.
        let path = format!("/proc/{pid}/ns/net");
        match File::open(&path) {
            Ok(net) => Ok(Holder {
                pid,
                net,
                reaped: false,
                _stack: stack,
            }),
            Err(source) => {
                tear_down(&[pid], Path::new(""));
                Err(SandboxError::Open { path, source })
            }
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if !self.reaped {
            tear_down(&[self.pid], Path::new(""));
        }
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
    if dir.as_os_str().is_empty() {
        return;
    }
    // Its memory file system, if it has one (the keeper's copy went with
    // the keeper's mount namespace).
    let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
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

/// Plugin process groups running now, so a signal can end them before
/// their sandbox goes; `None` once the harness is stopping (no plugin
/// starts after that).
static RUNNING: Mutex<Option<Vec<i32>>> = Mutex::new(Some(Vec::new()));

/// Folders the run made besides sandboxes (the spy's), removed on a signal.
static EXTRA_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes `dir` too when a signal stops the harness.
pub fn remove_on_signal(dir: &Path) {
    EXTRA_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
}

/// Making a sandbox or adding to one holds this for reading, from the
/// folder's creation to the registration of its processes in [`LIVE`];
/// [`clean_all_live`] sets [`STOPPING`] and then holds it for writing, so it
/// finds every sandbox complete and no sandbox is made after it.
static GATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Set once the harness is stopping: no sandbox is made after it.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn gate() -> Result<std::sync::RwLockReadGuard<'static, ()>, SandboxError> {
    let open = GATE.read().unwrap_or_else(|e| e.into_inner());
    if STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(SandboxError::Stopping);
    }
    Ok(open)
}

/// Starts a process that leads its own group, in [`RUNNING`] until reaped.
fn spawn_tracked(
    program: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
    prelude: &Prelude,
) -> std::io::Result<spawn::Piped> {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let Some(running) = running.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "the harness is stopping",
        ));
    };
    let child = spawn::spawn_piped(program, args, env, prelude)?;
    running.push(child.pid);
    Ok(child)
}

/// Kills the process groups `groups` lead and returns once every member
/// has ended (or after a few seconds): pidfds, opened before the kill,
/// tell when each is gone.
fn kill_groups(groups: &[i32]) {
    let members: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // Field 5, after the parenthesised command name.
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                .is_some_and(|pgid| groups.contains(&pgid))
        })
        .collect();
    let pidfds: Vec<std::os::fd::OwnedFd> = members
        .iter()
        .filter_map(|pid| {
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, *pid, 0) };
            // SAFETY: a new descriptor, ours alone.
            (fd >= 0).then(|| unsafe {
                <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32)
            })
        })
        .collect();
    for group in groups {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(*group),
            nix::sys::signal::SIGKILL,
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for fd in &pidfds {
        use std::os::fd::AsFd;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut poll = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let timeout =
            nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::ZERO);
        let _ = nix::poll::poll(&mut poll, timeout);
    }
}

/// Kills every running plugin's process group and every sandbox's
/// processes, and removes the sandboxes' folders and those given to
/// [`remove_on_signal`]: for signal handlers, which cannot run destructors.
/// No plugin starts afterwards.
pub fn clean_all_live() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
    // Sandboxes being made are finished first.
    let _closed = GATE.write().unwrap_or_else(|e| e.into_inner());
    let _busy = TEARING_DOWN.lock().unwrap_or_else(|e| e.into_inner());
    clean_live();
}

/// As [`clean_all_live`] for a panicking harness, on a thread of its own,
/// waiting for it at most `limit`. The panicking thread may hold the gate
/// or the teardown lock for good (a panic while a sandbox is made or torn
/// down): each is waited for briefly, then done without. Whether it
/// finished in time.
pub fn clean_all_live_within(limit: std::time::Duration) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    let started = std::thread::Builder::new().spawn(move || {
        STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
        let brief = std::time::Duration::from_secs(2);
        let _closed = wait_briefly(|| GATE.try_write(), brief);
        let _busy = wait_briefly(|| TEARING_DOWN.try_lock(), brief);
        clean_live();
        let _ = done.send(());
    });
    started.is_ok() && finished.recv_timeout(limit).is_ok()
}

/// The guard `try_lock` gives within `limit`, if any. Polled: a lock held
/// by a thread that panicked is never released, so blocking is no option.
fn wait_briefly<G>(
    try_lock: impl Fn() -> std::sync::TryLockResult<G>,
    limit: std::time::Duration,
) -> Option<G> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

fn clean_live() {
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    kill_groups(&running.unwrap_or_default());
    cgroup::kill_run();
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, pids, dir) in live {
        tear_down(&pids, &dir);
    }
    for dir in std::mem::take(&mut *EXTRA_DIRS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// For tests of the clean-up after a panic: the sandbox with this number
/// (counted from 0 in a run) panics once it is up.
const PANIC_AT_SANDBOX: &str = "CNI_CONFORMANCE_PANIC_AT_SANDBOX";

/// A panic that cannot unwind: every build then ends as the release
/// build does on any panic (its hook runs, no destructor does).
extern "C" fn panic_then_abort(id: u64) {
    panic!("sandbox {id} is up, and {PANIC_AT_SANDBOX} asks for a panic");
}

pub struct Sandbox {
    id: u64,
    // Field order is drop order: processes first, the folder last.
    containers: Vec<Container>,
    peer: Option<Holder>,
    keeper: Holder,
    host_mnt: File,
    master: Option<Master>,
    lo_down: bool,
    overlays: Vec<(PathBuf, PathBuf)>,
    /// (state folder as plugins see it, the sandbox folder behind it)
    state: Vec<(PathBuf, PathBuf)>,
    dir: tempfile::TempDir,
}

/// State directories shadowed by overlays (they exist on every Linux).
const STATE_ROOTS: [&str; 2] = ["/var/lib", "/run"];

/// Overlaid too when the rest of the machine is read-only: a plugin's
/// scratch files. (A runtime under judgement shares `/tmp` with the harness,
/// which reads its spies' logs there.)
const SCRATCH_ROOT: &str = "/tmp";

/// Where CNI plugins keep state by convention; always shown empty.
pub const CNI_STATE_DIRS: [&str; 2] = ["/var/lib/cni", "/run/cni"];

/// The folders shown empty: the CNI defaults and the extra ones, absolute
/// and plain (no `..`), outermost only (an inner one is part of the outer).
/// A path the machine holds as something else than a folder (a config
/// error, such as a `dataDir` naming a file) is left as it is.
fn state_folders(extra: &[PathBuf]) -> Vec<PathBuf> {
    use std::path::Component;
    let mut all: Vec<PathBuf> = CNI_STATE_DIRS.iter().map(PathBuf::from).collect();
    all.extend(
        extra
            .iter()
            .filter(|p| {
                p.is_absolute()
                    && p.components()
                        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
                    && p.components().count() > 1
                    && (p.is_dir() || !p.exists())
            })
            .cloned(),
    );
    all.sort();
    all.dedup();
    let outer: Vec<PathBuf> = all
        .iter()
        .filter(|p| !all.iter().any(|o| o != *p && p.starts_with(o)))
        .cloned()
        .collect();
    outer
}

/// The folders to overlay: the standard roots and, for each state folder
/// that neither exists nor lies under a root, its nearest existing
/// ancestor below `/` (so its mount point can be made), without duplicates
/// or folders already inside another one.
fn overlay_roots(state: &[PathBuf], scratch: bool) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = STATE_ROOTS
        .iter()
        .chain(scratch.then_some(&SCRATCH_ROOT))
        .map(PathBuf::from)
        .filter(|r| r.is_dir())
        .collect();
    for dir in state {
        if dir.is_dir() || roots.iter().any(|r| dir.starts_with(r)) {
            continue;
        }
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

/// A folder name for `path` inside the sandbox folder.
fn label(path: &Path) -> String {
    path.to_string_lossy().trim_matches('/').replace('/', "-")
}

/// Bytes each sandbox's folders may hold in all (overlays' writable layers,
/// state folders, logs), when the harness has a mount namespace of its own.
pub const FOLDER_LIMIT: u64 = 64 << 20;

/// Set once the harness runs in a mount namespace of its own, where each
/// sandbox's folder can be a memory file system of [`FOLDER_LIMIT`] bytes
/// that goes with the harness whatever happens.
static OWN_MOUNTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Gives this process a mount namespace of its own (the machine's mounts
/// still propagate into it, none of its own out). Only while it has one
/// thread.
pub fn own_mount_namespace() -> std::io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    OWN_MOUNTS.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Whether each sandbox's folders are bounded to [`FOLDER_LIMIT`].
pub fn folders_bounded() -> bool {
    OWN_MOUNTS.load(std::sync::atomic::Ordering::Relaxed)
        && !ON_DISK.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set once sandboxes must live on disk rather than in `/dev/shm`.
static ON_DISK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Where sandbox folders are made: `/dev/shm` when it is a writable
/// memory file system, else the temporary folder. Sandboxes are thrown
/// away, so plugins' `fsync`s of their state need not wait for a disk
/// (host-local's made a run a third slower on ext4).
pub fn base_folder() -> PathBuf {
    let shm = Path::new("/dev/shm");
    // Probed once a run, not once a sandbox.
    static SHM_USABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let usable = *SHM_USABLE.get_or_init(|| {
        nix::sys::statfs::statfs(shm)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            && nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok()
    });
    if usable && !ON_DISK.load(std::sync::atomic::Ordering::Relaxed) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

impl Sandbox {
    pub fn new(opts: &SandboxOptions) -> Result<Sandbox, SandboxError> {
        let _open = gate()?;
        let folder = |base: &Path| {
            tempfile::Builder::new()
                .prefix("cni-conformance-")
                .tempdir_in(base)
                .map_err(SandboxError::Folder)
        };
        let bound = |dir: &tempfile::TempDir| {
            if folders_bounded() {
                // A folder that fills is the plugin's trouble, not the
                // machine's.
                nix::mount::mount(
                    Some("tmpfs"),
                    dir.path(),
                    Some("tmpfs"),
                    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                    Some(format!("size={FOLDER_LIMIT},mode=0700").as_str()),
                )
                .map_err(|e| SandboxError::Folder(e.into()))
            } else {
                Ok(())
            }
        };
        let mut dir = folder(&base_folder())?;
        bound(&dir)?;
        let (keeper, (overlays, state)) = match start_keeper(dir.path(), opts) {
            Ok(k) => k,
            // An overlay this kernel refuses on the memory file system (an
            // old kernel in a user namespace): the disk, from now on.
            Err(_) if !ON_DISK.swap(true, std::sync::atomic::Ordering::Relaxed) => {
                let _ = nix::mount::umount2(dir.path(), nix::mount::MntFlags::MNT_DETACH);
                drop(dir);
                dir = folder(&base_folder())?;
                start_keeper(dir.path(), opts)?
            }
            Err(e) => return Err(e),
        };
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
            lo_down: opts.lo_down,
            overlays,
            state,
            dir,
        };
        sb.register();
        if std::env::var(PANIC_AT_SANDBOX).is_ok_and(|n| n == sb.id.to_string()) {
            panic_then_abort(sb.id);
        }
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
        let link_err = |e: links::LinkError| SandboxError::Link(e.to_string());
        let mut links = Links::open(self.netns_fd(Scope::Host)).map_err(link_err)?;
        // Whether this kernel makes dummy links does not change during a
        // run: once refused, later sandboxes go straight to veth.
        static NO_DUMMY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let try_dummy = !prefer_veth && !NO_DUMMY.load(std::sync::atomic::Ordering::Relaxed);
        if try_dummy
            && links
                .add_dummy(name)
                .inspect_err(|_| NO_DUMMY.store(true, std::sync::atomic::Ordering::Relaxed))
                .is_ok()
        {
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
            true,
        )?;
        self.peer = Some(peer);
        self.register();
        links
            .add_veth(name, name, self.netns_fd(Scope::Peer))
            .map_err(link_err)?;
        Links::open(self.netns_fd(Scope::Peer))
            .and_then(|mut peer| peer.set_up(name))
            .map_err(link_err)?;
        Ok(Master {
            name: name.into(),
            kind: MasterKind::Veth,
        })
    }

    /// Adds a container namespace named `name` (the bind-mount's file name).
    pub fn add_container(&mut self, name: &str) -> Result<usize, SandboxError> {
        let _open = gate()?;
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
            !self.lo_down,
        )?;
        self.containers.push(Container {
            holder,
            name: name.into(),
            file,
        });
        self.register();
        Ok(self.containers.len() - 1)
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

    /// The folders whose files are what plugins wrote under each shadowed
    /// state root and each state folder, labelled for snapshots.
    pub fn state_layers(&self) -> Vec<(String, PathBuf)> {
        self.overlays
            .iter()
            .chain(&self.state)
            .map(|(root, upper)| (format!("state {}", root.display()), upper.clone()))
            .collect()
    }

    /// The state folders plugins see empty and writable.
    pub fn state_folders(&self) -> impl Iterator<Item = &Path> {
        self.state.iter().map(|(p, _)| p.as_path())
    }

    /// Proves, as a plugin would, that every state folder (and `dirs`
    /// inside them) can be made and written: a run must not blame a plugin
    /// for a sandbox it cannot use.
    pub fn probe_state(&self, dirs: &[PathBuf]) -> Result<(), SandboxError> {
        let mut all: Vec<&Path> = self.state_folders().collect();
        all.extend(dirs.iter().map(PathBuf::as_path));
        for dir in all {
            let out = self
                .plugin_command("sh")
                .args([
                    "-c",
                    r#"mkdir -p "$1" && : > "$1/.cni-conformance-probe" && rm "$1/.cni-conformance-probe""#,
                    "probe",
                ])
                .arg(dir)
                .output()
                .map_err(|source| SandboxError::Spawn {
                    what: "sh".into(),
                    source,
                })?;
            if !out.status.success() {
                return Err(SandboxError::NotWritable {
                    path: dir.display().to_string(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Every process the sandbox keeps, for leak checks.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.keeper.pid()];
        pids.extend(self.peer.as_ref().map(Holder::pid));
        pids.extend(self.containers.iter().map(|c| c.holder.pid()));
        pids
    }

    /// The network namespace of `scope`, for a thread that enters it.
    pub fn netns_fd(&self, scope: Scope) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match scope {
            Scope::Host => self.keeper.net.as_fd(),
            Scope::Peer => self
                .peer
                .as_ref()
                .expect("this sandbox has a peer")
                .net
                .as_fd(),
            Scope::Container(i) => self.containers[i].holder.net.as_fd(),
        }
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

    /// How a runtime runs a plugin: in the host network namespace and the
    /// sandbox's mount namespace, in a process group of its own.
    fn plugin_prelude(&self) -> Prelude {
        Prelude {
            die_with_parent: true,
            own_process_group: true,
            mount_ns: Some(self.host_mnt.as_raw_fd()),
            net_ns: Some(self.net_fd(Scope::Host)),
            ..Prelude::default()
        }
    }

    /// Whether the sandbox's folders are full (they are bounded).
    pub fn folders_full(&self) -> bool {
        folders_bounded()
            && nix::sys::statvfs::statvfs(self.dir.path()).is_ok_and(|s| s.blocks_available() == 0)
    }

    /// A command that runs as a runtime runs a plugin.
    pub fn plugin_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.plugin_prelude().apply(&mut cmd);
        cmd
    }

    /// Starts `program` (a path) as a runtime runs a plugin, with exactly
    /// `env`, its stdio piped: the cheap way, for the many plugin calls.
    /// Until [`Sandbox::reap`], a signal kills its process group.
    pub fn spawn_plugin(
        &self,
        program: &Path,
        env: &[(String, String)],
        cgroup: Option<&cgroup::Tracker>,
    ) -> std::io::Result<spawn::Piped> {
        let prelude = Prelude {
            cgroups: cgroup.map(cgroup::Tracker::join_fds).unwrap_or_default(),
            ..self.plugin_prelude()
        };
        spawn_tracked(program, &[], env, &prelude)
    }

    /// As [`Sandbox::spawn_plugin`], the process traced by the calling
    /// thread from its `exec` on (it stops there first).
    pub fn spawn_traced_plugin(
        &self,
        program: &Path,
        env: &[(String, String)],
    ) -> std::io::Result<spawn::Piped> {
        let prelude = Prelude {
            trace_me: true,
            ..self.plugin_prelude()
        };
        spawn_tracked(program, &[], env, &prelude)
    }

    /// Forgets a process of [`Sandbox::spawn_traced_plugin`] its tracer
    /// has reaped.
    pub fn forget(pid: libc::pid_t) {
        if let Some(running) = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            running.retain(|p| *p != pid);
        }
    }

    /// Waits for a process [`Sandbox::spawn_plugin`] or
    /// [`Sandbox::spawn_in`] started, and forgets its group before its pid
    /// can be reused.
    pub fn reap(pid: libc::pid_t) -> std::io::Result<std::process::ExitStatus> {
        spawn::Piped::wait_then(pid, || Sandbox::forget(pid))
    }

    /// Starts `program` (a path) with `args` in `scope`'s network
    /// namespace, with an empty environment, its stdio piped. Until
    /// [`Sandbox::reap`], a signal kills it.
    pub fn spawn_in(
        &self,
        scope: Scope,
        program: &Path,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<spawn::Piped> {
        let prelude = Prelude {
            die_with_parent: true,
            own_process_group: true,
            net_ns: Some(self.net_fd(scope)),
            ..Prelude::default()
        };
        spawn_tracked(program, args, &[], &prelude)
    }

    /// Runs `ip ARGS` in `scope`; its stdout.
    pub fn ip(&self, scope: Scope, args: &[&str]) -> Result<String, SandboxError> {
        let out = self
            .command(scope, ip_program())
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
        tear_down(&self.pids(), self.dir.path());
        // Their pids are free for reuse now: the holders' own drops must
        // not signal them.
        for h in self
            .containers
            .iter_mut()
            .map(|c| &mut c.holder)
            .chain(self.peer.as_mut())
            .chain(std::iter::once(&mut self.keeper))
        {
            h.reaped = true;
        }
    }
}

/// Overlays (root, upper layer) and state folders (path, sandbox folder).
type Layers = (Vec<(PathBuf, PathBuf)>, Vec<(PathBuf, PathBuf)>);

/// Starts the keeper: new network and mount namespaces, every mount
/// private, overlays over the state roots, then an empty folder of the
/// sandbox's over each state folder.
fn start_keeper(dir: &Path, opts: &SandboxOptions) -> Result<(Holder, Layers), SandboxError> {
    let folders = state_folders(&opts.state_dirs);
    let roots = overlay_roots(&folders, !opts.writable_host);
    let mut overlays = Vec::new();
    let mut plan = Vec::new();
    for root in &roots {
        let (upper, work) = (
            dir.join("upper").join(label(root)),
            dir.join("work").join(label(root)),
        );
        std::fs::create_dir_all(&upper).map_err(SandboxError::Folder)?;
        std::fs::create_dir_all(&work).map_err(SandboxError::Folder)?;
        plan.push((root.clone(), upper.clone(), work));
        overlays.push((root.clone(), upper));
    }
    let mut state = Vec::new();
    for folder in folders {
        // The mount point: made in the upper layer of the overlay that
        // covers it (which also makes it ours to write), or the folder
        // itself when it exists outside every overlay.
        let covering = overlays
            .iter()
            .filter(|(root, _)| folder.starts_with(root))
            .max_by_key(|(root, _)| root.components().count());
        match covering {
            Some((root, upper)) => {
                let inner = folder.strip_prefix(root).expect("covered");
                std::fs::create_dir_all(upper.join(inner)).map_err(SandboxError::Folder)?;
            }
            None if folder.is_dir() => {}
            None => {
                return Err(SandboxError::StateDir {
                    path: folder.display().to_string(),
                    why: "no folder above it exists to hold it".into(),
                });
            }
        }
        let backing = dir.join("state").join(label(&folder));
        std::fs::create_dir_all(&backing).map_err(SandboxError::Folder)?;
        state.push((folder, backing));
    }
    // The sandbox's folder a mount of its own, so it can stay writable (a
    // spy's log) when the rest of the machine is not.
    let own_folder = Mount {
        source: cstring(dir),
        target: cstring(dir),
        fstype: None,
        flags: libc::MS_BIND,
        data: None,
    };
    let writable: Vec<_> = std::iter::once(dir)
        .chain(plan.iter().map(|(root, ..)| root.as_path()))
        .chain(state.iter().map(|(folder, _)| folder.as_path()))
        .map(cstring)
        .collect();
    let prelude = |extra: &str| Prelude {
        die_with_parent: true,
        unshare: libc::CLONE_NEWNET | libc::CLONE_NEWNS,
        private_mounts: true,
        read_only_except: (!opts.writable_host).then(|| writable.clone()),
        mounts: std::iter::once(own_folder.clone())
            .chain(plan.iter().map(|(root, upper, work)| Mount {
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
            }))
            .chain(state.iter().map(|(folder, backing)| Mount {
                source: cstring(backing),
                target: cstring(folder),
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            }))
            .collect(),
        ..Prelude::default()
    };
    // Inside a user namespace overlayfs must keep its metadata in user.*
    // extended attributes.
    let keeper = Holder::start("sandbox keeper", prelude(""), true)
        .or_else(|_| Holder::start("sandbox keeper", prelude(",userxattr"), true))?;
    Ok((keeper, (overlays, state)))
}
