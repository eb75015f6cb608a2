//! One agent turn, with one tool, on the model named by `LOOM_MODEL` (default `echo`,
//! offline). Prints the answer, the tokens used and the cost.
//!
//! ```sh
//! cargo run --example chat -- "What time is it in Tokyo?"
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run --example chat -- "What time is it in Tokyo?"
//! LOOM_MODEL=gpt-4.1-mini OPENAI_BASE_URL=http://localhost:8000/v1 cargo run --example chat   # any compatible server
//! LOOM_MODEL=claude-sonnet-4-5 ANTHROPIC_API_KEY=... cargo run --example chat
//! ```

use loomflow::model;
use loomflow::prelude::*;

/// The current time in a city, as an offset from UTC.
#[tool(read_only)]
fn local_time(
    /// The city, e.g. "Tokyo".
    city: String,
) -> Result<String, ToolError> {
    let offset = match city.to_lowercase().as_str() {
        "tokyo" => 9,
        "paris" => 1,
        "new york" => -5,
        other => return Err(ToolError::new(format!("no time zone known for {other}; try Tokyo, Paris or New York"))),
    };
    Ok(format!("UTC{offset:+}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let question = std::env::args().nth(1).unwrap_or_else(|| "What time zone is Tokyo in?".to_owned());
    let model = model::from_env_or("echo")?;
    println!("model: {}", model.name());
    let agent =
        Agent::new("You answer briefly. Use the local_time tool for time zones.").model(model).tool(LocalTimeTool);

    let result = agent.run(question).user("cli").await?;
    println!("answer: {}", result.output);
    println!(
        "tokens: {} in ({} cached), {} out; {} model call(s), {} tool call(s)",
        result.usage.input_tokens,
        result.usage.cached_input_tokens,
        result.usage.output_tokens,
        result.turns,
        result.tool_calls
    );
    match result.cost_usd {
        Some(cost) => println!("cost: ${cost:.6}"),
        None => println!("cost: unknown for this model"),
    }
    Ok(())
}
