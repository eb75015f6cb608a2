//! Chunks in SQLite: the same file as the sessions, journals and memory. Search ranks in the
//! process, over an index of the user's own chunks read from the file once and kept up to date
//! by the user's revision, as memory recall does.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError};

use foldhash::fast::RandomState;
use rusqlite::types::ValueRef;
use rusqlite::{Row, params};

use super::store::{Hit, SearchQuery, StoredChunk, VectorStore};
use super::{Chunk, Metadata};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;
use crate::session::SqliteStore;
use crate::session::sqlite::{db, error};

const COLUMNS: &str = "id, document, idx, text, start_byte, end_byte, metadata";

fn corrupt(id: &str, e: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("chunk `{id}` is unreadable: {e}"))
}

fn chunk(row: &Row<'_>) -> rusqlite::Result<Result<Chunk, StoreError>> {
    let id: String = row.get(0)?;
    let metadata: String = row.get(6)?;
    let start: i64 = row.get(4)?;
    let end: i64 = row.get(5)?;
    let index: i64 = row.get(2)?;
    let parsed = (|| {
        let metadata: Metadata = serde_json::from_str(&metadata).map_err(|e| corrupt(&id, e))?;
        let number = |n: i64| usize::try_from(n).map_err(|e| corrupt(&id, e));
        Ok(Chunk {
            document: row.get(1).map_err(db)?,
            index: u32::try_from(index).map_err(|e| corrupt(&id, e))?,
            text: row.get(3).map_err(db)?,
            start: number(start)?,
            end: number(end)?,
            metadata,
            id: id.clone(),
        })
    })();
    Ok(parsed)
}

fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn floats(id: &str, bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(corrupt(id, "its vector's length is not a multiple of 4"));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// The rowids of the user's chunks in `collection` whose metadata passes `query`'s filter.
fn admitted(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    collection: &str,
    filter: &super::Filter,
) -> Result<HashSet<i64, RandomState>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT rowid, id, metadata FROM loom_chunks WHERE user = ?1 AND collection = ?2")
        .map_err(db)?;
    let mut rows = stmt.query(params![user, collection]).map_err(db)?;
    let mut out = HashSet::default();
    while let Some(row) = rows.next().map_err(db)? {
        let rowid: i64 = row.get(0).map_err(db)?;
        let text = row.get_ref(2).map_err(db)?.as_str().map_err(|e| db(e.into()))?;
        let metadata: Metadata = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                let id: String = row.get(1).map_err(db)?;
                return Err(corrupt(&id, e));
            }
        };
        if filter.matches(&metadata) {
            out.insert(rowid);
        }
    }
    Ok(out)
}

