//! Conversation compaction: a long session and a long tool loop stay within the budget the
//! model is sent, while the session keeps every message.

mod common;

use std::sync::Arc;

use common::Recorder;
use loomflow::agent::Compaction;
use loomflow::prelude::*;
use loomflow::session::{InMemoryStore, SessionStore as _};
use serde_json::json;

/// The size of a request as compaction estimates it: its text at four characters a token.
fn estimated(messages: &[Message]) -> usize {
    messages
        .iter()
        .map(|m| {
            let calls = match m {
                Message::Assistant { tool_calls, .. } => {
                    tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>()
                }
                _ => 0,
            };
            (m.text().len() + calls).div_ceil(4) + 4
        })
        .sum()
}

#[tokio::test]
async fn a_long_session_is_sent_within_its_budget_and_kept_whole() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let model = ScriptedModel::from_fn(|req| {
        ScriptedTurn::text(format!(
            "noted: {}",
            req.last_user_text().unwrap_or_default().chars().take(40).collect::<String>()
        ))
    });
    let recorder = Recorder::new();
    let agent = Agent::new("Keep notes.")
        .model(model.clone())
        .store(Arc::clone(&store))
        .compaction(Compaction::new(600))
        .on_event(recorder.listener());
    for i in 0..30 {
        let text = format!("note {i}: {}", "words ".repeat(60));
        agent.run(text).user("ana").session("s1").await?;
    }
    for request in model.requests() {
        assert!(estimated(&request.messages) <= 600, "a request of {} tokens", estimated(&request.messages));
        assert!(matches!(request.messages.last(), Some(Message::User { .. })), "the current question is sent");
    }
    let last = model.requests().pop().ok_or_else(|| anyhow::anyhow!("no request"))?;
    assert!(last.messages[0].text().contains("earlier messages of this conversation were left out"));
    assert!(last.messages.last().is_some_and(|m| m.text().starts_with("note 29:")));
    assert!(recorder.kinds().contains(&"compacted"));
    let kept = store.load(&UserId::new("ana")?, &SessionId::new("s1")?, None).await?;
    assert_eq!(kept.len(), 60, "the session keeps every message");
    Ok(())
}

/// Fetch a page.
#[tool]
fn fetch(page: u32) -> String {
    format!("page {page}: {}", "lorem ipsum ".repeat(2_000))
}

#[tokio::test]
async fn a_long_tool_loop_has_its_old_results_cut_and_still_answers() -> anyhow::Result<()> {
    let model = ScriptedModel::from_fn(|req| {
        let fetched = req.messages.iter().filter(|m| matches!(m, Message::Tool(_))).count() as u32;
        if fetched < 6 {
            ScriptedTurn::tool_call("fetch", json!({ "page": fetched + 1 }))
        } else {
            ScriptedTurn::text("read six pages")
        }
    });
    let agent =
        Agent::new("Read.").model(model.clone()).tool(FetchTool).compaction(Compaction::new(8_000).tool_results(1_000));
    let result = agent.run("read the report").await?;
    assert_eq!(result.output, "read six pages");
    assert_eq!(result.tool_calls, 6);
    for request in model.requests() {
        assert!(estimated(&request.messages) <= 8_000, "a request of {} tokens", estimated(&request.messages));
    }
    // The newest result reaches the model whole; older ones are cut with a note.
    let last = model.requests().pop().ok_or_else(|| anyhow::anyhow!("no request"))?;
    let results: Vec<String> =
        last.messages.iter().filter(|m| matches!(m, Message::Tool(_))).map(|m| m.text().into_owned()).collect();
    assert_eq!(results.len(), 6, "no exchange dropped: the run is one turn");
    assert!(results[..5].iter().all(|r| r.contains("characters left out to fit the context")), "{:?}", &results[..5]);
    // The run's own conversation is whole.
    let whole =
        result.messages.iter().filter(|m| matches!(m, Message::Tool(r) if r.content.text().len() > 20_000)).count();
    assert_eq!(whole, 6);
    Ok(())
}

#[tokio::test]
async fn a_budget_of_nothing_is_refused() {
    let err = Agent::new("x").model("echo").compaction(Compaction::new(0)).run("hi").await.err();
    assert!(matches!(err, Some(Error::Config(_))), "{err:?}");
}
