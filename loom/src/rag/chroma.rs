//! Chunks in Chroma, over the HTTP client of [`ChromaMemory`]: one collection, every record
//! keyed and filtered by its user and its corpus collection; meaning ranked by Chroma's vector
//! query, words by BM25 in the process.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use foldhash::fast::RandomState;
use serde_json::{Map, Value, json};

use super::store::{Filter, Hit, SearchQuery, StoredChunk, VectorStore};
use super::{Chunk, Metadata};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;
use crate::memory::ChromaMemory;
use crate::memory::chroma::api::{BACKEND, Collection, Record, Write, corrupt, error};
use crate::memory::index::CANDIDATES;
use crate::memory::rank::{fuse, rank_by_words};

/// The placeholder vectors' dimension while the chunks' collection has none (the hashing
/// embedder's default, as for episodes).
const DEFAULT_DIMS: usize = 256;

/// A distance past which a vector is no closer than an orthogonal one (a cosine similarity of
/// 0, which a search does not count as a match).
const FAR: f64 = 1.0 - 1e-6;

/// The separator of a record id's parts: no user id contains it.
const SEP: char = '\u{1f}';

/// A record's id: the user, then the collection (after its length, so no collection name can
/// reach into the chunk id), then the chunk id.
fn key(user: &UserId, collection: &str, id: &str) -> String {
    format!("{}{SEP}{}:{collection}{SEP}{id}", user.as_str(), collection.len())
}

fn eq(field: &str, value: impl Into<Value>) -> Value {
    json!({ field: { "$eq": value.into() } })
}

/// All of `clauses` (at least one), as one `where`.
fn all(mut clauses: Vec<Value>) -> Value {
    if clauses.len() == 1 { clauses.remove(0) } else { json!({ "$and": clauses }) }
}

/// Any of `clauses` (at least one), as one `where`.
fn any(mut clauses: Vec<Value>) -> Value {
    if clauses.len() == 1 { clauses.remove(0) } else { json!({ "$or": clauses }) }
}

/// Whether a vector can be compared: not empty, finite, not all zero.
fn usable(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)
}

/// The flat field of metadata key `key` holding `value`, and the value as Chroma holds it:
/// `s.{key}` for text, `n.{key}` for numbers (as 64-bit floats, as filters compare them),
/// `b.{key}` for booleans; `None` for anything else.
fn flat(key: &str, value: &Value) -> Option<(String, Value)> {
    match value {
        Value::String(_) => Some((format!("s.{key}"), value.clone())),
        Value::Number(n) => Some((format!("n.{key}"), Value::from(n.as_f64()?))),
        Value::Bool(_) => Some((format!("b.{key}"), value.clone())),
        _ => None,
    }
}

/// The field that marks a metadata key whose value is a list.
fn list_field(key: &str) -> String {
    format!("l.{key}")
}

/// The flat fields of `values` at `key`, each with its values (those without one left out).
fn by_field<'v>(key: &str, values: impl Iterator<Item = &'v Value>) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for (field, v) in values.filter_map(|v| flat(key, v)) {
        match out.iter_mut().find(|(f, _)| *f == field) {
            Some((_, vs)) => vs.push(v),
            None => out.push((field, vec![v])),
        }
    }
    out
}

/// `{field: {one: v}}` for one value, `{field: {many: [..]}}` for several.
fn test(field: String, mut values: Vec<Value>, one: &str, many: &str) -> Value {
    if values.len() == 1 { json!({ field: { one: values.remove(0) } }) } else { json!({ field: { many: values } }) }
}

/// A `where` that every chunk `values` could equal at `key` passes: the flat fields of the
/// values, and the keys holding a list (their elements are tested in the process). `None` when
/// a value has no flat field (`null`, a list, an object) or there is none.
fn equal_any(key: &str, values: &[Value]) -> Option<Value> {
    if values.is_empty() || values.iter().any(|v| flat(key, v).is_none()) {
        return None;
    }
    let mut clauses: Vec<Value> =
        by_field(key, values.iter()).into_iter().map(|(field, vs)| test(field, vs, "$eq", "$in")).collect();
    clauses.push(eq(&list_field(key), true));
    Some(any(clauses))
}

/// A `where` that every chunk whose `key` equals none of `values` passes. Chroma's `$ne` and
/// `$nin` pass a record without the field, so a value of another type, a list, or no value at
/// all passes too; values without a flat field are left to the process.
fn equal_none(key: &str, values: &[Value]) -> Option<Value> {
    let clauses: Vec<Value> =
        by_field(key, values.iter()).into_iter().map(|(field, vs)| test(field, vs, "$ne", "$nin")).collect();
    (!clauses.is_empty()).then(|| all(clauses))
}

