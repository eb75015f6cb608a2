//! A review loop built with `Workflow::builder`: a writer agent drafts a slogan, a critic agent
//! reviews it, and the writer revises it until the critic approves — a cycle bounded by
//! `max_visits`. The second run has a stricter critic: the bound stops the loop.
//!
//! ```sh
//! cargo run -p loomflow-examples --example workflow_loop
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example workflow_loop
//! ```

use loomflow::model::from_env_or;
use loomflow::prelude::*;
use loomflow::workflow::{GraphError, NodeError, WorkflowError, node_with_context, sync_node};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// At most this many revisions per run.
const MAX_REVISIONS: u32 = 3;

/// The critic's verdict on a draft.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct Verdict {
    /// Whether the slogan is ready.
    approved: bool,
    /// What to change when it is not, e.g. "add typed".
    feedback: String,
}

/// A draft and what the critic said of it: what the `review` node routes on.
#[derive(Clone)]
struct Reviewed {
    draft: String,
    verdict: Verdict,
}

/// Offline, the writer adds the word the feedback asks for.
fn writer() -> anyhow::Result<Agent> {
    let scripted = ScriptedModel::from_fn(|request| {
        let prompt = request.last_user_text().unwrap_or_default();
        match prompt.strip_prefix("Slogan: ").and_then(|rest| rest.split_once("\nFeedback: ")) {
            Some((draft, feedback)) => ScriptedTurn::text(format!("{draft}, {}", feedback.trim_start_matches("add "))),
            None => ScriptedTurn::text("Loom: agents in Rust"),
        }
    });
    let instructions = "You write one-line slogans. Given a slogan and feedback, reply with the revised slogan only.";
    Ok(Agent::new(instructions).name("writer").model(from_env_or(scripted)?))
}

/// A critic that approves a slogan once it has every one of `words`.
fn critic(words: &'static [&'static str]) -> anyhow::Result<Agent<Verdict>> {
    let scripted = ScriptedModel::from_fn(move |request| {
        let slogan = request.last_user_text().unwrap_or_default().to_lowercase();
        let verdict = match words.iter().find(|w| !slogan.contains(**w)) {
            Some(missing) => json!({"approved": false, "feedback": format!("add {missing}")}),
            None => json!({"approved": true, "feedback": ""}),
        };
        ScriptedTurn::text(verdict.to_string())
    });
    let instructions =
        format!("You review slogans. Approve one that says {}; else say `add <word>`.", words.join(", "));
    Ok(Agent::new(instructions).name("critic").model(from_env_or(scripted)?).output::<Verdict>())
}

/// draft → review → (revise → review)* → publish.
fn editorial(writer: Agent, critic: Agent<Verdict>) -> Result<Workflow<String, String>, GraphError> {
    let mut g = Workflow::builder("editorial");
    let draft = g.node::<String, String>("draft", writer.clone());
    let review = g.node(
        "review",
        node_with_context(move |ctx: RunContext, draft: String| {
            let critic = critic.clone();
            async move {
                let verdict = critic.run(draft.as_str()).within(&ctx).await?.output;
                let said = if verdict.approved { "approved".to_owned() } else { verdict.feedback.clone() };
                println!("  critic │ {draft:?} → {said}");
                Ok::<_, NodeError>(Reviewed { draft, verdict })
            }
        }),
    );
    let revise = g.node(
        "revise",
        node_with_context(move |ctx: RunContext, r: Reviewed| {
            let writer = writer.clone();
            async move {
                let prompt = format!("Slogan: {}\nFeedback: {}", r.draft, r.verdict.feedback);
                Ok::<_, NodeError>(writer.run(prompt).within(&ctx).await?.output)
            }
        }),
    );
    let publish = g.node("publish", sync_node(|r: Reviewed| r.draft));
    g.start(draft);
    g.edge(draft, review);
    g.route(review, |r: &Reviewed| if r.verdict.approved { "approved" } else { "revise" })
        .to("approved", publish)
        .to("revise", revise);
    g.edge(revise, review);
    // The cycle's bound: without one, `build()` refuses the graph.
    g.max_visits(revise, MAX_REVISIONS);
    g.build()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    for (who, words) in [("critic", &["typed", "offline"][..]), ("strict critic", &["typed", "offline", "fast", "fun"])]
    {
        println!("with a {who} wanting {words:?}:");
        let workflow = editorial(writer()?, critic(words)?)?;
        match workflow.run("Loom".to_owned()).user("ada").await {
            Ok(result) => {
                let count = |node: &str| result.visited.iter().filter(|n| **n == node).count();
                println!("  published: {}", result.output);
                println!("  the loop ran {} reviews and {} revisions", count("review"), count("revise"));
                println!("  visited: {:?}\n", result.visited);
            }
            Err(Error::Workflow(WorkflowError::VisitLimit { node, limit })) => {
                println!("  stopped: `{node}` would run a {}th time; its bound is {limit}\n", limit + 1);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
