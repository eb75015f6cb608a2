//! Partial JSON: the part of a streamed answer that is complete so far, as valid JSON.
//!
//! The text arrives in deltas of any size, chosen by the network, so the work is bounded: the
//! scanner keeps its state between deltas and reads each byte once, and the completed part is
//! parsed only when it has grown — every time for small answers, at most a few dozen times
//! however large the answer, and not at all past [`MAX_PARTIAL_BYTES`].

use serde_json::Value;

/// Past this many bytes, a streamed answer no longer reports partial values (its final value
/// still comes when it is complete).
pub(crate) const MAX_PARTIAL_BYTES: usize = 64 << 10;

/// Up to this many bytes, every completed value is reported; beyond, a report waits until
/// the completed part has grown by an eighth.
const EVERY_VALUE_BYTES: usize = 4 << 10;

/// The completed part of a JSON text that is still arriving, closed into valid JSON: every
/// value that has ended is kept, a value still being written (a number, a string, a key
/// without its value) is left out. `None` when nothing has completed yet.
///
/// Leading prose or a code fence before the first `{` or `[` is skipped.
#[cfg(test)]
pub(crate) fn complete_prefix(text: &str) -> Option<Value> {
    let mut scanner = PartialJson::default();
    scanner.scan(text);
    scanner.repaired(text).and_then(|r| serde_json::from_str(&r).ok())
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    KeyOrEnd,
    Colon,
    Value,
    CommaOrEnd,
}

#[derive(Clone, Copy, Debug)]
enum Frame {
    Object(Expect),
    Array,
}

/// A token cut by the end of the text so far, to go on with when more arrives.
#[derive(Clone, Copy, Debug)]
enum Open {
    /// Inside a string (after a backslash, when `escaped`).
    String { escaped: bool },
    /// A number or a literal, waiting for its delimiter.
    Literal,
}

/// The state of a streamed JSON text between deltas.
#[derive(Debug, Default)]
pub(crate) struct PartialJson {
    /// Where the JSON starts (after any prose), once found.
    start: Option<usize>,
    /// The next byte to read.
    pos: usize,
    stack: Vec<Frame>,
    open: Option<Open>,
    /// The end of the longest prefix that closes into valid JSON.
    good: Option<usize>,
    /// The text has ended (the top value closed, or it cannot be JSON).
    done: bool,
    /// The `good` end of the last value handed out.
    reported: Option<usize>,
    /// The last value handed out (a closing bracket moves the good end, not the value).
    last: Option<Value>,
}

impl PartialJson {
    /// The completed part of `text` (the whole answer so far; each call's text extends the
    /// previous one), when it grew enough since the last one to be worth reporting.
    pub(crate) fn update(&mut self, text: &str) -> Option<Value> {
        if text.len() > MAX_PARTIAL_BYTES {
            return None;
        }
        self.scan(text);
        let good = self.good?;
        let grown = match self.reported {
            None => true,
            Some(last) if good <= last => false,
            Some(last) => good <= EVERY_VALUE_BYTES || good - last >= good / 8,
        };
        if !grown {
            return None;
        }
        // Marked as reported even when it does not parse (too deep, say): it is not tried again.
        self.reported = Some(good);
        let value: Value = self.repaired(text).and_then(|r| serde_json::from_str(&r).ok())?;
        if self.last.as_ref() == Some(&value) {
            return None;
        }
        self.last = Some(value.clone());
        Some(value)
    }

    /// The completed prefix, closed.
    fn repaired(&self, text: &str) -> Option<String> {
        let (start, end) = (self.start?, self.good?);
        let mut out = text.get(start..end)?.trim_end().trim_end_matches(',').to_owned();
        // The frames open at the last good point are those open now: every push and pop
        // since would have moved the good point.
        for frame in self.stack.iter().rev() {
            out.push(match frame {
                Frame::Object(_) => '}',
                Frame::Array => ']',
            });
        }
        Some(out)
    }

    /// Reads the bytes of `text` not read yet.
    fn scan(&mut self, text: &str) {
        let bytes = text.as_bytes();
        if self.start.is_none() {
            match text.get(self.pos..).and_then(|rest| rest.find(['{', '['])) {
                Some(i) => {
                    self.pos += i;
                    self.start = Some(self.pos);
                }
                None => {
                    self.pos = bytes.len();
                    return;
                }
            }
        }
        while !self.done && self.pos < bytes.len() {
            if let Some(open) = self.open {
                if !self.finish_token(bytes, open) {
                    return;
                }
                continue;
            }
            let b = bytes[self.pos];
            match b {
                b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                b'{' | b'[' => {
                    self.stack.push(if b == b'{' { Frame::Object(Expect::KeyOrEnd) } else { Frame::Array });
                    self.pos += 1;
                    self.good = Some(self.pos);
                }
                b'}' | b']' => {
                    if self.stack.pop().is_none() {
                        self.done = true;
                        return;
                    }
                    self.pos += 1;
                    self.value_done();
                    if self.stack.is_empty() {
                        self.done = true;
                    }
                }
                b':' => {
                    if let Some(Frame::Object(expect @ Expect::Colon)) = self.stack.last_mut() {
                        *expect = Expect::Value;
                    }
                    self.pos += 1;
                }
                b',' => {
                    if let Some(Frame::Object(expect)) = self.stack.last_mut() {
                        *expect = Expect::KeyOrEnd;
                    }
                    self.pos += 1;
                }
                b'"' => {
                    self.pos += 1;
                    self.open = Some(Open::String { escaped: false });
                }
                _ => self.open = Some(Open::Literal),
            }
        }
    }

