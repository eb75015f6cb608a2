//! One user's recall index in the process: BM25 postings with per-user statistics, and the
//! user's vectors with a sign code each for a fast first pass.
//!
//! The stores that keep their episodes in the process ([`InMemoryMemory`]) or read them once
//! into it ([`SqliteStore`]) rank here. A recall costs what the user's own memory costs:
//!
//! - **Words.** Exact BM25 over the episodes that pass the filters, with the statistics of the
//!   user's episodes alone (another user's texts never shift a score), computed term at a time
//!   over posting lists with max-score pruning: terms are taken rarest first, and once the words
//!   left cannot lift an unseen episode into the best candidates the common words are scored
//!   only for the episodes still in reach. The scores are those of [`Bm25`](super::rank::Bm25)
//!   to the last bit (the same sums, in [`term_order`](super::rank::term_order)).
//! - **Meaning.** Exact cosine similarity when the user has at most [`EXACT_VECTORS`] vectors of
//!   the query's length. Beyond that, a first pass ranks every vector by the agreement of its
//!   signs with the query's (two bits a dimension: positive, negative; a few popcounts per
//!   vector), and the best [`RESCORED`] of it are ranked by exact cosine. Vectors of another
//!   length (another embedder) score nothing, as they do everywhere.
//!
//! [`InMemoryMemory`]: super::InMemoryMemory
//! [`SqliteStore`]: crate::session::SqliteStore

use std::cmp::Ordering;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::rank::{MAX_TERM_FACTOR, fuse, idf, length_norm, term_order, term_weight, words};
use super::types::RecallQuery;

/// Candidates per ranking fused into the answer (more when the query's limit is larger).
pub(crate) const CANDIDATES: usize = 200;
/// Up to this many vectors of the query's length, meaning is ranked by exact cosine alone.
pub(crate) const EXACT_VECTORS: usize = 4_096;
/// Beyond [`EXACT_VECTORS`], how many of the sign pass's best are ranked by exact cosine.
pub(crate) const RESCORED: usize = 2_048;

const NONE: u32 = u32::MAX;

thread_local! {
    /// The word scores of one recall, kept for the next on this thread (a recall of a large
    /// memory would otherwise ask the allocator for fresh zeroed pages each time).
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Names (kinds, sessions) as small numbers.
#[derive(Default)]
struct Names(HashMap<Box<str>, u32, RandomState>);

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.0.get(name) {
            return id;
        }
        let id = u32::try_from(self.0.len()).unwrap_or(NONE - 1);
        self.0.insert(name.into(), id);
        id
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }
}

#[derive(Clone, Copy)]
struct Doc {
    /// The store's key: SQLite's rowid, the in-process store's sequence number.
    key: i64,
    at: i64,
    kind: u32,
    session: u32,
    /// Its number of words.
    len: u32,
    live: bool,
    /// Its vector: the group, and its place there (`NONE`: no vector).
    group: u32,
    slot: u32,
}

/// The episodes holding one word: `(doc, occurrences)`, by doc.
#[derive(Default)]
struct Postings {
    docs: Vec<(u32, u32)>,
    live: u32,
    /// The most occurrences in one episode, and the fewest words of an episode holding it
    /// (what bounds its weight; removals leave the bound loose, never wrong).
    max_f: u32,
    min_len: u32,
}

/// The vectors of one length.
struct Vectors {
    dims: usize,
    docs: Vec<u32>,
    data: Vec<f32>,
    /// The sum of the squares of each vector, as [`cosine`](super::rank::cosine) adds it up.
    norms: Vec<f64>,
    /// Per vector, `words` u64 of positive signs then `words` of negative ones.
    codes: Vec<u64>,
    /// Per vector, one over the square root of its number of signs (the norm of its code).
    code_scale: Vec<f32>,
    words: usize,
}

impl Vectors {
    fn new(dims: usize) -> Self {
        Self {
            dims,
            docs: Vec::new(),
            data: Vec::new(),
            norms: Vec::new(),
            codes: Vec::new(),
            code_scale: Vec::new(),
            words: dims.div_ceil(64),
        }
    }

