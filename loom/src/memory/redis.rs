//! Memory in Redis: each user's memory in a few hashes under one hash slot, each call one atomic
//! step (a Lua script, or a read in `MULTI`/`EXEC`), words and meaning ranked in the process.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use serde::de::DeserializeOwned;

use super::in_memory::{fact_forgotten, same_claim};
use super::rank::{fuse, rank_by_meaning, rank_by_words};
use super::store::{MemoryStore, answer, corrected, no_fact_to_rectify, record, supersede};
use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
    new_id,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;

const BACKEND: &str = "redis";

/// How many times a read-modify-write step is tried before it gives up to other writers.
const ATTEMPTS: u32 = 500;

/// Memory in Redis (7.0 or later), for many worker processes sharing one server.
///
/// ```no_run
/// use loomflow::memory::{Memory, RedisMemory};
///
/// # async fn run() -> Result<(), loomflow::StoreError> {
/// let memory = Memory::new(RedisMemory::connect("redis://127.0.0.1:6379/").await?.prefix("myapp")?);
/// # Ok(())
/// # }
/// ```
///
/// # Keys
///
/// A user's memory is in six keys named `PREFIX:mem:{USER}:...`, the braces as written (the
/// prefix is `loom` unless [`prefix`](Self::prefix) sets another). The user id in braces is a
/// hash tag, so a user's keys live in one slot of a cluster; in it `%`, `{` and `}` are written
/// `%25`, `%7B` and `%7D`, so no id can reach into another user's keys.
///
/// | key | type | holds |
/// |---|---|---|
/// | `loom:mem:{ann}:blocks` | hash | block name → its text |
/// | `loom:mem:{ann}:blocks_at` | hash | block name → when it last changed (ms since the epoch) |
/// | `loom:mem:{ann}:ep` | hash | episode id → the episode, as JSON |
/// | `loom:mem:{ann}:vec` | hash | episode id → its vector, little-endian `f32`s |
/// | `loom:mem:{ann}:facts` | hash | fact id → the fact, as JSON |
/// | `loom:mem:{ann}:rev` | string | the revision of the facts, new at every change of them |
///
/// [`forget`](MemoryStore::forget) of everything deletes all six.
///
/// # Atomicity
///
/// Each call is one atomic step on the server, whatever other clients do at the same time.
/// Reads are one command or one `MULTI`/`EXEC` transaction. Writes that need nothing computed in Rust are Lua
/// scripts: keeping an episode unless its id is kept already (`HSETNX`), appending to a block,
/// forgetting everything. Recording a fact (which ends the facts it supersedes), correcting one,
/// and forgetting a session's or a period's memory compute in Rust over a consistent read and
/// then commit with a script that applies the change only if the facts' revision is still the
/// one read (optimistic concurrency, as `WATCH` does, but safe on the multiplexed connection
/// many tasks share); when another writer came first, the step reads again and retries.
/// Scripts declare their keys and start with `#!lua`, so a server out of memory refuses one
/// whole rather than halfway.
///
/// # Scale
///
/// Redis 7 as Debian ships it has no text or vector index, so ranking is done here: a recall
/// reads all of the user's episodes (and, to rank by meaning, their vectors) and ranks them by
/// BM25 and exact cosine similarity, and recording a fact reads the user's facts. The cost of a
/// call grows with one user's memory, never with the number of users. That is fine for
/// thousands of episodes per user: ten thousand episodes with 256-dimension vectors are about
/// 12 MB read per recall by meaning. A user with far more episodes than that wants a store that
/// ranks on the server (PostgreSQL).
pub struct RedisMemory {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMemory").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisMemory {
    /// Connects to the Redis server at `url` (`redis://[:password@]host[:port][/db]`), trying
    /// for a few seconds at most before it returns an
    /// [`Unavailable`](StoreErrorKind::Unavailable) error. The connection is shared by every
    /// call and made again when it drops.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url)
            .map_err(|e| error(StoreErrorKind::Other, format!("the URL is not a Redis URL: {e}")).with_source(e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(|e| {
            let kind = kind_of(&e);
            error(kind, format!("cannot connect to the server: {e}")).with_source(e)
        })?;
        Ok(Self::with_connection(conn))
    }

    /// Over a connection made by the caller (with its own timeouts and retries).
    pub fn with_connection(conn: ConnectionManager) -> Self {
        Self { conn, prefix: "loom".to_owned() }
    }

    /// Keeps memory under keys starting with `prefix` (`loom` by default), so apps or tests can
    /// share a server. A prefix must be non-empty, without `{`, `}` or control characters.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let prefix = prefix.into();
        if prefix.is_empty() || prefix.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
            return Err(error(
                StoreErrorKind::Other,
                format!(
                    "`{}` cannot be a key prefix: it must be non-empty, without `{{`, `}}` or control characters",
                    prefix.escape_debug()
                ),
            ));
        }
        self.prefix = prefix;
        Ok(self)
    }

    /// The prefix of its keys.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn keys(&self, user: &UserId) -> Keys {
        Keys::new(&self.prefix, user)
    }

    /// The facts' revision (empty when the user has none) and the facts, read together.
    async fn facts_snapshot(&self, keys: &Keys) -> Result<(String, Vec<Fact>), StoreError> {
        let (rev, facts): (Option<String>, Hash) = ::redis::pipe()
            .atomic()
            .get(&keys.rev)
            .hgetall(&keys.facts)
            .query_async(&mut self.conn())
            .await
            .map_err(db)?;
        Ok((rev.unwrap_or_default(), parse_all(&keys.facts, &facts)?))
    }

    /// Applies `change` if the facts' revision is still `rev`: `Some((facts, episodes))`
    /// removed, or `None` when another writer changed the facts first.
    async fn commit(&self, keys: &Keys, rev: &str, change: Change<'_>) -> Result<Option<(usize, usize)>, StoreError> {
        let mut call = COMMIT.prepare_invoke();
        call.key(&keys.rev).key(&keys.facts).key(&keys.episodes).key(&keys.vectors);
        call.arg(rev).arg(&*new_id("rev")).arg(change.put.len()).arg(change.drop_facts.len());
        for fact in &change.put {
            call.arg(&*fact.id).arg(to_json("a fact", fact)?);
        }
        for id in &change.drop_facts {
            call.arg(*id);
        }
        for id in &change.drop_episodes {
            call.arg(*id);
        }
        let (applied, facts, episodes): (bool, usize, usize) = call.invoke_async(&mut self.conn()).await.map_err(db)?;
        Ok(applied.then_some((facts, episodes)))
    }
}

