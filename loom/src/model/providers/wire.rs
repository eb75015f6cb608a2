//! Reading providers' JSON as real servers send it.
//!
//! OpenAI-compatible servers (vLLM, LiteLLM, Ollama, proxies) and the providers themselves send
//! `null` for optional fields they leave empty (`"tool_calls": null`, `"usage": null`,
//! `"content": null`), add fields no reference mentions, and order them as they like. Every
//! field Loom reads is either an `Option` (which takes `null` as absent) or marked
//! `#[serde(default, deserialize_with = "nullable")]`, which takes an absent field and `null`
//! alike as the type's default. Unknown fields are ignored.

use serde::{Deserialize, Deserializer};

/// A field that may be missing or `null`: both read as `T::default()`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Decodes standard or URL-safe base64, padded or not, ignoring whitespace; `None` on anything
/// else. (Documents sent as base64, embeddings a server sends as base64.)
#[cfg_attr(not(any(feature = "anthropic", feature = "openai")), allow(dead_code))]
pub(crate) fn decode_base64(data: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let digits: Vec<u8> = data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let digits = digits.strip_suffix(b"==").or_else(|| digits.strip_suffix(b"=")).unwrap_or(&digits);
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "nullable")]
        list: Vec<u8>,
        #[serde(default, deserialize_with = "nullable")]
        text: String,
    }

    #[test]
    fn missing_and_null_are_the_default() -> Result<(), serde_json::Error> {
        let empty = Probe { list: vec![], text: String::new() };
        assert_eq!(serde_json::from_str::<Probe>("{}")?, empty);
        assert_eq!(serde_json::from_str::<Probe>(r#"{"list": null, "text": null}"#)?, empty);
        assert_eq!(
            serde_json::from_str::<Probe>(r#"{"list": [1], "text": "x", "extra": {"a": null}}"#)?,
            Probe { list: vec![1], text: "x".into() }
        );
        Ok(())
    }

    #[test]
    fn base64_decodes_padded_unpadded_and_rejects_garbage() {
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").as_deref(), Some(&b"hello world"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("a*cd"), None);
    }
}
