//! The one place governance meets the spine: the hooks the run calls before and after each
//! model call, around each tool call, and on a run's input.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::time::Instant;

use super::budget::{self, Breach, Limit, Scope, Spent};
use super::{
    Approval, ApprovalRequest, Checked, Governance, Permission, Stage, StandardPermissions, ToolRequest, Verdict,
};
use crate::context::RunContext;
use crate::error::{Error, PartialRun, RunError};
use crate::event::EventKind;
use crate::model::{Content, Message, ModelRequest, ModelResponse, Part, ToolCall, ToolResult, Usage};
use crate::tool::ToolSet;

/// A governed run, shared with the runs nested in it: the governance, when the run began,
/// and what it has spent.
pub(crate) struct Governed {
    pub(crate) gov: Arc<Governance>,
    started: Instant,
    state: Mutex<RunState>,
    /// The run's audit trail, when the governance keeps an audit log.
    #[cfg(feature = "audit")]
    pub(crate) trail: Option<Arc<super::audit::Trail>>,
}

#[derive(Default)]
struct RunState {
    spent: Spent,
    /// The limits a warning was emitted for.
    warned: HashSet<(Scope, Limit)>,
}

/// Why governance stops a run: made into the run's error with what it did so far.
#[derive(Debug)]
pub(crate) enum Stop {
    Budget(Breach),
    Rate {
        bucket: &'static str,
        retry_after: Duration,
    },
    Guard {
        guard: String,
        stage: Stage,
        reason: String,
    },
    Store(crate::error::StoreError),
    /// A journaled run waits for an approval.
    Pending(Box<ApprovalRequest>),
    /// The audit log could not be written.
    #[cfg(feature = "audit")]
    Audit(crate::telemetry::audit::AuditError),
}

/// What a tool call's approval can do in this run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asking<'d> {
    /// The run has no journal: an approver that defers denies.
    InProcess,
    /// A journaled run: an approver that defers pauses it.
    Journaled,
    /// A resumed run brought the decision for this call.
    Decided(&'d Approval),
}

impl Stop {
    /// Whether a guardrail blocked.
    pub(crate) fn is_guard(&self) -> bool {
        matches!(self, Self::Guard { .. })
    }

    /// The run's error, with `partial`.
    pub(crate) fn into_error(self, partial: PartialRun) -> Error {
        match self {
            Self::Budget(b) => RunError::BudgetExceeded {
                scope: b.scope,
                limit: b.limit,
                max: b.max,
                used: b.used,
                partial: Box::new(partial),
            }
            .into(),
            Self::Rate { bucket, retry_after } => {
                RunError::RateLimited { bucket: bucket.to_owned(), retry_after, partial: Box::new(partial) }.into()
            }
            Self::Guard { guard, stage, reason } => {
                RunError::Guardrail { guard, stage, reason, partial: Box::new(partial) }.into()
            }
            Self::Store(e) => e.into(),
            #[cfg(feature = "audit")]
            Self::Audit(e) => e.into(),
            Self::Pending(request) => RunError::ApprovalPending { request }.into(),
        }
    }
}

/// What a run did so far, as far as `ctx` knows (the conversation is added where it is held).
pub(crate) fn partial_of(ctx: &RunContext, usage: Usage, turns: u32, tool_calls: u32) -> PartialRun {
    PartialRun { run_id: ctx.run_id(), messages: Vec::new(), usage, turns, tool_calls }
}

impl Governed {
    /// The governed run of `user` in `session` (whose audit trail, if any, names them).
    #[cfg_attr(not(feature = "audit"), allow(unused_variables))]
    pub(crate) fn new(gov: Arc<Governance>, user: &crate::id::UserId, session: Option<&crate::id::SessionId>) -> Self {
        #[cfg(feature = "audit")]
        let trail = gov
            .audit
            .as_ref()
            .map(|log| Arc::new(super::audit::Trail::new(Arc::clone(log), user.clone(), session.cloned())));
        Self {
            gov,
            started: Instant::now(),
            state: Mutex::new(RunState::default()),
            #[cfg(feature = "audit")]
            trail,
        }
    }

    /// Appends the run's audit records queued last, when it has ended.
    pub(crate) async fn end_audit(&self) -> Result<(), Error> {
        #[cfg(feature = "audit")]
        if let Some(trail) = &self.trail {
            trail.flush().await?;
        }
        Ok(())
    }

