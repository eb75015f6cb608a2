//! Plan-and-Execute: plan the steps, carry each out with the agent's tools, write the answer.

use std::fmt::Write as _;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::control::Plan;
use super::react::{Loop, LoopTools, react_on};
use super::role::{Role, refuse, role_methods};
use super::run::with_system;
use super::{AgentRun, Architecture};
use crate::error::{ConfigError, Error, RunError};
use crate::model::{ToolCall, ToolResult};
use crate::tool::{Arguments, ToolDefinition, ToolHints};

const PLANNER: &str = "You plan how to carry out a task. Break it into a short list of concrete steps, in \
order, each one instruction that can be carried out on its own with the tools available. No step should only \
repeat the task.";
const REPLANNER: &str = "A step of the plan failed. Given what was done and why the step failed, write the \
steps that remain to finish the task (a new way around the failure).";
const EXECUTOR: &str = "Carry out the one step you are given, using your tools as needed, and reply with what \
it produced. If the step cannot be done, call `step_failed` with the reason.";
const SYNTHESIZER: &str = "Write the answer to the task from the results of the steps that were carried out. \
Reply with the answer.";

/// The executor's way to say a step cannot be done.
const STEP_FAILED: &str = "step_failed";

/// Plan-and-Execute: a planner writes the steps (a typed [`Plan`]); each step is carried out,
/// in order, by an executor running a ReAct loop with the agent's tools (at most
/// `executor_turns` model calls); a synthesizer writes the answer from the results.
///
/// A step fails when its executor calls `step_failed` or runs out of turns. With
/// `max_replans` above 0 (it is 0 by default), the planner is asked for new remaining steps
/// after a failure, up to that many times; otherwise the failure is recorded and the next step
/// runs. A plan still malformed after its retry becomes a plan of one step, the task itself
/// (event `plan.fallback`). A plan longer than `max_steps` is cut (event `plan.truncated`).
///
/// Use it for tasks whose steps can be foreseen, when one loop of tool calls loses its way:
/// research, multi-part reports, procedures.
#[derive(Clone, Debug)]
pub struct PlanAndExecute {
    max_steps: usize,
    max_replans: u32,
    executor_turns: Option<u32>,
    planner: Role,
    executor: Role,
    synthesizer: Role,
}

impl Default for PlanAndExecute {
    fn default() -> Self {
        Self::new()
    }
}

impl PlanAndExecute {
    /// At most 8 steps, no replanning, executors with the agent's turn limit.
    pub fn new() -> Self {
        Self {
            max_steps: 8,
            max_replans: 0,
            executor_turns: None,
            planner: Role::new(PLANNER),
            executor: Role::new(EXECUTOR),
            synthesizer: Role::new(SYNTHESIZER),
        }
    }

    /// The most steps a plan may have.
    #[must_use]
    pub fn max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// How many times the planner may replan after a failed step.
    #[must_use]
    pub fn max_replans(mut self, replans: u32) -> Self {
        self.max_replans = replans;
        self
    }

    /// The most model calls of one step's executor loop (the agent's `max_turns` by default).
    #[must_use]
    pub fn executor_turns(mut self, turns: u32) -> Self {
        self.executor_turns = Some(turns);
        self
    }
}

role_methods!(PlanAndExecute {
    planner(planner_prompt, planner_model): "the planner",
    executor(executor_prompt, executor_model): "the executor",
    synthesizer(synthesizer_prompt, synthesizer_model): "the synthesizer",
});

/// A step carried out: what it was, what came of it, whether it worked.
struct Done {
    step: String,
    result: String,
    ok: bool,
}

fn numbered(steps: &[String]) -> String {
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}. {step}", i + 1);
    }
    out
}

fn results(done: &[Done]) -> String {
    let mut out = String::new();
    for (i, d) in done.iter().enumerate() {
        let status = if d.ok { "" } else { " (FAILED)" };
        let _ = writeln!(out, "Step {}{status}: {}\nResult: {}\n", i + 1, d.step, d.result);
    }
    out
}

fn non_empty(plan: &Plan) -> Result<(), String> {
    if plan.steps.iter().any(|s| !s.trim().is_empty()) {
        Ok(())
    } else {
        Err("`steps` is empty; give at least one step".to_owned())
    }
}

