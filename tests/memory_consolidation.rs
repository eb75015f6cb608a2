//! Consolidation: episodes turned into facts by a model, through typed outputs; in the
//! background after an agent's turns; cancellable; never writing back what a forget removed.

mod common;

use std::sync::mpsc;

use loomflow::EventKind;
use loomflow::memory::AgentMemory;
use loomflow::memory::{ConsolidationOutcome, Consolidator, FactQuery, ForgetScope, Memory, Timestamp};
use loomflow::prelude::*;
use serde_json::json;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
}

fn facts(list: serde_json::Value) -> ScriptedTurn {
    ScriptedTurn::text(json!({ "facts": list }).to_string())
}

#[tokio::test]
async fn episodes_become_facts_with_their_sources_superseded_in_valid_time_order() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = user("ann");
    let moved = memory.remember(&ann, "turn", "Ann: I joined Globex in March 2026.").await?;
    let before = memory.remember(&ann, "turn", "Ann: before that I was at Acme from 2024.").await?;
    // The later job arrives first; the earlier one still ends where the later begins.
    let model = ScriptedModel::new([
        facts(json!([{"subject": "Ann", "predicate": "works at", "object": "Globex", "valid_from": "2026-03-01"}])),
        // Fenced, with prose around it: read all the same.
        ScriptedTurn::text(
            "Here you go:\n```json\n{\"facts\": [{\"subject\": \"ann\", \"predicate\": \"worksAt\", \"object\": \"Acme\", \
             \"confidence\": 0.9, \"valid_from\": \"2024-01-01\"}]}\n```",
        ),
    ]);
    let consolidator = Consolidator::new(model.clone());
    let first = consolidator.consolidate(&memory, &ann, std::slice::from_ref(&moved)).await?;
    assert_eq!(first.outcome, ConsolidationOutcome::Recorded);
    assert_eq!(first.facts[0].sources, [moved.id.to_string()]);
    let second = consolidator.consolidate(&memory, &ann, std::slice::from_ref(&before)).await?;
    assert_eq!(second.facts.len(), 1);
    assert!(model.requests()[1].last_text().contains("before that I was at Acme"));

    let all = memory.facts(&ann, FactQuery::new().subject("ann").predicate("works_at")).await?;
    assert_eq!(all.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Acme", "Globex"]);
    assert_eq!(all[0].valid_until, Some(Timestamp::from_ymd(2026, 3, 1)));
    assert_eq!(all[0].confidence, 0.9);
    Ok(())
}

#[tokio::test]
async fn an_answer_that_cannot_be_read_records_nothing_and_says_why() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = user("ann");
    let note = memory.remember(&ann, "turn", "Ann likes tea.").await?;
    let model = ScriptedModel::new([
        ScriptedTurn::text("Ann likes tea, I think."),
        ScriptedTurn::text("{\"facts\": [{\"subject\": \"Ann\"}"),
    ]);
    let done = Consolidator::new(model.clone()).consolidate(&memory, &ann, &[note]).await?;
    assert!(matches!(done.outcome, ConsolidationOutcome::Unreadable { .. }), "{:?}", done.outcome);
    assert!(done.facts.is_empty());
    // It was told once what was wrong.
    assert_eq!(model.calls(), 2);
    assert!(memory.facts(&ann, FactQuery::new()).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn empty_or_unsure_facts_are_left_out_and_the_count_is_bounded() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = user("ann");
    let note = memory.remember(&ann, "turn", "Ann has a cat, a dog and maybe a fish.").await?;
    let model = ScriptedModel::new([facts(json!([
        {"subject": "Ann", "predicate": "has", "object": "cat"},
        {"subject": "", "predicate": "has", "object": "dog"},
        {"subject": "Ann", "predicate": "has", "object": "fish", "confidence": 0.2},
        {"subject": "Ann", "predicate": "owns", "object": "dog", "valid_from": "not a date"},
        {"subject": "Ann", "predicate": "feeds", "object": "cat"},
    ]))]);
    let done = Consolidator::new(model).min_confidence(0.5).max_facts(2).consolidate(&memory, &ann, &[note]).await?;
    let recorded: Vec<_> = done.facts.iter().map(|f| (f.predicate.as_str(), f.object.as_str())).collect();
    assert_eq!(recorded, [("has", "cat"), ("owns", "dog")]);
    assert_eq!(done.skipped.len(), 3, "{:?}", done.skipped);
    // Another user's episodes are not read for ann.
    let bob_note = memory.remember(&user("bob"), "turn", "Bob likes chess.").await?;
    let none = Consolidator::new(ScriptedModel::new([])).consolidate(&memory, &ann, &[bob_note]).await?;
    assert_eq!(none.outcome, ConsolidationOutcome::NothingToRead);
    Ok(())
}

