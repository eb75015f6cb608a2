//! A research team: a manager delegates to a researcher (with a search tool) and a writer,
//! then forwards the writer's answer. Prints who ran as whose child, and the usage that rolls
//! up into the manager's result. Offline by default; `LOOM_MODEL=gpt-4.1-mini` runs every
//! agent on a real model.
//!
//! ```sh
//! cargo run --example team_supervisor
//! ```

use std::sync::{Arc, Mutex};

use loomflow::arch::Supervisor;
use loomflow::model::from_env_or;
use loomflow::prelude::*;
use serde_json::json;

/// Search the team's notes.
#[tool(read_only)]
fn search(query: String) -> String {
    if query.to_lowercase().contains("loom") {
        "Loom runs agents 200-2,000x faster than Python frameworks; its graphs are checked at compile time.".into()
    } else {
        "No notes found.".into()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let researcher = Agent::new("You find facts with the search tool and report them plainly.")
        .name("researcher")
        .description("finds facts in the team's notes")
        .model(from_env_or(ScriptedModel::new([
            ScriptedTurn::tool_call("search", json!({"query": "Loom speed"})),
            ScriptedTurn::text("Loom is 200-2,000x faster than Python frameworks, with compile-time checked graphs."),
        ]))?)
        .tool(SearchTool);
    let writer = Agent::new("You write one crisp paragraph from the facts you are given.")
        .name("writer")
        .description("writes the final text")
        .model(from_env_or(ScriptedModel::new([ScriptedTurn::text(
            "Loom is an agent framework for Rust that runs 200-2,000x faster than the Python frameworks, and \
             catches broken graphs at compile time.",
        )]))?);
    let manager = from_env_or(ScriptedModel::new([
        ScriptedTurn::tool_call(
            "delegate",
            json!({"worker": "researcher", "instructions": "Find what makes Loom fast."}),
        ),
        ScriptedTurn::tool_call(
            "delegate",
            json!({"worker": "writer", "instructions": "Write a paragraph: Loom is 200-2,000x faster than Python frameworks, with compile-time checked graphs."}),
        ),
        ScriptedTurn::tool_call("forward_message", json!({"worker": "writer"})),
    ]))?;

    let runs = Arc::new(Mutex::new(Vec::<String>::new()));
    let listener = {
        let runs = Arc::clone(&runs);
        move |event: RunEvent| {
            if let EventKind::RunStarted { name, session, .. } = &event.kind {
                let parent = event.parent.map_or_else(|| "-".to_owned(), |p| p.to_string());
                let line = format!(
                    "{:<10} session {:<22} parent {parent}",
                    name.as_deref().unwrap_or("manager"),
                    session.as_ref().map_or("-", |s| s.as_str()),
                );
                if let Ok(mut runs) = runs.lock() {
                    runs.push(line);
                }
            }
        }
    };
    let team = Agent::new("You lead a small research team. Delegate, then answer with the writer's text.")
        .model(manager)
        .architecture(Supervisor::new().worker("researcher", researcher).worker("writer", writer))
        .on_event(listener);

    let result = team.run("Write a paragraph on why Loom is fast.").user("ada").session("launch").await?;
    println!("answer: {}\n", result.output);
    println!("runs (manager {}):", result.run_id);
    for line in runs.lock().map(|r| r.clone()).unwrap_or_default() {
        println!("  {line}");
    }
    println!(
        "\nmanager: {} model calls, {} calls of its team tools; tokens (the whole team) {} in / {} out",
        result.turns, result.tool_calls, result.usage.input_tokens, result.usage.output_tokens
    );
    Ok(())
}
