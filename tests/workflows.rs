//! Workflows built with the constructors and the builder: chain, route, parallel, explicit
//! graphs with cycles, composition, events and cancellation.

mod common;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Recorder;
use loomflow::prelude::*;
use loomflow::workflow::{
    GraphBuilder, NodeError, NodeKind, WorkflowError, boxed, named, node_with_context, sync_node, try_node,
};
use serde_json::json;
use tokio::sync::{Barrier, Notify};

async fn append_a(s: String) -> String {
    s + "a"
}
async fn append_b(s: String) -> String {
    s + "b"
}
async fn append_c(s: String) -> String {
    s + "c"
}
async fn length(s: String) -> usize {
    s.len()
}

fn workflow_error(err: Error) -> anyhow::Result<WorkflowError> {
    match err {
        Error::Workflow(e) => Ok(e),
        other => anyhow::bail!("expected a workflow error, got {other:?}"),
    }
}

fn scripted_agent(name: &str, reply: &str) -> Agent {
    Agent::new(format!("You are {name}.")).name(name).model(ScriptedModel::from_fn({
        let reply = reply.to_owned();
        move |_| ScriptedTurn::text(reply.clone())
    }))
}

#[tokio::test]
async fn a_chain_passes_typed_values_along() -> anyhow::Result<()> {
    let wf = Workflow::chain((append_a, append_b, append_c));
    let recorder = Recorder::new();
    let result = wf.run(String::new()).on_event(recorder.listener()).await?;
    assert_eq!(result.output, "abc");
    assert_eq!(result.visited, ["step_0", "step_1", "step_2"]);
    // Each finished node's event summarises its output.
    let summaries: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::NodeFinished { summary, .. } => Some(summary),
            _ => None,
        })
        .collect();
    assert_eq!(summaries, ["a", "ab", "abc"]);
    // And every run reports its steps.
    let steps: Vec<(&str, &str)> = result.steps.iter().map(|s| (s.node.as_str(), s.summary.as_str())).collect();
    assert_eq!(steps, [("step_0", "a"), ("step_1", "ab"), ("step_2", "abc")]);

    // Types change along the way; nodes can be named.
    let wf = Workflow::chain((named("shout", append_a), length, sync_node(|n: usize| n * 2)));
    let result = wf.run("xy".to_owned()).await?;
    assert_eq!(result.output, 6);
    assert_eq!(result.visited, ["shout", "step_1", "step_2"]);

    // A list of boxed nodes of one type.
    let wf = Workflow::chain(vec![boxed(append_a), boxed(append_b)]);
    assert_eq!(wf.run("-".to_owned()).await?.output, "-ab");
    Ok(())
}

#[tokio::test]
async fn agents_are_nodes_and_their_events_join_the_workflow_stream() -> anyhow::Result<()> {
    let recorder = Recorder::new();
    let summarizer = scripted_agent("summarizer", "short");
    let wf = Workflow::chain((append_a, summarizer)).on_event(recorder.listener());
    let result = wf.run("text".to_owned()).user("alice").await?;
    assert_eq!(result.output, "short");
    assert_eq!(result.visited, ["step_0", "summarizer"]);
    assert_eq!(
        recorder.kinds(),
        [
            "run_started",
            "node_started",
            "node_finished",
            "node_started",
            "run_started",
            "model_request",
            "model_response",
            "run_finished",
            "node_finished",
            "workflow_finished"
        ]
    );
    // The agent's run is nested in the workflow's, for the same user.
    let events = recorder.events();
    let inner = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStarted { parent: Some(p), user, .. } => Some((*p, user.clone())),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no nested run"))?;
    assert_eq!(inner, (result.run_id, UserId::new("alice")?));
    Ok(())
}

