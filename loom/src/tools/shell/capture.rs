//! One output stream of a command, kept within a byte cap while it is read: the head and the
//! tail are kept, the middle is counted and dropped.

use std::collections::VecDeque;

use super::output::CapturedStream;

/// The bytes of one stream read so far, never more than the cap in memory.
#[derive(Debug)]
pub(super) struct Capture {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    /// A capture that keeps at most `cap` bytes: the first half and the last half.
    pub(super) fn new(cap: usize) -> Self {
        let head_cap = cap - cap / 2;
        Self {
            head_cap,
            tail_cap: cap / 2,
            head: Vec::with_capacity(head_cap.min(64 * 1024)),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Adds bytes read from the stream.
    pub(super) fn push(&mut self, mut bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if self.tail_cap == 0 || bytes.is_empty() {
            return;
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// The text kept: everything when it fit, else the head, a marker saying how many bytes
    /// were left out, and the tail. A character cut by the head or tail boundary is left out
    /// whole (and counted as elided); other invalid UTF-8 becomes U+FFFD.
    pub(super) fn finish(self) -> CapturedStream {
        let kept = self.head.len() + self.tail.len();
        let mut tail: Vec<u8> = self.tail.into();
        if self.total == kept as u64 {
            let mut all = self.head;
            all.append(&mut tail);
            return CapturedStream::new(String::from_utf8_lossy(&all).into_owned(), self.total, 0);
        }
        let head = trim_incomplete_end(&self.head);
        let tail = trim_continuation_start(&tail);
        let elided = self.total - (head.len() + tail.len()) as u64;
        let head = String::from_utf8_lossy(head);
        let tail = String::from_utf8_lossy(tail);
        let before = if head.is_empty() || head.ends_with('\n') { "" } else { "\n" };
        let after = if tail.is_empty() { "" } else { "\n" };
        let text = format!("{head}{before}[... {} bytes elided ...]{after}{tail}", thousands(elided));
        CapturedStream::new(text, self.total, elided)
    }
}

/// `bytes` without a UTF-8 sequence cut off at its end.
fn trim_incomplete_end(bytes: &[u8]) -> &[u8] {
    // A sequence is at most 4 bytes: only the last 3 can belong to an unfinished one.
    let start = bytes.len().saturating_sub(3);
    for i in (start..bytes.len()).rev() {
        let b = bytes[i];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back for its lead
        }
        let len = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1, // not a lead byte: invalid anyway, shown as U+FFFD
        };
        return if i + len > bytes.len() { &bytes[..i] } else { bytes };
    }
    bytes
}

/// `bytes` without the continuation bytes of a sequence whose start was cut off.
fn trim_continuation_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take(3).take_while(|&&b| b & 0b1100_0000 == 0b1000_0000).count();
    &bytes[skip..]
}

/// `12345` as `12,345`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(cap: usize, chunks: &[&[u8]]) -> CapturedStream {
        let mut c = Capture::new(cap);
        for chunk in chunks {
            c.push(chunk);
        }
        c.finish()
    }

    #[test]
    fn output_within_the_cap_is_kept_whole() {
        let out = captured(10, &[b"hello", b" you"]);
        assert_eq!(out.text(), "hello you");
        assert_eq!((out.total_bytes(), out.elided_bytes()), (9, 0));
        let exact = captured(4, &[b"ab", b"cd"]);
        assert_eq!(exact.text(), "abcd");
    }

    #[test]
    fn long_output_keeps_head_and_tail_around_a_marker() {
        let body = "x".repeat(10_000);
        let out = captured(8, &[b"HEAD", body.as_bytes(), b"TAIL"]);
        assert_eq!(out.text(), "HEAD\n[... 10,000 bytes elided ...]\nTAIL");
        assert_eq!((out.total_bytes(), out.elided_bytes()), (10_008, 10_000));
    }

    #[test]
    fn the_tail_follows_many_small_chunks() {
        let mut c = Capture::new(6);
        for i in 0..1000u32 {
            c.push(format!("{}", i % 10).as_bytes());
        }
        let out = c.finish();
        assert_eq!(out.text(), "012\n[... 994 bytes elided ...]\n789");
    }

    #[test]
    fn characters_cut_at_either_boundary_are_left_out_whole() {
        // "é" is two bytes: the head ends in the middle of one, the tail starts in one.
        let out =
            captured(6, &["ab".as_bytes(), "é".as_bytes(), "-".repeat(20).as_bytes(), "é".as_bytes(), "zz".as_bytes()]);
        assert!(!out.text().contains('\u{FFFD}'), "{}", out.text());
        assert!(out.text().starts_with("ab\n[... "), "{}", out.text());
        assert!(out.text().ends_with("]\nzz"), "{}", out.text());
        assert_eq!(out.elided_bytes(), 28 - 4);
    }

    #[test]
    fn a_zero_cap_keeps_only_the_marker() {
        let out = captured(0, &[b"abc"]);
        assert_eq!(out.text(), "[... 3 bytes elided ...]");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
