//! The storage of a corpus: one trait, every backend.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Chunk, Metadata};
use crate::error::StoreError;
use crate::id::UserId;

/// A chunk with its vector (none when the corpus has no embedder), as a store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredChunk {
    /// The chunk.
    pub chunk: Chunk,
    /// Its vector.
    pub vector: Option<Vec<f32>>,
}

/// What to search for in one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The query text, ranked by BM25 over the collection's chunks.
    pub text: String,
    /// How many hits at most.
    pub limit: usize,
    /// The weight of the meaning ranking against the word ranking in the fusion: 0 words only,
    /// 1 meaning only, 0.5 (the default) even.
    pub alpha: f64,
    /// Only chunks whose metadata passes it.
    pub filter: Option<Filter>,
    /// Return each hit's vector too (for maximal marginal relevance).
    pub with_vectors: bool,
}

impl SearchQuery {
    /// A search for `text`: 4 hits, even fusion, no filter.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), limit: 4, alpha: 0.5, filter: None, with_vectors: false }
    }

    /// At most `limit` hits.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The meaning ranking's weight, clamped to `0..=1`.
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

    /// Return each hit's vector too.
    #[must_use]
    pub fn with_vectors(mut self) -> Self {
        self.with_vectors = true;
        self
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The chunk.
    pub chunk: Chunk,
    /// The fused score (reciprocal-rank fusion; higher is better).
    pub score: f64,
    /// Its rank by words (BM25), from 1, when it was among the word matches.
    pub word_rank: Option<usize>,
    /// Its rank by meaning (cosine similarity), from 1, when it was among the nearest vectors.
    pub meaning_rank: Option<usize>,
    /// Its vector, when the query asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// A filter on chunk metadata, with the operators of MongoDB (and Chroma): equality,
/// comparison, membership, existence, and `and`/`or`/`not`.
///
/// A key names a top-level metadata entry (`source`, `page`, ...). Comparisons hold between
/// numbers, or between strings; a missing key fails every test but [`Filter::Ne`],
/// [`Filter::NotIn`] and `Exists(false)`. For a key whose value is a list (`heading_path`,
/// `tags`), [`Filter::Eq`] and [`Filter::In`] hold when any element matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Filter {
    /// `key == value`.
    Eq(String, Value),
    /// `key != value` (or missing).
    Ne(String, Value),
    /// `key > value`.
    Gt(String, Value),
    /// `key >= value`.
    Gte(String, Value),
    /// `key < value`.
    Lt(String, Value),
    /// `key <= value`.
    Lte(String, Value),
    /// `key` is one of the values.
    In(String, Vec<Value>),
    /// `key` is none of the values (or missing).
    NotIn(String, Vec<Value>),
    /// `key` is present (`true`) or absent (`false`).
    Exists(String, bool),
    /// Every filter holds.
    And(Vec<Filter>),
    /// At least one holds.
    Or(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
}

impl Filter {
    /// `key == value`.
    pub fn eq(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Eq(key.into(), value.into())
    }

    /// `key` is one of `values`.
    pub fn any_of(key: impl Into<String>, values: impl IntoIterator<Item = impl Into<Value>>) -> Self {
        Self::In(key.into(), values.into_iter().map(Into::into).collect())
    }

    /// Both hold.
    #[must_use]
    pub fn and(self, other: Filter) -> Self {
        match self {
            Self::And(mut all) => {
                all.push(other);
                Self::And(all)
            }
            one => Self::And(vec![one, other]),
        }
    }

    /// Parses a MongoDB-style filter: `{"source": "a.md"}`, `{"page": {"$gte": 2}}`,
    /// `{"$or": [..]}`, `{"k": [..]}` (shorthand for `$in`). Several keys in one object must
    /// all hold.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else { return Err(format!("a filter is an object, not `{value}`")) };
        let mut all = Vec::with_capacity(map.len());
        for (key, v) in map {
            all.push(match key.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = v else { return Err(format!("`{key}` takes a list of filters")) };
                    let parts = items.iter().map(Self::from_json).collect::<Result<Vec<_>, _>>()?;
                    if key == "$and" { Self::And(parts) } else { Self::Or(parts) }
                }
                "$not" => Self::Not(Box::new(Self::from_json(v)?)),
                op if op.starts_with('$') => return Err(format!("unknown filter operator `{op}` at the top level")),
                _ => Self::field(key, v)?,
            });
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Self::And(all) })
    }

    fn field(key: &str, v: &Value) -> Result<Self, String> {
        let k = || key.to_owned();
        match v {
            Value::Array(values) => Ok(Self::In(k(), values.clone())),
            Value::Object(ops) if ops.keys().all(|o| o.starts_with('$')) && !ops.is_empty() => {
                let mut all = Vec::with_capacity(ops.len());
                for (op, arg) in ops {
                    let list = || match arg {
                        Value::Array(values) => Ok(values.clone()),
                        _ => Err(format!("`{op}` on `{key}` takes a list")),
                    };
                    all.push(match op.as_str() {
                        "$eq" => Self::Eq(k(), arg.clone()),
                        "$ne" => Self::Ne(k(), arg.clone()),
                        "$gt" => Self::Gt(k(), arg.clone()),
                        "$gte" => Self::Gte(k(), arg.clone()),
                        "$lt" => Self::Lt(k(), arg.clone()),
                        "$lte" => Self::Lte(k(), arg.clone()),
                        "$in" => Self::In(k(), list()?),
                        "$nin" => Self::NotIn(k(), list()?),
                        "$exists" => match arg {
                            Value::Bool(b) => Self::Exists(k(), *b),
                            _ => return Err(format!("`$exists` on `{key}` takes true or false")),
                        },
                        "$not" => Self::Not(Box::new(Self::field(key, arg)?)),
                        other => {
                            return Err(format!(
                                "unknown filter operator `{other}` on `{key}` (known: $eq $ne $gt $gte $lt $lte $in $nin $exists $not)"
                            ));
                        }
                    });
                }
                Ok(if all.len() == 1 { all.remove(0) } else { Self::And(all) })
            }
            other => Ok(Self::Eq(k(), other.clone())),
        }
    }

    /// Whether `metadata` passes.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        let equal = |key: &str, value: &Value| match metadata.get(key) {
            Some(Value::Array(items)) if !value.is_array() => items.iter().any(|i| same(i, value)),
            Some(v) => same(v, value),
            None => false,
        };
        let order = |key: &str, value: &Value, ok: fn(Ordering) -> bool| {
            metadata.get(key).and_then(|v| compare(v, value)).is_some_and(ok)
        };
        match self {
            Self::Eq(k, v) => equal(k, v),
            Self::Ne(k, v) => !equal(k, v),
            Self::Gt(k, v) => order(k, v, Ordering::is_gt),
            Self::Gte(k, v) => order(k, v, Ordering::is_ge),
            Self::Lt(k, v) => order(k, v, Ordering::is_lt),
            Self::Lte(k, v) => order(k, v, Ordering::is_le),
            Self::In(k, vs) => vs.iter().any(|v| equal(k, v)),
            Self::NotIn(k, vs) => !vs.iter().any(|v| equal(k, v)),
            Self::Exists(k, present) => metadata.contains_key(k) == *present,
            Self::And(all) => all.iter().all(|f| f.matches(metadata)),
            Self::Or(any) => any.iter().any(|f| f.matches(metadata)),
            Self::Not(f) => !f.matches(metadata),
        }
    }
}

