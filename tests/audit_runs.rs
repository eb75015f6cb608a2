//! Governed runs keep their audit trail: what an agent, its tools, its approvals and guardrails,
//! and a workflow's steps did, in order, in the chain of the run's user — and a log that
//! cannot be written stops the run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loomflow::governance::{Governance, Mode, StandardPermissions};
use loomflow::prelude::*;
use loomflow::telemetry::audit::{
    AuditAction, AuditEntry, AuditError, AuditKey, AuditLog, AuditRecord, InMemoryAuditLog, VerifyReport,
};
use loomflow::workflow::Workflow;
use serde_json::json;

fn log() -> anyhow::Result<Arc<InMemoryAuditLog>> {
    let key = AuditKey::from_hex("4c6f6f6d2061756469742074657374206b6579202d2033322062797465732121")?;
    Ok(Arc::new(InMemoryAuditLog::new(key)))
}

/// Add two integers.
#[tool]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Delete a file.
#[tool(destructive)]
fn delete_file(path: String) -> String {
    format!("deleted {path}")
}

fn actions(entries: &[AuditEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.action.as_str()).collect()
}

#[tokio::test]
async fn an_agents_run_is_audited_in_order_in_its_users_chain() -> anyhow::Result<()> {
    let log = log()?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
        ScriptedTurn::tool_call("delete_file", json!({"path": "a.txt"})),
        ScriptedTurn::text("done"),
    ]);
    let agent = Agent::new("Work.").model(model).tool(AddTool).tool(DeleteFileTool).governance(
        Governance::new().permissions(StandardPermissions::new(Mode::Default).deny(["delete_file"])).audit(log.clone()),
    );
    let result = agent.run("go").user("ana").session("s1").await?;
    assert_eq!(result.output, "done");

    let entries = log.entries(&UserId::new("ana")?).await?;
    assert_eq!(
        actions(&entries),
        [
            "run_started",
            "model_call",
            "tool_call",
            "tool_result",
            "model_call",
            "permission_denied",
            "model_call",
            "run_finished"
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.run_id == Some(result.run_id) && e.session.as_ref().is_some_and(|s| s.as_str() == "s1"))
    );
    let call = &entries[2];
    assert_eq!(call.payload.as_ref().map(|p| p["name"].clone()), Some(json!("add")));
    assert!(log.verify(None).await?.is_intact());
    assert!(log.entries(&UserId::new("bo")?).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_workflows_steps_and_its_agents_join_one_chain() -> anyhow::Result<()> {
    let log = log()?;
    let drafter = Agent::new("Draft.").name("drafter").model(ScriptedModel::new([ScriptedTurn::text("a draft")]));
    let editor = Agent::new("Edit.").name("editor").model(ScriptedModel::new([ScriptedTurn::text("an edit")]));
    let wf = Workflow::chain((drafter, editor)).governance(Governance::new().audit(log.clone()));
    let result = wf.run("write".to_owned()).user("ana").await?;
    assert_eq!(result.output, "an edit");

    let entries = log.entries(&UserId::new("ana")?).await?;
    let steps: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.action == AuditAction::WorkflowStep)
        .filter_map(|e| e.payload.as_ref())
        .map(|p| (p["node"].as_str().unwrap_or("").to_owned(), p["phase"].as_str().unwrap_or("").to_owned()))
        .collect();
    let names: Vec<(&str, &str)> = steps.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();
    assert_eq!(names, [("drafter", "started"), ("drafter", "finished"), ("editor", "started"), ("editor", "finished")]);
    assert_eq!(actions(&entries).iter().filter(|a| **a == "model_call").count(), 2, "both agents' calls");
    assert_eq!(entries.last().map(|e| e.action.as_str()), Some("run_finished"));
    assert!(log.verify(Some(&UserId::new("ana")?)).await?.is_intact());
    Ok(())
}

#[tokio::test]
async fn long_arguments_and_results_are_cut_by_the_logs_policy() -> anyhow::Result<()> {
    let log = log()?;
    let long = "x".repeat(5_000);
    let model =
        ScriptedModel::new([ScriptedTurn::tool_call("delete_file", json!({ "path": long })), ScriptedTurn::text("ok")]);
    let agent = Agent::new("Work.")
        .model(model)
        .tool(DeleteFileTool)
        .governance(Governance::new().permissions(StandardPermissions::new(Mode::Bypass)).audit(log.clone()));
    agent.run("go").user("ana").await?;
    for entry in log.entries(&UserId::new("ana")?).await? {
        let text = entry.payload.map(|p| p.to_string()).unwrap_or_default();
        assert!(text.len() < 1_500, "{} kept {} bytes", entry.action.as_str(), text.len());
    }
    Ok(())
}

/// A log whose store is down after `ok` appends.
struct Failing {
    inner: Arc<InMemoryAuditLog>,
    ok: usize,
    appends: AtomicUsize,
}

#[loomflow::async_trait]
impl AuditLog for Failing {
    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, AuditError> {
        if self.appends.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(AuditError::Store(loomflow::StoreError::new(
                loomflow::StoreErrorKind::Unavailable,
                "test",
                "the audit database is down",
            )));
        }
        self.inner.append(record).await
    }

    async fn entries(&self, user: &UserId) -> Result<Vec<AuditEntry>, AuditError> {
        self.inner.entries(user).await
    }

    async fn users(&self) -> Result<Vec<UserId>, AuditError> {
        self.inner.users().await
    }

    async fn verify(&self, user: Option<&UserId>) -> Result<VerifyReport, AuditError> {
        self.inner.verify(user).await
    }

    async fn forget(&self, user: &UserId) -> Result<u64, AuditError> {
        self.inner.forget(user).await
    }
}

#[tokio::test]
async fn a_run_whose_trail_cannot_be_written_stops() -> anyhow::Result<()> {
    let failing = Arc::new(Failing { inner: log()?, ok: 2, appends: AtomicUsize::new(0) });
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
        ScriptedTurn::tool_call("add", json!({"a": 4, "b": 5})),
        ScriptedTurn::text("done"),
    ]);
    let agent = Agent::new("Work.").model(model.clone()).tool(AddTool).governance(Governance::new().audit(failing));
    let outcome = agent.run("go").user("ana").await;
    assert!(matches!(outcome, Err(Error::Audit(_))), "{outcome:?}");
    assert_eq!(model.requests().len(), 1, "no model call after the trail failed");
    Ok(())
}
