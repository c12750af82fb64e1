//! A conformance run: prove the sandbox usable, ask the plugin which
//! versions it speaks, then run every applicable check once per version,
//! in parallel sandboxes. A case the harness cannot carry out is recorded
//! as an error of that case; every other case still runs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::{self, Basis, CaseError, Check, Cx, Finding, Level, Rule, Unjudged};
use crate::profile::{Fill, PluginKind, Profile, ProfileError};
use crate::runtime::exec::ExecError;
use crate::runtime::{NetworkConfig, Runtime};
use crate::sandbox::{Sandbox, SandboxError, SandboxOptions};
use crate::spec::Version;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The plugin's own folder comes first; these supply delegates.
    pub cni_path: Vec<PathBuf>,
    pub profile: Option<String>,
    /// Only these versions (still only those the plugin advertises).
    pub versions: Option<Vec<Version>>,
    /// Only checks whose ID contains this text.
    pub filter: Option<String>,
    pub timeout: Duration,
    pub jobs: usize,
    /// A folder holding the spy plugin, for checks that need one.
    pub spy_dir: Option<PathBuf>,
    /// Only these (check ID, version) cases (a rerun, a replay).
    pub only: Option<Vec<(String, Version)>>,
    /// Kill points per verb fault.kill-at-every-step covers; `None`: all.
    pub kill_points: Option<usize>,
}

/// What became of one check in one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    /// A MUST deviation.
    Fail,
    /// A SHOULD deviation.
    Warn,
    /// A MAY or INFO deviation: shown, never in the exit status.
    Note,
    NotApplicable,
    /// A runtime rule the runtime never exercised (it never called CHECK,
    /// never GC): never a pass.
    NotExercised,
    /// Something it builds on failed; `blockedBy` names the check.
    Blocked,
    /// A deviation the expectations file lists: not in the exit status.
    #[serde(rename = "xfail")]
    XFail,
    /// Listed in the expectations file, and now passes: fails the run
    /// until the entry is removed.
    #[serde(rename = "xpass")]
    XPass,
    /// The harness could not carry it out: never a verdict on the plugin.
    Error,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Warn => "warn",
            Status::Note => "note",
            Status::NotApplicable => "n/a",
            Status::NotExercised => "not exercised",
            Status::XFail => "xfail",
            Status::XPass => "XPASS",
            Status::Blocked => "blocked",
            Status::Error => "ERROR",
        }
    }
}

/// One check in one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    pub plugin: String,
    pub id: String,
    pub category: String,
    pub level: Level,
    pub version: Version,
    pub status: Status,
    pub message: String,
    /// Why it is not-applicable, blocked or an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// Where the rule is written at this version, and the sentence.
    pub clause: String,
    pub quote: String,
    pub basis: Basis,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    pub duration_ms: u64,
    /// Every plugin call of the case in full (environment, stdin, what
    /// came back), for replay bundles; not in the report.
    #[serde(skip)]
    pub calls: Vec<Value>,
    /// Where the case's time went.
    #[serde(default)]
    pub timings: checks::Timings,
}

/// One plugin's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginReport {
    pub plugin: String,
    pub profile: String,
    pub versions: Vec<Version>,
    /// Why the plugin could not be run at all (its results are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub results: Vec<CaseResult>,
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub noted: usize,
    pub not_applicable: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub not_exercised: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub xfailed: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub xpassed: usize,
    pub blocked: usize,
    pub errors: usize,
}

