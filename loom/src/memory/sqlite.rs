//! Memory in SQLite: the same file as the sessions and journals. Recall ranks in the process,
//! over an index of the user's own episodes read from the file once and kept up to date by the
//! user's revision (see [`RecallCache`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use foldhash::fast::RandomState;
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension as _, Row, params};

use super::in_memory::{fact_forgotten, same_claim};
use super::index::{Entry, RecallIndex};
use super::store::{MemoryStore, answer, corrected, no_fact_to_rectify, record, supersede};
use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{SessionId, UserId};
use crate::session::SqliteStore;
use crate::session::sqlite::{db, error};

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("{what} `{key}` is unreadable: {e}"))
}

fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The id of the row of `table` at `rowid`, for an error message.
fn row_id(conn: &rusqlite::Connection, table: &Indexed, rowid: i64) -> String {
    let sql = format!("SELECT id FROM {} WHERE rowid = ?1", table.table);
    conn.query_row(&sql, params![rowid], |r| r.get(0)).unwrap_or_else(|_| format!("at rowid {rowid}"))
}

/// The columns of an episode row, in `EPISODE_COLUMNS` order.
const EPISODE_COLUMNS: &str = "e.id, e.user, e.session, e.kind, e.text, e.at_ms, e.metadata";

fn episode(row: &Row<'_>) -> rusqlite::Result<Result<Episode, StoreError>> {
    let id: String = row.get(0)?;
    let user: String = row.get(1)?;
    let session: Option<String> = row.get(2)?;
    let metadata: String = row.get(6)?;
    let parsed = (|| {
        let user = UserId::new(&user).map_err(|e| corrupt("episode", &id, e))?;
        let session = session.map(|s| SessionId::new(&s)).transpose().map_err(|e| corrupt("episode", &id, e))?;
        let metadata = serde_json::from_str(&metadata).map_err(|e| corrupt("episode", &id, e))?;
        Ok(Episode {
            id: id.as_str().into(),
            user,
            session,
            kind: row.get(3).map_err(db)?,
            text: row.get(4).map_err(db)?,
            at: Timestamp::from_millis(row.get(5).map_err(db)?),
            metadata,
        })
    })();
    Ok(parsed)
}

const FACT_COLUMNS: &str = "id, user, subject, predicate, object, confidence, valid_from, valid_until, recorded_at, \
                            closed_at, retracted_at, sources";

fn fact(row: &Row<'_>) -> rusqlite::Result<Result<Fact, StoreError>> {
    let id: String = row.get(0)?;
    let user: String = row.get(1)?;
    let sources: String = row.get(11)?;
    let ms = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp::from_millis))
    };
    let (valid_until, closed_at, retracted_at) = (ms(7)?, ms(9)?, ms(10)?);
    let parsed = (|| {
        Ok(Fact {
            id: id.as_str().into(),
            user: UserId::new(&user).map_err(|e| corrupt("fact", &id, e))?,
            subject: row.get(2).map_err(db)?,
            predicate: row.get(3).map_err(db)?,
            object: row.get(4).map_err(db)?,
            confidence: row.get(5).map_err(db)?,
            valid_from: Timestamp::from_millis(row.get(6).map_err(db)?),
            valid_until,
            recorded_at: Timestamp::from_millis(row.get(8).map_err(db)?),
            closed_at,
            retracted_at,
            sources: serde_json::from_str(&sources).map_err(|e| corrupt("fact", &id, e))?,
        })
    })();
    Ok(parsed)
}

/// Collects parsed rows, stopping at the first unreadable one.
fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(db)??);
    }
    Ok(out)
}

