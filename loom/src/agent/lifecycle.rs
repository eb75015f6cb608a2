//! The ReAct loop: call the model, run the tools it asks for, repeat until it answers.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt as _;
use tracing::Instrument as _;

use super::durable::{AgentInput, Durable};
use super::prepared::DynamicTools;
use super::{Agent, RunResult};
use crate::arch::{AgentRun, ModelCall, Parts, Tally, react_default};
use crate::context::RunContext;
use crate::error::{ConfigError, Error, RunError};
use crate::event::EventKind;
use crate::model::{Content, Message, Model, ModelRequest};
use crate::output::{self, OutputAttempt, OutputError, OutputMode, Slot};
use crate::session::{RunKey, RunKind, run_to_resume};
use crate::telemetry::genai;

/// Runs `agent` on `input` within `ctx`.
pub(crate) fn run<'a, O>(
    agent: &'a Agent<O>,
    input: AgentInput,
    ctx: RunContext,
) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + 'a
where
    O: Send + Sync + 'static,
{
    // The GenAI conventions' names and attributes (`telemetry::genai`), evaluated only when a
    // subscriber enables the span.
    let span = tracing::info_span!(
        "loom.run",
        otel.name = %genai::SpanName("invoke_agent", agent.name.as_deref()),
        run_id = %ctx.run_id(),
        agent = agent.name.as_deref().unwrap_or(""),
        user = %ctx.user(),
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = agent.name.as_deref(),
        gen_ai.conversation.id = ctx.session().map(tracing::field::display),
        gen_ai.request.model = agent.model.as_deref().map(|m| m.name()),
        gen_ai.provider.name = agent.model.as_deref().and_then(|m| genai::provider_name(m.name())),
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        gen_ai.usage.cache_read.input_tokens = tracing::field::Empty,
        gen_ai.usage.cache_creation.input_tokens = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    genai::run_started(&span, &ctx, &input);
    // A context to report a failure with, kept (boxed, off the run's future) only when someone
    // listens.
    let observer = ctx.is_observed().then(|| Box::new(ctx.clone()));
    // Combinators, not another `async fn` around the run: the run's future is moved once.
    run_durably(agent, input, ctx, Instant::now())
        .inspect(move |outcome| {
            genai::run_finished(outcome);
            if let (Err(e), Some(ctx)) = (outcome, observer) {
                ctx.emit(|| EventKind::Error { message: e.to_string(), transient: e.is_transient() });
            }
        })
        .instrument(span)
}

/// A run's input, its conversation so far, and its journal.
type Beginning = (Content, Vec<Message>, Option<Box<Durable>>);

/// How the run begins: its input, the conversation so far (the system prompt and the session's
/// history), and its journal when the agent has one; a resumed run's id goes into `ctx`.
///
/// The `async` functions of the run are written as `fn .. -> impl Future` around an `async move`
/// block: an `async fn` keeps a copy of each argument next to the argument itself, which would
/// make every run's future (boxed once per run) larger.
#[allow(clippy::manual_async_fn)]
fn begin<'a, 'c, O>(
    agent: &'a Agent<O>,
    input: AgentInput,
    ctx: &'c mut RunContext,
) -> impl Future<Output = Result<Beginning, Error>> + Send + 'c
where
    'a: 'c,
    O: Send + Sync + 'static,
{
    async move {
        let journal = agent.journal.as_ref();
        match input {
            AgentInput::Message(content) => {
                if ctx.derived && journal.is_some() && ctx.session().is_some() {
                    // A run nested in a journaled workflow whose id is derived from the workflow
                    // run's: when the workflow is resumed, this run may have a journal already.
                    if let Some(resumed) = Box::pin(begin_nested(agent, ctx)).await? {
                        return Ok(resumed);
                    }
                }
                let system = agent.prepared().system.as_ref();
                // Room for the input, the answer and a tool round without growing.
                let (messages, window_start) =
                    agent.sessions.conversation(ctx.user(), ctx.session(), agent.history_limit, system, 4).await?;
                let history = messages.len() - usize::from(system.is_some());
                let durable = match (journal, ctx.session()) {
                    (Some(journal), Some(session)) => {
                        let key = RunKey::new(ctx.user().clone(), session.clone(), ctx.run_id());
                        let name = agent.name.as_deref();
                        let journal = Arc::clone(journal);
                        let window = (history, window_start);
                        // Boxed, as every journal step: the future of a run without a journal stays small.
                        Some(Box::new(
                            Box::pin(Durable::start(journal, key, agent.lease_ttl, &content, window, name)).await?,
                        ))
                    }
                    _ => None,
                };
                Ok((content, messages, durable))
            }
            AgentInput::Resume { run, decisions } => Box::pin(begin_resumed(agent, run, decisions, ctx)).await,
        }
    }
}

/// A nested run whose (derived) id the journal already has: it is resumed — its finished
/// model and tool calls replayed — instead of started again. `None` when it is new.
async fn begin_nested<O>(agent: &Agent<O>, ctx: &mut RunContext) -> Result<Option<Beginning>, Error> {
    let (Some(journal), Some(session)) = (agent.journal.as_deref(), ctx.session()) else { return Ok(None) };
    let known = journal.runs(ctx.user(), session).await?.iter().any(|r| r.run == ctx.run_id());
    if !known {
        return Ok(None);
    }
    ctx.emit(|| EventKind::StepReplayed { step: format!("nested run {}", ctx.run_id()) });
    let run = ctx.run_id();
    Ok(Some(begin_resumed(agent, Some(run), Vec::new(), ctx).await?))
}

/// How a resumed run begins: the journal replays the finished steps.
async fn begin_resumed<O>(
    agent: &Agent<O>,
    run: Option<crate::id::RunId>,
    decisions: Vec<(String, super::durable::ToolDecision)>,
    ctx: &mut RunContext,
) -> Result<Beginning, Error> {
    let Some(journal) = agent.journal.as_ref() else {
        return Err(ConfigError::InvalidSetting {
            setting: "resume",
            reason: "the agent has no journal; give it one with `.store(..)`".to_owned(),
        }
        .into());
    };
    let Some(session) = ctx.session().cloned() else {
        return Err(ConfigError::InvalidSetting {
            setting: "resume",
            reason: "a resumed run needs the session it ran in (`.session(..)`)".to_owned(),
        }
        .into());
    };
    let run = run_to_resume(&**journal, ctx.user(), &session, run, RunKind::Agent, ctx.run_id()).await?;
    *ctx = ctx.clone().with_run_id(run);
    let key = RunKey::new(ctx.user().clone(), session.clone(), run);
    let (durable, resumed) = Durable::resume(Arc::clone(journal), key, agent.lease_ttl, decisions).await?;
    let mut history = match agent.sessions.store().load(ctx.user(), &session, None).await {
        Ok(history) => history,
        Err(e) => {
            durable.give_back().await;
            return Err(e.into());
        }
    };
    // The same window of history the run saw when it started, wherever the session is now.
    let end = resumed.window_start.saturating_add(resumed.history);
    if history.len() < end {
        durable.give_back().await;
        return Err(RunError::JournalMismatch {
            run_id: run,
            detail: format!(
                "the run started after {end} messages of session history; the session now has {}",
                history.len()
            ),
        }
        .into());
    }
    history.truncate(end);
    let mut messages = Vec::with_capacity(resumed.history + 5);
    messages.extend(agent.prepared().system.iter().cloned());
    messages.extend(history.drain(resumed.window_start..));
    Ok((resumed.input, messages, Some(Box::new(durable))))
}

#[allow(clippy::manual_async_fn)]
fn run_durably<O>(
    agent: &Agent<O>,
    input: AgentInput,
    mut ctx: RunContext,
    started: Instant,
) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + '_
where
    O: Send + Sync + 'static,
{
    async move {
        agent.check()?;
        let Some(model) = agent.model.as_deref() else {
            return Err(ConfigError::NoModel { agent: None }.into());
        };
        let input = match (ctx.governed(), input) {
            // The input guardrails see the input before anything is journaled (boxed: a run
            // without them pays nothing).
            (Some(g), AgentInput::Message(content)) => {
                AgentInput::Message(Box::pin(g.input(&ctx, content)).await.map_err(|stop| {
                    stop.into_error(crate::governance::hook::partial_of(&ctx, Default::default(), 0, 0))
                })?)
            }
            (_, input) => input,
        };
        let (content, messages, durable) = begin(agent, input, &mut ctx).await?;
        // An agent with tool sources (MCP servers) offers their tools as they are now; the
        // snapshot stays in the run's context, off the run's future.
        if let Some(tools) = agent.dynamic_tools() {
            ctx.keep(tools);
        }
        let run = turns(agent, model, content, messages, &ctx, durable.as_deref(), started);
        let outcome = match durable.as_deref() {
            // A journaled run keeps its lease alive while it runs (boxed: a run without a
            // journal pays nothing for it).
            Some(d) => Box::pin(d.writer().keep_alive(run)).await,
            None => run.await,
        };
        match durable {
            // The outcome moves into the boxed future: the run's future does not keep a slot for it.
            Some(durable) => Box::pin(conclude(*durable, outcome)).await,
            None => outcome,
        }
    }
}

/// Records how a journaled run ended, and returns the outcome.
async fn conclude<O>(durable: Durable, outcome: Result<RunResult<O>, Error>) -> Result<RunResult<O>, Error> {
    match &outcome {
        Ok(_) => durable.finished().await?,
        Err(e)
            if !matches!(
                e,
                Error::Run(
                    RunError::NeedsDecision { .. } | RunError::ApprovalPending { .. } | RunError::LeaseLost { .. }
                )
            ) =>
        {
            durable.failed(e).await;
        }
        // An interrupted call, or one waiting for approval, waits for a decision; the run
        // stays resumable.
        Err(_) => durable.release().await,
    }
    outcome
}

#[allow(clippy::manual_async_fn)]
fn turns<'a, O>(
    agent: &'a Agent<O>,
    model: &'a dyn Model,
    input: Content,
    mut messages: Vec<Message>,
    ctx: &'a RunContext,
    durable: Option<&'a Durable>,
    started: Instant,
) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + 'a
where
    O: Send + Sync + 'static,
{
    async move {
        ctx.emit(|| EventKind::RunStarted {
            name: agent.name.clone(),
            user: ctx.user().clone(),
            session: ctx.session().cloned(),
            parent: ctx.parent(),
        });
        if let Some(memory) = &agent.memory {
            // Boxed, as memory is rare: a run without it pays nothing.
            Box::pin(memory.recall_into(ctx, &input, &mut messages)).await?;
        }
        let mut slot = Slot::new(&agent.output);
        // Built in a block, so what only builds it is not kept in the run's future.
        let mut run = {
            let input_index = messages.len();
            messages.push(Message::User { content: input });
            let dynamic = if agent.has_tool_sources() { ctx.kept::<DynamicTools>() } else { None };
            let (tools, prepared) = match dynamic {
                Some(d) => (d.prepared.tool_set(&d.tools), &d.prepared),
                None => (agent.prepared().tool_set(&agent.tools), agent.prepared()),
            };
            let parts = Parts {
                name: agent.name.as_ref(),
                instructions: &agent.instructions,
                model,
                shared_model: agent.model.as_ref(),
                fallbacks: &agent.fallbacks,
                retry: &agent.retry,
                settings: &agent.settings,
                tools,
                sessions: &agent.sessions,
                prepared,
                max_turns: agent.max_turns,
                memory: agent.memory.as_deref().map(|m| &m.memory),
            };
            AgentRun::new(parts, ctx, durable, messages, input_index, Some(&mut slot))
        };
        match &agent.architecture {
            // The default loop is called directly: no box, no dynamic call.
            None => react_default(&mut run).await?,
            Some(architecture) => {
                let text = architecture.run(&mut run).await?;
                Box::pin(settle(&mut run, text)).await?;
            }
        }
        let input_index = run.input_index;
        let (messages, tally) = run.into_conversation();
        let Some(output) = slot.value else {
            return Err(
                RunError::NotResumable { run_id: ctx.run_id(), reason: "the run gave no answer".to_owned() }.into()
            );
        };
        if let Some(session) = ctx.session() {
            agent.sessions.append(ctx.user(), session, ctx.run_id(), &messages[input_index..]).await?;
        }
        let duration = started.elapsed();
        let Tally { usage, cost, turns, tool_calls, exit } = tally;
        let result = RunResult {
            output,
            messages,
            usage,
            turns,
            tool_calls,
            run_id: ctx.run_id(),
            user: ctx.user().clone(),
            session: ctx.session().cloned(),
            duration,
            cost_usd: cost,
            exit,
            input_index,
        };
        let result = match &agent.memory {
            Some(memory) => Box::pin(memory.keep(ctx, result)).await?,
            None => result,
        };
        ctx.emit(|| EventKind::RunFinished {
            turns: result.turns,
            tool_calls: result.tool_calls,
            usage: result.usage,
            duration: result.duration,
        });
        Ok(result)
    }
}