    /// Appends the code of `v`; returns one over the square root of its number of signs.
    fn code(&self, v: &[f32], out: &mut Vec<u64>) -> f32 {
        let start = out.len();
        out.resize(start + 2 * self.words, 0);
        for (i, x) in v.iter().enumerate() {
            let bit = 1u64 << (i % 64);
            if *x > 0.0 {
                out[start + i / 64] |= bit;
            } else if *x < 0.0 {
                out[start + self.words + i / 64] |= bit;
            }
        }
        let signs: u32 = out[start..].iter().map(|w| w.count_ones()).sum();
        if signs == 0 { 0.0 } else { 1.0 / (signs as f32).sqrt() }
    }

    fn vector(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }
}

/// The sum of the squares of `v`, in [`cosine`](super::rank::cosine)'s order.
pub(crate) fn squared_norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x) * f64::from(*x)).fold(0.0, |sum, x| sum + x)
}

/// [`cosine`](super::rank::cosine) of two vectors of one length, given their squared norms: the
/// same value to the last bit.
fn cosine_normed(q: &[f32], q_norm: f64, v: &[f32], v_norm: f64) -> f64 {
    let mut dot = 0.0f64;
    for (x, y) in q.iter().zip(v) {
        dot += f64::from(*x) * f64::from(*y);
    }
    if q_norm == 0.0 || v_norm == 0.0 { 0.0 } else { dot / (q_norm.sqrt() * v_norm.sqrt()) }
}

/// Signs that agree minus signs that differ, of one word of a query's code (`qp` positive,
/// `qn` negative) and a vector's. Positive and negative signs are disjoint: one count each way.
fn agreement(qp: u64, qn: u64, vp: u64, vn: u64) -> i32 {
    ((qp & vp) | (qn & vn)).count_ones() as i32 - ((qp & vn) | (qn & vp)).count_ones() as i32
}

/// Keeps the best `r` of estimates pushed one by one, in a buffer of `2r` cut back to `r`
/// when full: past the first cut, an estimate below the `r`-th best so far costs a comparison.
struct Best {
    items: Vec<(f32, usize)>,
    floor: f32,
    r: usize,
}

impl Best {
    fn new(r: usize) -> Self {
        Self { items: Vec::with_capacity(2 * r), floor: f32::NEG_INFINITY, r }
    }

    fn push(&mut self, estimate: f32, i: usize) {
        if estimate <= self.floor {
            return;
        }
        self.items.push((estimate, i));
        if self.items.len() == 2 * self.r {
            self.items.select_nth_unstable_by(self.r - 1, |a, b| b.0.total_cmp(&a.0));
            self.items.truncate(self.r);
            self.floor = self.items[self.r - 1].0;
        }
    }
}

/// The sign pass over a group whose codes are `W` words a sign: the best `r` (or up to `2r`)
/// by the cosine of the codes, but for the query's norm (the same for all).
fn sign_pass<const W: usize>(
    group: &Vectors,
    code: &[u64],
    admits: impl Fn(usize) -> bool,
    r: usize,
) -> Vec<(f32, usize)> {
    let (Ok(qp), Ok(qn)) = (<[u64; W]>::try_from(&code[..W]), <[u64; W]>::try_from(&code[W..2 * W])) else {
        return sign_pass_any(group, code, admits, r);
    };
    let mut best = Best::new(r);
    for (i, (c, scale)) in group.codes.chunks_exact(2 * W).zip(&group.code_scale).enumerate() {
        let (vp, vn) = c.split_at(W);
        let (Ok(vp), Ok(vn)) = (<&[u64; W]>::try_from(vp), <&[u64; W]>::try_from(vn)) else { continue };
        let mut agree = 0i32;
        for j in 0..W {
            agree += agreement(qp[j], qn[j], vp[j], vn[j]);
        }
        let estimate = agree as f32 * scale;
        if estimate > best.floor && admits(i) {
            best.push(estimate, i);
        }
    }
    best.items
}

