//! `host-local`: allocates addresses from ranges, recorded on local disk.

use std::process::ExitCode;

fn main() -> ExitCode {
    cni_reference::protocol::skel::run(&cni_reference::host_local::HostLocal)
}
