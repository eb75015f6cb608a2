//! Governance on the spine: budgets, rate limits, permissions, approvals and guardrails,
//! applied where every model and tool call of every agent, architecture and workflow already
//! goes through.
//!
//! Build a [`Governance`] and give it to an agent ([`Agent::governance`](crate::Agent::governance)):
//! every run of the agent, and every run nested in it (sub-agents, an architecture's roles,
//! agents called as tools), is governed by it. An agent without one pays nothing for it: one
//! branch per model and tool call.
//!
//! What happens where:
//! - **a run's input** passes the input guardrails (a rewrite replaces it before anything is
//!   journaled; a block ends the run before any model call);
//! - **before each model call**: the run's wall time, the rate limits (throttle or reject),
//!   and the budget with the call's estimated cost;
//! - **after each model call**: the output guardrails on an answer, then the budget with what
//!   the call used (a warning event at the soft threshold, a stop past a limit);
//! - **each tool call**: the budget's tool-call limits, the permissions (allow, deny or ask),
//!   the approval handler for calls that ask, the tool, then the tool-result guardrails — all
//!   before the result is journaled or read by the model.
//!
//! Approvals are in process (an async handler: allow, deny, edit the arguments, remember) or
//! durable ([`Governance::durable_approvals`], or a handler answering [`Approval::Defer`]): the
//! journaled run pauses with [`RunError::ApprovalPending`](crate::RunError::ApprovalPending),
//! [`Agent::pending_approvals`](crate::Agent::pending_approvals) lists what waits, and resuming
//! with [`AgentInput::approve`](crate::agent::AgentInput::approve) — in any process on the same
//! store — runs the call there, once.
//!
//! Everything fails closed: a permission policy, approval handler or guardrail that errors,
//! panics or does not answer in time denies (or blocks).
//!
//! ```
//! use loomflow::prelude::*;
//! use loomflow::governance::{Budget, Governance, Limits, Mode, PiiGuard, StandardPermissions};
//!
//! let governance = Governance::new()
//!     .budget(Budget::new().per_run(Limits::new().total_tokens(50_000).tool_calls(20)))
//!     .permissions(StandardPermissions::new(Mode::Default).deny(["shell"]))
//!     .guardrail(PiiGuard::new());
//! let agent = Agent::new("Help.").model("echo").governance(governance);
//! ```

#[cfg(feature = "audit")]
pub(crate) mod audit;
mod budget;
mod guard;
mod guards;
pub(crate) mod hook;
mod permission;
pub(crate) mod rate;
mod secrets;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use budget::{Budget, InMemoryUsage, Limit, Limits, Scope, Spent, UsageStore};
pub use guard::{Checked, GuardError, Guardrail, Stage, Verdict};
pub use guards::{
    GuardConfigError, InjectionGuard, ModerationGuard, PiiCounts, PiiGuard, PiiKind, RegexGuard, redact_pii,
};
pub use permission::{
    Approval, ApprovalHandler, ApprovalRequest, Mode, PerUserPermissions, Permission, Permissions, StandardPermissions,
    ToolRequest, approve_with,
};
pub use rate::{RateBucket, RateLimit, RateMode, RateStore};
pub use secrets::{ChainSecrets, EnvSecrets, MapSecrets, Redactor, Secret, Secrets, SecretsError, resolve_references};

use crate::bounded::PerUser;

/// The governance of an agent's runs: what they may spend, how fast they may call models,
/// which tool calls run, who approves the rest, and what is checked on the way in and out.
///
/// See the [module](self) for where each part applies.
pub struct Governance {
    pub(crate) budget: Option<Budget>,
    pub(crate) rate: Option<RateLimit>,
    pub(crate) permissions: Option<Arc<dyn Permissions>>,
    pub(crate) approvals: Option<Arc<dyn ApprovalHandler>>,
    pub(crate) approval_timeout: Duration,
    pub(crate) check_timeout: Duration,
    pub(crate) guardrails: Vec<Arc<dyn Guardrail>>,
    /// Decisions to remember, per user: tool → allowed (or the reason it is denied).
    pub(crate) remembered: Mutex<PerUser<std::collections::HashMap<String, Result<(), String>>>>,
    pub(crate) max_users: usize,
    pub(crate) idle_ttl: Duration,
    #[cfg(feature = "audit")]
    pub(crate) audit: Option<Arc<dyn crate::telemetry::audit::AuditLog>>,
}