/// The keys of one user's memory.
#[derive(Debug, PartialEq)]
struct Keys {
    blocks: String,
    blocks_at: String,
    episodes: String,
    vectors: String,
    facts: String,
    rev: String,
}

impl Keys {
    /// `{prefix}:mem:{user}:...`, the user escaped so that it is the whole hash tag.
    fn new(prefix: &str, user: &UserId) -> Self {
        let mut base = String::with_capacity(prefix.len() + user.as_str().len() + 8);
        base.push_str(prefix);
        base.push_str(":mem:{");
        for c in user.as_str().chars() {
            match c {
                '%' => base.push_str("%25"),
                '{' => base.push_str("%7B"),
                '}' => base.push_str("%7D"),
                c => base.push(c),
            }
        }
        base.push('}');
        let key = |suffix: &str| format!("{base}:{suffix}");
        Self {
            blocks: key("blocks"),
            blocks_at: key("blocks_at"),
            episodes: key("ep"),
            vectors: key("vec"),
            facts: key("facts"),
            rev: key("rev"),
        }
    }

    /// The blocks, from their texts and times as read.
    fn blocks(&self, texts: Hash, mut times: Hash) -> Result<Vec<WorkingBlock>, StoreError> {
        texts
            .into_iter()
            .map(|(name, value)| {
                let text = text(&self.blocks, &name, value)?;
                let at = times.remove(&name).unwrap_or_default();
                let at = std::str::from_utf8(&at)
                    .ok()
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .ok_or_else(|| corrupt(&self.blocks_at, &name, "not a time in milliseconds"))?;
                Ok(WorkingBlock { name, text, updated_at: Timestamp::from_millis(at) })
            })
            .collect()
    }
}

