//! Memory: what an agent keeps about each user beyond one conversation.
//!
//! A [`Memory`] holds, per user:
//! - **working blocks**: named texts kept in the prompt (a persona, preferences, the task);
//! - **episodes**: things that happened, recalled by text — ranked by words (BM25) and by
//!   meaning (vectors from an [`Embedder`]), fused by reciprocal rank with a weight `alpha`;
//! - **facts**: bi-temporal triples. Each has a valid time (when it held in the world) and a
//!   record time (when Loom learned it, when a later fact ended it, when a correction replaced
//!   it), so a query can ask what held on a date *as Loom believed it on another date*. A new
//!   fact with the subject and predicate of another and a different object ends the other's
//!   validity where it begins, in valid-time order whatever the order they arrive in.
//!
//! Every call takes the [`UserId`]: no call reads or writes across users. GDPR operations are
//! there by default: [`Memory::export`] returns everything Loom holds for a user — memory, and,
//! when the memory is given the session store, every session with its messages, runs and
//! journals — as one serialisable document; [`Memory::forget`] removes all of it (or one
//! session's, or what is older than a date) and says how much.
//!
//! ```
//! use loomflow::memory::{FactQuery, Memory, NewFact, Timestamp};
//! use loomflow::UserId;
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! # rt.block_on(async {
//! let memory = Memory::in_memory();
//! let ann = UserId::new("ann")?;
//! memory.remember(&ann, "note", "Ann prefers trains to planes").await?;
//! let recalled = memory.recall(&ann, "how does Ann like to travel? trains or planes").await?;
//! assert_eq!(recalled[0].episode.text, "Ann prefers trains to planes");
//!
//! memory.add_fact(&ann, NewFact::new("ann", "works at", "Acme").valid_from(Timestamp::from_ymd(2025, 1, 1))).await?;
//! memory.add_fact(&ann, NewFact::new("ann", "worksAt", "Globex").valid_from(Timestamp::from_ymd(2026, 3, 1))).await?;
//! let then = memory.facts(&ann, FactQuery::new().subject("ann").valid_at(Timestamp::from_ymd(2025, 6, 1))).await?;
//! assert_eq!(then[0].object, "Acme");
//! assert_eq!(then[0].valid_until, Some(Timestamp::from_ymd(2026, 3, 1)));
//!
//! let gone = memory.forget(&ann, Default::default()).await?;
//! assert_eq!((gone.episodes, gone.facts), (1, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "chroma")]
pub(crate) mod chroma;
mod consolidate;
mod embed;
mod in_memory;
pub(crate) mod index;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod rank;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod time;
mod types;

use std::collections::HashSet;
use std::sync::Arc;

use tracing::Instrument as _;

#[cfg(feature = "redis")]
pub use self::redis::RedisMemory;
pub use crate::agent::AgentMemory;
#[cfg(feature = "chroma")]
pub use chroma::{ChromaBuilder, ChromaMemory};
pub use consolidate::{Consolidation, ConsolidationHandle, ConsolidationOutcome, Consolidator};
#[cfg(feature = "embed-candle")]
pub use embed::CandleEmbedder;
#[cfg(feature = "openai")]
pub use embed::OpenAiEmbedder;
pub use embed::{Embedder, HashingEmbedder};
pub use in_memory::{InMemoryMemory, MemoryLimits};
#[cfg(all(feature = "sqlite", feature = "rag"))]
pub(crate) use sqlite::CHUNKS;
#[cfg(feature = "sqlite")]
pub(crate) use sqlite::RecallCache;
pub use store::MemoryStore;
pub use time::{Timestamp, TimestampError};
pub use types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, MemoryExport, MemoryProfile, NewFact, RRF_K,
    RecallQuery, Recalled, RunExport, SessionExport, WorkingBlock, canonical_predicate,
};

use crate::error::{Error, StoreError, StoreErrorKind};
use crate::id::{SessionId, UserId};
use crate::session::{Journal, RunKey, SessionStore};

