//! The `CNI_*` environment: which verb, which attachment, and its validation
//! per spec 1.1 (container ID grammar, interface name rules, which variables
//! each verb needs).

use std::path::PathBuf;

use super::error::CniError;

/// The verbs of spec 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }

    /// Variables the verb cannot run without. `CNI_NETNS` is optional on DEL
    /// (the namespace may already be gone); STATUS and GC concern the whole
    /// network, not an attachment.
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Version | Command::Status | Command::Gc => &[],
        }
    }

    /// Whether the verb concerns one attachment (and so reads its variables).
    pub fn is_per_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// The validated environment of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub command: Command,
    /// Set for ADD, DEL and CHECK.
    pub container_id: Option<String>,
    /// Set for ADD and CHECK; for DEL only when the runtime passed one.
    pub netns: Option<String>,
    pub ifname: Option<String>,
    /// Raw `CNI_ARGS`, parsed by [`super::args`].
    pub args: String,
    pub path: Vec<PathBuf>,
}

impl Environment {
    /// Reads the process environment.
    pub fn from_process() -> Result<Environment, CniError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads through `lookup`; an empty value counts as unset, as in libcni.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Environment, CniError> {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let command = match get("CNI_COMMAND") {
            None => return Err(CniError::env("CNI_COMMAND is not set")),
            Some(c) => Command::parse(&c)
                .ok_or_else(|| CniError::env(format!("CNI_COMMAND has an unknown value: {c}")))?,
        };
        let missing: Vec<&str> = command
            .required()
            .iter()
            .copied()
            .filter(|k| get(k).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(CniError::env(format!(
                "required environment variables missing: {}",
                missing.join(", ")
            )));
        }
        let per_attachment = command.is_per_attachment();
        let attachment_var = |k: &str| if per_attachment { get(k) } else { None };
        let container_id = attachment_var("CNI_CONTAINERID");
        if let Some(id) = &container_id {
            validate_container_id(id)?;
        }
        let ifname = attachment_var("CNI_IFNAME");
        if let Some(name) = &ifname {
            validate_ifname(name)?;
        }
        Ok(Environment {
            command,
            container_id,
            netns: attachment_var("CNI_NETNS"),
            ifname,
            args: if per_attachment {
                get("CNI_ARGS").unwrap_or_default()
            } else {
                String::new()
            },
            path: get("CNI_PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .filter(|d| !d.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The container ID; present for every per-attachment verb.
    pub fn container_id(&self) -> &str {
        self.container_id.as_deref().unwrap_or_default()
    }

    /// The interface name; present for every per-attachment verb.
    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or_default()
    }
}

/// The identifier grammar shared by container IDs and network names (1.0.0+):
/// an ASCII alphanumeric, then alphanumerics, `_`, `.` and `-`. It admits no
/// path separator, so neither can escape a directory.
pub fn is_valid_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    if is_valid_identifier(id) {
        Ok(())
    } else {
        Err(CniError::env(
            "CNI_CONTAINERID must start with a letter or digit and contain only letters, digits, '_', '.' and '-'",
        )
        .with_details(id))
    }
}

/// Linux interface name rules: 1 to 15 bytes, not `.` or `..`, no `/`, `:`
/// or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let problem = if name.len() > 15 {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    };
    match problem {
        Some(p) => Err(CniError::env(format!("CNI_IFNAME {p}")).with_details(name)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::code;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Environment, CniError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn missing_variables_are_all_named() {
        let err = env(&[("CNI_COMMAND", "ADD")]).unwrap_err();
        assert_eq!(err.code, code::INVALID_ENV);
        for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
            assert!(err.msg.contains(var), "{}", err.msg);
        }
    }

    #[test]
    fn del_does_not_need_netns_and_gc_needs_no_attachment() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert_eq!(e.netns, None);
        let e = env(&[("CNI_COMMAND", "GC"), ("CNI_CONTAINERID", "bad/id")]).unwrap();
        assert_eq!(e.container_id, None, "GC ignores attachment variables");
        assert!(env(&[("CNI_COMMAND", "STATUS")]).is_ok());
    }

    #[test]
    fn unknown_and_missing_command() {
        let err = env(&[("CNI_COMMAND", "FROB")]).unwrap_err();
        assert!(err.msg.contains("CNI_COMMAND") && err.msg.contains("FROB"));
        assert!(env(&[]).unwrap_err().msg.contains("CNI_COMMAND"));
    }

    #[test]
    fn identifier_grammar() {
        for ok in ["a", "0", "a_b.c-d", &"f".repeat(64), "10.82.0.2"] {
            assert!(is_valid_identifier(ok), "{ok}");
        }
        for bad in [
            "", "-abc", "_a", "a/b", "a b", "ab:c", "ä", "../x", ".", "..",
        ] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn ifname_rules() {
        assert!(validate_ifname("abcdefghijklmno").is_ok());
        for bad in ["abcdefghijklmnop", ".", "..", "a/b", "a:b", "a b", "eth\t0"] {
            let err = validate_ifname(bad).unwrap_err();
            assert_eq!(err.code, code::INVALID_ENV);
            assert!(err.msg.contains("CNI_IFNAME"), "{}", err.msg);
        }
    }
}
