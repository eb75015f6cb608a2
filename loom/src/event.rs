//! The one event stream that agents and workflows emit through.
//!
//! Every run reports what it does as [`RunEvent`]s: started and finished, each model request
//! and response (with usage), text as it streams, each tool call, errors. Agents, and the
//! workflows that contain them, emit through the same [`RunContext`](crate::RunContext), so a
//! subscriber sees one ordered stream for the whole run.
//!
//! A run with no listener pays one branch per event: events are built lazily, only when
//! someone listens.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::id::{RunId, SessionId, UserId};
use crate::model::{FinishReason, Usage};

/// One thing that happened in a run.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RunEvent {
    /// The run that emitted it (a nested agent run has its own id).
    pub run_id: RunId,
    /// The run that one is nested in, if any (a worker of a supervisor, an agent in a
    /// workflow): the events of a whole tree of runs can be told apart and put together.
    pub parent: Option<RunId>,
    /// When it happened.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A run began.
    RunStarted {
        /// The agent's or workflow's name, if it has one.
        name: Option<Arc<str>>,
        /// Who the run is for.
        user: UserId,
        /// The conversation it continues, if any.
        session: Option<SessionId>,
        /// The enclosing run, for an agent inside a workflow or a tool.
        parent: Option<RunId>,
    },
    /// A request is about to go to the model.
    ModelRequest {
        /// The turn (model call) number, from 1.
        turn: u32,
        /// The model's name.
        model: String,
        /// How many messages the request carries.
        messages: usize,
        /// How many tools it offers.
        tools: usize,
        /// Who is asked: `agent` for the agent's own turns, or an architecture's role
        /// (`planner`, `critic`, `judge` ...).
        role: Arc<str>,
    },
    /// More text of the reply, as it streams (streaming runs only).
    TextDelta {
        /// The turn.
        turn: u32,
        /// The new text.
        text: String,
    },
    /// The model answered.
    ModelResponse {
        /// The turn.
        turn: u32,
        /// Tokens used by this call.
        usage: Usage,
        /// Why the reply ended.
        finish_reason: FinishReason,
        /// How many tools the reply asks to call.
        tool_calls: usize,
        /// How long the call took.
        duration: Duration,
    },
    /// A tool call is starting.
    ToolCallStarted {
        /// The call's id.
        call_id: String,
        /// The tool.
        name: String,
        /// The arguments as the model wrote them.
        arguments: String,
    },
    /// A tool call finished.
    ToolCallFinished {
        /// The call's id.
        call_id: String,
        /// The tool.
        name: String,
        /// Whether the result is an error the model will read.
        is_error: bool,
        /// The result text the model will read.
        output: String,
        /// How long the call took.
        duration: Duration,
    },
    /// More of a typed output has arrived (streaming runs with a typed output): the fields
    /// completed so far, as JSON. Deserialize it into a type whose fields are all `Option`s
    /// to show a value filling in.
    PartialOutput {
        /// The turn.
        turn: u32,
        /// The completed part of the answer.
        value: serde_json::Value,
    },
    /// A model call failed with a transient error and is tried again after `delay`.
    ModelRetry {
        /// The turn.
        turn: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// How long the run waits.
        delay: Duration,
        /// What went wrong.
        error: String,
    },
    /// A model failed for good (after its retries) and the run switches to a fallback model.
    ModelFallback {
        /// The turn.
        turn: u32,
        /// The model that failed.
        from: String,
        /// The model used instead.
        to: String,
        /// What went wrong.
        error: String,
    },
    /// A step of a resumed run was taken from its journal instead of being run again.
    StepReplayed {
        /// What the step was: `model turn 2`, `tool charge (call_1)`.
        step: String,
    },
    /// The model's answer did not parse or validate as the output type; it is asked again.
    OutputRejected {
        /// Which answer this was, from 1.
        attempt: u32,
        /// What was wrong, as told to the model.
        error: String,
    },
    /// The run finished with an answer.
    RunFinished {
        /// Model calls made.
        turns: u32,
        /// Tool calls made.
        tool_calls: u32,
        /// Tokens used, summed over the run.
        usage: Usage,
        /// How long the run took.
        duration: Duration,
    },
    /// The run failed.
    Error {
        /// What went wrong.
        message: String,
        /// Whether running again may succeed.
        transient: bool,
    },
    /// A workflow run finished.
    WorkflowFinished {
        /// The workflow.
        workflow: Arc<str>,
        /// How many nodes it entered.
        steps: u32,
        /// How long it took.
        duration: Duration,
    },
    /// A workflow node started.
    NodeStarted {
        /// The workflow.
        workflow: Arc<str>,
        /// The node.
        node: Arc<str>,
    },
    /// A workflow node finished.
    NodeFinished {
        /// The workflow.
        workflow: Arc<str>,
        /// The node.
        node: Arc<str>,
        /// How long it ran.
        duration: Duration,
        /// A short description of its output.
        summary: String,
    },
    /// A workflow node failed; the run fails with it.
    NodeFailed {
        /// The workflow.
        workflow: Arc<str>,
        /// The node.
        node: Arc<str>,
        /// What went wrong.
        error: String,
    },
    /// The conversation sent to the model was compacted to fit its budget
    /// ([`Compaction`](crate::agent::Compaction)).
    Compacted {
        /// The call's number in the run.
        turn: u32,
        /// Messages of earlier exchanges left out.
        dropped: usize,
        /// Tool results cut.
        truncated: usize,
        /// The conversation's estimated tokens before.
        tokens_before: usize,
        /// And after.
        tokens_after: usize,
    },
    /// An event of an agent's architecture (`router.classified`, `control.rejected` ...).
    Architecture {
        /// What happened, as `architecture.event`.
        name: String,
        /// Its data.
        payload: serde_json::Value,
    },
    /// An event of the agent's memory (`memory.recalled`, `memory.remembered`, `memory.failed`).
    Memory {
        /// What happened, as `memory.event`.
        name: String,
        /// Its data.
        payload: serde_json::Value,
    },
    /// An event of an MCP server the run uses (`mcp.progress` of a call, `mcp.log` messages
    /// the server sent during one), or of a run served over MCP.
    Mcp {
        /// What happened, as `mcp.event`.
        name: String,
        /// Its data: the server, the tool, and the notification's fields.
        payload: serde_json::Value,
    },
    /// The model wrote its plan ([`PlanTool`](crate::tools::plan::PlanTool)): the whole plan as
    /// it now stands.
    #[cfg(feature = "tools")]
    PlanUpdated {
        /// The plan.
        plan: crate::tools::plan::Plan,
    },
    /// A budget limit reached its warning share (once per run and limit).
    BudgetWarning {
        /// Whose limit.
        scope: crate::governance::Scope,
        /// Which limit.
        limit: crate::governance::Limit,
        /// What is used.
        used: f64,
        /// The limit.
        max: f64,
    },
    /// A budget limit was (or a call would have been) passed: the run stops.
    BudgetExceeded {
        /// Whose limit.
        scope: crate::governance::Scope,
        /// Which limit.
        limit: crate::governance::Limit,
        /// What is (or would have been) used.
        used: f64,
        /// The limit.
        max: f64,
    },
    /// A rate limit held a model call back (`bucket` is `throttled` for a call that waited
    /// and went) or refused it (`user` or `model`).
    RateLimited {
        /// Which bucket.
        bucket: String,
        /// How long the call waited, or would have had to.
        wait: Duration,
    },
    /// The permissions decided a tool call: `allow`, `deny` or `ask`.
    PermissionDecision {
        /// The call's id.
        call_id: String,
        /// The tool.
        tool: String,
        /// The decision.
        decision: String,
        /// Why, for a denial or a question.
        reason: Option<String>,
    },
    /// A tool call waits for the approval handler.
    ApprovalRequested {
        /// The call's id.
        call_id: String,
        /// The tool.
        tool: String,
        /// Why it needs approval.
        reason: String,
    },
    /// A tool call was approved or refused (`allow`, `deny`, `edit`, `allow_always`,
    /// `deny_always`).
    ApprovalDecided {
        /// The call's id.
        call_id: String,
        /// The tool.
        tool: String,
        /// The decision.
        decision: String,
        /// The decision was remembered from an earlier `*_always` one.
        remembered: bool,
    },
    /// A guardrail rewrote (`rewrite`) or blocked (`block`) a text.
    Guardrail {
        /// The guardrail's name.
        guard: String,
        /// Where it looked.
        stage: crate::governance::Stage,
        /// What it did.
        action: String,
        /// What it changed, or why it blocked (never the text itself).
        note: String,
    },
    /// An event of an application, a tool or an extension.
    Custom {
        /// Its name.
        name: String,
        /// Its data.
        payload: serde_json::Value,
    },
}