#[tokio::test]
async fn an_agent_consolidates_its_turns_in_the_background() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let consolidator = Consolidator::new(ScriptedModel::new([facts(
        json!([{"subject": "ann", "predicate": "lives in", "object": "Oslo"}]),
    )]));
    let recorder = common::Recorder::new();
    let agent = Agent::new("Help.")
        .model(ScriptedModel::new([ScriptedTurn::text("Welcome to Oslo!")]))
        .memory(AgentMemory::new(memory.clone()).consolidate(consolidator))
        .on_event(recorder.listener());
    agent.run("I just moved to Oslo").user("ann").session("s1").await?;
    memory.consolidated().await;
    let found = memory.facts(&user("ann"), FactQuery::new().predicate("lives in")).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].object, "Oslo");
    let turn = memory.export(&user("ann")).await?.memory.episodes;
    assert_eq!(found[0].sources, [turn[0].id.to_string()]);
    let consolidated = recorder
        .events()
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::Memory { name, payload } if name == "memory.consolidated" => Some(payload),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no memory.consolidated event"))?;
    assert_eq!(consolidated["facts"], 1);
    Ok(())
}

/// A model that says when it is asked and answers only when told to.
fn held_model(answer: serde_json::Value) -> (ScriptedModel, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (asked_tx, asked) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let model = ScriptedModel::from_fn(move |_| {
        let _ = asked_tx.send(());
        let _ = go_rx.lock().map(|rx| rx.recv());
        ScriptedTurn::text(json!({ "facts": answer }).to_string())
    });
    (model, asked, go)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_during_a_consolidation_is_never_undone_by_it() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = user("ann");
    let note = memory.remember(&ann, "turn", "Ann's code is 4412.").await?;
    let (model, asked, go) = held_model(json!([{"subject": "ann", "predicate": "code", "object": "4412"}]));
    let handle = Consolidator::new(model).spawn(&memory, &ann, vec![note]);
    tokio::task::spawn_blocking(move || asked.recv()).await??;
    // The model is reading ann's episode; she is forgotten meanwhile.
    memory.forget(&ann, ForgetScope::all()).await?;
    go.send(())?;
    let done = handle.join().await?;
    assert_eq!(done.outcome, ConsolidationOutcome::Cancelled);
    assert!(done.facts.is_empty());
    assert!(memory.facts(&ann, FactQuery::new()).await?.is_empty());
    memory.consolidated().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consolidation_can_be_cancelled_and_others_go_on() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let (ann, bob) = (user("ann"), user("bob"));
    let ann_note = memory.remember(&ann, "turn", "Ann likes tea.").await?;
    let bob_note = memory.remember(&bob, "turn", "Bob likes chess.").await?;
    let (model, asked, go) = held_model(json!([{"subject": "x", "predicate": "likes", "object": "y"}]));
    let consolidator = Consolidator::new(model);
    let ann_run = consolidator.spawn(&memory, &ann, vec![ann_note]);
    tokio::task::spawn_blocking(move || asked.recv()).await??;
    ann_run.cancel();
    go.send(())?;
    assert_eq!(ann_run.join().await?.outcome, ConsolidationOutcome::Cancelled);

    // Cancelling ann's leaves bob's alone.
    let bob_model = ScriptedModel::new([facts(json!([{"subject": "bob", "predicate": "likes", "object": "chess"}]))]);
    let bob_run = Consolidator::new(bob_model).spawn(&memory, &bob, vec![bob_note]);
    memory.cancel_consolidations(&ann);
    assert_eq!(bob_run.join().await?.facts.len(), 1);
    assert!(memory.facts(&ann, FactQuery::new()).await?.is_empty());
    Ok(())
}