/// The answer an architecture returned, made the run's: it joins the conversation (when the
/// architecture did not add it) and is accepted as the output; a typed answer that does not
/// fit goes back to the agent's model with what is wrong, within the output retries.
async fn settle(run: &mut AgentRun<'_>, text: String) -> Result<(), Error> {
    // An answer accepted as it is returned (ReAct's) is in the conversation already.
    if run.accepted.as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    // The answer is the conversation's last word: it replaces a draft the run ended on.
    let after_input = run.messages.len() > run.input_index + 1;
    match run.messages.last_mut() {
        Some(Message::Assistant { content, tool_calls }) if after_input && tool_calls.is_empty() => {
            *content = Content::Text(text.as_str().into());
        }
        _ => run.messages.push(Message::assistant(text.as_str())),
    }
    let mut text = text;
    let mut rejected: Vec<OutputAttempt> = Vec::new();
    loop {
        let problem = match run.accept(&text) {
            Ok(()) => return Ok(()),
            Err(problem) => problem,
        };
        rejected.push(OutputAttempt::new(std::mem::take(&mut text), problem.clone()));
        let attempt = rejected.len() as u32;
        run.ctx.emit(|| EventKind::OutputRejected { attempt, error: problem.clone() });
        let (retries, type_name) =
            run.output.as_deref().map_or((0, "output".to_owned()), |o| (o.retries(), o.type_name().to_owned()));
        if attempt > retries {
            return Err(OutputError::new(&type_name, rejected).into());
        }
        run.messages.push(Message::user(output::feedback(&problem, OutputMode::Prompted)));
        let prepared = run.parts.prepared;
        let request = ModelRequest::new(&run.messages)
            .with_response_format(prepared.format.as_ref())
            .with_settings(run.parts.settings)
            .with_user(run.ctx.user());
        let answered = run.call_model(ModelCall::new("agent", request).answer()).await?;
        text = answered.response.text.to_string();
        run.messages.push(Message::assistant(text.as_str()));
    }
}