    /// Appends the run's queued audit records (nothing without an audit log).
    pub(crate) async fn flush_audit(&self) -> Result<(), Stop> {
        #[cfg(feature = "audit")]
        if let Some(trail) = &self.trail {
            trail.flush().await.map_err(Stop::Audit)?;
        }
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wall_time(&self) -> Result<(), Stop> {
        let Some(limit) = self.gov.budget.as_ref().and_then(|b| b.wall_time) else { return Ok(()) };
        let used = self.started.elapsed();
        if used > limit {
            return Err(Stop::Budget(Breach {
                scope: Scope::Run,
                limit: Limit::WallTime,
                max: limit.as_secs_f64(),
                used: used.as_secs_f64(),
            }));
        }
        Ok(())
    }

    /// Checks `estimate` against every limit, before a call that would spend it.
    async fn check_budget(&self, ctx: &RunContext, estimate: &Spent) -> Result<(), Stop> {
        let Some(budget) = &self.gov.budget else { return Ok(()) };
        self.wall_time()?;
        let run = budget::with_estimate(&self.state().spent, estimate);
        let mut over = budget::breach(Scope::Run, &budget.per_run, &run);
        if over.is_none() && budget.has_shared_limits() {
            let period = budget.current_period();
            if !budget.per_user.each_is_empty() {
                let user = budget.store.spent(Some(ctx.user()), period).await.map_err(Stop::Store)?;
                over = budget::breach(Scope::User, &budget.per_user, &budget::with_estimate(&user, estimate));
            }
            if over.is_none() && !budget.global.each_is_empty() {
                let global = budget.store.spent(None, period).await.map_err(Stop::Store)?;
                over = budget::breach(Scope::Global, &budget.global, &budget::with_estimate(&global, estimate));
            }
        }
        match over {
            Some(b) => {
                ctx.emit(|| exceeded(&b));
                Err(Stop::Budget(b))
            }
            None => Ok(()),
        }
    }

    /// Counts `spent` in the run, the user's and the global totals; warns at the soft
    /// threshold, and stops past a limit.
    async fn spend(&self, ctx: &RunContext, spent: &Spent) -> Result<(), Stop> {
        let Some(budget) = &self.gov.budget else { return Ok(()) };
        let run = {
            let mut state = self.state();
            state.spent.add(spent);
            state.spent
        };
        let mut totals = vec![(Scope::Run, &budget.per_run, run)];
        if budget.has_shared_limits() {
            let (user, global) =
                budget.store.add(ctx.user(), budget.current_period(), spent).await.map_err(Stop::Store)?;
            totals.push((Scope::User, &budget.per_user, user));
            totals.push((Scope::Global, &budget.global, global));
        }
        for (scope, limits, total) in &totals {
            if let Some(b) = budget::breach(*scope, limits, total) {
                ctx.emit(|| exceeded(&b));
                return Err(Stop::Budget(b));
            }
        }
        for (scope, limits, total) in &totals {
            for b in budget::near(*scope, limits, total, budget.warn_at) {
                if self.state().warned.insert((b.scope, b.limit)) {
                    ctx.emit(|| EventKind::BudgetWarning { scope: b.scope, limit: b.limit, used: b.used, max: b.max });
                }
            }
        }
        Ok(())
    }

    /// Before a model call: wall time, rate limits, and the budget with the call's estimate.
    pub(crate) async fn before_model(
        &self,
        ctx: &RunContext,
        model: &str,
        request: &ModelRequest<'_>,
    ) -> Result<(), Stop> {
        if let Some(rate) = &self.gov.rate {
            match rate.acquire(ctx.user(), model).await {
                Ok(waited) if !waited.is_zero() => {
                    ctx.emit(|| EventKind::RateLimited { bucket: "throttled".to_owned(), wait: waited });
                }
                Ok(_) => {}
                Err(super::rate::Refused::Wait(retry_after, bucket)) => {
                    ctx.emit(|| EventKind::RateLimited { bucket: bucket.to_owned(), wait: retry_after });
                    return Err(Stop::Rate { bucket, retry_after });
                }
                Err(super::rate::Refused::Store(e)) => return Err(Stop::Store(e)),
            }
        }
        if self.gov.budget.is_some() {
            let usage = estimate(request);
            let cost = crate::model::pricing::cost(model, &usage);
            self.check_budget(ctx, &Spent::model_call(&usage, cost)).await?;
        }
        Ok(())
    }

    /// After a model call: the output guardrails on an answer's text, then the budget with
    /// what the call used.
    pub(crate) async fn after_model(
        &self,
        ctx: &RunContext,
        response: &mut ModelResponse,
        cost: Option<f64>,
        answer: bool,
    ) -> Result<(), Stop> {
        // Spent first: an answer a guardrail then blocks still cost its tokens.
        self.spend(ctx, &Spent::model_call(&response.usage, cost)).await?;
        if answer
            && !response.text.is_empty()
            && self.gov.has_guards(Stage::Output)
            && let Some(text) = self.guard(ctx, Stage::Output, &response.text, None).await?
        {
            response.text = text.into();
        }
        self.flush_audit().await
    }

    /// A run's input, through the input guardrails.
    pub(crate) async fn input(&self, ctx: &RunContext, input: Content) -> Result<Content, Stop> {
        if !self.gov.has_guards(Stage::Input) {
            return Ok(input);
        }
        let text = input.text().into_owned();
        Ok(match self.guard(ctx, Stage::Input, &text, None).await? {
            Some(rewritten) => with_text(input, rewritten),
            None => input,
        })
    }

    /// Runs the guardrails of `stage` over `text`: the text as rewritten (`None`: unchanged),
    /// or the stop of the first that blocks. A guardrail that errs, panics or runs out of time
    /// blocks.
    async fn guard(
        &self,
        ctx: &RunContext,
        stage: Stage,
        text: &str,
        tool: Option<&str>,
    ) -> Result<Option<String>, Stop> {
        let mut current: Option<String> = None;
        for guardrail in self.gov.guards(stage) {
            let checked = Checked { stage, text: current.as_deref().unwrap_or(text), tool, ctx };
            let verdict = std::panic::AssertUnwindSafe(guardrail.check(checked)).catch_unwind();
            let verdict = match tokio::time::timeout(self.gov.check_timeout, verdict).await {
                Ok(Ok(Ok(verdict))) => verdict,
                Ok(Ok(Err(e))) => Verdict::Block { reason: format!("the guardrail failed: {e}") },
                Ok(Err(_)) => Verdict::Block { reason: "the guardrail panicked".to_owned() },
                Err(_) => Verdict::Block {
                    reason: format!("the guardrail did not answer within {:?}", self.gov.check_timeout),
                },
            };
            let name = guardrail.name();
            match verdict {
                Verdict::Pass => {}
                Verdict::Rewrite { text, note } => {
                    ctx.emit(|| EventKind::Guardrail {
                        guard: name.to_owned(),
                        stage,
                        action: "rewrite".to_owned(),
                        note: note.clone(),
                    });
                    current = Some(text);
                }
                Verdict::Block { reason } => {
                    ctx.emit(|| EventKind::Guardrail {
                        guard: name.to_owned(),
                        stage,
                        action: "block".to_owned(),
                        note: reason.clone(),
                    });
                    return Err(Stop::Guard { guard: name.to_owned(), stage, reason });
                }
            }
        }
        Ok(current)
    }

    /// One tool call, governed: the budget, the permissions and approvals, the tool (through
    /// `run`), then the tool-result guardrails.
    pub(crate) async fn tool<'a, F>(
        &self,
        tools: &ToolSet,
        ctx: &RunContext,
        call: &'a ToolCall,
        asking: Asking<'_>,
        run: impl FnOnce(Cow<'a, ToolCall>) -> F,
    ) -> Result<ToolResult, Stop>
    where
        F: Future<Output = ToolResult>,
    {
        if self.gov.budget.is_some() {
            let one = Spent::tool_calls(1);
            self.check_budget(ctx, &one).await?;
            self.spend(ctx, &one).await?;
        }
        let permitted = match asking {
            Asking::Decided(approval) if *approval != Approval::Defer => self.decided(ctx, call, approval.clone()),
            // Deferred again: the call asks again, and the run waits again.
            Asking::Decided(_) => self.permit(tools, ctx, call, Asking::Journaled).await?,
            _ => self.permit(tools, ctx, call, asking).await?,
        };
        let call = match permitted {
            Ok(call) => call,
            Err(reason) => return Ok(ToolResult::error(call.id.clone(), call.name.clone(), reason)),
        };
        let started = ctx.is_observed().then(std::time::Instant::now);
        let mut result = run(call).await;
        if self.gov.has_guards(Stage::ToolResult) {
            let text = result.content.text().into_owned();
            if let Some(text) = self.guard(ctx, Stage::ToolResult, &text, Some(&result.name)).await? {
                result.content = Content::from(text);
            }
        }
        // The result is reported as the guardrails left it.
        crate::tool::finished(ctx, &result, started);
        self.flush_audit().await?;
        Ok(result)
    }

    /// Whether `call` may run: the call to run (its arguments edited by an approval), or the
    /// reason it is refused, for the model to read; a stop when the run pauses for approval.
    async fn permit<'a>(
        &self,
        tools: &ToolSet,
        ctx: &RunContext,
        call: &'a ToolCall,
        asking: Asking<'_>,
    ) -> Result<Result<Cow<'a, ToolCall>, String>, Stop> {
        let gov = &*self.gov;
        if gov.permissions.is_none() && gov.approvals.is_none() {
            return Ok(Ok(Cow::Borrowed(call)));
        }
        let hints = tools.get(&call.name).map(|t| t.definition().hints()).unwrap_or_default();
        let request = ToolRequest { ctx, call_id: &call.id, tool: &call.name, arguments: &call.arguments, hints };
        let permission = match &gov.permissions {
            Some(policy) => {
                let checked = std::panic::AssertUnwindSafe(policy.check(&request)).catch_unwind();
                match tokio::time::timeout(gov.check_timeout, checked).await {
                    Ok(Ok(Ok(p))) => p,
                    Ok(Ok(Err(e))) => Permission::Deny { reason: format!("the permission check failed: {e}") },
                    Ok(Err(_)) => Permission::Deny { reason: "the permission check panicked".to_owned() },
                    Err(_) => Permission::Deny {
                        reason: format!("the permission check did not answer within {:?}", gov.check_timeout),
                    },
                }
            }
            None => StandardPermissions::default().decide(&call.name, hints),
        };
        let decided = |decision: &str, reason: Option<&str>| {
            ctx.emit(|| EventKind::PermissionDecision {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                decision: decision.to_owned(),
                reason: reason.map(str::to_owned),
            });
        };
        let reason = match permission {
            Permission::Allow => {
                decided("allow", None);
                return Ok(Ok(Cow::Borrowed(call)));
            }
            Permission::Deny { reason } => {
                decided("deny", Some(&reason));
                return Ok(Err(format!("denied: {reason}")));
            }
            Permission::Ask { reason } => reason,
        };
        decided("ask", Some(&reason));
        self.approve(ctx, call, reason, asking).await
    }

    /// Asks the approval handler about `call` (or remembers its earlier answer).
    async fn approve<'a>(
        &self,
        ctx: &RunContext,
        call: &'a ToolCall,
        reason: String,
        asking: Asking<'_>,
    ) -> Result<Result<Cow<'a, ToolCall>, String>, Stop> {
        let gov = &*self.gov;
        let remembered = {
            let mut memo = gov.remembered.lock().unwrap_or_else(PoisonError::into_inner);
            memo.with(ctx.user(), false, gov.max_users, gov.idle_ttl, |m| m.get(&call.name).cloned()).flatten()
        };
        if let Some(remembered) = remembered {
            let decision = if remembered.is_ok() { "allow_always" } else { "deny_always" };
            ctx.emit(|| EventKind::ApprovalDecided {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                decision: decision.to_owned(),
                remembered: true,
            });
            return Ok(remembered.map(|()| Cow::Borrowed(call)).map_err(|r| format!("denied: {r}")));
        }
        let Some(handler) = &gov.approvals else {
            return Ok(Err(format!("denied: {reason}; no approval handler is configured")));
        };
        ctx.emit(|| EventKind::ApprovalRequested {
            call_id: call.id.clone(),
            tool: call.name.clone(),
            reason: reason.clone(),
        });
        let request = ApprovalRequest {
            user: ctx.user().clone(),
            session: ctx.session().cloned(),
            run_id: ctx.run_id(),
            call_id: call.id.clone(),
            tool: call.name.clone(),
            arguments: call.arguments.clone(),
            reason,
        };
        let asked = std::panic::AssertUnwindSafe(handler.decide(&request)).catch_unwind();
        let approval = match tokio::time::timeout(gov.approval_timeout, asked).await {
            Ok(Ok(Ok(approval))) => approval,
            Ok(Ok(Err(e))) => Approval::deny(format!("the approval handler failed: {e}")),
            Ok(Err(_)) => Approval::deny("the approval handler panicked"),
            Err(_) => Approval::deny(format!("no approval within {:?}", gov.approval_timeout)),
        };
        let approval = match (approval, asking) {
            (Approval::Defer, Asking::Journaled) => {
                ctx.emit(|| EventKind::ApprovalDecided {
                    call_id: call.id.clone(),
                    tool: call.name.clone(),
                    decision: "defer".to_owned(),
                    remembered: false,
                });
                return Err(Stop::Pending(Box::new(request)));
            }
            (Approval::Defer, _) => Approval::deny(
                "the approver deferred the decision, and this run has no journal to wait in \
                 (give the agent a store to pause runs for approval)",
            ),
            (approval, _) => approval,
        };
        Ok(self.decided(ctx, call, approval))
    }

    /// Applies an approver's decision on `call` (remembering it when it says always).
    fn decided<'a>(
        &self,
        ctx: &RunContext,
        call: &'a ToolCall,
        approval: Approval,
    ) -> Result<Cow<'a, ToolCall>, String> {
        let gov = &*self.gov;
        ctx.emit(|| EventKind::ApprovalDecided {
            call_id: call.id.clone(),
            tool: call.name.clone(),
            decision: approval.as_str().to_owned(),
            remembered: false,
        });
        let remember = |decision: Result<(), String>| {
            let mut memo = gov.remembered.lock().unwrap_or_else(PoisonError::into_inner);
            memo.with(ctx.user(), true, gov.max_users, gov.idle_ttl, |m| {
                m.insert(call.name.clone(), decision);
            });
        };
        match approval {
            Approval::Allow => Ok(Cow::Borrowed(call)),
            Approval::AllowAlways => {
                remember(Ok(()));
                Ok(Cow::Borrowed(call))
            }
            Approval::Edit { arguments } => Ok(Cow::Owned(ToolCall { arguments, ..call.clone() })),
            Approval::Deny { reason } => Err(format!("denied by the approver: {reason}")),
            Approval::DenyAlways { reason } => {
                remember(Err(reason.clone()));
                Err(format!("denied by the approver: {reason}"))
            }
            // Only reached when the run cannot wait (a deferral is handled before).
            Approval::Defer => Err("denied: the approver deferred, and the run cannot wait".to_owned()),
        }
    }
}

