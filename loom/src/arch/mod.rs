//! Architectures: how an agent's loop goes.
//!
//! An [`Agent`](crate::Agent) runs [`ReAct`] unless told otherwise: call the model, run the
//! tools it asks for, repeat until it answers. [`Agent::architecture`](crate::Agent::architecture)
//! swaps the loop for another — by name for the single-agent ones (`"self-refine"`,
//! `"reflexion"`, `"plan-and-execute"`, `"rewoo"`, `"tree-of-thoughts"`), or as a value, which
//! is how settings are given and how the multi-agent ones get their agents:
//!
//! | architecture | use it when |
//! |---|---|
//! | [`ReAct`] | the model should decide what to do next, tool by tool (the default) |
//! | [`SelfRefine`] | a second look improves answers: writing, code, explanations |
//! | [`Reflexion`] | answers have a checkable quality and retrying with hindsight helps |
//! | [`TreeOfThoughts`] | the first idea is often wrong and ideas can be judged early: puzzles, planning |
//! | [`PlanAndExecute`] | the steps can be foreseen and one long loop loses its way |
//! | [`ReWoo`] | the tool calls can be planned up front: lookups, fan-out searches (fewest tokens) |
//! | [`Router`] | requests fall into kinds that different specialists handle |
//! | [`Supervisor`] | a task splits into parts for specialists, and someone must put them together |
//! | [`ActorCritic`] | a separate reviewer should hold drafts to a standard |
//! | [`Debate`] | independent attempts catch each other's mistakes |
//! | [`Swarm`] | a conversation moves between specialists who know when to pass it on |
//! | [`Blackboard`] | work builds up from several kinds of expertise in no fixed order |
//!
//! Every architecture drives the same [`AgentRun`]: each model call, tool call and team
//! member's run goes through it, so events (a member's carry this run's id as their parent),
//! spans, usage, cost and the journal are the same whichever loop makes them, and a crashed
//! run of any architecture resumes elsewhere without repeating what finished. The control
//! messages models write — plans, routes, scores, picks — are typed ([`Plan`], [`RouteChoice`],
//! [`Evaluation`] ...), asked for with their schema and parsed like a typed output, with one
//! retry; each architecture documents what it does with one still malformed.
//!
//! They compose: [`Reflexion`], [`SelfRefine`] and [`RunUntil`] take any architecture as their
//! `base`, a team member is a full agent with an architecture of its own (a supervisor of
//! supervisors), and each role can have its own model (`.critic_model(..)`, `.planner_model(..)`).
//! [`Team`] builds the multi-agent ones as plain agents.
//!
//! ```
//! use loomflow::arch::{Reflexion, Supervisor};
//! use loomflow::prelude::*;
//!
//! let researcher = Agent::new("You find facts.").name("researcher").model("echo");
//! let writer = Agent::new("You write clearly.").name("writer").model("echo");
//! // A supervised team that retries, with a lesson, until its answer scores 0.8.
//! let team = Agent::new("You lead a research team.")
//!     .model("echo")
//!     .architecture(Reflexion::new().base(Supervisor::new().worker("researcher", researcher).worker("writer", writer)));
//! assert_eq!(team.architecture_name(), "reflexion");
//! assert!(team.check().is_ok());
//! ```
//!
//! Write your own by implementing [`Architecture`].

mod actor_critic;
mod blackboard;
mod control;
mod debate;
mod model_call;
mod plan_execute;
mod react;
mod reflexion;
mod rewoo;
mod role;
mod router;
mod run;
mod self_refine;
mod supervisor;
mod swarm;
mod team;
mod tree_of_thoughts;
mod until;

use std::sync::Arc;

pub use actor_critic::ActorCritic;
pub use blackboard::Blackboard;
pub use control::{Critique, Evaluation, GoalCheck, Pick, Plan, RouteChoice, Thoughts, WorkPlan, WorkStep};
pub use debate::Debate;
pub use plan_execute::PlanAndExecute;
pub use react::ReAct;
pub use reflexion::Reflexion;
pub use rewoo::ReWoo;
pub use router::{RouteSessions, Router};
pub use run::{AgentRun, ChildSession, LoopExit, ModelCall, ModelTurn};
pub use self_refine::SelfRefine;
pub use supervisor::Supervisor;
pub use swarm::Swarm;
pub use team::Team;
pub use tree_of_thoughts::TreeOfThoughts;
pub use until::RunUntil;

pub(crate) use react::{react, react_default};
pub(crate) use run::{Parts, Tally};

use crate::error::{ConfigError, Error};

