//! Guardrails: checks on what goes into a run, what comes out of it, and what tools return.

use std::borrow::Cow;
use std::fmt;

use crate::context::RunContext;

/// Where a guardrail looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// The user's message, before the run's first model call.
    Input,
    /// The model's answer, before it is journaled, kept or shown.
    Output,
    /// A tool's result, before the model reads it and before it is journaled.
    ToolResult,
}

impl Stage {
    /// The stage as a word: `input`, `output`, `tool_result`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::ToolResult => "tool_result",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a guardrail found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Nothing to do: the text goes on as it is.
    Pass,
    /// The text goes on changed (redacted, wrapped); what was changed, for the run's events.
    Rewrite {
        /// The new text.
        text: String,
        /// What was changed (`2 emails redacted`), never the removed text itself.
        note: String,
    },
    /// The text stops here: the run ends with [`RunError::Guardrail`](crate::RunError::Guardrail)
    /// naming the guardrail (for a tool result: the run ends too; nothing of it reaches the model).
    Block {
        /// Why, in words a user may read (never the blocked text itself).
        reason: String,
    },
}

/// The text a guardrail checks, and where it is.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Checked<'a> {
    /// The stage.
    pub stage: Stage,
    /// The text.
    pub text: &'a str,
    /// For a tool result, the tool's name.
    pub tool: Option<&'a str>,
    /// The run's context (user, session, run id).
    pub ctx: &'a RunContext,
}

impl<'a> Checked<'a> {
    /// `text` at `stage` of the run of `ctx`, with no tool (to call a guardrail directly,
    /// in a test or outside a run).
    pub fn new(stage: Stage, text: &'a str, ctx: &'a RunContext) -> Self {
        Self { stage, text, tool: None, ctx }
    }

    /// Sets the tool whose result `text` is.
    #[must_use]
    pub fn tool(mut self, name: &'a str) -> Self {
        self.tool = Some(name);
        self
    }
}

/// A check on text entering or leaving a run.
///
/// A guardrail that returns an error, panics or runs past the governance's check timeout
/// blocks: guardrails fail closed. Rewrites of several guardrails compose in the order they
/// were added.
#[async_trait::async_trait]
pub trait Guardrail: Send + Sync + 'static {
    /// Its name, in events, the audit log and a block's outcome (`pii`, `injection` ...).
    fn name(&self) -> &str;

    /// Whether it looks at `stage` at all (all stages by default).
    fn applies_to(&self, stage: Stage) -> bool {
        let _ = stage;
        true
    }

    /// Checks one text.
    async fn check(&self, checked: Checked<'_>) -> Result<Verdict, GuardError>;
}

/// A guardrail that could not decide (a moderation model that failed): the text is blocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GuardError(pub Cow<'static, str>);

impl GuardError {
    /// An error saying `message`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self(message.into())
    }
}
