//! Self-Refine: draft, critique, refine, until the critic has nothing left to say.

use std::sync::Arc;

use super::role::{Role, normalise, refuse, role_methods};
use super::{AgentRun, Architecture, Base};
use crate::error::{ConfigError, Error};
use crate::model::Message;

const CRITIC: &str = "You review an answer to a task. List the concrete problems in it (mistakes, omissions, \
unclear or unsupported parts) and how to fix each. If there are none, reply with exactly: No issues.";
const REFINER: &str = "Rewrite your last answer so that it fixes every problem in this critique. Reply with \
the improved answer only.";

/// Self-Refine: the agent answers (by its base loop, ReAct unless told otherwise); a critic
/// reviews the answer; unless the critic finds nothing to fix, a refiner rewrites the answer
/// with the critique, seeing the whole conversation; repeat for at most `max_rounds` critiques.
///
/// The critic's reply stops the loop when it is the stop phrase (`"no issues"` by default),
/// as the whole reply or its first line, whatever the case, markdown and punctuation. Critic
/// and refiner answer in text, without tools; with a typed output the refiner's answer is the
/// typed value.
///
/// Use it when a second look improves answers: writing, code, explanations. Model calls: the
/// base's, then one critique per round and one refinement per round that found problems.
///
/// ```
/// use loomflow::arch::SelfRefine;
/// use loomflow::prelude::*;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let model = ScriptedModel::new([
///     ScriptedTurn::text("Loom is fast."),                  // the draft
///     ScriptedTurn::text("Say what it is, not only how."), // the critique
///     ScriptedTurn::text("Loom is a fast agent framework."),
///     ScriptedTurn::text("No issues."),
/// ]);
/// let agent = Agent::new("Describe things.").model(model).architecture(SelfRefine::new().max_rounds(3));
/// let result = agent.run("Describe Loom.").await?;
/// assert_eq!((result.output.as_str(), result.turns), ("Loom is a fast agent framework.", 4));
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SelfRefine {
    base: Base,
    max_rounds: u32,
    critic: Role,
    refiner: Role,
    stop_phrase: Arc<str>,
}

impl Default for SelfRefine {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfRefine {
    /// Self-Refine over ReAct: at most 3 critiques, stopping at "no issues".
    pub fn new() -> Self {
        Self {
            base: Base::default(),
            max_rounds: 3,
            critic: Role::new(CRITIC),
            refiner: Role::new(REFINER),
            stop_phrase: Arc::from("no issues"),
        }
    }

    /// The loop that writes the first draft (ReAct by default): any architecture.
    #[must_use]
    pub fn base(mut self, base: impl Architecture) -> Self {
        self.base = Base::of(base);
        self
    }

    /// The most critiques (at least 1).
    #[must_use]
    pub fn max_rounds(mut self, rounds: u32) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// The critic's reply that means "nothing to fix".
    #[must_use]
    pub fn stop_phrase(mut self, phrase: impl Into<Arc<str>>) -> Self {
        self.stop_phrase = phrase.into();
        self
    }
}

role_methods!(SelfRefine {
    critic(critic_prompt, critic_model): "the critic",
    refiner(refiner_prompt, refiner_model): "the refiner",
});

/// Whether `reply` says what `phrase` says: the whole reply or its first line, normalised.
pub(crate) fn says(reply: &str, phrase: &str) -> bool {
    let phrase = normalise(phrase);
    let first = reply.trim().lines().next().unwrap_or("");
    normalise(reply) == phrase || normalise(first) == phrase
}

#[async_trait::async_trait]
impl Architecture for SelfRefine {
    fn name(&self) -> &str {
        "self-refine"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_rounds == 0, "max_rounds", || "Self-Refine needs at least one round of critique")?;
        refuse(
            normalise(&self.stop_phrase).is_empty(),
            "stop_phrase",
            || "the stop phrase has no words; the critic could never stop the loop",
        )?;
        self.base.check()?;
        self.critic.check("critic")?;
        self.refiner.check("refiner")
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let mut draft = self.base.run(run).await?;
        let task = run.input_text().into_owned();
        for round in 1..=self.max_rounds {
            let review = self.critic.messages(format!("Task:\n{task}\n\nAnswer:\n{draft}"));
            let critique = run.text("critic", self.critic.model(), &review).await?;
            let done = says(&critique, &self.stop_phrase);
            run.emit("self_refine.critique", || serde_json::json!({"round": round, "done": done}));
            if done {
                break;
            }
            // The refiner sees the whole conversation, the draft as its last answer.
            let mut messages = run.messages().to_vec();
            if !matches!(messages.last(), Some(Message::Assistant { tool_calls, .. }) if tool_calls.is_empty()) {
                messages.push(Message::assistant(draft.as_str()));
            }
            messages.push(Message::user(format!("{}\n\nCritique:\n{critique}", self.refiner.prompt)));
            draft = run.answer("refiner", self.refiner.model(), messages).await?;
            // The conversation ends on the refined answer.
            set_last_answer(run, &draft);
        }
        Ok(draft)
    }
}

/// Makes `answer` the conversation's last answer (replacing the draft it ended on).
pub(crate) fn set_last_answer(run: &mut AgentRun<'_>, answer: &str) {
    let after_input = run.messages().len() > run.input_index + 1;
    match run.messages_mut().last_mut() {
        Some(Message::Assistant { content, tool_calls }) if after_input && tool_calls.is_empty() => {
            *content = crate::model::Content::from(answer);
        }
        _ => run.messages_mut().push(Message::assistant(answer)),
    }
}