impl fmt::Debug for Governance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Governance")
            .field("budget", &self.budget)
            .field("rate", &self.rate)
            .field("permissions", &self.permissions.is_some())
            .field("approvals", &self.approvals.is_some())
            .field("approval_timeout", &self.approval_timeout)
            .field("check_timeout", &self.check_timeout)
            .field("guardrails", &self.guardrails.iter().map(|g| g.name().to_owned()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Governance {
    fn default() -> Self {
        Self::new()
    }
}

impl Governance {
    /// Nothing governed yet.
    pub fn new() -> Self {
        Self {
            budget: None,
            rate: None,
            permissions: None,
            approvals: None,
            approval_timeout: Duration::from_secs(300),
            check_timeout: Duration::from_secs(30),
            guardrails: Vec::new(),
            remembered: Mutex::new(PerUser::default()),
            max_users: 100_000,
            idle_ttl: Duration::from_secs(24 * 3600),
            #[cfg(feature = "audit")]
            audit: None,
        }
    }

    /// Keeps an audit trail of every governed run in `log`: runs started, finished and
    /// failed, model calls, tool calls and results, permission refusals, approvals, guardrail
    /// blocks and rewrites, budget warnings and stops, rate limits and workflow steps — one
    /// entry each, in the order they happened, in the chain of the run's user (the log's
    /// redaction policy applies to arguments, results and outputs).
    ///
    /// The trail is appended after each model call, after each tool call and when the run
    /// ends: a run returns once its trail is written, and a log that cannot be written stops
    /// the run with [`Error::Audit`](crate::Error::Audit) (fail closed).
    #[cfg(feature = "audit")]
    #[must_use]
    pub fn audit<L: crate::telemetry::audit::AuditLog>(mut self, log: Arc<L>) -> Self {
        self.audit = Some(log);
        self
    }

    /// What runs, users and everyone together may spend.
    #[must_use]
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// How fast model calls may go, per user and per model.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate = Some(limit);
        self
    }

    /// Which tool calls run. Without a policy, but with an approval handler, the default
    /// [`StandardPermissions`] applies (destructive tools ask); with neither, every call runs.
    #[must_use]
    pub fn permissions(mut self, policy: impl Permissions) -> Self {
        self.permissions = Some(Arc::new(policy));
        self
    }

    /// Who decides the calls that ask (see [`approve_with`] for a closure).
    #[must_use]
    pub fn approvals(mut self, handler: impl ApprovalHandler) -> Self {
        self.approvals = Some(Arc::new(handler));
        self
    }

    /// Durable approvals: a call that asks pauses the run (which must be journaled: the agent
    /// has a store) until a decision resumes it, here or in another process — see
    /// [`Approval::Defer`]. The same as a handler that always answers `Defer`.
    #[must_use]
    pub fn durable_approvals(self) -> Self {
        self.approvals(approve_with(|_| std::future::ready(Approval::Defer)))
    }

    /// How long an approval may take before the call is denied (five minutes by default).
    #[must_use]
    pub fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = timeout;
        self
    }

    /// How long a permission policy or a guardrail may take before it denies or blocks
    /// (thirty seconds by default).
    #[must_use]
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Adds a guardrail; guardrails run in the order added.
    #[must_use]
    pub fn guardrail(mut self, guardrail: impl Guardrail) -> Self {
        self.guardrails.push(Arc::new(guardrail));
        self
    }

    /// Keeps the values of `redactor`'s secrets out of every run: a guardrail (`secrets`), run
    /// before all others, replaces them with `[secret]` in the run's input, the model's
    /// answers and tool results — so they are never journaled, kept in the session, written
    /// in events, logs or the audit log, or shown to another guardrail or to the model.
    ///
    /// ```
    /// use loomflow::governance::{Governance, Redactor, Secret};
    ///
    /// let db_password = Secret::new("hunter2-prod-7731");
    /// let governance = Governance::new().redact_secrets(Redactor::new().with(&db_password));
    /// ```
    #[must_use]
    pub fn redact_secrets(mut self, redactor: Redactor) -> Self {
        self.guardrails.insert(0, Arc::new(redactor));
        self
    }

    /// Keeps remembered approvals of at most `max_users` users, each until idle for
    /// `idle_ttl` (100,000 users and a day by default).
    #[must_use]
    pub fn bounded(mut self, max_users: usize, idle_ttl: Duration) -> Self {
        self.max_users = max_users;
        self.idle_ttl = idle_ttl;
        self
    }

    /// The budget, to ask what a user has spent.
    pub fn budget_ref(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// Whether the configuration is usable: limits and rates positive, timeouts non-zero.
    pub fn check(&self) -> Result<(), crate::ConfigError> {
        if let Some(budget) = &self.budget {
            budget.check()?;
        }
        if let Some(rate) = &self.rate {
            rate.check()?;
        }
        for (setting, timeout) in [("approval_timeout", self.approval_timeout), ("check_timeout", self.check_timeout)] {
            if timeout.is_zero() {
                return Err(crate::ConfigError::InvalidSetting {
                    setting,
                    reason: "a zero timeout would deny everything; give a positive duration".to_owned(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn guards(&self, stage: Stage) -> impl Iterator<Item = &Arc<dyn Guardrail>> {
        self.guardrails.iter().filter(move |g| g.applies_to(stage))
    }

    pub(crate) fn has_guards(&self, stage: Stage) -> bool {
        self.guards(stage).next().is_some()
    }
}
