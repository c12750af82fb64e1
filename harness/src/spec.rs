//! The spec's vocabulary, owned by the harness: the seven versions, the
//! verbs, the error codes. Written here rather than shared with the
//! reference plugins: the harness judges plugins only by running them, and
//! an enum of seven names hides nothing worth sharing.

use std::fmt;
use std::str::FromStr;

/// A released version of the CNI specification, in release order.
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CNI spec version (known: {known})", known = Version::list(&Version::ALL))]
pub struct UnknownVersion(pub String);

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
    pub const NEWEST: Version = Version::V1_1_0;

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

    /// "0.1.0, 0.2.0, ..." for messages.
    pub fn list(versions: &[Version]) -> String {
        versions
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Configuration lists and list-shaped results (`ips`, `interfaces`).
    pub fn has_lists(self) -> bool {
        self >= Version::V0_3_0
    }

    /// The CHECK verb, and `prevResult` on DEL.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// The GC and STATUS verbs.
    pub fn has_gc_and_status(self) -> bool {
        self >= Version::V1_1_0
    }

    /// `ips[].version` ("4" or "6"): 0.3.0 to 0.4.0 only.
    pub fn has_ip_version_field(self) -> bool {
        (Version::V0_3_0..=Version::V0_4_0).contains(&self)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Version, UnknownVersion> {
        Version::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVersion(s.into()))
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Versions from `since` to `until`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    pub since: Version,
    pub until: Version,
}

impl VersionRange {
    pub const ALL: VersionRange = VersionRange {
        since: Version::V0_1_0,
        until: Version::NEWEST,
    };

    pub fn contains(self, v: Version) -> bool {
        (self.since..=self.until).contains(&v)
    }
}

/// As people write it: `0.4.0`, `0.3.0-0.4.0`, `1.0.0+`.
impl serde::Serialize for VersionRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.since, self.until) {
            (s, u) if s == u => write!(f, "{s}"),
            (s, Version::NEWEST) => write!(f, "{s}+"),
            (s, u) => write!(f, "{s}-{u}"),
        }
    }
}

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Verb {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "ADD",
            Verb::Del => "DEL",
            Verb::Check => "CHECK",
            Verb::Status => "STATUS",
            Verb::Gc => "GC",
            Verb::Version => "VERSION",
        }
    }

    /// The verbs that act on one attachment (and need its variables).
    pub fn per_attachment(self) -> bool {
        matches!(self, Verb::Add | Verb::Del | Verb::Check)
    }
}

impl FromStr for Verb {
    type Err = String;
    fn from_str(s: &str) -> Result<Verb, String> {
        [
            Verb::Add,
            Verb::Del,
            Verb::Check,
            Verb::Status,
            Verb::Gc,
            Verb::Version,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| format!("{s:?} is not a CNI verb"))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error codes the spec reserves (0-99), by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    IncompatibleVersion,
    UnsupportedField,
    UnknownContainer,
    InvalidEnvironment,
    Io,
    Decoding,
    InvalidConfig,
    TryAgainLater,
    NotAvailable,
    LimitedConnectivity,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::IncompatibleVersion,
        ErrorCode::UnsupportedField,
        ErrorCode::UnknownContainer,
        ErrorCode::InvalidEnvironment,
        ErrorCode::Io,
        ErrorCode::Decoding,
        ErrorCode::InvalidConfig,
        ErrorCode::TryAgainLater,
        ErrorCode::NotAvailable,
        ErrorCode::LimitedConnectivity,
    ];

    /// The meaning of `code`, if the spec gives it one.
    pub fn of(code: u64) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Codes 0-99 belong to the spec; plugins use 100 and up.
    pub fn reserved(code: u64) -> bool {
        code < 100
    }

    pub fn code(self) -> u64 {
        match self {
            ErrorCode::IncompatibleVersion => 1,
            ErrorCode::UnsupportedField => 2,
            ErrorCode::UnknownContainer => 3,
            ErrorCode::InvalidEnvironment => 4,
            ErrorCode::Io => 5,
            ErrorCode::Decoding => 6,
            ErrorCode::InvalidConfig => 7,
            ErrorCode::TryAgainLater => 11,
            ErrorCode::NotAvailable => 50,
            ErrorCode::LimitedConnectivity => 51,
        }
    }

    /// The version whose text first defines the code.
    pub fn since(self) -> Version {
        match self {
            ErrorCode::IncompatibleVersion => Version::V0_1_0,
            ErrorCode::UnsupportedField => Version::V0_2_0,
            ErrorCode::UnknownContainer | ErrorCode::TryAgainLater => Version::V0_4_0,
            ErrorCode::InvalidEnvironment
            | ErrorCode::Io
            | ErrorCode::Decoding
            | ErrorCode::InvalidConfig => Version::V1_0_0,
            ErrorCode::NotAvailable | ErrorCode::LimitedConnectivity => Version::V1_1_0,
        }
    }

    /// Whether `code` is one the text of `version` defines.
    pub fn known_at(code: u64, version: Version) -> bool {
        ErrorCode::of(code).is_some_and(|c| c.since() <= version)
    }

    /// Whether `code` means this.
    pub fn is(self, code: Option<u64>) -> bool {
        code == Some(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_print_and_order() {
        for v in Version::ALL {
            assert_eq!(v.as_str().parse::<Version>(), Ok(v));
        }
        assert!(Version::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            "9.9.9".parse::<Version>().unwrap_err().to_string(),
            "\"9.9.9\" is not a CNI spec version (known: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)"
        );
        let r = VersionRange {
            since: Version::V0_3_0,
            until: Version::V0_4_0,
        };
        assert!(r.contains(Version::V0_3_1) && !r.contains(Version::V1_0_0));
        assert_eq!(r.to_string(), "0.3.0-0.4.0");
        assert_eq!(VersionRange::ALL.to_string(), "0.1.0+");
        assert!(Version::V0_4_0.has_ip_version_field() && !Version::V1_0_0.has_ip_version_field());
    }
}