/// A user-partitioned memory over a [`MemoryStore`], with an [`Embedder`] for recall by
/// meaning and, optionally, the session store and journal whose data its GDPR operations
/// cover too. Cheap to clone (shared).
#[derive(Clone)]
pub struct Memory {
    store: Arc<dyn MemoryStore>,
    embedder: Option<Arc<dyn Embedder>>,
    sessions: Option<Arc<dyn SessionStore>>,
    journal: Option<Arc<dyn Journal>>,
    /// The consolidations in flight, which a forget cancels.
    gate: Arc<consolidate::Gate>,
    /// Other stores of the user's data that export and forget cover.
    covered: Arc<[Arc<dyn PersonalData>]>,
}

/// A store of users' data that [`Memory::export`] and [`Memory::forget`] cover besides memory
/// and sessions: a RAG corpus's documents ([`rag::Documents`](crate::rag::Documents)), a
/// workspace's notes. Add one with [`Memory::cover`].
#[async_trait::async_trait]
pub trait PersonalData: Send + Sync + 'static {
    /// Its name in the export and the forget report: `documents`, `workspace`.
    fn name(&self) -> &str;

    /// Everything it holds for `user`, as one serialisable value.
    async fn export(&self, user: &UserId) -> Result<serde_json::Value, StoreError>;

    /// Removes everything it holds for `user`; returns how many items.
    async fn forget(&self, user: &UserId) -> Result<usize, StoreError>;
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("store", &self.store.backend())
            .field("embedder", &self.embedder.as_ref().map(|e| e.name().to_owned()))
            .field("sessions", &self.sessions.is_some())
            .finish()
    }
}

impl Memory {
    /// A memory over `store`, with the hashing embedder.
    pub fn new(store: impl MemoryStore) -> Self {
        Self::shared(Arc::new(store))
    }

    /// A memory over a shared store, with the hashing embedder.
    pub fn shared(store: Arc<dyn MemoryStore>) -> Self {
        Self {
            store,
            embedder: Some(Arc::new(HashingEmbedder::default())),
            sessions: None,
            journal: None,
            gate: Arc::default(),
            covered: Arc::new([]),
        }
    }

    /// A bounded memory in the process ([`InMemoryMemory`] with its default limits).
    pub fn in_memory() -> Self {
        Self::new(InMemoryMemory::new())
    }

    /// Embeds with `embedder` instead of the hashing one.
    #[must_use]
    pub fn embedder(mut self, embedder: impl Embedder) -> Self {
        self.embedder = Some(Arc::new(embedder));
        self
    }

    /// Recalls by words only (no vectors kept or compared).
    #[must_use]
    pub fn without_embedder(mut self) -> Self {
        self.embedder = None;
        self
    }

    /// Covers `store`'s sessions (their messages, and their runs' journals when it is a
    /// journal too, with [`journal`](Self::journal)) in [`export`](Self::export) and
    /// [`forget`](Self::forget).
    #[must_use]
    pub fn sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// Covers `data` too in [`export`](Self::export) (under its name) and in a
    /// [`forget`](Self::forget) of everything (a forget scoped to a session or a date leaves
    /// it: its items belong to neither).
    #[must_use]
    pub fn cover(mut self, data: impl PersonalData) -> Self {
        let mut all: Vec<Arc<dyn PersonalData>> = self.covered.iter().cloned().collect();
        all.push(Arc::new(data));
        self.covered = all.into();
        self
    }

    /// Covers the runs of `journal` in [`export`](Self::export).
    #[must_use]
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn MemoryStore> {
        &self.store
    }

    /// The span of one memory operation: `loom.memory`, with the operation, the backend and
    /// the user.
    fn span(&self, op: &'static str, user: &UserId) -> tracing::Span {
        tracing::info_span!("loom.memory", op, backend = self.store.backend(), user = %user)
    }

    async fn embed_one(&self, text: &str) -> Result<Option<Vec<f32>>, Error> {
        let Some(embedder) = &self.embedder else { return Ok(None) };
        let mut vectors = embedder.embed(&[text]).await?;
        Ok(vectors.pop())
    }

