//! A plugin's output, read to a bound: whatever a plugin prints, the harness
//! keeps a stream whole while it fits `limit` bytes; past that, only the
//! head and tail a report shows, and how many bytes there were in all.

use std::fmt::Write as _;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes kept of each stream of each call, unless `--output-limit` says
/// otherwise. A CNI result or error object is a few kilobytes.
pub const DEFAULT_LIMIT: usize = 1 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);

/// Sets the bound for every call of this process (`--output-limit`).
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes.max(2), Ordering::Relaxed);
}

pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// How much of one stream a report shows, per call: the rest stays in
/// memory for judging but not in the report, whose size stays bounded
/// however much a plugin prints.
pub const SHOWN: usize = 4096;

/// One stream of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// Everything, when `total` fits the bound; else its first half.
    head: Vec<u8>,
    /// The last bytes, when `total` did not fit.
    tail: Vec<u8>,
    total: u64,
}

impl Captured {
    /// All of `bytes`.
    #[cfg(test)]
    fn whole(bytes: Vec<u8>) -> Captured {
        Captured {
            total: bytes.len() as u64,
            head: bytes,
            tail: Vec::new(),
        }
    }

    /// Reads `from` to its end, keeping at most `limit` bytes. Once the
    /// stream is past `limit` it will not be read as a document: from then
    /// on only what a report shows of it is kept (its first and last
    /// [`SHOWN`]/2 bytes), so a flood costs no memory while it lasts.
    pub fn read(mut from: impl Read, limit: usize) -> Captured {
        let mut head = Vec::new();
        let mut tail = Ring::new(limit - limit / 2);
        let mut total = 0u64;
        let mut cut = false;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let over = !cut && total + n as u64 > limit as u64;
            total += n as u64;
            let mut chunk = &buf[..n];
            let half = limit / 2;
            if head.len() < half && !cut {
                let take = chunk.len().min(half - head.len());
                head.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
            }
            tail.push(chunk);
            if over {
                cut = true;
                head.truncate(SHOWN / 2);
                head.shrink_to_fit();
                tail.shrink((SHOWN / 2).min(tail.cap));
            }
        }
        let mut tail = tail.into_vec();
        if head.len() as u64 + tail.len() as u64 == total {
            head.append(&mut tail);
        }
        Captured { head, tail, total }
    }

    /// The bytes, when all of them were kept.
    pub fn complete(&self) -> Option<&[u8]> {
        (!self.truncated()).then_some(&self.head)
    }

    pub fn truncated(&self) -> bool {
        self.head.len() as u64 != self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many bytes the stream carried.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// What was kept, as text, the gap marked.
    pub fn text(&self) -> String {
        self.clipped(usize::MAX)
    }

    /// As [`Captured::text`], at most about `max` bytes: the first and the
    /// last half, the gap marked with what it held.
    pub fn clipped(&self, max: usize) -> String {
        let half = max / 2;
        let (head, tail): (&[u8], &[u8]) = if self.head.len() + self.tail.len() <= max {
            (&self.head, &self.tail)
        } else {
            let last = if self.tail.is_empty() {
                &self.head
            } else {
                &self.tail
            };
            (
                &self.head[..half.min(self.head.len())],
                &last[last.len() - half.min(last.len())..],
            )
        };
        let gap = self.total - head.len() as u64 - tail.len() as u64;
        let mut s = printable(head);
        if gap > 0 {
            let _ = write!(s, "[... {gap} bytes not shown of {} ...]", self.total);
        }
        s.push_str(&printable(tail));
        s
    }

    /// For the report: at most [`SHOWN`] bytes.
    pub fn shown(&self) -> String {
        self.clipped(SHOWN)
    }

    /// A sentence for the evidence when the stream went past the bound.
    pub fn over_limit(&self, stream: &str) -> Option<String> {
        self.truncated().then(|| {
            format!(
                "{stream} carried {} bytes, more than the {} the harness reads (--output-limit): \
                 it is not read as a document, and only its first and last {} bytes are kept",
                self.total,
                limit(),
                SHOWN / 2
            )
        })
    }
}

/// Text for a report: invalid UTF-8 and control characters (but tabs and
/// line ends) each become U+FFFD, so binary output stays as short in a
/// JSON report as it was.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// The last `cap` bytes of a stream.
struct Ring {
    buf: Vec<u8>,
    /// Where the oldest byte is, once `buf` is full.
    start: usize,
    cap: usize,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            buf: Vec::new(),
            start: 0,
            cap,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        if bytes.len() >= self.cap {
            bytes = &bytes[bytes.len() - self.cap..];
            self.buf.clear();
            self.buf.extend_from_slice(bytes);
            self.start = 0;
            return;
        }
        let room = self.cap - self.buf.len();
        let fill = room.min(bytes.len());
        self.buf.extend_from_slice(&bytes[..fill]);
        for &b in &bytes[fill..] {
            self.buf[self.start] = b;
            self.start = (self.start + 1) % self.cap;
        }
    }

    /// Keeps only the last `cap` bytes from now on.
    fn shrink(&mut self, cap: usize) {
        let mut all = std::mem::take(&mut self.buf);
        all.rotate_left(self.start);
        let from = all.len().saturating_sub(cap);
        self.buf = all[from..].to_vec();
        self.start = 0;
        self.cap = cap;
    }

    fn into_vec(mut self) -> Vec<u8> {
        self.buf.rotate_left(self.start);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let c = Captured::read(&b"{\"a\":1}"[..], 16);
        assert_eq!(c.complete(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(c.text(), "{\"a\":1}");
    }

    #[test]
    fn output_at_the_bound_is_kept_whole() {
        let data: Vec<u8> = (0..16u8).collect();
        let c = Captured::read(&data[..], 16);
        assert_eq!(c.complete(), Some(&data[..]));
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let data: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz".to_vec();
        let c = Captured::read(std::io::Cursor::new(&data), 8);
        assert!(c.truncated());
        assert_eq!(c.complete(), None);
        assert_eq!(c.total(), 26);
        assert_eq!(c.text(), "abcd[... 18 bytes not shown of 26 ...]wxyz");
    }

    #[test]
    fn tail_is_right_across_many_small_reads() {
        // One byte per read, so the ring turns over many times.
        struct Drip(std::vec::IntoIter<u8>);
        impl Read for Drip {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                Ok(self.0.next().map_or(0, |x| {
                    b[0] = x;
                    1
                }))
            }
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let c = Captured::read(Drip(data.clone().into_iter()), 10);
        assert_eq!(c.head, data[..5]);
        assert_eq!(c.tail, data[995..]);
    }

    #[test]
    fn clipped_text_is_bounded() {
        let data = vec![b'x'; 100_000];
        let c = Captured::read(&data[..], 1 << 20);
        assert!(c.complete().is_some());
        let s = c.clipped(100);
        assert!(s.len() < 200, "{s}");
        assert!(s.contains("99900 bytes not shown of 100000"), "{s}");
    }

    #[test]
    fn a_flood_keeps_only_what_a_report_shows() {
        let data = vec![b'x'; 5 << 20];
        let c = Captured::read(&data[..], 1 << 20);
        assert_eq!(c.total(), 5 << 20);
        assert_eq!(c.head.len() + c.tail.len(), SHOWN);
    }

    #[test]
    fn binary_output_is_shown_as_replacement_characters() {
        let c = Captured::whole(vec![0, b'a', 0xff, b'\n']);
        assert_eq!(c.text(), "\u{FFFD}a\u{FFFD}\n");
    }
}
