//! An agent declared as a type with `#[agent]`: instructions from the doc comment, tools and
//! the output type checked at compile time.
//!
//! ```sh
//! cargo run --example agent_macro
//! ```

use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// Where a ticket goes.
#[derive(Debug, Deserialize, JsonSchema)]
struct Routing {
    /// `billing` or `tech`.
    team: String,
    /// Whether someone must look at it today.
    urgent: bool,
    /// One sentence for the team.
    summary: String,
}

/// Look up a customer's plan by email.
#[tool(read_only)]
fn customer_plan(
    /// The customer's email address.
    email: String,
) -> String {
    if email.ends_with("@bigco.com") { "enterprise".to_owned() } else { "free".to_owned() }
}

/// You triage support tickets for Loom Cloud.
/// Look up the customer's plan, then route the ticket: enterprise customers are always urgent.
#[agent(tools = [customer_plan], output = Routing, output_mode = tool, max_turns = 6)]
struct Triage;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("customer_plan", json!({"email": "ops@bigco.com"})),
        ScriptedTurn::tool_call(
            "final_answer",
            json!({"team": "billing", "urgent": true, "summary": "Enterprise customer charged twice."}),
        ),
    ]);
    // The declaration fixes everything but the model, which is chosen here.
    let model = loomflow::model::from_env_or(model)?;
    let triage = Triage::new().configure(|agent| agent.model(model));

    let result = triage.run("ops@bigco.com: we were charged twice this month!").await?;
    let routing: Routing = result.output;
    println!("tools offered: {:?}", triage.tool_set_ref().names().collect::<Vec<_>>());
    println!("routed to {} (urgent: {}): {}", routing.team, routing.urgent, routing.summary);
    println!("{} model calls, {} tool call", result.turns, result.tool_calls);
    Ok(())
}
