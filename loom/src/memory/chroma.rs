//! Memory in Chroma, over its HTTP API (v2): episodes with their vectors, ranked by meaning in
//! Chroma and by words (BM25) in the process; blocks and facts as records keyed per user.
//! See [`ChromaMemory`] for its collections, what is atomic, and its scale limit.

pub(crate) mod api;

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use self::api::{Api, BACKEND, Collection, Record, Write, corrupt, error, valid_name};
use super::in_memory::{fact_forgotten, same_claim};
use super::rank::{fuse, rank_by_words};
use super::store::{MemoryStore, answer, corrected, no_fact_to_rectify, record, supersede};
use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{SessionId, UserId};

/// How many episodes the vector query returns at least, to fuse with the word ranking.
const MEANING_CANDIDATES: usize = 200;

/// The placeholder vectors' dimension while the episodes' collection has none (the hashing
/// embedder's default).
const DEFAULT_DIMS: usize = 256;

/// How many locks a user's read-modify-write steps are spread over.
const LOCKS: usize = 64;

/// A distance past which a vector is no closer than an orthogonal one (a cosine similarity of
/// 0, which recall does not count as a match).
const FAR: f64 = 1.0 - 1e-6;

/// The separator of a record id's user and key: no user id contains it.
const SEP: char = '\u{1f}';

/// How to reach a Chroma server: its URL, tenant, database and collection prefix, and the
/// timeouts of its requests. Made by [`ChromaMemory::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct ChromaBuilder {
    url: String,
    tenant: String,
    database: String,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl ChromaBuilder {
    /// In `tenant` (`default_tenant` unless set); made if missing.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// In `database` (`default_database` unless set); made if missing.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Names the collections `{prefix}_episodes`, `{prefix}_facts` and `{prefix}_blocks`
    /// (`loom` unless set): memories with different prefixes share nothing. Letters, digits,
    /// `.`, `_` and `-`, starting with a letter or digit.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one request may take (30 seconds unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest to wait for a connection (5 seconds unless set).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Checks that the server answers (`GET /api/v2/heartbeat`), then gets or makes the
    /// tenant, the database and the collections. A server that does not answer is an
    /// [`Unavailable`](StoreErrorKind::Unavailable) error; an episodes' collection made
    /// elsewhere with a distance other than cosine is refused.
    pub async fn connect(self) -> Result<ChromaMemory, StoreError> {
        if !valid_name(&self.prefix) || self.prefix.len() > 400 {
            return Err(error(
                StoreErrorKind::Other,
                format!(
                    "the collection prefix `{}` must be 1 to 400 letters, digits, `.`, `_` and `-`, starting with a \
                     letter or digit",
                    self.prefix.escape_debug()
                ),
            ));
        }
        let api = Api::new(&self.url, &self.tenant, &self.database, self.timeout, self.connect_timeout)?;
        api.heartbeat().await?;
        api.ensure_database().await?;
        let max_batch = api.max_batch().await?;
        let name = format!("{}_episodes", self.prefix);
        let (episodes, dims, space) = api.collection(&name, json!({ "hnsw": { "space": "cosine" } })).await?;
        if let Some(space) = space.filter(|s| s != "cosine") {
            return Err(error(
                StoreErrorKind::Incompatible,
                format!(
                    "the collection `{name}` measures `{space}` distance; Loom's episodes need `cosine` (choose another \
                     prefix)"
                ),
            ));
        }
        let (facts, ..) = api.collection(&format!("{}_facts", self.prefix), json!({})).await?;
        let (blocks, ..) = api.collection(&format!("{}_blocks", self.prefix), json!({})).await?;
        Ok(ChromaMemory {
            api,
            prefix: self.prefix,
            episodes,
            facts,
            blocks,
            dims: AtomicUsize::new(dims.unwrap_or(0)),
            max_batch,
            locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
            chunks: tokio::sync::OnceCell::new(),
            chunk_dims: AtomicUsize::new(0),
        })
    }
}

