//! Journaled runs: every step written before the run moves on, and replayed on resume.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::context::RunContext;
use crate::error::{Error, RunError};
use crate::event::EventKind;
use crate::governance::hook::Asking;
use crate::id::RunId;
use crate::model::{Content, ModelResponse, ToolCall, ToolResult};
use crate::session::{Journal, JournalEntry, RunKey, RunStatus, Writer};
use crate::tool::{ToolSet, dispatch_asking};

/// What to do with a tool call that started before a crash and has no recorded result.
///
/// Tools marked `idempotent` are run again; for every other tool the resume stops with
/// [`RunError::NeedsDecision`] until the caller decides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolDecision {
    /// Run the tool again (it is safe to repeat).
    Rerun,
    /// Do not run it; the model reads this result instead (e.g. what an operator checked).
    Result(String),
    /// Do not run it; the model reads this as an error result.
    Fail(String),
    /// The approver's decision on a call the run paused for
    /// ([`RunError::ApprovalPending`]): allow, deny, edit the arguments, or remember. The tool
    /// never ran before the pause, so it runs once, now, if the decision lets it.
    Approve(crate::governance::Approval),
}

/// How a run starts: from an input, or by resuming a journaled run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AgentInput {
    /// A new run on this user message.
    Message(Content),
    /// Resume a run from its journal.
    Resume {
        /// The run; `None` for the session's latest unfinished run.
        run: Option<RunId>,
        /// Decisions for tool calls that were interrupted, by call id.
        decisions: Vec<(String, ToolDecision)>,
    },
}

impl<T: Into<Content>> From<T> for AgentInput {
    fn from(content: T) -> Self {
        Self::Message(content.into())
    }
}

impl AgentInput {
    /// Resume `run`.
    pub fn resume(run: RunId) -> Self {
        Self::Resume { run: Some(run), decisions: Vec::new() }
    }

    /// Resume the session's latest unfinished run.
    pub fn resume_latest() -> Self {
        Self::Resume { run: None, decisions: Vec::new() }
    }

    /// The approver's decision on `call_id`, a call the run paused for
    /// ([`RunError::ApprovalPending`]); the same as deciding [`ToolDecision::Approve`].
    ///
    /// ```
    /// use loomflow::agent::AgentInput;
    /// use loomflow::governance::Approval;
    /// use loomflow::RunId;
    ///
    /// # let run = RunId::generate();
    /// let input = AgentInput::resume(run).approve("call_7", Approval::edit(r#"{"path":"notes.txt"}"#));
    /// ```
    #[must_use]
    pub fn approve(self, call_id: impl Into<String>, approval: crate::governance::Approval) -> Self {
        self.decide(call_id, ToolDecision::Approve(approval))
    }

    /// Decides what to do with the interrupted tool call `call_id`.
    #[must_use]
    pub fn decide(mut self, call_id: impl Into<String>, decision: ToolDecision) -> Self {
        if let Self::Resume { decisions, .. } = &mut self {
            decisions.push((call_id.into(), decision));
        }
        self
    }
}

/// The journal side of one run: the writer (with its lease) and what is left to replay.
pub(crate) struct Durable {
    writer: Writer,
    replay: Mutex<Replay>,
}

#[derive(Default)]
struct Replay {
    models: HashMap<u32, (usize, ModelResponse)>,
    finished: HashMap<(u32, String), ToolResult>,
    started: HashSet<(u32, String)>,
    /// Calls the run paused at, waiting for approval.
    pending: HashSet<(u32, String)>,
    turns: HashSet<u32>,
    decisions: HashMap<String, ToolDecision>,
    run_finished: bool,
}

/// The input a resumed run started with, and the window of session history it saw.
pub(crate) struct Resumed {
    pub(crate) input: Content,
    /// How many messages of history.
    pub(crate) history: usize,
    /// Where they start in the session.
    pub(crate) window_start: usize,
}

