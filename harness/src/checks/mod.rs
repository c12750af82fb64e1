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
pub mod fault;
mod gc;
mod ipam;
pub mod judge;
mod leak;
mod outcome;
pub mod rules;
mod say;
mod status;
mod version;

pub use context::{Cx, Timings};
pub use outcome::{CaseError, Finding, Judged, Unjudged};
pub use rules::{Basis, Level, Rule};

use crate::profile::PluginKind;
use crate::spec::Version;

pub type CheckFn = fn(&Cx) -> Judged;

/// A check is implemented or says why it is not yet.
#[derive(Clone, Copy)]
pub enum Impl {
    Run(CheckFn),
    NotYet(&'static str),
}

impl Impl {
    /// Why it is not implemented yet, if it is not.
    pub fn not_yet(&self) -> Option<&'static str> {
        match self {
            Impl::NotYet(why) => Some(why),
            Impl::Run(_) => None,
        }
    }
}

pub struct Check {
    pub id: &'static str,
    /// The checklist's assertion IDs it derives from (`ADD-011`).
    pub refs: &'static str,
    /// The plugin kinds it can judge; its rules may narrow them.
    pub kinds: &'static [PluginKind],
    pub summary: &'static str,
    pub imp: Impl,
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

/// A catalog row: a check for every kind; its rules (`catalog/*.toml`)
/// say at which versions and levels.
pub fn row(id: &'static str, refs: &'static str, summary: &'static str, run: CheckFn) -> Check {
    Check {
        id,
        refs,
        kinds: ALL_KINDS,
        summary,
        imp: Impl::Run(run),
        once: false,
    }
}

/// A documented check that is not implemented yet, and why.
pub fn not_yet(
    id: &'static str,
    refs: &'static str,
    summary: &'static str,
    why: &'static str,
) -> Check {
    Check {
        imp: Impl::NotYet(why),
        ..row(id, refs, summary, |_| unreachable!("not run"))
    }
}

impl Check {
    pub fn kinds(mut self, k: &'static [PluginKind]) -> Check {
        self.kinds = k;
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

    /// Its rules, in version order.
    pub fn rules(&self) -> Vec<&'static Rule> {
        rules::of(self.id)
    }

    /// The rule in force for this version and kind; the check applies
    /// exactly where there is one.
    pub fn rule(&self, version: Version, kind: PluginKind) -> Option<&'static Rule> {
        if !self.kinds.contains(&kind) {
            return None;
        }
        rules::at(self.id, version, kind)
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
            assert!(!c.summary.is_empty() && !c.refs.is_empty(), "{}", c.id);
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

    /// Every implemented check has, for every version and kind it applies
    /// to, exactly one rule with a level, a clause and a quote; every rule
    /// names a check that exists (`runtime.*` rules: a runtime check).
    #[test]
    fn every_implemented_check_has_a_level_clause_and_quote_wherever_it_applies() {
        let all = catalog();
        let runtime_checks = crate::runtimes::verdicts::catalog();
        for r in rules::all() {
            if r.check.starts_with("runtime.") {
                assert!(
                    runtime_checks.iter().any(|c| c.id == r.check),
                    "a rule for an unknown runtime check {}",
                    r.check
                );
                assert!(
                    !r.quote.trim().is_empty() && r.clause.starts_with("SPEC.md"),
                    "{r:?}"
                );
                continue;
            }
            let check = all.iter().find(|c| c.id == r.check);
            assert!(check.is_some(), "a rule for an unknown check {}", r.check);
            assert!(
                check.is_some_and(|c| c.run().is_some()),
                "a rule for {}, which is not implemented",
                r.check
            );
            assert!(
                !r.quote.trim().is_empty() && !r.clause.trim().is_empty(),
                "{r:?}"
            );
            assert!(
                r.clause.starts_with("SPEC.md") || r.clause.starts_with("CONVENTIONS.md"),
                "{r:?}"
            );
        }
        for c in all.iter().filter(|c| c.run().is_some()) {
            let mut applies = false;
            for v in Version::ALL {
                for k in c.kinds {
                    let covering: Vec<&Rule> =
                        c.rules().into_iter().filter(|r| r.covers(v, *k)).collect();
                    assert!(
                        covering.len() <= 1,
                        "{} has overlapping rules at {v} for {k}",
                        c.id
                    );
                    applies |= !covering.is_empty();
                }
            }
            assert!(applies, "{} has no rule: it never applies", c.id);
        }
    }
}
