//! An agent's memory: what it recalls into the prompt before a run, and what it keeps after.

use crate::agent::RunResult;
use crate::context::RunContext;
use crate::error::Error;
use crate::event::EventKind;
use crate::memory::{Consolidator, Episode, FactQuery, Memory, RecallQuery, Timestamp};
use crate::model::{Content, Message};

/// How an agent uses a [`Memory`]: before each run it recalls the user's working blocks, the
/// facts that bear on the input and the most relevant episodes into the system prompt (within
/// a budget of characters); after each run it keeps the turn as an episode.
///
/// A memory that fails (a dead server) is reported as a `memory.failed` event and the run goes
/// on without it — or, with [`fail_on_error`](Self::fail_on_error), the run fails. Events:
/// `memory.recalled`, `memory.remembered`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentMemory {
    /// The memory.
    pub memory: Memory,
    /// Episodes recalled per run (5).
    pub episodes: usize,
    /// Facts recalled per run (10).
    pub facts: usize,
    /// The most characters of recalled memory in the prompt (8,000, about 2,000 tokens).
    pub budget_chars: usize,
    /// Whether each turn is kept as an episode (yes).
    pub remember_turns: bool,
    /// Whether a failing memory fails the run (no: the run goes on without it).
    pub fail_on_error: bool,
    /// What turns each kept turn into facts, in the background (none).
    pub consolidator: Option<Consolidator>,
}

impl From<Memory> for AgentMemory {
    fn from(memory: Memory) -> Self {
        Self::new(memory)
    }
}

impl AgentMemory {
    /// `memory`, with the defaults.
    pub fn new(memory: Memory) -> Self {
        Self {
            memory,
            episodes: 5,
            facts: 10,
            budget_chars: 8_000,
            remember_turns: true,
            fail_on_error: false,
            consolidator: None,
        }
    }

    /// Episodes recalled per run.
    #[must_use]
    pub fn episodes(mut self, n: usize) -> Self {
        self.episodes = n;
        self
    }

    /// Facts recalled per run.
    #[must_use]
    pub fn facts(mut self, n: usize) -> Self {
        self.facts = n;
        self
    }

    /// The most characters of recalled memory in the prompt.
    #[must_use]
    pub fn budget_chars(mut self, chars: usize) -> Self {
        self.budget_chars = chars;
        self
    }

    /// Whether each turn is kept as an episode.
    #[must_use]
    pub fn remember_turns(mut self, remember: bool) -> Self {
        self.remember_turns = remember;
        self
    }

    /// Consolidates each kept turn into facts with `consolidator`, in the background after the
    /// run (event `memory.consolidated` with the outcome). [`Memory::consolidated`] waits for
    /// them; a forget of the user cancels those in flight.
    #[must_use]
    pub fn consolidate(mut self, consolidator: Consolidator) -> Self {
        self.consolidator = Some(consolidator);
        self
    }

    /// Whether a failing memory fails the run.
    #[must_use]
    pub fn fail_on_error(mut self, fail: bool) -> Self {
        self.fail_on_error = fail;
        self
    }

    /// Adds what the memory holds that bears on `input` to the system prompt of `messages`.
    pub(crate) async fn recall_into(
        &self,
        ctx: &RunContext,
        input: &Content,
        messages: &mut Vec<Message>,
    ) -> Result<(), Error> {
        let outcome = self.gather(ctx, &input.text()).await;
        if let Some(section) = self.settle(ctx, outcome)? {
            add_to_system(messages, &section);
        }
        Ok(())
    }

    async fn gather(&self, ctx: &RunContext, input: &str) -> Result<Option<String>, Error> {
        let user = ctx.user();
        let blocks = self.memory.blocks(user).await?;
        let facts = if self.facts > 0 { self.relevant_facts(ctx, input).await? } else { Vec::new() };
        let episodes = if self.episodes > 0 && !input.trim().is_empty() {
            let mut found = self.memory.recall(user, RecallQuery::new(input).limit(self.episodes)).await?;
            // Reflexion's lessons have a section of their own.
            found.retain(|r| !r.episode.kind.starts_with("lesson/"));
            found
        } else {
            Vec::new()
        };
        ctx.emit(|| EventKind::Memory {
            name: "memory.recalled".to_owned(),
            payload: serde_json::json!({"blocks": blocks.len(), "facts": facts.len(), "episodes": episodes.len()}),
        });
        if blocks.is_empty() && facts.is_empty() && episodes.is_empty() {
            return Ok(None);
        }
        let mut out = String::from("What you remember of this user from earlier conversations:\n");
        let budget = self.budget_chars;
        let push = |out: &mut String, line: &str| {
            if out.len() + line.len() < budget {
                out.push_str(line);
                out.push('\n');
                true
            } else {
                false
            }
        };
        for b in &blocks {
            if !push(&mut out, &format!("[{}]\n{}", b.name, b.text)) {
                break;
            }
        }
        if !facts.is_empty() && push(&mut out, "Facts:") {
            for f in &facts {
                if !push(
                    &mut out,
                    &format!(
                        "- {} {} {} (since {})",
                        f.subject,
                        f.predicate.replace('_', " "),
                        f.object,
                        day(f.valid_from)
                    ),
                ) {
                    break;
                }
            }
        }
        if !episodes.is_empty() && push(&mut out, "Earlier:") {
            for r in &episodes {
                if !push(&mut out, &format!("- ({}) {}", day(r.episode.at), r.episode.text)) {
                    break;
                }
            }
        }
        Ok(Some(out))
    }

