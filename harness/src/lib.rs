//! The CNI conformance harness.
//!
//! [`sandbox`] builds disposable worlds, [`runtime`] drives plugins as a
//! container runtime does, [`snapshot`] and [`observe`] see what the kernel
//! holds, [`spy`] records what plugins receive, [`schema`] and [`vectors`]
//! hold the oracle data, [`checks`] is the catalog, [`profile`] configures a
//! plugin under test and [`suite`] runs the catalog. It never links the
//! reference plugins: it judges any plugin by running it.

pub mod checks;
pub mod expectations;
pub mod observe;
pub mod profile;
pub mod report;
pub mod runtime;
pub mod runtimes;
pub mod sandbox;
pub mod schema;
pub mod snapshot;
pub mod spec;
pub mod spy;
pub mod suite;
pub mod userns;
pub mod vectors;
