//! A crashed run of an architecture resumes in another process without repeating the model
//! calls, tool calls and member runs that finished.

use std::collections::HashMap;
use std::future::IntoFuture as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomflow::agent::AgentInput;
use loomflow::arch::{Debate, ReWoo, Supervisor, Swarm};
use loomflow::prelude::*;
use loomflow::session::InMemoryStore;
use serde_json::json;
use tokio::sync::Notify;

use crate::common::when_free;
use crate::support::{Crash, crash, system};
use crate::tree_of_thoughts::{last_thought, thinker, tot};

/// Fetches, counting each query; a query starting with `slow` hangs when `hang` is set.
pub struct Fetcher {
    pub runs: Mutex<HashMap<String, usize>>,
    pub hang: bool,
    pub reached: Notify,
}

impl Fetcher {
    fn new(hang: bool) -> Arc<Self> {
        Arc::new(Self { runs: Mutex::new(HashMap::new()), hang, reached: Notify::new() })
    }

    fn count(&self, q: &str) -> usize {
        self.runs.lock().map(|r| r.get(q).copied().unwrap_or(0)).unwrap_or(0)
    }
}

/// Fetch a page.
#[tool(read_only, idempotent)]
pub async fn fetch(fetcher: State<Fetcher>, q: String) -> String {
    if let Ok(mut runs) = fetcher.runs.lock() {
        *runs.entry(q.clone()).or_default() += 1;
    }
    if fetcher.hang && q.starts_with("slow") {
        fetcher.reached.notify_one();
        std::future::pending::<()>().await;
    }
    format!("page of {q}")
}

fn resume(agent: &Agent) -> impl Future<Output = Result<RunResult, Error>> + '_ {
    when_free(move || agent.resume_with(AgentInput::resume_latest()).user("u").session("s").into_future())
}

#[tokio::test]
async fn rewoo_resumes_after_its_finished_steps() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let plan = json!({"steps": [
        {"id": "E1", "tool": "fetch", "args": {"q": "a"}},
        {"id": "E2", "tool": "fetch", "args": {"q": "b"}},
        {"id": "E3", "tool": "fetch", "args": {"q": "slow {{E1}} {{E2}}"}},
    ]});
    let agent = |model: ScriptedModel, fetcher: &Arc<Fetcher>| {
        Agent::new("Research.")
            .model(model)
            .tool(FetchTool)
            .state_arc(Arc::clone(fetcher))
            .store(Arc::clone(&store))
            .lease(Duration::from_millis(200))
            .architecture(ReWoo::new())
    };
    let first = Fetcher::new(true);
    let dying = agent(ScriptedModel::new([ScriptedTurn::text(plan.to_string())]), &first);
    crash(dying.run("Research a and b.").user("u").session("s").into_future(), &first.reached).await;
    assert_eq!((first.count("a"), first.count("b")), (1, 1));

    // Another process: only the solver is left to ask.
    let second = Fetcher::new(false);
    let model = ScriptedModel::new([ScriptedTurn::text("Both pages read.")]);
    let result = resume(&agent(model.clone(), &second)).await?;
    assert_eq!(result.output, "Both pages read.");
    assert_eq!(model.calls(), 1);
    assert_eq!((second.count("a"), second.count("b"), second.count("slow page of a page of b")), (0, 0, 1));
    assert!(model.requests()[0].last_text().contains("page of slow page of a page of b"));
    Ok(())
}

#[tokio::test]
async fn a_supervisor_resumes_without_running_a_finished_worker_again() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let manager_turns = || {
        vec![
            ScriptedTurn::tool_call("delegate", json!({"worker": "a", "instructions": "first"})),
            ScriptedTurn::tool_call("delegate", json!({"worker": "b", "instructions": "second"})),
        ]
    };
    let team = |manager: ScriptedModel, a: Crash, b: Crash| {
        let a = Agent::new("Worker a.").name("a").model(a);
        let b = Agent::new("Worker b.").name("b").model(b);
        Agent::new("Manage.")
            .model(manager)
            .store(Arc::clone(&store))
            .lease(Duration::from_millis(200))
            .architecture(Supervisor::new().worker("a", a).worker("b", b))
    };
    let b_dies = Crash::at(ScriptedModel::new([]), 1);
    let reached = Arc::clone(&b_dies.reached);
    let dying = team(
        ScriptedModel::new(manager_turns()),
        Crash::never(ScriptedModel::new([ScriptedTurn::text("a done")])),
        b_dies,
    );
    crash(dying.run("Do both.").user("u").session("s").into_future(), &reached).await;

    let manager = ScriptedModel::new([ScriptedTurn::text("Both done.")]);
    let a = ScriptedModel::new([]);
    let b = ScriptedModel::new([ScriptedTurn::text("b done")]);
    let result = resume(&team(manager.clone(), Crash::never(a.clone()), Crash::never(b.clone()))).await?;
    assert_eq!(result.output, "Both done.");
    assert_eq!((manager.calls(), a.calls(), b.calls()), (1, 0, 1));
    let results: Vec<String> = manager.requests()[0]
        .messages
        .iter()
        .filter(|m| m.role() == loomflow::model::Role::Tool)
        .map(|m| m.text().into_owned())
        .collect();
    assert_eq!(results, ["a done", "b done"]);
    Ok(())
}

