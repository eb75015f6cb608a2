//! The in-memory session store.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use foldhash::fast::RandomState;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::journal::{Journal, RawRecord, RunInfo, RunKey, RunStatus, lease_end, lease_live, now_ms};
use super::{SessionStore, Window, in_session, window_start};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, SessionId, UserId};
use crate::model::Message;

const SHARDS: usize = 32;

/// A session's history, and the runs that wrote to it (so a run appends once).
#[derive(Debug, Default)]
struct History {
    messages: Vec<Message>,
    runs: HashSet<RunId, BuildHasherDefault<RunIdHasher>>,
}

/// Run ids are mostly random bits already: their low 64 bits are the hash.
#[derive(Default)]
struct RunIdHasher(u64);

impl Hasher for RunIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64;
    }
}

type UserSessions = HashMap<SessionId, History, RandomState>;

/// Sessions and run journals in process memory, partitioned by user.
///
/// The maps are split into shards by user and session, so that concurrent runs rarely contend,
/// even when they all belong to one user (or to none: the anonymous partition); a lock is held
/// only to copy a history out or append to it, never across an `.await`. Loading, appending
/// and journaling cost the same however many sessions and runs are stored.
#[derive(Debug)]
pub struct InMemoryStore {
    shards: Box<[Mutex<HashMap<UserId, UserSessions, RandomState>>]>,
    journals: Box<[Mutex<HashMap<UserId, SessionRuns, RandomState>>]>,
    hasher: RandomState,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
            journals: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
            hasher: RandomState::default(),
        }
    }

    /// Which shard holds `(user, session)`.
    fn slot(&self, user: &UserId, session: &SessionId) -> usize {
        (self.hasher.hash_one((user, session)) as usize) % SHARDS
    }

    fn shard(&self, user: &UserId, session: &SessionId) -> MutexGuard<'_, HashMap<UserId, UserSessions, RandomState>> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.shards[self.slot(user, session)].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl InMemoryStore {
    /// Calls `f` with the session's history (its last `limit` messages) and where they start
    /// in it.
    pub(crate) fn with_history<T>(
        &self,
        user: &UserId,
        session: &SessionId,
        limit: Option<usize>,
        f: impl FnOnce(&[Message], usize) -> T,
    ) -> T {
        let shard = self.shard(user, session);
        match shard.get(user).and_then(|s| s.get(session)) {
            Some(h) => {
                let start = window_start(&h.messages, limit);
                f(&h.messages[start..], start)
            }
            None => f(&[], 0),
        }
    }

    /// [`SessionStore::append`], without a future.
    pub(crate) fn append_now(&self, user: &UserId, session: &SessionId, run: RunId, messages: &[Message]) {
        let mut shard = self.shard(user, session);
        let sessions = match shard.get_mut(user) {
            Some(s) => s,
            None => shard.entry(user.clone()).or_default(),
        };
        let history = match sessions.get_mut(session) {
            Some(h) => h,
            None => sessions.entry(session.clone()).or_default(),
        };
        if history.runs.insert(run) {
            history.messages.extend_from_slice(messages);
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for InMemoryStore {
    async fn load(&self, user: &UserId, session: &SessionId, limit: Option<usize>) -> Result<Vec<Message>, StoreError> {
        Ok(self.with_history(user, session, limit, |history, _| history.to_vec()))
    }

    async fn load_window(
        &self,
        user: &UserId,
        session: &SessionId,
        limit: Option<usize>,
    ) -> Result<Window, StoreError> {
        Ok(self.with_history(user, session, limit, |history, start| Window { messages: history.to_vec(), start }))
    }

    async fn append(
        &self,
        user: &UserId,
        session: &SessionId,
        run: RunId,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        self.append_now(user, session, run, messages);
        Ok(())
    }

    async fn clear(&self, user: &UserId, session: &SessionId) -> Result<bool, StoreError> {
        // The session and its sub-sessions sit in any shard: each shard is locked in turn, for
        // the time of the removal only.
        let messages = remove_sessions(&self.shards, user, session);
        let journals = remove_sessions(&self.journals, user, session);
        let removed = messages || journals;
        Ok(removed)
    }

    async fn sessions(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError> {
        // A user's sessions are spread over the shards.
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(sessions) = shard.get(user) {
                out.extend(sessions.keys().cloned());
            }
        }
        for shard in &self.journals {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(sessions) = shard.get(user) {
                out.extend(sessions.keys().filter(|s| !out.contains(s)).cloned().collect::<Vec<_>>());
            }
        }
        Ok(out)
    }
}

/// A shard: users, then their sessions, then what a session holds.
type Shard<V> = Mutex<HashMap<UserId, HashMap<SessionId, V, RandomState>, RandomState>>;

/// Removes `session` and its sub-sessions of `user` from every shard; whether there were any.
fn remove_sessions<V>(shards: &[Shard<V>], user: &UserId, session: &SessionId) -> bool {
    let mut removed = false;
    for shard in shards {
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sessions) = shard.get_mut(user) {
            let before = sessions.len();
            sessions.retain(|s, _| !in_session(session, s));
            removed |= sessions.len() < before;
            if sessions.is_empty() {
                shard.remove(user);
            }
        }
    }
    removed
}

#[derive(Debug, Default)]
struct RunState {
    status: Option<RunStatus>,
    owner: Option<String>,
    lease_until: Option<u64>,
    started_ms: u64,
    updated_ms: u64,
    records: Vec<RawRecord>,
}

/// The runs of each session of one user.
type SessionRuns = HashMap<SessionId, HashMap<RunId, RunState, BuildHasherDefault<RunIdHasher>>, RandomState>;

impl InMemoryStore {
    /// The journal shard of `(user, session)`.
    fn journal(&self, user: &UserId, session: &SessionId) -> MutexGuard<'_, HashMap<UserId, SessionRuns, RandomState>> {
        self.journals[self.slot(user, session)].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state of `key`'s run, created when missing.
    fn run_entry<'s>(shard: &'s mut HashMap<UserId, SessionRuns, RandomState>, key: &RunKey) -> &'s mut RunState {
        shard.entry(key.user.clone()).or_default().entry(key.session.clone()).or_default().entry(key.run).or_default()
    }

    /// The state of `key`'s run, if it has one.
    fn run_mut<'s>(shard: &'s mut HashMap<UserId, SessionRuns, RandomState>, key: &RunKey) -> Option<&'s mut RunState> {
        shard.get_mut(&key.user)?.get_mut(&key.session)?.get_mut(&key.run)
    }
}

