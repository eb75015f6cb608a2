//! Chunks in the process: exact search, for tests, demos and corpora that fit in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use foldhash::fast::RandomState;

use super::Chunk;
use super::store::{Hit, SearchQuery, StoredChunk, VectorStore};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;
use crate::memory::index::{Entry, RecallIndex};

fn error(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError::new(kind, "in-memory", message)
}

/// A [`VectorStore`] in the process: each user's chunks in an index of their own, searched
/// exactly (BM25 over every admitted chunk, cosine over every vector).
///
/// Nothing is evicted: a corpus is data, not a cache. A user may hold at most
/// [`max_chunks_per_user`](Self::max_chunks_per_user) chunks (1,000,000 by default); an
/// upsert past it fails and changes nothing.
pub struct InMemoryVectorStore {
    users: Mutex<HashMap<UserId, Arc<RwLock<UserChunks>>, RandomState>>,
    max_chunks: usize,
}

impl std::fmt::Debug for InMemoryVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("InMemoryVectorStore").field("users", &users).field("max_chunks", &self.max_chunks).finish()
    }
}

impl Default for InMemoryVectorStore {
    fn default() -> Self {
        Self::new()
    }
}

/// One chunk as held: its collection, the chunk, its doc number in the index.
struct Held {
    collection: Arc<str>,
    chunk: Chunk,
    doc: u32,
}

/// One user's chunks.
struct UserChunks {
    index: RecallIndex,
    /// By key (the index's), in arrival order.
    chunks: BTreeMap<i64, Held>,
    /// Per collection, chunk id to key.
    ids: HashMap<Arc<str>, HashMap<String, i64, RandomState>, RandomState>,
    /// Per collection and document, the keys of its chunks.
    documents: HashMap<(Arc<str>, String), std::collections::BTreeSet<i64>, RandomState>,
    next: i64,
}

impl UserChunks {
    fn new() -> Self {
        Self {
            index: RecallIndex::exact(),
            chunks: BTreeMap::new(),
            ids: HashMap::default(),
            documents: HashMap::default(),
            next: 0,
        }
    }

    fn remove(&mut self, collection: &str, id: &str) -> bool {
        let Some(key) = self.ids.get_mut(collection).and_then(|ids| ids.remove(id)) else { return false };
        if let Some(held) = self.chunks.remove(&key) {
            self.index.remove(held.doc, &held.chunk.text);
            let document = (held.collection.clone(), held.chunk.document.clone());
            if let Some(keys) = self.documents.get_mut(&document) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.documents.remove(&document);
                }
            }
        }
        true
    }

    fn compact_if_sparse(&mut self) {
        if self.index.sparse() {
            let map = self.index.compact();
            for held in self.chunks.values_mut() {
                if let Some(Some(doc)) = map.get(held.doc as usize) {
                    held.doc = *doc;
                }
            }
        }
    }

    fn key(&self, collection: &str, id: &str) -> Option<i64> {
        self.ids.get(collection)?.get(id).copied()
    }

    /// The collection's shared name (made on first use).
    fn name(&mut self, collection: &str) -> Arc<str> {
        match self.ids.get_key_value(collection) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(collection);
                self.ids.insert(name.clone(), HashMap::default());
                name
            }
        }
    }
}

impl InMemoryVectorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { users: Mutex::default(), max_chunks: 1_000_000 }
    }

    /// Lets each user hold at most `n` chunks.
    #[must_use]
    pub fn max_chunks_per_user(mut self, n: usize) -> Self {
        self.max_chunks = n;
        self
    }

    fn user(&self, user: &UserId) -> Option<Arc<RwLock<UserChunks>>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner).get(user).cloned()
    }

    fn user_or_new(&self, user: &UserId) -> Arc<RwLock<UserChunks>> {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user.clone())
            .or_insert_with(|| Arc::new(RwLock::new(UserChunks::new())))
            .clone()
    }
}

