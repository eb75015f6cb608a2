//! The run an architecture drives: every model call, tool call and nested agent run goes
//! through it, so each gets the same events, spans, usage and cost accounting, and journal,
//! whichever loop makes it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::agent::{Agent, AgentInput, Durable, Prepared, RunResult};
use crate::context::RunContext;
use crate::error::Error;
use crate::event::EventKind;
use crate::id::RunId;
use crate::model::{
    Content, Message, Model, ModelRequest, ModelResponse, ModelSettings, RetryPolicy, ToolCall, ToolResult, Usage,
};
use crate::output::{self, OutputAttempt, OutputError, OutputSchema, OutputSlot, OutputType};
use crate::runner::Runnable as _;
use crate::session::{SessionStore, Sessions};
use crate::tool::{ToolSet, dispatch};

pub(crate) use super::model_call::priced;
use super::model_call::{Models, Partial, Step, call_model};

/// What a run has used so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) usage: Usage,
    /// What the model calls cost, while every model that answered has a known price.
    pub(crate) cost: Option<f64>,
    /// Model calls made (this run's own, not its nested runs').
    pub(crate) turns: u32,
    /// Tool calls made.
    pub(crate) tool_calls: u32,
    /// How the architecture's loop ended, when it says.
    pub(crate) exit: Option<LoopExit>,
}

impl Default for Tally {
    fn default() -> Self {
        Self { usage: Usage::default(), cost: Some(0.0), turns: 0, tool_calls: 0, exit: None }
    }
}

/// How an architecture's loop ended, when that is worth knowing: a goal met or given up on
/// ([`RunUntil`](super::RunUntil)), a swarm stopped at its handoff cap. In
/// [`RunResult::exit`](crate::RunResult::exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoopExit {
    /// The goal's condition holds.
    ConditionMet,
    /// The loop used all its iterations (or rounds) first.
    MaxIterations,
    /// The answer stopped changing for as many iterations as allowed.
    NoProgress,
    /// The run's cost reached its cap.
    CostCap,
    /// A swarm reached its handoff cap; the last peer answered without handing off.
    HandoffCap,
    /// A swarm's peers handed the conversation back and forth; the last peer answered
    /// without handing off.
    HandoffCycle,
}

impl LoopExit {
    /// The exit as a word: `condition_met`, `max_iterations` ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConditionMet => "condition_met",
            Self::MaxIterations => "max_iterations",
            Self::NoProgress => "no_progress",
            Self::CostCap => "cost_cap",
            Self::HandoffCap => "handoff_cap",
            Self::HandoffCycle => "handoff_cycle",
        }
    }
}

impl std::fmt::Display for LoopExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of an agent's configuration a run uses.
pub(crate) struct Parts<'r> {
    pub(crate) name: Option<&'r Arc<str>>,
    pub(crate) instructions: &'r Arc<str>,
    pub(crate) model: &'r dyn Model,
    /// The same model, shared (for agents an architecture makes, such as spawned workers).
    pub(crate) shared_model: Option<&'r Arc<dyn Model>>,
    pub(crate) fallbacks: &'r [Arc<dyn Model>],
    pub(crate) retry: &'r RetryPolicy,
    pub(crate) settings: &'r ModelSettings,
    pub(crate) tools: &'r ToolSet,
    pub(crate) sessions: &'r Sessions,
    pub(crate) prepared: &'r Prepared,
    pub(crate) max_turns: u32,
    pub(crate) memory: Option<&'r crate::memory::Memory>,
}

/// One model call of an architecture: who is asked (the role, for events and spans), which
/// model (the agent's, with its retries and fallbacks, unless the role has its own), and
/// whether its text is the run's visible answer (streamed to listeners as it arrives).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct ModelCall<'a> {
    /// The role asked: `planner`, `critic`, `judge` ... (`agent` for ReAct's own turns).
    pub role: &'a str,
    /// The role's own model; `None` for the agent's model.
    pub model: Option<&'a dyn Model>,
    /// The request.
    pub request: ModelRequest<'a>,
    /// The call writes the run's answer: its text streams to the run's listeners.
    pub answer: bool,
}