fn insert_fact(tx: &rusqlite::Transaction<'_>, f: &Fact) -> Result<(), StoreError> {
    let sources = serde_json::to_string(&f.sources).map_err(|e| error(StoreErrorKind::Other, e.to_string()))?;
    tx.execute(
        "INSERT INTO loom_facts (user, id, subject, subject_key, predicate, object, confidence, valid_from, valid_until,
                                 recorded_at, closed_at, retracted_at, sources)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            f.user.as_str(),
            &*f.id,
            f.subject,
            f.subject.to_lowercase(),
            f.predicate,
            f.object,
            f.confidence,
            f.valid_from.as_millis(),
            f.valid_until.map(Timestamp::as_millis),
            f.recorded_at.as_millis(),
            f.closed_at.map(Timestamp::as_millis),
            f.retracted_at.map(Timestamp::as_millis),
            sources,
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// A user's revision: the clock's ticks of the last episode added and the last one removed or
/// changed (`None`: the user has none, or was forgotten).
type Revision = Option<(i64, i64)>;

/// One user's index, as of a revision.
struct Cached {
    index: RecallIndex,
    revision: Revision,
    /// The highest rowid read: episodes added later have higher ones.
    last_rowid: i64,
    bytes: usize,
    used: u64,
}

/// The recall indexes of the users a [`SqliteStore`] has recalled for, in this process.
///
/// A user's first recall reads their episodes (text and vector) into a [`RecallIndex`]; later
/// recalls read the user's revision (one indexed row, in the same read transaction as the
/// rest) and, when another call or another process has added episodes since, only those; when
/// any was removed or changed, the index is read again. Indexes are dropped least recently used
/// first past a budget of bytes (256 MiB unless [`SqliteStore::recall_cache_bytes`] says
/// otherwise), though the index of the user being recalled is always kept.
pub(crate) struct RecallCache {
    users: HashMap<String, Cached, RandomState>,
    budget: usize,
    bytes: usize,
    tick: u64,
    table: &'static Indexed,
}

/// What a [`RecallCache`] indexes: the rows of one table, and where their users' revisions are.
pub(crate) struct Indexed {
    /// What the table holds, in errors.
    what: &'static str,
    /// The table.
    table: &'static str,
    /// `rowid, at_ms, kind, session, text, vector` of a user's (`?1`) rows after rowid `?2`.
    since: &'static str,
    /// `added, removed` of a user (`?1`).
    revision: &'static str,
}

/// The episodes of memory.
pub(crate) const EPISODES: Indexed = Indexed {
    what: "episode",
    table: "loom_episodes",
    since: "SELECT rowid, at_ms, kind, session, text, vector FROM loom_episodes
            WHERE user = ?1 AND rowid > ?2 ORDER BY rowid",
    revision: "SELECT added, removed FROM loom_memory_revisions WHERE user = ?1",
};

/// The chunks of RAG collections: the collection is the kind.
#[cfg(feature = "rag")]
pub(crate) const CHUNKS: Indexed = Indexed {
    what: "chunk",
    table: "loom_chunks",
    since: "SELECT rowid, 0, collection, NULL, text, vector FROM loom_chunks
            WHERE user = ?1 AND rowid > ?2 ORDER BY rowid",
    revision: "SELECT added, removed FROM loom_chunk_revisions WHERE user = ?1",
};

impl Default for RecallCache {
    fn default() -> Self {
        Self::new(&EPISODES)
    }
}

impl RecallCache {
    /// An empty cache of the rows of `table`.
    pub(crate) fn new(table: &'static Indexed) -> Self {
        Self { users: HashMap::default(), budget: 256 << 20, bytes: 0, tick: 0, table }
    }

    /// Sets the budget of bytes.
    pub(crate) fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    /// `user`'s index as of `revision`, read from `tx` as far as needed.
    fn fresh(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        user: &str,
        revision: Revision,
    ) -> Result<&RecallIndex, StoreError> {
        self.tick += 1;
        let since = match self.users.get(user) {
            Some(c) if c.revision == revision => None,
            Some(c) if revision.is_some() && c.revision.map(|r| r.1) == revision.map(|r| r.1) => Some(c.last_rowid),
            _ => Some(i64::MIN),
        };
        if let Some(since) = since {
            let mut cached = match self.users.remove(user) {
                Some(c) if since != i64::MIN => c,
                old => {
                    self.bytes -= old.map_or(0, |c| c.bytes);
                    Cached { index: RecallIndex::default(), revision: None, last_rowid: i64::MIN, bytes: 0, used: 0 }
                }
            };
            read_rows(tx, self.table, user, since, &mut cached)?;
            cached.revision = revision;
            let bytes = cached.index.bytes();
            self.bytes = self.bytes - cached.bytes + bytes;
            cached.bytes = bytes;
            self.users.insert(user.to_owned(), cached);
        }
        let tick = self.tick;
        if let Some(c) = self.users.get_mut(user) {
            c.used = tick;
        }
        // Past the budget, the least recently used others go.
        while self.bytes > self.budget && self.users.len() > 1 {
            let Some(oldest) =
                self.users.iter().filter(|(u, _)| *u != user).min_by_key(|(_, c)| c.used).map(|(u, _)| u.clone())
            else {
                break;
            };
            if let Some(c) = self.users.remove(&oldest) {
                self.bytes -= c.bytes;
            }
        }
        self.users
            .get(user)
            .map(|c| &c.index)
            .ok_or_else(|| error(StoreErrorKind::Other, "the recall index was dropped while in use"))
    }

    /// `user`'s index, brought up to their revision as `tx` sees it.
    pub(crate) fn index(&mut self, tx: &rusqlite::Transaction<'_>, user: &str) -> Result<&RecallIndex, StoreError> {
        let revision: Revision = tx
            .prepare_cached(self.table.revision)
            .map_err(db)?
            .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db)?;
        self.fresh(tx, user, revision)
    }

    /// Drops `user`'s index (their memory was forgotten).
    pub(crate) fn drop_user(&mut self, user: &str) {
        if let Some(c) = self.users.remove(user) {
            self.bytes -= c.bytes;
        }
    }
}

