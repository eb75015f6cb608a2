//! The agent loop through the public API, on the scripted model.

mod common;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Recorder, tool_results};
use loomflow::prelude::*;
use serde_json::json;
use tokio::sync::{Barrier, Notify};

/// Add two integers.
#[tool]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Divide a by b.
#[tool]
fn divide(a: f64, b: f64) -> Result<f64, String> {
    if b == 0.0 { Err("cannot divide by zero; pick a non-zero b".to_owned()) } else { Ok(a / b) }
}

/// Always panics.
#[tool]
fn explode() -> String {
    panic!("boom")
}

/// Waits until three calls are in flight at once.
#[tool]
async fn rendezvous(barrier: State<Barrier>, label: String) -> String {
    barrier.wait().await;
    format!("{label} passed")
}

#[tokio::test]
async fn one_tool_call_then_an_answer() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
        ScriptedTurn::text("The sum is 5"),
    ]);
    let agent = Agent::new("Do sums.").model(model.clone()).tool(AddTool);
    let result = agent.run("What is 2 + 3?").await?;

    assert_eq!(result.output, "The sum is 5");
    assert_eq!(result.text(), "The sum is 5");
    assert_eq!((result.turns, result.tool_calls), (2, 1));
    let results = tool_results(&result);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].content.text(), "5");
    assert!(!results[0].is_error);

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].tool_names(), ["add"]);
    assert_eq!(requests[0].messages[0], Message::system("Do sums."));
    assert_eq!(requests[1].last_text(), "5");
    // Usage is summed over both calls.
    assert!(result.usage.input_tokens > 0);
    assert_eq!(result.usage.output_tokens, 1 /* the tool call */ + 3 /* "The sum is 5" */ + 1);
    Ok(())
}

#[tokio::test]
async fn three_tool_calls_of_one_turn_run_concurrently() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("rendezvous", json!({"label": "a"}))
            .with_tool_call("rendezvous", json!({"label": "b"}))
            .with_tool_call("rendezvous", json!({"label": "c"})),
        ScriptedTurn::text("all met"),
    ]);
    let agent = Agent::new("Meet.").model(model).tool(RendezvousTool).state(Barrier::new(3));
    // The barrier only opens when all three calls wait at once: run one after another, the
    // first would wait forever. The timeout only turns that hang into a failure.
    let result = tokio::time::timeout(Duration::from_secs(10), agent.run("go").into_future()).await??;
    let outputs: Vec<String> = tool_results(&result).iter().map(|r| r.content.text().into_owned()).collect();
    // Results come back in call order.
    assert_eq!(outputs, ["a passed", "b passed", "c passed"]);
    assert_eq!(result.tool_calls, 3);
    Ok(())
}

#[tokio::test]
async fn malformed_arguments_are_reported_and_corrected_on_the_next_turn() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::raw_tool_call("add", r#"{"a": 2, "b": "#),
        ScriptedTurn::tool_call("add", json!({"a": 2})),
        ScriptedTurn::tool_call("add", json!({"a": 2, "b": "three"})),
        ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
        ScriptedTurn::text("5"),
    ]);
    let agent = Agent::new("Do sums.").model(model.clone()).tool(AddTool);
    let result = agent.run("2 + 3?").await?;
    assert_eq!(result.output, "5");

    let results = tool_results(&result);
    assert_eq!(results.len(), 4);
    assert!(results[0].is_error);
    assert!(results[0].content.text().contains("not valid JSON"), "{}", results[0].content.text());
    assert!(results[1].is_error);
    assert_eq!(results[1].content.text(), "missing required argument `b`");
    assert!(results[2].is_error);
    assert_eq!(results[2].content.text(), "argument `b`: invalid type: string \"three\", expected i64");
    assert!(!results[3].is_error);
    assert_eq!(results[3].content.text(), "5");
    // The model saw each error before its next attempt.
    let requests = model.requests();
    assert_eq!(requests[1].last_text(), results[0].content.text());
    Ok(())
}

