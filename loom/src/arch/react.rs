//! ReAct: call the model, run the tools it asks for, repeat until it answers.

use std::borrow::Cow;

use futures::future::BoxFuture;

use super::Architecture;
use super::role::refuse;
use super::run::{AgentRun, ModelCall};
use crate::error::{ConfigError, Error, PartialRun, RunError};
use crate::event::EventKind;
use crate::model::{Content, Message, Model, ModelRequest, ToolCall, ToolResult};
use crate::output::{self, FINAL_ANSWER_TOOL, OutputAttempt, OutputError, OutputMode, OutputSlot};
use crate::tool::ToolDefinition;

/// The default loop: the model answers or asks for tools; the tools run (concurrently) and
/// their results go back; repeat until the model answers without a tool call.
///
/// With a typed output, the answer is parsed as the type (as the text, the arguments of a
/// `final_answer` call, or the provider's structured output) and a bad one goes back to the
/// model with what was wrong, within the agent's output retries. The loop stops at the
/// agent's [`max_turns`](crate::Agent::max_turns), or its own.
///
/// Use it when the model should decide what to do next: the general-purpose tool-using agent.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ReAct {
    /// The most model calls of one loop; `None` for the agent's `max_turns`.
    pub max_turns: Option<u32>,
}

impl ReAct {
    /// ReAct with the agent's turn limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// ReAct with a turn limit of its own.
    #[must_use]
    pub fn max_turns(mut self, max_turns: u32) -> Self {
        self.max_turns = Some(max_turns);
        self
    }
}

#[async_trait::async_trait]
impl Architecture for ReAct {
    fn name(&self) -> &str {
        "react"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_turns == Some(0), "max_turns", || "ReAct needs at least one turn")?;
        Ok(())
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        react(run, self.max_turns).await
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

/// An architecture's own tools in a ReAct loop (a supervisor's `delegate`, a swarm's
/// `handoff`): offered next to the agent's, run by the architecture, journaled like tools.
pub(crate) trait LoopTools: Send + Sync {
    /// Their definitions, as the model is shown them.
    fn definitions(&self) -> &[ToolDefinition];
    /// Whether a call of `name` is one of them.
    fn handles(&self, name: &str) -> bool;
    /// Whether running `call` again after a crash is safe (what it runs replays).
    fn idempotent(&self, call: &ToolCall) -> bool;
    /// Runs `call`, which model call `turn` asked for; a failure is an error result the
    /// model reads.
    fn call<'a>(&'a self, run: &'a AgentRun<'_>, turn: u32, call: &'a ToolCall) -> BoxFuture<'a, ToolResult>;
    /// When `call`, answered by `result`, ends the loop: the loop's answer.
    fn ends_loop(&self, call: &ToolCall, result: &ToolResult) -> Option<String> {
        let _ = (call, result);
        None
    }
    /// Sees the result of each of their calls, run now or replayed from the journal: where
    /// what a call changed (a worker spawned, a worker's last answer) is kept, so a resumed
    /// run has it too.
    fn observe(&self, call: &ToolCall, result: &ToolResult) {
        let _ = (call, result);
    }
}

/// How one ReAct loop goes.
pub(crate) struct Loop<'a> {
    /// Who the model calls are (`agent`, `manager` ...).
    pub(crate) role: &'a str,
    /// The most model calls.
    pub(crate) max_turns: u32,
    /// The architecture's own tools, if any.
    pub(crate) extra: Option<&'a dyn LoopTools>,
    /// The loop's model, when not the agent's.
    pub(crate) model: Option<&'a dyn Model>,
    /// The first number of the block of model calls reserved for the loop (`max_turns` of
    /// them); `None` numbers each call as it is made (a loop that runs alone).
    pub(crate) base: Option<u32>,
    /// Whether the caller wants the answer's text back (not when it is the run's output
    /// already).
    pub(crate) keep_answer: bool,
}

impl Loop<'_> {
    /// The agent's own loop: its turns, its model, its tools.
    pub(crate) fn agent(max_turns: u32) -> Self {
        Self { role: "agent", max_turns, extra: None, model: None, base: None, keep_answer: true }
    }
}

/// ReAct on the run's own conversation, with its output: the default loop.
pub(crate) async fn react(run: &mut AgentRun<'_>, max_turns: Option<u32>) -> Result<String, Error> {
    let max_turns = max_turns.unwrap_or(run.parts.max_turns);
    react_with(run, Loop::agent(max_turns)).await
}

/// ReAct on the run's own conversation, with its output, as `lp` says; the answer is recorded
/// as accepted, for an architecture that returns it (or another).
pub(crate) async fn react_with(run: &mut AgentRun<'_>, lp: Loop<'_>) -> Result<String, Error> {
    let outcome = react_unrecorded(run, lp).await;
    if let Ok(answer) = &outcome {
        run.accepted = Some(answer.clone());
    }
    outcome
}

