//! Streaming runs: events as they happen, text deltas included.

mod common;

use futures::StreamExt as _;
use loomflow::prelude::*;
use serde_json::json;

/// Shout the text.
#[tool]
fn shout(text: String) -> String {
    text.to_uppercase()
}

#[tokio::test]
async fn a_stream_carries_text_deltas_tool_calls_and_the_result() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("shout", json!({"text": "hi"})),
        ScriptedTurn::text("they said HI"),
    ]);
    let agent = Agent::new("Shout.").model(model).tool(ShoutTool);
    let mut stream = agent.run("go").stream();
    let mut kinds = Vec::new();
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let EventKind::TextDelta { text: t, .. } = &event.kind {
            text.push_str(t);
        }
        kinds.push(common::kind_name(&event.kind));
    }
    assert_eq!(text, "they said HI");
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    assert_eq!(kinds.iter().filter(|k| **k == "text_delta").count(), 3);
    let tool_started = kinds.iter().position(|k| *k == "tool_started");
    let first_delta = kinds.iter().position(|k| *k == "text_delta");
    assert!(tool_started < first_delta);
    let result = stream.into_result()?;
    assert_eq!(result.output, "they said HI");
    Ok(())
}

#[tokio::test]
async fn finish_drains_the_stream_and_returns_the_error_of_a_failed_run() {
    let agent = Agent::new("x").model(ScriptedModel::new([]));
    let result = agent.run("hi").stream().finish().await;
    assert!(matches!(result, Err(Error::Model(_))));
}

#[tokio::test(start_paused = true)]
async fn a_stream_read_before_the_end_has_no_result_yet() -> anyhow::Result<()> {
    let slow = EchoModel::new().with_chunk_delay(std::time::Duration::from_millis(50));
    let agent = Agent::new("x").model(slow);
    let mut stream = agent.run("one two three").stream();
    let first = stream.next().await;
    assert!(first.is_some());
    assert!(stream.result().is_none());
    assert!(stream.into_result().is_err());
    Ok(())
}
