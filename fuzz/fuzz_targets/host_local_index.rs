//! host-local's reservation index file (`host_local::index`), the one
//! binary file the store reads back. The input is tried as a whole file,
//! and as a body given its correct checksum and the stamp it holds, so the
//! fuzzer gets past the CRC to the record parser.
#![no_main]

use cni_reference::host_local::index::{Stamp, decode};
use libfuzzer_sys::fuzz_target;

/// The index's first line (`index::MAGIC`, private there).
const MAGIC: &[u8] = b"cni-reference-index 2\n";

fn stamp_in(body: &[u8]) -> Stamp {
    let at = |i: usize| {
        body.get(MAGIC.len() + i..MAGIC.len() + i + 8)
            .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()))
    };
    Stamp {
        sec: at(0),
        nsec: at(8),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, stamp_in(data));
    let mut whole = data.to_vec();
    whole.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    if let Some(r) = decode(&whole, stamp_in(data)) {
        for (ip, owner) in r.iter() {
            let _ = (ip, owner);
        }
    }
});
