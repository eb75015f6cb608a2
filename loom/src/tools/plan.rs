//! The living plan: a list of steps the model keeps while it works, written whole on every
//! call of the [`PlanTool`].
//!
//! The model calls `update_plan` with the whole plan — every step with its status, and what it
//! has found so far — and reads back the plan as a Markdown table with its progress. The tool
//! keeps no state: the plan is the last call in the conversation ([`Plan::latest`]). So it is
//! kept wherever the conversation is: in the session's history and the run's journal, and a
//! session continued in another process (or a crashed run resumed there) has its plan, shown
//! to the model in the history it is sent. (With a
//! [`history_limit`](crate::Agent::history_limit), only the plan calls inside the window are
//! sent, and seen by [`Plan::latest`].) The plan is not copied into the system prompt: that
//! would change the prompt, and miss the provider's prompt cache, every time the plan moves.
//!
//! Each call emits [`EventKind::PlanUpdated`]. With
//! [`PlanTool::until_done`], the agent's loop goes on while steps are pending or in progress:
//! the model is told which ones, a bounded number of times.
//!
//! ```
//! use loomflow::prelude::*;
//! use loomflow::tools::plan::{Plan, PlanTool, StepStatus};
//! use serde_json::json;
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let model = ScriptedModel::new([
//!     ScriptedTurn::tool_call(
//!         "update_plan",
//!         json!({"steps": [
//!             {"title": "Find the failing test", "status": "done"},
//!             {"title": "Fix the parser", "status": "in_progress"},
//!         ]}),
//!     ),
//!     // Numbered text works too.
//!     ScriptedTurn::raw_tool_call("update_plan", "1. [x] Find the failing test\n2. [x] Fix the parser"),
//!     ScriptedTurn::text("Fixed."),
//! ]);
//! let agent = Agent::new("You fix bugs. Keep a plan.").model(model.clone()).tool(PlanTool::new());
//! let result = agent.run("The parser fails on empty input.").await?;
//!
//! let plan = Plan::latest(&result.messages).ok_or("no plan")?;
//! assert!(plan.steps.iter().all(|s| s.status == StepStatus::Done));
//! // The model read the table and the progress back.
//! assert!(model.requests()[1].last_text().contains("| 2 | in progress | Fix the parser |"));
//! assert!(model.requests()[1].last_text().contains("progress: 1/2 done, 1 in progress"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod parse;

use std::fmt::{self, Write as _};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::arch::RunUntil;
use crate::context::RunContext;
use crate::event::EventKind;
use crate::model::Message;
use crate::tool::{Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};

/// A plan: steps in order, each with a status, and what was found on the way.
///
/// ```
/// use loomflow::tools::plan::{Plan, StepStatus};
///
/// let plan = Plan::parse("1. [x] Read the issue\n2. [~] Write the fix\n3. Add a test (blocked)")?;
/// assert_eq!(plan.steps[1].status, StepStatus::InProgress);
/// assert_eq!(plan.progress().to_string(), "1/3 done, 1 in progress, 1 blocked");
/// assert!(plan.render().contains("| 3 | blocked | Add a test |"));
/// # Ok::<(), loomflow::tools::plan::PlanError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What was found so far: facts, decisions, results worth keeping.
    #[serde(default)]
    pub findings: Vec<String>,
}

/// One step of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// What the step is.
    pub title: String,
    /// Where it stands.
    pub status: StepStatus,
}

impl Step {
    /// A step.
    pub fn new(title: impl Into<String>, status: StepStatus) -> Self {
        Self { title: title.into(), status }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// Not started.
    #[default]
    Pending,
    /// Being worked on.
    InProgress,
    /// Finished.
    Done,
    /// Cannot go on without something the model does not have.
    Blocked,
    /// Decided against: no longer needed.
    Skipped,
}

impl StepStatus {
    /// Every status, in the order of the work.
    pub const ALL: [Self; 5] = [Self::Pending, Self::InProgress, Self::Done, Self::Blocked, Self::Skipped];