/// JSON equality, with numbers compared by value (`2` equals `2.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The order of two numbers or two strings; `None` for anything else.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A backend of a [`Corpus`](super::Corpus): the chunks of each user's collections, with their
/// vectors, searched by words and meaning.
///
/// Every call takes the user, and a backend never returns another user's chunks. A collection
/// is a name the caller chooses (`"docs"`, `"handbook"`); collections of one user are searched
/// apart. Implementations are checked by one conformance suite (`tests/rag_conformance.rs`).
#[async_trait::async_trait]
pub trait VectorStore: Send + Sync + 'static {
    /// The backend's name, in errors: `in-memory`, `sqlite` ...
    fn backend(&self) -> &'static str;

    /// Adds the chunks, replacing any with the same id, in one atomic step.
    async fn upsert(&self, user: &UserId, collection: &str, chunks: &[StoredChunk]) -> Result<(), StoreError>;

    /// The ids of the chunks of `document` kept in the collection (empty: none).
    async fn chunk_ids(&self, user: &UserId, collection: &str, document: &str) -> Result<Vec<String>, StoreError>;

    /// Removes the chunks with these ids; returns how many there were.
    async fn delete(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<usize, StoreError>;

    /// The chunks with these ids, in the order asked (missing ones left out).
    async fn get(&self, user: &UserId, collection: &str, ids: &[String]) -> Result<Vec<Chunk>, StoreError>;

    /// How many chunks the collection holds.
    async fn count(&self, user: &UserId, collection: &str) -> Result<usize, StoreError>;

    /// The best chunks for `query`: BM25 over the collection's chunks (with the collection's
    /// own statistics) and, with `vector`, cosine similarity, fused by reciprocal rank with
    /// the query's `alpha` (as [`Memory::recall`](crate::memory::Memory::recall) fuses).
    async fn search(
        &self,
        user: &UserId,
        collection: &str,
        query: &SearchQuery,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Hit>, StoreError>;

    /// Every chunk the user has, by collection (for a GDPR export).
    async fn export(&self, user: &UserId) -> Result<Vec<(String, Chunk)>, StoreError>;

    /// Removes every chunk of the user in every collection; returns how many.
    async fn forget(&self, user: &UserId) -> Result<usize, StoreError>;
}