#[tokio::test]
async fn unknown_tools_unknown_arguments_errors_and_panics_reach_the_model() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("ad", json!({"a": 1, "b": 2}))
            .with_tool_call("add", json!({"a": 1, "b": 2, "c": 3}))
            .with_tool_call("divide", json!({"a": 1.0, "b": 0.0}))
            .with_tool_call("explode", json!({})),
        ScriptedTurn::text("handled"),
    ]);
    let agent = Agent::new("Try things.").model(model.clone()).tool(AddTool).tool(DivideTool).tool(ExplodeTool);
    let result = agent.run("go").await?;
    assert_eq!(result.output, "handled");

    let texts: Vec<String> = tool_results(&result).iter().map(|r| r.content.text().into_owned()).collect();
    assert!(tool_results(&result).iter().all(|r| r.is_error), "{texts:?}");
    assert_eq!(texts[0], "unknown tool `ad` (did you mean `add`?); available tools: `add`, `divide`, `explode`");
    assert_eq!(texts[1], "unknown argument `c`; the tool takes: `a`, `b`");
    assert_eq!(texts[2], "cannot divide by zero; pick a non-zero b");
    assert_eq!(texts[3], "the tool panicked: boom");
    // All four error results went back to the model in one request.
    let last = &model.requests()[1];
    assert_eq!(last.messages.iter().filter(|m| matches!(m, Message::Tool(_))).count(), 4);
    Ok(())
}

#[tokio::test]
async fn max_turns_is_a_clear_error_that_keeps_the_conversation() -> anyhow::Result<()> {
    let model = ScriptedModel::from_fn(|_| ScriptedTurn::tool_call("add", json!({"a": 1, "b": 1})));
    let agent = Agent::new("Loop.").model(model.clone()).tool(AddTool).max_turns(3);
    let err = agent.run("go").await.err().ok_or_else(|| anyhow::anyhow!("expected an error"))?;
    assert!(err.to_string().contains("max_turns (3)"), "{err}");
    let Error::Run(RunError::MaxTurnsExceeded { max_turns, partial }) = err else {
        anyhow::bail!("wrong error: {err:?}");
    };
    assert_eq!(max_turns, 3);
    assert_eq!(partial.turns, 3);
    assert_eq!(partial.tool_calls, 3);
    // system, user, then three assistant + tool result pairs.
    assert_eq!(partial.messages.len(), 2 + 3 * 2);
    assert_eq!(model.calls(), 3);
    Ok(())
}