/// Reads `user`'s rows of `table` after `since` (by rowid) into `cached`.
fn read_rows(
    tx: &rusqlite::Transaction<'_>,
    table: &Indexed,
    user: &str,
    since: i64,
    cached: &mut Cached,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(table.since).map_err(db)?;
    let mut rows = stmt.query(params![user, since]).map_err(db)?;
    let mut vector: Vec<f32> = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        let rowid: i64 = row.get(0).map_err(db)?;
        let blob = match row.get_ref(5).map_err(db)? {
            ValueRef::Null => None,
            value => Some(value.as_blob().map_err(|e| db(e.into()))?),
        };
        if let Some(blob) = blob {
            if !blob.len().is_multiple_of(4) {
                let id = row_id(tx, table, rowid);
                let what = format!("the vector of {}", table.what);
                return Err(corrupt(&what, &id, "its length is not a multiple of 4"));
            }
            vector.clear();
            vector.extend(blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        }
        let kind = row.get_ref(2).map_err(db)?.as_str().map_err(|e| db(e.into()))?;
        let session = row.get_ref(3).map_err(db)?.as_str_or_null().map_err(|e| db(e.into()))?;
        let text = row.get_ref(4).map_err(db)?.as_str().map_err(|e| db(e.into()))?;
        cached.index.add(&Entry {
            key: rowid,
            at: row.get(1).map_err(db)?,
            kind,
            session,
            text,
            vector: blob.map(|_| vector.as_slice()),
        });
        cached.last_rowid = rowid;
    }
    Ok(())
}

/// Recall, in one read transaction: the user's revision, their index brought up to it, the
/// ranking there, and the episodes it names read in full.
fn recall_rows(
    conn: &mut rusqlite::Connection,
    cache: &Mutex<RecallCache>,
    user: &str,
    query: &RecallQuery,
    vector: Option<&[f32]>,
) -> Result<Vec<Recalled>, StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let found = {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.index(&tx, user)?.recall(query, vector)
    };
    let mut out = Vec::with_capacity(found.len());
    {
        let sql = format!("SELECT {EPISODE_COLUMNS} FROM loom_episodes e WHERE e.rowid = ?1");
        let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
        for (rowid, score, word_rank, meaning_rank) in found {
            let episode = stmt.query_row(params![rowid], episode).map_err(db)??;
            out.push(Recalled { episode, score, word_rank, meaning_rank });
        }
    }
    tx.commit().map_err(db)?;
    Ok(out)
}

impl SqliteStore {
    /// Keeps at most about `bytes` of users' recall indexes in this process (256 MiB by
    /// default; the index of the user being recalled is always kept). An index holds a user's
    /// vectors (4 bytes a dimension) and their words' postings: about 1.3 KB an episode with
    /// the 256-dimension hashing embedder.
    #[must_use]
    pub fn recall_cache_bytes(self, bytes: usize) -> Self {
        self.recall.lock().unwrap_or_else(PoisonError::into_inner).set_budget(bytes);
        self
    }
}

