//! Reference `macvlan` and `host-local` CNI plugins.
//!
//! [`protocol`] is the exec protocol both binaries share; [`host_local`] is
//! the IPAM plugin.

pub mod delegate;
pub mod host_local;
pub mod macvlan;
pub mod netlink;
pub mod netns;
pub mod protocol;
