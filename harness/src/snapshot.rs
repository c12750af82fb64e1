//! Kernel and file-system snapshots, and the differences between two of them.
//!
//! A plugin is judged by what it leaves behind. Before and after a call the
//! harness captures each network namespace (links, addresses, routes,
//! neighbours, a few sysctls) and each state directory; [`diff`] turns two
//! captures into structured [`Change`]s, which checks use to find leaks, and
//! the query methods of [`NetnsSnapshot`] compare a plugin's reported result
//! with reality. Addresses and routes are parsed values: `10.0.0.2/32`,
//! `10.0.0.2` and a compressed IPv6 address compare as what they are.
//!
//! The kernel is read through iproute2's JSON output, never through netlink
//! code, so the harness cannot share a netlink bug with the reference
//! plugins; sysctls are read from `/proc/sys` as seen from the namespace.
//! How a command reaches the right namespace is the caller's business:
//! [`capture_netns`] takes a runner closure, [`read_sysctls`] reads the
//! namespace of the calling thread.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("running {program}: {detail}")]
    Command { program: String, detail: String },
    #[error("cannot {what}")]
    Start {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse the output of {command}: {detail}")]
    Parse { command: String, detail: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything captured at one moment, by label: `"host"`, `"container"`,
/// `"state /var/lib/cni"`, ...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub namespaces: BTreeMap<String, NetnsSnapshot>,
    pub files: BTreeMap<String, FilesSnapshot>,
}

/// One network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetnsSnapshot {
    /// By link name.
    pub links: BTreeMap<String, Link>,
    /// Without IPv6 link-local addresses (see [`capture_netns`]).
    pub addresses: BTreeSet<Address>,
    /// Both families, every table but `local`, without kernel boilerplate.
    pub routes: BTreeSet<Route>,
    /// `(dev, dst)` → link-layer address, for entries that have one.
    pub neighbours: BTreeMap<(String, String), String>,
    /// Path under `/proc/sys/` (`net/ipv4/conf/eth0/arp_notify`) → value.
    pub sysctls: BTreeMap<String, String>,
}

impl NetnsSnapshot {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.get(name)
    }

    /// The addresses on `ifname`, in order.
    pub fn addresses_on<'a>(&'a self, ifname: &'a str) -> impl Iterator<Item = IpNetwork> + 'a {
        self.addresses
            .iter()
            .filter(move |a| a.ifname == ifname)
            .map(|a| a.addr)
    }

    /// Whether a route to `dst` exists in any table, through `gateway` when
    /// one is given.
    pub fn has_route(&self, dst: IpNetwork, gateway: Option<IpAddr>) -> bool {
        self.routes
            .iter()
            .any(|r| r.dst == dst && gateway.is_none_or(|gw| r.gateway == Some(gw)))
    }

    /// The routes whose device is `dev`.
    pub fn routes_via<'a>(&'a self, dev: &'a str) -> impl Iterator<Item = &'a Route> + 'a {
        self.routes
            .iter()
            .filter(move |r| r.dev.as_deref() == Some(dev))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Recorded but never compared: a link is known by its name, and only a
    /// re-created link gets a new index, which alone says nothing a check
    /// needs (changed settings show in the other fields).
    pub ifindex: u32,
    /// `linkinfo.info_kind`: `veth`, `macvlan`, `bridge`, ...; none for `lo`.
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub mtu: u32,
    /// Administratively up (the UP flag). The operational state is left out:
    /// it follows carrier and peers, not the plugin.
    pub up: bool,
    pub master: Option<String>,
    pub macvlan_mode: Option<String>,
}

/// An address on a link; orders by link, then address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    pub ifname: String,
    /// The address with its prefix length, e.g. `10.1.2.3/24`.
    pub addr: IpNetwork,
}

/// A route, or one next hop of a multipath route. Orders by table first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// `main` when iproute2 names none.
    pub table: String,
    /// `0.0.0.0/0` for IPv4 `default`, `/32` for a host.
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
}

/// The entries under one directory, by `/`-separated path relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesSnapshot {
    pub entries: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEntry {
    File {
        size: u64,
        crc32: u32,
        /// The content, for small UTF-8 files, so diffs can show it.
        text: Option<String>,
    },
    Directory,
    Symlink {
        target: String,
    },
    /// An overlayfs whiteout (character device 0/0): the layer deleted the
    /// file beneath it.
    Whiteout,
    /// A fifo, socket or device.
    Special,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// What a [`Change`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Link(String),
    Address(Address),
    Route(Route),
    /// Learnt from traffic, so it changes on its own: checks leave it out.
    Neighbour {
        dst: String,
        dev: String,
    },
    /// A path under `/proc/sys/`.
    Sysctl(String),
    /// A path relative to the scope's folder, and what it is after the
    /// change (before it, when removed).
    File {
        path: String,
        entry: FileEntry,
    },
}

/// Where a change was seen: a namespace or a state folder, by its label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `host`, `peer`, `container ctr0`.
    Netns(String),
    /// The folder as plugins see it (`/var/lib/cni`).
    State(String),
}

impl Scope {
    /// The label a [`Snapshot`] keeps a state folder under.
    pub fn state_label(folder: &Path) -> String {
        format!("state {}", folder.display())
    }

    fn from_label(label: &str) -> Scope {
        match label.strip_prefix("state ") {
            Some(folder) => Scope::State(folder.to_string()),
            None => Scope::Netns(label.to_string()),
        }
    }
}

/// One difference between two snapshots; formatted only for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub scope: Scope,
    pub object: Object,
    /// What it is or how it changed, for people; may be empty.
    pub detail: String,
}

/// Small files are kept whole, so a diff can show an IPAM owner file.
const TEXT_LIMIT: usize = 256;

/// The sysctls a network plugin typically sets, by folder and file name:
/// for every interface, and the global forwarding switch.
const SYSCTL_CONF: [(&str, &str); 4] = [
    ("net/ipv4/conf", "arp_notify"),
    ("net/ipv4/conf", "forwarding"),
    ("net/ipv6/conf", "ndisc_notify"),
    ("net/ipv6/conf", "disable_ipv6"),
];
const SYSCTL_GLOBAL: [&str; 1] = ["net/ipv4/ip_forward"];

// What `ip -j` prints, as far as a snapshot needs it.