    /// The last `limit` messages (`None`: all) of the user's session `session`, from the
    /// session store the memory covers ([`sessions`](Self::sessions)); empty without one.
    pub async fn messages(
        &self,
        user: &UserId,
        session: &SessionId,
        limit: Option<usize>,
    ) -> Result<Vec<crate::model::Message>, StoreError> {
        match &self.sessions {
            Some(store) => store.load(user, session, limit).instrument(self.span("messages", user)).await,
            None => Ok(Vec::new()),
        }
    }

    /// The user's working blocks.
    pub async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        self.store.blocks(user).await
    }

    /// Sets the user's block `name` to `text`.
    pub async fn set_block(&self, user: &UserId, name: &str, text: &str) -> Result<WorkingBlock, StoreError> {
        self.store.write_block(user, check_name(name, self.store.backend())?, text, false).await
    }

    /// Adds `text` on a new line of the user's block `name`.
    pub async fn append_block(&self, user: &UserId, name: &str, text: &str) -> Result<WorkingBlock, StoreError> {
        self.store.write_block(user, check_name(name, self.store.backend())?, text, true).await
    }

    /// Keeps an episode of `kind` with `text` for the user, now.
    pub async fn remember(&self, user: &UserId, kind: &str, text: &str) -> Result<Episode, Error> {
        let episode = Episode::new(user.clone(), kind, text);
        self.remember_episode(&episode).await?;
        Ok(episode)
    }

    /// Keeps `episode` (its user is the partition it goes to).
    pub async fn remember_episode(&self, episode: &Episode) -> Result<(), Error> {
        async {
            let vector = self.embed_one(&episode.text).await?;
            self.store.remember(episode, vector.as_deref()).await?;
            Ok(())
        }
        .instrument(self.span("remember", &episode.user))
        .await
    }

    /// The user's episodes that match `query` (a text, or a [`RecallQuery`] with filters),
    /// best first.
    pub async fn recall(&self, user: &UserId, query: impl Into<RecallQuery>) -> Result<Vec<Recalled>, Error> {
        let query = query.into();
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        async {
            let vector = if query.alpha > 0.0 { self.embed_one(&query.text).await? } else { None };
            Ok(self.store.recall(user, &query, vector.as_deref()).await?)
        }
        .instrument(self.span("recall", user))
        .await
    }

    /// Records a fact for the user, ending the validity of the facts it supersedes.
    pub async fn add_fact(&self, user: &UserId, fact: NewFact) -> Result<Fact, StoreError> {
        if fact.subject.trim().is_empty()
            || canonical_predicate(&fact.predicate).is_empty()
            || fact.object.trim().is_empty()
        {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                self.store.backend(),
                "a fact needs a subject, a predicate and an object; one of them is empty",
            ));
        }
        self.store.add_fact(user, fact, Timestamp::now()).instrument(self.span("add_fact", user)).await
    }

    /// The user's facts that answer `query`, by valid time.
    pub async fn facts(&self, user: &UserId, query: FactQuery) -> Result<Vec<Fact>, StoreError> {
        self.store.facts(user, &query).instrument(self.span("facts", user)).await
    }

    /// Corrects fact `id` to say `object`, with `source` as its provenance: the old fact is
    /// retracted (as-of queries before now still see it), the corrected one recorded.
    pub async fn rectify(&self, user: &UserId, id: &str, object: &str, source: &str) -> Result<Fact, StoreError> {
        self.store.rectify(user, id, object, source, Timestamp::now()).instrument(self.span("rectify", user)).await
    }

    /// The facts reachable from `subject` in at most `hops` steps (a fact's object is the next
    /// subject), holding at `valid_at` (`None`: now), breadth first.
    pub async fn related(
        &self,
        user: &UserId,
        subject: &str,
        hops: usize,
        valid_at: Option<Timestamp>,
    ) -> Result<Vec<Fact>, StoreError> {
        let at = valid_at.unwrap_or_else(Timestamp::now);
        let mut seen: HashSet<String> = HashSet::new();
        let mut frontier = vec![subject.trim().to_lowercase()];
        let mut out: Vec<Fact> = Vec::new();
        for _ in 0..hops {
            let mut next = Vec::new();
            for s in frontier {
                if !seen.insert(s.clone()) {
                    continue;
                }
                for fact in self.store.facts(user, &FactQuery::new().subject(s).valid_at(at)).await? {
                    next.push(fact.object.to_lowercase());
                    if !out.iter().any(|f| f.id == fact.id) {
                        out.push(fact);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(out)
    }

    /// What Loom holds of the user, in a glance.
    pub async fn profile(&self, user: &UserId) -> Result<MemoryProfile, StoreError> {
        let data = self.store.export(user).await?;
        let mut recent: Vec<SessionId> = Vec::new();
        for e in data.episodes.iter().rev() {
            if let Some(s) = &e.session
                && !recent.contains(s)
            {
                recent.push(s.clone());
                if recent.len() == 5 {
                    break;
                }
            }
        }
        Ok(MemoryProfile {
            user: user.clone(),
            episodes: data.episodes.len(),
            facts: data.facts.iter().filter(|f| f.retracted_at.is_none()).count(),
            blocks: data.blocks.len(),
            last_seen: data.episodes.iter().map(|e| e.at).max(),
            recent_sessions: recent,
        })
    }

    /// Everything Loom holds for the user across the stores this memory covers: working
    /// blocks, episodes and facts, and each session with its messages and its runs' journals.
    pub async fn export(&self, user: &UserId) -> Result<MemoryExport, StoreError> {
        let memory = self.store.export(user).instrument(self.span("export", user)).await?;
        let mut sessions = Vec::new();
        if let Some(store) = &self.sessions {
            let mut ids = store.sessions(user).await?;
            ids.sort();
            for session in ids {
                let messages = store.load(user, &session, None).await?;
                let mut runs = Vec::new();
                if let Some(journal) = &self.journal {
                    for info in journal.runs(user, &session).await? {
                        let key = RunKey::new(user.clone(), session.clone(), info.run);
                        let read = journal.read(&key).await?;
                        let entries = read.entries.iter().filter_map(|(_, e)| serde_json::to_value(e).ok()).collect();
                        runs.push(RunExport::new(&info, entries, read.corrupt.len()));
                    }
                }
                sessions.push(SessionExport { session, messages, runs });
            }
        }
        let mut covered = std::collections::BTreeMap::new();
        for data in self.covered.iter() {
            covered.insert(data.name().to_owned(), data.export(user).await?);
        }
        Ok(MemoryExport { user: user.clone(), exported_at: Timestamp::now(), memory, sessions, covered })
    }

    /// Removes what `scope` names for the user — memory, and the covered sessions with their
    /// messages, runs, journals and checkpoints — and says how much. Other users are untouched.
    ///
    /// The user's [consolidations](Consolidator) in flight are cancelled first, and a fact one
    /// is writing is waited for: none can write back what this removes.
    pub async fn forget(&self, user: &UserId, scope: ForgetScope) -> Result<ForgetReport, StoreError> {
        let _closed = self.gate.stripe(user).write().await;
        self.gate.cancel(user);
        let mut report = self.store.forget(user, &scope).instrument(self.span("forget", user)).await?;
        if let Some(store) = &self.sessions
            && scope.before.is_none()
        {
            let sessions = match &scope.session {
                Some(s) => vec![s.clone()],
                None => store.sessions(user).await?,
            };
            for session in sessions {
                if store.clear(user, &session).await? {
                    report.sessions += 1;
                }
            }
        }
        if scope.is_everything() {
            for data in self.covered.iter() {
                *report.covered.entry(data.name().to_owned()).or_default() += data.forget(user).await?;
            }
        }
        Ok(report)
    }
}

impl Memory {
    /// Cancels the user's [consolidations](Consolidator) in flight: nothing more of them is
    /// recorded.
    pub fn cancel_consolidations(&self, user: &UserId) {
        self.gate.cancel(user);
    }

    /// Waits until no consolidation of this memory (or its clones) is in flight — before a
    /// shutdown, or in a test that reads what a turn's consolidation recorded.
    pub async fn consolidated(&self) {
        self.gate.settled().await;
    }
}

fn check_name<'n>(name: &'n str, backend: &'static str) -> Result<&'n str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            backend,
            "a block's name must be 1 to 128 characters without control characters",
        ));
    }
    Ok(name)
}
