//! ReWOO: the whole plan up front, run by levels at once, then the solver.

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loomflow::arch::ReWoo;
use loomflow::prelude::*;
use serde_json::json;
use tokio::sync::Barrier;

use crate::common::Recorder;
use crate::support::{arch_event_names, arch_events, at_once, calls};

pub struct Lab {
    pub barrier: Barrier,
    pub searches: AtomicUsize,
}

/// Search the web.
#[tool(read_only, idempotent)]
pub async fn search(lab: State<Lab>, q: String) -> Result<String, ToolError> {
    lab.searches.fetch_add(1, Ordering::SeqCst);
    lab.barrier.wait().await;
    match q.as_str() {
        "capital of France" => Ok("Paris".into()),
        "capital of Italy" => Ok("Rome".into()),
        _ => Err(ToolError::new("the search engine is down")),
    }
}

/// The weather in a city.
#[tool(read_only)]
pub fn weather(city: String) -> String {
    format!("sunny in {city}")
}

/// Compare two reports.
#[tool(read_only)]
pub fn compare(a: String, b: String) -> String {
    format!("{a} | {b}")
}

pub fn lab(at_once: usize) -> Arc<Lab> {
    Arc::new(Lab { barrier: Barrier::new(at_once), searches: AtomicUsize::new(0) })
}

pub fn five_steps() -> String {
    json!({"steps": [
        {"id": "E1", "tool": "search", "args": {"q": "capital of France"}},
        {"id": "E2", "tool": "search", "args": {"q": "capital of Italy"}},
        {"id": "E3", "tool": "weather", "args": {"city": "{{E1}}"}},
        {"id": "E4", "tool": "weather", "args": {"city": "#E2"}},
        {"id": "E5", "tool": "compare", "args": {"a": "{E3}", "b": "{{E4}}"}},
    ]})
    .to_string()
}

pub fn agent(model: &ScriptedModel, lab: &Arc<Lab>) -> Agent {
    Agent::new("You report the weather.")
        .model(model.clone())
        .tool(SearchTool)
        .tool(WeatherTool)
        .tool(CompareTool)
        .state_arc(Arc::clone(lab))
        .architecture(ReWoo::new().planner_prompt("PLAN").solver_prompt("SOLVE"))
}

#[tokio::test]
async fn the_plan_runs_level_by_level_each_level_at_once_with_results_in_place() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::text(five_steps()), ScriptedTurn::text("Both sunny.")]);
    let recorder = Recorder::new();
    let lab = lab(2);
    let agent = agent(&model, &lab).on_event(recorder.listener());
    let result = at_once(agent.run("Compare the weather of the capitals of France and Italy.").into_future()).await?;
    assert_eq!(result.output, "Both sunny.");
    // Two model calls, five tool calls.
    assert_eq!(calls(&recorder), ["planner", "solver"]);
    assert_eq!((result.turns, result.tool_calls), (2, 5));
    let started: Vec<(String, String)> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::ToolCallStarted { call_id, arguments, .. } => Some((call_id, arguments)),
            _ => None,
        })
        .collect();
    let e5 = started.iter().find(|(id, _)| id == "E5").map(|(_, a)| a.clone()).unwrap_or_default();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&e5)?, json!({"a": "sunny in Paris", "b": "sunny in Rome"}));
    let levels: Vec<serde_json::Value> =
        arch_events(&recorder).into_iter().filter(|(n, _)| n == "rewoo.level").map(|(_, p)| p["ran"].clone()).collect();
    assert_eq!(levels, [json!(["E1", "E2"]), json!(["E3", "E4"]), json!(["E5"])]);
    let solver = model.requests()[1].last_text();
    assert!(solver.contains("E5 = compare") && solver.contains("sunny in Paris | sunny in Rome"), "{solver}");
    Ok(())
}

#[tokio::test]
async fn a_failed_step_skips_what_depends_on_it_and_nothing_else() -> anyhow::Result<()> {
    let plan = json!({"steps": [
        {"id": "E1", "tool": "search", "args": {"q": "capital of Atlantis"}},
        {"id": "E2", "tool": "weather", "args": {"city": "{{E1}}"}},
        {"id": "E3", "tool": "weather", "args": {"city": "Oslo"}},
    ]});
    let model = ScriptedModel::new([ScriptedTurn::text(plan.to_string()), ScriptedTurn::text("Oslo is sunny.")]);
    let recorder = Recorder::new();
    let agent = agent(&model, &lab(1)).on_event(recorder.listener());
    let result = agent.run("x").await?;
    assert_eq!((result.output.as_str(), result.tool_calls), ("Oslo is sunny.", 2));
    let solver = model.requests()[1].last_text();
    assert!(solver.contains("E1 = search") && solver.contains("FAILED: the search engine is down"), "{solver}");
    assert!(solver.contains("FAILED: skipped: step E1 did not succeed"), "{solver}");
    assert!(solver.contains("sunny in Oslo"));
    let skipped =
        arch_events(&recorder).into_iter().find(|(n, _)| n == "rewoo.level").map(|(_, p)| p["skipped"].clone());
    assert_eq!(skipped, Some(json!([])));
    Ok(())
}

#[tokio::test]
async fn a_bad_plan_goes_back_with_what_is_wrong() -> anyhow::Result<()> {
    let bad = json!({"steps": [{"id": "E1", "tool": "serch", "args": {"q": "capital of France"}}]});
    let good = json!({"steps": [{"id": "E1", "tool": "search", "args": {"q": "capital of France"}}]});
    let model = ScriptedModel::new([
        ScriptedTurn::text(bad.to_string()),
        ScriptedTurn::text(good.to_string()),
        ScriptedTurn::text("Paris."),
    ]);
    let result = agent(&model, &lab(1)).run("Capital of France?").await?;
    assert_eq!(result.output, "Paris.");
    let feedback = model.requests()[1].last_text();
    assert!(feedback.contains("`serch`") && feedback.contains("did you mean `search`"), "{feedback}");
    Ok(())
}

#[tokio::test]
async fn a_plan_still_malformed_falls_back_to_react() -> anyhow::Result<()> {
    let cycle = json!({"steps": [
        {"id": "E1", "tool": "weather", "args": {"city": "{{E2}}"}},
        {"id": "E2", "tool": "weather", "args": {"city": "{{E1}}"}},
    ]});
    let model = ScriptedModel::new([
        ScriptedTurn::text("E1: search"),
        ScriptedTurn::text(cycle.to_string()),
        ScriptedTurn::tool_call("weather", json!({"city": "Oslo"})),
        ScriptedTurn::text("It is sunny in Oslo."),
    ]);
    let recorder = Recorder::new();
    let result = agent(&model, &lab(1)).on_event(recorder.listener()).run("Oslo weather?").await?;
    assert_eq!(result.output, "It is sunny in Oslo.");
    assert_eq!(calls(&recorder), ["planner", "planner", "agent", "agent"]);
    assert!(model.requests()[2].last_text().contains("Oslo weather?"));
    assert!(arch_event_names(&recorder).contains(&"rewoo.fallback".to_owned()));
    Ok(())
}

#[tokio::test]
async fn zero_steps_is_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    let agent = Agent::new("x").model(model.clone()).architecture(ReWoo::new().max_steps(0));
    assert!(matches!(
        agent.run("x").await,
        Err(Error::Config(ConfigError::InvalidSetting { setting: "max_steps", .. }))
    ));
    assert_eq!(model.calls(), 0);
}
