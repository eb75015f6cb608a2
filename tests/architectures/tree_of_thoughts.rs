//! Tree of Thoughts: a beam search, each level asked at once.

use std::future::IntoFuture as _;
use std::sync::Arc;

use loomflow::arch::TreeOfThoughts;
use loomflow::model::ModelRequest;
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{Gate, all_text, arch_events, at_once, calls, system};

/// The last thought of the chain in a request (`None` at the root).
pub(crate) fn last_thought(request: &ModelRequest<'_>) -> Option<String> {
    let text = all_text(request);
    let after = text.split("Reasoning so far:\n").nth(1)?;
    after.lines().rev().find_map(|l| l.split_once(". ").map(|(_, t)| t.to_owned()))
}

fn score(thought: &str) -> f64 {
    match thought {
        "a" => 0.3,
        "b" => 0.6,
        "b1" => 0.5,
        "b2" => 0.9,
        "a1" => 0.4,
        "a2" => 0.2,
        _ => 0.0,
    }
}

/// Proposes `x1`, `x2` after thought `x` (`a`, `b` at the root), scores by [`score`], and
/// synthesises from the whole chain.
pub(crate) fn thinker() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let role = system(request);
        let last = last_thought(request);
        if role.starts_with("PROPOSE") {
            let thoughts = match &last {
                None => vec!["a".to_owned(), "b".to_owned()],
                Some(t) => vec![format!("{t}1"), format!("{t}2")],
            };
            ScriptedTurn::text(json!({ "thoughts": thoughts }).to_string())
        } else if role.starts_with("EVALUATE") {
            let s = last.as_deref().map_or(0.0, score);
            ScriptedTurn::text(json!({"score": s, "reason": "scripted"}).to_string())
        } else {
            ScriptedTurn::text(format!("answer via {}", last.unwrap_or_default()))
        }
    })
}

pub(crate) fn tot() -> TreeOfThoughts {
    TreeOfThoughts::new()
        .branch_factor(2)
        .max_depth(2)
        .beam_width(1)
        .proposer_prompt("PROPOSE")
        .evaluator_prompt("EVALUATE")
        .synthesizer_prompt("SYNTH")
}

fn levels(recorder: &Recorder) -> Vec<Vec<(String, f64)>> {
    arch_events(recorder)
        .into_iter()
        .filter(|(n, _)| n == "tot.level")
        .map(|(_, p)| {
            p["candidates"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| (c["id"].as_str().unwrap_or("").to_owned(), c["score"].as_f64().unwrap_or(-1.0)))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn the_beam_follows_the_best_thought_and_the_chain_is_synthesised() -> anyhow::Result<()> {
    let model = thinker();
    let recorder = Recorder::new();
    let agent = Agent::new("Think.").model(model.clone()).architecture(tot()).on_event(recorder.listener());
    let result = agent.run("Solve it.").await?;
    assert_eq!(result.output, "answer via b2");
    assert_eq!(
        calls(&recorder),
        ["proposer", "evaluator", "evaluator", "proposer", "evaluator", "evaluator", "synthesizer"]
    );
    assert_eq!(
        levels(&recorder),
        [vec![("1".to_owned(), 0.3), ("2".to_owned(), 0.6)], vec![("2.1".to_owned(), 0.5), ("2.2".to_owned(), 0.9)]]
    );
    // The synthesizer sees the whole chain.
    let synth = model.requests().last().map(|r| r.last_text()).unwrap_or_default();
    assert!(synth.contains("1. b\n2. b2"), "{synth}");
    Ok(())
}

#[tokio::test]
async fn each_levels_proposals_and_scores_are_asked_at_once() -> anyhow::Result<()> {
    let inner = thinker();
    // Two frontier nodes at depth 2: their proposals wait for each other; every level's two
    // (then four) scores too.
    let proposer = Gate {
        inner: inner.clone(),
        barrier: Arc::new(tokio::sync::Barrier::new(2)),
        gated: |r| last_thought(r).is_some(),
    };
    let evaluator = Gate { inner: inner.clone(), barrier: Arc::new(tokio::sync::Barrier::new(2)), gated: |_| true };
    let arch = tot().beam_width(2).proposer_model(proposer).evaluator_model(evaluator);
    let recorder = Recorder::new();
    let agent = Agent::new("Think.").model(inner).architecture(arch).on_event(recorder.listener());
    let result = at_once(agent.run("Solve it.").into_future()).await?;
    assert_eq!(result.output, "answer via b2");
    assert_eq!(levels(&recorder)[1].len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_solved_thought_stops_the_search_and_sequential_search_finds_the_same() -> anyhow::Result<()> {
    let model = thinker();
    let recorder = Recorder::new();
    let agent = Agent::new("Think.")
        .model(model.clone())
        .architecture(tot().solved_threshold(0.6).parallel(false).synthesize(false))
        .on_event(recorder.listener());
    let result = agent.run("Solve it.").await?;
    assert_eq!(result.output, "b");
    assert_eq!(calls(&recorder), ["proposer", "evaluator", "evaluator"]);
    assert!(arch_events(&recorder).iter().any(|(n, p)| n == "tot.solved" && p["id"] == "2"));
    Ok(())
}

#[tokio::test]
async fn malformed_proposals_leave_nothing_to_search_and_the_run_says_so() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::text("I think a, b"), ScriptedTurn::text(r#"{"thoughts": []}"#)]);
    let agent = Agent::new("Think.").model(model.clone()).architecture(tot());
    let err = agent.run("Solve it.").await.err();
    assert!(
        matches!(&err, Some(Error::Run(RunError::Architecture { architecture, .. })) if architecture == "tree-of-thoughts"),
        "{err:?}"
    );
    // The retry said what was wrong.
    assert!(model.requests()[1].last_text().contains("JSON"), "{}", model.requests()[1].last_text());
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    for arch in [tot().branch_factor(0), tot().max_depth(0), tot().beam_width(0), tot().min_score(2.0)] {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(model.calls(), 0);
}