impl Durable {
    /// A new journaled run: takes the lease and records its start, after `history` messages of
    /// the session from position `window_start`.
    pub(crate) async fn start(
        journal: Arc<dyn Journal>,
        key: RunKey,
        ttl: Duration,
        input: &Content,
        (history, window_start): (usize, usize),
        name: Option<&str>,
    ) -> Result<Self, Error> {
        let writer = Writer::acquire(journal, key, ttl, 0).await?;
        let durable = Self { writer, replay: Mutex::new(Replay::default()) };
        let start = JournalEntry::RunStarted {
            input: input.clone(),
            history,
            window_start: Some(window_start),
            name: name.map(str::to_owned),
        };
        if let Err(e) = durable.append(start).await {
            durable.writer.give_back().await;
            return Err(e);
        }
        Ok(durable)
    }

    /// Resumes a journaled run: takes the lease, reads the journal (refusing a damaged one), and
    /// prepares the replay of every recorded step.
    pub(crate) async fn resume(
        journal: Arc<dyn Journal>,
        key: RunKey,
        ttl: Duration,
        decisions: Vec<(String, ToolDecision)>,
    ) -> Result<(Self, Resumed), Error> {
        let (writer, entries) = Writer::resume(journal, key, ttl).await?;
        let mut entries = entries.into_iter();
        let Some((_, JournalEntry::RunStarted { input, history, window_start, .. })) = entries.next() else {
            writer.give_back().await;
            return Err(RunError::NotResumable {
                run_id: writer.key().run,
                reason: "its journal has no start".to_owned(),
            }
            .into());
        };
        let mut replay = Replay { decisions: decisions.into_iter().collect(), ..Replay::default() };
        for (_, entry) in entries {
            match entry {
                JournalEntry::ModelResponse { turn, messages, response } => {
                    replay.models.insert(turn, (messages, response));
                }
                JournalEntry::ToolStarted { call_id, turn, .. } => {
                    replay.started.insert((turn, call_id));
                }
                JournalEntry::ToolFinished { result, turn } => {
                    let key = (turn, result.call_id.clone());
                    replay.pending.remove(&key);
                    replay.finished.insert(key, result);
                }
                JournalEntry::ApprovalRequested { turn, call_id, .. } => {
                    replay.pending.insert((turn, call_id));
                }
                JournalEntry::TurnFinished { turn } => {
                    replay.turns.insert(turn);
                }
                JournalEntry::RunFinished => replay.run_finished = true,
                _ => {}
            }
        }
        let durable = Self { writer, replay: Mutex::new(replay) };
        Ok((durable, Resumed { input, history, window_start: window_start.unwrap_or(0) }))
    }

    /// The writer of the run's journal.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    async fn append(&self, entry: JournalEntry) -> Result<(), Error> {
        self.writer.append(entry).await
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.replay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The recorded answer of `turn`, when it was recorded; the conversation must be as long
    /// as when it was, or the journal belongs to another conversation.
    pub(crate) fn replayed_model(&self, turn: u32, messages: usize) -> Result<Option<ModelResponse>, Error> {
        let Some((recorded, response)) = self.replay().models.remove(&turn) else { return Ok(None) };
        if recorded != messages {
            return Err(RunError::JournalMismatch {
                run_id: self.writer.key().run,
                detail: format!("turn {turn} was recorded with {recorded} messages; the resumed run has {messages}"),
            }
            .into());
        }
        Ok(Some(response))
    }

    /// Records the model's answer of `turn`, and hands it back.
    pub(crate) async fn record_model(
        &self,
        turn: u32,
        messages: usize,
        response: ModelResponse,
    ) -> Result<ModelResponse, Error> {
        self.append(JournalEntry::ModelResponse { turn, messages, response: response.clone() }).await?;
        Ok(response)
    }

    /// Records that turn `turn` is complete (a checkpoint), unless it already was.
    pub(crate) async fn turn_finished(&self, turn: u32) -> Result<(), Error> {
        if self.replay().turns.remove(&turn) {
            return Ok(());
        }
        self.append(JournalEntry::TurnFinished { turn }).await
    }

    /// Records the end of the run and releases the lease.
    pub(crate) async fn finished(&self) -> Result<(), Error> {
        if !self.replay().run_finished {
            self.append(JournalEntry::RunFinished).await?;
        }
        self.writer.finish(RunStatus::Finished).await?;
        Ok(())
    }

