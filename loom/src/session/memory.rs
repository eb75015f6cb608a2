//! The in-memory session store.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{SessionStore, window_start};
use crate::error::StoreError;
use crate::id::{SessionId, UserId};
use crate::model::Message;

const SHARDS: usize = 32;

type UserSessions = HashMap<SessionId, Vec<Message>>;

/// Session histories in process memory, partitioned by user.
///
/// The map is split into shards by user so that concurrent runs of different users rarely
/// contend; a lock is held only to copy a history out or append to it, never across an
/// `.await`. Loading or appending costs the same however many sessions are stored.
#[derive(Debug)]
pub struct InMemorySessionStore {
    shards: Box<[Mutex<HashMap<UserId, UserSessions>>]>,
    hasher: RandomState,
}

impl Default for InMemorySessionStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), hasher: RandomState::new() }
    }

    fn shard(&self, user: &UserId) -> MutexGuard<'_, HashMap<UserId, UserSessions>> {
        let i = (self.hasher.hash_one(user) as usize) % self.shards.len();
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SessionStore for InMemorySessionStore {
    async fn load(&self, user: &UserId, session: &SessionId, limit: Option<usize>) -> Result<Vec<Message>, StoreError> {
        let shard = self.shard(user);
        Ok(match shard.get(user).and_then(|s| s.get(session)) {
            Some(history) => history[window_start(history, limit)..].to_vec(),
            None => Vec::new(),
        })
    }

    async fn append(&self, user: &UserId, session: &SessionId, messages: &[Message]) -> Result<(), StoreError> {
        let mut shard = self.shard(user);
        let sessions = match shard.get_mut(user) {
            Some(s) => s,
            None => shard.entry(user.clone()).or_default(),
        };
        match sessions.get_mut(session) {
            Some(history) => history.extend_from_slice(messages),
            None => {
                sessions.insert(session.clone(), messages.to_vec());
            }
        }
        Ok(())
    }

    async fn clear(&self, user: &UserId, session: &SessionId) -> Result<bool, StoreError> {
        let mut shard = self.shard(user);
        let Some(sessions) = shard.get_mut(user) else { return Ok(false) };
        let removed = sessions.remove(session).is_some();
        if sessions.is_empty() {
            shard.remove(user);
        }
        Ok(removed)
    }

    async fn sessions(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError> {
        let shard = self.shard(user);
        Ok(shard.get(user).map(|s| s.keys().cloned().collect()).unwrap_or_default())
    }
}