/// A Chroma `where` that every chunk `filter` admits passes, or `None` when no clause can say
/// it. It may pass more (a list-valued key, an operator Chroma lacks): the filter itself is
/// tested on every chunk read.
fn superset(filter: &Filter) -> Option<Value> {
    let order = |key: &str, op: &str, value: &Value| match value {
        Value::Number(n) => Some(json!({ format!("n.{key}"): { op: n.as_f64()? } })),
        // Chroma compares numbers only.
        _ => None,
    };
    match filter {
        Filter::Eq(k, v) => equal_any(k, std::slice::from_ref(v)),
        Filter::In(k, vs) => equal_any(k, vs),
        Filter::Ne(k, v) => equal_none(k, std::slice::from_ref(v)),
        Filter::NotIn(k, vs) => equal_none(k, vs),
        Filter::Gt(k, v) => order(k, "$gt", v),
        Filter::Gte(k, v) => order(k, "$gte", v),
        Filter::Lt(k, v) => order(k, "$lt", v),
        Filter::Lte(k, v) => order(k, "$lte", v),
        Filter::Exists(..) | Filter::Not(_) => None,
        Filter::And(fs) => {
            let parts: Vec<Value> = fs.iter().filter_map(superset).collect();
            (!parts.is_empty()).then(|| all(parts))
        }
        Filter::Or(fs) => {
            let parts: Option<Vec<Value>> = fs.iter().map(superset).collect();
            parts.filter(|p| !p.is_empty()).map(any)
        }
    }
}

/// The metadata of a chunk's record: who and where it is, the chunk's metadata as JSON
/// (`meta`), and its keys as flat fields for `where`.
fn metadata(
    user: &UserId,
    collection: &str,
    c: &StoredChunk,
    vector: bool,
    at: i64,
) -> Result<Map<String, Value>, StoreError> {
    let chunk = &c.chunk;
    let number =
        |n: usize| i64::try_from(n).map_err(|e| error(StoreErrorKind::Other, format!("chunk `{}`: {e}", chunk.id)));
    let meta = serde_json::to_string(&chunk.metadata).map_err(|e| {
        error(StoreErrorKind::Other, format!("chunk `{}`: its metadata cannot be written: {e}", chunk.id))
    })?;
    let mut m = Map::new();
    for (k, v) in &chunk.metadata {
        if let Some((field, v)) = flat(k, v) {
            m.insert(field, v);
        } else if v.is_array() {
            m.insert(list_field(k), Value::Bool(true));
        }
    }
    m.insert("user".into(), user.as_str().into());
    m.insert("collection".into(), collection.into());
    m.insert("id".into(), chunk.id.clone().into());
    m.insert("document".into(), chunk.document.clone().into());
    m.insert("index".into(), chunk.index.into());
    m.insert("start".into(), number(chunk.start)?.into());
    m.insert("end".into(), number(chunk.end)?.into());
    m.insert("meta".into(), meta.into());
    m.insert("vector".into(), vector.into());
    m.insert("at".into(), at.into());
    Ok(m)
}

/// A chunk as read back, with what orders and ranks it.
struct Read {
    collection: String,
    chunk: Chunk,
    /// When it was written (milliseconds since the epoch).
    at: i64,
    /// Whether its embedding is its own (not a placeholder).
    vector: bool,
}

