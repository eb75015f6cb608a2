//! Keys that take a name or a table: `architecture = "reflexion"` or `[architecture]` with
//! `name = "reflexion"` and parameters; `permissions = "bypass"` or `[permissions]`.

use std::fmt;
use std::marker::PhantomData;

use schemars::{Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::types::{ArchitectureConfig, PermissionsConfig};

/// A name stands for a table holding only `key = name`.
struct NameOrTable<T> {
    key: &'static str,
    expecting: &'static str,
    _type: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for NameOrTable<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        let mut table = serde_json::Map::with_capacity(1);
        table.insert(self.key.to_owned(), serde_json::Value::String(name.to_owned()));
        T::deserialize(serde_json::Value::Object(table)).map(Some).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

pub(super) fn architecture<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ArchitectureConfig>, D::Error> {
    d.deserialize_any(NameOrTable {
        key: "name",
        expecting: "an architecture's name (\"react\") or a table with `name` and its parameters",
        _type: PhantomData,
    })
}

pub(super) fn permissions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PermissionsConfig>, D::Error> {
    d.deserialize_any(NameOrTable {
        key: "mode",
        expecting: "a mode (\"default\", \"accept_edits\", \"bypass\") or a table",
        _type: PhantomData,
    })
}

pub(super) fn architecture_schema(generator: &mut SchemaGenerator) -> Schema {
    let table = generator.subschema_for::<ArchitectureConfig>();
    json_schema!({
        "description": "The loop: a name, or a table with `name` and the architecture's parameters.",
        "anyOf": [
            { "type": "string", "enum": crate::arch::ARCHITECTURE_NAMES },
            table,
        ]
    })
}

pub(super) fn permissions_schema(generator: &mut SchemaGenerator) -> Schema {
    let mode = generator.subschema_for::<crate::governance::Mode>();
    let table = generator.subschema_for::<PermissionsConfig>();
    json_schema!({
        "description": "Which tools run, ask or are denied: a mode, or a table.",
        "anyOf": [mode, table]
    })
}
