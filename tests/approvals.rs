//! Durable approvals: a destructive call pauses a journaled run, the pending call is listed,
//! and a decision made later — by another agent on the same store, as another process would —
//! resumes the run exactly there; the tool runs once, with the approved or edited arguments.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loomflow::agent::AgentInput;
use loomflow::governance::{Approval, Governance, approve_with};
use loomflow::prelude::*;
use loomflow::session::SqliteStore;
use serde_json::json;

#[derive(Default)]
struct Disk {
    deleted: std::sync::Mutex<Vec<String>>,
}

/// Delete a file.
#[tool(destructive)]
fn delete_file(disk: State<Disk>, path: String) -> String {
    disk.deleted.lock().map(|mut d| d.push(path.clone())).ok();
    format!("deleted {path}")
}

/// Two deletions, then an answer that quotes the last tool result.
fn script() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        let results = req.messages.iter().filter(|m| matches!(m, Message::Tool(_))).count();
        match results {
            0 => ScriptedTurn::tool_call("delete_file", json!({"path": "a.txt"})),
            1 => ScriptedTurn::tool_call("delete_file", json!({"path": "b.txt"})),
            _ => ScriptedTurn::text(format!(
                "Done: {}",
                req.messages.last().map(|m| m.text().into_owned()).unwrap_or_default()
            )),
        }
    })
}

/// An agent with durable approvals on the SQLite file `path`: opening it again is what a new
/// process does.
fn agent(path: &std::path::Path) -> anyhow::Result<(Agent, Arc<Disk>)> {
    let disk = Arc::new(Disk::default());
    let agent = Agent::new("Clean up.")
        .model(script())
        .tool(DeleteFileTool)
        .state_arc(Arc::clone(&disk))
        .store(Arc::new(SqliteStore::open(path)?))
        .governance(Governance::new().durable_approvals());
    Ok((agent, disk))
}

fn deleted(disk: &Disk) -> Vec<String> {
    disk.deleted.lock().map(|d| d.clone()).unwrap_or_default()
}

/// Runs until the pause, and returns the run and the call it waits on.
async fn paused(agent: &Agent) -> anyhow::Result<(RunId, String)> {
    match agent.run("clean up").user("ana").session("s1").await {
        Err(Error::Run(RunError::ApprovalPending { request })) => {
            assert_eq!(request.tool, "delete_file");
            assert!(request.arguments.contains("a.txt"), "{}", request.arguments);
            assert_eq!(request.user.as_str(), "ana");
            Ok((request.run_id, request.call_id))
        }
        other => anyhow::bail!("expected the run to wait for approval, got {other:?}"),
    }
}

