//! Reflexion: attempt, evaluate, learn a lesson, try again with what was learned.

use super::control::Evaluation;
use super::role::{Role, refuse, role_methods};
use super::{AgentRun, Architecture, Base};
use crate::error::{ConfigError, Error, RunError};
use crate::id::{RunId, SessionId};
use crate::memory::{Episode, RecallQuery};
use crate::model::{Content, Message};

const EVALUATOR: &str = "You grade an answer to a task. Give a score from 0 (wrong or useless) to 1 (correct \
and complete), and the reason in one sentence.";
const REFLECTOR: &str = "An attempt at a task fell short. In one sentence, write a lesson that would make the \
next attempt at this kind of task better. Reply with the lesson only.";

/// The session (per user) Reflexion keeps its lessons in, when the agent has no name.
const LESSONS: &str = "loom:lessons";

/// Reflexion: each attempt runs the base loop (ReAct unless told otherwise) with the lessons
/// learned so far in the system prompt; an evaluator scores the answer from 0 to 1; at the
/// threshold the answer stands. Otherwise a reflector writes a one-sentence lesson, which is
/// kept, and the next attempt starts again from the user's message.
///
/// Lessons are kept per user, so they are recalled by later runs of the same agent for the
/// same user, in any process. With a [memory](crate::Agent::memory) they are episodes of kind
/// `lesson/{agent}` there, and the `top_k_lessons` that bear most on the task are recalled
/// (they are exported and forgotten with the rest of the user's memory); without one they are
/// kept in the agent's session store (session `loom:lessons/{agent}`) and the most recent are
/// recalled. A lesson already kept is not kept twice (a resumed run does not repeat one).
///
/// An attempt that runs out of turns scores 0. An evaluation that is still malformed after
/// its retry scores 0 (event `control.rejected`). When no attempt reaches the threshold, the
/// best-scoring answer is the run's.
///
/// Use it for tasks with a checkable quality where retrying with hindsight helps: puzzles,
/// code that must pass a check, answers graded against a rubric.
#[derive(Clone, Debug)]
pub struct Reflexion {
    base: Base,
    max_attempts: u32,
    threshold: f64,
    evaluator: Role,
    reflector: Role,
    top_k_lessons: usize,
}

impl Default for Reflexion {
    fn default() -> Self {
        Self::new()
    }
}

impl Reflexion {
    /// Reflexion over ReAct: at most 3 attempts, threshold 0.8, the 5 latest lessons recalled.
    pub fn new() -> Self {
        Self {
            base: Base::default(),
            max_attempts: 3,
            threshold: 0.8,
            evaluator: Role::new(EVALUATOR),
            reflector: Role::new(REFLECTOR),
            top_k_lessons: 5,
        }
    }

    /// The loop of each attempt (ReAct by default): any architecture.
    #[must_use]
    pub fn base(mut self, base: impl Architecture) -> Self {
        self.base = Base::of(base);
        self
    }

    /// The most attempts (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The score, from 0 to 1, at which an answer stands.
    #[must_use]
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// How many of the latest lessons each attempt recalls.
    #[must_use]
    pub fn top_k_lessons(mut self, k: usize) -> Self {
        self.top_k_lessons = k;
        self
    }
}

role_methods!(Reflexion {
    evaluator(evaluator_prompt, evaluator_model): "the evaluator",
    reflector(reflector_prompt, reflector_model): "the reflector",
});

#[async_trait::async_trait]
impl Architecture for Reflexion {
    fn name(&self) -> &str {
        "reflexion"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_attempts == 0, "max_attempts", || "Reflexion needs at least one attempt")?;
        refuse(!(0.0..=1.0).contains(&self.threshold), "threshold", || {
            format!("the threshold is a score from 0 to 1, not {}", self.threshold)
        })?;
        self.base.check()?;
        self.evaluator.check("evaluator")?;
        self.reflector.check("reflector")
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let lessons_at = lesson_session(run.agent_name())?;
        let task = run.input_text().into_owned();
        let system = match run.messages().first() {
            Some(Message::System { content }) => Some(content.clone()),
            _ => None,
        };
        let mut best: Option<(f64, String, Vec<Message>)> = None;
        for attempt in 1..=self.max_attempts {
            let lessons = recall(run, &lessons_at, self.top_k_lessons).await?;
            set_lessons(run, system.as_deref(), &lessons);
            let answer = match self.base.run(run).await {
                Ok(answer) => Some(answer),
                Err(Error::Run(RunError::MaxTurnsExceeded { .. })) => None,
                Err(e) => return Err(e),
            };
            let (score, reason) = match &answer {
                Some(answer) => {
                    let question = self.evaluator.messages(format!("Task:\n{task}\n\nAnswer:\n{answer}"));
                    match run.ask::<Evaluation>("evaluator", self.evaluator.model(), question).await? {
                        Ok(e) => (e.score, e.reason),
                        Err(_) => (0.0, "the evaluation could not be read".to_owned()),
                    }
                }
                None => (0.0, "the attempt ran out of turns without an answer".to_owned()),
            };
            run.emit(
                "reflexion.evaluated",
                || serde_json::json!({"attempt": attempt, "score": score, "reason": &reason}),
            );
            if let Some(answer) = &answer {
                if score >= self.threshold {
                    set_lessons(run, system.as_deref(), &[]);
                    return Ok(answer.clone());
                }
                if best.as_ref().is_none_or(|(b, ..)| score > *b) {
                    best = Some((score, answer.clone(), run.messages()[run.input_index + 1..].to_vec()));
                }
            }
            if attempt == self.max_attempts {
                break;
            }
            let shown = answer.as_deref().unwrap_or("(no answer)");
            let review =
                self.reflector.messages(format!("Task:\n{task}\n\nAttempt:\n{shown}\n\nScore: {score:.2}. {reason}"));
            let lesson = run.text("reflector", self.reflector.model(), &review).await?;
            let lesson = lesson.trim().lines().next().unwrap_or("").trim().to_owned();
            if !lesson.is_empty() {
                keep(run, &lessons_at, attempt, &lesson).await?;
                run.emit("reflexion.lesson", || serde_json::json!({"attempt": attempt, "lesson": &lesson}));
            }
            run.restart();
        }
        set_lessons(run, system.as_deref(), &[]);
        match best {
            Some((_, answer, added)) => {
                // The best attempt's conversation is the run's.
                run.restart();
                run.messages_mut().extend(added);
                Ok(answer)
            }
            None => Err(RunError::Architecture {
                architecture: "reflexion".to_owned(),
                reason: format!(
                    "none of the {} attempts gave an answer within the turn limit; raise `.max_turns(..)`",
                    self.max_attempts
                ),
            }
            .into()),
        }
    }
}