fn conflict(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Conflict, "memory", message)
}

#[async_trait::async_trait]
impl Journal for InMemoryStore {
    async fn acquire(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let mut shard = self.journal(&key.user, &key.session);
        let run = Self::run_entry(&mut shard, key);
        if run.owner.as_deref().is_some_and(|o| o != owner) && lease_live(run.lease_until, now) {
            return Err(conflict(format!("run {} is held by another worker", key.run)));
        }
        if run.status.is_none() {
            run.started_ms = now;
        }
        run.status = Some(RunStatus::Running);
        run.owner = Some(owner.to_owned());
        run.lease_until = Some(lease_end(now, ttl));
        run.updated_ms = now;
        Ok(())
    }

    async fn append(&self, key: &RunKey, owner: &str, ttl: Duration, record: RawRecord) -> Result<(), StoreError> {
        let now = now_ms();
        let mut shard = self.journal(&key.user, &key.session);
        let Some(run) = Self::run_mut(&mut shard, key) else {
            return Err(conflict(format!("run {} was not acquired before writing", key.run)));
        };
        if run.owner.as_deref() != Some(owner) {
            return Err(conflict(format!("run {} is held by another worker", key.run)));
        }
        // Records go forward only (imports are kept sorted): the last one is the furthest.
        if run.records.last().is_some_and(|last| last.seq >= record.seq) {
            return Err(conflict(format!("record {} of run {} is already written", record.seq, key.run)));
        }
        run.records.push(record);
        run.lease_until = Some(lease_end(now, ttl));
        run.updated_ms = now;
        Ok(())
    }

    async fn renew(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let mut shard = self.journal(&key.user, &key.session);
        match Self::run_mut(&mut shard, key) {
            Some(run) if run.owner.as_deref() == Some(owner) => {
                run.lease_until = Some(lease_end(now, ttl));
                Ok(())
            }
            _ => Err(conflict(format!("run {} is not held by this worker", key.run))),
        }
    }

    async fn finish(&self, key: &RunKey, owner: &str, status: RunStatus) -> Result<(), StoreError> {
        let mut shard = self.journal(&key.user, &key.session);
        if let Some(run) = Self::run_mut(&mut shard, key)
            && run.owner.as_deref() == Some(owner)
        {
            run.status = Some(status);
            run.owner = None;
            run.lease_until = None;
            run.updated_ms = now_ms();
        }
        Ok(())
    }

    async fn records(&self, key: &RunKey) -> Result<Vec<RawRecord>, StoreError> {
        let mut shard = self.journal(&key.user, &key.session);
        let mut records = Self::run_mut(&mut shard, key).map(|r| r.records.clone()).unwrap_or_default();
        records.sort_by_key(|r| r.seq);
        Ok(records)
    }

    async fn runs(&self, user: &UserId, session: &SessionId) -> Result<Vec<RunInfo>, StoreError> {
        let shard = self.journal(user, session);
        let mut runs: Vec<RunInfo> = shard
            .get(user)
            .and_then(|sessions| sessions.get(session))
            .map(|r| {
                r.iter()
                    .map(|(run, st)| RunInfo {
                        run: *run,
                        status: st.status.unwrap_or(RunStatus::Running),
                        started_ms: st.started_ms,
                        updated_ms: st.updated_ms,
                        lease_until_ms: st.owner.as_ref().and(st.lease_until),
                    })
                    .collect()
            })
            .unwrap_or_default();
        runs.sort_by_key(|r| (r.started_ms, r.run));
        Ok(runs)
    }

    async fn import(&self, key: &RunKey, status: RunStatus, records: Vec<RawRecord>) -> Result<(), StoreError> {
        let now = now_ms();
        let mut shard = self.journal(&key.user, &key.session);
        let run = Self::run_entry(&mut shard, key);
        if run.owner.is_some() && lease_live(run.lease_until, now) {
            return Err(conflict(format!("run {} is held by a worker", key.run)));
        }
        run.records = records;
        run.records.sort_by_key(|r| r.seq);
        run.status = Some(status);
        run.owner = None;
        run.lease_until = None;
        if run.started_ms == 0 {
            run.started_ms = now;
        }
        run.updated_ms = now;
        Ok(())
    }
}
