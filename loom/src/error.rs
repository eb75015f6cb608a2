//! Errors.
//!
//! Loom keeps three situations apart:
//! - **misconfigured** ([`ConfigError`]): the agent or workflow was built wrong; fix the code or
//!   the configuration. Raised before any model call.
//! - **a tool failed** ([`ToolError`](crate::ToolError)): not an error of the run. The failure
//!   becomes a tool result the model reads and can correct.
//! - **the run failed** ([`RunError`], [`ModelError`], [`StoreError`]): the run could not finish.
//!
//! Each area has its own `#[non_exhaustive]` enum; [`enum@Error`] folds them together.

use std::fmt;
use std::time::Duration;

use crate::id::{IdError, RunId};
use crate::model::{Message, ModelError, Usage};

/// Any error of a Loom run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The agent or workflow is misconfigured.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model call failed (after retries, where a retry policy applies).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The run could not finish.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A session, journal or memory store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A workflow could not finish, or could not be built.
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
    /// The model's answer did not match the output type within the retries.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A document could not be loaded ([`rag::load`](crate::rag::load)).
    #[cfg(feature = "rag")]
    #[error(transparent)]
    Load(#[from] crate::rag::load::LoadError),
    /// An MCP server could not be reached, or answered out of protocol.
    #[cfg(feature = "mcp")]
    #[error(transparent)]
    Mcp(#[from] crate::mcp::McpError),
    /// The audit log could not be read or written.
    #[cfg(feature = "audit")]
    #[error(transparent)]
    Audit(#[from] crate::telemetry::audit::AuditError),
    /// A config file could not be read, parsed or built ([`config`](crate::config)): its
    /// `Display` names the file, line, column and key, and what to write instead.
    #[cfg(feature = "config")]
    #[error(transparent)]
    ConfigFile(Box<crate::config::ConfigFileError>),
}

impl From<IdError> for Error {
    fn from(e: IdError) -> Self {
        Self::Config(ConfigError::InvalidId(e))
    }
}

impl Error {
    /// Whether running again may succeed without changing anything (a transient model or
    /// store error).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Model(e) => e.is_transient(),
            Self::Store(e) => e.kind() == StoreErrorKind::Unavailable,
            _ => false,
        }
    }
}

/// A `Result` with Loom's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The agent, workflow or model is misconfigured. Raised before any model call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No model was given.
    #[error("the agent{} has no model; set one with `.model(\"echo\")` (offline) or a provider model string", fmt_name(.agent))]
    NoModel {
        /// The agent's name, when it has one.
        agent: Option<String>,
    },
    /// The model string is not one Loom knows.
    #[error("unknown model `{spec}`{}; known forms: {known}", suggest(.suggestion))]
    UnknownModel {
        /// The string given.
        spec: String,
        /// A known model string close to it, if there is one (`gpt-4.1-mini` for `gtp-4.1-mini`).
        suggestion: Option<String>,
        /// The forms Loom knows.
        known: String,
    },
    /// Two tools share a name.
    #[error("two tools are named `{name}`; tool names must be unique (rename one with `#[tool(name = \"...\")]`)")]
    DuplicateTool {
        /// The name.
        name: String,
    },
    /// A tool name breaks the providers' rules.
    #[error("invalid tool name `{name}`: {reason}")]
    InvalidToolName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The provider's API key is not set.
    #[error(
        "no API key for {provider}: set the {variable} environment variable (or pass the key in the model's config)"
    )]
    MissingApiKey {
        /// The provider.
        provider: &'static str,
        /// The variable that holds the key.
        variable: &'static str,
    },
    /// The model string names a provider whose cargo feature is off.
    #[error("model `{spec}` needs the `{feature}` feature of loomflow")]
    ProviderNotEnabled {
        /// The string given.
        spec: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// An id was refused.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// A setting has a value outside its range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file loaded from disk at build time (a local embedding model's weights, tokenizer or
    /// config) is missing, unreadable, or not what it should be.
    #[error("`{}`: {problem}", .path.display())]
    ModelFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it, and what to do.
        problem: String,
    },
}

