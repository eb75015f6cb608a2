//! What a caller appends ([`AuditRecord`]) and what the log stores ([`AuditEntry`]).

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::id::{RunId, SessionId, UserId};

/// What an entry records. Written as its snake_case name (`run_started`, `tool_call`, ...);
/// [`Custom`](Self::Custom) as its own string.
///
/// The payload carries the details; the conventions below are what Loom writes.
///
/// ```
/// use loomflow::telemetry::audit::AuditAction;
///
/// assert_eq!(AuditAction::ToolCall.as_str(), "tool_call");
/// assert_eq!(AuditAction::from_name("tool_call"), AuditAction::ToolCall);
/// assert_eq!(AuditAction::from_name("export_started"), AuditAction::Custom("export_started".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A run began (payload: the input, the agent or workflow).
    RunStarted,
    /// A run ended with an answer (payload: the output, usage).
    RunFinished,
    /// A run stopped with an error (payload: the error).
    RunFailed,
    /// A model was called (payload: the model, the prompt, usage).
    ModelCall,
    /// A tool was called (payload: the tool, its `arguments`).
    ToolCall,
    /// A tool answered (payload: the tool, its `result`).
    ToolResult,
    /// A human was asked to approve something.
    ApprovalRequested,
    /// A human approved or refused (payload: the decision, who decided).
    ApprovalDecided,
    /// A permission check refused an action.
    PermissionDenied,
    /// A guardrail blocked an input, answer or tool result.
    GuardrailBlocked,
    /// A guardrail rewrote an input, answer or tool result.
    GuardrailRewrote,
    /// A budget is close to its limit.
    BudgetWarning,
    /// A budget limit was reached.
    BudgetExceeded,
    /// A rate limit delayed or refused a call.
    RateLimited,
    /// A workflow step: one action for its start and its end, told apart by the payload's
    /// `phase` field (`"started"` or `"finished"`, with `"node"` naming the step).
    WorkflowStep,
    /// The user's payloads were erased ([`AuditLog::forget`](super::AuditLog::forget));
    /// payload: `{"erased": n}`.
    Forgotten,
    /// Anything else, by name. A name that is one of the actions above reads back as that
    /// action; use [`from_name`](Self::from_name) to build one.
    Custom(String),
}

impl AuditAction {
    /// The action's name, as stored.
    pub fn as_str(&self) -> &str {
        match self {
            Self::RunStarted => "run_started",
            Self::RunFinished => "run_finished",
            Self::RunFailed => "run_failed",
            Self::ModelCall => "model_call",
            Self::ToolCall => "tool_call",
            Self::ToolResult => "tool_result",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalDecided => "approval_decided",
            Self::PermissionDenied => "permission_denied",
            Self::GuardrailBlocked => "guardrail_blocked",
            Self::GuardrailRewrote => "guardrail_rewrote",
            Self::BudgetWarning => "budget_warning",
            Self::BudgetExceeded => "budget_exceeded",
            Self::RateLimited => "rate_limited",
            Self::WorkflowStep => "workflow_step",
            Self::Forgotten => "forgotten",
            Self::Custom(name) => name,
        }
    }

    /// The action of a stored name: a known one, or [`Custom`](Self::Custom).
    pub fn from_name(name: &str) -> Self {
        match name {
            "run_started" => Self::RunStarted,
            "run_finished" => Self::RunFinished,
            "run_failed" => Self::RunFailed,
            "model_call" => Self::ModelCall,
            "tool_call" => Self::ToolCall,
            "tool_result" => Self::ToolResult,
            "approval_requested" => Self::ApprovalRequested,
            "approval_decided" => Self::ApprovalDecided,
            "permission_denied" => Self::PermissionDenied,
            "guardrail_blocked" => Self::GuardrailBlocked,
            "guardrail_rewrote" => Self::GuardrailRewrote,
            "budget_warning" => Self::BudgetWarning,
            "budget_exceeded" => Self::BudgetExceeded,
            "rate_limited" => Self::RateLimited,
            "workflow_step" => Self::WorkflowStep,
            "forgotten" => Self::Forgotten,
            other => Self::Custom(other.to_owned()),
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self::from_name(s))
    }
}

impl Serialize for AuditAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::from_name(&name))
    }
}

/// What a caller appends to the log: who, what, and the details.
///
/// ```
/// use loomflow::{RunId, SessionId, UserId};
/// use loomflow::telemetry::audit::{AuditAction, AuditRecord};
/// use serde_json::json;
///
/// let record = AuditRecord::new(UserId::new("alice")?, AuditAction::ToolCall, json!({"tool": "refund"}))
///     .session(SessionId::new("s1")?)
///     .run(RunId::generate())
///     .actor("agent");
/// assert_eq!(record.actor, "agent");
/// # Ok::<(), loomflow::IdError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Whose chain the entry joins.
    pub user: UserId,
    /// The conversation, if any.
    pub session: Option<SessionId>,
    /// The run, if any.
    pub run_id: Option<RunId>,
    /// Who acted: by convention `user`, `agent`, `tool`, `system` (the default) or `operator`.
    /// Kept when the user is forgotten: put no personal data here.
    pub actor: String,
    /// What happened.
    pub action: AuditAction,
    /// The details, redacted by the log's policy before they are stored.
    pub payload: Value,
}

