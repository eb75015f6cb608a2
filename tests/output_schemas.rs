//! The output schemas Loom sends, per provider dialect, for a dozen kinds of types.
//!
//! Each snapshot holds the plain JSON Schema (Anthropic, Gemini) and OpenAI's strict form; a
//! change to either shows up as a reviewable diff under `tests/snapshots/`.

#![allow(dead_code)]

use std::collections::HashMap;

use loomflow::output::OutputSchema;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

fn dialects<T: JsonSchema + 'static>() -> serde_json::Value {
    let s = OutputSchema::of::<T>();
    json!({
        "name": s.name(),
        "wrapped": s.is_wrapped(),
        "plain": s.plain().as_ref(),
        "openai_strict": s.openai_strict().map(|v| v.as_ref().clone()),
    })
}

macro_rules! snapshot {
    ($name:ident, $ty:ty) => {
        #[test]
        fn $name() {
            insta::assert_json_snapshot!(dialects::<$ty>());
        }
    };
}

/// The weather in a city.
#[derive(Deserialize, JsonSchema)]
struct CityTemp {
    /// The city's name.
    city: String,
    temp_c: f64,
}

#[derive(Deserialize, JsonSchema)]
struct Address {
    street: String,
    zip: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct Person {
    name: String,
    age: u8,
    emails: Vec<String>,
    address: Option<Address>,
    #[serde(default)]
    vip: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Priority {
    Low,
    Normal,
    Urgent,
}

#[derive(Deserialize, JsonSchema)]
struct Ticket {
    title: String,
    priority: Priority,
}

#[derive(Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Shape {
    Circle { radius: f64 },
    Rectangle { width: f64, height: f64 },
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum IdOrName {
    Id(u64),
    Name(String),
}

#[derive(Deserialize, JsonSchema)]
struct Lookup {
    key: IdOrName,
}

#[derive(Deserialize, JsonSchema)]
enum Command {
    Stop,
    Move { x: i32, y: i32 },
}

#[derive(Deserialize, JsonSchema)]
struct Inventory {
    counts: HashMap<String, u32>,
}

#[derive(Deserialize, JsonSchema)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[derive(Deserialize, JsonSchema)]
struct Meters(f64);

#[derive(Deserialize, JsonSchema)]
struct Numbers {
    small: i8,
    big: u64,
    ratio: f32,
    flag: bool,
}

snapshot!(plain_struct, CityTemp);
snapshot!(nested_struct_with_options_and_vectors, Person);
snapshot!(unit_enum_field, Ticket);
snapshot!(internally_tagged_enum, Shape);
snapshot!(untagged_enum_field, Lookup);
snapshot!(externally_tagged_enum, Command);
snapshot!(map_field, Inventory);
snapshot!(recursive_struct, Tree);
snapshot!(vector_at_the_root, Vec<CityTemp>);
snapshot!(newtype_at_the_root, Meters);
snapshot!(numbers, Numbers);
snapshot!(unit_enum_at_the_root, Priority);

#[test]
fn schemas_are_built_once_per_type() {
    let a = OutputSchema::of::<CityTemp>();
    let b = OutputSchema::of::<CityTemp>();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