/// What a [`RedisMemory::commit`] writes.
#[derive(Default)]
struct Change<'a> {
    put: Vec<&'a Fact>,
    drop_facts: Vec<&'a str>,
    drop_episodes: Vec<&'a str>,
}

/// A hash as read: field → value.
type Hash = BTreeMap<String, Vec<u8>>;

/// Keeps an episode unless one with its id is kept, and its vector with it.
/// KEYS: episodes, vectors. ARGV: id, episode JSON, [vector].
static REMEMBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 and #ARGV > 2 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 0",
    )
});

/// Sets or appends to a block; returns its text.
/// KEYS: blocks, blocks_at. ARGV: name, text, append (`1` or `0`), now (ms).
static WRITE_BLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
local text = ARGV[2]
if ARGV[3] == '1' then
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  if old and old ~= '' then text = old .. '\n' .. text end
end
redis.call('HSET', KEYS[1], ARGV[1], text)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return text",
    )
});

/// Applies a change computed over a read of the facts if their revision is still the one read.
/// KEYS: rev, facts, episodes, vectors. ARGV: the revision read (empty: none), the new one, the
/// number of facts to write and of facts to remove, the facts' ids and JSON, the ids of the
/// facts to remove, the ids of the episodes to remove. Returns `{applied, facts removed,
/// episodes removed}`. The revision is removed with the last fact, so "no revision" always
/// means "no facts".
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return {0, 0, 0} end
local puts, drops = tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5
for _ = 1, puts do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local facts = 0
for _ = 1, drops do
  facts = facts + redis.call('HDEL', KEYS[2], ARGV[i])
  i = i + 1
end
local episodes = 0
while i <= #ARGV do
  episodes = episodes + redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
  i = i + 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return {1, facts, episodes}",
    )
});

/// Deletes all of a user's keys; returns how many episodes, facts and blocks they held.
/// KEYS: episodes, facts, blocks, blocks_at, vectors, rev.
static FORGET_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
local counts = {redis.call('HLEN', KEYS[1]), redis.call('HLEN', KEYS[2]), redis.call('HLEN', KEYS[3])}
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return counts",
    )
});

fn error(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError::new(kind, BACKEND, message)
}

/// What a Redis error means for the caller: a server that cannot be reached or is not ready
/// is transient.
fn kind_of(e: &RedisError) -> StoreErrorKind {
    let busy = matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
        )
    ) || e.code() == Some("BUSY");
    if busy || e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
        StoreErrorKind::Unavailable
    } else if e.kind() == ErrorKind::UnexpectedReturnType || e.code() == Some("WRONGTYPE") {
        StoreErrorKind::Corrupt
    } else {
        StoreErrorKind::Other
    }
}

fn db(e: RedisError) -> StoreError {
    error(kind_of(&e), e.to_string()).with_source(e)
}

fn corrupt(key: &str, field: &str, e: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("`{field}` of `{key}` is unreadable: {e}"))
}

fn contended(what: &str) -> StoreError {
    error(
        StoreErrorKind::Conflict,
        format!("{what} gave up after {ATTEMPTS} tries: other writers kept changing the facts"),
    )
}

fn to_json(what: &str, value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| error(StoreErrorKind::Other, format!("{what} cannot be written: {e}")))
}

fn parse<T: DeserializeOwned>(key: &str, field: &str, value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| corrupt(key, field, e))
}

