//! Memory in PostgreSQL: the same database as the sessions and journals, for many workers.
//! Words are found through a `tsvector` column and its GIN index and ranked by BM25; meaning is
//! ranked by exact cosine similarity over the user's own vectors: pgvector's `<=>` when the
//! server has pgvector, computed in plain SQL otherwise.

use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row as _, Transaction};

use super::in_memory::{fact_forgotten, same_claim};
use super::rank::{Bm25, fuse, words};
use super::store::{MemoryStore, answer, corrected, no_fact_to_rectify, record, supersede};
use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{SessionId, UserId};
use crate::session::PostgresStore;
use crate::session::postgres::{db, error};

/// How many episodes each ranking hands to the fusion.
const CANDIDATES: i64 = 200;

/// The most dimensions a pgvector `vector` holds.
const PGVECTOR_MAX_DIMS: usize = 16_000;

/// Whether pgvector can hold `v`: 1 to 16,000 values, all finite. Others stay in the `REAL[]`
/// column only, ranked there.
fn embeddable(v: &[f32]) -> bool {
    (1..=PGVECTOR_MAX_DIMS).contains(&v.len()) && v.iter().all(|x| x.is_finite())
}

/// How many episodes matching a word are scored by BM25 (the best by PostgreSQL's own
/// `ts_rank_cd` when more match).
const WORD_MATCHES: i64 = 1_000;

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("{what} `{key}` is unreadable: {e}"))
}

fn encode(what: &str, e: serde_json::Error) -> StoreError {
    error(StoreErrorKind::Other, format!("{what} cannot be written: {e}"))
}

/// The columns of an episode, in the order [`episode`] reads them.
macro_rules! episode_columns {
    () => {
        "id, user_id, session, kind, text, at_ms, metadata"
    };
}

fn episode(row: &PgRow) -> Result<Episode, StoreError> {
    let id: String = row.try_get(0).map_err(db)?;
    let user: String = row.try_get(1).map_err(db)?;
    let session: Option<String> = row.try_get(2).map_err(db)?;
    let metadata: String = row.try_get(6).map_err(db)?;
    Ok(Episode {
        user: UserId::new(&user).map_err(|e| corrupt("episode", &id, e))?,
        session: session.map(|s| SessionId::new(&s)).transpose().map_err(|e| corrupt("episode", &id, e))?,
        kind: row.try_get(3).map_err(db)?,
        text: row.try_get(4).map_err(db)?,
        at: Timestamp::from_millis(row.try_get(5).map_err(db)?),
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt("episode", &id, e))?,
        id: id.into(),
    })
}

/// The columns of a fact, in the order [`fact`] reads them.
macro_rules! fact_columns {
    () => {
        "id, user_id, subject, predicate, object, confidence, valid_from, valid_until, recorded_at, closed_at, \
         retracted_at, sources"
    };
}

fn fact(row: &PgRow) -> Result<Fact, StoreError> {
    let id: String = row.try_get(0).map_err(db)?;
    let user: String = row.try_get(1).map_err(db)?;
    let sources: String = row.try_get(11).map_err(db)?;
    let ms = |i: usize| -> Result<Option<Timestamp>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(i).map_err(db)?.map(Timestamp::from_millis))
    };
    Ok(Fact {
        user: UserId::new(&user).map_err(|e| corrupt("fact", &id, e))?,
        subject: row.try_get(2).map_err(db)?,
        predicate: row.try_get(3).map_err(db)?,
        object: row.try_get(4).map_err(db)?,
        confidence: row.try_get(5).map_err(db)?,
        valid_from: Timestamp::from_millis(row.try_get(6).map_err(db)?),
        valid_until: ms(7)?,
        recorded_at: Timestamp::from_millis(row.try_get(8).map_err(db)?),
        closed_at: ms(9)?,
        retracted_at: ms(10)?,
        sources: serde_json::from_str(&sources).map_err(|e| corrupt("fact", &id, e))?,
        id: id.into(),
    })
}