    /// Releases the lease of a run that could not begin again, leaving it as it was.
    pub(crate) async fn give_back(&self) {
        self.writer.give_back().await;
    }

    /// Releases the lease and leaves the run resumable.
    pub(crate) async fn release(&self) {
        let _ = self.writer.finish(RunStatus::Running).await;
    }

    /// Records that the run failed and releases the lease (best effort: the run's own error
    /// is what the caller needs).
    pub(crate) async fn failed(&self, error: &Error) {
        let _ = self.append(JournalEntry::RunFailed { error: error.to_string() }).await;
        let _ = self.writer.finish(RunStatus::Failed).await;
    }

    /// Runs one tool call the journaled way: a recorded result is replayed; a call that was
    /// interrupted is re-run if the tool is idempotent or decided on, and stops the resume
    /// otherwise; a new call is recorded as started, run, and recorded as finished.
    pub(crate) async fn tool(
        &self,
        tools: &ToolSet,
        ctx: &RunContext,
        turn: u32,
        call: &ToolCall,
    ) -> Result<ToolResult, Error> {
        let idempotent = tools.get(&call.name).is_some_and(|t| t.definition().hints().idempotent);
        // A call the run paused at, resumed with the approver's decision: the call runs with it.
        let approval = {
            let mut replay = self.replay();
            let decided = matches!(replay.decisions.get(&call.id), Some(ToolDecision::Approve(_)));
            match decided && replay.pending.contains(&(turn, call.id.clone())) {
                true => match replay.decisions.remove(&call.id) {
                    Some(ToolDecision::Approve(approval)) => Some(approval),
                    _ => None,
                },
                false => None,
            }
        };
        let asking = approval.as_ref().map_or(Asking::Journaled, Asking::Decided);
        self.fallible_step(ctx, turn, call, idempotent, || dispatch_asking(tools, ctx, call, asking)).await
    }

    /// Runs one call the journaled way, whatever runs it (a tool, or an architecture's own
    /// tool such as a supervisor's `delegate`): `run` makes the result when it is not replayed.
    pub(crate) async fn step<F: Future<Output = ToolResult>>(
        &self,
        ctx: &RunContext,
        turn: u32,
        call: &ToolCall,
        idempotent: bool,
        run: impl FnOnce() -> F,
    ) -> Result<ToolResult, Error> {
        self.fallible_step(ctx, turn, call, idempotent, || async { Ok(run().await) }).await
    }

    /// [`step`](Self::step) of work that can fail (a team member's run): a failure is not
    /// recorded — the step stays started, and a resumed run does it again when it is
    /// idempotent.
    pub(crate) async fn fallible_step<F: Future<Output = Result<ToolResult, Error>>>(
        &self,
        ctx: &RunContext,
        turn: u32,
        call: &ToolCall,
        idempotent: bool,
        run: impl FnOnce() -> F,
    ) -> Result<ToolResult, Error> {
        let key = (turn, call.id.clone());
        let (finished, interrupted, pending, decision) = {
            let mut replay = self.replay();
            let finished = replay.finished.remove(&key);
            let interrupted = replay.started.remove(&key);
            let pending = replay.pending.remove(&key);
            // A decision is for the call still open: call ids can repeat across turns.
            let decision = if finished.is_none() { replay.decisions.remove(&call.id) } else { None };
            (finished, interrupted, pending, decision)
        };
        if let Some(result) = finished {
            ctx.emit(|| EventKind::StepReplayed { step: format!("tool {} ({})", call.name, call.id) });
            return Ok(result);
        }
        if interrupted {
            // A call paused for approval never ran: running it again asks again (or applies
            // the decision the resume brought).
            let decision = match decision {
                None | Some(ToolDecision::Approve(_)) => (idempotent || pending).then_some(ToolDecision::Rerun),
                decision => decision,
            };
            let result = match decision {
                Some(ToolDecision::Rerun) => self.ran(turn, call, pending, run().await).await?,
                Some(ToolDecision::Result(text)) => ToolResult::ok(call.id.clone(), call.name.clone(), text),
                Some(ToolDecision::Fail(text)) => ToolResult::error(call.id.clone(), call.name.clone(), text),
                None | Some(ToolDecision::Approve(_)) => {
                    return Err(RunError::NeedsDecision {
                        run_id: self.writer.key().run,
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                    }
                    .into());
                }
            };
            self.append(JournalEntry::ToolFinished { turn, result: result.clone() }).await?;
            return Ok(result);
        }
        self.append(JournalEntry::ToolStarted { call_id: call.id.clone(), name: call.name.clone(), turn }).await?;
        let result = self.ran(turn, call, false, run().await).await?;
        self.append(JournalEntry::ToolFinished { turn, result: result.clone() }).await?;
        Ok(result)
    }