#[derive(Deserialize)]
struct IpLink {
    ifindex: u32,
    ifname: String,
    #[serde(default)]
    flags: Vec<String>,
    mtu: u32,
    address: Option<String>,
    master: Option<String>,
    linkinfo: Option<IpLinkInfo>,
}

#[derive(Deserialize)]
struct IpLinkInfo {
    info_kind: Option<String>,
    /// Its shape depends on the kind.
    info_data: Option<Value>,
}

#[derive(Deserialize)]
struct IpAddrLink {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    local: Option<String>,
    prefixlen: Option<u8>,
}

#[derive(Deserialize)]
struct IpRoute {
    #[serde(rename = "type")]
    kind: Option<String>,
    dst: String,
    gateway: Option<String>,
    dev: Option<String>,
    table: Option<String>,
    protocol: Option<String>,
    #[serde(default)]
    nexthops: Vec<IpNexthop>,
}

#[derive(Deserialize)]
struct IpNexthop {
    gateway: Option<String>,
    dev: Option<String>,
}

#[derive(Deserialize)]
struct IpNeigh {
    dst: String,
    dev: String,
    lladdr: Option<String>,
}

/// Which parts of a namespace to capture; a check reads only what it
/// compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub links: bool,
    pub addresses: bool,
    pub routes: bool,
    pub neighbours: bool,
    pub sysctls: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        links: true,
        addresses: true,
        routes: true,
        neighbours: true,
        sysctls: true,
    };
    pub const LINKS: Parts = Parts {
        links: true,
        addresses: false,
        routes: false,
        neighbours: false,
        sysctls: false,
    };
    pub const ADDRESSES: Parts = Parts {
        links: true,
        addresses: true,
        routes: false,
        neighbours: false,
        sysctls: false,
    };
    /// What a result can claim: links, addresses, routes.
    pub const RESULT: Parts = Parts {
        links: true,
        addresses: true,
        routes: true,
        neighbours: false,
        sysctls: false,
    };
}

/// The iproute2 invocation a capture runs: one process answers every part,
/// each batch line's JSON array on a line of its own. `-d` is global in a
/// batch; the extra detail it adds to addresses and routes is ignored.
pub const IP_BATCH: [&str; 4] = ["-d", "-j", "-batch", "-"];

/// One line of the batch and what its answer fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Links,
    Addresses,
    /// Routes of one family (`root 0.0.0.0/0` or `root ::/0` selects it, as
    /// `-4`/`-6` would, which a batch line cannot carry).
    Routes {
        v6: bool,
    },
    Neighbours,
}

impl Section {
    fn line(self) -> &'static str {
        match self {
            Section::Links => "link show",
            Section::Addresses => "addr show",
            Section::Routes { v6: false } => "route show table all root 0.0.0.0/0",
            Section::Routes { v6: true } => "route show table all root ::/0",
            Section::Neighbours => "neigh show",
        }
    }
}

/// The batch lines for `parts`, in order.
fn sections(parts: Parts) -> Vec<Section> {
    let mut out = Vec::new();
    if parts.links {
        out.push(Section::Links);
    }
    if parts.addresses {
        out.push(Section::Addresses);
    }
    if parts.routes {
        out.push(Section::Routes { v6: false });
        out.push(Section::Routes { v6: true });
    }
    if parts.neighbours {
        out.push(Section::Neighbours);
    }
    out
}

/// Captures the links, addresses, routes and neighbours of the namespace
/// `run` executes commands in (sysctls are [`read_sysctls`]' business).
///
/// `run(batch)` must run `ip` with [`IP_BATCH`] inside that namespace, feed
/// it `batch` on stdin and return its stdout. IPv6 link-local addresses and
/// routes are left out: the kernel makes them for every link that comes up,
/// so they would only repeat the link changes.
pub fn capture_netns(
    run: impl FnOnce(&str) -> Result<String, SnapshotError>,
) -> Result<NetnsSnapshot, SnapshotError> {
    capture_parts(run, Parts::ALL)
}

/// As [`capture_netns`], only the `parts` asked for (the rest empty).
pub fn capture_parts(
    run: impl FnOnce(&str) -> Result<String, SnapshotError>,
    parts: Parts,
) -> Result<NetnsSnapshot, SnapshotError> {
    let mut snap = NetnsSnapshot::default();
    let sections = sections(parts);
    if sections.is_empty() {
        return Ok(snap);
    }
    let batch: String = sections.iter().map(|s| format!("{}\n", s.line())).collect();
    let out = run(&batch)?;
    let mut answers = serde_json::Deserializer::from_str(&out).into_iter::<Value>();
    for section in sections {
        let command = format!("ip -d -j {}", section.line());
        let parse = |detail: String| SnapshotError::Parse {
            command: command.clone(),
            detail,
        };
        let answer = match answers.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(parse(e.to_string())),
            None => return Err(parse("no answer".into())),
        };
        fill(&mut snap, section, answer).map_err(parse)?;
    }
    Ok(snap)
}

/// Decodes one batch line's JSON array into `snap`.
fn fill(snap: &mut NetnsSnapshot, section: Section, answer: Value) -> Result<(), String> {
    fn items<T: DeserializeOwned>(answer: Value) -> Result<Vec<T>, String> {
        serde_json::from_value(answer).map_err(|e| e.to_string())
    }
    match section {
        Section::Links => {
            for l in items::<IpLink>(answer)? {
                snap.links.insert(l.ifname.clone(), Link::from(l));
            }
        }
        Section::Addresses => {
            for l in items::<IpAddrLink>(answer)? {
                // Entries without `local` are the empty objects some
                // iproute2 versions print for filtered-out addresses.
                for (local, prefix) in l
                    .addr_info
                    .into_iter()
                    .filter_map(|a| Some((a.local?, a.prefixlen)))
                {
                    let ip = parse_ip(&local)?;
                    if matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
                        continue;
                    }
                    let addr = network(ip, prefix).ok_or_else(|| {
                        format!("bad prefix length {} for {local}", prefix.unwrap_or(0))
                    })?;
                    snap.addresses.insert(Address {
                        ifname: l.ifname.clone(),
                        addr,
                    });
                }
            }
        }
        Section::Routes { v6 } => {
            for r in items::<IpRoute>(answer)? {
                add_route(&mut snap.routes, r, v6)?;
            }
        }
        Section::Neighbours => {
            for n in items::<IpNeigh>(answer)? {
                // Entries without one (INCOMPLETE, FAILED) are attempts,
                // not state.
                if let Some(lladdr) = n.lladdr {
                    snap.neighbours.insert((n.dev, n.dst), lladdr);
                }
            }
        }
    }
    Ok(())
}

