//! Debate: several agents answer, read each other, answer again; a judge or a vote decides.

use std::sync::Arc;

use futures::future::join_all;

use super::actor_critic::member_error;
use super::role::{Named, check_members, normalise, refuse, similarity};
use super::run::ChildSession;
use super::{AgentRun, Architecture};
use crate::agent::Agent;
use crate::error::{ConfigError, Error, RunError};
use crate::model::Content;

const OPENING: &str = "Answer the question. Reason it through, then end with a line `Final answer: ...`.";
const ROUND: &str = "Here are the answers of the others in the debate. Consider their reasoning: keep your \
answer if you still think it right, change it if they convinced you. End with a line `Final answer: ...`.";

/// Multi-agent debate: two or more debaters answer the question at once; then, for `rounds`
/// rounds, each reads the others' latest answers and answers again (all at once). Debaters end
/// with `Final answer: ...`. When every debater's final answer is the same (compared
/// normalised: case, markdown and punctuation aside), or, for answers without a final-answer
/// line, their words overlap by at least `convergence_similarity` (Jaccard), the debate stops
/// early. A judge — an agent reading the whole transcript — gives the answer; without one, the
/// final answer most debaters gave wins (a tie goes to the earliest debater).
///
/// A debater whose run fails sits the round out (event `debate.sat_out`) and keeps its last
/// answer; when none answer in the opening round the run fails with
/// [`RunError::Architecture`]. Events: `debate.round`, `debate.converged`, `debate.decided`.
///
/// Use it for questions where independent attempts catch each other's mistakes: reasoning and
/// math, judgement calls, fact checks. Cost grows with debaters × rounds.
#[derive(Clone, Debug)]
pub struct Debate {
    debaters: Vec<Named>,
    judge: Option<Named>,
    rounds: u32,
    convergence: bool,
    convergence_similarity: f64,
}

impl Default for Debate {
    fn default() -> Self {
        Self::new()
    }
}

impl Debate {
    /// A debate without debaters yet: add at least two with [`debater`](Self::debater).
    pub fn new() -> Self {
        Self { debaters: Vec::new(), judge: None, rounds: 2, convergence: true, convergence_similarity: 0.85 }
    }

    /// Adds debater `name`.
    #[must_use]
    pub fn debater<O: Send + Sync + 'static>(mut self, name: impl Into<Arc<str>>, agent: Agent<O>) -> Self {
        self.debaters.push(Named::new(name, agent));
        self
    }

    /// The judge, who reads the transcript and gives the answer (instead of a vote).
    #[must_use]
    pub fn judge<O: Send + Sync + 'static>(mut self, agent: Agent<O>) -> Self {
        self.judge = Some(Named::new("judge", agent));
        self
    }

    /// The rounds after the opening answers (at least 1).
    #[must_use]
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds;
        self
    }

    /// Whether the debate stops early when the debaters agree (the default).
    #[must_use]
    pub fn convergence(mut self, check: bool) -> Self {
        self.convergence = check;
        self
    }

    /// The word overlap, from 0 to 1, at which answers without a final-answer line agree.
    #[must_use]
    pub fn convergence_similarity(mut self, similarity: f64) -> Self {
        self.convergence_similarity = similarity;
        self
    }
}

/// The final answer a debater gave: the text after its last `Final answer:` line, if any.
pub(crate) fn final_answer(reply: &str) -> Option<&str> {
    reply.lines().rev().find_map(|line| {
        let line = line.trim().trim_start_matches(['*', '_', '#', '>', '-', ' ']);
        let lower = line.get(..13)?.to_ascii_lowercase();
        (lower == "final answer:").then(|| line[13..].trim().trim_matches(['*', '_', ' ']))
    })
}

impl Debate {
    /// Whether the answers agree.
    fn converged(&self, answers: &[Option<String>]) -> bool {
        let given: Vec<&str> = answers.iter().flatten().map(String::as_str).collect();
        if given.len() < 2 {
            return false;
        }
        let finals: Option<Vec<String>> = given.iter().map(|a| final_answer(a).map(normalise)).collect();
        match finals {
            Some(finals) => finals.windows(2).all(|w| w[0] == w[1]),
            None => given
                .iter()
                .enumerate()
                .all(|(i, a)| given[i + 1..].iter().all(|b| similarity(a, b) >= self.convergence_similarity)),
        }
    }

    fn transcript(&self, answers: &[Option<String>], except: Option<usize>) -> String {
        let mut out = String::new();
        for (i, (d, a)) in self.debaters.iter().zip(answers).enumerate() {
            if Some(i) == except {
                continue;
            }
            if let Some(a) = a {
                out.push_str(&format!("[{}]\n{a}\n\n", d.name));
            }
        }
        out
    }

