//! Canonical JSON (what is hashed and signed), and hex.

use serde_json::Value;

/// `value` as canonical JSON: object keys sorted (by their UTF-8 bytes), no whitespace,
/// numbers and strings as serde_json writes them.
///
/// The same value always gives the same text, whatever order its keys were inserted in, so
/// its hash and signature do not depend on how it was built or stored.
///
/// ```
/// use loomflow::telemetry::audit::canonical_json;
/// use serde_json::json;
///
/// let value = json!({"b": [1, 2.5, null], "a": {"z": "é\n", "y": true}});
/// assert_eq!(canonical_json(&value), r#"{"a":{"y":true,"z":"é\n"},"b":[1,2.5,null]}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // `Number`'s `Display` is serde_json's own serialisation of it.
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string, escaped exactly as serde_json escapes it.
fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// The bytes of hex text (either case); `None` when it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes.chunks_exact(2).map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth_and_nothing_is_spaced() {
        let mut map = serde_json::Map::new();
        map.insert("zeta".into(), json!(1));
        map.insert("alpha".into(), json!({"b": [true, false], "a": null}));
        map.insert("Mid".into(), json!([]));
        assert_eq!(canonical_json(&Value::Object(map)), r#"{"Mid":[],"alpha":{"a":null,"b":[true,false]},"zeta":1}"#);
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(canonical_json(&json!("x")), r#""x""#);
    }

    #[test]
    fn numbers_and_strings_are_written_as_serde_json_writes_them() -> Result<(), serde_json::Error> {
        let numbers = json!([0, -7, u64::MAX, i64::MIN, 0.1, 1e300, -2.5e-8, 100.0]);
        assert_eq!(canonical_json(&numbers), serde_json::to_string(&numbers)?);
        let all_controls: String = (0u32..0x80).filter_map(char::from_u32).collect();
        for s in [all_controls.as_str(), "quote \" back \\ slash", "é ☃ 𝄞", "\u{7f}\u{2028}"] {
            assert_eq!(canonical_json(&json!(s)), serde_json::to_string(s)?, "{s:?}");
        }
        Ok(())
    }

    #[test]
    fn the_same_value_built_two_ways_is_the_same_text() -> Result<(), serde_json::Error> {
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": {"q": 2, "p": 3}}"#)?;
        let b: Value = serde_json::from_str(r#"{"y": {"p": 3, "q": 2}, "x": 1}"#)?;
        assert_eq!(canonical_json(&a), canonical_json(&b));
        Ok(())
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(""), Some(vec![]));
    }
}
