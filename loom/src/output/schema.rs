//! Output schemas: built once per type, in every provider's dialect.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use schemars::JsonSchema;
use serde_json::{Map, Value};

/// The property that holds the value when an output type is not a JSON object (an enum, a
/// list, a number): providers want an object at the root, so Loom asks for `{"value": ...}`.
pub const WRAP_KEY: &str = "value";

/// The JSON schema of an output type, in the forms the providers accept.
///
/// Built once per Rust type (the first time an agent asks for that output) and shared.
#[derive(Debug)]
pub struct OutputSchema {
    name: String,
    plain: Arc<Value>,
    strict: Option<Arc<Value>>,
    wrapped: bool,
    compact: String,
    /// The instruction to answer in this schema's JSON, made at the first use.
    directive: OnceLock<String>,
}

impl OutputSchema {
    /// The schema of `T`, from the process-wide cache.
    pub fn of<T: JsonSchema + 'static>() -> Arc<Self> {
        static CACHE: OnceLock<RwLock<HashMap<TypeId, Arc<OutputSchema>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = TypeId::of::<T>();
        if let Some(s) = cache.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Arc::clone(s);
        }
        let built = Arc::new(Self::build::<T>());
        let mut w = cache.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(w.entry(key).or_insert(built))
    }

    fn build<T: JsonSchema>() -> Self {
        let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.meta_schema = None);
        let root = settings.into_generator().into_root_schema_for::<T>().to_value();
        let name = sanitize_name(&T::schema_name());
        let (plain, wrapped) = if is_object_schema(&root) { (root, false) } else { (wrap(root), true) };
        let strict = to_openai_strict(&plain).map(Arc::new);
        let compact = serde_json::to_string(&plain).unwrap_or_default();
        Self { name, plain: Arc::new(plain), strict, wrapped, compact, directive: OnceLock::new() }
    }

    /// The instruction to answer with one JSON value valid against the schema, as it goes in
    /// a system prompt.
    pub(crate) fn directive(&self) -> &str {
        self.directive.get_or_init(|| super::directive(self))
    }

    /// A name for the schema, as providers require one (`[a-zA-Z0-9_-]`, at most 64).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Plain JSON Schema (2020-12, `$defs` and `$ref` kept), as Anthropic and Gemini accept.
    pub fn plain(&self) -> &Arc<Value> {
        &self.plain
    }

    /// The schema in OpenAI's strict subset, or `None` when the type cannot be expressed in it
    /// (a map with free keys); then the schema is sent without `strict`.
    pub fn openai_strict(&self) -> Option<&Arc<Value>> {
        self.strict.as_ref()
    }

    /// Whether the type is wrapped as `{"value": ...}` because it is not a JSON object.
    pub fn is_wrapped(&self) -> bool {
        self.wrapped
    }

    /// The plain schema on one line, for prompts.
    pub fn compact(&self) -> &str {
        &self.compact
    }
}

fn sanitize_name(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    s.truncate(64);
    if s.is_empty() { "output".to_owned() } else { s }
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object") && schema.get("properties").is_some()
}

fn wrap(mut inner: Value) -> Value {
    let defs = inner.as_object_mut().and_then(|o| o.remove("$defs"));
    let mut root = Map::new();
    root.insert("type".into(), "object".into());
    root.insert("properties".into(), Value::Object(Map::from_iter([(WRAP_KEY.to_owned(), inner)])));
    root.insert("required".into(), Value::Array(vec![WRAP_KEY.into()]));
    if let Some(defs) = defs {
        root.insert("$defs".into(), defs);
    }
    Value::Object(root)
}

/// String formats OpenAI's strict mode accepts; any other `format` is dropped.
const STRICT_FORMATS: &[&str] = &["date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"];

/// Keywords OpenAI's strict mode rejects; dropped (they only narrow what the model may say,
/// and Loom validates the parsed value anyway).
const STRICT_DROPPED: &[&str] = &["default", "title", "examples", "$schema", "minLength", "maxLength", "uniqueItems"];

/// Transforms a plain schema into OpenAI's strict subset: every object lists all its
/// properties as required (optional ones become nullable) and forbids others; `oneOf` becomes
/// `anyOf`, `const` a one-value `enum`; unsupported keywords and formats are dropped.
///
/// Returns `None` when the schema has an object with free-form keys (a map), which strict
/// mode cannot express.
pub fn to_openai_strict(plain: &Value) -> Option<Value> {
    let mut schema = plain.clone();
    strictify(&mut schema).then_some(schema)
}