fn parse_all<T: DeserializeOwned>(key: &str, hash: &Hash) -> Result<Vec<T>, StoreError> {
    hash.iter().map(|(field, value)| parse(key, field, value)).collect()
}

fn text(key: &str, field: &str, value: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(value).map_err(|e| corrupt(key, field, e))
}

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_vector(key: &str, field: &str, b: &[u8]) -> Result<Vec<f32>, StoreError> {
    if !b.len().is_multiple_of(4) {
        return Err(corrupt(key, field, format!("a vector of {} bytes, not a multiple of 4", b.len())));
    }
    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Waits a little before trying again, longer (and less in step with other writers) the more
/// tries have failed.
async fn back_off(attempt: u32) {
    use std::hash::BuildHasher as _;
    if attempt < 3 {
        tokio::task::yield_now().await;
        return;
    }
    // A fresh `RandomState` has keys of its own: a cheap random number.
    let jitter = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let ceiling = 1_000 * u64::from(attempt.min(50));
    tokio::time::sleep(Duration::from_micros(jitter % ceiling)).await;
}

/// Episodes oldest first (ties by id, which grows with time).
fn by_time(episodes: &mut [Episode]) {
    episodes.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
}

/// Facts in record order.
fn by_record_time(facts: &mut [Fact]) {
    facts.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at).then_with(|| a.id.cmp(&b.id)));
}

