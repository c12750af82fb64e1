//! One check in one version against one plugin: the world it builds and the
//! evidence it keeps.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::observe::{self, ObserveError};
use crate::profile::{Fill, PluginKind, Profile, ProfileError};
use crate::runtime::exec::ExecError;
use crate::runtime::{Attachment, ChainRun, NetworkConfig, Runtime, Step};
use crate::sandbox::{Sandbox, SandboxError, SandboxOptions};
use crate::snapshot::Snapshot;

/// The harness could not carry the check out (not the plugin's fault).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("the profile's config does not load: {0}")]
    Config(String),
}

pub struct Case {
    pub plugin_type: String,
    pub profile: Profile,
    pub version: String,
    /// The plugin's own folder first, then the delegates' folders.
    pub cni_path: Vec<PathBuf>,
    pub timeout: Duration,
    /// A folder holding the spy plugin (`cni-spy`), added to CNI_PATH.
    pub spy_dir: Option<PathBuf>,
    /// What the plugin printed in the calls that decided the finding.
    pub evidence: Vec<String>,
}

/// A sandbox configured for the profile, with one container.
pub struct World {
    pub sb: Sandbox,
    pub fill: Fill,
    pub net: NetworkConfig,
}

impl Case {
    pub fn kind(&self) -> PluginKind {
        self.profile.kind
    }

    /// A world with the default fill.
    pub fn world(&self) -> Result<World, CaseError> {
        self.world_with(Fill::new(&self.plugin_type))
    }

    pub fn world_with(&self, fill: Fill) -> Result<World, CaseError> {
        self.world_n(fill, 1)
    }

    /// A world with `containers` container namespaces.
    pub fn world_n(&self, fill: Fill, containers: usize) -> Result<World, CaseError> {
        let master = self.profile.needs_master.then(|| fill.master.clone());
        let doc = self.profile.network(&self.version, "conformance", &fill)?;
        let net = NetworkConfig::parse(doc.to_string().as_bytes())
            .map_err(|e| CaseError::Config(e.to_string()))?;
        let mut sb = Sandbox::new(&SandboxOptions {
            master,
            state_dirs: net.data_dirs(),
            ..Default::default()
        })?;
        for i in 0..containers {
            sb.add_container(&format!("ctr{i}"))?;
        }
        Ok(World { sb, fill, net })
    }

    pub fn runtime<'a>(&self, w: &'a World) -> Runtime<'a> {
        let mut path = self.cni_path.clone();
        path.extend(self.spy_dir.clone());
        Runtime::new(&w.sb, path, self.timeout)
    }

    /// ADD through the whole list, every step noted.
    pub fn add(
        &mut self,
        w: &World,
        rt: &mut Runtime,
        att: &Attachment,
    ) -> Result<ChainRun, CaseError> {
        Ok(self.noted(rt.add(&w.net, att)?))
    }

    /// DEL through the whole list, every step noted.
    pub fn del(
        &mut self,
        w: &World,
        rt: &mut Runtime,
        att: &Attachment,
    ) -> Result<ChainRun, CaseError> {
        Ok(self.noted(rt.del(&w.net, att)?))
    }

    /// A runtime whose spy plugins log every call to [`World::spy_log`].
    pub fn spy_runtime<'a>(&self, w: &'a World) -> Runtime<'a> {
        let mut rt = self.runtime(w);
        rt.extra_env
            .push(("CNI_SPY_LOG".into(), w.spy_log().display().to_string()));
        rt
    }

    /// ADD and then DEL of the world's attachment; the ADD run is returned
    /// for the checks that judge it once the sandbox is clean again.
    pub fn add_then_del(&mut self, w: &World) -> Result<ChainRun, CaseError> {
        let mut rt = self.runtime(w);
        let att = w.att();
        let run = self.add(w, &mut rt, &att)?;
        self.del(w, &mut rt, &att)?;
        Ok(run)
    }

    /// For chained plugins: ADD the plugins before the target and return
    /// their result (the target's `prevResult`); `None` otherwise.
    pub fn prepare(
        &mut self,
        w: &World,
        rt: &Runtime,
        att: &Attachment,
    ) -> Result<Option<Value>, CaseError> {
        let mut prev = None;
        for i in 0..w.target() {
            let step = rt.call(
                w.net.plugin_type(i),
                "ADD",
                w.net.request(i, Some(att), prev.as_ref()),
                Some(att),
            )?;
            self.note(&step);
            prev = step.outcome.json();
        }
        Ok(prev)
    }

    /// One call of the plugin under test with the runtime's environment for
    /// `att`, edited: `Some` sets a variable, `None` removes it.
    pub fn call(
        &mut self,
        rt: &Runtime,
        verb: &str,
        att: Option<&Attachment>,
        request: Value,
        edits: &[(&str, Option<&str>)],
    ) -> Result<Step, CaseError> {
        let stdin = serde_json::to_vec(&request).expect("values serialise");
        self.call_raw(rt, verb, att, &stdin, edits)
    }

    /// As [`Case::call`], with raw (possibly broken) stdin.
    pub fn call_raw(
        &mut self,
        rt: &Runtime,
        verb: &str,
        att: Option<&Attachment>,
        stdin: &[u8],
        edits: &[(&str, Option<&str>)],
    ) -> Result<Step, CaseError> {
        let mut env = rt.env_for(verb, att);
        for (k, v) in edits {
            env.retain(|(name, _)| name != k);
            if let Some(v) = v {
                env.push((k.to_string(), v.to_string()));
            }
        }
        let step = rt.invoke_raw(&self.plugin_type, verb, stdin, env)?;
        self.note(&step);
        Ok(step)
    }

    /// Notes every step of a run through a list and hands the run back.
    pub fn noted(&mut self, run: ChainRun) -> ChainRun {
        run.steps.iter().for_each(|s| self.note(s));
        run
    }

    /// Keeps what a call printed, for the report.
    pub fn note(&mut self, step: &Step) {
        let mut line = format!("{} {}: {}", step.plugin, step.verb, step.outcome.exit);
        let out = step.outcome.stdout_text();
        if !out.trim().is_empty() {
            line.push_str(&format!("; stdout: {}", out.trim()));
        }
        let err = step.outcome.stderr_text();
        if !err.trim().is_empty() {
            line.push_str(&format!("; stderr: {}", err.trim()));
        }
        self.evidence.push(line);
    }
}