impl Summary {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Summary {
        let mut s = Summary::default();
        for r in results {
            *match r.status {
                Status::Pass => &mut s.passed,
                Status::Fail => &mut s.failed,
                Status::Warn => &mut s.warned,
                Status::Note => &mut s.noted,
                Status::NotApplicable => &mut s.not_applicable,
                Status::NotExercised => &mut s.not_exercised,
                Status::XFail => &mut s.xfailed,
                Status::XPass => &mut s.xpassed,
                Status::Blocked => &mut s.blocked,
                Status::Error => &mut s.errors,
            } += 1;
        }
        s
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why a plugin could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("VERSION could not be asked")]
    Version(#[source] crate::runtime::exec::ExecError),
    #[error("no case to run: {why}")]
    NothingSelected { why: String },
    #[error("plugins could not use the sandbox, so no verdict would mean anything")]
    Unusable {
        #[source]
        source: SandboxError,
    },
}

/// `error: cause: cause`, each cause once even when a message already
/// quotes its source.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(e);
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// A sandbox as the cases of `profile` get it, proven usable: plugins can
/// make and write its state folders and the profile's `dataDir`s.
pub fn usable_sandbox(profile: &Profile, plugin_type: &str) -> Result<Sandbox, RunError> {
    let doc = profile.network(Version::NEWEST, "conformance", &Fill::new(plugin_type));
    let data_dirs = NetworkConfig::parse(doc.to_string().as_bytes())
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

/// What a plugin's VERSION answer names (0.1.0 for a plugin from before
/// VERSION existed); an unusable answer means every known version is
/// tried, and the version checks judge the answer.
#[doc(hidden)]
pub fn advertised(doc: &Value) -> Vec<String> {
    // libcni's reading of a plugin from before VERSION existed.
    if doc.get("msg").and_then(Value::as_str) == Some("unknown CNI_COMMAND: VERSION") {
        return vec![Version::V0_1_0.to_string()];
    }
    let list: Vec<String> = doc
        .get("supportedVersions")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        Version::ALL.iter().map(ToString::to_string).collect()
    } else {
        list
    }
}

/// Proves the sandbox usable, then asks the plugin's VERSION.
fn preflight(
    plugin_type: &str,
    profile: &Profile,
    cni_path: &[PathBuf],
    timeout: Duration,
) -> Result<Vec<String>, RunError> {
    let sb = usable_sandbox(profile, plugin_type)?;
    let rt = Runtime::new(&sb, cni_path.to_vec(), timeout);
    let step = rt
        .version(plugin_type, Version::NEWEST.as_str())
        .map_err(RunError::Version)?;
    Ok(advertised(&step.outcome.json().unwrap_or(Value::Null)))
}

/// Consecutive timeouts of one verb after which the run stops calling it:
/// a plugin that hangs on ADD is judged in about one timeout per job.
pub const GIVE_UP_AFTER: u32 = 2;

/// The result of one case, from what the check returned.
fn outcome(
    check: &Check,
    rule: &Rule,
    cx: &Cx,
    judged: checks::Judged,
    deferred: Vec<CaseError>,
    started: Instant,
) -> CaseResult {
    let level = rule.level;
    let mut blocked_by = None;
    let gave_up = |e: &CaseError| matches!(e, CaseError::Exec(ExecError::GaveUp { .. }));
    let (status, message, reason) = match (judged, deferred.into_iter().next()) {
        // A verb the plugin keeps timing out on is not called again.
        (_, Some(e)) | (Err(Unjudged::Harness(e)), None) if gave_up(&e) => {
            blocked_by = Some("timeout".to_string());
            (Status::Blocked, "not run".into(), Some(error_chain(&e)))
        }
        // A clean-up the harness failed taints whatever the check found.
        (_, Some(e)) | (Err(Unjudged::Harness(e)), None) => {
            (Status::Error, "not run".into(), Some(error_chain(&e)))
        }
        (Ok(Finding::Pass(m)), None) => (Status::Pass, m, None),
        (Ok(Finding::Deviation(m)), None) => match level {
            Level::Must => (Status::Fail, m, None),
            Level::Should => (Status::Warn, m, None),
            Level::May | Level::Info => (Status::Note, m, None),
        },
        (Err(Unjudged::NotApplicable(why)), None) => {
            (Status::NotApplicable, "not run".into(), Some(why))
        }
        (Err(Unjudged::Blocked { by, why }), None) => {
            blocked_by = Some(by.to_string());
            (
                Status::Blocked,
                "not run".into(),
                Some(format!("{why} (see {by})")),
            )
        }
    };
    let evidence = cx.take_evidence();
    let calls = if status == Status::Pass {
        Vec::new()
    } else {
        cx.take_calls()
    };
    CaseResult {
        plugin: cx.plugin.clone(),
        id: check.id.into(),
        category: check.category().into(),
        level,
        version: cx.version,
        status,
        message,
        reason,
        blocked_by,
        clause: rule.clause.clone(),
        quote: rule.quote.clone(),
        basis: rule.basis,
        summary: check.summary.into(),
        evidence: if status == Status::Pass {
            Vec::new()
        } else {
            evidence
        },
        duration_ms: started.elapsed().as_millis() as u64,
        calls,
        timings: cx.timings(),
    }
}

/// The (check, version) cases of the catalog for this run, in order.
fn cases(
    catalog: &[Check],
    versions: &[Version],
    kind: PluginKind,
    filter: Option<&str>,
) -> Vec<(usize, Version)> {
    let mut queue = Vec::new();
    for (i, check) in catalog.iter().enumerate() {
        if check.run().is_none() || filter.is_some_and(|f| !check.id.contains(f)) {
            continue;
        }
        let applicable: Vec<Version> = versions
            .iter()
            .copied()
            // Chained plugins need a list.
            .filter(|v| {
                check.rule(*v, kind).is_some() && (kind != PluginKind::Chained || v.has_lists())
            })
            .collect();
        // Costly checks whose subject does not vary by version run once.
        let chosen = match (check.once, applicable.last()) {
            (true, Some(newest)) => vec![*newest],
            _ => applicable,
        };
        queue.extend(chosen.into_iter().map(|v| (i, v)));
    }
    queue
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
    let versions: Vec<Version> = advertised
        .iter()
        .filter_map(|v| v.parse().ok())
        .filter(|v| opts.versions.as_ref().is_none_or(|only| only.contains(v)))
        .collect();
    if versions.is_empty() {
        return Err(RunError::NothingSelected {
            why: match &opts.versions {
                Some(only) => format!(
                    "it advertises {}; --versions asked for {}",
                    advertised.join(", "),
                    Version::list(only)
                ),
                None => format!(
                    "it advertises {}, none of which this harness knows ({})",
                    advertised.join(", "),
                    Version::list(&Version::ALL)
                ),
            },
        });
    }
    let catalog = checks::catalog();
    let mut queue = cases(&catalog, &versions, profile.kind, opts.filter.as_deref());
    if let Some(only) = &opts.only {
        queue.retain(|(i, v)| only.iter().any(|(id, ov)| id == catalog[*i].id && ov == v));
    }
    if queue.is_empty() {
        return Err(RunError::NothingSelected {
            why: format!(
                "no implemented check{} applies to a plugin of kind {} at {}",
                opts.filter
                    .as_ref()
                    .map(|f| format!(" whose ID contains {f:?}"))
                    .unwrap_or_default(),
                profile.kind,
                Version::list(&versions)
            ),
        });
    }
    let queue = Mutex::new(VecDeque::from(queue));
    let results = Mutex::new(Vec::new());
    let breaker = std::sync::Arc::new(crate::runtime::exec::Breaker::new(GIVE_UP_AFTER));
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                loop {
                    // A statement of its own: the queue is unlocked while
                    // the case runs.
                    let Some((i, version)) = queue.lock().expect("queue").pop_front() else {
                        return;
                    };
                    let check = &catalog[i];
                    let run = check.run().expect("queued checks run");
                    let rule = check
                        .rule(version, profile.kind)
                        .expect("queued cases have a rule");
                    let cx = Cx::new(
                        &plugin_type,
                        profile.clone(),
                        version,
                        cni_path.clone(),
                        opts.timeout,
                        opts.spy_dir.clone(),
                    )
                    .with_breaker(breaker.clone())
                    .with_kill_points(opts.kill_points);
                    let started = Instant::now();
                    let judged = run(&cx);
                    let r = outcome(check, rule, &cx, judged, cx.take_deferred(), started);
                    progress(&r);
                    results.lock().expect("results").push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    // Catalog order, then version order: stable reports whatever the jobs.
    results.sort_by(|(a, ra), (b, rb)| a.cmp(b).then(ra.version.cmp(&rb.version)));
    Ok(PluginReport {
        plugin: plugin.display().to_string(),
        profile: profile.name,
        versions,
        error: None,
        results: results.into_iter().map(|(_, r)| r).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn advertised_versions_from_every_kind_of_answer() {
        let ok = json!({"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0"]});
        assert_eq!(advertised(&ok), ["0.4.0", "1.0.0"]);
        let legacy = json!({"code": 4, "msg": "unknown CNI_COMMAND: VERSION"});
        assert_eq!(advertised(&legacy), ["0.1.0"]);
        assert_eq!(advertised(&Value::Null).len(), Version::ALL.len());
    }

    #[test]
    fn costly_checks_run_once_and_chained_plugins_start_at_lists() {
        let catalog = checks::catalog();
        let all = Version::ALL.to_vec();
        let q = cases(
            &catalog,
            &all,
            PluginKind::Interface,
            Some("concurrency.parallel-add"),
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].1, Version::NEWEST);
        let chained = cases(&catalog, &all, PluginKind::Chained, Some("add.succeeds"));
        assert_eq!(chained.first().map(|c| c.1), Some(Version::V0_3_0));
        assert!(cases(&catalog, &all, PluginKind::Ipam, Some("nothing-matches")).is_empty());
    }
}