#[async_trait::async_trait]
impl VectorStore for InMemoryVectorStore {
    fn backend(&self) -> &'static str {
        "in-memory"
    }

    async fn upsert(&self, user: &UserId, collection: &str, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        let held = self.user_or_new(user);
        let mut u = held.write().unwrap_or_else(PoisonError::into_inner);
        let fresh = chunks.iter().filter(|c| u.key(collection, &c.chunk.id).is_none()).count();
        if u.chunks.len() + fresh > self.max_chunks {
            return Err(error(
                StoreErrorKind::Other,
                format!(
                    "user `{user}` would hold {} chunks, past this store's limit of {}: raise it with \
                     `InMemoryVectorStore::max_chunks_per_user`, or use a durable store",
                    u.chunks.len() + fresh,
                    self.max_chunks
                ),
            ));
        }
        let name = u.name(collection);
        for c in chunks {
            u.remove(collection, &c.chunk.id);
            let key = u.next;
            u.next += 1;
            let doc = u.index.add(&Entry {
                key,
                at: 0,
                kind: collection,
                session: None,
                text: &c.chunk.text,
                vector: c.vector.as_deref(),
            });
            if let Some(ids) = u.ids.get_mut(collection) {
                ids.insert(c.chunk.id.clone(), key);
            }
            u.documents.entry((name.clone(), c.chunk.document.clone())).or_default().insert(key);
            u.chunks.insert(key, Held { collection: name.clone(), chunk: c.chunk.clone(), doc });
        }
        u.compact_if_sparse();
        Ok(())
    }

    async fn chunk_ids(&self, user: &UserId, collection: &str, document: &str) -> Result<Vec<String>, StoreError> {
        let Some(held) = self.user(user) else { return Ok(Vec::new()) };
        let u = held.read().unwrap_or_else(PoisonError::into_inner);
        let Some(keys) = u.documents.get(&(Arc::from(collection), document.to_owned())) else { return Ok(Vec::new()) };
        Ok(keys.iter().filter_map(|k| u.chunks.get(k)).map(|h| h.chunk.id.clone()).collect())
    }

    async fn delete(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<usize, StoreError> {
        let Some(held) = self.user(user) else { return Ok(0) };
        let mut u = held.write().unwrap_or_else(PoisonError::into_inner);
        let removed = ids.iter().filter(|id| u.remove(collection, id)).count();
        u.compact_if_sparse();
        Ok(removed)
    }

    async fn get(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<Vec<Chunk>, StoreError> {
        let Some(held) = self.user(user) else { return Ok(Vec::new()) };
        let u = held.read().unwrap_or_else(PoisonError::into_inner);
        Ok(ids
            .iter()
            .filter_map(|id| u.key(collection, id))
            .filter_map(|key| u.chunks.get(&key))
            .map(|h| h.chunk.clone())
            .collect())
    }

    async fn count(&self, user: &UserId, collection: &str) -> Result<usize, StoreError> {
        let Some(held) = self.user(user) else { return Ok(0) };
        let u = held.read().unwrap_or_else(PoisonError::into_inner);
        Ok(u.ids.get(collection).map_or(0, HashMap::len))
    }

    async fn search(
        &self,
        user: &UserId,
        collection: &str,
        query: &SearchQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Hit>, StoreError> {
        let Some(held) = self.user(user) else { return Ok(Vec::new()) };
        let u = held.read().unwrap_or_else(PoisonError::into_inner);
        let admits = |key: i64| match (&query.filter, u.chunks.get(&key)) {
            (Some(f), Some(h)) => f.matches(&h.chunk.metadata),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let keys: Option<&dyn Fn(i64) -> bool> = query.filter.as_ref().map(|_| &admits as &dyn Fn(i64) -> bool);
        let found = u.index.search(collection, &query.text, vector, query.alpha, query.limit, keys);
        Ok(found
            .into_iter()
            .filter_map(|(key, score, word_rank, meaning_rank)| {
                let h = u.chunks.get(&key)?;
                let vector = if query.with_vectors { u.index.vector(h.doc).map(<[f32]>::to_vec) } else { None };
                Some(Hit { chunk: h.chunk.clone(), score, word_rank, meaning_rank, vector })
            })
            .collect())
    }

    async fn export(&self, user: &UserId) -> Result<Vec<(String, Chunk)>, StoreError> {
        let Some(held) = self.user(user) else { return Ok(Vec::new()) };
        let u = held.read().unwrap_or_else(PoisonError::into_inner);
        Ok(u.chunks.values().map(|h| (h.collection.to_string(), h.chunk.clone())).collect())
    }

    async fn forget(&self, user: &UserId) -> Result<usize, StoreError> {
        let removed = self.users.lock().unwrap_or_else(PoisonError::into_inner).remove(user);
        Ok(removed.map_or(0, |held| held.read().unwrap_or_else(PoisonError::into_inner).chunks.len()))
    }
}
