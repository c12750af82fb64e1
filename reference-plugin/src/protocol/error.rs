//! The CNI error object and the spec's well-known codes.

use serde::Serialize;

/// Well-known error codes (spec §"Error codes"), plus this project's
/// plugin-specific ones (100 and up).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    pub const LIMITED_CONNECTIVITY: u32 = 51;

    /// The IPAM store could not be read or written.
    pub const STORE_FAILURE: u32 = 100;
    /// Every address of a range set is taken.
    pub const RANGE_EXHAUSTED: u32 = 101;
    /// A requested address is taken, is a gateway, or lies in no range.
    pub const ADDRESS_UNAVAILABLE: u32 = 102;
    /// The attachment already holds an address (ADD twice without DEL).
    pub const DUPLICATE_ATTACHMENT: u32 = 103;
    /// CHECK found no reservation, or not the one `prevResult` names.
    pub const RESERVATION_MISSING: u32 = 104;
    /// A delegated plugin could not be run or answered nonsense.
    pub const DELEGATE_FAILURE: u32 = 110;
    /// A netlink or namespace operation failed.
    pub const KERNEL_FAILURE: u32 = 111;
    /// CHECK found the interface differs from `prevResult`.
    pub const CHECK_MISMATCH: u32 = 112;
    /// The result cannot be written in the requested version.
    pub const UNREPRESENTABLE_RESULT: u32 = 113;
    /// ADD found `CNI_IFNAME` already present in the container.
    pub const INTERFACE_EXISTS: u32 = 114;

    /// A well-known code answered in a version whose text does not define
    /// it yet becomes this plus the code (4 at 0.4.0 is 124): codes 1-99
    /// "must not be used other than as specified here".
    pub const UNDEFINED_IN_VERSION: u32 = 120;

    /// Whether the text of `version` defines well-known code `c` (plugin
    /// codes, 100 and up, are always the plugin's).
    pub fn defined_at(c: u32, version: crate::protocol::Version) -> bool {
        use crate::protocol::Version as V;
        match c {
            INCOMPATIBLE_VERSION => true,
            UNSUPPORTED_FIELD => version >= V::V0_2_0,
            UNKNOWN_CONTAINER | TRY_AGAIN_LATER => version >= V::V0_4_0,
            INVALID_ENV | IO_FAILURE | DECODE_FAILURE | INVALID_CONFIG => version >= V::V1_0_0,
            NOT_AVAILABLE | LIMITED_CONNECTIVITY => version >= V::V1_1_0,
            _ => c >= 100,
        }
    }
}

/// A CNI error as printed on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{msg} (code {code})")]
pub struct CniError {
    #[serde(rename = "cniVersion", skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            cni_version: None,
            code,
            msg: msg.into(),
            details: None,
        }
    }

    /// The error as the version it answers in may say it: a well-known
    /// code that version does not define becomes a plugin code.
    pub fn in_its_version(mut self) -> Self {
        let version = self.cni_version.as_deref().and_then(super::Version::parse);
        if let Some(v) = version {
            if !code::defined_at(self.code, v) {
                self.code += code::UNDEFINED_IN_VERSION;
            }
        }
        self
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_ENV, msg)
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }

    pub fn decode(msg: impl Into<String>) -> Self {
        Self::new(code::DECODE_FAILURE, msg)
    }

    pub fn incompatible(msg: impl Into<String>) -> Self {
        Self::new(code::INCOMPATIBLE_VERSION, msg)
    }
}