/// ReAct on the run's own conversation, with its output.
#[allow(clippy::manual_async_fn)]
fn react_unrecorded<'a, 'r>(
    run: &'a mut AgentRun<'r>,
    lp: Loop<'a>,
) -> impl Future<Output = Result<String, Error>> + Send + 'a {
    async move {
        let mut messages = std::mem::take(&mut run.messages);
        let mut output = run.output.take();
        let outcome = react_on(run, &mut messages, output.as_deref_mut(), &lp).await;
        run.messages = messages;
        run.output = output;
        outcome
    }
}

/// The agent's default loop, the whole run: the answer is the run's output already, so its
/// text is not kept.
#[allow(clippy::manual_async_fn)]
pub(crate) fn react_default<'a, 'r>(run: &'a mut AgentRun<'r>) -> impl Future<Output = Result<(), Error>> + Send + 'a {
    async move {
        let mut messages = std::mem::take(&mut run.messages);
        let mut output = run.output.take();
        let lp = Loop { keep_answer: false, ..Loop::agent(run.parts.max_turns) };
        // Boxed: the run's own future (boxed once, by the runner) stays under a kilobyte,
        // which the allocator serves from its small bins.
        let outcome = Box::pin(react_on(run, &mut messages, output.as_deref_mut(), &lp)).await;
        run.messages = messages;
        run.output = output;
        outcome.map(drop)
    }
}

/// The ReAct loop on `messages`, through `run`. With `output`, the answer is accepted as the
/// run's output (typed modes, corrections); without, it is the last text. Returns the
/// answer's text.
///
/// Written as `fn -> impl Future` around an `async move` block, as the agent's other run
/// functions: the future, inside every run's box, stays small.
#[allow(clippy::manual_async_fn)]
pub(crate) fn react_on<'a, 'r: 'a, 's: 'a>(
    run: &'a AgentRun<'r>,
    messages: &'a mut Vec<Message>,
    mut output: Option<&'a mut (dyn OutputSlot + 's)>,
    lp: &'a Loop<'a>,
) -> impl Future<Output = Result<String, Error>> + Send + 'a {
    async move {
        let prepared = run.parts.prepared;
        // A loop that gives the run's typed output offers what the output mode needs; any
        // other offers the agent's tools as they are.
        let typed = output.as_ref().is_some_and(|o| o.is_typed());
        let own: &[ToolDefinition] = if output.is_some() { &prepared.tools } else { run.parts.tools.definitions() };
        let offered: Cow<'_, [ToolDefinition]> = match lp.extra {
            Some(extra) => Cow::Owned(own.iter().chain(extra.definitions()).cloned().collect()),
            None => Cow::Borrowed(own),
        };
        let mode = if typed { prepared.mode } else { OutputMode::Auto };
        let mut turns: u32 = 0;
        let mut rejected: Vec<OutputAttempt> = Vec::new();
        // After a rejected answer, the next turn only asks for the corrected answer.
        let mut retrying = false;
        loop {
            if turns >= lp.max_turns && !retrying {
                let tally = run.tally();
                return Err(RunError::MaxTurnsExceeded {
                    max_turns: lp.max_turns,
                    partial: Box::new(PartialRun {
                        run_id: run.ctx.run_id(),
                        messages: std::mem::take(messages),
                        usage: tally.usage,
                        turns: tally.turns,
                        tool_calls: tally.tool_calls,
                    }),
                }
                .into());
            }
            turns += 1;
            // With tool search, the definitions this turn offers (none without: nothing paid).
            #[cfg(feature = "tools")]
            let narrowed = match &prepared.search {
                Some(search) if !retrying => Some(search.offer(&offered, messages)),
                _ => None,
            };
            #[cfg(not(feature = "tools"))]
            let narrowed: Option<Vec<ToolDefinition>> = None;
            let request = if retrying {
                ModelRequest::new(messages)
                    .with_tools(&prepared.retry_tools)
                    .with_tool_choice(&prepared.retry_choice)
                    .with_response_format(prepared.format.as_ref())
            } else if output.is_some() {
                ModelRequest::new(messages)
                    .with_tools(offer(&narrowed, &offered))
                    .with_tool_choice(&prepared.tool_choice)
                    .with_response_format(prepared.format.as_ref().filter(|_| prepared.format_on_normal_turns))
            } else {
                ModelRequest::new(messages).with_tools(offer(&narrowed, &offered))
            }
            .with_settings(run.parts.settings)
            .with_user(run.ctx.user());
            let call = ModelCall::new(lp.role, request).with_model(lp.model);
            let call = if output.is_some() { call.answer() } else { call };
            let answered = match lp.base {
                // Within the reserved block: `turns` is at most `max_turns` here.
                Some(base) => run.call_model_at(base + turns - 1, call).await?,
                None => run.call_model(call).await?,
            };
            let turn = answered.turn;
            // Into the conversation at once: the response is never borrowed, so the future
            // keeps no slot for it across the awaits below.
            messages.push(answered.response.into_message());
            let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
            let final_call = match mode {
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
                let Some(slot) = output.as_deref_mut() else { return Ok(answer.to_owned()) };
                match slot.accept(answer) {
                    Ok(()) => {
                        let answer = if lp.keep_answer { answer.to_owned() } else { String::new() };
                        if final_call.is_some() {
                            let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
                            let closing = close_calls(calls, "Final answer received.");
                            messages.extend(closing);
                        }
                        return Ok(answer);
                    }
                    Err(problem) => {
                        rejected.push(OutputAttempt::new(answer.to_owned(), problem.clone()));
                        let attempt = rejected.len() as u32;
                        run.ctx.emit(|| EventKind::OutputRejected { attempt, error: problem.clone() });
                        if attempt > slot.retries() {
                            return Err(OutputError::new(slot.type_name(), rejected).into());
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
                                let (mut results, _) = run_calls(run, turn, &others, lp.extra).await?;
                                results.insert(
                                    i.min(results.len()),
                                    ToolResult::error(final_id, FINAL_ANSWER_TOOL, feedback),
                                );
                                messages.extend(results.into_iter().map(Message::Tool));
                            }
                            None => messages.push(Message::user(feedback)),
                        }
                        run.checkpoint(turn).await?;
                        retrying = true;
                        continue;
                    }
                }
            }
            retrying = false;
            let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
            let (results, ended) = match lp.extra {
                // The agent's own tools only: straight through the run.
                None => {
                    let results = match run.call_tools(turn, calls).await {
                        Ok(results) => results,
                        // A governance stop keeps the conversation in its partial run.
                        Err(e) => return Err(e.with_conversation(messages)),
                    };
                    let ended = if prepared.ends_turn { ended_by_tool(run, calls, &results) } else { None };
                    (results, ended)
                }
                Some(_) => match run_calls(run, turn, calls, lp.extra).await {
                    Ok(done) => done,
                    Err(e) => return Err(e.with_conversation(messages)),
                },
            };
            messages.extend(results.into_iter().map(Message::Tool));
            run.checkpoint(turn).await?;
            if let Some(answer) = ended {
                // A tool ended the loop (a forwarded answer, a handoff): its result is the
                // answer, and the conversation's last word.
                messages.push(Message::assistant(answer.as_str()));
                if let Some(slot) = output.as_deref_mut() {
                    slot.accept(&answer).map_err(|problem| {
                        Error::from(OutputError::new(
                            slot.type_name(),
                            vec![OutputAttempt::new(answer.clone(), problem)],
                        ))
                    })?;
                }
                return Ok(answer);
            }
        }
    }
}