    /// The outcome of running `call`: a pause for its approval is journaled (once: `recorded`
    /// says the journal has it already), so the run can be listed and resumed there.
    async fn ran(
        &self,
        turn: u32,
        call: &ToolCall,
        recorded: bool,
        outcome: Result<ToolResult, Error>,
    ) -> Result<ToolResult, Error> {
        let Err(Error::Run(RunError::ApprovalPending { request })) = &outcome else {
            return outcome;
        };
        // Only this call's own pause: a nested run's is journaled by that run.
        if !recorded && request.call_id == call.id {
            let entry = JournalEntry::ApprovalRequested {
                turn,
                call_id: request.call_id.clone(),
                tool: request.tool.clone(),
                arguments: request.arguments.clone(),
                reason: request.reason.clone(),
            };
            self.append(entry).await?;
        }
        outcome
    }
}

impl<O> super::Agent<O> {
    /// The journaled runs of `user` in `session`, oldest first: each run's id, status and
    /// times (a run still `running` after its process died is one to resume). An agent
    /// without a journal has none.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    pub async fn runs(
        &self,
        user: &crate::id::UserId,
        session: &crate::id::SessionId,
    ) -> Result<Vec<crate::session::RunInfo>, Error> {
        let Some(journal) = self.journal.as_deref() else { return Ok(Vec::new()) };
        let mut runs = journal.runs(user, session).await?;
        runs.sort_by_key(|info| (info.started_ms, info.run));
        Ok(runs)
    }

    /// The tool calls of `user`'s runs that wait for an approval
    /// ([`RunError::ApprovalPending`]), oldest run first: what a reviewer decides, in any
    /// process that opens the same store, before resuming each run with
    /// [`AgentInput::approve`].
    ///
    /// Only `user`'s runs are read; an agent without a journal has none.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    pub async fn pending_approvals(
        &self,
        user: &crate::id::UserId,
    ) -> Result<Vec<crate::governance::ApprovalRequest>, Error> {
        let Some(journal) = self.journal.as_deref() else { return Ok(Vec::new()) };
        let mut runs = Vec::new();
        for session in self.sessions.store().sessions(user).await? {
            for info in journal.runs(user, &session).await? {
                if info.status == RunStatus::Running {
                    runs.push((info.started_ms, session.clone(), info.run));
                }
            }
        }
        runs.sort_by_key(|(started, _, run)| (*started, *run));
        let mut pending = Vec::new();
        for (_, session, run) in runs {
            let key = RunKey::new(user.clone(), session.clone(), run);
            let mut waiting: Vec<crate::governance::ApprovalRequest> = Vec::new();
            for (_, entry) in journal.read(&key).await?.entries {
                match entry {
                    JournalEntry::ApprovalRequested { call_id, tool, arguments, reason, .. } => {
                        waiting.push(crate::governance::ApprovalRequest {
                            user: user.clone(),
                            session: Some(session.clone()),
                            run_id: run,
                            call_id,
                            tool,
                            arguments,
                            reason,
                        });
                    }
                    JournalEntry::ToolFinished { result, .. } => waiting.retain(|w| w.call_id != result.call_id),
                    _ => {}
                }
            }
            pending.extend(waiting);
        }
        Ok(pending)
    }
}