/// [`sign_pass`] for any width.
fn sign_pass_any(group: &Vectors, code: &[u64], admits: impl Fn(usize) -> bool, r: usize) -> Vec<(f32, usize)> {
    let w = group.words;
    let (qp, qn) = code.split_at(w);
    let mut best = Best::new(r);
    for (i, (c, scale)) in group.codes.chunks_exact(2 * w).zip(&group.code_scale).enumerate() {
        let (vp, vn) = c.split_at(w);
        let agree: i32 = (0..w).map(|j| agreement(qp[j], qn[j], vp[j], vn[j])).sum();
        let estimate = agree as f32 * scale;
        if estimate > best.floor && admits(i) {
            best.push(estimate, i);
        }
    }
    best.items
}

/// One user's episodes, indexed for recall.
#[derive(Default)]
pub(crate) struct RecallIndex {
    docs: Vec<Doc>,
    live: usize,
    live_words: u64,
    kinds: Names,
    sessions: Names,
    terms: HashMap<Box<str>, Postings, RandomState>,
    vectors: Vec<Vectors>,
    postings: usize,
    /// Rank meaning by exact cosine however many vectors there are.
    exact: bool,
}

/// What one recall found: `(key, score, word rank, meaning rank)`, best first.
pub(crate) type Found = Vec<(i64, f64, Option<usize>, Option<usize>)>;

/// One episode to index.
pub(crate) struct Entry<'a> {
    pub(crate) key: i64,
    pub(crate) at: i64,
    pub(crate) kind: &'a str,
    pub(crate) session: Option<&'a str>,
    pub(crate) text: &'a str,
    pub(crate) vector: Option<&'a [f32]>,
}

/// The filters of a query, resolved against the index.
struct Filter<'a> {
    since: i64,
    until: i64,
    kind: Option<u32>,
    session: Option<u32>,
    /// A test of the store's own on the key (metadata filters).
    keys: Option<&'a dyn Fn(i64) -> bool>,
    any: bool,
}

impl Filter<'_> {
    fn admits(&self, d: &Doc) -> bool {
        d.live
            && (!self.any
                || (d.at >= self.since
                    && d.at < self.until
                    && self.kind.is_none_or(|k| k == d.kind)
                    && self.session.is_none_or(|s| s == d.session)
                    && self.keys.is_none_or(|f| f(d.key))))
    }
}

/// Best first: the higher score, then the later episode, then the later arrival.
fn rank_order(docs: &[Doc]) -> impl Fn(&(f64, u32), &(f64, u32)) -> Ordering + Copy + '_ {
    move |a, b| b.0.total_cmp(&a.0).then_with(|| docs[b.1 as usize].at.cmp(&docs[a.1 as usize].at)).then(b.1.cmp(&a.1))
}

/// Keeps the best `k` of `items`, sorted.
fn keep_best(items: &mut Vec<(f64, u32)>, k: usize, order: impl Fn(&(f64, u32), &(f64, u32)) -> Ordering + Copy) {
    if items.len() > k {
        items.select_nth_unstable_by(k, order);
        items.truncate(k);
    }
    items.sort_unstable_by(order);
}

impl RecallIndex {
    /// An index that ranks meaning by exact cosine however many vectors it holds.
    #[cfg_attr(not(feature = "rag"), allow(dead_code))]
    pub(crate) fn exact() -> Self {
        Self { exact: true, ..Self::default() }
    }

