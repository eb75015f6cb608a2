//! Events printed as they arrive: the run starting, model calls, the tool call, text deltas.
//!
//! ```sh
//! cargo run --example streaming
//! ```

use std::io::Write as _;

use futures::StreamExt as _;
use loomflow::prelude::*;
use serde_json::json;

/// Convert a temperature from Celsius to Fahrenheit.
#[tool(read_only, idempotent)]
fn to_fahrenheit(celsius: f64) -> f64 {
    celsius * 9.0 / 5.0 + 32.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("to_fahrenheit", json!({"celsius": 22})),
        ScriptedTurn::text("22 degrees Celsius is 71.6 degrees Fahrenheit."),
    ]);
    let agent = Agent::new("Convert temperatures.").model(loomflow::model::from_env_or(model)?).tool(ToFahrenheitTool);

    let mut stream = agent.run("How warm is 22°C in Fahrenheit?").stream();
    let mut out = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event.kind {
            EventKind::RunStarted { .. } => writeln!(out, "[run started {}]", event.run_id)?,
            EventKind::ModelRequest { turn, messages, .. } => {
                writeln!(out, "[model call {turn}: {messages} messages]")?;
            }
            EventKind::ToolCallStarted { name, arguments, .. } => writeln!(out, "[tool {name}({arguments})]")?,
            EventKind::ToolCallFinished { name, output, .. } => writeln!(out, "[tool {name} → {output}]")?,
            EventKind::TextDelta { text, .. } => {
                write!(out, "{text}")?;
                out.flush()?;
            }
            EventKind::RunFinished { turns, usage, .. } => {
                writeln!(out, "\n[run finished: {turns} model calls, {} tokens]", usage.total_tokens())?;
            }
            _ => {}
        }
    }
    let result = stream.into_result()?;
    writeln!(out, "output: {}", result.output)?;
    Ok(())
}