impl std::fmt::Debug for ModelCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCall")
            .field("role", &self.role)
            .field("model", &self.model.map(|m| m.name()))
            .field("messages", &self.request.messages.len())
            .field("answer", &self.answer)
            .finish()
    }
}

impl<'a> ModelCall<'a> {
    /// A call of `role` with `request`, to the agent's model.
    pub fn new(role: &'a str, request: ModelRequest<'a>) -> Self {
        Self { role, model: None, request, answer: false }
    }

    /// Asks the role's own model (`None` keeps the agent's).
    #[must_use]
    pub fn with_model(mut self, model: Option<&'a dyn Model>) -> Self {
        self.model = model;
        self
    }

    /// Marks the call as the one that writes the run's answer.
    #[must_use]
    pub fn answer(mut self) -> Self {
        self.answer = true;
        self
    }
}

/// A model's answer to one call, with the call's number in the run (its place in the
/// journal, and the key of the tool calls it asks for).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModelTurn {
    /// The call's number in the run, from 1.
    pub turn: u32,
    /// The answer.
    pub response: ModelResponse,
}

/// Which session a nested agent run continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildSession<'a> {
    /// The run's sub-session `{session}/{name}`: a conversation of the role's own that lasts
    /// across runs of the session (a worker remembers what it was asked before).
    Sub(&'a str),
    /// The run's own session.
    Shared,
    /// None: the nested run starts from nothing and keeps nothing.
    None,
}

/// The run an [`Architecture`](super::Architecture) drives.
///
/// It holds the conversation (system prompt, session history, the user's input, and what the
/// run adds to it), and it is the only way an architecture reaches a model, a tool or another
/// agent: [`call_model`](Self::call_model), [`call_tools`](Self::call_tools),
/// [`ask`](Self::ask) (a typed control message) and [`run_agent`](Self::run_agent). Through
/// it every call is reported as events and spans, counted in the run's usage and cost, and
/// written to the run's journal — so a crashed run of any architecture resumes elsewhere
/// without repeating the calls it finished. Calls may run concurrently (`&self`): each gets
/// its number in the run when it is made, so a resumed run finds each answer again.
pub struct AgentRun<'r> {
    pub(crate) parts: Parts<'r>,
    pub(crate) ctx: &'r RunContext,
    pub(crate) durable: Option<&'r Durable>,
    tally: Mutex<Tally>,
    next_turn: AtomicU32,
    next_child: AtomicU32,
    pub(crate) messages: Vec<Message>,
    pub(crate) input_index: usize,
    /// Taken out while a loop on the run's own conversation has it.
    pub(crate) output: Option<&'r mut dyn OutputSlot>,
    /// The text of the answer accepted into the output, if one was.
    pub(crate) accepted: Option<String>,
}