fn strictify(schema: &mut Value) -> bool {
    let Some(obj) = schema.as_object_mut() else {
        return true;
    };
    for key in STRICT_DROPPED {
        obj.remove(*key);
    }
    if let Some(Value::String(f)) = obj.get("format")
        && !STRICT_FORMATS.contains(&f.as_str())
    {
        obj.remove("format");
    }
    if let Some(one_of) = obj.remove("oneOf") {
        obj.insert("anyOf".into(), one_of);
    }
    if let Some(c) = obj.remove("const") {
        obj.insert("enum".into(), Value::Array(vec![c]));
    }
    let is_object = obj.get("type").and_then(Value::as_str) == Some("object")
        || obj.get("type").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t == "object"));
    if is_object || obj.contains_key("properties") {
        match obj.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            // A map with free keys (or an open object): not expressible in strict mode.
            Some(_) => return false,
        }
        obj.insert("additionalProperties".into(), false.into());
        let required: Vec<String> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let mut all = Vec::new();
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            for (name, prop) in props.iter_mut() {
                if !required.contains(name) {
                    make_nullable(prop);
                }
                all.push(Value::String(name.clone()));
            }
        }
        obj.insert("required".into(), Value::Array(all));
    }
    let mut ok = true;
    for (key, value) in obj.iter_mut() {
        ok &= match key.as_str() {
            "properties" | "$defs" | "definitions" => match value {
                // Stopping at the first failure is fine: a failed schema is discarded.
                Value::Object(children) => children.values_mut().all(strictify),
                _ => true,
            },
            "items" | "not" | "additionalProperties" => strictify(value),
            "anyOf" | "allOf" | "prefixItems" => match value {
                Value::Array(children) => children.iter_mut().all(strictify),
                _ => true,
            },
            _ => true,
        };
    }
    ok
}

/// Lets `null` through as well: an optional property in strict mode.
fn make_nullable(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else { return };
    let null = Value::from("null");
    if let Some(Value::Array(options)) = obj.get("anyOf")
        && options.iter().any(|o| o.get("type") == Some(&null))
    {
        return;
    }
    match obj.get_mut("type") {
        Some(Value::String(t)) if t != "null" => {
            let t = std::mem::take(t);
            obj.insert("type".into(), Value::Array(vec![t.into(), "null".into()]));
            if let Some(Value::Array(values)) = obj.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
        }
        Some(Value::Array(types)) => {
            if !types.contains(&Value::from("null")) {
                types.push("null".into());
            }
        }
        _ => {
            let inner = std::mem::take(obj);
            let mut any_of = vec![Value::Object(inner), serde_json::json!({"type": "null"})];
            // Keep the description on the outside, where the model reads it.
            if let Some(Value::Object(first)) = any_of.first_mut()
                && let Some(d) = first.remove("description")
            {
                obj.insert("description".into(), d);
            }
            obj.insert("anyOf".into(), Value::Array(std::mem::take(&mut any_of)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_makes_every_property_required_and_optional_ones_nullable() {
        let plain = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "format": "int64"},
                "b": {"type": ["string", "null"]},
                "c": {"$ref": "#/$defs/C", "description": "a c"},
                "d": {"type": "string", "format": "date-time", "default": "x"}
            },
            "required": ["a"],
            "$defs": {"C": {"type": "object", "properties": {"x": {"const": 1}}, "required": ["x"]}}
        });
        let strict = to_openai_strict(&plain);
        assert_eq!(
            strict,
            Some(json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer"},
                    "b": {"type": ["string", "null"]},
                    "c": {"description": "a c", "anyOf": [{"$ref": "#/$defs/C"}, {"type": "null"}]},
                    "d": {"type": ["string", "null"], "format": "date-time"}
                },
                "required": ["a", "b", "c", "d"],
                "additionalProperties": false,
                "$defs": {"C": {
                    "type": "object",
                    "properties": {"x": {"enum": [1]}},
                    "required": ["x"],
                    "additionalProperties": false
                }}
            }))
        );
    }

    #[test]
    fn maps_cannot_be_strict() {
        let plain = json!({
            "type": "object",
            "properties": {"m": {"type": "object", "additionalProperties": {"type": "integer"}}},
            "required": ["m"]
        });
        assert_eq!(to_openai_strict(&plain), None);
    }
}
