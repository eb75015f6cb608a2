//! Retrieval-augmented generation: documents loaded, chunked, embedded and indexed per user,
//! then retrieved by words and meaning with citations an answer can point at.
//!
//! The pipeline, each stage a type of its own:
//! - [`load`]: files to [`Document`]s (text, Markdown, HTML main text, CSV rows, JSON/JSONL
//!   records, PDF pages), each with its source metadata;
//! - [`chunk`]: documents to [`Chunk`]s (recursive by separators, by Markdown heading, by
//!   tokens), with overlap, each with an id that is a hash of its content so re-ingesting a
//!   changed document replaces only the chunks that changed;
//! - [`VectorStore`]: the chunks of each user's collections with their vectors, searched by
//!   BM25 and by vector and fused by reciprocal rank, with metadata [`Filter`]s — in memory,
//!   in SQLite, in PostgreSQL and in Chroma, the same backends as [`memory`](crate::memory);
//! - [`Corpus`]: ingestion (batched embedding, progress, resumable) and retrieval (hybrid,
//!   maximal marginal relevance, an optional reranker), and [`Corpus::tool`], the retriever an
//!   agent calls, whose passages carry citations.

#[cfg(feature = "chroma")]
mod chroma;
pub mod chunk;
mod corpus;
mod in_memory;
pub mod load;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod tool;

pub use corpus::{Corpus, Documents, IngestProgress, Passage, Reranker, Retrieve, citation};
pub use in_memory::InMemoryVectorStore;
pub use store::{Filter, Hit, SearchQuery, StoredChunk, VectorStore};
pub use tool::{Answer, CitedAnswer, RetrieverTool};

use serde::{Deserialize, Serialize};

/// Metadata of a document or a chunk: where it came from (`source`, `page`, `heading_path`,
/// `row`, `line`, `title`, ...) and whatever the caller adds. Filters match on it.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// A loaded document: text with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable id: the source path, with `#page=N`, `#row=N` or `#line=N` when one file gives
    /// several documents.
    pub id: String,
    /// The text (for Markdown and HTML, the readable text with headings kept as Markdown `#`
    /// lines, so the Markdown chunker can follow them).
    pub text: String,
    /// `source` (the path), and per format `page`, `row`, `line`, `title`, ...
    pub metadata: Metadata,
}

impl Document {
    /// A document of `text` with id `id` and `source` = `id`.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        let id = id.into();
        let mut metadata = Metadata::new();
        metadata.insert("source".into(), serde_json::Value::String(id.clone()));
        Self { id, text: text.into(), metadata }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// A piece of a document, the unit that is embedded, indexed and retrieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// A hash of the document id, the text and its occurrence in the document (32 hex digits):
    /// the same chunk of the same document has the same id on every ingestion.
    pub id: String,
    /// The id of its document.
    pub document: String,
    /// Its position among the document's chunks, from 0.
    pub index: u32,
    /// The text.
    pub text: String,
    /// Its byte range in the document's text.
    pub start: usize,
    /// The end of that range (exclusive).
    pub end: usize,
    /// The document's metadata, plus `heading_path` (a list of headings) where the chunker
    /// knows it.
    pub metadata: Metadata,
}

/// The id of a chunk: a 128-bit FNV-1a hash of the document id, the text and the text's
/// occurrence among the document's chunks, as 32 hex digits. Stable across processes,
/// platforms and versions.
pub fn chunk_id(document: &str, text: &str, occurrence: u32) -> String {
    // Two 64-bit FNV-1a lanes with different offsets make 128 bits.
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    let mut feed = |bytes: &[u8]| {
        for &x in bytes {
            a = (a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
        }
    };
    feed(document.as_bytes());
    feed(&[0]);
    feed(text.as_bytes());
    feed(&[0]);
    feed(&occurrence.to_le_bytes());
    format!("{a:016x}{b:016x}")
}