#[async_trait::async_trait]
impl MemoryStore for RedisMemory {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        let keys = self.keys(user);
        let (texts, times): (Hash, Hash) = ::redis::pipe()
            .atomic()
            .hgetall(&keys.blocks)
            .hgetall(&keys.blocks_at)
            .query_async(&mut self.conn())
            .await
            .map_err(db)?;
        keys.blocks(texts, times)
    }

    async fn write_block(
        &self,
        user: &UserId,
        name: &str,
        text: &str,
        append: bool,
    ) -> Result<WorkingBlock, StoreError> {
        let keys = self.keys(user);
        let now = Timestamp::now();
        let written: Vec<u8> = WRITE_BLOCK
            .key(&keys.blocks)
            .key(&keys.blocks_at)
            .arg(name)
            .arg(text)
            .arg(if append { "1" } else { "0" })
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(db)?;
        Ok(WorkingBlock { name: name.to_owned(), text: self::text(&keys.blocks, name, written)?, updated_at: now })
    }

    async fn remember(&self, episode: &Episode, vector: Option<&[f32]>) -> Result<(), StoreError> {
        let keys = self.keys(&episode.user);
        let mut call = REMEMBER.prepare_invoke();
        call.key(&keys.episodes).key(&keys.vectors).arg(&*episode.id).arg(to_json("an episode", episode)?);
        if let Some(v) = vector {
            call.arg(vector_bytes(v));
        }
        let _: i64 = call.invoke_async(&mut self.conn()).await.map_err(db)?;
        Ok(())
    }

    async fn recall(
        &self,
        user: &UserId,
        query: &RecallQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Recalled>, StoreError> {
        let keys = self.keys(user);
        let (episodes, mut vectors): (Hash, Hash) = if vector.is_some() {
            ::redis::pipe()
                .atomic()
                .hgetall(&keys.episodes)
                .hgetall(&keys.vectors)
                .query_async(&mut self.conn())
                .await
                .map_err(db)?
        } else {
            let episodes =
                ::redis::cmd("HGETALL").arg(&keys.episodes).query_async(&mut self.conn()).await.map_err(db)?;
            (episodes, Hash::new())
        };
        let mut admitted: Vec<(Episode, Option<Vec<f32>>)> = Vec::new();
        for (id, value) in &episodes {
            let episode: Episode = parse(&keys.episodes, id, value)?;
            if !query.admits(&episode) {
                continue;
            }
            let v = vectors.remove(id).map(|b| bytes_vector(&keys.vectors, id, &b)).transpose()?;
            admitted.push((episode, v));
        }
        // Newest first: equal scores go to the more recent episode.
        admitted.sort_by(|a, b| b.0.at.cmp(&a.0.at).then_with(|| b.0.id.cmp(&a.0.id)));
        let words = rank_by_words(&query.text, admitted.iter().map(|(e, _)| e.text.as_str()));
        let meaning = match vector {
            Some(q) => rank_by_meaning(q, admitted.iter().map(|(_, v)| v.as_deref())),
            None => Vec::new(),
        };
        Ok(fuse(&words, &meaning, query.alpha, query.limit)
            .into_iter()
            .filter_map(|(i, score, word_rank, meaning_rank)| {
                let episode = admitted.get(i)?.0.clone();
                Some(Recalled { episode, score, word_rank, meaning_rank })
            })
            .collect())
    }

    async fn add_fact(&self, user: &UserId, new: NewFact, now: Timestamp) -> Result<Fact, StoreError> {
        let keys = self.keys(user);
        for attempt in 0..ATTEMPTS {
            let (rev, mut existing) = self.facts_snapshot(&keys).await?;
            by_record_time(&mut existing);
            let mut fact = record(user, new.clone(), now);
            if let Some(same) = existing.iter().find(|f| same_claim(f, &fact)) {
                let mut same = same.clone();
                let before = same.sources.len();
                for s in fact.sources {
                    if !same.sources.contains(&s) {
                        same.sources.push(s);
                    }
                }
                if same.sources.len() == before
                    || self.commit(&keys, &rev, Change { put: vec![&same], ..Change::default() }).await?.is_some()
                {
                    return Ok(same);
                }
            } else {
                let ended: Vec<Fact> = supersede(&existing, &mut fact, now)
                    .into_iter()
                    .filter_map(|(i, until)| {
                        let mut f = existing.get(i)?.clone();
                        f.valid_until = Some(until);
                        f.closed_at = Some(now);
                        Some(f)
                    })
                    .collect();
                let mut put: Vec<&Fact> = ended.iter().collect();
                put.push(&fact);
                if self.commit(&keys, &rev, Change { put, ..Change::default() }).await?.is_some() {
                    return Ok(fact);
                }
            }
            back_off(attempt).await;
        }
        Err(contended("recording a fact"))
    }

    async fn facts(&self, user: &UserId, query: &FactQuery) -> Result<Vec<Fact>, StoreError> {
        let keys = self.keys(user);
        let facts: Hash = ::redis::cmd("HGETALL").arg(&keys.facts).query_async(&mut self.conn()).await.map_err(db)?;
        let found: Vec<Fact> =
            parse_all::<Fact>(&keys.facts, &facts)?.into_iter().filter(|f| query.admits(f)).collect();
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
        let keys = self.keys(user);
        for attempt in 0..ATTEMPTS {
            let (rev, old): (Option<String>, Option<Vec<u8>>) = ::redis::pipe()
                .atomic()
                .get(&keys.rev)
                .hget(&keys.facts, id)
                .query_async(&mut self.conn())
                .await
                .map_err(db)?;
            let old: Option<Fact> = old.map(|v| parse(&keys.facts, id, &v)).transpose()?;
            let Some(mut old) = old.filter(|f| f.retracted_at.is_none()) else {
                return Err(no_fact_to_rectify("redis", id));
            };
            old.retracted_at = Some(now);
            let new = corrected(&old, object, source, now);
            let change = Change { put: vec![&old, &new], ..Change::default() };
            if self.commit(&keys, &rev.unwrap_or_default(), change).await?.is_some() {
                return Ok(new);
            }
            back_off(attempt).await;
        }
        Err(contended("correcting a fact"))
    }

    async fn export(&self, user: &UserId) -> Result<MemoryData, StoreError> {
        let keys = self.keys(user);
        let (texts, times, episodes, facts): (Hash, Hash, Hash, Hash) = ::redis::pipe()
            .atomic()
            .hgetall(&keys.blocks)
            .hgetall(&keys.blocks_at)
            .hgetall(&keys.episodes)
            .hgetall(&keys.facts)
            .query_async(&mut self.conn())
            .await
            .map_err(db)?;
        let blocks = keys.blocks(texts, times)?;
        let mut episodes: Vec<Episode> = parse_all(&keys.episodes, &episodes)?;
        by_time(&mut episodes);
        let mut facts: Vec<Fact> = parse_all(&keys.facts, &facts)?;
        by_record_time(&mut facts);
        Ok(MemoryData { blocks, episodes, facts })
    }

    async fn forget(&self, user: &UserId, scope: &ForgetScope) -> Result<ForgetReport, StoreError> {
        let keys = self.keys(user);
        if scope.is_everything() {
            let (episodes, facts, blocks): (usize, usize, usize) = FORGET_ALL
                .key(&keys.episodes)
                .key(&keys.facts)
                .key(&keys.blocks)
                .key(&keys.blocks_at)
                .key(&keys.vectors)
                .key(&keys.rev)
                .invoke_async(&mut self.conn())
                .await
                .map_err(db)?;
            return Ok(ForgetReport { episodes, facts, blocks, ..ForgetReport::default() });
        }
        for attempt in 0..ATTEMPTS {
            let (rev, facts, episodes): (Option<String>, Hash, Hash) = ::redis::pipe()
                .atomic()
                .get(&keys.rev)
                .hgetall(&keys.facts)
                .hgetall(&keys.episodes)
                .query_async(&mut self.conn())
                .await
                .map_err(db)?;
            let facts: Vec<Fact> = parse_all(&keys.facts, &facts)?;
            let mut removed: Vec<String> = Vec::new();
            for (id, value) in &episodes {
                let e: Episode = parse(&keys.episodes, id, value)?;
                if scope.session.as_ref().is_none_or(|s| e.session.as_ref() == Some(s))
                    && scope.before.is_none_or(|t| e.at < t)
                {
                    removed.push(id.clone());
                }
            }
            let drop_facts: Vec<&str> =
                facts.iter().filter(|f| fact_forgotten(f, scope, &removed)).map(|f| &*f.id).collect();
            if removed.is_empty() && drop_facts.is_empty() {
                return Ok(ForgetReport::default());
            }
            let change =
                Change { drop_facts, drop_episodes: removed.iter().map(String::as_str).collect(), ..Change::default() };
            if let Some((facts, episodes)) = self.commit(&keys, &rev.unwrap_or_default(), change).await? {
                return Ok(ForgetReport { episodes, facts, ..ForgetReport::default() });
            }
            back_off(attempt).await;
        }
        Err(contended("forgetting"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_bytes() -> Result<(), StoreError> {
        let v = [0.5f32, -1.25, 3.0e-7, f32::MAX];
        assert_eq!(bytes_vector("k", "f", &vector_bytes(&v))?, v);
        assert!(bytes_vector("k", "f", &[1, 2, 3]).is_err_and(|e| e.kind() == StoreErrorKind::Corrupt));
        Ok(())
    }

    #[test]
    fn a_user_id_is_one_whole_hash_tag() -> Result<(), crate::IdError> {
        let keys = Keys::new("loom", &UserId::new("ann")?);
        assert_eq!((keys.episodes.as_str(), keys.rev.as_str()), ("loom:mem:{ann}:ep", "loom:mem:{ann}:rev"));
        // Braces cannot close the tag early and reach another user's keys.
        let odd = Keys::new("app", &UserId::new("a}:x{%")?);
        assert_eq!(odd.facts, "app:mem:{a%7D:x%7B%25}:facts");
        assert_ne!(Keys::new("p", &UserId::new("%7D")?), Keys::new("p", &UserId::new("}")?));
        Ok(())
    }
}