/// The chunk of record `r`, which must be `user`'s (and in `collection`, when given).
fn read(r: &Record, user: &UserId, collection: Option<&str>) -> Result<Read, StoreError> {
    let bad = |problem: &str| corrupt("chunk", &r.id, problem);
    let text = |field: &str| r.metadata.get(field).and_then(Value::as_str);
    let int = |field: &str| r.metadata.get(field).and_then(Value::as_i64);
    if text("user") != Some(user.as_str()) {
        return Err(bad("its `user` is missing or not the user it was read for"));
    }
    let name = text("collection").ok_or_else(|| bad("it has no `collection`"))?;
    if collection.is_some_and(|c| c != name) {
        return Err(bad("its `collection` is not the one it was read for"));
    }
    let id = text("id").ok_or_else(|| bad("it has no `id`"))?;
    if key(user, name, id) != r.id {
        return Err(bad("its user, collection or id is not the record's"));
    }
    let position = |field: &str| {
        int(field).and_then(|n| usize::try_from(n).ok()).ok_or_else(|| bad(&format!("its `{field}` is not a position")))
    };
    let metadata: Metadata = match r.metadata.get("meta") {
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| corrupt("chunk", &r.id, e))?,
        _ => return Err(bad("its `meta` is missing or not text")),
    };
    let chunk = Chunk {
        id: id.to_owned(),
        document: text("document").ok_or_else(|| bad("it has no `document`"))?.to_owned(),
        index: int("index").and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad("its `index` is not a position"))?,
        text: r.document.clone().ok_or_else(|| bad("it has no text"))?,
        start: position("start")?,
        end: position("end")?,
        metadata,
    };
    Ok(Read {
        collection: name.to_owned(),
        chunk,
        at: int("at").ok_or_else(|| bad("its `at` is not an integer"))?,
        vector: r.metadata.get("vector") == Some(&Value::Bool(true)),
    })
}

/// The chunks of `records`, oldest first (equal times in the server's order, the order they
/// were written).
fn oldest_first(records: &[Record], user: &UserId, collection: Option<&str>) -> Result<Vec<Read>, StoreError> {
    let mut out = records.iter().map(|r| read(r, user, collection)).collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|r| r.at);
    Ok(out)
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl ChromaMemory {
    /// The chunks' collection, got or made on first use.
    async fn chunk_collection(&self) -> Result<&Collection, StoreError> {
        self.chunks
            .get_or_try_init(|| async {
                let name = format!("{}_chunks", self.prefix);
                let (collection, dims, space) =
                    self.api.collection(&name, json!({ "hnsw": { "space": "cosine" } })).await?;
                if let Some(space) = space.filter(|s| s != "cosine") {
                    return Err(error(
                        StoreErrorKind::Incompatible,
                        format!(
                            "the collection `{name}` measures `{space}` distance; Loom's chunks need `cosine` \
                             (choose another prefix)"
                        ),
                    ));
                }
                if let Some(d) = dims {
                    self.chunk_dims.store(d, Ordering::Relaxed);
                }
                Ok(collection)
            })
            .await
    }

    /// The records of `ids` in `collection`, `max_batch` ids a request.
    async fn records_of(&self, collection: &Collection, ids: &[String]) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(self.max_batch.max(1)) {
            out.extend(self.api.get_ids(collection, batch).await?);
        }
        Ok(out)
    }
}

