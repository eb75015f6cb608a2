//! The ReAct loop: call the model, run the tools it asks for, repeat until it answers.

use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt as _, StreamExt as _};
use tracing::Instrument as _;

use super::durable::{AgentInput, Durable};
use super::{Agent, RunResult};
use crate::context::RunContext;
use crate::error::{ConfigError, Error, PartialRun, RunError};
use crate::event::EventKind;
use crate::model::{
    Content, Message, Model, ModelError, ModelRequest, ModelResponse, ResponseAccumulator, RetryDecision, RetryPolicy,
    StreamEvent, ToolCall, ToolResult, Usage, pricing,
};
use crate::output::{self, FINAL_ANSWER_TOOL, OutputAttempt, OutputError, OutputMode};
use crate::session::{RunKey, RunKind, run_to_resume};
use crate::tool::{ToolSet, dispatch};

/// Runs `agent` on `input` within `ctx`.
pub(crate) fn run<'a, O>(
    agent: &'a Agent<O>,
    input: AgentInput,
    ctx: RunContext,
) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + 'a
where
    O: Send + Sync + 'static,
{
    let span = tracing::info_span!(
        "loom.run",
        run_id = %ctx.run_id(),
        agent = agent.name.as_deref().unwrap_or(""),
        user = %ctx.user(),
    );
    // A context to report a failure with, kept (boxed, off the run's future) only when someone
    // listens.
    let observer = ctx.is_observed().then(|| Box::new(ctx.clone()));
    // Combinators, not another `async fn` around the run: the run's future is moved once.
    run_durably(agent, input, ctx, Instant::now())
        .inspect(move |outcome| {
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
        let (content, messages, durable) = begin(agent, input, &mut ctx).await?;
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
        Err(e) if !matches!(e, Error::Run(RunError::NeedsDecision { .. } | RunError::LeaseLost { .. })) => {
            durable.failed(e).await;
        }
        // An interrupted call waits for a decision; the run stays resumable.
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
        let prepared = agent.prepared();
        ctx.emit(|| EventKind::RunStarted {
            name: agent.name.clone(),
            user: ctx.user().clone(),
            session: ctx.session().cloned(),
            parent: ctx.parent(),
        });

        let input_index = messages.len();
        messages.push(Message::User { content: input });

        let models = Models { primary: model, fallbacks: &agent.fallbacks, retry: &agent.retry };
        let mut usage = Usage::default();
        let mut cost = Some(0.0);
        let mut turns: u32 = 0;
        let mut tool_calls: u32 = 0;
        let mut rejected: Vec<OutputAttempt> = Vec::new();
        // After a rejected answer, the next turn only asks for the corrected answer.
        let mut retrying = false;

        let output = loop {
            if turns >= agent.max_turns && !retrying {
                return Err(RunError::MaxTurnsExceeded {
                    max_turns: agent.max_turns,
                    partial: Box::new(PartialRun { run_id: ctx.run_id(), messages, usage, turns, tool_calls }),
                }
                .into());
            }
            turns += 1;
            let request = if retrying {
                ModelRequest::new(&messages)
                    .with_tools(&prepared.retry_tools)
                    .with_tool_choice(&prepared.retry_choice)
                    .with_response_format(prepared.format.as_ref())
            } else {
                ModelRequest::new(&messages)
                    .with_tools(&prepared.tools)
                    .with_tool_choice(&prepared.tool_choice)
                    .with_response_format(prepared.format.as_ref().filter(|_| prepared.format_on_normal_turns))
            }
            .with_settings(&agent.settings)
            .with_user(ctx.user());
            let partial = match prepared.mode {
                _ if !agent.output.is_typed() => Partial::None,
                OutputMode::Tool => Partial::FinalAnswerTool,
                _ => Partial::Text,
            };
            // Boxed, as it is rare: an `Option<ModelResponse>` would sit in the run's future
            // across the model call.
            let replayed = match durable {
                Some(d) => d.replayed_model(turns, messages.len())?.map(Box::new),
                None => None,
            };
            let (response, call_cost) = match replayed {
                Some(response) => {
                    ctx.emit(|| EventKind::StepReplayed { step: format!("model turn {turns}") });
                    priced(model, *response)
                }
                None => {
                    let (mut response, cost) = call_model(&models, &request, ctx, turns, partial).await?;
                    if let Some(d) = durable {
                        response = Box::pin(d.record_model(turns, messages.len(), response)).await?;
                    }
                    (response, cost)
                }
            };
            usage += response.usage;
            cost = cost.and_then(|c| call_cost.map(|n| c + n));
            // Into the conversation at once: the response is never borrowed, so the run's future
            // keeps no slot for it across the awaits below.
            messages.push(response.into_message());
            let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
            let final_call = match prepared.mode {
                OutputMode::Tool => calls.iter().position(|c| c.name == FINAL_ANSWER_TOOL),
                _ => None,
            };
            if calls.is_empty() || final_call.is_some() {
                // The answer as the conversation keeps it: the text, or the final call's arguments.
                let answer = match (messages.last(), final_call) {
                    (Some(Message::Assistant { content: Content::Text(text), .. }), None) => text.as_str(),
                    (Some(last), Some(i)) => last.tool_calls().get(i).map_or("", |c| c.arguments.as_str()),
                    _ => "",
                };
                match agent.output.accept(answer) {
                    Ok(value) => {
                        if final_call.is_some() {
                            let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
                            let closing = close_calls(calls, "Final answer received.");
                            messages.extend(closing);
                        }
                        break value;
                    }
                    Err(problem) => {
                        rejected.push(OutputAttempt::new(answer.to_owned(), problem.clone()));
                        let attempt = rejected.len() as u32;
                        ctx.emit(|| EventKind::OutputRejected { attempt, error: problem.clone() });
                        if attempt > agent.output.retries {
                            return Err(OutputError::new(
                                agent.output.schema.as_ref().map_or("output", |s| s.name()),
                                rejected,
                            )
                            .into());
                        }
                        let feedback = output::feedback(&problem, prepared.mode);
                        match final_call {
                            Some(i) => {
                                // Answer every call of the turn: the final answer with the
                                // problem, the others by running them.
                                let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
                                let others: Vec<ToolCall> =
                                    calls.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c.clone()).collect();
                                let final_id = calls[i].id.clone();
                                tool_calls += others.len() as u32;
                                let mut results = run_tools(&agent.tools, ctx, &others, turns, durable).await?;
                                results.insert(
                                    i.min(results.len()),
                                    ToolResult::error(final_id, FINAL_ANSWER_TOOL, feedback),
                                );
                                messages.extend(results.into_iter().map(Message::Tool));
                            }
                            None => messages.push(Message::user(feedback)),
                        }
                        if let Some(d) = durable {
                            Box::pin(d.turn_finished(turns)).await?;
                        }
                        retrying = true;
                        continue;
                    }
                }
            }
            retrying = false;
            let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
            tool_calls += calls.len() as u32;
            let results = run_tools(&agent.tools, ctx, calls, turns, durable).await?;
            messages.extend(results.into_iter().map(Message::Tool));
            if let Some(d) = durable {
                Box::pin(d.turn_finished(turns)).await?;
            }
        };

        if let Some(session) = ctx.session() {
            agent.sessions.append(ctx.user(), session, ctx.run_id(), &messages[input_index..]).await?;
        }
        let duration = started.elapsed();
        ctx.emit(|| EventKind::RunFinished { turns, tool_calls, usage, duration });
        Ok(RunResult {
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
            input_index,
        })
    }
}