    /// The status as the tool's schema writes it: `pending`, `in_progress`, `done`, `blocked`,
    /// `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Done => "done",
            Self::Blocked => "blocked",
            Self::Skipped => "skipped",
        }
    }

    /// The status in words, as the rendered table shows it (`in progress`).
    pub fn label(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            other => other.as_str(),
        }
    }

    /// Whether work on the step is still ahead: pending or in progress.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::InProgress)
    }

    /// The status a word means, leniently: any case, `_`, `-` or spaces between words, and
    /// the synonyms models use (`completed`, `todo`, `doing`, `wip`, `cancelled` ...).
    ///
    /// ```
    /// use loomflow::tools::plan::StepStatus;
    /// assert_eq!(StepStatus::from_word("Completed"), Some(StepStatus::Done));
    /// assert_eq!(StepStatus::from_word("in-progress"), Some(StepStatus::InProgress));
    /// assert_eq!(StepStatus::from_word("to do"), Some(StepStatus::Pending));
    /// assert_eq!(StepStatus::from_word("maybe"), None);
    /// ```
    pub fn from_word(word: &str) -> Option<Self> {
        let word = word.trim().trim_end_matches(['.', '!']).to_lowercase().replace(['_', '-'], " ");
        let word = word.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(match word.as_str() {
            "pending" | "todo" | "to do" | "not started" | "notstarted" | "open" | "planned" | "queued" | "next"
            | "new" | "not done" | "incomplete" => Self::Pending,
            "in progress" | "inprogress" | "progress" | "doing" | "active" | "started" | "working" | "ongoing"
            | "current" | "wip" | "running" | "underway" | "in work" => Self::InProgress,
            "done" | "complete" | "completed" | "finished" | "ok" | "x" | "checked" | "resolved" | "closed"
            | "succeeded" | "success" | "passed" | "fixed" | "✓" | "✔" | "✅" => Self::Done,
            "blocked" | "stuck" | "failed" | "failing" | "on hold" | "waiting" | "error" => Self::Blocked,
            "skipped" | "skip" | "cancelled" | "canceled" | "dropped" | "abandoned" | "wont do" | "won't do"
            | "not needed" | "obsolete" | "n/a" => Self::Skipped,
            _ => return None,
        })
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StepStatus {
    type Err = PlanError;

    /// [`StepStatus::from_word`], with an error that lists the statuses.
    fn from_str(s: &str) -> Result<Self, PlanError> {
        Self::from_word(s).ok_or_else(|| PlanError::BadStatus { number: 0, status: s.trim().to_owned() })
    }
}

/// How far a plan has got: how many steps stand where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Progress {
    /// Steps in all.
    pub total: usize,
    /// Steps done.
    pub done: usize,
    /// Steps in progress.
    pub in_progress: usize,
    /// Steps not started.
    pub pending: usize,
    /// Steps blocked.
    pub blocked: usize,
    /// Steps skipped.
    pub skipped: usize,
}

impl fmt::Display for Progress {
    /// `2/5 done, 1 in progress, 1 blocked` (counts of 0 are left out, and pending steps are
    /// what remains).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} done", self.done, self.total)?;
        for (n, what) in [(self.in_progress, "in progress"), (self.blocked, "blocked"), (self.skipped, "skipped")] {
            if n > 0 {
                write!(f, ", {n} {what}")?;
            }
        }
        Ok(())
    }
}

