//! The living plan: the model keeps a to-do list with `update_plan`, the run goes on while
//! steps are open, and the plan lasts with the session — here into a second store on the same
//! SQLite file, as another process would open it.
//!
//! ```sh
//! cargo run --example living_plan
//! ```
//! Offline on a scripted model; set `LOOM_MODEL` (e.g. `gpt-4.1-mini`) to watch a real one.

use std::sync::Arc;

use loomflow::model;
use loomflow::prelude::*;
use loomflow::session::{SessionStore, SqliteStore};
use loomflow::tools::plan::{Plan, PlanTool};
use serde_json::json;

const INSTRUCTIONS: &str = "You prepare software releases. Keep a plan with `update_plan` and update it \
                            whenever a step moves.";

/// Prints each plan update and each check of the goal.
fn show(event: RunEvent) {
    match event.kind {
        EventKind::PlanUpdated { plan } => println!("[plan] {}", plan.progress()),
        EventKind::Architecture { name, payload } if name == "run_until.checked" => {
            match payload["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(reason) => println!("[goal] not met: {reason}"),
                None => println!("[goal] met"),
            }
        }
        _ => {}
    }
}

fn agent(model: ScriptedModel, store: Arc<SqliteStore>) -> anyhow::Result<Agent> {
    Ok(Agent::new(INSTRUCTIONS)
        .model(model::from_env_or(model)?)
        .tool(PlanTool::new())
        .store(store)
        .run_until(PlanTool::until_done().max_iterations(4))
        .on_event(show))
}

fn plan(steps: [&str; 3], findings: &[&str]) -> serde_json::Value {
    let titles = ["Bump the version", "Write the changelog", "Tag the release"];
    let steps: Vec<_> = titles.iter().zip(steps).map(|(t, s)| json!({"title": t, "status": s})).collect();
    json!({"steps": steps, "findings": findings})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = std::env::temp_dir().join(format!("loom-living-plan-{}.db", std::process::id()));
    let (user, session) = (UserId::new("maintainer")?, SessionId::new("release-0.4")?);

    println!("== first process");
    {
        let model = ScriptedModel::new([
            // Any shape works: numbered text with check boxes ...
            ScriptedTurn::raw_tool_call(
                "update_plan",
                "1. [~] Bump the version\n2. [ ] Write the changelog\n3. [ ] Tag the release",
            ),
            // ... or the schema's JSON.
            ScriptedTurn::tool_call(
                "update_plan",
                plan(["done", "in_progress", "pending"], &["The last tag is v0.3.1."]),
            ),
            // Answers too early: the goal loop sends it back to its open steps.
            ScriptedTurn::text("The version is bumped; the changelog is under way."),
            ScriptedTurn::tool_call(
                "update_plan",
                plan(["done", "done", "blocked"], &["The last tag is v0.3.1.", "Tagging needs the signing key."]),
            ),
            ScriptedTurn::text("Ready except for the tag: it needs the signing key."),
        ]);
        let agent = agent(model, Arc::new(SqliteStore::open(&db)?))?;
        let result = agent.run("Prepare release 0.4.").user(user.clone()).session(session.clone()).await?;
        println!("answer: {}", result.output);
        println!("exit: {}", result.exit.map_or("none", |e| e.as_str()));
    }

    println!("\n== second process, same database");
    let store = Arc::new(SqliteStore::open(&db)?);
    let history = store.load(&user, &session, None).await?;
    let recovered = Plan::latest(&history).ok_or_else(|| anyhow::anyhow!("the session has no plan"))?;
    println!("recovered from the session:\n{recovered}\n");
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call(
            "update_plan",
            plan(["done", "done", "done"], &["The last tag is v0.3.1.", "Tagged v0.4.0 with the signing key."]),
        ),
        ScriptedTurn::text("Release 0.4.0 is tagged."),
    ]);
    let agent = agent(model, Arc::clone(&store))?;
    let result = agent.run("The signing key is back: finish the release.").user(user).session(session).await?;
    println!("answer: {}", result.output);
    if let Some(plan) = Plan::latest(&result.messages) {
        println!("\n{plan}");
    }

    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}
