//! `macvlan`: gives a container its own MAC on a host interface.

use std::process::ExitCode;

fn main() -> ExitCode {
    cni_reference::protocol::skel::run(&cni_reference::macvlan::Macvlan)
}