/// Why a plan could not be read. The message says what would work: it is what the model
/// reads when its call of the plan tool is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Nothing that looks like a step.
    #[error("found no steps in the plan; {SHAPE}")]
    Empty,
    /// A JSON object without steps.
    #[error("found no steps in an object with the keys {}; put the steps under `steps`: {SHAPE}", keys_list(.keys))]
    NoSteps {
        /// The keys the object had.
        keys: Vec<String>,
    },
    /// A value that cannot be a plan (a number, a boolean).
    #[error("a plan cannot be {found}; {SHAPE}")]
    NotAPlan {
        /// What it was.
        found: &'static str,
    },
    /// A step that is neither text nor an object.
    #[error(
        "step {number} is {found}; write each step as text or as `{{\"title\": \"...\", \"status\": \"pending\"}}`"
    )]
    BadStep {
        /// The step's number, from 1.
        number: usize,
        /// What it was.
        found: &'static str,
    },
    /// A step object without a title.
    #[error("step {number} has no title; give it a `title` (what the step is)")]
    NoTitle {
        /// The step's number, from 1.
        number: usize,
    },
    /// A status no word of which is known.
    #[error("{}unknown status `{status}`; use one of pending, in_progress, done, blocked, skipped", step_prefix(*.number))]
    BadStatus {
        /// The step's number, from 1 (0 when not in a plan).
        number: usize,
        /// The status as written.
        status: String,
    },
    /// Findings that are not text.
    #[error("`findings` is {found}; give a list of strings")]
    BadFindings {
        /// What it was.
        found: &'static str,
    },
}

/// What a plan looks like, for the errors.
const SHAPE: &str = "give `steps`, a list of `{\"title\": \"...\", \"status\": \"pending\" | \"in_progress\" | \"done\" \
| \"blocked\" | \"skipped\"}`, and optionally `findings`, a list of strings (numbered lines such as `1. [x] done \
thing` and `2. [ ] next thing` work too)";

fn keys_list(keys: &[String]) -> String {
    if keys.is_empty() {
        return "(none)".to_owned();
    }
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

fn step_prefix(number: usize) -> String {
    if number == 0 { String::new() } else { format!("step {number}: ") }
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plan with one more step.
    #[must_use]
    pub fn with_step(mut self, title: impl Into<String>, status: StepStatus) -> Self {
        self.steps.push(Step::new(title, status));
        self
    }

    /// The plan with one more finding.
    #[must_use]
    pub fn with_finding(mut self, finding: impl Into<String>) -> Self {
        self.findings.push(finding.into());
        self
    }

    /// Reads a plan the way models write one:
    ///
    /// - JSON: `{"steps": [{"title": .., "status": ..}], "findings": [..]}` (a step's title may
    ///   be under `title`, `step`, `content`, `description`, `task`, `text` or `name`; the
    ///   steps under `steps`, `plan`, `todos`, `items` or `tasks`; a step may be a string, or
    ///   `[title, status]`), a bare list of steps, or any of these inside a JSON string;
    /// - text: numbered or bulleted lines (`1. [x] done thing`, `2. [ ] todo`, `- [~] in
    ///   progress`, `3. thing (blocked)`, `DONE: thing`, `✅ thing`), a `Findings:` section,
    ///   or the rows of the table [`render`](Self::render) writes. When some lines are list
    ///   items, the other lines are taken for prose and left out.
    ///
    /// Statuses are read with [`StepStatus::from_word`]; a step without one is pending. An
    /// empty list of steps (`{"steps": []}`) is an empty plan; text with no step in it, or an
    /// unknown status, is a [`PlanError`] that says what would work.
    pub fn parse(input: &str) -> Result<Self, PlanError> {
        parse::parse(input)
    }

    /// [`parse`](Self::parse) for a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, PlanError> {
        parse::from_value(value)
    }

    /// How many steps stand where.
    pub fn progress(&self) -> Progress {
        let mut p = Progress { total: self.steps.len(), ..Progress::default() };
        for step in &self.steps {
            match step.status {
                StepStatus::Pending => p.pending += 1,
                StepStatus::InProgress => p.in_progress += 1,
                StepStatus::Done => p.done += 1,
                StepStatus::Blocked => p.blocked += 1,
                StepStatus::Skipped => p.skipped += 1,
            }
        }
        p
    }

    /// The steps still ahead (pending or in progress), with their numbers from 1.
    pub fn open_steps(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.steps.iter().enumerate().filter(|(_, s)| s.status.is_open()).map(|(i, s)| (i + 1, s))
    }

    /// Whether no step is pending or in progress (every one done, blocked or skipped).
    pub fn is_finished(&self) -> bool {
        self.open_steps().next().is_none()
    }

    /// The plan as the model reads it back: a Markdown table of the steps, the findings, and
    /// a line of progress (`progress: 2/5 done, 1 in progress, 1 blocked`).
    ///
    /// The table parses back into the same plan with [`parse`](Self::parse).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 + 48 * self.steps.len());
        if self.steps.is_empty() {
            out.push_str("The plan has no steps.\n");
        } else {
            out.push_str("| # | Status | Step |\n|---|---|---|\n");
            for (i, step) in self.steps.iter().enumerate() {
                let title = step.title.replace('|', "\\|").replace(['\n', '\r'], " ");
                let _ = writeln!(out, "| {} | {} | {title} |", i + 1, step.status.label());
            }
        }
        if !self.findings.is_empty() {
            out.push_str("\nFindings:\n");
            for finding in &self.findings {
                let _ = writeln!(out, "- {}", finding.replace(['\n', '\r'], " "));
            }
        }
        let _ = write!(out, "\nprogress: {}", self.progress());
        out
    }

    /// The plan of the last successful call of the plan tool (`update_plan`) in
    /// `messages`: the current plan of a conversation — a run's
    /// [`messages`](crate::RunResult::messages), or a session's history loaded from its
    /// store. `None` when the plan tool was never called successfully.
    pub fn latest(messages: &[Message]) -> Option<Self> {
        for (at, message) in messages.iter().enumerate().rev() {
            let Message::Tool(result) = message else { continue };
            if result.name != PlanTool::NAME || result.is_error {
                continue;
            }
            // The call this answers: in the nearest assistant message before it that has the
            // id (ids repeat across turns with some providers).
            let call = messages[..at].iter().rev().find_map(|m| match m {
                Message::Assistant { tool_calls, .. } => tool_calls.iter().find(|c| c.id == result.call_id),
                _ => None,
            });
            if let Some(plan) = call.and_then(|c| Self::parse(&c.arguments).ok()) {
                return Some(plan);
            }
        }
        None
    }
}

