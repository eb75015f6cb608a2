//! Chunks in PostgreSQL: the database of the sessions, journals and memory, table
//! `loom_chunks`. Words are found through a GIN index of each chunk's words and ranked by BM25
//! in the process, with the collection's exact statistics; meaning is ranked in the database by
//! exact cosine similarity: pgvector's `<=>` when the server has it, plain SQL otherwise.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::store::{Hit, SearchQuery, StoredChunk, VectorStore};
use super::{Chunk, Metadata};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;
use crate::memory::index::CANDIDATES;
use crate::memory::rank::{fuse, idf, length_norm, term_order, term_weight, words};
use crate::session::PostgresStore;
use crate::session::postgres::{db, error};

/// The most dimensions a pgvector `vector` holds.
const PGVECTOR_MAX_DIMS: usize = 16_000;

/// Whether pgvector can hold `v`: 1 to 16,000 values, all finite. Others stay in the `REAL[]`
/// column only, ranked there.
fn embeddable(v: &[f32]) -> bool {
    (1..=PGVECTOR_MAX_DIMS).contains(&v.len()) && v.iter().all(|x| x.is_finite())
}

/// The columns of a chunk, in the order [`chunk`] reads them.
macro_rules! chunk_columns {
    () => {
        "id, document, idx, text, start_byte, end_byte, metadata::text"
    };
}

/// Writes a chunk, replacing the one with its id unless that one is the same; a replaced chunk
/// counts as written last (a new `seq`). `$14`, with pgvector, is the `embedding`.
macro_rules! upsert {
    ($columns:literal, $values:literal, $set:literal) => {
        concat!(
            "INSERT INTO loom_chunks (user_id, collection, id, document, idx, text, start_byte, end_byte, metadata,
                                      vector, terms, freqs, word_count",
            $columns,
            ")
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13",
            $values,
            ")
             ON CONFLICT (user_id, collection, id) DO UPDATE SET
                 seq = DEFAULT, document = EXCLUDED.document, idx = EXCLUDED.idx, text = EXCLUDED.text,
                 start_byte = EXCLUDED.start_byte, end_byte = EXCLUDED.end_byte, metadata = EXCLUDED.metadata,
                 vector = EXCLUDED.vector, terms = EXCLUDED.terms, freqs = EXCLUDED.freqs,
                 word_count = EXCLUDED.word_count",
            $set,
            "
             WHERE (loom_chunks.document, loom_chunks.idx, loom_chunks.text, loom_chunks.start_byte,
                    loom_chunks.end_byte, loom_chunks.metadata, loom_chunks.vector)
                   IS DISTINCT FROM (EXCLUDED.document, EXCLUDED.idx, EXCLUDED.text, EXCLUDED.start_byte,
                                     EXCLUDED.end_byte, EXCLUDED.metadata, EXCLUDED.vector)"
        )
    };
}

fn corrupt(id: &str, e: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("chunk `{id}` is unreadable: {e}"))
}

fn chunk(row: &PgRow) -> Result<Chunk, StoreError> {
    let id: String = row.try_get(0).map_err(db)?;
    let index: i64 = row.try_get(2).map_err(db)?;
    let start: i64 = row.try_get(4).map_err(db)?;
    let end: i64 = row.try_get(5).map_err(db)?;
    let metadata: String = row.try_get(6).map_err(db)?;
    let number = |n: i64| usize::try_from(n).map_err(|e| corrupt(&id, e));
    Ok(Chunk {
        document: row.try_get(1).map_err(db)?,
        index: u32::try_from(index).map_err(|e| corrupt(&id, e))?,
        text: row.try_get(3).map_err(db)?,
        start: number(start)?,
        end: number(end)?,
        metadata: serde_json::from_str::<Metadata>(&metadata).map_err(|e| corrupt(&id, e))?,
        id: id.clone(),
    })
}

/// The distinct words of `text` (as recall splits them) in the order they first occur, how
/// often each occurs, and how many words it has.
fn terms(text: &str) -> (Vec<String>, Vec<i32>, i32) {
    let mut at: HashMap<String, usize, RandomState> = HashMap::default();
    let (mut terms, mut freqs, mut count) = (Vec::new(), Vec::<i32>::new(), 0i32);
    for w in words(text) {
        count = count.saturating_add(1);
        match at.get(&w) {
            Some(&i) => {
                if let Some(f) = freqs.get_mut(i) {
                    *f = f.saturating_add(1);
                }
            }
            None => {
                at.insert(w.clone(), terms.len());
                terms.push(w);
                freqs.push(1);
            }
        }
    }
    (terms, freqs, count)
}

