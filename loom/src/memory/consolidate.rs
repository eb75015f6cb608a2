//! Consolidation: a model reads episodes and the facts they state are recorded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

use super::Memory;
use super::time::Timestamp;
use super::types::{Episode, Fact, NewFact};
use crate::agent::Agent;
use crate::error::{Error, RunError};
use crate::id::UserId;
use crate::model::IntoModel;

const INSTRUCTIONS: &str = "You read notes of conversations with a user and write down the lasting facts they \
state: about the user (preferences, relations, where they live or work, plans) and about the world as the user \
describes it. Each fact is a triple: subject, predicate (a short relation such as `works at`, `lives in`, \
`prefers`), object. Give `confidence` from 0 to 1 and, when the notes say from when it holds, `valid_from` as a \
date (YYYY-MM-DD). Leave out small talk, questions, and anything the notes do not state. No facts is a fine \
answer.";

/// What a consolidating model answers.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Extraction {
    /// The facts the notes state.
    facts: Vec<Extracted>,
}

/// One fact as the model states it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Extracted {
    subject: String,
    predicate: String,
    object: String,
    /// From 0 to 1.
    #[serde(default)]
    confidence: Option<f64>,
    /// A date, `YYYY-MM-DD`, when the notes say from when it holds.
    #[serde(default)]
    valid_from: Option<String>,
}

/// How a consolidation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsolidationOutcome {
    /// The facts the model found were recorded (perhaps none: the episodes stated nothing).
    Recorded,
    /// There were no episodes to read.
    NothingToRead,
    /// The model's answer could not be read as facts, within the output retries: nothing was
    /// recorded.
    Unreadable {
        /// What was wrong with it.
        reason: String,
    },
    /// The consolidation was cancelled, or the user forgotten, before it finished: what was
    /// not recorded by then never will be.
    Cancelled,
}

/// What a consolidation recorded, and how it ended.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Consolidation {
    /// The facts recorded, as recorded (a fact already held comes back with its sources
    /// merged).
    pub facts: Vec<Fact>,
    /// Facts the model stated that were left out (an empty field, a confidence below the
    /// floor), with why.
    pub skipped: Vec<String>,
    /// How it ended.
    pub outcome: ConsolidationOutcome,
}

/// Turns episodes into [facts](Fact): a model reads them and answers with typed triples
/// (through Loom's typed-output machinery: JSON in fences or prose around it is read, a
/// malformed answer goes back to the model once with what is wrong), which are recorded with
/// the episodes as their sources — superseding older facts in valid-time order as any new
/// fact does.
///
/// An answer that still cannot be read records nothing and says so
/// ([`ConsolidationOutcome::Unreadable`]); it never panics. A consolidation can run in the
/// background ([`spawn`](Self::spawn)), where it can be cancelled, and it can never write back
/// what [`Memory::forget`] removed: a forget of the user cancels the user's consolidations in
/// flight (of that [`Memory`] and its clones) and waits for any fact being written. An agent
/// consolidates each turn after the run with [`AgentMemory::consolidate`](crate::memory::AgentMemory::consolidate).
///
/// ```
/// use loomflow::memory::{Consolidator, FactQuery, Memory};
/// use loomflow::prelude::*;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let memory = Memory::in_memory();
/// let ann = UserId::new("ann")?;
/// let note = memory.remember(&ann, "turn", "Ann: I moved to Oslo in March 2026.").await?;
/// let model = ScriptedModel::new([ScriptedTurn::text(
///     r#"{"facts": [{"subject": "Ann", "predicate": "lives in", "object": "Oslo", "valid_from": "2026-03-01"}]}"#,
/// )]);
/// let done = Consolidator::new(model).consolidate(&memory, &ann, &[note]).await?;
/// assert_eq!(done.facts[0].predicate, "lives_in");
/// let facts = memory.facts(&ann, FactQuery::new().subject("ann")).await?;
/// assert_eq!(facts[0].object, "Oslo");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Consolidator {
    agent: Agent<Extraction>,
    min_confidence: f64,
    max_facts: usize,
}

impl std::fmt::Debug for Consolidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consolidator")
            .field("min_confidence", &self.min_confidence)
            .field("max_facts", &self.max_facts)
            .finish_non_exhaustive()
    }
}