/// The sysctls of [`SYSCTL_CONF`] for every interface and [`SYSCTL_GLOBAL`],
/// as the calling thread's network namespace sees them (`/proc/sys/net`
/// follows the reader's namespace): run it on a thread that entered the
/// namespace. Files that do not exist (IPv6 disabled) are left out.
pub fn read_sysctls() -> Result<BTreeMap<String, String>, SnapshotError> {
    let proc_sys = Path::new("/proc/sys");
    let mut out = BTreeMap::new();
    let mut read = |key: String| -> Result<(), SnapshotError> {
        let path = proc_sys.join(&key);
        match fs::read_to_string(&path) {
            Ok(v) => {
                out.insert(key, v.trim().to_string());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SnapshotError::Io { path, source }),
        }
    };
    for (folder, name) in SYSCTL_CONF {
        let dir = proc_sys.join(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(SnapshotError::Io { path: dir, source }),
        };
        let mut ifaces: Vec<String> = entries
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(io_error(&dir))?;
        ifaces.sort();
        for iface in ifaces {
            read(format!("{folder}/{iface}/{name}"))?;
        }
    }
    for key in SYSCTL_GLOBAL {
        read(key.to_string())?;
    }
    Ok(out)
}

impl From<IpLink> for Link {
    fn from(l: IpLink) -> Self {
        let (kind, data) = l
            .linkinfo
            .map_or((None, None), |i| (i.info_kind, i.info_data));
        let macvlan_mode = match (kind.as_deref(), data) {
            (Some("macvlan"), Some(data)) => {
                data.get("mode").and_then(Value::as_str).map(str::to_string)
            }
            _ => None,
        };
        Link {
            ifindex: l.ifindex,
            up: l.flags.iter().any(|f| f == "UP"),
            kind,
            mac: l.address,
            mtu: l.mtu,
            master: l.master,
            macvlan_mode,
        }
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("bad address {s:?}"))
}

/// `ip/prefix`, the prefix defaulting to a single host; None if too long.
fn network(ip: IpAddr, prefix: Option<u8>) -> Option<IpNetwork> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(ip, prefix.unwrap_or(max)).ok()
}

/// Records `r` (one entry per next hop), unless it is kernel boilerplate.
fn add_route(routes: &mut BTreeSet<Route>, r: IpRoute, v6: bool) -> Result<(), String> {
    // Local, broadcast and multicast routes mirror the addresses and links.
    let derived = matches!(
        r.kind.as_deref(),
        Some("local" | "broadcast" | "multicast" | "anycast")
    );
    if derived || r.table.as_deref() == Some("local") {
        return Ok(());
    }
    let unspecified = if v6 {
        IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED)
    };
    let dst = match r.dst.as_str() {
        "default" => network(unspecified, Some(0)).expect("a /0 is valid"),
        dst => {
            let (addr, prefix) = match dst.split_once('/') {
                Some((addr, prefix)) => (
                    addr,
                    Some(prefix.parse().map_err(|_| format!("bad dst {dst:?}"))?),
                ),
                None => (dst, None),
            };
            network(parse_ip(addr)?, prefix).ok_or_else(|| format!("bad dst {dst:?}"))?
        }
    };
    // The kernel gives every IPv6 link these.
    let kernel = r.protocol.as_deref() == Some("kernel");
    let shown = dst.to_string();
    if v6 && (shown == "ff00::/8" || (shown == "fe80::/64" && kernel)) {
        return Ok(());
    }
    let table = r.table.unwrap_or_else(|| "main".to_string());
    let hops = if r.nexthops.is_empty() {
        vec![(r.gateway, r.dev)]
    } else {
        r.nexthops.into_iter().map(|h| (h.gateway, h.dev)).collect()
    };
    for (gateway, dev) in hops {
        let gateway = gateway.as_deref().map(parse_ip).transpose()?;
        routes.insert(Route {
            table: table.clone(),
            dst,
            gateway,
            dev,
        });
    }
    Ok(())
}

/// Captures every entry under `root`, as this process sees it; an empty
/// snapshot if `root` does not exist. Symbolic links are recorded, not
/// followed.
pub fn capture_files(root: &Path) -> Result<FilesSnapshot, SnapshotError> {
    let mut snap = FilesSnapshot::default();
    if root.try_exists().map_err(io_error(root))? {
        walk(root, "", &mut snap.entries)?;
    }
    Ok(snap)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Records the entries of `dir`, named `prefix` + their name.
fn walk(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, FileEntry>,
) -> Result<(), SnapshotError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let rel = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = fs::symlink_metadata(&path).map_err(io_error(&path))?;
        let kind = meta.file_type();
        let recorded = if kind.is_dir() {
            walk(&path, &format!("{rel}/"), out)?;
            FileEntry::Directory
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(io_error(&path))?;
            FileEntry::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else if kind.is_file() {
            let bytes = fs::read(&path).map_err(io_error(&path))?;
            let (size, crc32) = (bytes.len() as u64, crc32fast::hash(&bytes));
            let small = bytes.len() <= TEXT_LIMIT;
            let text = small.then(|| String::from_utf8(bytes).ok()).flatten();
            FileEntry::File { size, crc32, text }
        } else if kind.is_char_device() && meta.rdev() == 0 {
            FileEntry::Whiteout
        } else {
            FileEntry::Special
        };
        out.insert(rel, recorded);
    }
    Ok(())
}

/// The differences from `before` to `after`, by scope, then by category
/// (links, addresses, routes, neighbours, sysctls; files), then by key.
/// A scope missing on one side counts as empty there.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    diff_scopes(&before.namespaces, &after.namespaces, &mut out, diff_netns);
    diff_scopes(&before.files, &after.files, &mut out, diff_files);
    // A stable sort keeps the category order within each scope; labels
    // sort as they read.
    out.sort_by_key(|c| c.scope.to_string());
    out
}

/// Runs `each` on every scope of either side.
fn diff_scopes<S: Default>(
    before: &BTreeMap<String, S>,
    after: &BTreeMap<String, S>,
    out: &mut Vec<Change>,
    each: fn(&mut Recorder, &S, &S),
) {
    let empty = S::default();
    let scopes: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for scope in scopes {
        let b = before.get(scope).unwrap_or(&empty);
        let a = after.get(scope).unwrap_or(&empty);
        each(&mut Recorder { scope, out }, b, a);
    }
}

