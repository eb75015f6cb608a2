//! Memory in the process: bounded per user and in users, for tests, demos and single processes.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::index::{Entry, RecallIndex};
use super::store::{MemoryStore, answer, corrected, no_fact_to_rectify, record, supersede};
use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;

/// How much an [`InMemoryMemory`] keeps before it lets the oldest go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryLimits {
    /// Users kept; past it the least recently used user's memory is dropped.
    pub max_users: usize,
    /// A user unused for this long is dropped.
    pub idle_ttl: Duration,
    /// Episodes kept per user; past it the oldest is dropped.
    pub max_episodes_per_user: usize,
    /// Facts kept per user; past it the oldest-recorded is dropped.
    pub max_facts_per_user: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_users: 100_000,
            idle_ttl: Duration::from_secs(24 * 3_600),
            max_episodes_per_user: 10_000,
            max_facts_per_user: 10_000,
        }
    }
}

impl MemoryLimits {
    /// At most `n` users.
    #[must_use]
    pub fn max_users(mut self, n: usize) -> Self {
        self.max_users = n;
        self
    }

    /// Users idle longer than `ttl` are dropped.
    #[must_use]
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// At most `n` episodes per user.
    #[must_use]
    pub fn max_episodes_per_user(mut self, n: usize) -> Self {
        self.max_episodes_per_user = n;
        self
    }

    /// At most `n` facts per user.
    #[must_use]
    pub fn max_facts_per_user(mut self, n: usize) -> Self {
        self.max_facts_per_user = n;
        self
    }
}

/// One user's memory.
#[derive(Default)]
struct UserMemory {
    blocks: BTreeMap<String, WorkingBlock>,
    /// The episodes by order of arrival, each with its number in `index`.
    episodes: BTreeMap<i64, (Episode, u32)>,
    next_episode: i64,
    /// The episodes' words and vectors, for recall.
    index: RecallIndex,
    /// The ids of `episodes`: an episode kept again (a resumed run's turn) is kept once.
    ids: std::collections::HashSet<std::sync::Arc<str>>,
    facts: Vec<Fact>,
}

impl UserMemory {
    /// Rebuilds the index once removed episodes outnumber the kept ones.
    fn compact(&mut self) {
        if !self.index.sparse() {
            return;
        }
        let map = self.index.compact();
        for (_, doc) in self.episodes.values_mut() {
            if let Some(Some(new)) = map.get(*doc as usize) {
                *doc = *new;
            }
        }
    }
}

type Users = crate::bounded::PerUser<UserMemory>;

/// Memory kept in the process, bounded: at most `max_users` users (least recently used
/// dropped first), users idle past `idle_ttl` dropped, and per user at most
/// `max_episodes_per_user` episodes and `max_facts_per_user` facts (oldest dropped first).
/// Recall ranks over an index of each user's own episodes (BM25 postings with the user's own
/// statistics; vectors with a sign pass before exact cosine once a user holds thousands).
pub struct InMemoryMemory {
    users: Mutex<Users>,
    limits: MemoryLimits,
}

impl std::fmt::Debug for InMemoryMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryMemory").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Default for InMemoryMemory {
    fn default() -> Self {
        Self::new()
    }
}

const BACKEND: &str = "in-memory";

impl InMemoryMemory {
    /// With the default limits.
    pub fn new() -> Self {
        Self::with_limits(MemoryLimits::default())
    }

    /// With these limits.
    pub fn with_limits(limits: MemoryLimits) -> Self {
        Self { users: Mutex::new(Users::default()), limits }
    }

    /// How many users it holds now.
    pub fn users(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on `user`'s memory, creating it when `create`, after dropping idle and excess
    /// users; `None` when the user has none and `create` is off.
    fn with_user<T>(&self, user: &UserId, create: bool, f: impl FnOnce(&mut UserMemory) -> T) -> Option<T> {
        self.lock().with(user, create, self.limits.max_users, self.limits.idle_ttl, f)
    }
}

#[async_trait::async_trait]
impl MemoryStore for InMemoryMemory {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        Ok(self.with_user(user, false, |m| m.blocks.values().cloned().collect()).unwrap_or_default())
    }

    async fn write_block(
        &self,
        user: &UserId,
        name: &str,
        text: &str,
        append: bool,
    ) -> Result<WorkingBlock, StoreError> {
        let block = self.with_user(user, true, |m| {
            let now = Timestamp::now();
            let block = m.blocks.entry(name.to_owned()).or_insert_with(|| WorkingBlock {
                name: name.to_owned(),
                text: String::new(),
                updated_at: now,
            });
            if append && !block.text.is_empty() {
                block.text.push('\n');
                block.text.push_str(text);
            } else {
                block.text = text.to_owned();
            }
            block.updated_at = now;
            block.clone()
        });
        block.ok_or_else(|| StoreError::new(StoreErrorKind::Other, BACKEND, "the user's memory could not be made"))
    }

    async fn remember(&self, episode: &Episode, vector: Option<&[f32]>) -> Result<(), StoreError> {
        let max = self.limits.max_episodes_per_user.max(1);
        self.with_user(&episode.user, true, |m| {
            if !m.ids.insert(std::sync::Arc::clone(&episode.id)) {
                return;
            }
            let key = m.next_episode;
            m.next_episode += 1;
            let doc = m.index.add(&Entry {
                key,
                at: episode.at.as_millis(),
                kind: &episode.kind,
                session: episode.session.as_ref().map(|s| s.as_str()),
                text: &episode.text,
                vector,
            });
            m.episodes.insert(key, (episode.clone(), doc));
            while m.episodes.len() > max {
                if let Some((_, (old, doc))) = m.episodes.pop_first() {
                    m.index.remove(doc, &old.text);
                    m.ids.remove(&old.id);
                }
            }
            m.compact();
        });
        Ok(())
    }

