//! The CNI exec protocol, shared by both reference plugins.

pub mod args;
pub mod env;
pub mod error;
pub mod netconf;
pub mod result;
pub mod skel;
pub mod version;

pub use error::{CniError, code};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use skel::{Plugin, Request};
pub use version::Version;
