//! The runtime side of CNI (what libcni does), in Rust: find plugins, run
//! them with a runtime's environment, chain them through a network
//! configuration list, cache results.

pub mod capture;
pub mod config;
pub mod exec;
pub mod trace;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use capture::Captured;
pub use config::{Attachment, NetworkConfig};
pub use exec::{ErrorObject, Exit, Outcome};

use crate::sandbox::Sandbox;
use crate::spec::{Verb, Version};

/// One plugin invocation within a verb: what was sent and what came back.
#[derive(Debug, Clone)]
pub struct Step {
    pub plugin: String,
    pub verb: Verb,
    pub env: Vec<(String, String)>,
    pub request: Value,
    pub outcome: Outcome,
}

/// A verb run over a whole network configuration.
#[derive(Debug, Clone, Default)]
pub struct ChainRun {
    pub steps: Vec<Step>,
    /// ADD: the final result, when every plugin succeeded.
    pub result: Option<Value>,
}

impl ChainRun {
    /// The step that failed, if one did (the chain stops there, except GC).
    pub fn failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.outcome.success())
    }

    pub fn succeeded(&self) -> bool {
        self.failure().is_none()
    }
}

/// Final ADD results by (network, container ID, ifname), as libcni's cache
/// keeps them for CHECK and DEL; shared by the runtimes of one world.
pub type ResultCache = Arc<Mutex<HashMap<(String, String, String), Value>>>;

/// A runtime bound to one sandbox.
pub struct Runtime<'a> {
    sandbox: &'a Sandbox,
    pub cni_path: Vec<PathBuf>,
    pub timeout: Duration,
    /// Extra environment for every plugin (e.g. the spy's log path).
    pub extra_env: Vec<(String, String)>,
    cache: ResultCache,
    breaker: Option<Arc<exec::Breaker>>,
}

impl<'a> Runtime<'a> {
    pub fn new(sandbox: &'a Sandbox, cni_path: Vec<PathBuf>, timeout: Duration) -> Runtime<'a> {
        Runtime {
            sandbox,
            cni_path,
            timeout,
            extra_env: Vec::new(),
            cache: ResultCache::default(),
            breaker: None,
        }
    }

    /// The same runtime giving up on a verb after repeated timeouts.
    pub fn with_breaker(mut self, breaker: Arc<exec::Breaker>) -> Runtime<'a> {
        self.breaker = Some(breaker);
        self
    }

