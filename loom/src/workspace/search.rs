//! Search: a user's notes ranked in the process by words (BM25), by meaning (the workspace's
//! embedder) or both fused by reciprocal rank — the same on every backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::error::WorkspaceError;
use super::types::{Found, Note, SearchMode, SearchQuery};
use crate::id::UserId;
use crate::memory::Embedder;
use crate::memory::rank::{Bm25, cosine, fuse, rank_by_meaning, words};

/// One user's vectors: by slug, the version embedded and its vector.
type Vectors = HashMap<String, (u64, Arc<[f32]>)>;

/// The vectors of notes, by user and slug, with the version they were made from: a note is
/// embedded once per version, not once per search.
#[derive(Debug)]
pub(crate) struct VectorCache {
    by_user: Mutex<HashMap<UserId, Vectors>>,
    /// The most vectors kept, across users.
    capacity: usize,
}

impl Default for VectorCache {
    fn default() -> Self {
        Self { by_user: Mutex::default(), capacity: 100_000 }
    }
}

impl VectorCache {
    /// Forgets the user's vectors.
    pub(crate) fn forget(&self, user: &UserId) {
        self.by_user.lock().unwrap_or_else(PoisonError::into_inner).remove(user);
    }

    /// The vectors of `notes`, in order, embedding those not kept at their version; the
    /// user's vectors of notes not among `notes` are dropped.
    async fn vectors(
        &self,
        user: &UserId,
        notes: &[Note],
        embedder: &dyn Embedder,
    ) -> Result<Vec<Option<Arc<[f32]>>>, WorkspaceError> {
        let mut out: Vec<Option<Arc<[f32]>>> = {
            let mut cache = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
            let kept = cache.entry(user.clone()).or_default();
            kept.retain(|slug, _| notes.iter().any(|n| n.slug == *slug));
            notes
                .iter()
                .map(|n| kept.get(&n.slug).filter(|(v, _)| *v == n.version).map(|(_, vec)| Arc::clone(vec)))
                .collect()
        };
        let missing: Vec<usize> = (0..notes.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let texts: Vec<String> = missing.iter().map(|&i| notes[i].search_text()).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&refs).await.map_err(|e| {
            WorkspaceError::Store(crate::StoreError::new(
                crate::StoreErrorKind::Unavailable,
                "workspace",
                format!("the embedder `{}` failed: {e}; search with mode `bm25` instead", embedder.name()),
            ))
        })?;
        let mut cache = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = cache.values().map(HashMap::len).sum();
        if total + missing.len() > self.capacity {
            // Keep the memory bounded: the other users' vectors go first.
            cache.retain(|u, _| u == user);
        }
        let kept = cache.entry(user.clone()).or_default();
        for (&i, vector) in missing.iter().zip(vectors) {
            let vector: Arc<[f32]> = vector.into();
            kept.insert(notes[i].slug.clone(), (notes[i].version, Arc::clone(&vector)));
            out[i] = Some(vector);
        }
        Ok(out)
    }
}

/// The notes of `notes` that match `query`, best first.
pub(crate) async fn search(
    user: &UserId,
    notes: Vec<Note>,
    query: &SearchQuery,
    embedder: Option<&dyn Embedder>,
    cache: &VectorCache,
) -> Result<(SearchMode, Vec<Found>), WorkspaceError> {
    let mode = match (query.mode, embedder) {
        (SearchMode::Semantic, None) => return Err(WorkspaceError::NoEmbedder),
        (SearchMode::Hybrid, None) => SearchMode::Bm25,
        (mode, _) => mode,
    };
    // The vectors of every note are kept current (and those of deleted notes dropped), then
    // the filter picks the candidates.
    let all_vectors = match (mode, embedder) {
        (SearchMode::Bm25, _) | (_, None) => None,
        (_, Some(embedder)) => Some(cache.vectors(user, &notes, embedder).await?),
    };
    let keep: Vec<usize> = (0..notes.len()).filter(|&i| query.filter.matches(&notes[i])).collect();
    if query.limit == 0 || keep.is_empty() || query.text.trim().is_empty() {
        return Ok((mode, Vec::new()));
    }
    let texts: Vec<String> = keep.iter().map(|&i| notes[i].search_text()).collect();
    let (by_words, word_scores) = match mode {
        SearchMode::Semantic => (Vec::new(), HashMap::new()),
        _ => rank_words(&query.text, &texts),
    };
    let (by_meaning, similarity) = match (&all_vectors, embedder) {
        (Some(vectors), Some(embedder)) if mode != SearchMode::Bm25 => {
            let q = embedder.embed(&[query.text.as_str()]).await.map_err(|e| {
                WorkspaceError::Store(crate::StoreError::new(
                    crate::StoreErrorKind::Unavailable,
                    "workspace",
                    format!("the embedder `{}` failed: {e}; search with mode `bm25` instead", embedder.name()),
                ))
            })?;
            let q = q.into_iter().next().unwrap_or_default();
            let candidates: Vec<Option<&[f32]>> = keep.iter().map(|&i| vectors[i].as_deref()).collect();
            let ranked = rank_by_meaning(&q, candidates.iter().copied());
            let sims: HashMap<usize, f64> =
                ranked.iter().map(|&j| (j, candidates[j].map_or(0.0, |v| cosine(&q, v)))).collect();
            (ranked, sims)
        }
        _ => (Vec::new(), HashMap::new()),
    };
    let found = match mode {
        SearchMode::Bm25 => by_words
            .iter()
            .take(query.limit)
            .enumerate()
            .map(|(rank, &j)| (j, word_scores.get(&j).copied().unwrap_or(0.0), Some(rank + 1), None))
            .collect::<Vec<_>>(),
        SearchMode::Semantic => by_meaning
            .iter()
            .take(query.limit)
            .enumerate()
            .map(|(rank, &j)| (j, similarity.get(&j).copied().unwrap_or(0.0), None, Some(rank + 1)))
            .collect(),
        SearchMode::Hybrid => fuse(&by_words, &by_meaning, 0.5, query.limit),
    };
    let mut notes: Vec<Option<Note>> = notes.into_iter().map(Some).collect();
    let out = found
        .into_iter()
        .filter_map(|(j, score, word_rank, meaning_rank)| {
            let note = keep.get(j).and_then(|&i| notes.get_mut(i)).and_then(Option::take)?;
            Some(Found { note, score, word_rank, meaning_rank })
        })
        .collect();
    Ok((mode, out))
}

/// The indices of `texts` that share a word with `query`, best first by BM25 (ties: the
/// earlier index), with their scores.
fn rank_words(query: &str, texts: &[String]) -> (Vec<usize>, HashMap<usize, f64>) {
    let terms: Vec<String> = words(query).collect();
    let index = Bm25::new(&terms, texts.iter().map(String::as_str));
    let mut scored: Vec<(usize, f64)> =
        (0..texts.len()).map(|j| (j, index.score(j))).filter(|(_, s)| *s > 0.0).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    (scored.iter().map(|(j, _)| *j).collect(), scored.into_iter().collect())
}
