//! `run_until`: a goal loop around any architecture.

use std::sync::Arc;

use super::control::GoalCheck;
use super::role::{Role, normalise, refuse};
use super::run::LoopExit;
use super::{AgentRun, Architecture, Base};
use crate::error::{ConfigError, Error};
use crate::model::{IntoModel, Message};

const CHECKER: &str = "You check whether an answer meets a goal. Say whether it does, and if not, what is \
still missing, in a sentence.";

/// How the goal is checked.
#[derive(Clone)]
enum Goal {
    /// A checker model judges the answer against the condition.
    Checker { condition: Arc<str>, role: Role },
    /// A closure of the answer's text.
    When(Arc<dyn Fn(&str) -> bool + Send + Sync>),
    /// A closure of the conversation and the answer: what is missing, when not met.
    Verify(Arc<Verifier>),
}

/// A check of the conversation and the answer.
type Verifier = dyn Fn(&[Message], &str) -> Result<(), String> + Send + Sync;

/// A goal loop around an architecture (the agent's own, with
/// [`Agent::run_until`](crate::Agent::run_until)): the base runs; the goal is checked — by a
/// checker model asked for a typed [`GoalCheck`], by a closure of the answer, or by a closure
/// of the whole conversation ([`verify`](Self::verify)); while it is not met, the conversation
/// goes on with what is missing and the base runs again.
///
/// The loop ends when the condition holds, after `max_iterations` runs of the base, when the
/// answer (and, for [`verify`](Self::verify), what is missing) has not changed for
/// `max_no_progress` iterations, or when the run's cost reaches
/// `max_cost_usd`; [`RunResult::exit`](crate::RunResult::exit) says which
/// ([`LoopExit::ConditionMet`], [`MaxIterations`](LoopExit::MaxIterations),
/// [`NoProgress`](LoopExit::NoProgress), [`CostCap`](LoopExit::CostCap)). A check still
/// malformed after its retry counts as not met. Events: `run_until.checked`.
///
/// Use it for work that must reach a stated goal ("all tests pass", "under 100 words") when
/// one run of the loop may stop short.
#[derive(Clone)]
pub struct RunUntil {
    base: Base,
    goal: Goal,
    max_iterations: u32,
    max_no_progress: u32,
    max_cost_usd: Option<f64>,
}

impl std::fmt::Debug for RunUntil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let goal = match &self.goal {
            Goal::Checker { condition, .. } => &**condition,
            Goal::When(_) => "(a closure)",
            Goal::Verify(_) => "(a check of the conversation)",
        };
        f.debug_struct("RunUntil")
            .field("base", &self.base)
            .field("goal", &goal)
            .field("max_iterations", &self.max_iterations)
            .finish_non_exhaustive()
    }
}

impl RunUntil {
    /// Until a checker model (the agent's, unless [`checker_model`](Self::checker_model) is
    /// set) says the answer meets `condition`.
    pub fn condition(condition: impl Into<Arc<str>>) -> Self {
        Self::with_goal(Goal::Checker { condition: condition.into(), role: Role::new(CHECKER) })
    }

    /// Until `done` holds for the answer's text.
    pub fn when(done: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self::with_goal(Goal::When(Arc::new(done)))
    }

