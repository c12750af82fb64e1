//! Where a report comes from: which harness and catalog, which plugin
//! binaries (by hash), which kernel, which options, when, in which mode.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How the run judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// MUST deviations (and xpasses) fail the run.
    #[default]
    Normal,
    /// SHOULD deviations fail the run too.
    Strict,
    /// Every implemented check at every advertised version, no
    /// expectations, no filter; SHOULD deviations fail the run.
    Certification,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    pub path: String,
    /// Empty when the file could not be read (a runtime, a missing file).
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub harness_version: String,
    /// Checks in the catalog (plugin and runtime checks).
    pub catalog_checks: usize,
    /// sha256 of the catalog's check IDs and rule files.
    pub catalog_hash: String,
    pub judged: Vec<Judged>,
    /// `uname -r`.
    pub kernel: String,
    /// The command line after the program name.
    pub options: Vec<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectations: Option<String>,
    /// Cases the harness could not carry out, and plugins it could not run.
    pub cases_not_run: usize,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash of what decides verdicts: every check ID and every rule file.
pub fn catalog_hash() -> (usize, String) {
    let mut ids: Vec<&str> = crate::checks::catalog().iter().map(|c| c.id).collect();
    ids.extend(crate::runtimes::verdicts::catalog().iter().map(|c| c.id));
    let mut text = ids.join("\n");
    for (name, body) in crate::checks::rules::FILES {
        text.push_str(name);
        text.push_str(body);
    }
    (ids.len(), sha256_hex(text.as_bytes()))
}

impl Provenance {
    /// The provenance of a run starting now over `judged` (paths).
    pub fn now(judged: &[&Path], options: Vec<String>, mode: Mode) -> Provenance {
        let (catalog_checks, catalog_hash) = catalog_hash();
        Provenance {
            harness_version: env!("CARGO_PKG_VERSION").into(),
            catalog_checks,
            catalog_hash,
            judged: judged
                .iter()
                .map(|p| Judged {
                    path: p.display().to_string(),
                    sha256: std::fs::read(p).map(|b| sha256_hex(&b)).unwrap_or_default(),
                })
                .collect(),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            options,
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            mode,
            expectations: None,
            cases_not_run: 0,
        }
    }

    /// One line for the top of a human report.
    pub fn headline(&self) -> String {
        let mode = match self.mode {
            Mode::Normal => String::new(),
            Mode::Strict => " STRICT run (SHOULD deviations fail it),".into(),
            Mode::Certification => {
                " CERTIFICATION run (every check, every advertised version, no expectations; SHOULD deviations fail it),".into()
            }
        };
        format!(
            "cni-conformance {} (catalog {} checks, {}),{mode} kernel {}, started {}",
            self.harness_version,
            self.catalog_checks,
            &self.catalog_hash[..self.catalog_hash.len().min(12)],
            self.kernel,
            self.started_at
        )
    }
}
