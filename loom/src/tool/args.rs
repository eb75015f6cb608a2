//! Tool arguments from the model: parsed once, typed per parameter, leniently coerced.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why the model's arguments could not be used. It becomes an error result the model reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// The arguments are not a JSON object.
    #[error("the arguments are not valid JSON ({detail}); send one JSON object matching the tool's schema")]
    InvalidJson {
        /// What the parser said.
        detail: String,
    },
    /// A required argument is missing.
    #[error("missing required argument `{name}`")]
    Missing {
        /// The argument.
        name: String,
    },
    /// An argument has the wrong type or value.
    #[error("argument `{name}`: {detail}")]
    Invalid {
        /// The argument.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// An argument the tool does not take.
    #[error("unknown argument `{name}`{}; the tool takes: {expected}", did_you_mean(.suggestion))]
    Unknown {
        /// The argument.
        name: String,
        /// The closest known argument, if one is close.
        suggestion: Option<String>,
        /// The arguments the tool takes.
        expected: String,
    },
    /// The same argument was given twice.
    #[error("argument `{name}` is given twice")]
    Duplicate {
        /// The argument.
        name: String,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// The model's arguments to one tool call, parsed into named raw JSON values.
///
/// Each parameter is then deserialised straight from its slice of the original text into its
/// Rust type ([`take`](Arguments::take)), with no intermediate JSON tree. When that fails, a
/// lenient second attempt coerces what models commonly get wrong (`"3"` for `3`, `"true"` for
/// `true`, a number for a string, a stringified object or array); only if both fail does the
/// model get an error naming the argument.
///
/// ```
/// use loomflow::tool::Arguments;
/// let mut args = Arguments::parse(r#"{"city": "Paris", "days": "3"}"#)?;
/// let city: String = args.take("city")?;
/// let days: u32 = args.take("days")?; // coerced from "3"
/// let units: Option<String> = args.take("units")?; // missing, optional
/// args.finish(&["city", "days", "units"])?;
/// assert_eq!((city.as_str(), days, units), ("Paris", 3, None));
/// # Ok::<(), loomflow::tool::ArgumentError>(())
/// ```
pub struct Arguments<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
    used: Vec<bool>,
}

impl fmt::Debug for Arguments<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(k, v)| (k, v.get()))).finish()
    }
}

struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of arguments")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(CowKey(key)) = map.next_key::<CowKey<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A map key, borrowed from the input unless it has escapes.
struct CowKey<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for CowKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an argument name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'a> Arguments<'a> {
    /// Parses the model's raw argument text. Empty text and `null` count as no arguments.
    pub fn parse(raw: &'a str) -> Result<Self, ArgumentError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(Self { entries: Vec::new(), used: Vec::new() });
        }
        match serde_json::from_str::<Entries<'a>>(trimmed) {
            Ok(Entries(entries)) => {
                if let Some(name) = first_duplicate(&entries) {
                    return Err(ArgumentError::Duplicate { name: shown(name).into_owned() });
                }
                let used = vec![false; entries.len()];
                Ok(Self { entries, used })
            }
            Err(e) => Err(ArgumentError::InvalidJson { detail: clip(&e.to_string()) }),
        }
    }

    /// Takes argument `name` as a `T`. A missing argument is `None` for an `Option`, and an
    /// error for any type that cannot be absent.
    pub fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ArgumentError> {
        let Some(i) = self.entries.iter().position(|(k, _)| k == name) else {
            return T::deserialize(Missing).map_err(|_| ArgumentError::Missing { name: name.to_owned() });
        };
        self.used[i] = true;
        let raw = self.entries[i].1.get();
        match serde_json::from_str::<T>(raw) {
            Ok(v) => Ok(v),
            Err(strict) => {
                let coerced = serde_json::from_str::<Value>(raw).ok().and_then(|v| T::deserialize(Coerce(v)).ok());
                coerced
                    .ok_or_else(|| ArgumentError::Invalid { name: name.to_owned(), detail: without_position(&strict) })
            }
        }
    }

    /// Checks that every argument given was taken; an unknown one is an error that names the
    /// closest of `expected`.
    pub fn finish(&self, expected: &[&str]) -> Result<(), ArgumentError> {
        let Some(i) = self.used.iter().position(|u| !u) else {
            return Ok(());
        };
        let given = &self.entries[i].0;
        let suggestion = closest(given, expected.iter().copied()).map(str::to_owned);
        let name = shown(given).into_owned();
        let expected = if expected.is_empty() {
            "no arguments".to_owned()
        } else {
            expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        };
        Err(ArgumentError::Unknown { name, suggestion, expected })
    }
}

