//! Supervisor: delegations at once, forwarding, spawning, nesting.

use std::future::IntoFuture as _;

use loomflow::arch::{Supervisor, Team};
use loomflow::model::Role;
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{Gate, all_usage, at_once, calls};

fn delegate(worker: &str, instructions: &str) -> serde_json::Value {
    json!({"worker": worker, "instructions": instructions})
}

fn worker(name: &str, model: impl Model) -> Agent {
    Agent::new(format!("You are the {name} expert.")).name(name).description(format!("{name} matters")).model(model)
}

#[tokio::test]
async fn delegations_of_one_turn_run_at_once_and_roll_up_into_the_run() -> anyhow::Result<()> {
    let manager = ScriptedModel::new([
        ScriptedTurn::tool_call("delegate", delegate("billing", "Check invoice 7"))
            .with_tool_call("delegate", delegate("tech", "Check the line"))
            .with_tool_call("delegate", delegate("sales", "Any offers?")),
        ScriptedTurn::text("Invoice paid, line fixed, 10% off."),
    ]);
    // Each worker can only answer once all three are asking.
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    let gated = |answer: &str| Gate {
        inner: ScriptedModel::new([ScriptedTurn::text(answer.to_owned())]),
        barrier: std::sync::Arc::clone(&gate),
        gated: |_| true,
    };
    let team = Supervisor::new()
        .worker("billing", worker("billing", gated("paid")))
        .worker("tech", worker("tech", gated("fixed")))
        .worker("sales", worker("sales", gated("10% off")));
    let recorder = Recorder::new();
    let agent = Agent::new("You run support.").model(manager.clone()).architecture(team).on_event(recorder.listener());
    let result = at_once(agent.run("Three questions").user("u").session("s").into_future()).await?;
    assert_eq!(result.output, "Invoice paid, line fixed, 10% off.");
    let order = calls(&recorder);
    assert_eq!(
        (order.first().map(String::as_str), order.last().map(String::as_str)),
        (Some("manager"), Some("manager"))
    );
    let mut workers: Vec<&str> = order[1..4].iter().map(String::as_str).collect();
    workers.sort_unstable();
    assert_eq!(workers, ["billing:agent", "sales:agent", "tech:agent"]);
    // Every worker's usage counts in the run's, and its events name the run as their parent.
    assert_eq!(result.usage, all_usage(&recorder));
    assert_eq!(result.tool_calls, 3);
    let children: Vec<(Option<RunId>, Option<String>)> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::RunStarted { parent: Some(p), session, .. } => Some((Some(p), session.map(|s| s.to_string()))),
            _ => None,
        })
        .collect();
    assert_eq!(children.len(), 3);
    assert!(children.iter().all(|(p, _)| *p == Some(result.run_id)));
    let mut sessions: Vec<String> = children.into_iter().filter_map(|(_, s)| s).collect();
    sessions.sort();
    assert_eq!(sessions, ["s/billing", "s/sales", "s/tech"]);
    // The manager read each worker's answer, and was shown the team.
    let second = &manager.requests()[1];
    let results: Vec<String> =
        second.messages.iter().filter(|m| m.role() == Role::Tool).map(|m| m.text().into_owned()).collect();
    assert_eq!(results, ["paid", "fixed", "10% off"]);
    assert!(manager.requests()[0].messages[0].text().contains("- billing: billing matters"));
    assert_eq!(manager.requests()[0].tool_names(), ["delegate", "forward_message"]);
    // The session keeps the conversation without the roster.
    let history = agent.session_store().load(&UserId::new("u")?, &SessionId::new("s")?, None).await?;
    assert!(history.iter().all(|m| !m.text().contains("You lead a team")));
    Ok(())
}