/// The definitions a turn offers: those tool search chose, or all.
fn offer<'a>(narrowed: &'a Option<Vec<ToolDefinition>>, all: &'a [ToolDefinition]) -> &'a [ToolDefinition] {
    narrowed.as_deref().unwrap_or(all)
}

/// One call of a turn: the agent's tool, or the architecture's.
async fn one_call(run: &AgentRun<'_>, turn: u32, call: &ToolCall, extra: &dyn LoopTools) -> Result<ToolResult, Error> {
    if !extra.handles(&call.name) {
        return match run.durable {
            Some(d) => d.tool(run.parts.tools, run.ctx, turn, call).await,
            None => crate::tool::dispatch(run.parts.tools, run.ctx, call).await,
        };
    }
    match run.durable {
        Some(d) => d.step(run.ctx, turn, call, extra.idempotent(call), || extra.call(run, turn, call)).await,
        None => Ok(extra.call(run, turn, call).await),
    }
}

/// Runs one turn's tool calls: the agent's through the run, the architecture's own through
/// `extra`, all at once and journaled, results in call order; and the answer, if one of the
/// architecture's calls ended the loop.
async fn run_calls(
    run: &AgentRun<'_>,
    turn: u32,
    calls: &[ToolCall],
    extra: Option<&dyn LoopTools>,
) -> Result<(Vec<ToolResult>, Option<String>), Error> {
    let Some(extra) = extra.filter(|e| calls.iter().any(|c| e.handles(&c.name))) else {
        let results = run.call_tools(turn, calls).await?;
        let ended = if run.parts.prepared.ends_turn { ended_by_tool(run, calls, &results) } else { None };
        return Ok((results, ended));
    };
    run.count_tool_calls(calls.len());
    let results: Vec<ToolResult> =
        Box::pin(futures::future::join_all(calls.iter().map(|call| one_call(run, turn, call, extra))))
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
    let mut ended = None;
    for (call, result) in calls.iter().zip(&results) {
        if extra.handles(&call.name) {
            extra.observe(call, result);
            if ended.is_none() {
                ended = extra.ends_loop(call, result);
            }
        }
    }
    if ended.is_none() && run.parts.prepared.ends_turn {
        ended = ended_by_tool(run, calls, &results);
    }
    Ok((results, ended))
}

/// The result of the first successful call of a tool that ends the turn, if any.
fn ended_by_tool(run: &AgentRun<'_>, calls: &[ToolCall], results: &[ToolResult]) -> Option<String> {
    calls.iter().zip(results).find_map(|(call, result)| {
        let tool = run.parts.tools.get(&call.name)?;
        (tool.definition().hints().ends_turn && !result.is_error).then(|| result.content.text().into_owned())
    })
}
