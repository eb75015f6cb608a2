//! Permissions and approvals: which tool calls run, which are refused, and which a person
//! (or a policy standing in for one) decides.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::context::RunContext;
use crate::id::UserId;
use crate::tool::ToolHints;

/// A tool call about to run, as permissions and approval handlers see it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ToolRequest<'a> {
    /// The run's context (user, session, run id).
    pub ctx: &'a RunContext,
    /// The call's id.
    pub call_id: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: &'a str,
    /// The tool's hints (`destructive`, `read_only`, `idempotent`); the defaults for a tool
    /// the agent does not have.
    pub hints: ToolHints,
}

/// What permissions say about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permission {
    /// It runs.
    Allow,
    /// It does not; the model reads `reason` as the call's error result.
    Deny {
        /// Why.
        reason: String,
    },
    /// The approval handler decides (no handler: denied).
    Ask {
        /// Why it needs approval.
        reason: String,
    },
}

/// Decides which tool calls run.
///
/// Fails closed: a policy that returns an error, panics or runs past the governance's check
/// timeout denies the call.
#[async_trait::async_trait]
pub trait Permissions: Send + Sync + 'static {
    /// The decision for one call.
    async fn check(&self, request: &ToolRequest<'_>) -> Result<Permission, String>;
}

/// How [`StandardPermissions`] treats calls no list names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Destructive tools ask; the rest run.
    #[default]
    Default,
    /// As `Default`, but the edit tools (`write`, `edit` unless set otherwise) run without
    /// asking.
    AcceptEdits,
    /// Everything not denied runs.
    Bypass,
}

/// The standard policy, checked in this order: a denied tool is denied; with an allow-list,
/// a tool not on it is denied; [`Mode::Bypass`] allows; [`Mode::AcceptEdits`] allows the edit
/// tools; a destructive tool asks; anything else runs.
///
/// ```
/// use loomflow::governance::{Mode, StandardPermissions};
///
/// let policy = StandardPermissions::new(Mode::AcceptEdits).deny(["shell"]).edit_tools(["write_file"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct StandardPermissions {
    mode: Mode,
    allowed: Option<HashSet<String>>,
    denied: HashSet<String>,
    edit_tools: Option<HashSet<String>>,
}

impl StandardPermissions {
    /// The policy of `mode`, with no lists.
    pub fn new(mode: Mode) -> Self {
        Self { mode, ..Self::default() }
    }

    /// Only these tools may run.
    #[must_use]
    pub fn allow<S: Into<String>>(mut self, tools: impl IntoIterator<Item = S>) -> Self {
        self.allowed.get_or_insert_with(HashSet::new).extend(tools.into_iter().map(Into::into));
        self
    }

    /// These tools never run.
    #[must_use]
    pub fn deny<S: Into<String>>(mut self, tools: impl IntoIterator<Item = S>) -> Self {
        self.denied.extend(tools.into_iter().map(Into::into));
        self
    }

    /// The tools [`Mode::AcceptEdits`] lets run without asking (`write` and `edit` by default).
    #[must_use]
    pub fn edit_tools<S: Into<String>>(mut self, tools: impl IntoIterator<Item = S>) -> Self {
        self.edit_tools = Some(tools.into_iter().map(Into::into).collect());
        self
    }

    /// The decision for a call of `tool` with `hints`.
    pub fn decide(&self, tool: &str, hints: ToolHints) -> Permission {
        if self.denied.contains(tool) {
            return Permission::Deny { reason: format!("`{tool}` is denied by the permissions") };
        }
        if self.allowed.as_ref().is_some_and(|allowed| !allowed.contains(tool)) {
            return Permission::Deny { reason: format!("`{tool}` is not among the allowed tools") };
        }
        let edit = match &self.edit_tools {
            Some(tools) => tools.contains(tool),
            None => matches!(tool, "write" | "edit"),
        };
        match self.mode {
            Mode::Bypass => Permission::Allow,
            Mode::AcceptEdits if edit => Permission::Allow,
            _ if hints.destructive => Permission::Ask { reason: format!("`{tool}` is destructive and needs approval") },
            _ => Permission::Allow,
        }
    }
}

#[async_trait::async_trait]
impl Permissions for StandardPermissions {
    async fn check(&self, request: &ToolRequest<'_>) -> Result<Permission, String> {
        Ok(self.decide(request.tool, request.hints))
    }
}

/// A policy per user, and one for everyone else.
#[derive(Clone)]
pub struct PerUserPermissions {
    users: std::collections::HashMap<UserId, Arc<dyn Permissions>>,
    default: Arc<dyn Permissions>,
}

impl fmt::Debug for PerUserPermissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerUserPermissions").field("users", &self.users.len()).finish_non_exhaustive()
    }
}

impl PerUserPermissions {
    /// `default` for every user not named.
    pub fn new(default: impl Permissions) -> Self {
        Self { users: Default::default(), default: Arc::new(default) }
    }

