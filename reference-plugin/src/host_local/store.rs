//! The on-disk reservation store, byte-compatible with upstream host-local:
//! `<dataDir>/<network>/<ip>` holds `<container id>\r\n<ifname>`,
//! `last_reserved_ip.<set>` the last address handed out per range set, and
//! `lock` is the `flock` target that serialises every invocation (ours and
//! upstream's alike).
//!
//! Writes are crash-safe: a reservation is written to a nameless
//! (`O_TMPFILE`) or temporary file, fsynced, then hard-linked to its final
//! name (which fails if the address is taken, atomically), and the directory
//! is fsynced. A crash therefore
//! never leaves an empty reservation; empty ones left by other
//! implementations are reclaimed while the lock is held.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{AT_FDCWD, AtFlags, Flock, FlockArg};
use nix::sys::stat::futimens;
use nix::sys::time::TimeSpec;
use nix::unistd::linkat;

use super::index::{self, Stamp};
use super::owner::Owner;
use super::reservations::Reservations;

const TEMP_PREFIX: &str = ".reserving-";
/// How long to wait for the store lock before answering "try again later"
/// (code 11); `CNI_REFERENCE_LOCK_TIMEOUT_MS` overrides it.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

fn lock_timeout() -> Duration {
    std::env::var("CNI_REFERENCE_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(LOCK_TIMEOUT)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("timed out after {} ms waiting for the lock on {}", .0.as_millis(), .1.display())]
    LockTimeout(Duration, PathBuf),
    #[error("network name {0:?} is not a single directory name")]
    BadName(String),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One network's store, locked for the lifetime of the value.
pub struct Store {
    dir: PathBuf,
    dir_file: File,
    _lock: Flock<File>,
    reservations: Reservations,
    /// Entries were added or removed: fsync the directory on commit.
    dir_changed: bool,
    /// The owner map differs from the index on disk.
    index_stale: bool,
}

impl Store {
    /// Opens and locks `<data_dir>/<network>`. With `create` false (DEL,
    /// CHECK, GC, STATUS) a missing directory is `None` and nothing is made.
    pub fn open(data_dir: &Path, network: &str, create: bool) -> Result<Option<Store>, StoreError> {
        // The network name was validated by the protocol layer; this keeps
        // the store safe for in-process callers too.
        let mut comps = Path::new(network).components();
        if !matches!(
            (comps.next(), comps.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(StoreError::BadName(network.to_string()));
        }
        let dir = data_dir.join(network);
        if create {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
                .map_err(io_err("creating", &dir))?;
        }
        let dir_file = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(io_err("opening", &dir)(e)),
        };
        let lock_path = dir.join("lock");
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        let lock = acquire(lock_file, &lock_path)?;
        let mut store = Store {
            dir,
            dir_file,
            _lock: lock,
            reservations: Reservations::default(),
            dir_changed: false,
            index_stale: false,
        };
        store.load()?;
        Ok(Some(store))
    }

    pub fn reservations(&self) -> &Reservations {
        &self.reservations
    }

    /// Addresses held by the attachment: exact matches, or, when there are
    /// none, legacy files holding the bare container ID (upstream's rule).
    pub fn held_by(&self, id: &str, ifname: &str) -> Vec<IpAddr> {
        let exact = self
            .reservations
            .with_content(&Owner::file_content(id, ifname));
        if exact.is_empty() {
            self.reservations.with_content(id.trim().as_bytes())
        } else {
            exact
        }
    }

    fn path_of(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    /// Claims `ip` for the attachment. `Ok(false)` when the file exists
    /// already (someone wrote it without taking the lock).
    ///
    /// The content is written and fsynced before the file gets its name, and
    /// naming is `link(2)`, which fails rather than replace: the address
    /// file appears whole or not at all.
    pub fn reserve(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool, StoreError> {
        let content = Owner::file_content(id, ifname);
        let target = self.path_of(ip);
        self.dir_changed = true;
        self.index_stale = true;
        let linked = match self.unnamed_file(&content)? {
            Some(file) => {
                let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
                linkat(
                    AT_FDCWD,
                    fd_path.as_str(),
                    AT_FDCWD,
                    &target,
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .map_err(io::Error::from)
            }
            None => {
                let temp = self.dir.join(format!("{TEMP_PREFIX}{ip}"));
                write_synced(&temp, &content)?;
                let linked = fs::hard_link(&temp, &target);
                fs::remove_file(&temp).map_err(io_err("removing", &temp))?;
                linked
            }
        };
        let taken = match linked {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => true,
            Err(e) => return Err(io_err("reserving", &target)(e)),
        };
        let content = if taken {
            fs::read(&target).unwrap_or_default()
        } else {
            content
        };
        self.reservations.insert(ip, &Owner::parse(&content));
        Ok(!taken)
    }

    /// A nameless file in the store holding `content`, fsynced
    /// (`O_TMPFILE`); `None` where the filesystem has no such thing.
    fn unnamed_file(&self, content: &[u8]) -> Result<Option<File>, StoreError> {
        let opened = OpenOptions::new()
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(&self.dir);
        let mut file = match opened {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io_err("creating a file in", &self.dir)(e)),
        };
        file.write_all(content)
            .map_err(io_err("writing in", &self.dir))?;
        file.sync_all().map_err(io_err("syncing in", &self.dir))?;
        Ok(Some(file))
    }

    pub fn release(&mut self, ip: IpAddr) -> Result<(), StoreError> {
        let path = self.path_of(ip);
        match fs::remove_file(&path) {
            Ok(()) => self.dir_changed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &path)(e)),
        }
        self.reservations.remove(ip);
        self.index_stale = true;
        Ok(())
    }

    /// The round-robin cursor of range set `set`; unreadable means none.
    pub fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        let text = fs::read_to_string(self.dir.join(format!("last_reserved_ip.{set}"))).ok()?;
        text.trim().parse().ok()
    }

    /// Rewrites the cursor in place. It is a hint, not state: a torn one
    /// reads as garbage and the round simply restarts, so it needs neither a
    /// temporary file nor fsync (each cost about 0.2 ms per ADD).
    pub fn set_last_reserved(&mut self, set: usize, ip: IpAddr) -> Result<(), StoreError> {
        let path = self.dir.join(format!("last_reserved_ip.{set}"));
        let text = ip.to_string();
        let mut file = open_in_place(&path)?;
        file.write_all(text.as_bytes())
            .map_err(io_err("writing", &path))?;
        file.set_len(text.len() as u64)
            .map_err(io_err("writing", &path))?;
        Ok(())
    }

    /// Makes the changes durable and refreshes the index. The lock is
    /// released when `self` drops.
    pub fn commit(mut self) -> Result<(), StoreError> {
        if self.dir_changed {
            self.dir_file
                .sync_all()
                .map_err(io_err("syncing", &self.dir))?;
        }
        // Every directory change also marks the index stale.
        if self.index_stale {
            // The index is only a cache: failing to refresh it (say, no
            // right to set the directory's mtime) costs a rescan later,
            // never the operation itself.
            if let Err(e) = self.write_index() {
                eprintln!("host-local: index not refreshed, the next call rescans: {e}");
            }
        }
        Ok(())
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let stamp = self.stamp()?;
        if let Ok(bytes) = fs::read(self.dir.join(index::FILE_NAME)) {
            if let Some(reservations) = index::decode(&bytes, stamp) {
                self.reservations = reservations;
                return Ok(());
            }
        }
        self.scan()
    }

    /// Reads every address file; clears crash leftovers on the way.
    fn scan(&mut self) -> Result<(), StoreError> {
        // The owner recorded for an entry that cannot be read.
        const UNREADABLE: &[u8] = b"?unreadable";
        let mut found = Vec::new();
        self.index_stale = true;
        let entries = fs::read_dir(&self.dir).map_err(io_err("reading", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("reading", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.starts_with(TEMP_PREFIX) {
                // Temporary files exist only under the lock we now hold.
                fs::remove_file(&path).map_err(io_err("removing", &path))?;
                self.dir_changed = true;
                continue;
            }
            let Ok(ip) = name.parse::<IpAddr>() else {
                continue;
            };
            let content = match fs::read(&path) {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                // Something is there that is not a readable reservation (a
                // folder, a file we may not read): the address stays taken,
                // by an owner no one can name, and every scan says so.
                Err(e) => {
                    eprintln!("host-local: {ip} is taken by an unreadable entry: {e}");
                    UNREADABLE.to_vec()
                }
            };
            match Owner::parse(&content) {
                Owner::Torn => {
                    eprintln!(
                        "host-local: reclaiming {ip}: its reservation file is empty (a crash cut its write)"
                    );
                    fs::remove_file(&path).map_err(io_err("removing", &path))?;
                    self.dir_changed = true;
                }
                owner => found.push((ip, owner.content().into_boxed_slice())),
            }
        }
        found.sort_unstable_by_key(|e| e.0);
        self.reservations = Reservations::from_sorted(found).expect("file names are unique");
        Ok(())
    }

    fn stamp(&self) -> Result<Stamp, StoreError> {
        let m = self
            .dir_file
            .metadata()
            .map_err(io_err("stat", &self.dir))?;
        Ok(Stamp {
            sec: m.mtime(),
            nsec: m.mtime_nsec(),
        })
    }

    fn write_index(&mut self) -> Result<(), StoreError> {
        let path = self.dir.join(index::FILE_NAME);
        // Created (a directory change) before the stamp is taken.
        let mut file = open_in_place(&path)?;
        let now = self.stamp()?;
        let random_nsec = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % 1_000_000_000;
        let stamp = Stamp {
            sec: now.sec - 1,
            nsec: random_nsec as i64,
        };
        let bytes = index::encode(stamp, &self.reservations);
        file.write_all(&bytes).map_err(io_err("writing", &path))?;
        file.set_len(bytes.len() as u64)
            .map_err(io_err("writing", &path))?;
        let mtime = TimeSpec::new(stamp.sec, stamp.nsec);
        futimens(&self.dir_file, &TimeSpec::UTIME_OMIT, &mtime)
            .map_err(|e| io_err("setting mtime of", &self.dir)(e.into()))?;
        Ok(())
    }
}

fn write_synced(path: &Path, content: &[u8]) -> Result<(), StoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("creating", path))?;
    f.write_all(content).map_err(io_err("writing", path))?;
    f.sync_all().map_err(io_err("syncing", path))
}

/// `flock` with a deadline, so a wedged peer turns into "try again later"
/// instead of a hang.
fn acquire(file: File, path: &Path) -> Result<Flock<File>, StoreError> {
    let timeout = lock_timeout();
    let deadline = Instant::now() + timeout;
    let mut file = file;
    let mut backoff = Duration::from_millis(1);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) | Err((f, nix::errno::Errno::EINTR)) => {
                if Instant::now() >= deadline {
                    return Err(StoreError::LockTimeout(timeout, path.to_path_buf()));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(50));
                file = f;
            }
            Err((_, e)) => return Err(io_err("locking", path)(e.into())),
        }
    }
}

/// Opens `path` for an in-place rewrite: created if missing, not truncated
/// (the caller sets the length after writing).
fn open_in_place(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err("opening", path))
}
