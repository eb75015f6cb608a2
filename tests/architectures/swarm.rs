//! Swarm: handoffs, typed handoffs, the caps, and the last peer kept across processes.

use std::sync::Arc;

use loomflow::arch::{LoopExit, Swarm, Team};
use loomflow::model::Role;
use loomflow::prelude::*;
use loomflow::session::InMemoryStore;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{arch_events, calls};

fn peer(name: &str, model: &ScriptedModel) -> Agent {
    Agent::new(format!("You are {name}.")).name(name).description(format!("{name} desk")).model(model.clone())
}

fn handoff(target: &str, message: &str) -> ScriptedTurn {
    ScriptedTurn::tool_call("handoff", json!({"target": target, "message": message}))
}

#[tokio::test]
async fn a_handoff_passes_the_thread_and_the_next_message_goes_to_the_last_peer_in_any_process() -> anyhow::Result<()> {
    let triage = ScriptedModel::new([handoff("billing", "Customer asks about invoice 7")]);
    let billing = ScriptedModel::new([ScriptedTurn::text("Invoice 7 is paid."), ScriptedTurn::text("You're welcome.")]);
    let store = Arc::new(InMemoryStore::new());
    let swarm = |triage: &ScriptedModel, billing: &ScriptedModel| {
        Team::swarm([("triage", peer("triage", triage)), ("billing", peer("billing", billing))])
            .store(Arc::clone(&store))
    };
    let recorder = Recorder::new();
    let agent = swarm(&triage, &billing).on_event(recorder.listener());
    let result = agent.run("Is invoice 7 paid?").user("u").session("s").await?;
    assert_eq!(result.output, "Invoice 7 is paid.");
    assert_eq!(calls(&recorder), ["triage:agent", "billing:agent"]);
    // Triage could hand off to billing only; billing sees the thread and the handoff.
    assert_eq!(triage.requests()[0].tool_names(), ["handoff"]);
    let given = billing.requests()[0].last_text();
    assert!(
        given.contains("User: Is invoice 7 paid?")
            && given.contains("[Handoff: triage → billing] Customer asks about invoice 7"),
        "{given}"
    );
    let handoffs: Vec<serde_json::Value> =
        arch_events(&recorder).into_iter().filter(|(n, _)| n == "swarm.handoff").map(|(_, p)| p).collect();
    assert_eq!(handoffs, [json!({"from": "triage", "to": "billing", "message": "Customer asks about invoice 7"})]);
    assert_eq!(result.exit, None);

    // Another process, the same store: the next message goes straight to billing.
    let triage2 = ScriptedModel::new([]);
    let again = swarm(&triage2, &billing).run("Thanks!").user("u").session("s").await?;
    assert_eq!(again.output, "You're welcome.");
    assert_eq!(triage2.calls(), 0);
    // And billing sees the conversation so far.
    assert!(billing.requests()[1].last_text().contains("Assistant: Invoice 7 is paid."));
    Ok(())
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Refund {
    order: String,
    cents: u32,
}

#[tokio::test]
async fn a_typed_handoff_checks_what_it_carries() -> anyhow::Result<()> {
    let triage = ScriptedModel::new([
        ScriptedTurn::tool_call("transfer_to_refunds", json!({"order": "A-7"})),
        ScriptedTurn::tool_call("transfer_to_refunds", json!({"order": "A-7", "cents": 1200})),
    ]);
    let refunds = ScriptedModel::new([ScriptedTurn::text("Refunded 12.00 for A-7.")]);
    let swarm =
        Swarm::new().peer("triage", peer("triage", &triage)).typed_peer::<Refund>("refunds", peer("refunds", &refunds));
    let agent = Agent::new("").model(triage.clone()).architecture(swarm);
    let result = agent.run("Refund my order").await?;
    assert_eq!(result.output, "Refunded 12.00 for A-7.");
    assert_eq!(triage.requests()[0].tool_names(), ["transfer_to_refunds"]);
    let error =
        triage.requests()[1].messages.iter().rev().find(|m| m.role() == Role::Tool).map(|m| m.text().into_owned());
    assert!(error.unwrap_or_default().contains("cents"));
    assert!(refunds.requests()[0].last_text().contains(r#""cents":1200"#));
    Ok(())
}

#[tokio::test]
async fn peers_passing_the_thread_back_and_forth_are_stopped() -> anyhow::Result<()> {
    let a = ScriptedModel::from_fn(|r| {
        if r.tools.is_empty() { ScriptedTurn::text("a answers at last") } else { handoff("b", "yours") }
    });
    let b = ScriptedModel::from_fn(|r| {
        if r.tools.is_empty() { ScriptedTurn::text("b answers at last") } else { handoff("a", "no, yours") }
    });
    let recorder = Recorder::new();
    let agent = Team::swarm([("a", peer("a", &a)), ("b", peer("b", &b))]).on_event(recorder.listener());
    let result = agent.run("?").await?;
    assert_eq!((result.output.as_str(), result.exit), ("a answers at last", Some(LoopExit::HandoffCycle)));
    // a, b, a, b, a, b: six handoffs, then a once more without its tools.
    assert_eq!(calls(&recorder).len(), 7);
    assert!(arch_events(&recorder).iter().any(|(n, p)| n == "swarm.stopped" && p["reason"] == "handoff_cycle"));

    let capped = Agent::new("")
        .model(a.clone())
        .architecture(Swarm::new().peer("a", peer("a", &a)).peer("b", peer("b", &b)).max_handoffs(1));
    let result = capped.run("?").await?;
    assert_eq!((result.output.as_str(), result.exit), ("b answers at last", Some(LoopExit::HandoffCap)));
    Ok(())
}

#[tokio::test]
async fn handoff_rules_limit_the_targets() -> anyhow::Result<()> {
    let m = ScriptedModel::new([handoff("c", "skip"), ScriptedTurn::text("a answers")]);
    let swarm =
        Swarm::new().peer("a", peer("a", &m)).peer("b", peer("b", &m)).peer("c", peer("c", &m)).handoffs("a", ["b"]);
    let result = Agent::new("").model(m.clone()).architecture(swarm).run("?").await?;
    assert_eq!(result.output, "a answers");
    let error = m.requests()[1].messages.last().map(|msg| msg.text().into_owned()).unwrap_or_default();
    assert!(error.contains("no peer you can hand off to `c`") && error.contains("b"), "{error}");
    Ok(())
}

#[tokio::test]
async fn bad_configurations_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    let cases = [
        Swarm::new().peer("a", peer("a", &model)),
        Swarm::new().peer("a", peer("a", &model)).peer("b", peer("b", &model)).entry("c"),
        Swarm::new().peer("a", peer("a", &model)).peer("b", peer("b", &model)).handoffs("a", ["x"]),
        Swarm::new().peer("a", peer("a", &model)).peer("b", peer("b", &model)).max_handoffs(0),
        Swarm::new().peer("a", peer("a", &model)).typed_peer::<Refund>("b c", peer("b", &model)),
    ];
    for arch in cases {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        let err = agent.run("x").await.err();
        assert!(matches!(err, Some(Error::Config(_))), "{err:?}");
    }
    assert_eq!(model.calls(), 0);
}
