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
}
