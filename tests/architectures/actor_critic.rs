//! Actor-Critic: drafts scored by a critic, revised until approved.

use loomflow::arch::{ActorCritic, Team};
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{all_usage, arch_events, calls};

fn critique(score: f64, issues: &[&str]) -> ScriptedTurn {
    ScriptedTurn::text(json!({"issues": issues, "score": score, "summary": "scripted"}).to_string())
}

#[tokio::test]
async fn drafts_are_revised_until_the_critic_approves() -> anyhow::Result<()> {
    let actor_model =
        ScriptedModel::new([ScriptedTurn::text("fn main() {}"), ScriptedTurn::text("fn main() { run() }")]);
    let critic_model = ScriptedModel::new([critique(0.4, &["does nothing"]), critique(0.95, &[])]);
    let actor = Agent::new("You write Rust.").name("actor").model(actor_model.clone());
    let critic = Agent::new("You review Rust.").name("critic").model(critic_model.clone());
    let recorder = Recorder::new();
    let agent = Team::actor_critic(actor, critic).on_event(recorder.listener());
    let result = agent.run("Write a program that runs.").await?;
    assert_eq!(result.output, "fn main() { run() }");
    assert_eq!(calls(&recorder), ["actor:agent", "critic:agent", "actor:agent", "critic:agent"]);
    let revise = actor_model.requests()[1].last_text();
    assert!(
        revise.contains("fn main() {}") && revise.contains("- does nothing") && revise.contains("0.40"),
        "{revise}"
    );
    // The critic is asked for its critique's JSON schema, after its own instructions.
    let critic_system = critic_model.requests()[0].messages[0].text().into_owned();
    assert!(critic_system.starts_with("You review Rust.") && critic_system.contains("score"));
    let scores: Vec<f64> = arch_events(&recorder)
        .iter()
        .filter(|(n, _)| n == "actor_critic.scored")
        .filter_map(|(_, p)| p["score"].as_f64())
        .collect();
    assert_eq!(scores, [0.4, 0.95]);
    assert_eq!(result.usage, all_usage(&recorder));
    Ok(())
}

#[tokio::test]
async fn an_unreadable_critique_scores_zero_and_the_rounds_are_bounded() -> anyhow::Result<()> {
    let actor_model = ScriptedModel::new([ScriptedTurn::text("v1"), ScriptedTurn::text("v2")]);
    // The critic's answer and its one correction are both unreadable.
    let critic_model =
        ScriptedModel::new([ScriptedTurn::text("looks fine"), ScriptedTurn::text("fine!"), critique(0.5, &["meh"])]);
    let actor = Agent::new("Write.").model(actor_model.clone());
    let critic = Agent::new("Review.").model(critic_model.clone());
    let recorder = Recorder::new();
    let agent = Agent::new("")
        .model(actor_model.clone())
        .architecture(ActorCritic::new(actor, critic).max_rounds(2).approval_threshold(0.9))
        .on_event(recorder.listener());
    let result = agent.run("Write.").await?;
    assert_eq!(result.output, "v2");
    assert_eq!((actor_model.calls(), critic_model.calls()), (2, 3));
    assert!(arch_events(&recorder).iter().any(|(n, _)| n == "actor_critic.critique_rejected"));
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    let pair = || ActorCritic::new(Agent::new("a").model(model.clone()), Agent::new("c").model(model.clone()));
    for arch in [
        pair().max_rounds(0),
        pair().approval_threshold(2.0),
        ActorCritic::new(Agent::new("a"), Agent::new("c").model(model.clone())),
    ] {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(model.calls(), 0);
}
