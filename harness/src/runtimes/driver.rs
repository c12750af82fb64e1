//! How a runtime is made to act: create and start a networked container,
//! CHECK it, remove it, restart, GC. A [`Driver`] does each action in a
//! [`Stage`]; [`CommandDriver`] does them with shell templates from a TOML
//! file (the built-in podman, buildah and containerd drivers are such
//! files), so any runtime can be driven without code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::stage::{Done, Stage, StageError};

/// What a scenario asks of the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create and start container `name` attached to `network`, asking
    /// for a port mapping when `publish` and the driver can.
    Run {
        name: String,
        network: String,
        publish: bool,
    },
    Check {
        name: String,
        network: String,
    },
    /// Stop and remove the container (the runtime's DEL).
    Remove {
        name: String,
        network: String,
    },
    /// Restart the runtime (its daemon), keeping its containers.
    Restart,
    Gc {
        network: String,
    },
}

impl Action {
    pub fn word(&self) -> &'static str {
        match self {
            Action::Run { .. } => "run",
            Action::Check { .. } => "check",
            Action::Remove { .. } => "remove",
            Action::Restart => "restart",
            Action::Gc { .. } => "gc",
        }
    }
}

/// What a driver can make its runtime do beyond run and remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ability {
    Check,
    Restart,
    Gc,
    Publish,
    /// Run and remove are separate runtime processes (the result must be
    /// kept between them).
    SeparateRemove,
}

pub trait Driver: Sync {
    fn name(&self) -> String;
    /// Programs it needs that are missing.
    fn missing(&self) -> Vec<String> {
        Vec::new()
    }
    fn can(&self, ability: Ability) -> bool;
    fn prepare(&self, stage: &Stage) -> Result<(), StageError>;
    /// Does `action`; `Ok` with `ok: false` is the runtime reporting a
    /// failure (a verdict's material), `Err` the harness failing.
    fn act(&self, stage: &Stage, action: &Action) -> Result<Done, StageError>;
    /// Removes everything the runtime made; what could not be removed.
    fn teardown(&self, stage: &Stage) -> Vec<String>;
}

#[derive(Debug, thiserror::Error)]
pub enum DriverFileError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: no `run` or no `remove` template")]
    Incomplete { path: String },
}

/// A driver file (format in `harness/drivers/README.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDriver {
    pub name: String,
    #[serde(default)]
    pub about: String,
    /// Programs that must be on PATH.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Environment of every command (templated).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files written into `{work}` before `setup` (templated).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Whether `run` and `remove` are separate runtime processes.
    #[serde(default)]
    pub separate_remove: bool,
    /// Seconds one command may take.
    #[serde(default = "default_limit")]
    pub limit_secs: u64,
    #[serde(default)]
    pub setup: Option<String>,
    pub run: Option<String>,
    /// How `{publish}` is written in `run` when a port is asked for.
    #[serde(default)]
    pub publish: Option<String>,
    #[serde(default)]
    pub check: Option<String>,
    pub remove: Option<String>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub gc: Option<String>,
    #[serde(default)]
    pub teardown: Option<String>,
}

fn default_limit() -> u64 {
    60
}

/// The built-in driver files.
pub const BUILT_IN: [(&str, &str); 3] = [
    ("podman", include_str!("../../drivers/podman.toml")),
    ("buildah", include_str!("../../drivers/buildah.toml")),
    ("containerd", include_str!("../../drivers/containerd.toml")),
];

impl CommandDriver {
    pub fn parse(path: &str, text: &str) -> Result<CommandDriver, DriverFileError> {
        let d: CommandDriver = toml::from_str(text).map_err(|source| DriverFileError::Parse {
            path: path.into(),
            source,
        })?;
        if d.run.is_none() || d.remove.is_none() {
            return Err(DriverFileError::Incomplete { path: path.into() });
        }
        Ok(d)
    }

