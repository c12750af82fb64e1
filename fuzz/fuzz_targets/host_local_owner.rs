//! host-local's address files (`host_local::owner`): who holds a
//! reservation, `<container id>\r\n<ifname>` or a legacy bare ID.
#![no_main]

use cni_reference::host_local::owner::Owner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let owner = Owner::parse(data);
    // What the store keeps is the normalised content: it must read back
    // as the same owner.
    assert_eq!(Owner::parse(&owner.content()), owner);
});
