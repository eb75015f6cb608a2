//! Self-Refine: draft, critique, refine, until the critic has nothing to say.

use loomflow::arch::SelfRefine;
use loomflow::model::Role;
use loomflow::prelude::*;

use crate::common::Recorder;
use crate::support::{arch_events, calls};

#[tokio::test]
async fn the_draft_is_refined_until_the_critic_finds_nothing() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("Rust is a language."),
        ScriptedTurn::text("It does not say what kind of language."),
        ScriptedTurn::text("Rust is a systems programming language."),
        ScriptedTurn::text("**No issues.**\nWell done."),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("Describe things.")
        .model(model.clone())
        .architecture(SelfRefine::new())
        .on_event(recorder.listener());
    let result = agent.run("Describe Rust.").user("u").session("s").await?;
    assert_eq!(result.output, "Rust is a systems programming language.");
    assert_eq!(calls(&recorder), ["agent", "critic", "refiner", "critic"]);
    let requests = model.requests();
    // The critic sees the task and the draft; the refiner, the whole conversation and the critique.
    assert!(
        requests[1].last_text().contains("Describe Rust.") && requests[1].last_text().contains("Rust is a language.")
    );
    assert_eq!(requests[2].messages[0].text(), "Describe things.");
    assert!(requests[2].messages.iter().any(|m| m.role() == Role::Assistant && m.text() == "Rust is a language."));
    assert!(requests[2].last_text().contains("It does not say what kind of language."));
    assert!(requests[3].last_text().contains("systems programming"));
    let rounds: Vec<bool> = arch_events(&recorder)
        .iter()
        .filter(|(n, _)| n == "self_refine.critique")
        .map(|(_, p)| p["done"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(rounds, [false, true]);
    // The session keeps the question and the refined answer.
    let kept: Vec<String> = result.new_messages().iter().map(|m| m.text().into_owned()).collect();
    assert_eq!(kept, ["Describe Rust.", "Rust is a systems programming language."]);
    Ok(())
}

#[tokio::test]
async fn max_rounds_bounds_the_critiques_and_a_critic_may_have_its_own_model() -> anyhow::Result<()> {
    let agent_model = ScriptedModel::new([ScriptedTurn::text("v1"), ScriptedTurn::text("v2")]);
    let critic = ScriptedModel::new([ScriptedTurn::text("Too short.")]);
    let agent = Agent::new("Write.")
        .model(agent_model.clone())
        .architecture(SelfRefine::new().max_rounds(1).critic_model(critic.clone()).stop_phrase("looks good"));
    let result = agent.run("Write a line.").await?;
    assert_eq!((result.output.as_str(), result.turns), ("v2", 3));
    assert_eq!((agent_model.calls(), critic.calls()), (2, 1));
    Ok(())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Summary {
    title: String,
}

#[tokio::test]
async fn a_typed_answer_comes_from_the_refiner() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(r#"{"title": "loom"}"#),
        ScriptedTurn::text("Capitalise it."),
        ScriptedTurn::text(r#"{"title": "Loom"}"#),
        ScriptedTurn::text("No issues"),
    ]);
    let agent = Agent::new("Title things.").model(model.clone()).architecture("self-refine").output::<Summary>();
    let result = agent.run("Title the project.").await?;
    assert_eq!(result.output.title, "Loom");
    // The refiner is told the output's JSON shape once, by the agent's own prompt.
    let refiner = &model.requests()[2];
    assert_eq!(
        refiner.messages[0].text().matches("JSON").count(),
        model.requests()[0].messages[0].text().matches("JSON").count()
    );
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    for arch in [
        SelfRefine::new().max_rounds(0),
        SelfRefine::new().stop_phrase("..."),
        SelfRefine::new().critic_model("no-such-model"),
    ] {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        assert!(matches!(agent.run("x").await, Err(Error::Config(_))));
    }
    assert_eq!(model.calls(), 0);
}