    pub fn load(path: &Path) -> Result<CommandDriver, DriverFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| DriverFileError::Read {
            path: shown.clone(),
            source,
        })?;
        CommandDriver::parse(&shown, &text)
    }

    pub fn built_in(name: &str) -> Option<CommandDriver> {
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| CommandDriver::parse(n, text).expect("built-in drivers parse"))
    }

    fn fill(&self, stage: &Stage, template: &str, vars: &[(&str, String)]) -> String {
        let mut text = template.to_string();
        let fixed = [
            ("work", stage.work.display().to_string()),
            ("netdir", stage.netdir.display().to_string()),
            ("plugindir", stage.plugindir.display().to_string()),
            ("rootfs", stage.rootfs.display().to_string()),
            ("cgroup", stage.cgroup.clone()),
        ];
        for (k, v) in fixed.iter().chain(vars) {
            text = text.replace(&format!("{{{k}}}"), v);
        }
        text
    }

    fn env(&self, stage: &Stage) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), self.fill(stage, v, &[])))
            .collect()
    }

    fn sh(
        &self,
        stage: &Stage,
        template: &str,
        vars: &[(&str, String)],
    ) -> Result<Done, StageError> {
        let script = self.fill(stage, template, vars);
        stage.shell(
            &script,
            &self.env(stage),
            Duration::from_secs(self.limit_secs),
        )
    }
}

impl Driver for CommandDriver {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn missing(&self) -> Vec<String> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        self.programs
            .iter()
            .filter(|p| !std::env::split_paths(&path).any(|d| d.join(p).is_file()))
            .cloned()
            .collect()
    }

    fn can(&self, ability: Ability) -> bool {
        match ability {
            Ability::Check => self.check.is_some(),
            Ability::Restart => self.restart.is_some(),
            Ability::Gc => self.gc.is_some(),
            Ability::Publish => self.publish.is_some(),
            Ability::SeparateRemove => self.separate_remove,
        }
    }

    fn prepare(&self, stage: &Stage) -> Result<(), StageError> {
        if let Some(p) = self.missing().first() {
            return Err(StageError::Missing(p.clone()));
        }
        for (name, content) in &self.files {
            let path = stage.work.join(name);
            std::fs::write(&path, self.fill(stage, content, &[])).map_err(|source| {
                StageError::Io {
                    what: path.display().to_string(),
                    source,
                }
            })?;
        }
        if let Some(setup) = &self.setup {
            let done = self.sh(stage, setup, &[])?;
            if !done.ok {
                return Err(StageError::Io {
                    what: format!("{} setup", self.name),
                    source: std::io::Error::other(done.output),
                });
            }
        }
        Ok(())
    }

    fn act(&self, stage: &Stage, action: &Action) -> Result<Done, StageError> {
        let unable = || Done {
            ok: false,
            output: format!("{} cannot {}", self.name, action.word()),
        };
        let (template, vars) = match action {
            Action::Run {
                name,
                network,
                publish,
            } => {
                let publish = match (&self.publish, publish) {
                    (Some(p), true) => p.clone(),
                    _ => String::new(),
                };
                (
                    self.run.as_ref(),
                    vec![
                        ("name", name.clone()),
                        ("network", network.clone()),
                        ("publish", publish),
                    ],
                )
            }
            Action::Check { name, network } => (
                self.check.as_ref(),
                vec![("name", name.clone()), ("network", network.clone())],
            ),
            Action::Remove { name, network } => (
                self.remove.as_ref(),
                vec![("name", name.clone()), ("network", network.clone())],
            ),
            Action::Restart => (self.restart.as_ref(), vec![]),
            Action::Gc { network } => (self.gc.as_ref(), vec![("network", network.clone())]),
        };
        match template {
            Some(t) => self.sh(stage, t, &vars),
            None => Ok(unable()),
        }
    }

    fn teardown(&self, stage: &Stage) -> Vec<String> {
        let mut left = Vec::new();
        if let Some(t) = &self.teardown {
            match self.sh(stage, t, &[]) {
                Ok(d) if !d.ok => left.push(format!("{} teardown: {}", self.name, d.output.trim())),
                Err(e) => left.push(format!("{} teardown: {e}", self.name)),
                Ok(_) => {}
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_drivers_parse() {
        for (name, _) in BUILT_IN {
            let d = CommandDriver::built_in(name).unwrap();
            assert_eq!(d.name, name);
        }
    }
}