fn suggest(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

fn fmt_name(name: &Option<String>) -> String {
    name.as_ref().map(|n| format!(" `{n}`")).unwrap_or_default()
}

/// A run that could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The agent used all its turns without a final answer.
    #[error(
        "the run reached max_turns ({max_turns}) without a final answer; raise `.max_turns(..)` or \
         check whether the model is stuck calling tools"
    )]
    MaxTurnsExceeded {
        /// The limit.
        max_turns: u32,
        /// Everything the run did before it stopped.
        partial: Box<PartialRun>,
    },
    /// The run took longer than its timeout.
    #[error("the run timed out after {timeout:?}")]
    Timeout {
        /// The limit.
        timeout: Duration,
    },
    /// Another worker holds the run (it is running, or was resumed elsewhere).
    #[error("run {run_id} is held by another worker; it is running or being resumed elsewhere")]
    AlreadyRunning {
        /// The run.
        run_id: RunId,
    },
    /// The run's lease passed to another worker while it ran; this worker stopped writing.
    #[error("run {run_id} lost its lease to another worker; this worker stopped so the run is not executed twice")]
    LeaseLost {
        /// The run.
        run_id: RunId,
    },
    /// A tool call was interrupted and the tool is not idempotent: repeating it could do its
    /// effect twice, so the resume waits for a decision (`AgentInput::decide`).
    #[error(
        "run {run_id} was interrupted during a call of `{tool}` ({call_id}), which is not idempotent; \
         resume with a decision for this call (rerun, a result, or a failure)"
    )]
    NeedsDecision {
        /// The run.
        run_id: RunId,
        /// The interrupted call.
        call_id: String,
        /// The tool.
        tool: String,
    },
    /// A tool call waits for an approval ([`Approval::Defer`](crate::governance::Approval::Defer),
    /// or [`Governance::durable_approvals`](crate::governance::Governance::durable_approvals)):
    /// the run is paused, journaled and resumable. Resume it with a decision
    /// ([`AgentInput::approve`](crate::agent::AgentInput::approve)), in this process or another;
    /// [`Agent::pending_approvals`](crate::Agent::pending_approvals) lists what waits.
    #[error(
        "run {} waits for approval of a call of `{}` ({}): {}; \
         resume it with a decision (`AgentInput::resume(run).approve(call_id, ..)`)",
        request.run_id, request.tool, request.call_id, request.reason
    )]
    ApprovalPending {
        /// The call waiting: its run, session, tool, arguments, and why it asks.
        request: Box<crate::governance::ApprovalRequest>,
    },
    /// A resumed workflow run would run a node again that had started before (it was
    /// interrupted, or its output could not be restored) and is not idempotent: resume with a
    /// decision for it (`WorkflowInput::decide`).
    #[error(
        "run {run_id} would run node `{node}` again, which had started before and is not idempotent; \
         resume with a decision for it (rerun or fail), or mark the node idempotent"
    )]
    NodeNeedsDecision {
        /// The run.
        run_id: RunId,
        /// The node.
        node: String,
    },
    /// The run's journal has damaged records.
    #[error("the journal of run {run_id} has damaged records: {}", records.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    JournalCorrupt {
        /// The run.
        run_id: RunId,
        /// Each damaged record and why.
        records: Vec<crate::session::CorruptRecord>,
    },
    /// The journal does not match the run being resumed (another conversation, or the code
    /// changed).
    #[error("the journal of run {run_id} does not match the resumed run: {detail}")]
    JournalMismatch {
        /// The run.
        run_id: RunId,
        /// What differs.
        detail: String,
    },
    /// An architecture could not go on: every debater failed, no route fits and there is no
    /// fallback, a plan that cannot run.
    #[error("the {architecture} architecture stopped: {reason}")]
    Architecture {
        /// The architecture (`debate`, `router` ...).
        architecture: String,
        /// What went wrong, and what to do about it.
        reason: String,
    },
    /// There is nothing to resume.
    #[error("run {run_id} cannot be resumed: {reason}")]
    NotResumable {
        /// The run.
        run_id: RunId,
        /// Why.
        reason: String,
    },
    /// The run went past a budget limit (or a call would have): it stopped, its partial run
    /// kept.
    #[error(
        "the run stopped at its {scope} budget: {limit} would reach {used} of at most {max}; raise the limit \
         (`Budget::per_{scope}`) or wait for the budget's next period"
    )]
    BudgetExceeded {
        /// Whose limit: the run's, the user's, or everyone's.
        scope: crate::governance::Scope,
        /// Which limit.
        limit: crate::governance::Limit,
        /// The limit's maximum (seconds for the wall time).
        max: f64,
        /// What was (or, for a call not made, would have been) used.
        used: f64,
        /// Everything the run did before it stopped.
        partial: Box<PartialRun>,
    },
    /// A rate limit refused a model call (in reject mode, or after the longest throttle).
    #[error("the {bucket} rate limit refused a model call; retry after {retry_after:?}")]
    RateLimited {
        /// Which bucket: `user` or `model`.
        bucket: String,
        /// When a call would be let through.
        retry_after: Duration,
        /// Everything the run did before it stopped.
        partial: Box<PartialRun>,
    },
    /// A guardrail blocked the run's input, an answer or a tool result.
    #[error("the guardrail `{guard}` blocked the {stage}: {reason}")]
    Guardrail {
        /// The guardrail's name.
        guard: String,
        /// Where it looked.
        stage: crate::governance::Stage,
        /// Why.
        reason: String,
        /// Everything the run did before it stopped (nothing of what was blocked).
        partial: Box<PartialRun>,
    },
    /// Work Loom ran in the background (a memory consolidation) ended without an outcome: it
    /// panicked or its runtime shut down.
    #[error("the background {task} did not finish: {reason}")]
    Background {
        /// What it was.
        task: String,
        /// Why it has no outcome.
        reason: String,
    },
}

