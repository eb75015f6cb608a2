//! Memory in SQLite: the same file as the sessions and journals, words ranked by FTS5's BM25,
//! meaning by exact cosine over the user's own vectors.

use std::cmp::Ordering;
use std::collections::HashMap;

use foldhash::fast::RandomState;
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension as _, Row, params};

use super::in_memory::{fact_forgotten, same_claim};
use super::rank::{fuse, words};
use super::store::{MemoryStore, answer, corrected, no_fact_to_rectify, record, supersede};
use super::time::Timestamp;
use super::types::{
    Episode, Fact, FactQuery, ForgetReport, ForgetScope, MemoryData, NewFact, RecallQuery, Recalled, WorkingBlock,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{SessionId, UserId};
use crate::session::SqliteStore;
use crate::session::sqlite::{db, error};

/// How many word matches (by BM25) are fused with the meaning ranking.
const WORD_CANDIDATES: usize = 200;

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("{what} `{key}` is unreadable: {e}"))
}

fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The sum of the squares of `v`, as [`cosine`](super::rank::cosine) adds it up.
fn squared_norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x) * f64::from(*x)).fold(0.0, |sum, x| sum + x)
}

/// [`cosine`](super::rank::cosine) of `q` (whose [`squared_norm`] is `q_norm`) and the vector
/// stored as `blob`, read in place: the same sums in the same order, so the same value to the
/// last bit.
fn cosine_blob(q: &[f32], q_norm: f64, blob: &[u8]) -> f64 {
    if blob.len() != q.len() * 4 || q.is_empty() {
        return 0.0;
    }
    let (mut dot, mut norm) = (0.0f64, 0.0f64);
    for (x, c) in q.iter().zip(blob.chunks_exact(4)) {
        let (x, y) = (f64::from(*x), f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        dot += x * y;
        norm += y * y;
    }
    if q_norm == 0.0 || norm == 0.0 { 0.0 } else { dot / (q_norm.sqrt() * norm.sqrt()) }
}

/// The id of the episode at `rowid`, for an error message.
fn episode_id(conn: &rusqlite::Connection, rowid: i64) -> String {
    conn.query_row("SELECT id FROM loom_episodes WHERE rowid = ?1", params![rowid], |r| r.get(0))
        .unwrap_or_else(|_| format!("at rowid {rowid}"))
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

/// An FTS5 query of the words of `text`, any of them: `"w1" OR "w2"`.
fn match_expression(text: &str) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for w in words(text) {
        let quoted = format!("\"{}\"", w.replace('"', ""));
        if !terms.contains(&quoted) {
            terms.push(quoted);
        }
    }
    (!terms.is_empty()).then(|| terms.join(" OR "))
}

/// The filters of a recall, on the episodes `e`: the user, the time range, the kind, the session.
const RECALL_FILTERS: &str = "e.user = ?1 AND e.at_ms >= ?2 AND e.at_ms < ?3 AND (?4 IS NULL OR e.kind = ?4) \
                              AND (?5 IS NULL OR e.session = ?5)";

/// `(score, time, order of arrival, rowid)` of a ranked row.
type Ranked = (f64, i64, usize, i64);

/// Keeps the first `k` of `items` in `order`, sorted.
fn best(items: &mut Vec<Ranked>, k: usize, order: impl Fn(&Ranked, &Ranked) -> Ordering + Copy) {
    if items.len() > k {
        items.select_nth_unstable_by(k, order);
        items.truncate(k);
    }
    items.sort_unstable_by(order);
}

/// Recall, in one read transaction (both rankings see one snapshot).
///
/// By words: FTS5's BM25 over the user's rows that pass the filters, best first, the later first
/// among equals. The matches are restricted to those rows by `rowid IN (...)`, a set SQLite
/// builds once per query from the user's index, not by joining each match to its row: a join
/// reads a table page for every match of every user. By meaning: exact cosine over the same
/// rows' vectors, read in place. Only the episodes returned are read in full.
fn recall_rows(
    conn: &mut rusqlite::Connection,
    user: &str,
    query: &RecallQuery,
    vector: Option<&[f32]>,
) -> Result<Vec<Recalled>, StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let since = query.since.map_or(i64::MIN, Timestamp::as_millis);
    let until = query.until.map_or(i64::MAX, Timestamp::as_millis);
    let (kind, session) = (query.kind.as_deref(), query.session.as_ref().map(SessionId::as_str));
    let expr = match_expression(&query.text).filter(|_| query.alpha < 1.0);
    // The user's rows: their times (which order the words' equals) and their similarity.
    let mut times: HashMap<i64, i64, RandomState> = HashMap::default();
    let mut by_similarity: Vec<Ranked> = Vec::new();
    if let Some(q) = vector.filter(|_| query.alpha > 0.0) {
        let sql = format!("SELECT e.rowid, e.at_ms, e.vector FROM loom_episodes e WHERE {RECALL_FILTERS}");
        let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
        let mut rows = stmt.query(params![user, since, until, kind, session]).map_err(db)?;
        let q_norm = squared_norm(q);
        while let Some(row) = rows.next().map_err(db)? {
            let (rowid, at): (i64, i64) = (row.get(0).map_err(db)?, row.get(1).map_err(db)?);
            if expr.is_some() {
                times.insert(rowid, at);
            }
            let value = row.get_ref(2).map_err(db)?;
            if value == ValueRef::Null {
                continue;
            }
            let blob = value.as_blob().map_err(|e| db(e.into()))?;
            if !blob.len().is_multiple_of(4) {
                let id = episode_id(&tx, rowid);
                return Err(corrupt("the vector of episode", &id, "its length is not a multiple of 4"));
            }
            let s = cosine_blob(q, q_norm, blob);
            if s > 0.0 {
                by_similarity.push((s, at, by_similarity.len(), rowid));
            }
        }
    } else if expr.is_some() {
        let sql = format!("SELECT e.rowid, e.at_ms FROM loom_episodes e WHERE {RECALL_FILTERS}");
        let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
        let rows = stmt
            .query_map(params![user, since, until, kind, session], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(db)?;
        for row in rows {
            let (rowid, at) = row.map_err(db)?;
            times.insert(rowid, at);
        }
    }
    // The candidates, by rowid: the word matches in their order, then the meaning matches that
    // are not among them (the order `fuse` breaks ties by).
    let mut candidates: Vec<i64> = Vec::new();
    let mut position: HashMap<i64, usize, RandomState> = HashMap::default();
    let mut by_words: Vec<usize> = Vec::new();
    if let Some(expr) = &expr {
        let sql = format!(
            "SELECT t.rowid, bm25(loom_episodes_text) FROM loom_episodes_text t
             WHERE loom_episodes_text MATCH ?6 AND +t.rowid IN (SELECT e.rowid FROM loom_episodes e WHERE {RECALL_FILTERS})"
        );
        let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
        let mut rows = stmt.query(params![user, since, until, kind, session, expr]).map_err(db)?;
        // (BM25, lower is better; time; order of the matches; rowid)
        let mut matched: Vec<Ranked> = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            let rowid: i64 = row.get(0).map_err(db)?;
            if let Some(&at) = times.get(&rowid) {
                matched.push((row.get(1).map_err(db)?, at, matched.len(), rowid));
            }
        }
        best(&mut matched, WORD_CANDIDATES, |a, b| {
            a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2))
        });
        for (_, _, _, rowid) in matched {
            position.insert(rowid, candidates.len());
            by_words.push(candidates.len());
            candidates.push(rowid);
        }
    }
    // The most similar first, the later first among equals, then in the scan's order.
    best(&mut by_similarity, WORD_CANDIDATES, |a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut by_meaning: Vec<usize> = Vec::new();
    for (_, _, _, rowid) in by_similarity {
        let i = *position.entry(rowid).or_insert_with(|| {
            candidates.push(rowid);
            candidates.len() - 1
        });
        by_meaning.push(i);
    }
    let fused = fuse(&by_words, &by_meaning, query.alpha, query.limit);
    let mut out = Vec::with_capacity(fused.len());
    {
        let sql = format!("SELECT {EPISODE_COLUMNS} FROM loom_episodes e WHERE e.rowid = ?1");
        let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
        for (i, score, word_rank, meaning_rank) in fused {
            let episode = stmt.query_row(params![candidates[i]], episode).map_err(db)??;
            out.push(Recalled { episode, score, word_rank, meaning_rank });
        }
    }
    tx.commit().map_err(db)?;
    Ok(out)
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
        self.with(move |conn| recall_rows(conn, &user, &query, vector.as_deref())).await
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
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let mut report = ForgetReport::default();
            if scope.is_everything() {
                report.episodes = tx.execute("DELETE FROM loom_episodes WHERE user = ?1", params![user]).map_err(db)?;
                report.facts = tx.execute("DELETE FROM loom_facts WHERE user = ?1", params![user]).map_err(db)?;
                report.blocks = tx.execute("DELETE FROM loom_blocks WHERE user = ?1", params![user]).map_err(db)?;
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
            Ok(report)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::rank::cosine;
    use super::*;
    use crate::memory::HashingEmbedder;

    #[test]
    fn cosine_of_a_stored_vector_is_cosine_to_the_last_bit() {
        let e = HashingEmbedder::default();
        let texts = ["the night train to Bergen", "Ann prefers trains", "quarterly invoice totals", ""];
        for a in texts {
            for b in texts {
                let (q, v) = (e.vector(a), e.vector(b));
                let fast = cosine_blob(&q, squared_norm(&q), &vector_blob(&v));
                assert_eq!(fast.to_bits(), cosine(&q, &v).to_bits(), "{a:?} {b:?}");
            }
        }
        let q = [0.25f32, -1.5, 3.0];
        assert_eq!(cosine_blob(&q, squared_norm(&q), &vector_blob(&[1.0, 2.0])), 0.0);
        assert_eq!(cosine_blob(&[], 0.0, &[]), 0.0);
        let odd = [1e-3f32, 7.0, -2.5];
        let v = [0.5f32, 0.25, 9.0];
        assert_eq!(cosine_blob(&odd, squared_norm(&odd), &vector_blob(&v)).to_bits(), cosine(&odd, &v).to_bits());
    }
}