#[async_trait::async_trait]
impl Architecture for PlanAndExecute {
    fn name(&self) -> &str {
        "plan-and-execute"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_steps == 0, "max_steps", || "a plan needs room for at least one step")?;
        refuse(self.executor_turns == Some(0), "executor_turns", || "an executor needs at least one turn")?;
        self.planner.check("planner")?;
        self.executor.check("executor")?;
        self.synthesizer.check("synthesizer")
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let task = run.input_text().into_owned();
        let tools = run.tool_list();
        let question = self.planner.messages(format!(
            "Task:\n{task}\n\nTools available:\n{tools}\nWrite a plan of at most {} steps.",
            self.max_steps
        ));
        let mut steps = match run.ask_checked::<Plan>("planner", self.planner.model(), question, non_empty).await? {
            Ok(plan) => self.cut(run, plan.steps),
            Err(e) => {
                run.emit("plan.fallback", || serde_json::json!({"error": e.to_string()}));
                vec![task.clone()]
            }
        };
        run.emit("plan.made", || serde_json::json!({"steps": &steps}));
        let mut done: Vec<Done> = Vec::new();
        let mut replans = 0;
        let failure = StepFailed::new();
        let mut i = 0;
        while i < steps.len() {
            let step = steps[i].clone();
            let prompt = format!(
                "Task:\n{task}\n\nPlan:\n{}\nDone so far:\n{}\nNow carry out step {}: {step}",
                numbered(&steps),
                if done.is_empty() { "nothing yet\n".to_owned() } else { results(&done) },
                i + 1,
            );
            let mut messages = self.executor.messages(prompt);
            if !run.instructions().is_empty() {
                messages = with_system(messages, run.instructions());
            }
            let max_turns = self.executor_turns.unwrap_or(run.max_turns()).max(1);
            let base = run.reserve(max_turns);
            let lp = Loop {
                role: "executor",
                max_turns,
                extra: Some(&failure),
                model: self.executor.model(),
                base: Some(base),
                keep_answer: true,
            };
            failure.reset();
            let outcome = react_on(run, &mut messages, None, &lp).await;
            let (result, ok) = match outcome {
                Ok(answer) => match failure.take() {
                    Some(reason) => (reason, false),
                    None => (answer, true),
                },
                Err(Error::Run(RunError::MaxTurnsExceeded { max_turns, .. })) => {
                    (format!("the step was not finished within {max_turns} turns"), false)
                }
                Err(e) => return Err(e),
            };
            run.emit("plan.step", || serde_json::json!({"step": i + 1, "ok": ok}));
            done.push(Done { step, result, ok });
            i += 1;
            if !done.last().is_some_and(|d| d.ok) && replans < self.max_replans {
                replans += 1;
                let question = self.planner.messages(format!(
                    "{REPLANNER}\n\nTask:\n{task}\n\nTools available:\n{tools}\nWhat was done:\n{}",
                    results(&done)
                ));
                match run.ask_checked::<Plan>("planner", self.planner.model(), question, non_empty).await? {
                    Ok(plan) => {
                        let room = self.max_steps.saturating_sub(done.len()).max(1);
                        let mut rest = plan.steps;
                        rest.retain(|s| !s.trim().is_empty());
                        rest.truncate(room);
                        run.emit("plan.replanned", || serde_json::json!({"after_step": i, "steps": &rest}));
                        steps.truncate(i);
                        steps.extend(rest);
                    }
                    Err(e) => run.emit("plan.replan_rejected", || serde_json::json!({"error": e.to_string()})),
                }
            }
        }
        let question = self.synthesizer.messages(format!("Task:\n{task}\n\n{}", results(&done)));
        run.answer("synthesizer", self.synthesizer.model(), question).await
    }
}

impl PlanAndExecute {
    /// The plan's steps, without blanks, at most `max_steps`.
    fn cut(&self, run: &AgentRun<'_>, mut steps: Vec<String>) -> Vec<String> {
        steps.retain(|s| !s.trim().is_empty());
        if steps.len() > self.max_steps {
            let given = steps.len();
            run.emit("plan.truncated", || serde_json::json!({"given": given, "kept": self.max_steps}));
            steps.truncate(self.max_steps);
        }
        steps
    }
}

/// The executor's `step_failed` tool: it ends the step's loop and marks the step failed.
struct StepFailed {
    definitions: [ToolDefinition; 1],
    reason: Mutex<Option<String>>,
}

impl StepFailed {
    fn new() -> Self {
        let definition = ToolDefinition::new_unchecked(
            STEP_FAILED.to_owned(),
            "Say that the step cannot be done, and why. Ends the step.".to_owned(),
            serde_json::json!({
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why the step cannot be done."}},
                "required": ["reason"],
            }),
        )
        .with_hints(ToolHints::NONE.read_only().idempotent().ends_turn());
        Self { definitions: [definition], reason: Mutex::new(None) }
    }

    fn reset(&self) {
        *self.reason.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn take(&self) -> Option<String> {
        self.reason.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

impl LoopTools for StepFailed {
    fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
    }

    fn handles(&self, name: &str) -> bool {
        name == STEP_FAILED
    }

    fn idempotent(&self, _: &ToolCall) -> bool {
        true
    }

    fn call<'a>(&'a self, _: &'a AgentRun<'_>, _: u32, call: &'a ToolCall) -> BoxFuture<'a, ToolResult> {
        Box::pin(async move {
            let reason = Arguments::parse(&call.arguments).and_then(|mut a| {
                let reason: String = a.take("reason")?;
                a.finish(&["reason"])?;
                Ok(reason)
            });
            match reason {
                Ok(reason) => ToolResult::ok(call.id.clone(), STEP_FAILED, reason),
                Err(e) => ToolResult::error(call.id.clone(), STEP_FAILED, e.to_string()),
            }
        })
    }

    fn ends_loop(&self, _: &ToolCall, result: &ToolResult) -> Option<String> {
        (!result.is_error).then(|| result.content.text().into_owned())
    }

    fn observe(&self, _: &ToolCall, result: &ToolResult) {
        if !result.is_error {
            *self.reason.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(result.content.text().into_owned());
        }
    }
}