#[tokio::test]
async fn forwarding_ends_the_turn_with_the_workers_answer_word_for_word() -> anyhow::Result<()> {
    let manager = ScriptedModel::new([
        ScriptedTurn::tool_call("forward_message", json!({"worker": "tech"})),
        ScriptedTurn::tool_call("delegate", delegate("tech", "Fix it")),
        ScriptedTurn::tool_call("forward_message", json!({"worker": "tech"})),
    ]);
    let tech = ScriptedModel::new([ScriptedTurn::text("Step 1: unplug.\nStep 2: plug.")]);
    let agent = Agent::new("Support.")
        .model(manager.clone())
        .architecture(Supervisor::new().worker("tech", worker("tech", tech)));
    let result = agent.run("Fix my router").user("u").session("s").await?;
    assert_eq!(result.output, "Step 1: unplug.\nStep 2: plug.");
    assert_eq!(result.turns, 3);
    // Forwarding before the worker answered is an error the manager reads.
    let first =
        manager.requests()[1].messages.iter().rev().find(|m| m.role() == Role::Tool).map(|m| m.text().into_owned());
    assert!(first.unwrap_or_default().contains("has not answered yet"));
    assert_eq!(
        result.messages.last().map(|m| m.text().into_owned()).as_deref(),
        Some("Step 1: unplug.\nStep 2: plug.")
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_worker_or_a_bad_call_is_an_error_the_manager_corrects() -> anyhow::Result<()> {
    let manager = ScriptedModel::new([
        ScriptedTurn::tool_call("delegate", delegate("biling", "x")),
        ScriptedTurn::raw_tool_call("delegate", r#"{"worker": "billing"}"#),
        ScriptedTurn::tool_call("delegate", delegate("billing", "Check invoice")),
        ScriptedTurn::text("Done."),
    ]);
    let billing = ScriptedModel::new([ScriptedTurn::text("paid")]);
    let agent = Agent::new("Support.")
        .model(manager.clone())
        .architecture(Supervisor::new().worker("billing", worker("billing", billing.clone())));
    assert_eq!(agent.run("?").await?.output, "Done.");
    let tool_text = |i: usize| manager.requests()[i].messages.last().map(|m| m.text().into_owned()).unwrap_or_default();
    assert!(tool_text(1).contains("no worker `biling`") && tool_text(1).contains("did you mean `billing`"));
    assert!(tool_text(2).contains("instructions"));
    assert_eq!(billing.calls(), 1);
    Ok(())
}

#[tokio::test]
async fn spawned_workers_use_the_managers_model_up_to_the_limit() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("spawn_worker", json!({"name": "poet", "instructions": "You write haiku."})),
        ScriptedTurn::tool_call("delegate", delegate("poet", "A haiku about looms"))
            .with_tool_call("spawn_worker", json!({"name": "critic", "instructions": "You judge."})),
        // The poet's turn, on the manager's model.
        ScriptedTurn::text("Threads cross and hold fast"),
        ScriptedTurn::text("Here is a haiku: Threads cross and hold fast"),
    ]);
    let agent = Agent::new("You manage writers.").model(model.clone()).architecture(Supervisor::new().allow_spawn(1));
    let result = agent.run("Write a haiku").await?;
    assert_eq!(result.output, "Here is a haiku: Threads cross and hold fast");
    let requests = model.requests();
    assert_eq!(requests[2].messages[0].text(), "You write haiku.");
    let last: Vec<String> =
        requests[3].messages.iter().filter(|m| m.role() == Role::Tool).map(|m| m.text().into_owned()).collect();
    assert!(last.iter().any(|t| t.contains("the limit is 1")), "{last:?}");
    Ok(())
}

#[tokio::test]
async fn a_worker_can_be_a_supervisor_itself() -> anyhow::Result<()> {
    let leaf = Agent::new("Leaf.").name("leaf").model(ScriptedModel::new([ScriptedTurn::text("leaf answer")]));
    let middle = Team::supervisor("Middle manager.", [("leaf", leaf)]).name("middle").model(ScriptedModel::new([
        ScriptedTurn::tool_call("delegate", delegate("leaf", "go")),
        ScriptedTurn::tool_call("forward_message", json!({"worker": "leaf"})),
    ]));
    let top = ScriptedModel::new([
        ScriptedTurn::tool_call("delegate", delegate("middle", "go")),
        ScriptedTurn::tool_call("forward_message", json!({"worker": "middle"})),
    ]);
    let recorder = Recorder::new();
    let agent = Team::supervisor("Top.", [("middle", middle)]).model(top).on_event(recorder.listener());
    let result = agent.run("go").await?;
    assert_eq!(result.output, "leaf answer");
    assert_eq!(calls(&recorder), ["manager", "middle:manager", "leaf:agent", "middle:manager", "manager"]);
    assert_eq!(result.turns, 2);
    assert_eq!(result.usage, all_usage(&recorder));
    Ok(())
}

#[tokio::test]
async fn bad_configurations_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    let cases = [
        Supervisor::new(),
        Supervisor::new().worker("a", worker("a", model.clone())).max_turns(0),
        Supervisor::new().worker("a", Agent::new("no model")),
        Supervisor::new().worker("a", worker("a", model.clone())).worker("a", worker("a", model.clone())),
    ];
    for arch in cases {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(model.calls(), 0);
}
