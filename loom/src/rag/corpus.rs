//! A corpus: one collection of a [`VectorStore`] with its embedder and chunker — ingestion in
//! batches that can be resumed, and retrieval with fusion, diversity and reranking.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::chunk::Chunker;
use super::store::{Filter, Hit, SearchQuery, StoredChunk, VectorStore};
use super::{Chunk, Document};
use crate::agent::Citation;
use crate::error::Error;
use crate::id::UserId;
use crate::memory::{Embedder, HashingEmbedder};

/// Reorders retrieved hits, given the query: a cross-encoder, a model call, a business rule.
/// It may drop hits and change scores; the corpus keeps the order it returns.
#[async_trait::async_trait]
pub trait Reranker: Send + Sync + 'static {
    /// The hits, best first.
    async fn rerank(&self, query: &str, hits: Vec<Hit>) -> Result<Vec<Hit>, Error>;
}

/// What a [`Corpus::ingest`] did, and so far (in each progress report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IngestProgress {
    /// Documents chunked.
    pub documents: usize,
    /// Chunks embedded and stored.
    pub added: usize,
    /// Chunks already stored as they are (skipped: not embedded again).
    pub kept: usize,
    /// Chunks of earlier versions of the documents, removed.
    pub removed: usize,
    /// Batches of chunks embedded and stored.
    pub batches: usize,
}

/// A passage retrieved from a corpus: a chunk, its score, and how to cite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// The chunk.
    pub chunk: Chunk,
    /// Its score: the store's fused score, or the reranker's.
    pub score: f64,
    /// How to cite it.
    pub citation: Citation,
}

impl Passage {
    fn of(hit: Hit) -> Self {
        let citation = citation(&hit.chunk);
        Self { chunk: hit.chunk, score: hit.score, citation }
    }
}

/// The citation of a chunk: its id, its source, and where in the source it is (the page, the
/// heading path, the row or line).
pub fn citation(chunk: &Chunk) -> Citation {
    let meta = &chunk.metadata;
    let text = |key: &str| match meta.get(key) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let locator = if let Some(page) = text("page") {
        Some(format!("page {page}"))
    } else if let Some(serde_json::Value::Array(path)) = meta.get("heading_path") {
        let path: Vec<&str> = path.iter().filter_map(serde_json::Value::as_str).collect();
        (!path.is_empty()).then(|| path.join(" > "))
    } else if let Some(row) = text("row") {
        Some(format!("row {row}"))
    } else {
        text("line").map(|line| format!("line {line}"))
    };
    Citation {
        kind: "passage".into(),
        id: chunk.id.clone(),
        source: text("source").or_else(|| Some(chunk.document.clone())),
        locator,
        title: text("title"),
    }
}

/// A retrieval: the query and how to rank for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieve {
    /// The query.
    pub text: String,
    /// Passages returned (4 by default).
    pub limit: usize,
    /// The meaning ranking's weight in the fusion (0.5 by default: even).
    pub alpha: f64,
    /// Only chunks whose metadata passes.
    pub filter: Option<Filter>,
    /// Maximal marginal relevance with this `lambda` (1: relevance only, 0: diversity only),
    /// over [`candidates`](Self::candidates) hits.
    pub diversity: Option<f64>,
    /// Hits fetched for diversity and reranking (4 × the limit by default).
    pub candidates: Option<usize>,
}

impl Retrieve {
    /// Retrieval for `text` with the defaults.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), limit: 4, alpha: 0.5, filter: None, diversity: None, candidates: None }
    }

    /// At most `limit` passages.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The meaning ranking's weight, clamped to `0..=1` (0: BM25 only, 1: vectors only).
    #[must_use]
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = if alpha.is_nan() { 0.5 } else { alpha.clamp(0.0, 1.0) };
        self
    }

    /// Only chunks whose metadata passes `filter`.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Diversifies with maximal marginal relevance (`lambda` clamped to `0..=1`).
    #[must_use]
    pub fn diversity(mut self, lambda: f64) -> Self {
        self.diversity = Some(if lambda.is_nan() { 0.5 } else { lambda.clamp(0.0, 1.0) });
        self
    }

    /// Fetches `n` hits for diversity and reranking to choose from.
    #[must_use]
    pub fn candidates(mut self, n: usize) -> Self {
        self.candidates = Some(n);
        self
    }
}

