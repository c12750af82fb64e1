//! The `self` driver: this harness's own runtime module ([`crate::runtime`])
//! driving the spies, with fault switches that make it a broken runtime on
//! purpose (each must trip its check). Its containers are sandbox
//! namespaces; its result cache is a file, so a restart loses nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::driver::{Ability, Action, Driver};
use super::stage::{Done, Stage, StageError};
use crate::runtime::{Attachment, ChainRun, NetworkConfig, Runtime};
use crate::spec::{Verb, Version};

/// Ways to break the runtime, one per `--fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// DEL in list order instead of reverse.
    ForwardDel,
    /// No DEL after an ADD that failed.
    NoDelAfterFailedAdd,
    /// CHECK and DEL get the first plugin's result, not the final one.
    FirstResultAsPrev,
    /// ADD calls the plugins of a list all at once.
    ParallelAdd,
    /// GC runs while an ADD is under way.
    GcDuringAdd,
    /// The `capabilities` key is left in each plugin's config.
    KeepCapabilities,
    /// The lowest version of `cniVersion`/`cniVersions` is chosen.
    LowestVersion,
}

impl Fault {
    /// The check each fault must trip.
    pub fn trips(self) -> &'static str {
        match self {
            Fault::ForwardDel => "runtime.del-reverse-order",
            Fault::NoDelAfterFailedAdd => "runtime.del-after-failed-add",
            Fault::FirstResultAsPrev => "runtime.del-prev-result-final",
            Fault::ParallelAdd => "runtime.no-parallel-operations",
            Fault::GcDuringAdd => "runtime.gc-exclusive",
            Fault::KeepCapabilities => "runtime.capabilities-key-removed",
            Fault::LowestVersion => "runtime.highest-version",
        }
    }
}

/// What the cache file keeps per attachment: the final result and the
/// config it was added with (DEL uses that, even if the file changed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Kept {
    list: Value,
    result: Option<Value>,
    /// The first plugin's result (kept for the `FirstResultAsPrev` fault).
    first: Option<Value>,
    netns_name: String,
}

pub struct OwnDriver {
    faults: Vec<Fault>,
    /// Serialises operations, as a runtime must for one container.
    lock: Mutex<()>,
    timeout: Duration,
}

const IFNAME: &str = "eth0";

impl OwnDriver {
    pub fn new(faults: Vec<Fault>) -> OwnDriver {
        OwnDriver {
            faults,
            lock: Mutex::new(()),
            timeout: Duration::from_secs(30),
        }
    }

    fn has(&self, f: Fault) -> bool {
        self.faults.contains(&f)
    }

    fn cache_file(stage: &Stage) -> PathBuf {
        stage.work.join("self-cache.json")
    }