async fn insert_fact(tx: &mut Transaction<'_, Postgres>, f: &Fact) -> Result<(), StoreError> {
    let sources = serde_json::to_string(&f.sources).map_err(|e| encode("a fact's sources", e))?;
    sqlx::query(
        "INSERT INTO loom_facts (user_id, id, subject, subject_key, predicate, object, confidence, valid_from,
                                 valid_until, recorded_at, closed_at, retracted_at, sources)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(f.user.as_str())
    .bind(&*f.id)
    .bind(&f.subject)
    .bind(f.subject.to_lowercase())
    .bind(&f.predicate)
    .bind(&f.object)
    .bind(f.confidence)
    .bind(f.valid_from.as_millis())
    .bind(f.valid_until.map(Timestamp::as_millis))
    .bind(f.recorded_at.as_millis())
    .bind(f.closed_at.map(Timestamp::as_millis))
    .bind(f.retracted_at.map(Timestamp::as_millis))
    .bind(sources)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Serialises the writers of one user's facts about one subject and predicate within a
/// transaction.
async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    user: &UserId,
    subject: &str,
    predicate: &str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('loom_facts' || chr(31) || $1 || chr(31) || $2 || chr(31) || $3, 0))")
        .bind(user.as_str())
        .bind(subject)
        .bind(predicate)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// A `tsquery` matching any of `terms` (which are letters and digits only, so need no quoting).
fn any_of(terms: &[String]) -> String {
    terms.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(" | ")
}

/// The filters every recall applies, on parameters `$1` to `$5`.
macro_rules! filters {
    () => {
        "user_id = $1 AND at_ms >= $2 AND at_ms < $3 AND ($4::text IS NULL OR kind = $4) \
         AND ($5::text IS NULL OR session = $5)"
    };
}