    /// One round: every debater at once, each with its prompt; a failure keeps the last answer.
    async fn round(&self, run: &AgentRun<'_>, round: u32, answers: &mut [Option<String>], prompts: Vec<Content>) {
        let asked = self
            .debaters
            .iter()
            .zip(prompts)
            .map(|(d, prompt)| run.member(&d.name, round, &*d.agent, prompt, ChildSession::None));
        for ((d, answer), slot) in self.debaters.iter().zip(join_all(asked).await).zip(answers.iter_mut()) {
            match answer {
                Ok(answer) => *slot = Some(answer),
                Err(e) => {
                    run.emit(
                        "debate.sat_out",
                        || serde_json::json!({"debater": &*d.name, "round": round, "error": e.to_string()}),
                    );
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Architecture for Debate {
    fn name(&self) -> &str {
        "debate"
    }

    fn check(&self) -> Result<(), ConfigError> {
        check_members("debate", "debaters", &self.debaters, 2)?;
        refuse(self.rounds == 0, "rounds", || "a debate needs at least one round after the opening answers")?;
        refuse(!(0.0..=1.0).contains(&self.convergence_similarity), "convergence_similarity", || {
            format!("a similarity is from 0 to 1, not {}", self.convergence_similarity)
        })?;
        match &self.judge {
            Some(judge) => judge.agent.check().map_err(|e| member_error("judge", &e)),
            None => Ok(()),
        }
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let question = run.input_text().into_owned();
        let mut answers: Vec<Option<String>> = vec![None; self.debaters.len()];
        let opening = vec![Content::from(format!("{question}\n\n{OPENING}")); self.debaters.len()];
        self.round(run, 0, &mut answers, opening).await;
        if answers.iter().all(Option::is_none) {
            return Err(RunError::Architecture {
                architecture: "debate".to_owned(),
                reason: "no debater answered the opening round; see the `debate.sat_out` events".to_owned(),
            }
            .into());
        }
        run.emit("debate.round", || serde_json::json!({"round": 0, "answers": &answers}));
        for round in 1..=self.rounds {
            if self.convergence && self.converged(&answers) {
                run.emit("debate.converged", || serde_json::json!({"after_round": round - 1}));
                break;
            }
            let prompts = (0..self.debaters.len())
                .map(|i| {
                    let own = answers[i].as_deref().unwrap_or("(you did not answer)");
                    Content::from(format!(
                        "Question:\n{question}\n\nYour last answer:\n{own}\n\n{ROUND}\n\n{}",
                        self.transcript(&answers, Some(i))
                    ))
                })
                .collect();
            self.round(run, round, &mut answers, prompts).await;
            run.emit("debate.round", || serde_json::json!({"round": round, "answers": &answers}));
        }
        if let Some(judge) = &self.judge {
            let prompt = format!(
                "Question:\n{question}\n\nThe debaters' answers:\n\n{}Give the answer to the question.",
                self.transcript(&answers, None)
            );
            let answer = run.member("judge", 0, &*judge.agent, Content::from(prompt), ChildSession::None).await?;
            run.emit("debate.decided", || serde_json::json!({"by": "judge"}));
            return Ok(answer);
        }
        // A vote over the final answers; a tie goes to the earliest debater.
        let votes: Vec<(usize, String, &str)> = answers
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_deref().map(|a| (i, a)))
            .map(|(i, a)| {
                let said = final_answer(a).unwrap_or(a);
                (i, normalise(said), said)
            })
            .collect();
        let mut best: Option<(usize, usize)> = None;
        for (i, key, _) in &votes {
            let count = votes.iter().filter(|(_, k, _)| k == key).count();
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((*i, count));
            }
        }
        let (winner, count) = best.unwrap_or((0, 0));
        let said = votes.iter().find(|(i, ..)| *i == winner).map_or("", |(.., s)| *s).to_owned();
        run.emit(
            "debate.decided",
            || serde_json::json!({"by": "vote", "debater": &*self.debaters[winner].name, "votes": count}),
        );
        Ok(said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_answers_are_found_in_markdown_and_any_case() {
        assert_eq!(final_answer("Reasoning...\nFinal answer: 42"), Some("42"));
        assert_eq!(final_answer("x\n**Final Answer:** Paris."), Some("Paris."));
        assert_eq!(final_answer("- final answer: yes\nthanks"), Some("yes"));
        assert_eq!(final_answer("no line here"), None);
        assert_eq!(normalise("**Paris.**"), normalise("paris"));
    }
}