impl RunError {
    /// What the run did before it stopped, when the error keeps it.
    pub fn partial(&self) -> Option<&PartialRun> {
        match self {
            Self::MaxTurnsExceeded { partial, .. }
            | Self::BudgetExceeded { partial, .. }
            | Self::RateLimited { partial, .. }
            | Self::Guardrail { partial, .. } => Some(partial),
            _ => None,
        }
    }
}

impl Error {
    /// Puts `messages` (the conversation as the loop that stopped holds it) into the partial
    /// run of a governance stop that has none yet.
    pub(crate) fn with_conversation(mut self, messages: &mut Vec<Message>) -> Self {
        if let Self::Run(
            RunError::BudgetExceeded { partial, .. }
            | RunError::RateLimited { partial, .. }
            | RunError::Guardrail { partial, .. },
        ) = &mut self
            && partial.messages.is_empty()
        {
            partial.messages = std::mem::take(messages);
        }
        self
    }
}

/// What an unfinished run did: nothing is lost when a run fails.
#[derive(Clone)]
#[non_exhaustive]
pub struct PartialRun {
    /// The run's id.
    pub run_id: RunId,
    /// The conversation up to the failure.
    pub messages: Vec<Message>,
    /// Tokens used.
    pub usage: Usage,
    /// Model calls made.
    pub turns: u32,
    /// Tool calls made.
    pub tool_calls: u32,
}

impl fmt::Debug for PartialRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialRun")
            .field("run_id", &self.run_id)
            .field("messages", &self.messages.len())
            .field("usage", &self.usage)
            .field("turns", &self.turns)
            .field("tool_calls", &self.tool_calls)
            .finish()
    }
}

/// What went wrong in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached right now (server down, pool exhausted). Transient.
    Unavailable,
    /// Stored data is corrupt (a truncated or unreadable record).
    Corrupt,
    /// Another writer holds the record (a lease or lock conflict).
    Conflict,
    /// The stored schema is from a newer version of Loom.
    Incompatible,
    /// The record does not exist.
    NotFound,
    /// Anything else.
    Other,
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
#[error("{backend} store: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    backend: &'static str,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of `kind` raised by the `backend` store (`"memory"`, `"sqlite"`, ...).
    pub fn new(kind: StoreErrorKind, backend: &'static str, message: impl Into<String>) -> Self {
        Self { kind, backend, message: message.into(), source: None }
    }

    /// Sets the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The backend that raised it.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}
