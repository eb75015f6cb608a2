//! A chain: clean up a text, summarise it with an agent, then format the result.
//!
//! ```sh
//! cargo run --example workflow_chain
//! ```

use loomflow::prelude::*;
use loomflow::workflow::{named, sync_node};

async fn clean(text: String) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The summariser is an agent; offline, the scripted model plays it.
    // `LOOM_MODEL=gpt-4.1-mini` puts a real model in its place.
    let scripted = ScriptedModel::from_fn(|request| {
        let text = request.last_user_text().unwrap_or_default();
        let words = text.split_whitespace().count();
        ScriptedTurn::text(format!("A text of {words} words about looms."))
    });
    let summarizer = Agent::new("Summarise the text in one sentence.")
        .name("summarize")
        .model(loomflow::model::from_env_or(scripted)?);

    // Each node's output type is the next node's input type, checked at compile time.
    let pipeline = Workflow::chain((
        named("clean", clean),
        summarizer,
        named("format", sync_node(|summary: String| format!("Summary: {summary}"))),
    ));

    let result = pipeline.run("  Looms   weave\n threads into   cloth.  ".to_owned()).user("ada").await?;
    println!("{}", result.output);
    println!("visited: {:?}", result.visited);
    // Every run reports its steps: each node, how long it ran, a summary of its output.
    for step in &result.steps {
        println!("  {:<10} {:>8.1?}  {}", step.node.as_str(), step.duration, step.summary);
    }
    println!("\n{}", pipeline.to_mermaid());
    Ok(())
}