impl From<&str> for Retrieve {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Retrieve {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

/// One collection of a [`VectorStore`], with the embedder that makes its vectors, the chunker
/// that cuts its documents, and optionally a reranker. Cheap to clone (shared).
///
/// ```
/// use loomflow::rag::{Corpus, Document};
/// use loomflow::UserId;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// let corpus = Corpus::in_memory();
/// let ann = UserId::new("ann")?;
/// let docs = [
///     Document::new("trains.md", "# Trains\nNight trains run from Paris to Vienna."),
///     Document::new("planes.md", "# Planes\nFlights to Vienna leave every hour."),
/// ];
/// let report = corpus.ingest(&ann, docs.clone()).await?;
/// assert_eq!((report.documents, report.kept), (2, 0));
/// // Ingesting the same documents again embeds nothing.
/// assert_eq!(corpus.ingest(&ann, docs).await?.kept, report.added);
///
/// let passages = corpus.retrieve(&ann, "night train to Vienna").await?;
/// assert_eq!(passages[0].citation.source.as_deref(), Some("trains.md"));
/// assert_eq!(passages[0].citation.locator.as_deref(), Some("Trains"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Corpus {
    store: Arc<dyn VectorStore>,
    collection: Arc<str>,
    embedder: Option<Arc<dyn Embedder>>,
    chunker: Arc<dyn Chunker>,
    reranker: Option<Arc<dyn Reranker>>,
    batch: usize,
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corpus")
            .field("store", &self.store.backend())
            .field("collection", &self.collection)
            .field("embedder", &self.embedder.as_ref().map(|e| e.name().to_owned()))
            .field("reranker", &self.reranker.is_some())
            .field("batch", &self.batch)
            .finish()
    }
}

impl Corpus {
    /// The collection `default` of `store`, with the hashing embedder and the Markdown chunker
    /// (800 characters, 100 of overlap).
    pub fn new(store: impl VectorStore) -> Self {
        Self::shared(Arc::new(store))
    }

    /// [`new`](Self::new) over a shared store.
    pub fn shared(store: Arc<dyn VectorStore>) -> Self {
        Self {
            store,
            collection: Arc::from("default"),
            embedder: Some(Arc::new(HashingEmbedder::default())),
            chunker: Arc::new(super::chunk::MarkdownChunker::default()),
            reranker: None,
            batch: 64,
        }
    }

    /// A corpus in the process ([`InMemoryVectorStore`](super::InMemoryVectorStore)).
    pub fn in_memory() -> Self {
        Self::new(super::InMemoryVectorStore::new())
    }

    /// Uses the collection `name` of the store.
    #[must_use]
    pub fn collection(mut self, name: impl Into<String>) -> Self {
        self.collection = Arc::from(name.into());
        self
    }

    /// Embeds with `embedder` instead of the hashing one. Ingest and retrieve with the same
    /// embedder: vectors of another length are never compared.
    #[must_use]
    pub fn embedder(mut self, embedder: impl Embedder) -> Self {
        self.embedder = Some(Arc::new(embedder));
        self
    }

    /// Ranks by words only (no vectors kept or compared).
    #[must_use]
    pub fn without_embedder(mut self) -> Self {
        self.embedder = None;
        self
    }

    /// Cuts documents with `chunker`.
    #[must_use]
    pub fn chunker(mut self, chunker: impl Chunker + 'static) -> Self {
        self.chunker = Arc::new(chunker);
        self
    }