/// The session of an agent's lessons.
fn lesson_session(agent: Option<&str>) -> Result<SessionId, ConfigError> {
    Ok(SessionId::new(LESSONS).map_err(ConfigError::InvalidId)?.sub(agent.unwrap_or("agent")))
}

/// The kind of the episodes that hold an agent's lessons, in its memory.
fn lesson_kind(agent: Option<&str>) -> String {
    format!("lesson/{}", agent.unwrap_or("agent"))
}

/// The `k` lessons of the run's user that bear most on the task (by words and meaning), from
/// the agent's memory; or, without one, the latest `k` from the session store.
async fn recall(run: &AgentRun<'_>, session: &SessionId, k: usize) -> Result<Vec<String>, Error> {
    if k == 0 {
        return Ok(Vec::new());
    }
    if let Some(memory) = run.memory() {
        let query = RecallQuery::new(run.input_text()).kind(lesson_kind(run.agent_name())).limit(k);
        let found = memory.recall(run.ctx().user(), query).await?;
        return Ok(found.into_iter().map(|r| r.episode.text).collect());
    }
    let kept = run.session_store().load(run.ctx().user(), session, Some(k)).await?;
    Ok(kept.iter().map(|m| m.text().into_owned()).filter(|t| !t.trim().is_empty()).collect())
}

/// Keeps `lesson` for the run's user, unless it is kept already.
async fn keep(run: &AgentRun<'_>, session: &SessionId, attempt: u32, lesson: &str) -> Result<(), Error> {
    if let Some(memory) = run.memory() {
        let kind = lesson_kind(run.agent_name());
        // The id is the lesson's own: the same lesson is kept once, however often it is learned.
        let mut episode = Episode::new(run.ctx().user().clone(), kind.clone(), lesson);
        episode.id = format!("lesson_{:016x}", fnv1a(kind.as_bytes(), lesson.as_bytes())).into();
        return memory.remember_episode(&episode).await;
    }
    let store = run.session_store();
    let user = run.ctx().user();
    let kept = store.load(user, session, None).await?;
    if kept.iter().any(|m| m.text().trim() == lesson) {
        return Ok(());
    }
    let id = RunId::derived(run.ctx().run_id(), "reflexion.lesson", attempt, 0);
    store.append(user, session, id, &[Message::User { content: Content::from(lesson) }]).await?;
    Ok(())
}

/// FNV-1a over `parts`, separated: a stable id for a text.
fn fnv1a(a: &[u8], b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in a.iter().chain(&[0x1f]).chain(b) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The system prompt with `lessons` (or as it was, with none).
fn set_lessons(run: &mut AgentRun<'_>, system: Option<&str>, lessons: &[String]) {
    let mut text = system.unwrap_or("").to_owned();
    if !lessons.is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str("Lessons from earlier attempts at tasks like this one:\n");
        for lesson in lessons {
            text.push_str("- ");
            text.push_str(lesson);
            text.push('\n');
        }
    }
    let first_is_system = matches!(run.messages().first(), Some(Message::System { .. }));
    match (first_is_system, text.is_empty()) {
        // An agent without instructions: the lessons came in a system message of their own.
        (true, true) if system.is_none() => {
            run.messages_mut().remove(0);
            run.input_index -= 1;
        }
        (true, _) => {
            if let Some(Message::System { content }) = run.messages_mut().first_mut() {
                *content = text.into();
            }
        }
        (false, false) => {
            run.messages_mut().insert(0, Message::system(text));
            run.input_index += 1;
        }
        (false, true) => {}
    }
}
