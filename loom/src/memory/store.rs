//! The storage behind a [`Memory`](super::Memory): one trait, every backend.

use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
};
use crate::error::StoreError;
use crate::id::UserId;

/// A backend of [`Memory`](super::Memory): in memory, SQLite, PostgreSQL, Redis, Chroma.
///
/// Every call takes the user, and a backend never returns another user's data: partitioning is
/// the store's, not a filter the caller remembers to apply. Each call is atomic: a failed call
/// changed nothing. Implementations are checked by one conformance suite (`tests/memory_conformance.rs`).
#[async_trait::async_trait]
pub trait MemoryStore: Send + Sync + 'static {
    /// The backend's name, in errors: `in-memory`, `sqlite` ...
    fn backend(&self) -> &'static str;

    /// The user's working blocks, by name.
    async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError>;

    /// Sets block `name` to `text` (`append`: adds `text` on a new line).
    async fn write_block(
        &self,
        user: &UserId,
        name: &str,
        text: &str,
        append: bool,
    ) -> Result<WorkingBlock, StoreError>;

    /// Keeps an episode, with its vector when the memory has an embedder; an episode whose id
    /// is kept already is not kept again (a resumed run keeps its turn once).
    async fn remember(&self, episode: &Episode, vector: Option<&[f32]>) -> Result<(), StoreError>;

    /// The user's episodes that match `query`, fused from its word ranking and, with `vector`,
    /// its meaning ranking.
    async fn recall(
        &self,
        user: &UserId,
        query: &RecallQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Recalled>, StoreError>;

    /// Records a fact, ending the validity of facts it supersedes (and its own, when a later one
    /// already holds), in one atomic step. Returns it as recorded.
    async fn add_fact(&self, user: &UserId, fact: NewFact, now: Timestamp) -> Result<Fact, StoreError>;

    /// The user's facts that answer `query`, by valid time (then record time).
    async fn facts(&self, user: &UserId, query: &FactQuery) -> Result<Vec<Fact>, StoreError>;

    /// Replaces what fact `id` says with `object`: the fact is retracted (kept, for as-of
    /// queries) and a corrected one recorded with the same validity, its sources and
    /// `source`. [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) when the user
    /// has no such fact believed now.
    async fn rectify(
        &self,
        user: &UserId,
        id: &str,
        object: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<Fact, StoreError>;

    /// Everything the store holds for the user.
    async fn export(&self, user: &UserId) -> Result<MemoryData, StoreError>;

    /// Removes what `scope` names for the user, and says how much.
    async fn forget(&self, user: &UserId, scope: &ForgetScope) -> Result<ForgetReport, StoreError>;
}

/// Fact supersession, shared by the backends that keep facts in Rust: `fact` (new, recorded at
/// `now`) among the subject's and predicate's `existing` facts. Returns the new fact with its
/// own end set when a later fact already holds, and the indices of the facts it ends, with
/// their new end.
pub(crate) fn supersede(existing: &[Fact], fact: &mut Fact, now: Timestamp) -> Vec<(usize, Timestamp)> {
    let mut ends = Vec::new();
    for (i, other) in existing.iter().enumerate() {
        if other.retracted_at.is_some()
            || !other.subject.eq_ignore_ascii_case(&fact.subject)
            || other.predicate != fact.predicate
        {
            continue;
        }
        if other.object == fact.object {
            continue;
        }
        if other.valid_from < fact.valid_from {
            // An earlier fact, still holding at the new one's start: it ends there.
            if other.valid_until.is_none_or(|u| u > fact.valid_from) {
                ends.push((i, fact.valid_from));
            }
        } else if other.valid_from > fact.valid_from {
            // A later fact arrived first: the new one (about an earlier time) ends where it begins.
            if fact.valid_until.is_none_or(|u| u > other.valid_from) {
                fact.valid_until = Some(other.valid_from);
                fact.closed_at = Some(now);
            }
        } else {
            // The same start: the newer record replaces the older one's claim.
            ends.push((i, fact.valid_from));
        }
    }
    ends
}

/// A fact as recorded now from `new`.
pub(crate) fn record(user: &UserId, new: NewFact, now: Timestamp) -> Fact {
    Fact {
        id: super::types::new_id("fact"),
        user: user.clone(),
        subject: new.subject.trim().to_owned(),
        predicate: super::types::canonical_predicate(&new.predicate),
        object: new.object.trim().to_owned(),
        confidence: if new.confidence.is_finite() { new.confidence.clamp(0.0, 1.0) } else { 0.0 },
        valid_from: new.valid_from.unwrap_or(now),
        valid_until: None,
        recorded_at: now,
        closed_at: None,
        retracted_at: None,
        sources: new.sources,
    }
}

/// The correction of fact `old` to say `object`, recorded at `now` with `source` as its
/// provenance: a new fact with the old one's validity (the old one is retracted by the store).
pub(crate) fn corrected(old: &Fact, object: &str, source: &str, now: Timestamp) -> Fact {
    let mut new = old.clone();
    new.id = super::types::new_id("fact");
    new.object = object.trim().to_owned();
    new.recorded_at = now;
    new.retracted_at = None;
    new.closed_at = old.closed_at.map(|_| now);
    new.sources.push(format!("rectified {}: {source}", old.id));
    new
}

/// The error of a rectify that finds no fact `id` believed now.
pub(crate) fn no_fact_to_rectify(backend: &'static str, id: &str) -> StoreError {
    StoreError::new(crate::error::StoreErrorKind::NotFound, backend, format!("the user has no fact `{id}` to rectify"))
}

/// `found` (the facts `query` admits) as it asks for them: by valid time, at most its limit.
pub(crate) fn answer(mut found: Vec<Fact>, query: &FactQuery) -> Vec<Fact> {
    by_valid_time(&mut found);
    if let Some(limit) = query.limit {
        found.truncate(limit);
    }
    found
}

/// Orders facts by valid time, then record time.
pub(crate) fn by_valid_time(facts: &mut [Fact]) {
    facts.sort_by(|a, b| a.valid_from.cmp(&b.valid_from).then(a.recorded_at.cmp(&b.recorded_at)).then(a.id.cmp(&b.id)));
}