impl std::fmt::Debug for AgentRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRun")
            .field("run_id", &self.ctx.run_id())
            .field("messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

impl<'r> AgentRun<'r> {
    pub(crate) fn new(
        parts: Parts<'r>,
        ctx: &'r RunContext,
        durable: Option<&'r Durable>,
        messages: Vec<Message>,
        input_index: usize,
        output: Option<&'r mut dyn OutputSlot>,
    ) -> Self {
        Self {
            parts,
            ctx,
            durable,
            tally: Mutex::new(Tally::default()),
            next_turn: AtomicU32::new(0),
            next_child: AtomicU32::new(0),
            messages,
            input_index,
            output,
            accepted: None,
        }
    }

    /// The run's context: user, session, run id, metadata.
    pub fn ctx(&self) -> &RunContext {
        self.ctx
    }

    /// The agent's instructions (its system prompt).
    pub fn instructions(&self) -> &str {
        self.parts.instructions
    }

    /// The agent's name, if it has one.
    pub fn agent_name(&self) -> Option<&str> {
        self.parts.name.map(|n| &**n)
    }

    /// The agent's tools.
    pub fn tools(&self) -> &ToolSet {
        self.parts.tools
    }

    /// The agent's model.
    pub fn model(&self) -> &dyn Model {
        self.parts.model
    }

    /// The agent's model settings.
    pub fn settings(&self) -> &ModelSettings {
        self.parts.settings
    }

    /// The most model calls one ReAct loop of this agent may make.
    pub fn max_turns(&self) -> u32 {
        self.parts.max_turns
    }

    /// The user's message of this run.
    pub fn input(&self) -> Option<&Content> {
        match self.messages.get(self.input_index) {
            Some(Message::User { content }) => Some(content),
            _ => None,
        }
    }

    /// The text of the user's message.
    pub fn input_text(&self) -> std::borrow::Cow<'_, str> {
        self.input().map(Content::text).unwrap_or_default()
    }

    /// The conversation: the system prompt, the session's history, the user's input, and what
    /// the run added after it.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The conversation, to add to it. What stands after the input when the run finishes is
    /// what the session keeps of the run: an architecture that talks to its roles in
    /// conversations of their own adds only its answer (the run adds it when the
    /// architecture did not).
    pub fn messages_mut(&mut self) -> &mut Vec<Message> {
        &mut self.messages
    }

    /// The conversation before the user's input: the system prompt and the session's history.
    pub fn history(&self) -> &[Message] {
        &self.messages[..self.input_index.min(self.messages.len())]
    }

    /// Puts the conversation back to how the run began (history and input), forgetting what
    /// the run added: a fresh attempt.
    pub fn restart(&mut self) {
        self.messages.truncate(self.input_index + 1);
    }

    /// Tokens used so far, summed over every model call (nested runs included).
    pub fn usage(&self) -> Usage {
        self.tally().usage
    }

    /// What the model calls cost so far, when every model has a known price.
    pub fn cost_usd(&self) -> Option<f64> {
        self.tally().cost
    }

    /// The conversation and what the run used, once it is over.
    pub(crate) fn into_conversation(self) -> (Vec<Message>, Tally) {
        let tally = self.tally();
        (self.messages, tally)
    }

    pub(crate) fn tally(&self) -> Tally {
        *self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut Tally)) {
        f(&mut self.tally.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Whether the run's output is typed (not plain text).
    pub fn output_is_typed(&self) -> bool {
        self.output.as_ref().is_some_and(|o| o.is_typed())
    }

    /// Offers `text` as the run's answer: parsed and validated as the output type (for a text
    /// output, taken as it is). The error is what is wrong, for the model to correct.
    pub fn accept(&mut self, text: &str) -> Result<(), String> {
        let Some(output) = self.output.as_deref_mut() else { return Err("the run's output is in use".to_owned()) };
        output.accept(text)?;
        self.accepted = Some(text.to_owned());
        Ok(())
    }

    /// Runs a ReAct loop with the agent's tools on `messages` (a role's own conversation),
    /// through this run: its answer is the last text, not the run's output. At most
    /// `max_turns` model calls (`None`: the agent's), numbered from a block reserved now, so
    /// such loops may run concurrently.
    pub fn react<'a>(
        &'a self,
        role: &'a str,
        model: Option<&'a dyn Model>,
        mut messages: Vec<Message>,
        max_turns: Option<u32>,
    ) -> impl Future<Output = Result<(String, Vec<Message>), Error>> + Send + 'a {
        let max_turns = max_turns.unwrap_or(self.parts.max_turns).max(1);
        let base = self.reserve(max_turns);
        async move {
            let lp = super::react::Loop { role, max_turns, extra: None, model, base: Some(base), keep_answer: true };
            let answer = super::react::react_on(self, &mut messages, None, &lp).await?;
            Ok((answer, messages))
        }
    }

    /// Asks `role` for the run's answer: the call streams to the run's listeners, and, for a
    /// typed output, carries its schema (the provider's structured output, or the instruction
    /// in the system prompt), so the answer the run settles is the typed value.
    pub async fn answer(&self, role: &str, model: Option<&dyn Model>, messages: Vec<Message>) -> Result<String, Error> {
        let prepared = self.parts.prepared;
        let messages = match &prepared.answer_directive {
            Some(directive) => with_system(messages, directive),
            None => messages,
        };
        let request = ModelRequest::new(&messages)
            .with_response_format(prepared.format.as_ref())
            .with_settings(self.parts.settings)
            .with_user(self.ctx.user());
        let answered = self.call_model(ModelCall::new(role, request).with_model(model).answer()).await?;
        Ok(answered.response.text.to_string())
    }

    /// Records how the loop ended (see [`LoopExit`]); the last word counts.
    pub fn set_exit(&self, exit: LoopExit) {
        self.count(|t| t.exit = Some(exit));
    }

    /// How the loop ended, if an architecture said.
    pub fn exit(&self) -> Option<LoopExit> {
        self.tally().exit
    }

    /// The session store of the agent (its history, and what an architecture keeps for a
    /// user across runs, such as Reflexion's lessons).
    pub fn session_store(&self) -> &Arc<dyn SessionStore> {
        self.parts.sessions.store()
    }

    /// The agent's memory, when it has one ([`Agent::memory`](crate::Agent::memory)): where an
    /// architecture keeps what it learns about the user (Reflexion's lessons).
    pub fn memory(&self) -> Option<&crate::memory::Memory> {
        self.parts.memory
    }

    /// The agent's tools, one per line with its description and argument schema, for a
    /// planner's prompt; `(none)` without tools. Made once per agent configuration.
    pub fn tool_list(&self) -> &str {
        self.parts.prepared.tool_list.get_or_init(|| {
            use std::fmt::Write as _;
            let mut out = String::new();
            for t in self.parts.tools.definitions() {
                let _ = writeln!(out, "- {}: {} (arguments: {})", t.name(), t.description(), t.parameters());
            }
            if out.is_empty() {
                out.push_str("(none)\n");
            }
            out
        })
    }

    /// A request of `messages` with the agent's model settings, for the run's user.
    pub fn request<'a>(&'a self, messages: &'a [Message]) -> ModelRequest<'a> {
        ModelRequest::new(messages).with_settings(self.parts.settings).with_user(self.ctx.user())
    }

    /// Asks `role` for text (a critique, a lesson, a debater's view): one model call on
    /// `messages`, without tools.
    pub async fn text(&self, role: &str, model: Option<&dyn Model>, messages: &[Message]) -> Result<String, Error> {
        let answered = self.call_model(ModelCall::new(role, self.request(messages)).with_model(model)).await?;
        Ok(answered.response.text.to_string())
    }

    pub(crate) fn count_tool_calls(&self, n: usize) {
        self.count(|t| t.tool_calls += n as u32);
    }

    /// Emits an event of the architecture (`router.classified`, `plan.malformed` ...).
    pub fn emit(&self, name: &str, payload: impl FnOnce() -> serde_json::Value) {
        self.ctx.emit(|| EventKind::Architecture { name: name.to_owned(), payload: payload() });
    }

    /// Calls a model, through the spine: an event before and after, a span, retries and
    /// fallbacks (for the agent's own model), usage and cost counted, and the journal — a
    /// resumed run gets the recorded answer back instead of calling the model again.
    ///
    /// The call's number is taken when the call is made (before the future is polled), so
    /// concurrent calls made in a fixed order get the same numbers on every run.
    pub fn call_model<'a>(&'a self, call: ModelCall<'a>) -> impl Future<Output = Result<ModelTurn, Error>> + Send + 'a {
        let turn = self.reserve(1);
        self.call_model_at(turn, call)
    }

    /// Takes the next `n` call numbers of the run, for calls made later (a loop, a question
    /// and its retry, the tool calls of a plan), and returns the first: calls started
    /// concurrently keep their numbers on every run, however their futures are polled. A
    /// number taken for [`call_tools`](Self::call_tools) keys the calls in the journal.
    pub fn reserve(&self, n: u32) -> u32 {
        self.next_turn.fetch_add(n, Ordering::Relaxed) + 1
    }

    /// [`call_model`](Self::call_model) with a number reserved before.
    // `fn -> impl Future`, as the run's other steps: the future keeps no second copy of its
    // arguments.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn call_model_at<'a>(
        &'a self,
        turn: u32,
        call: ModelCall<'a>,
    ) -> impl Future<Output = Result<ModelTurn, Error>> + Send + 'a {
        async move {
            let model = call.model.unwrap_or(self.parts.model);
            let messages = call.request.messages.len();
            // Boxed, as it is rare: the replayed answer would sit in the caller's future.
            let replayed = match self.durable {
                Some(d) => d.replayed_model(turn, messages)?.map(Box::new),
                None => None,
            };
            let (response, cost) = match replayed {
                Some(response) => {
                    self.ctx.emit(|| EventKind::StepReplayed { step: format!("model turn {turn}") });
                    priced(model, *response)
                }
                None => {
                    let fallbacks = if call.model.is_some() { &[][..] } else { self.parts.fallbacks };
                    let models = Models { primary: model, fallbacks, retry: self.parts.retry };
                    // A typed agent's prepared mode is resolved; a text agent's stays `Auto`.
                    let typed = self.parts.prepared.mode != output::OutputMode::Auto;
                    let partial = match (call.answer, self.parts.prepared.mode) {
                        (false, _) => Partial::None,
                        (true, _) if !typed => Partial::Visible,
                        (true, output::OutputMode::Tool) => Partial::FinalAnswerTool,
                        (true, _) => Partial::Text,
                    };
                    let step = Step { ctx: self.ctx, turn, role: call.role, partial };
                    let compaction = self.parts.prepared.compaction.as_ref();
                    let (mut response, cost) = match (self.ctx.governed(), compaction) {
                        (None, None) => call_model(&models, &call.request, step).await?,
                        // Boxed: a call without governance or compaction stays as it was.
                        (governed, compaction) => {
                            Box::pin(self.compacted_call(governed, compaction, &models, call, step)).await?
                        }
                    };
                    if let Some(d) = self.durable {
                        response = Box::pin(d.record_model(turn, messages, response)).await?;
                    }
                    (response, cost)
                }
            };
            self.count(|t| {
                t.usage += response.usage;
                t.cost = t.cost.and_then(|c| cost.map(|n| c + n));
                t.turns += 1;
            });
            Ok(ModelTurn { turn, response })
        }
    }

    /// A model call on the conversation compacted to its budget (when it is over), governed
    /// when the run is.
    async fn compacted_call(
        &self,
        governed: Option<&Arc<crate::governance::hook::Governed>>,
        compaction: Option<&crate::agent::Compaction>,
        models: &Models<'_>,
        call: ModelCall<'_>,
        step: Step<'_>,
    ) -> Result<(ModelResponse, Option<f64>), Error> {
        let compacted = compaction.and_then(|c| c.apply(call.request.messages));
        if let Some(c) = &compacted {
            self.ctx.emit(|| EventKind::Compacted {
                turn: step.turn,
                dropped: c.dropped,
                truncated: c.truncated,
                tokens_before: c.tokens_before,
                tokens_after: c.tokens_after,
            });
        }
        let mut call = call;
        if let Some(c) = &compacted {
            call.request.messages = &c.messages;
        }
        match governed {
            Some(g) => self.governed_call(g, models, &call, step).await,
            None => Ok(call_model(models, &call.request, step).await?),
        }
    }

    /// One model call of a governed run: rate limits and the budget before it, the output
    /// guardrails and the budget after it — all before the journal, so what a guardrail
    /// removes is never recorded.
    async fn governed_call(
        &self,
        governed: &crate::governance::hook::Governed,
        models: &Models<'_>,
        call: &ModelCall<'_>,
        mut step: Step<'_>,
    ) -> Result<(ModelResponse, Option<f64>), Error> {
        let request = &call.request;
        governed
            .before_model(self.ctx, models.primary.name(), request)
            .await
            .map_err(|stop| self.stopped(stop, request, None))?;
        // An answer the output guardrails check is not shown before they have.
        if call.answer && governed.gov.has_guards(crate::governance::Stage::Output) {
            step.partial = Partial::None;
        }
        let (mut response, cost) = call_model(models, request, step).await?;
        match governed.after_model(self.ctx, &mut response, cost, call.answer).await {
            Ok(()) => Ok((response, cost)),
            Err(stop) => Err(self.stopped(stop, request, Some(&response))),
        }
    }

    /// The error of a governance stop at a model call: the run's partial with the request's
    /// conversation, and the answer when it is kept (a budget passed by the call; not an answer
    /// a guardrail blocked).
    #[cold]
    fn stopped(
        &self,
        stop: crate::governance::hook::Stop,
        request: &ModelRequest<'_>,
        response: Option<&ModelResponse>,
    ) -> Error {
        let tally = self.tally();
        let mut partial = crate::governance::hook::partial_of(self.ctx, tally.usage, tally.turns, tally.tool_calls);
        partial.messages = request.messages.to_vec();
        if let Some(response) = response.filter(|_| !stop.is_guard()) {
            partial.messages.push(Message::Assistant {
                content: Content::Text(response.text.clone()),
                tool_calls: response.tool_calls.clone(),
            });
            partial.usage += response.usage;
            partial.turns += 1;
        }
        stop.into_error(partial)
    }

    /// Runs tool calls that model call `turn` asked for (or an architecture planned), through
    /// the spine: concurrently on this task, each with its events and span, and journaled by
    /// `(turn, call id)` — a resumed run gets recorded results back, and an interrupted call
    /// of a tool that is not idempotent waits for a decision. Results come in call order; a
    /// tool that fails or panics gives an error result the model reads.
    pub async fn call_tools(&self, turn: u32, calls: &[ToolCall]) -> Result<Vec<ToolResult>, Error> {
        self.count(|t| t.tool_calls += calls.len() as u32);
        run_tools(self.parts.tools, self.ctx, calls, turn, self.durable).await
    }

    /// Records that call `turn` and everything it asked for are complete: a checkpoint the run
    /// can be resumed or forked from.
    pub async fn checkpoint(&self, turn: u32) -> Result<(), Error> {
        match self.durable {
            Some(d) => Box::pin(d.turn_finished(turn)).await,
            None => Ok(()),
        }
    }

    /// Runs `agent` on `input` as a child of this run: same user, this run as its parent (on
    /// its events too), the session `session` says, and its usage and cost counted in this
    /// run's. In a journaled run the child's id is derived from this run's, the role and the
    /// child's order, so a resumed run replays the child's journal instead of running it again.
    pub fn run_agent<'a, O: Send + Sync + 'static>(
        &'a self,
        role: &'a str,
        agent: &'a Agent<O>,
        input: impl Into<Content>,
        session: ChildSession<'a>,
    ) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + 'a {
        let n = self.next_child.fetch_add(1, Ordering::Relaxed);
        self.run_child(ChildKey::Order(role, n), agent, input.into(), session)
    }

    /// Runs `agent` as a child of this run (see [`run_agent`](Self::run_agent)), its id keyed
    /// by `key`.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn run_child<'a, O: Send + Sync + 'static>(
        &'a self,
        key: ChildKey<'a>,
        agent: &'a Agent<O>,
        input: Content,
        session: ChildSession<'a>,
    ) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + 'a {
        async move {
            let ctx = self.child_context(key, session);
            let ctx = agent.__prepare(ctx);
            let result = Box::pin(crate::agent::run_future(agent, AgentInput::Message(input), ctx)).await?;
            self.count(|t| {
                t.usage += result.usage;
                t.cost = t.cost.and_then(|c| result.cost_usd.map(|n| c + n));
            });
            Ok(result)
        }
    }

    /// Does `work` — a team member's run, or anything an architecture wants done once — as a
    /// journaled step of this run: a resumed run gets the recorded text back instead of doing
    /// it again; work interrupted by a crash is done again (a member with a journal of its own
    /// resumes its run, its id being derived from this one's). A failure is returned, not
    /// recorded. The step's number is taken when this is called, so steps started together
    /// keep their numbers on every run.
    pub(crate) fn journaled<'a, F>(
        &'a self,
        step: String,
        work: impl FnOnce() -> F + Send + 'a,
    ) -> impl Future<Output = Result<String, Error>> + Send + 'a
    where
        F: Future<Output = Result<String, Error>> + Send + 'a,
    {
        let turn = self.reserve(1);
        async move {
            let Some(d) = self.durable else { return work().await };
            let call = ToolCall::new(step, MEMBER_STEP, "");
            let id = call.id.clone();
            let done = Box::pin(d.fallible_step(self.ctx, turn, &call, true, || async move {
                Ok(ToolResult::ok(id, MEMBER_STEP, work().await?))
            }))
            .await?;
            Ok(done.content.text().into_owned())
        }
    }

    /// Runs team member `member` (the `n`-th run of `name` in this run) on `input` as a
    /// journaled step: its answer's text.
    pub(crate) fn member<'a>(
        &'a self,
        name: &'a str,
        n: u32,
        member: &'a dyn super::role::Member,
        input: Content,
        session: ChildSession<'a>,
    ) -> impl Future<Output = Result<String, Error>> + Send + 'a {
        self.journaled(format!("{name}#{n}"), move || member.answer(self, ChildKey::Order(name, n), input, session))
    }

    /// The context of the nested run `key`.
    fn child_context(&self, key: ChildKey<'_>, session: ChildSession<'_>) -> RunContext {
        let mut ctx = self.ctx.child().with_session(match (session, self.ctx.session()) {
            (ChildSession::Sub(name), Some(s)) => Some(s.sub(name)),
            (ChildSession::Shared, s) => s.cloned(),
            _ => None,
        });
        if self.durable.is_some() {
            let id = match key {
                ChildKey::Order(role, n) => RunId::derived(self.ctx.run_id(), role, 0, n),
                ChildKey::Call { role, turn, call } => {
                    RunId::derived(self.ctx.run_id(), &format!("{role}\0{call}"), turn, 1)
                }
            };
            ctx = ctx.with_run_id(id);
            ctx.derived = true;
        }
        ctx
    }

    /// Asks `role` for a typed control message (a plan, a route, a critique, a decision):
    /// the schema of `T` goes with the request (the provider's structured output when the
    /// model has it, else in the system prompt), the answer is parsed leniently (prose and
    /// fences around the JSON are fine), and a bad answer goes back once with what was wrong.
    /// An answer still bad is `Ok(Err(..))`, every attempt kept, for the architecture's
    /// documented fallback; a failed model call is `Err`.
    pub fn ask<'a, T: OutputType>(
        &'a self,
        role: &'a str,
        model: Option<&'a dyn Model>,
        messages: Vec<Message>,
    ) -> impl Future<Output = Result<Result<T, OutputError>, Error>> + Send + 'a {
        // The question and its one retry are numbered now: asked concurrently with others,
        // they get the same numbers on every run.
        let base = self.reserve(ASK_ATTEMPTS);
        self.ask_at(base, role, model, messages, |_: &T| Ok(()))
    }

    /// [`ask`](Self::ask), with a check of the parsed value beyond its type (a route that
    /// exists, a worker the team has, a plan whose steps can run): a value the check refuses
    /// goes back like a parse error, with the check's message.
    pub fn ask_checked<'a, T: OutputType>(
        &'a self,
        role: &'a str,
        model: Option<&'a dyn Model>,
        messages: Vec<Message>,
        check: impl Fn(&T) -> Result<(), String> + Send + Sync + 'a,
    ) -> impl Future<Output = Result<Result<T, OutputError>, Error>> + Send + 'a {
        let base = self.reserve(ASK_ATTEMPTS);
        self.ask_at(base, role, model, messages, check)
    }

    async fn ask_at<T: OutputType>(
        &self,
        base: u32,
        role: &str,
        model: Option<&dyn Model>,
        messages: Vec<Message>,
        check: impl Fn(&T) -> Result<(), String> + Send + Sync,
    ) -> Result<Result<T, OutputError>, Error> {
        let schema = OutputSchema::of::<T>();
        let native = model.unwrap_or(self.parts.model).capabilities().native_structured_output;
        let format = native.then(|| output::response_format(&schema));
        let mut messages = if native { messages } else { with_directive(messages, &schema) };
        let mut attempts = Vec::new();
        for attempt in 0..ASK_ATTEMPTS {
            let request = ModelRequest::new(&messages)
                .with_response_format(format.as_ref())
                .with_settings(self.parts.settings)
                .with_user(self.ctx.user());
            let answered = self.call_model_at(base + attempt, ModelCall::new(role, request).with_model(model)).await?;
            let text = answered.response.text.to_string();
            match output::parse_as::<T>(&text, schema.is_wrapped()).and_then(|v| check(&v).map(|()| v)) {
                Ok(value) => return Ok(Ok(value)),
                Err(problem) => {
                    self.emit(
                        "control.rejected",
                        || serde_json::json!({"role": role, "attempt": attempt + 1, "error": &problem}),
                    );
                    attempts.push(OutputAttempt::new(text.clone(), problem.clone()));
                    messages.push(Message::assistant(text));
                    messages.push(Message::user(output::feedback(&problem, output::OutputMode::Prompted)));
                }
            }
        }
        Ok(Err(OutputError::new(schema.name(), attempts)))
    }
}

