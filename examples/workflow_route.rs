//! Support triage: a classifier agent routes each message to the billing or the tech agent.
//!
//! ```sh
//! cargo run --example workflow_route
//! ```

use loomflow::prelude::*;

/// A specialist agent: offline, a scripted model gives its canned reply; `LOOM_MODEL` puts a
/// real model in its place.
fn specialist(name: &str, reply: &'static str) -> anyhow::Result<Agent> {
    let scripted = ScriptedModel::from_fn(move |_| ScriptedTurn::text(reply));
    Ok(Agent::new(format!("You are the {name} specialist.")).name(name).model(loomflow::model::from_env_or(scripted)?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Offline, the classifier's model routes by keyword; a real model reads the instructions.
    let by_keyword = ScriptedModel::from_fn(|request| {
        let text = request.last_user_text().unwrap_or_default().to_lowercase();
        ScriptedTurn::text(if text.contains("charge") || text.contains("invoice") { "billing" } else { "tech" })
    });
    let classify =
        Agent::new("Reply with one word: `billing` or `tech`.").model(loomflow::model::from_env_or(by_keyword)?);
    let support = Workflow::route_with_default(
        classify,
        [
            ("billing", specialist("billing", "BILLING: I have refunded the duplicate charge.")?),
            ("tech", specialist("tech", "TECH: please update the app and restart it.")?),
        ],
        specialist("general", "GENERAL: a colleague will get back to you.")?,
    );

    for message in ["My card was charged twice.", "The app crashes when I log in."] {
        let result = support.run(message.to_owned()).user("alice").await?;
        println!("{message}");
        println!("  → {}", result.output);
        println!("  visited: {:?}", result.visited);
    }
    println!("\n{}", support.to_mermaid());
    Ok(())
}