/// Tool results that close the calls of a turn that ended the run (so the conversation stays
/// valid for providers that require a result for every call).
fn close_calls(calls: &[ToolCall], final_text: &str) -> Vec<Message> {
    calls
        .iter()
        .map(|c| {
            Message::Tool(if c.name == FINAL_ANSWER_TOOL {
                ToolResult::ok(c.id.clone(), c.name.clone(), final_text)
            } else {
                ToolResult::error(c.id.clone(), c.name.clone(), "Not run: the final answer ended the turn.")
            })
        })
        .collect()
}

/// Where a streamed typed output arrives, to report it as it fills in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partial {
    /// Not a typed output.
    None,
    /// In the reply's text.
    Text,
    /// In the arguments of the `final_answer` call.
    FinalAnswerTool,
}

/// One model call: events, a span, and streaming when the run is streamed.
pub(crate) async fn call_model(
    models: &Models<'_>,
    request: &ModelRequest<'_>,
    ctx: &RunContext,
    turn: u32,
    partial: Partial,
) -> Result<(ModelResponse, Option<f64>), ModelError> {
    let failure = match call_once(models.primary, request, ctx, turn, partial).await {
        Ok(response) => return Ok(priced(models.primary, response)),
        Err(failure) => failure,
    };
    // Retries and fallbacks, boxed: the future of a call that succeeds stays small.
    Box::pin(recover(models, request, ctx, turn, partial, failure)).await
}

/// A response and what it cost.
fn priced(model: &dyn Model, response: ModelResponse) -> (ModelResponse, Option<f64>) {
    let cost = pricing::cost(response.model.as_deref().unwrap_or(model.name()), &response.usage);
    (response, cost)
}