/// Memory in PostgreSQL (feature `postgres`), in the database of the sessions and journals:
/// tables `loom_blocks`, `loom_episodes` and `loom_facts`, each keyed by the user.
///
/// Recall finds the episodes that share a word with the query through a `tsvector` column (the
/// `simple` configuration: lowercased words, no stemming) and its GIN index, and scores up to
/// 1,000 of them by BM25 (document frequencies are exact up to that many matches; beyond, the
/// best by `ts_rank_cd` are scored). Meaning is ranked by exact cosine similarity over the
/// user's vectors of the query's dimension, by one of two paths, decided when the store
/// connects ([`PostgresStore::uses_pgvector`]):
///
/// - **pgvector** (the `vector` extension installed, or installable by the connecting role,
///   and on the `search_path`): vectors are written to `REAL[]` and to an `embedding vector`
///   column too (added, and filled from `REAL[]`, the first time a store connects with
///   pgvector), and ranked by `embedding <=> query` (cosine distance) in C. The scan is exact,
///   without an approximate (HNSW/IVFFlat) index: those need one fixed dimension, and
///   embedders differ; a user's episodes are found by the `(user_id, at_ms)` index, so the
///   cost grows with one user's episodes, comfortable to some hundreds of thousands per user.
///   Vectors pgvector cannot hold (over 16,000 dimensions, or not finite) are ranked by the
///   plain path.
/// - **plain SQL** (no pgvector): similarity computed in SQL over `REAL[]`, a full scan of one
///   user's episodes, comfortable to some tens of thousands of episodes per user.
///
/// Both rank the same episodes in the same order (up to floating-point ties). A worker that
/// connected before pgvector was installed writes `REAL[]` only until it reconnects. Facts are written
/// under a transaction-scoped advisory lock per user, subject and predicate, so concurrent
/// writers in any number of processes supersede in valid-time order.
#[async_trait::async_trait]
impl MemoryStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn blocks(&self, user: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        let rows = sqlx::query("SELECT name, text, updated_ms FROM loom_blocks WHERE user_id = $1 ORDER BY name")
            .bind(user.as_str())
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(WorkingBlock {
                    name: r.try_get(0).map_err(db)?,
                    text: r.try_get(1).map_err(db)?,
                    updated_at: Timestamp::from_millis(r.try_get(2).map_err(db)?),
                })
            })
            .collect()
    }

    async fn write_block(
        &self,
        user: &UserId,
        name: &str,
        text: &str,
        append: bool,
    ) -> Result<WorkingBlock, StoreError> {
        let now = Timestamp::now();
        let row = sqlx::query(
            "INSERT INTO loom_blocks (user_id, name, text, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, name) DO UPDATE SET
                 text = CASE WHEN $5 AND loom_blocks.text <> '' THEN loom_blocks.text || chr(10) || EXCLUDED.text
                             ELSE EXCLUDED.text END,
                 updated_ms = EXCLUDED.updated_ms
             RETURNING text",
        )
        .bind(user.as_str())
        .bind(name)
        .bind(text)
        .bind(now.as_millis())
        .bind(append)
        .fetch_one(self.pool())
        .await
        .map_err(db)?;
        Ok(WorkingBlock { name: name.to_owned(), text: row.try_get(0).map_err(db)?, updated_at: now })
    }

    async fn remember(&self, episode: &Episode, vector: Option<&[f32]>) -> Result<(), StoreError> {
        let metadata = serde_json::to_string(&episode.metadata).map_err(|e| encode("an episode's metadata", e))?;
        let insert = if self.uses_pgvector() {
            sqlx::query(
                "INSERT INTO loom_episodes (user_id, id, session, kind, text, at_ms, metadata, vector, embedding)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::real[]::vector) ON CONFLICT (user_id, id) DO NOTHING",
            )
        } else {
            sqlx::query(
                "INSERT INTO loom_episodes (user_id, id, session, kind, text, at_ms, metadata, vector)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id, id) DO NOTHING",
            )
        };
        let mut insert = insert
            .bind(episode.user.as_str())
            .bind(&*episode.id)
            .bind(episode.session.as_ref().map(SessionId::as_str))
            .bind(&episode.kind)
            .bind(&episode.text)
            .bind(episode.at.as_millis())
            .bind(metadata)
            .bind(vector);
        if self.uses_pgvector() {
            insert = insert.bind(vector.filter(|v| embeddable(v)));
        }
        insert.execute(self.pool()).await.map_err(db)?;
        Ok(())
    }

    async fn recall(
        &self,
        user: &UserId,
        query: &RecallQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Recalled>, StoreError> {
        let since = query.since.map_or(i64::MIN, Timestamp::as_millis);
        let until = query.until.map_or(i64::MAX, Timestamp::as_millis);
        let session = query.session.as_ref().map(SessionId::as_str);
        let mut terms: Vec<String> = Vec::new();
        for w in words(&query.text) {
            if !terms.contains(&w) {
                terms.push(w);
            }
        }
        // One snapshot for both rankings.
        let mut tx = self.pool().begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await.map_err(db)?;
        let mut candidates: Vec<Episode> = Vec::new();
        let mut by_words: Vec<usize> = Vec::new();
        if !terms.is_empty() && query.alpha < 1.0 {
            let sql = concat!(
                "SELECT ",
                episode_columns!(),
                ", count(*) OVER () FROM loom_episodes
                 WHERE ",
                filters!(),
                " AND words @@ to_tsquery('simple', $6)
                 ORDER BY ts_rank_cd(words, to_tsquery('simple', $6), 1) DESC, at_ms DESC LIMIT $7"
            );
            let rows = sqlx::query(sql)
                .bind(user.as_str())
                .bind(since)
                .bind(until)
                .bind(query.kind.as_deref())
                .bind(session)
                .bind(any_of(&terms))
                .bind(WORD_MATCHES)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let matched = rows.iter().map(episode).collect::<Result<Vec<_>, _>>()?;
            if !matched.is_empty() {
                let total: i64 = sqlx::query(concat!("SELECT count(*) FROM loom_episodes WHERE ", filters!()))
                    .bind(user.as_str())
                    .bind(since)
                    .bind(until)
                    .bind(query.kind.as_deref())
                    .bind(session)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?
                    .try_get(0)
                    .map_err(db)?;
                let index = Bm25::new(&terms, matched.iter().map(|e| e.text.as_str()))
                    .with_total(usize::try_from(total).unwrap_or(0));
                let mut scored: Vec<(usize, f64)> =
                    (0..matched.len()).map(|i| (i, index.score(i))).filter(|(_, s)| *s > 0.0).collect();
                // Equal scores go to the more recent episode.
                scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(matched[b.0].at.cmp(&matched[a.0].at)));
                scored.truncate(CANDIDATES as usize);
                let keep: Vec<usize> = scored.iter().map(|(i, _)| *i).collect();
                let mut matched: Vec<Option<Episode>> = matched.into_iter().map(Some).collect();
                for i in keep {
                    if let Some(e) = matched.get_mut(i).and_then(Option::take) {
                        by_words.push(candidates.len());
                        candidates.push(e);
                    }
                }
            }
        }
        let mut by_meaning: Vec<usize> = Vec::new();
        if let Some(q) = vector.filter(|v| !v.is_empty() && query.alpha > 0.0) {
            let pgvector = self.uses_pgvector() && embeddable(q);
            // Distance below 1 is similarity above 0; NaN (a zero vector) is not below 1. `<=>` fails on
            // vectors of different dimensions, and the planner may compute it before any filter: the
            // `CASE` leaves other dimensions out (NULL) first.
            let nearest = concat!(
                "SELECT ",
                episode_columns!(),
                " FROM (
                     SELECT e.*, CASE WHEN vector_dims(e.embedding) = $8 THEN e.embedding <=> $6::real[]::vector END AS distance
                     FROM loom_episodes e
                     WHERE ",
                filters!(),
                " AND e.embedding IS NOT NULL AND vector_dims(e.embedding) = $8
                 ) s
                 WHERE distance < 1 ORDER BY distance, at_ms DESC LIMIT $7"
            );
            let plain = concat!(
                "SELECT ",
                episode_columns!(),
                " FROM (
                     SELECT e.*, (SELECT sum(a * b) / NULLIF(sqrt(sum(a * a)) * sqrt(sum(b * b)), 0)
                                  FROM unnest(e.vector, $6::real[]) AS t(a, b)) AS similarity
                     FROM loom_episodes e
                     WHERE ",
                filters!(),
                " AND e.vector IS NOT NULL AND cardinality(e.vector) = cardinality($6::real[])
                 ) s
                 WHERE similarity > 0 ORDER BY similarity DESC, at_ms DESC LIMIT $7"
            );
            let mut nearest = sqlx::query(if pgvector { nearest } else { plain })
                .bind(user.as_str())
                .bind(since)
                .bind(until)
                .bind(query.kind.as_deref())
                .bind(session)
                .bind(q)
                .bind(CANDIDATES);
            if pgvector {
                nearest = nearest.bind(i32::try_from(q.len()).unwrap_or(i32::MAX));
            }
            let rows = nearest.fetch_all(&mut *tx).await.map_err(db)?;
            for row in &rows {
                let e = episode(row)?;
                match candidates.iter().position(|c| c.id == e.id) {
                    Some(i) => by_meaning.push(i),
                    None => {
                        by_meaning.push(candidates.len());
                        candidates.push(e);
                    }
                }
            }
        }
        tx.commit().await.map_err(db)?;
        let fused = fuse(&by_words, &by_meaning, query.alpha, query.limit);
        Ok(fused
            .into_iter()
            .filter_map(|(i, score, word_rank, meaning_rank)| {
                Some(Recalled { episode: candidates.get(i)?.clone(), score, word_rank, meaning_rank })
            })
            .collect())
    }

    async fn add_fact(&self, user: &UserId, new: NewFact, now: Timestamp) -> Result<Fact, StoreError> {
        let mut fact = record(user, new, now);
        let key = fact.subject.to_lowercase();
        let mut tx = self.pool().begin().await.map_err(db)?;
        lock(&mut tx, user, &key, &fact.predicate).await?;
        let sql = concat!(
            "SELECT ",
            fact_columns!(),
            " FROM loom_facts WHERE user_id = $1 AND subject_key = $2 AND predicate = $3"
        );
        let existing = sqlx::query(sql)
            .bind(user.as_str())
            .bind(&key)
            .bind(&fact.predicate)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .iter()
            .map(self::fact)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(same) = existing.iter().find(|f| same_claim(f, &fact)) {
            let mut same = same.clone();
            let before = same.sources.len();
            for s in std::mem::take(&mut fact.sources) {
                if !same.sources.contains(&s) {
                    same.sources.push(s);
                }
            }
            if same.sources.len() != before {
                let sources = serde_json::to_string(&same.sources).map_err(|e| encode("a fact's sources", e))?;
                sqlx::query("UPDATE loom_facts SET sources = $3 WHERE user_id = $1 AND id = $2")
                    .bind(user.as_str())
                    .bind(&*same.id)
                    .bind(sources)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            return Ok(same);
        }
        for (i, until) in supersede(&existing, &mut fact, now) {
            sqlx::query("UPDATE loom_facts SET valid_until = $3, closed_at = $4 WHERE user_id = $1 AND id = $2")
                .bind(user.as_str())
                .bind(&*existing[i].id)
                .bind(until.as_millis())
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        insert_fact(&mut tx, &fact).await?;
        tx.commit().await.map_err(db)?;
        Ok(fact)
    }

    async fn facts(&self, user: &UserId, query: &FactQuery) -> Result<Vec<Fact>, StoreError> {
        let sql = concat!(
            "SELECT ",
            fact_columns!(),
            " FROM loom_facts WHERE user_id = $1 AND ($2::text IS NULL OR subject_key = $2)
             AND ($3::text IS NULL OR predicate = $3) ORDER BY valid_from, recorded_at, id"
        );
        let rows = sqlx::query(sql)
            .bind(user.as_str())
            .bind(query.subject.as_ref().map(|s| s.to_lowercase()))
            .bind(query.predicate.as_deref())
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        let mut found = Vec::new();
        for row in &rows {
            let f = fact(row)?;
            if query.admits(&f) {
                found.push(f);
            }
        }
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
        let mut tx = self.pool().begin().await.map_err(db)?;
        // Retract first: of two corrections of one fact, the second finds it retracted.
        let sql = concat!(
            "UPDATE loom_facts SET retracted_at = $3 WHERE user_id = $1 AND id = $2 AND retracted_at IS NULL
             RETURNING ",
            fact_columns!()
        );
        let row = sqlx::query(sql)
            .bind(user.as_str())
            .bind(id)
            .bind(now.as_millis())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Err(no_fact_to_rectify("postgres", id));
        };
        let old = fact(&row)?;
        let new = corrected(&old, object, source, now);
        insert_fact(&mut tx, &new).await?;
        tx.commit().await.map_err(db)?;
        Ok(new)
    }

    async fn export(&self, user: &UserId) -> Result<MemoryData, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await.map_err(db)?;
        let blocks = sqlx::query("SELECT name, text, updated_ms FROM loom_blocks WHERE user_id = $1 ORDER BY name")
            .bind(user.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(WorkingBlock {
                    name: r.try_get(0).map_err(db)?,
                    text: r.try_get(1).map_err(db)?,
                    updated_at: Timestamp::from_millis(r.try_get(2).map_err(db)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let episodes = sqlx::query(concat!(
            "SELECT ",
            episode_columns!(),
            " FROM loom_episodes WHERE user_id = $1 ORDER BY at_ms, id"
        ))
        .bind(user.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .iter()
        .map(episode)
        .collect::<Result<Vec<_>, _>>()?;
        let facts = sqlx::query(concat!(
            "SELECT ",
            fact_columns!(),
            " FROM loom_facts WHERE user_id = $1 ORDER BY recorded_at, id"
        ))
        .bind(user.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .iter()
        .map(fact)
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(db)?;
        Ok(MemoryData { blocks, episodes, facts })
    }

    async fn forget(&self, user: &UserId, scope: &ForgetScope) -> Result<ForgetReport, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        let u = user.as_str();
        let mut report = ForgetReport::default();
        let count = |r: sqlx::postgres::PgQueryResult| usize::try_from(r.rows_affected()).unwrap_or(usize::MAX);
        if scope.is_everything() {
            for (sql, n) in [
                ("DELETE FROM loom_episodes WHERE user_id = $1", &mut report.episodes),
                ("DELETE FROM loom_facts WHERE user_id = $1", &mut report.facts),
                ("DELETE FROM loom_blocks WHERE user_id = $1", &mut report.blocks),
            ] {
                *n = count(sqlx::query(sql).bind(u).execute(&mut *tx).await.map_err(db)?);
            }
        } else {
            let before = scope.before.map_or(i64::MAX, Timestamp::as_millis);
            let session = scope.session.as_ref().map(SessionId::as_str);
            let removed: Vec<String> = sqlx::query(
                "DELETE FROM loom_episodes WHERE user_id = $1 AND at_ms < $2 AND ($3::text IS NULL OR session = $3)
                 RETURNING id",
            )
            .bind(u)
            .bind(before)
            .bind(session)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get(0).map_err(db))
            .collect::<Result<_, _>>()?;
            report.episodes = removed.len();
            let facts =
                sqlx::query(concat!("SELECT ", fact_columns!(), " FROM loom_facts WHERE user_id = $1 FOR UPDATE"))
                    .bind(u)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(fact)
                    .collect::<Result<Vec<_>, _>>()?;
            let gone: Vec<&str> = facts.iter().filter(|f| fact_forgotten(f, scope, &removed)).map(|f| &*f.id).collect();
            if !gone.is_empty() {
                report.facts = count(
                    sqlx::query("DELETE FROM loom_facts WHERE user_id = $1 AND id = ANY($2)")
                        .bind(u)
                        .bind(&gone)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?,
                );
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(report)
    }
}