    /// Goes on with an open token; `false` when the text ends inside it.
    fn finish_token(&mut self, bytes: &[u8], open: Open) -> bool {
        match open {
            Open::String { mut escaped } => {
                for (offset, &b) in bytes[self.pos..].iter().enumerate() {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => {
                            self.pos += offset + 1;
                            self.open = None;
                            match self.stack.last_mut() {
                                Some(Frame::Object(expect @ Expect::KeyOrEnd)) => *expect = Expect::Colon,
                                _ => self.value_done(),
                            }
                            return true;
                        }
                        _ => {}
                    }
                }
                self.pos = bytes.len();
                self.open = Some(Open::String { escaped });
                false
            }
            Open::Literal => {
                let end = bytes[self.pos..]
                    .iter()
                    .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'));
                match end {
                    Some(len) => {
                        self.pos += len;
                        self.open = None;
                        self.value_done();
                        true
                    }
                    None => {
                        self.pos = bytes.len();
                        false
                    }
                }
            }
        }
    }

    /// A value ended: the enclosing object now expects a comma, and the prefix so far closes.
    fn value_done(&mut self) {
        if let Some(Frame::Object(expect)) = self.stack.last_mut() {
            *expect = Expect::CommaOrEnd;
        }
        self.good = Some(self.pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FULL: &str = r#"{"city": "Paris", "temp_c": 21.5, "tags": ["warm", "dry"], "sub": {"a": true}}"#;

    fn expected() -> Vec<Value> {
        vec![
            json!({}),
            json!({"city": "Paris"}),
            json!({"city": "Paris", "temp_c": 21.5}),
            json!({"city": "Paris", "temp_c": 21.5, "tags": []}),
            json!({"city": "Paris", "temp_c": 21.5, "tags": ["warm"]}),
            json!({"city": "Paris", "temp_c": 21.5, "tags": ["warm", "dry"]}),
            json!({"city": "Paris", "temp_c": 21.5, "tags": ["warm", "dry"], "sub": {}}),
            json!({"city": "Paris", "temp_c": 21.5, "tags": ["warm", "dry"], "sub": {"a": true}}),
        ]
    }

    #[test]
    fn fields_appear_as_they_complete() {
        let mut seen = Vec::new();
        for end in 1..=FULL.len() {
            if let Some(v) = complete_prefix(&FULL[..end])
                && seen.last() != Some(&v)
            {
                seen.push(v);
            }
        }
        assert_eq!(seen, expected());
    }

    #[test]
    fn the_incremental_scanner_reports_each_completed_value_once_whatever_the_deltas() {
        for step in [1, 2, 3, 7, 16, FULL.len()] {
            let mut scanner = PartialJson::default();
            let mut seen = Vec::new();
            let mut end = 0;
            while end < FULL.len() {
                end = (end + step).min(FULL.len());
                seen.extend(scanner.update(&FULL[..end]));
            }
            let all = expected();
            // Bigger deltas skip intermediate values, never repeat one, and end on the whole.
            assert_eq!(seen.last(), all.last(), "step {step}");
            assert!(seen.windows(2).all(|w| w[0] != w[1]), "step {step}: {seen:?}");
            assert!(seen.iter().all(|v| all.contains(v)), "step {step}: {seen:?}");
            if step == 1 {
                assert_eq!(seen, all);
            }
        }
    }

    #[test]
    fn prose_before_the_json_is_skipped_and_nothing_is_none() {
        assert_eq!(complete_prefix("Sure! ```json\n{\"a\": \"x\\\"y\", \"b"), Some(json!({"a": "x\"y"})));
        assert_eq!(complete_prefix("thinking..."), None);
        assert_eq!(complete_prefix("{\"a"), Some(json!({})));
    }

    #[test]
    fn large_answers_are_reported_rarely_and_huge_ones_not_at_all() {
        let mut text = String::from("[");
        let mut scanner = PartialJson::default();
        let mut reports = 0;
        for i in 0..20_000 {
            text.push_str(&format!("{i},"));
            reports += usize::from(scanner.update(&text).is_some());
        }
        assert!(text.len() > MAX_PARTIAL_BYTES);
        // Every value while small, then geometrically fewer, then none.
        assert!(reports < 1_500, "{reports} reports");
    }

    #[test]
    fn deep_nesting_is_linear_and_safe() {
        let deep = "[".repeat(50_000);
        let mut scanner = PartialJson::default();
        // Too deep for the parser: no value, and no panic.
        assert_eq!(scanner.update(&deep[..MAX_PARTIAL_BYTES.min(deep.len())]), None);
    }
}