/// Memory in a Chroma server: episodes ranked by meaning in Chroma and by words in the
/// process, facts and blocks as records per user.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use loomflow::memory::{ChromaMemory, Memory};
///
/// let store = ChromaMemory::builder("http://127.0.0.1:8000").prefix("support_bot").connect().await?;
/// let memory = Memory::new(store);
/// # Ok(())
/// # }
/// ```
///
/// # Collections
///
/// Three collections in one tenant and database (`default_tenant`, `default_database` unless
/// set), named from a prefix (`loom` unless set): `{prefix}_episodes`, `{prefix}_facts` and
/// `{prefix}_blocks`. Every record carries its user in its metadata (`user`), every read
/// filters on it, and its id starts with the user: `{user}\u{1f}{episode id}`,
/// `{user}\u{1f}{fact id}`, `{user}\u{1f}{block name}` (a user id holds no control character, so
/// two users' ids never meet).
///
/// - **Episodes**: the text is the document; the metadata holds `user`, `id`, `kind`, `at`
///   (milliseconds since the epoch, an integer for `$gte` / `$lt`), `session` (absent without
///   one), `meta` (the episode's own metadata, as JSON, absent when empty) and `vector`
///   (whether the embedding is the episode's). The collection measures cosine distance.
///   Chroma requires an embedding per record and one dimension per collection: an episode
///   kept without a vector (a [`Memory`](crate::memory::Memory) without an embedder, or a
///   vector that is all zero or not finite) gets a placeholder of the collection's dimension
///   (256 until it has one) with `vector: false`, and is ranked by words only. A collection
///   holds one dimension: a memory with an embedder of another dimension needs its own prefix
///   (Chroma refuses its vectors).
/// - **Facts**: the document is the [`Fact`] as JSON; the metadata holds `user`, `id`,
///   `subject` (lowercase) and `predicate`, for the reads of one subject and predicate.
/// - **Blocks**: the document is the [`WorkingBlock`] as JSON; the metadata holds `user` and
///   `name`.
///
/// Facts and blocks have a constant one-dimension embedding: they are never searched by
/// vector.
///
/// A corpus over this store (its `VectorStore` implementation, feature `rag`) keeps its chunks
/// in a fourth collection, `{prefix}_chunks`, made the first time it is used.
///
/// # Recall
///
/// Words: the user's episodes that pass the query's filters (kind, session, time range, all
/// in Chroma's `where`, with `$and`, `$gte` and `$lt`) are read, and BM25 ranks them in the
/// process, as [`InMemoryMemory`](crate::memory::InMemoryMemory) does. Meaning: Chroma's
/// vector query with the same filter, for the 200 nearest (or `limit`, if more); a cosine
/// similarity of (nearly) 0 is no match. The two are fused by reciprocal rank, equal scores
/// going to the episode kept later. Reading every matching episode of the user at each recall
/// (page by page, 1000 a page) is the scale limit: fine for thousands of episodes per user,
/// slow for hundreds of thousands; `forget` of a session or a time reads the user's facts
/// the same way.
///
/// # What is atomic
///
/// Chroma has no transactions. Each operation writes in one request: `remember` is one `add`
/// (Chroma leaves a record whose id it holds already alone, so an episode kept twice is kept
/// once, even from two processes); `write_block`, `add_fact` and `rectify` read, compute in
/// Rust (supersession, for facts), then write every record they change in one `upsert`, so
/// a failed call changed nothing. A user's read-modify-write steps are serialised within one
/// `ChromaMemory` (which every clone of a `Memory` over it shares), so concurrent writers
/// through it lose nothing. Across processes they are not: two processes appending to one
/// user's block, or adding facts of one subject and predicate, at the same moment may lose
/// one of the changes (the last `upsert` wins). `forget` deletes collection by collection
/// (facts before the episodes they came from): a failure part way leaves some records
/// forgotten and others not, and forgetting again finishes it. Reads of several collections
/// (`export`, `recall`'s two rankings) are not one snapshot: an episode kept between them is
/// left out of that recall.
pub struct ChromaMemory {
    pub(crate) api: Api,
    pub(crate) prefix: String,
    episodes: Collection,
    facts: Collection,
    blocks: Collection,
    /// The dimension of the episodes' vectors, once known (0 until then).
    dims: AtomicUsize,
    /// The most records one request may carry.
    pub(crate) max_batch: usize,
    /// Serialise a user's read-modify-write steps (a user always takes the same one).
    locks: Box<[tokio::sync::Mutex<()>]>,
    /// The chunks' collection of a corpus (`{prefix}_chunks`), made on first use.
    #[cfg_attr(not(feature = "rag"), allow(dead_code))]
    pub(crate) chunks: tokio::sync::OnceCell<Collection>,
    /// The dimension of the chunks' vectors, once known (0 until then).
    #[cfg_attr(not(feature = "rag"), allow(dead_code))]
    pub(crate) chunk_dims: AtomicUsize,
}