    /// The same runtime keeping its results in `cache`.
    pub fn with_cache(mut self, cache: ResultCache) -> Runtime<'a> {
        self.cache = cache;
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), Value>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The environment libcni gives a plugin: every `CNI_*` variable, empty
    /// when unused, plus PATH.
    pub fn env_for(&self, verb: Verb, att: Option<&Attachment>) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        let cni_path = std::env::join_paths(&self.cni_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (id, netns, ifname, args) = match att {
            Some(a) => (
                a.container_id.clone(),
                a.netns.clone(),
                a.ifname.clone(),
                a.args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            None => Default::default(),
        };
        let mut env = vec![
            ("PATH".to_string(), path),
            ("CNI_COMMAND".into(), verb.to_string()),
            ("CNI_CONTAINERID".into(), id),
            ("CNI_NETNS".into(), netns),
            ("CNI_IFNAME".into(), ifname),
            ("CNI_ARGS".into(), args),
            ("CNI_PATH".into(), cni_path),
        ];
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// Runs one plugin by type with raw stdin (which may be broken on
    /// purpose) and an explicit environment.
    pub fn invoke_raw(
        &self,
        plugin: &str,
        verb: Verb,
        stdin: &[u8],
        env: Vec<(String, String)>,
    ) -> Result<Step, exec::ExecError> {
        self.invoke_killed(plugin, verb, stdin, env, None)
    }

    /// As [`Runtime::invoke_raw`], killed as soon as `when` holds.
    pub fn invoke_killed(
        &self,
        plugin: &str,
        verb: Verb,
        stdin: &[u8],
        env: Vec<(String, String)>,
        when: Option<&(dyn Fn() -> bool + Sync)>,
    ) -> Result<Step, exec::ExecError> {
        let path = exec::find_plugin(plugin, &self.cni_path)?;
        if let Some(b) = &self.breaker {
            b.admit(plugin, verb)?;
        }
        let kill = exec::Kill {
            after: self.timeout,
            when,
        };
        let outcome = exec::run(self.sandbox, &path, &env, stdin, kill)?;
        if let Some(b) = &self.breaker {
            b.record(plugin, verb, outcome.exit);
        }
        let request = serde_json::from_slice(stdin)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(stdin).into()));
        Ok(Step {
            plugin: plugin.into(),
            verb,
            env,
            request,
            outcome,
        })
    }

    /// As [`Runtime::invoke_raw`], traced ([`trace`]), killed at the entry
    /// of step `kill_at` if it gets that far; also the steps it made.
    pub fn invoke_traced(
        &self,
        plugin: &str,
        verb: Verb,
        stdin: &[u8],
        env: Vec<(String, String)>,
        kill_at: Option<usize>,
    ) -> Result<(Step, trace::Traced), exec::ExecError> {
        let path = exec::find_plugin(plugin, &self.cni_path)?;
        let mut traced = trace::run(self.sandbox, &path, &env, stdin, kill_at, self.timeout)?;
        let request = serde_json::from_slice(stdin)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(stdin).into()));
        let outcome = std::mem::replace(
            &mut traced.outcome,
            exec::Outcome {
                exit: exec::Exit::Code(0),
                stdout: Captured::default(),
                stderr: Captured::default(),
                duration: std::time::Duration::ZERO,
                survivors: Vec::new(),
                folders_full: false,
                forks_refused: 0,
            },
        );
        Ok((
            Step {
                plugin: plugin.into(),
                verb,
                env,
                request,
                outcome,
            },
            traced,
        ))
    }

    /// Runs one plugin by type with an explicit request and environment.
    pub fn invoke(
        &self,
        plugin: &str,
        verb: Verb,
        request: Value,
        env: Vec<(String, String)>,
    ) -> Result<Step, exec::ExecError> {
        let stdin = serde_json::to_vec(&request).expect("values serialise");
        Ok(Step {
            request,
            ..self.invoke_raw(plugin, verb, &stdin, env)?
        })
    }

    /// Runs one plugin with the environment a runtime builds for `att`.
    pub fn call(
        &self,
        plugin: &str,
        verb: Verb,
        request: Value,
        att: Option<&Attachment>,
    ) -> Result<Step, exec::ExecError> {
        self.invoke(plugin, verb, request, self.env_for(verb, att))
    }

    fn key(net: &NetworkConfig, att: &Attachment) -> (String, String, String) {
        (
            net.name.clone(),
            att.container_id.clone(),
            att.ifname.clone(),
        )
    }

    /// Caches `result` as the final ADD result of `att`, as after an ADD.
    pub fn remember(&self, net: &NetworkConfig, att: &Attachment, result: Value) {
        self.cache().insert(Self::key(net, att), result);
    }

    pub fn cached_result(&self, net: &NetworkConfig, att: &Attachment) -> Option<Value> {
        self.cache().get(&Self::key(net, att)).cloned()
    }

    /// Runs `verb` on the plugins in `order`, each with the request
    /// `request(i)` builds; stops at the first failure unless `keep_going`.
    fn chain(
        &self,
        verb: Verb,
        order: impl Iterator<Item = usize>,
        net: &NetworkConfig,
        att: Option<&Attachment>,
        keep_going: bool,
        mut request: impl FnMut(usize, Option<&Step>) -> Value,
    ) -> Result<ChainRun, exec::ExecError> {
        let mut run = ChainRun::default();
        for i in order {
            let step = self.call(net.plugin_type(i), verb, request(i, run.steps.last()), att)?;
            let ok = step.outcome.success();
            run.steps.push(step);
            if !ok && !keep_going {
                break;
            }
        }
        Ok(run)
    }

    /// ADD through the list in order, each plugin's result the next one's
    /// `prevResult`; stops at the first failure. The caller must still DEL
    /// after a failed ADD, as the spec demands.
    pub fn add(&self, net: &NetworkConfig, att: &Attachment) -> Result<ChainRun, exec::ExecError> {
        let mut run = self.chain(
            Verb::Add,
            0..net.plugins.len(),
            net,
            Some(att),
            false,
            |i, last| {
                let prev = last.and_then(|s| s.outcome.json());
                net.request(i, Some(att), prev.as_ref())
            },
        )?;
        if run.succeeded() {
            run.result = run.steps.last().and_then(|s| s.outcome.json());
            if let Some(result) = &run.result {
                self.cache().insert(Self::key(net, att), result.clone());
            }
        }
        Ok(run)
    }

    /// CHECK through the list in order with the cached result; nothing
    /// below 0.4.0 or when the list disables CHECK.
    pub fn check(
        &self,
        net: &NetworkConfig,
        att: &Attachment,
    ) -> Result<ChainRun, exec::ExecError> {
        if !net.version_at_least(Version::V0_4_0) || net.disable_check {
            return Ok(ChainRun::default());
        }
        let prev = self.cached_result(net, att);
        self.chain(
            Verb::Check,
            0..net.plugins.len(),
            net,
            Some(att),
            false,
            |i, _| net.request(i, Some(att), prev.as_ref()),
        )
    }

    /// DEL through the list in reverse, with the cached result as
    /// `prevResult` from 0.4.0 on; the cache entry goes on success.
    pub fn del(&self, net: &NetworkConfig, att: &Attachment) -> Result<ChainRun, exec::ExecError> {
        let prev = if net.version_at_least(Version::V0_4_0) {
            self.cached_result(net, att)
        } else {
            None
        };
        let run = self.chain(
            Verb::Del,
            (0..net.plugins.len()).rev(),
            net,
            Some(att),
            false,
            |i, _| net.request(i, Some(att), prev.as_ref()),
        )?;
        if run.succeeded() {
            self.cache().remove(&Self::key(net, att));
        }
        Ok(run)
    }

    /// STATUS through the list (1.1.0+), stopping at the first error.
    pub fn status(&self, net: &NetworkConfig) -> Result<ChainRun, exec::ExecError> {
        if !net.version_at_least(Version::V1_1_0) {
            return Ok(ChainRun::default());
        }
        self.chain(
            Verb::Status,
            0..net.plugins.len(),
            net,
            None,
            false,
            |i, _| net.network_request(i, None),
        )
    }

    /// GC through the list (1.1.0+, unless the list disables GC): every
    /// plugin, even after errors.
    pub fn gc(
        &self,
        net: &NetworkConfig,
        valid: &[(String, String)],
    ) -> Result<ChainRun, exec::ExecError> {
        if !net.version_at_least(Version::V1_1_0) || net.disable_gc {
            return Ok(ChainRun::default());
        }
        self.chain(Verb::Gc, 0..net.plugins.len(), net, None, true, |i, _| {
            net.network_request(i, Some(valid))
        })
    }

    /// VERSION of one plugin, asked as libcni asks.
    pub fn version(&self, plugin: &str, cni_version: &str) -> Result<Step, exec::ExecError> {
        let mut env = self.env_for(Verb::Version, None);
        // libcni sets these to "dummy" for plugins built on an old skel.
        for (k, v) in env.iter_mut() {
            if matches!(k.as_str(), "CNI_NETNS" | "CNI_IFNAME" | "CNI_PATH") {
                *v = "dummy".into();
            }
        }
        self.invoke(
            plugin,
            Verb::Version,
            serde_json::json!({"cniVersion": cni_version}),
            env,
        )
    }
}
