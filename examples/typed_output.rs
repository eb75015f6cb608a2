//! A typed output: the model's first answer is malformed, Loom sends the parse error back,
//! and the second answer becomes a validated Rust value.
//!
//! ```sh
//! cargo run --example typed_output
//! ```

use futures::StreamExt as _;
use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

/// The weather in a city.
#[derive(Debug, Deserialize, JsonSchema)]
struct Weather {
    /// The city's name.
    city: String,
    /// The temperature in degrees Celsius.
    temp_c: f64,
    /// Sunny, cloudy, rainy...
    conditions: String,
}

impl Validate for Weather {
    fn validate(&self) -> Result<(), String> {
        if (-90.0..=60.0).contains(&self.temp_c) {
            Ok(())
        } else {
            Err(format!("temp_c must be between -90 and 60, not {}", self.temp_c))
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        // A closing brace is missing: not valid JSON.
        ScriptedTurn::text(r#"{"city": "Tokyo", "temp_c": 22, "conditions": "sunny""#),
        // Valid JSON, but 220 degrees fails validation.
        ScriptedTurn::text("```json\n{\"city\": \"Tokyo\", \"temp_c\": 220, \"conditions\": \"sunny\"}\n```"),
        // Right.
        ScriptedTurn::text(r#"Here it is: {"city": "Tokyo", "temp_c": 22, "conditions": "sunny"}"#),
    ]);
    let agent = Agent::new("Extract the weather report as data.")
        .model(loomflow::model::from_env_or(model)?)
        .output::<Weather>()
        .validated()
        .output_retries(2);

    let mut stream = agent.run("Tokyo today: sunny, 22C.").stream();
    while let Some(event) = stream.next().await {
        if let EventKind::OutputRejected { attempt, error } = event.kind {
            println!("answer {attempt} rejected: {error}");
        }
    }
    let result = stream.into_result()?;
    let weather: Weather = result.output;
    println!("after {} model calls: {weather:?}", result.turns);
    println!("{} is {}°C and {}", weather.city, weather.temp_c, weather.conditions);
    Ok(())
}
