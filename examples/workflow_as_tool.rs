//! A workflow as a tool: `Workflow::as_tool` turns a three-step packing-list workflow
//! (tidy the city, a forecaster agent, a packing rule) into a tool a travel agent calls. The
//! workflow runs nested in the agent's run: its nodes' events arrive on the agent's stream.
//!
//! ```sh
//! cargo run -p loomflow-examples --example workflow_as_tool
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example workflow_as_tool
//! ```

use loomflow::model::from_env_or;
use loomflow::prelude::*;
use loomflow::workflow::{named, sync_node};
use serde_json::json;

/// " lisbon " → "Lisbon".
async fn tidy(city: String) -> String {
    let city = city.trim().to_lowercase();
    let mut chars = city.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// What to pack for a forecast.
fn pack(forecast: String) -> String {
    let items = if forecast.contains("rain") { "an umbrella and boots" } else { "sunglasses and sunscreen" };
    format!("{forecast} → pack {items}")
}

/// The packing-list workflow: its input is a city, its output the list.
fn packing_list() -> anyhow::Result<Workflow<String, String>> {
    let forecaster = Agent::new("Give tomorrow's forecast for the city in a few words.").name("forecast").model(
        from_env_or(ScriptedModel::from_fn(|request| {
            let city = request.last_user_text().unwrap_or_default();
            let weather = if city == "Bergen" { "rain, 9°C" } else { "sunny, 24°C" };
            ScriptedTurn::text(format!("{city}: {weather}"))
        }))?,
    );
    Ok(Workflow::chain((named("tidy", tidy), forecaster, named("pack", sync_node(pack)))))
}

/// Prints the tool calls, and the workflow's nodes as they run inside the tool call.
fn print_event(event: RunEvent) {
    match event.kind {
        EventKind::ToolCallStarted { name, arguments, .. } => println!("tool call │ {name}({arguments})"),
        EventKind::NodeFinished { node, summary, .. } => println!("  node      │ {node} → {summary}"),
        EventKind::ToolCallFinished { name, output, .. } => println!("tool      │ {name} → {output}"),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let workflow = packing_list()?;
    let tool = workflow.as_tool("packing_list", "What to pack for a trip to a city. Input: the city.")?;
    println!("tool schema: {}\n", tool.definition().parameters());

    let script = ScriptedModel::new([
        ScriptedTurn::tool_call("packing_list", json!({"input": " lisbon "})),
        ScriptedTurn::tool_call("packing_list", json!({"input": "BERGEN"})),
        ScriptedTurn::text("Lisbon will be sunny: bring sunglasses. Bergen will be wet: bring an umbrella."),
    ]);
    let agent = Agent::new("You help travellers pack. Use the packing_list tool for each city.")
        .name("travel-agent")
        .model(from_env_or(script)?)
        .tool(tool)
        .on_event(print_event);

    let result = agent.run("I fly to Lisbon tomorrow, then Bergen. What should I pack?").user("ada").await?;
    println!("\nanswer │ {}", result.output);
    println!("{} model calls, {} tool calls (each one workflow run)", result.turns, result.tool_calls);
    println!("\nthe workflow on its own: {:?}", workflow.run("rome".to_owned()).await?.output);
    Ok(())
}
