//! The audit trail of governed runs: their events, as audit records, appended to the
//! governance's audit log in the order they happened.
//!
//! The run's event listener turns each event that matters into an [`AuditRecord`] and queues
//! it (no I/O in the listener); the run appends what is queued after each model call, after
//! each tool call and when it ends — so a run returns only once its trail is written, and a
//! log that cannot be written stops the run ([`Error::Audit`](crate::Error::Audit)) instead
//! of letting it go on unaudited.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::event::{EventKind, EventListener, RunEvent};
use crate::id::{SessionId, UserId};
use crate::telemetry::audit::{AuditAction, AuditError, AuditLog, AuditRecord};

/// The trail of one governed run and the runs nested in it.
pub(crate) struct Trail {
    log: Arc<dyn AuditLog>,
    user: UserId,
    session: Option<SessionId>,
    queue: Mutex<Vec<AuditRecord>>,
    /// Held while appending, so that what was queued first is appended first.
    writing: tokio::sync::Mutex<()>,
}

impl Trail {
    pub(crate) fn new(log: Arc<dyn AuditLog>, user: UserId, session: Option<SessionId>) -> Self {
        Self { log, user, session, queue: Mutex::new(Vec::new()), writing: tokio::sync::Mutex::new(()) }
    }

    /// Appends everything queued, in order. A record that cannot be appended stays queued
    /// (with those after it) for the next flush, and the error is returned.
    pub(crate) async fn flush(&self) -> Result<(), AuditError> {
        let _writing = self.writing.lock().await;
        loop {
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
            if batch.is_empty() {
                return Ok(());
            }
            let mut records = batch.into_iter();
            while let Some(record) = records.next() {
                if let Err(e) = self.log.append(record.clone()).await {
                    let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    let later = std::mem::take(&mut *queue);
                    queue.push(record);
                    queue.extend(records);
                    queue.extend(later);
                    return Err(e);
                }
            }
        }
    }

    fn push(&self, event: &RunEvent) {
        let Some((action, payload)) = record_of(&event.kind) else { return };
        let mut record = AuditRecord::new(self.user.clone(), action, payload).run(event.run_id).actor("loom");
        if let Some(session) = &self.session {
            record = record.session(session.clone());
        }
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }
}

/// The listener that queues a run's events on its trail.
pub(crate) struct Listener(pub(crate) Arc<Trail>);

impl EventListener for Listener {
    fn on_event(&self, event: RunEvent) {
        self.0.push(&event);
    }
}

/// The audit action of an event and its payload (the event's fields), for the events an audit
/// trail keeps: runs started, finished and failed, model calls, tool calls and results,
/// permission refusals, approvals, guardrails, budgets, rate limits and workflow steps.
fn record_of(kind: &EventKind) -> Option<(AuditAction, Value)> {
    let action = match kind {
        EventKind::RunStarted { .. } => AuditAction::RunStarted,
        EventKind::RunFinished { .. } | EventKind::WorkflowFinished { .. } => AuditAction::RunFinished,
        EventKind::Error { .. } => AuditAction::RunFailed,
        EventKind::ModelResponse { .. } => AuditAction::ModelCall,
        EventKind::ToolCallStarted { .. } => AuditAction::ToolCall,
        EventKind::ToolCallFinished { .. } => AuditAction::ToolResult,
        EventKind::PermissionDecision { decision, .. } if decision == "deny" => AuditAction::PermissionDenied,
        EventKind::ApprovalRequested { .. } => AuditAction::ApprovalRequested,
        EventKind::ApprovalDecided { .. } => AuditAction::ApprovalDecided,
        EventKind::Guardrail { action, .. } if action == "block" => AuditAction::GuardrailBlocked,
        EventKind::Guardrail { .. } => AuditAction::GuardrailRewrote,
        EventKind::BudgetWarning { .. } => AuditAction::BudgetWarning,
        EventKind::BudgetExceeded { .. } => AuditAction::BudgetExceeded,
        EventKind::RateLimited { .. } => AuditAction::RateLimited,
        EventKind::NodeStarted { .. } | EventKind::NodeFinished { .. } | EventKind::NodeFailed { .. } => {
            AuditAction::WorkflowStep
        }
        _ => return None,
    };
    let mut payload = serde_json::to_value(kind).ok()?;
    if let Value::Object(fields) = &mut payload {
        // The event's type names the step's phase; the action says the rest.
        let kind = fields.remove("type");
        if action == AuditAction::WorkflowStep {
            let phase = match kind.as_ref().and_then(Value::as_str) {
                Some("node_started") => "started",
                Some("node_finished") => "finished",
                _ => "failed",
            };
            fields.insert("phase".to_owned(), Value::from(phase));
            // What a node made is output: the log's policy cuts or hashes it.
            if let Some(summary) = fields.remove("summary") {
                fields.insert("output".to_owned(), summary);
            }
        }
    }
    Some((action, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_steps_say_their_phase_and_deltas_are_not_kept() {
        let started = EventKind::NodeStarted { workflow: "report".into(), node: "draft".into() };
        let (action, payload) = record_of(&started).expect("a workflow step");
        assert_eq!(action, AuditAction::WorkflowStep);
        assert_eq!(payload["phase"], "started");
        assert_eq!(payload["node"], "draft");
        assert!(payload.get("type").is_none());
        assert!(record_of(&EventKind::TextDelta { turn: 0, text: "hi".into() }).is_none());
    }
}
