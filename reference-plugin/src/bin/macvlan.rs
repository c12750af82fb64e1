//! `macvlan`: not implemented yet (issue 3). It answers VERSION and refuses
//! every other verb with a CNI error, so nothing mistakes it for working.

use std::process::ExitCode;

use cni_reference::protocol::{CniError, CniResult, Plugin, Request};

struct Macvlan;

fn unimplemented() -> CniError {
    CniError::new(100, "the reference macvlan plugin is not implemented yet")
}

impl Plugin for Macvlan {
    fn add(&self, _: &Request) -> Result<CniResult, CniError> {
        Err(unimplemented())
    }
    fn del(&self, _: &Request) -> Result<(), CniError> {
        Err(unimplemented())
    }
    fn check(&self, _: &Request) -> Result<(), CniError> {
        Err(unimplemented())
    }
    fn status(&self, _: &Request) -> Result<(), CniError> {
        Err(unimplemented())
    }
    fn gc(&self, _: &Request) -> Result<(), CniError> {
        Err(unimplemented())
    }
}

fn main() -> ExitCode {
    cni_reference::protocol::skel::run(&Macvlan)
}