    /// `policy` for `user`.
    #[must_use]
    pub fn user(mut self, user: UserId, policy: impl Permissions) -> Self {
        self.users.insert(user, Arc::new(policy));
        self
    }
}

#[async_trait::async_trait]
impl Permissions for PerUserPermissions {
    async fn check(&self, request: &ToolRequest<'_>) -> Result<Permission, String> {
        self.users.get(request.ctx.user()).unwrap_or(&self.default).check(request).await
    }
}

/// An approval handler's decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Approval {
    /// Run the call.
    Allow,
    /// Do not; the model reads `reason` as the call's error result.
    Deny {
        /// Why.
        reason: String,
    },
    /// Run it with these arguments instead (JSON text).
    Edit {
        /// The corrected arguments.
        arguments: String,
    },
    /// Run it, and every later call of this tool for this user, without asking again.
    AllowAlways,
    /// Refuse it, and every later call of this tool for this user, without asking again.
    DenyAlways {
        /// Why.
        reason: String,
    },
    /// Decide later: a journaled run pauses here with [`RunError::ApprovalPending`] — its
    /// state is in the journal, the call is listed by
    /// [`Agent::pending_approvals`](crate::Agent::pending_approvals), and resuming the run with a
    /// decision ([`AgentInput::approve`](crate::agent::AgentInput::approve)), in this process or
    /// another, runs the call exactly there. A run without a journal cannot wait: the call is
    /// denied.
    ///
    /// [`RunError::ApprovalPending`]: crate::RunError::ApprovalPending
    Defer,
}

impl Approval {
    /// A denial saying `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::Deny { reason: reason.into() }
    }

    /// Running with `arguments` instead.
    pub fn edit(arguments: impl Into<String>) -> Self {
        Self::Edit { arguments: arguments.into() }
    }

    /// The decision as a word: `allow`, `deny`, `edit`, `allow_always`, `deny_always`, `defer`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny { .. } => "deny",
            Self::Edit { .. } => "edit",
            Self::AllowAlways => "allow_always",
            Self::DenyAlways { .. } => "deny_always",
            Self::Defer => "defer",
        }
    }
}

/// A call waiting for approval, as the handler sees it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ApprovalRequest {
    /// Who the run is for.
    pub user: UserId,
    /// The run's session, if any.
    pub session: Option<crate::id::SessionId>,
    /// The run.
    pub run_id: crate::id::RunId,
    /// The call's id.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// The arguments the model wrote (JSON text).
    pub arguments: String,
    /// Why it needs approval.
    pub reason: String,
}

/// Decides calls that need approval, in the process (a prompt in a terminal, a message to a
/// reviewer that is awaited, a policy).
///
/// Fails closed: an error, a panic or no answer within the approval timeout denies the call.
/// A closure `Fn(ApprovalRequest) -> impl Future<Output = Approval>` is a handler through
/// [`approve_with`].
#[async_trait::async_trait]
pub trait ApprovalHandler: Send + Sync + 'static {
    /// The decision for one call.
    async fn decide(&self, request: &ApprovalRequest) -> Result<Approval, String>;
}

/// An approval handler from an async closure.
///
/// ```
/// use loomflow::governance::{Approval, Governance, approve_with};
///
/// let governance = Governance::new().approvals(approve_with(|request| async move {
///     if request.tool == "delete_file" { Approval::deny("no deletions today") } else { Approval::Allow }
/// }));
/// ```
pub fn approve_with<F, Fut>(f: F) -> impl ApprovalHandler
where
    F: Fn(ApprovalRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Approval> + Send + 'static,
{
    struct FnHandler<F>(F);
    #[async_trait::async_trait]
    impl<F, Fut> ApprovalHandler for FnHandler<F>
    where
        F: Fn(ApprovalRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Approval> + Send + 'static,
    {
        async fn decide(&self, request: &ApprovalRequest) -> Result<Approval, String> {
            Ok((self.0)(request.clone()).await)
        }
    }
    FnHandler(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(destructive: bool) -> ToolHints {
        ToolHints { destructive, ..ToolHints::default() }
    }

    #[test]
    fn the_standard_policy_checks_lists_then_mode_then_hints() {
        let p = StandardPermissions::new(Mode::Default).deny(["shell"]);
        assert!(matches!(p.decide("shell", hints(false)), Permission::Deny { .. }));
        assert!(matches!(p.decide("rm", hints(true)), Permission::Ask { .. }));
        assert_eq!(p.decide("read", hints(false)), Permission::Allow);
        let allow = StandardPermissions::new(Mode::Bypass).allow(["read"]);
        assert!(matches!(allow.decide("rm", hints(true)), Permission::Deny { .. }), "the allow-list wins");
        assert_eq!(allow.decide("read", hints(true)), Permission::Allow);
        let edits = StandardPermissions::new(Mode::AcceptEdits);
        assert_eq!(edits.decide("write", hints(true)), Permission::Allow);
        assert!(matches!(edits.decide("delete", hints(true)), Permission::Ask { .. }));
    }
}
