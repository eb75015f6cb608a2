//! Custom steps beside an agent: a plain `async fn` node, a node type of your own that
//! implements `Node` (it reads the run's user from the context and can fail), the agent, and a
//! closure. Three customers send the same ticket; the third is unknown to the CRM, so the
//! custom node fails the run before the agent is asked.
//!
//! ```sh
//! cargo run -p loomflow-examples --example workflow_custom_step
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example workflow_custom_step
//! ```

use std::collections::HashMap;

use loomflow::model::from_env_or;
use loomflow::prelude::*;
use loomflow::workflow::{Node, NodeError, WorkflowError, named, sync_node};

/// A plain function node: collapses the whitespace of a ticket.
async fn clean(ticket: String) -> String {
    ticket.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A node type of its own: it holds the CRM and tags the ticket with the plan of the customer
/// the run is for.
struct Enrich {
    plans: HashMap<&'static str, &'static str>,
}

#[async_trait]
impl Node<String, String> for Enrich {
    async fn call(&self, ctx: &RunContext, ticket: String) -> Result<String, NodeError> {
        let user = ctx.user().as_str();
        let plan = self.plans.get(user).ok_or_else(|| NodeError::new(format!("no customer `{user}` in the CRM")))?;
        Ok(format!("[{plan} customer] {ticket}"))
    }

    /// The name the node goes by in `visited`, events and diagrams.
    fn name(&self) -> Option<&str> {
        Some("enrich")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Offline, the agent answers by the plan the custom node found.
    let scripted = ScriptedModel::from_fn(|request| {
        let ticket = request.last_user_text().unwrap_or_default();
        println!("  model read │ {ticket}");
        ScriptedTurn::text(if ticket.starts_with("[premium") {
            "A specialist will call you within the hour."
        } else {
            "We will answer by e-mail within two days."
        })
    });
    let reply = Agent::new("You answer support tickets in one sentence; premium customers get a call.")
        .name("reply")
        .model(from_env_or(scripted)?);
    let crm = Enrich { plans: HashMap::from([("ann", "premium"), ("bob", "free")]) };

    let workflow = Workflow::chain((
        named("clean", clean),
        crm,
        reply,
        named("sign", sync_node(|answer: String| format!("{answer} — the Loom support team"))),
    ));

    for user in ["ann", "bob", "eve"] {
        println!("{user}:");
        match workflow.run("  My   export \n keeps failing.  ".to_owned()).user(user).await {
            Ok(result) => {
                println!("  answer     │ {}", result.output);
                println!("  visited    │ {:?}", result.visited);
            }
            Err(Error::Workflow(WorkflowError::Node { node, error })) => println!("  failed     │ `{node}`: {error}"),
            Err(e) => return Err(e.into()),
        }
    }
    println!("\n{}", workflow.to_mermaid());
    Ok(())
}