/// A loop an agent runs: from the conversation (system prompt, history, the user's input) to
/// the run's answer, through the [`AgentRun`].
///
/// `run` returns the answer's text. When the agent has a typed output and the architecture
/// did not [`accept`](AgentRun::accept) an answer itself, the run parses the text as the
/// output type and asks the agent's model to correct it when it does not fit. The
/// conversation the run keeps (and the session stores) is [`AgentRun::messages`]: add to it
/// what the user should see again next time — usually only the answer, which the run adds
/// when the architecture did not.
///
/// ```
/// use loomflow::arch::{AgentRun, Architecture, ModelCall};
/// use loomflow::model::{Message, ModelRequest};
/// use loomflow::prelude::*;
///
/// /// Answers, then answers again more briefly.
/// struct TwoDrafts;
///
/// #[loomflow::async_trait]
/// impl Architecture for TwoDrafts {
///     fn name(&self) -> &str {
///         "two-drafts"
///     }
///
///     async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
///         let first = run.call_model(ModelCall::new("drafter", ModelRequest::new(run.messages()))).await?;
///         let mut shorter = run.messages().to_vec();
///         shorter.push(Message::assistant(first.response.text.as_str()));
///         shorter.push(Message::user("Say that in half the words."));
///         let second = run.call_model(ModelCall::new("shortener", ModelRequest::new(&shorter)).answer()).await?;
///         Ok(second.response.text.to_string())
///     }
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let model = ScriptedModel::new([ScriptedTurn::text("A long answer."), ScriptedTurn::text("Short.")]);
/// let agent = Agent::new("Be clear.").model(model).architecture(TwoDrafts);
/// let result = agent.run("Explain looms.").await?;
/// assert_eq!((result.output.as_str(), result.turns), ("Short.", 2));
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an agent architecture",
    note = "give an architecture by name (\"react\", \"self-refine\", ...) or a value that implements `loomflow::arch::Architecture`"
)]
#[async_trait::async_trait]
pub trait Architecture: Send + Sync + 'static {
    /// The architecture's name (`react`, `supervisor` ...), in events and errors.
    fn name(&self) -> &str;

    /// Checks the configuration (a debate needs two debaters, a router a route): a problem is
    /// reported by [`Agent::check`](crate::Agent::check) and by every run, before any model call.
    fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Runs the loop and returns the answer's text.
    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error>;
}

#[async_trait::async_trait]
impl<A: Architecture + ?Sized> Architecture for Arc<A> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn check(&self) -> Result<(), ConfigError> {
        (**self).check()
    }
    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        (**self).run(run).await
    }
}

/// The architectures that can be named by a string.
pub const ARCHITECTURE_NAMES: &[&str] =
    &["react", "self-refine", "reflexion", "plan-and-execute", "rewoo", "tree-of-thoughts"];

/// The architecture named `name`, with its defaults: one of [`ARCHITECTURE_NAMES`]. An
/// unknown name is a [`ConfigError`] naming the known ones, with the closest.
pub fn by_name(name: &str) -> Result<Arc<dyn Architecture>, ConfigError> {
    let name = name.trim();
    Ok(match name.to_ascii_lowercase().replace('_', "-").as_str() {
        "react" => Arc::new(ReAct::new()),
        "self-refine" => Arc::new(SelfRefine::new()),
        "reflexion" => Arc::new(Reflexion::new()),
        "tree-of-thoughts" => Arc::new(TreeOfThoughts::new()),
        "plan-and-execute" => Arc::new(PlanAndExecute::new()),
        "rewoo" => Arc::new(ReWoo::new()),
        _ => {
            let hint = loomflow_graph::suggest::did_you_mean(name, ARCHITECTURE_NAMES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(ConfigError::InvalidSetting {
                setting: "architecture",
                reason: format!(
                    "unknown architecture `{name}`{hint}; known by name: {} (the multi-agent ones are given as values)",
                    ARCHITECTURE_NAMES.join(", ")
                ),
            });
        }
    })
}

/// Anything [`Agent::architecture`](crate::Agent::architecture) takes: a name, or an
/// architecture.
pub trait IntoArchitecture {
    /// The shared architecture.
    fn into_architecture(self) -> Result<Arc<dyn Architecture>, ConfigError>;
}

impl<A: Architecture> IntoArchitecture for A {
    fn into_architecture(self) -> Result<Arc<dyn Architecture>, ConfigError> {
        Ok(Arc::new(self))
    }
}

impl IntoArchitecture for &str {
    fn into_architecture(self) -> Result<Arc<dyn Architecture>, ConfigError> {
        by_name(self)
    }
}

impl IntoArchitecture for String {
    fn into_architecture(self) -> Result<Arc<dyn Architecture>, ConfigError> {
        by_name(&self)
    }
}

/// The loop an architecture builds on: ReAct unless another is given.
#[derive(Clone, Default)]
pub(crate) struct Base(Option<Arc<dyn Architecture>>);

impl Base {
    pub(crate) fn of(architecture: impl Architecture) -> Self {
        Self(Some(Arc::new(architecture)))
    }

    pub(crate) fn shared(architecture: Arc<dyn Architecture>) -> Self {
        Self(Some(architecture))
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.0.as_deref().map_or(Ok(()), Architecture::check)
    }

    /// Runs the base loop on the run.
    pub(crate) async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        match &self.0 {
            Some(base) => base.run(run).await,
            None => react(run, None).await,
        }
    }
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_deref().map_or("react", Architecture::name))
    }
}
