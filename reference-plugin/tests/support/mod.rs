//! Running plugin binaries the way a runtime does, and throwaway network
//! namespaces for the tests that need a kernel.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, setns, unshare};
use serde_json::Value;

pub(crate) const UPSTREAM_DIR: &str = "/usr/lib/cni";

pub(crate) fn ours(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "host-local" => env!("CARGO_BIN_EXE_host-local"),
        "macvlan" => env!("CARGO_BIN_EXE_macvlan"),
        other => panic!("no reference plugin named {other}"),
    })
}

/// The folder holding our binaries, for `CNI_PATH`.
pub(crate) fn ours_dir() -> PathBuf {
    ours("host-local").parent().unwrap().to_path_buf()
}

/// An upstream plugin; a missing one fails the test with the fix.
pub(crate) fn upstream(name: &str) -> PathBuf {
    let p = Path::new(UPSTREAM_DIR).join(name);
    assert!(
        p.is_file(),
        "{} is missing: install the upstream plugins with `apt-get install containernetworking-plugins`",
        p.display()
    );
    p
}

/// One plugin invocation, built like a runtime builds it.
pub(crate) struct Call<'a> {
    bin: PathBuf,
    env: Vec<(String, String)>,
    stdin: Stdin,
    netns: Option<&'a Netns>,
    var_lib: Option<PathBuf>,
}

enum Stdin {
    Bytes(Vec<u8>),
    Unreadable,
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts success; the parsed stdout, or `Null` when it is empty.
    pub(crate) fn ok(&self) -> Value {
        assert_eq!(self.status, 0, "plugin failed: {self:#?}");
        if self.stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.stdout)
                .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
        }
    }

    /// Asserts failure with one well-formed error object on stdout.
    pub(crate) fn err(&self) -> Value {
        assert_ne!(self.status, 0, "plugin succeeded but should not: {self:#?}");
        let v: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON error object ({e}): {self:#?}"));
        assert!(
            v["code"].is_u64() && v["msg"].is_string(),
            "not an error object: {v}"
        );
        v
    }

    /// Asserts failure with `code` and returns the message.
    pub(crate) fn err_code(&self, code: u64) -> String {
        let v = self.err();
        assert_eq!(v["code"], code, "unexpected error: {v}");
        v["msg"].as_str().unwrap().to_string()
    }
}

/// ADD/DEL/CHECK for container `c1`, interface `eth0`, with a namespace
/// path that host-local never opens.
pub(crate) fn call<'a>(bin: impl AsRef<Path>, command: &str, conf: &Value) -> Call<'a> {
    Call {
        bin: bin.as_ref().to_path_buf(),
        env: vec![
            ("CNI_COMMAND".into(), command.into()),
            ("CNI_CONTAINERID".into(), "c1".into()),
            ("CNI_NETNS".into(), "/var/run/netns/not-opened".into()),
            ("CNI_IFNAME".into(), "eth0".into()),
            ("CNI_PATH".into(), ours_dir().display().to_string()),
        ],
        stdin: Stdin::Bytes(serde_json::to_vec(conf).unwrap()),
        netns: None,
        var_lib: None,
    }
}

impl<'a> Call<'a> {
    pub(crate) fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub(crate) fn unset(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    pub(crate) fn id(self, id: &str) -> Self {
        self.env("CNI_CONTAINERID", id)
    }

    pub(crate) fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Stdin::Bytes(bytes.into());
        self
    }

    /// Standard input that fails to read (a directory).
    pub(crate) fn unreadable_stdin(mut self) -> Self {
        self.stdin = Stdin::Unreadable;
        self
    }

    /// Runs the plugin inside `ns`, as a runtime runs it in its own.
    pub(crate) fn in_netns(mut self, ns: &'a Netns) -> Self {
        self.netns = Some(ns);
        self
    }

    /// Runs the plugin (and whatever it executes) in a private mount
    /// namespace where `dir` stands in for `/var/lib`, so plugins writing to
    /// their default state paths (`/var/lib/cni/...`) touch only `dir`.
    pub(crate) fn var_lib(mut self, dir: &Path) -> Self {
        self.var_lib = Some(dir.to_path_buf());
        self
    }

    pub(crate) fn run(self) -> Outcome {
        let mut cmd = match self.netns {
            Some(ns) => ns.command(&self.bin),
            None => Command::new(&self.bin),
        };
        if let Some(dir) = &self.var_lib {
            private_var_lib(&mut cmd, dir);
        }
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env.iter().cloned());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let bytes = match self.stdin {
            Stdin::Bytes(b) => {
                cmd.stdin(Stdio::piped());
                Some(b)
            }
            Stdin::Unreadable => {
                cmd.stdin(File::open("/").unwrap());
                None
            }
        };
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        if let Some(b) = bytes {
            // Write then close, or the plugin waits for more.
            child.stdin.take().unwrap().write_all(&b).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Outcome {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn private_var_lib(cmd: &mut Command, dir: &Path) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let source = CString::new(dir.as_os_str().as_bytes()).unwrap();
    let (root, target) = (c"/", c"/var/lib");
    // SAFETY: only raw syscalls on strings made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let check = |rc: libc::c_int| {
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))
        });
    }
}

/// A process parked in a namespace, so `/proc/<pid>/ns/net` names it (the
/// way runtimes often pass `CNI_NETNS`). Killed on drop.
pub(crate) struct Holder {
    child: std::process::Child,
}

impl Holder {
    pub(crate) fn netns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.child.id())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A network namespace that lives as long as this value (an open handle;
/// nothing is mounted, so nothing can be left behind).
pub(crate) struct Netns {
    handle: File,
}

impl Netns {
    pub(crate) fn new() -> Netns {
        // unshare moves only the calling thread, so use a thread of its own.
        let handle = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| {
                panic!("cannot create a network namespace ({e}): run the tests as root, or under `unshare -rn`")
            });
            File::open("/proc/thread-self/ns/net").expect("open the new namespace")
        })
        .join()
        .unwrap();
        Netns { handle }
    }

    /// A path to the namespace, usable as `CNI_NETNS` while this lives.
    pub(crate) fn path(&self) -> String {
        format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.handle.as_raw_fd()
        )
    }

    /// A command that starts inside this namespace.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.handle.as_raw_fd();
        // SAFETY: setns is async-signal-safe and the fd stays open in the
        // child until exec.
        unsafe {
            cmd.pre_exec(move || {
                setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        cmd
    }

    /// Runs `ip ARGS` inside the namespace; panics with its stderr on failure.
    pub(crate) fn ip(&self, args: &[&str]) -> String {
        let out = self
            .command("ip")
            .args(args)
            .output()
            .expect("run ip (install iproute2)");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A process living in this namespace until dropped.
    pub(crate) fn holder(&self) -> Holder {
        let child = self
            .command("sleep")
            .arg("infinity")
            .stdin(Stdio::null())
            .spawn()
            .expect("start a process in the namespace");
        // setns happened before exec, so the path is right from the start.
        Holder { child }
    }

    /// Runs a program inside the namespace; its success and output.
    pub(crate) fn exec(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Links, addresses and routes, as text: equal snapshots mean nothing
    /// changed.
    pub(crate) fn snapshot(&self) -> String {
        [
            self.ip(&["-o", "link", "show"]),
            self.ip(&["-o", "addr", "show"]),
            self.ip(&["route", "show", "table", "all"]),
            self.ip(&["-6", "route", "show", "table", "all"]),
        ]
        .join("\n")
    }

    /// `ip -j ARGS`, parsed.
    pub(crate) fn ip_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["-j"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ip(&full)).unwrap()
    }
}
