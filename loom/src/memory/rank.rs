//! Ranking: words (BM25), meaning (cosine similarity), and their fusion by reciprocal rank.

use std::collections::HashMap;

use super::types::RRF_K;

/// The words of a text, as recall compares them: lowercase runs of letters and digits.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// BM25's parameters: term-frequency saturation and length normalisation.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A word's inverse document frequency among `n` documents of which `df` hold it.
pub(crate) fn idf(n: f64, df: f64) -> f64 {
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
}

/// The length normalisation of a document of `len` words among documents of `avg` words.
pub(crate) fn length_norm(len: f64, avg: f64) -> f64 {
    K1 * (1.0 - B + B * len / avg)
}

/// What a word said `f` times contributes to a document's score.
pub(crate) fn term_weight(idf: f64, f: f64, norm: f64) -> f64 {
    idf * f * (K1 + 1.0) / (f + norm)
}

/// [`term_weight`] is below `idf * MAX_TERM_FACTOR` whatever the counts.
pub(crate) const MAX_TERM_FACTOR: f64 = K1 + 1.0;

/// A BM25 index of one user's texts, built for one query, for the stores that fetch the
/// candidates from a server (the stores in the process keep a [`RecallIndex`](super::index::RecallIndex)).
#[cfg_attr(not(any(feature = "postgres", feature = "redis", feature = "chroma")), allow(dead_code))]
pub(crate) struct Bm25<'d> {
    docs: Vec<(usize, HashMap<String, u32>)>,
    df: HashMap<&'d str, usize>,
    avg_len: f64,
    /// The query's distinct words that some document holds, with how often the query says
    /// each and its IDF, in [`term_order`].
    terms: Vec<(&'d str, f64, f64)>,
    query: &'d [String],
}

/// The order in which a document's score adds its words' weights up: the rarer word first
/// (the higher IDF), then by the word. Every ranking by BM25 sums in this order, so two of
/// them give the same score to the last bit whatever order the query says its words in.
pub(crate) fn term_order(a: (&str, f64), b: (&str, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0))
}

#[cfg_attr(not(any(feature = "postgres", feature = "redis", feature = "chroma")), allow(dead_code))]
impl<'d> Bm25<'d> {
    /// The index of `docs` for the words of `query` only (the others cannot score).
    pub(crate) fn new<'t>(query: &'d [String], docs: impl Iterator<Item = &'t str>) -> Self {
        let mut out = Vec::new();
        let mut df: HashMap<&'d str, usize> = HashMap::new();
        let mut total = 0usize;
        for doc in docs {
            let mut len = 0;
            let mut tf: HashMap<String, u32> = HashMap::new();
            for w in words(doc) {
                len += 1;
                if query.contains(&w) {
                    *tf.entry(w).or_default() += 1;
                }
            }
            for (i, q) in query.iter().enumerate() {
                // Once per word, however often the query says it.
                if tf.contains_key(q) && !query[..i].contains(q) {
                    *df.entry(q.as_str()).or_default() += 1;
                }
            }
            total += len;
            out.push((len, tf));
        }
        let avg_len = if out.is_empty() { 1.0 } else { (total as f64 / out.len() as f64).max(1.0) };
        let n = out.len();
        let mut index = Self { docs: out, df, avg_len, terms: Vec::new(), query };
        index.order(n);
        index
    }

    /// The query's words in [`term_order`] for a collection of `n` documents.
    fn order(&mut self, n: usize) {
        let query = self.query;
        self.terms.clear();
        for (i, q) in query.iter().enumerate() {
            if query[..i].contains(q) {
                continue;
            }
            let Some(&df) = self.df.get(q.as_str()) else { continue };
            let times = query.iter().filter(|w| *w == q).count() as f64;
            self.terms.push((q.as_str(), times, idf(n as f64, df as f64)));
        }
        self.terms.sort_by(|a, b| term_order((a.0, a.2), (b.0, b.2)));
    }

    /// Scores as if the collection had `total` documents, of which the ones given are every one
    /// containing a word of the query (so their document frequencies are exact).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn with_total(mut self, total: usize) -> Self {
        let n = total.max(self.docs.len());
        self.order(n);
        self
    }

    /// The score of document `i` (0 when no word of the query is in it).
    pub(crate) fn score(&self, i: usize) -> f64 {
        let Some((len, tf)) = self.docs.get(i) else { return 0.0 };
        let mut score = 0.0;
        for &(word, times, idf) in &self.terms {
            if let Some(&f) = tf.get(word) {
                score += term_weight(idf, f64::from(f), length_norm(*len as f64, self.avg_len)) * times;
            }
        }
        score
    }
}

