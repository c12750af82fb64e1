//! The rules behind each check, by spec version: the level the text at
//! that version gives it, the clause and a short quote of the sentence.
//! They are data, `harness/catalog/*.toml` (one file per ID prefix; the
//! format is in `harness/catalog/README.md`), compiled in.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::profile::PluginKind;
use crate::spec::{Version, VersionRange};

/// RFC 2119 levels, and INFO for robustness findings the text does not
/// state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "MAY")]
    May,
    #[serde(rename = "INFO")]
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
            Level::Info => "INFO",
        })
    }
}

/// Whether one sentence states the rule, or several imply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    #[default]
    Stated,
    Derived,
}

/// One row of a check's table.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub check: String,
    pub versions: VersionRange,
    pub level: Level,
    /// Only these kinds (`None`: every kind the check applies to).
    pub kinds: Option<Vec<PluginKind>>,
    pub clause: String,
    pub quote: String,
    pub basis: Basis,
}

impl Rule {
    pub fn covers(&self, version: Version, kind: PluginKind) -> bool {
        self.versions.contains(version) && self.kinds.as_ref().is_none_or(|k| k.contains(&kind))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRow {
    check: String,
    versions: String,
    level: Level,
    #[serde(default)]
    kinds: Option<Vec<PluginKind>>,
    clause: String,
    quote: String,
    #[serde(default)]
    basis: Basis,
}

/// `0.4.0`, `0.3.0-0.4.0`, `1.0.0+`.
pub fn parse_range(text: &str) -> Result<VersionRange, String> {
    let text = text.trim();
    let range = if let Some(since) = text.strip_suffix('+') {
        VersionRange {
            since: since.parse().map_err(|e| format!("{e}"))?,
            until: Version::NEWEST,
        }
    } else if let Some((a, b)) = text.split_once('-') {
        VersionRange {
            since: a.parse().map_err(|e| format!("{e}"))?,
            until: b.parse().map_err(|e| format!("{e}"))?,
        }
    } else {
        let v: Version = text.parse().map_err(|e| format!("{e}"))?;
        VersionRange { since: v, until: v }
    };
    if range.since > range.until {
        return Err(format!("{text}: an empty range"));
    }
    Ok(range)
}

/// The rule files, by category.
pub const FILES: [(&str, &str); 17] = [
    ("version", include_str!("../../catalog/version.toml")),
    ("env", include_str!("../../catalog/env.toml")),
    ("config", include_str!("../../catalog/config.toml")),
    ("add", include_str!("../../catalog/add.toml")),
    ("check", include_str!("../../catalog/check.toml")),
    ("del", include_str!("../../catalog/del.toml")),
    ("error", include_str!("../../catalog/error.toml")),
    ("ipam", include_str!("../../catalog/ipam.toml")),
    ("delegation", include_str!("../../catalog/delegation.toml")),
    ("leak", include_str!("../../catalog/leak.toml")),
    ("attachment", include_str!("../../catalog/attachment.toml")),
    ("chain", include_str!("../../catalog/chain.toml")),
    (
        "concurrency",
        include_str!("../../catalog/concurrency.toml"),
    ),
    ("gc", include_str!("../../catalog/gc.toml")),
    ("status", include_str!("../../catalog/status.toml")),
    ("fault", include_str!("../../catalog/fault.toml")),
    ("runtime", include_str!("../../catalog/runtime.toml")),
];

/// Reads every rule file; an error names the file and the rule.
pub fn load(files: &[(&str, &str)]) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (category, text) in files {
        let file: RuleFile =
            toml::from_str(text).map_err(|e| format!("catalog/{category}.toml: {e}"))?;
        for r in file.rule {
            if r.check.split('.').next() != Some(*category) {
                return Err(format!(
                    "catalog/{category}.toml: {} is not an {category} check",
                    r.check
                ));
            }
            let versions = parse_range(&r.versions)
                .map_err(|e| format!("catalog/{category}.toml: {}: {e}", r.check))?;
            rules.push(Rule {
                check: r.check,
                versions,
                level: r.level,
                kinds: r.kinds,
                clause: r.clause,
                quote: r.quote,
                basis: r.basis,
            });
        }
    }
    Ok(rules)
}

/// Every rule of the catalog.
pub fn all() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| load(&FILES).expect("the catalog's rule files are valid"))
}

/// The rules of one check, in version order.
pub fn of(check: &str) -> Vec<&'static Rule> {
    let mut rules: Vec<&Rule> = all().iter().filter(|r| r.check == check).collect();
    rules.sort_by_key(|r| r.versions.since);
    rules
}

/// The rule in force for a check that judges no plugin kind (`runtime.*`).
pub fn at_any(check: &str, version: Version) -> Option<&'static Rule> {
    all()
        .iter()
        .find(|r| r.check == check && r.versions.contains(version))
}

/// The rule in force for `check` at `version` for a plugin of `kind`.
pub fn at(check: &str, version: Version, kind: PluginKind) -> Option<&'static Rule> {
    all()
        .iter()
        .find(|r| r.check == check && r.covers(version, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(
            parse_range("0.3.0-0.4.0").unwrap(),
            VersionRange {
                since: Version::V0_3_0,
                until: Version::V0_4_0
            }
        );
        assert_eq!(parse_range("1.0.0+").unwrap().until, Version::NEWEST);
        assert_eq!(parse_range("0.4.0").unwrap().since, Version::V0_4_0);
        assert!(parse_range("1.0.0-0.4.0").is_err());
        assert!(parse_range("2.0.0").is_err());
    }

    #[test]
    fn a_rule_names_a_check_of_its_file() {
        let bad = "[[rule]]\ncheck = \"del.x\"\nversions = \"0.4.0\"\nlevel = \"MUST\"\nclause = \"c\"\nquote = \"q\"\n";
        assert!(
            load(&[("add", bad)])
                .unwrap_err()
                .contains("not an add check")
        );
    }
}
