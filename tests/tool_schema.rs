//! The JSON schema `#[tool]` derives for every supported parameter shape.

use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// A point on the map.
#[allow(dead_code)]
#[derive(Debug, Deserialize, JsonSchema)]
struct Point {
    /// Latitude in degrees.
    lat: f64,
    lon: f64,
}

/// How to travel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Walk,
    Bike,
    PublicTransport,
}

/// A stop on the way, tagged by kind.
#[allow(dead_code)]
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Stop {
    Cafe { name: String },
    Viewpoint { height_m: u32 },
}

/// Plan a trip.
#[tool(read_only)]
#[allow(clippy::too_many_arguments)]
fn plan(
    ctx: &RunContext,
    /// How many people travel.
    people: u8,
    /// Days of travel.
    days: i64,
    budget: f64,
    accessible: bool,
    /// The traveller's name.
    name: String,
    tags: Vec<String>,
    note: Option<String>,
    start: Point,
    mode: Mode,
    stops: Vec<Stop>,
) -> String {
    let _ = (ctx, people, days, budget, accessible, name, tags, note, start, mode, stops);
    String::new()
}

fn property(name: &str) -> serde_json::Value {
    PlanTool.definition().parameters()["properties"][name].clone()
}

#[test]
fn the_schema_is_an_object_with_the_required_arguments() {
    let def = PlanTool.definition();
    assert_eq!(def.name(), "plan");
    assert_eq!(def.description(), "Plan a trip.");
    assert!(def.hints().read_only);
    let params = def.parameters();
    assert_eq!(params["type"], "object");
    assert_eq!(params["additionalProperties"], false);
    assert_eq!(
        params["required"],
        json!(["people", "days", "budget", "accessible", "name", "tags", "start", "mode", "stops"])
    );
    // The context parameter is not an argument.
    assert!(params["properties"].get("ctx").is_none());
    assert_eq!(params["properties"].as_object().map(|p| p.len()), Some(10));
}

#[test]
fn integers() {
    assert_eq!(
        property("people"),
        json!({"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255, "description": "How many people travel."})
    );
    assert_eq!(property("days"), json!({"type": "integer", "format": "int64", "description": "Days of travel."}));
}

#[test]
fn floats_bools_strings() {
    assert_eq!(property("budget"), json!({"type": "number", "format": "double"}));
    assert_eq!(property("accessible"), json!({"type": "boolean"}));
    assert_eq!(property("name"), json!({"type": "string", "description": "The traveller's name."}));
}

#[test]
fn vectors_and_options() {
    assert_eq!(property("tags"), json!({"type": "array", "items": {"type": "string"}}));
    assert_eq!(property("note"), json!({"type": ["string", "null"]}));
}

#[test]
fn nested_structs_are_inlined_with_their_docs() {
    assert_eq!(
        property("start"),
        json!({
            "type": "object",
            "description": "A point on the map.",
            "properties": {
                "lat": {"type": "number", "format": "double", "description": "Latitude in degrees."},
                "lon": {"type": "number", "format": "double"}
            },
            "required": ["lat", "lon"]
        })
    );
}

#[test]
fn enums() {
    assert_eq!(
        property("mode"),
        json!({"type": "string", "description": "How to travel.", "enum": ["walk", "bike", "public_transport"]})
    );
    let stops = property("stops");
    assert_eq!(stops["type"], "array");
    let variants = stops["items"]["oneOf"].as_array().cloned().unwrap_or_default();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["properties"]["kind"], json!({"type": "string", "const": "cafe"}));
    assert_eq!(variants[1]["required"], json!(["kind", "height_m"]));
}

/// Takes nothing.
#[tool]
fn ping() -> &'static str {
    "pong"
}

#[test]
fn a_tool_without_arguments_has_an_empty_object_schema() {
    assert_eq!(
        PingTool.definition().parameters(),
        &json!({"type": "object", "properties": {}, "additionalProperties": false})
    );
}

#[tokio::test]
async fn the_function_stays_callable_and_the_tool_parses_its_arguments() -> anyhow::Result<()> {
    assert_eq!(ping(), "pong");
    let ctx = RunContext::new(UserId::anonymous());
    let out = PingTool.call(&ctx, "").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(out.as_text(), "pong");
    let out = PlanTool
        .call(
            &ctx,
            r#"{"people": "2", "days": 3, "budget": 100, "accessible": true, "name": "Ada",
                "tags": [], "start": {"lat": 1, "lon": 2}, "mode": "bike",
                "stops": [{"kind": "cafe", "name": "Blue"}]}"#,
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    Ok(())
}
