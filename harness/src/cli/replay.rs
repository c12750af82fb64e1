//! Replay bundles: `run --bundle DIR` writes a folder per fail and warn
//! (the case, every plugin call in full, the evidence, a script), and
//! `replay FOLDER` runs that one case again in a fresh sandbox: exit 1
//! while it still deviates, 0 once fixed. `run --rerun-failed REPORT`
//! reruns exactly the failed cases of a saved report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cni_conformance::spec::Version;
use cni_conformance::suite::{self, CaseResult, PluginReport, RunOptions, Status};
use serde::{Deserialize, Serialize};

/// `case.json` of a bundle.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    id: String,
    version: Version,
    status: Status,
    message: String,
    clause: String,
    quote: String,
    plugin: PathBuf,
    /// A built-in profile's name; a profile file is copied as `profile.toml`.
    profile: Option<String>,
    cni_path: Vec<PathBuf>,
    timeout_secs: u64,
}

fn folder_name(r: &CaseResult) -> String {
    let plugin = Path::new(&r.plugin)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{plugin}-{}@{}", r.id, r.version)
}

/// Writes one folder per fail and warn under `dir`.
pub(crate) fn write_bundles(
    dir: &Path,
    reports: &[PluginReport],
    opts: &RunOptions,
) -> Result<usize> {
    let harness = std::env::current_exe().context("locating this binary")?;
    let mut n = 0;
    for (plugin, r) in reports
        .iter()
        .flat_map(|p| p.results.iter().map(move |r| (&p.plugin, r)))
        .filter(|(_, r)| matches!(r.status, Status::Fail | Status::Warn))
    {
        let folder = dir.join(folder_name(r));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let write = |name: &str, text: String| {
            std::fs::write(folder.join(name), text)
                .with_context(|| format!("writing {name} in {}", folder.display()))
        };
        let profile_file = opts
            .profile
            .as_deref()
            .filter(|p| p.contains('/') || p.ends_with(".toml"));
        if let Some(p) = profile_file {
            std::fs::copy(p, folder.join("profile.toml"))
                .with_context(|| format!("copying {p}"))?;
        }
        let case = Case {
            id: r.id.clone(),
            version: r.version,
            status: r.status,
            message: r.message.clone(),
            clause: r.clause.clone(),
            quote: r.quote.clone(),
            plugin: PathBuf::from(plugin),
            profile: if profile_file.is_some() {
                None
            } else {
                opts.profile.clone()
            },
            cni_path: opts.cni_path.clone(),
            timeout_secs: opts.timeout.as_secs(),
        };
        write("case.json", serde_json::to_string_pretty(&case)? + "\n")?;
        write("calls.json", serde_json::to_string_pretty(&r.calls)? + "\n")?;
        write(
            "evidence.txt",
            format!(
                "{} {} [{}] {} {}: \"{}\"\nexpected: {}\nseen: {}\n\n{}\n",
                r.status.word(),
                r.id,
                r.version,
                r.level,
                r.clause,
                r.quote,
                r.summary,
                r.message,
                r.evidence.join("\n")
            ),
        )?;
        let script = folder.join("replay.sh");
        write(
            "replay.sh",
            format!(
                "#!/bin/sh\n# Runs this case again in a fresh sandbox: exit 1 while it deviates, 0 once fixed.\n# --plugin PATH tries another build of the plugin.\nexec \"${{CNI_CONFORMANCE:-{}}}\" replay \"$(dirname \"$0\")\" \"$@\"\n",
                harness.display()
            ),
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        n += 1;
    }
    Ok(n)
}

/// `replay FOLDER`: true when the case no longer deviates.
pub(crate) fn replay(folder: &Path, plugin: Option<PathBuf>, spy_dir: &Path) -> Result<bool> {
    let path = folder.join("case.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let case: Case = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a replay bundle", path.display()))?;
    let profile_file = folder.join("profile.toml");
    let opts = RunOptions {
        cni_path: case.cni_path.clone(),
        profile: if profile_file.is_file() {
            Some(profile_file.display().to_string())
        } else {
            case.profile.clone()
        },
        versions: Some(vec![case.version]),
        filter: None,
        timeout: Duration::from_secs(case.timeout_secs),
        jobs: 1,
        spy_dir: Some(spy_dir.to_path_buf()),
        only: Some(vec![(case.id.clone(), case.version)]),
        kill_points: None,
    };
    let plugin = plugin.unwrap_or(case.plugin.clone());
    let plugin = std::path::absolute(&plugin)?;
    out!(
        "replaying {} [{}] against {} (was {}: {})",
        case.id,
        case.version,
        plugin.display(),
        case.status.word(),
        case.message
    );
    let report = suite::run_plugin(&plugin, &opts, &|_| {})
        .map_err(|e| anyhow::anyhow!("{}", suite::error_chain(&e)))?;
    let Some(r) = report.results.iter().find(|r| r.id == case.id) else {
        bail!(
            "{} [{}] did not run against {}",
            case.id,
            case.version,
            plugin.display()
        );
    };
    match r.status {
        Status::Pass => {
            out!("fixed: {} [{}] passes", r.id, r.version);
            Ok(true)
        }
        Status::Fail | Status::Warn | Status::Note => {
            out!("still deviates ({}): {}", r.status.word(), r.message);
            for e in &r.evidence {
                out!("   {e}");
            }
            Ok(false)
        }
        _ => bail!(
            "{} [{}] could not be judged: {}",
            r.id,
            r.version,
            r.reason.as_deref().unwrap_or("")
        ),
    }
}

/// (check ID, version) pairs.
pub(crate) type Cases = Vec<(String, Version)>;

/// The failed (ID, version) cases of a saved JSON report, and its plugins.
pub(crate) fn failed_cases(report: &Path) -> Result<(Vec<PathBuf>, Cases)> {
    let (reports, _) = super::saved::load(report)?;
    let failed: Cases = reports
        .iter()
        .flat_map(|p| &p.results)
        .filter(|r| matches!(r.status, Status::Fail | Status::XPass))
        .map(|r| (r.id.clone(), r.version))
        .collect();
    let plugins = reports
        .iter()
        .filter(|p| !p.plugin.starts_with("runtime "))
        .map(|p| PathBuf::from(&p.plugin))
        .collect();
    Ok((plugins, failed))
}