/// After a failed first attempt: retries by the policy, then the fallbacks in order.
async fn recover(
    models: &Models<'_>,
    request: &ModelRequest<'_>,
    ctx: &RunContext,
    turn: u32,
    partial: Partial,
    first: (ModelError, bool),
) -> Result<(ModelResponse, Option<f64>), ModelError> {
    let mut fallbacks = models.fallbacks.iter();
    let mut model = models.primary;
    let mut failure = Some(first);
    loop {
        let mut attempt = 1;
        let error = loop {
            let outcome = match failure.take() {
                Some(failure) => Err(failure),
                None => call_once(model, request, ctx, turn, partial).await,
            };
            match outcome {
                Ok(response) => return Ok(priced(model, response)),
                Err((error, emitted)) => {
                    // A stream that already showed text is not restarted behind the
                    // listener's back.
                    let decision = if emitted { RetryDecision::Stop } else { models.retry.decide(attempt, &error) };
                    let delay = match decision {
                        RetryDecision::Retry(delay) => delay,
                        RetryDecision::WaitTooLong(wait) => {
                            let max = models.retry.max_delay;
                            let note = format!(
                                "the provider asked to wait {wait:?}, longer than the retry policy's max_delay \
                                 ({max:?}): not retried; try again after the wait, or raise max_delay"
                            );
                            break (error.with_note(note), emitted);
                        }
                        _ => break (error, emitted),
                    };
                    tracing::debug!(model = model.name(), attempt, ?delay, "retrying: {error}");
                    ctx.emit(|| EventKind::ModelRetry { turn, attempt, delay, error: error.to_string() });
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        };
        let (error, emitted) = error;
        match fallbacks.next() {
            Some(next) if error.is_transient() && !emitted => {
                tracing::warn!(from = model.name(), to = next.name(), "falling back: {error}");
                ctx.emit(|| EventKind::ModelFallback {
                    turn,
                    from: model.name().to_owned(),
                    to: next.name().to_owned(),
                    error: error.to_string(),
                });
                model = &**next;
            }
            _ => return Err(error),
        }
    }
}

/// The models of a run: the primary, its fallbacks, and the retry policy.
pub(crate) struct Models<'a> {
    pub(crate) primary: &'a dyn Model,
    pub(crate) fallbacks: &'a [Arc<dyn Model>],
    pub(crate) retry: &'a RetryPolicy,
}

/// One attempt; on failure, also whether the stream had already emitted text.
async fn call_once(
    model: &dyn Model,
    request: &ModelRequest<'_>,
    ctx: &RunContext,
    turn: u32,
    partial: Partial,
) -> Result<ModelResponse, (ModelError, bool)> {
    ctx.emit(|| EventKind::ModelRequest {
        turn,
        model: model.name().to_owned(),
        messages: request.messages.len(),
        tools: request.tools.len(),
    });
    let span = tracing::info_span!("loom.model", model = model.name(), turn);
    let started = ctx.is_observed().then(Instant::now);
    let response = if ctx.streaming {
        Box::pin(stream_model(model, request, ctx, turn, partial)).instrument(span).await?
    } else {
        model.complete(request).instrument(span).await.map_err(|e| (e, false))?
    };
    if let Some(started) = started {
        ctx.emit(|| EventKind::ModelResponse {
            turn,
            usage: response.usage,
            finish_reason: response.finish_reason.clone(),
            tool_calls: response.tool_calls.len(),
            duration: started.elapsed(),
        });
    }
    Ok(response)
}

async fn stream_model(
    model: &dyn Model,
    request: &ModelRequest<'_>,
    ctx: &RunContext,
    turn: u32,
    partial: Partial,
) -> Result<ModelResponse, (ModelError, bool)> {
    let mut stream = model.stream(request);
    let mut emitted = false;
    let mut acc = ResponseAccumulator::new();
    let mut final_index = None;
    let mut final_arguments = String::new();
    let mut partial_json = output::PartialJson::default();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| (e, emitted))?;
        let grown = match &event {
            StreamEvent::TextDelta(text) => {
                emitted = true;
                ctx.emit(|| EventKind::TextDelta { turn, text: text.clone() });
                partial == Partial::Text
            }
            StreamEvent::ToolCallStart { index, name, .. } if name == FINAL_ANSWER_TOOL => {
                final_index = Some(*index);
                false
            }
            StreamEvent::ToolCallDelta { index, arguments } if Some(*index) == final_index => {
                final_arguments.push_str(arguments);
                partial == Partial::FinalAnswerTool
            }
            _ => false,
        };
        acc.push(&event);
        if grown {
            let so_far = if partial == Partial::Text { acc.text() } else { final_arguments.as_str() };
            if let Some(value) = partial_json.update(so_far) {
                // A partial value shown is output shown, as text is: the stream is not restarted.
                emitted = true;
                ctx.emit(|| EventKind::PartialOutput { turn, value });
            }
        }
    }
    acc.finish(model.name()).map_err(|e| (e, emitted))
}

/// Runs the calls of one turn concurrently on this task; results come back in call order.
/// With a journal, each call is recorded (or replayed) as it goes; when one fails to record,
/// the others still run to their end and are recorded (a call cut off after it started would
/// be left for a decision on resume), and the run fails with the first error.
pub(crate) async fn run_tools(
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
    Ok(match calls {
        [] => Vec::new(),
        [one] => vec![dispatch(tools, ctx, one).await],
        many => futures::future::join_all(many.iter().map(|call| dispatch(tools, ctx, call))).await,
    })
}