#[tokio::test]
async fn a_paused_run_is_listed_and_an_edit_from_another_process_resumes_it_once() -> anyhow::Result<()> {
    let file = common::TempFile::new("approvals.db");
    let path = file.path();
    let (run_id, call_id) = {
        let (first, disk) = agent(path)?;
        let paused = paused(&first).await?;
        assert!(deleted(&disk).is_empty(), "nothing runs before the decision");
        paused
    };

    // Another process: the same store, a new agent.
    let (second, disk) = agent(path)?;
    let pending = second.pending_approvals(&UserId::new("ana")?).await?;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!((pending[0].run_id, pending[0].call_id.as_str()), (run_id, call_id.as_str()));
    assert_eq!(pending[0].session.as_ref().map(|s| s.as_str()), Some("s1"));
    assert!(second.pending_approvals(&UserId::new("bo")?).await?.is_empty(), "another user sees nothing");

    // The reviewer edits the arguments, and allows the rest for the run's user.
    let edited = Approval::edit(r#"{"path": "a.txt.bak"}"#);
    let paused_again =
        second.resume_with(AgentInput::resume(run_id).approve(&call_id, edited)).user("ana").session("s1").await;
    // The second deletion asks again: the run pauses at it.
    let Err(Error::Run(RunError::ApprovalPending { request })) = paused_again else {
        anyhow::bail!("expected the second call to wait, got {paused_again:?}");
    };
    let (second_call, arguments) = (request.call_id, request.arguments);
    assert!(arguments.contains("b.txt"), "{arguments}");
    assert_eq!(deleted(&disk), ["a.txt.bak"], "the first call ran once, with the edited arguments");

    let (third, disk) = agent(path)?;
    let result = third
        .resume_with(AgentInput::resume(run_id).approve(&second_call, Approval::Allow))
        .user("ana")
        .session("s1")
        .await?;
    assert_eq!(result.output, "Done: deleted b.txt");
    assert_eq!(deleted(&disk), ["b.txt"], "the approved call ran once; the first was replayed");
    assert!(third.pending_approvals(&UserId::new("ana")?).await?.is_empty(), "nothing waits any more");
    Ok(())
}

#[tokio::test]
async fn a_denied_call_does_not_run_and_remember_covers_later_calls() -> anyhow::Result<()> {
    let file = common::TempFile::new("approvals.db");
    let path = file.path();
    let (first, _) = agent(path)?;
    let (run_id, call_id) = paused(&first).await?;
    let result = first
        .resume_with(AgentInput::resume(run_id).approve(&call_id, Approval::deny("keep a.txt")))
        .user("ana")
        .session("s1")
        .await;
    // The model reads the denial; the second call pauses.
    let Err(Error::Run(RunError::ApprovalPending { request })) = result else {
        anyhow::bail!("expected the next call to wait, got {result:?}");
    };
    let next = request.call_id;
    let (second, disk) = agent(path)?;
    let result = second
        .resume_with(AgentInput::resume(run_id).approve(&next, Approval::AllowAlways))
        .user("ana")
        .session("s1")
        .await?;
    let results: Vec<(bool, String)> =
        common::tool_results(&result).iter().map(|r| (r.is_error, r.content.text().into_owned())).collect();
    assert!(results[0].0 && results[0].1.contains("keep a.txt"), "{results:?}");
    assert_eq!(results[1], (false, "deleted b.txt".to_owned()));
    assert_eq!(deleted(&disk), ["b.txt"]);

    // Remembered for the user in this process: a new run does not pause.
    let again = second.run("clean up again").user("ana").session("s2").await?;
    assert_eq!(again.output, "Done: deleted b.txt");
    assert_eq!(deleted(&disk), ["b.txt", "a.txt", "b.txt"]);
    Ok(())
}

#[tokio::test]
async fn a_resume_without_a_decision_waits_again_without_running_the_tool() -> anyhow::Result<()> {
    let file = common::TempFile::new("approvals.db");
    let path = file.path();
    let (first, disk) = agent(path)?;
    let (run_id, call_id) = paused(&first).await?;
    for _ in 0..2 {
        let again = first.resume_with(AgentInput::resume(run_id)).user("ana").session("s1").await;
        let Err(Error::Run(RunError::ApprovalPending { request })) = again else {
            anyhow::bail!("expected the run to wait again, got {again:?}");
        };
        assert_eq!(request.call_id, call_id);
    }
    assert!(deleted(&disk).is_empty());
    assert_eq!(first.pending_approvals(&UserId::new("ana")?).await?.len(), 1, "listed once");
    Ok(())
}

#[tokio::test]
async fn a_run_without_a_journal_cannot_wait_and_the_call_is_denied() -> anyhow::Result<()> {
    let disk = Arc::new(Disk::default());
    let agent = Agent::new("Clean up.")
        .model(script())
        .tool(DeleteFileTool)
        .state_arc(Arc::clone(&disk))
        .governance(Governance::new().durable_approvals());
    let result = agent.run("clean up").await?;
    let results = common::tool_results(&result);
    assert!(results.iter().all(|r| r.is_error && r.content.text().contains("no journal")), "{results:?}");
    assert!(deleted(&disk).is_empty());
    Ok(())
}

#[tokio::test]
async fn an_approver_that_defers_only_some_calls_pauses_only_those() -> anyhow::Result<()> {
    let file = common::TempFile::new("approvals.db");
    let disk = Arc::new(Disk::default());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let agent = Agent::new("Clean up.")
        .model(script())
        .tool(DeleteFileTool)
        .state_arc(Arc::clone(&disk))
        .store(Arc::new(SqliteStore::open(file.path())?))
        .governance(Governance::new().approvals(approve_with(move |r| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { if r.arguments.contains("b.txt") { Approval::Defer } else { Approval::Allow } }
        })));
    let outcome = agent.run("clean up").user("ana").session("s1").await;
    let Err(Error::Run(RunError::ApprovalPending { request })) = outcome else {
        anyhow::bail!("expected a pause at b.txt, got {outcome:?}");
    };
    let (run_id, call_id, arguments) = (request.run_id, request.call_id, request.arguments);
    assert!(arguments.contains("b.txt"));
    assert_eq!(deleted(&disk), ["a.txt"]);
    let done = agent
        .resume_with(AgentInput::resume(run_id).approve(&call_id, Approval::Allow))
        .user("ana")
        .session("s1")
        .await?;
    assert_eq!(done.output, "Done: deleted b.txt");
    assert_eq!(deleted(&disk), ["a.txt", "b.txt"]);
    assert_eq!(asked.load(Ordering::SeqCst), 2, "the handler is not asked again for the decided call");
    Ok(())
}
