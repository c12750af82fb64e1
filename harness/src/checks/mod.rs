//! The conformance catalog: every check with a stable ID, an RFC 2119
//! level, the spec clause it enforces, the versions and plugin kinds it
//! applies to, and one sentence saying what it proves.
//!
//! Checks judge only from a plugin's raw output, the schemas and kernel
//! snapshots; nothing here links the reference plugins.

mod case;
mod del;
mod delegation;
mod env;
mod errors;
mod ipam;
mod lifecycle;
mod say;
mod verbs;
mod version;

pub use case::{Case, CaseError};

use crate::profile::PluginKind;
use crate::runtime::config::version_key;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "MAY")]
    May,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// What a check found in one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Pass(String),
    /// The plugin did not do what the clause asks.
    Deviation(String),
    /// Does not apply, with the reason.
    Skip(String),
}

pub type CheckFn = fn(&mut Case) -> Result<Finding, CaseError>;

pub struct Check {
    pub id: &'static str,
    pub level: Level,
    /// Before this version the requirement is only a SHOULD (the spec
    /// tightened it later); `None` when the level holds in every version.
    pub must_since: Option<&'static str>,
    /// SPEC.md section and the assertion it derives from.
    pub clause: &'static str,
    pub since: &'static str,
    pub until: Option<&'static str>,
    pub kinds: &'static [PluginKind],
    pub summary: &'static str,
    /// `None`: documented but not implemented yet (see `not_yet`).
    pub run: Option<CheckFn>,
    pub not_yet: Option<&'static str>,
    /// For IPAM plugins the requirement is only a SHOULD (they are not
    /// called by runtimes directly).
    pub ipam_should: bool,
    /// Run in the newest applicable version only (costly checks whose
    /// subject does not change with the version).
    pub once: bool,
}

pub const ALL_KINDS: &[PluginKind] =
    &[PluginKind::Interface, PluginKind::Ipam, PluginKind::Chained];
pub const INTERFACE: &[PluginKind] = &[PluginKind::Interface];
pub const ATTACHING: &[PluginKind] = &[PluginKind::Interface, PluginKind::Chained];
pub const IPAM: &[PluginKind] = &[PluginKind::Ipam];

/// A check at `level` for every version and kind; narrow it with the
/// builder methods.
pub fn check(
    id: &'static str,
    level: Level,
    clause: &'static str,
    summary: &'static str,
    run: CheckFn,
) -> Check {
    Check {
        id,
        level,
        must_since: None,
        clause,
        since: "0.1.0",
        until: None,
        kinds: ALL_KINDS,
        summary,
        run: Some(run),
        not_yet: None,
        ipam_should: false,
        once: false,
    }
}

/// A documented check that is not implemented yet, and why.
pub fn not_yet(
    id: &'static str,
    level: Level,
    clause: &'static str,
    summary: &'static str,
    why: &'static str,
) -> Check {
    Check {
        run: None,
        not_yet: Some(why),
        ..check(id, level, clause, summary, |_| unreachable!())
    }
}

impl Check {
    pub fn since(mut self, v: &'static str) -> Check {
        self.since = v;
        self
    }

    pub fn until(mut self, v: &'static str) -> Check {
        self.until = Some(v);
        self
    }

    pub fn kinds(mut self, k: &'static [PluginKind]) -> Check {
        self.kinds = k;
        self
    }

    pub fn must_since(mut self, v: &'static str) -> Check {
        self.must_since = Some(v);
        self
    }

    pub fn ipam_should(mut self) -> Check {
        self.ipam_should = true;
        self
    }

    pub fn once(mut self) -> Check {
        self.once = true;
        self
    }

    /// The category: the ID up to its first dot.
    pub fn category(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    /// Whether the check runs for this version and kind.
    pub fn applies(&self, version: &str, kind: PluginKind) -> bool {
        let v = version_key(version);
        v >= version_key(self.since)
            && self.until.is_none_or(|u| v <= version_key(u))
            && self.kinds.contains(&kind)
    }

    /// The level in force for `version` and `kind`.
    pub fn level_for(&self, version: &str, kind: PluginKind) -> Level {
        match self.must_since {
            Some(since) if version_key(version) < version_key(since) => Level::Should,
            _ if self.ipam_should && kind == PluginKind::Ipam => Level::Should,
            _ => self.level,
        }
    }
}

/// The whole catalog, in report order.
pub fn catalog() -> Vec<Check> {
    let mut all = Vec::new();
    all.extend(version::checks());
    all.extend(env::checks());
    all.extend(verbs::checks());
    all.extend(del::checks());
    all.extend(errors::checks());
    all.extend(ipam::checks());
    all.extend(delegation::checks());
    all.extend(lifecycle::checks());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let all = catalog();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate check IDs");
        for c in &all {
            assert!(
                c.id.contains('.')
                    && c.id.chars().all(|ch| ch.is_ascii_lowercase()
                        || ch.is_ascii_digit()
                        || ch == '.'
                        || ch == '-'),
                "{}",
                c.id
            );
            assert!(
                c.run.is_some() != c.not_yet.is_some(),
                "{}: either implemented or explained",
                c.id
            );
            assert!(
                !c.summary.is_empty() && c.clause.contains(".md#"),
                "{}",
                c.id
            );
        }
    }
}
