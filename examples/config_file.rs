//! Agents and workflows from TOML files: `config/support.toml` (tools from the program, SQLite
//! sessions at a path given by `${LOOM_DATA_DIR}`, a budget, a denied tool), the workflow
//! `config/review.toml` (draft → review → revise until approved → publish) drawn as Mermaid
//! and run, and the message a misspelt key gets.
//!
//! ```sh
//! cargo run --example config_file
//! ```
//!
//! Offline on scripted models registered under the names the files use; with `LOOM_MODEL`
//! set, every one of them is that model.

use std::path::Path;

use loomflow::config::Registry;
use loomflow::governance::{EnvSecrets, MapSecrets, Secrets as _};
use loomflow::model;
use loomflow::prelude::*;

/// Look an order up.
#[tool]
fn lookup_order(order: String) -> String {
    format!("order {order}: a kettle, shipped yesterday, €35")
}

/// Refund an order.
#[tool(destructive)]
fn refund(order: String) -> String {
    format!("refunded order {order}")
}

fn print_event(event: RunEvent) {
    match event.kind {
        EventKind::ToolCallStarted { name, arguments, .. } => println!("  tool call  │ {name}({arguments})"),
        EventKind::ToolCallFinished { name, output, .. } => println!("  tool       │ {name} → {output}"),
        EventKind::PermissionDecision { tool, decision, .. } if decision == "deny" => {
            println!("  permission │ {tool} denied by the file's permissions");
        }
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let data = std::env::temp_dir().join(format!("loom-config-file-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;

    // What the files name but cannot hold: tools, models by name, and where `${...}` is read.
    let scripted = |turns: Vec<ScriptedTurn>| model::from_env_or(ScriptedModel::new(turns));
    let registry = Registry::new()
        .tool(LookupOrderTool)
        .tool(RefundTool)
        .model(
            "scripted",
            scripted(vec![
                ScriptedTurn::tool_call("lookup_order", serde_json::json!({ "order": "A-1" })),
                ScriptedTurn::tool_call("refund", serde_json::json!({ "order": "A-1" })),
                ScriptedTurn::text("A-1 shipped yesterday; a colleague will look at the refund."),
            ])?,
        )
        .model(
            "writer",
            scripted(vec![
                ScriptedTurn::text("Kettles, now 20% faster."),
                ScriptedTurn::text("Boil water in 90 seconds."),
            ])?,
        )
        .model("reviewer", scripted(vec![ScriptedTurn::text("Revise."), ScriptedTurn::text("Approved.")])?)
        .model("publisher", scripted(vec![ScriptedTurn::text("## New: Boil water in 90 seconds.")])?)
        .secrets(MapSecrets::new().with("LOOM_DATA_DIR", data.display().to_string()).or(EnvSecrets::new()));

    println!("support.toml");
    let agent = Agent::from_toml_with(dir.join("support.toml"), &registry).await?.on_event(print_event);
    let result = agent.run("Where is order A-1? Refund it.").user("ann").session("s1").await?;
    println!("  answer     │ {}", result.output);
    println!("  session    │ kept in {}", if data.join("support.db").exists() { "support.db" } else { "nowhere" });

    println!("\nreview.toml");
    let workflow = Workflow::from_toml(dir.join("review.toml"), &registry).await?;
    print!("{}", workflow.to_mermaid());
    let result = workflow.run("Announce the new kettle.".to_owned()).await?;
    let visited: Vec<String> = result.visited.iter().map(ToString::to_string).collect();
    println!("  visited    │ {}", visited.join(" → "));
    println!("  answer     │ {}", result.output);

    println!("\na misspelt key");
    let text = "instructions = \"Help.\"\nmodel = \"echo\"\nmax_turn = 3\n";
    if let Err(e) = Agent::from_toml_str(text).await {
        println!("{e}");
    }
    std::fs::remove_dir_all(&data)?;
    Ok(())
}