    /// The facts believed now whose subject or object shares a word with `input`.
    async fn relevant_facts(&self, ctx: &RunContext, input: &str) -> Result<Vec<crate::memory::Fact>, Error> {
        let wanted: Vec<String> = crate::memory::rank::words(input).collect();
        let now = self.memory.facts(ctx.user(), FactQuery::new().valid_at(Timestamp::now())).await?;
        let mut found: Vec<_> = now
            .into_iter()
            .filter(|f| {
                crate::memory::rank::words(&f.subject)
                    .chain(crate::memory::rank::words(&f.object))
                    .any(|w| wanted.contains(&w))
            })
            .collect();
        found.truncate(self.facts);
        Ok(found)
    }

    /// Keeps the turn of `result` as an episode (its id is the run's, so a resumed run does not
    /// keep it twice), and gives the result back.
    pub(crate) async fn keep<O>(&self, ctx: &RunContext, result: RunResult<O>) -> Result<RunResult<O>, Error> {
        let Some(Message::User { content }) = result.messages.get(result.input_index) else {
            return Ok(result);
        };
        if !self.remember_turns {
            return Ok(result);
        }
        let text = format!("User: {}\nAssistant: {}", content.text(), result.text());
        self.keep_text(ctx, text).await?;
        Ok(result)
    }

    async fn keep_text(&self, ctx: &RunContext, text: String) -> Result<(), Error> {
        let mut episode = Episode::new(ctx.user().clone(), "turn", text);
        episode.id = format!("ep_{}", ctx.run_id()).into();
        if let Some(session) = ctx.session() {
            episode = episode.in_session(session.clone());
        }
        let outcome = self.memory.remember_episode(&episode).await.map(|()| {
            ctx.emit(|| EventKind::Memory {
                name: "memory.remembered".to_owned(),
                payload: serde_json::json!({"episode": &*episode.id}),
            });
        });
        if outcome.is_ok()
            && let Some(consolidator) = &self.consolidator
        {
            let events = ctx.clone();
            consolidator.spawn_then(&self.memory, ctx.user(), vec![episode], move |outcome| {
                let payload = match outcome {
                    Ok(done) => serde_json::json!({"outcome": done.outcome, "facts": done.facts.len()}),
                    Err(e) => serde_json::json!({"error": e.to_string()}),
                };
                events.emit(|| EventKind::Memory { name: "memory.consolidated".to_owned(), payload });
            });
        }
        self.settle(ctx, outcome).map(drop)
    }

    /// A failure fails the run, or is reported and passed over.
    fn settle<T: Default>(&self, ctx: &RunContext, outcome: Result<T, Error>) -> Result<T, Error> {
        match outcome {
            Ok(v) => Ok(v),
            Err(e) if self.fail_on_error => Err(e),
            Err(e) => {
                tracing::warn!("memory failed, the run goes on without it: {e}");
                ctx.emit(|| EventKind::Memory {
                    name: "memory.failed".to_owned(),
                    payload: serde_json::json!({"error": e.to_string()}),
                });
                Ok(T::default())
            }
        }
    }
}

/// The day of a time, for the prompt.
fn day(t: Timestamp) -> String {
    let text = t.to_string();
    text.get(..10).unwrap_or(&text).to_owned()
}

/// `messages` with `section` added to the system prompt (or as one); whether a message was
/// inserted before the others.
fn add_to_system(messages: &mut Vec<Message>, section: &str) -> bool {
    match messages.first_mut() {
        Some(Message::System { content }) => {
            *content = format!("{content}\n\n{section}").into();
            false
        }
        _ => {
            messages.insert(0, Message::system(section));
            true
        }
    }
}