#[async_trait::async_trait]
impl MemoryStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        let user = user.to_string();
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, text, updated_ms FROM loom_blocks WHERE user = ?1 ORDER BY name")
                .map_err(db)?;
            let rows = stmt
                .query_map(params![user], |r| {
                    Ok(WorkingBlock { name: r.get(0)?, text: r.get(1)?, updated_at: Timestamp::from_millis(r.get(2)?) })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
        .await
    }

    async fn write_block(
        &self,
        user: &UserId,
        name: &str,
        text: &str,
        append: bool,
    ) -> Result<WorkingBlock, StoreError> {
        let (user, name, text) = (user.to_string(), name.to_owned(), text.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let old: Option<String> = tx
                .query_row("SELECT text FROM loom_blocks WHERE user = ?1 AND name = ?2", params![user, name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            let text = match old {
                Some(old) if append && !old.is_empty() => format!("{old}\n{text}"),
                _ => text,
            };
            let now = Timestamp::now();
            tx.execute(
                "INSERT INTO loom_blocks (user, name, text, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user, name) DO UPDATE SET text = excluded.text, updated_ms = excluded.updated_ms",
                params![user, name, text, now.as_millis()],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(WorkingBlock { name, text, updated_at: now })
        })
        .await
    }

    async fn remember(&self, episode: &Episode, vector: Option<&[f32]>) -> Result<(), StoreError> {
        let e = episode.clone();
        let metadata =
            serde_json::to_string(&e.metadata).map_err(|err| error(StoreErrorKind::Other, err.to_string()))?;
        let vector = vector.map(vector_blob);
        self.with(move |conn| {
            conn.prepare_cached(
                "INSERT INTO loom_episodes (user, id, session, kind, text, at_ms, metadata, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
            )
            .map_err(db)?
            .execute(params![
                e.user.as_str(),
                &*e.id,
                e.session.as_ref().map(SessionId::as_str),
                e.kind,
                e.text,
                e.at.as_millis(),
                metadata,
                vector
            ])
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn recall(
        &self,
        user: &UserId,
        query: &RecallQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Recalled>, StoreError> {
        let user = user.to_string();
        let query = query.clone();
        let vector = vector.map(<[f32]>::to_vec);
        let cache = std::sync::Arc::clone(&self.recall);
        self.with(move |conn| recall_rows(conn, &cache, &user, &query, vector.as_deref())).await
    }

    async fn add_fact(&self, user: &UserId, new: NewFact, now: Timestamp) -> Result<Fact, StoreError> {
        let user = user.clone();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let mut fact = record(&user, new, now);
            // By the subject's index: without statistics SQLite takes `user = ?` on the primary
            // key for the narrower search and reads every fact of the user.
            let sql = format!(
                "SELECT {FACT_COLUMNS} FROM loom_facts INDEXED BY loom_facts_by_subject
                 WHERE user = ?1 AND subject_key = ?2 AND predicate = ?3"
            );
            let existing = {
                let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
                let rows = stmt
                    .query_map(params![user.as_str(), fact.subject.to_lowercase(), fact.predicate], self::fact)
                    .map_err(db)?;
                collect(rows)?
            };
            if let Some(same) = existing.iter().find(|f| same_claim(f, &fact)) {
                let mut same = same.clone();
                let before = same.sources.len();
                for s in fact.sources {
                    if !same.sources.contains(&s) {
                        same.sources.push(s);
                    }
                }
                if same.sources.len() != before {
                    let sources = serde_json::to_string(&same.sources)
                        .map_err(|e| error(StoreErrorKind::Other, e.to_string()))?;
                    tx.execute(
                        "UPDATE loom_facts SET sources = ?3 WHERE user = ?1 AND id = ?2",
                        params![user.as_str(), &*same.id, sources],
                    )
                    .map_err(db)?;
                }
                tx.commit().map_err(db)?;
                return Ok(same);
            }
            for (i, until) in supersede(&existing, &mut fact, now) {
                tx.execute(
                    "UPDATE loom_facts SET valid_until = ?3, closed_at = ?4 WHERE user = ?1 AND id = ?2",
                    params![user.as_str(), &*existing[i].id, until.as_millis(), now.as_millis()],
                )
                .map_err(db)?;
            }
            insert_fact(&tx, &fact)?;
            tx.commit().map_err(db)?;
            Ok(fact)
        })
        .await
    }

    async fn facts(&self, user: &UserId, query: &FactQuery) -> Result<Vec<Fact>, StoreError> {
        let user = user.to_string();
        let query = query.clone();
        self.with(move |conn| {
            // With a subject, by the subject's index (SQLite would read every fact of the user).
            let sql = if query.subject.is_some() {
                format!(
                    "SELECT {FACT_COLUMNS} FROM loom_facts INDEXED BY loom_facts_by_subject
                     WHERE user = ?1 AND subject_key = ?2 AND (?3 IS NULL OR predicate = ?3)
                     ORDER BY valid_from, recorded_at, id"
                )
            } else {
                format!(
                    "SELECT {FACT_COLUMNS} FROM loom_facts WHERE user = ?1 AND ?2 IS NULL
                     AND (?3 IS NULL OR predicate = ?3) ORDER BY valid_from, recorded_at, id"
                )
            };
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let subject = query.subject.as_ref().map(|s| s.to_lowercase());
            let rows = stmt.query_map(params![user, subject, query.predicate], fact).map_err(db)?;
            let found: Vec<Fact> = collect(rows)?.into_iter().filter(|f| query.admits(f)).collect();
            Ok(answer(found, &query))
        })
        .await
    }

    async fn rectify(
        &self,
        user: &UserId,
        id: &str,
        object: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<Fact, StoreError> {
        let (user, id, object, source) = (user.clone(), id.to_owned(), object.trim().to_owned(), source.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let sql =
                format!("SELECT {FACT_COLUMNS} FROM loom_facts WHERE user = ?1 AND id = ?2 AND retracted_at IS NULL");
            let old = tx.query_row(&sql, params![user.as_str(), id], fact).optional().map_err(db)?;
            let Some(old) = old else {
                return Err(no_fact_to_rectify("sqlite", &id));
            };
            let old = old?;
            tx.execute(
                "UPDATE loom_facts SET retracted_at = ?3 WHERE user = ?1 AND id = ?2",
                params![user.as_str(), id, now.as_millis()],
            )
            .map_err(db)?;
            let new = corrected(&old, &object, &source, now);
            insert_fact(&tx, &new)?;
            tx.commit().map_err(db)?;
            Ok(new)
        })
        .await
    }

    async fn export(&self, user: &UserId) -> Result<MemoryData, StoreError> {
        let blocks = MemoryStore::blocks(self, user).await?;
        let user = user.to_string();
        let (episodes, facts) = self
            .with(move |conn| {
                let tx = conn.transaction().map_err(db)?;
                let sql = format!(
                    "SELECT {EPISODE_COLUMNS} FROM loom_episodes e WHERE e.user = ?1 ORDER BY e.at_ms, e.rowid"
                );
                let episodes = {
                    let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
                    let rows = stmt.query_map(params![user], episode).map_err(db)?;
                    collect(rows)?
                };
                let sql = format!("SELECT {FACT_COLUMNS} FROM loom_facts WHERE user = ?1 ORDER BY recorded_at, id");
                let facts = {
                    let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
                    let rows = stmt.query_map(params![user], fact).map_err(db)?;
                    collect(rows)?
                };
                Ok((episodes, facts))
            })
            .await?;
        Ok(MemoryData { blocks, episodes, facts })
    }

    async fn forget(&self, user: &UserId, scope: &ForgetScope) -> Result<ForgetReport, StoreError> {
        let user = user.to_string();
        let scope = scope.clone();
        let cache = std::sync::Arc::clone(&self.recall);
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let mut report = ForgetReport::default();
            if scope.is_everything() {
                report.episodes = tx.execute("DELETE FROM loom_episodes WHERE user = ?1", params![user]).map_err(db)?;
                report.facts = tx.execute("DELETE FROM loom_facts WHERE user = ?1", params![user]).map_err(db)?;
                report.blocks = tx.execute("DELETE FROM loom_blocks WHERE user = ?1", params![user]).map_err(db)?;
                tx.execute("DELETE FROM loom_memory_revisions WHERE user = ?1", params![user]).map_err(db)?;
            } else {
                let session = scope.session.as_ref().map(|s| s.as_str().to_owned());
                let before = scope.before.map_or(i64::MAX, Timestamp::as_millis);
                let removed: Vec<String> = {
                    let mut stmt = tx
                        .prepare_cached("SELECT id FROM loom_episodes WHERE user = ?1 AND at_ms < ?2 AND (?3 IS NULL OR session = ?3)")
                        .map_err(db)?;
                    let rows = stmt.query_map(params![user, before, session], |r| r.get::<_, String>(0)).map_err(db)?;
                    rows.collect::<Result<_, _>>().map_err(db)?
                };
                report.episodes = tx
                    .execute("DELETE FROM loom_episodes WHERE user = ?1 AND at_ms < ?2 AND (?3 IS NULL OR session = ?3)", params![user, before, session])
                    .map_err(db)?;
                let sql = format!("SELECT {FACT_COLUMNS} FROM loom_facts WHERE user = ?1");
                let facts = {
                    let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
                    let rows = stmt.query_map(params![user], fact).map_err(db)?;
                    collect(rows)?
                };
                for f in facts.iter().filter(|f| fact_forgotten(f, &scope, &removed)) {
                    report.facts += tx.execute("DELETE FROM loom_facts WHERE user = ?1 AND id = ?2", params![user, &*f.id]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)?;
            cache.lock().unwrap_or_else(PoisonError::into_inner).drop_user(&user);
            Ok(report)
        })
        .await
    }
}
