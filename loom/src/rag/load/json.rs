//! JSON and JSON Lines: one document per record, its text either the whole record as
//! readable `key: value` lines or one field of it.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Format, LoadError, Parsed};
use crate::rag::Document;

/// Where a record comes from, for its id, metadata and messages.
#[derive(Clone, Copy)]
enum Place {
    /// The whole file.
    Whole,
    /// The N-th element of a top-level array, from 1.
    Item(u64),
    /// A JSON Lines line, from 1.
    Line(u64),
}

/// `.json`: an array gives one document per element (`source#item=N`), anything else one.
pub(super) fn load(source: &str, text: &str, text_field: Option<&str>) -> Parsed {
    let mut parsed = Parsed::default();
    let value: Json = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            parsed.problems.push(parse_error(source, Format::Json, &e, None));
            return parsed;
        }
    };
    match value {
        Json::Array(items) => {
            for (n, item) in (1u64..).zip(items) {
                parsed.push(record(source, Format::Json, Place::Item(n), item, text_field));
            }
        }
        value => parsed.push(record(source, Format::Json, Place::Whole, value, text_field)),
    }
    parsed
}

/// `.jsonl`: one document per non-blank line (`source#line=N`); a line that is not JSON is a
/// problem and the others load.
pub(super) fn load_lines(source: &str, text: &str, text_field: Option<&str>) -> Parsed {
    let mut parsed = Parsed::default();
    for (n, line) in (1u64..).zip(text.lines()) {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(line) {
            Ok(value) => parsed.push(record(source, Format::JsonLines, Place::Line(n), value, text_field)),
            Err(e) => parsed.problems.push(parse_error(source, Format::JsonLines, &e, Some(n))),
        }
    }
    parsed
}

fn parse_error(source: &str, format: Format, e: &serde_json::Error, line: Option<u64>) -> LoadError {
    // serde_json counts lines within what it was given: the whole file, or one line.
    let at = u64::try_from(e.line()).unwrap_or(u64::MAX);
    let column = u64::try_from(e.column()).ok().filter(|&c| c > 0);
    let message = e.to_string();
    // Its message ends with " at line L column C", which the error shows on its own.
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_owned();
    LoadError::Parse { path: source.into(), format, line: line.or((at > 0).then_some(at)), column, message }
}

fn record(
    source: &str,
    format: Format,
    place: Place,
    value: Json,
    text_field: Option<&str>,
) -> Result<Document, LoadError> {
    let id = match place {
        Place::Whole => source.to_owned(),
        Place::Item(n) => format!("{source}#item={n}"),
        Place::Line(n) => format!("{source}#line={n}"),
    };
    let mut document = Document::new(id, "").with("source", source).with("format", format.name());
    match place {
        Place::Whole => {}
        Place::Item(n) => document = document.with("item", n),
        Place::Line(n) => document = document.with("line", n),
    }
    let Some(field) = text_field else {
        document.text = render(&value);
        return Ok(document);
    };
    let Some(text) = value.find(field) else {
        let record = match place {
            Place::Whole => "the value".to_owned(),
            Place::Item(n) => format!("item {n}"),
            Place::Line(n) => format!("line {n}"),
        };
        return Err(LoadError::MissingField { path: source.into(), record, field: field.to_owned() });
    };
    document.text = render(text);
    // The record's other top-level fields describe the text: keep them as metadata.
    if let Json::Object(entries) = value {
        let top = if field.starts_with('/') { field.split('/').nth(1).map(unescape) } else { Some(field.to_owned()) };
        for (key, v) in entries {
            if Some(&key) != top.as_ref() && !matches!(key.as_str(), "source" | "format" | "item" | "line") {
                document.metadata.insert(key, v.into_value());
            }
        }
    }
    Ok(document)
}

/// A JSON value that keeps its object keys in the order they were written (`serde_json`'s
/// `Value` sorts them), so records read as their authors wrote them.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of a top-level key, or at a JSON pointer (`/content/text`, `/items/0`).
    fn find(&self, field: &str) -> Option<&Json> {
        if !field.starts_with('/') {
            return self.get(field);
        }
        let mut at = self;
        for token in field.split('/').skip(1) {
            let token = unescape(token);
            at = match at {
                Json::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                other => other.get(&token)?,
            };
        }
        Some(at)
    }

    /// The value of `key` in an object (the last one, should the key repeat, as `serde_json`
    /// keeps).
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n),
            Json::String(s) => Value::String(s),
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(entries) => Value::Object(entries.into_iter().map(|(k, v)| (k, v.into_value())).collect()),
        }
    }
}