    fn load(stage: &Stage) -> BTreeMap<String, Kept> {
        std::fs::read(Self::cache_file(stage))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(stage: &Stage, kept: &BTreeMap<String, Kept>) -> Result<(), StageError> {
        let bytes = serde_json::to_vec(kept).expect("values serialise");
        std::fs::write(Self::cache_file(stage), bytes).map_err(|source| StageError::Io {
            what: "the self runtime's cache".into(),
            source,
        })
    }

    /// The list on disk for `network`, parsed as a runtime reads it.
    fn read_list(
        &self,
        stage: &Stage,
        network: &str,
    ) -> Result<(Value, NetworkConfig), StageError> {
        let path = stage.netdir.join(format!("10-{network}.conflist"));
        let bytes = std::fs::read(&path).map_err(|source| StageError::Io {
            what: path.display().to_string(),
            source,
        })?;
        let raw: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let net = self.parse(&raw)?;
        Ok((raw, net))
    }

    fn parse(&self, raw: &Value) -> Result<NetworkConfig, StageError> {
        let mut net =
            NetworkConfig::parse(raw.to_string().as_bytes()).map_err(|e| StageError::Io {
                what: "a network list".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        if self.has(Fault::LowestVersion) {
            let lowest = std::iter::once(raw["cniVersion"].clone())
                .chain(raw["cniVersions"].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str()?.parse::<Version>().ok())
                .min();
            if let Some(v) = lowest {
                net.cni_version = v.as_str().into();
            }
        }
        Ok(net)
    }

    fn attachment(&self, id: &str, netns: String, publish: bool) -> Attachment {
        let mut capability_args = serde_json::Map::new();
        if publish {
            capability_args.insert(
                "portMappings".into(),
                json!([{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]),
            );
        }
        Attachment {
            container_id: id.into(),
            ifname: IFNAME.into(),
            netns,
            args: Vec::new(),
            capability_args,
        }
    }

    fn request(
        &self,
        net: &NetworkConfig,
        i: usize,
        att: Option<&Attachment>,
        prev: Option<&Value>,
    ) -> Value {
        let mut r = net.request(i, att, prev);
        if self.has(Fault::KeepCapabilities)
            && let Some(caps) = net.plugins[i].get("capabilities")
        {
            r["capabilities"] = caps.clone();
        }
        r
    }

    fn add(
        &self,
        rt: &Runtime,
        net: &NetworkConfig,
        att: &Attachment,
    ) -> Result<ChainRun, StageError> {
        if self.has(Fault::ParallelAdd) {
            let steps: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..net.plugins.len())
                    .map(|i| {
                        let req = self.request(net, i, Some(att), None);
                        s.spawn(move || rt.call(net.plugin_type(i), Verb::Add, req, Some(att)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("plugin thread"))
                    .collect()
            });
            let mut run = ChainRun::default();
            for s in steps {
                run.steps.push(s?);
            }
            run.result = run.steps.last().and_then(|s| s.outcome.json());
            return Ok(run);
        }
        if self.has(Fault::KeepCapabilities) {
            let mut run = ChainRun::default();
            for i in 0..net.plugins.len() {
                let prev = run
                    .steps
                    .last()
                    .and_then(|s: &crate::runtime::Step| s.outcome.json());
                let req = self.request(net, i, Some(att), prev.as_ref());
                let step = rt.call(net.plugin_type(i), Verb::Add, req, Some(att))?;
                let ok = step.outcome.success();
                run.steps.push(step);
                if !ok {
                    return Ok(run);
                }
            }
            run.result = run.steps.last().and_then(|s| s.outcome.json());
            return Ok(run);
        }
        Ok(rt.add(net, att)?)
    }

    fn del(
        &self,
        rt: &Runtime,
        net: &NetworkConfig,
        att: &Attachment,
        prev: Option<&Value>,
    ) -> Result<ChainRun, StageError> {
        let order: Vec<usize> = if self.has(Fault::ForwardDel) {
            (0..net.plugins.len()).collect()
        } else {
            (0..net.plugins.len()).rev().collect()
        };
        let mut run = ChainRun::default();
        for i in order {
            let req = self.request(net, i, Some(att), prev);
            let step = rt.call(net.plugin_type(i), Verb::Del, req, Some(att))?;
            let ok = step.outcome.success();
            run.steps.push(step);
            if !ok {
                break;
            }
        }
        Ok(run)
    }

    fn runtime<'a>(&self, stage: &Stage, sb: &'a crate::sandbox::Sandbox) -> Runtime<'a> {
        Runtime::new(sb, vec![stage.plugindir.clone()], self.timeout)
    }

    fn failed(run: &ChainRun) -> Done {
        Done {
            ok: run.succeeded(),
            output: run
                .failure()
                .map(|s| s.outcome.stdout_text())
                .unwrap_or_default(),
        }
    }
}

fn key(network: &str, id: &str) -> String {
    format!("{network}/{id}/{IFNAME}")
}

impl Driver for OwnDriver {
    fn name(&self) -> String {
        if self.faults.is_empty() {
            "self".into()
        } else {
            let names: Vec<String> = self
                .faults
                .iter()
                .map(|f| {
                    use clap::ValueEnum;
                    f.to_possible_value()
                        .map(|v| v.get_name().to_string())
                        .unwrap_or_default()
                })
                .collect();
            format!("self (faults: {})", names.join(", "))
        }
    }

    fn can(&self, ability: Ability) -> bool {
        matches!(
            ability,
            Ability::Check
                | Ability::Restart
                | Ability::Gc
                | Ability::Publish
                | Ability::SeparateRemove
        )
    }

    fn prepare(&self, _stage: &Stage) -> Result<(), StageError> {
        Ok(())
    }

    fn act(&self, stage: &Stage, action: &Action) -> Result<Done, StageError> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept = Self::load(stage);
        match action {
            Action::Run {
                name,
                network,
                publish,
            } => {
                let (raw, net) = self.read_list(stage, network)?;
                let mut sb = stage.sandbox();
                let index = sb.add_container(name)?;
                let netns = sb.container(index).file_path().display().to_string();
                let att = self.attachment(name, netns, *publish);
                let rt = self.runtime(stage, &sb);
                let gc_alongside = self.has(Fault::GcDuringAdd);
                let run = std::thread::scope(|s| {
                    let gc = gc_alongside.then(|| s.spawn(|| rt.gc(&net, &[])));
                    let run = self.add(&rt, &net, &att);
                    if let Some(h) = gc {
                        let _ = h.join();
                    }
                    run
                })?;
                let entry = Kept {
                    list: raw,
                    result: run.result.clone(),
                    first: run.steps.first().and_then(|s| s.outcome.json()),
                    netns_name: name.clone(),
                };
                if run.succeeded() {
                    kept.insert(key(network, name), entry);
                } else if !self.has(Fault::NoDelAfterFailedAdd) {
                    // A failed ADD is undone at once, with no prevResult.
                    self.del(&rt, &net, &att, None)?;
                }
                Self::save(stage, &kept)?;
                Ok(Self::failed(&run))
            }
            Action::Check { name, network } => {
                let Some(entry) = kept.get(&key(network, name)) else {
                    return Ok(Done {
                        ok: false,
                        output: format!("no container {name}"),
                    });
                };
                let net = self.parse(&entry.list)?;
                let sb = stage.sandbox();
                let Some(index) = sb
                    .containers()
                    .iter()
                    .position(|c| c.name == entry.netns_name)
                else {
                    return Ok(Done {
                        ok: false,
                        output: format!("no namespace for {name}"),
                    });
                };
                let att = self.attachment(
                    name,
                    sb.container(index).file_path().display().to_string(),
                    false,
                );
                let rt = self.runtime(stage, &sb);
                let prev = if self.has(Fault::FirstResultAsPrev) {
                    &entry.first
                } else {
                    &entry.result
                };
                if let Some(p) = prev {
                    rt.remember(&net, &att, p.clone());
                }
                let run = rt.check(&net, &att)?;
                Ok(Self::failed(&run))
            }
            Action::Remove { name, network } => {
                let Some(entry) = kept.remove(&key(network, name)) else {
                    return Ok(Done {
                        ok: true,
                        output: String::new(),
                    });
                };
                let net = self.parse(&entry.list)?;
                let mut sb = stage.sandbox();
                let index = sb
                    .containers()
                    .iter()
                    .position(|c| c.name == entry.netns_name);
                let netns = index
                    .map(|i| sb.container(i).file_path().display().to_string())
                    .unwrap_or_default();
                let att = self.attachment(name, netns, false);
                let prev = if self.has(Fault::FirstResultAsPrev) {
                    &entry.first
                } else {
                    &entry.result
                };
                let run = {
                    let rt = self.runtime(stage, &sb);
                    self.del(&rt, &net, &att, prev.as_ref())?
                };
                if let Some(i) = index {
                    sb.remove_container(i);
                }
                Self::save(stage, &kept)?;
                Ok(Self::failed(&run))
            }
            // Nothing lives in memory between actions: the cache is a file.
            Action::Restart => Ok(Done {
                ok: true,
                output: String::new(),
            }),
            Action::Gc { network } => {
                let (_, net) = self.read_list(stage, network)?;
                let valid: Vec<(String, String)> = kept
                    .keys()
                    .filter_map(|k| {
                        let mut parts = k.splitn(3, '/');
                        let (n, id, ifname) = (parts.next()?, parts.next()?, parts.next()?);
                        (n == network).then(|| (id.to_string(), ifname.to_string()))
                    })
                    .collect();
                let sb = stage.sandbox();
                let rt = self.runtime(stage, &sb);
                let run = rt.gc(&net, &valid)?;
                Ok(Self::failed(&run))
            }
        }
    }

    fn teardown(&self, stage: &Stage) -> Vec<String> {
        let kept = Self::load(stage);
        let mut left = Vec::new();
        for k in kept.keys() {
            let mut parts = k.splitn(3, '/');
            if let (Some(network), Some(id)) = (parts.next(), parts.next()) {
                let remove = Action::Remove {
                    name: id.into(),
                    network: network.into(),
                };
                if let Err(e) = self.act(stage, &remove) {
                    left.push(format!("self: removing {id}: {e}"));
                }
            }
        }
        left
    }
}
