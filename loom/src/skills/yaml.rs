//! The frontmatter's YAML as a tree whose every key and value knows its line and column.
//!
//! Parsing goes through `serde-saphyr` (a pure-Rust, panic-free YAML parser with limits on
//! alias expansion and nesting) into [`Node`]s wrapped in `Spanned`, so a check that runs after
//! parsing — a name that breaks the rules, a description that is too long — can still point at
//! the line it is on.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A position in the YAML text: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: u32,
    pub(super) column: u32,
}

impl Pos {
    fn of<T>(spanned: &Spanned<T>) -> Option<Self> {
        let at = spanned.referenced;
        let line = u32::try_from(at.line()).ok().filter(|&l| l > 0)?;
        let column = u32::try_from(at.column()).unwrap_or(0);
        Some(Self { line, column })
    }
}

/// A YAML value.
#[derive(Debug)]
pub(super) enum Node {
    /// A scalar or null, as JSON.
    Scalar(Value),
    /// A sequence.
    Seq(Vec<Item>),
    /// A mapping, in the order written (duplicates kept: the caller reports them).
    Map(Vec<Entry>),
}

/// A value and where it is.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) node: Node,
    pub(super) pos: Option<Pos>,
}

/// A mapping entry: the key, where it is, and the value.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) key_pos: Option<Pos>,
    pub(super) value: Item,
}

impl Node {
    /// What kind of value this is, for "expected a string, found a list".
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Scalar(Value::Null) => "nothing (null)",
            Self::Scalar(Value::Bool(_)) => "a boolean",
            Self::Scalar(Value::Number(_)) => "a number",
            Self::Scalar(Value::String(_)) => "a string",
            Self::Scalar(_) => "a value",
            Self::Seq(_) => "a list",
            Self::Map(_) => "a mapping",
        }
    }

    /// The value as JSON (positions dropped).
    pub(super) fn to_json(&self) -> Value {
        match self {
            Self::Scalar(v) => v.clone(),
            Self::Seq(items) => Value::Array(items.iter().map(|i| i.node.to_json()).collect()),
            Self::Map(entries) => {
                Value::Object(entries.iter().map(|e| (e.key.clone(), e.value.node.to_json())).collect())
            }
        }
    }
}

impl From<Spanned<Node>> for Item {
    fn from(s: Spanned<Node>) -> Self {
        let pos = Pos::of(&s);
        Self { node: s.value, pos }
    }
}

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_string())))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        // JSON has no infinities: keep those as the text they were.
        Ok(Node::Scalar(serde_json::Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(String::from_utf8_lossy(v).into_owned())))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(Item::from(item));
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let key_pos = Pos::of(&key);
            let value: Spanned<Node> = map.next_value()?;
            entries.push(Entry { key: key.value, key_pos, value: value.into() });
        }
        Ok(Node::Map(entries))
    }
}

/// A YAML syntax error: what the parser said, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SyntaxError {
    pub(super) message: String,
    pub(super) pos: Option<Pos>,
}

/// Parses one YAML document. Duplicate keys are kept (the caller reports them with both
/// lines); only YAML 1.2 booleans are booleans (`yes` stays a string).
pub(super) fn parse(text: &str) -> Result<Item, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    match serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options) {
        Ok(root) => Ok(root.into()),
        Err(e) => {
            let pos = e.location().and_then(|at| {
                let line = u32::try_from(at.line()).ok().filter(|&l| l > 0)?;
                Some(Pos { line, column: u32::try_from(at.column()).unwrap_or(0) })
            });
            let rendered =
                e.render_with_options(serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off });
            Err(SyntaxError { message: without_position(&rendered), pos })
        }
    }
}

/// The parser ends its messages with " at line L, column C" counted in the YAML alone; the
/// caller says where, counted in the file.
fn without_position(message: &str) -> String {
    let message = message.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(i) = message.rfind(" at line ")
        && let Some((line, column)) = message[i + " at line ".len()..].split_once(", column ")
        && digits(line)
        && digits(column)
    {
        return message[..i].to_owned();
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(item: &Item) -> &[Entry] {
        match &item.node {
            Node::Map(entries) => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn keys_and_values_know_their_lines() -> Result<(), SyntaxError> {
        let root = parse("name: pdf\ndescription: >\n  folded\n  text\nrequires: [a, b]\n")?;
        let entries = map(&root);
        let keys: Vec<(&str, u32)> =
            entries.iter().map(|e| (e.key.as_str(), e.key_pos.map_or(0, |p| p.line))).collect();
        assert_eq!(keys, [("name", 1), ("description", 2), ("requires", 5)]);
        assert_eq!(entries[1].value.node.to_json(), Value::String("folded text\n".into()));
        match &entries[2].value.node {
            Node::Seq(items) => assert_eq!(items[1].pos, Some(Pos { line: 5, column: 15 })),
            other => panic!("not a list: {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_caller() -> Result<(), SyntaxError> {
        let root = parse("name: a\nname: b\n")?;
        assert_eq!(map(&root).len(), 2);
        Ok(())
    }

    #[test]
    fn yes_is_a_string_not_a_boolean() -> Result<(), SyntaxError> {
        let root = parse("a: yes\nb: true\n")?;
        assert_eq!(root.node.to_json(), serde_json::json!({"a": "yes", "b": true}));
        Ok(())
    }

    #[test]
    fn syntax_errors_say_where_without_the_parsers_own_suffix() {
        let err = parse("name: pdf\ndescription: [unclosed\n").err();
        let err = err.as_ref();
        assert_eq!(err.and_then(|e| e.pos).map(|p| p.line), Some(2));
        let message = err.map(|e| e.message.as_str()).unwrap_or_default();
        assert!(message.contains("unclosed"), "{message}");
        assert!(!message.contains("at line"), "{message}");
    }
}
