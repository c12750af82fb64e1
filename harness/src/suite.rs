//! A conformance run: ask the plugin which versions it speaks, then run
//! every applicable check once per version, in parallel sandboxes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::checks::{self, Case, CaseError, Check, Finding, Level};
use crate::profile::{Fill, PluginKind, Profile, ProfileError};
use crate::runtime::Runtime;
use crate::sandbox::{Sandbox, SandboxError, SandboxOptions};

pub const KNOWN_VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The plugin's own folder comes first; these supply delegates.
    pub cni_path: Vec<PathBuf>,
    pub profile: Option<String>,
    /// Only these versions (still only those the plugin advertises).
    pub versions: Option<Vec<String>>,
    /// Only checks whose ID contains this text.
    pub filter: Option<String>,
    pub timeout: Duration,
    pub jobs: usize,
    /// A folder holding the spy plugin, for checks that need one.
    pub spy_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

/// One check in one version.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub plugin: String,
    pub id: String,
    pub category: String,
    pub level: Level,
    pub version: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub clause: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    #[serde(rename = "durationMs")]
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    pub plugin: String,
    pub profile: String,
    pub versions: Vec<String>,
    pub results: Vec<CaseResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("VERSION could not be asked: {detail}")]
    Plugin { plugin: String, detail: String },
    #[error("no case to run: {why}")]
    NothingSelected { plugin: String, why: String },
    #[error("plugins could not use the sandbox, so no verdict would mean anything")]
    Unusable {
        #[source]
        source: SandboxError,
    },
    #[error("check {id} at {version} could not run: {source}")]
    Case {
        id: String,
        version: String,
        #[source]
        source: Box<CaseError>,
    },
}

/// A sandbox as the cases of `profile` get it, proven usable: plugins can
/// make and write its state folders and the profile's `dataDir`s.
pub fn usable_sandbox(profile: &Profile, plugin_type: &str) -> Result<Sandbox, RunError> {
    let doc = profile.network("1.1.0", "conformance", &Fill::new(plugin_type))?;
    let data_dirs = crate::runtime::NetworkConfig::parse(doc.to_string().as_bytes())
        .map(|n| n.data_dirs())
        .unwrap_or_default();
    let sb = Sandbox::new(&SandboxOptions {
        state_dirs: data_dirs.clone(),
        ..Default::default()
    })?;
    sb.probe_state(&data_dirs)
        .map_err(|source| RunError::Unusable { source })?;
    Ok(sb)
}

/// Proves the sandbox usable, then asks the plugin which versions it
/// advertises (0.1.0 when it has no VERSION).
fn preflight(
    plugin_type: &str,
    profile: &Profile,
    cni_path: &[PathBuf],
    timeout: Duration,
) -> Result<Vec<String>, RunError> {
    let sb = usable_sandbox(profile, plugin_type)?;
    let rt = Runtime::new(&sb, cni_path.to_vec(), timeout);
    let err = |detail: String| RunError::Plugin {
        plugin: plugin_type.into(),
        detail,
    };
    let step = rt
        .version(plugin_type, "1.1.0")
        .map_err(|e| err(e.to_string()))?;
    let doc = step.outcome.json().unwrap_or(Value::Null);
    // libcni's reading of a plugin from before VERSION existed.
    if doc.get("msg").and_then(Value::as_str) == Some("unknown CNI_COMMAND: VERSION") {
        return Ok(vec!["0.1.0".into()]);
    }
    let list: Option<Vec<String>> =
        doc.get("supportedVersions")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            });
    // An unusable answer is the version checks' to judge; meanwhile every
    // known version is tried.
    Ok(list
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| KNOWN_VERSIONS.map(String::from).to_vec()))
}

