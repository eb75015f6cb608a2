//! What of a payload is written: the redaction of prompts and other texts.

use serde_json::Value;

use super::canonical::canonical_json;
use super::key::sha256_hex;

/// The payload fields whose values [`AuditPolicy`] redacts, at any depth.
pub const REDACTED_FIELDS: &[&str] = &["prompt", "input", "output", "text", "arguments", "result"];

/// The length [`AuditPolicy::default`] cuts texts to, in characters.
pub const DEFAULT_TRUNCATE: usize = 500;

/// What becomes of the value of a redacted field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redaction {
    /// Keep the first `n` characters and a marker saying how many were cut:
    /// `…[+1234 chars]`. A value that is not a string is cut as its canonical JSON text, and
    /// kept as it is when that is short enough.
    Truncate(usize),
    /// Replace the value by `sha256:` and the hex SHA-256 of the string (or of the canonical
    /// JSON of a value that is not a string): equal texts can still be matched, none can be
    /// read. `null` stays `null`.
    Hash,
    /// Keep the value as it is.
    Full,
}

/// How an audit log redacts payloads before they are written.
///
/// The values of fields named in [`REDACTED_FIELDS`] (`prompt`, `input`, `output`, `text`,
/// `arguments`, `result`, plus any added with [`field`](Self::field)), wherever they appear in
/// the payload, are redacted by the policy's [`Redaction`]; everything else is kept. Each log
/// applies its policy when a record is appended, before the payload is hashed and signed: what
/// was cut was never stored, and the entry verifies as written.
///
/// ```
/// use loomflow::telemetry::audit::AuditPolicy;
/// use serde_json::json;
///
/// let policy = AuditPolicy::truncate(5);
/// let payload = policy.apply(json!({"tool": "search", "arguments": {"query": "a long question"}, "text": "héllo world"}));
/// assert_eq!(payload["text"], "héllo…[+6 chars]");
/// assert_eq!(payload["tool"], "search");
///
/// let hashed = AuditPolicy::hash().apply(json!({"prompt": "secret"}));
/// assert!(hashed["prompt"].as_str().is_some_and(|s| s.starts_with("sha256:")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPolicy {
    redaction: Redaction,
    extra_fields: Vec<String>,
}

impl Default for AuditPolicy {
    /// Texts cut to [`DEFAULT_TRUNCATE`] (500) characters.
    fn default() -> Self {
        Self::truncate(DEFAULT_TRUNCATE)
    }
}

impl AuditPolicy {
    /// A policy redacting the usual fields by `redaction`.
    pub fn new(redaction: Redaction) -> Self {
        Self { redaction, extra_fields: Vec::new() }
    }

    /// Texts cut to `max_chars` characters, with a marker.
    pub fn truncate(max_chars: usize) -> Self {
        Self::new(Redaction::Truncate(max_chars))
    }

    /// Texts replaced by their SHA-256.
    pub fn hash() -> Self {
        Self::new(Redaction::Hash)
    }

    /// Everything kept as it is.
    pub fn full() -> Self {
        Self::new(Redaction::Full)
    }

    /// Redacts fields named `name` too.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.extra_fields.push(name.into());
        self
    }

    /// What becomes of a redacted field's value.
    pub fn redaction(&self) -> Redaction {
        self.redaction
    }

    /// `payload` redacted.
    pub fn apply(&self, payload: Value) -> Value {
        if self.redaction == Redaction::Full {
            return payload;
        }
        self.walk(payload)
    }

    fn redacts(&self, field: &str) -> bool {
        REDACTED_FIELDS.contains(&field) || self.extra_fields.iter().any(|f| f == field)
    }

    fn walk(&self, value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = if self.redacts(&k) { self.redact(v) } else { self.walk(v) };
                        (k, v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.walk(v)).collect()),
            other => other,
        }
    }

    fn redact(&self, value: Value) -> Value {
        match (self.redaction, value) {
            (Redaction::Full, value) | (_, value @ Value::Null) => value,
            (Redaction::Truncate(max), Value::String(s)) => Value::String(truncate(s, max)),
            (Redaction::Truncate(max), value) => {
                let text = canonical_json(&value);
                if text.chars().count() <= max { value } else { Value::String(truncate(text, max)) }
            }
            (Redaction::Hash, Value::String(s)) => Value::String(format!("sha256:{}", sha256_hex(s.as_bytes()))),
            (Redaction::Hash, value) => {
                Value::String(format!("sha256:{}", sha256_hex(canonical_json(&value).as_bytes())))
            }
        }
    }
}

/// `text` cut to `max` characters (never inside one) and `…[+N chars]`, N the characters cut.
fn truncate(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((cut, _)) => {
            let rest = text[cut..].chars().count();
            format!("{}…[+{rest} chars]", &text[..cut])
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn texts_are_cut_on_character_boundaries_with_a_marker() {
        assert_eq!(truncate("short".into(), 5), "short");
        assert_eq!(truncate("é€𝄞é€𝄞".into(), 4), "é€𝄞é…[+2 chars]");
        assert_eq!(truncate("abc".into(), 0), "…[+3 chars]");
        let long = "x".repeat(1_200);
        let payload = AuditPolicy::default().apply(json!({"prompt": long}));
        assert_eq!(payload["prompt"], format!("{}…[+700 chars]", "x".repeat(500)));
    }

    #[test]
    fn only_the_named_fields_are_redacted_at_any_depth() {
        let policy = AuditPolicy::truncate(3).field("query");
        let payload = policy.apply(json!({
            "tool": "search-the-web",
            "calls": [{"arguments": {"q": "abcdef"}, "query": "abcdef", "id": "call_123456"}],
            "output": null,
            "result": 42,
        }));
        assert_eq!(
            payload,
            json!({
                "tool": "search-the-web",
                "calls": [{"arguments": "{\"q…[+11 chars]", "query": "abc…[+3 chars]", "id": "call_123456"}],
                "output": null,
                "result": 42,
            })
        );
    }

    #[test]
    fn hash_replaces_values_by_their_sha256_and_full_keeps_them() {
        let payload = json!({"input": "abc", "arguments": {"b": 1, "a": 2}, "tool": "t"});
        let hashed = AuditPolicy::hash().apply(payload.clone());
        assert_eq!(hashed["input"], "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hashed["arguments"], format!("sha256:{}", sha256_hex(br#"{"a":2,"b":1}"#)));
        assert_eq!(hashed["tool"], "t");
        assert_eq!(AuditPolicy::full().apply(payload.clone()), payload);
        assert_eq!(AuditPolicy::default().redaction(), Redaction::Truncate(DEFAULT_TRUNCATE));
    }
}
