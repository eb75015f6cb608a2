//! ReAct: call the model, run the tools it asks for, repeat until it answers.

use super::Architecture;
use super::run::{AgentRun, ModelCall};
use crate::error::{ConfigError, Error, PartialRun, RunError};
use crate::event::EventKind;
use crate::model::{Content, Message, ModelRequest, ToolCall, ToolResult};
use crate::output::{self, FINAL_ANSWER_TOOL, OutputAttempt, OutputError, OutputMode};

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
        if self.max_turns == Some(0) {
            return Err(ConfigError::InvalidSetting {
                setting: "max_turns",
                reason: "ReAct needs at least one turn".to_owned(),
            });
        }
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

/// The ReAct loop on `run`; returns the answer's text, with the typed output accepted.
///
/// Written as `fn -> impl Future` around an `async move` block, as the agent's other run
/// functions: the future, inside every run's box, stays small.
#[allow(clippy::manual_async_fn)]
pub(crate) fn react<'a, 'r>(
    run: &'a mut AgentRun<'r>,
    max_turns: Option<u32>,
) -> impl Future<Output = Result<String, Error>> + Send + 'a {
    async move {
        let prepared = run.parts.prepared;
        let max_turns = max_turns.unwrap_or(run.parts.max_turns);
        let mut turns: u32 = 0;
        let mut rejected: Vec<OutputAttempt> = Vec::new();
        // After a rejected answer, the next turn only asks for the corrected answer.
        let mut retrying = false;
        loop {
            if turns >= max_turns && !retrying {
                let tally = run.tally();
                let messages = std::mem::take(&mut run.messages);
                return Err(RunError::MaxTurnsExceeded {
                    max_turns,
                    partial: Box::new(PartialRun {
                        run_id: run.ctx.run_id(),
                        messages,
                        usage: tally.usage,
                        turns: tally.turns,
                        tool_calls: tally.tool_calls,
                    }),
                }
                .into());
            }
            turns += 1;
            let request = if retrying {
                ModelRequest::new(&run.messages)
                    .with_tools(&prepared.retry_tools)
                    .with_tool_choice(&prepared.retry_choice)
                    .with_response_format(prepared.format.as_ref())
            } else {
                ModelRequest::new(&run.messages)
                    .with_tools(&prepared.tools)
                    .with_tool_choice(&prepared.tool_choice)
                    .with_response_format(prepared.format.as_ref().filter(|_| prepared.format_on_normal_turns))
            }
            .with_settings(run.parts.settings)
            .with_user(run.ctx.user());
            let answered = run.call_model(ModelCall::new("agent", request).answer()).await?;
            let turn = answered.turn;
            // Into the conversation at once: the response is never borrowed, so the future
            // keeps no slot for it across the awaits below.
            run.messages.push(answered.response.into_message());
            let calls = run.messages.last().map(Message::tool_calls).unwrap_or(&[]);
            let final_call = match prepared.mode {
                OutputMode::Tool => calls.iter().position(|c| c.name == FINAL_ANSWER_TOOL),
                _ => None,
            };
            if calls.is_empty() || final_call.is_some() {
                // The answer as the conversation keeps it: the text, or the final call's arguments.
                let answer = match (run.messages.last(), final_call) {
                    (Some(Message::Assistant { content: Content::Text(text), .. }), None) => text.as_str(),
                    (Some(last), Some(i)) => last.tool_calls().get(i).map_or("", |c| c.arguments.as_str()),
                    _ => "",
                };
                match run.output.accept(answer) {
                    Ok(()) => {
                        let answer = answer.to_owned();
                        if final_call.is_some() {
                            let calls = run.messages.last().map(Message::tool_calls).unwrap_or(&[]);
                            let closing = close_calls(calls, "Final answer received.");
                            run.messages.extend(closing);
                        }
                        return Ok(answer);
                    }
                    Err(problem) => {
                        rejected.push(OutputAttempt::new(answer.to_owned(), problem.clone()));
                        let attempt = rejected.len() as u32;
                        run.ctx.emit(|| EventKind::OutputRejected { attempt, error: problem.clone() });
                        if attempt > run.output.retries() {
                            return Err(OutputError::new(run.output.type_name(), rejected).into());
                        }
                        let feedback = output::feedback(&problem, prepared.mode);
                        match final_call {
                            Some(i) => {
                                // Answer every call of the turn: the final answer with the
                                // problem, the others by running them.
                                let calls = run.messages.last().map(Message::tool_calls).unwrap_or(&[]);
                                let others: Vec<ToolCall> =
                                    calls.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c.clone()).collect();
                                let final_id = calls[i].id.clone();
                                let mut results = run.call_tools(turn, &others).await?;
                                results.insert(
                                    i.min(results.len()),
                                    ToolResult::error(final_id, FINAL_ANSWER_TOOL, feedback),
                                );
                                run.messages.extend(results.into_iter().map(Message::Tool));
                            }
                            None => run.messages.push(Message::user(feedback)),
                        }
                        run.checkpoint(turn).await?;
                        retrying = true;
                        continue;
                    }
                }
            }
            retrying = false;
            let calls = run.messages.last().map(Message::tool_calls).unwrap_or(&[]);
            let results = run.call_tools(turn, calls).await?;
            run.messages.extend(results.into_iter().map(Message::Tool));
            run.checkpoint(turn).await?;
        }
    }
}