/// A chunk sharing a word with the query: its key, its number of words, and how often it says
/// each of the query's distinct words.
struct Match {
    seq: i64,
    len: i32,
    tf: Vec<i32>,
}

/// The keys of the best `k` of `matches` by BM25 among `n` chunks of `total` words, best first
/// (equal scores: the chunk written later). `said` is every word of the query, `distinct` each
/// once, in the order of `Match::tf`. The sums are those of the index in the process
/// ([`RecallIndex`](crate::memory::index::RecallIndex)), in [`term_order`], so the scores are
/// the same to the last bit.
fn rank_words(said: &[String], distinct: &[String], matches: &[Match], n: usize, total: u64, k: usize) -> Vec<i64> {
    let avg = (total as f64 / n.max(1) as f64).max(1.0);
    // Each distinct word that a chunk holds: where its counts are, its IDF, how often the query
    // says it.
    let mut terms: Vec<(&str, usize, f64, f64)> = Vec::new();
    for (t, word) in distinct.iter().enumerate() {
        let df = matches.iter().filter(|m| m.tf.get(t).is_some_and(|f| *f > 0)).count();
        if df == 0 {
            continue;
        }
        let times = said.iter().filter(|w| *w == word).count() as f64;
        terms.push((word, t, idf(n as f64, df as f64), times));
    }
    terms.sort_by(|a, b| term_order((a.0, a.2), (b.0, b.2)));
    let mut scored: Vec<(f64, i64)> = matches
        .iter()
        .map(|m| {
            let mut score = 0.0;
            for &(_, t, idf, times) in &terms {
                if let Some(&f) = m.tf.get(t).filter(|f| **f > 0) {
                    score += term_weight(idf, f64::from(f), length_norm(f64::from(m.len), avg)) * times;
                }
            }
            (score, m.seq)
        })
        .filter(|(s, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    scored.truncate(k);
    scored.into_iter().map(|(_, seq)| seq).collect()
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Chunks in PostgreSQL (features `postgres` and `rag`), in the database of the sessions,
/// journals and memory: table `loom_chunks`, keyed by the user, the collection and the chunk
/// id, with the chunk's metadata as `JSONB`.
///
/// Each chunk keeps its distinct words as Loom splits them (lowercase runs of letters and
/// digits) with a GIN index, and their counts. A search finds the chunks of the collection
/// that share a word with the query through that index and scores every one of them by BM25
/// in the process, with the collection's exact statistics (its number of chunks and of words,
/// each word's document frequency): the scores are those of
/// [`InMemoryVectorStore`](super::InMemoryVectorStore) and of SQLite, to the last bit. Meaning is ranked
/// by exact cosine similarity over the collection's vectors of the query's dimension, by the
/// path [`PostgresStore::uses_pgvector`] chose: pgvector's `embedding <=> query` (an `embedding
/// vector` column, added and filled from `REAL[]` the first time a store connects with
/// pgvector), or the similarity computed in SQL over `REAL[]` (in double precision, as the
/// process does). Both scans are exact (no HNSW/IVFFlat index: those need one fixed dimension),
/// so their cost grows with one collection's chunks. The two rankings are fused by reciprocal
/// rank, as memory recall fuses; equal scores go to the chunk written later.
///
/// A metadata [`Filter`](super::Filter) is tested in the process: a filtered search reads the
/// metadata of every chunk of the collection (one row each, no text), tests it, and ranks the
/// chunks it admits with their own statistics, as the stores in the process do. Exact for
/// every operator and every value; comfortable to some hundreds of thousands of chunks per
/// collection.
///
/// `upsert` is one transaction (a chunk kept as it is stays as it was); `forget` is one
/// statement. A worker that connected without pgvector writes `REAL[]` only: a chunk it
/// replaces keeps its earlier `embedding` until a worker with pgvector writes it again.
#[async_trait::async_trait]
impl VectorStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn upsert(&self, user: &UserId, collection: &str, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let position = |id: &str, n: usize| {
            i64::try_from(n).map_err(|e| error(StoreErrorKind::Other, format!("chunk `{id}`: {e}")))
        };
        let mut rows = Vec::with_capacity(chunks.len());
        for c in chunks {
            let id = &c.chunk.id;
            let metadata = serde_json::to_string(&c.chunk.metadata).map_err(|e| {
                error(StoreErrorKind::Other, format!("chunk `{id}`: its metadata cannot be written: {e}"))
            })?;
            let range = (position(id, c.chunk.start)?, position(id, c.chunk.end)?);
            rows.push((c, metadata, range, terms(&c.chunk.text)));
        }
        let pgvector = self.uses_pgvector();
        let sql = if pgvector {
            upsert!(", embedding", ", $14::real[]::vector", ", embedding = EXCLUDED.embedding")
        } else {
            upsert!("", "", "")
        };
        let mut tx = self.pool().begin().await.map_err(db)?;
        for (c, metadata, (start, end), (terms, freqs, words)) in &rows {
            let vector = c.vector.as_deref();
            let mut write = sqlx::query(sql)
                .bind(user.as_str())
                .bind(collection)
                .bind(&c.chunk.id)
                .bind(&c.chunk.document)
                .bind(i64::from(c.chunk.index))
                .bind(&c.chunk.text)
                .bind(start)
                .bind(end)
                .bind(metadata)
                .bind(vector)
                .bind(terms)
                .bind(freqs)
                .bind(words);
            if pgvector {
                write = write.bind(vector.filter(|v| embeddable(v)));
            }
            write.execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn chunk_ids(&self, user: &UserId, collection: &str, document: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM loom_chunks WHERE user_id = $1 AND collection = $2 AND document = $3 ORDER BY idx, seq",
        )
        .bind(user.as_str())
        .bind(collection)
        .bind(document)
        .fetch_all(self.pool())
        .await
        .map_err(db)
    }

    async fn delete(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let removed = sqlx::query("DELETE FROM loom_chunks WHERE user_id = $1 AND collection = $2 AND id = ANY($3)")
            .bind(user.as_str())
            .bind(collection)
            .bind(ids)
            .execute(self.pool())
            .await
            .map_err(db)?
            .rows_affected();
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn get(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<Vec<Chunk>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            chunk_columns!(),
            " FROM loom_chunks WHERE user_id = $1 AND collection = $2 AND id = ANY($3)"
        ))
        .bind(user.as_str())
        .bind(collection)
        .bind(ids)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        let mut found: HashMap<String, Chunk, RandomState> = HashMap::default();
        for row in &rows {
            let c = chunk(row)?;
            found.insert(c.id.clone(), c);
        }
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn count(&self, user: &UserId, collection: &str) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM loom_chunks WHERE user_id = $1 AND collection = $2")
            .bind(user.as_str())
            .bind(collection)
            .fetch_one(self.pool())
            .await
            .map_err(db)?;
        Ok(count(n))
    }

    async fn search(
        &self,
        user: &UserId,
        collection: &str,
        query: &SearchQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Hit>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let k = CANDIDATES.max(query.limit);
        let said: Vec<String> = words(&query.text).collect();
        let mut distinct: Vec<String> = Vec::new();
        for w in &said {
            if !distinct.contains(w) {
                distinct.push(w.clone());
            }
        }
        // One snapshot for the statistics and both rankings.
        let mut tx = self.pool().begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await.map_err(db)?;
        // The chunks the filter admits (all, without one), their number and their words.
        let (admitted, n, total) = match &query.filter {
            Some(filter) => {
                let rows = sqlx::query(
                    "SELECT seq, id, metadata::text, word_count FROM loom_chunks WHERE user_id = $1 AND collection = $2",
                )
                .bind(user.as_str())
                .bind(collection)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                let mut keys: HashSet<i64, RandomState> = HashSet::default();
                let mut total = 0u64;
                for row in &rows {
                    let text: String = row.try_get(2).map_err(db)?;
                    let metadata: Metadata = match serde_json::from_str(&text) {
                        Ok(m) => m,
                        Err(e) => return Err(corrupt(&row.try_get::<String, _>(1).map_err(db)?, e)),
                    };
                    if filter.matches(&metadata) {
                        keys.insert(row.try_get(0).map_err(db)?);
                        total += u64::try_from(row.try_get::<i32, _>(3).map_err(db)?).unwrap_or(0);
                    }
                }
                let n = keys.len();
                (Some(keys), n, total)
            }
            None => {
                let row = sqlx::query(
                    "SELECT count(*), COALESCE(sum(word_count), 0)::bigint FROM loom_chunks
                     WHERE user_id = $1 AND collection = $2",
                )
                .bind(user.as_str())
                .bind(collection)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                let total: i64 = row.try_get(1).map_err(db)?;
                (None, count(row.try_get(0).map_err(db)?), u64::try_from(total).unwrap_or(0))
            }
        };
        if n == 0 {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        let admits = |seq: i64| admitted.as_ref().is_none_or(|a| a.contains(&seq));

        let mut by_words: Vec<i64> = Vec::new();
        if !distinct.is_empty() && query.alpha < 1.0 {
            let rows = sqlx::query(
                "SELECT c.seq, c.word_count,
                        ARRAY(SELECT COALESCE(c.freqs[array_position(c.terms, q.t)], 0)
                              FROM unnest($3::text[]) WITH ORDINALITY AS q(t, o) ORDER BY q.o)
                 FROM loom_chunks c
                 WHERE c.user_id = $1 AND c.collection = $2 AND c.terms && $3::text[]",
            )
            .bind(user.as_str())
            .bind(collection)
            .bind(&distinct)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let mut matches = Vec::with_capacity(rows.len());
            for row in &rows {
                let seq: i64 = row.try_get(0).map_err(db)?;
                if admits(seq) {
                    matches.push(Match { seq, len: row.try_get(1).map_err(db)?, tf: row.try_get(2).map_err(db)? });
                }
            }
            by_words = rank_words(&said, &distinct, &matches, n, total, k);
        }

        let mut by_meaning: Vec<i64> = Vec::new();
        if let Some(q) = vector.filter(|v| !v.is_empty() && query.alpha > 0.0) {
            let pgvector = self.uses_pgvector() && embeddable(q);
            // Distance below 1 is similarity above 0; NaN (a zero vector) is not below 1. `<=>`
            // fails on vectors of different dimensions, and the planner may compute it before
            // any filter: the `CASE` leaves other dimensions out (NULL) first.
            let nearest = "SELECT seq FROM (
                     SELECT seq, CASE WHEN vector_dims(embedding) = $6 THEN embedding <=> $3::real[]::vector END AS distance
                     FROM loom_chunks
                     WHERE user_id = $1 AND collection = $2 AND ($4::bigint[] IS NULL OR seq = ANY($4))
                       AND embedding IS NOT NULL AND vector_dims(embedding) = $6
                 ) s
                 WHERE distance < 1 ORDER BY distance, seq DESC LIMIT $5";
            let plain = "SELECT seq FROM (
                     SELECT seq, (SELECT sum(a::float8 * b::float8)
                                         / NULLIF(sqrt(sum(a::float8 * a::float8)) * sqrt(sum(b::float8 * b::float8)), 0)
                                  FROM unnest(vector, $3::real[]) AS t(a, b)) AS similarity
                     FROM loom_chunks
                     WHERE user_id = $1 AND collection = $2 AND ($4::bigint[] IS NULL OR seq = ANY($4))
                       AND vector IS NOT NULL AND cardinality(vector) = cardinality($3::real[])
                 ) s
                 WHERE similarity > 0 ORDER BY similarity DESC, seq DESC LIMIT $5";
            let keys: Option<Vec<i64>> = admitted.as_ref().map(|a| a.iter().copied().collect());
            let mut nearest = sqlx::query(if pgvector { nearest } else { plain })
                .bind(user.as_str())
                .bind(collection)
                .bind(q)
                .bind(keys)
                .bind(i64::try_from(k).unwrap_or(i64::MAX));
            if pgvector {
                nearest = nearest.bind(i32::try_from(q.len()).unwrap_or(i32::MAX));
            }
            for row in nearest.fetch_all(&mut *tx).await.map_err(db)? {
                by_meaning.push(row.try_get(0).map_err(db)?);
            }
        }

        // The candidates: the word matches in their order, then the meaning matches not among them.
        let mut candidates: Vec<i64> = by_words.clone();
        let mut position: HashMap<i64, usize, RandomState> =
            by_words.iter().enumerate().map(|(i, &seq)| (seq, i)).collect();
        let word_ranks: Vec<usize> = (0..by_words.len()).collect();
        let mut meaning_ranks = Vec::with_capacity(by_meaning.len());
        for seq in by_meaning {
            let i = *position.entry(seq).or_insert_with(|| {
                candidates.push(seq);
                candidates.len() - 1
            });
            meaning_ranks.push(i);
        }
        let fused = fuse(&word_ranks, &meaning_ranks, query.alpha, query.limit);
        let keys: Vec<i64> = fused.iter().filter_map(|(i, ..)| candidates.get(*i).copied()).collect();
        let mut held: HashMap<i64, (Chunk, Option<Vec<f32>>), RandomState> = HashMap::default();
        if !keys.is_empty() {
            let rows = sqlx::query(concat!(
                "SELECT ",
                chunk_columns!(),
                ", seq, CASE WHEN $4 THEN vector END FROM loom_chunks
                 WHERE user_id = $1 AND collection = $2 AND seq = ANY($3)"
            ))
            .bind(user.as_str())
            .bind(collection)
            .bind(&keys)
            .bind(query.with_vectors)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            for row in &rows {
                held.insert(row.try_get(7).map_err(db)?, (chunk(row)?, row.try_get(8).map_err(db)?));
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(fused
            .into_iter()
            .filter_map(|(i, score, word_rank, meaning_rank)| {
                let (chunk, vector) = held.remove(candidates.get(i)?)?;
                Some(Hit { chunk, score, word_rank, meaning_rank, vector })
            })
            .collect())
    }

    async fn export(&self, user: &UserId) -> Result<Vec<(String, Chunk)>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            chunk_columns!(),
            ", collection FROM loom_chunks WHERE user_id = $1 ORDER BY collection, seq"
        ))
        .bind(user.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(|row| Ok((row.try_get(7).map_err(db)?, chunk(row)?))).collect()
    }

    async fn forget(&self, user: &UserId) -> Result<usize, StoreError> {
        let removed = sqlx::query("DELETE FROM loom_chunks WHERE user_id = $1")
            .bind(user.as_str())
            .execute(self.pool())
            .await
            .map_err(db)?
            .rows_affected();
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::rank::Bm25;

    #[test]
    fn a_chunks_words_are_counted_as_recall_splits_them() {
        let (terms, freqs, n) = terms("Night trains: the night-train, ann@example.com, 3.5");
        assert_eq!(terms, ["night", "trains", "the", "train", "ann", "example", "com", "3", "5"]);
        assert_eq!(freqs, [2, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(n, 10);
    }

    #[test]
    fn word_scores_are_those_of_bm25_over_the_whole_collection() {
        let texts = ["the loom weaves", "rust rust rust and more words here", "a loom in rust", "nothing at all"];
        let said: Vec<String> = words("rust loom rust").collect();
        let distinct: Vec<String> = vec!["rust".into(), "loom".into()];
        let mut matches = Vec::new();
        let mut total = 0u64;
        for (seq, t) in texts.iter().enumerate() {
            let (terms, freqs, len) = terms(t);
            total += len as u64;
            let tf = distinct
                .iter()
                .map(|d| terms.iter().position(|w| w == d).and_then(|i| freqs.get(i).copied()).unwrap_or(0))
                .collect::<Vec<_>>();
            if tf.iter().any(|f| *f > 0) {
                matches.push(Match { seq: seq as i64, len, tf });
            }
        }
        let ranked = rank_words(&said, &distinct, &matches, texts.len(), total, 10);
        // The index the process builds over every text, scored the same way.
        let index = Bm25::new(&said, texts.iter().copied());
        let mut expected: Vec<(f64, i64)> =
            (0..texts.len()).map(|i| (index.score(i), i as i64)).filter(|(s, _)| *s > 0.0).collect();
        expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        assert_eq!(ranked, expected.iter().map(|(_, s)| *s).collect::<Vec<_>>());
        assert_eq!(ranked.first(), Some(&2), "the short chunk with both words wins");
        assert_eq!(rank_words(&said, &distinct, &matches, texts.len(), total, 1).len(), 1);
    }

    #[test]
    fn pgvector_holds_only_finite_vectors_it_can_store() {
        assert!(embeddable(&[0.5, 1.0]));
        assert!(!embeddable(&[]) && !embeddable(&[f32::NAN]) && !embeddable(&vec![0.0; 16_001]));
    }
}