fn outcome(check: &Check, case: &Case, finding: Finding, started: Instant) -> CaseResult {
    let level = check.level_for(&case.version, case.kind());
    let (status, message, reason) = match finding {
        Finding::Pass(m) => (Status::Pass, m, None),
        Finding::Deviation(m) if level == Level::Must => (Status::Fail, m, None),
        Finding::Deviation(m) => (Status::Warn, m, None),
        Finding::Skip(r) => (Status::Skip, "not run".into(), Some(r)),
    };
    CaseResult {
        plugin: case.plugin_type.clone(),
        id: check.id.into(),
        category: check.category().into(),
        level,
        version: case.version.clone(),
        status,
        message,
        reason,
        clause: check.clause.into(),
        summary: check.summary.into(),
        evidence: if status == Status::Pass {
            Vec::new()
        } else {
            case.evidence.clone()
        },
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Runs the catalog against `plugin`; `progress` sees each result as it
/// comes.
pub fn run_plugin(
    plugin: &Path,
    opts: &RunOptions,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> Result<PluginReport, RunError> {
    let plugin_type = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let profile = Profile::resolve(opts.profile.as_deref(), &plugin_type)?;
    let mut cni_path = vec![plugin.parent().map(Path::to_path_buf).unwrap_or_default()];
    cni_path.extend(opts.cni_path.iter().cloned());
    let advertised = preflight(&plugin_type, &profile, &cni_path, opts.timeout)?;
    let versions: Vec<String> = advertised
        .iter()
        .filter(|v| KNOWN_VERSIONS.contains(&v.as_str()))
        .filter(|v| opts.versions.as_ref().is_none_or(|only| only.contains(v)))
        .cloned()
        .collect();
    let nothing = |why: String| RunError::NothingSelected {
        plugin: plugin.display().to_string(),
        why,
    };
    if versions.is_empty() {
        return Err(nothing(match &opts.versions {
            Some(only) => format!(
                "it advertises {}; --versions asked for {}",
                advertised.join(", "),
                only.join(", ")
            ),
            None => format!(
                "it advertises {}, none of which this harness knows ({})",
                advertised.join(", "),
                KNOWN_VERSIONS.join(", ")
            ),
        }));
    }
    let catalog = checks::catalog();
    let mut queue: VecDeque<(usize, String)> = VecDeque::new();
    for (i, check) in catalog.iter().enumerate() {
        if check.run.is_none()
            || opts
                .filter
                .as_ref()
                .is_some_and(|f| !check.id.contains(f.as_str()))
        {
            continue;
        }
        // Chained plugins need a list, which exists from 0.3.0 on.
        let chain_ok = |v: &str| {
            profile.kind != PluginKind::Chained
                || crate::runtime::config::version_key(v)
                    >= crate::runtime::config::version_key("0.3.0")
        };
        let applicable: Vec<&String> = versions
            .iter()
            .filter(|v| check.applies(v, profile.kind) && chain_ok(v))
            .collect();
        // Costly checks whose subject does not vary by version run once.
        let chosen = match (check.once, applicable.last()) {
            (true, Some(newest)) => vec![*newest],
            _ => applicable,
        };
        for v in chosen {
            queue.push_back((i, v.clone()));
        }
    }
    if queue.is_empty() {
        return Err(nothing(format!(
            "no implemented check{} applies to a plugin of kind {} at {}",
            opts.filter
                .as_ref()
                .map(|f| format!(" whose ID contains {f:?}"))
                .unwrap_or_default(),
            profile.kind,
            versions.join(", ")
        )));
    }
    let queue = Mutex::new(queue);
    let results = Mutex::new(Vec::new());
    let failure: Mutex<Option<RunError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let Some((i, version)) = queue.lock().expect("queue").pop_front() else {
                        return;
                    };
                    let check = &catalog[i];
                    let mut case = Case {
                        plugin_type: plugin_type.clone(),
                        profile: profile.clone(),
                        version: version.clone(),
                        cni_path: cni_path.clone(),
                        timeout: opts.timeout,
                        spy_dir: opts.spy_dir.clone(),
                        evidence: Vec::new(),
                    };
                    let started = Instant::now();
                    match (check.run.expect("queued checks run"))(&mut case) {
                        Ok(finding) => {
                            let r = outcome(check, &case, finding, started);
                            progress(&r);
                            results.lock().expect("results").push((i, r));
                        }
                        Err(source) => {
                            *failure.lock().expect("failure") = Some(RunError::Case {
                                id: check.id.into(),
                                version,
                                source: Box::new(source),
                            });
                            queue.lock().expect("queue").clear();
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    let mut results = results.into_inner().expect("results");
    // Catalog order, then version order: stable reports whatever the jobs.
    results.sort_by(|(a, ra), (b, rb)| {
        a.cmp(b).then(
            crate::runtime::config::version_key(&ra.version)
                .cmp(&crate::runtime::config::version_key(&rb.version)),
        )
    });
    Ok(PluginReport {
        plugin: plugin.display().to_string(),
        profile: profile.name,
        versions,
        results: results.into_iter().map(|(_, r)| r).collect(),
    })
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

pub fn summarise<'a>(results: impl Iterator<Item = &'a CaseResult>) -> Summary {
    let mut s = Summary::default();
    for r in results {
        match r.status {
            Status::Pass => s.passed += 1,
            Status::Fail => s.failed += 1,
            Status::Warn => s.warned += 1,
            Status::Skip => s.skipped += 1,
        }
    }
    s
}