    /// Reorders every retrieval's candidates with `reranker`.
    #[must_use]
    pub fn reranker(mut self, reranker: impl Reranker) -> Self {
        self.reranker = Some(Arc::new(reranker));
        self
    }

    /// Embeds and stores chunks `n` at a time (64 by default): one embedder call and one store
    /// transaction a batch.
    #[must_use]
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.collection
    }

    /// Chunks, embeds and stores `documents` for `user`. See [`ingest_with`](Self::ingest_with).
    pub async fn ingest(
        &self,
        user: &UserId,
        documents: impl IntoIterator<Item = Document>,
    ) -> Result<IngestProgress, Error> {
        self.ingest_with(user, documents, |_| {}).await
    }

    /// Chunks, embeds and stores `documents` for `user`, calling `progress` after each batch.
    ///
    /// A chunk already stored as it is (the same id: the same document, text and occurrence)
    /// is kept, not embedded again; the chunks of an earlier version of a document that the
    /// new version no longer has are removed once its new chunks are stored. So ingestion is
    /// resumable — run it again after a failure and it goes on where it stopped — and
    /// re-ingesting a changed document embeds only its changed chunks.
    pub async fn ingest_with(
        &self,
        user: &UserId,
        documents: impl IntoIterator<Item = Document>,
        mut progress: impl FnMut(&IngestProgress) + Send,
    ) -> Result<IngestProgress, Error> {
        let mut done = IngestProgress::default();
        let mut pending: Vec<Chunk> = Vec::with_capacity(self.batch);
        // Per document waiting for its last chunks to be stored: the stale ids to remove.
        let mut stale: Vec<Vec<String>> = Vec::new();
        let mut last: Option<IngestProgress> = None;
        for document in documents {
            let chunks = self.chunker.chunk(&document);
            let stored: HashSet<String> =
                self.store.chunk_ids(user, &self.collection, &document.id).await?.into_iter().collect();
            let fresh: HashSet<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
            stale.push(stored.iter().filter(|id| !fresh.contains(id.as_str())).cloned().collect());
            done.documents += 1;
            for chunk in chunks {
                if stored.contains(&chunk.id) {
                    done.kept += 1;
                    continue;
                }
                pending.push(chunk);
                if pending.len() >= self.batch {
                    self.store_batch(user, &mut pending, &mut done).await?;
                    // Every document before this one is stored whole.
                    let current = stale.pop();
                    self.remove_stale(user, &mut stale, &mut done).await?;
                    stale.extend(current);
                    progress(&done);
                    last = Some(done);
                }
            }
        }
        if !pending.is_empty() {
            self.store_batch(user, &mut pending, &mut done).await?;
        }
        self.remove_stale(user, &mut stale, &mut done).await?;
        // The last report has the totals.
        if last != Some(done) {
            progress(&done);
        }
        Ok(done)
    }

    async fn store_batch(
        &self,
        user: &UserId,
        pending: &mut Vec<Chunk>,
        done: &mut IngestProgress,
    ) -> Result<(), Error> {
        let chunks = std::mem::take(pending);
        let vectors = match &self.embedder {
            Some(embedder) => {
                let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
                let vectors = embedder.embed(&texts).await?;
                if vectors.len() != chunks.len() {
                    let message = format!("returned {} vectors for {} texts", vectors.len(), chunks.len());
                    let kind = crate::model::ModelErrorKind::InvalidResponse;
                    return Err(crate::model::ModelError::new(kind, embedder.name(), message).into());
                }
                vectors.into_iter().map(Some).collect()
            }
            None => vec![None; chunks.len()],
        };
        let stored: Vec<StoredChunk> =
            chunks.into_iter().zip(vectors).map(|(chunk, vector)| StoredChunk { chunk, vector }).collect();
        self.store.upsert(user, &self.collection, &stored).await?;
        done.added += stored.len();
        done.batches += 1;
        Ok(())
    }

    async fn remove_stale(
        &self,
        user: &UserId,
        stale: &mut Vec<Vec<String>>,
        done: &mut IngestProgress,
    ) -> Result<(), Error> {
        let ids: Vec<String> = stale.drain(..).flatten().collect();
        if !ids.is_empty() {
            done.removed += self.store.delete(user, &self.collection, &ids).await?;
        }
        Ok(())
    }

    /// Removes every chunk of document `id`; returns how many.
    pub async fn remove_document(&self, user: &UserId, id: &str) -> Result<usize, Error> {
        let ids = self.store.chunk_ids(user, &self.collection, id).await?;
        Ok(self.store.delete(user, &self.collection, &ids).await?)
    }

    /// How many chunks the collection holds for `user`.
    pub async fn count(&self, user: &UserId) -> Result<usize, Error> {
        Ok(self.store.count(user, &self.collection).await?)
    }

    /// The best passages for `query` (a text, or a [`Retrieve`] with its options): BM25 and
    /// vectors fused, then diversified and reranked when asked.
    pub async fn retrieve(&self, user: &UserId, query: impl Into<Retrieve>) -> Result<Vec<Passage>, Error> {
        let query = query.into();
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let vector = match &self.embedder {
            Some(embedder) if query.alpha > 0.0 || query.diversity.is_some() => {
                embedder.embed(&[query.text.as_str()]).await?.pop()
            }
            _ => None,
        };
        let widen = query.diversity.is_some() || self.reranker.is_some();
        let fetch = if widen { query.candidates.unwrap_or(query.limit * 4).max(query.limit) } else { query.limit };
        let mut search = SearchQuery::new(query.text.clone()).limit(fetch).alpha(query.alpha);
        search.filter = query.filter.clone();
        search.with_vectors = query.diversity.is_some();
        let mut hits = self.store.search(user, &self.collection, &search, vector.as_deref()).await?;
        if let Some(reranker) = &self.reranker {
            hits = reranker.rerank(&query.text, hits).await?;
        }
        if let (Some(lambda), Some(q)) = (query.diversity, vector.as_deref()) {
            hits = mmr(q, hits, lambda, query.limit);
        }
        hits.truncate(query.limit);
        Ok(hits.into_iter().map(Passage::of).collect())
    }

    /// Everything the collection holds for `user` (for a GDPR export, see also
    /// [`VectorStore::export`] for every collection).
    pub async fn export(&self, user: &UserId) -> Result<Vec<Chunk>, Error> {
        let all = self.store.export(user).await?;
        Ok(all.into_iter().filter(|(c, _)| *c == *self.collection).map(|(_, chunk)| chunk).collect())
    }
}