/// The budget-exceeded event of `b`.
fn exceeded(b: &Breach) -> EventKind {
    EventKind::BudgetExceeded { scope: b.scope, limit: b.limit, used: b.used, max: b.max }
}

/// `content` with its text replaced by `text`: the images, audio and documents of a
/// multimodal message stay, after the one text part.
fn with_text(content: Content, text: String) -> Content {
    match content {
        Content::Text(_) => Content::from(text),
        Content::Parts(parts) => {
            let mut out = vec![Part::Text { text }];
            out.extend(parts.into_iter().filter(|p| !matches!(p, Part::Text { .. })));
            Content::Parts(out)
        }
    }
}

/// What a request will use, estimated before it is sent: its text at four characters a
/// token, and the output it allows.
fn estimate(request: &ModelRequest<'_>) -> Usage {
    let chars: usize = request
        .messages
        .iter()
        .map(|m| match m {
            Message::System { content } => content.len(),
            Message::User { content } => content_len(content),
            Message::Assistant { content, tool_calls } => {
                content_len(content) + tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>()
            }
            Message::Tool(result) => content_len(&result.content),
        })
        .sum();
    let output = request.settings.max_tokens.unwrap_or(0);
    Usage::new(chars.div_ceil(4) as u64, u64::from(output))
}

fn content_len(content: &Content) -> usize {
    match content {
        Content::Text(t) => t.len(),
        Content::Parts(parts) => parts.iter().map(|p| if let Part::Text { text } = p { text.len() } else { 0 }).sum(),
    }
}