/// Receives the events of runs.
///
/// Listeners are called synchronously, on the run's task, in event order: keep them quick
/// (push to a channel, bump a counter). Closures `Fn(RunEvent)` are listeners.
pub trait EventListener: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: RunEvent);
}

impl<F: Fn(RunEvent) + Send + Sync + 'static> EventListener for F {
    fn on_event(&self, event: RunEvent) {
        self(event);
    }
}

/// Where a run's events go: nowhere (the default, free), or to one or more listeners.
#[derive(Clone, Default)]
pub(crate) struct Emitter(Option<Arc<dyn EventListener>>);

struct Fanout(Vec<Arc<dyn EventListener>>);

impl EventListener for Fanout {
    fn on_event(&self, event: RunEvent) {
        if let Some((last, rest)) = self.0.split_last() {
            for l in rest {
                l.on_event(event.clone());
            }
            last.on_event(event);
        }
    }
}

impl Emitter {
    pub(crate) fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Adds a listener; events then go to every listener, oldest first.
    pub(crate) fn add(&mut self, listener: Arc<dyn EventListener>) {
        self.0 = Some(match self.0.take() {
            None => listener,
            Some(existing) => Arc::new(Fanout(vec![existing, listener])),
        });
    }

    /// Adds every listener of `other`.
    pub(crate) fn extend(&mut self, other: &Emitter) {
        if let Some(l) = &other.0 {
            self.add(Arc::clone(l));
        }
    }

    #[inline]
    pub(crate) fn emit(&self, run_id: RunId, parent: Option<RunId>, kind: impl FnOnce() -> EventKind) {
        if let Some(listener) = &self.0 {
            listener.on_event(RunEvent { run_id, parent, at: SystemTime::now(), kind: kind() });
        }
    }
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_active() { "Emitter(active)" } else { "Emitter(none)" })
    }
}