impl World {
    /// Where the spy plugins of [`Case::spy_runtime`] log their calls.
    pub fn spy_log(&self) -> PathBuf {
        self.sb.dir().join("spy.log")
    }

    /// The attachment of container `c`.
    pub fn attachment(&self, c: usize, container_id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: container_id.into(),
            ifname: ifname.into(),
            netns: self.sb.container(c).proc_path(),
            args: Vec::new(),
            capability_args: Default::default(),
        }
    }

    /// The default attachment: container 0, `c1`, `eth0`.
    pub fn att(&self) -> Attachment {
        self.attachment(0, "c1", "eth0")
    }

    /// Index of the plugin under test in the list (the last one).
    pub fn target(&self) -> usize {
        self.net.plugins.len() - 1
    }

    /// The request the plugin under test receives.
    pub fn request(&self, att: Option<&Attachment>, prev: Option<&Value>) -> Value {
        self.net.request(self.target(), att, prev)
    }

    pub fn snapshot(&self) -> Result<Snapshot, CaseError> {
        Ok(observe::capture(&self.sb)?)
    }

    /// Kernel changes (state files excluded) between two snapshots.
    pub fn kernel_changes(&self, before: &Snapshot, after: &Snapshot) -> Vec<String> {
        observe::changes(before, after)
            .into_iter()
            .filter(|c| !c.scope.starts_with("state") && !c.subject.starts_with("neighbour"))
            .map(|c| c.to_string())
            .collect()
    }
}

/// Everything an attachment left behind between two snapshots: kernel
/// objects and state files, except neighbours (learnt by traffic),
/// folders and the profile's bookkeeping files.
pub fn leaks(profile: &Profile, before: &Snapshot, after: &Snapshot) -> Vec<String> {
    observe::changes(before, after)
        .into_iter()
        .filter(|c| !c.subject.starts_with("neighbour"))
        .filter(|c| {
            !c.scope.starts_with("state")
                || !(c.detail.contains("directory")
                    || profile.is_bookkeeping(c.subject.trim_start_matches("file ")))
        })
        .map(|c| c.to_string())
        .collect()
}

/// A world whose pool is `subnet` with `containers` containers; `None`
/// when the profile draws no addresses from a subnet.
pub fn pool_world(
    case: &Case,
    subnet: &str,
    containers: usize,
) -> Result<Option<World>, CaseError> {
    if !case.profile.has_pool() {
        return Ok(None);
    }
    let mut fill = Fill::new(&case.plugin_type);
    fill.subnet = subnet.into();
    Ok(Some(case.world_n(fill, containers)?))
}

/// The first address of a result, in any version's layout.
pub fn first_address(r: &Value) -> Option<String> {
    r.get("ips")
        .and_then(|i| i.get(0)?.get("address"))
        .or_else(|| r.get("ip4")?.get("ip"))?
        .as_str()
        .map(str::to_string)
}
