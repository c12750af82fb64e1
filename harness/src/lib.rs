//! The CNI conformance harness.
//!
//! [`sandbox`] builds disposable worlds, [`runtime`] drives plugins as a
//! container runtime does, [`snapshot`] and [`observe`] see what the kernel
//! holds, [`spy`] records what plugins receive, [`version_probe`] holds the
//! first checks. It never links the reference plugins: it judges any plugin
//! by running it.

pub mod observe;
pub mod runtime;
pub mod sandbox;
pub mod schema;
pub mod snapshot;
pub mod spy;
pub mod userns;
pub mod vectors;
pub mod version_probe;