struct Recorder<'a> {
    scope: &'a str,
    out: &'a mut Vec<Change>,
}

impl Recorder<'_> {
    fn push(&mut self, kind: ChangeKind, object: Object, detail: String) {
        self.out.push(Change {
            kind,
            scope: Scope::from_label(self.scope),
            object,
            detail,
        });
    }
}

/// How one key differs between two maps.
enum Pair<'a, V> {
    Added(&'a V),
    Removed(&'a V),
    Changed(&'a V, &'a V),
}

impl<'a, V> Pair<'a, V> {
    fn describe(
        self,
        one: impl Fn(&'a V) -> String,
        two: impl Fn(&'a V, &'a V) -> String,
    ) -> (ChangeKind, String) {
        match self {
            Pair::Added(v) => (ChangeKind::Added, one(v)),
            Pair::Removed(v) => (ChangeKind::Removed, one(v)),
            Pair::Changed(old, new) => (ChangeKind::Changed, two(old, new)),
        }
    }
}

/// The keys whose values differ, in key order.
fn pairs<'a, K: Ord, V: PartialEq>(
    before: &'a BTreeMap<K, V>,
    after: &'a BTreeMap<K, V>,
) -> impl Iterator<Item = (&'a K, Pair<'a, V>)> {
    let keys: BTreeSet<&K> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (None, Some(new)) => Some((k, Pair::Added(new))),
            (Some(old), None) => Some((k, Pair::Removed(old))),
            (Some(old), Some(new)) if old != new => Some((k, Pair::Changed(old, new))),
            _ => None,
        })
}

/// The members in only one of the sets, in order.
fn set_changes<'a, T: Ord>(
    before: &'a BTreeSet<T>,
    after: &'a BTreeSet<T>,
) -> impl Iterator<Item = (ChangeKind, &'a T)> {
    before.symmetric_difference(after).map(|x| {
        let kind = if after.contains(x) {
            ChangeKind::Added
        } else {
            ChangeKind::Removed
        };
        (kind, x)
    })
}

fn diff_netns(rec: &mut Recorder, b: &NetnsSnapshot, a: &NetnsSnapshot) {
    for (name, pair) in pairs(&b.links, &a.links) {
        let (kind, detail) = pair.describe(Link::summary, link_changes);
        // Only the index differs: see `Link::ifindex`.
        if kind == ChangeKind::Changed && detail.is_empty() {
            continue;
        }
        rec.push(kind, Object::Link(name.clone()), detail);
    }
    for (kind, address) in set_changes(&b.addresses, &a.addresses) {
        rec.push(kind, Object::Address(address.clone()), String::new());
    }
    for (kind, route) in set_changes(&b.routes, &a.routes) {
        rec.push(kind, Object::Route(route.clone()), String::new());
    }
    for ((dev, dst), pair) in pairs(&b.neighbours, &a.neighbours) {
        let (kind, detail) = pair.describe(String::clone, |o, n| format!("lladdr {o} -> {n}"));
        let (dst, dev) = (dst.clone(), dev.clone());
        rec.push(kind, Object::Neighbour { dst, dev }, detail);
    }
    for (key, pair) in pairs(&b.sysctls, &a.sysctls) {
        // A link's sysctls come and go with it; the link change says so.
        let churned = |link: &str| b.links.contains_key(link) != a.links.contains_key(link);
        if sysctl_link(key).is_some_and(churned) {
            continue;
        }
        let (kind, detail) = pair.describe(String::clone, |o, n| format!("{o} -> {n}"));
        rec.push(kind, Object::Sysctl(key.clone()), detail);
    }
}

/// The interface a per-interface sysctl belongs to (`all` and `default`
/// included).
fn sysctl_link(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix("net/ipv4/conf/")
        .or_else(|| key.strip_prefix("net/ipv6/conf/"))?;
    rest.split('/').next()
}

fn diff_files(rec: &mut Recorder, b: &FilesSnapshot, a: &FilesSnapshot) {
    use FileEntry::Whiteout;
    for (path, pair) in pairs(&b.entries, &a.entries) {
        let entry = match &pair {
            Pair::Added(e) | Pair::Removed(e) | Pair::Changed(_, e) => (*e).clone(),
        };
        // A whiteout stands for the absence of a file the layer hides.
        let (kind, detail) = match pair {
            Pair::Added(Whiteout) | Pair::Changed(_, Whiteout) => {
                (ChangeKind::Removed, "whiteout".to_string())
            }
            Pair::Removed(Whiteout) => (ChangeKind::Added, "whiteout gone".to_string()),
            Pair::Changed(Whiteout, new) => (ChangeKind::Added, new.to_string()),
            pair => pair.describe(FileEntry::to_string, |o, n| format!("{o} -> {n}")),
        };
        let path = path.clone();
        rec.push(kind, Object::File { path, entry }, detail);
    }
}

impl Link {
    /// What tells a reader which link this is.
    fn summary(&self) -> String {
        let master = self.master.as_ref().map(|m| format!("master {m}"));
        [
            self.kind.clone(),
            self.macvlan_mode.clone(),
            self.mac.clone(),
            master,
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// The compared fields that differ, as `mtu 1500 -> 9000, up false -> true`.
fn link_changes(old: &Link, new: &Link) -> String {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_string());
    [
        ("kind", show(&old.kind), show(&new.kind)),
        ("mac", show(&old.mac), show(&new.mac)),
        ("mtu", old.mtu.to_string(), new.mtu.to_string()),
        ("up", old.up.to_string(), new.up.to_string()),
        ("master", show(&old.master), show(&new.master)),
        (
            "macvlan mode",
            show(&old.macvlan_mode),
            show(&new.macvlan_mode),
        ),
    ]
    .into_iter()
    .filter(|(_, o, n)| o != n)
    .map(|(field, o, n)| format!("{field} {o} -> {n}"))
    .collect::<Vec<_>>()
    .join(", ")
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "address {} on {}", self.addr, self.ifname)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dst.prefix() == 0 {
            f.write_str("route default")?;
        } else {
            write!(f, "route {}", self.dst)?;
        }
        if let Some(gateway) = &self.gateway {
            write!(f, " via {gateway}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if self.table != "main" {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

impl fmt::Display for FileEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Debug quotes the text and escapes control characters.
            FileEntry::File {
                text: Some(text), ..
            } => write!(f, "{text:?}"),
            FileEntry::File {
                size,
                crc32,
                text: None,
            } => write!(f, "{size} bytes, crc32 {crc32:08x}"),
            FileEntry::Directory => f.write_str("directory"),
            FileEntry::Symlink { target } => write!(f, "symlink to {target}"),
            FileEntry::Whiteout => f.write_str("whiteout"),
            FileEntry::Special => f.write_str("special file"),
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        })
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Link(name) => write!(f, "link {name}"),
            Object::Address(a) => a.fmt(f),
            Object::Route(r) => r.fmt(f),
            Object::Neighbour { dst, dev } => write!(f, "neighbour {dst} on {dev}"),
            Object::Sysctl(key) => write!(f, "sysctl {key}"),
            Object::File { path, .. } => write!(f, "file {path}"),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Netns(name) => f.write_str(name),
            Scope::State(folder) => write!(f, "state {folder}"),
        }
    }
}