/// Chunks in a Chroma server (features `chroma` and `rag`), in the tenant and database of the
/// memory, in one collection `{prefix}_chunks` (cosine distance), made the first time a corpus
/// uses the store.
///
/// # Records
///
/// A chunk is one record: its text is the document, its vector the embedding, and its id
/// `{user}\u{1f}{length of the collection name}:{collection}\u{1f}{chunk id}`, so two users',
/// or two collections', ids never meet. Its metadata holds `user`, `collection`, `id`,
/// `document`, `index`, `start`, `end`, `at` (when it was written), `vector` (whether the
/// embedding is the chunk's own), and `meta`, the chunk's metadata as JSON, which is what is
/// read back. Chroma's metadata values are scalars, so each key of the chunk's metadata is
/// also kept flat for `where`: `s.{key}` for text, `n.{key}` for numbers (as 64-bit floats),
/// `b.{key}` for booleans, and `l.{key}: true` for a list. Every read filters on `user` and
/// `collection`, and every record read is checked to be the user's and the collection's.
///
/// Chroma requires an embedding per record and one dimension per collection: a chunk kept
/// without a vector (a corpus without an embedder, or a vector that is all zero or not
/// finite) gets a placeholder of the collection's dimension (256 until it has one) and is
/// found by words only. Every corpus under one prefix shares the dimension: corpora with
/// embedders of another dimension need their own prefix (Chroma refuses their vectors).
///
/// # Search
///
/// The [`Filter`] is translated into Chroma's `where` as far as Chroma can say it (`$eq`,
/// `$ne`, `$in`, `$nin`, and `$gt`, `$gte`, `$lt`, `$lte` on numbers, under `$and` and `$or`),
/// never excluding a chunk it admits; the rest (`Exists`, `Not`, comparisons of text, the
/// elements of list-valued keys) is left out of the `where`. Every chunk of the collection
/// the `where` passes is read (text and metadata, a thousand a page), tested by
/// [`Filter::matches`], and the chunks admitted are ranked by BM25 in the process with their
/// own statistics, as in [`InMemoryVectorStore`](super::InMemoryVectorStore). Meaning: Chroma's vector
/// query under the same `where`, for the 200 nearest (or the query's limit, if more), asking
/// for as many more as the `where` passes chunks the filter does not admit, so the nearest
/// admitted ones are all among them; a cosine similarity of (nearly) 0 is no match. The two
/// rankings are fused by reciprocal rank; equal scores go to the chunk written later. Reading
/// every chunk the `where` passes is the scale limit: fine for tens of thousands of chunks per
/// collection, slow for millions.
///
/// # What is atomic
///
/// Chroma has no transactions. `upsert` reads the records it replaces (to remove the flat
/// fields of metadata keys that are gone: Chroma's upsert keeps fields it is not given), then
/// writes every chunk in one request when they fit the server's batch size (in several
/// otherwise: a failure part way leaves the earlier batches written, and upserting again
/// finishes it). A user's upserts and `forget` are serialised within one `ChromaMemory`;
/// across processes, two upserts of one chunk at once may leave a flat field of the other's
/// metadata, which a filtered search then reads and tests like any other. `delete` and
/// `forget` count what they find, then delete it by id (`delete`) or by the user's `where`
/// (`forget`, so a chunk written meanwhile goes too). A search reads the words and queries the
/// vectors in two requests: a chunk written between them is left out of that search.
#[async_trait::async_trait]
impl VectorStore for ChromaMemory {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn upsert(&self, user: &UserId, collection: &str, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let _serial = self.lock(user).await;
        let records = self.chunk_collection().await?;
        let mut dims = self.chunk_dims.load(Ordering::Relaxed);
        if dims == 0 {
            // Another process may have kept the first vector since.
            dims = self.api.dimension(records).await?.unwrap_or(0);
        }
        let own = chunks.iter().filter_map(|c| c.vector.as_deref().filter(|v| usable(v)));
        let placeholder = {
            let n = match dims {
                0 => own.clone().next().map_or(DEFAULT_DIMS, <[f32]>::len),
                d => d,
            };
            let mut v = vec![0.0; n.max(1)];
            if let Some(first) = v.first_mut() {
                *first = 1.0;
            }
            v
        };
        // The last of one id wins, as it would one call at a time.
        let mut at_id: HashMap<String, usize, RandomState> = HashMap::default();
        let mut writes: Vec<Write> = Vec::with_capacity(chunks.len());
        let at = now_ms();
        for c in chunks {
            let vector = c.vector.as_deref().filter(|v| usable(v));
            let write = Write {
                id: key(user, collection, &c.chunk.id),
                embedding: vector.map_or_else(|| placeholder.clone(), <[f32]>::to_vec),
                document: c.chunk.text.clone(),
                metadata: metadata(user, collection, c, vector.is_some(), at)?,
            };
            match at_id.get(&write.id).and_then(|&i| writes.get_mut(i)) {
                Some(earlier) => *earlier = write,
                None => {
                    at_id.insert(write.id.clone(), writes.len());
                    writes.push(write);
                }
            }
        }
        // Fields a replaced record has and its new metadata lacks are removed (set to null).
        let ids: Vec<String> = writes.iter().map(|w| w.id.clone()).collect();
        for old in self.records_of(records, &ids).await? {
            let Some(write) = at_id.get(&old.id).and_then(|&i| writes.get_mut(i)) else { continue };
            for field in old.metadata.keys() {
                if !write.metadata.contains_key(field) {
                    write.metadata.insert(field.clone(), Value::Null);
                }
            }
        }
        for batch in writes.chunks(self.max_batch.max(1)) {
            self.api.upsert(records, batch).await?;
        }
        if let Some(v) = own.clone().next() {
            self.chunk_dims.store(v.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    async fn chunk_ids(&self, user: &UserId, collection: &str, document: &str) -> Result<Vec<String>, StoreError> {
        let records = self.chunk_collection().await?;
        let filter = all(vec![eq("user", user.as_str()), eq("collection", collection), eq("document", document)]);
        let found = self.api.get_where(records, &filter, true).await?;
        let mut chunks = oldest_first(&found, user, Some(collection))?;
        chunks.sort_by_key(|r| r.chunk.index);
        Ok(chunks.into_iter().map(|r| r.chunk.id).collect())
    }

    async fn delete(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let records = self.chunk_collection().await?;
        let keys: Vec<String> =
            ids.iter().map(|id| key(user, collection, id)).collect::<HashSet<_>>().into_iter().collect();
        let found: Vec<String> = self.records_of(records, &keys).await?.into_iter().map(|r| r.id).collect();
        self.api.delete_ids(records, &found, self.max_batch).await?;
        Ok(found.len())
    }

    async fn get(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<Vec<Chunk>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.chunk_collection().await?;
        let keys: Vec<String> = ids.iter().map(|id| key(user, collection, id)).collect();
        let mut found: HashMap<String, Chunk, RandomState> = HashMap::default();
        for r in self.records_of(records, &keys).await? {
            found.insert(r.id.clone(), read(&r, user, Some(collection))?.chunk);
        }
        Ok(keys.iter().filter_map(|k| found.get(k).cloned()).collect())
    }

    async fn count(&self, user: &UserId, collection: &str) -> Result<usize, StoreError> {
        let records = self.chunk_collection().await?;
        let filter = all(vec![eq("user", user.as_str()), eq("collection", collection)]);
        Ok(self.api.get_where(records, &filter, false).await?.len())
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
        let records = self.chunk_collection().await?;
        let k = CANDIDATES.max(query.limit);
        let mut clauses = vec![eq("user", user.as_str()), eq("collection", collection)];
        clauses.extend(query.filter.as_ref().and_then(superset));
        let read_back = self.api.get_where(records, &all(clauses.clone()), true).await?;
        let passed = oldest_first(&read_back, user, Some(collection))?;
        // How many the `where` passes with their own vectors, admitted by the filter or not.
        let passed_with_vectors = passed.iter().filter(|r| r.vector).count();
        // Latest written first: equal scores go to the chunk written later.
        let admitted: Vec<Read> = passed
            .into_iter()
            .rev()
            .filter(|r| query.filter.as_ref().is_none_or(|f| f.matches(&r.chunk.metadata)))
            .collect();
        if admitted.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_words = if query.alpha < 1.0 {
            rank_by_words(&query.text, admitted.iter().map(|r| r.chunk.text.as_str()))
        } else {
            Vec::new()
        };
        by_words.truncate(k);

        let with_vectors = admitted.iter().filter(|r| r.vector).count();
        let dims = self.chunk_dims.load(Ordering::Relaxed);
        let mut by_meaning: Vec<(usize, f64)> = Vec::new();
        if let Some(q) =
            vector.filter(|q| usable(q) && query.alpha > 0.0 && with_vectors > 0 && (dims == 0 || q.len() == dims))
        {
            // Enough that the `k` nearest admitted chunks are among the answer, whatever the
            // `where` passes that the filter does not admit.
            let n = passed_with_vectors.min(k + (passed_with_vectors - with_vectors));
            let positions: HashMap<String, usize, RandomState> =
                admitted.iter().enumerate().map(|(i, r)| (key(user, collection, &r.chunk.id), i)).collect();
            clauses.push(eq("vector", true));
            for (id, distance) in self.api.query(records, q, &all(clauses), n).await? {
                // A chunk written after the words were read, or one the filter does not admit,
                // is left out.
                if let Some(&i) = positions.get(&id)
                    && distance < FAR
                {
                    by_meaning.push((i, distance));
                }
            }
            by_meaning.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            by_meaning.truncate(k);
        }
        let meaning: Vec<usize> = by_meaning.iter().map(|(i, _)| *i).collect();
        let fused = fuse(&by_words, &meaning, query.alpha, query.limit);
        let mut vectors: HashMap<String, Vec<f32>, RandomState> = HashMap::default();
        if query.with_vectors {
            let own: Vec<String> = fused
                .iter()
                .filter_map(|(i, ..)| admitted.get(*i))
                .filter(|r| r.vector)
                .map(|r| key(user, collection, &r.chunk.id))
                .collect();
            vectors.extend(self.api.embeddings(records, &own).await?);
        }
        Ok(fused
            .into_iter()
            .filter_map(|(i, score, word_rank, meaning_rank)| {
                let r = admitted.get(i)?;
                let vector = vectors.remove(&key(user, collection, &r.chunk.id));
                Some(Hit { chunk: r.chunk.clone(), score, word_rank, meaning_rank, vector })
            })
            .collect())
    }

    async fn export(&self, user: &UserId) -> Result<Vec<(String, Chunk)>, StoreError> {
        let records = self.chunk_collection().await?;
        let found = self.api.get_where(records, &eq("user", user.as_str()), true).await?;
        let mut chunks = oldest_first(&found, user, None)?;
        chunks.sort_by(|a, b| a.collection.cmp(&b.collection));
        Ok(chunks.into_iter().map(|r| (r.collection, r.chunk)).collect())
    }

    async fn forget(&self, user: &UserId) -> Result<usize, StoreError> {
        let _serial = self.lock(user).await;
        let records = self.chunk_collection().await?;
        let mine = eq("user", user.as_str());
        let n = self.api.get_where(records, &mine, false).await?.len();
        if n > 0 {
            self.api.delete_where(records, &mine).await?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn record_ids_of_two_users_or_collections_never_meet() {
        let ann = user("ann");
        assert_ne!(key(&ann, "a\u{1f}b", "c"), key(&ann, "a", "b\u{1f}c"));
        assert_ne!(key(&user("a/b"), "c", "d"), key(&user("a"), "b/c", "d"));
        assert_eq!(key(&ann, "docs", "x1"), "ann\u{1f}4:docs\u{1f}x1");
    }

    #[test]
    fn filters_become_a_where_that_never_excludes_an_admitted_chunk() {
        let f = |v: Value| Filter::from_json(&v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            superset(&f(json!({ "source": "a.md" }))),
            Some(json!({ "$or": [{ "s.source": { "$eq": "a.md" } }, { "l.source": { "$eq": true } }] }))
        );
        assert_eq!(superset(&f(json!({ "page": { "$gte": 2 } }))), Some(json!({ "n.page": { "$gte": 2.0 } })));
        assert_eq!(
            superset(&f(json!({ "k": ["a", 1, "b"] }))),
            Some(json!({ "$or": [
                { "s.k": { "$in": ["a", "b"] } },
                { "n.k": { "$eq": 1.0 } },
                { "l.k": { "$eq": true } },
            ] }))
        );
        assert_eq!(
            superset(&f(json!({ "lang": { "$nin": ["en", true, null] } }))),
            Some(json!({ "$and": [{ "s.lang": { "$ne": "en" } }, { "b.lang": { "$ne": true } }] }))
        );
        // What Chroma cannot say is left to the process, and an `or` with it is left whole.
        assert_eq!(superset(&f(json!({ "name": { "$gt": "m" } }))), None);
        assert_eq!(superset(&f(json!({ "k": { "$exists": true } }))), None);
        assert_eq!(superset(&f(json!({ "k": null }))), None);
        assert_eq!(superset(&f(json!({ "$or": [{ "a": 1 }, { "b": { "$exists": false } }] }))), None);
        assert_eq!(
            superset(&f(json!({ "$and": [{ "a": { "$lt": 3 } }, { "$not": { "b": 1 } }] }))),
            Some(json!({ "n.a": { "$lt": 3.0 } }))
        );
    }

    #[test]
    fn a_chunk_round_trips_through_its_record_and_another_users_is_refused() {
        let ann = user("ann");
        let mut meta = Metadata::new();
        meta.insert("source".into(), "a.md".into());
        meta.insert("page".into(), 2.into());
        meta.insert("tags".into(), json!(["x", "y"]));
        meta.insert("extra".into(), json!({ "deep": null }));
        let chunk = Chunk {
            id: "c1".into(),
            document: "a.md".into(),
            index: 3,
            text: "hello".into(),
            start: 10,
            end: 15,
            metadata: meta.clone(),
        };
        let stored = StoredChunk { chunk: chunk.clone(), vector: None };
        let m = metadata(&ann, "docs", &stored, false, 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.get("s.source"), Some(&json!("a.md")));
        assert_eq!(m.get("n.page"), Some(&json!(2.0)));
        assert_eq!(m.get("l.tags"), Some(&json!(true)));
        assert!(!m.contains_key("extra") && !m.keys().any(|k| k.ends_with(".extra")));
        let r = Record { id: key(&ann, "docs", "c1"), document: Some("hello".into()), metadata: m };
        let back = read(&r, &ann, Some("docs")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.chunk, back.collection.as_str(), back.at, back.vector), (chunk, "docs", 7, false));
        assert!(read(&r, &user("bob"), None).is_err());
        assert!(read(&r, &ann, Some("other")).is_err());
        let moved = Record { id: key(&ann, "other", "c1"), ..r };
        let e = read(&moved, &ann, None).err().map(|e| e.kind());
        assert_eq!(e, Some(StoreErrorKind::Corrupt));
    }
}