impl std::fmt::Debug for ChromaMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromaMemory").field("api", &self.api).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl ChromaMemory {
    /// Connects to the Chroma server at `url` (`http://127.0.0.1:8000`) with the defaults:
    /// `default_tenant`, `default_database`, prefix `loom`.
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for the server at `url`, to set the tenant, database, prefix or timeouts.
    pub fn builder(url: impl Into<String>) -> ChromaBuilder {
        ChromaBuilder {
            url: url.into(),
            tenant: "default_tenant".to_owned(),
            database: "default_database".to_owned(),
            prefix: "loom".to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The collections' names: episodes, facts, blocks.
    pub fn collections(&self) -> [&str; 3] {
        [&self.episodes.name, &self.facts.name, &self.blocks.name]
    }

    pub(crate) async fn lock(&self, user: &UserId) -> tokio::sync::MutexGuard<'_, ()> {
        let hash = foldhash::fast::FixedState::with_seed(0x6c6f_6f6d).hash_one(user.as_str());
        let i = (hash % self.locks.len() as u64) as usize;
        self.locks[i].lock().await
    }

    /// A placeholder embedding of the episodes' dimension, for an episode without a vector.
    async fn placeholder(&self) -> Result<Vec<f32>, StoreError> {
        let mut dims = self.dims.load(Ordering::Relaxed);
        if dims == 0 {
            // Another process may have kept the first vector since we connected.
            dims = self.api.dimension(&self.episodes).await?.unwrap_or(DEFAULT_DIMS);
            self.dims.store(dims, Ordering::Relaxed);
        }
        let mut v = vec![0.0; dims.max(1)];
        if let Some(first) = v.first_mut() {
            *first = 1.0;
        }
        Ok(v)
    }

    async fn user_facts(&self, user: &UserId, filter: Value) -> Result<Vec<Fact>, StoreError> {
        let records = self.api.get_where(&self.facts, &filter, true).await?;
        records.iter().map(|r| fact(r, user)).collect()
    }

    fn fact_write(fact: &Fact) -> Result<Write, StoreError> {
        let document = serde_json::to_string(fact).map_err(|e| error(StoreErrorKind::Other, format!("a fact: {e}")))?;
        let mut metadata = Map::new();
        metadata.insert("user".into(), fact.user.as_str().into());
        metadata.insert("id".into(), (*fact.id).into());
        metadata.insert("subject".into(), fact.subject.to_lowercase().into());
        metadata.insert("predicate".into(), fact.predicate.clone().into());
        Ok(Write { id: key(&fact.user, &fact.id), embedding: vec![1.0], document, metadata })
    }
}

/// A record's id: the user, the separator, the key.
fn key(user: &UserId, key: &str) -> String {
    format!("{}{SEP}{key}", user.as_str())
}

fn eq(field: &str, value: impl Into<Value>) -> Value {
    json!({ field: { "$eq": value.into() } })
}

/// All of `clauses`, as one `where`.
fn all(mut clauses: Vec<Value>) -> Value {
    if clauses.len() == 1 { clauses.remove(0) } else { json!({ "$and": clauses }) }
}

