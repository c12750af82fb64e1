//! The conformance catalog: every check with a stable ID, an RFC 2119
//! level, the spec clause it enforces, the versions and plugin kinds it
//! applies to, and one sentence saying what it proves. One module per ID
//! prefix; each ends with its rows of the catalog.
//!
//! Checks judge only from a plugin's raw output, the schemas and kernel
//! snapshots; nothing here links the reference plugins. A check is a
//! function of a [`Cx`] returning a [`Judged`]: a [`Finding`] about the
//! plugin, or why there is none ([`Unjudged`]).

mod add;
mod attachment;
mod chain;
mod check;
mod concurrency;
mod config;
mod context;
mod del;
mod delegation;
mod env;
mod error;
mod fault;
mod gc;
mod ipam;
pub mod judge;
mod leak;
mod outcome;
mod say;
mod status;
mod version;

use std::fmt;

pub use context::Cx;
pub use outcome::{CaseError, Finding, Judged, Unjudged};

use crate::profile::PluginKind;
use crate::spec::{Version, VersionRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "MAY")]
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// Where a check's rule is written: a section of SPEC.md (or
/// CONVENTIONS.md) and the checklist assertions it derives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clause {
    pub doc: &'static str,
    /// The section's anchor (`add`, `check`, `lifecycle`).
    pub section: &'static str,
    /// The checklist's assertion IDs (`ADD-011`, `L-2, CON-001`).
    pub refs: &'static str,
}

/// `SPEC.md#section (refs)`.
pub const fn spec(section: &'static str, refs: &'static str) -> Clause {
    Clause {
        doc: "SPEC.md",
        section,
        refs,
    }
}

/// `CONVENTIONS.md#section (refs)`.
pub const fn conventions(section: &'static str, refs: &'static str) -> Clause {
    Clause {
        doc: "CONVENTIONS.md",
        section,
        refs,
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{} ({})", self.doc, self.section, self.refs)
    }
}

pub type CheckFn = fn(&Cx) -> Judged;

/// A check is implemented or says why it is not yet.
#[derive(Clone, Copy)]
pub enum Impl {
    Run(CheckFn),
    NotYet(&'static str),
}

pub struct Check {
    pub id: &'static str,
    pub level: Level,
    /// Before this version the requirement is only a SHOULD (the spec
    /// tightened it later); `None` when the level holds in every version.
    pub must_since: Option<Version>,
    pub clause: Clause,
    pub versions: VersionRange,
    pub kinds: &'static [PluginKind],
    pub summary: &'static str,
    pub imp: Impl,
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
pub const CHAINED: &[PluginKind] = &[PluginKind::Chained];

/// A catalog row: a check at `level` for every version and kind; narrow
/// it with the builder methods.
pub fn row(
    id: &'static str,
    level: Level,
    clause: Clause,
    summary: &'static str,
    run: CheckFn,
) -> Check {
    Check {
        id,
        level,
        must_since: None,
        clause,
        versions: VersionRange::ALL,
        kinds: ALL_KINDS,
        summary,
        imp: Impl::Run(run),
        ipam_should: false,
        once: false,
    }
}

/// A documented check that is not implemented yet, and why.
pub fn not_yet(
    id: &'static str,
    level: Level,
    clause: Clause,
    summary: &'static str,
    why: &'static str,
) -> Check {
    Check {
        imp: Impl::NotYet(why),
        ..row(id, level, clause, summary, |_| unreachable!("not run"))
    }
}

impl Check {
    pub fn since(mut self, v: Version) -> Check {
        self.versions.since = v;
        self
    }

    pub fn until(mut self, v: Version) -> Check {
        self.versions.until = v;
        self
    }

    pub fn kinds(mut self, k: &'static [PluginKind]) -> Check {
        self.kinds = k;
        self
    }

    pub fn must_since(mut self, v: Version) -> Check {
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

    /// The function to run, if implemented.
    pub fn run(&self) -> Option<CheckFn> {
        match self.imp {
            Impl::Run(f) => Some(f),
            Impl::NotYet(_) => None,
        }
    }

    /// The category: the ID up to its first dot.
    pub fn category(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    /// Whether the check runs for this version and kind.
    pub fn applies(&self, version: Version, kind: PluginKind) -> bool {
        self.versions.contains(version) && self.kinds.contains(&kind)
    }

    /// The level in force for `version` and `kind`.
    pub fn level_for(&self, version: Version, kind: PluginKind) -> Level {
        match self.must_since {
            Some(since) if version < since => Level::Should,
            _ if self.ipam_should && kind == PluginKind::Ipam => Level::Should,
            _ => self.level,
        }
    }
}

/// The whole catalog, in report order.
pub fn catalog() -> Vec<Check> {
    [
        version::checks(),
        env::checks(),
        config::checks(),
        add::checks(),
        check::checks(),
        del::checks(),
        error::checks(),
        ipam::checks(),
        delegation::checks(),
        leak::checks(),
        attachment::checks(),
        chain::checks(),
        concurrency::checks(),
        gc::checks(),
        status::checks(),
        fault::checks(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The catalog entry with this ID.
pub fn by_id(id: &str) -> Option<Check> {
    catalog().into_iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_well_formed_and_in_their_module() {
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
                !c.summary.is_empty() && !c.clause.refs.is_empty(),
                "{}",
                c.id
            );
            assert!(c.versions.since <= c.versions.until, "{}", c.id);
        }
        // Categories come in blocks, one module each, in catalog order.
        let mut seen: Vec<&str> = Vec::new();
        for c in &all {
            if seen.last() != Some(&c.category()) {
                assert!(!seen.contains(&c.category()), "{} out of its block", c.id);
                seen.push(c.category());
            }
        }
    }
}