    async fn recall(
        &self,
        user: &UserId,
        query: &RecallQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Recalled>, StoreError> {
        let found = self.with_user(user, false, |m| {
            m.index
                .recall(query, vector)
                .into_iter()
                .filter_map(|(key, score, word_rank, meaning_rank)| {
                    let (episode, _) = m.episodes.get(&key)?;
                    Some(Recalled { episode: episode.clone(), score, word_rank, meaning_rank })
                })
                .collect::<Vec<_>>()
        });
        Ok(found.unwrap_or_default())
    }

    async fn add_fact(&self, user: &UserId, fact: NewFact, now: Timestamp) -> Result<Fact, StoreError> {
        let max = self.limits.max_facts_per_user.max(1);
        let recorded = self.with_user(user, true, |m| {
            let mut fact = record(user, fact, now);
            if let Some(same) = m.facts.iter_mut().find(|f| same_claim(f, &fact)) {
                for s in fact.sources {
                    if !same.sources.contains(&s) {
                        same.sources.push(s);
                    }
                }
                return same.clone();
            }
            for (i, until) in supersede(&m.facts, &mut fact, now) {
                m.facts[i].valid_until = Some(until);
                m.facts[i].closed_at = Some(now);
            }
            m.facts.push(fact.clone());
            if m.facts.len() > max {
                let excess = m.facts.len() - max;
                m.facts.drain(..excess);
            }
            fact
        });
        recorded.ok_or_else(|| StoreError::new(StoreErrorKind::Other, BACKEND, "the user's memory could not be made"))
    }

    async fn facts(&self, user: &UserId, query: &FactQuery) -> Result<Vec<Fact>, StoreError> {
        let found = self
            .with_user(user, false, |m| m.facts.iter().filter(|f| query.admits(f)).cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        Ok(answer(found, query))
    }

    async fn rectify(
        &self,
        user: &UserId,
        id: &str,
        object: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<Fact, StoreError> {
        let fixed = self.with_user(user, false, |m| {
            let old = m.facts.iter_mut().find(|f| &*f.id == id && f.retracted_at.is_none())?;
            old.retracted_at = Some(now);
            let new = corrected(old, object, source, now);
            m.facts.push(new.clone());
            Some(new)
        });
        fixed.flatten().ok_or_else(|| no_fact_to_rectify(BACKEND, id))
    }

    async fn export(&self, user: &UserId) -> Result<MemoryData, StoreError> {
        let data = self.with_user(user, false, |m| MemoryData {
            blocks: m.blocks.values().cloned().collect(),
            episodes: m.episodes.values().map(|(e, _)| e.clone()).collect(),
            facts: m.facts.clone(),
        });
        Ok(data.unwrap_or_default())
    }

    async fn forget(&self, user: &UserId, scope: &ForgetScope) -> Result<ForgetReport, StoreError> {
        if scope.is_everything() {
            let mut users = self.lock();
            let Some(m) = users.remove(user) else { return Ok(ForgetReport::default()) };
            return Ok(ForgetReport {
                episodes: m.episodes.len(),
                facts: m.facts.len(),
                blocks: m.blocks.len(),
                ..ForgetReport::default()
            });
        }
        let report = self.with_user(user, false, |m| {
            let gone = |e: &Episode| {
                scope.session.as_ref().is_none_or(|s| e.session.as_ref() == Some(s))
                    && scope.before.is_none_or(|t| e.at < t)
            };
            let mut removed: Vec<String> = Vec::new();
            let index = &mut m.index;
            m.episodes.retain(|_, (e, doc)| {
                if !gone(e) {
                    return true;
                }
                index.remove(*doc, &e.text);
                removed.push(e.id.to_string());
                false
            });
            m.ids.retain(|id| !removed.iter().any(|r| **r == **id));
            m.compact();
            let before = m.facts.len();
            m.facts.retain(|f| !fact_forgotten(f, scope, &removed));
            ForgetReport { episodes: removed.len(), facts: before - m.facts.len(), ..ForgetReport::default() }
        });
        Ok(report.unwrap_or_default())
    }
}

/// Whether `existing` already says what `new` says, from a time it still holds.
pub(crate) fn same_claim(existing: &Fact, new: &Fact) -> bool {
    existing.retracted_at.is_none()
        && existing.subject.eq_ignore_ascii_case(&new.subject)
        && existing.predicate == new.predicate
        && existing.object.eq_ignore_ascii_case(&new.object)
        && existing.valid_from <= new.valid_from
        && existing.valid_until.is_none_or(|u| u > new.valid_from)
}

/// Whether a scoped forget removes `fact`: recorded before `before`, or drawn only from the
/// episodes it removes.
pub(crate) fn fact_forgotten(fact: &Fact, scope: &ForgetScope, removed_episodes: &[String]) -> bool {
    if let Some(before) = scope.before
        && scope.session.is_none()
    {
        return fact.recorded_at < before;
    }
    !fact.sources.is_empty() && fact.sources.iter().all(|s| removed_episodes.contains(s))
}