/// The filters of a recall, in Chroma's `where`.
fn recall_filter(user: &UserId, query: &RecallQuery) -> Vec<Value> {
    let mut clauses = vec![eq("user", user.as_str())];
    if let Some(kind) = &query.kind {
        clauses.push(eq("kind", kind.as_str()));
    }
    if let Some(session) = &query.session {
        clauses.push(eq("session", session.as_str()));
    }
    if let Some(since) = query.since {
        clauses.push(json!({ "at": { "$gte": since.as_millis() } }));
    }
    if let Some(until) = query.until {
        clauses.push(json!({ "at": { "$lt": until.as_millis() } }));
    }
    clauses
}

/// Whether a vector can be compared: not empty, finite, not all zero (recall counts no match
/// for any other, as the in-memory store's cosine does).
fn usable(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)
}

fn text<'r>(r: &'r Record, field: &str) -> Option<&'r str> {
    r.metadata.get(field).and_then(Value::as_str)
}

/// The episode of `r`, which must be `user`'s.
fn episode(r: &Record, user: &UserId) -> Result<Episode, StoreError> {
    let bad = |problem: &str| corrupt("episode", &r.id, problem);
    if text(r, "user") != Some(user.as_str()) {
        return Err(bad("its `user` is missing or not the user it was read for"));
    }
    let id = text(r, "id").ok_or_else(|| bad("it has no `id`"))?;
    let kind = text(r, "kind").ok_or_else(|| bad("it has no `kind`"))?;
    let at = r.metadata.get("at").and_then(Value::as_i64).ok_or_else(|| bad("its `at` is not an integer"))?;
    let session = match r.metadata.get("session") {
        None => None,
        Some(Value::String(s)) => Some(SessionId::new(s).map_err(|e| corrupt("episode", &r.id, e))?),
        Some(_) => return Err(bad("its `session` is not text")),
    };
    let metadata = match r.metadata.get("meta") {
        None => Map::new(),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| corrupt("episode", &r.id, e))?,
        Some(_) => return Err(bad("its `meta` is not text")),
    };
    Ok(Episode {
        id: id.into(),
        user: user.clone(),
        session,
        kind: kind.to_owned(),
        text: r.document.clone().ok_or_else(|| bad("it has no document"))?,
        at: Timestamp::from_millis(at),
        metadata,
    })
}

/// The fact of `r`, which must be `user`'s.
fn fact(r: &Record, user: &UserId) -> Result<Fact, StoreError> {
    let document = r.document.as_deref().ok_or_else(|| corrupt("fact", &r.id, "it has no document"))?;
    let fact: Fact = serde_json::from_str(document).map_err(|e| corrupt("fact", &r.id, e))?;
    if fact.user != *user || key(user, &fact.id) != r.id {
        return Err(corrupt("fact", &r.id, "its user or id is not the record's"));
    }
    Ok(fact)
}

/// The block of `r`, which must be `user`'s.
fn block(r: &Record, user: &UserId) -> Result<WorkingBlock, StoreError> {
    let document = r.document.as_deref().ok_or_else(|| corrupt("block", &r.id, "it has no document"))?;
    let block: WorkingBlock = serde_json::from_str(document).map_err(|e| corrupt("block", &r.id, e))?;
    if text(r, "user") != Some(user.as_str()) || key(user, &block.name) != r.id {
        return Err(corrupt("block", &r.id, "its user or name is not the record's"));
    }
    Ok(block)
}

/// The user's episodes, oldest first (equal times in the order they were kept).
fn oldest_first(records: &[Record], user: &UserId) -> Result<Vec<Episode>, StoreError> {
    let mut episodes = records.iter().map(|r| episode(r, user)).collect::<Result<Vec<_>, _>>()?;
    episodes.sort_by_key(|e| e.at);
    Ok(episodes)
}