    /// Roughly how many bytes it holds.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn bytes(&self) -> usize {
        let vectors: usize =
            self.vectors.iter().map(|v| v.data.len() * 4 + v.norms.len() * 8 + v.codes.len() * 8).sum();
        self.docs.len() * (size_of::<Doc>() + 8) + self.postings * 8 + self.terms.len() * 48 + vectors
    }

    /// Whether removed episodes outnumber the live ones (time to rebuild).
    pub(crate) fn sparse(&self) -> bool {
        self.docs.len() > 64 && self.docs.len() - self.live > self.live
    }

    /// Indexes one episode; returns its doc number.
    pub(crate) fn add(&mut self, entry: &Entry<'_>) -> u32 {
        let doc = u32::try_from(self.docs.len()).unwrap_or(NONE - 1);
        let mut counts: HashMap<String, u32, RandomState> = HashMap::default();
        let mut len = 0u32;
        for w in words(entry.text) {
            len = len.saturating_add(1);
            *counts.entry(w).or_default() += 1;
        }
        for (w, n) in counts {
            let postings = self.terms.entry(w.into_boxed_str()).or_default();
            postings.min_len = if postings.docs.is_empty() { len } else { postings.min_len.min(len) };
            postings.docs.push((doc, n));
            postings.live += 1;
            postings.max_f = postings.max_f.max(n);
            self.postings += 1;
        }
        let kind = self.kinds.intern(entry.kind);
        let session = entry.session.map_or(NONE, |s| self.sessions.intern(s));
        self.docs.push(Doc { key: entry.key, at: entry.at, kind, session, len, live: true, group: NONE, slot: NONE });
        self.live += 1;
        self.live_words += u64::from(len);
        if let Some(v) = entry.vector.filter(|v| !v.is_empty()) {
            let g = match self.vectors.iter().position(|g| g.dims == v.len()) {
                Some(g) => g,
                None => {
                    self.vectors.push(Vectors::new(v.len()));
                    self.vectors.len() - 1
                }
            };
            let group = &mut self.vectors[g];
            let mut codes = std::mem::take(&mut group.codes);
            let scale = group.code(v, &mut codes);
            group.codes = codes;
            group.code_scale.push(scale);
            if let Some(d) = self.docs.last_mut() {
                d.group = g as u32;
                d.slot = group.docs.len() as u32;
            }
            group.docs.push(doc);
            group.data.extend_from_slice(v);
            group.norms.push(squared_norm(v));
        }
        doc
    }

    /// Drops the removed episodes; returns each old doc number's new one (`None`: removed).
    pub(crate) fn compact(&mut self) -> Vec<Option<u32>> {
        let mut map: Vec<Option<u32>> = vec![None; self.docs.len()];
        let mut docs = Vec::with_capacity(self.live);
        for (i, d) in self.docs.iter().enumerate() {
            if d.live {
                map[i] = Some(docs.len() as u32);
                docs.push(*d);
            }
        }
        let mut postings = 0;
        self.terms.retain(|_, p| {
            p.docs.retain_mut(|(d, _)| match map[*d as usize] {
                Some(m) => {
                    *d = m;
                    true
                }
                None => false,
            });
            postings += p.docs.len();
            !p.docs.is_empty()
        });
        self.vectors.retain(|g| g.docs.iter().any(|&d| map[d as usize].is_some()));
        for (g, group) in self.vectors.iter_mut().enumerate() {
            let w = 2 * group.words;
            let mut keep = Vectors::new(group.dims);
            for (i, &d) in group.docs.iter().enumerate() {
                let Some(m) = map[d as usize] else { continue };
                if let Some(doc) = docs.get_mut(m as usize) {
                    doc.group = g as u32;
                    doc.slot = keep.docs.len() as u32;
                }
                keep.docs.push(m);
                keep.data.extend_from_slice(group.vector(i));
                keep.norms.push(group.norms[i]);
                keep.codes.extend_from_slice(&group.codes[w * i..w * (i + 1)]);
                keep.code_scale.push(group.code_scale[i]);
            }
            *group = keep;
        }
        self.docs = docs;
        self.postings = postings;
        map
    }

    /// Removes an episode (its text is needed to find its words).
    pub(crate) fn remove(&mut self, doc: u32, text: &str) {
        let Some(d) = self.docs.get_mut(doc as usize).filter(|d| d.live) else { return };
        d.live = false;
        self.live -= 1;
        self.live_words -= u64::from(d.len);
        let mut seen: Vec<String> = Vec::new();
        for w in words(text) {
            if seen.contains(&w) {
                continue;
            }
            if let Some(p) = self.terms.get_mut(w.as_str()) {
                p.live = p.live.saturating_sub(1);
            }
            seen.push(w);
        }
    }

    fn filter(&self, query: &RecallQuery) -> Option<Filter<'static>> {
        let kind = match &query.kind {
            Some(k) => Some(self.kinds.get(k)?),
            None => None,
        };
        let session = match &query.session {
            Some(s) => Some(self.sessions.get(s.as_str())?),
            None => None,
        };
        let since = query.since.map_or(i64::MIN, |t| t.as_millis());
        let until = query.until.map_or(i64::MAX, |t| t.as_millis());
        let any = kind.is_some() || session.is_some() || query.since.is_some() || query.until.is_some();
        Some(Filter { since, until, kind, session, keys: None, any })
    }

    /// Recalls: both rankings, fused.
    pub(crate) fn recall(&self, query: &RecallQuery, vector: Option<&[f32]>) -> Found {
        let Some(filter) = self.filter(query) else { return Vec::new() };
        self.rank(&filter, &query.text, vector, query.alpha, query.limit)
    }

    #[cfg_attr(not(feature = "rag"), allow(dead_code))]
    /// Searches the entries of kind `kind` that `keys` admits (all, without it): both
    /// rankings, fused, as [`recall`](Self::recall) does.
    pub(crate) fn search(
        &self,
        kind: &str,
        text: &str,
        vector: Option<&[f32]>,
        alpha: f64,
        limit: usize,
        keys: Option<&dyn Fn(i64) -> bool>,
    ) -> Found {
        let Some(kind) = self.kinds.get(kind) else { return Vec::new() };
        let filter = Filter { since: i64::MIN, until: i64::MAX, kind: Some(kind), session: None, keys, any: true };
        self.rank(&filter, text, vector, alpha, limit)
    }

    #[cfg_attr(not(feature = "rag"), allow(dead_code))]
    /// The vector of entry `doc`, when it has one.
    pub(crate) fn vector(&self, doc: u32) -> Option<&[f32]> {
        let d = self.docs.get(doc as usize).filter(|d| d.live && d.slot != NONE)?;
        let group = self.vectors.get(d.group as usize)?;
        Some(group.vector(d.slot as usize))
    }

    fn rank(&self, filter: &Filter<'_>, text: &str, vector: Option<&[f32]>, alpha: f64, limit: usize) -> Found {
        let k = CANDIDATES.max(limit);
        let by_words = if alpha < 1.0 { self.by_words(text, filter, k) } else { Vec::new() };
        let by_meaning = match vector {
            Some(q) if alpha > 0.0 => self.by_meaning(q, filter, k),
            _ => Vec::new(),
        };
        // The candidates: the word matches in their order, then the meaning matches not among them.
        let mut candidates: Vec<u32> = by_words.clone();
        let mut position: HashMap<u32, usize, RandomState> =
            by_words.iter().enumerate().map(|(i, &d)| (d, i)).collect();
        let word_ranks: Vec<usize> = (0..by_words.len()).collect();
        let mut meaning_ranks = Vec::with_capacity(by_meaning.len());
        for d in by_meaning {
            let i = *position.entry(d).or_insert_with(|| {
                candidates.push(d);
                candidates.len() - 1
            });
            meaning_ranks.push(i);
        }
        fuse(&word_ranks, &meaning_ranks, alpha, limit)
            .into_iter()
            .map(|(i, score, w, m)| (self.docs[candidates[i] as usize].key, score, w, m))
            .collect()
    }

    /// The best `k` by BM25 over the admitted episodes, best first.
    fn by_words(&self, text: &str, filter: &Filter<'_>, k: usize) -> Vec<u32> {
        let query: Vec<String> = words(text).collect();
        if query.is_empty() || self.live == 0 {
            return Vec::new();
        }
        // The admitted episodes, their number and their words.
        let admitted: Option<Vec<bool>> = filter.any.then(|| self.docs.iter().map(|d| filter.admits(d)).collect());
        let (n, total) = match &admitted {
            None => (self.live, self.live_words),
            Some(a) => self
                .docs
                .iter()
                .zip(a)
                .filter(|(_, a)| **a)
                .fold((0usize, 0u64), |(n, t), (d, _)| (n + 1, t + u64::from(d.len))),
        };
        if n == 0 {
            return Vec::new();
        }
        let avg = (total as f64 / n as f64).max(1.0);
        let admits = |doc: u32| match &admitted {
            None => self.docs[doc as usize].live,
            Some(a) => a[doc as usize],
        };
        // Each distinct word: its postings, IDF, how often the query says it, and the most it
        // can add to a score.
        struct Term<'i> {
            word: &'i str,
            postings: &'i [(u32, u32)],
            idf: f64,
            times: f64,
            bound: f64,
        }
        let mut terms: Vec<Term<'_>> = Vec::new();
        for (i, w) in query.iter().enumerate() {
            if query[..i].contains(w) {
                continue;
            }
            let Some((word, p)) = self.terms.get_key_value(w.as_str()) else { continue };
            let df = match &admitted {
                None => p.live as usize,
                Some(a) => p.docs.iter().filter(|(d, _)| a[*d as usize]).count(),
            };
            if df == 0 {
                continue;
            }
            let idf = idf(n as f64, df as f64);
            let times = query.iter().filter(|q| *q == w).count() as f64;
            // No more than in the shortest episode holding it most often.
            let most = term_weight(idf, f64::from(p.max_f), length_norm(f64::from(p.min_len), avg));
            let bound = most.min(idf * MAX_TERM_FACTOR) * times;
            terms.push(Term { word, postings: &p.docs, idf, times, bound });
        }
        // The order every BM25 ranking sums in: the rarest word first. It is also the order that
        // prunes best: once the words left cannot lift an episode not yet seen into the best
        // `k`, they are added only to the episodes still within reach.
        terms.sort_by(|a, b| term_order((a.word, a.idf), (b.word, b.idf)));
        let mut left: f64 = terms.iter().map(|t| t.bound).sum();
        let mut acc = SCRATCH.with_borrow_mut(std::mem::take);
        acc.clear();
        acc.resize(self.docs.len(), 0.0);
        let mut touched: Vec<u32> = Vec::new();
        let mut best = 0.0f64;
        let mut pruned = false;
        // Rounding in the sums is far below this margin.
        let (over, under) = (1.0 + 1e-9, 1.0 - 1e-9);
        for t in &terms {
            if !pruned && touched.len() >= k && left * over < best * under {
                let mut scores: Vec<f64> = touched.iter().map(|&d| acc[d as usize]).collect();
                scores.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                let threshold = scores[k - 1];
                if left * over < threshold * under {
                    // Out of reach: scored 0 from here on, so passed over.
                    touched.retain(|&d| {
                        let a = &mut acc[d as usize];
                        let keep = (*a + left) * over >= threshold * under;
                        if !keep {
                            *a = 0.0;
                        }
                        keep
                    });
                    pruned = true;
                }
            }
            let weight = |doc: u32, f: u32| {
                term_weight(t.idf, f64::from(f), length_norm(f64::from(self.docs[doc as usize].len), avg)) * t.times
            };
            if pruned {
                if touched.len() * 16 < t.postings.len() {
                    for &doc in &touched {
                        if let Ok(at) = t.postings.binary_search_by(|(d, _)| d.cmp(&doc)) {
                            acc[doc as usize] += weight(doc, t.postings[at].1);
                        }
                    }
                } else {
                    for &(doc, f) in t.postings {
                        if acc[doc as usize] > 0.0 {
                            acc[doc as usize] += weight(doc, f);
                        }
                    }
                }
            } else {
                for &(doc, f) in t.postings {
                    if admits(doc) {
                        let a = &mut acc[doc as usize];
                        if *a == 0.0 {
                            touched.push(doc);
                        }
                        *a += weight(doc, f);
                        best = best.max(*a);
                    }
                }
            }
            left -= t.bound;
        }
        let mut scored: Vec<(f64, u32)> = touched.iter().map(|&d| (acc[d as usize], d)).collect();
        // The scratch goes back zeroed where it was written.
        for &d in &touched {
            acc[d as usize] = 0.0;
        }
        SCRATCH.with_borrow_mut(|s| *s = acc);
        scored.retain(|(s, _)| *s > 0.0);
        keep_best(&mut scored, k, rank_order(&self.docs));
        scored.into_iter().map(|(_, d)| d).collect()
    }

    /// The best `k` by cosine similarity over the admitted episodes (above 0), best first.
    fn by_meaning(&self, q: &[f32], filter: &Filter<'_>, k: usize) -> Vec<u32> {
        let Some(group) = self.vectors.iter().find(|g| g.dims == q.len()) else { return Vec::new() };
        let q_norm = squared_norm(q);
        if q_norm == 0.0 {
            return Vec::new();
        }
        let rescore: Vec<usize> = if self.exact || group.docs.len() <= EXACT_VECTORS.max(RESCORED) {
            (0..group.docs.len()).filter(|&i| filter.admits(&self.docs[group.docs[i] as usize])).collect()
        } else {
            let mut code = Vec::with_capacity(2 * group.words);
            group.code(q, &mut code);
            let r = RESCORED.max(2 * k);
            let admits = |i: usize| filter.admits(&self.docs[group.docs[i] as usize]);
            // Fixed widths for the usual lengths (128 to 3,072 dimensions), unrolled.
            let mut best = match group.words {
                2 => sign_pass::<2>(group, &code, admits, r),
                4 => sign_pass::<4>(group, &code, admits, r),
                6 => sign_pass::<6>(group, &code, admits, r),
                8 => sign_pass::<8>(group, &code, admits, r),
                12 => sign_pass::<12>(group, &code, admits, r),
                16 => sign_pass::<16>(group, &code, admits, r),
                24 => sign_pass::<24>(group, &code, admits, r),
                48 => sign_pass::<48>(group, &code, admits, r),
                _ => sign_pass_any(group, &code, admits, r),
            };
            if best.len() > r {
                best.select_nth_unstable_by(r - 1, |a, b| b.0.total_cmp(&a.0));
                best.truncate(r);
            }
            best.into_iter().map(|(_, i)| i).collect()
        };
        let mut scored: Vec<(f64, u32)> = rescore
            .into_iter()
            .map(|i| (cosine_normed(q, q_norm, group.vector(i), group.norms[i]), group.docs[i]))
            .filter(|(s, _)| *s > 0.0)
            .collect();
        keep_best(&mut scored, k, rank_order(&self.docs));
        scored.into_iter().map(|(_, d)| d).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::rank::{Bm25, cosine};
    use super::*;
    use crate::memory::HashingEmbedder;

    /// A small deterministic generator of texts from a skewed vocabulary.
    struct Texts(u64);

    impl Texts {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn text(&mut self, words: usize) -> String {
            (0..words)
                .map(|_| {
                    // Skewed: small numbers far more often.
                    let r = self.next() % 1_000;
                    let w = (r * r) / 1_000;
                    format!("w{w}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    fn index(texts: &[String], embed: bool) -> RecallIndex {
        let e = HashingEmbedder::default();
        let mut index = RecallIndex::default();
        for (i, t) in texts.iter().enumerate() {
            let v = embed.then(|| e.vector(t));
            index.add(&Entry {
                key: i as i64,
                at: i as i64 / 3,
                kind: if i % 2 == 0 { "turn" } else { "note" },
                session: None,
                text: t,
                vector: v.as_deref(),
            });
        }
        index
    }

    #[test]
    fn word_scores_and_order_are_those_of_bm25_over_the_admitted_texts() {
        let mut g = Texts(0x1234_5678);
        let texts: Vec<String> = (0..3_000).map(|_| g.text(12)).collect();
        let index = index(&texts, false);
        for _ in 0..40 {
            let q = g.text(6);
            for kind in [None, Some("note")] {
                let mut query = RecallQuery::new(q.clone()).limit(10).alpha(0.0);
                if let Some(kind) = kind {
                    query = query.kind(kind);
                }
                let got: Vec<i64> = index.recall(&query, None).into_iter().map(|r| r.0).collect();
                // The same ranking from the reference BM25, over the admitted texts.
                let admitted: Vec<usize> = (0..texts.len()).filter(|i| kind.is_none() || i % 2 == 1).collect();
                let terms: Vec<String> = words(&q).collect();
                let bm25 = Bm25::new(&terms, admitted.iter().map(|&i| texts[i].as_str()));
                let mut want: Vec<(f64, usize)> =
                    admitted.iter().enumerate().map(|(j, &i)| (bm25.score(j), i)).filter(|(s, _)| *s > 0.0).collect();
                want.sort_by(|a, b| b.0.total_cmp(&a.0).then((b.1 / 3).cmp(&(a.1 / 3))).then(b.1.cmp(&a.1)));
                let want: Vec<i64> = want.iter().take(10).map(|(_, i)| *i as i64).collect();
                assert_eq!(got, want, "query {q:?}, kind {kind:?}");
            }
        }
    }

    #[test]
    fn meaning_is_exact_for_few_vectors_and_close_for_many() {
        let e = HashingEmbedder::default();
        let mut g = Texts(0x9e37_79b9);
        let texts: Vec<String> = (0..20_000).map(|_| g.text(10)).collect();
        let big = index(&texts, true);
        let small = index(&texts[..2_000], true);
        let (mut found, mut wanted) = (0usize, 0usize);
        for _ in 0..30 {
            let q = g.text(6);
            let v = e.vector(&q);
            for (index, n) in [(&small, 2_000usize), (&big, 20_000)] {
                let query = RecallQuery::new(q.clone()).limit(10).alpha(1.0);
                let got: Vec<i64> = index.recall(&query, Some(&v)).into_iter().map(|r| r.0).collect();
                let mut want: Vec<(f64, usize)> =
                    (0..n).map(|i| (cosine(&v, &e.vector(&texts[i])), i)).filter(|(s, _)| *s > 0.0).collect();
                want.sort_by(|a, b| b.0.total_cmp(&a.0).then((b.1 / 3).cmp(&(a.1 / 3))).then(b.1.cmp(&a.1)));
                let want: Vec<i64> = want.iter().take(10).map(|(_, i)| *i as i64).collect();
                if n == 2_000 {
                    assert_eq!(got, want, "exact below {EXACT_VECTORS} vectors");
                } else {
                    wanted += want.len();
                    found += want.iter().filter(|w| got.contains(w)).count();
                }
            }
        }
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.9, "recall@10 of the sign pass + exact rescoring: {recall:.3}");
    }

    #[test]
    fn removed_episodes_are_not_found_and_filters_apply() {
        let texts: Vec<String> = ["alpha beta", "alpha gamma", "beta delta", "alpha alpha"].map(String::from).to_vec();
        let mut index = index(&texts, true);
        let e = HashingEmbedder::default();
        let q = RecallQuery::new("alpha").limit(10);
        let keys = |found: Found| found.into_iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(keys(index.recall(&q.clone().alpha(0.0), None)), [3, 1, 0]);
        index.remove(3, &texts[3]);
        assert_eq!(keys(index.recall(&q.clone().alpha(0.0), None)), [1, 0]);
        assert!(keys(index.recall(&q.clone().kind("nothing"), Some(&e.vector("alpha")))).is_empty());
        assert_eq!(keys(index.recall(&q.clone().alpha(0.0).kind("turn"), None)), [0]);
    }
}
