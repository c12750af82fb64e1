//! Expectations: a vendor's list of deviations it knows about, versioned
//! in its own repository. A listed case that deviates as expected becomes
//! `xfail` (the run stays green); a listed case that now passes becomes
//! `xpass` and fails the run, so the list cannot go stale.
//!
//! ```toml
//! [[expect]]
//! id = "add.link-exists"
//! versions = ["0.4.0", "1.0.0"]   # optional: every version
//! expect = "fail"                  # "fail" or "warn"
//! reason = "we reuse an existing link on purpose"
//! link = "https://tracker.example/123"   # optional
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::spec::Version;
use crate::suite::{CaseResult, Status};

#[derive(Debug, thiserror::Error)]
pub enum ExpectationError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Fail,
    Warn,
}

impl Expected {
    fn status(self) -> Status {
        match self {
            Expected::Fail => Status::Fail,
            Expected::Warn => Status::Warn,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: toml::Spanned<String>,
    #[serde(default)]
    versions: Option<Vec<toml::Spanned<String>>>,
    expect: Expected,
    reason: String,
    #[serde(default)]
    link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    expect: Vec<Row>,
}

/// One entry of the file.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub id: String,
    /// `None`: every version.
    pub versions: Option<Vec<Version>>,
    pub expect: Expected,
    pub reason: String,
    pub link: Option<String>,
    /// Where it is written, for messages.
    pub line: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub path: String,
    pub entries: Vec<Expectation>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Expectations {
    /// Reads `path`; `known` tells whether a check ID exists.
    pub fn load(
        path: &Path,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<Expectations, ExpectationError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ExpectationError::Read {
            path: shown.clone(),
            source,
        })?;
        Expectations::parse(&shown, &text, known)
    }

    pub fn parse(
        path: &str,
        text: &str,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<Expectations, ExpectationError> {
        let invalid = |line: usize, message: String| ExpectationError::Invalid {
            path: path.into(),
            line,
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().to_string())
        })?;
        let mut entries = Vec::new();
        for row in file.expect {
            let line = line_of(text, row.id.span().start);
            let id = row.id.into_inner();
            if !known(&id) {
                return Err(invalid(
                    line,
                    format!("no check has the ID {id:?} (`cni-conformance list` shows them)"),
                ));
            }
            let versions = match row.versions {
                None => None,
                Some(vs) => Some(
                    vs.into_iter()
                        .map(|v| {
                            let line = line_of(text, v.span().start);
                            v.into_inner()
                                .parse::<Version>()
                                .map_err(|e| invalid(line, e.to_string()))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            if entries
                .iter()
                .any(|e: &Expectation| e.id == id && e.versions == versions)
            {
                return Err(invalid(line, format!("{id} is listed twice")));
            }
            entries.push(Expectation {
                id,
                versions,
                expect: row.expect,
                reason: row.reason,
                link: row.link,
                line,
            });
        }
        Ok(Expectations {
            path: path.into(),
            entries,
        })
    }

    fn find(&self, r: &CaseResult) -> Option<&Expectation> {
        self.entries
            .iter()
            .find(|e| e.id == r.id && e.versions.as_ref().is_none_or(|vs| vs.contains(&r.version)))
    }

    /// Marks the results an entry names: an expected deviation becomes
    /// `xfail`, a pass `xpass` (with the entry named in its message).
    pub fn apply(&self, results: &mut [CaseResult]) {
        for r in results.iter_mut() {
            let Some(e) = self.find(r) else { continue };
            let at = format!("{}:{}", self.path, e.line);
            match r.status {
                s if s == e.expect.status() => {
                    r.status = Status::XFail;
                    r.reason = Some(format!("expected by {at}: {}", e.reason));
                }
                Status::Pass => {
                    r.status = Status::XPass;
                    r.message = format!(
                        "listed as an expected {} at {at}, and now passes: remove it from the expectations file",
                        match e.expect {
                            Expected::Fail => "fail",
                            Expected::Warn => "warn",
                        }
                    );
                }
                // Another deviation than the one listed, or no verdict:
                // it stands as it is.
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str) -> bool {
        id.starts_with("add.")
    }

    #[test]
    fn an_unknown_id_names_its_line() {
        let text = "[[expect]]\nid = \"add.schema\"\nexpect = \"fail\"\nreason = \"r\"\n\n[[expect]]\nid = \"nope.nothing\"\nexpect = \"warn\"\nreason = \"r\"\n";
        let e = Expectations::parse("x.toml", text, &known).unwrap_err();
        assert!(
            matches!(e, ExpectationError::Invalid { line: 7, .. }),
            "{e}"
        );
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        let text = "[[expect]]\nid = \"add.schema\"\nexpect = \"sometimes\"\nreason = \"r\"\n";
        let e = Expectations::parse("x.toml", text, &known).unwrap_err();
        assert!(
            matches!(e, ExpectationError::Invalid { line: 3, .. }),
            "{e}"
        );
        let bad_version = "[[expect]]\nid = \"add.schema\"\nversions = [\"9.9.9\"]\nexpect = \"fail\"\nreason = \"r\"\n";
        let e = Expectations::parse("x.toml", bad_version, &known).unwrap_err();
        assert!(
            matches!(e, ExpectationError::Invalid { line: 3, .. }),
            "{e}"
        );
    }
}