/// Every collection of a [`VectorStore`] as a user's personal data: what
/// [`Memory::cover`](crate::memory::Memory::cover) takes so that a GDPR export lists the
/// chunks of the documents a user ingested and a forget removes them.
#[derive(Clone)]
pub struct Documents(Arc<dyn VectorStore>);

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Documents").field(&self.0.backend()).finish()
    }
}

impl Documents {
    /// The documents of every collection of `store`.
    pub fn new(store: Arc<dyn VectorStore>) -> Self {
        Self(store)
    }
}

impl Corpus {
    /// The documents of every collection of this corpus's store, for
    /// [`Memory::cover`](crate::memory::Memory::cover).
    pub fn documents(&self) -> Documents {
        Documents(self.store.clone())
    }
}

#[async_trait::async_trait]
impl crate::memory::PersonalData for Documents {
    fn name(&self) -> &str {
        "documents"
    }

    async fn export(&self, user: &UserId) -> Result<serde_json::Value, crate::error::StoreError> {
        #[derive(Serialize)]
        struct Exported {
            collection: String,
            #[serde(flatten)]
            chunk: Chunk,
        }
        let chunks: Vec<Exported> =
            self.0.export(user).await?.into_iter().map(|(collection, chunk)| Exported { collection, chunk }).collect();
        serde_json::to_value(chunks).map_err(|e| {
            crate::error::StoreError::new(crate::error::StoreErrorKind::Other, self.0.backend(), e.to_string())
        })
    }