/// What a nested run's id is derived from, so a resumed parent finds its children again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChildKey<'a> {
    /// The `n`-th child of `role`, counted when the run is started.
    Order(&'a str, u32),
    /// The child a tool call of model call `turn` started (a delegation, a handoff): keyed by
    /// the call, whenever the run gets to start it.
    Call { role: &'a str, turn: u32, call: &'a str },
}

/// The name of a team member's run in the journal.
const MEMBER_STEP: &str = "loom.member";

/// How many times a typed question is asked: once, and once more with what was wrong.
const ASK_ATTEMPTS: u32 = 2;

/// `messages` with the instruction to answer in JSON of `schema` in the system prompt.
fn with_directive(messages: Vec<Message>, schema: &OutputSchema) -> Vec<Message> {
    with_system(messages, schema.directive())
}

/// `messages` with `text` added to the system prompt (or as one, when there is none).
pub(crate) fn with_system(mut messages: Vec<Message>, text: &str) -> Vec<Message> {
    match messages.first_mut() {
        // The agent's own prompt has the instruction already (a prompted typed output).
        Some(Message::System { content }) if content.contains(text) => {}
        Some(Message::System { content }) => *content = Arc::from(format!("{content}\n\n{text}")),
        _ => messages.insert(0, Message::system(text)),
    }
    messages
}

/// Runs the calls of one turn concurrently on this task; results come back in call order.
/// With a journal, each call is recorded (or replayed) as it goes; when one fails to record,
/// the others still run to their end and are recorded (a call cut off after it started would
/// be left for a decision on resume), and the run fails with the first error.
async fn run_tools(
    tools: &ToolSet,
    ctx: &RunContext,
    calls: &[ToolCall],
    turn: u32,
    durable: Option<&Durable>,
) -> Result<Vec<ToolResult>, Error> {
    if let Some(d) = durable {
        let outcomes =
            Box::pin(futures::future::join_all(calls.iter().map(|call| d.tool(tools, ctx, turn, call)))).await;
        return outcomes.into_iter().collect();
    }
    match calls {
        [] => Ok(Vec::new()),
        [one] => Ok(vec![dispatch(tools, ctx, one).await?]),
        many => {
            futures::future::join_all(many.iter().map(|call| dispatch(tools, ctx, call))).await.into_iter().collect()
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<AgentRun<'static>>();
}
