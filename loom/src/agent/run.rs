//! Running an agent: its result, and the glue to the run builder.

use std::fmt;
use std::time::Duration;

use super::Agent;
use crate::context::RunContext;
use crate::error::Error;
use crate::id::{RunId, SessionId, UserId};
use crate::model::{Content, Message, Usage};
use crate::runner::{Runnable, Sealed};

/// The outcome of a finished run.
#[derive(Clone)]
#[non_exhaustive]
pub struct RunResult<O = String> {
    /// The answer: the final text, or the typed value for an agent with a typed output.
    pub output: O,
    /// The whole conversation of the run: instructions, history, input, every model turn and
    /// tool result.
    pub messages: Vec<Message>,
    /// Tokens used, summed over every model call.
    pub usage: Usage,
    /// Model calls made.
    pub turns: u32,
    /// Tool calls made.
    pub tool_calls: u32,
    /// The run's id.
    pub run_id: RunId,
    /// Who the run was for.
    pub user: UserId,
    /// The session it continued, if any.
    pub session: Option<SessionId>,
    /// How long it took.
    pub duration: Duration,
    /// What the model calls cost in US dollars, when every model that answered has a known
    /// price ([`pricing`](crate::model::pricing)).
    pub cost_usd: Option<f64>,
    /// How the architecture's loop ended, when it says (a goal met, a handoff cap reached):
    /// `None` for a run that simply answered.
    pub exit: Option<crate::arch::LoopExit>,
    /// Index in `messages` of the run's input message.
    pub(crate) input_index: usize,
}

/// A source a run used: a retrieved passage, a workspace note, anything a tool says it read.
///
/// A tool cites by returning a JSON object with a top-level `citations` list of these;
/// [`RunResult::citations`] collects them from the run's tool results, so they are there
/// for a run resumed from its journal too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Citation {
    /// What is cited: `passage` (a corpus chunk), `note` (a workspace note), or a tool's own.
    pub kind: String,
    /// Its id (a chunk id, a note's slug).
    pub id: String,
    /// Where it comes from (a path, a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where in the source (`page 2`, `Setup > Linux`, `row 14`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locator: Option<String>,
    /// Its title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl<O> RunResult<O> {
    /// The sources the run's tools cited (their results' `citations` lists), in the order they
    /// were first cited, each once.
    pub fn citations(&self) -> Vec<Citation> {
        #[derive(serde::Deserialize)]
        struct Cited {
            #[serde(default)]
            citations: Vec<Citation>,
        }
        let mut out: Vec<Citation> = Vec::new();
        for m in self.new_messages() {
            let Message::Tool(result) = m else { continue };
            if result.is_error {
                continue;
            }
            let text = result.content.text();
            if !text.trim_start().starts_with('{') {
                continue;
            }
            let Ok(cited) = serde_json::from_str::<Cited>(&text) else { continue };
            for c in cited.citations {
                if !out.iter().any(|o| o.kind == c.kind && o.id == c.id) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// The text of the model's final answer (for a typed output, the text it was parsed from:
    /// the JSON, or the arguments of the `final_answer` call).
    pub fn text(&self) -> &str {
        self.new_messages()
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::Assistant { content, tool_calls } => {
                    match tool_calls.iter().rev().find(|c| c.name == crate::output::FINAL_ANSWER_TOOL) {
                        Some(call) => Some(call.arguments.as_str()),
                        None if !tool_calls.is_empty() => None,
                        None => match content {
                            Content::Text(t) => Some(t.as_str()),
                            _ => None,
                        },
                    }
                }
                _ => None,
            })
            .unwrap_or("")
    }

    /// The messages this run added to the conversation (its input and everything after).
    pub fn new_messages(&self) -> &[Message] {
        self.messages.get(self.input_index..).unwrap_or(&[])
    }

    /// The result with its output mapped.
    pub fn map<P>(self, f: impl FnOnce(O) -> P) -> RunResult<P> {
        RunResult {
            output: f(self.output),
            messages: self.messages,
            usage: self.usage,
            turns: self.turns,
            tool_calls: self.tool_calls,
            run_id: self.run_id,
            user: self.user,
            session: self.session,
            duration: self.duration,
            cost_usd: self.cost_usd,
            exit: self.exit,
            input_index: self.input_index,
        }
    }
}

impl<O: fmt::Debug> fmt::Debug for RunResult<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunResult")
            .field("output", &self.output)
            .field("messages", &self.messages.len())
            .field("usage", &self.usage)
            .field("turns", &self.turns)
            .field("tool_calls", &self.tool_calls)
            .field("run_id", &self.run_id)
            .field("user", &self.user)
            .field("session", &self.session)
            .field("duration", &self.duration)
            .field("cost_usd", &self.cost_usd)
            .field("exit", &self.exit)
            .finish()
    }
}

impl<O> Sealed for Agent<O> {}

impl<O: Send + Sync + 'static> Runnable for Agent<O> {
    type Input = super::AgentInput;
    type Output = RunResult<O>;

    fn __prepare(&self, ctx: RunContext) -> RunContext {
        ctx.with_own(&self.extensions, &self.emitter).with_governance(self.governance.as_ref())
    }

    fn __execute<'a>(
        &'a self,
        input: super::AgentInput,
        ctx: RunContext,
    ) -> impl Future<Output = Result<RunResult<O>, Error>> + Send + 'a {
        super::lifecycle::run(self, input, ctx)
    }
}