#[tokio::test]
async fn events_arrive_in_order() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::tool_call("add", json!({"a": 1, "b": 2})), ScriptedTurn::text("3")]);
    let recorder = Recorder::new();
    let agent = Agent::new("Sum.").model(model).tool(AddTool);
    let result = agent.run("1+2").on_event(recorder.listener()).await?;
    assert_eq!(
        recorder.kinds(),
        [
            "run_started",
            "model_request",
            "model_response",
            "tool_started",
            "tool_finished",
            "model_request",
            "model_response",
            "run_finished"
        ]
    );
    let events = recorder.events();
    assert!(events.iter().all(|e| e.run_id == result.run_id));
    match &events[4].kind {
        EventKind::ToolCallFinished { name, output, is_error, .. } => {
            assert_eq!((name.as_str(), output.as_str(), *is_error), ("add", "3", false));
        }
        other => anyhow::bail!("unexpected {other:?}"),
    }
    match &events[7].kind {
        EventKind::RunFinished { turns, tool_calls, usage, .. } => {
            assert_eq!((*turns, *tool_calls), (2, 1));
            assert_eq!(*usage, result.usage);
        }
        other => anyhow::bail!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_run_emits_an_error_event() -> anyhow::Result<()> {
    let model = ScriptedModel::new([]);
    let recorder = Recorder::new();
    let agent = Agent::new("x").model(model).on_event(recorder.listener());
    let err = agent.run("hi").await.err();
    assert!(err.is_some_and(|e| e.to_string().contains("script is exhausted")));
    assert_eq!(recorder.kinds(), ["run_started", "model_request", "error"]);
    Ok(())
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Hang {
    started: Arc<Notify>,
    dropped: Arc<AtomicBool>,
}

/// Never finishes.
#[tool]
async fn hang(state: State<Hang>) -> String {
    let _guard = SetOnDrop(Arc::clone(&state.dropped));
    state.started.notify_one();
    std::future::pending::<()>().await;
    unreachable!()
}

#[tokio::test]
async fn dropping_the_run_cancels_it_and_leaves_nothing_running() -> anyhow::Result<()> {
    let started = Arc::new(Notify::new());
    let dropped = Arc::new(AtomicBool::new(false));
    let model = ScriptedModel::new([ScriptedTurn::tool_call("hang", json!({}))]);
    let agent = Agent::new("Wait.")
        .model(model)
        .tool(HangTool)
        .state(Hang { started: Arc::clone(&started), dropped: Arc::clone(&dropped) });
    let mut run = Box::pin(agent.run("go").into_future());
    tokio::select! {
        _ = &mut run => anyhow::bail!("the run cannot finish"),
        () = started.notified() => {}
    }
    assert!(!dropped.load(Ordering::SeqCst));
    drop(run);
    // No task was spawned for the run: dropping its future dropped the tool call too.
    assert!(dropped.load(Ordering::SeqCst));
    Ok(())
}

#[tokio::test]
async fn misconfiguration_fails_before_any_model_call() {
    let no_model = Agent::new("x");
    assert!(matches!(no_model.run("hi").await, Err(Error::Config(ConfigError::NoModel { .. }))));
    let unknown = Agent::new("x").model("gtp-4o");
    let err = unknown.run("hi").await.err().map(|e| e.to_string()).unwrap_or_default();
    // The forms listed after `echo` are those of the providers compiled in.
    assert!(err.starts_with("unknown model `gtp-4o` (did you mean `gpt-4o`?); known forms: echo"), "{err}");

    let model = ScriptedModel::new([ScriptedTurn::text("never")]);
    let duplicate = Agent::new("x").model(model.clone()).tool(AddTool).tool(AddTool);
    assert!(matches!(
        duplicate.check(),
        Err(ConfigError::DuplicateTool { ref name }) if name == "add"
    ));
    assert!(duplicate.run("hi").await.is_err());
    assert_eq!(model.calls(), 0);

    let bad_user = Agent::new("x").model("echo");
    assert!(matches!(bad_user.run("hi").user("").await, Err(Error::Config(ConfigError::InvalidId(_)))));
}

#[tokio::test]
async fn a_blocking_tool_runs_off_the_async_threads() -> anyhow::Result<()> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    /// Count, slowly.
    #[tool(blocking)]
    fn slow_count(ctx: &RunContext, step: u32) -> String {
        std::thread::sleep(Duration::from_millis(5));
        let n = CALLS.fetch_add(step as usize, Ordering::SeqCst) + step as usize;
        format!("{n} for {}", ctx.user())
    }

    let model =
        ScriptedModel::new([ScriptedTurn::tool_call("slow_count", json!({"step": 2})), ScriptedTurn::text("counted")]);
    let agent = Agent::new("Count.").model(model).tool(SlowCountTool);
    let result = agent.run("go").user("bob").await?;
    assert_eq!(tool_results(&result)[0].content.text(), "2 for bob");
    Ok(())
}

#[tokio::test]
async fn echo_model_replies_offline_and_counts_words() -> anyhow::Result<()> {
    let agent = Agent::new("Be brief.").model("echo");
    let result = agent.run("hello big world").await?;
    assert_eq!(result.output, "Echo: hello big world");
    // "Be brief." (2) + "hello big world" (3)
    assert_eq!(result.usage.input_tokens, 5);
    assert_eq!(result.usage.output_tokens, 4);
    assert_eq!(result.turns, 1);
    Ok(())
}

/// A store of counts whose methods the tools below call: tools built from a struct's methods.
#[derive(Default)]
struct Counter {
    counts: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl Counter {
    fn add(&self, key: &str, n: u32) -> u32 {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key.to_owned()).or_default();
        *count += n;
        *count
    }

    fn get(&self, key: &str) -> u32 {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).copied().unwrap_or(0)
    }
}

/// Add to a count; returns the new count.
#[tool]
fn count_up(counter: State<Counter>, key: String, n: u32) -> u32 {
    counter.add(&key, n)
}

/// The current count of a key.
#[tool(read_only)]
fn count_of(counter: State<Counter>, key: String) -> u32 {
    counter.get(&key)
}

#[tokio::test]
async fn tools_built_from_a_structs_methods_share_the_agents_own_instance() -> anyhow::Result<()> {
    let script = || {
        ScriptedModel::new([
            ScriptedTurn::tool_call("count_up", json!({"key": "apples", "n": 3})),
            ScriptedTurn::tool_call("count_up", json!({"key": "apples", "n": 2})),
            ScriptedTurn::tool_call("count_of", json!({"key": "apples"})),
            ScriptedTurn::text("done"),
        ])
    };
    let first = Arc::new(Counter::default());
    first.add("apples", 10);
    let a = Agent::new("Count.").model(script()).tool(CountUpTool).tool(CountOfTool).state_arc(Arc::clone(&first));
    let b = Agent::new("Count.").model(script()).tool(CountUpTool).tool(CountOfTool).state(Counter::default());
    let ra = a.run("count apples").await?;
    let rb = b.run("count apples").await?;
    let outputs = |r: &RunResult| tool_results(r).iter().map(|t| t.content.text().into_owned()).collect::<Vec<_>>();
    assert_eq!(outputs(&ra), ["13", "15", "15"]);
    assert_eq!(outputs(&rb), ["3", "5", "5"], "each agent has its own instance");
    assert_eq!(first.get("apples"), 15, "the methods wrote to the instance the program holds");
    assert!(CountUpTool.definition().parameters()["properties"].get("counter").is_none());
    Ok(())
}