/// `link eth0 (macvlan, bridge, 0a:58:0a:00:00:02) added in container`.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.object.fmt(f)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        write!(f, " {} in {}", self.kind, self.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const LINKS: &str = "link show";
    const ADDRS: &str = "addr show";
    const ROUTES4: &str = "route show table all root 0.0.0.0/0";
    const ROUTES6: &str = "route show table all root ::/0";
    const NEIGH: &str = "neigh show";

    /// Captures from canned outputs, by batch line; lines not given
    /// answer `[]`.
    fn capture(outputs: &[(&str, &str)]) -> Result<NetnsSnapshot, SnapshotError> {
        capture_netns(|batch| {
            Ok(batch
                .lines()
                .map(|line| {
                    outputs
                        .iter()
                        .find(|(cmd, _)| *cmd == line)
                        .map_or("[]", |(_, out)| *out)
                })
                .collect::<Vec<_>>()
                .join("\n"))
        })
    }

    fn link(kind: Option<&str>, mac: &str, mtu: u32, up: bool) -> Link {
        Link {
            ifindex: 7,
            kind: kind.map(str::to_string),
            mac: Some(mac.to_string()),
            mtu,
            up,
            master: None,
            macvlan_mode: None,
        }
    }

    fn netns_scope(scope: &str, netns: NetnsSnapshot) -> Snapshot {
        Snapshot {
            namespaces: BTreeMap::from([(scope.to_string(), netns)]),
            ..Snapshot::default()
        }
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes.iter().map(Change::to_string).collect()
    }

    #[test]
    fn parses_links() {
        let out = r#"[
          {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,
           "operstate":"UNKNOWN","link_type":"loopback","address":"00:00:00:00:00:00"},
          {"ifindex":3,"link":"m0p","ifname":"m0","flags":["BROADCAST","MULTICAST"],"mtu":9000,
           "master":"br0","operstate":"DOWN","address":"86:79:b2:a1:ac:66",
           "linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}},
          {"ifindex":4,"link":"m0","ifname":"mv0","flags":["BROADCAST","UP","LOWER_UP"],"mtu":1500,
           "address":"76:8d:bd:8c:d5:48",
           "linkinfo":{"info_kind":"macvlan","info_data":{"mode":"bridge","bcqueuelen":1000}}},
          {"ifindex":5,"ifname":"br0","flags":[],"mtu":1500,"address":"82:c0:d8:c1:d0:6f",
           "linkinfo":{"info_kind":"bridge","info_data":{"mode":"not a macvlan mode"}}}
        ]"#;
        let snap = capture(&[(LINKS, out)]).expect("capture");
        let lo = &snap.links["lo"];
        assert_eq!(
            (lo.ifindex, lo.kind.as_deref(), lo.mtu, lo.up),
            (1, None, 65536, true)
        );
        let m0 = &snap.links["m0"];
        assert_eq!(m0.kind.as_deref(), Some("veth"));
        assert_eq!(m0.master.as_deref(), Some("br0"));
        assert_eq!(m0.mac.as_deref(), Some("86:79:b2:a1:ac:66"));
        assert!(!m0.up, "UP missing from flags means down");
        assert_eq!(snap.links["mv0"].macvlan_mode.as_deref(), Some("bridge"));
        assert_eq!(snap.links["br0"].macvlan_mode, None);
    }

    #[test]
    fn parses_addresses_without_link_local() {
        let out = r#"[
          {"ifindex":1,"ifname":"lo","addr_info":[
            {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"},
            {"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},
          {"ifindex":4,"ifname":"mv0","addr_info":[
            {"family":"inet","local":"10.1.2.3","prefixlen":24,"scope":"global"},
            {},
            {"family":"inet6","local":"fd00::5","prefixlen":64,"scope":"global"},
            {"family":"inet6","local":"fe80::748d:bdff:fe8c:d548","prefixlen":64,
             "scope":"link","tentative":true}]},
          {"ifindex":5,"ifname":"m0"}
        ]"#;
        let snap = capture(&[(ADDRS, out)]).expect("capture");
        let got: Vec<String> = snap.addresses.iter().map(Address::to_string).collect();
        assert_eq!(
            got,
            [
                "address 127.0.0.1/8 on lo",
                "address ::1/128 on lo",
                "address 10.1.2.3/24 on mv0",
                "address fd00::5/64 on mv0",
            ]
        );
    }

    #[test]
    fn parses_routes_of_both_families() {
        let v4 = r#"[
          {"dst":"default","gateway":"10.1.2.1","dev":"mv0","table":"100","flags":[]},
          {"dst":"10.1.2.0/24","dev":"mv0","protocol":"kernel","scope":"link","prefsrc":"10.1.2.3"},
          {"dst":"10.9.0.0/16","gateway":"10.1.2.1","dev":"mv0","flags":[]},
          {"dst":"10.9.9.9","gateway":"10.1.2.1","dev":"mv0","flags":[]},
          {"type":"blackhole","dst":"10.6.0.0/16","flags":[]},
          {"dst":"10.5.0.0/16","flags":[],"nexthops":[
            {"gateway":"10.0.0.1","dev":"d0","weight":1},{"gateway":"10.0.1.1","dev":"d1"}]},
          {"type":"local","dst":"10.1.2.3","dev":"mv0","table":"local","protocol":"kernel"},
          {"type":"broadcast","dst":"10.1.2.255","dev":"mv0","table":"local"}
        ]"#;
        let v6 = r#"[
          {"dst":"default","gateway":"fd00::1","dev":"mv0","metric":1024,"pref":"medium"},
          {"dst":"fd00::/64","dev":"mv0","protocol":"kernel","metric":256},
          {"dst":"fe80::/64","dev":"mv0","protocol":"kernel","metric":256},
          {"dst":"fe80::/64","dev":"mv0","protocol":"static","metric":1024},
          {"type":"local","dst":"fd00::5","dev":"mv0","table":"local","protocol":"kernel"},
          {"type":"multicast","dst":"ff00::/8","dev":"mv0","table":"local","protocol":"kernel"},
          {"dst":"ff00::/8","dev":"mv0","protocol":"kernel"}
        ]"#;
        let snap = capture(&[(ROUTES4, v4), (ROUTES6, v6)]).expect("capture");
        let got: Vec<String> = snap.routes.iter().map(Route::to_string).collect();
        assert_eq!(
            got,
            [
                "route default via 10.1.2.1 dev mv0 table 100",
                "route 10.1.2.0/24 dev mv0",
                "route 10.5.0.0/16 via 10.0.0.1 dev d0",
                "route 10.5.0.0/16 via 10.0.1.1 dev d1",
                "route 10.6.0.0/16",
                "route 10.9.0.0/16 via 10.1.2.1 dev mv0",
                "route 10.9.9.9/32 via 10.1.2.1 dev mv0",
                "route default via fd00::1 dev mv0",
                "route fd00::/64 dev mv0",
                "route fe80::/64 dev mv0",
            ]
        );
        let gw6: IpAddr = "fd00::1".parse().unwrap();
        let default6 = snap.routes.iter().find(|r| r.gateway == Some(gw6));
        assert_eq!(default6.map(|r| r.dst.to_string()), Some("::/0".into()));
        let any4: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(
            snap.routes
                .iter()
                .any(|r| r.dst == any4 && r.table == "100")
        );
        // Queries compare parsed values: a host route is found as /32.
        let host: IpNetwork = "10.9.9.9/32".parse().unwrap();
        assert!(snap.has_route(host, Some("10.1.2.1".parse().unwrap())));
        assert!(!snap.has_route(host, Some("10.1.2.2".parse().unwrap())));
        assert_eq!(snap.routes_via("d1").count(), 1);
    }

    #[test]
    fn parses_neighbours() {
        let neigh = r#"[
          {"dst":"10.1.2.9","dev":"mv0","lladdr":"0a:00:00:00:00:09","state":["PERMANENT"]},
          {"dst":"10.0.0.1","dev":"d0","state":["INCOMPLETE"]},
          {"dst":"fd00::1","dev":"mv0","lladdr":"0a:00:00:00:00:01","router":true,"state":["STALE"]}
        ]"#;
        let snap = capture(&[(NEIGH, neigh)]).expect("capture");
        let neighbours = BTreeMap::from([
            (
                ("mv0".into(), "10.1.2.9".into()),
                "0a:00:00:00:00:09".into(),
            ),
            (("mv0".into(), "fd00::1".into()), "0a:00:00:00:00:01".into()),
        ]);
        assert_eq!(snap.neighbours, neighbours);
    }

    /// In a namespace of its own, entered by this test's own thread (a
    /// child started from that thread is in it too); the test's other
    /// threads do not see it.
    #[test]
    fn reads_the_sysctls_of_the_calling_threads_namespace() {
        let inside = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("a network namespace (tests run as root, see ci/test-runner.sh)");
            let made = Command::new("ip")
                .args(["link", "add", "sy0", "type", "veth", "peer", "name", "sy1"])
                .status();
            assert!(made.is_ok_and(|s| s.success()), "ip link add (iproute2)");
            fs::write("/proc/sys/net/ipv4/conf/sy0/arp_notify", "1").expect("write a sysctl");
            read_sysctls().expect("read")
        })
        .join()
        .expect("the namespace thread");
        assert_eq!(inside["net/ipv4/conf/sy0/arp_notify"], "1");
        assert_eq!(inside["net/ipv4/conf/sy1/arp_notify"], "0");
        assert!(inside.contains_key("net/ipv4/ip_forward"));
        let outside = read_sysctls().expect("read");
        assert!(
            !outside.contains_key("net/ipv4/conf/sy0/arp_notify"),
            "{outside:?}"
        );
    }

    #[test]
    fn reports_bad_output_and_runner_failures() {
        let err = capture(&[(ROUTES4, r#"[{"dst":"not-an-address"}]"#)]).expect_err("bad dst");
        assert!(
            matches!(&err, SnapshotError::Parse { command, detail }
                if command == &format!("ip -d -j {ROUTES4}") && detail.contains("not-an-address")),
            "{err}"
        );
        let err = capture(&[(LINKS, "Error: oops")]).expect_err("not JSON");
        assert!(
            matches!(&err, SnapshotError::Parse { command, .. } if command == &format!("ip -d -j {LINKS}")),
            "{err}"
        );
        let err = capture_netns(|_| {
            Err(SnapshotError::Command {
                program: "ip".into(),
                detail: "exit 1".into(),
            })
        })
        .expect_err("runner failure");
        assert_eq!(err.to_string(), "running ip: exit 1");
    }

    #[test]
    fn diff_describes_added_and_changed_links() {
        let mut before = NetnsSnapshot::default();
        before.links.insert(
            "m0".into(),
            link(Some("veth"), "02:00:00:00:00:01", 1500, false),
        );
        let mut after = before.clone();
        let m0 = after.links.get_mut("m0").expect("m0");
        m0.mtu = 9000;
        m0.up = true;
        let mut eth0 = link(Some("macvlan"), "0a:58:0a:00:00:02", 1500, true);
        eth0.macvlan_mode = Some("bridge".into());
        after.links.insert("eth0".into(), eth0);
        let changes = diff(
            &netns_scope("container", before),
            &netns_scope("container", after),
        );
        assert_eq!(
            lines(&changes),
            [
                "link eth0 (macvlan, bridge, 0a:58:0a:00:00:02) added in container",
                "link m0 (mtu 1500 -> 9000, up false -> true) changed in container",
            ]
        );
        assert_eq!(changes[0].kind, ChangeKind::Added);
        assert_eq!(changes[1].object, Object::Link("m0".into()));
        assert_eq!(changes[1].scope, Scope::Netns("container".into()));
    }

    #[test]
    fn diff_ignores_a_new_ifindex_alone() {
        let mut before = NetnsSnapshot::default();
        before
            .links
            .insert("eth0".into(), link(None, "02:00:00:00:00:01", 1500, true));
        let mut after = before.clone();
        after.links.get_mut("eth0").expect("eth0").ifindex = 99;
        assert!(diff(&netns_scope("host", before), &netns_scope("host", after)).is_empty());
    }

    #[test]
    fn diff_lists_addresses_routes_and_neighbours() {
        let mut before = NetnsSnapshot::default();
        before.neighbours.insert(
            ("eth0".into(), "10.1.2.1".into()),
            "02:00:00:00:00:01".into(),
        );
        let mut after = before.clone();
        after.addresses.insert(Address {
            ifname: "eth0".into(),
            addr: "10.1.2.3/24".parse().unwrap(),
        });
        let route = |table: &str, dst: &str| Route {
            table: table.into(),
            dst: dst.parse().unwrap(),
            gateway: Some("10.1.2.1".parse().unwrap()),
            dev: Some("eth0".into()),
        };
        after.routes.insert(route("main", "0.0.0.0/0"));
        after.routes.insert(route("100", "10.9.0.0/16"));
        after.neighbours.insert(
            ("eth0".into(), "10.1.2.1".into()),
            "02:00:00:00:00:02".into(),
        );
        let changes = diff(
            &netns_scope("container", before),
            &netns_scope("container", after),
        );
        assert_eq!(
            lines(&changes),
            [
                "address 10.1.2.3/24 on eth0 added in container",
                "route 10.9.0.0/16 via 10.1.2.1 dev eth0 table 100 added in container",
                "route default via 10.1.2.1 dev eth0 added in container",
                "neighbour 10.1.2.1 on eth0 (lladdr 02:00:00:00:00:01 -> 02:00:00:00:00:02) \
                 changed in container",
            ]
        );
    }

    #[test]
    fn diff_leaves_out_the_sysctls_of_added_and_removed_links() {
        let mut before = NetnsSnapshot::default();
        before.links.insert(
            "old".into(),
            link(Some("veth"), "02:00:00:00:00:01", 1500, true),
        );
        before.links.insert(
            "eth0".into(),
            link(Some("veth"), "02:00:00:00:00:02", 1500, true),
        );
        for iface in ["old", "eth0", "all"] {
            before
                .sysctls
                .insert(format!("net/ipv4/conf/{iface}/arp_notify"), "0".into());
        }
        let mut after = before.clone();
        after.links.remove("old");
        after.sysctls.remove("net/ipv4/conf/old/arp_notify");
        after.links.insert(
            "new".into(),
            link(Some("macvlan"), "02:00:00:00:00:03", 1500, true),
        );
        after
            .sysctls
            .insert("net/ipv6/conf/new/disable_ipv6".into(), "0".into());
        after
            .sysctls
            .insert("net/ipv4/conf/eth0/arp_notify".into(), "1".into());
        after
            .sysctls
            .insert("net/ipv4/conf/all/arp_notify".into(), "1".into());
        after
            .sysctls
            .insert("net/ipv4/ip_forward".into(), "1".into());
        let changes = diff(
            &netns_scope("container", before),
            &netns_scope("container", after),
        );
        assert_eq!(
            lines(&changes),
            [
                "link new (macvlan, 02:00:00:00:00:03) added in container",
                "link old (veth, 02:00:00:00:00:01) removed in container",
                "sysctl net/ipv4/conf/all/arp_notify (0 -> 1) changed in container",
                "sysctl net/ipv4/conf/eth0/arp_notify (0 -> 1) changed in container",
                "sysctl net/ipv4/ip_forward (1) added in container",
            ]
        );
    }

    #[test]
    fn diff_sorts_by_scope_and_treats_a_missing_scope_as_empty() {
        let mut netns = NetnsSnapshot::default();
        netns
            .links
            .insert("lo".into(), link(None, "00:00:00:00:00:00", 65536, true));
        let files = FilesSnapshot {
            entries: BTreeMap::from([("a".to_string(), FileEntry::Directory)]),
        };
        let after = Snapshot {
            namespaces: BTreeMap::from([("host".into(), netns.clone()), ("peer".into(), netns)]),
            files: BTreeMap::from([("container files".into(), files)]),
        };
        let changes = diff(&Snapshot::default(), &after);
        assert_eq!(
            lines(&changes),
            [
                "file a (directory) added in container files",
                "link lo (00:00:00:00:00:00) added in host",
                "link lo (00:00:00:00:00:00) added in peer",
            ]
        );
        let peer: Vec<&Change> = changes
            .iter()
            .filter(|c| c.scope == Scope::Netns("peer".into()))
            .collect();
        assert_eq!(peer, [&changes[2]]);
    }

    #[test]
    fn diff_of_files_shows_content_and_whiteouts() {
        let file = |text: &str| FileEntry::File {
            size: text.len() as u64,
            crc32: crc32fast::hash(text.as_bytes()),
            text: Some(text.into()),
        };
        let before = FilesSnapshot {
            entries: BTreeMap::from([
                ("gone".to_string(), file("x")),
                ("hidden".to_string(), file("lower")),
                ("last_reserved_ip.0".to_string(), file("10.1.2.2")),
                ("lock".to_string(), file("")),
                ("restored".to_string(), FileEntry::Whiteout),
            ]),
        };
        let blob = FileEntry::File {
            size: 300,
            crc32: 0xdead_beef,
            text: None,
        };
        let after = FilesSnapshot {
            entries: BTreeMap::from([
                ("blob".to_string(), blob),
                ("deleted-below".to_string(), FileEntry::Whiteout),
                ("hidden".to_string(), FileEntry::Whiteout),
                ("last_reserved_ip.0".to_string(), file("10.1.2.3")),
                ("lock".to_string(), file("")),
                ("networks/net1".to_string(), FileEntry::Directory),
                ("networks/net1/10.1.2.3".to_string(), file("c1\r\neth0")),
                (
                    "networks/net1/lock".to_string(),
                    FileEntry::Symlink {
                        target: "../x".into(),
                    },
                ),
            ]),
        };
        let scope = "state /var/lib/cni";
        let snap = |files| Snapshot {
            files: BTreeMap::from([(scope.to_string(), files)]),
            ..Snapshot::default()
        };
        assert_eq!(
            lines(&diff(&snap(before), &snap(after))),
            [
                "file blob (300 bytes, crc32 deadbeef) added in state /var/lib/cni",
                "file deleted-below (whiteout) removed in state /var/lib/cni",
                "file gone (\"x\") removed in state /var/lib/cni",
                "file hidden (whiteout) removed in state /var/lib/cni",
                "file last_reserved_ip.0 (\"10.1.2.2\" -> \"10.1.2.3\") changed in state /var/lib/cni",
                "file networks/net1 (directory) added in state /var/lib/cni",
                r#"file networks/net1/10.1.2.3 ("c1\r\neth0") added in state /var/lib/cni"#,
                "file networks/net1/lock (symlink to ../x) added in state /var/lib/cni",
                "file restored (whiteout gone) added in state /var/lib/cni",
            ]
        );
    }

    #[test]
    fn captures_files_dirs_symlinks_and_whiteouts() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path();
        assert_eq!(
            capture_files(&root.join("missing")).expect("missing root"),
            FilesSnapshot::default()
        );
        fs::create_dir_all(root.join("networks/net1")).expect("mkdir");
        fs::create_dir(root.join("empty")).expect("mkdir");
        fs::write(root.join("networks/net1/10.1.2.3"), "c1\r\neth0").expect("write");
        fs::write(root.join("big"), "x".repeat(TEXT_LIMIT + 1)).expect("write");
        fs::write(root.join("binary"), [0xff, 0xfe]).expect("write");
        std::os::unix::fs::symlink("networks/net1", root.join("link")).expect("symlink");
        let mknod = Command::new("mknod")
            .arg(root.join("whiteout"))
            .args(["c", "0", "0"])
            .status();
        assert!(
            mknod.as_ref().is_ok_and(|s| s.success()),
            "mknod of a whiteout failed ({mknod:?}); tests must run as root (see ci/test-runner.sh)"
        );
        let snap = capture_files(root).expect("capture");
        let text = |t: &str| FileEntry::File {
            size: t.len() as u64,
            crc32: crc32fast::hash(t.as_bytes()),
            text: Some(t.into()),
        };
        let big = "x".repeat(TEXT_LIMIT + 1);
        let expected = BTreeMap::from([
            (
                "big".to_string(),
                FileEntry::File {
                    size: big.len() as u64,
                    crc32: crc32fast::hash(big.as_bytes()),
                    text: None,
                },
            ),
            (
                "binary".to_string(),
                FileEntry::File {
                    size: 2,
                    crc32: crc32fast::hash(&[0xff, 0xfe]),
                    text: None,
                },
            ),
            ("empty".to_string(), FileEntry::Directory),
            (
                "link".to_string(),
                FileEntry::Symlink {
                    target: "networks/net1".into(),
                },
            ),
            ("networks".to_string(), FileEntry::Directory),
            ("networks/net1".to_string(), FileEntry::Directory),
            ("networks/net1/10.1.2.3".to_string(), text("c1\r\neth0")),
            ("whiteout".to_string(), FileEntry::Whiteout),
        ]);
        assert_eq!(snap.entries, expected);
    }

    /// Commands that set up a namespace the way a macvlan ADD would, and a
    /// little more.
    const SETUP: &str = "\
        ip link set lo up && ip link set lo mtu 65000 && \
        ip link add m0 address 02:00:00:00:00:01 type veth peer name m0p address 02:00:00:00:00:02 && \
        ip link add link m0 name mv0 address 02:00:00:00:00:03 type macvlan mode bridge && \
        ip link set m0 up && ip link set mv0 up && \
        ip addr add 10.1.2.3/24 dev mv0 && ip addr add fd00::5/64 dev mv0 nodad && \
        ip route add 10.9.0.0/16 via 10.1.2.1 && \
        ip route add default via 10.1.2.1 table 100 && \
        ip neigh add 10.1.2.9 lladdr 02:00:00:00:00:09 dev mv0 && \
        echo 1 > /proc/sys/net/ipv4/conf/lo/arp_notify && \
        echo 1 > /proc/sys/net/ipv4/conf/mv0/arp_notify";

    #[test]
    fn captures_a_real_namespace_before_and_after_setup() {
        // The batch a capture runs.
        let mut batch = String::new();
        capture_netns(|b| {
            batch = b.to_string();
            Ok(b.lines().map(|_| "[]\n").collect())
        })
        .expect("dry run");
        // One shell in a fresh namespace runs it, sets up, and runs it
        // again; a marker separates the outputs.
        let ip = format!(
            "printf '{}' | ip {}",
            batch.replace('\n', "\\n"),
            IP_BATCH.join(" ")
        );
        let script = format!("set -e; {ip}; echo @@@; {SETUP}; {ip}");
        let out = Command::new("unshare")
            .args(["--net", "sh", "-c", &script])
            .output();
        let out =
            out.expect("cannot run unshare: tests need root and iproute2 (see ci/test-runner.sh)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the namespace script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (first, second) = stdout.split_once("@@@").expect("the marker");
        let replay = |output: &str| {
            capture_netns(|b| {
                assert_eq!(b, batch, "the same batch every time");
                Ok(output.to_string())
            })
            .expect("capture of real output")
        };
        let before = netns_scope("test", replay(first));
        let after = netns_scope("test", replay(second));
        assert_eq!(
            lines(&diff(&before, &after)),
            [
                "link lo (mtu 65536 -> 65000, up false -> true) changed in test",
                "link m0 (veth, 02:00:00:00:00:01) added in test",
                "link m0p (veth, 02:00:00:00:00:02) added in test",
                "link mv0 (macvlan, bridge, 02:00:00:00:00:03) added in test",
                "address 127.0.0.1/8 on lo added in test",
                "address ::1/128 on lo added in test",
                "address 10.1.2.3/24 on mv0 added in test",
                "address fd00::5/64 on mv0 added in test",
                "route default via 10.1.2.1 dev mv0 table 100 added in test",
                "route 10.1.2.0/24 dev mv0 added in test",
                "route 10.9.0.0/16 via 10.1.2.1 dev mv0 added in test",
                "route fd00::/64 dev mv0 added in test",
                "neighbour 10.1.2.9 on mv0 (02:00:00:00:00:09) added in test",
            ]
        );
    }
}
