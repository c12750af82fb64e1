//! A cache of the store's reservations, so ADD and DEL need not open every
//! address file (60,000 reads cost upstream most of a second).
//!
//! The address files stay the only truth; the index is trusted only while
//! the directory is exactly as this plugin left it. After each commit the
//! directory's mtime is set to a value no real change can produce (one
//! second in the past, random nanoseconds) and that value is written into
//! the index. Any change by anyone else (upstream host-local, an admin's
//! `rm`) stamps the current time instead, so the stamps differ and the next
//! invocation rescans. A torn index fails its checksum and is rescanned too.
//!
//! Layout (little endian): magic line, stamp (i64 sec, i64 nsec), count
//! (u32), records (family byte 4|6, address, u16 length, owner content),
//! CRC-32 of everything before it. Binary, so loading is slicing, not
//! parsing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::reservations::Reservations;

pub const FILE_NAME: &str = "cni-reference.index";
const MAGIC: &[u8] = b"cni-reference-index 2\n";

/// The directory mtime an index was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sec: i64,
    pub nsec: i64,
}

pub fn encode(stamp: Stamp, reservations: &Reservations) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + reservations.len() * 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&stamp.sec.to_le_bytes());
    out.extend_from_slice(&stamp.nsec.to_le_bytes());
    out.extend_from_slice(&(reservations.len() as u32).to_le_bytes());
    for (ip, content) in reservations.raw() {
        match ip {
            IpAddr::V4(a) => {
                out.push(4);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.push(6);
                out.extend_from_slice(&a.octets());
            }
        }
        let len = content.len().min(u16::MAX as usize);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&content[..len]);
    }
    let sum = crc32fast::hash(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The reservations, if `bytes` is a whole index written for `stamp`.
pub fn decode(bytes: &[u8], stamp: Stamp) -> Option<Reservations> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if u32::from_le_bytes(sum.try_into().ok()?) != crc32fast::hash(body) {
        return None;
    }
    let mut r = Reader(body.strip_prefix(MAGIC)?);
    if (r.i64()?, r.i64()?) != (stamp.sec, stamp.nsec) {
        return None;
    }
    let count = r.u32()? as usize;
    // The count is only trusted as far as the bytes can hold that many
    // records (7 bytes at least): a huge one must not allocate for it.
    let mut entries = Vec::with_capacity(count.min(r.0.len() / 7));
    for _ in 0..count {
        let ip = match r.take(1)?[0] {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(r.take(4)?).ok()?)),
            6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(r.take(16)?).ok()?)),
            _ => return None,
        };
        let len = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        entries.push((ip, Box::from(r.take(len)?)));
    }
    if !r.0.is_empty() {
        return None;
    }
    Reservations::from_sorted(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_local::owner::Owner;

    fn sample() -> Reservations {
        let mut r = Reservations::default();
        r.insert("fd00::2".parse().unwrap(), &Owner::parse(b"legacy-id"));
        r.insert("10.0.0.2".parse().unwrap(), &Owner::parse(b"c1\r\neth0"));
        r
    }

    #[test]
    fn round_trip() {
        let stamp = Stamp { sec: 5, nsec: 7 };
        assert_eq!(decode(&encode(stamp, &sample()), stamp), Some(sample()));
    }

    #[test]
    fn other_stamp_or_torn_bytes_are_rejected() {
        let stamp = Stamp { sec: 5, nsec: 7 };
        let bytes = encode(stamp, &sample());
        assert_eq!(decode(&bytes, Stamp { sec: 5, nsec: 8 }), None);
        assert_eq!(decode(&bytes[..bytes.len() - 3], stamp), None);
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert_eq!(decode(&flipped, stamp), None);
        assert_eq!(decode(b"", stamp), None);
    }

    #[test]
    fn a_count_beyond_the_records_is_rejected_without_allocating_for_it() {
        // A checksummed index claiming 4 billion records and holding one
        // (this reserved room for all of them and aborted out of memory).
        let stamp = Stamp { sec: 5, nsec: 7 };
        let mut body = encode(stamp, &sample());
        body.truncate(body.len() - 4);
        let count_at = MAGIC.len() + 16;
        body[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let sum = crc32fast::hash(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(decode(&body, stamp), None);
    }
}