impl fmt::Display for Plan {
    /// [`Plan::render`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The plan tool (`update_plan`): the model writes its whole plan, and reads it back rendered
/// with its progress.
///
/// Stateless: every call replaces the plan, and the current plan is the last call in the
/// conversation ([`Plan::latest`]), so it lasts as long as the session and its journal do. The
/// arguments are read leniently ([`Plan::parse`]); a call with nothing usable in it is an
/// error result that shows the expected shape. Each successful call emits
/// [`EventKind::PlanUpdated`]. The tool is read-only and idempotent: it changes nothing
/// outside the conversation, and a repeated call writes the same plan.
///
/// ```
/// use loomflow::prelude::*;
/// use loomflow::tools::plan::PlanTool;
///
/// let agent = Agent::new("Plan your work, then do it.")
///     .model("echo")
///     .tool(PlanTool::new())
///     .run_until(PlanTool::until_done().max_iterations(3));
/// assert!(agent.check().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct PlanTool {
    definition: ToolDefinition,
}

static DEFINITION: LazyLock<ToolDefinition> = LazyLock::new(|| {
    let statuses: Vec<&str> = StepStatus::ALL.iter().map(|s| s.as_str()).collect();
    ToolDefinition::new_unchecked(
        PlanTool::NAME.to_owned(),
        "Write your plan for the task: every step in order with its status, and what you have found so far. \
         Each call replaces the whole plan, so always send every step. Use it for work of several steps: \
         write the plan before you start, keep one step in_progress at a time, and call it again as soon as \
         a step is done, blocked or no longer needed (skipped). Returns the plan as a table with its progress."
            .to_owned(),
        serde_json::json!({
            "type": "object",
            "properties": {
                "steps": {
                    "type": "array",
                    "description": "Every step of the plan, in order.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": {"type": "string", "description": "What the step is, in a short sentence."},
                            "status": {"type": "string", "enum": statuses}
                        },
                        "required": ["title", "status"]
                    }
                },
                "findings": {
                    "type": "array",
                    "description": "What you have found so far that the rest of the work needs: facts, decisions, results.",
                    "items": {"type": "string"}
                }
            },
            "required": ["steps"]
        }),
    )
    .with_hints(ToolHints::NONE.read_only().idempotent())
});

