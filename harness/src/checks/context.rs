//! What a check works with: one case ([`Cx`]: a plugin, its profile, a
//! version), the worlds it builds ([`World`]: a sandbox, a network config, a
//! runtime's result cache) and the attachments it makes ([`Attached`]).
//!
//! Every way of calling the plugin here is typed and recorded as evidence,
//! and every attachment is deleted through the whole list when its guard
//! drops (after a failed ADD too, as a runtime must), whatever the check
//! returns. A failure to clean up is a harness error of the case, never
//! lost.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use serde_json::Value;

use super::outcome::{CaseError, Unjudged};
use crate::observe;
use crate::profile::{Fill, Ipam, PluginKind, Profile};
use crate::runtime::{Attachment, ChainRun, NetworkConfig, ResultCache, Runtime, Step};
use crate::sandbox::{Sandbox, SandboxOptions, Scope};
use crate::snapshot::{NetnsSnapshot, Parts, Snapshot};
use crate::spec::{Verb, Version};
use crate::spy;

/// Processes a call left running that its evidence names one by one.
const SURVIVORS_SHOWN: usize = 8;

/// One check in one version against one plugin.
pub struct Cx {
    /// The plugin's type (its file name).
    pub plugin: String,
    pub profile: Profile,
    pub version: Version,
    /// The plugin's own folder first, then the delegates' folders.
    cni_path: Vec<PathBuf>,
    timeout: Duration,
    /// A folder holding the spy plugin, added to `CNI_PATH`.
    spy_dir: Option<PathBuf>,
    evidence: Mutex<Vec<String>>,
    /// Processes the case's calls left running: (plugin and command, what ran).
    survivors: Mutex<Vec<(String, String)>>,
    /// Every call in full, for replay bundles.
    calls: Mutex<Vec<Value>>,
    /// Where the case's time went.
    timings: Mutex<Timings>,
    /// Harness errors met while cleaning up (in guards' drops).
    deferred: Mutex<Vec<CaseError>>,
    /// Shared by the run: verbs the plugin keeps timing out on.
    breaker: Option<std::sync::Arc<crate::runtime::exec::Breaker>>,
    /// Kill points per verb for fault.kill-at-every-step; `None`: all.
    kill_points: Option<usize>,
}

/// Where one case's time went, in microseconds: building sandboxes (and
/// the profile's setup), plugin processes, kernel snapshots, tearing
/// sandboxes down. The rest of a case is the harness judging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub setup_us: u64,
    pub plugin_us: u64,
    pub observe_us: u64,
    pub teardown_us: u64,
}

impl std::ops::AddAssign for Timings {
    fn add_assign(&mut self, o: Timings) {
        self.setup_us += o.setup_us;
        self.plugin_us += o.plugin_us;
        self.observe_us += o.observe_us;
        self.teardown_us += o.teardown_us;
    }
}

/// How a check wants its world, beyond the profile's defaults.
#[derive(Debug, Clone)]
pub struct Spec {
    pub containers: usize,
    pub subnet: Option<Ipv4Network>,
    /// The network's name.
    pub name: String,
    /// Record the spy's calls (see [`World::spy_records`]).
    pub spy_log: bool,
    /// Replace the target's `ipam` section (the spy standing in).
    pub ipam: Option<Value>,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            containers: 1,
            subnet: None,
            name: "conformance".into(),
            spy_log: false,
            ipam: None,
        }
    }
}

impl Cx {
    pub fn new(
        plugin: &str,
        profile: Profile,
        version: Version,
        cni_path: Vec<PathBuf>,
        timeout: Duration,
        spy_dir: Option<PathBuf>,
    ) -> Cx {
        Cx {
            plugin: plugin.into(),
            profile,
            version,
            cni_path,
            timeout,
            spy_dir,
            evidence: Mutex::new(Vec::new()),
            survivors: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            timings: Mutex::new(Timings::default()),
            deferred: Mutex::new(Vec::new()),
            breaker: None,
            kill_points: Some(crate::checks::fault::DEFAULT_POINTS),
        }
    }

