//! Embedders: text to vectors, for recall by meaning.

#[cfg(feature = "embed-candle")]
mod candle;
#[cfg(feature = "openai")]
mod openai;

#[cfg(feature = "embed-candle")]
pub use candle::CandleEmbedder;
#[cfg(feature = "openai")]
pub use openai::OpenAiEmbedder;

use crate::model::ModelError;

/// Turns texts into vectors of a fixed dimension, for recall by meaning.
///
/// Loom's default, [`HashingEmbedder`], needs no model and no download: it hashes words and
/// character trigrams into a vector, so texts that share words and word parts are close. A
/// real embedding model gives recall by meaning proper: `OpenAiEmbedder` (feature `openai`)
/// calls an OpenAI-compatible `/embeddings` endpoint, `CandleEmbedder` (feature
/// `embed-candle`) runs a BERT sentence encoder such as all-MiniLM-L6-v2 on the CPU.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The embedder's name (stored with the vectors it made: vectors of another embedder are
    /// not compared with them).
    fn name(&self) -> &str;

    /// The length of its vectors.
    fn dims(&self) -> usize;

    /// The vectors of `texts`, in order.
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError>;
}

/// The offline default: feature hashing of words and character trigrams into `dims`
/// dimensions (256 by default), with signed buckets, L2-normalised. Deterministic across
/// processes and platforms (FNV-1a), free, and good at "shares words and word parts" — not at
/// synonyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingEmbedder {
    dims: usize,
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        Self::new(256)
    }
}

impl HashingEmbedder {
    /// A hashing embedder of `dims` dimensions (at least 8).
    pub fn new(dims: usize) -> Self {
        Self { dims: dims.max(8) }
    }

    /// The vector of one text.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dims];
        let mut add = |feature: &[u8], weight: f32| {
            let h = fnv1a(feature);
            let bucket = (h % self.dims as u64) as usize;
            let sign = if (h >> 63) == 1 { -1.0 } else { 1.0 };
            v[bucket] += sign * weight;
        };
        for word in super::rank::words(text) {
            add(word.as_bytes(), 1.0);
            let padded: Vec<char> = format!(" {word} ").chars().collect();
            for tri in padded.windows(3) {
                let tri: String = tri.iter().collect();
                add(tri.as_bytes(), 0.5);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[async_trait::async_trait]
impl Embedder for HashingEmbedder {
    fn name(&self) -> &str {
        "hashing"
    }

    fn dims(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::rank::cosine;
    use super::*;

    #[test]
    fn similar_texts_are_close_and_vectors_are_stable() {
        let e = HashingEmbedder::default();
        let a = e.vector("The weather in Paris is sunny");
        let b = e.vector("sunny weather in paris");
        let c = e.vector("quarterly invoice totals");
        assert!(cosine(&a, &b) > 0.6 && cosine(&a, &c) < 0.3, "{} {}", cosine(&a, &b), cosine(&a, &c));
        // The same on every platform: FNV-1a, whose value for "a" is published.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(e.vector("loom").len(), 256);
        assert_eq!(e.vector("loom"), e.vector("LOOM"));
        assert!(e.vector("").iter().all(|x| *x == 0.0));
    }
}