impl Default for PlanTool {
    fn default() -> Self {
        Self::new()
    }
}

impl PlanTool {
    /// The tool's name.
    pub const NAME: &'static str = "update_plan";

    /// The plan tool.
    pub fn new() -> Self {
        Self { definition: DEFINITION.clone() }
    }

    /// A goal loop ([`RunUntil`]) that is met once the latest plan in the conversation has
    /// no step pending or in progress (or there is no plan). While it is not met, the model
    /// is told which steps are still open and the agent's loop runs again — at most
    /// `max_iterations` times in all (5 unless set), and the loop also ends when neither the
    /// answer nor the open steps changed for `max_no_progress` iterations. Give it to
    /// [`Agent::run_until`](crate::Agent::run_until).
    pub fn until_done() -> RunUntil {
        RunUntil::verify(|messages, _answer| {
            let Some(plan) = Plan::latest(messages) else { return Ok(()) };
            let open: Vec<String> =
                plan.open_steps().map(|(n, s)| format!("{n}. {} ({})", s.title, s.status.label())).collect();
            if open.is_empty() {
                return Ok(());
            }
            Err(format!(
                "The plan still has open steps: {}. Carry them out and update the plan with `{}` (mark each \
                 step done, blocked or skipped) before you answer.",
                open.join("; "),
                PlanTool::NAME
            ))
        })
    }
}

#[async_trait::async_trait]
impl Tool for PlanTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let plan = Plan::parse(arguments).map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        let rendered = plan.render();
        ctx.emit(|| EventKind::PlanUpdated { plan });
        #[cfg(feature = "workspace")]
        let rendered = mirrored(ctx, rendered).await;
        Ok(ToolOutput::text(rendered))
    }
}

/// Seated on a workspace ([`Agent::workspace`](crate::Agent::workspace)), the plan is the
/// member's `plan` note too, a new version on each update; a failed write is said, and the
/// plan stands.
#[cfg(feature = "workspace")]
async fn mirrored(ctx: &RunContext, mut rendered: String) -> String {
    if let Some(mirror) = ctx.state::<crate::workspace::member::PlanMirror>() {
        match mirror.write(ctx.user(), &rendered).await {
            Ok((slug, version)) => {
                rendered.push_str(&format!("\n\n(Kept as workspace note `{slug}`, version {version}.)"))
            }
            Err(e) => rendered.push_str(&format!("\n\n(The workspace's plan note could not be written: {e})")),
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_table_parses_back_into_the_plan() -> Result<(), PlanError> {
        let plan = Plan::new()
            .with_step("Read | the issue", StepStatus::Done)
            .with_step("Write the fix", StepStatus::InProgress)
            .with_step("Ask for the logs", StepStatus::Blocked)
            .with_step("Port to Windows", StepStatus::Skipped)
            .with_step("Add a test", StepStatus::Pending)
            .with_finding("The bug is in the tokenizer.");
        assert_eq!(Plan::parse(&plan.render())?, plan);
        Ok(())
    }

    #[test]
    fn every_status_reads_back_from_its_name_and_label() {
        for status in StepStatus::ALL {
            assert_eq!(StepStatus::from_word(status.as_str()), Some(status));
            assert_eq!(StepStatus::from_word(status.label()), Some(status));
        }
    }

    #[test]
    fn a_status_error_names_the_step_and_the_statuses() {
        let err = Plan::parse(r#"{"steps": [{"title": "a", "status": "done"}, {"title": "b", "status": "maybe"}]}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "step 2: unknown status `maybe`; use one of pending, in_progress, done, blocked, skipped");
    }
}
