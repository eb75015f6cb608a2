//! An agent with a non-default architecture as a workflow node: the `poet` node is a Reflexion
//! agent (attempt, evaluate, learn a lesson, try again) between two plain function nodes. Its
//! roles' model calls and its evaluations arrive on the workflow's event stream.
//!
//! ```sh
//! cargo run -p loomflow-examples --example workflow_architecture
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example workflow_architecture
//! ```

use loomflow::arch::Reflexion;
use loomflow::model::from_env_or;
use loomflow::prelude::*;
use loomflow::workflow::{named, sync_node};
use serde_json::json;

/// Offline, the poet's every role is played in order: a first attempt that misses the form,
/// its grade, a lesson, a second attempt, its grade.
fn script() -> ScriptedModel {
    let say = |text: String| ScriptedTurn::text(text);
    ScriptedModel::new([
        say("Looms hum all night\nthreads\ncloth".into()),
        say(json!({"score": 0.2, "reason": "lines two and three are far too short"}).to_string()),
        say("Count the syllables of every line before answering.".into()),
        say("Looms hum through the night\nshuttles fly and warp threads cross\nmorning wears new cloth".into()),
        say(json!({"score": 0.9, "reason": "5-7-5, and vivid"}).to_string()),
    ])
}

/// Prints the nodes, the model calls by role, and Reflexion's own events.
fn print_event(event: RunEvent) {
    match event.kind {
        EventKind::NodeStarted { node, .. } => println!("node {node}"),
        EventKind::ModelRequest { role, .. } => println!("  model call │ {role}"),
        EventKind::Architecture { name, payload } => match name.as_str() {
            "reflexion.evaluated" => {
                println!(
                    "  evaluated  │ attempt {} scored {}: {}",
                    payload["attempt"], payload["score"], payload["reason"]
                )
            }
            "reflexion.lesson" => println!("  lesson     │ {}", payload["lesson"]),
            _ => {}
        },
        EventKind::NodeFinished { summary, .. } => println!("  output     │ {}", summary.replace('\n', " / ")),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let poet = Agent::new("You write haiku.")
        .name("poet")
        .model(from_env_or(script())?)
        // Up to three attempts; an answer scored 0.8 or more stands.
        .architecture(Reflexion::new().max_attempts(3).threshold(0.8));
    println!("the poet's architecture: {}\n", poet.architecture_name());

    let workflow = Workflow::chain((
        named("brief", sync_node(|topic: String| format!("A haiku about {topic}: three lines of 5, 7, 5 syllables."))),
        poet,
        named("publish", sync_node(|poem: String| poem.lines().map(str::trim).collect::<Vec<_>>().join(" / "))),
    ))
    .on_event(print_event);

    let result = workflow.run("looms".to_owned()).user("ada").await?;
    println!("\npublished: {}", result.output);
    println!("visited: {:?}", result.visited);
    Ok(())
}
