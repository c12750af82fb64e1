//! The CNI conformance harness.
//!
//! Today it holds only the VERSION probe ([`version_probe`]); sandboxes, the
//! runtime side, the check catalog and reports follow (see ARCHITECTURE.md).
//! It never links the reference plugins: it judges any plugin by running it.

pub mod runtime;
pub mod sandbox;
pub mod spy;
pub mod userns;
pub mod version_probe;