    /// Covers at most `n` kill points per verb (`None`: every one).
    pub fn with_kill_points(mut self, n: Option<usize>) -> Cx {
        self.kill_points = n;
        self
    }

    pub fn kill_points(&self) -> Option<usize> {
        self.kill_points
    }

    /// The same context sharing `breaker` with the run's other cases.
    pub fn with_breaker(mut self, breaker: std::sync::Arc<crate::runtime::exec::Breaker>) -> Cx {
        self.breaker = Some(breaker);
        self
    }

    pub fn kind(&self) -> PluginKind {
        self.profile.kind
    }

    /// A chained plugin is judged only on what it does itself: when
    /// another plugin of the list failed `run`, the case cannot be judged.
    pub fn own_failure(&self, run: &ChainRun) -> Result<(), Unjudged> {
        match run.failure() {
            Some(step) if step.plugin != self.plugin => Err(Unjudged::NotApplicable(format!(
                "{} of the list failed before the plugin could be judged: {}",
                step.plugin,
                step.outcome
                    .error()
                    .map_or_else(|| step.outcome.exit.to_string(), |e| e.msg)
            ))),
            _ => Ok(()),
        }
    }

    /// What the plugin printed in the calls of this case, in order.
    pub fn timings(&self) -> Timings {
        *self.timings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn time(&self, part: fn(&mut Timings) -> &mut u64, since: std::time::Instant) {
        let us = since.elapsed().as_micros() as u64;
        *part(&mut self.timings.lock().unwrap_or_else(|e| e.into_inner())) += us;
    }

    pub fn take_calls(&self) -> Vec<Value> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f`, whose threads do work at once: the case spent at most the
    /// section's wall time, so what they add to the timings is scaled down
    /// to it and the parts still add up to the case's duration.
    pub fn overlapping<R>(&self, f: impl FnOnce() -> R) -> R {
        let started = std::time::Instant::now();
        let before = *self.timings.lock().unwrap_or_else(|e| e.into_inner());
        let out = f();
        let wall = started.elapsed().as_micros() as u64;
        let mut t = self.timings.lock().unwrap_or_else(|e| e.into_inner());
        let parts = |t: &Timings| [t.setup_us, t.plugin_us, t.observe_us, t.teardown_us];
        let (b, now) = (parts(&before), parts(&t));
        let added: Vec<u64> = now
            .iter()
            .zip(b)
            .map(|(n, b)| n.saturating_sub(b))
            .collect();
        let sum: u64 = added.iter().sum();
        if sum > wall {
            let scaled: Vec<u64> = added.iter().map(|a| a * wall / sum).collect();
            t.setup_us = b[0] + scaled[0];
            t.plugin_us = b[1] + scaled[1];
            t.observe_us = b[2] + scaled[2];
            t.teardown_us = b[3] + scaled[3];
        }
        out
    }

    /// Adds a line to the case's evidence.
    pub fn evidence(&self, line: String) {
        self.evidence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// What the case's calls left running so far: (plugin and command,
    /// the process's command line).
    pub fn survivors(&self) -> Vec<(String, String)> {
        self.survivors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn take_evidence(&self) -> Vec<String> {
        std::mem::take(&mut *self.evidence.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Harness errors met while cleaning up.
    pub fn take_deferred(&self) -> Vec<CaseError> {
        std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn defer(&self, e: CaseError) {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }

    /// Keeps what a call printed, for the report.
    fn note(&self, step: &Step) {
        self.timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plugin_us += step.outcome.duration.as_micros() as u64;
        let command = step
            .env
            .iter()
            .find(|(k, _)| k == "CNI_COMMAND")
            .map_or(step.verb.as_str(), |(_, v)| v.as_str());
        let mut line = format!("{} {command}: {}", step.plugin, step.outcome.exit);
        let out = step.outcome.stdout_text();
        if !out.trim().is_empty() {
            let _ = write!(line, "; stdout: {}", out.trim());
        }
        let err = step.outcome.stderr_text();
        if !err.trim().is_empty() {
            let _ = write!(line, "; stderr: {}", err.trim());
        }
        let over = [
            step.outcome.stdout.over_limit("stdout"),
            step.outcome.stderr.over_limit("stderr"),
        ];
        {
            let mut evidence = self.evidence.lock().unwrap_or_else(|e| e.into_inner());
            evidence.push(line);
            evidence.extend(over.into_iter().flatten());
            if step.outcome.folders_full {
                evidence.push(format!(
                    "{} {command}: the sandbox's writable folders ({} MiB in all) were full when it ended",
                    step.plugin,
                    crate::sandbox::FOLDER_LIMIT >> 20
                ));
            }
            if step.outcome.forks_refused > 0 {
                evidence.push(format!(
                    "{} {command}: the kernel refused {} of its forks or threads: a call may have {} processes and threads at once",
                    step.plugin,
                    step.outcome.forks_refused,
                    crate::sandbox::cgroup::TASK_LIMIT
                ));
            }
            // A fork bomb leaves a thousand: the first few name them.
            let left = &step.outcome.survivors;
            evidence.extend(left.iter().take(SURVIVORS_SHOWN).map(|p| {
                format!(
                    "{} {command} left {p} running after it returned; the harness ended it",
                    step.plugin
                )
            }));
            if left.len() > SURVIVORS_SHOWN {
                evidence.push(format!(
                    "{} {command} left {} more processes running; the harness ended them",
                    step.plugin,
                    left.len() - SURVIVORS_SHOWN
                ));
            }
        }
        self.survivors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(
                step.outcome
                    .survivors
                    .iter()
                    .map(|p| (format!("{} {command}", step.plugin), p.command.clone())),
            );
        let env: serde_json::Map<String, Value> = step
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("CNI_"))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(serde_json::json!({
                "plugin": step.plugin,
                "env": env,
                "stdin": step.request,
                "exit": step.outcome.exit.to_string(),
                "stdout": out,
                "stderr": err,
            }));
    }

    fn note_run(&self, run: &ChainRun) {
        run.steps.iter().for_each(|s| self.note(s));
    }

    /// The default world: one container, the profile's config.
    pub fn world(&self) -> Result<World<'_>, Unjudged> {
        self.world_with(Spec::default())
    }

    /// A world whose pool is `subnet`, with `containers` containers; not
    /// applicable when the profile draws no addresses from a pool.
    pub fn pool_world(&self, subnet: &str, containers: usize) -> Result<World<'_>, Unjudged> {
        if !self.profile.pool {
            return Err(Unjudged::NotApplicable(
                "the profile draws no addresses from a pool".into(),
            ));
        }
        self.world_with(Spec {
            containers,
            subnet: Some(subnet.parse().expect("check subnets are valid")),
            ..Spec::default()
        })
    }

    /// A world whose plugin delegates IPAM to the spy, with `ipam` as the
    /// spy's section (`None`: the spy answers a plain result); not
    /// applicable when the plugin delegates no IPAM.
    pub fn spied_ipam_world(&self, ipam: Option<Value>) -> Result<World<'_>, Unjudged> {
        if self.profile.ipam != Ipam::Delegated {
            return Err(Unjudged::NotApplicable(
                "the plugin delegates no IPAM the spy could stand in for".into(),
            ));
        }
        self.spy_dir()?;
        let ipam = match ipam {
            Some(i) => i,
            None => {
                let fill = Fill::new(&self.plugin);
                serde_json::json!({"type": spy::NAME, "spyResult": ipam_result(self.version, &fill)})
            }
        };
        self.world_with(Spec {
            spy_log: true,
            ipam: Some(ipam),
            ..Spec::default()
        })
    }

    /// The spy's folder; not applicable without one.
    pub fn spy_dir(&self) -> Result<&Path, Unjudged> {
        self.spy_dir
            .as_deref()
            .ok_or_else(|| Unjudged::NotApplicable("no spy plugin in this run".into()))
    }

    pub fn world_with(&self, spec: Spec) -> Result<World<'_>, Unjudged> {
        let mut fill = Fill::new(&self.plugin);
        if let Some(subnet) = spec.subnet {
            fill.subnet = subnet;
        }
        let doc = self.profile.network(self.version, &spec.name, &fill);
        let mut net =
            NetworkConfig::parse(doc.to_string().as_bytes()).map_err(CaseError::Config)?;
        if let Some(ipam) = spec.ipam {
            let t = net.plugins.len() - 1;
            net.plugins[t].insert("ipam".into(), ipam);
        }
        let started = std::time::Instant::now();
        let mut sb = Sandbox::new(&SandboxOptions {
            master: self.profile.master.then(|| fill.master.clone()),
            state_dirs: net.data_dirs(),
            lo_down: self.profile.ifname == "lo",
            ..Default::default()
        })?;
        for i in 0..spec.containers {
            sb.add_container(&format!("ctr{i}"))?;
        }
        let spy_log = spec.spy_log.then(|| sb.dir().join("spy.log"));
        let world = World {
            cx: self,
            sb: std::mem::ManuallyDrop::new(sb),
            fill,
            net,
            cache: ResultCache::default(),
            spy_log,
        };
        if let Some(setup) = &self.profile.setup {
            world.hook("setup", setup)?;
        }
        self.time(|t| &mut t.setup_us, started);
        Ok(world)
    }
}

/// The IPAM result the spy answers with, in `version`'s shape: the
/// subnet's fifth address.
pub(super) fn ipam_result(version: Version, fill: &Fill) -> Value {
    let address = format!("{}/{}", fill.host(5), fill.subnet.prefix());
    let gateway = fill.gateway().to_string();
    if !version.has_lists() {
        serde_json::json!({"ip4": {"ip": address, "gateway": gateway}, "dns": {}})
    } else if version.has_ip_version_field() {
        serde_json::json!({"ips": [{"version": "4", "address": address, "gateway": gateway}], "dns": {}})
    } else {
        serde_json::json!({"ips": [{"address": address, "gateway": gateway}], "dns": {}})
    }
}

/// A sandbox configured for the profile, its network config, and the
/// result cache a runtime keeps.
pub struct World<'c> {
    cx: &'c Cx,
    /// Dropped by hand, last, so its tear-down is timed.
    pub sb: std::mem::ManuallyDrop<Sandbox>,
    pub fill: Fill,
    pub net: NetworkConfig,
    cache: ResultCache,
    spy_log: Option<PathBuf>,
}

impl Drop for World<'_> {
    fn drop(&mut self) {
        if let Some(teardown) = &self.cx.profile.teardown
            && let Err(e) = self.hook("teardown", teardown)
        {
            self.cx.defer(e);
        }
        let started = std::time::Instant::now();
        // SAFETY: dropped once, here; nothing uses the field afterwards.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.sb) };
        self.cx.time(|t| &mut t.teardown_us, started);
    }
}

impl<'c> World<'c> {
    /// Runs a profile's `setup` or `teardown` in the sandbox, as plugins
    /// run, with the sandbox's paths in `CNI_CONFORMANCE_*` variables.
    fn hook(&self, what: &str, script: &str) -> Result<(), CaseError> {
        let containers: Vec<String> = self
            .sb
            .containers()
            .iter()
            .map(|c| c.file_path().display().to_string())
            .collect();
        let out = self
            .sb
            .plugin_command("sh")
            .args(["-c", script])
            .env("CNI_CONFORMANCE_DIR", self.sb.dir())
            .env("CNI_CONFORMANCE_NETWORK", &self.net.name)
            .env("CNI_CONFORMANCE_CONTAINERS", containers.join(":"))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| CaseError::Spawn {
                what: format!("the profile's {what}"),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(CaseError::Io {
            what: format!("run the profile's {what} ({})", out.status),
            source: std::io::Error::other(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        })
    }

    fn runtime(&self) -> Runtime<'_> {
        let mut path = self.cx.cni_path.clone();
        path.extend(self.cx.spy_dir.clone());
        let mut rt = Runtime::new(&self.sb, path, self.cx.timeout).with_cache(self.cache.clone());
        if let Some(b) = &self.cx.breaker {
            rt = rt.with_breaker(b.clone());
        }
        if let Some(log) = &self.spy_log {
            rt.extra_env
                .push(("CNI_SPY_LOG".into(), log.display().to_string()));
        }
        rt
    }

    pub fn cx(&self) -> &'c Cx {
        self.cx
    }

    /// The attachment of container `c`.
    pub fn attachment(&self, c: usize, container_id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: container_id.into(),
            ifname: ifname.into(),
            netns: self.sb.container(c).proc_path(),
            args: Vec::new(),
            capability_args: self.cx.profile.runtime_config.clone(),
        }
    }

    /// The interface name the profile's attachments get (`eth0`; `lo` for
    /// a loopback plugin).
    pub fn ifname(&self) -> &str {
        &self.cx.profile.ifname
    }

    /// Not applicable when every container already has the profile's
    /// interface (loopback's `lo`): the plugin configures it and creates
    /// none, so CNI_IFNAME names nothing it makes.
    pub fn creates_its_interface(&self) -> Result<(), Unjudged> {
        if self
            .kernel(0, crate::snapshot::Parts::LINKS)?
            .link(self.ifname())
            .is_some()
        {
            return Err(Unjudged::NotApplicable(format!(
                "every container has {} already: the plugin configures it and creates no interface",
                self.ifname()
            )));
        }
        Ok(())
    }

    /// The default attachment: container 0, `c1`, the profile's ifname.
    pub fn att(&self) -> Attachment {
        self.attachment(0, "c1", self.ifname())
    }

    /// Index of the plugin under test in the list (the last one).
    pub fn target(&self) -> usize {
        self.net.plugins.len() - 1
    }

    /// The request the plugin under test receives.
    pub fn request(&self, att: Option<&Attachment>, prev: Option<&Value>) -> Value {
        self.net.request(self.target(), att, prev)
    }

    /// ADD of `att` through the list; DEL follows when the guard drops.
    pub fn add(&self, att: &Attachment) -> Result<Attached<'_, 'c>, CaseError> {
        self.add_to(&self.net, att)
    }

    /// ADD of `att` through another network's list.
    pub fn add_to(
        &self,
        net: &NetworkConfig,
        att: &Attachment,
    ) -> Result<Attached<'_, 'c>, CaseError> {
        let run = self.add_run(net, att)?;
        Ok(self.adopt(net, att, run))
    }

    /// ADD through `net` without a guard (for [`World::parallel`]; hand
    /// the run to [`World::adopt`]).
    pub fn add_run(&self, net: &NetworkConfig, att: &Attachment) -> Result<ChainRun, CaseError> {
        let run = self.runtime().add(net, att)?;
        self.cx.note_run(&run);
        Ok(run)
    }

    /// A guard for an ADD made by [`World::add_run`].
    pub fn adopt(&self, net: &NetworkConfig, att: &Attachment, run: ChainRun) -> Attached<'_, 'c> {
        Attached {
            w: self,
            net: net.clone(),
            att: att.clone(),
            run,
            open: true,
        }
    }

    /// DEL through the list with the cached result, as a runtime does.
    fn del_run(&self, net: &NetworkConfig, att: &Attachment) -> Result<ChainRun, CaseError> {
        let run = self.runtime().del(net, att)?;
        self.cx.note_run(&run);
        Ok(run)
    }

    /// The environment a runtime gives a plugin for `verb`.
    pub fn env_for(&self, verb: Verb, att: Option<&Attachment>) -> Vec<(String, String)> {
        self.runtime().env_for(verb, att)
    }

    /// One call of the plugin under test, built with [`Call`].
    pub fn call(&self, verb: Verb, att: Option<&Attachment>) -> Call<'_, 'c> {
        Call {
            w: self,
            verb,
            att: att.cloned(),
            request: self.request(att, None),
            stdin: None,
            edits: Vec::new(),
            timeout: None,
            kill_when: None,
        }
    }

    /// STATUS through the list.
    pub fn status(&self) -> Result<ChainRun, CaseError> {
        let run = self.runtime().status(&self.net)?;
        self.cx.note_run(&run);
        Ok(run)
    }

    /// GC through the list, naming `valid` attachments.
    pub fn gc(&self, valid: &[&Attachment]) -> Result<ChainRun, CaseError> {
        let valid: Vec<(String, String)> = valid
            .iter()
            .map(|a| (a.container_id.clone(), a.ifname.clone()))
            .collect();
        let run = self.runtime().gc(&self.net, &valid)?;
        self.cx.note_run(&run);
        Ok(run)
    }

    /// The plugins of the list before the target ADD `att` (for chained
    /// plugins); the run's result is the target's `prevResult`.
    pub fn preceding(&self, att: &Attachment) -> Result<ChainRun, CaseError> {
        let rt = self.runtime();
        let mut run = ChainRun::default();
        for i in 0..self.target() {
            let step = rt.call(
                self.net.plugin_type(i),
                Verb::Add,
                self.net.request(i, Some(att), run.result.as_ref()),
                Some(att),
            )?;
            self.cx.note(&step);
            run.result = step.outcome.json();
            run.steps.push(step);
        }
        Ok(run)
    }

    /// ADD of `att` as a runtime makes it, except that the plugin under
    /// test is called as `edit` builds the call (another environment or
    /// request); DEL through the list follows when the guard drops.
    pub fn add_edited<'w>(
        &'w self,
        att: &Attachment,
        edit: impl FnOnce(Call<'w, 'c>) -> Call<'w, 'c>,
    ) -> Result<Attached<'w, 'c>, CaseError> {
        let mut run = self.preceding(att)?;
        let step = edit(self.call(Verb::Add, Some(att)).prev(run.result.as_ref())).run()?;
        let ok = run.succeeded() && step.outcome.success();
        run.result = step.outcome.json().filter(|_| ok);
        run.steps.push(step);
        if let Some(result) = &run.result {
            self.runtime().remember(&self.net, att, result.clone());
        }
        Ok(self.adopt(&self.net, att, run))
    }

    /// Everything the sandbox holds: every namespace and state folder.
    pub fn snapshot(&self) -> Result<Snapshot, CaseError> {
        let started = std::time::Instant::now();
        let snap = observe::capture(&self.sb);
        self.cx.time(|t| &mut t.observe_us, started);
        Ok(snap?)
    }

    /// What container `c`'s namespace holds, of the `parts` asked for.
    pub fn kernel(&self, c: usize, parts: Parts) -> Result<NetnsSnapshot, CaseError> {
        let started = std::time::Instant::now();
        let snap = observe::capture_scope(&self.sb, Scope::Container(c), parts);
        self.cx.time(|t| &mut t.observe_us, started);
        Ok(snap?)
    }

    /// Changes the sandbox as a check's set-up (never what a plugin is
    /// judged by): `ip ARGS` in container `c`.
    pub fn set_up(&self, c: usize, args: &[&str]) -> Result<(), CaseError> {
        self.sb.ip(Scope::Container(c), args)?;
        Ok(())
    }

    /// The state files (not folders, not the profile's bookkeeping) that
    /// appeared between two snapshots: what an ADD keeps for its attachment.
    pub fn new_state_files(&self, before: &Snapshot, after: &Snapshot) -> Vec<(String, String)> {
        crate::snapshot::diff(before, after)
            .into_iter()
            .filter(|c| c.kind == crate::snapshot::ChangeKind::Added)
            .filter_map(|c| match (c.scope, c.object) {
                (
                    crate::snapshot::Scope::State(folder),
                    crate::snapshot::Object::File { path, entry },
                ) if entry != crate::snapshot::FileEntry::Directory
                    && !self.cx.profile.is_bookkeeping(&path) =>
                {
                    Some((folder, path))
                }
                _ => None,
            })
            .collect()
    }

    /// Where a state file (a state folder as plugins see it, and a path
    /// in it) lives on the harness's side.
    pub fn state_file(&self, folder: &str, path: &str) -> Option<PathBuf> {
        let label = crate::snapshot::Scope::state_label(Path::new(folder));
        self.sb
            .state_layers()
            .into_iter()
            .find(|(l, _)| *l == label)
            .map(|(_, dir)| dir.join(path))
    }

    /// What the spy recorded, in order (empty without a spy log).
    pub fn spy_records(&self) -> Vec<Value> {
        self.spy_log
            .as_deref()
            .and_then(|l| spy::read_log(l).ok())
            .unwrap_or_default()
    }

    /// Runs `f` on every item at once, each on a thread of its own; the
    /// results in item order. A thread that cannot be started or panics,
    /// or a call the harness could not make, is the harness's failure
    /// (after every started thread has finished), never a plugin's.
    pub fn parallel<T: Sync, R: Send>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<R, CaseError> + Sync,
    ) -> Result<Vec<R>, CaseError> {
        self.cx.overlapping(|| self.run_parallel(items, f))
    }

    fn run_parallel<T: Sync, R: Send>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<R, CaseError> + Sync,
    ) -> Result<Vec<R>, CaseError> {
        std::thread::scope(|s| {
            let mut handles = Vec::with_capacity(items.len());
            let mut failure = None;
            for item in items {
                match std::thread::Builder::new().spawn_scoped(s, || f(item)) {
                    Ok(h) => handles.push(h),
                    Err(source) => {
                        failure = Some(CaseError::Spawn {
                            what: format!("thread {} of {}", handles.len() + 1, items.len()),
                            source,
                        });
                        break;
                    }
                }
            }
            let mut results = Vec::with_capacity(handles.len());
            for h in handles {
                match h.join() {
                    Ok(Ok(r)) => results.push(r),
                    Ok(Err(e)) => {
                        failure.get_or_insert(e);
                    }
                    Err(_) => {
                        failure.get_or_insert(CaseError::Panicked);
                    }
                }
            }
            match failure {
                Some(e) => Err(e),
                None => Ok(results),
            }
        })
    }
}

/// One call of the plugin under test with the runtime's environment,
/// edited. Recorded as evidence.
pub struct Call<'w, 'c> {
    w: &'w World<'c>,
    verb: Verb,
    att: Option<Attachment>,
    request: Value,
    stdin: Option<Vec<u8>>,
    edits: Vec<(String, Option<String>)>,
    timeout: Option<Duration>,
    kill_when: Option<&'w (dyn Fn() -> bool + Sync)>,
}

impl<'w> Call<'w, '_> {
    /// Kills the plugin's process group as soon as `when` holds.
    pub fn kill_when(mut self, when: &'w (dyn Fn() -> bool + Sync)) -> Self {
        self.kill_when = Some(when);
        self
    }

    /// Kills the plugin's process group after `d` instead of the run's
    /// timeout.
    pub fn kill_after(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The request with `prevResult` (for the verbs and versions that
    /// carry one).
    pub fn prev(mut self, prev: Option<&Value>) -> Self {
        self.request = self.w.request(self.att.as_ref(), prev);
        self
    }

    /// Changes the request before it is sent.
    pub fn edit(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.request);
        self
    }

    /// Sends these bytes instead of a request (broken on purpose).
    pub fn raw_stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Sets an environment variable.
    pub fn set(mut self, var: &str, value: &str) -> Self {
        self.edits.push((var.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable.
    pub fn unset(mut self, var: &str) -> Self {
        self.edits.push((var.into(), None));
        self
    }

    /// Runs it traced, killed at the entry of step `kill_at` if it gets
    /// that far ([`crate::runtime::trace`]); also the steps it made.
    pub fn traced(
        self,
        kill_at: Option<usize>,
    ) -> Result<(Step, crate::runtime::trace::Traced), CaseError> {
        let (rt, env, stdin) = self.prepared();
        let (step, traced) =
            rt.invoke_traced(&self.w.cx.plugin, self.verb, &stdin, env, kill_at)?;
        self.w.cx.note(&step);
        Ok((step, traced))
    }

    /// The runtime, environment and stdin of this call.
    fn prepared(&self) -> (crate::runtime::Runtime<'w>, Vec<(String, String)>, Vec<u8>) {
        let mut rt = self.w.runtime();
        if let Some(d) = self.timeout {
            rt.timeout = d;
        }
        let mut env = rt.env_for(self.verb, self.att.as_ref());
        for (k, v) in &self.edits {
            env.retain(|(name, _)| name != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        let stdin = match &self.stdin {
            Some(b) => b.clone(),
            None => serde_json::to_vec(&self.request).expect("values serialise"),
        };
        (rt, env, stdin)
    }

    pub fn run(self) -> Result<Step, CaseError> {
        let (rt, env, stdin) = self.prepared();
        let step = rt.invoke_killed(&self.w.cx.plugin, self.verb, &stdin, env, self.kill_when)?;
        self.w.cx.note(&step);
        Ok(step)
    }
}

/// An attachment ADDed through a list; DELeted through it when dropped,
/// unless [`Attached::del`] did it already.
pub struct Attached<'w, 'c> {
    w: &'w World<'c>,
    net: NetworkConfig,
    pub att: Attachment,
    pub run: ChainRun,
    open: bool,
}

impl<'w, 'c> Attached<'w, 'c> {
    /// The world the attachment lives in.
    pub fn world(&self) -> &'w World<'c> {
        self.w
    }

    pub fn succeeded(&self) -> bool {
        self.run.succeeded()
    }

    /// The final result, when every plugin succeeded.
    pub fn result(&self) -> Option<&Value> {
        self.run.result.as_ref()
    }

    /// The step of the plugin under test, if the list reached it.
    pub fn target_step(&self) -> Option<&Step> {
        self.run.steps.get(self.w.target())
    }

    /// The last call made (for [`World::add_edited`]: the plugin under
    /// test's).
    pub fn last_step(&self) -> &Step {
        self.run
            .steps
            .last()
            .expect("an ADD makes at least one call")
    }

    /// The result, or the check is blocked by the one that judges this ADD.
    pub fn require(&self, by: &'static str) -> Result<&Value, Unjudged> {
        self.result().ok_or_else(|| Unjudged::Blocked {
            by,
            why: "ADD failed".into(),
        })
    }

    /// CHECK through the list, with the cached result.
    pub fn check(&self) -> Result<ChainRun, CaseError> {
        let run = self.w.runtime().check(&self.net, &self.att)?;
        self.w.cx.note_run(&run);
        Ok(run)
    }

    /// DEL through the list now; the guard is spent.
    pub fn del(mut self) -> Result<ChainRun, CaseError> {
        self.open = false;
        self.w.del_run(&self.net, &self.att)
    }

    /// Gives up the guard without DEL (the sandbox goes anyway): for checks
    /// that DEL by hand.
    pub fn release(mut self) -> (Attachment, Option<Value>) {
        self.open = false;
        (self.att.clone(), self.run.result.clone())
    }
}

impl Drop for Attached<'_, '_> {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.w.del_run(&self.net, &self.att) {
                self.w.cx.defer(CaseError::CleanUp(Box::new(e)));
            }
        }
    }
}
