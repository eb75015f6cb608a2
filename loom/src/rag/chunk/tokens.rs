//! Lengths in tokens: OpenAI's BPE encodings, and the recursive chunker measured in them.

use std::fmt;

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use super::{Chunker, RecursiveChunker};
use crate::error::ConfigError;
use crate::rag::{Chunk, Document};

/// Counts the tokens of a text in one of OpenAI's BPE encodings (tiktoken's tables, bundled
/// in the binary: nothing is downloaded).
///
/// An encoding's table is built once per process, on first use (tens of milliseconds), and
/// shared by every counter of it; a `TokenCounter` is a reference to it, cheap to copy.
/// Special tokens such as `<|endoftext|>` are counted as ordinary text.
///
/// ```
/// use loomflow::rag::chunk::TokenCounter;
///
/// let counter = TokenCounter::o200k();
/// assert_eq!(counter.count("Hello, world!"), 4);
/// assert_eq!(TokenCounter::for_model("text-embedding-3-small")?.encoding(), "cl100k_base");
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[derive(Clone, Copy)]
pub struct TokenCounter {
    bpe: &'static CoreBPE,
    encoding: &'static str,
}

impl TokenCounter {
    /// `o200k_base`: GPT-4o, GPT-4.1, GPT-5 and the o-series.
    pub fn o200k() -> Self {
        Self { bpe: tiktoken_rs::o200k_base_singleton(), encoding: "o200k_base" }
    }

    /// `cl100k_base`: GPT-4, GPT-3.5 and the `text-embedding-3` and `ada-002` embedders.
    pub fn cl100k() -> Self {
        Self { bpe: tiktoken_rs::cl100k_base_singleton(), encoding: "cl100k_base" }
    }

    /// The encoding of an OpenAI model (`gpt-4o-mini`, `text-embedding-3-small`, ...).
    pub fn for_model(model: &str) -> Result<Self, ConfigError> {
        let unknown = || ConfigError::InvalidSetting {
            setting: "token counter model",
            reason: format!(
                "no known tokenizer for model `{model}`; name an OpenAI model, or use `TokenCounter::o200k()` or `TokenCounter::cl100k()`"
            ),
        };
        let tokenizer = get_tokenizer(model).ok_or_else(unknown)?;
        let encoding = match tokenizer {
            Tokenizer::O200kHarmony => "o200k_harmony",
            Tokenizer::O200kBase => "o200k_base",
            Tokenizer::Cl100kBase => "cl100k_base",
            Tokenizer::P50kBase => "p50k_base",
            Tokenizer::R50kBase => "r50k_base",
            Tokenizer::P50kEdit => "p50k_edit",
            Tokenizer::Gpt2 => "gpt2",
        };
        let bpe = tiktoken_rs::bpe_for_tokenizer(tokenizer).map_err(|_| unknown())?;
        Ok(Self { bpe, encoding })
    }

    /// The number of tokens of `text`.
    pub fn count(&self, text: &str) -> usize {
        self.bpe.count_ordinary(text)
    }

    /// The encoding's name (`o200k_base`, `cl100k_base`, ...).
    pub fn encoding(&self) -> &'static str {
        self.encoding
    }
}

impl Default for TokenCounter {
    /// [`TokenCounter::o200k`].
    fn default() -> Self {
        Self::o200k()
    }
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCounter").field("encoding", &self.encoding).finish()
    }
}

/// A [`RecursiveChunker`] measuring sizes and overlaps in tokens, by default of
/// [`TokenCounter::o200k`]: chunks that fit an embedding model's input limit exactly.
///
/// Pieces are counted one by one and a merged chunk is counted again, so every chunk is at
/// most `size` tokens and two consecutive chunks share at most `overlap` tokens, as the
/// counter counts them (except a single character of more than `size` tokens).
///
/// ```
/// use loomflow::rag::Document;
/// use loomflow::rag::chunk::{Chunker, TokenChunker, TokenCounter};
///
/// let doc = Document::new("a.txt", "The quick brown fox jumps over the lazy dog. ".repeat(20));
/// let chunks = TokenChunker::new(32, 8).chunk(&doc);
/// let counter = TokenCounter::o200k();
/// assert!(chunks.len() > 1);
/// assert!(chunks.iter().all(|c| counter.count(&c.text) <= 32));
/// ```
#[derive(Debug, Clone)]
pub struct TokenChunker {
    inner: RecursiveChunker,
}

impl TokenChunker {
    /// Chunks of at most `size` o200k tokens, consecutive ones sharing at most `overlap`,
    /// split by the [`DEFAULT_SEPARATORS`](super::DEFAULT_SEPARATORS); out-of-range values
    /// are clamped as in [`RecursiveChunker::new`].
    pub fn new(size: usize, overlap: usize) -> Self {
        Self { inner: RecursiveChunker::new(size, overlap).tokens(TokenCounter::o200k()) }
    }

    /// Like [`new`](Self::new), but a `size` of 0 or an `overlap` not below `size` is an
    /// error.
    pub fn try_new(size: usize, overlap: usize) -> Result<Self, ConfigError> {
        Ok(Self { inner: RecursiveChunker::try_new(size, overlap)?.tokens(TokenCounter::o200k()) })
    }

    /// Counts tokens with `counter` (another encoding).
    #[must_use]
    pub fn counter(self, counter: TokenCounter) -> Self {
        Self { inner: self.inner.tokens(counter) }
    }

    /// Splits by these separators (see [`RecursiveChunker::separators`]).
    #[must_use]
    pub fn separators<S: Into<String>>(self, separators: impl IntoIterator<Item = S>) -> Self {
        Self { inner: self.inner.separators(separators) }
    }
}

impl Chunker for TokenChunker {
    fn chunk(&self, document: &Document) -> Vec<Chunk> {
        self.inner.chunk(document)
    }
}