/// The first key given twice. Keys are written by the model, so there may be many: a
/// linear scan for a few, a hash set beyond.
fn first_duplicate<'e>(entries: &'e [(Cow<'_, str>, &RawValue)]) -> Option<&'e str> {
    if entries.len() <= 8 {
        return entries
            .iter()
            .enumerate()
            .find(|(i, (k, _))| entries[..*i].iter().any(|(other, _)| other == k))
            .map(|(_, (k, _))| &**k);
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    entries.iter().map(|(k, _)| &**k).find(|k| !seen.insert(*k))
}

/// Whether a value of `T` may be left out of the arguments (an `Option`, or any type that
/// deserialises from nothing). This decides `required` in the schema and the handling of a
/// missing argument, so the two can never disagree.
pub(crate) fn may_be_absent<T: DeserializeOwned>() -> bool {
    T::deserialize(Missing).is_ok()
}

/// The parser's message without its position (the model's text has no lines to point at),
/// cut to a readable length: it can quote a value of any size.
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    clip(match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => &s,
    })
}

/// `s`, cut to [`MAX_DETAIL`] characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_DETAIL) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// The longest parser message, in characters, that goes back to the model.
const MAX_DETAIL: usize = 300;

/// The closest candidate by edit distance, if it is close enough to be a likely typo (Loom's
/// one suggestion helper; absurdly long names get none).
pub(crate) fn closest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    loomflow_graph::suggest::did_you_mean(name, candidates)
}

/// The longest name, in characters, that messages repeat in full; a longer one (a model can
/// write anything) is cut.
const SHOWN_NAME: usize = 80;

/// A name written by a model or read from the network, fit to repeat in a message: cut to
/// [`SHOWN_NAME`] characters, with its full length said.
pub(crate) fn shown(name: &str) -> Cow<'_, str> {
    match name.char_indices().nth(SHOWN_NAME) {
        None => Cow::Borrowed(name),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes)", &name[..end], name.len())),
    }
}

/// A deserializer for an argument that is not there: `None` for options, an error otherwise.
struct Missing;

#[derive(Debug)]
struct MissingError;

impl fmt::Display for MissingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("missing")
    }
}

impl std::error::Error for MissingError {}

impl de::Error for MissingError {
    fn custom<M: fmt::Display>(_: M) -> Self {
        MissingError
    }
}

