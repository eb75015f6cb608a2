//! `run_until`: a goal loop around any architecture, and how it ended.

use loomflow::arch::{LoopExit, RunUntil, SelfRefine};
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::calls;

#[tokio::test]
async fn a_checker_model_says_when_the_goal_is_met() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("A long draft of many words"),
        ScriptedTurn::text(json!({"met": false, "reason": "too long"}).to_string()),
        ScriptedTurn::text("Short."),
        ScriptedTurn::text(json!({"met": true, "reason": "short"}).to_string()),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("Write.")
        .model(model.clone())
        .run_until(RunUntil::condition("at most three words"))
        .on_event(recorder.listener());
    let result = agent.run("Describe Loom.").await?;
    assert_eq!((result.output.as_str(), result.exit), ("Short.", Some(LoopExit::ConditionMet)));
    assert_eq!(calls(&recorder), ["agent", "checker", "agent", "checker"]);
    // The second attempt continues the conversation, told what is missing.
    let again = model.requests()[2].last_text();
    assert!(again.contains("too long") && again.contains("at most three words"), "{again}");
    assert_eq!(model.requests()[2].messages.len(), 4);
    Ok(())
}

#[tokio::test]
async fn the_loop_ends_at_its_bounds_and_says_which() -> anyhow::Result<()> {
    let same = ScriptedModel::from_fn(|_| ScriptedTurn::text("same"));
    let agent = Agent::new("x").model(same.clone()).run_until(RunUntil::when(|a| a == "different").max_no_progress(2));
    let result = agent.run("go").await?;
    assert_eq!(result.exit, Some(LoopExit::NoProgress));
    assert_eq!(same.calls(), 3);

    let counting = ScriptedModel::new((1..=3).map(|i| ScriptedTurn::text(format!("v{i}"))));
    let agent = Agent::new("x").model(counting.clone()).run_until(RunUntil::when(|_| false).max_iterations(3));
    assert_eq!(agent.run("go").await?.exit, Some(LoopExit::MaxIterations));

    // A priced model: the cap is reached after the first iteration.
    let priced = ScriptedModel::from_fn(|_| ScriptedTurn::text("x")).named("gpt-4o");
    let agent = Agent::new("x").model(priced.clone()).run_until(RunUntil::when(|_| false).max_cost_usd(0.0000001));
    let result = agent.run("go").await?;
    assert_eq!((result.exit, priced.calls()), (Some(LoopExit::CostCap), 1));
    Ok(())
}

#[tokio::test]
async fn it_wraps_the_agents_own_architecture() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("draft"),
        ScriptedTurn::text("No issues."),
        ScriptedTurn::text("DONE"),
        ScriptedTurn::text("No issues."),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("x")
        .model(model)
        .architecture(SelfRefine::new())
        .run_until(RunUntil::when(|a| a == "DONE"))
        .on_event(recorder.listener());
    assert_eq!(agent.architecture_name(), "run-until");
    let result = agent.run("go").await?;
    assert_eq!((result.output.as_str(), result.exit), ("DONE", Some(LoopExit::ConditionMet)));
    assert_eq!(calls(&recorder), ["agent", "critic", "agent", "critic"]);
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    for until in [
        RunUntil::condition(" "),
        RunUntil::when(|_| true).max_iterations(0),
        RunUntil::when(|_| true).max_no_progress(0),
    ] {
        let agent = Agent::new("x").model(model.clone()).run_until(until);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(model.calls(), 0);
}