#[async_trait::async_trait]
impl VectorStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn upsert(&self, user: &UserId, collection: &str, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        let (user, collection) = (user.to_string(), collection.to_owned());
        let rows = chunks
            .iter()
            .map(|c| {
                let metadata = serde_json::to_string(&c.chunk.metadata)
                    .map_err(|e| error(StoreErrorKind::Other, format!("chunk `{}`: {e}", c.chunk.id)))?;
                Ok((c.chunk.clone(), metadata, c.vector.as_deref().map(blob)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            {
                let mut same = tx
                    .prepare_cached(
                        "SELECT 1 FROM loom_chunks WHERE user = ?1 AND collection = ?2 AND id = ?3
                         AND document = ?4 AND idx = ?5 AND text = ?6 AND start_byte = ?7 AND end_byte = ?8
                         AND metadata = ?9 AND vector IS ?10",
                    )
                    .map_err(db)?;
                let mut delete = tx
                    .prepare_cached("DELETE FROM loom_chunks WHERE user = ?1 AND collection = ?2 AND id = ?3")
                    .map_err(db)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO loom_chunks (user, collection, id, document, idx, text, start_byte, end_byte,
                                                  metadata, vector)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(db)?;
                for (c, metadata, vector) in &rows {
                    let (start, end) = (c.start as i64, c.end as i64);
                    let values =
                        params![user, collection, c.id, c.document, c.index, c.text, start, end, metadata, vector];
                    // A chunk kept as it is stays (its index entry with it).
                    if same.exists(values).map_err(db)? {
                        continue;
                    }
                    delete.execute(params![user, collection, c.id]).map_err(db)?;
                    insert.execute(values).map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn chunk_ids(&self, user: &UserId, collection: &str, document: &str) -> Result<Vec<String>, StoreError> {
        let (user, collection, document) = (user.to_string(), collection.to_owned(), document.to_owned());
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM loom_chunks WHERE user = ?1 AND collection = ?2 AND document = ?3 ORDER BY idx, rowid",
                )
                .map_err(db)?;
            let rows = stmt.query_map(params![user, collection, document], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(db)
        })
        .await
    }

    async fn delete(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<usize, StoreError> {
        let (user, collection, ids) = (user.to_string(), collection.to_owned(), ids.to_vec());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let mut removed = 0;
            {
                let mut stmt = tx
                    .prepare_cached("DELETE FROM loom_chunks WHERE user = ?1 AND collection = ?2 AND id = ?3")
                    .map_err(db)?;
                for id in &ids {
                    removed += stmt.execute(params![user, collection, id]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)?;
            Ok(removed)
        })
        .await
    }

    async fn get(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<Vec<Chunk>, StoreError> {
        let (user, collection, ids) = (user.to_string(), collection.to_owned(), ids.to_vec());
        self.with(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM loom_chunks WHERE user = ?1 AND collection = ?2 AND id = ?3");
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let mut rows = stmt.query_map(params![user, collection, id], chunk).map_err(db)?;
                if let Some(row) = rows.next() {
                    out.push(row.map_err(db)??);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn count(&self, user: &UserId, collection: &str) -> Result<usize, StoreError> {
        let (user, collection) = (user.to_string(), collection.to_owned());
        self.with(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT count(*) FROM loom_chunks WHERE user = ?1 AND collection = ?2")
                .map_err(db)?
                .query_row(params![user, collection], |r| r.get(0))
                .map_err(db)?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn search(
        &self,
        user: &UserId,
        collection: &str,
        query: &SearchQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Hit>, StoreError> {
        let (user, collection, query) = (user.to_string(), collection.to_owned(), query.clone());
        let vector = vector.map(<[f32]>::to_vec);
        let cache = Arc::clone(&self.chunks);
        self.with(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let admitted = match &query.filter {
                Some(f) => Some(admitted(&tx, &user, &collection, f)?),
                None => None,
            };
            let found = {
                let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
                let index = cache.index(&tx, &user)?;
                let admits = |key: i64| admitted.as_ref().is_none_or(|a| a.contains(&key));
                let keys: Option<&dyn Fn(i64) -> bool> = admitted.as_ref().map(|_| &admits as &dyn Fn(i64) -> bool);
                index.search(&collection, &query.text, vector.as_deref(), query.alpha, query.limit, keys)
            };
            let mut out = Vec::with_capacity(found.len());
            {
                let sql = format!("SELECT {COLUMNS}, vector FROM loom_chunks WHERE rowid = ?1");
                let mut stmt = tx.prepare_cached(&sql).map_err(db)?;
                for (rowid, score, word_rank, meaning_rank) in found {
                    let mut rows = stmt.query(params![rowid]).map_err(db)?;
                    let Some(row) = rows.next().map_err(db)? else { continue };
                    let chunk = chunk(row).map_err(db)??;
                    let vector = match row.get_ref(7).map_err(db)? {
                        ValueRef::Blob(b) if query.with_vectors => Some(floats(&chunk.id, b)?),
                        _ => None,
                    };
                    out.push(Hit { chunk, score, word_rank, meaning_rank, vector });
                }
            }
            tx.commit().map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn export(&self, user: &UserId) -> Result<Vec<(String, Chunk)>, StoreError> {
        let user = user.to_string();
        self.with(move |conn| {
            let sql =
                format!("SELECT {COLUMNS}, collection FROM loom_chunks WHERE user = ?1 ORDER BY collection, rowid");
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows =
                stmt.query_map(params![user], |r| Ok(chunk(r)?.map(|c| (r.get::<_, String>(7), c)))).map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (collection, chunk) = row.map_err(db)??;
                out.push((collection.map_err(db)?, chunk));
            }
            Ok(out)
        })
        .await
    }

    async fn forget(&self, user: &UserId) -> Result<usize, StoreError> {
        let user = user.to_string();
        let cache = Arc::clone(&self.chunks);
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let removed = tx.execute("DELETE FROM loom_chunks WHERE user = ?1", params![user]).map_err(db)?;
            tx.execute("DELETE FROM loom_chunk_revisions WHERE user = ?1", params![user]).map_err(db)?;
            tx.commit().map_err(db)?;
            cache.lock().unwrap_or_else(PoisonError::into_inner).drop_user(&user);
            Ok(removed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_odd_lengths_are_corrupt() {
        let v = [0.5f32, -1.25, 3.0];
        assert_eq!(floats("c", &blob(&v)).ok(), Some(v.to_vec()));
        let err = floats("c", &[0, 1, 2]).err().map(|e| e.kind());
        assert_eq!(err, Some(StoreErrorKind::Corrupt));
    }
}