impl<'de> Deserializer<'de> for Missing {
    type Error = MissingError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, MissingError> {
        Err(MissingError)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, MissingError> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A JSON value that deserialises leniently: strings that hold numbers or booleans become
/// numbers or booleans, numbers and booleans become strings when a string is wanted, and a
/// string holding a JSON array or object is read as that array or object.
struct Coerce(Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Coerce {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! coerce_number {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
            match &self.0 {
                Value::String(s) => match s.trim().parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => self.0.$method(visitor),
                },
                Value::Number(n) => match n.as_f64() {
                    // 3.0 for an integer parameter.
                    Some(f) if f.fract() == 0.0 && f.is_finite() && n.is_f64() => {
                        match format!("{f:.0}").parse::<$ty>() {
                            Ok(v) => visitor.$visit(v),
                            Err(_) => self.0.$method(visitor),
                        }
                    }
                    _ => self.0.$method(visitor),
                },
                _ => self.0.$method(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Coerce {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Array(items) => visit_seq(items, visitor),
            Value::Object(map) => visit_map(map, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match &self.0 {
            Value::String(s) if s.eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            _ => self.0.deserialize_bool(visitor),
        }
    }

    coerce_number! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match &self.0 {
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) => visitor.visit_f64(n),
                Err(_) => self.0.deserialize_f64(visitor),
            },
            _ => self.0.deserialize_f64(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            other => other.deserialize_string(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Coerce(other)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Array(items) => visit_seq(items, visitor),
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Array(items)) => visit_seq(items, visitor),
                _ => Value::String(s).deserialize_seq(visitor),
            },
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, serde_json::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Object(map) => visit_map(map, visitor),
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(map)) => visit_map(map, visitor),
                _ => Value::String(s).deserialize_map(visitor),
            },
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct identifier ignored_any
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, serde_json::Error> {
    let mut seq = de::value::SeqDeserializer::new(items.into_iter().map(Coerce));
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

fn visit_map<'de, V: Visitor<'de>>(map: Map<String, Value>, visitor: V) -> Result<V::Value, serde_json::Error> {
    let mut access = de::value::MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Coerce(v))));
    let value = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[test]
    fn typed_arguments_come_straight_from_the_text() -> Result<(), ArgumentError> {
        let mut a = Arguments::parse(r#"{"a": 2, "b": [1, 2], "p": {"x": 1, "y": 2}}"#)?;
        assert_eq!(a.take::<i64>("a")?, 2);
        assert_eq!(a.take::<Vec<u8>>("b")?, vec![1, 2]);
        assert_eq!(a.take::<Point>("p")?, Point { x: 1, y: 2 });
        a.finish(&["a", "b", "p"])
    }

    #[test]
    fn common_model_mistakes_are_coerced() -> Result<(), ArgumentError> {
        let mut a = Arguments::parse(
            r#"{"n": "42", "f": "2.5", "b": "true", "s": 7, "v": "[1,2]", "p": "{\"x\":1,\"y\":2}", "w": 3.0}"#,
        )?;
        assert_eq!(a.take::<u32>("n")?, 42);
        assert_eq!(a.take::<f64>("f")?, 2.5);
        assert!(a.take::<bool>("b")?);
        assert_eq!(a.take::<String>("s")?, "7");
        assert_eq!(a.take::<Vec<i32>>("v")?, vec![1, 2]);
        assert_eq!(a.take::<Point>("p")?, Point { x: 1, y: 2 });
        assert_eq!(a.take::<i64>("w")?, 3);
        Ok(())
    }

    #[test]
    fn errors_name_the_argument() -> Result<(), ArgumentError> {
        let mut a = Arguments::parse(r#"{"a": "two"}"#)?;
        let e = a.take::<i64>("a").err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("argument `a`: invalid type: string \"two\", expected i64".to_owned())
        );
        let e = a.take::<i64>("b").err();
        assert_eq!(e, Some(ArgumentError::Missing { name: "b".into() }));
        assert_eq!(a.take::<Option<i64>>("c")?, None);
        Ok(())
    }

    #[test]
    fn unknown_arguments_get_a_suggestion() -> Result<(), ArgumentError> {
        let mut a = Arguments::parse(r#"{"citty": "Paris"}"#)?;
        let _ = a.take::<Option<String>>("city")?;
        let e = a.finish(&["city", "days"]).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("unknown argument `citty` (did you mean `city`?); the tool takes: `city`, `days`")
        );
        Ok(())
    }

    #[test]
    fn malformed_json_and_duplicates_are_reported() {
        assert!(matches!(Arguments::parse(r#"{"a": 1"#), Err(ArgumentError::InvalidJson { .. })));
        assert!(matches!(Arguments::parse("[1, 2]"), Err(ArgumentError::InvalidJson { .. })));
        assert!(matches!(Arguments::parse(r#"{"a": 1, "a": 2}"#), Err(ArgumentError::Duplicate { .. })));
        // Past a few keys the check goes through a set; a duplicate is still found, by name.
        let many: Vec<String> = (0..20).map(|i| format!(r#""k{i}": {i}"#)).collect();
        let twice = format!("{{{}, \"k3\": 0}}", many.join(", "));
        assert!(matches!(Arguments::parse(&twice), Err(ArgumentError::Duplicate { name }) if name == "k3"));
        assert!(Arguments::parse(&format!("{{{}}}", many.join(", "))).is_ok());
        assert!(Arguments::parse("").is_ok());
        assert!(Arguments::parse("null").is_ok());
    }

    #[test]
    fn absence_is_decided_by_the_type() {
        assert!(may_be_absent::<Option<String>>());
        assert!(!may_be_absent::<String>());
        assert!(!may_be_absent::<Vec<u8>>());
    }
}