#[tokio::test]
async fn route_sends_the_original_input_to_the_chosen_handler() -> anyhow::Result<()> {
    let classify = Agent::new("Reply billing or tech.").model(ScriptedModel::from_fn(|req| {
        let text = req.last_user_text().unwrap_or_default();
        ScriptedTurn::text(if text.contains("invoice") {
            " billing\n"
        } else if text.contains("crash") {
            "tech"
        } else {
            "other"
        })
    }));
    let billing = Agent::new("Billing.").model(ScriptedModel::from_fn(|req| {
        ScriptedTurn::text(format!("BILLING: {}", req.last_user_text().unwrap_or_default()))
    }));
    let tech = scripted_agent("tech", "TECH: please reboot");
    let general = scripted_agent("general", "GENERAL");

    let support =
        Workflow::route_with_default(classify.clone(), [("billing", billing), ("tech", tech.clone())], general);
    let r = support.run("My invoice is wrong".to_owned()).await?;
    assert_eq!(r.output, "BILLING: My invoice is wrong");
    assert_eq!(r.visited, ["classify", "route_billing"]);
    let r = support.run("The app crashes".to_owned()).await?;
    assert_eq!(r.visited, ["classify", "route_tech"]);
    let r = support.run("Hello".to_owned()).await?;
    assert_eq!(r.output, "GENERAL");
    assert_eq!(r.visited, ["classify", "route_default"]);

    let strict = Workflow::route(classify, [("tech", tech)]);
    let err = workflow_error(strict.run("Hello".to_owned()).await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert!(matches!(&err, WorkflowError::NoRoute { key, .. } if key == "other"), "{err}");
    assert_eq!(
        err.to_string(),
        "node `classify` produced the route key `other`, which no route handles, and there is no default route"
    );
    Ok(())
}

struct Gate(Barrier);

#[tokio::test]
async fn parallel_branches_run_at_once_and_join_in_branch_order() -> anyhow::Result<()> {
    // Every branch waits at one barrier: run one after another, the first would wait forever.
    let branches: Vec<_> = (0..4)
        .map(|i| {
            named(
                format!("b{i}"),
                node_with_context(move |ctx: RunContext, input: String| async move {
                    let gate = ctx.state::<Gate>().ok_or_else(|| NodeError::new("no gate"))?;
                    gate.0.wait().await;
                    // Later branches finish first.
                    tokio::time::sleep(Duration::from_millis(10 * (4 - i))).await;
                    Ok(format!("{input}{i}"))
                }),
            )
        })
        .collect();
    let wf = Workflow::parallel(branches, sync_node(|outs: Vec<String>| outs.join(","))).state(Gate(Barrier::new(4)));
    let result = tokio::time::timeout(Duration::from_secs(10), wf.run("x".to_owned()).into_future()).await??;
    assert_eq!(result.output, "x0,x1,x2,x3");
    assert_eq!(result.visited.first().map(|n| n.as_str()), Some("fan_out"));
    assert_eq!(result.visited.last().map(|n| n.as_str()), Some("join"));
    assert_eq!(result.visited.len(), 6);
    let kinds: Vec<NodeKind> = wf.graph().nodes().iter().map(|n| n.kind).collect();
    assert_eq!(kinds.first(), Some(&NodeKind::FanOut));
    assert_eq!(kinds.last(), Some(&NodeKind::Join));
    Ok(())
}

#[tokio::test]
async fn the_branches_of_a_fan_out_share_one_step() -> anyhow::Result<()> {
    // 150 branches under the default bound of 100 steps: the fan-out (whose step the branches
    // share) and the join take two.
    let branches: Vec<_> = (0..150).map(|i| boxed(sync_node(move |s: String| format!("{s}{i};")))).collect();
    let wf = Workflow::parallel(branches, sync_node(|v: Vec<String>| v.len()));
    let result = wf.run("x".to_owned()).await?;
    assert_eq!(result.output, 150);
    assert_eq!(result.visited.len(), 152);

    // The bound still counts the fan-out and the join.
    let branches: Vec<_> = (0..3).map(|i| boxed(sync_node(move |s: String| format!("{s}{i}")))).collect();
    let wf = Workflow::parallel(branches, sync_node(|v: Vec<String>| v.len())).max_steps(1);
    let err = workflow_error(wf.run("x".to_owned()).await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert!(matches!(err, WorkflowError::StepLimit { limit: 1, .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_failing_branch_fails_the_run_and_names_the_node() -> anyhow::Result<()> {
    let ok = named("ok", try_node(|s: String| async move { Ok::<_, NodeError>(s) }));
    let bad = named("bad", try_node(|_: String| async move { Err::<String, _>(NodeError::new("the branch broke")) }));
    let wf = Workflow::parallel([boxed(ok), boxed(bad)], sync_node(|v: Vec<String>| v.len()));
    let err = workflow_error(wf.run("x".to_owned()).await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert_eq!(err.to_string(), "node `bad` failed: the branch broke");
    Ok(())
}

fn counter_graph(bound: Option<u32>) -> GraphBuilder {
    let mut g = Workflow::builder("counter");
    let start = g.node("start", sync_node(|n: u32| n));
    let step = g.node("step", sync_node(|n: u32| n + 1));
    let done = g.node("done", sync_node(|n: u32| format!("reached {n}")));
    g.start(start);
    g.edge(start, step);
    g.route(step, |n: &u32| if *n < 30 { "again" } else { "done" }).to("again", step).to("done", done);
    if let Some(b) = bound {
        g.max_visits(step, b);
    }
    g
}

#[tokio::test]
async fn cycles_stop_at_their_visit_bound_and_runs_at_the_step_bound() -> anyhow::Result<()> {
    let wf: Workflow<u32, String> = counter_graph(Some(5)).build()?;
    assert_eq!(wf.run(27).await?.output, "reached 30");
    let err = workflow_error(wf.run(0).await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert!(matches!(&err, WorkflowError::VisitLimit { node, limit: 5 } if &**node == "step"), "{err}");

    let wf: Workflow<u32, String> = counter_graph(Some(1000)).build()?.max_steps(10);
    let err = workflow_error(wf.run(0).await.err().ok_or_else(|| anyhow::anyhow!("must fail"))?)?;
    assert!(matches!(err, WorkflowError::StepLimit { limit: 10, .. }), "{err}");
    Ok(())
}

#[test]
fn build_reports_every_problem_at_once() {
    // A cycle without a bound, an unreachable node, a wrong output type.
    let mut g = counter_graph(None);
    let _orphan = g.node("orphan", sync_node(|n: u32| n.to_string()));
    let err = g.build::<u32, u64>().err().map(|e| e.problems).unwrap_or_default();
    assert_eq!(
        err,
        [
            "node `orphan` cannot be reached from the start",
            "the cycle step → step has no visit bound; give one of its nodes `max_visits`",
            "the end node `done` gives `alloc::string::String`, but the workflow's output is `u64`",
            "the end node `orphan` gives `alloc::string::String`, but the workflow's output is `u64`",
        ]
    );

    let mut g = Workflow::builder("empty");
    let a = g.node("a", sync_node(|n: u32| n));
    let b = g.node("b", sync_node(|n: u32| n));
    g.edge(a, b);
    g.edge(a, b);
    let err = g.build::<u32, u32>().err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        err,
        "workflow `empty` is malformed: node `a` has two ways out; a node has one edge, one route or one fan-out; no node is marked as the start"
    );
}

#[tokio::test]
async fn builder_fan_out_joins_in_branch_order() -> anyhow::Result<()> {
    let mut g = Workflow::builder("fan");
    let split = g.node("split", sync_node(|s: String| s));
    let upper = g.node("upper", sync_node(|s: String| s.to_uppercase()));
    let len = g.node("len", sync_node(|s: String| s.len().to_string()));
    let join = g.node("join", sync_node(|parts: Vec<String>| parts.join("|")));
    g.start(split);
    g.fan_out(split, [upper, len], join);
    let wf: Workflow<String, String> = g.build()?;
    let result = wf.run("abc".to_owned()).await?;
    assert_eq!(result.output, "ABC|3");
    assert_eq!(result.visited[0], "split");
    assert_eq!(result.visited[3], "join");
    Ok(())
}

#[tokio::test]
async fn workflows_nest_and_run_as_tools() -> anyhow::Result<()> {
    let inner = Workflow::chain((append_a, append_b));
    let outer = Workflow::chain((inner.clone(), append_c));
    assert_eq!(outer.run("<".to_owned()).await?.output, "<abc");

    let model =
        ScriptedModel::new([ScriptedTurn::tool_call("decorate", json!({"input": "x"})), ScriptedTurn::text("done")]);
    let recorder = Recorder::new();
    let agent = Agent::new("Use tools.").model(model.clone()).tool(inner.as_tool("decorate", "Decorate a text.")?);
    let result = agent.run("go").on_event(recorder.listener()).await?;
    assert_eq!(result.output, "done");
    assert_eq!(model.requests()[1].last_text(), "xab");
    // The workflow's node events are part of the agent's stream.
    assert!(recorder.kinds().contains(&"node_started"));
    let def = model.requests()[0].tools[0].clone();
    assert_eq!(def.parameters()["required"], json!(["input"]));
    Ok(())
}

struct Hold {
    started: Notify,
    dropped: AtomicBool,
}

struct SetOnDrop(Arc<Hold>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn dropping_a_run_mid_graph_cancels_every_node() -> anyhow::Result<()> {
    let hold = Arc::new(Hold { started: Notify::new(), dropped: AtomicBool::new(false) });
    let h = Arc::clone(&hold);
    let wait = move |s: String| {
        let h = Arc::clone(&h);
        async move {
            let _guard = SetOnDrop(Arc::clone(&h));
            h.started.notify_one();
            std::future::pending::<()>().await;
            s
        }
    };
    let wf = Workflow::parallel([boxed(wait), boxed(append_a)], sync_node(|v: Vec<String>| v.concat()));
    let mut run = Box::pin(wf.run("x".to_owned()).into_future());
    tokio::select! {
        _ = &mut run => anyhow::bail!("cannot finish"),
        () = hold.started.notified() => {}
    }
    drop(run);
    assert!(hold.dropped.load(Ordering::SeqCst));
    Ok(())
}

#[test]
fn graphs_render_as_mermaid_and_dot() {
    let wf: Workflow<String, String> =
        Workflow::route(scripted_agent("c", "x"), [("billing", scripted_agent("b", "y"))]);
    let mermaid = wf.to_mermaid();
    assert!(mermaid.contains("n0{\"classify\"}"), "{mermaid}");
    assert!(mermaid.contains("n0 -->|billing| n1"), "{mermaid}");
    let dot = wf.to_dot();
    assert!(dot.contains("n0 -> n1 [label=\"billing\"];"), "{dot}");
    assert_eq!(wf.graph().nodes().len(), 2);
}