/// The indices of `texts` that share a word with `query`, best first by BM25 (ties: the
/// earlier index), for a store that ranks words in the process.
#[cfg_attr(not(any(feature = "redis", feature = "chroma")), allow(dead_code))]
pub(crate) fn rank_by_words<'d>(query: &str, texts: impl Iterator<Item = &'d str>) -> Vec<usize> {
    let terms: Vec<String> = words(query).collect();
    let index = Bm25::new(&terms, texts);
    let mut scored: Vec<(usize, f64)> =
        (0..index.docs.len()).map(|i| (i, index.score(i))).filter(|(_, s)| *s > 0.0).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().map(|(i, _)| i).collect()
}

/// The indices of `vectors` (`None`: an item without one) closer to `query` than orthogonal,
/// best first by cosine similarity (ties: the earlier index).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn rank_by_meaning<'v>(query: &[f32], vectors: impl Iterator<Item = Option<&'v [f32]>>) -> Vec<usize> {
    let mut scored: Vec<(usize, f64)> =
        vectors.enumerate().filter_map(|(i, v)| Some((i, cosine(query, v?)))).filter(|(_, s)| *s > 0.0).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().map(|(i, _)| i).collect()
}

/// The cosine similarity of two vectors (0 when either is zero or they differ in length).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

/// Fuses two rankings of the same candidates by reciprocal rank: each candidate scores
/// `(1 - alpha) / (K + word_rank) + alpha / (K + meaning_rank)`. Candidates are keyed by their
/// index; a ranking lists indices best first. Returns `(index, score, word_rank, meaning_rank)`
/// for the candidates that score above 0, best first, ties broken by the earlier index.
pub(crate) fn fuse(
    by_words: &[usize],
    by_meaning: &[usize],
    alpha: f64,
    limit: usize,
) -> Vec<(usize, f64, Option<usize>, Option<usize>)> {
    let mut scores: HashMap<usize, (f64, Option<usize>, Option<usize>)> = HashMap::new();
    for (rank, &i) in by_words.iter().enumerate() {
        let e = scores.entry(i).or_default();
        e.0 += (1.0 - alpha) / (RRF_K + (rank + 1) as f64);
        e.1 = Some(rank + 1);
    }
    for (rank, &i) in by_meaning.iter().enumerate() {
        let e = scores.entry(i).or_default();
        e.0 += alpha / (RRF_K + (rank + 1) as f64);
        e.2 = Some(rank + 1);
    }
    let mut out: Vec<_> =
        scores.into_iter().filter(|(_, (s, ..))| *s > 0.0).map(|(i, (s, w, m))| (i, s, w, m)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_prefers_rare_words_and_short_documents() {
        let query: Vec<String> = words("loom rust").collect();
        let docs = ["the loom weaves", "rust rust rust and more words here", "a loom in rust", "nothing"];
        let index = Bm25::new(&query, docs.iter().copied());
        let scores: Vec<f64> = (0..docs.len()).map(|i| index.score(i)).collect();
        assert!(scores[2] > scores[0] && scores[2] > scores[1], "{scores:?}");
        assert_eq!(scores[3], 0.0);
    }

    #[test]
    fn fusion_weighs_the_two_rankings_by_alpha() {
        // Words prefer 0 then 1; meaning prefers 1 then 2.
        // A candidate only the ignored ranking lists scores 0 and is left out.
        let words_only = fuse(&[0, 1], &[1, 2], 0.0, 3);
        assert_eq!(words_only.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1]);
        let meaning_only = fuse(&[0, 1], &[1, 2], 1.0, 3);
        assert_eq!(meaning_only.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
        let both = fuse(&[0, 1], &[1, 2], 0.5, 2);
        assert_eq!(both[0], (1, 0.5 / 62.0 + 0.5 / 61.0, Some(2), Some(1)));
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-9 && cosine(&[1.0], &[0.0]) == 0.0);
    }
}