    async fn forget(&self, user: &UserId) -> Result<usize, crate::error::StoreError> {
        self.0.forget(user).await
    }
}

/// Maximal marginal relevance: picks `k` of `hits` one at a time, each maximising
/// `lambda × sim(query, hit) − (1 − lambda) × max sim(hit, picked)`. Hits without a vector
/// keep their place after those with one.
fn mmr(query: &[f32], hits: Vec<Hit>, lambda: f64, k: usize) -> Vec<Hit> {
    use crate::memory::rank::cosine;
    let (mut left, rest): (Vec<Hit>, Vec<Hit>) = hits.into_iter().partition(|h| h.vector.is_some());
    let relevance: Vec<f64> = left.iter().map(|h| h.vector.as_deref().map_or(0.0, |v| cosine(query, v))).collect();
    let mut relevance: Vec<(f64, f64)> = relevance.into_iter().map(|r| (r, f64::NEG_INFINITY)).collect();
    let mut picked: Vec<Hit> = Vec::with_capacity(k.min(left.len()));
    while picked.len() < k && !left.is_empty() {
        let score = |(r, most): (f64, f64)| {
            let redundancy = if most == f64::NEG_INFINITY { 0.0 } else { most };
            lambda * r - (1.0 - lambda) * redundancy
        };
        let Some(best) =
            (0..left.len()).max_by(|&a, &b| score(relevance[a]).total_cmp(&score(relevance[b])).then(b.cmp(&a)))
        else {
            break;
        };
        let hit = left.remove(best);
        relevance.remove(best);
        if let Some(v) = hit.vector.as_deref() {
            for (other, rel) in left.iter().zip(relevance.iter_mut()) {
                if let Some(o) = other.vector.as_deref() {
                    rel.1 = rel.1.max(cosine(v, o));
                }
            }
        }
        picked.push(hit);
    }
    picked.extend(rest);
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, v: Vec<f32>) -> Hit {
        let chunk = Chunk {
            id: id.into(),
            document: "d".into(),
            index: 0,
            text: id.into(),
            start: 0,
            end: id.len(),
            metadata: Default::default(),
        };
        Hit { chunk, score: 0.0, word_rank: None, meaning_rank: None, vector: Some(v) }
    }

    #[test]
    fn mmr_trades_relevance_for_diversity() {
        let q = [1.0, 0.0];
        // Two near-duplicates close to the query, and one less relevant but different.
        let hits = vec![hit("a", vec![1.0, 0.05]), hit("a2", vec![1.0, 0.06]), hit("b", vec![0.7, 0.7])];
        let ids = |hits: Vec<Hit>| hits.into_iter().map(|h| h.chunk.id).collect::<Vec<_>>();
        assert_eq!(ids(mmr(&q, hits.clone(), 1.0, 2)), ["a", "a2"]);
        assert_eq!(ids(mmr(&q, hits, 0.3, 2)), ["a", "b"]);
    }

    #[test]
    fn citations_say_where_a_chunk_is() {
        let mut c = hit("x", vec![]).chunk;
        c.metadata.insert("source".into(), "guide.pdf".into());
        c.metadata.insert("page".into(), 2.into());
        let cite = citation(&c);
        assert_eq!((cite.source.as_deref(), cite.locator.as_deref()), (Some("guide.pdf"), Some("page 2")));
        c.metadata.remove("page");
        c.metadata.insert("heading_path".into(), serde_json::json!(["Setup", "Linux"]));
        assert_eq!(citation(&c).locator.as_deref(), Some("Setup > Linux"));
    }
}
