//! Reference `macvlan` and `host-local` CNI plugins.
//!
//! [`protocol`] is the exec protocol both binaries share; [`host_local`] is
//! the IPAM plugin.

pub mod host_local;
pub mod protocol;