impl Consolidator {
    /// A consolidator that asks `model`, with Loom's instructions.
    pub fn new(model: impl IntoModel) -> Self {
        Self::with_instructions(model, INSTRUCTIONS)
    }

    /// A consolidator that asks `model` with `instructions` of its own (the answer's shape,
    /// a list of facts, is added to them).
    pub fn with_instructions(model: impl IntoModel, instructions: impl Into<String>) -> Self {
        let agent = Agent::new(instructions.into()).name("consolidator").model(model);
        Self { agent: agent.output::<Extraction>().output_retries(1), min_confidence: 0.0, max_facts: 50 }
    }

    /// Leaves out facts stated with a confidence below `floor` (0: none left out).
    #[must_use]
    pub fn min_confidence(mut self, floor: f64) -> Self {
        self.min_confidence = floor;
        self
    }

    /// Records at most `n` facts per consolidation (50).
    #[must_use]
    pub fn max_facts(mut self, n: usize) -> Self {
        self.max_facts = n;
        self
    }

    /// Reads `episodes` (the user's) and records the facts they state.
    ///
    /// # Errors
    /// When the model cannot be reached or the store fails; an answer that cannot be read is
    /// not an error but an outcome.
    pub async fn consolidate(
        &self,
        memory: &Memory,
        user: &UserId,
        episodes: &[Episode],
    ) -> Result<Consolidation, Error> {
        let ticket = memory.gate.enter(user);
        self.run(memory, user, episodes, &ticket).await
    }

    /// Consolidates in the background (on the current tokio runtime); the handle cancels it
    /// or waits for it.
    pub fn spawn(&self, memory: &Memory, user: &UserId, episodes: Vec<Episode>) -> ConsolidationHandle {
        self.spawn_then(memory, user, episodes, |_| {})
    }

    /// As [`spawn`](Self::spawn), calling `then` with the outcome.
    pub(crate) fn spawn_then(
        &self,
        memory: &Memory,
        user: &UserId,
        episodes: Vec<Episode>,
        then: impl FnOnce(&Result<Consolidation, Error>) + Send + 'static,
    ) -> ConsolidationHandle {
        // Entered now, not when the task starts: a forget from here on cancels it.
        let ticket = memory.gate.enter(user);
        let cancelled = Arc::clone(&ticket.cancelled);
        let (this, memory, user) = (self.clone(), memory.clone(), user.clone());
        let task = tokio::spawn(async move {
            let outcome = this.run(&memory, &user, &episodes, &ticket).await;
            then(&outcome);
            outcome
        });
        ConsolidationHandle { cancelled, task }
    }

    async fn run(
        &self,
        memory: &Memory,
        user: &UserId,
        episodes: &[Episode],
        ticket: &Ticket,
    ) -> Result<Consolidation, Error> {
        let mine: Vec<&Episode> = episodes.iter().filter(|e| e.user == *user).collect();
        if mine.is_empty() {
            return Ok(Consolidation {
                facts: Vec::new(),
                skipped: Vec::new(),
                outcome: ConsolidationOutcome::NothingToRead,
            });
        }
        let mut notes = String::from("Notes, oldest first:\n");
        for e in &mine {
            notes.push_str(&format!("[{}] ({}) {}\n", &*e.id, e.at, e.text));
        }
        let answer = match self.agent.run(notes).user(user.clone()).await {
            Ok(result) => result.output,
            Err(Error::Output(e)) => {
                return Ok(Consolidation {
                    facts: Vec::new(),
                    skipped: Vec::new(),
                    outcome: ConsolidationOutcome::Unreadable { reason: e.to_string() },
                });
            }
            Err(e) => return Err(e),
        };
        let sources: Vec<String> = mine.iter().map(|e| e.id.to_string()).collect();
        let mut done =
            Consolidation { facts: Vec::new(), skipped: Vec::new(), outcome: ConsolidationOutcome::Recorded };
        for x in answer.facts {
            if done.facts.len() >= self.max_facts {
                done.skipped.push(format!(
                    "{} {} {}: past the limit of {} facts",
                    x.subject, x.predicate, x.object, self.max_facts
                ));
                continue;
            }
            let fact = match self.admit(x, &sources) {
                Ok(f) => f,
                Err(why) => {
                    done.skipped.push(why);
                    continue;
                }
            };
            // Under the gate: a forget of the user waits for this write, or this sees it.
            let _open = memory.gate.stripe(user).read().await;
            if ticket.cancelled.load(Ordering::Acquire) {
                done.outcome = ConsolidationOutcome::Cancelled;
                return Ok(done);
            }
            done.facts.push(memory.add_fact(user, fact).await?);
        }
        Ok(done)
    }

