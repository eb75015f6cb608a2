//! Tree of Thoughts: a beam search over steps of reasoning.

use futures::future::join_all;

use super::control::{Evaluation, Thoughts};
use super::role::{Role, role_methods};
use super::{AgentRun, Architecture};
use crate::error::{ConfigError, Error, RunError};

const PROPOSER: &str = "You explore ways to solve a task, one step of reasoning at a time. Given the task and \
the reasoning so far, propose distinct next steps: each a short paragraph that moves toward the solution in \
a different direction.";
const EVALUATOR: &str = "You judge a partial line of reasoning toward solving a task. Score from 0 (a dead end \
or wrong) to 1 (it solves the task), with the reason in one sentence.";
const SYNTHESIZER: &str = "Write the final answer to the task, following the line of reasoning given. Reply \
with the answer.";

/// Tree of Thoughts: a breadth-first beam search over steps of reasoning. At each depth, a
/// proposer suggests `branch_factor` next thoughts for each node of the frontier (one call per
/// node, all nodes at once); an evaluator scores each candidate from 0 to 1 (all candidates at
/// once); the best `beam_width` candidates scoring at least `min_score` are the next frontier.
/// The search stops at `max_depth`, or as soon as a candidate scores `solved_threshold`. The
/// best node of the deepest level gives the chain of thoughts, from which a synthesizer writes
/// the answer (or, without synthesis, the last thought is the answer).
///
/// Node ids are paths: `1`, `1.2`, `1.2.3` (events `tot.level`, `tot.solved`). A proposal
/// still malformed after its retry gives its node no children; a score that is, scores 0
/// (events `control.rejected`). When no candidate is left at the first depth the run fails
/// with [`RunError::Architecture`].
///
/// Use it for problems where the first idea is often wrong and ideas can be judged before
/// they are finished: puzzles, planning, math. Model calls: per depth, one per frontier node
/// and one per candidate; then one synthesis.
#[derive(Clone, Debug)]
pub struct TreeOfThoughts {
    branch_factor: usize,
    max_depth: u32,
    beam_width: usize,
    solved_threshold: f64,
    min_score: f64,
    parallel: bool,
    synthesize: bool,
    proposer: Role,
    evaluator: Role,
    synthesizer: Role,
}

impl Default for TreeOfThoughts {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeOfThoughts {
    /// Three thoughts per node, depth 3, a beam of 2, solved at 1.0; concurrent; synthesised.
    pub fn new() -> Self {
        Self {
            branch_factor: 3,
            max_depth: 3,
            beam_width: 2,
            solved_threshold: 1.0,
            min_score: 0.0,
            parallel: true,
            synthesize: true,
            proposer: Role::new(PROPOSER),
            evaluator: Role::new(EVALUATOR),
            synthesizer: Role::new(SYNTHESIZER),
        }
    }

    /// Thoughts proposed per node.
    #[must_use]
    pub fn branch_factor(mut self, n: usize) -> Self {
        self.branch_factor = n;
        self
    }

    /// The deepest level searched.
    #[must_use]
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }

    /// Candidates kept per level.
    #[must_use]
    pub fn beam_width(mut self, width: usize) -> Self {
        self.beam_width = width;
        self
    }

    /// The score at which a candidate solves the task and the search stops.
    #[must_use]
    pub fn solved_threshold(mut self, score: f64) -> Self {
        self.solved_threshold = score;
        self
    }

    /// The lowest score a candidate may have to be kept.
    #[must_use]
    pub fn min_score(mut self, score: f64) -> Self {
        self.min_score = score;
        self
    }

    /// Whether the proposals of a level, and the scores of its candidates, are asked for all at
    /// once (the default) or one after another.
    #[must_use]
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Whether a synthesizer writes the answer from the best chain (the default), or the best
    /// chain's last thought is the answer.
    #[must_use]
    pub fn synthesize(mut self, synthesize: bool) -> Self {
        self.synthesize = synthesize;
        self
    }
}

role_methods!(TreeOfThoughts {
    proposer(proposer_prompt, proposer_model): "the proposer",
    evaluator(evaluator_prompt, evaluator_model): "the evaluator",
    synthesizer(synthesizer_prompt, synthesizer_model): "the synthesizer",
});

/// A node of the tree: its path, its chain of thoughts from the root, its score.
#[derive(Clone, Debug)]
struct Node {
    id: String,
    chain: Vec<String>,
    score: f64,
}

/// The task and a chain of thoughts, for a prompt.
fn show(task: &str, chain: &[String]) -> String {
    let mut out = format!("Task:\n{task}\n");
    if !chain.is_empty() {
        out.push_str("\nReasoning so far:\n");
        for (i, thought) in chain.iter().enumerate() {
            out.push_str(&format!("{}. {thought}\n", i + 1));
        }
    }
    out
}