    /// Until `check` accepts the conversation (the system prompt, the history, the input and
    /// everything the run added) and the answer's text: `Err` says what is still missing, and
    /// the model is told so before the base runs again. A check of the work itself rather
    /// than of the answer: the state a tool left in the conversation (a plan's open steps,
    /// see [`PlanTool::until_done`](crate::tools::plan::PlanTool::until_done)), the result of
    /// the last test run.
    ///
    /// ```
    /// use loomflow::arch::{LoopExit, RunUntil};
    /// use loomflow::prelude::*;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let model = ScriptedModel::new([ScriptedTurn::text("a draft"), ScriptedTurn::text("the final text")]);
    /// let agent = Agent::new("Write.").model(model.clone()).run_until(RunUntil::verify(|messages, answer| {
    ///     let told = messages.iter().filter(|m| matches!(m, Message::User { .. })).count();
    ///     if answer.contains("final") { Ok(()) } else { Err(format!("Not final yet ({told} user messages so far).")) }
    /// }));
    /// let result = agent.run("Go.").await?;
    /// assert_eq!((result.output.as_str(), result.exit), ("the final text", Some(LoopExit::ConditionMet)));
    /// assert!(model.requests()[1].last_text().contains("Not final yet (1 user messages so far)."));
    /// # Ok::<(), loomflow::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(check: impl Fn(&[Message], &str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self::with_goal(Goal::Verify(Arc::new(check)))
    }

    fn with_goal(goal: Goal) -> Self {
        Self { base: Base::default(), goal, max_iterations: 5, max_no_progress: 2, max_cost_usd: None }
    }

    /// The loop inside (ReAct by default, the agent's architecture with `Agent::run_until`).
    #[must_use]
    pub fn base(mut self, base: impl Architecture) -> Self {
        self.base = Base::of(base);
        self
    }

    pub(crate) fn base_shared(mut self, base: Arc<dyn Architecture>) -> Self {
        self.base = Base::shared(base);
        self
    }

    /// The most runs of the base (5 by default).
    #[must_use]
    pub fn max_iterations(mut self, n: u32) -> Self {
        self.max_iterations = n;
        self
    }

    /// How many iterations in a row may give the same answer before the loop gives up (2 by
    /// default).
    #[must_use]
    pub fn max_no_progress(mut self, n: u32) -> Self {
        self.max_no_progress = n;
        self
    }

    /// Stops when the run's cost reaches this many US dollars (while every model's price is
    /// known).
    #[must_use]
    pub fn max_cost_usd(mut self, usd: f64) -> Self {
        self.max_cost_usd = Some(usd);
        self
    }

    /// The checker's model (a model string or value).
    #[must_use]
    pub fn checker_model(mut self, model: impl IntoModel) -> Self {
        if let Goal::Checker { role, .. } = &mut self.goal {
            role.set_model(model);
        }
        self
    }

    /// The checker's prompt.
    #[must_use]
    pub fn checker_prompt(mut self, prompt: impl Into<Arc<str>>) -> Self {
        if let Goal::Checker { role, .. } = &mut self.goal {
            role.set_prompt(prompt);
        }
        self
    }
}

#[async_trait::async_trait]
impl Architecture for RunUntil {
    fn name(&self) -> &str {
        "run-until"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_iterations == 0, "max_iterations", || "run_until needs at least one iteration")?;
        refuse(self.max_no_progress == 0, "max_no_progress", || "allow at least one iteration without progress")?;
        if let Goal::Checker { condition, role } = &self.goal {
            refuse(
                condition.trim().is_empty(),
                "run_until",
                || "the condition is empty; say what the answer must achieve",
            )?;
            role.check("checker")?;
        }
        self.base.check()
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let task = run.input_text().into_owned();
        let mut last: Option<String> = None;
        let mut last_missing: Option<String> = None;
        let mut stale = 0;
        for iteration in 1..=self.max_iterations {
            let answer = self.base.run(run).await?;
            let (met, missing) = match &self.goal {
                Goal::When(done) => (done(&answer), String::new()),
                Goal::Verify(check) => match check(run.messages(), &answer) {
                    Ok(()) => (true, String::new()),
                    Err(missing) => (false, missing),
                },
                Goal::Checker { condition, role } => {
                    let question = role.messages(format!("Goal:\n{condition}\n\nTask:\n{task}\n\nAnswer:\n{answer}"));
                    match run.ask::<GoalCheck>("checker", role.model(), question).await? {
                        Ok(check) => (check.met, check.reason),
                        Err(_) => (false, String::new()),
                    }
                }
            };
            run.emit(
                "run_until.checked",
                || serde_json::json!({"iteration": iteration, "met": met, "reason": &missing}),
            );
            let exit = if met {
                Some(LoopExit::ConditionMet)
            } else if iteration == self.max_iterations {
                Some(LoopExit::MaxIterations)
            } else if self.max_cost_usd.is_some_and(|cap| run.cost_usd().is_some_and(|c| c >= cap)) {
                Some(LoopExit::CostCap)
            } else {
                // A check of the conversation sees progress the answer may not show: the work
                // still missing changed.
                let same_missing = !matches!(self.goal, Goal::Verify(_)) || last_missing.as_deref() == Some(&*missing);
                let same = same_missing && last.as_deref().is_some_and(|l| normalise(l) == normalise(&answer));
                stale = if same { stale + 1 } else { 0 };
                (stale >= self.max_no_progress).then_some(LoopExit::NoProgress)
            };
            if let Some(exit) = exit {
                run.set_exit(exit);
                return Ok(answer);
            }
            let goal = match &self.goal {
                Goal::Checker { condition, .. } => format!(" The goal: {condition}"),
                Goal::When(_) | Goal::Verify(_) => String::new(),
            };
            let told = if missing.is_empty() { String::new() } else { format!(" {missing}") };
            run.messages_mut()
                .push(Message::user(format!("That does not reach the goal yet.{told}{goal} Keep going.")));
            last = Some(answer);
            last_missing = Some(missing);
        }
        // `max_iterations` is at least 1, and its last iteration returns above.
        Ok(last.unwrap_or_default())
    }
}