#[async_trait::async_trait]
impl MemoryStore for ChromaMemory {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        let records = self.api.get_where(&self.blocks, &eq("user", user.as_str()), true).await?;
        let mut blocks = records.iter().map(|r| block(r, user)).collect::<Result<Vec<_>, _>>()?;
        blocks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(blocks)
    }

    async fn write_block(
        &self,
        user: &UserId,
        name: &str,
        text: &str,
        append: bool,
    ) -> Result<WorkingBlock, StoreError> {
        let _serial = self.lock(user).await;
        let id = key(user, name);
        let old = match self.api.get_ids(&self.blocks, std::slice::from_ref(&id)).await?.first() {
            Some(r) => Some(block(r, user)?),
            None => None,
        };
        let text = match old {
            Some(old) if append && !old.text.is_empty() => format!("{}\n{text}", old.text),
            _ => text.to_owned(),
        };
        let block = WorkingBlock { name: name.to_owned(), text, updated_at: Timestamp::now() };
        let document =
            serde_json::to_string(&block).map_err(|e| error(StoreErrorKind::Other, format!("a block: {e}")))?;
        let mut metadata = Map::new();
        metadata.insert("user".into(), user.as_str().into());
        metadata.insert("name".into(), name.into());
        self.api.upsert(&self.blocks, &[Write { id, embedding: vec![1.0], document, metadata }]).await?;
        Ok(block)
    }

    async fn remember(&self, episode: &Episode, vector: Option<&[f32]>) -> Result<(), StoreError> {
        let vector = vector.filter(|v| usable(v));
        let embedding = match vector {
            Some(v) => v.to_vec(),
            None => self.placeholder().await?,
        };
        let mut metadata = Map::new();
        metadata.insert("user".into(), episode.user.as_str().into());
        metadata.insert("id".into(), (*episode.id).into());
        metadata.insert("kind".into(), episode.kind.clone().into());
        metadata.insert("at".into(), episode.at.as_millis().into());
        if let Some(session) = &episode.session {
            metadata.insert("session".into(), session.as_str().into());
        }
        if !episode.metadata.is_empty() {
            let meta = serde_json::to_string(&episode.metadata)
                .map_err(|e| error(StoreErrorKind::Other, format!("an episode's metadata: {e}")))?;
            metadata.insert("meta".into(), meta.into());
        }
        metadata.insert("vector".into(), vector.is_some().into());
        let write = Write { id: key(&episode.user, &episode.id), embedding, document: episode.text.clone(), metadata };
        self.api.add(&self.episodes, &[write]).await?;
        if let Some(v) = vector {
            self.dims.store(v.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    async fn recall(
        &self,
        user: &UserId,
        query: &RecallQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Recalled>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let clauses = recall_filter(user, query);
        let records = self.api.get_where(&self.episodes, &all(clauses.clone()), true).await?;
        // Latest kept first (Chroma answers in the order records were added): equal scores go
        // to the more recent episode.
        let mut admitted: Vec<(Episode, bool)> = Vec::with_capacity(records.len());
        for r in records.iter().rev() {
            admitted.push((episode(r, user)?, r.metadata.get("vector") == Some(&Value::Bool(true))));
        }
        let words = rank_by_words(&query.text, admitted.iter().map(|(e, _)| e.text.as_str()));

        let with_vectors = admitted.iter().filter(|(_, v)| *v).count();
        let dims = self.dims.load(Ordering::Relaxed);
        let mut by_meaning: Vec<(usize, f64)> = Vec::new();
        if let Some(q) = vector.filter(|q| usable(q) && with_vectors > 0 && (dims == 0 || q.len() == dims)) {
            let mut clauses = clauses;
            clauses.push(eq("vector", true));
            let n = with_vectors.min(MEANING_CANDIDATES.max(query.limit));
            let positions: std::collections::HashMap<String, usize> =
                admitted.iter().enumerate().map(|(i, (e, _))| (key(user, &e.id), i)).collect();
            for (id, distance) in self.api.query(&self.episodes, q, &all(clauses), n).await? {
                // An episode kept after the words were read is left out of this recall.
                if let Some(&i) = positions.get(&id)
                    && distance < FAR
                {
                    by_meaning.push((i, distance));
                }
            }
            by_meaning.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        }
        let meaning: Vec<usize> = by_meaning.iter().map(|(i, _)| *i).collect();
        Ok(fuse(&words, &meaning, query.alpha, query.limit)
            .into_iter()
            .map(|(i, score, word_rank, meaning_rank)| Recalled {
                episode: admitted[i].0.clone(),
                score,
                word_rank,
                meaning_rank,
            })
            .collect())
    }

    async fn add_fact(&self, user: &UserId, new: NewFact, now: Timestamp) -> Result<Fact, StoreError> {
        let _serial = self.lock(user).await;
        let mut fact = record(user, new, now);
        let filter = all(vec![
            eq("user", user.as_str()),
            eq("subject", fact.subject.to_lowercase()),
            eq("predicate", fact.predicate.as_str()),
        ]);
        let mut existing = self.user_facts(user, filter).await?;
        // In the order they were recorded, as the in-memory store keeps them.
        existing.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at).then(a.id.cmp(&b.id)));
        if let Some(same) = existing.iter().find(|f| same_claim(f, &fact)) {
            let mut same = same.clone();
            let before = same.sources.len();
            for s in fact.sources {
                if !same.sources.contains(&s) {
                    same.sources.push(s);
                }
            }
            if same.sources.len() != before {
                self.api.upsert(&self.facts, &[Self::fact_write(&same)?]).await?;
            }
            return Ok(same);
        }
        let mut writes = Vec::new();
        for (i, until) in supersede(&existing, &mut fact, now) {
            let mut ended = existing[i].clone();
            ended.valid_until = Some(until);
            ended.closed_at = Some(now);
            writes.push(Self::fact_write(&ended)?);
        }
        writes.push(Self::fact_write(&fact)?);
        self.api.upsert(&self.facts, &writes).await?;
        Ok(fact)
    }

    async fn facts(&self, user: &UserId, query: &FactQuery) -> Result<Vec<Fact>, StoreError> {
        let mut clauses = vec![eq("user", user.as_str())];
        if let Some(subject) = &query.subject {
            clauses.push(eq("subject", subject.to_lowercase()));
        }
        if let Some(predicate) = &query.predicate {
            clauses.push(eq("predicate", predicate.as_str()));
        }
        let found: Vec<Fact> =
            self.user_facts(user, all(clauses)).await?.into_iter().filter(|f| query.admits(f)).collect();
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
        let _serial = self.lock(user).await;
        let records = self.api.get_ids(&self.facts, &[key(user, id)]).await?;
        let old = match records.first() {
            Some(r) => Some(fact(r, user)?),
            None => None,
        };
        let Some(mut old) = old.filter(|f| f.retracted_at.is_none()) else {
            return Err(no_fact_to_rectify("chroma", id));
        };
        old.retracted_at = Some(now);
        let new = corrected(&old, object, source, now);
        let writes = [Self::fact_write(&old)?, Self::fact_write(&new)?];
        self.api.upsert(&self.facts, &writes).await?;
        Ok(new)
    }

    async fn export(&self, user: &UserId) -> Result<MemoryData, StoreError> {
        let blocks = MemoryStore::blocks(self, user).await?;
        let records = self.api.get_where(&self.episodes, &eq("user", user.as_str()), true).await?;
        let episodes = oldest_first(&records, user)?;
        let mut facts = self.user_facts(user, eq("user", user.as_str())).await?;
        facts.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at).then(a.id.cmp(&b.id)));
        Ok(MemoryData { blocks, episodes, facts })
    }

    async fn forget(&self, user: &UserId, scope: &ForgetScope) -> Result<ForgetReport, StoreError> {
        let _serial = self.lock(user).await;
        let mine = eq("user", user.as_str());
        let mut report = ForgetReport::default();
        if scope.is_everything() {
            // Counted, then deleted by the user's filter (so a record kept meanwhile goes too).
            for (collection, count) in [
                (&self.blocks, &mut report.blocks),
                (&self.facts, &mut report.facts),
                (&self.episodes, &mut report.episodes),
            ] {
                *count = self.api.get_where(collection, &mine, false).await?.len();
                if *count > 0 {
                    self.api.delete_where(collection, &mine).await?;
                }
            }
            return Ok(report);
        }
        let mut clauses = vec![mine.clone()];
        if let Some(session) = &scope.session {
            clauses.push(eq("session", session.as_str()));
        }
        if let Some(before) = scope.before {
            clauses.push(json!({ "at": { "$lt": before.as_millis() } }));
        }
        let records = self.api.get_where(&self.episodes, &all(clauses), true).await?;
        let mut removed = Vec::with_capacity(records.len());
        for r in &records {
            removed.push(episode(r, user)?.id.to_string());
        }
        let facts: Vec<String> = self
            .user_facts(user, mine)
            .await?
            .iter()
            .filter(|f| fact_forgotten(f, scope, &removed))
            .map(|f| key(user, &f.id))
            .collect();
        // Facts first: if the episodes' delete fails, forgetting again finds the same episodes,
        // and so the same facts.
        self.api.delete_ids(&self.facts, &facts, self.max_batch).await?;
        let ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
        self.api.delete_ids(&self.episodes, &ids, self.max_batch).await?;
        report.episodes = ids.len();
        report.facts = facts.len();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn two_users_record_ids_never_meet() {
        assert_ne!(key(&user("a/b"), "c"), key(&user("a"), "b/c"));
        assert_eq!(key(&user("ann"), "persona"), "ann\u{1f}persona");
    }

    #[test]
    fn a_recall_filters_in_chroma_where() {
        let ann = user("ann");
        assert_eq!(all(recall_filter(&ann, &RecallQuery::new("x"))), json!({ "user": { "$eq": "ann" } }));
        let query = RecallQuery::new("x")
            .kind("note")
            .between(Some(Timestamp::from_millis(10)), Some(Timestamp::from_millis(20)));
        assert_eq!(
            all(recall_filter(&ann, &query)),
            json!({ "$and": [
                { "user": { "$eq": "ann" } },
                { "kind": { "$eq": "note" } },
                { "at": { "$gte": 10 } },
                { "at": { "$lt": 20 } },
            ] })
        );
    }

    #[test]
    fn a_corrupt_record_is_named_and_another_users_refused() {
        let mut metadata = Map::new();
        metadata.insert("user".into(), "ann".into());
        metadata.insert("id".into(), "ep_1".into());
        metadata.insert("kind".into(), "note".into());
        metadata.insert("at".into(), "yesterday".into());
        let r = Record { id: "ann\u{1f}ep_1".into(), document: Some("hi".into()), metadata };
        let e = episode(&r, &user("ann")).err().map(|e| (e.kind(), e.to_string()));
        assert!(matches!(&e, Some((StoreErrorKind::Corrupt, m)) if m.contains("ann\\u{1f}ep_1")), "{e:?}");
        assert!(episode(&r, &user("bob")).is_err());
        assert!(!usable(&[0.0, 0.0]) && !usable(&[f32::NAN, 1.0]) && !usable(&[]) && usable(&[0.0, 0.5]));
    }

    #[test]
    fn the_url_is_checked_and_its_credentials_never_shown() {
        let api = Api::new(
            "http://me:secret@127.0.0.1:8000/?token=t",
            "default_tenant",
            "default_database",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let shown = format!("{api:?}");
        assert!(!shown.contains("secret") && !shown.contains("token") && shown.contains("127.0.0.1:8000"), "{shown}");
        assert!(Api::new("ftp://x", "t", "d", Duration::ZERO, Duration::ZERO).is_err());
        assert!(Api::new("http://x", "../t", "d", Duration::ZERO, Duration::ZERO).is_err());
    }
}