/// Runs `futures` all at once, or one after another.
async fn all<F: Future>(parallel: bool, futures: Vec<F>) -> Vec<F::Output> {
    if parallel {
        return join_all(futures).await;
    }
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await);
    }
    out
}

#[async_trait::async_trait]
impl Architecture for TreeOfThoughts {
    fn name(&self) -> &str {
        "tree-of-thoughts"
    }

    fn check(&self) -> Result<(), ConfigError> {
        let problem = if self.branch_factor == 0 {
            Some(("branch_factor", "propose at least one thought per node".to_owned()))
        } else if self.max_depth == 0 {
            Some(("max_depth", "search at least one level".to_owned()))
        } else if self.beam_width == 0 {
            Some(("beam_width", "keep at least one candidate per level".to_owned()))
        } else if !(0.0..=1.0).contains(&self.solved_threshold) || !(0.0..=1.0).contains(&self.min_score) {
            Some(("solved_threshold", "scores are from 0 to 1".to_owned()))
        } else {
            None
        };
        if let Some((setting, reason)) = problem {
            return Err(ConfigError::InvalidSetting { setting, reason: format!("Tree of Thoughts: {reason}") });
        }
        self.proposer.check("proposer")?;
        self.evaluator.check("evaluator")?;
        self.synthesizer.check("synthesizer")
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let task = run.input_text().into_owned();
        let k = self.branch_factor;
        let mut frontier = vec![Node { id: String::new(), chain: Vec::new(), score: 0.0 }];
        let mut best: Option<Node> = None;
        for depth in 1..=self.max_depth {
            let runner = &*run;
            // Asked in frontier order: each question's number in the run is taken here.
            let asks: Vec<_> = frontier
                .iter()
                .map(|node| {
                    let question = self
                        .proposer
                        .messages(format!("{}\nPropose {k} distinct next thoughts.", show(&task, &node.chain)));
                    runner.ask_checked::<Thoughts>("proposer", self.proposer.model(), question, |t: &Thoughts| {
                        if t.thoughts.iter().any(|t| !t.trim().is_empty()) {
                            Ok(())
                        } else {
                            Err("`thoughts` is empty; propose at least one thought".to_owned())
                        }
                    })
                })
                .collect();
            let proposals = all(self.parallel, asks).await;
            let mut candidates = Vec::new();
            for (node, proposal) in frontier.iter().zip(proposals) {
                let Ok(thoughts) = proposal? else { continue };
                let fresh = thoughts.thoughts.into_iter().filter(|t| !t.trim().is_empty()).take(k);
                for (i, thought) in fresh.enumerate() {
                    let id = if node.id.is_empty() { format!("{}", i + 1) } else { format!("{}.{}", node.id, i + 1) };
                    let mut chain = node.chain.clone();
                    chain.push(thought);
                    candidates.push(Node { id, chain, score: 0.0 });
                }
            }
            let scores: Vec<_> = candidates
                .iter()
                .map(|c| {
                    let question = self.evaluator.messages(show(&task, &c.chain));
                    runner.ask::<Evaluation>("evaluator", self.evaluator.model(), question)
                })
                .collect();
            for (candidate, score) in candidates.iter_mut().zip(all(self.parallel, scores).await) {
                candidate.score = score?.map_or(0.0, |e| e.score);
            }
            run.emit("tot.level", || {
                serde_json::json!({
                    "depth": depth,
                    "candidates": candidates.iter().map(|c| serde_json::json!({"id": &c.id, "score": c.score})).collect::<Vec<_>>(),
                })
            });
            candidates.retain(|c| c.score >= self.min_score);
            // Best first; equal scores keep their order (the earlier proposal first).
            candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
            candidates.truncate(self.beam_width);
            let Some(top) = candidates.first() else { break };
            best = Some(top.clone());
            if top.score >= self.solved_threshold {
                run.emit("tot.solved", || serde_json::json!({"id": &top.id, "score": top.score}));
                break;
            }
            frontier = candidates;
        }
        let Some(best) = best else {
            return Err(RunError::Architecture {
                architecture: "tree-of-thoughts".to_owned(),
                reason: format!(
                    "no thought was proposed, or none scored at least {}; check the proposer's and evaluator's \
                     prompts or lower `min_score`",
                    self.min_score
                ),
            }
            .into());
        };
        if !self.synthesize {
            return Ok(best.chain.last().cloned().unwrap_or_default());
        }
        let question = self.synthesizer.messages(show(&task, &best.chain));
        run.answer("synthesizer", self.synthesizer.model(), question).await
    }
}
