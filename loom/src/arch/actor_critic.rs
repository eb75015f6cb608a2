//! Actor-Critic: an actor drafts, a critic scores, the actor revises until the score is high.

use std::sync::Arc;

use super::control::Critique;
use super::role::Member;
use super::role::refuse;
use super::run::{ChildKey, ChildSession};
use super::{AgentRun, Architecture};
use crate::agent::Agent;
use crate::error::{ConfigError, Error};
use crate::model::Content;
use crate::output::{OutputAttempt, OutputError};

const CRITIC: &str = "Judge the draft against the task: list its problems, score it from 0 (unusable) to 1 \
(nothing to improve), and sum up in a sentence.";

/// Actor-Critic: two agents. The actor drafts an answer; the critic — asked for a typed
/// [`Critique`] (issues, a score from 0 to 1, a summary) — judges it; at `approval_threshold`
/// the draft stands, otherwise the actor revises it with the critique, for at most
/// `max_rounds` critiques. Each is a child run on the spine (its events carry this run's id,
/// its usage counts in this run's).
///
/// A critique that is still malformed after the critic's output retries scores 0 (event
/// `actor_critic.critique_rejected`), so the actor revises. Events: `actor_critic.scored`.
///
/// Use it when a separate reviewer with its own instructions (or a stronger model) should
/// hold drafts to a standard: code review, compliance, writing to a rubric.
#[derive(Clone)]
pub struct ActorCritic {
    actor: Arc<dyn Member>,
    critic: Arc<Agent<Critique>>,
    max_rounds: u32,
    threshold: f64,
}

impl std::fmt::Debug for ActorCritic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorCritic")
            .field("max_rounds", &self.max_rounds)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl ActorCritic {
    /// The actor and the critic. The critic's output becomes a [`Critique`]; its instructions
    /// get the scoring rules appended.
    pub fn new<O: Send + Sync + 'static>(actor: Agent<O>, critic: Agent) -> Self {
        let instructions = format!("{}\n\n{CRITIC}", critic.instructions());
        let critic = critic.replace_instructions(instructions).output::<Critique>();
        Self { actor: Arc::new(actor), critic: Arc::new(critic), max_rounds: 3, threshold: 0.9 }
    }

    /// The most critiques (at least 1).
    #[must_use]
    pub fn max_rounds(mut self, rounds: u32) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// The score, from 0 to 1, at which a draft stands.
    #[must_use]
    pub fn approval_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }
}

#[async_trait::async_trait]
impl Architecture for ActorCritic {
    fn name(&self) -> &str {
        "actor-critic"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_rounds == 0, "max_rounds", || "Actor-Critic needs at least one round of critique")?;
        refuse(!(0.0..=1.0).contains(&self.threshold), "approval_threshold", || {
            format!("the threshold is a score from 0 to 1, not {}", self.threshold)
        })?;
        self.actor.check().map_err(|e| member_error("actor", &e))?;
        self.critic.check().map_err(|e| member_error("critic", &e))
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let task = run.input_text().into_owned();
        let input = run.input().cloned().unwrap_or_default();
        let mut draft = run.member("actor", 0, &*self.actor, input, ChildSession::None).await?;
        for round in 1..=self.max_rounds {
            let review = format!("Task:\n{task}\n\nDraft:\n{draft}");
            let critic = &*self.critic;
            let shared = &*run;
            let asked = shared.journaled(format!("critic#{round}"), move || async move {
                let result = shared
                    .run_child(ChildKey::Order("critic", round), critic, review.into(), ChildSession::None)
                    .await?;
                Ok(result.text().to_owned())
            });
            let critique = match asked.await.and_then(|text| {
                crate::output::parse_as::<Critique>(&text, false)
                    .map_err(|problem| OutputError::new("Critique", vec![OutputAttempt::new(text, problem)]).into())
            }) {
                Ok(critique) => critique,
                Err(Error::Output(e)) => {
                    run.emit(
                        "actor_critic.critique_rejected",
                        || serde_json::json!({"round": round, "error": e.to_string()}),
                    );
                    Critique { issues: Vec::new(), score: 0.0, summary: "the critique could not be read".to_owned() }
                }
                Err(e) => return Err(e),
            };
            let approved = critique.score >= self.threshold;
            run.emit("actor_critic.scored", || {
                serde_json::json!({"round": round, "score": critique.score, "approved": approved, "issues": &critique.issues})
            });
            if approved || round == self.max_rounds {
                break;
            }
            let mut revise = format!(
                "Task:\n{task}\n\nYour draft:\n{draft}\n\nA reviewer scored it {:.2}: {}\n",
                critique.score, critique.summary
            );
            for issue in &critique.issues {
                revise.push_str(&format!("- {issue}\n"));
            }
            revise.push_str("\nRevise the draft to fix these problems. Reply with the revised answer only.");
            draft = run.member("actor", round, &*self.actor, Content::from(revise), ChildSession::None).await?;
        }
        Ok(draft)
    }
}

/// A member's configuration problem, naming the member.
pub(crate) fn member_error(member: &str, e: &ConfigError) -> ConfigError {
    ConfigError::InvalidSetting { setting: "architecture", reason: format!("the {member} is misconfigured: {e}") }
}