impl AuditRecord {
    /// A record of `action` for `user`, by the `system` actor, with no session or run.
    pub fn new(user: UserId, action: AuditAction, payload: Value) -> Self {
        Self { user, session: None, run_id: None, actor: "system".to_owned(), action, payload }
    }

    /// In the conversation `session`.
    #[must_use]
    pub fn session(mut self, session: SessionId) -> Self {
        self.session = Some(session);
        self
    }

    /// In the run `run`.
    #[must_use]
    pub fn run(mut self, run: RunId) -> Self {
        self.run_id = Some(run);
        self
    }

    /// By `actor` (`user`, `agent`, `tool`, `system`, `operator` ...).
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }
}

/// An entry of the log: a record as stored, numbered, hashed and signed.
///
/// Serialised (a line of a [`FileAuditLog`](super::FileAuditLog)) with the fields in this
/// order. `sig` is the HMAC-SHA256, under the log's key, of the
/// [canonical JSON](super::canonical_json) of every other field except `payload`: it covers
/// `payload_hash` instead, so a payload can be erased and the entry still verifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Its place in the user's chain, from 1, without gaps.
    pub seq: u64,
    /// When it was appended: RFC 3339, UTC, to the microsecond (`2025-06-01T12:30:05.123456Z`).
    pub at: String,
    /// Whose chain it is in.
    pub user: UserId,
    /// The conversation, if any.
    pub session: Option<SessionId>,
    /// The run, if any.
    pub run_id: Option<RunId>,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub action: AuditAction,
    /// The details as the policy left them; `None` once erased (a payload of JSON `null`
    /// reads back as `None` too).
    pub payload: Option<Value>,
    /// The hex SHA-256 of the payload's canonical JSON, kept when the payload is erased.
    pub payload_hash: String,
    /// The signature of the user's previous entry; empty for the first.
    pub prev: String,
    /// The hex HMAC-SHA256 of the entry (see above).
    pub sig: String,
}

/// Now, as RFC 3339 in UTC with microseconds.
pub(crate) fn now_rfc3339() -> String {
    rfc3339_micros(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// A time since the Unix epoch as RFC 3339 in UTC with microseconds. The calendar date comes
/// from memory's [`Timestamp`](crate::memory::Timestamp) (whole seconds), the microseconds are
/// added here.
fn rfc3339_micros(since_epoch: Duration) -> String {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX / 1_000);
    let whole = crate::memory::Timestamp::from_millis(seconds.saturating_mul(1_000)).to_string();
    let date_time = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{date_time}.{:06}Z", since_epoch.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Timestamp;

    #[test]
    fn actions_round_trip_by_name_and_unknown_names_are_custom() -> Result<(), serde_json::Error> {
        let all = [
            AuditAction::RunStarted,
            AuditAction::RunFinished,
            AuditAction::RunFailed,
            AuditAction::ModelCall,
            AuditAction::ToolCall,
            AuditAction::ToolResult,
            AuditAction::ApprovalRequested,
            AuditAction::ApprovalDecided,
            AuditAction::PermissionDenied,
            AuditAction::GuardrailBlocked,
            AuditAction::GuardrailRewrote,
            AuditAction::BudgetWarning,
            AuditAction::BudgetExceeded,
            AuditAction::RateLimited,
            AuditAction::WorkflowStep,
            AuditAction::Forgotten,
        ];
        for action in all {
            let json = serde_json::to_string(&action)?;
            assert_eq!(serde_json::from_str::<AuditAction>(&json)?, action);
            assert!(!matches!(AuditAction::from_name(action.as_str()), AuditAction::Custom(_)));
        }
        assert_eq!(serde_json::to_string(&AuditAction::GuardrailRewrote)?, r#""guardrail_rewrote""#);
        let custom = AuditAction::Custom("export_started".into());
        assert_eq!(serde_json::to_string(&custom)?, r#""export_started""#);
        assert_eq!(serde_json::from_str::<AuditAction>(r#""export_started""#)?, custom);
        Ok(())
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let seconds = Timestamp::from_ymd_hms(2025, 6, 1, 12, 30, 5).as_millis() as u64 / 1_000;
        let at = Duration::from_secs(seconds) + Duration::from_micros(123_456);
        assert_eq!(rfc3339_micros(at), "2025-06-01T12:30:05.123456Z");
        assert_eq!(rfc3339_micros(Duration::ZERO), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(Duration::from_micros(951_782_399_000_001)), "2000-02-28T23:59:59.000001Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), 27, "{now}");
        assert!(Timestamp::parse(&now).is_ok(), "{now}");
    }
}
