//! Values as people read them in a report: never `Some(..)` or `None`.

use std::fmt::Display;

/// An error code from a plugin's answer: "code 11", or "no error object".
pub(super) fn code(code: Option<u64>) -> String {
    code.map_or_else(|| "no error object".into(), |c| format!("code {c}"))
}

/// Several codes, one per call: "code 6, no error object".
pub(super) fn codes(codes: &[Option<u64>]) -> String {
    codes
        .iter()
        .map(|c| code(*c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An optional value, or what its absence means.
pub(super) fn or<T: Display>(value: Option<T>, absent: &str) -> String {
    value.map_or_else(|| absent.into(), |v| v.to_string())
}

/// A list of values, comma-separated; "none" when empty.
pub(super) fn list<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let all: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// A failed call in one line: "exit status 1, code 999: msg", or the exit
/// and what it printed when that is no error object.
pub(super) fn failure(outcome: &crate::runtime::Outcome) -> String {
    match outcome.error() {
        Some(e) => format!("{}, code {}: {}", outcome.exit, e.code, e.msg),
        None => {
            let text = outcome.stdout_text();
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                format!("{}, nothing on stdout", outcome.exit)
            } else {
                format!("{}: {text}", outcome.exit)
            }
        }
    }
}
