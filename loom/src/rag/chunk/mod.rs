//! Chunkers: documents to [`Chunk`]s, the pieces that are embedded, indexed and retrieved.
//!
//! - [`RecursiveChunker`] splits by the first separator that occurs in the text (paragraphs,
//!   then lines, sentences, clauses, words, characters), merges the pieces up to a size and
//!   recurses into pieces still too long with the next separator; consecutive chunks share an
//!   overlap of whole pieces. Sizes count characters, or tokens with the `rag-tokens` feature.
//! - [`MarkdownChunker`] splits at ATX headings (`#` to `######`, not inside fenced code) and
//!   keeps each section's heading trail in `heading_path`; a section longer than the size is
//!   chunked recursively, every part keeping the trail.
//! - `TokenChunker` (feature `rag-tokens`) is the recursive chunker measured in tokens of an
//!   OpenAI encoding (`TokenCounter`: o200k, cl100k), the unit embedding models limit.
//!
//! Every chunk is an exact byte range of its document: `chunk.text == doc.text[chunk.start..
//! chunk.end]`, with only whitespace trimmed at its ends. No text is lost: every character
//! that is not whitespace lies in some chunk. Its metadata is the document's plus the
//! chunker's keys, and its id is [`chunk_id`] of the document id, the text and how many earlier
//! chunks of the document have the same text — so chunking a changed document again gives
//! new ids only to the chunks whose text changed.
//!
//! ```
//! use loomflow::rag::Document;
//! use loomflow::rag::chunk::{Chunker, MarkdownChunker};
//! use serde_json::json;
//!
//! let doc = Document::new(
//!     "guide.md",
//!     "# Trains\nTrains are quick.\n\n## Tickets\nBuy them online.\n\n```sh\n# not a heading\n```\n",
//! );
//! let chunks = MarkdownChunker::new(800, 100).chunk(&doc);
//!
//! assert_eq!(chunks.len(), 2);
//! assert_eq!(chunks[0].text, "# Trains\nTrains are quick.");
//! assert_eq!(chunks[0].metadata["heading_path"], json!(["Trains"]));
//! assert_eq!(chunks[1].metadata["heading_path"], json!(["Trains", "Tickets"]));
//! assert!(chunks[1].text.ends_with("# not a heading\n```"));
//! assert_eq!(&doc.text[chunks[1].start..chunks[1].end], chunks[1].text);
//! assert_eq!(chunks[1].metadata["source"], json!("guide.md"));
//!
//! // The same text gives the same ids.
//! assert_eq!(MarkdownChunker::new(800, 100).chunk(&doc), chunks);
//! ```

mod markdown;
mod recursive;
#[cfg(test)]
mod tests;
#[cfg(feature = "rag-tokens")]
mod tokens;

use std::collections::HashMap;

use foldhash::fast::RandomState;
use serde_json::Value;

pub use markdown::MarkdownChunker;
pub use recursive::{DEFAULT_SEPARATORS, RecursiveChunker};
#[cfg(feature = "rag-tokens")]
pub use tokens::{TokenChunker, TokenCounter};

use super::{Chunk, Document, chunk_id};

/// Splits documents into chunks.
pub trait Chunker: Send + Sync {
    /// The chunks of `document`, in the order of the text, indexed from 0.
    fn chunk(&self, document: &Document) -> Vec<Chunk>;

    /// The chunks of every document, document by document.
    fn chunk_all(&self, documents: &[Document]) -> Vec<Chunk> {
        documents.iter().flat_map(|document| self.chunk(document)).collect()
    }
}

/// A chunk's byte range, and the value of `heading_path` when the chunker knows it.
pub(super) struct Span<'a> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) heading_path: Option<&'a Value>,
}

/// Turns the spans of `document` (in order, on character boundaries) into chunks with their
/// index, id and metadata.
pub(super) fn assemble<'a>(document: &Document, spans: impl IntoIterator<Item = Span<'a>>) -> Vec<Chunk> {
    let mut seen: HashMap<&str, u32, RandomState> = HashMap::default();
    let mut chunks = Vec::new();
    for span in spans {
        let Some(text) = document.text.get(span.start..span.end) else { continue };
        let occurrence = seen.entry(text).or_insert(0);
        let id = chunk_id(&document.id, text, *occurrence);
        *occurrence = occurrence.saturating_add(1);
        let mut metadata = document.metadata.clone();
        if let Some(path) = span.heading_path {
            metadata.insert("heading_path".into(), path.clone());
        }
        chunks.push(Chunk {
            id,
            document: document.id.clone(),
            index: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
            text: text.to_owned(),
            start: span.start,
            end: span.end,
            metadata,
        });
    }
    chunks
}
