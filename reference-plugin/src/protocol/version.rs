//! CNI specification versions and what each one allows.

use std::fmt;

/// A spec version this project speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V0_1_0,
    V0_2_0,
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

/// How a result is laid out in a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFamily {
    /// 0.1.0 and 0.2.0: `ip4`/`ip6` objects.
    Legacy,
    /// 0.3.0, 0.3.1, 0.4.0: `ips[]` with a `version` field.
    Versioned,
    /// 1.0.0 and 1.1.0: `ips[]` without `version`.
    Modern,
}

impl Version {
    pub const ALL: [Version; 7] = [
        Version::V0_1_0,
        Version::V0_2_0,
        Version::V0_3_0,
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];

    /// The newest version; answered by VERSION when the input names none.
    pub const LATEST: Version = Version::V1_1_0;

    /// Parses an exact version string. A config without `cniVersion` is 0.1.0
    /// (libcni's reading), which callers handle before calling this.
    pub fn parse(s: &str) -> Option<Version> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1_0 => "0.1.0",
            Version::V0_2_0 => "0.2.0",
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    pub fn family(self) -> ResultFamily {
        match self {
            Version::V0_1_0 | Version::V0_2_0 => ResultFamily::Legacy,
            Version::V0_3_0 | Version::V0_3_1 | Version::V0_4_0 => ResultFamily::Versioned,
            Version::V1_0_0 | Version::V1_1_0 => ResultFamily::Modern,
        }
    }

    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    pub fn has_gc_and_status(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Whether a result may carry more than one address per family.
    pub fn has_multiple_ips(self) -> bool {
        self >= Version::V0_3_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_every_version() {
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()), Some(v));
        }
        assert_eq!(Version::parse("9.9.9"), None);
        assert_eq!(Version::parse("1.0"), None);
    }

    #[test]
    fn verbs_by_version() {
        assert!(!Version::V0_3_1.has_check());
        assert!(Version::V0_4_0.has_check());
        assert!(!Version::V1_0_0.has_gc_and_status());
        assert!(Version::V1_1_0.has_gc_and_status());
    }
}
