//! Loom in one screen: a tool, an agent, a conversation — offline, on the scripted model.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use loomflow::prelude::*;
use serde_json::json;

/// Look up the current weather in a city.
#[tool(read_only)]
async fn weather(
    /// The city, e.g. "Paris".
    city: String,
) -> Result<String, ToolError> {
    match city.as_str() {
        "Paris" => Ok("sunny, 22°C".to_owned()),
        "Oslo" => Ok("snow, -3°C".to_owned()),
        other => Err(ToolError::new(format!("no weather station in {other}; try Paris or Oslo"))),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The scripted model plays the LLM: first it calls the tool, then it answers.
    // Swap in `.model("gpt-4.1-mini")` (with the `openai` feature) and nothing else changes.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("weather", json!({"city": "Paris"})),
        ScriptedTurn::text("It is sunny and 22°C in Paris: no umbrella needed."),
    ]);
    let agent = Agent::new("You answer questions about the weather. Use the weather tool.")
        .name("weather-bot")
        .model(loomflow::model::from_env_or(model)?)
        .tool(WeatherTool);

    println!("tool schema the model sees:\n{}\n", serde_json::to_string_pretty(WeatherTool.definition().parameters())?);

    let result = agent.run("Do I need an umbrella in Paris today?").user("alice").session("conv-1").await?;

    for message in &result.messages {
        match message {
            Message::System { content } => println!("system    │ {content}"),
            Message::User { content } => println!("user      │ {}", content.text()),
            Message::Assistant { content, tool_calls } => {
                for call in tool_calls {
                    println!("tool call │ {}({})", call.name, call.arguments);
                }
                if !content.is_empty() {
                    println!("assistant │ {}", content.text());
                }
            }
            Message::Tool(r) => println!("tool      │ {} → {}", r.name, r.content.text()),
            _ => {}
        }
    }
    println!(
        "\n{} model calls, {} tool call, {} tokens in, {} tokens out, run {}",
        result.turns, result.tool_calls, result.usage.input_tokens, result.usage.output_tokens, result.run_id
    );
    Ok(())
}