/// A JSON pointer token: `~1` is `/`, `~0` is `~`.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// A value as readable text: a string as is; an object as `key: value` lines in the order
/// written, nested keys joined by `.` and array elements numbered (`authors[0].name: Ann`);
/// an array of scalars as one comma-separated line; `null`s left out.
fn render(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(_) | Json::Number(_) => scalar(value).unwrap_or_default(),
        Json::Array(_) | Json::Object(_) => {
            let mut lines = Vec::new();
            lines_of(value, "", &mut lines);
            lines.join("\n")
        }
    }
}

fn scalar(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lines_of(value: &Json, prefix: &str, out: &mut Vec<String>) {
    let line = |out: &mut Vec<String>, text: &str| {
        out.push(if prefix.is_empty() { text.to_owned() } else { format!("{prefix}: {text}") });
    };
    match value {
        Json::Null => {}
        Json::Bool(_) | Json::Number(_) | Json::String(_) => line(out, &scalar(value).unwrap_or_default()),
        Json::Array(items) => {
            if items.iter().all(|v| scalar(v).is_some() || *v == Json::Null) {
                let all: Vec<String> = items.iter().filter_map(scalar).collect();
                if !all.is_empty() {
                    line(out, &all.join(", "));
                }
            } else {
                for (i, item) in items.iter().enumerate() {
                    lines_of(item, &format!("{prefix}[{i}]"), out);
                }
            }
        }
        Json::Object(entries) => {
            for (key, v) in entries {
                let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                lines_of(v, &key, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_render_as_key_value_lines() {
        // Written in an order that is not sorted: the text keeps it.
        let value = r#"{"releases": [{"v": "0.1"}, {"v": "0.2"}], "owner": {"login": "ann", "site": null},
            "name": "Loom", "stars": 5, "tags": ["rust", "llm"]}"#;
        let parsed = load("a.json", value, None);
        assert_eq!(
            parsed.documents[0].text,
            "releases[0].v: 0.1\nreleases[1].v: 0.2\nowner.login: ann\nname: Loom\nstars: 5\ntags: rust, llm"
        );
        assert_eq!(load("b.json", "\"plain\"", None).documents[0].text, "plain");
    }

    #[test]
    fn a_text_field_gives_the_text_and_the_rest_is_metadata() {
        let parsed = load("a.json", r#"[{"title": "T", "body": "B"}, {"title": "U"}]"#, Some("body"));
        assert_eq!(parsed.documents.len(), 1);
        assert_eq!(parsed.documents[0].text, "B");
        assert_eq!(parsed.documents[0].metadata["title"], "T");
        assert_eq!(parsed.documents[0].metadata["item"], 1);
        assert!(matches!(
            parsed.problems.as_slice(),
            [LoadError::MissingField { record, field, .. }] if record == "item 2" && field == "body"
        ));
    }

    #[test]
    fn a_json_pointer_reaches_into_records() {
        let parsed = load_lines("a.jsonl", "{\"doc\": {\"text\": \"deep\"}, \"k\": 1}\n", Some("/doc/text"));
        assert_eq!(parsed.documents[0].text, "deep");
        assert_eq!(parsed.documents[0].metadata["k"], 1);
        assert!(!parsed.documents[0].metadata.contains_key("doc"));
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let parsed = load_lines("a.jsonl", "{\"a\": 1}\n\n{oops\n{\"a\": 3}\n", None);
        let ids: Vec<&str> = parsed.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a.jsonl#line=1", "a.jsonl#line=4"]);
        assert!(matches!(parsed.problems.as_slice(), [LoadError::Parse { line: Some(3), .. }]));
    }

    #[test]
    fn invalid_json_fails_with_its_position() {
        let parsed = load("a.json", "{\n  \"a\": 1,\n  oops\n}", None);
        assert!(parsed.documents.is_empty());
        match parsed.problems.as_slice() {
            [LoadError::Parse { line: Some(3), column: Some(3), message, .. }] => {
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("expected a parse error on line 3, got {other:?}"),
        }
    }
}
