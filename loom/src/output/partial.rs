//! Partial JSON: the part of a streamed answer that is complete so far, as valid JSON.

use serde_json::Value;

/// The completed part of a JSON text that is still arriving, closed into valid JSON: every
/// value that has ended is kept, a value still being written (a number, a string, a key
/// without its value) is left out. `None` when nothing has completed yet.
///
/// Leading prose or a code fence before the first `{` or `[` is skipped.
pub(crate) fn complete_prefix(text: &str) -> Option<Value> {
    let start = text.find(['{', '['])?;
    let repaired = repair(&text[start..])?;
    serde_json::from_str(&repaired).ok()
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    KeyOrEnd,
    Colon,
    Value,
    CommaOrEnd,
}

#[derive(Clone, Copy)]
enum Frame {
    Object(Expect),
    Array,
}

fn closers(stack: &[Frame]) -> String {
    stack
        .iter()
        .rev()
        .map(|f| match f {
            Frame::Object(_) => '}',
            Frame::Array => ']',
        })
        .collect()
}

fn repair(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    // The longest prefix that ends after a complete value (or an opened container), and the
    // closers it needs.
    let mut good: Option<(usize, String)> = None;
    let mut i = 0;
    let mark = |end: usize, stack: &[Frame], good: &mut Option<(usize, String)>| {
        *good = Some((end, closers(stack)));
    };
    // A value ended at `end`: the enclosing object now expects a comma.
    let value_done = |end: usize, stack: &mut Vec<Frame>, good: &mut Option<(usize, String)>| {
        if let Some(Frame::Object(expect)) = stack.last_mut() {
            *expect = Expect::CommaOrEnd;
        }
        *good = Some((end, closers(stack)));
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\n' | b'\r' | b'\t' => i += 1,
            b'{' => {
                stack.push(Frame::Object(Expect::KeyOrEnd));
                i += 1;
                mark(i, &stack, &mut good);
            }
            b'[' => {
                stack.push(Frame::Array);
                i += 1;
                mark(i, &stack, &mut good);
            }
            b'}' | b']' => {
                if stack.pop().is_none() {
                    break;
                }
                i += 1;
                value_done(i, &mut stack, &mut good);
                if stack.is_empty() {
                    break;
                }
            }
            b':' => {
                if let Some(Frame::Object(expect @ Expect::Colon)) = stack.last_mut() {
                    *expect = Expect::Value;
                }
                i += 1;
            }
            b',' => {
                if let Some(Frame::Object(expect)) = stack.last_mut() {
                    *expect = Expect::KeyOrEnd;
                }
                i += 1;
            }
            b'"' => {
                // A string still being written ends the complete part.
                let Some(end) = string_end(bytes, i + 1) else { break };
                i = end;
                match stack.last_mut() {
                    Some(Frame::Object(expect @ Expect::KeyOrEnd)) => *expect = Expect::Colon,
                    _ => value_done(i, &mut stack, &mut good),
                }
            }
            _ => {
                // A number or a literal: complete only once a delimiter follows it.
                let delimiter =
                    bytes[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'));
                let Some(len) = delimiter else { break };
                i += len;
                value_done(i, &mut stack, &mut good);
            }
        }
    }
    let (end, closers) = good?;
    let mut out = text[..end].trim_end().trim_end_matches(',').to_owned();
    out.push_str(&closers);
    Some(out)
}

/// The index just past the closing quote of a string whose body starts at `from`.
fn string_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut escaped = false;
    for (offset, &b) in bytes[from..].iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(from + offset + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_appear_as_they_complete() {
        let full = r#"{"city": "Paris", "temp_c": 21.5, "tags": ["warm", "dry"], "sub": {"a": true}}"#;
        let mut seen = Vec::new();
        for end in 1..=full.len() {
            if let Some(v) = complete_prefix(&full[..end])
                && seen.last() != Some(&v)
            {
                seen.push(v);
            }
        }
        assert_eq!(
            seen,
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
        );
    }

    #[test]
    fn prose_before_the_json_is_skipped_and_nothing_is_none() {
        assert_eq!(complete_prefix("Sure! ```json\n{\"a\": \"x\\\"y\", \"b"), Some(json!({"a": "x\"y"})));
        assert_eq!(complete_prefix("thinking..."), None);
        assert_eq!(complete_prefix("{\"a"), Some(json!({})));
    }
}