    /// The fact `x` states, or why it is left out.
    fn admit(&self, x: Extracted, sources: &[String]) -> Result<NewFact, String> {
        let named = format!("{} {} {}", x.subject, x.predicate, x.object);
        if [&x.subject, &x.predicate, &x.object].iter().any(|s| s.trim().is_empty()) {
            return Err(format!("`{named}`: a subject, predicate and object are all needed"));
        }
        let confidence = x.confidence.filter(|c| c.is_finite()).unwrap_or(1.0).clamp(0.0, 1.0);
        if confidence < self.min_confidence {
            return Err(format!("`{named}`: confidence {confidence} is below {}", self.min_confidence));
        }
        let mut fact = NewFact::new(x.subject, x.predicate, x.object).confidence(confidence);
        fact.sources = sources.to_vec();
        // A date that cannot be read: the fact holds from now, as one without a date.
        if let Some(at) = x.valid_from.as_deref().and_then(|t| Timestamp::parse(t).ok()) {
            fact = fact.valid_from(at);
        }
        Ok(fact)
    }
}

/// A consolidation running in the background.
#[derive(Debug)]
pub struct ConsolidationHandle {
    cancelled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<Consolidation, Error>>,
}

impl ConsolidationHandle {
    /// Stops it: no fact is recorded from here on (one being written finishes).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Waits for it to end.
    ///
    /// # Errors
    /// As [`Consolidator::consolidate`]; a task that panicked or whose runtime shut down is
    /// [`RunError::Background`].
    pub async fn join(self) -> Result<Consolidation, Error> {
        match self.task.await {
            Ok(outcome) => outcome,
            Err(e) => Err(RunError::Background { task: "consolidation".to_owned(), reason: e.to_string() }.into()),
        }
    }
}

/// Stripes of the gate: a forget of one user waits only for writes of users in its stripe.
const STRIPES: usize = 16;

/// What keeps consolidations from writing back what a forget removed: the consolidations in
/// flight per user, and a lock per stripe of users that a forget takes for writing.
pub(crate) struct Gate {
    stripes: [tokio::sync::RwLock<()>; STRIPES],
    flights: Mutex<HashMap<UserId, Vec<Weak<AtomicBool>>>>,
    running: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            stripes: std::array::from_fn(|_| tokio::sync::RwLock::new(())),
            flights: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }
}

/// One consolidation in flight.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    user: UserId,
    cancelled: Arc<AtomicBool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut flights) = self.gate.flights.lock()
            && let Some(list) = flights.get_mut(&self.user)
        {
            list.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.cancelled)));
            if list.is_empty() {
                flights.remove(&self.user);
            }
        }
        if self.gate.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.gate.idle.notify_waiters();
        }
    }
}

impl Gate {
    /// The lock of `user`'s stripe.
    pub(crate) fn stripe(&self, user: &UserId) -> &tokio::sync::RwLock<()> {
        let h = user
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        &self.stripes[(h % STRIPES as u64) as usize]
    }

    /// Counts a consolidation of `user` in.
    fn enter(self: &Arc<Self>, user: &UserId) -> Ticket {
        let cancelled = Arc::new(AtomicBool::new(false));
        if let Ok(mut flights) = self.flights.lock() {
            flights.entry(user.clone()).or_default().push(Arc::downgrade(&cancelled));
        }
        self.running.fetch_add(1, Ordering::AcqRel);
        Ticket { gate: Arc::clone(self), user: user.clone(), cancelled }
    }

    /// Cancels `user`'s consolidations in flight (a forget calls it with the stripe's write
    /// lock held).
    pub(crate) fn cancel(&self, user: &UserId) {
        if let Ok(flights) = self.flights.lock()
            && let Some(list) = flights.get(user)
        {
            for flag in list.iter().filter_map(Weak::upgrade) {
                flag.store(true, Ordering::Release);
            }
        }
    }

    /// Waits until no consolidation is in flight.
    pub(crate) async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}
