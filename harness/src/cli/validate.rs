//! `cni-conformance validate`: one document against its schema.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use cni_conformance::schema::{self, Kind};
use serde_json::Value;

/// Exit 0 valid, 1 invalid; usage and I/O problems are errors (exit 2).
pub(crate) fn validate(kind: Kind, version: Option<&str>, file: &Path) -> Result<bool> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    let doc: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            out!("invalid: not a JSON document: {e}");
            return Ok(false);
        }
    };
    // Without --version, the document's own cniVersion (absent means 0.1.0).
    let version = version.map(str::to_string).unwrap_or_else(|| {
        doc.get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or(cni_conformance::spec::Version::V0_1_0.as_str())
            .to_string()
    });
    let name = schema::schema_name(kind, &version)?;
    let violations = schema::validate_against(name, &doc);
    if violations.is_empty() {
        out!("valid ({name})");
        return Ok(true);
    }
    out!("invalid ({name}):");
    for v in violations {
        out!("  {v}");
    }
    Ok(false)
}
