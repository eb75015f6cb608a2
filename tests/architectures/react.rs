//! ReAct, the names, a third-party architecture, and tools that end the turn.

use loomflow::arch::{self, ARCHITECTURE_NAMES, AgentRun, Architecture, ModelCall, ReAct};
use loomflow::model::ModelRequest;
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::calls;

/// Add two numbers.
#[tool]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Say the work is done, with the result.
#[tool(ends_turn)]
fn finish(result: String) -> String {
    format!("Result: {result}")
}

#[tokio::test]
async fn every_single_agent_name_resolves_and_unknown_ones_say_the_closest() {
    for name in ARCHITECTURE_NAMES {
        let resolved = arch::by_name(name).map(|a| a.name().to_owned());
        assert_eq!(resolved.as_deref(), Ok(*name));
    }
    assert_eq!(arch::by_name("Plan_And_Execute").map(|a| a.name().to_owned()).as_deref(), Ok("plan-and-execute"));
    let err = Agent::new("x").model("echo").architecture("self-refin").check().err().map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.contains("unknown architecture `self-refin`") && err.contains("did you mean `self-refine`"), "{err}");
    assert!(err.contains("plan-and-execute") && err.contains("multi-agent"), "{err}");
}

#[tokio::test]
async fn react_by_name_is_the_default_loop() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})), ScriptedTurn::text("5")]);
    let recorder = Recorder::new();
    let agent = Agent::new("Add.").model(model).tool(AddTool).architecture("react").on_event(recorder.listener());
    let result = agent.run("2+3?").await?;
    assert_eq!((result.output.as_str(), result.turns, result.tool_calls), ("5", 2, 1));
    assert_eq!(calls(&recorder), ["agent", "agent"]);
    assert_eq!(agent.architecture_name(), "react");
    Ok(())
}

#[tokio::test]
async fn a_react_turn_limit_of_its_own_applies_and_zero_is_refused() -> anyhow::Result<()> {
    let model = ScriptedModel::from_fn(|_| ScriptedTurn::tool_call("add", json!({"a": 1, "b": 1})));
    let agent = Agent::new("Add.").model(model.clone()).tool(AddTool).architecture(ReAct::new().max_turns(2));
    let err = agent.run("loop").await.err();
    assert!(matches!(err, Some(Error::Run(RunError::MaxTurnsExceeded { max_turns: 2, .. }))), "{err:?}");
    assert_eq!(model.calls(), 2);
    let zero = Agent::new("Add.").model(model.clone()).architecture(ReAct::new().max_turns(0));
    assert!(matches!(
        zero.run("x").await,
        Err(Error::Config(ConfigError::InvalidSetting { setting: "max_turns", .. }))
    ));
    assert_eq!(model.calls(), 2);
    Ok(())
}

#[tokio::test]
async fn a_tool_that_ends_the_turn_gives_the_answer() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("add", json!({"a": 2, "b": 2})),
        ScriptedTurn::tool_call("finish", json!({"result": "4"})),
    ]);
    let agent = Agent::new("Add, then finish.").model(model.clone()).tool(AddTool).tool(FinishTool);
    let result = agent.run("2+2").user("u").session("s").await?;
    assert_eq!((result.output.as_str(), result.turns), ("Result: 4", 2));
    assert_eq!(result.text(), "Result: 4");
    // The answer is the conversation's last word, after the call's result.
    let history = agent.session_store().load(&UserId::new("u")?, &SessionId::new("s")?, None).await?;
    assert_eq!(history.last().map(|m| m.text().into_owned()).as_deref(), Some("Result: 4"));
    // A failed call of it does not end the turn.
    let model =
        ScriptedModel::new([ScriptedTurn::raw_tool_call("finish", "{}"), ScriptedTurn::text("I could not finish.")]);
    let result = Agent::new("x").model(model).tool(FinishTool).run("go").await?;
    assert_eq!((result.output.as_str(), result.turns), ("I could not finish.", 2));
    Ok(())
}

/// Asks twice and answers with the second.
struct Twice;

#[loomflow::async_trait]
impl Architecture for Twice {
    fn name(&self) -> &str {
        "twice"
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let first = run.text("first", None, run.messages()).await?;
        let mut messages = run.messages().to_vec();
        messages.push(Message::assistant(first));
        messages.push(Message::user("Again."));
        let second = run.call_model(ModelCall::new("second", ModelRequest::new(&messages)).answer()).await?;
        Ok(second.response.text.to_string())
    }
}

#[tokio::test]
async fn a_third_party_architecture_runs_on_the_spine() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::text("one"), ScriptedTurn::text("two")]);
    let recorder = Recorder::new();
    let agent = Agent::new("x").model(model).architecture(Twice).on_event(recorder.listener());
    let result = agent.run("go").user("u").session("s").await?;
    assert_eq!((result.output.as_str(), result.turns), ("two", 2));
    assert_eq!(calls(&recorder), ["first", "second"]);
    assert!(result.usage.input_tokens > 0 && result.usage.output_tokens > 0);
    // The session keeps the input and the answer.
    assert_eq!(result.new_messages().len(), 2);
    Ok(())
}
