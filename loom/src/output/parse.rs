//! Parsing a model's answer into a typed value, tolerating what models really write.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::schema::WRAP_KEY;

/// Finds the JSON in a model's answer: the text itself, the inside of a code fence
/// (```` ```json ````), or the one JSON object or array that prose surrounds.
///
/// Returns the JSON slice, or a message for the model when there is none.
pub(crate) fn extract_json(text: &str) -> Result<&str, String> {
    let text = text.trim();
    let text = strip_fence(text);
    if text.starts_with('{') || text.starts_with('[') {
        return Ok(text);
    }
    // A bare value (a string, a number) for an output type that is not an object.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return Ok(text);
    }
    let start = text.find(['{', '[']).ok_or_else(|| "the answer contains no JSON object".to_owned())?;
    let candidate = &text[start..];
    match balanced_end(candidate) {
        Some(end) => Ok(&candidate[..end]),
        // Unbalanced: hand it to the parser, whose error says where it breaks.
        None => Ok(candidate),
    }
}

fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        // A fence after some prose: use the fenced block.
        if let Some(i) = text.find("\n```") {
            let after = &text[i + 1..];
            if after.starts_with("```") {
                return strip_fence(after);
            }
        }
        return text;
    };
    // Drop the language tag line (```json).
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    let body = match body.rfind("```") {
        Some(end) => &body[..end],
        None => body,
    };
    body.trim()
}

/// The end (exclusive) of the JSON value at the start of `s`, by bracket matching that
/// skips strings; `None` if the brackets never balance.
fn balanced_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses the JSON of an answer into `T`: strict JSON (a trailing comma is an error), and an
/// error message that names the field at fault. The happy path deserialises straight from the
/// text; only a failed attempt looks at the JSON as a tree.
pub(crate) fn parse_value<T: DeserializeOwned>(json: &str, wrapped: bool) -> Result<T, String> {
    let first = if wrapped {
        match from_str::<Wrapped<T>>(json) {
            Ok(w) => return Ok(w.value),
            Err(e) if e.malformed => return Err(e.message),
            Err(_) => from_str::<T>(json),
        }
    } else {
        from_str::<T>(json)
    };
    let error = match first {
        Ok(v) => return Ok(v),
        // Malformed JSON cannot be read as a tree either.
        Err(e) if e.malformed => return Err(e.message),
        Err(e) => e.message,
    };
    // Strict-mode providers send `null` for optional fields; a type with a default rather
    // than an `Option` wants the field left out instead.
    if let Ok(mut value) = serde_json::from_str::<Value>(json)
        && strip_nulls(&mut value)
    {
        let value = if wrapped { unwrap_value(value) } else { value };
        if let Ok(v) = T::deserialize(value) {
            return Ok(v);
        }
    }
    Err(error)
}

#[derive(serde::Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Wrapped<T> {
    value: T,
}

/// Why JSON did not parse: the message for the model, and whether the JSON itself is broken
/// (rather than of the wrong shape).
struct ParseFailure {
    message: String,
    malformed: bool,
}

fn from_str<T: DeserializeOwned>(json: &str) -> Result<T, ParseFailure> {
    // The answer usually fits: read it straight. Only a failure is read again, tracking the
    // path to the field that is wrong, for the message.
    if let Ok(value) = serde_json::from_str::<T>(json) {
        return Ok(value);
    }
    let malformed =
        |e: &dyn std::fmt::Display| ParseFailure { message: format!("the JSON is malformed: {e}"), malformed: true };
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            malformed(&inner)
        } else {
            let inner = without_position(&inner.to_string());
            let message = if path == "." || path == "value" { inner } else { format!("`{path}`: {inner}") };
            ParseFailure { message, malformed: false }
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn without_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// `{"value": X}` becomes `X`; a bare value is accepted as well.
fn unwrap_value(value: Value) -> Value {
    match value {
        Value::Object(mut map) if map.len() == 1 && map.contains_key(WRAP_KEY) => {
            map.remove(WRAP_KEY).unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Removes `null` members of objects, recursively; returns whether any were removed.
fn strip_nulls(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            let mut changed = map.len() != before;
            for v in map.values_mut() {
                changed |= strip_nulls(v);
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for v in items {
                changed |= strip_nulls(v);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct CityTemp {
        city: String,
        temp_c: f64,
    }

    #[test]
    fn finds_json_in_fences_and_prose() {
        let expected = Ok(r#"{"a": 1}"#);
        assert_eq!(extract_json(r#"{"a": 1}"#), expected);
        assert_eq!(extract_json("```json\n{\"a\": 1}\n```"), expected);
        assert_eq!(extract_json("```\n{\"a\": 1}\n```\n"), expected);
        assert_eq!(extract_json("Here you go:\n```json\n{\"a\": 1}\n```\nAnything else?"), expected);
        assert_eq!(extract_json("Sure! {\"a\": 1} Hope that helps."), expected);
        assert_eq!(extract_json("Result: {\"s\": \"}{\", \"n\": [1]} done"), Ok("{\"s\": \"}{\", \"n\": [1]}"));
        assert!(extract_json("no json here").is_err());
    }

    #[test]
    fn trailing_commas_are_errors_with_a_message() {
        let err = parse_value::<CityTemp>(r#"{"city": "Paris", "temp_c": 21.5,}"#, false).err().unwrap_or_default();
        assert!(err.contains("trailing comma"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_value::<CityTemp>(r#"{"city": "Paris", "temp_c": "warm"}"#, false).err().unwrap_or_default();
        assert_eq!(err, "`temp_c`: invalid type: string \"warm\", expected f64");
        let err = parse_value::<CityTemp>(r#"{"city": "Paris"}"#, false).err().unwrap_or_default();
        assert_eq!(err, "missing field `temp_c`");
        let err =
            parse_value::<Vec<CityTemp>>(r#"[{"city": "Paris", "temp_c": true}]"#, false).err().unwrap_or_default();
        assert_eq!(err, "`[0].temp_c`: invalid type: boolean `true`, expected f64");
        let err = parse_value::<CityTemp>(r#"{"city": "Paris", "temp_c": 21.5"#, false).err().unwrap_or_default();
        assert!(err.starts_with("the JSON is malformed: EOF while parsing an object"), "{err}");
    }

    #[test]
    fn wrapped_values_are_unwrapped_and_nulls_dropped_when_needed() {
        assert_eq!(parse_value::<Vec<u8>>(r#"{"value": [1, 2]}"#, true), Ok(vec![1, 2]));
        assert_eq!(parse_value::<Vec<u8>>("[1, 2]", true), Ok(vec![1, 2]));

        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct WithDefault {
            #[serde(default)]
            n: u32,
        }
        assert_eq!(parse_value::<WithDefault>(r#"{"n": null}"#, false), Ok(WithDefault { n: 0 }));
    }
}
