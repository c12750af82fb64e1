//! The network configuration on stdin (`protocol::netconf`): JSON, the
//! common keys, and the lookups every plugin makes on it (`runtimeConfig`,
//! `args.cni`, `prevResult` in the config's version).
#![no_main]

use cni_reference::protocol::netconf::NetConf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(conf) = NetConf::parse(data.to_vec()) else {
        return;
    };
    let _ = conf.runtime_config();
    let _ = conf.cni_arg("ips");
    if let Ok(Some(prev)) = conf.prev_result() {
        // The plugin passes prevResult on in the same version.
        let _ = prev.encode(conf.version);
    }
});