#[tokio::test]
async fn a_swarm_resumes_at_the_peer_that_had_the_conversation() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let swarm = |triage: Crash, billing: Crash| {
        let triage = Agent::new("Triage.").name("triage").model(triage);
        let billing = Agent::new("Billing.").name("billing").model(billing);
        Agent::new("")
            .model(ScriptedModel::new([]))
            .store(Arc::clone(&store))
            .lease(Duration::from_millis(200))
            .architecture(Swarm::new().peer("triage", triage).peer("billing", billing))
    };
    let handoff = ScriptedTurn::tool_call("handoff", json!({"target": "billing", "message": "invoice"}));
    let billing_dies = Crash::at(ScriptedModel::new([]), 1);
    let reached = Arc::clone(&billing_dies.reached);
    let dying = swarm(Crash::never(ScriptedModel::new([handoff])), billing_dies);
    crash(dying.run("My invoice?").user("u").session("s").into_future(), &reached).await;

    let triage = ScriptedModel::new([]);
    let billing = ScriptedModel::new([ScriptedTurn::text("Paid.")]);
    let result = resume(&swarm(Crash::never(triage.clone()), Crash::never(billing.clone()))).await?;
    assert_eq!((result.output.as_str(), triage.calls(), billing.calls()), ("Paid.", 0, 1));
    assert!(billing.requests()[0].last_text().contains("[Handoff: triage → billing] invoice"));
    Ok(())
}

#[tokio::test]
async fn tree_of_thoughts_resumes_mid_level() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let agent = |model: Crash| {
        Agent::new("Think.")
            .model(model)
            .store(Arc::clone(&store))
            .lease(Duration::from_millis(200))
            .architecture(tot().parallel(false))
    };
    // Dies scoring the first thought of the second level.
    let dying =
        Crash::when(thinker(), |r| system(r).starts_with("EVALUATE") && last_thought(r).is_some_and(|t| t.len() == 2));
    let reached = Arc::clone(&dying.reached);
    crash(agent(dying).run("Solve it.").user("u").session("s").into_future(), &reached).await;

    let model = thinker();
    let result = resume(&agent(Crash::never(model.clone()))).await?;
    assert_eq!(result.output, "answer via b2");
    // Two scores of the second level and the synthesis; the first level is not asked again.
    assert_eq!(model.calls(), 3);
    Ok(())
}

#[tokio::test]
async fn a_debate_resumes_without_repeating_its_finished_rounds() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let debate = |a: Crash, b: Crash| {
        Agent::new("")
            .model(ScriptedModel::new([]))
            .store(Arc::clone(&store))
            .lease(Duration::from_millis(200))
            .architecture(
                Debate::new()
                    .debater("a", Agent::new("A.").name("a").model(a))
                    .debater("b", Agent::new("B.").name("b").model(b))
                    .rounds(1)
                    .convergence(false),
            )
    };
    let answer = |t: &str| ScriptedTurn::text(format!("Final answer: {t}"));
    let b_dies = Crash::at(ScriptedModel::new([answer("2")]), 2);
    let reached = Arc::clone(&b_dies.reached);
    crash(
        debate(Crash::never(ScriptedModel::new([answer("1"), answer("1")])), b_dies)
            .run("?")
            .user("u")
            .session("s")
            .into_future(),
        &reached,
    )
    .await;

    let a = ScriptedModel::from_fn(move |_| ScriptedTurn::text("Final answer: 1"));
    let b = ScriptedModel::from_fn(move |_| ScriptedTurn::text("Final answer: 1"));
    let result = resume(&debate(Crash::never(a.clone()), Crash::never(b.clone()))).await?;
    assert_eq!(result.output, "1");
    // No opening answer was asked for again.
    for r in a.requests().iter().chain(b.requests().iter()) {
        assert!(r.last_text().contains("Your last answer"), "{}", r.last_text());
    }
    assert_eq!(b.calls(), 1);
    Ok(())
}
